package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

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
