package idempotency_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventkit/eventkit"
	"github.com/eventkit/eventkit/consumer"
	"github.com/eventkit/eventkit/idempotency"
	"github.com/eventkit/eventkit/internal/testkit"
	"github.com/eventkit/eventkit/kafka"
	"github.com/prometheus/client_golang/prometheus"
)

// A process killed mid-handler leaves its claim until the lease ends; the
// member that takes the event over finds it held until then. Those calls
// are not attempts, and they must not hide the attempts the claim counts:
// the three crashed processes' attempts and this one's make MaxRetries(3)
// + 1, so this member calls the handler once, as attempt 4, and halts.
func TestCrashLoopKeepsCountPastALiveLease(t *testing.T) {
	const topic, group = "crashloop", "crashloop-group"
	b := testkit.Broker(t, 1, topic)
	cl := testkit.Client(t, b.Addr())
	ev := &eventkit.Event{ID: "e-1", Source: "/s", Type: "t"}
	testkit.Produce(t, cl, kafka.RecordOf(topic, ev))

	store := idempotency.NewMemoryStore()
	key := idempotency.Key(group, ev)
	now := time.Now()
	for i, owner := range []string{"dead-1", "dead-2", "dead-3"} {
		until := now.Add(-time.Second) // expired: the next one takes over
		if i == 2 {
			until = now.Add(700 * time.Millisecond) // the last crash's lease is still live
		}
		out, err := store.Claim(context.Background(), idempotency.ClaimRequest{
			Key: key, Owner: owner, Now: now, Until: until, Expire: now.Add(time.Hour)})
		if err != nil || out.Status != idempotency.Acquired {
			t.Fatalf("seed claim %d: %v %v", i, out.Status, err)
		}
	}

	var mu sync.Mutex
	var seen []int
	h := eventkit.HandlerFunc(func(ctx context.Context, _ *eventkit.Event) error {
		mu.Lock()
		seen = append(seen, consumer.Attempt(ctx))
		mu.Unlock()
		return eventkit.Retry(errors.New("always failing"))
	})
	c, err := consumer.New(eventkit.Chain(h, idempotency.Middleware(store)),
		append(testkit.AgentOpts(t, b, group, topic), consumer.MaxRetries(3))...)
	if err != nil {
		t.Fatal(err)
	}
	r := testkit.Go(t, c.Run)
	err = r.Wait(30 * time.Second)
	mu.Lock()
	defer mu.Unlock()
	var ee *consumer.EventError
	if !errors.As(err, &ee) || !errors.Is(err, consumer.ErrHalted) {
		t.Fatalf("Run: %v, want a halt", err)
	}
	if len(seen) != 1 || seen[0] != 4 || ee.Attempts != 4 {
		t.Errorf("handler calls saw attempts %v, halt attempts=%d; want one call, attempt 4 of MaxRetries+1 = 4, then the halt", seen, ee.Attempts)
	}
}

// A rebalance while the old owner's attempt is still running: the new
// owner finds the event held many times, then claims it with the old
// owner's attempt counted, and halts after MaxRetries + 1 attempts in all.
func TestRebalanceKeepsCountPastAHeldClaim(t *testing.T) {
	const topic, group = "rc", "rcg"
	b := testkit.Broker(t, 1, topic)
	cl := testkit.Client(t, b.Addr())
	testkit.Produce(t, cl, kafka.RecordOf(topic, &eventkit.Event{ID: "e-1", Source: "/s", Type: "t"}))
	store := idempotency.NewMemoryStore()
	started, unblock := make(chan struct{}), make(chan struct{})
	hA := eventkit.HandlerFunc(func(context.Context, *eventkit.Event) error {
		close(started)
		<-unblock
		return eventkit.Retry(errors.New("always failing"))
	})
	var mu sync.Mutex
	var seenB []int
	hB := eventkit.HandlerFunc(func(ctx context.Context, _ *eventkit.Event) error {
		mu.Lock()
		seenB = append(seenB, consumer.Attempt(ctx))
		mu.Unlock()
		return eventkit.Retry(errors.New("always failing"))
	})
	regB := prometheus.NewRegistry()
	opts := append(testkit.AgentOpts(t, b, group, topic), consumer.MaxRetries(1))
	a, err := consumer.New(eventkit.Chain(hA, idempotency.Middleware(store, idempotency.Owner("A"))), opts...)
	if err != nil {
		t.Fatal(err)
	}
	bb, err := consumer.New(eventkit.Chain(hB, idempotency.Middleware(store, idempotency.Owner("B"), idempotency.Registerer(regB))), opts...)
	if err != nil {
		t.Fatal(err)
	}
	ra := testkit.Go(t, a.Run)
	<-started
	rb := testkit.Go(t, bb.Run)
	// A leaves the group at once; its Run waits for the call, which
	// holds the claim meanwhile.
	ra.Cancel()
	testkit.Eventually(t, 30*time.Second, func() error {
		mfs, _ := regB.Gather()
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetValue() == "held" && m.GetCounter().GetValue() >= 5 {
						return nil
					}
				}
			}
		}
		return fmt.Errorf("B has not found the event held 5 times yet")
	})
	close(unblock) // A's attempt 1 fails and releases
	if err := ra.Wait(30 * time.Second); err != nil {
		t.Fatalf("A: %v, want nil: its failure came after it left", err)
	}
	err = rb.Wait(30 * time.Second)
	var ee *consumer.EventError
	if !errors.As(err, &ee) || !errors.Is(err, consumer.ErrHalted) {
		t.Fatalf("B: %v, want a halt", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seenB) != 1 {
		t.Errorf("B called the handler %d times (attempts %v): %d attempts in all, want MaxRetries+1 = 2", len(seenB), seenB, len(seenB)+1)
	}
}

