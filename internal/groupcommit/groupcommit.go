// Package groupcommit coalesces concurrent requests into batches that a
// writer goroutine executes in one transaction each: with many callers,
// the cost of a commit is shared by a whole batch.
//
//	b := groupcommit.New(exec, groupcommit.Config{MaxBatch: 1024})
//	defer b.Close()
//	resp, err := b.Do(ctx, req) // blocks until req's batch committed
//
// A writer takes the first queued request, then whatever else is queued
// (up to MaxBatch), lingering up to MaxWait for more, and runs them. While
// one batch commits the next one queues, so batches grow with load and a
// lone request waits for nobody.
package groupcommit

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// ErrClosed is returned by Do after Close.
var ErrClosed = errors.New("groupcommit: closed")

// Config sizes the batches.
type Config struct {
	// MaxBatch caps the requests in one batch. Default 1024.
	MaxBatch int
	// MaxWait is how long a writer lingers for more requests once the queue
	// is empty. Default 0: take what is queued and go.
	MaxWait time.Duration
	// Writers is how many batches may run at once. Default 1, which is what
	// SQLite wants; a server database may take more.
	Writers int
}

// Call is one request and its answer. Exec fills Resp or Err.
type Call[Req, Resp any] struct {
	Req  Req
	Resp Resp
	Err  error
	done chan struct{}
}

// Exec runs a batch. It sets each call's Resp or Err; an error it returns
// is given to every call whose Err it left nil (the transaction failed).
type Exec[Req, Resp any] func(ctx context.Context, batch []*Call[Req, Resp]) error

// Batcher runs batches of requests through an Exec.
type Batcher[Req, Resp any] struct {
	exec Exec[Req, Resp]
	cfg  Config
	in   chan *Call[Req, Resp]
	pool sync.Pool

	mu      sync.RWMutex // Do holds it shared while it enqueues; Close exclusively
	closed  bool
	stop    chan struct{}
	ctx     context.Context
	cancel  context.CancelFunc
	writers sync.WaitGroup
}

// New starts the writers. Close stops them.
func New[Req, Resp any](exec Exec[Req, Resp], cfg Config) *Batcher[Req, Resp] {
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = 1024
	}
	if cfg.Writers <= 0 {
		cfg.Writers = 1
	}
	b := &Batcher[Req, Resp]{
		exec: exec,
		cfg:  cfg,
		in:   make(chan *Call[Req, Resp], cfg.MaxBatch*cfg.Writers),
		stop: make(chan struct{}),
	}
	b.pool.New = func() any { return &Call[Req, Resp]{done: make(chan struct{}, 1)} }
	b.ctx, b.cancel = context.WithCancel(context.Background())
	for range cfg.Writers {
		b.writers.Add(1)
		go b.write()
	}
	return b
}

// Do queues req and waits until its batch has run, or until ctx ends: it
// then returns ctx's error, and req may still run. A caller that stops
// waiting knows only that its outcome is unknown, as after a crash: a
// claim may hold its key until its lease ends, a mark may or may not be
// written. Waiting on regardless would let a database that hangs hold the
// caller, and the agent's shutdown behind it, for ever.
func (b *Batcher[Req, Resp]) Do(ctx context.Context, req Req) (Resp, error) {
	c := b.pool.Get().(*Call[Req, Resp])
	c.Req = req
	b.mu.RLock()
	if b.closed {
		b.mu.RUnlock()
		b.put(c)
		var zero Resp
		return zero, ErrClosed
	}
	select {
	case b.in <- c:
		b.mu.RUnlock()
	case <-ctx.Done():
		b.mu.RUnlock()
		b.put(c)
		var zero Resp
		return zero, ctx.Err()
	}
	select {
	case <-c.done:
	case <-ctx.Done():
		// c stays the writer's, which answers into its buffered channel
		// and drops it; it is not pooled again.
		var zero Resp
		return zero, ctx.Err()
	}
	resp, err := c.Resp, c.Err
	b.put(c)
	return resp, err
}

func (b *Batcher[Req, Resp]) put(c *Call[Req, Resp]) {
	var zero Call[Req, Resp]
	zero.done = c.done
	*c = zero
	b.pool.Put(c)
}

// closeGrace is how long Close lets the writers run what is queued before
// it cancels their context.
const closeGrace = 10 * time.Second

// Close stops taking requests, runs the ones queued, and waits for the
// writers. Batches still running after closeGrace see their context
// cancelled, so that an Exec that hangs (a database that does not answer)
// cannot keep Close from returning. It is idempotent.
func (b *Batcher[Req, Resp]) Close() {
	b.mu.Lock()
	if !b.closed {
		b.closed = true
		close(b.stop)
	}
	b.mu.Unlock()
	t := time.AfterFunc(closeGrace, b.cancel)
	b.writers.Wait()
	t.Stop()
	b.cancel()
}

// Abort cancels the context of every batch, running or to come: for an
// owner whose callers have all stopped waiting, before Close, so that
// Close does not wait on writes nobody waits for.
func (b *Batcher[Req, Resp]) Abort() { b.cancel() }

func (b *Batcher[Req, Resp]) write() {
	defer b.writers.Done()
	batch := make([]*Call[Req, Resp], 0, b.cfg.MaxBatch)
	var timer *time.Timer
	for {
		select {
		case c := <-b.in:
			batch = append(batch[:0], c)
		case <-b.stop:
			b.drain(batch[:0])
			return
		}
		batch = b.fill(batch, &timer)
		b.run(batch)
	}
}

// fill adds queued requests to batch, lingering up to MaxWait for more.
func (b *Batcher[Req, Resp]) fill(batch []*Call[Req, Resp], timer **time.Timer) []*Call[Req, Resp] {
	var expired <-chan time.Time
	for len(batch) < b.cfg.MaxBatch {
		select {
		case c := <-b.in:
			batch = append(batch, c)
			continue
		default:
		}
		if b.cfg.MaxWait <= 0 {
			return batch
		}
		if expired == nil {
			if *timer == nil {
				*timer = time.NewTimer(b.cfg.MaxWait)
			} else {
				(*timer).Reset(b.cfg.MaxWait)
			}
			expired = (*timer).C
		}
		select {
		case c := <-b.in:
			batch = append(batch, c)
		case <-expired:
			return batch
		case <-b.stop:
			(*timer).Stop()
			return batch
		}
	}
	if expired != nil {
		(*timer).Stop()
	}
	return batch
}

// drain runs what is still queued after Close.
func (b *Batcher[Req, Resp]) drain(batch []*Call[Req, Resp]) {
	for {
		select {
		case c := <-b.in:
			batch = append(batch, c)
			if len(batch) == b.cfg.MaxBatch {
				b.run(batch)
				batch = batch[:0]
			}
		default:
			if len(batch) > 0 {
				b.run(batch)
			}
			return
		}
	}
}

func (b *Batcher[Req, Resp]) run(batch []*Call[Req, Resp]) {
	err := b.execSafe(batch)
	for _, c := range batch {
		if c.Err == nil && err != nil {
			c.Err = err
		}
		c.done <- struct{}{}
	}
}

// execSafe turns a panic in exec into an error for the batch: a writer that
// died would leave every later caller waiting.
func (b *Batcher[Req, Resp]) execSafe(batch []*Call[Req, Resp]) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("groupcommit: batch panicked: %v", r)
		}
	}()
	return b.exec(b.ctx, batch)
}
