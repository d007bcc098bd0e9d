package consumer

import (
	"context"
	"runtime/debug"
	"slices"
	"time"

	"github.com/eventkit/eventkit"
	"github.com/eventkit/eventkit/kafka"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/trace"
)

// Headers of a record parked on the dead-letter topic, next to all of the
// original's.
const (
	HeaderDeadLetterOrigin = eventkit.HeaderDeadLetterPrefix + "origin" // topic/partition/offset of the original
	HeaderDeadLetterCause  = eventkit.HeaderDeadLetterPrefix + "cause"  // the handler's error
	HeaderDeadLetterGroup  = eventkit.HeaderDeadLetterPrefix + "group"  // the group that warned
)

type parked struct {
	lane *lane
	wait time.Duration
}

func (c *Consumer) work(worker int) {
	defer c.workers.Done()
	for {
		select {
		case <-c.quit:
			return
		default:
		}
		if l := c.ready.pop(); l != nil {
			c.runLane(l, worker)
			continue
		}
		select {
		case <-c.ready.wake:
		case <-c.quit:
			return
		}
	}
}

// runStats gathers a lane run's counts so that metrics are touched once per
// run rather than once per record: with a fast handler, per-record atomics
// cost more than the handler.
type runStats struct {
	attempts, success int
	latency           histShard
}

// doneBatch marks done events in the partition's window a batch at a time.
// It flushes when full, when its oldest event waited a millisecond, or
// when the call that just ended took that long: slow handlers move the
// watermark event by event, since a batch would hold each done event back
// for the whole next call. What it cannot see coming is a slow call after
// fast ones: the fast ones' marks wait for its end (up to the handler
// timeout), which delays their commit, never loses it.
type doneBatch struct {
	items [64]*item
	n     int
	first time.Time
}

// slowCall is how long a call may take before the events done so far are
// marked at once rather than batched.
const slowCall = time.Millisecond

// add reports whether it marked the batch, which is work of the agent's
// own, outside any handler call.
func (b *doneBatch) add(c *Consumer, p *partition, it *item, now time.Time, took time.Duration) bool {
	if b.n == 0 {
		b.first = now
	}
	b.items[b.n] = it
	b.n++
	if b.n == len(b.items) || now.Sub(b.first) > slowCall || took > slowCall {
		p.mu.Lock()
		freed := b.flushLocked(p)
		resync := p.hold()
		p.mu.Unlock()
		c.freed(freed)
		if resync {
			c.syncFetch(p.topic, p.id)
		}
		return true
	}
	return false
}

// flushLocked marks the batch done; the caller holds p.mu and passes the
// count it returns to c.freed once it lets go.
func (b *doneBatch) flushLocked(p *partition) int {
	n := 0
	for i := range b.n {
		n += p.finish(b.items[i])
		b.items[i] = nil
	}
	b.n = 0
	p.checkHalt()
	return n
}

