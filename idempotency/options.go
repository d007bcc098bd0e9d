package idempotency

import (
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Opt configures [Middleware].
type Opt interface{ apply(*cfg) }

type opt struct{ fn func(*cfg) }

func (o opt) apply(c *cfg) { o.fn(c) }

type cfg struct {
	group      string
	owner      string
	lease      time.Duration
	retention  time.Duration
	timeout    time.Duration
	logger     *slog.Logger
	registerer prometheus.Registerer
	now        func() time.Time
}

func defaultCfg() cfg {
	return cfg{
		lease:     30 * time.Second,
		retention: 7 * 24 * time.Hour,
		timeout:   10 * time.Second,
		now:       time.Now,
	}
}

// Group sets the consumer group the keys belong to. Default: the group of
// the agent calling the handler ([consumer.GroupOf]).
func Group(group string) Opt { return opt{func(c *cfg) { c.group = group }} }

// Owner sets the owner id written into claims. It must be unique per
// process: two processes sharing an owner id would not fence each other.
// Default: host name, process id and a random suffix.
func Owner(id string) Opt { return opt{func(c *cfg) { c.owner = id }} }

// LeaseTTL sets how long a claim holds its key before another owner may
// take it over. Make it longer than the slowest handler call: a shorter
// lease lets a second node take over an event still being handled, and the
// first node's completion is then fenced off. While a crashed owner's lease
// lives, the agent retries the event without using up MaxRetries
// ([consumer.Uncounted]). Default 30s.
func LeaseTTL(d time.Duration) Opt { return opt{func(c *cfg) { c.lease = d }} }

// Retention sets how long done records are kept, which is how long a
// duplicate is recognised. It is independent of the lease TTL.
// Default 7 days (168h).
func Retention(d time.Duration) Opt { return opt{func(c *cfg) { c.retention = d }} }

// StoreTimeout bounds the Complete or Release that follows a handler call;
// they run even when the handler's context was cancelled by a revoke, so
// that the outcome is recorded. Default 10s.
func StoreTimeout(d time.Duration) Opt { return opt{func(c *cfg) { c.timeout = d }} }

// Logger sets the structured logger. Default: discard.
func Logger(l *slog.Logger) Opt { return opt{func(c *cfg) { c.logger = l }} }

// Registerer sets where the middleware registers its counters
// (eventkit_idempotency_events_total by outcome). Middlewares sharing a
// registry share the counters. Default: a private registry.
func Registerer(r prometheus.Registerer) Opt { return opt{func(c *cfg) { c.registerer = r }} }

// Clock replaces time.Now, for tests of leases and retention.
func Clock(now func() time.Time) Opt { return opt{func(c *cfg) { c.now = now }} }

// newOwnerID names this process: readable in a claim record, and unique
// thanks to the random suffix even when a pid is reused.
func newOwnerID() string {
	host, _ := os.Hostname()
	if host == "" {
		host = "host"
	}
	var r [6]byte
	_, _ = rand.Read(r[:])
	return host + "/" + strconv.Itoa(os.Getpid()) + "/" + hex.EncodeToString(r[:])
}
