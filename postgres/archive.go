package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/eventkit/eventkit/internal/archivesql"
	"github.com/eventkit/eventkit/lookback"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Archive is a [lookback.Archive] in the database's lookback tables.
//
// Append writes a batch in one transaction with one statement per table,
// the rows passed as arrays (unnest), so that a round trip and a commit are
// shared by the whole batch; several Appends may run at once on the pool.
// The schema's comments say how retention stays cheap.
type Archive struct {
	archivesql.Reader // Query, Count, Get, Links, Topics
	db                *DB
}

// NewArchive returns the archive in db. It starts nothing and needs no
// Close.
func NewArchive(db *DB) *Archive {
	return &Archive{Reader: db.archiveReader(), db: db}
}

// archiveReader reads the archive's tables on the pool.
func (db *DB) archiveReader() archivesql.Reader {
	return archivesql.Reader{Conn: pgConn{db.pool}, Dialect: archivesql.Postgres, NoRows: pgx.ErrNoRows,
		Borrow: func(b *[]byte) any { return (*pgtype.DriverBytes)(b) }}
}

// pgConn adapts pgx to the shared reader.
type pgConn struct{ pool *pgxpool.Pool }

func (c pgConn) Query(ctx context.Context, stmt string, args ...any) (archivesql.ClosingRows, error) {
	return c.pool.Query(ctx, stmt, args...)
}

func (c pgConn) QueryRow(ctx context.Context, stmt string, args ...any) archivesql.Scanner {
	return c.pool.QueryRow(ctx, stmt, args...)
}

var _ lookback.Archive = (*Archive)(nil)

const (
	// The rows are inserted in coordinate order, so that two batches that
	// share records lock them in the same order instead of deadlocking.
	insertEventsSQL = `INSERT INTO lookback_events
		(topic, part, off, ts, key, value, headers, ce_id, ce_type, ce_source, ce_subject, ce_time, content_type, specversion)
		SELECT * FROM unnest($1::text[], $2::integer[], $3::bigint[], $4::bigint[], $5::bytea[], $6::bytea[], $7::bytea[],
			$8::bytea[], $9::bytea[], $10::bytea[], $11::bytea[], $12::bigint[], $13::bytea[], $14::bytea[])
		ORDER BY 1, 2, 3
		ON CONFLICT (topic, part, off) DO NOTHING
		RETURNING seq, topic, part, off`
	insertHeadersSQL = `INSERT INTO lookback_headers (seq, name, value)
		SELECT * FROM unnest($1::bigint[], $2::bytea[], $3::bytea[])`
	addCountsSQL = `INSERT INTO lookback_partitions AS p (topic, part, count)
		SELECT * FROM unnest($1::text[], $2::integer[], $3::bigint[]) ORDER BY 1, 2
		ON CONFLICT (topic, part) DO UPDATE SET count = p.count + excluded.count`
	insertLinksSQL = `INSERT INTO lookback_links (topic, part, off, ts, replay_id, mode, origin_topic, origin_part, origin_off)
		SELECT * FROM unnest($1::text[], $2::integer[], $3::bigint[], $4::bigint[], $5::text[], $6::text[],
			$7::text[], $8::integer[], $9::bigint[])
		ORDER BY 1, 2, 3
		ON CONFLICT (topic, part, off) DO NOTHING`
)

// Append implements [lookback.Archive]. A batch that deadlocks with
// another runs again.
func (a *Archive) Append(ctx context.Context, records []lookback.Record, links []lookback.ReplayLink) error {
	if len(records) == 0 && len(links) == 0 {
		return nil
	}
	records = archivesql.Dedupe(records)
	var err error
	for range maxAttempts {
		if err = a.appendOnce(ctx, records, links); !retryable(err) {
			return err
		}
	}
	return err
}

func (a *Archive) appendOnce(ctx context.Context, records []lookback.Record, links []lookback.ReplayLink) error {
	tx, err := a.db.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("archive: begin: %w", err)
	}
	defer tx.Rollback(ctx)
	if err := appendRecords(ctx, tx, records); err != nil {
		return err
	}
	if err := appendLinks(ctx, tx, links); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("archive: commit: %w", err)
	}
	return nil
}

