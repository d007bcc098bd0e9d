package consumer_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventkit/eventkit"
	"github.com/eventkit/eventkit/consumer"
	"github.com/eventkit/eventkit/internal/testkit"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// produceTo produces n events named prefix-0… to one partition of orders.
func produceTo(t *testing.T, cl *kgo.Client, p int32, prefix string, n int) {
	t.Helper()
	rs := testkit.Events("orders", prefix, n, nil)
	for _, r := range rs {
		r.Partition = p
	}
	testkit.Produce(t, cl, rs...)
}

// A partition stalled behind a retrying or halted event, with a backlog
// larger than MaxInFlight, must not take all of MaxInFlight: the other
// partitions go on, and once the event goes through the stalled partition
// is fetched again to its end.
func TestStalledPartitionLeavesRoomForTheOthers(t *testing.T) {
	for _, tc := range []struct {
		name  string
		halts bool
		opts  []consumer.Opt
	}{
		{"retrying", false, []consumer.Opt{consumer.MaxRetries(-1)}},
		{"halted", true, []consumer.Opt{consumer.MaxRetries(1), consumer.HaltPolicy(consumer.PausePartition)}},
		{"retrying by key", false, []consumer.Opt{consumer.MaxRetries(-1), consumer.Ordering(consumer.ByKey)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := testkit.Broker(t, 2, "orders")
			cl := testkit.Client(t, b.Addr(), kgo.RecordPartitioner(kgo.ManualPartitioner()))
			produceTo(t, cl, 0, "a", 100)

			rec := newRecorder()
			var fixed atomic.Bool
			opts := append([]consumer.Opt{consumer.MaxInFlight(20), consumer.Backoff(time.Millisecond, 10*time.Millisecond)}, tc.opts...)
			c := agent(t, b, "g", "orders", eventkit.HandlerFunc(func(ctx context.Context, ev *eventkit.Event) error {
				rec.add(ev)
				if ev.ID == "a-0" && !fixed.Load() {
					return errors.New("db down")
				}
				return nil
			}), opts...)
			run := testkit.Go(t, c.Run)
			testkit.Eventually(t, 20*time.Second, atLeast(2, func() int { return rec.count("a-0") }, "a-0 attempts"))
			produceTo(t, cl, 1, "b", 5)
			testkit.Eventually(t, 20*time.Second, atLeast(1, func() int { return rec.count("b-4") }, "b-4 on the other partition"))

			fixed.Store(true)
			if tc.halts {
				testkit.Eventually(t, 20*time.Second, func() error {
					if len(c.Halted()) != 1 {
						return errors.New("a-0 not halted")
					}
					return nil
				})
				if err := c.Resume("orders", 0, 0); err != nil {
					t.Fatal(err)
				}
			}
			committedAt(t, cl, "g", "orders", map[int32]int64{0: 100, 1: 5})
			if err := run.Stop(); err != nil {
				t.Fatal(err)
			}
			for i := range 100 {
				if id := fmt.Sprintf("a-%d", i); rec.count(id) == 0 {
					t.Fatalf("%s never handled", id)
				}
			}
		})
	}
}

