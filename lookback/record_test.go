package lookback_test

import (
	"strings"
	"testing"

	"github.com/eventkit/eventkit"
	"github.com/eventkit/eventkit/consumer"
	"github.com/eventkit/eventkit/kafka"
	"github.com/eventkit/eventkit/lookback"
)

// A replayed copy is linked to its original; the same copy parked on a
// dead-letter topic is archived as a record of its own, since it alone
// carries why it was parked.
func TestLinkOfLeavesParkedReplaysArchived(t *testing.T) {
	replay := []eventkit.Header{
		{Key: eventkit.HeaderReplayID, Value: []byte("replay-1")},
		{Key: eventkit.HeaderReplayMode, Value: []byte(eventkit.Reprocess)},
		{Key: eventkit.HeaderReplayOrigin, Value: []byte("orders/0/3")},
	}
	copied := kafka.EventOf(kafka.RecordOf("eventkit.replay.g", &eventkit.Event{ID: "o-3", Headers: replay}))
	if l, ok := lookback.LinkOf(copied); !ok || l.OriginTopic != "orders" || l.OriginOffset != 3 {
		t.Errorf("replayed copy: link %+v, %v; want a link to orders/0/3", l, ok)
	}
	parked := kafka.EventOf(kafka.RecordOf("orders.dlq", &eventkit.Event{ID: "o-3", Headers: append(replay,
		eventkit.Header{Key: consumer.HeaderDeadLetterOrigin, Value: []byte("eventkit.replay.g/0/0")},
		eventkit.Header{Key: consumer.HeaderDeadLetterCause, Value: []byte("bad amount")})}))
	if l, ok := lookback.LinkOf(parked); ok {
		t.Errorf("parked replay linked as %+v, want it archived", l)
	}
}

// A replay origin naming a topic longer than Kafka allows is no replay's:
// the record is archived as it is, and the origin never reaches an index
// (PostgreSQL refuses index entries over about 2.7 kB, which would stop
// the ingest of the whole batch).
func TestLinkOfRefusesImpossibleOrigins(t *testing.T) {
	link := func(topic string) bool {
		ev := kafka.EventOf(kafka.RecordOf("copies", &eventkit.Event{ID: "o-1", Headers: []eventkit.Header{
			{Key: eventkit.HeaderReplayID, Value: []byte("replay-1")},
			{Key: eventkit.HeaderReplayOrigin, Value: []byte(topic + "/0/3")},
		}}))
		_, ok := lookback.LinkOf(ev)
		return ok
	}
	if !link(strings.Repeat("t", 249)) {
		t.Error("origin topic of 249 bytes, the longest Kafka allows: not linked")
	}
	if link(strings.Repeat("t", 250)) || link(strings.Repeat("t", 8000)) {
		t.Error("origin topic longer than Kafka allows: linked, want the record archived")
	}
}
