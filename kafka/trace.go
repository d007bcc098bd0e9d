package kafka

import (
	"slices"

	"github.com/twmb/franz-go/pkg/kgo"
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

// Get returns the value of the first header named key, or "".
func (c *RecordCarrier) Get(key string) string {
	for _, h := range c.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// Set replaces the headers named key with one holding value: the context
// being injected wins over one the event carried from elsewhere.
func (c *RecordCarrier) Set(key, value string) {
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
