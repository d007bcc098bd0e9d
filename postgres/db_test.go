package postgres_test

import (
	"context"
	"testing"

	"github.com/eventkit/eventkit/internal/pgtest"
	"github.com/eventkit/eventkit/postgres"
)

// A pool capped in the DSN (a small max_connections, pgbouncer) keeps its
// cap; without one, Open sizes the pool for the stores' writers.
func TestOpenKeepsThePoolSizeOfTheDSN(t *testing.T) {
	dsn := pgtest.DSN(t)
	for _, c := range []struct {
		dsn  string
		want int32
	}{{dsn + "&pool_max_conns=3", 3}, {dsn, 16}} {
		db, err := postgres.Open(context.Background(), c.dsn)
		if err != nil {
			t.Fatal(err)
		}
		if got := db.Pool().Config().MaxConns; got != c.want {
			t.Errorf("%s: MaxConns %d, want %d", c.dsn, got, c.want)
		}
		db.Close()
	}
	for dsn, want := range map[string]bool{
		"host=db user=app pool_max_conns=3":                      true,
		"pool_max_conns = 3 host=db":                             true,
		"host=db password=xpool_max_conns=3":                     false,
		"postgres://app@db/x?sslmode=disable":                    false,
		"postgresql://app@db/x?pool_max_conns=2&sslmode=disable": true,
		"host=db user=app password='s3cr3t pool_max_conns=1'":    false,
		"host=db application_name='x pool_max_conns = 2'":        false,
	} {
		if got := postgres.NamesPoolSize(dsn); got != want {
			t.Errorf("%q names the pool size: %v, want %v", dsn, got, want)
		}
	}
}
