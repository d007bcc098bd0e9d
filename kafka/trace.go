package kafka

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/eventkit/eventkit"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
)

// RecordCarrier lets an OpenTelemetry propagator read and write a record's
// headers, so that trace context (W3C traceparent and tracestate) travels
// with the event from producer to consumer:
//
//	prop.Inject(ctx, (*kafka.RecordCarrier)(rec))
//	ctx = prop.Extract(ctx, (*kafka.RecordCarrier)(rec))
//
// It is the record itself, so converting costs nothing.
type RecordCarrier kgo.Record

var _ propagation.TextMapCarrier = (*RecordCarrier)(nil)

// Get returns the value of the first header named key, or "". The trace
// context (traceparent, tracestate) is W3C's headers when the record has a
// W3C traceparent, else the CloudEvents extension's the Kafka binding
// writes (ce_traceparent, ce_tracestate), so that a trace started by a
// CloudEvents producer goes on here, and a tracestate always comes with its
// own traceparent.
func (c *RecordCarrier) Get(key string) string {
	if key == "traceparent" || key == "tracestate" {
		if _, w3c := c.get("traceparent"); !w3c {
			key = "ce_" + key
		}
	}
	v, _ := c.get(key)
	return v
}

func (c *RecordCarrier) get(key string) (string, bool) {
	for _, h := range c.Headers {
		if h.Key == key {
			return string(h.Value), true
		}
	}
	return "", false
}

// Set replaces the headers named key with one holding value: the context
// being injected wins over one the event carried from elsewhere. Setting
// traceparent also drops the CloudEvents extension's trace headers
// (ce_traceparent, ce_tracestate), of the trace being replaced.
func (c *RecordCarrier) Set(key, value string) {
	if key == "traceparent" {
		c.Headers = slices.DeleteFunc(c.Headers, func(h kgo.RecordHeader) bool {
			return h.Key == "ce_traceparent" || h.Key == "ce_tracestate"
		})
	}
	for i, h := range c.Headers {
		if h.Key == key {
			c.Headers[i].Value = []byte(value)
			rest := slices.DeleteFunc(c.Headers[i+1:], func(h kgo.RecordHeader) bool { return h.Key == key })
			c.Headers = c.Headers[:i+1+len(rest)]
			return
		}
	}
	c.Headers = append(c.Headers, kgo.RecordHeader{Key: key, Value: []byte(value)})
}

// Keys lists the header names.
func (c *RecordCarrier) Keys() []string {
	keys := make([]string, len(c.Headers))
	for i, h := range c.Headers {
		keys[i] = h.Key
	}
	return keys
}

// Trace is a context's trace context as a propagator writes it.
type Trace struct {
	// Headers are the headers the propagator writes; empty when the context
	// carries no trace context.
	Headers propagation.MapCarrier
	// Replaces names every header that belongs to a trace context: W3C's
	// and the propagator's. A carrier that takes Headers drops these first,
	// so that no tracestate or baggage of another trace rides along with
	// the new traceparent (a propagator writes tracestate and baggage only
	// when they are not empty).
	Replaces []string
}

// TraceOf returns ctx's trace context as prop writes it.
func TraceOf(ctx context.Context, prop propagation.TextMapPropagator) Trace {
	t := Trace{Headers: propagation.MapCarrier{}}
	prop.Inject(ctx, t.Headers)
	if len(t.Headers) > 0 {
		t.Replaces = append(slices.Clone(eventkit.TraceHeaders), prop.Fields()...)
	}
	return t
}

// injectTrace writes ctx's trace context into r's headers, replacing the
// trace headers r carried; when ctx carries none, r keeps its own.
func injectTrace(ctx context.Context, prop propagation.TextMapPropagator, r *kgo.Record) {
	t := TraceOf(ctx, prop)
	if len(t.Headers) == 0 {
		return
	}
	r.Headers = slices.DeleteFunc(r.Headers, func(h kgo.RecordHeader) bool { return slices.Contains(t.Replaces, h.Key) })
	for _, k := range slices.Sorted(maps.Keys(t.Headers)) {
		r.Headers = append(r.Headers, kgo.RecordHeader{Key: k, Value: []byte(t.Headers[k])})
	}
}

// DefaultPropagator is the propagator eventkit's agent, relay and
// Publisher use unless told otherwise: OpenTelemetry's global one once the
// application sets one (also when it sets it later), and until then W3C
// Trace Context and Baggage, so that traceparent travels through the
// headers with no setup. OpenTelemetry's own default propagates nothing.
func DefaultPropagator() propagation.TextMapPropagator { return globalOrW3C{} }

var w3c = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})

// unsetPropagator is OpenTelemetry's global propagator as it is before the
// application sets one, which propagates nothing; comparing with it costs
// nothing per record, where asking the global for its Fields allocates.
// It is nil when something set a propagator before this package was
// initialised: that one is then used throughout.
var unsetPropagator = func() propagation.TextMapPropagator {
	p := otel.GetTextMapPropagator()
	if fmt.Sprintf("%T", p) != "*global.textMapPropagator" {
		return nil
	}
	return p
}()

type globalOrW3C struct{}

func (globalOrW3C) current() propagation.TextMapPropagator {
	if g := otel.GetTextMapPropagator(); unsetPropagator == nil || g != unsetPropagator {
		return g
	}
	return w3c
}

func (p globalOrW3C) Inject(ctx context.Context, c propagation.TextMapCarrier) {
	p.current().Inject(ctx, c)
}

func (p globalOrW3C) Extract(ctx context.Context, c propagation.TextMapCarrier) context.Context {
	return p.current().Extract(ctx, c)
}

func (p globalOrW3C) Fields() []string { return p.current().Fields() }
