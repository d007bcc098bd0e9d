package relay_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/eventkit/eventkit"
	"github.com/eventkit/eventkit/consumer"
	"github.com/eventkit/eventkit/internal/testkit"
	"github.com/eventkit/eventkit/relay"
)

// The application behind the relay continues the producer's trace: under
// the agent's span when the agent traces, else straight under the
// producer's, from the record's own traceparent.
func TestRelayCarriesTheTraceToTheApplication(t *testing.T) {
	for _, traced := range []bool{true, false} {
		t.Run(fmt.Sprintf("agent traced %v", traced), func(t *testing.T) {
			b := testkit.Broker(t, 1, "orders")
			tp, rec := testkit.Tracing(t)
			producer := testkit.PublishTraced(t, testkit.Client(t, b.Addr()), tp, "orders", &eventkit.Event{ID: "o-1", Type: "order.created"})

			var in inbox
			app := endpoint(t, func(w http.ResponseWriter, r *http.Request) { in.record(t, r) })
			opts := []consumer.Opt{consumer.ReplayTopic(false), consumer.ControlPlane(false)}
			if traced {
				opts = append(opts, consumer.TracerProvider(tp), consumer.Propagator(testkit.Propagation))
			}
			h := newRelay(t, app.URL, relay.Propagator(testkit.Propagation))
			run := testkit.Go(t, agent(t, b, "g", "orders", h, opts...).Run)
			testkit.Eventually(t, 30*time.Second, func() error {
				if n := in.len(); n != 1 {
					return fmt.Errorf("%d deliveries, want 1", n)
				}
				return nil
			})
			if err := run.Stop(); err != nil {
				t.Fatal(err)
			}

			parent := producer.SpanID()
			if traced {
				spans := testkit.Spans(rec, "process orders")
				if len(spans) != 1 {
					t.Fatalf("%d agent spans, want 1", len(spans))
				}
				parent = spans[0].SpanContext().SpanID()
			}
			got := in.all()[0].header.Get("traceparent")
			want := fmt.Sprintf("00-%s-%s-01", producer.TraceID(), parent)
			if got != want {
				t.Fatalf("the application got traceparent %q, want %q", got, want)
			}
		})
	}
}

// When the agent's context carries a trace, it replaces the record's whole:
// the record's tracestate and baggage, of another trace, do not reach the
// application next to the agent's traceparent.
func TestRelayReplacesTheRecordsTraceContext(t *testing.T) {
	tp, _ := testkit.Tracing(t)
	var in inbox
	app := endpoint(t, func(w http.ResponseWriter, r *http.Request) { in.record(t, r) })
	h := newRelay(t, app.URL, relay.Propagator(testkit.Propagation))
	ctx, span := tp.Tracer("agent").Start(t.Context(), "process orders")
	defer span.End()
	ev := &eventkit.Event{ID: "o-1", Type: "order.created", Source: "/shop", Headers: []eventkit.Header{
		{Key: "traceparent", Value: []byte("00-11111111111111111111111111111111-2222222222222222-01")},
		{Key: "tracestate", Value: []byte("othervendor=stale")},
	}}
	if err := h.Handle(ctx, ev); err != nil {
		t.Fatal(err)
	}
	got := in.all()[0].header
	sc := span.SpanContext()
	if tp := got.Get("traceparent"); tp != fmt.Sprintf("00-%s-%s-01", sc.TraceID(), sc.SpanID()) || got.Get("tracestate") != "" {
		t.Fatalf("the application got traceparent %q, tracestate %q: want the agent's span and no tracestate", tp, got.Get("tracestate"))
	}
}
