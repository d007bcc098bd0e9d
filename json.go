package eventkit

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Encodings of the JSON form's key, headers and data.
const (
	EncodingJSON   = "json"
	EncodingBase64 = "base64"
)

// eventJSON is the JSON form of an Event: the shape of lookback's API and of
// `eventkit tail --json`.
type eventJSON struct {
	Topic           string            `json:"topic"`
	Partition       int32             `json:"partition"`
	Offset          int64             `json:"offset"`
	Timestamp       time.Time         `json:"timestamp"`
	Key             *string           `json:"key"`
	KeyEncoding     string            `json:"key_encoding,omitempty"`
	Headers         map[string]string `json:"headers"`
	HeadersEncoding string            `json:"headers_encoding,omitempty"`
	NamesEncoding   string            `json:"header_names_encoding,omitempty"`
	ID              string            `json:"id"`
	Type            string            `json:"type"`
	Source          string            `json:"source"`
	Subject         string            `json:"subject"`
	Time            *time.Time        `json:"time"`
	ContentType     string            `json:"content_type"`
	Data            json.RawMessage   `json:"data"`
	DataEncoding    string            `json:"data_encoding,omitempty"`
	DataTruncated   bool              `json:"data_truncated,omitempty"`
	DataSize        int               `json:"data_size,omitempty"`
	Replay          *replayJSON       `json:"replay,omitempty"`
	DecodeError     string            `json:"decode_error,omitempty"`
}

type replayJSON struct {
	ID     string     `json:"id"`
	Mode   ReplayMode `json:"mode"`
	Origin string     `json:"origin"`
}

// MarshalJSON writes the event as lookback's API shows it, every field of
// its shape present (an absent time is null; see docs/lookback.md). Data is embedded
// as JSON when the value parses as JSON ("data_encoding": "json"), else as
// base64; a null value (a tombstone) is null without a data_encoding, which
// tells it from a value that is the JSON text null. A key or header value that is not UTF-8
// turns its field to base64 and says so in key_encoding/headers_encoding; a
// header name that is not UTF-8 turns every name to base64, and says so in
// header_names_encoding.
// Headers are e.Headers; a repeated header name keeps its last value.
func (e *Event) MarshalJSON() ([]byte, error) { return e.MarshalJSONCut(0) }

// MarshalJSONCut is MarshalJSON with a payload longer than max bytes (0:
// no limit) cut to its first max: "data" holds them in base64 whatever the
// payload is (a cut JSON value is not JSON), "data_truncated" is true and
// "data_size" is the whole payload's size. A list of large events stays
// small enough to be useful.
func (e *Event) MarshalJSONCut(max int) ([]byte, error) {
	j := eventJSON{
		Topic: e.Topic, Partition: e.Partition, Offset: e.Offset, Timestamp: e.Timestamp,
		ID: e.ID, Type: e.Type, Source: e.Source, Subject: e.Subject, ContentType: e.ContentType,
		Headers: make(map[string]string, len(e.Headers)),
	}
	if e.Key != nil {
		k := string(e.Key)
		if !utf8.Valid(e.Key) {
			k, j.KeyEncoding = base64.StdEncoding.EncodeToString(e.Key), EncodingBase64
		}
		j.Key = &k
	}
	// A name that is not UTF-8 would come out of JSON changed, and two
	// such names could become one key: the names go base64 then.
	binary, binaryNames := false, false
	for _, h := range e.Headers {
		binary = binary || !utf8.Valid(h.Value)
		binaryNames = binaryNames || !utf8.ValidString(h.Key)
	}
	for _, h := range e.Headers {
		name, v := h.Key, string(h.Value)
		if binaryNames {
			name = base64.StdEncoding.EncodeToString([]byte(h.Key))
		}
		if binary {
			v = base64.StdEncoding.EncodeToString(h.Value)
		}
		j.Headers[name] = v
	}
	if binary {
		j.HeadersEncoding = EncodingBase64
	}
	if binaryNames {
		j.NamesEncoding = EncodingBase64
	}
	if !e.Time.IsZero() {
		t := e.Time
		j.Time = &t
	}
	if max > 0 && len(e.Data) > max {
		j.Data, _ = json.Marshal(base64.StdEncoding.EncodeToString(e.Data[:max]))
		j.DataEncoding, j.DataTruncated, j.DataSize = EncodingBase64, true, len(e.Data)
	} else {
		j.Data, j.DataEncoding = EncodeData(e.Data)
	}
	if e.Replay != nil {
		j.Replay = &replayJSON{ID: e.Replay.ID, Mode: e.Replay.Mode, Origin: e.Replay.Origin}
	}
	if e.DecodeErr != nil {
		j.DecodeError = e.DecodeErr.Error()
	}
	return json.Marshal(j)
}

