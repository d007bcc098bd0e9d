// Package archivesql is what the SQL archive stores (sqlite, postgres)
// share: the columns of an archived record, the encoding of its headers,
// which headers go to the header index, and the WHERE and ORDER BY clauses
// of a query, written once for both dialects.
//
// Both schemas have the same tables:
//
//	lookback_events      one row per record: seq, topic, part, off, ts, key, value, headers,
//	                     ce_id, ce_type, ce_source, ce_subject, ce_time, content_type, specversion
//	lookback_headers     (seq, name, value) for the headers no column holds, for header filters
//	lookback_partitions  (topic, part, count): the archived records per partition
//	lookback_links       replayed records, keyed by their own coordinates
//	lookback_audit       the audit log
//
// Times are Unix nanoseconds in a 64-bit integer in both databases, so
// that a cursor's timestamp compares exactly (PostgreSQL's timestamptz
// keeps microseconds only).
package archivesql

import (
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/eventkit/eventkit"
	"github.com/eventkit/eventkit/lookback"
)

// EncodeHeaders packs headers in record order: a count, then each name and
// value with its length (a value's length is stored plus one, zero meaning
// a nil value).
func EncodeHeaders(hs []eventkit.Header) []byte {
	if len(hs) == 0 {
		return nil
	}
	n := binary.MaxVarintLen32
	for _, h := range hs {
		n += 2*binary.MaxVarintLen32 + len(h.Key) + len(h.Value)
	}
	b := make([]byte, 0, n)
	b = binary.AppendUvarint(b, uint64(len(hs)))
	for _, h := range hs {
		b = binary.AppendUvarint(b, uint64(len(h.Key)))
		b = append(b, h.Key...)
		if h.Value == nil {
			b = binary.AppendUvarint(b, 0)
			continue
		}
		b = binary.AppendUvarint(b, uint64(len(h.Value))+1)
		b = append(b, h.Value...)
	}
	return b
}

var errHeaders = errors.New("archive: corrupt headers column")

// DecodeHeaders unpacks what EncodeHeaders packed. The headers' values
// share b's array.
func DecodeHeaders(b []byte) ([]eventkit.Header, error) {
	hs, _, err := appendHeaders(nil, b)
	return hs, err
}

// appendHeaders decodes b's headers at the end of buf, in a new array of
// at least headerChunk headers when buf has no room left, and returns them
// and buf after them: a page's records share a few arrays of headers.
func appendHeaders(buf []eventkit.Header, b []byte) (hs, rest []eventkit.Header, err error) {
	if len(b) == 0 {
		return nil, buf, nil
	}
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)) {
		return nil, buf, errHeaders
	}
	b = b[k:]
	if uint64(cap(buf)-len(buf)) < n {
		buf = make([]eventkit.Header, 0, max(headerChunk, int(n)))
	}
	start := len(buf)
	buf = buf[:start+int(n)]
	hs = buf[start:len(buf):len(buf)]
	clear(hs)
	for i := range hs {
		l, k := binary.Uvarint(b)
		if k <= 0 || l > uint64(len(b)-k) {
			return nil, buf, errHeaders
		}
		hs[i].Key = headerName(b[k : k+int(l)])
		b = b[k+int(l):]
		l, k = binary.Uvarint(b)
		if k <= 0 || (l > 0 && l-1 > uint64(len(b)-k)) {
			return nil, buf, errHeaders
		}
		b = b[k:]
		if l > 0 {
			hs[i].Value = b[: l-1 : l-1]
			b = b[l-1:]
		}
	}
	return hs, buf, nil
}

// knownNames are header names most records carry, so that decoding them
// allocates nothing.
var knownNames = func() map[string]string {
	m := make(map[string]string)
	for _, n := range []string{eventkit.HeaderID, eventkit.HeaderSource, eventkit.HeaderType, eventkit.HeaderSubject,
		eventkit.HeaderContentType, eventkit.HeaderSpecVersion, eventkit.HeaderTime,
		eventkit.HeaderReplayID, eventkit.HeaderReplayMode, eventkit.HeaderReplayOrigin} {
		m[n] = n
	}
	for _, n := range eventkit.TraceHeaders {
		m[n] = n
	}
	return m
}()

