package idempotency_test

import (
	"context"
	"errors"
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

// A warned event is done only once parked on the dead-letter topic. Behind
// the idempotency middleware, which records a warned event done, a failed
// dead-letter produce must be tried again as a produce: called again, the
// handler would be skipped as done and the event committed unparked.
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
