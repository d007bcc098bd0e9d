package sqlite

import (
	"context"

	"github.com/eventkit/eventkit/internal/archivesql"
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
	*archivesql.AuditLog // Record, List, Close
}

// NewAuditLog starts the audit log's writer on db; Close stops it and does
// not close the database.
func NewAuditLog(db *DB) *AuditLog {
	return &AuditLog{archivesql.NewAuditLog(db.archiveReader(), func(ctx context.Context, batch []*archivesql.AuditCall) error {
		return writeAudit(ctx, db, batch)
	}, 1)}
}

var _ lookback.AuditLog = (*AuditLog)(nil)

// writeAudit writes a batch of entries in one transaction on the writer
// connection.
func writeAudit(ctx context.Context, db *DB, batch []*archivesql.AuditCall) error {
	tx, err := db.write.BeginTx(ctx, nil)
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
