package consumer_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventkit/eventkit"
	"github.com/eventkit/eventkit/consumer"
	"github.com/eventkit/eventkit/internal/testkit"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// receive waits for a value on c.
func receive[T any](t *testing.T, c <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-c:
		return v
	case <-time.After(20 * time.Second):
		t.Fatalf("no %s within 20s", what)
		panic("unreachable")
	}
}

// A call the agent cancels because a drain ran out of time fails with the
// context's error: that says nothing of the event. Stopping returns nil,
// not a halt, and commits up to the cancelled event, never past it.
func TestCancelledByTheDrainIsNoFailure(t *testing.T) {
	b := testkit.Broker(t, 1, "orders")
	cl := testkit.Client(t, b.Addr())
	testkit.Produce(t, cl, testkit.Events("orders", "e", 3, nil)...)
	started := make(chan struct{}, 1)
	c := agent(t, b, "g", "orders", eventkit.HandlerFunc(func(ctx context.Context, ev *eventkit.Event) error {
		if ev.ID == "e-1" {
			select {
			case started <- struct{}{}:
			default:
			}
			<-ctx.Done() // a long call that honours cancellation
			return ctx.Err()
		}
		return nil
	}), consumer.MaxRetries(0), consumer.DrainTimeout(200*time.Millisecond))
	run := testkit.Go(t, c.Run)
	receive(t, started, "e-1 handled")
	if err := run.Stop(); err != nil {
		t.Fatalf("Run returned %v after a cancel, want nil", err)
	}
	if got := testkit.Committed(t, cl, "g")["orders"][0]; got != 1 {
		t.Fatalf("committed %d, want 1 (up to the cancelled event)", got)
	}
}

