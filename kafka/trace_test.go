package kafka_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/eventkit/eventkit"
	"github.com/eventkit/eventkit/internal/testkit"
	"github.com/eventkit/eventkit/kafka"
	"github.com/twmb/franz-go/pkg/kgo"
)

// An event forwarded from elsewhere may carry trace headers of its own; the
// publishing span's context replaces them, so the consumer continues this
// trace, not a stale one.
func TestPublishWritesTheTraceContext(t *testing.T) {
	b := testkit.Broker(t, 1, "orders")
	tp, _ := testkit.Tracing(t)
	ev := &eventkit.Event{ID: "o-1", Type: "order.created", Headers: []eventkit.Header{
		{Key: "traceparent", Value: []byte("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")},
		{Key: "tenant", Value: []byte("acme")},
		{Key: "traceparent", Value: []byte("00-11111111111111111111111111111111-2222222222222222-01")},
		// Of the stale trace too: the span has no tracestate or baggage to
		// write over them, and they must not ride along with its traceparent.
		{Key: "tracestate", Value: []byte("othervendor=stale")},
		{Key: "baggage", Value: []byte("user=from-elsewhere")},
		// The CloudEvents extension of a stale trace, as another
		// language's SDK writes it in the Kafka binding.
		{Key: "ce_traceparent", Value: []byte("00-33333333333333333333333333333333-4444444444444444-01")},
		{Key: "ce_tracestate", Value: []byte("othervendor=stale")},
	}}
	sc := testkit.PublishTraced(t, testkit.Client(t, b.Addr()), tp, "orders", ev)

	r := testkit.ReadAll(t, b.Addr(), "orders")[0]
	want := fmt.Sprintf("00-%s-%s-01", sc.TraceID(), sc.SpanID())
	var got []string
	for _, h := range r.Headers {
		if h.Key == "traceparent" {
			got = append(got, string(h.Value))
		}
	}
	if len(got) != 1 || got[0] != want {
		t.Fatalf("record traceparent headers %q, want one: %q", got, want)
	}
	if c := (*kafka.RecordCarrier)(r); c.Get("tenant") != "acme" || c.Get("tracestate") != "" || c.Get("baggage") != "" ||
		c.Get("ce_traceparent") != "" || c.Get("ce_tracestate") != "" {
		t.Fatalf("headers %+v: want tenant kept, the stale tracestate, baggage and ce_ trace extension gone", r.Headers)
	}
}

// A record whose trace context comes as the CloudEvents extension only
// (ce_traceparent, from a CloudEvents producer) is read as its trace; a
// W3C header, when there is one, wins.
func TestRecordCarrierReadsTheCloudEventsTraceExtension(t *testing.T) {
	const w3c, ce = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "00-11111111111111111111111111111111-2222222222222222-01"
	c := &kafka.RecordCarrier{Headers: []kgo.RecordHeader{{Key: "ce_traceparent", Value: []byte(ce)}, {Key: "ce_tracestate", Value: []byte("v=1")}}}
	if got := c.Get("traceparent"); got != ce || c.Get("tracestate") != "v=1" {
		t.Errorf("traceparent %q, tracestate %q; want the extension's", got, c.Get("tracestate"))
	}
	c.Headers = append(c.Headers, kgo.RecordHeader{Key: "traceparent", Value: []byte(w3c)})
	if got := c.Get("traceparent"); got != w3c {
		t.Errorf("traceparent %q, want the W3C header's %q", got, w3c)
	}
	// The extension's tracestate is of the extension's trace, not this one.
	if got := c.Get("tracestate"); got != "" {
		t.Errorf("tracestate %q with a W3C traceparent, want none", got)
	}
	// A propagator that writes its trace through the carrier replaces the
	// extension's too.
	c = &kafka.RecordCarrier{Headers: []kgo.RecordHeader{{Key: "ce_traceparent", Value: []byte(ce)}, {Key: "ce_tracestate", Value: []byte("v=1")}, {Key: "tenant", Value: []byte("a")}}}
	c.Set("traceparent", w3c)
	if c.Get("ce_traceparent") != "" || c.Get("ce_tracestate") != "" || c.Get("tenant") != "a" || c.Get("traceparent") != w3c {
		t.Errorf("headers after Set(traceparent): %+v; want the extension's trace headers gone, the rest kept", c.Headers)
	}
}

// Without a propagator of its own, and none set globally, a Publisher
// writes the W3C traceparent of the span in ctx.
func TestPublisherWritesW3CByDefault(t *testing.T) {
	b := testkit.Broker(t, 1, "orders")
	tp, _ := testkit.Tracing(t)
	ctx, span := tp.Tracer("producer").Start(context.Background(), "send orders")
	defer span.End()
	if err := kafka.NewPublisher(testkit.Client(t, b.Addr())).Publish(ctx, "orders", &eventkit.Event{ID: "o-1", Type: "order.created"}); err != nil {
		t.Fatal(err)
	}
	sc := span.SpanContext()
	want := fmt.Sprintf("00-%s-%s-01", sc.TraceID(), sc.SpanID())
	for _, h := range testkit.ReadAll(t, b.Addr(), "orders")[0].Headers {
		if h.Key == "traceparent" {
			if string(h.Value) != want {
				t.Errorf("traceparent %s, want %s", h.Value, want)
			}
			return
		}
	}
	t.Errorf("no traceparent header, want %s", want)
}
