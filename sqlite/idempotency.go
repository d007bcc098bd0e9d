package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/eventkit/eventkit/idempotency"
	"github.com/eventkit/eventkit/internal/idemsql"
)

// IdempotencyStore is an [idempotency.Store] (and [idempotency.Pruner]) in
// the database's idempotency table.
//
// Group commit: Claim, Complete and Release queue for one writer goroutine,
// which takes everything queued (up to BatchSize) and applies it in one
// transaction with a few multi-row statements. SQLite commits one writer at
// a time, so a transaction per call would cap the agent at a few thousand
// events per second; shared, a commit costs each call a fraction, and
// batches grow with the agent's Concurrency. A call waits for its batch's
// commit, so an answer is never given for a write that could still be lost
// to a process crash.
//
// Statements are prepared once on the writer connection and reused by
// every transaction: SQLite's parser would otherwise cost as much as the
// statements' work. A batch is cut into chunks of a power of two rows, so
// that a few shapes of each statement serve every batch size.
//
// Claim, Complete and Release are promoted from the engine every SQL store
// shares; Close stops the writer and the pruner.
type IdempotencyStore struct {
	*idemsql.Engine
	db    *DB
	now   func() time.Time
	stmts *stmtCache
}

// NewIdempotencyStore starts the store's writer and pruner on db; Close
// stops them. It reads these [idempotency.StoreOpt] settings: BatchSize
// (default 1024), BatchWait (default 0), PruneInterval (default 1m),
// PruneBatch (default 1000), StoreClock and StoreLogger. Writers is always
// 1: SQLite has one write lock, and the database one writer connection.
func NewIdempotencyStore(db *DB, opts ...idempotency.StoreOpt) *IdempotencyStore {
	cfg := idemsql.DefaultConfig()
	cfg.Apply(opts)
	cfg.Writers = 1
	s := &IdempotencyStore{db: db, now: cfg.Now, stmts: newStmtCache(db.write, cfg.Logger)}
	s.Engine = idemsql.NewEngine(cfg, s.exec, s.Prune)
	return s
}

// Close stops the writer and the pruner, then closes the prepared
// statements. It does not close the database.
func (s *IdempotencyStore) Close() error {
	err := s.Engine.Close()
	s.stmts.close()
	return err
}

func (s *IdempotencyStore) exec(ctx context.Context, batch []*idemsql.Call) error {
	tx, err := s.db.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("idempotency: begin: %w", err)
	}
	if err := idemsql.Apply(ctx, batchTx{tx, s.stmts}, batch); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("idempotency: commit: %w", err)
	}
	return nil
}

