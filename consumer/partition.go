package consumer

import (
	"context"
	"sync/atomic"
	"time"

	"sync"

	"github.com/eventkit/eventkit"
	"github.com/eventkit/eventkit/kafka"
	"github.com/twmb/franz-go/pkg/kgo"
)

// item is one record between fetch and commit.
type item struct {
	rec  *kgo.Record
	ev   eventkit.Event
	done bool

	attempt int // handler calls so far
	held    int // of them, calls that found the event busy elsewhere (Uncounted)
	// countBase: the store's count of deliveries (SetAttempt) before the
	// current retry budget began, learnt at the first delivery after a resume
	countBase int
	base      int   // attempt count when the retry budget last started (Resume resets it; uncounted calls move it)
	lastErr   error // the cause of the last failed attempt
	// unparked: the handler's warning, while the event waits to be parked
	// on the dead-letter topic; the next try produces it, without a call.
	unparked error
	// parked: what to run once a warned event is parked (OnParked), kept
	// while the produce is tried again; a new handler call starts afresh.
	parked []func()
	failed bool // an attempt failed; guarded by the partition's mu, for hold
	// uncounted: the handler said this call's failure was not the event's
	// fault (see Uncounted), so it does not use up the retry budget.
	uncounted bool
	// resumed: an operator resumed the event since its last call (see
	// Resumed); the next call sees it, then it is cleared.
	resumed  bool
	attemptC attemptCtx
}

// delivery is which delivery of the event the current (or last) call is:
// calls that found it busy elsewhere are not deliveries.
func (it *item) delivery() int { return it.attempt - it.held }

type laneState uint8

const (
	laneIdle    laneState = iota // empty, not scheduled
	laneQueued                   // in the ready queue
	laneRunning                  // a worker is handling its items
	laneParked                   // waiting out a retry backoff
	laneHalted                   // waiting for Resume or Skip
)

// lane is a queue of items that must be handled one after the other: a
// partition (ByPartition), a key within a partition (ByKey), or a chunk with
// no order (Unordered). A parked lane holds back only its own items, so a
// retry never blocks a worker or the poll loop.
type lane struct {
	p     *partition
	key   string
	keyed bool // registered in p.lanes under key
	queue []*item
	state laneState
	timer *time.Timer
}

// halt is a partition paused on an event that used up its retries.
type halt struct {
	it    *item
	lane  *lane
	since time.Time
}

// partition is the agent's state for one assigned partition. Everything but
// the atomics is guarded by mu.
type partition struct {
	c     *Consumer
	topic string
	id    int32
	m     partMetrics

	// ctx is the parent of every handler call for this partition; it is
	// cancelled once a revoke has waited DrainTimeout.
	ctx    context.Context
	cancel context.CancelFunc
	gone   atomic.Bool // revoked, lost or shut down: start nothing new

	mu        sync.Mutex
	window    []*item // fetched and not yet behind the watermark, in offset order
	processed int64   // offset after the last contiguous done event; -1 before any
	epoch     int32   // leader epoch of that event, for the commit
	committed int64   // last committed offset; -1 unknown
	hwm       int64   // high watermark seen in the last fetch
	lanes     map[string]*lane
	main      *lane // the partition's lane under ByPartition
	chunk     *lane // the chunk being filled under Unordered
	running   int   // handler calls in progress
	drained   chan struct{}
	halts     []*halt // events that used up their retries under PausePartition
	dropped   bool    // forgotten after release: never commit it again
	held      bool    // fetching paused, window left out of the room; see hold
}

func (c *Consumer) newPartition(topic string, id int32) *partition {
	p := &partition{
		c: c, topic: topic, id: id, m: c.metrics.forPartition(topic, id),
		processed: -1, committed: -1, hwm: -1,
	}
	p.ctx, p.cancel = context.WithCancel(c.handlerCtx)
	switch c.cfg.order {
	case ByPartition:
		p.main = &lane{p: p}
	case ByKey:
		p.lanes = make(map[string]*lane)
	}
	return p
}

