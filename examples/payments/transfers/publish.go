package transfers

import (
	"context"
	"slices"
	"time"

	"github.com/eventkit/eventkit"
	"github.com/eventkit/eventkit/examples/payments/events"
	"github.com/eventkit/eventkit/kafka"
	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"
)

const (
	// publishBatch bounds the messages one round publishes.
	publishBatch = 1000
	// pollInterval is how often the publisher looks at the outbox when
	// nothing woke it: a write from another process (or one whose wake-up
	// was lost to a crash) is published within it.
	pollInterval = time.Second
	// maxBackoff caps the wait after a failed round.
	maxBackoff = 5 * time.Second
)

// publishLoop sends the outbox to Kafka, oldest first, until ctx ends. A
// round that fails is tried again after a backoff with the same messages,
// so events are never skipped and their order per key holds.
func (s *Service) publishLoop(ctx context.Context) error {
	var (
		drill   drillState
		backoff time.Duration
		tick    = time.NewTicker(pollInterval)
	)
	defer tick.Stop()
	for {
		n, err := s.publishRound(ctx, &drill)
		if ctx.Err() != nil {
			return nil
		}
		var (
			wait <-chan time.Time
			wake = s.wake
		)
		switch {
		case err != nil:
			backoff = min(max(2*backoff, 50*time.Millisecond), maxBackoff)
			s.log.Warn("publish failed; retrying", "error", err, "backoff", backoff)
			wait = time.After(backoff)
			wake = nil // a write does not cut a backoff short
		case n == publishBatch:
			backoff = 0
			continue // more is waiting
		default:
			backoff = 0
			wait = tick.C
		}
		select {
		case <-ctx.Done():
			return nil
		case <-wake:
		case <-wait:
		}
	}
}

// publishRound publishes up to publishBatch messages and deletes them from
// the outbox, returning how many it took.
func (s *Service) publishRound(ctx context.Context, drill *drillState) (int, error) {
	msgs, err := s.store.Pending(ctx, publishBatch)
	if err != nil || len(msgs) == 0 {
		return 0, err
	}
	byTopic := map[string][]*eventkit.Event{}
	dups := map[string]int64{}
	var broken []*kgo.Record
	for _, m := range msgs {
		ev := eventOf(m)
		evs := append(byTopic[m.Topic], ev)
		if drill.fire(&drill.dup, s.cfg.Drill.Duplicate) {
			evs = append(evs, eventOf(m))
			dups[m.Topic]++
		}
		byTopic[m.Topic] = evs
		if drill.fire(&drill.bad, s.cfg.Drill.Malformed) {
			broken = append(broken, drill.breakRecord(m))
		}
	}
	// Keys never span topics, so per-key order only needs each topic's
	// events in outbox order. The drills count what reached the broker
	// only: a round cut short (a stop) is sent again, and drilled anew.
	for topic, evs := range byTopic {
		if err := s.pub.Publish(ctx, topic, evs...); err != nil {
			return 0, err
		}
		s.published.Add(int64(len(evs)))
		s.duplicated.Add(dups[topic])
	}
	if len(broken) > 0 {
		if err := kafka.ProduceSync(ctx, s.cl, broken...); err != nil {
			return 0, err
		}
		s.malformed.Add(int64(len(broken)))
	}
	// Deleting after a cancel still saves the next start from sending the
	// round again.
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	return len(msgs), s.store.Published(dctx, msgs)
}

func eventOf(m Message) *eventkit.Event {
	ev := &eventkit.Event{
		ID: m.ID, Source: events.Source, Type: m.Type, Subject: m.Key, Time: m.Time,
		ContentType: "application/json", Key: []byte(m.Key), Data: m.Data,
	}
	if m.Schema != "" {
		ev.Headers = []eventkit.Header{{Key: events.HeaderDataSchema, Value: []byte(m.Schema)}}
	}
	return ev
}

// drillState spreads each drill's fraction evenly over the events.
type drillState struct {
	dup, bad float64
	kind     int
}

// fire adds frac to acc and reports whether it reached a whole event.
func (d *drillState) fire(acc *float64, frac float64) bool {
	if frac <= 0 {
		return false
	}
	*acc += frac
	if *acc < 1 {
		return false
	}
	*acc--
	return true
}

// breakRecord returns a broken sibling of m, broken in the next way.
func (d *drillState) breakRecord(m Message) *kgo.Record {
	ev := eventOf(m)
	ev.ID = uuid.Must(uuid.NewV7()).String()
	ev.SpecVersion = eventkit.SpecVersion
	d.kind = (d.kind + 1) % 3
	switch d.kind {
	case 0:
		ev.Data = slices.Clone(m.Data[:len(m.Data)/2]) // cut off mid-document
	case 1:
		ev.Data = []byte(`{"id":42,"version":"seven","amount_minor":"lots","holder":"nobody"}`)
	case 2:
		r := kafka.RecordOf(m.Topic, ev)
		r.Headers = slices.DeleteFunc(r.Headers, func(h kgo.RecordHeader) bool { return h.Key == eventkit.HeaderID })
		return r
	}
	return kafka.RecordOf(m.Topic, ev)
}
