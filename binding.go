package eventkit

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"
)

// Header names of the CloudEvents Kafka protocol binding, binary mode
// (https://github.com/cloudevents/spec/blob/main/cloudevents/bindings/kafka-protocol-binding.md).
const (
	HeaderID          = "ce_id"
	HeaderSource      = "ce_source"
	HeaderType        = "ce_type"
	HeaderSpecVersion = "ce_specversion"
	HeaderTime        = "ce_time"
	HeaderSubject     = "ce_subject"
	HeaderContentType = "content-type"
)

// Headers that eventkit itself adds to replayed records.
const (
	HeaderReplayID     = "eventkit-replay-id"
	HeaderReplayMode   = "eventkit-replay-mode"
	HeaderReplayOrigin = "eventkit-replay-origin"
	// HeaderReplayPrefix starts every replay header; a replay drops earlier
	// ones before it adds its own.
	HeaderReplayPrefix = "eventkit-replay-"
	// HeaderDeadLetterPrefix starts the headers the agent adds to a record
	// it parks on a dead-letter topic (consumer.HeaderDeadLetterOrigin and
	// the rest). A replay drops them: a copy sent again is not parked.
	HeaderDeadLetterPrefix = "eventkit-dlq-"
)

// TraceHeaders are the headers of a trace context: W3C's, and the
// CloudEvents distributed tracing extension as the Kafka binding writes it
// (ce_traceparent, ce_tracestate). A replay drops them, so that a replayed
// event starts a trace of its own, and a Publisher that writes its
// caller's trace drops those the event carried.
var TraceHeaders = []string{"traceparent", "tracestate", "baggage", "ce_traceparent", "ce_tracestate"}

// SpecVersion is the CloudEvents version eventkit writes.
const SpecVersion = "1.0"

// Binding attribute slots, in the order DecodeHeaders fills them.
const (
	slotID = iota
	slotSource
	slotType
	slotSpecVersion
	slotSubject
	slotContentType
	slotTime
	numSlots
)

func bindingSlot(key string) int {
	switch key {
	case HeaderID:
		return slotID
	case HeaderSource:
		return slotSource
	case HeaderType:
		return slotType
	case HeaderSpecVersion:
		return slotSpecVersion
	case HeaderSubject:
		return slotSubject
	case HeaderContentType:
		return slotContentType
	case HeaderTime:
		return slotTime
	}
	return -1
}

// IsBindingHeader reports whether key is one of the CloudEvents binding's own
// headers, which [Event] holds as fields rather than in Headers.
func IsBindingHeader(key string) bool { return bindingSlot(key) >= 0 }

