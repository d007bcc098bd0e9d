package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/eventkit/eventkit/internal/archivesql"
	"github.com/eventkit/eventkit/lookback"
)

// Archive is a [lookback.Archive] in the database's lookback tables.
//
// Append writes through the database's one writer connection, a batch per
// transaction with multi-row statements: the caller (lookback's ingest)
// batches records, so a commit is shared by hundreds of them. Queries read
// on the reader pool and never wait for a write.
type Archive struct {
	archivesql.Reader // Query, Count, Get, Links, Topics
	db                *DB
}

// NewArchive returns the archive in db. It starts nothing and needs no
// Close.
func NewArchive(db *DB) *Archive {
	return &Archive{Reader: db.archiveReader(), db: db}
}

// archiveReader reads the archive's tables on the reader pool.
func (db *DB) archiveReader() archivesql.Reader {
	return archivesql.Reader{Conn: sqlConn{db.read}, Dialect: archivesql.SQLite, NoRows: sql.ErrNoRows,
		Borrow: func(b *[]byte) any { return (*sql.RawBytes)(b) }}
}

// sqlConn adapts database/sql to the shared reader.
type sqlConn struct{ db *sql.DB }

func (c sqlConn) Query(ctx context.Context, stmt string, args ...any) (archivesql.ClosingRows, error) {
	rows, err := c.db.QueryContext(ctx, stmt, args...)
	if err != nil {
		return nil, err
	}
	return sqlRows{rows}, nil
}

func (c sqlConn) QueryRow(ctx context.Context, stmt string, args ...any) archivesql.Scanner {
	return c.db.QueryRowContext(ctx, stmt, args...)
}

type sqlRows struct{ *sql.Rows }

func (r sqlRows) Close() { _ = r.Rows.Close() }

var _ lookback.Archive = (*Archive)(nil)

// eventCols are the columns Append writes, in the order of eventArgs.
const eventCols = "topic, part, off, ts, key, value, headers, ce_id, ce_type, ce_source, ce_subject, ce_time, content_type, specversion"

const eventColCount = 14

// chunkRows bounds the rows of one INSERT: 14 arguments a row stay well
// below SQLite's limit of 32766, and a statement this size already costs
// little per row to prepare.
const chunkRows = 500

// valueLists caches the VALUES lists of multi-row statements by shape.
var valueLists sync.Map // "rows/cols" → string

// values returns "(?, …), (?, …)": rows groups of cols placeholders.
func values(rows, cols int) string {
	key := fmt.Sprintf("%d/%d", rows, cols)
	if s, ok := valueLists.Load(key); ok {
		return s.(string)
	}
	one := "(" + strings.TrimSuffix(strings.Repeat("?, ", cols), ", ") + ")"
	s := strings.TrimSuffix(strings.Repeat(one+", ", rows), ", ")
	valueLists.Store(key, s)
	return s
}

// Append implements [lookback.Archive].
func (a *Archive) Append(ctx context.Context, records []lookback.Record, links []lookback.ReplayLink) error {
	if len(records) == 0 && len(links) == 0 {
		return nil
	}
	tx, err := a.db.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("archive: begin: %w", err)
	}
	defer tx.Rollback()
	if err := appendRecords(ctx, tx, archivesql.Dedupe(records)); err != nil {
		return err
	}
	if err := appendLinks(ctx, tx, links); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("archive: commit: %w", err)
	}
	return nil
}

func appendRecords(ctx context.Context, tx *sql.Tx, records []lookback.Record) error {
	counts := make(map[archivesql.PartitionKey]int64)
	var hdrArgs []any
	args := make([]any, 0, eventColCount*min(len(records), chunkRows))
	rows := make([]archivesql.Row, 0, min(len(records), chunkRows))
	for len(records) > 0 {
		chunk := records[:min(len(records), chunkRows)]
		records = records[len(chunk):]
		args, rows = args[:0], rows[:0]
		for i := range chunk {
			row := archivesql.RowOf(&chunk[i])
			rows = append(rows, row)
			r := row.Rec
			args = append(args, r.Topic, r.Partition, r.Offset, archivesql.Nanos(r.Timestamp), r.Key, r.Value, row.Headers,
				archivesql.Null(r.ID), archivesql.Null(r.Type), archivesql.Null(r.Source), archivesql.Null(r.Subject),
				archivesql.NullTime(r.Time), archivesql.Null(r.ContentType), archivesql.Null(row.SpecVersion))
		}
		inserted, err := insertEvents(ctx, tx, len(chunk), args)
		if err != nil {
			return err
		}
		// Only the rows inserted now count and get header rows: the others
		// were archived before, with theirs.
		hdrArgs = hdrArgs[:0]
		for i := range rows {
			r := rows[i].Rec
			seq, ok := inserted[archivesql.Coord{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset}]
			if !ok {
				continue
			}
			counts[archivesql.PartitionKey{Topic: r.Topic, Partition: r.Partition}]++
			for _, h := range rows[i].Indexed {
				hdrArgs = append(hdrArgs, h.Key, nonNil(h.Value), seq)
			}
		}
		if err := insertMany(ctx, tx, "INSERT OR IGNORE INTO lookback_headers (name, value, seq) VALUES ", 3, hdrArgs); err != nil {
			return fmt.Errorf("archive: headers: %w", err)
		}
	}
	for k, n := range counts {
		if _, err := tx.ExecContext(ctx, `INSERT INTO lookback_partitions (topic, part, count) VALUES (?, ?, ?)
			ON CONFLICT (topic, part) DO UPDATE SET count = count + excluded.count`, k.Topic, k.Partition, n); err != nil {
			return fmt.Errorf("archive: partition counts: %w", err)
		}
	}
	return nil
}

