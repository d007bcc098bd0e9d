package kafka

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/eventkit/eventkit"
	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/propagation"
)

// Publisher writes events to Kafka as CloudEvents in the Kafka binary binding
// (ce_* headers, the data as the record value), filling in what the
// CloudEvents spec requires and the caller left out.
//
// Publisher relies on franz-go's idempotent producer, which is on unless the
// client is built with kgo.DisableIdempotentWrite: a produce request that
// timed out and is retried is then written once and in order, never twice.
// Do not disable it; with it off, every broker hiccup can duplicate events.
//
// Records are partitioned by the client's partitioner; with franz-go's
// default, events with the same key land on the same partition, in the
// order published.
type Publisher struct {
	cl     *kgo.Client
	source string
	now    func() time.Time
	prop   propagation.TextMapPropagator
}

// PublisherOpt configures a [Publisher].
type PublisherOpt interface{ apply(*Publisher) }

type publisherOpt func(*Publisher)

func (o publisherOpt) apply(p *Publisher) { o(p) }

// Source sets the ce_source of events published without one. Default
// "eventkit".
func Source(source string) PublisherOpt {
	return publisherOpt(func(p *Publisher) { p.source = source })
}

// Clock sets the clock that stamps events published without a time. Default
// time.Now.
func Clock(now func() time.Time) PublisherOpt {
	return publisherOpt(func(p *Publisher) { p.now = now })
}

// Propagator sets how the trace context of Publish's ctx is written into
// each record's headers, for the consumer's span to continue the trace.
// Default: [DefaultPropagator]: W3C traceparent, tracestate and baggage
// until the application sets a global propagator, then that one.
func Propagator(p propagation.TextMapPropagator) PublisherOpt {
	return publisherOpt(func(pub *Publisher) { pub.prop = p })
}

// NewPublisher returns a Publisher that produces through cl. The client stays
// the caller's to close.
func NewPublisher(cl *kgo.Client, opts ...PublisherOpt) *Publisher {
	p := &Publisher{cl: cl, source: "eventkit", now: time.Now, prop: DefaultPropagator()}
	for _, o := range opts {
		o.apply(p)
	}
	return p
}

// Publish writes evs to topic and returns once every one is acknowledged,
// or with the first error. Records that failed may still have been written
// when the error is a timeout or a cancelled ctx, as with any Kafka produce.
//
// Publish completes each event in place before writing it, so that the
// caller sees what was sent: an empty ID becomes a UUIDv7 (time-ordered, so
// ids sort and index well), a zero Time becomes now, an empty Source the
// Publisher's source, and SpecVersion "1.0". Each written event's Topic,
// Partition, Offset and Timestamp then name its record. An event without a
// Type is refused before anything is written: the binding requires one.
//
// The trace context of ctx, if any, goes into each record's headers through
// the [Propagator], replacing every trace header the event carried
// (traceparent, tracestate, baggage); without one, the event's own go.
func (p *Publisher) Publish(ctx context.Context, topic string, evs ...*eventkit.Event) error {
	if topic == "" {
		return errors.New("publish: no topic")
	}
	rs := make([]*kgo.Record, len(evs))
	for i, ev := range evs {
		if err := p.complete(ev); err != nil {
			return fmt.Errorf("publish to %s: event %d: %w", topic, i, err)
		}
		rs[i] = RecordOf(topic, ev)
		injectTrace(ctx, p.prop, rs[i])
	}
	if err := ProduceSync(ctx, p.cl, rs...); err != nil {
		return fmt.Errorf("publish to %s: %w", topic, err)
	}
	for i, r := range rs {
		evs[i].Topic, evs[i].Partition, evs[i].Offset, evs[i].Timestamp = r.Topic, r.Partition, r.Offset, r.Timestamp
	}
	return nil
}

// ProduceSync writes rs through cl and waits for every acknowledgement, or
// for ctx to end, and returns the first error. franz-go's own ProduceSync
// fails a record whose context ends only while it has not been sent: one
// sent to a broker that went away is retried until it lands, and waiting
// for it would keep a cancelled caller (a signal, a request gone, a stop
// bounded in time) waiting for as long as the broker stays away. When ctx
// ends first, the records may still be written.
func ProduceSync(ctx context.Context, cl *kgo.Client, rs ...*kgo.Record) error {
	if len(rs) == 0 {
		return nil
	}
	var (
		mu    sync.Mutex
		first error
		left  = len(rs)
		done  = make(chan struct{})
	)
	for _, r := range rs {
		cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
			mu.Lock()
			defer mu.Unlock()
			if err != nil && first == nil {
				first = err
			}
			if left--; left == 0 {
				close(done)
			}
		})
	}
	select {
	case <-done:
		return first
	case <-ctx.Done():
		select {
		case <-done: // acknowledged as ctx ended: the outcome is known
			return first
		default:
		}
		return fmt.Errorf("%w: some records may still be written", context.Cause(ctx))
	}
}

func (p *Publisher) complete(ev *eventkit.Event) error {
	switch {
	case ev == nil:
		return errors.New("nil event")
	case ev.Type == "":
		return errors.New("no type")
	}
	if ev.ID == "" {
		id, err := uuid.NewV7()
		if err != nil {
			return fmt.Errorf("new id: %w", err)
		}
		ev.ID = id.String()
	}
	if ev.Source == "" {
		ev.Source = p.source
	}
	if ev.Time.IsZero() {
		ev.Time = p.now()
	}
	if ev.SpecVersion == "" {
		ev.SpecVersion = eventkit.SpecVersion
	}
	return nil
}
