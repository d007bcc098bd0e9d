package consumer_test

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
	"github.com/eventkit/eventkit/internal/testkit"
	"github.com/eventkit/eventkit/kafka"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Tries to park a warned event again are produces, not handler calls: the
// attempts counter and the handler's latency leave them out.
func TestUnparkedRetriesAreNotHandlerCalls(t *testing.T) {
	const topic, dlq = "orders", "orders.dlq"
	b := testkit.Broker(t, 1, topic, dlq)
	cl := testkit.Client(t, b.Addr())
	testkit.Produce(t, cl, kafka.RecordOf(topic, &eventkit.Event{ID: "e-1", Source: "/s", Type: "t"}))
	fault := b.Cluster().Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: dlq, Err: kerr.NotEnoughReplicas, Count: -1})
	defer fault.Remove()
	var calls atomic.Int32
	var log testkit.Buffer
	reg := prometheus.NewRegistry()
	c := agent(t, b, "g", topic, eventkit.HandlerFunc(func(context.Context, *eventkit.Event) error {
		calls.Add(1)
		return eventkit.Warn(errors.New("park it"))
	}), consumer.DeadLetterTopic(dlq), consumer.MaxRetries(1000), consumer.DrainTimeout(200*time.Millisecond),
		consumer.Registerer(reg), consumer.Logger(slog.New(slog.NewTextHandler(&log, nil))))
	r := testkit.Go(t, c.Run)
	testkit.Eventually(t, 30*time.Second, func() error {
		if n := strings.Count(log.String(), "dead-letter produce failed"); n < 3 {
			return fmt.Errorf("%d failed dead-letter produces", n)
		}
		return nil
	})
	// Metrics are merged at the end of each lane run: wait for the third
	// try's run to end (the fourth has begun).
	testkit.Eventually(t, 30*time.Second, func() error {
		if strings.Count(log.String(), "event will be retried") < 3 {
			return errors.New("waiting")
		}
		return nil
	})
	got := counterValue(t, reg, "eventkit_consumer_attempts_total", "topic", topic)
	_ = r.Stop()
	if int(got) != int(calls.Load()) {
		t.Errorf("eventkit_consumer_attempts_total = %v with %d handler calls", got, calls.Load())
	}
}
