package consumer_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventkit/eventkit"
	"github.com/eventkit/eventkit/consumer"
	"github.com/eventkit/eventkit/internal/testkit"
)

// keyed produces perKey events for each of keys keys, interleaved, so that
// every key's events are spread through the partitions' logs.
func keyed(t *testing.T, b interface{ Addr() string }, topic string, keys, perKey int) {
	t.Helper()
	cl := testkit.Client(t, b.Addr())
	rs := testkit.Events(topic, "e", keys*perKey, func(i int) []byte { return []byte("k" + strconv.Itoa(i%keys)) })
	testkit.Produce(t, cl, rs...)
}

// seqOf returns the key and the position of the event among its key's events.
func seqOf(ev *eventkit.Event, keys int) (string, int) {
	i, _ := strconv.Atoi(strings.TrimPrefix(ev.ID, "e-"))
	return string(ev.Key), i / keys
}

func TestByKeyOrderWhileAKeyRetries(t *testing.T) {
	const keys, perKey = 200, 20
	b := testkit.Broker(t, 2, "orders")
	keyed(t, b, "orders", keys, perKey)
	cl := testkit.Client(t, b.Addr())

	var (
		mu          sync.Mutex
		next        = make(map[string]int)  // the sequence each key expects next
		busy        = make(map[string]bool) // a call of this key is running
		othersDone  atomic.Int32            // events of keys other than k7 done
		running     atomic.Int32
		maxRunning  atomic.Int32
		k7Failures  atomic.Int32
		orderBroken = make(chan string, 1)
	)
	c := agent(t, b, "g", "orders", eventkit.HandlerFunc(func(ctx context.Context, ev *eventkit.Event) error {
		key, seq := seqOf(ev, keys)
		mu.Lock()
		if busy[key] {
			select {
			case orderBroken <- fmt.Sprintf("two calls of key %s at once", key):
			default:
			}
		}
		if seq != next[key] {
			select {
			case orderBroken <- fmt.Sprintf("key %s: got seq %d, want %d", key, seq, next[key]):
			default:
			}
		}
		busy[key] = true
		mu.Unlock()
		n := running.Add(1)
		for m := maxRunning.Load(); n > m && !maxRunning.CompareAndSwap(m, n); m = maxRunning.Load() {
		}
		// Hold each call a little so that calls overlap.
		select {
		case <-time.After(time.Millisecond):
		case <-ctx.Done():
		}
		running.Add(-1)

		var err error
		// k7's third event fails until every other key is done: other keys
		// must flow while it retries.
		if key == "k7" && seq == 2 && othersDone.Load() < (keys-1)*perKey {
			k7Failures.Add(1)
			err = eventkit.Retry(errors.New("k7 not yet"))
		}
		mu.Lock()
		busy[key] = false
		if err == nil {
			next[key]++
			if key != "k7" {
				othersDone.Add(1)
			}
		}
		mu.Unlock()
		return err
	}), consumer.Ordering(consumer.ByKey), consumer.Concurrency(64), consumer.MaxRetries(-1))
	run := testkit.Go(t, c.Run)

	committedAt(t, cl, "g", "orders", testkit.EndOffsets(t, cl, "orders"))
	if err := run.Stop(); err != nil {
		t.Fatal(err)
	}
	select {
	case msg := <-orderBroken:
		t.Fatal(msg)
	default:
	}
	for k := range keys {
		if got := next["k"+strconv.Itoa(k)]; got != perKey {
			t.Fatalf("key k%d: %d of %d events done", k, got, perKey)
		}
	}
	if k7Failures.Load() == 0 {
		t.Fatal("k7 never retried: the test did not exercise a retrying key")
	}
	if maxRunning.Load() < 2 || maxRunning.Load() > 64 {
		t.Fatalf("at most %d calls at once, want parallel and within Concurrency 64", maxRunning.Load())
	}
	t.Logf("k7 retried %d times while %d other events were done; up to %d calls at once", k7Failures.Load(), othersDone.Load(), maxRunning.Load())
}

func TestUnorderedRetryBlocksOnlyItself(t *testing.T) {
	b := testkit.Broker(t, 1, "orders")
	cl := testkit.Client(t, b.Addr())
	testkit.Produce(t, cl, testkit.Events("orders", "e", 500, nil)...)
	var done atomic.Int32
	c := agent(t, b, "g", "orders", eventkit.HandlerFunc(func(ctx context.Context, ev *eventkit.Event) error {
		if ev.ID == "e-0" && done.Load() < 499 {
			return eventkit.Retry(errors.New("later"))
		}
		done.Add(1)
		return nil
	}), consumer.Ordering(consumer.Unordered), consumer.Concurrency(8), consumer.MaxRetries(-1))
	run := testkit.Go(t, c.Run)
	committedAt(t, cl, "g", "orders", map[int32]int64{0: 500})
	if err := run.Stop(); err != nil {
		t.Fatal(err)
	}
	if done.Load() != 500 {
		t.Fatalf("done %d", done.Load())
	}
}