// A halt that stops the agent commits everything before the halted event,
// under every ordering: events of other keys or chunks that came before it
// are handled on the way out, even when the halt came first.
func TestHaltCommitsEverythingBefore(t *testing.T) {
	for _, order := range []consumer.Order{consumer.ByKey, consumer.Unordered} {
		t.Run(order.String(), func(t *testing.T) {
			b := testkit.Broker(t, 1, "orders")
			cl := testkit.Client(t, b.Addr())
			keys := []string{"y", "y", "x", "x"} // e-2, of key x, is the poison
			testkit.Produce(t, cl, testkit.Events("orders", "e", len(keys), func(i int) []byte { return []byte(keys[i]) })...)
			rec := newRecorder()
			poisoned := make(chan struct{})
			var c *consumer.Consumer
			c = agent(t, b, "g", "orders", eventkit.HandlerFunc(func(ctx context.Context, ev *eventkit.Event) error {
				rec.add(ev)
				switch ev.ID {
				case "e-0": // still running when the agent halts
					<-poisoned
					testkit.Eventually(t, 10*time.Second, func() error {
						if err := c.Ready(); err == nil || !strings.Contains(err.Error(), "stopping") {
							return fmt.Errorf("not stopping: %v", err)
						}
						return nil
					})
				case "e-2":
					close(poisoned)
					return errors.New("poison")
				}
				return nil
			}), consumer.Ordering(order), consumer.Concurrency(2), consumer.MaxRetries(0))
			err := testkit.Go(t, c.Run).Wait(30 * time.Second)
			var ee *consumer.EventError
			if !errors.Is(err, consumer.ErrHalted) || !errors.As(err, &ee) || ee.Offset != 2 {
				t.Fatalf("Run = %v, want a halt at offset 2", err)
			}
			if got := testkit.Committed(t, cl, "g")["orders"][0]; got != 2 || rec.count("e-1") != 1 {
				t.Fatalf("committed %d with e-1 handled %d times, want 2 and once", got, rec.count("e-1"))
			}
		})
	}
}

// When the events handled on the way out of a halt halt as well, the
// earliest of them is where the agent stops: the error names it, the
// commit stops before it, and the agent does not wait out DrainTimeout
// for events that will never be done.
func TestEarlierHaltsOnTheWayOut(t *testing.T) {
	b := testkit.Broker(t, 1, "orders")
	cl := testkit.Client(t, b.Addr())
	testkit.Produce(t, cl, testkit.Events("orders", "e", 8, nil)...)
	c := agent(t, b, "g", "orders", eventkit.HandlerFunc(func(ctx context.Context, ev *eventkit.Event) error {
		if ev.ID == "e-0" {
			return nil
		}
		return errors.New("down")
	}), consumer.Ordering(consumer.Unordered), consumer.Concurrency(8), consumer.MaxRetries(2),
		consumer.Backoff(time.Millisecond, time.Millisecond),
		consumer.SessionTimeout(4*time.Minute), consumer.RebalanceTimeout(3*time.Minute), consumer.DrainTimeout(2*time.Minute))
	err := testkit.Go(t, c.Run).Wait(30 * time.Second)
	var ee *consumer.EventError
	if !errors.Is(err, consumer.ErrHalted) || !errors.As(err, &ee) || ee.Offset != 1 {
		t.Fatalf("Run = %v, want a halt at offset 1", err)
	}
	if got := testkit.Committed(t, cl, "g")["orders"][0]; got != 1 {
		t.Fatalf("committed %d, want 1", got)
	}
}

