package archivesql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/eventkit/eventkit"
	"github.com/eventkit/eventkit/lookback"
)

// Conn is a read connection of either driver.
type Conn interface {
	Query(ctx context.Context, stmt string, args ...any) (ClosingRows, error)
	QueryRow(ctx context.Context, stmt string, args ...any) Scanner
}

// ClosingRows is a result set the reader closes.
type ClosingRows interface {
	Rows
	Close()
}

// Reader answers the archive's and the audit log's reads the same way on
// either database.
type Reader struct {
	Conn    Conn
	Dialect Dialect
	// NoRows is the driver's error for a QueryRow that found nothing.
	NoRows error
	// Borrow returns the driver's scan destination for bytes it owns,
	// valid until the next row, that sets *b; nil scans copies.
	Borrow func(b *[]byte) any
}

// Query implements [lookback.Archive.Query].
func (r Reader) Query(ctx context.Context, q lookback.Query) (lookback.Page, error) {
	if err := q.Validate(); err != nil {
		return lookback.Page{}, err
	}
	stmt, args, err := Query(r.Dialect, q)
	if err != nil {
		return lookback.Page{}, err
	}
	rows, err := r.Conn.Query(ctx, stmt, args...)
	if err != nil {
		return lookback.Page{}, fmt.Errorf("archive: query: %w", err)
	}
	defer rows.Close()
	s := newRowScanner(q, r.Borrow)
	recs := make([]lookback.Record, 0, q.PageSize()+1)
	cut := false
	for !cut && rows.Next() {
		rec, err := s.scan(rows)
		if err != nil {
			return lookback.Page{}, fmt.Errorf("archive: query: %w", err)
		}
		recs = append(recs, rec)
		if s.size >= lookback.PageBytes && len(recs) <= q.PageSize() {
			cut = rows.Next() // steps to the next row without reading it
		}
	}
	if err := rows.Err(); err != nil {
		return lookback.Page{}, fmt.Errorf("archive: query: %w", err)
	}
	if cut {
		return lookback.CutPage(q, recs), nil
	}
	return lookback.NewPage(q, recs), nil
}

// Count implements [lookback.Archive.Count].
func (r Reader) Count(ctx context.Context, f lookback.Filter) (int64, error) {
	if err := f.Validate(); err != nil {
		return 0, err
	}
	if stmt, args, ok := Extent(r.Dialect, f); ok {
		var first, last sql.NullInt64
		var n int64
		if err := r.Conn.QueryRow(ctx, stmt, args...).Scan(&first, &last, &n); err != nil {
			return 0, fmt.Errorf("archive: count: %w", err)
		}
		if !first.Valid {
			return 0, nil
		}
		if (f.From.IsZero() || first.Int64 >= Nanos(f.From)) && (f.To.IsZero() || last.Int64 <= Nanos(f.To)) {
			return n, nil
		}
	}
	stmt, args := Count(r.Dialect, f)
	var n int64
	if err := r.Conn.QueryRow(ctx, stmt, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("archive: count: %w", err)
	}
	return n, nil
}

// Get implements [lookback.Archive.Get].
func (r Reader) Get(ctx context.Context, topic string, partition int32, offset int64) (lookback.Record, error) {
	notFound := fmt.Errorf("%w: %s", lookback.ErrNotFound, eventkit.FormatCoordinates(topic, partition, offset))
	if !r.Dialect.Storable(topic) {
		return lookback.Record{}, notFound
	}
	b := NewBuilder(r.Dialect)
	q := lookback.Query{Filter: lookback.Filter{Topic: topic}}
	rec, err := newRowScanner(q, nil).scan(r.Conn.QueryRow(ctx, "SELECT "+Columns(q)+" FROM lookback_events WHERE topic = "+
		b.Arg(topic)+" AND part = "+b.Arg(partition)+" AND off = "+b.Arg(offset), b.Args...))
	if errors.Is(err, r.NoRows) {
		return rec, notFound
	}
	if err != nil {
		return rec, fmt.Errorf("archive: get: %w", err)
	}
	return rec, nil
}

// Links implements [lookback.Archive.Links].
func (r Reader) Links(ctx context.Context, topic string, partition int32, offset int64) ([]lookback.ReplayLink, error) {
	if !r.Dialect.Storable(topic) {
		return nil, nil
	}
	b := NewBuilder(r.Dialect)
	rows, err := r.Conn.Query(ctx, "SELECT "+LinkColumns+" FROM lookback_links WHERE origin_topic = "+b.Arg(topic)+
		" AND origin_part = "+b.Arg(partition)+" AND origin_off = "+b.Arg(offset)+" ORDER BY ts, topic, part, off", b.Args...)
	if err != nil {
		return nil, fmt.Errorf("archive: links: %w", err)
	}
	defer rows.Close()
	return ScanLinks(rows)
}

// Topics implements [lookback.Archive.Topics]. Counts come from the
// per-partition table; the first and last timestamps from the ends of the
// topic's index, two lookups a topic.
func (r Reader) Topics(ctx context.Context) ([]lookback.TopicStats, error) {
	rows, err := r.Conn.Query(ctx, `SELECT p.topic, count(*), sum(p.count),
		(SELECT min(ts) FROM lookback_events e WHERE e.topic = p.topic),
		(SELECT max(ts) FROM lookback_events e WHERE e.topic = p.topic)
		FROM lookback_partitions p WHERE p.count > 0 GROUP BY p.topic ORDER BY p.topic`)
	if err != nil {
		return nil, fmt.Errorf("archive: topics: %w", err)
	}
	defer rows.Close()
	return ScanTopics(rows)
}

// Audit implements [lookback.AuditLog.List].
func (r Reader) Audit(ctx context.Context, q lookback.AuditQuery) ([]lookback.AuditEntry, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	if !r.Dialect.Storable(q.Actor) || !r.Dialect.Storable(q.Action) {
		return nil, nil // no entry is stored so
	}
	stmt, args := AuditList(r.Dialect, q)
	rows, err := r.Conn.Query(ctx, stmt, args...)
	if err != nil {
		return nil, fmt.Errorf("audit: list: %w", err)
	}
	defer rows.Close()
	return ScanAudit(rows)
}
