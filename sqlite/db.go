// Package sqlite keeps eventkit's state in a SQLite database through a pure
// Go driver (modernc.org/sqlite): the idempotency store, the lookback
// archive, its audit log and replay jobs, all in one [DB] whose migrations
// create every table.
//
//	db, err := sqlite.Open(ctx, "eventkit.db")
//	if err != nil {
//		return err
//	}
//	defer db.Close()
//	store := sqlite.NewIdempotencyStore(db)
//	defer store.Close()
//	h := eventkit.Chain(handler, idempotency.Middleware(store))
//
// The database runs in WAL mode with synchronous=NORMAL (a commit survives
// a process crash; an OS crash may lose the last ones) and a busy timeout.
// SQLite has one writer at a time, so every write of the process goes
// through one connection: the stores' group-commit writer and the caller's
// own transactions ([DB.BeginTx]) queue for it in Go instead of failing
// with SQLITE_BUSY. Reads use a pool of their own, and a connection of its
// own copies the WAL into the database file in the background, so that no
// write waits for that copy; [DB.Close] stops it.
//
// Parameters of a "file:" URI are kept, so a new database can take
// settings of its own. A database that holds only the idempotency store
// does better with 64 KiB pages, because its keys mostly grow at the end of
// the table and a commit then writes fewer, fuller pages to the WAL
// (docs/benchmarks.md has the figures); an archive, whose indexes take
// writes all over, does worse with them. The page size is fixed when the
// file is created:
//
//	db, err := sqlite.Open(ctx, "file:idempotency.db?_pragma=page_size(65536)")
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"runtime"
	"strings"
	"time"

	"github.com/pressly/goose/v3"
	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

//go:embed migrations/*.sql
var migrations embed.FS

// DB is an open SQLite database with eventkit's schema migrated.
type DB struct {
	write *sql.DB // one connection: every write of this process
	read  *sql.DB
	ckpt  *sql.DB // one connection: the checkpointer's
	stop  context.CancelFunc
	done  chan struct{} // closed when the checkpointer has stopped
}

// checkpointEvery is how often the checkpointer copies the WAL's committed
// pages into the database file.
const checkpointEvery = 100 * time.Millisecond

// Open opens (creating when missing) the database file at dsn, a path or a
// "file:" URI, and applies the migrations that have not run yet. Query
// parameters of a URI are kept; Open adds its own pragmas.
func Open(ctx context.Context, dsn string) (*DB, error) {
	if dsn == "" || strings.Contains(dsn, ":memory:") || strings.Contains(dsn, "mode=memory") {
		return nil, errors.New("sqlite: want a database file: a writer and readers on separate connections cannot share an in-memory database")
	}
	write, err := pool(dsn, writer, 1)
	if err != nil {
		return nil, err
	}
	db := &DB{write: write}
	if err := db.migrate(ctx); err != nil {
		write.Close()
		return nil, err
	}
	// Readers are opened after the migration, which set WAL mode on the file.
	// Every reader stays open once opened: database/sql keeps two idle by
	// default and closes the others as they come back, so a replay's
	// readers beside a query of the UI opened a new connection, with an
	// empty cache and its pragmas to run, again and again.
	if db.read, err = pool(dsn, reader, max(4, runtime.GOMAXPROCS(0))); err != nil {
		write.Close()
		return nil, err
	}
	if db.ckpt, err = pool(dsn, checkpointer, 1); err != nil {
		db.read.Close()
		write.Close()
		return nil, err
	}
	var ckptCtx context.Context
	ckptCtx, db.stop = context.WithCancel(context.Background())
	db.done = make(chan struct{})
	go db.checkpoint(ckptCtx)
	return db, nil
}

// pool opens the connections of role r on dsn, at most conns of them, each
// kept open once opened.
func pool(dsn string, r role, conns int) (*sql.DB, error) {
	db, err := sql.Open("sqlite", withParams(dsn, r))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", dsn, err)
	}
	db.SetMaxOpenConns(conns)
	db.SetMaxIdleConns(conns)
	return db, nil
}

