package eventkit_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/eventkit/eventkit"
)

// A handler says what went wrong through the flag on its error.
func ExampleHandlerFunc() {
	var saveErr error // imagine a database call
	h := eventkit.HandlerFunc(func(ctx context.Context, ev *eventkit.Event) error {
		if ev.DecodeErr != nil {
			return eventkit.Warn(ev.DecodeErr) // log it, keep going
		}
		var t struct{ Amount int64 }
		if err := json.Unmarshal(ev.Data, &t); err != nil {
			return eventkit.Warn(fmt.Errorf("decode %s: %w", ev.ID, err))
		}
		if t.Amount < 0 {
			return eventkit.Kill(errors.New("negative amount: the producer is broken"))
		}
		return eventkit.Retry(saveErr) // nil when the save worked
	})
	for _, data := range []string{`{"Amount": 5}`, `not json`, `{"Amount": -1}`} {
		err := h.Handle(context.Background(), &eventkit.Event{ID: "e1", Data: []byte(data)})
		fmt.Println(eventkit.FlagOf(err))
	}
	// Output:
	// none
	// warn
	// kill
}

func ExampleChain() {
	logs := func(name string) eventkit.Middleware {
		return func(next eventkit.Handler) eventkit.Handler {
			return eventkit.HandlerFunc(func(ctx context.Context, ev *eventkit.Event) error {
				fmt.Println("enter", name)
				return next.Handle(ctx, ev)
			})
		}
	}
	h := eventkit.Chain(eventkit.HandlerFunc(func(context.Context, *eventkit.Event) error {
		fmt.Println("handle")
		return nil
	}), logs("outer"), logs("inner"))
	_ = h.Handle(context.Background(), &eventkit.Event{})
	// Output:
	// enter outer
	// enter inner
	// handle
}
