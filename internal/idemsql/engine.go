package idemsql

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/eventkit/eventkit/idempotency"
	"github.com/eventkit/eventkit/internal/groupcommit"
)

// DefaultConfig returns the settings both SQL stores start from: batches
// of up to 1024 calls with no lingering, one writer, a prune every minute
// in batches of 1000.
func DefaultConfig() idempotency.StoreConfig {
	return idempotency.StoreConfig{
		BatchSize:     1024,
		Writers:       1,
		PruneInterval: time.Minute,
		PruneBatch:    1000,
		Now:           time.Now,
	}
}

// PruneFunc deletes up to limit records that expired before now and hold
// no live lease, and reports how many.
type PruneFunc func(ctx context.Context, now time.Time, limit int) (int, error)

// Engine is the part of a SQL store that does not depend on the dialect:
// the group-commit batcher and the background pruner.
type Engine struct {
	b      *groupcommit.Batcher[Op, idempotency.Outcome]
	cancel context.CancelFunc
	pruner sync.WaitGroup
	once   sync.Once
}

// NewEngine starts the batcher over exec and, unless cfg turns it off, a
// pruner over prune. Close stops both.
func NewEngine(cfg idempotency.StoreConfig, exec groupcommit.Exec[Op, idempotency.Outcome], prune PruneFunc) *Engine {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.PruneBatch <= 0 {
		cfg.PruneBatch = 1000
	}
	e := &Engine{b: groupcommit.New(exec, groupcommit.Config{MaxBatch: cfg.BatchSize, MaxWait: cfg.BatchWait, Writers: cfg.Writers})}
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	if cfg.PruneInterval > 0 {
		e.pruner.Add(1)
		go e.pruneLoop(ctx, cfg, prune)
	}
	return e
}

// Claim implements [idempotency.Store]; concurrent calls share a
// transaction.
func (e *Engine) Claim(ctx context.Context, r idempotency.ClaimRequest) (idempotency.Outcome, error) {
	if err := idempotency.CheckClaim(r); err != nil {
		return idempotency.Outcome{}, err // before it joins a batch it would fail
	}
	return e.b.Do(ctx, Op{Kind: KindClaim, Claim: r})
}

// Complete implements [idempotency.Store]; concurrent calls share a
// transaction.
func (e *Engine) Complete(ctx context.Context, c idempotency.Claim, d idempotency.Completion) error {
	if idempotency.CheckClaim(idempotency.ClaimRequest{Key: c.Key, Owner: c.Owner}) != nil {
		return idempotency.ErrFenced // no claim holds such a key
	}
	_, err := e.b.Do(ctx, Op{Kind: KindComplete, Held: c, Done: d})
	return err
}

// Release implements [idempotency.Store]; concurrent calls share a
// transaction.
func (e *Engine) Release(ctx context.Context, c idempotency.Claim) error {
	if idempotency.CheckClaim(idempotency.ClaimRequest{Key: c.Key, Owner: c.Owner}) != nil {
		return idempotency.ErrFenced // no claim holds such a key
	}
	_, err := e.b.Do(ctx, Op{Kind: KindRelease, Held: c})
	return err
}

// Close stops the pruner, then runs the requests already queued and stops
// the batcher. Later calls fail. It is idempotent and does not close the
// database.
func (e *Engine) Close() error {
	e.once.Do(func() {
		e.cancel()
		e.pruner.Wait()
		e.b.Close()
	})
	return nil
}

func (e *Engine) pruneLoop(ctx context.Context, cfg idempotency.StoreConfig, prune PruneFunc) {
	defer e.pruner.Done()
	t := time.NewTicker(cfg.PruneInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
		// Small batches, one statement each: a claim waits for one batch
		// at most, never for the whole sweep.
		total := 0
		for ctx.Err() == nil {
			n, err := prune(ctx, cfg.Now(), cfg.PruneBatch)
			total += n
			if err != nil {
				if ctx.Err() == nil {
					cfg.Logger.Warn("idempotency: prune failed", "error", err)
				}
				break
			}
			if n < cfg.PruneBatch {
				break
			}
		}
		if total > 0 {
			cfg.Logger.Debug("idempotency: pruned expired records", "records", total)
		}
	}
}
