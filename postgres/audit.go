package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/eventkit/eventkit/internal/groupcommit"
	"github.com/eventkit/eventkit/lookback"
	"github.com/jackc/pgx/v5"
)

// AuditLog is a [lookback.AuditLog] in the database's lookback_audit table,
// next to the archive it audits.
//
// Entries are written by group commit: concurrent Records share one
// transaction (one round trip, one WAL flush), and each returns once its
// entry has committed. Written one transaction each, a flood of denied
// requests (every one of which is audited) would hold the pool's
// connections that ingest and queries need.
type AuditLog struct {
	db    *DB
	now   func() time.Time
	batch *groupcommit.Batcher[lookback.AuditEntry, int64]
}

// NewAuditLog starts the audit log's writers on db; Close stops them.
func NewAuditLog(db *DB) *AuditLog {
	l := &AuditLog{db: db, now: time.Now}
	l.batch = groupcommit.New(l.write, groupcommit.Config{MaxBatch: 256, Writers: 2})
	return l
}

// Close writes the entries already queued and stops the writers. It does
// not close the database.
func (l *AuditLog) Close() error {
	l.batch.Close()
	return nil
}

var _ lookback.AuditLog = (*AuditLog)(nil)

// Record implements [lookback.AuditLog]. An entry without At is stamped
// with the current time. Text PostgreSQL cannot hold (NUL bytes, invalid
// UTF-8) is stored with U+FFFD in its place rather than refused: an
// audited action must not go unrecorded.
func (l *AuditLog) Record(ctx context.Context, e lookback.AuditEntry) (int64, error) {
	if e.At.IsZero() {
		e.At = l.now()
	}
	id, err := l.batch.Do(ctx, e)
	if err != nil {
		return 0, fmt.Errorf("audit: record: %w", err)
	}
	return id, nil
}

func (l *AuditLog) write(ctx context.Context, batch []*groupcommit.Call[lookback.AuditEntry, int64]) error {
	return pgx.BeginFunc(ctx, l.db.pool, func(tx pgx.Tx) error {
		var b pgx.Batch
		for _, c := range batch {
			e := c.Req
			b.Queue(`INSERT INTO lookback_audit (at, actor, role, action, target, detail, outcome)
				VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
				e.At.UnixNano(), text(e.Actor), text(e.Role), text(e.Action), text(e.Target), text(e.Detail), text(e.Outcome)).
				QueryRow(func(row pgx.Row) error { return row.Scan(&c.Resp) })
		}
		return tx.SendBatch(ctx, &b).Close()
	})
}

// List implements [lookback.AuditLog].
func (l *AuditLog) List(ctx context.Context, q lookback.AuditQuery) ([]lookback.AuditEntry, error) {
	return l.db.archiveReader().Audit(ctx, q)
}