// runLane handles the items queued on l in order until the queue is empty,
// an item must wait for a retry, or the agent stops.
func (c *Consumer) runLane(l *lane, worker int) {
	p := l.p
	p.mu.Lock()
	if l.state != laneQueued || p.gone.Load() || c.stopping.Load() && (len(l.queue) == 0 || !c.beforeHalt(p, l.queue[0])) {
		p.mu.Unlock()
		return // released or stopping: the items stay undone and uncommitted
	}
	batch := l.queue
	l.queue = nil
	l.state = laneRunning
	p.running++
	p.mu.Unlock()

	var (
		i       int
		parkFor time.Duration
		halted  bool
		detach  []parked // Unordered: retried items wait in lanes of their own
		stats   runStats
		done    doneBatch
	)
	// One clock read per event: each call's end is the next one's start,
	// unless the agent did work of its own in between (a dead letter, a
	// retry, a batch marked done), which is not the handler's time.
	last := c.cfg.now()
loop:
	for ; i < len(batch); i++ {
		it := batch[i]
		if c.stopping.Load() && (it == nil || !c.beforeHalt(p, it)) || p.gone.Load() {
			break
		}
		var err error
		produceOnly := it.unparked != nil
		if produceOnly {
			// The handler warned and the dead-letter produce failed: try
			// the produce again, not the handler, which would not warn
			// again behind an idempotency layer that recorded the event
			// done. Each try counts, so a dead-letter topic that stays
			// down halts the partition.
			it.attempt++
			err = it.unparked
		} else {
			err = c.call(p, it)
		}
		now := c.cfg.now()
		took := now.Sub(last)
		if !produceOnly {
			stats.attempts++
			stats.latency.observe(took.Seconds())
		}
		last = now
		switch eventkit.FlagOf(err) {
		case eventkit.FlagNone:
			stats.success++
			if done.add(c, p, it, now, took) {
				last = c.cfg.now()
			}
			continue
		case eventkit.FlagWarn:
			ok := c.warn(p, it, err)
			if ok {
				it.unparked = nil
				for _, f := range it.parked {
					f()
				}
				it.parked = nil
				done.add(c, p, it, now, took)
			}
			last = c.cfg.now()
			if ok {
				continue
			}
			// Not parked on the dead-letter topic: retry rather than lose it.
			it.unparked = err
		case eventkit.FlagKill:
			p.m.kill.Inc()
			c.log.Error("handler killed the consumer", c.attrs(it, "cause", err)...)
			c.fail(c.eventError(ErrKilled, it, err), p, it.rec.Offset, false)
			break loop
		}

		if p.ctx.Err() != nil || p.gone.Load() {
			// The agent cancelled the call (a drain that ran out of time)
			// or gave the partition away: the failure is no verdict on
			// the event, which stays undone for the partition's next
			// owner or run. It neither uses up a retry nor halts this
			// agent, which no longer handles the event.
			it.attempt--
			break
		}
		p.m.retry.Inc()
		it.lastErr = err
		failed := it.attempt - it.base
		h := c.cfg.maxRetries >= 0 && failed > c.cfg.maxRetries
		d := time.Duration(0)
		if h {
			c.halt(p, it, err)
		} else {
			d = c.backoff(failed)
			c.log.Info("event will be retried", c.attrs(it, "attempt", it.delivery(), "backoff", d, "cause", err)...)
		}
		if c.cfg.order == Unordered {
			nl := &lane{p: p, queue: []*item{it}, state: laneParked}
			if h {
				nl.state = laneHalted
			}
			detach = append(detach, parked{nl, d})
			batch[i] = nil
			last = c.cfg.now()
			continue
		}
		halted, parkFor = h, d
		break
	}

	p.m.attempts.Add(float64(stats.attempts))
	p.m.success.Add(float64(stats.success))
	c.metrics.latency.merge(p.topic, worker, &stats.latency)

	p.mu.Lock()
	freed := done.flushLocked(p)
	// What failed is marked under the lock, for hold to read.
	for _, it := range batch[i:] {
		if it != nil && it.lastErr != nil {
			it.failed = true
		}
	}
	for _, d := range detach {
		d.lane.queue[0].failed = true
	}
	p.running--
	if rest := slices.DeleteFunc(batch[i:], func(it *item) bool { return it == nil }); len(rest) > 0 {
		l.queue = append(rest, l.queue...)
	}
	for _, d := range detach {
		if d.lane.state == laneParked {
			p.park(d.lane, d.wait)
		} else {
			p.addHalt(d.lane)
		}
	}
	switch {
	case halted:
		l.state = laneHalted
		p.addHalt(l)
	case len(detach) == 0 && i < len(batch) && parkFor > 0:
		p.park(l, parkFor)
	}
	next := p.settle(l)
	if p.running == 0 && p.drained != nil {
		close(p.drained)
	}
	resync := p.hold() || len(p.halts) > 0 && c.cfg.haltAction == PausePartition
	// Operators see a halt within moments, not at the next status tick.
	notify := halted || slices.ContainsFunc(detach, func(d parked) bool { return d.lane.state == laneHalted })
	p.mu.Unlock()
	c.freed(freed)

	if resync {
		c.syncFetch(p.topic, p.id)
	}
	if notify {
		c.changed()
	}
	if next != nil {
		c.schedule(next)
	}
}

