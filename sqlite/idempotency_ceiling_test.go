package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkIdempotencyStatements measures the bound SQLite itself puts on
// the idempotency store: the store's own claim and done statements, rows
// per statement as a busy agent batches them, each transaction claiming
// new keys and marking done the previous transaction's, with no agent, no
// group commit and no Go code of the store around them. The store's rate
// in bench/storebench reads against this figure (events/s).
//
//	go test -run '^$' -bench IdempotencyStatements ./sqlite
func BenchmarkIdempotencyStatements(b *testing.B) {
	for _, rows := range []int{64, 256} {
		b.Run(fmt.Sprintf("rows=%d", rows), func(b *testing.B) {
			ctx := context.Background()
			db, err := Open(ctx, filepath.Join(b.TempDir(), "ceiling.db"))
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			claim, err := db.write.Prepare(statement("claim", rows))
			if err != nil {
				b.Fatal(err)
			}
			defer claim.Close()
			done, err := db.write.Prepare(statement("done", rows))
			if err != nil {
				b.Fatal(err)
			}
			defer done.Close()

			key := func(i int) string { return fmt.Sprintf("bench|/bench/source|0193a1b2-c3d4-7e5f-8a9b-%012d", i) }
			now := time.Now().UnixNano()
			claimArgs := make([]any, 0, 5*rows+1)
			doneArgs := make([]any, 0, 6*rows)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				first := i * rows
				claimArgs, doneArgs = claimArgs[:0], doneArgs[:0]
				for j := range rows {
					claimArgs = append(claimArgs, key(first+j), "owner", now, now+int64(time.Minute), now+int64(24*time.Hour))
					if i > 0 { // a new record's token is the claim's time
						doneArgs = append(doneArgs, key(first-rows+j), "owner", now, now, now+int64(24*time.Hour), nil)
					}
				}
				claimArgs = append(claimArgs, now)
				tx, err := db.write.BeginTx(ctx, nil)
				if err != nil {
					b.Fatal(err)
				}
				for _, st := range []struct {
					stmt *sql.Stmt
					args []any
				}{{done, doneArgs}, {claim, claimArgs}} {
					if len(st.args) == 0 {
						continue // the first transaction has nothing to mark done
					}
					rs, err := tx.Stmt(st.stmt).QueryContext(ctx, st.args...)
					if err != nil {
						b.Fatal(err)
					}
					n := 0
					for rs.Next() {
						n++
					}
					if err := rs.Err(); err != nil || n != rows {
						b.Fatalf("%d of %d rows returned: %v", n, rows, err)
					}
					rs.Close()
				}
				if err := tx.Commit(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*rows)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