// checkpoint copies the WAL into the database file in the background
// until ctx ends. Left to the writer, SQLite does it in the commit that
// takes the WAL past 1000 pages, and every write of the process waits for
// that copy and its fsync; here it runs beside them, on a connection of its
// own. A passive checkpoint never waits for the writer or the readers: it
// copies what no reader still needs and leaves the rest to the next one.
// The writer still checkpoints by itself once the WAL holds 16000 pages,
// should this one fall behind.
func (db *DB) checkpoint(ctx context.Context) {
	defer close(db.done)
	t := time.NewTicker(checkpointEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var busy, frames, copied int64
		// An error (the database closed under it, SQLITE_BUSY from a
		// checkpoint the writer runs) leaves the copy to the next tick.
		_ = db.ckpt.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &frames, &copied)
	}
}

// role is what a connection is for.
type role int

const (
	writer role = iota
	reader
	checkpointer
)

// withParams adds the connection settings of role to dsn. _txlock=immediate
// makes every transaction take the write lock when it begins, so a
// transaction that reads before it writes cannot fail to upgrade its lock.
func withParams(dsn string, r role) string {
	if !strings.HasPrefix(dsn, "file:") {
		dsn = "file:" + dsn
	}
	q := url.Values{}
	q.Set("_busy_timeout", "10000")
	q.Set("_journal_mode", "WAL")
	q.Set("_synchronous", "NORMAL")
	q.Set("_foreign_keys", "1")
	// SQLite's default page cache is 2 MiB a connection: an archive's
	// indexes outgrow it at once, and every evicted page is read back
	// with a system call. The cache is filled only as pages are used.
	switch r {
	case reader:
		q.Set("_query_only", "1")
		q.Add("_pragma", "cache_size(-65536)") // 64 MiB a reader
		// Readers map the file (up to 4 GiB) instead of reading pages with
		// a system call each into their cache: a replay's scan of the
		// archive reads 1.5× faster. The WAL's newest pages are still read
		// from the WAL, so a reader sees every committed write.
		q.Add("_pragma", "mmap_size(4294967296)")
	case writer:
		q.Set("_txlock", "immediate")
		q.Add("_pragma", "cache_size(-262144)") // 256 MiB
		// A statement that writes many rows (the stores' multi-row upserts)
		// keeps a statement journal to undo itself on error; in a temporary
		// file that costs a write system call per page it touches. It
		// serves no durability: the WAL does.
		q.Add("_pragma", "temp_store(memory)")
		// The checkpointer copies the WAL (DB.checkpoint); this is the
		// writer's own copy, should it fall behind.
		q.Add("_pragma", "wal_autocheckpoint(16000)")
	}
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	return dsn + sep + q.Encode()
}

func (db *DB) migrate(ctx context.Context) error {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return err
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, db.write, sub)
	if err != nil {
		return fmt.Errorf("sqlite: migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("sqlite: migrate: %w", err)
	}
	return nil
}

// BeginTx starts a write transaction on the writer connection. It waits
// while the connection is busy (a store's batch, another transaction) and
// holds it until Commit or Rollback: keep it short, and call no store
// method that writes (Claim, Complete, Release) before it ends, because
// they wait for the same connection.
func (db *DB) BeginTx(ctx context.Context) (*sql.Tx, error) {
	return db.write.BeginTx(ctx, nil)
}

// Writer returns the pool of the one writer connection.
func (db *DB) Writer() *sql.DB { return db.write }

// Reader returns a pool of read-only connections.
func (db *DB) Reader() *sql.DB { return db.read }

// Close stops the checkpointer and closes the database. Close the stores
// first.
func (db *DB) Close() error {
	db.stop()
	<-db.done
	return errors.Join(db.ckpt.Close(), db.read.Close(), db.write.Close())
}
