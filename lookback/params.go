package lookback

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/eventkit/eventkit/internal/strictjson"
)

// The wire forms of a query: the parameters of GET /api/v1/events and the
// JSON filter of POST /api/v1/replays. Both are strict: an unknown or
// repeated parameter, an unknown JSON field, a malformed time or number is
// an error that wraps ErrBadQuery and says what is wrong, so that a typo in
// a filter never silently widens it to the whole archive.

const (
	// MaxHeaderMatches bounds the header filters of one query; each one
	// costs the store a lookup.
	MaxHeaderMatches = 16
	// MaxIDs bounds the ids of one filter.
	MaxIDs = 1000
	// maxCursor bounds a cursor's length; stores make short ones.
	maxCursor = 1024
	// maxValue bounds any other single value.
	maxValue = 4096
)

// queryParams are the parameters ParseQuery takes, each at most once except
// header.
var queryParams = []string{"topic", "partition", "key", "type", "id", "subject", "source", "from", "to", "header", "limit", "cursor", "order"}

// ParseQuery reads the query parameters of GET /api/v1/events: topic,
// partition, key, type, id, subject, source, from and to (RFC 3339, both
// inclusive), header=NAME:VALUE (repeatable, all must match), limit (1 to
// MaxLimit, default DefaultLimit), cursor and order (asc or desc, default
// desc). An empty value is the same as an absent parameter, so that a form
// submitted with blank fields means no filter on them.
func ParseQuery(v url.Values) (Query, error) {
	for name, vals := range v {
		if !slices.Contains(queryParams, name) {
			return Query{}, badQuery("unknown parameter %q (want one of %s)", name, strings.Join(queryParams, ", "))
		}
		if name != "header" && len(vals) > 1 {
			return Query{}, badQuery("parameter %q given %d times, want once", name, len(vals))
		}
		for _, s := range vals {
			if err := checkValue(name, s, maxValue); err != nil {
				return Query{}, err
			}
		}
	}
	q := Query{Limit: DefaultLimit}
	f := &q.Filter
	f.Topic, f.Type, f.ID = v.Get("topic"), v.Get("type"), v.Get("id")
	f.Subject, f.Source = v.Get("subject"), v.Get("source")
	if k := v.Get("key"); k != "" {
		f.Key = []byte(k)
	}
	if s := v.Get("partition"); s != "" {
		p, err := parsePartition(s)
		if err != nil {
			return Query{}, err
		}
		f.Partition = &p
	}
	var err error
	if f.From, err = parseTime("from", v.Get("from")); err != nil {
		return Query{}, err
	}
	if f.To, err = parseTime("to", v.Get("to")); err != nil {
		return Query{}, err
	}
	for _, h := range v["header"] {
		if h == "" {
			continue
		}
		name, value, ok := strings.Cut(h, ":")
		if !ok || name == "" {
			return Query{}, badQuery("header %q: want NAME:VALUE", h)
		}
		f.Headers = append(f.Headers, HeaderMatch{Name: name, Value: []byte(value)})
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxLimit {
			return Query{}, badQuery("limit %q: want a number from 1 to %d", s, MaxLimit)
		}
		q.Limit = n
	}
	switch s := v.Get("order"); s {
	case "", "desc":
		q.Order = Desc
	case "asc":
		q.Order = Asc
	default:
		return Query{}, badQuery("order %q: want asc or desc", s)
	}
	q.Cursor = v.Get("cursor")
	if len(q.Cursor) > maxCursor {
		return Query{}, badQuery("cursor: %d bytes, at most %d", len(q.Cursor), maxCursor)
	}
	if err := f.checkHeaders(); err != nil {
		return Query{}, err
	}
	if err := q.Validate(); err != nil { // also decodes the cursor
		return Query{}, err
	}
	return q, nil
}

