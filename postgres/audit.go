package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/eventkit/eventkit/lookback"
)

// AuditLog is a [lookback.AuditLog] in the database's lookback_audit table,
// next to the archive it audits.
type AuditLog struct {
	db  *DB
	now func() time.Time
}

// NewAuditLog returns the audit log in db. It starts nothing and needs no
// Close.
func NewAuditLog(db *DB) *AuditLog { return &AuditLog{db: db, now: time.Now} }

var _ lookback.AuditLog = (*AuditLog)(nil)

// Record implements [lookback.AuditLog]. An entry without At is stamped
// with the current time. Text PostgreSQL cannot hold (NUL bytes, invalid
// UTF-8) is stored with U+FFFD in its place rather than refused: an
// audited action must not go unrecorded.
func (l *AuditLog) Record(ctx context.Context, e lookback.AuditEntry) (int64, error) {
	if e.At.IsZero() {
		e.At = l.now()
	}
	var id int64
	err := l.db.pool.QueryRow(ctx, `INSERT INTO lookback_audit (at, actor, role, action, target, detail, outcome)
		VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
		e.At.UnixNano(), text(e.Actor), text(e.Role), text(e.Action), text(e.Target), text(e.Detail), text(e.Outcome)).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("audit: record: %w", err)
	}
	return id, nil
}

// List implements [lookback.AuditLog].
func (l *AuditLog) List(ctx context.Context, q lookback.AuditQuery) ([]lookback.AuditEntry, error) {
	return l.db.archiveReader().Audit(ctx, q)
}