func headerName(b []byte) string {
	if n, ok := knownNames[string(b)]; ok { // no allocation: the compiler looks up without converting
		return n
	}
	return string(b)
}

// Columns that stand for a CloudEvents binding header. A record's first
// header of such a name is not copied to the header index when its column
// holds the same value (the usual case), because every CloudEvent carries
// five or six of them and the index would grow by as many rows per record;
// a header filter on such a name asks the column or the index.
var headerColumns = map[string]string{
	eventkit.HeaderID:          "ce_id",
	eventkit.HeaderSource:      "ce_source",
	eventkit.HeaderType:        "ce_type",
	eventkit.HeaderSubject:     "ce_subject",
	eventkit.HeaderContentType: "content_type",
	eventkit.HeaderSpecVersion: "specversion",
	eventkit.HeaderTime:        "ce_time",
}

// Row is a record as the stores write it.
type Row struct {
	Rec         *lookback.Record
	Headers     []byte
	SpecVersion string
	// Indexed are the headers that go to lookback_headers.
	Indexed []eventkit.Header
}

// RowOf prepares r for writing.
func RowOf(r *lookback.Record) Row {
	row := Row{Rec: r, Headers: EncodeHeaders(r.Headers)}
	var first struct{ id, source, typ, subject, ct, spec, time bool }
	// The ce_time column holds an instant, not its spelling: it stands for
	// the header only when the record has one ce_time header, spelled as
	// FormatTime spells it, at an instant the column holds. Any other
	// ce_time header is in the header index, and a filter on the column
	// leaves out the records that have one there (Builder.header).
	timeInColumn := !r.Time.IsZero() && inNanos(r.Time) && timeHeaders(r.Headers) == 1
	for _, h := range r.Headers {
		var (
			taken *bool
			same  bool
		)
		switch h.Key {
		case eventkit.HeaderID:
			taken, same = &first.id, string(h.Value) == r.ID
		case eventkit.HeaderSource:
			taken, same = &first.source, string(h.Value) == r.Source
		case eventkit.HeaderType:
			taken, same = &first.typ, string(h.Value) == r.Type
		case eventkit.HeaderSubject:
			taken, same = &first.subject, string(h.Value) == r.Subject
		case eventkit.HeaderContentType:
			taken, same = &first.ct, string(h.Value) == r.ContentType
		case eventkit.HeaderSpecVersion:
			taken, same = &first.spec, utf8.Valid(h.Value)
			if same && !first.spec {
				row.SpecVersion = string(h.Value)
			}
		case eventkit.HeaderTime:
			taken, same = &first.time, timeInColumn && string(h.Value) == FormatTime(r.Time)
		}
		if taken != nil && !*taken {
			*taken = true
			if same && len(h.Value) > 0 {
				continue
			}
		}
		row.Indexed = append(row.Indexed, h)
	}
	return row
}

// timeHeaders counts the ce_time headers among hs.
func timeHeaders(hs []eventkit.Header) int {
	n := 0
	for _, h := range hs {
		if h.Key == eventkit.HeaderTime {
			n++
		}
	}
	return n
}

// FormatTime is the one spelling of a ce_time that its column stands for.
func FormatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// Null returns nil for "", so that empty attributes are NULL and stay out
// of the partial indexes.
func Null(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// Nanos returns t in Unix nanoseconds, clamped to what an int64 holds,
// where UnixNano would wrap around to a time in between: a filter bound
// before 1678 or after 2262 is before or after every record, and a record
// stamped outside that range (milliseconds sent as microseconds) is stored
// at its end, in order, instead of at a random time retention may cut.
func Nanos(t time.Time) int64 {
	switch {
	case t.Before(minNanos):
		return math.MinInt64
	case t.After(maxNanos):
		return math.MaxInt64
	}
	return t.UnixNano()
}

var minNanos, maxNanos = time.Unix(0, math.MinInt64), time.Unix(0, math.MaxInt64)

// inNanos reports whether Nanos holds t itself, not a clamp.
func inNanos(t time.Time) bool { return !t.Before(minNanos) && !t.After(maxNanos) }

// NullTime returns nil for the zero time, else Unix nanoseconds.
func NullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return Nanos(t)
}

