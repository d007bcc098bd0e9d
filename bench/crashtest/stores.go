package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/eventkit/eventkit"
	"github.com/eventkit/eventkit/idempotency"
	"github.com/eventkit/eventkit/internal/pgtest"
	"github.com/eventkit/eventkit/postgres"
	"github.com/eventkit/eventkit/sqlite"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// backend is a database as the harness prepares and checks it, and as the
// consumer child writes to it.
type backend struct {
	// prepare makes a fresh database with the side-effect table and
	// returns the DSN children open, a connection for the checks, and what
	// removes it all.
	prepare func(ctx context.Context) (dsn string, db *sql.DB, stop func(), err error)
	// open is the consumer child's side: the store, and the handler's work
	// (insert one row for ev and mark c done in the same transaction).
	open func(ctx context.Context, dsn string) (*sink, error)
}

type sink struct {
	store  idempotency.Store
	effect func(ctx context.Context, c idempotency.Claim, ev *eventkit.Event) error
	close  func()
}

var backends = map[string]backend{
	"sqlite":   {prepare: prepareSQLite, open: openSQLite},
	"postgres": {prepare: preparePostgres, open: openPostgres},
}

// The side-effect table has no unique constraint, so that an event's
// second effect would show as a second row.
const (
	sqliteEffects   = `CREATE TABLE effects (id INTEGER PRIMARY KEY, event TEXT NOT NULL, record TEXT NOT NULL)`
	postgresEffects = `CREATE TABLE effects (id bigserial PRIMARY KEY, event text NOT NULL, record text NOT NULL)`
)

func prepareSQLite(ctx context.Context) (string, *sql.DB, func(), error) {
	dir, err := os.MkdirTemp("", "eventkit-crashtest-")
	if err != nil {
		return "", nil, nil, err
	}
	path := filepath.Join(dir, "eventkit.db")
	db, err := sqlite.Open(ctx, path)
	if err == nil {
		_, err = db.Writer().ExecContext(ctx, sqliteEffects)
	}
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, nil, err
	}
	return path, db.Reader(), func() { db.Close(); os.RemoveAll(dir) }, nil
}

func openSQLite(ctx context.Context, dsn string) (*sink, error) {
	db, err := sqlite.Open(ctx, dsn)
	if err != nil {
		return nil, err
	}
	store := sqlite.NewIdempotencyStore(db)
	effect := func(ctx context.Context, c idempotency.Claim, ev *eventkit.Event) error {
		tx, err := db.BeginTx(ctx)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		if _, err := tx.ExecContext(ctx, `INSERT INTO effects (event, record) VALUES (?, ?)`, ev.ID, ev.Coordinates()); err != nil {
			return err
		}
		if err := store.CompleteTx(ctx, tx, c); err != nil {
			return err
		}
		return tx.Commit()
	}
	return &sink{store: store, effect: effect, close: func() { store.Close(); db.Close() }}, nil
}

func preparePostgres(ctx context.Context) (string, *sql.DB, func(), error) {
	cluster, err := pgtest.Start(ctx)
	if errors.Is(err, pgtest.ErrNotInstalled) {
		return "", nil, nil, fmt.Errorf("%w (Debian: apt-get install postgresql, or make deps)", err)
	}
	if err != nil {
		return "", nil, nil, err
	}
	dsn, err := cluster.CreateDatabase(ctx)
	var db *postgres.DB
	if err == nil {
		db, err = postgres.Open(ctx, dsn)
	}
	if err != nil {
		cluster.Stop()
		return "", nil, nil, err
	}
	if _, err := db.Pool().Exec(ctx, postgresEffects); err != nil {
		db.Close()
		cluster.Stop()
		return "", nil, nil, err
	}
	sqlDB := stdlib.OpenDBFromPool(db.Pool())
	return dsn, sqlDB, func() { sqlDB.Close(); db.Close(); cluster.Stop() }, nil
}

func openPostgres(ctx context.Context, dsn string) (*sink, error) {
	db, err := postgres.Open(ctx, dsn)
	if err != nil {
		return nil, err
	}
	store := postgres.NewIdempotencyStore(db)
	effect := func(ctx context.Context, c idempotency.Claim, ev *eventkit.Event) error {
		return pgx.BeginFunc(ctx, db.Pool(), func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `INSERT INTO effects (event, record) VALUES ($1, $2)`, ev.ID, ev.Coordinates()); err != nil {
				return err
			}
			return store.CompleteTx(ctx, tx, c)
		})
	}
	return &sink{store: store, effect: effect, close: func() { store.Close(); db.Close() }}, nil
}
