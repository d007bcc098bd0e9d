package idempotency_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventkit/eventkit"
	"github.com/eventkit/eventkit/consumer"
	"github.com/eventkit/eventkit/idempotency"
	"github.com/eventkit/eventkit/internal/testkit"
	"github.com/eventkit/eventkit/kafka"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// A warned event is done only once parked on the dead-letter topic: a
// failed dead-letter produce is tried again as a produce, without calling
// the handler again, with or without the idempotency middleware.
func TestWarnedEventParkedDespiteDeadLetterFailures(t *testing.T) {
	for _, withMW := range []bool{false, true} {
		name := "agent alone"
		if withMW {
			name = "with idempotency middleware"
		}
		t.Run(name, func(t *testing.T) {
			const topic, dlq, group = "orders", "orders.dlq", "g"
			b := testkit.Broker(t, 1, topic, dlq)
			cl := testkit.Client(t, b.Addr())
			testkit.Produce(t, cl, kafka.RecordOf(topic, &eventkit.Event{ID: "e-1", Source: "/s", Type: "t"}))
			// The first dead-letter produces fail for a few seconds: longer
			// than one DrainTimeout (1s), so the first parking fails.
			fault := b.Cluster().Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: dlq, Err: kerr.NotEnoughReplicas, Count: 30})
			defer fault.Remove()

			var calls atomic.Int32
			var h eventkit.Handler = eventkit.HandlerFunc(func(context.Context, *eventkit.Event) error {
				calls.Add(1)
				return eventkit.Warn(errors.New("park it"))
			})
			if withMW {
				h = eventkit.Chain(h, idempotency.Middleware(idempotency.NewMemoryStore()))
			}
			c, err := consumer.New(h, append(testkit.AgentOpts(t, b, group, topic), consumer.DeadLetterTopic(dlq))...)
			if err != nil {
				t.Fatal(err)
			}
			r := testkit.Go(t, c.Run)
			testkit.WaitCommitted(t, cl, group, topic, testkit.EndOffsets(t, cl, topic), time.Minute)
			if err := r.Stop(); err != nil {
				t.Fatal(err)
			}
			end := testkit.EndOffsets(t, cl, dlq)
			if end[0] != 1 || calls.Load() != 1 {
				t.Errorf("offset committed with %d records on the dead-letter topic after %d handler calls (%d failed produces), want 1 and 1",
					end[0], calls.Load(), fault.Hits())
			}
		})
	}
}

// An agent that stops while the dead-letter topic refuses a warned event
// leaves the event claimed, not done: the next owner takes it over once the
// lease ends, and the handler's warning parks it then.
func TestWarnedEventParkedByTheNextOwner(t *testing.T) {
	const topic, dlq, group = "orders", "orders.dlq", "g"
	b := testkit.Broker(t, 1, topic, dlq)
	cl := testkit.Client(t, b.Addr())
	testkit.Produce(t, cl, kafka.RecordOf(topic, &eventkit.Event{ID: "e-1", Source: "/s", Type: "t"}))
	fault := b.Cluster().Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: dlq, Err: kerr.NotEnoughReplicas, Count: -1})
	defer fault.Remove()

	store := idempotency.NewMemoryStore()
	var calls atomic.Int32
	h := eventkit.HandlerFunc(func(context.Context, *eventkit.Event) error {
		calls.Add(1)
		return eventkit.Warn(errors.New("park it"))
	})
	var logA testkit.Buffer
	a, err := consumer.New(eventkit.Chain(h, idempotency.Middleware(store, idempotency.Owner("A"), idempotency.LeaseTTL(time.Second))),
		append(testkit.AgentOpts(t, b, group, topic), consumer.DeadLetterTopic(dlq), consumer.MaxRetries(1000),
			consumer.Logger(slog.New(slog.NewTextHandler(&logA, nil))))...)
	if err != nil {
		t.Fatal(err)
	}
	ra := testkit.Go(t, a.Run)
	testkit.Eventually(t, 30*time.Second, func() error {
		if !strings.Contains(logA.String(), "dead-letter produce failed") {
			return fmt.Errorf("no failed dead-letter produce yet")
		}
		return nil
	})
	if err := ra.Stop(); err != nil { // a restart, or the partition moving to another member
		t.Fatal(err)
	}
	fault.Remove() // the dead-letter topic is back

	bb, err := consumer.New(eventkit.Chain(h, idempotency.Middleware(store, idempotency.Owner("B"), idempotency.LeaseTTL(time.Second))),
		append(testkit.AgentOpts(t, b, group, topic), consumer.DeadLetterTopic(dlq))...)
	if err != nil {
		t.Fatal(err)
	}
	rb := testkit.Go(t, bb.Run)
	testkit.WaitCommitted(t, cl, group, topic, testkit.EndOffsets(t, cl, topic), 30*time.Second)
	if err := rb.Stop(); err != nil {
		t.Fatal(err)
	}
	if end := testkit.EndOffsets(t, cl, dlq); end[0] != 1 {
		t.Errorf("offset committed with %d records on the dead-letter topic (handler calls %d), want the warned event parked", end[0], calls.Load())
	}
}
