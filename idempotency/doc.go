// Package idempotency makes event handlers idempotent across nodes and
// restarts: a duplicate event is a no-op, and two nodes never process the
// same event at once.
//
// Each event has a [Key] (consumer group + ce_source + ce_id). A [Store]
// keeps one record per key through a small state machine:
//
//	absent ──Claim──▶ claimed{owner, lease deadline, attempt, fencing token}
//	claimed ──Complete──▶ done{at, result}     kept for the retention period
//	claimed ──Release──▶ released{attempt}     the next Claim continues the count
//	claimed, lease expired ──Claim──▶ claimed by the new owner, token + 1
//
// [Middleware] drives it around the agent's handler:
//
//	store := sqlite.NewIdempotencyStore(db) // or postgres, or idempotency.NewMemoryStore()
//	...
//	h := eventkit.Chain(handler, idempotency.Middleware(store,
//		idempotency.LeaseTTL(30*time.Second),  // how long a claim holds the key
//		idempotency.Retention(7*24*time.Hour), // how long duplicates are recognised
//	))
//	c, err := consumer.New(h, consumer.Group("ledger"), ...)
//
// A handler whose side effect is a write to the same database marks the
// event done in its own transaction, so that the effect and the mark commit
// together, or neither does:
//
//	func(ctx context.Context, ev *eventkit.Event) error {
//		claim, _ := idempotency.ClaimFrom(ctx)
//		tx, err := db.BeginTx(ctx)
//		...
//		if _, err := tx.ExecContext(ctx, `INSERT INTO ledger ...`); err != nil { ... }
//		if err := store.CompleteTx(ctx, tx, claim); err != nil {
//			tx.Rollback()
//			return eventkit.Retry(err) // fenced: another owner took over
//		}
//		return tx.Commit()
//	}
//
// The claim record carries the attempt count, and the middleware raises the
// agent's count to it, so a crash loop still halts after MaxRetries.
//
// Stores: [MemoryStore] here, and the SQLite and PostgreSQL stores in
// packages sqlite and postgres. Every store passes the suite in
// idempotency/storetest.
package idempotency
