package idempotency_test

import (
	"context"
	"fmt"

	"github.com/eventkit/eventkit"
	"github.com/eventkit/eventkit/idempotency"
)

// The middleware runs the handler once per event key: a duplicate (the same
// ce_source and ce_id, at another offset) is skipped.
func ExampleMiddleware() {
	store := idempotency.NewMemoryStore()
	send := eventkit.HandlerFunc(func(_ context.Context, ev *eventkit.Event) error {
		fmt.Println("sending receipt for", ev.ID)
		return nil
	})
	// Under the agent, the group is the agent's own; called directly, it
	// is named.
	h := eventkit.Chain(send, idempotency.Middleware(store, idempotency.Group("receipts")))

	ctx := context.Background()
	first := &eventkit.Event{ID: "order-7", Source: "/shop", Topic: "orders", Offset: 10}
	again := &eventkit.Event{ID: "order-7", Source: "/shop", Topic: "orders", Offset: 11}
	fmt.Println(h.Handle(ctx, first))
	fmt.Println(h.Handle(ctx, again))
	// Output:
	// sending receipt for order-7
	// <nil>
	// <nil>
}

func ExampleKey() {
	ev := &eventkit.Event{ID: "order-7", Source: "/shop"}
	fmt.Println(idempotency.Key("receipts", ev))
	ev.Replay = &eventkit.Replay{ID: "r-1", Mode: eventkit.Reprocess}
	fmt.Println(idempotency.Key("receipts", ev))
	fmt.Println(idempotency.Key("receipts", &eventkit.Event{Topic: "orders", Partition: 2, Offset: 41}))
	// Output:
	// receipts|ce|/shop|order-7
	// receipts|rp|/shop|order-7|r-1
	// receipts|at|orders/2/41
}
