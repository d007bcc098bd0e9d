package lookback_test

import (
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
