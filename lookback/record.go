package lookback

import (
	"time"

	"github.com/eventkit/eventkit"
	"github.com/eventkit/eventkit/consumer"
)

// NewRecord returns the record of a Kafka record's parts: headers are kept
// whole, in order, and the CloudEvents attributes are decoded from them
// (empty where a header is missing or malformed, so that a malformed
// record is archived as it came). The record aliases key, value and
// headers.
func NewRecord(topic string, partition int32, offset int64, ts time.Time, key, value []byte, headers []eventkit.Header) Record {
	var ev eventkit.Event
	ev.DecodeHeaders(headers)
	return Record{
		Topic: topic, Partition: partition, Offset: offset, Timestamp: ts,
		Key: key, Value: value, Headers: headers,
		ID: ev.ID, Type: ev.Type, Source: ev.Source, Subject: ev.Subject, Time: ev.Time, ContentType: ev.ContentType,
	}
}

// Event returns r as the lookback API shows it: its headers whole, every
// CloudEvents one included, and its attributes. Its JSON form is the API's
// event.
func (r *Record) Event() *eventkit.Event {
	ev := &eventkit.Event{
		Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Timestamp: r.Timestamp.UTC(),
		Key: r.Key, Headers: r.Headers, Data: r.Value,
		ID: r.ID, Type: r.Type, Source: r.Source, Subject: r.Subject, ContentType: r.ContentType,
	}
	if !r.Time.IsZero() {
		ev.Time = r.Time.UTC()
	}
	return ev
}

// LinkOf returns the replay link of a consumed event, and false when the
// event is not a replay or does not name a well-formed origin: such a
// record is archived as a record of its own rather than lost. A replayed
// event parked on a dead-letter topic keeps its replay headers there, but
// the parked copy is a record of its own too: the only one that carries
// why it was parked.
func LinkOf(ev *eventkit.Event) (ReplayLink, bool) {
	r := ev.Replay
	if r == nil || r.ID == "" || parked(ev) {
		return ReplayLink{}, false
	}
	// An origin no Kafka topic can have (a name is 249 bytes at most) is a
	// header from elsewhere, not a replay's: the record is archived as it
	// is, and the database's indexes never see a name of any length.
	if _, _, _, err := eventkit.ParseCoordinates(r.Origin); err != nil || len(r.OriginTopic) > eventkit.MaxTopicLen {
		return ReplayLink{}, false
	}
	return ReplayLink{
		ReplayID: r.ID, Mode: r.Mode,
		OriginTopic: r.OriginTopic, OriginPartition: r.OriginPartition, OriginOffset: r.OriginOffset,
		Topic: ev.Topic, Partition: ev.Partition, Offset: ev.Offset, Timestamp: ev.Timestamp,
	}, true
}

// parked reports whether ev is a dead-letter copy made by the agent.
func parked(ev *eventkit.Event) bool {
	for _, h := range ev.Headers {
		if h.Key == consumer.HeaderDeadLetterOrigin {
			return true
		}
	}
	return false
}