// nonNil stores a nil header value as an empty one: the index column is
// NOT NULL, and a filter cannot tell them apart.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// insertEvents inserts n rows and returns the sequence numbers of those
// that were not archived yet.
func insertEvents(ctx context.Context, tx *sql.Tx, n int, args []any) (map[archivesql.Coord]int64, error) {
	rows, err := tx.QueryContext(ctx, "INSERT INTO lookback_events ("+eventCols+") VALUES "+values(n, eventColCount)+
		" ON CONFLICT (topic, part, off) DO NOTHING RETURNING seq, topic, part, off", args...)
	if err != nil {
		return nil, fmt.Errorf("archive: insert: %w", err)
	}
	defer rows.Close()
	inserted := make(map[archivesql.Coord]int64, n)
	for rows.Next() {
		var (
			seq int64
			c   archivesql.Coord
		)
		if err := rows.Scan(&seq, &c.Topic, &c.Partition, &c.Offset); err != nil {
			return nil, fmt.Errorf("archive: insert: %w", err)
		}
		inserted[c] = seq
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("archive: insert: %w", err)
	}
	return inserted, nil
}

// insertMany runs prefix + VALUES rows of cols arguments each, in chunks.
func insertMany(ctx context.Context, tx *sql.Tx, prefix string, cols int, args []any) error {
	per := chunkRows * cols
	for len(args) > 0 {
		chunk := args[:min(len(args), per)]
		args = args[len(chunk):]
		if _, err := tx.ExecContext(ctx, prefix+values(len(chunk)/cols, cols), chunk...); err != nil {
			return err
		}
	}
	return nil
}

func appendLinks(ctx context.Context, tx *sql.Tx, links []lookback.ReplayLink) error {
	if len(links) == 0 {
		return nil
	}
	args := make([]any, 0, 9*len(links))
	for _, l := range links {
		args = append(args, l.Topic, l.Partition, l.Offset, archivesql.Nanos(l.Timestamp), l.ReplayID, string(l.Mode),
			l.OriginTopic, l.OriginPartition, l.OriginOffset)
	}
	if err := insertMany(ctx, tx, `INSERT OR IGNORE INTO lookback_links
		(topic, part, off, ts, replay_id, mode, origin_topic, origin_part, origin_off) VALUES `, 9, args); err != nil {
		return fmt.Errorf("archive: links: %w", err)
	}
	return nil
}

// DeleteBefore implements [lookback.Archive]. It removes the oldest first,
// in one transaction: keep limit to a few thousand so that ingest, which
// waits for the same connection, is held up briefly.
func (a *Archive) DeleteBefore(ctx context.Context, t time.Time, limit int) (int64, error) {
	sqlLimit := int64(limit)
	if limit <= 0 {
		sqlLimit = -1 // SQLite's "no limit"
	}
	ts := archivesql.Nanos(t)
	tx, err := a.db.write.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("archive: begin: %w", err)
	}
	defer tx.Rollback()
	// The same rows are chosen twice, first for their header rows: the
	// order by (ts, seq) leaves no ties.
	const victims = `SELECT seq FROM lookback_events WHERE ts < ? ORDER BY ts, seq LIMIT ?`
	if _, err := tx.ExecContext(ctx, `DELETE FROM lookback_headers WHERE seq IN (`+victims+`)`, ts, sqlLimit); err != nil {
		return 0, fmt.Errorf("archive: delete headers: %w", err)
	}
	rows, err := tx.QueryContext(ctx, `DELETE FROM lookback_events WHERE seq IN (`+victims+`) RETURNING topic, part`, ts, sqlLimit)
	if err != nil {
		return 0, fmt.Errorf("archive: delete: %w", err)
	}
	counts, n, err := archivesql.ScanDeleted(rows)
	rows.Close()
	if err != nil {
		return 0, fmt.Errorf("archive: delete: %w", err)
	}
	for k, c := range counts {
		if _, err := tx.ExecContext(ctx, `UPDATE lookback_partitions SET count = count - ? WHERE topic = ? AND part = ?`, c, k.Topic, k.Partition); err != nil {
			return 0, fmt.Errorf("archive: partition counts: %w", err)
		}
	}
	if len(counts) > 0 {
		if _, err := tx.ExecContext(ctx, `DELETE FROM lookback_partitions WHERE count <= 0`); err != nil {
			return 0, fmt.Errorf("archive: partition counts: %w", err)
		}
	}
	if limit <= 0 || n < int64(limit) {
		linkLimit := sqlLimit
		if limit > 0 {
			linkLimit = int64(limit) - n
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM lookback_links WHERE rowid IN (
			SELECT rowid FROM lookback_links WHERE ts < ? ORDER BY ts LIMIT ?)`, ts, linkLimit)
		if err != nil {
			return 0, fmt.Errorf("archive: delete links: %w", err)
		}
		m, _ := res.RowsAffected()
		n += m
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("archive: commit: %w", err)
	}
	return n, nil
}
