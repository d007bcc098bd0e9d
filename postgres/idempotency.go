package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/eventkit/eventkit/idempotency"
	"github.com/eventkit/eventkit/internal/idemsql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// IdempotencyStore is an [idempotency.Store] (and [idempotency.Pruner]) in
// the database's idempotency table, shared by every node of a group.
//
// Group commit: Claim, Complete and Release queue for a few writer
// goroutines, each of which applies everything queued (up to BatchSize) in
// one transaction with three statements over arrays (unnest), so a commit
// and a round trip are shared by a whole batch. Each call waits for its
// batch's commit. Two transactions that touch the same keys in different
// orders can deadlock; PostgreSQL then aborts one, and the store runs that
// batch again.
//
// Claim, Complete and Release are promoted from the engine every SQL store
// shares; Close stops the writers and the pruner.
type IdempotencyStore struct {
	*idemsql.Engine
	db  *DB
	now func() time.Time
}

// NewIdempotencyStore starts the store's writers and pruner on db; Close
// stops them. It reads these [idempotency.StoreOpt] settings: BatchSize
// (default 1024), BatchWait (default 0), Writers (default 2),
// PruneInterval (default 1m; every node prunes, skipping rows another has
// locked), PruneBatch (default 1000), StoreClock and StoreLogger.
func NewIdempotencyStore(db *DB, opts ...idempotency.StoreOpt) *IdempotencyStore {
	cfg := idemsql.DefaultConfig()
	cfg.Writers = 2
	cfg.Apply(opts)
	s := &IdempotencyStore{db: db, now: cfg.Now}
	s.Engine = idemsql.NewEngine(cfg, s.exec, s.Prune)
	return s
}

// maxAttempts bounds how often a batch runs again after a deadlock or a
// serialization failure.
const maxAttempts = 5

func (s *IdempotencyStore) exec(ctx context.Context, batch []*idemsql.Call) error {
	var err error
	for range maxAttempts {
		for _, c := range batch {
			c.Resp, c.Err = idempotency.Outcome{}, nil
		}
		if err = s.execOnce(ctx, batch); !retryable(err) {
			return err
		}
	}
	return err
}

func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40P01" || pe.Code == "40001") // deadlock, serialization
}

func (s *IdempotencyStore) execOnce(ctx context.Context, batch []*idemsql.Call) error {
	tx, err := s.db.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("idempotency: begin: %w", err)
	}
	if err := idemsql.Apply(ctx, batchTx{tx}, batch); err != nil {
		_ = tx.Rollback(ctx)
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("idempotency: commit: %w", err)
	}
	return nil
}

// CompleteTx marks c done inside the caller's transaction tx, so that the
// caller's side effect and the mark commit together. It refuses with
// [idempotency.ErrFenced] when c no longer holds its key; the caller must
// then roll back. The record keeps the expiry set when it was claimed (the
// claim time plus the middleware's retention), and the result the handler
// gave [idempotency.SetResult] before the mark.
//
// When ctx is the handler's context, CompleteTx tells the middleware
// ([idempotency.MarkedDone]) that it need not complete the claim again: the
// handler must then return tx.Commit's error, so that a failed commit
// releases the event instead of losing it.
func (s *IdempotencyStore) CompleteTx(ctx context.Context, tx pgx.Tx, c idempotency.Claim) error {
	tag, err := tx.Exec(ctx, `UPDATE idempotency SET state = 2, done_at = $1, result = $5
		WHERE key = $2 AND owner = $3 AND token = $4 AND state = 1`, s.now(), c.Key, c.Owner, c.Token, idempotency.ResultFrom(ctx))
	if err != nil {
		return fmt.Errorf("idempotency: complete %s: %w", c.Key, err)
	}
	return idemsql.MarkedTx(ctx, c, tag.RowsAffected() == 1, func(ctx context.Context, keys []string) (map[string]idemsql.Row, error) {
		return lookup(ctx, tx, keys)
	})
}

// ResetAttempts implements [idempotency.AttemptResetter]. It runs after a
// resume only, so it is one statement of its own rather than part of a
// batch.
func (s *IdempotencyStore) ResetAttempts(ctx context.Context, c idempotency.Claim) error {
	tag, err := s.db.pool.Exec(ctx, `UPDATE idempotency SET attempt = 1
		WHERE key = $1 AND owner = $2 AND token = $3 AND state = 1`, c.Key, c.Owner, c.Token)
	if err != nil {
		return fmt.Errorf("idempotency: reset attempts of %s: %w", c.Key, err)
	}
	if tag.RowsAffected() == 0 {
		return idempotency.ErrFenced
	}
	return nil
}

