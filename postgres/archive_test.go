package postgres_test

import (
	"testing"

	"github.com/eventkit/eventkit/lookback"
	"github.com/eventkit/eventkit/lookback/archivetest"
	"github.com/eventkit/eventkit/postgres"
)

func TestArchive(t *testing.T) {
	archivetest.Run(t, func(t *testing.T) lookback.Archive { return postgres.NewArchive(openDB(t)) })
}

func TestAuditLog(t *testing.T) {
	archivetest.RunAudit(t, func(t *testing.T) lookback.AuditLog {
		l := postgres.NewAuditLog(openDB(t))
		t.Cleanup(func() { l.Close() })
		return l
	})
}