// CompleteTx marks c done inside the caller's transaction tx, begun with
// [DB.BeginTx], so that the caller's side effect and the mark commit
// together. It refuses with [idempotency.ErrFenced] when c no longer holds
// its key; the caller must then roll back. The record keeps the expiry set
// when it was claimed (the claim time plus the middleware's retention), and
// the result the handler gave [idempotency.SetResult] before the mark.
//
// When ctx is the handler's context, CompleteTx tells the middleware
// ([idempotency.MarkedDone]) that it need not complete the claim again: the
// handler must then return tx.Commit's error, so that a failed commit
// releases the event instead of losing it.
func (s *IdempotencyStore) CompleteTx(ctx context.Context, tx *sql.Tx, c idempotency.Claim) error {
	st, err := s.stmts.in(ctx, tx, completeTx)
	if err != nil {
		return fmt.Errorf("idempotency: complete %s: %w", c.Key, err)
	}
	res, err := st.ExecContext(ctx, s.now().UnixNano(), idempotency.ResultFrom(ctx), c.Key, c.Owner, c.Token)
	if err != nil {
		return fmt.Errorf("idempotency: complete %s: %w", c.Key, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	return idemsql.MarkedTx(ctx, c, n == 1, batchTx{tx, s.stmts}.Lookup)
}

const completeTx = `UPDATE idempotency SET state = 2, done_at = ?, result = ?
	WHERE key = ? AND owner = ? AND token = ? AND state = 1`

// stmtCache holds the store's statements, prepared on the writer
// connection when the store starts: every transaction holds that one
// connection, so none could be prepared later outside a transaction.
type stmtCache struct {
	m map[string]*sql.Stmt // read-only after newStmtCache
}

func newStmtCache(db *sql.DB, log *slog.Logger) *stmtCache {
	c := &stmtCache{m: map[string]*sql.Stmt{}}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	qs := []string{completeTx}
	for n := maxRows; n > 0; n >>= 1 {
		for kind := range statementParts {
			qs = append(qs, statement(kind, n))
		}
	}
	for _, q := range qs {
		st, err := db.Prepare(q)
		if err != nil {
			// Not fatal: in prepares it in each transaction instead.
			log.Warn("idempotency: prepare", "error", err)
			continue
		}
		c.m[q] = st
	}
	return c
}

// in returns q prepared for tx: database/sql reuses the statement prepared
// on the writer connection, which tx runs on.
func (c *stmtCache) in(ctx context.Context, tx *sql.Tx, q string) (*sql.Stmt, error) {
	if st, ok := c.m[q]; ok {
		return tx.StmtContext(ctx, st), nil
	}
	return tx.PrepareContext(ctx, q)
}

func (c *stmtCache) close() {
	for _, st := range c.m {
		st.Close()
	}
}

// ResetAttempts implements [idempotency.AttemptResetter]. It runs after a
// resume only, so it takes the writer on its own rather than joining a
// batch.
func (s *IdempotencyStore) ResetAttempts(ctx context.Context, c idempotency.Claim) error {
	res, err := s.db.write.ExecContext(ctx, `UPDATE idempotency SET attempt = 1
		WHERE key = ? AND owner = ? AND token = ? AND state = 1`, c.Key, c.Owner, c.Token)
	if err != nil {
		return fmt.Errorf("idempotency: reset attempts of %s: %w", c.Key, err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return errors.Join(idempotency.ErrFenced, err)
	}
	return nil
}

// Prune implements [idempotency.Pruner]: it deletes up to limit records
// that expired before now and hold no live lease.
func (s *IdempotencyStore) Prune(ctx context.Context, now time.Time, limit int) (int, error) {
	t := now.UnixNano()
	res, err := s.db.write.ExecContext(ctx, `DELETE FROM idempotency WHERE key IN (
		SELECT key FROM idempotency WHERE expires_at < ? AND (state <> 1 OR lease_until <= ?) LIMIT ?)`, t, t, limit)
	if err != nil {
		return 0, fmt.Errorf("idempotency: prune: %w", err)
	}
	n, err := res.RowsAffected()
	return int(n), err
}

// maxRows bounds the rows of one statement, well below SQLite's limit on
// parameters.
const maxRows = 512

// shapeRows is how many of n rows the next statement takes: a power of two,
// so that each statement has a few prepared shapes.
func shapeRows(n int) int {
	c := maxRows
	for c > n {
		c >>= 1
	}
	return c
}

// batchTx runs the engine's statements in SQLite's dialect.
type batchTx struct {
	tx    *sql.Tx
	stmts *stmtCache
}

func (b batchTx) Finish(ctx context.Context, to idempotency.State, fs []idemsql.Finish) (map[string]int64, error) {
	moved := make(map[string]int64, len(fs))
	for len(fs) > 0 {
		chunk := fs[:shapeRows(len(fs))]
		fs = fs[len(chunk):]
		var (
			q    string
			args []any
		)
		if to == idempotency.Done {
			q = statement("done", len(chunk))
			args = make([]any, 0, 6*len(chunk))
			for _, f := range chunk {
				args = append(args, f.Claim.Key, f.Claim.Owner, f.Claim.Token, f.Done.At.UnixNano(), f.Done.Expire.UnixNano(), f.Done.Result)
			}
		} else {
			q = statement("release", len(chunk))
			args = make([]any, 0, 3*len(chunk))
			for _, f := range chunk {
				args = append(args, f.Claim.Key, f.Claim.Owner, f.Claim.Token)
			}
		}
		if err := scanKeys(ctx, b, q, args, func(rows *sql.Rows) error {
			var (
				key string
				tok int64
			)
			if err := rows.Scan(&key, &tok); err != nil {
				return err
			}
			moved[key] = tok
			return nil
		}); err != nil {
			return nil, fmt.Errorf("idempotency: mark %s: %w", to, err)
		}
	}
	return moved, nil
}

func (b batchTx) Claim(ctx context.Context, rs []idempotency.ClaimRequest, now time.Time) (map[string]idemsql.Acquired, error) {
	got := make(map[string]idemsql.Acquired, len(rs))
	for len(rs) > 0 {
		chunk := rs[:shapeRows(len(rs))]
		rs = rs[len(chunk):]
		args := make([]any, 0, 5*len(chunk)+1)
		for _, r := range chunk {
			// The token of a new record is the batch's time (Claim.Token).
			args = append(args, r.Key, r.Owner, now.UnixNano(), r.Until.UnixNano(), r.Expire.UnixNano())
		}
		args = append(args, now.UnixNano())
		if err := scanKeys(ctx, b, statement("claim", len(chunk)), args, func(rows *sql.Rows) error {
			var (
				key string
				a   idemsql.Acquired
			)
			if err := rows.Scan(&key, &a.Token, &a.Attempt, &a.TakenOver); err != nil {
				return err
			}
			got[key] = a
			return nil
		}); err != nil {
			return nil, fmt.Errorf("idempotency: claim: %w", err)
		}
	}
	return got, nil
}

func (b batchTx) Lookup(ctx context.Context, keys []string) (map[string]idemsql.Row, error) {
	out := make(map[string]idemsql.Row, len(keys))
	for len(keys) > 0 {
		chunk := keys[:shapeRows(len(keys))]
		keys = keys[len(chunk):]
		args := make([]any, len(chunk))
		for i, k := range chunk {
			args[i] = k
		}
		if err := scanKeys(ctx, b, statement("lookup", len(chunk)), args, func(rows *sql.Rows) error {
			var (
				key    string
				r      idemsql.Row
				until  int64
				doneAt sql.NullInt64
			)
			if err := rows.Scan(&key, &r.State, &r.Owner, &r.Token, &until, &doneAt, &r.Result); err != nil {
				return err
			}
			r.Until = time.Unix(0, until)
			if doneAt.Valid {
				r.DoneAt = time.Unix(0, doneAt.Int64)
			}
			out[key] = r
			return nil
		}); err != nil {
			return nil, fmt.Errorf("idempotency: lookup: %w", err)
		}
	}
	return out, nil
}

func scanKeys(ctx context.Context, b batchTx, q string, args []any, scan func(*sql.Rows) error) error {
	st, err := b.stmts.in(ctx, b.tx, q)
	if err != nil {
		return err
	}
	rows, err := st.QueryContext(ctx, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// Statements for n rows, built once per size.
var statements sync.Map // "kind/n" → string

var statementParts = map[string]struct{ head, row, tail string }{
	"claim": {
		head: `INSERT INTO idempotency (key, state, owner, token, attempt, lease_until, expires_at) VALUES `,
		row:  `(?, 1, ?, ?, 1, ?, ?)`,
		tail: ` ON CONFLICT (key) DO UPDATE SET state = 1, owner = excluded.owner,
			token = max(idempotency.token + 1, excluded.token), attempt = idempotency.attempt + 1,
			lease_until = excluded.lease_until, expires_at = excluded.expires_at,
			done_at = NULL, result = NULL, taken_over = (idempotency.state = 1)
		WHERE idempotency.state = 3 OR (idempotency.state = 1 AND idempotency.lease_until <= ?)
		RETURNING key, token, attempt, taken_over`,
	},
	"done": {
		head: `UPDATE idempotency SET state = 2, done_at = v.column4, expires_at = v.column5, result = v.column6
		FROM (VALUES `,
		row: `(?, ?, ?, ?, ?, ?)`,
		tail: `) AS v WHERE idempotency.key = v.column1 AND idempotency.owner = v.column2
			AND idempotency.token = v.column3 AND idempotency.state = 1
		RETURNING idempotency.key, idempotency.token`,
	},
	"release": {
		head: `UPDATE idempotency SET state = 3 FROM (VALUES `,
		row:  `(?, ?, ?)`,
		tail: `) AS v WHERE idempotency.key = v.column1 AND idempotency.owner = v.column2
			AND idempotency.token = v.column3 AND idempotency.state = 1
		RETURNING idempotency.key, idempotency.token`,
	},
	"lookup": {
		head: `SELECT key, state, owner, token, lease_until, done_at, result FROM idempotency WHERE key IN (`,
		row:  `?`,
		tail: `)`,
	},
}

func statement(kind string, n int) string {
	id := kind + "/" + fmt.Sprint(n)
	if q, ok := statements.Load(id); ok {
		return q.(string)
	}
	p := statementParts[kind]
	var b strings.Builder
	b.WriteString(p.head)
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(p.row)
	}
	b.WriteString(p.tail)
	statements.Store(id, b.String())
	return b.String()
}