// plainStore hides the MemoryStore's optional ResetAttempts, as a store of
// another module (or a wrapper) would.
type plainStore struct{ idempotency.Store }

// startFailing runs an agent (MaxRetries(2), PausePartition) over one event
// whose handler always fails, behind the middleware on store; onCall, when
// set, sees each call with its number. It returns the agent and its count
// of handler calls.
func startFailing(t *testing.T, store idempotency.Store, onCall func(ctx context.Context, n int32), opts ...idempotency.Opt) (*consumer.Consumer, *atomic.Int32) {
	t.Helper()
	const topic, group = "orders", "g"
	b := testkit.Broker(t, 1, topic)
	cl := testkit.Client(t, b.Addr())
	testkit.Produce(t, cl, kafka.RecordOf(topic, &eventkit.Event{ID: "e-1", Source: "/s", Type: "t"}))
	calls := new(atomic.Int32)
	h := eventkit.HandlerFunc(func(ctx context.Context, _ *eventkit.Event) error {
		n := calls.Add(1)
		if onCall != nil {
			onCall(ctx, n)
		}
		return eventkit.Retry(errors.New("failing"))
	})
	c, err := consumer.New(eventkit.Chain(h, idempotency.Middleware(store, opts...)),
		append(testkit.AgentOpts(t, b, group, topic), consumer.MaxRetries(2), consumer.HaltPolicy(consumer.PausePartition))...)
	if err != nil {
		t.Fatal(err)
	}
	testkit.Go(t, c.Run)
	return c, calls
}

// waitHalt waits until c has called its handler more than after times and
// halted the event.
func waitHalt(t *testing.T, c *consumer.Consumer, calls *atomic.Int32, after int32) {
	t.Helper()
	testkit.Eventually(t, 30*time.Second, func() error {
		if n := calls.Load(); n <= after {
			return fmt.Errorf("%d handler calls, want more than %d", n, after)
		}
		if len(c.Halted()) == 0 {
			return errors.New("not halted")
		}
		return nil
	})
}

// A resume grants a fresh budget on this member even when the store cannot
// reset the claim's count (no ResetAttempts): the count the claim carries
// then counts attempts this member already made.
func TestResumeFreshBudgetWithoutResetter(t *testing.T) {
	c, calls := startFailing(t, plainStore{idempotency.NewMemoryStore()}, nil)
	waitHalt(t, c, calls, 0)
	if n := calls.Load(); n != 3 {
		t.Fatalf("first budget: %d calls, want 3", n)
	}
	if err := c.Resume("orders", 0, 0); err != nil {
		t.Fatal(err)
	}
	waitHalt(t, c, calls, 3)
	hs := c.Halted()
	if n := calls.Load(); n != 6 {
		t.Fatalf("after Resume: %d calls in all (halt attempts=%d), want 3 more = 6", n, hs[0].Attempts)
	}
}

// otherOwnerStore simulates another owner's delivery of the same key (a
// duplicate of the event handled elsewhere) right after the first release
// that follows arm.
type otherOwnerStore struct {
	*idempotency.MemoryStore
	armed atomic.Bool
}

func (s *otherOwnerStore) Release(ctx context.Context, c idempotency.Claim) error {
	err := s.MemoryStore.Release(ctx, c)
	if s.armed.CompareAndSwap(true, false) {
		now := time.Now()
		out, cerr := s.MemoryStore.Claim(ctx, idempotency.ClaimRequest{Key: c.Key, Owner: "B", Now: now, Until: now.Add(time.Minute), Expire: now.Add(time.Hour)})
		if cerr != nil || out.Status != idempotency.Acquired {
			panic(fmt.Sprint("B claim: ", out.Status, cerr))
		}
		if rerr := s.MemoryStore.Release(ctx, out.Claim); rerr != nil {
			panic(rerr)
		}
	}
	return err
}

// A delivery another owner makes counts against the budget, before and
// after a resume whose store reset the count.
func TestOtherOwnersDeliveryCountsAfterResume(t *testing.T) {
	for _, resume := range []bool{false, true} {
		t.Run(fmt.Sprint("resume=", resume), func(t *testing.T) {
			store := &otherOwnerStore{MemoryStore: idempotency.NewMemoryStore()}
			var mu sync.Mutex
			var seen []int
			c, calls := startFailing(t, store, func(ctx context.Context, n int32) {
				mu.Lock()
				seen = append(seen, consumer.Attempt(ctx))
				mu.Unlock()
				if (resume && n == 4) || (!resume && n == 1) {
					store.armed.Store(true) // B delivers once after this call
				}
			}, idempotency.Owner("A"))
			waitHalt(t, c, calls, 0)
			before := int32(0)
			if resume {
				if n := calls.Load(); n != 3 {
					t.Fatalf("first budget: %d calls", n)
				}
				if err := c.Resume("orders", 0, 0); err != nil {
					t.Fatal(err)
				}
				waitHalt(t, c, calls, 3)
				before = 3
			}
			mu.Lock()
			defer mu.Unlock()
			// MaxRetries(2): 3 deliveries per budget; B made one of them.
			if n := calls.Load() - before; n != 2 {
				t.Errorf("A called the handler %d times in the budget (B delivered once too; Attempt seen %v), want 2 = MaxRetries+1-1", n, seen)
			}
		})
	}
}