// Dialect is what differs between the databases in a query.
type Dialect struct {
	// Param returns the placeholder of the n-th argument, from 1.
	Param func(n int) string
	// Storable reports whether a text column can hold s; a value it
	// cannot hold matches nothing.
	Storable func(s string) bool
	// Eq returns the condition that column col equals v, a string, a
	// []byte or a number.
	Eq func(b *Builder, col string, v any) string
	// AnyOf returns the condition that col is one of vs.
	AnyOf func(b *Builder, col string, vs []string) string
	// Header returns the condition that a record has a header named name
	// whose value is value, in lookback_headers.
	Header func(b *Builder, name string, value []byte) string
	// HasHeader returns the condition that a record has a header named
	// name in lookback_headers, whatever its value.
	HasHeader func(b *Builder, name string) string
}

// Builder collects a statement's conditions and arguments.
type Builder struct {
	d     Dialect
	Args  []any
	conds []string
}

// NewBuilder starts a statement in dialect d.
func NewBuilder(d Dialect) *Builder { return &Builder{d: d} }

// Arg adds an argument and returns its placeholder. Arguments must be
// added in the order their placeholders appear: SQLite's are positional.
func (b *Builder) Arg(v any) string {
	b.Args = append(b.Args, v)
	return b.d.Param(len(b.Args))
}

func (b *Builder) cond(format string, args ...any) {
	ps := make([]any, len(args))
	for i, a := range args {
		ps[i] = b.Arg(a)
	}
	b.conds = append(b.conds, fmt.Sprintf(format, ps...))
}