// The same on a revoke: the member that gives a partition away does not
// halt over a call of it the drain cancelled; the event is the new owner's.
func TestCancelledByARevokeIsNoFailure(t *testing.T) {
	b := testkit.Broker(t, 2, "orders")
	cl := testkit.Client(t, b.Addr(), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	rs := testkit.Events("orders", "e", 2, nil)
	rs[0].Partition, rs[1].Partition = 0, 1
	testkit.Produce(t, cl, rs...)
	var blocking atomic.Bool
	blocking.Store(true)
	started := make(chan string, 2)
	release := make(chan struct{}) // ends the call of the partition kept
	h := eventkit.HandlerFunc(func(ctx context.Context, ev *eventkit.Event) error {
		if blocking.Load() {
			started <- ev.ID
			select {
			case <-ctx.Done(): // cancelled by the revoke's drain timeout
				return ctx.Err()
			case <-release:
			}
		}
		return nil
	})
	opts := []consumer.Opt{consumer.MaxRetries(0), consumer.DrainTimeout(200 * time.Millisecond)}
	first := agent(t, b, "g", "orders", h, opts...)
	runFirst := testkit.Go(t, first.Run)
	for range 2 {
		receive(t, started, "both events handled")
	}
	blocking.Store(false)
	second := agent(t, b, "g", "orders", h, opts...)
	runSecond := testkit.Go(t, second.Run)
	testkit.Eventually(t, 20*time.Second, func() error {
		for _, p := range second.Status().Partitions {
			if p.Committed == 1 {
				return nil
			}
		}
		return errors.New("the second agent has not committed the partition it took")
	})
	close(release)
	select {
	case <-runFirst.Done():
		t.Fatalf("the first agent stopped over a revoke: %v", runFirst.Wait(time.Second))
	default:
	}
	if err := runSecond.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := runFirst.Stop(); err != nil {
		t.Fatalf("first agent: Run returned %v, want nil", err)
	}
}

// Run returns only once every call it started has returned: a handler
// that ignores its cancelled context holds Run, not the group, which the
// agent leaves meanwhile.
func TestRunWaitsForCallsThatIgnoreTheirContext(t *testing.T) {
	b := testkit.Broker(t, 1, "orders")
	cl := testkit.Client(t, b.Addr())
	testkit.Produce(t, cl, testkit.Events("orders", "e", 1, nil)...)
	var inHandler atomic.Bool
	started, release := make(chan struct{}), make(chan struct{})
	logs := &logBuffer{}
	c := agent(t, b, "g", "orders", eventkit.HandlerFunc(func(ctx context.Context, ev *eventkit.Event) error {
		inHandler.Store(true)
		defer inHandler.Store(false)
		close(started)
		<-release // ignores ctx
		return nil
	}), consumer.DrainTimeout(100*time.Millisecond), consumer.Logger(logs.logger()))
	run := testkit.Go(t, c.Run)
	<-started
	run.Cancel()
	testkit.Eventually(t, 20*time.Second, func() error {
		if !logs.contains("leaving the group, then waiting for them") {
			return errors.New("no word of the calls that ignore their context")
		}
		return nil
	})
	// The group is left: its member list empties while the call runs.
	testkit.Eventually(t, 20*time.Second, func() error {
		gs, err := kadm.NewClient(cl).DescribeGroups(context.Background(), "g")
		if err != nil {
			return err
		}
		if n := len(gs["g"].Members); n != 0 {
			return fmt.Errorf("%d members", n)
		}
		return nil
	})
	select {
	case <-run.Done():
		t.Fatal("Run returned while a call it started still runs")
	default:
	}
	close(release)
	if err := run.Wait(20 * time.Second); err != nil {
		t.Fatal(err)
	}
	if inHandler.Load() {
		t.Fatal("Run returned before the call")
	}
}

// Records of held partitions are outside MaxInFlight, so more lanes may be
// ready than MaxInFlight: queueing one never waits, or a worker queueing
// its own lane again would wait for itself, the poll loop behind it, and
// even a cancel would not end Run.
func TestReadyLanesNeverWait(t *testing.T) {
	b := testkit.Broker(t, 2, "orders")
	cl := testkit.Client(t, b.Addr(), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	// Partition 0: four keys that always fail, held behind their retries.
	rs := testkit.Events("orders", "a", 4, func(i int) []byte { return []byte("a" + strconv.Itoa(i)) })
	for _, r := range rs {
		r.Partition = 0
	}
	testkit.Produce(t, cl, rs...)
	release := make(chan struct{})
	inE0 := make(chan struct{}, 1)
	rec := newRecorder()
	c := agent(t, b, "g", "orders", eventkit.HandlerFunc(func(ctx context.Context, ev *eventkit.Event) error {
		rec.add(ev)
		switch {
		case strings.HasPrefix(ev.ID, "a-"):
			return eventkit.Retry(errors.New("always"))
		case ev.ID == "e-0":
			select {
			case inE0 <- struct{}{}:
			default:
			}
			select {
			case <-release:
			case <-ctx.Done():
			}
		}
		return nil
	}), consumer.Ordering(consumer.ByKey), consumer.Concurrency(1), consumer.MaxInFlight(4),
		consumer.MaxRetries(-1), consumer.Backoff(time.Millisecond, time.Millisecond))
	run := testkit.Go(t, c.Run)
	testkit.Eventually(t, 20*time.Second, atLeast(2, func() int { return rec.count("a-3") }, "a-3 attempts"))
	one := func(id, key string) *kgo.Record {
		r := testkit.Events("orders", "x", 1, func(int) []byte { return []byte(key) })[0]
		r.Partition = 1
		for i := range r.Headers {
			if r.Headers[i].Key == "ce_id" {
				r.Headers[i].Value = []byte(id)
			}
		}
		return r
	}
	testkit.Produce(t, cl, one("e-0", "e"))
	receive(t, inE0, "call of e-0")
	testkit.Produce(t, cl, one("e-1", "e"), one("f-0", "f"), one("g-0", "g"))
	testkit.Eventually(t, 20*time.Second, func() error {
		if n := c.Status().InFlight; n != 8 {
			return fmt.Errorf("%d in flight, want 8: 4 held and 4 flowing", n)
		}
		return nil
	})
	close(release)
	testkit.Eventually(t, 20*time.Second, func() error {
		for _, id := range []string{"e-1", "f-0", "g-0"} {
			if rec.count(id) == 0 {
				return fmt.Errorf("%s not handled", id)
			}
		}
		return nil
	})
	if err := run.Stop(); err != nil {
		t.Fatal(err)
	}
}
