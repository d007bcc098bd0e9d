package idempotency_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/eventkit/eventkit/idempotency"
	"github.com/eventkit/eventkit/sqlite"
	"go.uber.org/goleak"
)

// TestMain runs a child consumer when a test re-executes this binary as
// one (see restart_test.go), and otherwise the tests, failing the package
// if a goroutine outlives them.
func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(childMain())
	}
	goleak.VerifyTestMain(m)
}

// openStore opens a SQLite database in the test's temp dir and a store on
// it, both closed when the test ends.
func openStore(t testing.TB, opts ...idempotency.StoreOpt) (*sqlite.DB, *sqlite.IdempotencyStore) {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "eventkit.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	s := sqlite.NewIdempotencyStore(db, opts...)
	t.Cleanup(func() { s.Close() })
	return db, s
}
