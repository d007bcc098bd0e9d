package postgres

import (
	"context"

	"github.com/eventkit/eventkit/internal/archivesql"
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
//
// Text PostgreSQL cannot hold (NUL bytes, invalid UTF-8) is stored with
// U+FFFD in its place rather than refused: an audited action must not go
// unrecorded.
type AuditLog struct {
	*archivesql.AuditLog // Record, List, Close
}

// NewAuditLog starts the audit log's writers on db; Close stops them and
// does not close the database.
func NewAuditLog(db *DB) *AuditLog {
	return &AuditLog{archivesql.NewAuditLog(db.archiveReader(), func(ctx context.Context, batch []*archivesql.AuditCall) error {
		return writeAudit(ctx, db, batch)
	}, 2)}
}

var _ lookback.AuditLog = (*AuditLog)(nil)

// writeAudit writes a batch of entries in one transaction and one round
// trip.
func writeAudit(ctx context.Context, db *DB, batch []*archivesql.AuditCall) error {
	return pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
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
