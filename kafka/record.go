package kafka

import (
	"unsafe"

	"github.com/eventkit/eventkit"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Compile-time proof that the two header types share one layout, which
// headersOf relies on.
var _ = [1]struct{}{}[unsafe.Sizeof(kgo.RecordHeader{})-unsafe.Sizeof(eventkit.Header{})]
var _ = eventkit.Header(kgo.RecordHeader{})

// headersOf views a record's headers as eventkit headers without copying:
// the agent decodes every record, and a copy would cost an allocation each.
func headersOf(hs []kgo.RecordHeader) []eventkit.Header {
	if len(hs) == 0 {
		return nil
	}
	return unsafe.Slice((*eventkit.Header)(unsafe.Pointer(unsafe.SliceData(hs))), len(hs))
}

// DecodeRecord fills ev from a consumed record through the CloudEvents Kafka
// binary binding. Key and Data alias the record's bytes. It never fails: a
// malformed record sets ev.DecodeErr and keeps its raw headers.
func DecodeRecord(r *kgo.Record, ev *eventkit.Event) {
	ev.DecodeHeaders(headersOf(r.Headers))
	ev.Key = r.Key
	ev.Data = r.Value
	ev.Topic = r.Topic
	ev.Partition = r.Partition
	ev.Offset = r.Offset
	ev.Timestamp = r.Timestamp
}

// EventOf returns the event carried by a consumed record.
func EventOf(r *kgo.Record) *eventkit.Event {
	ev := new(eventkit.Event)
	DecodeRecord(r, ev)
	return ev
}

// RecordOf returns a record that carries ev to topic through the CloudEvents
// Kafka binary binding. The record's timestamp is left for the client to set.
func RecordOf(topic string, ev *eventkit.Event) *kgo.Record {
	hs := ev.EncodeHeaders(make([]eventkit.Header, 0, 7+len(ev.Headers)))
	return &kgo.Record{
		Topic:   topic,
		Key:     ev.Key,
		Value:   ev.Data,
		Headers: *(*[]kgo.RecordHeader)(unsafe.Pointer(&hs)),
	}
}
