package idempotency

import (
	"log/slog"
	"time"
)

// StoreOpt configures a store that persists the state machine in a
// database (package sqlite, package postgres): how it batches calls into
// transactions and how it prunes expired records. Each store documents the
// settings it reads and its defaults.
//
//	store := sqlite.NewIdempotencyStore(db, idempotency.BatchSize(512), idempotency.PruneInterval(time.Minute))
type StoreOpt func(*StoreConfig)

// StoreConfig holds what StoreOpts set; a store fills in its defaults, then
// applies the options with [StoreConfig.Apply].
type StoreConfig struct {
	BatchSize     int
	BatchWait     time.Duration
	Writers       int
	PruneInterval time.Duration
	PruneBatch    int
	Now           func() time.Time
	Logger        *slog.Logger
}

// Apply applies opts to c.
func (c *StoreConfig) Apply(opts []StoreOpt) {
	for _, o := range opts {
		o(c)
	}
}

// BatchSize caps the calls that one transaction applies (group commit).
func BatchSize(n int) StoreOpt { return func(c *StoreConfig) { c.BatchSize = n } }

// BatchWait makes a store's writer linger up to d for more calls once its
// queue is empty. With 0, a batch holds what queued while the previous one
// committed, and a lone call waits for nobody.
func BatchWait(d time.Duration) StoreOpt { return func(c *StoreConfig) { c.BatchWait = d } }

// Writers sets how many batches a store runs at once.
func Writers(n int) StoreOpt { return func(c *StoreConfig) { c.Writers = n } }

// PruneInterval sets how often a store deletes expired records in the
// background; 0 turns its pruner off.
func PruneInterval(d time.Duration) StoreOpt { return func(c *StoreConfig) { c.PruneInterval = d } }

// PruneBatch sets how many records one prune statement deletes, so that
// claims wait behind one small statement at most.
func PruneBatch(n int) StoreOpt { return func(c *StoreConfig) { c.PruneBatch = n } }

// StoreClock replaces time.Now for a store's pruning and for the done time
// its transactional mark records.
func StoreClock(now func() time.Time) StoreOpt { return func(c *StoreConfig) { c.Now = now } }

// StoreLogger sets the logger of a store's background work. Default:
// discard.
func StoreLogger(l *slog.Logger) StoreOpt { return func(c *StoreConfig) { c.Logger = l } }
