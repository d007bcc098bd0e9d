package replay

import (
	"log/slog"
	"slices"
	"time"

	"github.com/eventkit/eventkit/lookback"
)

// Opt configures a [Runner].
type Opt interface{ apply(*cfg) }

type opt func(*cfg)

func (o opt) apply(c *cfg) { o(c) }

type cfg struct {
	audit           lookback.AuditLog
	logger          *slog.Logger
	now             func() time.Time
	pageSize        int
	checkpointEvery time.Duration
	maxInFlight     int
	sample          int
	resume          func(id string) bool
}

func defaultCfg() cfg {
	return cfg{
		logger:          slog.New(slog.DiscardHandler),
		now:             time.Now,
		pageSize:        lookback.MaxLimit,
		checkpointEvery: time.Second,
		maxInFlight:     8192,
		sample:          10,
		resume:          func(string) bool { return true },
	}
}

// Audit records every start, cancel and end of a job in log: who, the
// filter and target, the counts and the outcome. Default: none.
func Audit(log lookback.AuditLog) Opt { return opt(func(c *cfg) { c.audit = log }) }

// Logger sets the logger. Default: discard.
func Logger(l *slog.Logger) Opt { return opt(func(c *cfg) { c.logger = l }) }

// Clock sets the clock that stamps jobs. Default time.Now.
func Clock(now func() time.Time) Opt { return opt(func(c *cfg) { c.now = now }) }

// PageSize sets how many records a job reads from the archive at a time,
// 1 to lookback.MaxLimit. A rate-limited job reads at most a second's worth.
// Default lookback.MaxLimit (1000).
func PageSize(n int) Opt {
	return opt(func(c *cfg) { c.pageSize = min(max(n, 1), lookback.MaxLimit) })
}

// CheckpointInterval sets how often a job stores its progress at most. A
// resumed job reads back what was produced since its last checkpoint, so a
// shorter interval means a shorter scan after a crash and more writes to
// the database. Default 1s.
func CheckpointInterval(d time.Duration) Opt { return opt(func(c *cfg) { c.checkpointEvery = d }) }

// MaxInFlight bounds the records of one job produced and not yet
// acknowledged; it bounds memory, and how long Cancel waits. Default 8192.
func MaxInFlight(n int) Opt { return opt(func(c *cfg) { c.maxInFlight = max(n, 1) }) }

// SampleSize sets how many records DryRun returns. Default 10.
func SampleSize(n int) Opt { return opt(func(c *cfg) { c.sample = min(max(n, 0), lookback.MaxLimit) }) }

// ResumeOnly makes Run resume only the running jobs with these ids (none
// when given none), for a process that runs its own job next to a service
// that runs the others: two Runners must never run the same job. Default:
// Run resumes every running job of the store.
func ResumeOnly(ids ...string) Opt {
	return opt(func(c *cfg) { c.resume = func(id string) bool { return slices.Contains(ids, id) } })
}
