package consumer_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/eventkit/eventkit"
	"github.com/eventkit/eventkit/consumer"
	"github.com/eventkit/eventkit/internal/testkit"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

func TestHandlerContinuesTheProducersTrace(t *testing.T) {
	b := testkit.Broker(t, 1, "orders")
	tp, rec := testkit.Tracing(t)
	producer := testkit.PublishTraced(t, testkit.Client(t, b.Addr()), tp, "orders",
		&eventkit.Event{ID: "o-1", Type: "order.created"}, &eventkit.Event{ID: "o-2", Type: "order.created"})

	// What each handler call saw in its ctx, in call order.
	var (
		mu   sync.Mutex
		seen []trace.SpanContext
	)
	h := eventkit.HandlerFunc(func(ctx context.Context, ev *eventkit.Event) error {
		mu.Lock()
		seen = append(seen, trace.SpanContextFromContext(ctx))
		mu.Unlock()
		if ev.ID == "o-2" && consumer.Attempt(ctx) == 1 {
			return eventkit.Retry(errors.New("bank timed out"))
		}
		return nil
	})
	c := agent(t, b, "ledger", "orders", h, consumer.TracerProvider(tp), consumer.Propagator(testkit.Propagation),
		consumer.ReplayTopic(false), consumer.ControlPlane(false))
	spans := runUntilSpans(t, c, rec, 3)
	want := []struct {
		id      string
		attempt int64
		flag    string
	}{{"o-1", 1, ""}, {"o-2", 1, "retry"}, {"o-2", 2, ""}}
	if len(spans) != len(want) {
		t.Fatalf("%d handler spans, want %d", len(spans), len(want))
	}
	for i, s := range spans {
		w := want[i]
		checkChildOf(t, fmt.Sprint("span ", i), s, producer)
		if s.SpanKind() != trace.SpanKindConsumer {
			t.Errorf("span %d: kind %v, want consumer", i, s.SpanKind())
		}
		if seen[i].SpanID() != s.SpanContext().SpanID() {
			t.Errorf("handler call %d saw span %s in its ctx, want its own %s", i, seen[i].SpanID(), s.SpanContext().SpanID())
		}
		attrs := attribute.NewSet(s.Attributes()...)
		for k, v := range map[attribute.Key]attribute.Value{
			"messaging.system":                   attribute.StringValue("kafka"),
			"messaging.operation.type":           attribute.StringValue("process"),
			"messaging.destination.name":         attribute.StringValue("orders"),
			"messaging.destination.partition.id": attribute.StringValue("0"),
			"messaging.kafka.offset":             attribute.Int64Value(int64(min(i, 1))),
			"messaging.message.id":               attribute.StringValue(w.id),
			"messaging.consumer.group.name":      attribute.StringValue("ledger"),
			consumer.AttrAttempt:                 attribute.Int64Value(w.attempt),
		} {
			if got, ok := attrs.Value(k); !ok || got != v {
				t.Errorf("span %d: %s = %v, want %v", i, k, got.Emit(), v.Emit())
			}
		}
		flag, _ := attrs.Value(consumer.AttrFlag)
		failed := s.Status().Code == codes.Error
		if flag.AsString() != w.flag || failed != (w.flag != "") {
			t.Errorf("span %d: flag %q status %v, want flag %q and an error status only with a flag", i, flag.AsString(), s.Status(), w.flag)
		}
	}
}

// Without a propagator of its own, and none set globally, the agent reads
// the W3C traceparent: a trace goes through Kafka with no setup.
func TestW3CTraceContextByDefault(t *testing.T) {
	b := testkit.Broker(t, 1, "orders")
	tp, rec := testkit.Tracing(t)
	producer := testkit.PublishTraced(t, testkit.Client(t, b.Addr()), tp, "orders", &eventkit.Event{ID: "o-1", Type: "order.created"})
	c := agent(t, b, "ledger", "orders", eventkit.HandlerFunc(noop), consumer.TracerProvider(tp),
		consumer.ReplayTopic(false), consumer.ControlPlane(false))
	checkChildOf(t, "span", runUntilSpans(t, c, rec, 1)[0], producer)
}

// runUntilSpans runs c until n handler spans on orders have ended, stops
// it, and returns the spans.
func runUntilSpans(t *testing.T, c *consumer.Consumer, rec *tracetest.SpanRecorder, n int) []sdktrace.ReadOnlySpan {
	t.Helper()
	run := testkit.Go(t, c.Run)
	testkit.Eventually(t, 30*time.Second, func() error {
		if got := len(testkit.Spans(rec, "process orders")); got < n {
			return fmt.Errorf("%d handler spans ended, want %d", got, n)
		}
		return nil
	})
	if err := run.Stop(); err != nil {
		t.Fatal(err)
	}
	return testkit.Spans(rec, "process orders")
}

// checkChildOf checks that span s continues the producer's trace, as the
// child of its span.
func checkChildOf(t *testing.T, what string, s sdktrace.ReadOnlySpan, producer trace.SpanContext) {
	t.Helper()
	if s.SpanContext().TraceID() != producer.TraceID() || s.Parent().SpanID() != producer.SpanID() {
		t.Errorf("%s: trace %s parent %s, want the producer's trace %s and span %s",
			what, s.SpanContext().TraceID(), s.Parent().SpanID(), producer.TraceID(), producer.SpanID())
	}
}
