package archivesql

import (
	"database/sql"
	"fmt"
	"time"

	"github.com/eventkit/eventkit"
	"github.com/eventkit/eventkit/lookback"
)

// Scanner is a row of either driver.
type Scanner interface{ Scan(dest ...any) error }

// Buffer sizes of a rowScanner: a page of records shares arrays of about
// these sizes, a few a page, instead of several allocations a record.
const (
	byteChunk   = 64 << 10
	headerChunk = 256
)

// rowScanner reads rows of a query's Columns into records. With a borrow function (the driver's type for bytes it owns,
// valid until the next row), a row's bytes are copied once, from the
// driver's buffer into arrays the page's records share, instead of once
// into an allocation a column; records of a page live and die together.
// Without one (a single row, where borrowing is not allowed), each column
// is the driver's own copy.
type rowScanner struct {
	whole  bool
	borrow bool

	topic                        string
	part, off, ts                int64
	key, value, headers          []byte
	id, typ, source, subject, ct []byte // bytea in PostgreSQL
	ceTime                       sql.NullInt64
	dest                         []any

	bytes []byte
	hs    []eventkit.Header
	size  int // of the keys, values and headers read so far, for PageBytes
}

func newRowScanner(q lookback.Query, borrow func(*[]byte) any) *rowScanner {
	s := &rowScanner{whole: !q.Bare, borrow: borrow != nil, topic: q.Filter.Topic}
	b := func(p *[]byte) any { return p }
	if borrow != nil {
		b = borrow
	}
	if s.topic == "" {
		s.dest = append(s.dest, &s.topic)
	}
	s.dest = append(s.dest, &s.part, &s.off, &s.ts, b(&s.key), b(&s.value), b(&s.headers))
	if s.whole {
		s.dest = append(s.dest, b(&s.id), b(&s.typ), b(&s.source), b(&s.subject), &s.ceTime, b(&s.ct))
	}
	return s
}

// scan reads row's record.
func (s *rowScanner) scan(row Scanner) (lookback.Record, error) {
	s.ceTime = sql.NullInt64{}
	if err := row.Scan(s.dest...); err != nil {
		return lookback.Record{}, err
	}
	s.size += len(s.key) + len(s.value) + len(s.headers)
	r := lookback.Record{Topic: s.topic, Partition: int32(s.part >> 2), Offset: s.off, Timestamp: time.Unix(0, s.ts),
		Key: s.keep(s.key, s.part&1 != 0), Value: s.keep(s.value, s.part&2 != 0)}
	var err error
	if r.Headers, s.hs, err = appendHeaders(s.hs, s.keep(s.headers, false)); err != nil {
		return r, fmt.Errorf("%s: %w", eventkit.FormatCoordinates(r.Topic, r.Partition, r.Offset), err)
	}
	if s.whole {
		r.ID, r.Type, r.Source, r.Subject, r.ContentType = string(s.id), string(s.typ), string(s.source), string(s.subject), string(s.ct)
		if s.ceTime.Valid {
			r.Time = time.Unix(0, s.ceTime.Int64)
		}
	}
	return r, nil
}

// keep returns b, copied to the page's arrays when it is borrowed. A
// column the database holds is empty rather than nil when present: SQLite's
// driver reads an empty BLOB as nil.
func (s *rowScanner) keep(b []byte, present bool) []byte {
	switch {
	case len(b) == 0 && present:
		return []byte{}
	case len(b) == 0:
		return nil
	case !s.borrow:
		return b
	}
	if cap(s.bytes)-len(s.bytes) < len(b) {
		s.bytes = make([]byte, 0, max(byteChunk, len(b)))
	}
	start := len(s.bytes)
	s.bytes = append(s.bytes, b...)
	return s.bytes[start:len(s.bytes):len(s.bytes)]
}