// Values is the inverse of ParseQuery: the parameters that select q. The
// UI builds its paging links with it.
func (q Query) Values() url.Values {
	v := url.Values{}
	set := func(name, s string) {
		if s != "" {
			v.Set(name, s)
		}
	}
	f := q.Filter
	set("topic", f.Topic)
	if f.Partition != nil {
		v.Set("partition", strconv.FormatInt(int64(*f.Partition), 10))
	}
	set("key", string(f.Key))
	set("type", f.Type)
	set("id", f.ID)
	set("subject", f.Subject)
	set("source", f.Source)
	if !f.From.IsZero() {
		v.Set("from", f.From.Format(time.RFC3339Nano))
	}
	if !f.To.IsZero() {
		v.Set("to", f.To.Format(time.RFC3339Nano))
	}
	for _, h := range f.Headers {
		v.Add("header", h.Name+":"+string(h.Value))
	}
	if q.Limit != 0 && q.Limit != DefaultLimit {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if q.Order == Asc {
		v.Set("order", "asc")
	}
	set("cursor", q.Cursor)
	return v
}

// FilterJSON is the JSON form of a [Filter], as POST /api/v1/replays takes
// it: {"topic", "partition", "key", "type", "id", "subject", "source",
// "from", "to", "headers": {name: value}, "ids": [...]}. Decode it with
// [DecodeFilter], or as part of a larger body decoded as strictly, then
// call [FilterJSON.Filter].
//
// A header name whose records must carry two values (two headers of one
// name, as the query parameter header=NAME:VALUE repeated says) takes a
// list: "headers": {"tenant": ["a", "b"]}.
type FilterJSON struct {
	Topic     string                  `json:"topic,omitempty"`
	Partition *int32                  `json:"partition,omitempty"`
	Key       *string                 `json:"key,omitempty"`
	Type      string                  `json:"type,omitempty"`
	ID        string                  `json:"id,omitempty"`
	IDs       []string                `json:"ids,omitempty"`
	Subject   string                  `json:"subject,omitempty"`
	Source    string                  `json:"source,omitempty"`
	From      string                  `json:"from,omitempty"`
	To        string                  `json:"to,omitempty"`
	Headers   map[string]HeaderValues `json:"headers,omitempty"`
}

// HeaderValues are the values a filter matches for one header name, every
// one of them: a JSON string for one value, the contract's form, or a list
// of strings.
type HeaderValues []string

// UnmarshalJSON reads a string or a non-empty list of strings.
func (v *HeaderValues) UnmarshalJSON(data []byte) error {
	if string(bytes.TrimSpace(data)) == "null" { // would read as the empty value
		return errors.New("a header's value: want a string or a non-empty list of strings, not null")
	}
	var one string
	if err := json.Unmarshal(data, &one); err == nil {
		*v = HeaderValues{one}
		return nil
	}
	var list []*string // a null in the list stays nil, to be refused
	if err := json.Unmarshal(data, &list); err != nil || len(list) == 0 || slices.Contains(list, nil) {
		return errors.New("a header's value: want a string or a non-empty list of strings")
	}
	*v = make(HeaderValues, len(list))
	for i, s := range list {
		(*v)[i] = *s
	}
	return nil
}

// MarshalJSON writes one value as a string, more as a list.
func (v HeaderValues) MarshalJSON() ([]byte, error) {
	if len(v) == 1 {
		return json.Marshal(v[0])
	}
	return json.Marshal([]string(v))
}

// DecodeFilter reads one JSON filter from data, refusing unknown fields,
// names in another case or given twice, and trailing data.
func DecodeFilter(data []byte) (Filter, error) {
	var fj FilterJSON
	if err := strictjson.Decode(bytes.NewReader(data), &fj); err != nil {
		if err == io.EOF {
			err = errors.New("want a JSON object")
		}
		return Filter{}, badQuery("filter: %v", err)
	}
	return fj.Filter()
}

// Filter checks fj and returns the filter it describes. A key given as ""
// selects records whose key is empty; an absent key selects every key.
func (fj FilterJSON) Filter() (Filter, error) {
	f := Filter{
		Topic: fj.Topic, Partition: fj.Partition, Type: fj.Type, ID: fj.ID,
		Subject: fj.Subject, Source: fj.Source, IDs: fj.IDs,
	}
	if fj.Key != nil {
		f.Key = []byte(*fj.Key)
	}
	var err error
	if f.From, err = parseTime("from", fj.From); err != nil {
		return Filter{}, err
	}
	if f.To, err = parseTime("to", fj.To); err != nil {
		return Filter{}, err
	}
	names := make([]string, 0, len(fj.Headers))
	for name := range fj.Headers {
		names = append(names, name)
	}
	slices.Sort(names) // a stable order: the same filter gives the same query
	for _, name := range names {
		if name == "" {
			return Filter{}, badQuery("headers: empty header name")
		}
		for _, value := range fj.Headers[name] {
			f.Headers = append(f.Headers, HeaderMatch{Name: name, Value: []byte(value)})
		}
	}
	for _, s := range []struct{ name, v string }{
		{"topic", f.Topic}, {"type", f.Type}, {"id", f.ID}, {"subject", f.Subject}, {"source", f.Source},
	} {
		if err := checkValue(s.name, s.v, maxValue); err != nil {
			return Filter{}, err
		}
	}
	if len(f.IDs) > MaxIDs {
		return Filter{}, badQuery("ids: %d given, at most %d", len(f.IDs), MaxIDs)
	}
	for _, id := range f.IDs {
		if err := checkValue("ids", id, maxValue); err != nil {
			return Filter{}, err
		}
	}
	if err := f.checkHeaders(); err != nil {
		return Filter{}, err
	}
	if err := f.Validate(); err != nil {
		return Filter{}, err
	}
	return f, nil
}

// JSON returns the JSON form of f, the inverse of FilterJSON.Filter for a
// filter whose key and headers are UTF-8 (see [Filter.CheckJSON]). Audit
// entries record filters in this form.
func (f Filter) JSON() FilterJSON {
	fj := FilterJSON{
		Topic: f.Topic, Partition: f.Partition, Type: f.Type, ID: f.ID, IDs: f.IDs,
		Subject: f.Subject, Source: f.Source,
	}
	if f.Key != nil {
		k := string(f.Key)
		fj.Key = &k
	}
	if !f.From.IsZero() {
		fj.From = f.From.Format(time.RFC3339Nano)
	}
	if !f.To.IsZero() {
		fj.To = f.To.Format(time.RFC3339Nano)
	}
	if len(f.Headers) > 0 {
		fj.Headers = make(map[string]HeaderValues, len(f.Headers))
		for _, h := range f.Headers {
			fj.Headers[h.Name] = append(fj.Headers[h.Name], string(h.Value))
		}
	}
	return fj
}

// CheckJSON reports whether f's JSON form selects exactly what f selects: a
// JSON string holds UTF-8 text only, so a field that is not UTF-8 would be
// sent changed, and the filter would match other records.
func (f Filter) CheckJSON() error {
	texts := [][2]string{{"topic", f.Topic}, {"key", string(f.Key)}, {"type", f.Type}, {"id", f.ID},
		{"subject", f.Subject}, {"source", f.Source}}
	for _, id := range f.IDs {
		texts = append(texts, [2]string{"ids", id})
	}
	for _, h := range f.Headers { // name and value apart: two halves may join into a character
		texts = append(texts, [2]string{"header name", h.Name}, [2]string{"header " + strconv.Quote(h.Name), string(h.Value)})
	}
	for _, t := range texts {
		if !utf8.ValidString(t[1]) {
			return badQuery("%s: not UTF-8, which the JSON form of a filter cannot carry", t[0])
		}
	}
	return nil
}

// checkHeaders bounds the header filters, which both wire forms take.
func (f *Filter) checkHeaders() error {
	if len(f.Headers) > MaxHeaderMatches {
		return badQuery("%d header filters, at most %d", len(f.Headers), MaxHeaderMatches)
	}
	return nil
}

// auditParams are the parameters ParseAuditQuery takes.
var auditParams = []string{"actor", "action", "limit", "before"}

// ParseAuditQuery reads the query parameters of GET /api/v1/audit: actor,
// action, limit (1 to MaxLimit, default DefaultLimit) and before (an entry
// id: the page continues below it).
func ParseAuditQuery(v url.Values) (AuditQuery, error) {
	for name, vals := range v {
		if !slices.Contains(auditParams, name) {
			return AuditQuery{}, badQuery("unknown parameter %q (want one of %s)", name, strings.Join(auditParams, ", "))
		}
		if len(vals) > 1 {
			return AuditQuery{}, badQuery("parameter %q given %d times, want once", name, len(vals))
		}
		if err := checkValue(name, vals[0], maxValue); err != nil {
			return AuditQuery{}, err
		}
	}
	q := AuditQuery{Actor: v.Get("actor"), Action: v.Get("action"), Limit: DefaultLimit}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxLimit {
			return AuditQuery{}, badQuery("limit %q: want a number from 1 to %d", s, MaxLimit)
		}
		q.Limit = n
	}
	if s := v.Get("before"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 1 {
			return AuditQuery{}, badQuery("before %q: want an entry id, 1 or more", s)
		}
		q.Before = n
	}
	return q, nil
}

