// Package postgres keeps eventkit's state in PostgreSQL through pgx: the
// idempotency store, the lookback archive, its audit log and replay jobs,
// each a concern of one [DB] whose migrations create every table.
//
//	db, err := postgres.Open(ctx, "postgres://eventkit@db.internal/eventkit")
//	if err != nil {
//		return err
//	}
//	defer db.Close()
//	store := postgres.NewIdempotencyStore(db)
//	defer store.Close()
//	h := eventkit.Chain(handler, idempotency.Middleware(store))
//
// Every node of a consumer group points at the same database; the state
// machine's decisions are conditional statements, so nodes need no other
// coordination.
package postgres

import (
	"context"
	"embed"
	"fmt"
	"io/fs"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

//go:embed migrations/*.sql
var migrations embed.FS

// minConns is the pool size Open sets unless the DSN names one
// (pool_max_conns): the stores' writers and the application's own
// transactions share the pool.
const minConns = 16

// DB is an open PostgreSQL database with eventkit's schema migrated.
type DB struct {
	pool *pgxpool.Pool
}

// Open connects to dsn (a URL or key=value string, as pgx reads it) and
// applies the migrations that have not run yet. Several processes may
// open the same database at once: migrations take an advisory lock.
func Open(ctx context.Context, dsn string) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if !namesPoolSize(dsn) && cfg.MaxConns < minConns {
		cfg.MaxConns = minConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	db := &DB{pool: pool}
	if err := db.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return db, nil
}

// namesPoolSize reports whether dsn sets pool_max_conns, which pgxpool
// takes out of the parsed configuration: a pool capped on purpose (a small
// max_connections, pgbouncer) keeps its cap. pgx's own parser reads it, so
// quoting and both DSN forms are read as pgx reads them.
func namesPoolSize(dsn string) bool {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return false
	}
	_, set := cfg.RuntimeParams["pool_max_conns"]
	return set
}

func (db *DB) migrate(ctx context.Context) error {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return err
	}
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return err
	}
	sqlDB := stdlib.OpenDBFromPool(db.pool)
	defer sqlDB.Close()
	p, err := goose.NewProvider(goose.DialectPostgres, sqlDB, sub, goose.WithSessionLocker(locker))
	if err != nil {
		return fmt.Errorf("postgres: migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	return nil
}

// BeginTx starts a transaction for the caller's own writes, to be marked
// done with a store's CompleteTx.
func (db *DB) BeginTx(ctx context.Context) (pgx.Tx, error) { return db.pool.Begin(ctx) }

// Pool returns the connection pool.
func (db *DB) Pool() *pgxpool.Pool { return db.pool }

// Close closes the pool. Close the stores first.
func (db *DB) Close() { db.pool.Close() }
