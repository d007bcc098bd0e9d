package archivesql

import (
	"context"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/eventkit/eventkit/internal/groupcommit"
	"github.com/eventkit/eventkit/lookback"
)

// AuditCall is one entry waiting for its batch; the writer sets its id.
type AuditCall = groupcommit.Call[lookback.AuditEntry, int64]

// AuditLog is the part of a [lookback.AuditLog] both stores share: entries
// are group-committed, so that concurrent Records share one transaction
// and each returns once its own entry has committed. Audited requests come
// in floods (every denied one is recorded); one transaction each, they
// would hold the database's writer, or its connections, that ingest and
// the stores need.
type AuditLog struct {
	r     Reader
	now   func() time.Time
	batch *groupcommit.Batcher[lookback.AuditEntry, int64]
}

// NewAuditLog starts as many goroutines as writers, which write batches of
// entries with write, each batch in one transaction; List reads with r.
// Close stops the goroutines.
func NewAuditLog(r Reader, write groupcommit.Exec[lookback.AuditEntry, int64], writers int) *AuditLog {
	return &AuditLog{r: r, now: time.Now,
		batch: groupcommit.New(write, groupcommit.Config{MaxBatch: 256, Writers: writers})}
}

// Record implements [lookback.AuditLog]. An entry without At is stamped
// with the current time.
func (l *AuditLog) Record(ctx context.Context, e lookback.AuditEntry) (int64, error) {
	if e.At.IsZero() {
		e.At = l.now()
	}
	// The actor and the action are indexed, and PostgreSQL refuses an index
	// entry over about 2.7 kB, which would fail the entry and every other
	// of its batch: an audited action must not go unrecorded for a long
	// name.
	e.Actor, e.Action = clip(e.Actor), clip(e.Action)
	id, err := l.batch.Do(ctx, e)
	if err != nil {
		return 0, fmt.Errorf("audit: record: %w", err)
	}
	return id, nil
}

// maxIndexed is the most bytes of an audit entry's actor or action kept.
const maxIndexed = 256

// clip cuts s to maxIndexed bytes on a character boundary, marking the cut.
func clip(s string) string {
	if len(s) <= maxIndexed {
		return s
	}
	const mark = "…"
	n := maxIndexed - len(mark)
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + mark
}

// List implements [lookback.AuditLog].
func (l *AuditLog) List(ctx context.Context, q lookback.AuditQuery) ([]lookback.AuditEntry, error) {
	q.Actor, q.Action = clip(q.Actor), clip(q.Action) // as Record stored them
	return l.r.Audit(ctx, q)
}

// Close writes the entries already queued and stops the writers. It does
// not close the database.
func (l *AuditLog) Close() error {
	l.batch.Close()
	return nil
}
