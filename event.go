package eventkit

import (
	"errors"
	"strconv"
	"strings"
	"time"
)

// Event is one record as the application sees it: the CloudEvents attributes
// decoded from the record's headers, the raw key and value, every other
// header, and where the record was consumed.
//
// Data and Key are the record's bytes as they arrived, never re-encoded.
type Event struct {
	// CloudEvents attributes (https://github.com/cloudevents/spec). ID and
	// Source together identify an event; the idempotency layer keys on them.
	ID          string
	Source      string
	Type        string
	Subject     string
	SpecVersion string
	Time        time.Time
	ContentType string

	Key  []byte
	Data []byte

	// Headers holds every record header that is not one of the binding's
	// own (ce_id, ce_source, ce_type, ce_specversion, ce_time, ce_subject,
	// content-type), in record order: extensions, trace context, replay
	// headers. A binding header whose value could not be decoded stays here
	// verbatim, so that republishing the event loses nothing.
	Headers []Header

	// Topic, Partition and Offset name the record as consumed. Timestamp is
	// the record's own timestamp.
	Topic     string
	Partition int32
	Offset    int64
	Timestamp time.Time

	// Replay is set when the record was republished by a replay; it names
	// the replay and the original record.
	Replay *Replay

	// DecodeErr is set when the record's CloudEvents headers are malformed
	// (a garbage ce_time, an incomplete set of required attributes, values
	// that are not UTF-8). The event is still delivered, with its raw
	// headers in Headers, so that the handler decides: usually
	// eventkit.Warn(ev.DecodeErr). It matches [ErrMalformed].
	DecodeErr error
}

// Header is one record header. It has the same shape as franz-go's
// kgo.RecordHeader.
type Header struct {
	Key   string
	Value []byte
}

// ErrMalformed is matched (errors.Is) by [Event.DecodeErr].
var ErrMalformed = errors.New("malformed event")

// Coordinates returns "topic/partition/offset", the record's address in
// Kafka. It stands in for the ID of records that have none.
func (e *Event) Coordinates() string {
	return FormatCoordinates(e.Topic, e.Partition, e.Offset)
}

// Header returns the value of the first header named key among
// [Event.Headers].
func (e *Event) Header(key string) ([]byte, bool) {
	for _, h := range e.Headers {
		if h.Key == key {
			return h.Value, true
		}
	}
	return nil, false
}

// AttributeOrRaw returns attr, one of e's CloudEvents attributes, or when
// it is empty the value of header, the binding header it comes from, which
// decoding left in Headers because it broke a rule (not UTF-8, a time that
// is not RFC 3339): what the record itself carries, for those who must not
// take a malformed attribute for a missing one.
func (e *Event) AttributeOrRaw(attr, header string) string {
	if attr != "" {
		return attr
	}
	if raw, ok := e.Header(header); ok {
		return string(raw)
	}
	return ""
}

// FormatCoordinates returns "topic/partition/offset".
func FormatCoordinates(topic string, partition int32, offset int64) string {
	return string(AppendCoordinates(make([]byte, 0, len(topic)+24), topic, partition, offset))
}

// AppendCoordinates appends "topic/partition/offset" to b.
func AppendCoordinates(b []byte, topic string, partition int32, offset int64) []byte {
	b = append(b, topic...)
	b = append(b, '/')
	b = strconv.AppendInt(b, int64(partition), 10)
	b = append(b, '/')
	return strconv.AppendInt(b, offset, 10)
}

// ParseCoordinates reads "topic/partition/offset". Kafka topic names cannot
// hold a slash, so the last two fields are split off from the right.
func ParseCoordinates(s string) (topic string, partition int32, offset int64, err error) {
	j := strings.LastIndexByte(s, '/')
	if j < 0 {
		return "", 0, 0, errors.New("coordinates: want topic/partition/offset")
	}
	i := strings.LastIndexByte(s[:j], '/')
	if i <= 0 {
		return "", 0, 0, errors.New("coordinates: want topic/partition/offset")
	}
	p, err := strconv.ParseInt(s[i+1:j], 10, 32)
	if err != nil || p < 0 {
		return "", 0, 0, errors.New("coordinates: bad partition")
	}
	o, err := strconv.ParseInt(s[j+1:], 10, 64)
	if err != nil || o < 0 {
		return "", 0, 0, errors.New("coordinates: bad offset")
	}
	return s[:i], int32(p), o, nil
}

// ReplayMode says how the idempotency layer treats a replayed event.
type ReplayMode string

const (
	// Reprocess makes a replayed event count as new: it is processed once
	// more even where the original was done. The default for a replay to a
	// consumer group.
	Reprocess ReplayMode = "reprocess"
	// Deduplicate keeps a replayed event a no-op wherever the original was
	// done. The default for a replay to a topic, which every group sees.
	Deduplicate ReplayMode = "deduplicate"
)

// Replay describes a record republished by a replay.
type Replay struct {
	ID   string
	Mode ReplayMode
	// Origin is "topic/partition/offset" of the original record;
	// OriginTopic, OriginPartition and OriginOffset are its parts (zero when
	// Origin does not parse).
	Origin          string
	OriginTopic     string
	OriginPartition int32
	OriginOffset    int64
}
