package consumer_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventkit/eventkit"
	"github.com/eventkit/eventkit/consumer"
	"github.com/eventkit/eventkit/internal/testkit"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
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

func TestWarnLogsCountsAndCommits(t *testing.T) {
	b := testkit.Broker(t, 1, "orders", "orders.dlq")
	cl := testkit.Client(t, b.Addr())
	testkit.Produce(t, cl, testkit.Events("orders", "e", 10, nil)...)

	logs := &logBuffer{}
	reg := prometheus.NewRegistry()
	c := agent(t, b, "g", "orders", eventkit.HandlerFunc(func(ctx context.Context, ev *eventkit.Event) error {
		if ev.ID == "e-4" {
			return fmt.Errorf("handle: %w", eventkit.Warn(errors.New("card expired")))
		}
		return nil
	}), consumer.Logger(logs.logger()), consumer.Registerer(reg), consumer.DeadLetterTopic("orders.dlq"))
	run := testkit.Go(t, c.Run)
	committedAt(t, cl, "g", "orders", map[int32]int64{0: 10})

	if got := counterValue(t, reg, "eventkit_consumer_events_total", "outcome", "warn"); got != 1 {
		t.Errorf("warn count = %v, want 1", got)
	}
	if !logs.contains(`level=WARN msg="event warned"`, "offset=4", "id=e-4", `cause="handle: card expired"`) {
		t.Errorf("no WARN line naming the event and cause in:\n%s", logs)
	}
	if err := run.Stop(); err != nil {
		t.Fatal(err)
	}

	// The warned event is parked on the dead-letter topic with its origin.
	dl := consumeAll(t, cl, "orders.dlq", 1)
	h := headerMap(dl[0].Headers)
	if h[consumer.HeaderDeadLetterOrigin] != "orders/0/4" || h[consumer.HeaderDeadLetterCause] != "handle: card expired" || h[consumer.HeaderDeadLetterGroup] != "g" || h["ce_id"] != "e-4" {
		t.Fatalf("dead letter headers %v", h)
	}
	if string(dl[0].Value) != "v4" {
		t.Fatalf("dead letter value %q", dl[0].Value)
	}
}