// ParseCoordinates reads a record's coordinates as they appear in a path,
// /events/{topic}/{partition}/{offset}.
func ParseCoordinates(topic, partition, offset string) (string, int32, int64, error) {
	if topic == "" {
		return "", 0, 0, badQuery("empty topic")
	}
	if err := checkValue("topic", topic, maxValue); err != nil {
		return "", 0, 0, err
	}
	p, err := parsePartition(partition)
	if err != nil {
		return "", 0, 0, err
	}
	o, err := strconv.ParseInt(offset, 10, 64)
	if err != nil || o < 0 {
		return "", 0, 0, badQuery("offset %q: want a number, 0 or more", offset)
	}
	return topic, p, o, nil
}

func parsePartition(s string) (int32, error) {
	p, err := strconv.ParseInt(s, 10, 32)
	if err != nil || p < 0 {
		return 0, badQuery("partition %q: want a number, 0 or more", s)
	}
	return int32(p), nil
}

func parseTime(name, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, badQuery("%s %q: want an RFC 3339 time such as 2006-01-02T15:04:05Z", name, s)
	}
	if t.IsZero() {
		// To a Filter the zero time is no bound at all, so a "to" of
		// 0001-01-01T00:00:00Z would select everything. A nanosecond later
		// selects what that instant does: times that early are stored at
		// the start of what Unix nanoseconds hold.
		t = t.Add(time.Nanosecond)
	}
	return t, nil
}

// checkValue refuses values no store should see: too long, not UTF-8, or
// with a NUL byte, which some databases cannot hold in text.
func checkValue(name, s string, max int) error {
	switch {
	case len(s) > max:
		return badQuery("%s: %d bytes, at most %d", name, len(s), max)
	case !utf8.ValidString(s):
		return badQuery("%s: not UTF-8", name)
	case strings.IndexByte(s, 0) >= 0:
		return badQuery("%s: contains a NUL byte", name)
	}
	return nil
}

func badQuery(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadQuery, fmt.Sprintf(format, args...))
}
