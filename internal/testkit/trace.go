package testkit

import (
	"context"
	"testing"
	"time"

	"github.com/eventkit/eventkit"
	"github.com/eventkit/eventkit/kafka"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// Propagation is the W3C trace context propagator that traced tests pass
// to every part explicitly, leaving OpenTelemetry's globals alone.
var Propagation = propagation.TraceContext{}

// Tracing returns a tracer provider that samples every span and keeps each
// one that ends in the recorder, shut down when the test ends.
func Tracing(tb testing.TB) (*sdktrace.TracerProvider, *tracetest.SpanRecorder) {
	tb.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithSpanProcessor(rec))
	tb.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return tp, rec
}

// PublishTraced publishes evs to topic through a kafka.Publisher inside a
// span of its own, as a traced application would, and returns that span's
// context: the trace every handler span should continue.
func PublishTraced(tb testing.TB, cl *kgo.Client, tp trace.TracerProvider, topic string, evs ...*eventkit.Event) trace.SpanContext {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ctx, span := tp.Tracer("producer").Start(ctx, "send "+topic, trace.WithSpanKind(trace.SpanKindProducer))
	defer span.End()
	if err := kafka.NewPublisher(cl, kafka.Propagator(Propagation)).Publish(ctx, topic, evs...); err != nil {
		tb.Fatalf("publish: %v", err)
	}
	return span.SpanContext()
}

// Spans returns the ended spans named name, in the order they ended.
func Spans(rec *tracetest.SpanRecorder, name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		if s.Name() == name {
			out = append(out, s)
		}
	}
	return out
}