// DecodeHeaders fills e's CloudEvents attributes, Headers, Replay and
// DecodeErr from a record's headers, replacing what e held in them.
//
// A record without any ce_ header is not a CloudEvent and is not malformed:
// its attributes stay empty. A record that has some must have ce_id,
// ce_source, ce_type and ce_specversion "1.0"; every value must be UTF-8 and
// ce_time must be RFC 3339. A header that breaks a rule stays in Headers and
// is named in DecodeErr; decoding never fails outright.
func (e *Event) DecodeHeaders(hs []Header) {
	e.ID, e.Source, e.Type, e.SpecVersion, e.Subject, e.ContentType = "", "", "", "", "", ""
	e.Time, e.Headers, e.Replay, e.DecodeErr = time.Time{}, nil, nil, nil

	// One pass finds the binding headers; their strings then share a single
	// allocation, because this runs for every record the agent consumes.
	var (
		at       [numSlots]int
		size     int
		others   int
		problems []string
		sawCE    bool
	)
	for i := range at {
		at[i] = -1
	}
	for i, h := range hs {
		s := bindingSlot(h.Key)
		if s < 0 || at[s] >= 0 { // a repeated binding header is kept as a plain one
			others++
			continue
		}
		if s != slotContentType {
			sawCE = true
		}
		if !utf8.Valid(h.Value) {
			problems = append(problems, h.Key+": not UTF-8")
			others++
			continue
		}
		at[s] = i
		if s != slotTime {
			size += len(h.Value)
		}
	}

	var arena []byte
	if size > 0 {
		arena = make([]byte, 0, size)
	}
	str := func(s int) string {
		i := at[s]
		if i < 0 || len(hs[i].Value) == 0 {
			return ""
		}
		start := len(arena)
		arena = append(arena, hs[i].Value...)
		// The arena is never written again, so the string stays immutable.
		return unsafe.String(&arena[start], len(arena)-start)
	}
	e.ID = str(slotID)
	e.Source = str(slotSource)
	e.Type = str(slotType)
	e.SpecVersion = str(slotSpecVersion)
	e.Subject = str(slotSubject)
	e.ContentType = str(slotContentType)

	if i := at[slotTime]; i >= 0 {
		t, err := time.Parse(time.RFC3339Nano, string(hs[i].Value))
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s %q: not RFC 3339", HeaderTime, truncate(hs[i].Value, 64)))
			at[slotTime] = -1
			others++
		} else {
			e.Time = t
		}
	}

	if sawCE {
		for _, req := range [...]struct {
			slot int
			name string
		}{{slotID, HeaderID}, {slotSource, HeaderSource}, {slotType, HeaderType}, {slotSpecVersion, HeaderSpecVersion}} {
			if at[req.slot] < 0 || len(hs[at[req.slot]].Value) == 0 {
				if !hasProblem(problems, req.name) {
					problems = append(problems, req.name+": missing")
				}
			}
		}
		if e.SpecVersion != "" && e.SpecVersion != SpecVersion {
			problems = append(problems, fmt.Sprintf("%s %q: want %q", HeaderSpecVersion, truncate([]byte(e.SpecVersion), 16), SpecVersion))
		}
	}

	if others > 0 {
		e.Headers = make([]Header, 0, others)
		for i, h := range hs {
			if s := bindingSlot(h.Key); s >= 0 && at[s] == i {
				continue
			}
			e.Headers = append(e.Headers, h)
		}
		e.Replay = decodeReplay(e.Headers)
	}
	if len(problems) > 0 {
		e.DecodeErr = fmt.Errorf("%w: %s", ErrMalformed, strings.Join(problems, "; "))
	}
}

func hasProblem(problems []string, header string) bool {
	for _, p := range problems {
		if strings.HasPrefix(p, header) {
			return true
		}
	}
	return false
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}

func decodeReplay(hs []Header) *Replay {
	var r *Replay
	for _, h := range hs {
		if !strings.HasPrefix(h.Key, HeaderReplayPrefix) {
			continue
		}
		if r == nil {
			r = new(Replay)
		}
		switch h.Key {
		case HeaderReplayID:
			r.ID = string(h.Value)
		case HeaderReplayMode:
			r.Mode = ReplayMode(h.Value)
		case HeaderReplayOrigin:
			r.Origin = string(h.Value)
			r.OriginTopic, r.OriginPartition, r.OriginOffset, _ = ParseCoordinates(r.Origin)
		}
	}
	if r != nil && r.ID == "" {
		return nil // stray headers without a replay id do not make a replay
	}
	return r
}

// EncodeHeaders appends the record headers that carry e: the binding headers
// of its non-empty attributes (ce_specversion defaults to "1.0" when the
// event has an ID), then e.Headers as they are. Headers should not repeat an
// attribute that is set; DecodeHeaders never makes it so.
func (e *Event) EncodeHeaders(dst []Header) []Header {
	add := func(key, v string) {
		if v != "" {
			dst = append(dst, Header{Key: key, Value: []byte(v)})
		}
	}
	spec := e.SpecVersion
	if spec == "" && e.ID != "" {
		spec = SpecVersion
	}
	add(HeaderID, e.ID)
	add(HeaderSource, e.Source)
	add(HeaderType, e.Type)
	add(HeaderSpecVersion, spec)
	if !e.Time.IsZero() {
		add(HeaderTime, e.Time.UTC().Format(time.RFC3339Nano))
	}
	add(HeaderSubject, e.Subject)
	add(HeaderContentType, e.ContentType)
	return append(dst, e.Headers...)
}
