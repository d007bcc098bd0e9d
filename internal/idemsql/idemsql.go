// Package idemsql is what the SQL idempotency stores share: the batch of
// claims and marks that one group-commit transaction applies, and the rules
// that turn the rows a dialect's statements touched into answers. A dialect
// (package sqlite, package postgres) supplies the statements through [Tx].
//
// Every decision is made by a conditional statement in the database, never
// by Go code reading first and writing after, so that the stores stay
// correct with several processes (or several writers) on one database:
// claims are an upsert whose update only fires when the record is released
// or its lease has expired; marks are an update that only fires while the
// owner and fencing token still match.
package idemsql

import (
	"context"
	"errors"
	"time"

	"github.com/eventkit/eventkit/idempotency"
	"github.com/eventkit/eventkit/internal/groupcommit"
)

// Kind is what an [Op] does.
type Kind uint8

const (
	KindClaim Kind = iota + 1
	KindComplete
	KindRelease
)

// Op is one request to the store.
type Op struct {
	Kind  Kind
	Claim idempotency.ClaimRequest // KindClaim
	Held  idempotency.Claim        // KindComplete, KindRelease
	Done  idempotency.Completion   // KindComplete
}

// Call is an Op in a group-commit batch.
type Call = groupcommit.Call[Op, idempotency.Outcome]

// Finish is one conditional mark: to done (with Done) or released.
type Finish struct {
	Claim idempotency.Claim
	Done  idempotency.Completion
}

// Acquired is what a successful claim statement returns for a key.
type Acquired struct {
	Token     int64
	Attempt   int
	TakenOver bool
}

// Row is a record as read back.
type Row struct {
	State  idempotency.State
	Owner  string
	Token  int64
	Until  time.Time
	DoneAt time.Time
	Result []byte
}

// Tx runs a dialect's statements inside the batch's transaction.
type Tx interface {
	// Finish moves to state every listed claim whose record is still
	// claimed by the same owner and token, and returns the token of each
	// key it moved.
	Finish(ctx context.Context, to idempotency.State, fs []Finish) (map[string]int64, error)
	// Claim inserts each key, or takes it over where it is released or its
	// lease ended at or before now. Keys are distinct. It returns what each
	// acquired key became.
	Claim(ctx context.Context, rs []idempotency.ClaimRequest, now time.Time) (map[string]Acquired, error)
	// Lookup reads the records of keys; absent keys are missing from the map.
	Lookup(ctx context.Context, keys []string) (map[string]Row, error)
}

// Apply runs a batch in tx: marks first, then claims. All requests of a
// batch were made before any was answered, so any order is one the callers
// could have seen; marks first lets a claim find a key another worker just
// released.
func Apply(ctx context.Context, tx Tx, batch []*Call) error {
	var completes, releases, claims []*Call
	for _, c := range batch {
		switch c.Req.Kind {
		case KindComplete:
			completes = append(completes, c)
		case KindRelease:
			releases = append(releases, c)
		case KindClaim:
			claims = append(claims, c)
		}
	}
	if err := finish(ctx, tx, idempotency.Done, completes); err != nil {
		return err
	}
	if err := finish(ctx, tx, idempotency.Released, releases); err != nil {
		return err
	}
	return claim(ctx, tx, claims)
}

func finish(ctx context.Context, tx Tx, to idempotency.State, calls []*Call) error {
	if len(calls) == 0 {
		return nil
	}
	fs := make([]Finish, len(calls))
	for i, c := range calls {
		fs[i] = Finish{Claim: c.Req.Held, Done: c.Req.Done}
	}
	moved, err := tx.Finish(ctx, to, fs)
	if err != nil {
		return err
	}
	var missed []string
	for _, c := range calls {
		if tok, ok := moved[c.Req.Held.Key]; !ok || tok != c.Req.Held.Token {
			missed = append(missed, c.Req.Held.Key)
		}
	}
	if len(missed) == 0 {
		return nil
	}
	rows := map[string]Row{}
	if to == idempotency.Done {
		// A completion after a transactional mark finds the key done by
		// the same claim: that is success, not a fence.
		if rows, err = tx.Lookup(ctx, missed); err != nil {
			return err
		}
	}
	for _, c := range calls {
		if tok, ok := moved[c.Req.Held.Key]; ok && tok == c.Req.Held.Token {
			continue
		}
		row, ok := rows[c.Req.Held.Key]
		c.Err = Settled(row, ok, c.Req.Held)
	}
	return nil
}

