package idempotency_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventkit/eventkit"
	"github.com/eventkit/eventkit/idempotency"
)

// TestMiddlewareTakeoverFencesStaleOwner has owner a stall inside its
// handler past its lease; owner b takes the event over and records its side
// effect with the done mark. When a wakes up, its transactional mark is
// refused, its side effect rolls back, and the agent is told to retry, which
// then finds the event done.
func TestMiddlewareTakeoverFencesStaleOwner(t *testing.T) {
	const lease = 10 * time.Second
	db, store := openStore(t)
	if _, err := db.Writer().Exec(`CREATE TABLE effects (id INTEGER PRIMARY KEY, event TEXT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	var now atomic.Int64 // the hand clock both owners read
	now.Store(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()) }

	var calls atomic.Int32
	effect := eventkit.HandlerFunc(func(ctx context.Context, ev *eventkit.Event) error {
		calls.Add(1)
		claim, ok := idempotency.ClaimFrom(ctx)
		if !ok {
			return errors.New("no claim in the handler's context")
		}
		tx, err := db.BeginTx(ctx)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		if _, err := tx.ExecContext(ctx, `INSERT INTO effects (event) VALUES (?)`, ev.ID); err != nil {
			return err
		}
		if err := store.CompleteTx(ctx, tx, claim); err != nil {
			return eventkit.Retry(err)
		}
		return tx.Commit()
	})
	entered, wake := make(chan struct{}), make(chan struct{})
	stalling := eventkit.HandlerFunc(func(ctx context.Context, ev *eventkit.Event) error {
		close(entered)
		<-wake
		return effect.Handle(ctx, ev)
	})
	owner := func(name string, h eventkit.Handler) eventkit.Handler {
		return eventkit.Chain(h, idempotency.Middleware(store, idempotency.Owner(name), idempotency.Group("g"),
			idempotency.LeaseTTL(lease), idempotency.Clock(clock)))
	}
	a, aAgain, b := owner("a", stalling), owner("a", effect), owner("b", effect)
	ev := &eventkit.Event{ID: "e-1", Source: "/s", Topic: "t"}
	ctx := context.Background()

	aDone := make(chan error, 1)
	go func() { aDone <- a.Handle(ctx, ev) }()
	<-entered

	// While a's lease lives, b is told to retry later.
	err := b.Handle(ctx, ev)
	if !errors.Is(err, idempotency.ErrInFlightElsewhere) || eventkit.FlagOf(err) != eventkit.FlagRetry {
		t.Fatalf("b within a's lease: %v, want a retry for an event in flight elsewhere", err)
	}
	now.Add(int64(lease))
	if err := b.Handle(ctx, ev); err != nil {
		t.Fatalf("b after a's lease ended: %v", err)
	}

	close(wake)
	err = <-aDone
	if !errors.Is(err, idempotency.ErrFenced) || eventkit.FlagOf(err) != eventkit.FlagRetry {
		t.Fatalf("stale owner a: %v, want a retry wrapping ErrFenced", err)
	}
	if err := aAgain.Handle(ctx, ev); err != nil {
		t.Fatalf("a's retry: %v", err)
	}
	var rows int
	if err := db.Reader().QueryRow(`SELECT count(*) FROM effects`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != 1 || calls.Load() != 2 {
		t.Fatalf("%d side-effect rows from %d handler runs, want 1 from 2 (b's, and a's rolled back)", rows, calls.Load())
	}
}

// countingStore counts the completions the middleware sends.
type countingStore struct {
	idempotency.Store
	completes atomic.Int32
}

func (s *countingStore) Complete(ctx context.Context, c idempotency.Claim, d idempotency.Completion) error {
	s.completes.Add(1)
	return s.Store.Complete(ctx, c, d)
}

// TestMiddlewareTransactionalMark has a handler mark its claim done in its
// own transaction: the middleware sends no completion after it, and the
// event is done. When the handler's commit fails instead (a deferred
// constraint refuses it), the handler returns the commit's error: the claim
// is released, and the redelivered event runs again and commits.
func TestMiddlewareTransactionalMark(t *testing.T) {
	db, sqlStore := openStore(t)
	if _, err := db.Writer().Exec(`CREATE TABLE parents (id INTEGER PRIMARY KEY);
		CREATE TABLE effects (id INTEGER PRIMARY KEY, event TEXT NOT NULL,
			parent INTEGER REFERENCES parents (id) DEFERRABLE INITIALLY DEFERRED)`); err != nil {
		t.Fatal(err)
	}
	store := &countingStore{Store: sqlStore}
	var (
		breakCommit atomic.Bool
		calls       atomic.Int32
	)
	h := eventkit.Chain(eventkit.HandlerFunc(func(ctx context.Context, ev *eventkit.Event) error {
		calls.Add(1)
		claim, _ := idempotency.ClaimFrom(ctx)
		tx, err := db.BeginTx(ctx)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		parent := any(nil)
		if breakCommit.Load() {
			parent = 42 // no such parent: the commit fails
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO effects (event, parent) VALUES (?, ?)`, ev.ID, parent); err != nil {
			return err
		}
		if err := sqlStore.CompleteTx(ctx, tx, claim); err != nil {
			return eventkit.Retry(err)
		}
		return tx.Commit()
	}), idempotency.Middleware(store, idempotency.Group("g")))
	ctx := context.Background()
	effects := func() (n int) {
		t.Helper()
		if err := db.Reader().QueryRow(`SELECT count(*) FROM effects`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	if err := h.Handle(ctx, &eventkit.Event{ID: "e-1", Source: "/s", Topic: "t"}); err != nil {
		t.Fatal(err)
	}
	if n := store.completes.Load(); n != 0 {
		t.Fatalf("%d completions after a transactional mark, want 0", n)
	}
	if err := h.Handle(ctx, &eventkit.Event{ID: "e-1", Source: "/s", Topic: "t"}); err != nil || calls.Load() != 1 {
		t.Fatalf("duplicate: %v after %d handler runs, want nil after 1 (skipped as done)", err, calls.Load())
	}

	breakCommit.Store(true)
	ev := &eventkit.Event{ID: "e-2", Source: "/s", Topic: "t"}
	if err := h.Handle(ctx, ev); err == nil {
		t.Fatal("handler whose commit failed: nil error")
	}
	breakCommit.Store(false)
	if err := h.Handle(ctx, ev); err != nil {
		t.Fatalf("redelivery after a failed commit: %v", err)
	}
	if calls.Load() != 3 || effects() != 2 {
		t.Fatalf("%d handler runs and %d effects, want 3 and 2: e-2 ran again after its commit failed", calls.Load(), effects())
	}
	if n := store.completes.Load(); n != 0 {
		t.Fatalf("%d completions, want 0", n)
	}
}
