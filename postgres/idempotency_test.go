package postgres_test

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/eventkit/eventkit/idempotency"
	"github.com/eventkit/eventkit/idempotency/storetest"
	"github.com/eventkit/eventkit/internal/pgtest"
	"github.com/eventkit/eventkit/postgres"
	"github.com/jackc/pgx/v5"
	"go.uber.org/goleak"
)

// TestMain shares one throwaway cluster among the tests, and fails the
// package if a goroutine outlives them.
func TestMain(m *testing.M) {
	code := pgtest.Main(m)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}

func openDB(t testing.TB) *postgres.DB {
	t.Helper()
	db, err := postgres.Open(context.Background(), pgtest.DSN(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	return db
}

// effecter writes side effects into a real table in the same transaction
// as the done mark.
type effecter struct {
	*postgres.IdempotencyStore
	db *postgres.DB
}

func (e effecter) Effect(ctx context.Context, c idempotency.Claim) error {
	return pgx.BeginFunc(ctx, e.db.Pool(), func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO effects (key) VALUES ($1)`, c.Key); err != nil {
			return err
		}
		return e.CompleteTx(ctx, tx, c)
	})
}

func (e effecter) Effects(ctx context.Context) (map[string]int, error) {
	rows, err := e.db.Pool().Query(ctx, `SELECT key, count(*) FROM effects GROUP BY key`)
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	var (
		k string
		n int
	)
	_, err = pgx.ForEachRow(rows, []any{&k, &n}, func() error { out[k] = n; return nil })
	return out, err
}

func TestIdempotencyStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) idempotency.Store {
		db := openDB(t)
		s := postgres.NewIdempotencyStore(db, idempotency.PruneInterval(0))
		t.Cleanup(func() { s.Close() })
		// No unique constraint: a second effect for a key must show.
		if _, err := db.Pool().Exec(context.Background(), `CREATE TABLE effects (id bigserial PRIMARY KEY, key text NOT NULL)`); err != nil {
			t.Fatal(err)
		}
		return effecter{s, db}
	})
}