// Where returns " WHERE …" with every condition, or "" without any.
func (b *Builder) Where() string {
	if len(b.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(b.conds, " AND ")
}

// Filter adds the conditions of f. Every value is an argument, never part
// of the statement's text.
func (b *Builder) Filter(f lookback.Filter) {
	eq := func(col string, v any) { b.conds = append(b.conds, b.d.Eq(b, col, v)) }
	if f.Topic != "" {
		eq("topic", f.Topic)
	}
	if f.Partition != nil {
		eq("part", *f.Partition)
	}
	if f.Key != nil {
		eq("key", f.Key)
	}
	for _, c := range []struct{ col, v string }{
		{"ce_type", f.Type}, {"ce_id", f.ID}, {"ce_subject", f.Subject}, {"ce_source", f.Source},
	} {
		if c.v != "" {
			eq(c.col, c.v)
		}
	}
	if len(f.IDs) > 0 {
		b.conds = append(b.conds, b.d.AnyOf(b, "ce_id", f.IDs))
	}
	if !f.From.IsZero() {
		b.cond("ts >= %s", Nanos(f.From))
	}
	if !f.To.IsZero() {
		b.cond("ts <= %s", Nanos(f.To))
	}
	for _, h := range f.Headers {
		b.header(h)
	}
}

// header matches a header through the index, or through the column that
// stands for it when it is a binding header.
func (b *Builder) header(h lookback.HeaderMatch) {
	if h.Value == nil {
		h.Value = []byte{} // a header's value is never NULL: nil asks for an empty one
	}
	col, ok := headerColumns[h.Name]
	if !ok || len(h.Value) == 0 || !utf8.Valid(h.Value) {
		b.conds = append(b.conds, b.d.Header(b, h.Name, h.Value))
		return
	}
	var colCond string
	if col != "ce_time" {
		colCond = b.d.Eq(b, col, string(h.Value))
	} else {
		t, err := time.Parse(time.RFC3339Nano, string(h.Value))
		if err != nil || FormatTime(t) != string(h.Value) || !inNanos(t) {
			// No column value stands for this spelling (RowOf).
			b.conds = append(b.conds, b.d.Header(b, h.Name, h.Value))
			return
		}
		// The column holds the instant; a record whose ce_time header
		// spells it otherwise (or has several) has them in the index.
		colCond = b.d.Eq(b, col, t.UnixNano()) + " AND NOT " + b.d.HasHeader(b, h.Name)
	}
	b.conds = append(b.conds, "(("+colCond+") OR "+b.d.Header(b, h.Name, h.Value)+")")
}

// After adds the condition that a record comes after p in order o. The
// bare bound on ts lets the planner range over an index by time; the row
// comparison settles ties.
func (b *Builder) After(o lookback.Order, p lookback.Position) {
	op, bound := ">", ">="
	if o == lookback.Desc {
		op, bound = "<", "<="
	}
	ts := p.Timestamp.UnixNano()
	b.cond("ts "+bound+" %s AND (ts, topic, part, off) "+op+" (%s, %s, %s, %s)", ts, ts, p.Topic, p.Partition, p.Offset)
}

// OrderBy returns the ORDER BY clause of order o.
func OrderBy(o lookback.Order) string {
	if o == lookback.Desc {
		return " ORDER BY ts DESC, topic DESC, part DESC, off DESC"
	}
	return " ORDER BY ts, topic, part, off"
}

// Columns returns the columns of q's records, in the order a rowScanner
// for q reads them. Each column costs a few calls into SQLite's driver, a
// lock each, whatever its size, so a page reads no more of them than it
// must: the topic only when q's filter does not name it, and the
// partition with, in its two low bits, which of key and value are not
// NULL. SQLite's driver reads an empty BLOB as nil, and a record whose
// value is empty is not a tombstone (nor one with an empty key a record
// without one), so a replay must not turn it into one. A bare record is
// what Kafka carries, without the CloudEvents columns.
func Columns(q lookback.Query) string {
	cols := "CAST(part AS BIGINT) * 4 + CASE WHEN key IS NULL THEN 0 ELSE 1 END + CASE WHEN value IS NULL THEN 0 ELSE 2 END, off, ts, key, value, headers"
	if q.Filter.Topic == "" {
		cols = "topic, " + cols
	}
	if !q.Bare {
		cols += ", ce_id, ce_type, ce_source, ce_subject, ce_time, content_type"
	}
	return cols
}

// Query returns the statement and arguments of one page of q, which must
// be valid: it asks for one record more than the page holds, which
// [lookback.NewPage] uses to tell whether another page follows.
func Query(d Dialect, q lookback.Query) (string, []any, error) {
	b := NewBuilder(d)
	f := q.Filter
	var after *lookback.Position
	if q.Cursor != "" {
		p, err := lookback.DecodeCursor(q.Order, q.Cursor)
		if err != nil {
			return "", nil, err
		}
		after = &p
		// Past the first page the cursor bounds the timestamp more tightly
		// than the filter on its side. Both bounds would let the database
		// seek to the filter's and step over every record before the
		// cursor, page after page.
		if q.Order == lookback.Asc && !f.From.IsZero() && !p.Timestamp.Before(f.From) {
			f.From = time.Time{}
		}
		if q.Order == lookback.Desc && !f.To.IsZero() && !p.Timestamp.After(f.To) {
			f.To = time.Time{}
		}
	}
	b.Filter(f)
	if after != nil {
		b.After(q.Order, *after)
	}
	return "SELECT " + Columns(q) + " FROM lookback_events" + b.Where() + OrderBy(q.Order) +
		" LIMIT " + strconv.Itoa(q.PageSize()+1), b.Args, nil
}

// Count returns the statement and arguments that count the records
// matching f.
func Count(d Dialect, f lookback.Filter) (string, []any) {
	b := NewBuilder(d)
	b.Filter(f)
	return "SELECT count(*) FROM lookback_events" + b.Where(), b.Args
}

// Extent returns, when f selects whole topics (or the whole archive)
// within a time range, the statement of the earliest and latest timestamps
// of what it selects without the range, and of their number from the
// per-partition counts: one statement, so one snapshot. When the range
// holds both ends, that number is f's count, and the count reads three
// index entries a topic instead of every record.
func Extent(d Dialect, f lookback.Filter) (stmt string, args []any, ok bool) {
	if f.Partition != nil || f.Key != nil || f.Type != "" || f.ID != "" || len(f.IDs) > 0 ||
		f.Subject != "" || f.Source != "" || len(f.Headers) > 0 {
		return "", nil, false
	}
	b := NewBuilder(d)
	where := func() string {
		if f.Topic == "" {
			return ""
		}
		return " WHERE " + d.Eq(b, "topic", f.Topic)
	}
	return "SELECT (SELECT min(ts) FROM lookback_events" + where() + "), (SELECT max(ts) FROM lookback_events" + where() +
		"), (SELECT CAST(coalesce(sum(count), 0) AS BIGINT) FROM lookback_partitions" + where() + ")", b.Args, true
}

// PartitionKey names one partition.
type PartitionKey struct {
	Topic     string
	Partition int32
}

// Dedupe drops records whose coordinates came earlier in rs: one statement
// must not insert the same row twice.
func Dedupe(rs []lookback.Record) []lookback.Record {
	type coord struct {
		PartitionKey
		off int64
	}
	seen := make(map[coord]struct{}, len(rs))
	out := rs[:0:0]
	for i := range rs {
		c := coord{PartitionKey{rs[i].Topic, rs[i].Partition}, rs[i].Offset}
		if _, dup := seen[c]; dup {
			continue
		}
		seen[c] = struct{}{}
		out = append(out, rs[i])
	}
	if len(out) == len(rs) {
		return rs
	}
	return out
}

// Coord names one record.
type Coord struct {
	Topic     string
	Partition int32
	Offset    int64
}

// Rows is a result set of either driver; the caller closes it.
type Rows interface {
	Scanner
	Next() bool
	Err() error
}

// LinkColumns are the columns ScanLinks reads, in its order.
const LinkColumns = "replay_id, mode, origin_topic, origin_part, origin_off, topic, part, off, ts"

// ScanLinks reads every row of LinkColumns.
func ScanLinks(rows Rows) ([]lookback.ReplayLink, error) {
	var out []lookback.ReplayLink
	for rows.Next() {
		var (
			l    lookback.ReplayLink
			mode string
			ts   int64
		)
		if err := rows.Scan(&l.ReplayID, &mode, &l.OriginTopic, &l.OriginPartition, &l.OriginOffset,
			&l.Topic, &l.Partition, &l.Offset, &ts); err != nil {
			return nil, fmt.Errorf("archive: links: %w", err)
		}
		l.Mode, l.Timestamp = eventkit.ReplayMode(mode), time.Unix(0, ts)
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("archive: links: %w", err)
	}
	return out, nil
}

// ScanTopics reads rows of topic, partitions, count, first and last
// timestamp.
func ScanTopics(rows Rows) ([]lookback.TopicStats, error) {
	var out []lookback.TopicStats
	for rows.Next() {
		var (
			s           lookback.TopicStats
			first, last sql.NullInt64
		)
		if err := rows.Scan(&s.Topic, &s.Partitions, &s.Count, &first, &last); err != nil {
			return nil, fmt.Errorf("archive: topics: %w", err)
		}
		s.First, s.Last = time.Unix(0, first.Int64), time.Unix(0, last.Int64)
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("archive: topics: %w", err)
	}
	return out, nil
}

// ScanDeleted reads the (topic, part) of deleted rows and counts them by
// partition and in all.
func ScanDeleted(rows Rows) (map[PartitionKey]int64, int64, error) {
	counts := make(map[PartitionKey]int64)
	var n int64
	for rows.Next() {
		var k PartitionKey
		if err := rows.Scan(&k.Topic, &k.Partition); err != nil {
			return nil, 0, err
		}
		counts[k]++
		n++
	}
	return counts, n, rows.Err()
}

// AuditColumns are the columns ScanAudit reads, in its order.
const AuditColumns = "id, at, actor, role, action, target, detail, outcome"

// AuditList returns the statement and arguments of one page of q, which
// must be valid.
func AuditList(d Dialect, q lookback.AuditQuery) (string, []any) {
	b := NewBuilder(d)
	if q.Actor != "" {
		b.cond("actor = %s", q.Actor)
	}
	if q.Action != "" {
		b.cond("action = %s", q.Action)
	}
	if q.Before > 0 {
		b.cond("id < %s", q.Before)
	}
	return "SELECT " + AuditColumns + " FROM lookback_audit" + b.Where() +
		" ORDER BY id DESC LIMIT " + strconv.Itoa(q.PageSize()), b.Args
}

// ScanAudit reads every row of AuditColumns.
func ScanAudit(rows Rows) ([]lookback.AuditEntry, error) {
	var out []lookback.AuditEntry
	for rows.Next() {
		var (
			e  lookback.AuditEntry
			at int64
		)
		if err := rows.Scan(&e.ID, &at, &e.Actor, &e.Role, &e.Action, &e.Target, &e.Detail, &e.Outcome); err != nil {
			return nil, fmt.Errorf("audit: list: %w", err)
		}
		e.At = time.Unix(0, at)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("audit: list: %w", err)
	}
	return out, nil
}