// statementBytes bounds the payload (keys, values, headers) of one insert:
// PostgreSQL refuses a message over 1 GB, and a batch of thousands of
// large records would reach it, failing again on every retry while ingest
// stood still. A record larger than this goes alone.
var statementBytes = 64 << 20

// appendRecords inserts records in chunks of at most statementBytes each,
// all in tx.
func appendRecords(ctx context.Context, tx pgx.Tx, records []lookback.Record) error {
	for len(records) > 0 {
		n, size := 0, 0
		for n < len(records) {
			b := recordBytes(&records[n])
			if n > 0 && size+b > statementBytes {
				break
			}
			size += b
			n++
		}
		if err := appendChunk(ctx, tx, records[:n]); err != nil {
			return err
		}
		records = records[n:]
	}
	return nil
}

func recordBytes(r *lookback.Record) int {
	n := len(r.Key) + len(r.Value)
	for _, h := range r.Headers {
		n += len(h.Key) + len(h.Value)
	}
	return n
}

func appendChunk(ctx context.Context, tx pgx.Tx, records []lookback.Record) error {
	if len(records) == 0 {
		return nil
	}
	n := len(records)
	var (
		topics                        = make([]string, n)
		parts                         = make([]int32, n)
		offs, tss                     = make([]int64, n), make([]int64, n)
		keys, values, headers         = make([][]byte, n), make([][]byte, n), make([][]byte, n)
		ids, types, sources, subjects = make([][]byte, n), make([][]byte, n), make([][]byte, n), make([][]byte, n)
		ceTimes                       = make([]*int64, n)
		contentTypes, specs           = make([][]byte, n), make([][]byte, n)
		rows                          = make([]archivesql.Row, n)
	)
	for i := range records {
		rows[i] = archivesql.RowOf(&records[i])
		r := &records[i]
		topics[i], parts[i], offs[i], tss[i] = r.Topic, r.Partition, r.Offset, archivesql.Nanos(r.Timestamp)
		keys[i], values[i], headers[i] = r.Key, r.Value, rows[i].Headers
		ids[i], types[i], sources[i], subjects[i] = nullBytes(r.ID), nullBytes(r.Type), nullBytes(r.Source), nullBytes(r.Subject)
		contentTypes[i], specs[i] = nullBytes(r.ContentType), nullBytes(rows[i].SpecVersion)
		if !r.Time.IsZero() {
			t := archivesql.Nanos(r.Time)
			ceTimes[i] = &t
		}
	}
	res, err := tx.Query(ctx, insertEventsSQL, topics, parts, offs, tss, keys, values, headers,
		ids, types, sources, subjects, ceTimes, contentTypes, specs)
	if err != nil {
		return fmt.Errorf("archive: insert: %w", err)
	}
	inserted := make(map[archivesql.Coord]int64, n)
	var (
		seq int64
		c   archivesql.Coord
	)
	_, err = pgx.ForEachRow(res, []any{&seq, &c.Topic, &c.Partition, &c.Offset}, func() error {
		inserted[c] = seq
		return nil
	})
	if err != nil {
		return fmt.Errorf("archive: insert: %w", err)
	}
	// Only the rows inserted now count and get header rows: the others
	// were archived before, with theirs.
	counts := make(map[archivesql.PartitionKey]int64)
	var hSeqs []int64
	var hNames, hValues [][]byte
	for i := range rows {
		r := rows[i].Rec
		seq, ok := inserted[archivesql.Coord{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset}]
		if !ok {
			continue
		}
		counts[archivesql.PartitionKey{Topic: r.Topic, Partition: r.Partition}]++
		for _, h := range rows[i].Indexed {
			v := h.Value
			if v == nil {
				v = []byte{} // the column is NOT NULL; a filter cannot tell them apart
			}
			hSeqs, hNames, hValues = append(hSeqs, seq), append(hNames, []byte(h.Key)), append(hValues, v)
		}
	}
	if len(hSeqs) > 0 {
		if _, err := tx.Exec(ctx, insertHeadersSQL, hSeqs, hNames, hValues); err != nil {
			return fmt.Errorf("archive: headers: %w", err)
		}
	}
	if len(counts) == 0 {
		return nil
	}
	ct, cp, cn := splitCounts(counts)
	if _, err := tx.Exec(ctx, addCountsSQL, ct, cp, cn); err != nil {
		return fmt.Errorf("archive: partition counts: %w", err)
	}
	return nil
}

