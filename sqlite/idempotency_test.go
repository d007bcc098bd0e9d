package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/eventkit/eventkit/idempotency"
	"github.com/eventkit/eventkit/idempotency/storetest"
	"github.com/eventkit/eventkit/sqlite"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// openDB opens a fresh database file in the test's temp dir.
func openDB(t testing.TB) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "eventkit.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func newStore(t testing.TB, opts ...idempotency.StoreOpt) (*sqlite.DB, *sqlite.IdempotencyStore) {
	t.Helper()
	db := openDB(t)
	s := sqlite.NewIdempotencyStore(db, opts...)
	t.Cleanup(func() { s.Close() })
	return db, s
}

// effecter writes side effects into a real table in the same transaction
// as the done mark.
type effecter struct {
	*sqlite.IdempotencyStore
	db *sqlite.DB
}

func (e effecter) Effect(ctx context.Context, c idempotency.Claim) error {
	tx, err := e.db.BeginTx(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT INTO effects (key) VALUES (?)`, c.Key); err != nil {
		return err
	}
	if err := e.CompleteTx(ctx, tx, c); err != nil {
		return err
	}
	return tx.Commit()
}

func (e effecter) Effects(ctx context.Context) (map[string]int, error) {
	rows, err := e.db.Reader().QueryContext(ctx, `SELECT key, count(*) FROM effects GROUP BY key`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var (
			k string
			n int
		)
		if err := rows.Scan(&k, &n); err != nil {
			return nil, err
		}
		out[k] = n
	}
	return out, rows.Err()
}

func TestIdempotencyStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) idempotency.Store {
		db, s := newStore(t, idempotency.PruneInterval(0))
		// No unique constraint: a second effect for a key must show.
		if _, err := db.Writer().Exec(`CREATE TABLE effects (id INTEGER PRIMARY KEY, key TEXT NOT NULL)`); err != nil {
			t.Fatal(err)
		}
		return effecter{s, db}
	})
}
