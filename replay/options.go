package replay

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
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
	readers         int
	sample          int
	resume          func(id string) bool
	id              string
	leaseTTL        time.Duration
}

func defaultCfg() cfg {
	return cfg{
		logger:          slog.New(slog.DiscardHandler),
		now:             time.Now,
		pageSize:        lookback.MaxLimit,
		checkpointEvery: time.Second,
		maxInFlight:     8192,
		readers:         2,
		sample:          10,
		resume:          func(string) bool { return true },
		id:              defaultRunnerID(),
		leaseTTL:        30 * time.Second,
	}
}

// defaultRunnerID names the host and process, for an operator reading who
// holds a job, and adds a random suffix, since a pid is reused (by a
// restarted container, say) and two Runners in one process are distinct.
func defaultRunnerID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown-host"
	}
	return fmt.Sprintf("%s/%d/%04x", host, os.Getpid(), rand.N(1<<16))
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

// Readers sets how many slices of a job's records are read from the
// archive at once: a job with many records to send cuts its time range
// into consecutive slices, reads the next ones while it sends the first,
// and sends them in order all the same. 1 reads one page ahead only.
// Default 2.
func Readers(n int) Opt { return opt(func(c *cfg) { c.readers = max(n, 1) }) }

// SampleSize sets how many records DryRun returns. Default 10.
func SampleSize(n int) Opt { return opt(func(c *cfg) { c.sample = min(max(n, 0), lookback.MaxLimit) }) }

// ResumeOnly makes Run resume only the running jobs with these ids (none
// when given none), for a process that runs its own job next to a service
// that runs the others. Default: Run resumes every running job of the store
// that no other Runner holds.
func ResumeOnly(ids ...string) Opt {
	return opt(func(c *cfg) { c.resume = func(id string) bool { return slices.Contains(ids, id) } })
}

// RunnerID names the Runner in the leases of the jobs it runs, which the
// logs of other Runners show when they find a job held. Runners on one
// store need ids of their own: a Runner takes over at once a job whose
// lease bears its id. Default: host/pid/random suffix.
func RunnerID(id string) Opt {
	return opt(func(c *cfg) {
		if id != "" {
			c.id = id
		}
	})
}

// LeaseTTL sets how long a job stays this Runner's without a renewal. The
// Runner renews its jobs' leases, and looks for running jobs that no
// Runner holds, every third of it; once the process is killed, another
// Runner takes its jobs over when their leases expire. A shorter TTL means
// a quicker takeover and more writes to the database; the clocks of the
// hosts sharing a store must agree to well within it. Default 30s.
func LeaseTTL(d time.Duration) Opt {
	return opt(func(c *cfg) {
		if d > 0 {
			c.leaseTTL = max(d, 3*time.Millisecond)
		}
	})
}