func splitCounts(counts map[archivesql.PartitionKey]int64) ([]string, []int32, []int64) {
	ts, ps, ns := make([]string, 0, len(counts)), make([]int32, 0, len(counts)), make([]int64, 0, len(counts))
	for k, n := range counts {
		ts, ps, ns = append(ts, k.Topic), append(ps, k.Partition), append(ns, n)
	}
	return ts, ps, ns
}

func nullBytes(s string) []byte {
	if s == "" {
		return nil
	}
	return []byte(s)
}

// text makes s storable in a text column: a malformed replay header may
// carry NUL bytes or invalid UTF-8, which text refuses.
func text(s string) string {
	if archivesql.Storable(s) {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, string(utf8.RuneError)), "\x00", string(utf8.RuneError))
}

func appendLinks(ctx context.Context, tx pgx.Tx, links []lookback.ReplayLink) error {
	if len(links) == 0 {
		return nil
	}
	n := len(links)
	topics, ids, modes, origins := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	parts, oparts := make([]int32, n), make([]int32, n)
	offs, tss, ooffs := make([]int64, n), make([]int64, n), make([]int64, n)
	for i, l := range links {
		topics[i], parts[i], offs[i], tss[i] = text(l.Topic), l.Partition, l.Offset, archivesql.Nanos(l.Timestamp)
		ids[i], modes[i] = text(l.ReplayID), text(string(l.Mode))
		origins[i], oparts[i], ooffs[i] = text(l.OriginTopic), l.OriginPartition, l.OriginOffset
	}
	if _, err := tx.Exec(ctx, insertLinksSQL, topics, parts, offs, tss, ids, modes, origins, oparts, ooffs); err != nil {
		return fmt.Errorf("archive: links: %w", err)
	}
	return nil
}

// DeleteBefore implements [lookback.Archive]. It removes the oldest first,
// in one transaction; rows another transaction holds are skipped, to be
// taken by the next call.
func (a *Archive) DeleteBefore(ctx context.Context, t time.Time, limit int) (int64, error) {
	var lim any // NULL: no limit
	if limit > 0 {
		lim = limit
	}
	ts := archivesql.Nanos(t)
	tx, err := a.db.pool.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("archive: begin: %w", err)
	}
	defer tx.Rollback(ctx)
	rows, err := tx.Query(ctx, `WITH victims AS (
			SELECT seq FROM lookback_events WHERE ts < $1 ORDER BY ts LIMIT $2 FOR UPDATE SKIP LOCKED),
		h AS (DELETE FROM lookback_headers WHERE seq IN (SELECT seq FROM victims))
		DELETE FROM lookback_events WHERE seq IN (SELECT seq FROM victims) RETURNING topic, part`, ts, lim)
	if err != nil {
		return 0, fmt.Errorf("archive: delete: %w", err)
	}
	counts, n, err := archivesql.ScanDeleted(rows)
	rows.Close()
	if err != nil {
		return 0, fmt.Errorf("archive: delete: %w", err)
	}
	if len(counts) > 0 {
		ct, cp, cn := splitCounts(counts)
		if _, err := tx.Exec(ctx, `UPDATE lookback_partitions AS p SET count = p.count - d.n
			FROM (SELECT * FROM unnest($1::text[], $2::integer[], $3::bigint[]) ORDER BY 1, 2) AS d(topic, part, n)
			WHERE p.topic = d.topic AND p.part = d.part`, ct, cp, cn); err != nil {
			return 0, fmt.Errorf("archive: partition counts: %w", err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM lookback_partitions WHERE count <= 0`); err != nil {
			return 0, fmt.Errorf("archive: partition counts: %w", err)
		}
	}
	if limit <= 0 || n < int64(limit) {
		if limit > 0 {
			lim = int64(limit) - n
		}
		tag, err := tx.Exec(ctx, `DELETE FROM lookback_links WHERE (topic, part, off) IN (
			SELECT topic, part, off FROM lookback_links WHERE ts < $1 ORDER BY ts LIMIT $2 FOR UPDATE SKIP LOCKED)`, ts, lim)
		if err != nil {
			return 0, fmt.Errorf("archive: delete links: %w", err)
		}
		n += tag.RowsAffected()
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("archive: commit: %w", err)
	}
	return n, nil
}
