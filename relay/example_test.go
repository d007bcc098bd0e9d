package relay_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/eventkit/eventkit"
	"github.com/eventkit/eventkit/relay"
)

// The endpoint sees each event as a CloudEvents HTTP request and answers
// with the flag: here it warns about an event it cannot use.
func ExampleNew() {
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		fmt.Printf("%s %s attempt=%s offset=%s body=%s\n", r.Header.Get("ce-type"), r.Header.Get("ce-id"),
			r.Header.Get(relay.HeaderAttempt), r.Header.Get(relay.HeaderOffset), body)
		if len(body) == 0 {
			w.Header().Set(relay.HeaderFlag, "warn")
			w.WriteHeader(http.StatusUnprocessableEntity)
			fmt.Fprint(w, "empty transfer")
		}
	}))
	defer app.Close()

	h, err := relay.New(app.URL+"/events", relay.Timeout(5*time.Second))
	if err != nil {
		panic(err)
	}
	defer h.CloseIdleConnections()
	// The agent calls Handle for every event; see package consumer.
	for _, ev := range []*eventkit.Event{
		{ID: "t-1", Source: "/transfers", Type: "transfer.created", Data: []byte(`{"amount":5}`), Topic: "transfers", Offset: 41},
		{ID: "t-2", Source: "/transfers", Type: "transfer.created", Topic: "transfers", Offset: 42},
	} {
		err := h.Handle(context.Background(), ev)
		fmt.Println(eventkit.FlagOf(err))
	}
	// Output:
	// transfer.created t-1 attempt=1 offset=41 body={"amount":5}
	// none
	// transfer.created t-2 attempt=1 offset=42 body=
	// warn
}