func TestHaltStopsWithFailingOffsetUncommitted(t *testing.T) {
	b := testkit.Broker(t, 2, "orders")
	cl := testkit.Client(t, b.Addr(), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	rs := testkit.Events("orders", "e", 20, nil)
	for i, r := range rs {
		r.Partition = int32(i % 2) // p0: e-0,e-2,... at offsets 0..9
	}
	testkit.Produce(t, cl, rs...)

	var calls atomic.Int32
	c := agent(t, b, "g", "orders", eventkit.HandlerFunc(func(ctx context.Context, ev *eventkit.Event) error {
		if ev.ID == "e-6" { // partition 0, offset 3
			calls.Add(1)
			return errors.New("downstream unavailable") // unflagged: retry
		}
		return nil
	}), consumer.MaxRetries(3))
	run := testkit.Go(t, c.Run)
	err := run.Wait(30 * time.Second)

	var ee *consumer.EventError
	if !errors.Is(err, consumer.ErrHalted) || !errors.As(err, &ee) {
		t.Fatalf("Run = %v, want an EventError matching ErrHalted", err)
	}
	if ee.Topic != "orders" || ee.Partition != 0 || ee.Offset != 3 || ee.ID != "e-6" || ee.Attempts != 4 {
		t.Fatalf("halt names %+v", ee)
	}
	want := "halted topic=orders partition=0 offset=3 id=e-6 attempts=4 cause=downstream unavailable"
	if err.Error() != want {
		t.Fatalf("error line\n got %q\nwant %q", err.Error(), want)
	}
	if calls.Load() != 4 {
		t.Fatalf("handler called %d times, want MaxRetries+1 = 4", calls.Load())
	}
	got := testkit.Committed(t, cl, "g")["orders"]
	if got[0] != 3 {
		t.Fatalf("partition 0 committed %d, want 3 (the failing offset)", got[0])
	}
}

func TestKillCommitsOnlyWhatWasDone(t *testing.T) {
	b := testkit.Broker(t, 1, "orders")
	cl := testkit.Client(t, b.Addr())
	testkit.Produce(t, cl, testkit.Events("orders", "e", 50, nil)...)

	rec := newRecorder()
	c := agent(t, b, "g", "orders", eventkit.HandlerFunc(func(ctx context.Context, ev *eventkit.Event) error {
		rec.add(ev)
		if ev.ID == "e-20" {
			return eventkit.Kill(errors.New("ledger corrupted"))
		}
		return nil
	}))
	run := testkit.Go(t, c.Run)
	err := run.Wait(30 * time.Second)
	if !errors.Is(err, consumer.ErrKilled) {
		t.Fatalf("Run = %v, want ErrKilled", err)
	}
	if !strings.HasPrefix(err.Error(), "killed topic=orders partition=0 offset=20 id=e-20 attempts=1 cause=ledger corrupted") {
		t.Fatalf("error line %q", err)
	}
	if got := testkit.Committed(t, cl, "g")["orders"][0]; got != 20 {
		t.Fatalf("committed %d, want 20: everything before the killed event, not it", got)
	}
	if rec.count("e-21") != 0 {
		t.Fatal("an event after the kill was handled")
	}
}

func TestPanicIsRetried(t *testing.T) {
	b := testkit.Broker(t, 1, "orders")
	cl := testkit.Client(t, b.Addr())
	testkit.Produce(t, cl, testkit.Events("orders", "e", 3, nil)...)
	var n atomic.Int32
	c := agent(t, b, "g", "orders", eventkit.HandlerFunc(func(ctx context.Context, ev *eventkit.Event) error {
		if ev.ID == "e-1" && n.Add(1) == 1 {
			var m map[string]int
			m["boom"]++ // nil map write: a real panic
		}
		return nil
	}))
	run := testkit.Go(t, c.Run)
	committedAt(t, cl, "g", "orders", map[int32]int64{0: 3})
	if err := run.Stop(); err != nil {
		t.Fatal(err)
	}
	if n.Load() != 2 {
		t.Fatalf("e-1 handled %d times, want 2 (panic, then success)", n.Load())
	}
}

func TestHandlerTimeoutCancelsAttempt(t *testing.T) {
	b := testkit.Broker(t, 1, "orders")
	cl := testkit.Client(t, b.Addr())
	testkit.Produce(t, cl, testkit.Events("orders", "e", 2, nil)...)
	var n atomic.Int32
	c := agent(t, b, "g", "orders", eventkit.HandlerFunc(func(ctx context.Context, ev *eventkit.Event) error {
		if ev.ID == "e-0" && n.Add(1) == 1 {
			<-ctx.Done() // a stuck call, released only by the timeout
			return ctx.Err()
		}
		return nil
	}), consumer.HandlerTimeout(50*time.Millisecond))
	run := testkit.Go(t, c.Run)
	committedAt(t, cl, "g", "orders", map[int32]int64{0: 2})
	if err := run.Stop(); err != nil {
		t.Fatal(err)
	}
}

func TestPausePartitionResumeAndSkip(t *testing.T) {
	b := testkit.Broker(t, 2, "orders")
	cl := testkit.Client(t, b.Addr(), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	produceTo := func(p int32, prefix string, n int) {
		rs := testkit.Events("orders", prefix, n, nil)
		for _, r := range rs {
			r.Partition = p
		}
		testkit.Produce(t, cl, rs...)
	}
	produceTo(0, "a", 10) // a-3 is poison until fixed
	produceTo(1, "b", 10) // b-5 is poison for good

	var fixed atomic.Bool
	rec := newRecorder()
	reg := prometheus.NewRegistry()
	c := agent(t, b, "g", "orders", eventkit.HandlerFunc(func(ctx context.Context, ev *eventkit.Event) error {
		rec.add(ev)
		switch {
		case ev.ID == "a-3" && !fixed.Load():
			return eventkit.Retry(errors.New("schema v3 unknown"))
		case ev.ID == "b-5":
			return errors.New("poison")
		}
		return nil
	}), consumer.MaxRetries(2), consumer.HaltPolicy(consumer.PausePartition), consumer.Registerer(reg))
	run := testkit.Go(t, c.Run)

	testkit.Eventually(t, 20*time.Second, func() error {
		if hs := c.Halted(); len(hs) != 2 {
			return fmt.Errorf("halted %+v", hs)
		}
		return nil
	})
	hs := c.Halted()
	if hs[0].Partition != 0 || hs[0].Offset != 3 || hs[0].ID != "a-3" || hs[0].Attempts != 3 || hs[0].Cause != "schema v3 unknown" {
		t.Fatalf("halt 0 = %+v", hs[0])
	}
	if c.Ready() == nil {
		t.Fatal("ready while halted")
	}
	if got := gaugeValue(t, reg, "eventkit_consumer_halted_partitions"); got != 2 {
		t.Fatalf("halted gauge %v", got)
	}
	committedAt(t, cl, "g", "orders", map[int32]int64{0: 3, 1: 5})

	// Paused partitions fetch nothing new; produce more to prove it, then
	// operate on them.
	produceTo(0, "a2", 1)
	if err := c.Resume("orders", 0, 4); !errors.Is(err, consumer.ErrNotHalted) {
		t.Fatalf("Resume at a stale offset = %v, want ErrNotHalted", err)
	}
	if err := c.Skip("orders", 1, 4); !errors.Is(err, consumer.ErrNotHalted) {
		t.Fatalf("Skip at a stale offset = %v, want ErrNotHalted", err)
	}

	fixed.Store(true)
	if err := c.Resume("orders", 0, 3); err != nil {
		t.Fatal(err)
	}
	if err := c.Skip("orders", 1, 5); err != nil {
		t.Fatal(err)
	}
	committedAt(t, cl, "g", "orders", map[int32]int64{0: 11, 1: 10})
	if c.Ready() != nil {
		t.Fatalf("not ready after resume and skip: %v", c.Ready())
	}
	if rec.count("b-5") != 3 {
		t.Fatalf("skipped event handled %d times, want 3 (no call after skip)", rec.count("b-5"))
	}
	if rec.count("a-3") != 4 {
		t.Fatalf("resumed event handled %d times, want 3 failures + 1 success", rec.count("a-3"))
	}
	if got := counterValue(t, reg, "eventkit_consumer_events_total", "outcome", "skip"); got != 1 {
		t.Fatalf("skip count %v", got)
	}
	if err := run.Stop(); err != nil {
		t.Fatal(err)
	}
}

// Middleware that keeps attempt counts elsewhere (the idempotency layer)
// raises the agent's count: the retry limit then includes attempts made
// before a restart.
func TestSetAttemptCountsTowardsTheLimit(t *testing.T) {
	b := testkit.Broker(t, 1, "orders")
	cl := testkit.Client(t, b.Addr())
	testkit.Produce(t, cl, testkit.Events("orders", "e", 1, nil)...)
	var seen []int
	c := agent(t, b, "g", "orders", eventkit.HandlerFunc(func(ctx context.Context, ev *eventkit.Event) error {
		if consumer.GroupOf(ctx) != "g" {
			t.Errorf("GroupOf = %q", consumer.GroupOf(ctx))
		}
		if consumer.Attempt(ctx) == 1 {
			consumer.SetAttempt(ctx, 3) // two attempts happened before a crash
		}
		seen = append(seen, consumer.Attempt(ctx))
		return errors.New("still failing")
	}), consumer.MaxRetries(3))
	err := testkit.Go(t, c.Run).Wait(30 * time.Second)
	var ee *consumer.EventError
	if !errors.As(err, &ee) || ee.Attempts != 4 {
		t.Fatalf("Run = %v, want a halt after 4 attempts in all", err)
	}
	if !equalInts(seen, []int{3, 4}) {
		t.Fatalf("attempts seen by the handler %v, want [3 4]", seen)
	}
}

// A failure the handler marks Uncounted (the event was busy elsewhere) is
// retried without using up MaxRetries, so the event still gets its whole
// budget once it is free.
func TestUncountedFailuresKeepTheRetryBudget(t *testing.T) {
	b := testkit.Broker(t, 1, "orders")
	cl := testkit.Client(t, b.Addr())
	testkit.Produce(t, cl, testkit.Events("orders", "e", 1, nil)...)
	var seen []int
	c := agent(t, b, "g", "orders", eventkit.HandlerFunc(func(ctx context.Context, ev *eventkit.Event) error {
		seen = append(seen, consumer.Attempt(ctx))
		if len(seen) <= 5 {
			consumer.Uncounted(ctx) // held by another node
		}
		return errors.New("failing")
	}), consumer.MaxRetries(2))
	err := testkit.Go(t, c.Run).Wait(30 * time.Second)
	var ee *consumer.EventError
	if !errors.As(err, &ee) || ee.Attempts != 3 {
		t.Fatalf("Run = %v, want a halt after 3 counted attempts", err)
	}
	// A call that found the event busy elsewhere is not a delivery: the
	// first five calls and the sixth are all the first delivery.
	if !equalInts(seen, []int{1, 1, 1, 1, 1, 1, 2, 3}) {
		t.Fatalf("attempts seen by the handler %v, want 5 uncounted calls, then attempts 1 to 3", seen)
	}
}

// A slow handler moves the done watermark event by event: the first
// event, which took its time, shows processed while the second is still
// running, instead of waiting in a batch for the second's end.
func TestSlowHandlerMarksEachEventDone(t *testing.T) {
	b := testkit.Broker(t, 1, "orders")
	cl := testkit.Client(t, b.Addr())
	testkit.Produce(t, cl, testkit.Events("orders", "e", 2, nil)...)

	release := make(chan struct{})
	c := agent(t, b, "g", "orders", eventkit.HandlerFunc(func(ctx context.Context, ev *eventkit.Event) error {
		if ev.ID == "e-0" {
			time.Sleep(5 * time.Millisecond) // the handler's own slowness, what the test is about
			return nil
		}
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil
	}), consumer.HandlerTimeout(time.Minute))
	run := testkit.Go(t, c.Run)
	testkit.Eventually(t, 20*time.Second, func() error {
		for _, p := range c.Status().Partitions {
			if p.Processed >= 1 {
				return nil
			}
		}
		return fmt.Errorf("e-0 not processed while e-1 runs: %+v", c.Status().Partitions)
	})
	close(release)
	if err := run.Stop(); err != nil {
		t.Fatalf("Run = %v", err)
	}
}

// A member that takes over a partition reports the group's committed
// offset for it, and everything before it as processed, before it has
// handled or committed anything itself.
func TestStatusStartsFromTheGroupsCommit(t *testing.T) {
	b := testkit.Broker(t, 1, "orders")
	cl := testkit.Client(t, b.Addr())
	testkit.Produce(t, cl, testkit.Events("orders", "e", 5, nil)...)
	first := testkit.Go(t, agent(t, b, "g", "orders", eventkit.HandlerFunc(noop)).Run)
	committedAt(t, cl, "g", "orders", map[int32]int64{0: 5})
	if err := first.Stop(); err != nil {
		t.Fatal(err)
	}

	c := agent(t, b, "g", "orders", eventkit.HandlerFunc(noop))
	run := testkit.Go(t, c.Run)
	testkit.Eventually(t, 20*time.Second, func() error {
		for _, p := range c.Status().Partitions {
			if p.Topic == "orders" && p.Committed == 5 && p.Processed == 5 {
				return nil
			}
		}
		return fmt.Errorf("status %+v, want orders/0 committed and processed at 5", c.Status().Partitions)
	})
	if err := run.Stop(); err != nil {
		t.Fatal(err)
	}
}

// An event without an id goes by its coordinates in the halt line, the id
// the relay gave the application (ce-id).
func TestHaltLineOfAnEventWithoutID(t *testing.T) {
	err := &consumer.EventError{Reason: consumer.ErrHalted, Topic: "orders", Partition: 0, Offset: 7, Attempts: 1, Cause: errors.New("503")}
	if got, want := err.Error(), "halted topic=orders partition=0 offset=7 id=orders/0/7 attempts=1 cause=503"; got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}
