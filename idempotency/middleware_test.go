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
