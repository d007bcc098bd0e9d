package consumer_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/eventkit/eventkit"
	"github.com/eventkit/eventkit/consumer"
	"github.com/eventkit/eventkit/internal/testkit"
)

// A second agent joins and the first leaves while a slow handler works
// through a backlog: every event is handled at least once and the group ends
// committed at the log end.
func TestRebalanceLosesNothing(t *testing.T) {
	const n = 3000
	b := testkit.Broker(t, 6, "orders")
	cl := testkit.Client(t, b.Addr())
	testkit.Produce(t, cl, testkit.Events("orders", "e", n, nil)...)

	rec := newRecorder()
	slow := eventkit.HandlerFunc(func(ctx context.Context, ev *eventkit.Event) error {
		rec.add(ev)
		select {
		case <-time.After(200 * time.Microsecond):
		case <-ctx.Done():
		}
		return nil
	})
	first := agent(t, b, "g", "orders", slow, consumer.MaxInFlight(100))
	runFirst := testkit.Go(t, first.Run)
	testkit.Eventually(t, 20*time.Second, atLeast(n/6, rec.distinct, "handled before the join"))

	second := agent(t, b, "g", "orders", slow, consumer.MaxInFlight(100))
	runSecond := testkit.Go(t, second.Run)
	testkit.Eventually(t, 20*time.Second, func() error {
		if len(second.Status().Partitions) == 0 {
			return fmt.Errorf("second agent has no partitions yet")
		}
		return nil
	})
	testkit.Eventually(t, 20*time.Second, atLeast(n/2, rec.distinct, "handled before the leave"))
	if err := runFirst.Stop(); err != nil {
		t.Fatalf("first agent: %v", err)
	}

	testkit.Eventually(t, 30*time.Second, atLeast(n, rec.distinct, "handled"))
	committedAt(t, cl, "g", "orders", testkit.EndOffsets(t, cl, "orders"))
	if err := runSecond.Stop(); err != nil {
		t.Fatalf("second agent: %v", err)
	}
	t.Logf("%d events, %d handler calls (%d redelivered across the rebalances)", n, rec.total(), rec.total()-n)
}