// call runs one handler attempt, turning a panic into a retry.
func (c *Consumer) call(p *partition, it *item) (err error) {
	it.attempt++
	it.uncounted = false
	it.parked = nil
	var ctx context.Context
	if it.attempt == 1 {
		// The first attempt's context lives in the item, saving an allocation
		// per record; retries get their own, in case a handler kept the old.
		it.attemptC = attemptCtx{Context: p.ctx, it: it, group: c.cfg.group}
		ctx = &it.attemptC
	} else {
		ctx = &attemptCtx{Context: p.ctx, it: it, group: c.cfg.group}
	}
	var span trace.Span
	if c.tracing.enabled() {
		ctx, span = c.tracing.start(ctx, it)
	}
	if c.cfg.handlerTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.cfg.handlerTimeout)
		defer cancel()
	}
	defer func() {
		if !it.uncounted {
			// This call saw the resume. One that found the event busy
			// elsewhere (Uncounted) did not get to act on it.
			it.resumed = false
		}
		if r := recover(); r != nil {
			err = eventkit.Retry(&panicError{value: r})
			c.log.Error("handler panicked", c.attrs(it, "panic", r, "stack", string(debug.Stack()))...)
		}
		if span != nil {
			c.tracing.end(span, it.delivery(), err)
		}
	}()
	return c.handler.Handle(ctx, &it.ev)
}

// warn logs a warned event and parks it on the dead-letter topic when one is
// set. It reports whether the event is done; the caller marks it.
func (c *Consumer) warn(p *partition, it *item, cause error) bool {
	c.log.Warn("event warned", c.attrs(it, "attempt", it.delivery(), "cause", cause)...)
	if c.cfg.deadLetter != "" {
		if err := c.deadLetter(p, it, cause); err != nil {
			c.log.Error("dead-letter produce failed; the event will be retried", c.attrs(it, "dead_letter_topic", c.cfg.deadLetter, "error", err)...)
			return false
		}
		p.m.deadLetter.Inc()
	}
	p.m.warn.Inc()
	return true
}

func (c *Consumer) deadLetter(p *partition, it *item, cause error) error {
	cl := c.cl.Load()
	r := &kgo.Record{
		Topic: c.cfg.deadLetter,
		Key:   it.rec.Key,
		Value: it.rec.Value,
		Headers: append(slices.Clip(it.rec.Headers),
			kgo.RecordHeader{Key: HeaderDeadLetterOrigin, Value: []byte(it.ev.Coordinates())},
			kgo.RecordHeader{Key: HeaderDeadLetterCause, Value: []byte(cause.Error())},
			kgo.RecordHeader{Key: HeaderDeadLetterGroup, Value: []byte(c.cfg.group)},
		),
	}
	ctx, cancel := context.WithTimeout(p.ctx, c.cfg.drainTimeout)
	defer cancel()
	return kafka.ProduceSync(ctx, cl, r)
}

// halt reports that it used up its retries. Under StopService it also stops
// the agent.
func (c *Consumer) halt(p *partition, it *item, cause error) {
	p.m.halt.Inc()
	attempts := it.attempt - it.base
	if c.cfg.haltAction == StopService {
		c.log.Error("event used up its retries; stopping", c.attrs(it, "attempts", attempts, "cause", cause)...)
		c.fail(c.eventError(ErrHalted, it, cause), p, it.rec.Offset, true)
	} else {
		c.log.Error("event used up its retries; partition paused until resumed or skipped", c.attrs(it, "attempts", attempts, "cause", cause)...)
	}
}

// addHalt registers a halted lane; the caller holds p.mu.
func (p *partition) addHalt(l *lane) {
	it := l.queue[0]
	p.halts = append(p.halts, &halt{it: it, lane: l, since: p.c.cfg.now()})
}

func (c *Consumer) eventError(reason error, it *item, cause error) *EventError {
	return &EventError{
		Reason: reason, Topic: it.rec.Topic, Partition: it.rec.Partition, Offset: it.rec.Offset,
		ID: it.ev.ID, Attempts: it.attempt - it.base, Cause: cause,
	}
}

// attrs names an event in a log line: its coordinates and id, then more.
func (c *Consumer) attrs(it *item, more ...any) []any {
	return append([]any{"topic", it.rec.Topic, "partition", it.rec.Partition, "offset", it.rec.Offset, "id", it.ev.ID}, more...)
}
