package lookback

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/eventkit/eventkit"
)

// Position is a record's place in the order of every query: its timestamp,
// then topic, partition and offset. A cursor holds the position of the last
// record of a page, so that the next page starts strictly after it however
// many records arrive meanwhile.
type Position struct {
	Timestamp time.Time
	Topic     string
	Partition int32
	Offset    int64
}

// PositionOf returns r's position.
func PositionOf(r *Record) Position {
	return Position{Timestamp: r.Timestamp, Topic: r.Topic, Partition: r.Partition, Offset: r.Offset}
}

// cursorVersion starts every cursor, so that the format can change without
// an old cursor being read as a new one.
const cursorVersion = 1

// EncodeCursor returns the opaque cursor that continues a query in order o
// after p: URL-safe base64 of a version, the order, and p.
func EncodeCursor(o Order, p Position) string {
	b := make([]byte, 0, 2+8+4+8+len(p.Topic))
	b = append(b, cursorVersion, byte(o))
	b = binary.BigEndian.AppendUint64(b, uint64(p.Timestamp.UnixNano()))
	b = binary.BigEndian.AppendUint32(b, uint32(p.Partition))
	b = binary.BigEndian.AppendUint64(b, uint64(p.Offset))
	b = append(b, p.Topic...)
	return base64.RawURLEncoding.EncodeToString(b)
}

// DecodeCursor reads a cursor made by [EncodeCursor] for order o. Anything
// else, including a cursor of the other order, is an error wrapping
// [ErrBadQuery].
func DecodeCursor(o Order, s string) (Position, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return Position{}, fmt.Errorf("%w: cursor: not base64", ErrBadQuery)
	}
	const fixed = 2 + 8 + 4 + 8
	if len(b) <= fixed || len(b) > fixed+eventkit.MaxTopicLen || b[0] != cursorVersion {
		return Position{}, fmt.Errorf("%w: cursor: malformed", ErrBadQuery)
	}
	if Order(b[1]) != o {
		return Position{}, fmt.Errorf("%w: cursor: made for the other order", ErrBadQuery)
	}
	p := Position{
		Timestamp: time.Unix(0, int64(binary.BigEndian.Uint64(b[2:]))),
		Partition: int32(binary.BigEndian.Uint32(b[10:])),
		Offset:    int64(binary.BigEndian.Uint64(b[14:])),
		Topic:     string(b[fixed:]),
	}
	// A cursor names a record, whose topic Kafka spells in ASCII: a topic
	// no store could hold is forged.
	if p.Partition < 0 || p.Offset < 0 || checkValue("cursor", p.Topic, eventkit.MaxTopicLen) != nil {
		return Position{}, fmt.Errorf("%w: cursor: malformed", ErrBadQuery)
	}
	return p, nil
}

// Validate reports what makes q unanswerable, wrapping [ErrBadQuery]: a
// limit out of range, an unknown order, a malformed cursor, a negative
// partition, a header match without a name, or From after To.
func (q Query) Validate() error {
	if q.Limit < 0 || q.Limit > MaxLimit {
		return fmt.Errorf("%w: limit %d: want 1 to %d", ErrBadQuery, q.Limit, MaxLimit)
	}
	if q.Order != Asc && q.Order != Desc {
		return fmt.Errorf("%w: unknown order %d", ErrBadQuery, q.Order)
	}
	if q.Cursor != "" {
		if _, err := DecodeCursor(q.Order, q.Cursor); err != nil {
			return err
		}
	}
	return q.Filter.Validate()
}

// Validate reports what makes f unanswerable, wrapping [ErrBadQuery].
func (f Filter) Validate() error {
	var errs []error
	if f.Partition != nil && *f.Partition < 0 {
		errs = append(errs, fmt.Errorf("partition %d: want 0 or more", *f.Partition))
	}
	for _, h := range f.Headers {
		if h.Name == "" {
			errs = append(errs, errors.New("header match without a name"))
			break
		}
	}
	if !f.From.IsZero() && !f.To.IsZero() && f.From.After(f.To) {
		errs = append(errs, errors.New("from is after to"))
	}
	if len(f.IDs) > MaxIDs {
		errs = append(errs, fmt.Errorf("ids: %d given, at most %d", len(f.IDs), MaxIDs))
	}
	if slices.Contains(f.IDs, "") {
		errs = append(errs, errors.New("ids: empty id"))
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrBadQuery, errors.Join(errs...))
}

// PageSize is the number of records a page of q holds at most.
func (q Query) PageSize() int {
	if q.Limit == 0 {
		return DefaultLimit
	}
	return q.Limit
}

// NewPage makes the page a store answers when it fetched up to
// q.PageSize()+1 records in q's order: the extra record only tells that
// another page follows.
//
// A store stops reading at PageBytes and answers [CutPage] instead.
func NewPage(q Query, recs []Record) Page {
	n := q.PageSize()
	if len(recs) <= n {
		return Page{Records: recs}
	}
	return CutPage(q, recs[:n])
}

// CutPage makes the page a store answers when it stopped reading after
// recs, which reached PageBytes, with more records to follow.
func CutPage(q Query, recs []Record) Page {
	return Page{Records: recs, NextCursor: EncodeCursor(q.Order, PositionOf(&recs[len(recs)-1]))}
}

// Validate reports a limit out of range, wrapping [ErrBadQuery].
func (q AuditQuery) Validate() error {
	if q.Limit < 0 || q.Limit > MaxLimit {
		return fmt.Errorf("%w: limit %d: want 1 to %d", ErrBadQuery, q.Limit, MaxLimit)
	}
	if q.Before < 0 {
		return fmt.Errorf("%w: before %d: want 0 or more", ErrBadQuery, q.Before)
	}
	return nil
}

// PageSize is the number of entries a page of q holds at most.
func (q AuditQuery) PageSize() int {
	if q.Limit == 0 {
		return DefaultLimit
	}
	return q.Limit
}
