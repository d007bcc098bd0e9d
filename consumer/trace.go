package consumer

import (
	"context"
	"fmt"
	"strconv"

	"github.com/eventkit/eventkit"
	"github.com/eventkit/eventkit/kafka"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Span attributes the agent adds to the messaging semantic conventions.
const (
	AttrAttempt = attribute.Key("eventkit.attempt") // which delivery of the event the call was, from 1
	AttrFlag    = attribute.Key("eventkit.flag")    // warn, retry or kill, on a call that failed
)

const tracerName = "github.com/eventkit/eventkit/consumer"

// unsetGlobal is OpenTelemetry's global tracer provider as it is before the
// application sets one: its spans record nothing. Seeing it per event lets
// the agent skip reading trace headers and starting spans, which cost
// allocations, until tracing is set up. It is nil when something set the
// global provider before this package was initialised; spans then always
// start, which costs time, never traces.
var unsetGlobal = func() trace.TracerProvider {
	tp := otel.GetTracerProvider()
	if fmt.Sprintf("%T", tp) != "*global.tracerProvider" {
		return nil
	}
	return tp
}()

// tracing starts one span per handler call, continuing the trace whose
// context the record's headers carry.
type tracing struct {
	tracer trace.Tracer
	prop   propagation.TextMapPropagator
	group  attribute.KeyValue
	off    bool // the provider is a no-op one
	global bool // the provider is the global one, which the application may set later
}

func newTracing(c *cfg) *tracing {
	t := &tracing{prop: c.propagator, group: semconv.MessagingConsumerGroupName(c.group)}
	tp := c.tracerProvider
	if tp == nil {
		tp, t.global = otel.GetTracerProvider(), true
	}
	if t.prop == nil {
		t.prop = kafka.DefaultPropagator()
	}
	_, t.off = tp.(noop.TracerProvider)
	// The global provider's tracers forward to the provider the
	// application sets, also when it sets it after this.
	t.tracer = tp.Tracer(tracerName)
	return t
}

func (t *tracing) enabled() bool {
	return !t.off && !(t.global && unsetGlobal != nil && otel.GetTracerProvider() == unsetGlobal)
}

// start begins the span of one handler call as a child of the context the
// record carries; the handler's ctx carries the span, so that the
// application continues the trace.
func (t *tracing) start(ctx context.Context, it *item) (context.Context, trace.Span) {
	r := it.rec
	ctx = t.prop.Extract(ctx, (*kafka.RecordCarrier)(r))
	attrs := []attribute.KeyValue{
		semconv.MessagingSystemKafka,
		semconv.MessagingOperationTypeProcess,
		semconv.MessagingOperationName("process"),
		semconv.MessagingDestinationName(r.Topic),
		semconv.MessagingDestinationPartitionID(strconv.Itoa(int(r.Partition))),
		semconv.MessagingKafkaOffset(int(r.Offset)),
		t.group,
	}
	if it.ev.ID != "" {
		attrs = append(attrs, semconv.MessagingMessageID(it.ev.ID))
	}
	return t.tracer.Start(ctx, "process "+r.Topic, trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(attrs...))
}

// end closes the span with the call's outcome: an error status and the flag
// for anything but success.
func (t *tracing) end(span trace.Span, attempt int, err error) {
	span.SetAttributes(AttrAttempt.Int(attempt))
	if err != nil {
		span.SetAttributes(AttrFlag.String(eventkit.FlagOf(err).String()))
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}
