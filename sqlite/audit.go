package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/eventkit/eventkit/internal/groupcommit"
	"github.com/eventkit/eventkit/lookback"
)

// AuditLog is a [lookback.AuditLog] in the database's lookback_audit table,
// next to the archive it audits.
//
// Entries are written by group commit: concurrent Records share one
// transaction, and each returns once its entry has committed. The
// database has one writer, which ingest and the idempotency store need
// too; written one transaction each, a flood of denied requests (every one
// of which is audited) would keep that writer busy and starve them.
type AuditLog struct {
	db    *DB
	now   func() time.Time
	batch *groupcommit.Batcher[lookback.AuditEntry, int64]
}

// NewAuditLog starts the audit log's writer on db; Close stops it.
func NewAuditLog(db *DB) *AuditLog {
	l := &AuditLog{db: db, now: time.Now}
	l.batch = groupcommit.New(l.write, groupcommit.Config{MaxBatch: 256})
	return l
}

// Close writes the entries already queued and stops the writer. It does
// not close the database.
func (l *AuditLog) Close() error {
	l.batch.Close()
	return nil
}

var _ lookback.AuditLog = (*AuditLog)(nil)

// Record implements [lookback.AuditLog]. An entry without At is stamped
// with the current time.
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
	tx, err := l.db.write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	st, err := tx.PrepareContext(ctx, `INSERT INTO lookback_audit (at, actor, role, action, target, detail, outcome)
		VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`)
	if err != nil {
		return err
	}
	defer st.Close()
	for _, c := range batch {
		e := c.Req
		if err := st.QueryRowContext(ctx, e.At.UnixNano(), e.Actor, e.Role, e.Action, e.Target, e.Detail, e.Outcome).Scan(&c.Resp); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// List implements [lookback.AuditLog].
func (l *AuditLog) List(ctx context.Context, q lookback.AuditQuery) ([]lookback.AuditEntry, error) {
	return l.db.archiveReader().Audit(ctx, q)
}
