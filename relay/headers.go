package relay

import (
	"context"
	"encoding/base64"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/eventkit/eventkit"
	"github.com/eventkit/eventkit/consumer"
	"github.com/eventkit/eventkit/kafka"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Request headers eventkit adds next to the CloudEvents ones, and the
// response header the endpoint answers with.
const (
	HeaderTopic        = "Eventkit-Topic"     // topic the record was consumed from
	HeaderPartition    = "Eventkit-Partition" // its partition
	HeaderOffset       = "Eventkit-Offset"    // its offset
	HeaderKey          = "Eventkit-Key"       // the record key; absent when it has none
	HeaderKeyEncoding  = "Eventkit-Key-Encoding"
	HeaderAttempt      = "Eventkit-Attempt" // 1 on first delivery, 2 on the first retry, …
	HeaderReplayID     = "Eventkit-Replay-Id"
	HeaderReplayOrigin = "Eventkit-Replay-Origin" // topic/partition/offset of the original record
	HeaderReplayMode   = "Eventkit-Replay-Mode"   // reprocess or deduplicate
	// HeaderFlag is the response header that decides the outcome: warn,
	// retry or kill (any case); any other value counts as retry.
	HeaderFlag = "Eventkit-Flag"
)

// KeyEncodingBase64 is the value of Eventkit-Key-Encoding when the key is
// sent base64 (standard alphabet, padded) because it is not printable ASCII.
const KeyEncodingBase64 = "base64"

// DefaultType is the ce-type of a record that carries none: a CloudEvents
// receiver rejects an event without a type, and a record that is not a
// CloudEvent has nothing better to offer.
const DefaultType = "eventkit.record"

// DefaultSource returns the ce-source of a record from topic that carries
// none: "kafka://" + topic. Together with the ce-id that stands in for a
// missing id (the record's coordinates) it names the record uniquely, as
// the CloudEvents spec asks of source and id.
func DefaultSource(topic string) string { return "kafka://" + topic }

// Attribute names the relay sets itself; a record header of the same name
// is not forwarded as an extension, so that it cannot contradict them.
var reserved = map[string]bool{
	"id": true, "source": true, "type": true, "specversion": true,
	"time": true, "subject": true, "datacontenttype": true,
}

// header builds the request headers that carry ev in CloudEvents HTTP binary
// mode, plus eventkit's own.
func header(ctx context.Context, ev *eventkit.Event) http.Header {
	h := make(http.Header, 12+len(ev.Headers))

	// A replayed record that has no id stands for the original, so it takes
	// the original's coordinates: a receiver that deduplicates on source and
	// id sees the same event again, not a new one.
	topic, coords := ev.Topic, ev.Coordinates()
	if r := ev.Replay; r != nil && r.OriginTopic != "" {
		topic, coords = r.OriginTopic, r.Origin
	}
	// Attributes that decoding refused go out as the record holds them,
	// percent-encoded, so that the application sees them and can flag
	// them; only those the record does not carry take a stand-in.
	id, source := ev.AttributeOrRaw(ev.ID, eventkit.HeaderID), ev.AttributeOrRaw(ev.Source, eventkit.HeaderSource)
	typ, spec := ev.AttributeOrRaw(ev.Type, eventkit.HeaderType), ev.AttributeOrRaw(ev.SpecVersion, eventkit.HeaderSpecVersion)
	if id == "" {
		id = coords
	}
	if source == "" {
		source = DefaultSource(topic)
	}
	if typ == "" {
		typ = DefaultType
	}
	if spec == "" {
		spec = eventkit.SpecVersion
	}
	h.Set("ce-id", percentEncode(id))
	h.Set("ce-source", percentEncode(source))
	h.Set("ce-type", percentEncode(typ))
	h.Set("ce-specversion", percentEncode(spec))
	if !ev.Time.IsZero() {
		h.Set("ce-time", ev.Time.Format(time.RFC3339Nano))
	} else if t := ev.AttributeOrRaw("", eventkit.HeaderTime); t != "" {
		h.Set("ce-time", percentEncode(t))
	}
	if subject := ev.AttributeOrRaw(ev.Subject, eventkit.HeaderSubject); subject != "" {
		h.Set("ce-subject", percentEncode(subject))
	}
	if ev.ContentType != "" && printable(ev.ContentType) {
		h.Set("Content-Type", ev.ContentType)
	}

	h.Set(HeaderTopic, ev.Topic)
	h.Set(HeaderPartition, strconv.FormatInt(int64(ev.Partition), 10))
	h.Set(HeaderOffset, strconv.FormatInt(ev.Offset, 10))
	if len(ev.Key) > 0 {
		if k := string(ev.Key); printable(k) {
			h.Set(HeaderKey, k)
		} else {
			h.Set(HeaderKey, base64.StdEncoding.EncodeToString(ev.Key))
			h.Set(HeaderKeyEncoding, KeyEncodingBase64)
		}
	}
	h.Set(HeaderAttempt, strconv.Itoa(max(consumer.Attempt(ctx), 1)))
	if r := ev.Replay; r != nil {
		h.Set(HeaderReplayID, percentEncode(r.ID))
		if r.Origin != "" {
			h.Set(HeaderReplayOrigin, percentEncode(r.Origin))
		}
		if r.Mode != "" {
			h.Set(HeaderReplayMode, percentEncode(string(r.Mode)))
		}
	}

	// The record's trace context as the agent reads it (kafka.RecordCarrier):
	// W3C's headers, else the CloudEvents extension's, a tracestate always
	// with its own traceparent.
	rc := &kafka.RecordCarrier{Headers: make([]kgo.RecordHeader, len(ev.Headers))}
	for i, x := range ev.Headers {
		rc.Headers[i] = kgo.RecordHeader{Key: x.Key, Value: x.Value}
	}
	for _, name := range []string{"traceparent", "tracestate", "baggage"} {
		if v := rc.Get(name); v != "" && printable(v) {
			h.Set(name, v)
		}
	}
	for _, x := range ev.Headers {
		forward(h, x)
	}
	return h
}

// forward adds one record header to the request, if it has a place there.
// A header becomes a CloudEvents extension, ce-<name>, when its name
// (without the Kafka binding's "ce_" prefix) is a valid extension name.
// Trace context, which header adds by itself, and everything else are
// dropped: an HTTP receiver could not tell them from a header of the
// request. The first of repeated headers wins.
func forward(h http.Header, x eventkit.Header) {
	if strings.HasPrefix(x.Key, eventkit.HeaderReplayPrefix) {
		return // sent as Eventkit-Replay-*
	}
	name := strings.TrimPrefix(x.Key, "ce_")
	if slices.Contains(eventkit.TraceHeaders, name) {
		return
	}
	if !extensionName(name) || reserved[name] {
		return
	}
	if k := "ce-" + name; h.Get(k) == "" {
		h.Set(k, percentEncode(string(x.Value)))
	}
}

// extensionName reports whether s is a CloudEvents attribute name: lower-case
// ASCII letters and digits only.
func extensionName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// printable reports whether s can travel as an HTTP header value unchanged:
// printable ASCII (U+0020–U+007E) without leading or trailing spaces, which
// a receiver would strip.
func printable(s string) bool {
	if s != "" && (s[0] == ' ' || s[len(s)-1] == ' ') {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' || c > '~' {
			return false
		}
	}
	return true
}

// percentEncode encodes a ce-* header value as the CloudEvents HTTP binding
// requires (section 3.1.3.2): space, '"', '%' and every byte outside
// printable ASCII after UTF-8 encoding become %XX. net/http refuses control
// bytes in header values, so without it one odd attribute would fail every
// delivery of its event.
func percentEncode(s string) string {
	n := 0
	for i := 0; i < len(s); i++ {
		if mustEscape(s[i]) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	const hex = "0123456789ABCDEF"
	b := make([]byte, 0, len(s)+2*n)
	for i := 0; i < len(s); i++ {
		if c := s[i]; mustEscape(c) {
			b = append(b, '%', hex[c>>4], hex[c&0xf])
		} else {
			b = append(b, c)
		}
	}
	return string(b)
}

func mustEscape(c byte) bool { return c <= ' ' || c > '~' || c == '"' || c == '%' }