// EncodeData returns a record value as it appears in the JSON form: itself
// when it is JSON, else a base64 string; null for a null value.
func EncodeData(v []byte) (json.RawMessage, string) {
	switch {
	case v == nil:
		return json.RawMessage("null"), ""
	case json.Valid(v) && utf8.Valid(v): // JSON text is UTF-8 (RFC 8259), which json.Valid does not check
		return json.RawMessage(v), EncodingJSON
	}
	b, _ := json.Marshal(base64.StdEncoding.EncodeToString(v))
	return b, EncodingBase64
}

// UnmarshalJSON reads the form MarshalJSON writes.
func (e *Event) UnmarshalJSON(b []byte) error {
	var j eventJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*e = Event{
		Topic: j.Topic, Partition: j.Partition, Offset: j.Offset, Timestamp: j.Timestamp,
		ID: j.ID, Type: j.Type, Source: j.Source, Subject: j.Subject, ContentType: j.ContentType,
	}
	if j.Time != nil {
		e.Time = *j.Time
	}
	if j.Key != nil {
		k, err := decodeField(*j.Key, j.KeyEncoding)
		if err != nil {
			return fmt.Errorf("key: %w", err)
		}
		e.Key = k
	}
	for name, v := range j.Headers {
		key, err := decodeField(name, j.NamesEncoding)
		if err != nil {
			return fmt.Errorf("header name %s: %w", name, err)
		}
		val, err := decodeField(v, j.HeadersEncoding)
		if err != nil {
			return fmt.Errorf("header %s: %w", name, err)
		}
		e.Headers = append(e.Headers, Header{Key: string(key), Value: val})
	}
	switch j.DataEncoding {
	case EncodingJSON:
		e.Data = []byte(j.Data)
	case EncodingBase64:
		var s string
		if err := json.Unmarshal(j.Data, &s); err != nil {
			return fmt.Errorf("data: %w", err)
		}
		d, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return fmt.Errorf("data: %w", err)
		}
		e.Data = d
	case "":
		if len(j.Data) > 0 && string(j.Data) != "null" {
			return errors.New("data: no data_encoding")
		}
	default:
		return fmt.Errorf("data_encoding %q: want json or base64", j.DataEncoding)
	}
	if j.Replay != nil {
		r := &Replay{ID: j.Replay.ID, Mode: j.Replay.Mode, Origin: j.Replay.Origin}
		r.OriginTopic, r.OriginPartition, r.OriginOffset, _ = ParseCoordinates(r.Origin)
		e.Replay = r
	}
	if j.DecodeError != "" {
		e.DecodeErr = fmt.Errorf("%w: %s", ErrMalformed, strings.TrimPrefix(j.DecodeError, ErrMalformed.Error()+": "))
	}
	return nil
}

func decodeField(v, encoding string) ([]byte, error) {
	switch encoding {
	case "":
		return []byte(v), nil
	case EncodingBase64:
		return base64.StdEncoding.DecodeString(v)
	}
	return nil, fmt.Errorf("encoding %q: want base64", encoding)
}
