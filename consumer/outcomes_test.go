package consumer_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/eventkit/eventkit"
	"github.com/eventkit/eventkit/consumer"
	"github.com/eventkit/eventkit/internal/testkit"
)

func TestSuccessCommits(t *testing.T) {
	b := testkit.Broker(t, 3, "orders")
	cl := testkit.Client(t, b.Addr())
	testkit.Produce(t, cl, testkit.Events("orders", "e", 300, nil)...)

	rec := newRecorder()
	c := agent(t, b, "g", "orders", eventkit.HandlerFunc(func(ctx context.Context, ev *eventkit.Event) error {
		if consumer.Attempt(ctx) != 1 {
			t.Errorf("attempt %d on first delivery", consumer.Attempt(ctx))
		}
		rec.add(ev)
		return nil
	}))
	run := testkit.Go(t, c.Run)
	testkit.Eventually(t, 20*time.Second, atLeast(300, rec.distinct, "handled"))
	committedAt(t, cl, "g", "orders", testkit.EndOffsets(t, cl, "orders"))
	if err := run.Stop(); err != nil {
		t.Fatalf("Run = %v, want nil after cancel", err)
	}
	if rec.total() != 300 {
		t.Fatalf("handled %d times for 300 events", rec.total())
	}
}

func TestRetryRedeliversWithGrowingAttempt(t *testing.T) {
	b := testkit.Broker(t, 1, "orders")
	cl := testkit.Client(t, b.Addr())
	testkit.Produce(t, cl, testkit.Events("orders", "e", 5, nil)...)

	var attempts []int
	rec := newRecorder()
	c := agent(t, b, "g", "orders", eventkit.HandlerFunc(func(ctx context.Context, ev *eventkit.Event) error {
		rec.add(ev)
		if ev.ID == "e-2" {
			attempts = append(attempts, consumer.Attempt(ctx))
			if len(attempts) < 4 {
				return eventkit.Retry(errors.New("database locked"))
			}
		}
		return nil
	}), consumer.MaxRetries(5))
	run := testkit.Go(t, c.Run)
	committedAt(t, cl, "g", "orders", map[int32]int64{0: 5})
	if err := run.Stop(); err != nil {
		t.Fatal(err)
	}
	if want := []int{1, 2, 3, 4}; !equalInts(attempts, want) {
		t.Fatalf("attempts of e-2 = %v, want %v", attempts, want)
	}
	// ByPartition: nothing after e-2 ran before e-2 succeeded.
	if rec.count("e-3") != 1 || rec.order[len(rec.order)-2] != "e-3" && rec.order[len(rec.order)-2] != "e-2" {
		t.Fatalf("order %v", rec.order)
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
