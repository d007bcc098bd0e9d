package transfers

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/eventkit/eventkit/examples/payments/events"
	"github.com/eventkit/eventkit/examples/payments/internal/sqlmigrate"
	"github.com/eventkit/eventkit/sqlite"
)

//go:embed migrations/*.sql
var migrations embed.FS

// SQLiteStore is the [Store] in a SQLite database.
type SQLiteStore struct {
	db *sqlite.DB
}

// OpenSQLite opens (creating when missing) the database file at path and
// migrates the schema of transfers. Close closes it.
func OpenSQLite(ctx context.Context, path string) (*SQLiteStore, error) {
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		return nil, err
	}
	sub, _ := fs.Sub(migrations, "migrations")
	if err := sqlmigrate.Up(ctx, db.Writer(), sub, "transfers_goose_db_version"); err != nil {
		db.Close()
		return nil, err
	}
	return &SQLiteStore{db: db}, nil
}

// Close closes the database.
func (s *SQLiteStore) Close() error { return s.db.Close() }

// querier is what reads need: the reader pool, or a write transaction.
type querier interface {
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
}

func (s *SQLiteStore) Account(ctx context.Context, id string) (*Account, error) {
	return account(ctx, s.db.Reader(), id)
}

func (s *SQLiteStore) Transfer(ctx context.Context, id string) (*events.Transfer, error) {
	return transfer(ctx, s.db.Reader(), id)
}

func (s *SQLiteStore) Update(ctx context.Context, fn func(Tx) error) error {
	tx, err := s.db.BeginTx(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(sqliteTx{tx}); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

func (s *SQLiteStore) Pending(ctx context.Context, limit int) ([]Message, error) {
	rows, err := s.db.Reader().QueryContext(ctx,
		`SELECT seq, id, topic, key, type, schema, time, data FROM outbox ORDER BY seq LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("outbox: %w", err)
	}
	defer rows.Close()
	var out []Message
	for rows.Next() {
		var (
			m  Message
			us int64
		)
		if err := rows.Scan(&m.Seq, &m.ID, &m.Topic, &m.Key, &m.Type, &m.Schema, &us, &m.Data); err != nil {
			return nil, fmt.Errorf("outbox: %w", err)
		}
		m.Time = time.UnixMicro(us).UTC()
		out = append(out, m)
	}
	return out, rows.Err()
}

func (s *SQLiteStore) Published(ctx context.Context, msgs []Message) error {
	if len(msgs) == 0 {
		return nil
	}
	// Pending hands out a contiguous run of the oldest rows, so the run's
	// bounds name exactly the rows published.
	_, err := s.db.Writer().ExecContext(ctx, `DELETE FROM outbox WHERE seq BETWEEN ? AND ?`,
		msgs[0].Seq, msgs[len(msgs)-1].Seq)
	if err != nil {
		return fmt.Errorf("outbox: mark published: %w", err)
	}
	return nil
}

type sqliteTx struct{ tx *sql.Tx }

func (t sqliteTx) Account(ctx context.Context, id string) (*Account, error) {
	return account(ctx, t.tx, id)
}

func (t sqliteTx) Transfer(ctx context.Context, id string) (*events.Transfer, error) {
	return transfer(ctx, t.tx, id)
}

func (t sqliteTx) PutAccount(ctx context.Context, a *Account) error {
	doc, err := json.Marshal(a)
	if err != nil {
		return err
	}
	_, err = t.tx.ExecContext(ctx, `INSERT INTO accounts (id, version, updated_at, doc) VALUES (?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET version = excluded.version, updated_at = excluded.updated_at, doc = excluded.doc`,
		a.ID, a.Version, a.UpdatedAt.UnixMicro(), doc)
	if err != nil {
		return fmt.Errorf("put account %s: %w", a.ID, err)
	}
	return nil
}

func (t sqliteTx) PutTransfer(ctx context.Context, tr *events.Transfer) error {
	var settled sql.NullInt64
	if tr.SettledAt != nil {
		settled = sql.NullInt64{Int64: tr.SettledAt.UnixMicro(), Valid: true}
	}
	_, err := t.tx.ExecContext(ctx, `INSERT INTO transfers
		(id, from_account, to_account, amount_minor, currency, status, reason, created_at, settled_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET status = excluded.status, reason = excluded.reason, settled_at = excluded.settled_at`,
		tr.ID, tr.From, tr.To, tr.AmountMinor, tr.Currency, tr.Status, tr.Reason, tr.CreatedAt.UnixMicro(), settled)
	if err != nil {
		return fmt.Errorf("put transfer %s: %w", tr.ID, err)
	}
	return nil
}

func (t sqliteTx) Enqueue(ctx context.Context, m Message) error {
	_, err := t.tx.ExecContext(ctx, `INSERT INTO outbox (id, topic, key, type, schema, time, data) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		m.ID, m.Topic, m.Key, m.Type, m.Schema, m.Time.UnixMicro(), m.Data)
	if err != nil {
		return fmt.Errorf("outbox: enqueue %s: %w", m.Type, err)
	}
	return nil
}

func account(ctx context.Context, q querier, id string) (*Account, error) {
	var doc []byte
	err := q.QueryRowContext(ctx, `SELECT doc FROM accounts WHERE id = ?`, id).Scan(&doc)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("account %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("account %s: %w", id, err)
	}
	a := new(Account)
	if err := json.Unmarshal(doc, a); err != nil {
		return nil, fmt.Errorf("account %s: %w", id, err)
	}
	return a, nil
}

func transfer(ctx context.Context, q querier, id string) (*events.Transfer, error) {
	var (
		t       events.Transfer
		created int64
		settled sql.NullInt64
	)
	err := q.QueryRowContext(ctx, `SELECT id, from_account, to_account, amount_minor, currency, status, reason, created_at, settled_at
		FROM transfers WHERE id = ?`, id).Scan(&t.ID, &t.From, &t.To, &t.AmountMinor, &t.Currency, &t.Status, &t.Reason, &created, &settled)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("transfer %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("transfer %s: %w", id, err)
	}
	t.CreatedAt = time.UnixMicro(created).UTC()
	if settled.Valid {
		at := time.UnixMicro(settled.Int64).UTC()
		t.SettledAt = &at
	}
	return &t, nil
}