// Under PausePartition, halts on several partitions, each buffering fewer
// records than a stalled partition needs to be held for, must not add up
// to MaxInFlight and stop the partitions that have none.
func TestSmallHaltsLeaveRoomForTheOthers(t *testing.T) {
	b := testkit.Broker(t, 4, "orders")
	cl := testkit.Client(t, b.Addr(), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	for p, prefix := range []string{"a", "b", "c"} {
		produceTo(t, cl, int32(p), prefix, 4)
	}
	rec := newRecorder()
	c := agent(t, b, "g", "orders", eventkit.HandlerFunc(func(ctx context.Context, ev *eventkit.Event) error {
		rec.add(ev)
		if strings.HasSuffix(ev.ID, "-0") && !strings.HasPrefix(ev.ID, "d") {
			return errors.New("poison")
		}
		return nil
	}), consumer.MaxRetries(0), consumer.MaxInFlight(10), consumer.HaltPolicy(consumer.PausePartition))
	run := testkit.Go(t, c.Run)
	testkit.Eventually(t, 20*time.Second, func() error {
		if n := len(c.Halted()); n != 3 {
			return fmt.Errorf("%d halts, want 3", n)
		}
		return nil
	})
	produceTo(t, cl, 3, "d", 3)
	testkit.Eventually(t, 20*time.Second, atLeast(1, func() int { return rec.count("d-2") }, "d-2 behind three halted partitions"))
	for _, p := range []int32{0, 1, 2} {
		if err := c.Skip("orders", p, 0); err != nil {
			t.Fatal(err)
		}
	}
	committedAt(t, cl, "g", "orders", map[int32]int64{0: 4, 1: 4, 2: 4, 3: 3})
	if err := run.Stop(); err != nil {
		t.Fatal(err)
	}
}

// The agent's fetches wait at most 500 ms for data: a partition resumed
// while a fetch waits (a held partition whose retry went through, a halt an
// operator resumed) is fetched only once that fetch returns, and on a quiet
// topic franz-go's default would leave it idle for 5 s.
func TestFetchesWaitBriefly(t *testing.T) {
	b := testkit.Broker(t, 1, "orders")
	var mu sync.Mutex
	waits := map[int32]bool{}
	b.Cluster().ControlKey(int16(kmsg.Fetch), func(req kmsg.Request) (kmsg.Response, error, bool) {
		b.Cluster().KeepControl()
		mu.Lock()
		waits[req.(*kmsg.FetchRequest).MaxWaitMillis] = true
		mu.Unlock()
		return nil, nil, false
	})
	cl := testkit.Client(t, b.Addr())
	testkit.Produce(t, cl, testkit.Events("orders", "e", 1, nil)...)
	c := agent(t, b, "g", "orders", eventkit.HandlerFunc(noop), consumer.ReplayTopic(false), consumer.ControlPlane(false))
	run := testkit.Go(t, c.Run)
	committedAt(t, cl, "g", "orders", map[int32]int64{0: 1})
	if err := run.Stop(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if longest := slices.Max(slices.Collect(maps.Keys(waits))); longest != 500 {
		t.Errorf("fetches waited at most %v ms (of %v), want 500", longest, waits)
	}
}

// A kill of an earlier event, handled on the way out of a halt, is where
// the agent stops: Run returns the kill (the relay exits 4), the commit
// stops before the killed event, and the drain does not wait for it.
func TestKillOfAnEarlierEventAfterAHalt(t *testing.T) {
	b := testkit.Broker(t, 1, "orders")
	cl := testkit.Client(t, b.Addr())
	testkit.Produce(t, cl, testkit.Events("orders", "e", 4, nil)...)
	var c *consumer.Consumer
	c = agent(t, b, "g", "orders", eventkit.HandlerFunc(func(ctx context.Context, ev *eventkit.Event) error {
		switch ev.ID {
		case "e-1":
			// Still in flight when e-2 halts the agent.
			testkit.Eventually(t, 30*time.Second, func() error {
				if err := c.Ready(); err == nil || err.Error() != "stopping" {
					return errors.New("not stopping yet")
				}
				return nil
			})
			return eventkit.Kill(errors.New("fatal"))
		case "e-2":
			return errors.New("down")
		}
		return nil
	}), consumer.Ordering(consumer.Unordered), consumer.Concurrency(4), consumer.MaxRetries(0),
		consumer.SessionTimeout(4*time.Minute), consumer.RebalanceTimeout(3*time.Minute), consumer.DrainTimeout(2*time.Minute))
	// Within 30 s: the killed event, which will never be done, is not
	// waited for until DrainTimeout.
	err := testkit.Go(t, c.Run).Wait(30 * time.Second)
	var ee *consumer.EventError
	if !errors.Is(err, consumer.ErrKilled) || !errors.As(err, &ee) || ee.Offset != 1 {
		t.Fatalf("Run = %v, want the kill of offset 1", err)
	}
	if committed := testkit.Committed(t, cl, "g")["orders"][0]; committed != 1 {
		t.Fatalf("committed %d, want 1", committed)
	}
}