// Prune implements [idempotency.Pruner]: it deletes up to limit records
// that expired before now and hold no live lease.
func (s *IdempotencyStore) Prune(ctx context.Context, now time.Time, limit int) (int, error) {
	tag, err := s.db.pool.Exec(ctx, `DELETE FROM idempotency WHERE key IN (
		SELECT key FROM idempotency WHERE expires_at < $1 AND (state <> 1 OR lease_until <= $1)
		LIMIT $2 FOR UPDATE SKIP LOCKED)`, now, limit)
	if err != nil {
		return 0, fmt.Errorf("idempotency: prune: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// batchTx runs the engine's statements in PostgreSQL's dialect: one
// statement per kind, whatever the batch size, with the rows as arrays.
type batchTx struct{ tx pgx.Tx }

const (
	claimSQL = `INSERT INTO idempotency AS i (key, state, owner, token, attempt, lease_until, expires_at)
		SELECT k, 1, o, $6::bigint, 1, u, e FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::timestamptz[]) AS t(k, o, u, e)
		ORDER BY k
		ON CONFLICT (key) DO UPDATE SET state = 1, owner = excluded.owner,
			token = greatest(i.token + 1, excluded.token), attempt = i.attempt + 1,
			lease_until = excluded.lease_until, expires_at = excluded.expires_at,
			done_at = NULL, result = NULL, taken_over = (i.state = 1)
		WHERE i.state = 3 OR (i.state = 1 AND i.lease_until <= $5)
		RETURNING i.key, i.token, i.attempt, i.taken_over`
	doneSQL = `UPDATE idempotency AS i SET state = 2, done_at = v.d, expires_at = v.e, result = v.r
		FROM unnest($1::text[], $2::text[], $3::bigint[], $4::timestamptz[], $5::timestamptz[], $6::bytea[]) AS v(k, o, t, d, e, r)
		WHERE i.key = v.k AND i.owner = v.o AND i.token = v.t AND i.state = 1
		RETURNING i.key, i.token`
	releaseSQL = `UPDATE idempotency AS i SET state = 3
		FROM unnest($1::text[], $2::text[], $3::bigint[]) AS v(k, o, t)
		WHERE i.key = v.k AND i.owner = v.o AND i.token = v.t AND i.state = 1
		RETURNING i.key, i.token`
	lookupSQL = `SELECT key, state, owner, token, lease_until, done_at, result FROM idempotency WHERE key = ANY($1)`
)

func (b batchTx) Finish(ctx context.Context, to idempotency.State, fs []idemsql.Finish) (map[string]int64, error) {
	keys, owners, tokens := make([]string, len(fs)), make([]string, len(fs)), make([]int64, len(fs))
	for i, f := range fs {
		keys[i], owners[i], tokens[i] = f.Claim.Key, f.Claim.Owner, f.Claim.Token
	}
	var rows pgx.Rows
	var err error
	if to == idempotency.Done {
		at, exp, res := make([]time.Time, len(fs)), make([]time.Time, len(fs)), make([][]byte, len(fs))
		for i, f := range fs {
			at[i], exp[i], res[i] = f.Done.At, f.Done.Expire, f.Done.Result
		}
		rows, err = b.tx.Query(ctx, doneSQL, keys, owners, tokens, at, exp, res)
	} else {
		rows, err = b.tx.Query(ctx, releaseSQL, keys, owners, tokens)
	}
	if err != nil {
		return nil, fmt.Errorf("idempotency: mark %s: %w", to, err)
	}
	moved := make(map[string]int64, len(fs))
	var (
		key string
		tok int64
	)
	_, err = pgx.ForEachRow(rows, []any{&key, &tok}, func() error {
		moved[key] = tok
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("idempotency: mark %s: %w", to, err)
	}
	return moved, nil
}

// ceilMicro rounds t up to PostgreSQL's microseconds: pgx cuts the
// nanoseconds off, which would end a lease (or a record's retention) up to
// a microsecond before its deadline, and let another owner take over a
// live lease.
func ceilMicro(t time.Time) time.Time {
	if c := t.Truncate(time.Microsecond); c.Before(t) {
		return c.Add(time.Microsecond)
	}
	return t
}

func (b batchTx) Claim(ctx context.Context, rs []idempotency.ClaimRequest, now time.Time) (map[string]idemsql.Acquired, error) {
	n := len(rs)
	keys, owners, until, exp := make([]string, n), make([]string, n), make([]time.Time, n), make([]time.Time, n)
	for i, r := range rs {
		keys[i], owners[i], until[i], exp[i] = r.Key, r.Owner, ceilMicro(r.Until), ceilMicro(r.Expire)
	}
	// The token of a new record is the batch's time (Claim.Token).
	rows, err := b.tx.Query(ctx, claimSQL, keys, owners, until, exp, now, now.UnixNano())
	if err != nil {
		return nil, fmt.Errorf("idempotency: claim: %w", err)
	}
	got := make(map[string]idemsql.Acquired, n)
	var (
		key string
		a   idemsql.Acquired
	)
	_, err = pgx.ForEachRow(rows, []any{&key, &a.Token, &a.Attempt, &a.TakenOver}, func() error {
		got[key] = a
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("idempotency: claim: %w", err)
	}
	return got, nil
}

func (b batchTx) Lookup(ctx context.Context, keys []string) (map[string]idemsql.Row, error) {
	return lookup(ctx, b.tx, keys)
}

func lookup(ctx context.Context, tx pgx.Tx, keys []string) (map[string]idemsql.Row, error) {
	rows, err := tx.Query(ctx, lookupSQL, keys)
	if err != nil {
		return nil, fmt.Errorf("idempotency: lookup: %w", err)
	}
	out := make(map[string]idemsql.Row, len(keys))
	var (
		key    string
		r      idemsql.Row
		state  int16
		doneAt *time.Time
	)
	_, err = pgx.ForEachRow(rows, []any{&key, &state, &r.Owner, &r.Token, &r.Until, &doneAt, &r.Result}, func() error {
		row := r
		row.State = idempotency.State(state)
		if doneAt != nil {
			row.DoneAt = *doneAt
		}
		row.Result = append([]byte(nil), r.Result...)
		if r.Result == nil {
			row.Result = nil
		}
		out[key] = row
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("idempotency: lookup: %w", err)
	}
	return out, nil
}