// Settled answers a mark whose conditional update touched no row: nil when
// the record is done by the same claim already, [idempotency.ErrFenced]
// otherwise.
func Settled(row Row, found bool, c idempotency.Claim) error {
	if found && row.State == idempotency.Done && row.Owner == c.Owner && row.Token == c.Token {
		return nil
	}
	return idempotency.ErrFenced
}

// MarkedTx ends a transactional mark (a store's CompleteTx) whose update
// moved the record or not: one that did not is answered from the record
// as lookup reads it ([Settled]). A mark that holds is told to the
// middleware ([idempotency.MarkedDone]).
func MarkedTx(ctx context.Context, c idempotency.Claim, moved bool, lookup func(context.Context, []string) (map[string]Row, error)) error {
	if !moved {
		rows, err := lookup(ctx, []string{c.Key})
		if err != nil {
			return err
		}
		row, ok := rows[c.Key]
		if err := Settled(row, ok, c); err != nil {
			return err
		}
	}
	idempotency.MarkedDone(ctx, c)
	return nil
}

func claim(ctx context.Context, tx Tx, calls []*Call) error {
	if len(calls) == 0 {
		return nil
	}
	// A key asked for twice in one batch (a duplicate event handled by two
	// workers) goes to the database once; the later askers get the answer
	// they would have got right after the first.
	first := make(map[string]*Call, len(calls))
	unique := make([]idempotency.ClaimRequest, 0, len(calls))
	now := calls[0].Req.Claim.Now
	for _, c := range calls {
		r := c.Req.Claim
		if _, dup := first[r.Key]; dup {
			continue
		}
		first[r.Key] = c
		unique = append(unique, r)
		// The earliest clock of the batch decides expiry: a lease is never
		// taken over before every asker agrees that it ended.
		if r.Now.Before(now) {
			now = r.Now
		}
	}
	got, err := tx.Claim(ctx, unique, now)
	if err != nil {
		return err
	}
	var missed []string
	for _, r := range unique {
		if _, ok := got[r.Key]; !ok {
			missed = append(missed, r.Key)
		}
	}
	var rows map[string]Row
	if len(missed) > 0 {
		if rows, err = tx.Lookup(ctx, missed); err != nil {
			return err
		}
	}
	for _, r := range unique {
		c := first[r.Key]
		if a, ok := got[r.Key]; ok {
			c.Resp = idempotency.Outcome{
				Status:    idempotency.Acquired,
				Claim:     idempotency.Claim{Key: r.Key, Owner: r.Owner, Token: a.Token, Attempt: a.Attempt, Deadline: r.Until},
				TakenOver: a.TakenOver,
			}
			continue
		}
		c.Resp, c.Err = notAcquired(r.Key, rows)
	}
	for _, c := range calls {
		f := first[c.Req.Claim.Key]
		if f == c {
			continue
		}
		c.Resp, c.Err = f.Resp, f.Err
		if c.Resp.Status == idempotency.Acquired {
			c.Resp = idempotency.Outcome{Status: idempotency.HeldElsewhere, Claim: f.Resp.Claim}
		}
	}
	return nil
}

func notAcquired(key string, rows map[string]Row) (idempotency.Outcome, error) {
	row, ok := rows[key]
	switch {
	case !ok:
		return idempotency.Outcome{}, errors.New("idempotency: claim neither inserted nor found " + key)
	case row.State == idempotency.Done:
		return idempotency.Outcome{Status: idempotency.AlreadyDone, DoneAt: row.DoneAt, Result: row.Result}, nil
	}
	return idempotency.Outcome{
		Status: idempotency.HeldElsewhere,
		Claim:  idempotency.Claim{Key: key, Owner: row.Owner, Token: row.Token, Deadline: row.Until},
	}, nil
}
