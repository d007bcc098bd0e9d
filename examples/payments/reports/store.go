package reports

import (
	"context"
	"database/sql"
	"io/fs"
	"strconv"
	"strings"

	"github.com/eventkit/eventkit/examples/payments/internal/sqlmigrate"
	"github.com/eventkit/eventkit/idempotency"
	"github.com/eventkit/eventkit/postgres"
	"github.com/eventkit/eventkit/sqlite"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
)

// versionTable is the goose table of reports' migrations: eventkit's own
// share the database (the idempotency records live next to the rows they
// guard) under goose's default one.
const versionTable = "reports_goose_db_version"

// store is the database reports keeps its rows in, SQLite or PostgreSQL.
// Statements are written once, with ? placeholders, in the SQL both
// understand; q turns them into the database's own.
type store struct {
	read   *sql.DB
	idem   idempotency.Store
	begin  func(ctx context.Context) (storeTx, error)
	q      func(string) string
	schema int64 // the migration version, which says which columns exist
	close  func()
}

// storeTx is one transaction of side effects and their done marks.
type storeTx interface {
	// exec runs statement q (? placeholders) and returns the rows it
	// changed.
	exec(ctx context.Context, q string, args ...any) (int64, error)
	// complete marks c done in the transaction; idempotency.ErrFenced when
	// another owner took the event over.
	complete(ctx context.Context, c idempotency.Claim) error
	commit(ctx context.Context) error
	rollback(ctx context.Context)
}

func openStore(ctx context.Context, cfg Config) (*store, error) {
	if cfg.PostgresDSN != "" {
		return openPostgres(ctx, cfg.PostgresDSN, cfg.MigrateTo)
	}
	return openSQLite(ctx, cfg.DBPath, cfg.MigrateTo)
}

func migrateStore(ctx context.Context, dialect goose.Dialect, db *sql.DB, dir string, to int64) (int64, error) {
	sub, err := fs.Sub(migrations, "migrations/"+dir)
	if err != nil {
		return 0, err
	}
	return sqlmigrate.UpTo(ctx, dialect, db, sub, versionTable, to)
}

func openSQLite(ctx context.Context, path string, migrateTo int64) (*store, error) {
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		return nil, err
	}
	schema, err := migrateStore(ctx, goose.DialectSQLite3, db.Writer(), "sqlite", migrateTo)
	if err != nil {
		db.Close()
		return nil, err
	}
	idem := sqlite.NewIdempotencyStore(db)
	return &store{
		read: db.Reader(),
		idem: idem,
		begin: func(ctx context.Context) (storeTx, error) {
			tx, err := db.BeginTx(ctx)
			return &sqliteTx{tx: tx, idem: idem, stmts: map[string]*sql.Stmt{}}, err
		},
		q:      func(q string) string { return q },
		schema: schema,
		close:  func() { idem.Close(); db.Close() },
	}, nil
}

// sqliteTx prepares each statement once per transaction: a batch runs the
// same few statements hundreds of times.
type sqliteTx struct {
	tx    *sql.Tx
	idem  *sqlite.IdempotencyStore
	stmts map[string]*sql.Stmt
}

func (t *sqliteTx) exec(ctx context.Context, q string, args ...any) (int64, error) {
	st, ok := t.stmts[q]
	if !ok {
		var err error
		if st, err = t.tx.PrepareContext(ctx, q); err != nil {
			return 0, err
		}
		t.stmts[q] = st
	}
	res, err := st.ExecContext(ctx, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (t *sqliteTx) complete(ctx context.Context, c idempotency.Claim) error {
	return t.idem.CompleteTx(ctx, t.tx, c)
}
func (t *sqliteTx) commit(context.Context) error { return t.tx.Commit() }
func (t *sqliteTx) rollback(context.Context)     { _ = t.tx.Rollback() }

func openPostgres(ctx context.Context, dsn string, migrateTo int64) (*store, error) {
	db, err := postgres.Open(ctx, dsn)
	if err != nil {
		return nil, err
	}
	// Queries and migrations go through database/sql on the same pool;
	// writes use pgx itself, which the idempotency store's CompleteTx
	// needs.
	read := stdlib.OpenDBFromPool(db.Pool())
	schema, err := migrateStore(ctx, goose.DialectPostgres, read, "postgres", migrateTo)
	if err != nil {
		read.Close()
		db.Close()
		return nil, err
	}
	idem := postgres.NewIdempotencyStore(db)
	return &store{
		read: read,
		idem: idem,
		begin: func(ctx context.Context) (storeTx, error) {
			tx, err := db.BeginTx(ctx)
			return &pgTx{tx: tx, idem: idem}, err
		},
		q:      dollarPlaceholders,
		schema: schema,
		close:  func() { idem.Close(); read.Close(); db.Close() },
	}, nil
}

// pgTx leaves statement preparation to pgx, which caches it per
// connection.
type pgTx struct {
	tx   pgx.Tx
	idem *postgres.IdempotencyStore
}

func (t *pgTx) exec(ctx context.Context, q string, args ...any) (int64, error) {
	tag, err := t.tx.Exec(ctx, dollarPlaceholders(q), args...)
	return tag.RowsAffected(), err
}

func (t *pgTx) complete(ctx context.Context, c idempotency.Claim) error {
	return t.idem.CompleteTx(ctx, t.tx, c)
}
func (t *pgTx) commit(ctx context.Context) error { return t.tx.Commit(ctx) }
func (t *pgTx) rollback(ctx context.Context)     { _ = t.tx.Rollback(ctx) }

// dollarPlaceholders numbers the ? placeholders of q for PostgreSQL. No
// statement of reports has a ? anywhere else.
func dollarPlaceholders(q string) string {
	var b strings.Builder
	n := 0
	for {
		i := strings.IndexByte(q, '?')
		if i < 0 {
			b.WriteString(q)
			return b.String()
		}
		n++
		b.WriteString(q[:i])
		b.WriteString("$" + strconv.Itoa(n))
		q = q[i+1:]
	}
}