// chunkSize spreads an Unordered batch over the workers without paying a
// channel send per record.
func (c *Consumer) chunkSize(n int) int {
	size := (n + c.cfg.concurrency - 1) / c.cfg.concurrency
	return min(max(size, 1), 256)
}

// dispatch adds a fetched batch to the partition's window and lanes, and
// appends the lanes that became ready. It reports whether the partition
// became held (its fetching must then be paused) and how many records left
// the window at once.
//
// A transaction's commit or abort marker (a control record) is no event:
// it goes into the window done, so that the watermark, and the commit,
// pass its offset once everything before it is done. Skipped, a marker
// ending the log would hold the commit one short of the end for good, and
// the group's lag at 1.
func (p *partition) dispatch(recs []*kgo.Record, hwm int64, ready []*lane) (_ []*lane, resync bool, passed int) {
	items := make([]item, len(recs)) // one allocation per batch, not per record
	malformed, markers := 0, 0
	for i, r := range recs {
		it := &items[i]
		it.rec = r
		if r.Attrs.IsControl() {
			it.done = true
			markers++
			continue
		}
		kafka.DecodeRecord(r, &it.ev)
		if it.ev.DecodeErr != nil {
			malformed++
			p.c.log.Warn("malformed event", p.c.attrs(it, "cause", it.ev.DecodeErr)...)
		}
	}
	if malformed > 0 {
		p.m.malformed.Add(float64(malformed))
	}
	chunk := p.c.chunkSize(len(recs))

	p.mu.Lock()
	defer p.mu.Unlock()
	p.hwm = hwm
	if p.held { // fetched before the pause took
		p.c.held.Add(int64(len(items)))
	}
	for i := range items {
		it := &items[i]
		p.window = append(p.window, it)
		if it.done {
			continue // a marker
		}
		l := p.laneFor(it, chunk)
		l.queue = append(l.queue, it)
		if l.state == laneIdle {
			l.state = laneQueued
			ready = append(ready, l)
		}
	}
	p.chunk = nil
	if markers > 0 {
		passed = p.advance()
	}
	return ready, p.hold(), passed
}

// holdMin is how many records a stalled partition buffers before it is
// held: enough for its other keys to go on with meanwhile.
func (c *Consumer) holdMin() int { return max(c.cfg.maxInFlight/2, 1) }

// paused reports whether the partition's fetching is paused: it is held,
// or holds a halt under PausePartition. The caller holds p.mu.
func (p *partition) paused() bool {
	return p.held || p.c.cfg.haltAction == PausePartition && len(p.halts) > 0
}

// hold decides again whether the partition is held, and reports a change,
// for which the caller calls c.syncFetch once it lets go of p.mu (which it
// holds). A partition is held when nothing in it can be committed until an
// event goes through: its oldest undone event has failed and not succeeded
// since (it waits for a retry) and it buffers at least holdMin records, or
// it holds a halt under PausePartition (it waits for an operator, however
// few records it buffers: halts on several partitions, each with a small
// buffer, would otherwise add up to MaxInFlight and stop the rest).
// Fetching more of such a partition only fills the room every partition
// shares, and once full every partition stops. A held partition's fetching
// is paused and its window is left out of the room MaxInFlight bounds.
// Held windows take at most MaxInFlight records between them (past that a
// partition is not held), so memory stays within twice MaxInFlight.
func (p *partition) hold() bool {
	c := p.c
	gone := p.gone.Load()
	stalled := len(p.window) > 0 && p.window[0].failed && !gone
	waiting := c.cfg.haltAction == PausePartition && len(p.halts) > 0 && !gone
	switch {
	case !p.held && len(p.window) > 0 && (stalled && len(p.window) >= c.holdMin() || waiting):
		n := int64(len(p.window))
		for {
			h := c.held.Load()
			if h+n > int64(c.cfg.maxInFlight) {
				return false
			}
			if c.held.CompareAndSwap(h, h+n) {
				break
			}
		}
		p.held = true
		c.wake() // the room it left is the others'
		return true
	case p.held && !stalled && !waiting:
		c.held.Add(-int64(len(p.window)))
		p.held = false
		return true
	}
	return false
}

