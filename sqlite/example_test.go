package sqlite_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/eventkit/eventkit"
	"github.com/eventkit/eventkit/idempotency"
	"github.com/eventkit/eventkit/sqlite"
)

// A handler whose side effect is a row in the same database marks the
// event done in its own transaction: the row and the mark commit together,
// or neither does, so the row is written once however often the event
// arrives or the process dies.
func ExampleIdempotencyStore_CompleteTx() {
	dir, err := os.MkdirTemp("", "example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "ledger.db"))
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	store := sqlite.NewIdempotencyStore(db)
	defer store.Close()
	if _, err := db.Writer().ExecContext(ctx, `CREATE TABLE ledger (event TEXT NOT NULL, amount INTEGER NOT NULL)`); err != nil {
		log.Fatal(err)
	}

	book := eventkit.HandlerFunc(func(ctx context.Context, ev *eventkit.Event) error {
		claim, _ := idempotency.ClaimFrom(ctx)
		tx, err := db.BeginTx(ctx)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		if _, err := tx.ExecContext(ctx, `INSERT INTO ledger (event, amount) VALUES (?, ?)`, ev.ID, 100); err != nil {
			return err
		}
		if err := store.CompleteTx(ctx, tx, claim); err != nil {
			return eventkit.Retry(err) // fenced: another owner took the event over
		}
		return tx.Commit()
	})
	h := eventkit.Chain(book, idempotency.Middleware(store, idempotency.Group("ledger")))

	ev := &eventkit.Event{ID: "payment-1", Source: "/bank"}
	for range 3 { // delivered three times
		if err := h.Handle(ctx, ev); err != nil {
			log.Fatal(err)
		}
	}
	var rows int
	if err := db.Reader().QueryRowContext(ctx, `SELECT count(*) FROM ledger`).Scan(&rows); err != nil {
		log.Fatal(err)
	}
	fmt.Println("ledger rows:", rows)
	// Output: ledger rows: 1
}
