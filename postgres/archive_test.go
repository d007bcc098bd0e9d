package postgres_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/eventkit/eventkit/lookback"
	"github.com/eventkit/eventkit/lookback/archivetest"
	"github.com/eventkit/eventkit/postgres"
)

func TestArchive(t *testing.T) {
	archivetest.Run(t, func(t *testing.T) lookback.Archive { return postgres.NewArchive(openDB(t)) })
}

func TestAuditLog(t *testing.T) {
	archivetest.RunAudit(t, func(t *testing.T) lookback.AuditLog {
		l := postgres.NewAuditLog(openDB(t))
		t.Cleanup(func() { l.Close() })
		return l
	})
}

// A batch whose payload exceeds one statement's bound is inserted in
// chunks, in one transaction, each record once: PostgreSQL refuses a
// message over 1 GB, which thousands of large records would reach.
func TestAppendChunksLargeBatches(t *testing.T) {
	defer postgres.SetStatementBytes(1 << 10)()
	a := postgres.NewArchive(openDB(t))
	ctx := context.Background()
	value := bytes.Repeat([]byte("v"), 300)
	var recs []lookback.Record
	for i := range 50 {
		recs = append(recs, lookback.Record{Topic: "big", Partition: 0, Offset: int64(i), Timestamp: time.Unix(int64(i), 0), Value: value})
	}
	recs = append(recs, lookback.Record{Topic: "big", Partition: 0, Offset: 50, Timestamp: time.Unix(50, 0), Value: bytes.Repeat([]byte("x"), 4<<10)})
	if err := a.Append(ctx, recs, nil); err != nil {
		t.Fatal(err)
	}
	if n, err := a.Count(ctx, lookback.Filter{Topic: "big"}); err != nil || n != 51 {
		t.Fatalf("count %d, %v; want 51", n, err)
	}
	if r, err := a.Get(ctx, "big", 0, 50); err != nil || len(r.Value) != 4<<10 {
		t.Fatalf("the record larger than the bound: %d bytes, %v", len(r.Value), err)
	}
	topics, err := a.Topics(ctx)
	if err != nil || len(topics) != 1 || topics[0].Count != 51 {
		t.Fatalf("topics %+v, %v; want big with 51", topics, err)
	}
}