func (p *partition) laneFor(it *item, chunk int) *lane {
	switch p.c.cfg.order {
	case ByPartition:
		return p.main
	case ByKey:
		if len(it.rec.Key) == 0 {
			return &lane{p: p}
		}
		if l, ok := p.lanes[string(it.rec.Key)]; ok {
			return l
		}
		l := &lane{p: p, key: string(it.rec.Key), keyed: true}
		p.lanes[l.key] = l
		return l
	}
	if p.chunk == nil || len(p.chunk.queue) >= chunk {
		p.chunk = &lane{p: p}
	}
	return p.chunk
}

// finish marks it done and moves the watermark past every contiguous done
// event. The caller holds p.mu. It returns how many items left the window.
// Calls that finish while a revoke drains still count: the revoke commits
// after the drain.
func (p *partition) finish(it *item) int {
	it.done = true
	return p.advance()
}

// advance moves the watermark past every contiguous done item at the front
// of the window. The caller holds p.mu. It returns how many items left the
// window.
func (p *partition) advance() int {
	n := 0
	for n < len(p.window) && p.window[n].done {
		n++
	}
	if n == 0 {
		return 0
	}
	last := p.window[n-1].rec
	p.processed, p.epoch = last.Offset+1, last.LeaderEpoch
	clear(p.window[:n])
	p.window = p.window[n:]
	if p.held {
		p.c.held.Add(-int64(n))
	}
	return n
}

// settle puts a lane that a worker has finished with into its next state.
// The caller holds p.mu; the lane is returned when it must be scheduled.
func (p *partition) settle(l *lane) *lane {
	switch {
	case l.state == laneParked || l.state == laneHalted:
		return nil
	case len(l.queue) > 0 && !p.gone.Load():
		l.state = laneQueued
		return l
	}
	l.state = laneIdle
	if l.keyed && len(l.queue) == 0 {
		delete(p.lanes, l.key)
	}
	return nil
}

// park makes l wait d before its head item is tried again.
func (p *partition) park(l *lane, d time.Duration) {
	l.state = laneParked
	l.timer = time.AfterFunc(d, func() {
		p.mu.Lock()
		wake := l.state == laneParked && !p.gone.Load()
		if wake {
			l.state = laneQueued
			l.timer = nil
		}
		p.mu.Unlock()
		if wake {
			p.c.schedule(l)
		}
	})
}

// release stops the partition from starting anything new: queued and parked
// lanes are dropped (their events were not done, so the watermark stays
// before them). It returns a channel closed once no handler call of this
// partition is running.
func (p *partition) release() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.gone.Store(true)
	stop := func(l *lane) {
		if l.timer != nil {
			l.timer.Stop()
			l.timer = nil
		}
	}
	if p.main != nil {
		stop(p.main)
	}
	for _, l := range p.lanes {
		stop(l)
	}
	for _, h := range p.halts {
		stop(h.lane)
	}
	p.checkHalt() // nothing more of it will be handled
	// Parked lanes outside p.lanes (unkeyed, Unordered) have timers that
	// wake into a released partition and do nothing.
	if p.drained == nil {
		p.drained = make(chan struct{})
		if p.running == 0 {
			close(p.drained)
		}
	}
	return p.drained
}

// drop forgets the window once the partition is released and drained, and
// returns how many records it held.
func (p *partition) drop() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.window)
	if p.held {
		p.c.held.Add(-int64(n))
		p.held = false
	}
	p.window = nil
	p.lanes = nil
	p.halts = nil
	p.dropped = true
	return n
}
