package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/eventkit/eventkit/internal/testkit"
	"github.com/eventkit/eventkit/sqlite"
)

// Open keeps the parameters of a "file:" URI, so that a new database can be
// given settings of its own, such as the larger pages an idempotency-only
// database does better with; Open's own settings still hold.
func TestOpenKeepsURIParameters(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "idempotency.db")
	db, err := sqlite.Open(ctx, "file:"+path+"?_pragma=page_size(65536)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var pageSize int
	var mode string
	if err := db.Reader().QueryRowContext(ctx, "PRAGMA page_size").Scan(&pageSize); err != nil {
		t.Fatal(err)
	}
	if err := db.Reader().QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if pageSize != 65536 || mode != "wal" {
		t.Fatalf("page_size %d, journal_mode %s; want 65536, wal", pageSize, mode)
	}
}

// Readers stay open once opened, so that their caches outlive a query:
// reads at once beyond two closed connections as they came back.
func TestReadersStayOpen(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "lookback.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	n := db.Reader().Stats().MaxOpenConnections
	// Hold n connections at once, then give them all back.
	conns := make([]*sql.Conn, n)
	for i := range conns {
		if conns[i], err = db.Reader().Conn(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range conns {
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if s := db.Reader().Stats(); s.Idle != n || s.MaxIdleClosed != 0 {
		t.Fatalf("%d of %d readers idle, %d closed for want of room", s.Idle, n, s.MaxIdleClosed)
	}
}

// Committed pages reach the database file without the writer copying them:
// the writer's own checkpoint waits for a WAL of 16000 pages, and the
// writes here fill a few hundred.
func TestWALCopiedInTheBackground(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "eventkit.db")
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Writer().ExecContext(ctx, "CREATE TABLE filler (b BLOB)"); err != nil {
		t.Fatal(err)
	}
	const size = 2 << 20
	if _, err := db.Writer().ExecContext(ctx, "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) INSERT INTO filler SELECT randomblob(1024) FROM n", size/1024); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, func() error {
		fi, err := os.Stat(path)
		if err != nil {
			return err
		}
		if fi.Size() < size {
			return fmt.Errorf("database file of %d bytes, want the %d written", fi.Size(), size)
		}
		return nil
	})
}
