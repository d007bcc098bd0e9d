package sqlite_test

import (
	"context"
	"testing"

	"github.com/eventkit/eventkit/lookback"
	"github.com/eventkit/eventkit/sqlite"
)

// BenchmarkAuditFlood records audit entries from 64 concurrent callers, as
// a flood of denied requests would.
//
//	go test -run '^$' -bench AuditFlood ./sqlite
func BenchmarkAuditFlood(b *testing.B) {
	l := sqlite.NewAuditLog(openDB(b))
	defer l.Close()
	e := lookback.AuditEntry{Actor: "anonymous", Action: "GET /api/v1/events", Target: "/api/v1/events?key=x", Detail: `{"remote":"10.0.0.1:5555"}`, Outcome: "denied: unknown token"}
	b.SetParallelism(32)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := l.Record(context.Background(), e); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "entries/s")
}
