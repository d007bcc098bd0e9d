package consumer

import (
	"errors"
	"fmt"
	"slices"

	"github.com/eventkit/eventkit"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Status returns a snapshot of the agent's assignment and halts, in the form
// it publishes on eventkit.status.
func (c *Consumer) Status() eventkit.AgentStatus {
	c.mu.RLock()
	s := eventkit.AgentStatus{
		Group: c.cfg.group, MemberID: c.member, Host: c.host, Version: eventkit.Version(),
		StartedAt: c.startedAt, UpdatedAt: c.cfg.now(), InFlight: int(c.inFlight.Load()),
		Interval:   eventkit.Duration(c.cfg.statusInterval),
		Partitions: []eventkit.PartitionStatus{}, Halted: []eventkit.HaltStatus{},
	}
	c.mu.RUnlock()
	var inherited groupCommits
	for _, p := range c.snapshot() {
		p.mu.Lock()
		ps := eventkit.PartitionStatus{Topic: p.topic, Partition: p.id, Processed: p.processed, Committed: p.committed, End: p.hwm}
		if ps.Committed < 0 {
			ps.Committed = inherited.of(c, p)
		}
		if ps.Processed < 0 {
			ps.Processed = ps.Committed
		}
		s.Partitions = append(s.Partitions, ps)
		for _, h := range p.halts {
			s.Halted = append(s.Halted, p.describe(h))
		}
		p.mu.Unlock()
	}
	slices.SortFunc(s.Partitions, func(a, b eventkit.PartitionStatus) int {
		return cmpTP(a.Topic, a.Partition, b.Topic, b.Partition)
	})
	sortHalts(s.Halted)
	s.Commands = c.outcomes()
	return s
}

// groupCommits reads the offsets the group had committed when its
// partitions came to this member, which franz-go fetched: until this
// member commits a partition, that is its committed offset, since
// everything before it was done by earlier owners. Read once, when first
// needed.
type groupCommits map[string]map[int32]kgo.EpochOffset

// of returns p's inherited committed offset, or -1.
func (g *groupCommits) of(c *Consumer, p *partition) int64 {
	cl := c.cl.Load()
	if cl == nil {
		return -1
	}
	if *g == nil {
		*g = cl.CommittedOffsets()
	}
	if o, ok := (*g)[p.topic][p.id]; ok && o.Offset >= 0 {
		return o.Offset
	}
	return -1
}

// haltedPartitions counts the partitions holding a halt; under ByKey and
// Unordered one may hold several.
func (c *Consumer) haltedPartitions() int {
	n := 0
	for _, p := range c.snapshot() {
		p.mu.Lock()
		if len(p.halts) > 0 {
			n++
		}
		p.mu.Unlock()
	}
	return n
}

// Halted lists the events that used up their retries and wait for an
// operator.
func (c *Consumer) Halted() []eventkit.HaltStatus {
	var hs []eventkit.HaltStatus
	for _, p := range c.snapshot() {
		p.mu.Lock()
		for _, h := range p.halts {
			hs = append(hs, p.describe(h))
		}
		p.mu.Unlock()
	}
	sortHalts(hs)
	return hs
}

func (p *partition) describe(h *halt) eventkit.HaltStatus {
	cause := ""
	if h.it.lastErr != nil {
		cause = h.it.lastErr.Error()
	}
	return eventkit.HaltStatus{
		Topic: p.topic, Partition: p.id, Offset: h.it.rec.Offset, ID: h.it.ev.ID,
		Cause: cause, Attempts: h.it.attempt - h.it.base, Since: h.since,
	}
}

func sortHalts(hs []eventkit.HaltStatus) {
	slices.SortFunc(hs, func(a, b eventkit.HaltStatus) int {
		if c := cmpTP(a.Topic, a.Partition, b.Topic, b.Partition); c != 0 {
			return c
		}
		return int(a.Offset - b.Offset)
	})
}

func cmpTP(at string, ap int32, bt string, bp int32) int {
	switch {
	case at < bt:
		return -1
	case at > bt:
		return 1
	}
	return int(ap - bp)
}

// Ready reports why the agent should not receive traffic, or nil: it is
// not ready before Run, after it stopped, and while any partition is halted.
func (c *Consumer) Ready() error {
	if !c.started.Load() || c.cl.Load() == nil {
		return errors.New("not running")
	}
	if c.stopping.Load() {
		return errors.New("stopping")
	}
	if hs := c.Halted(); len(hs) > 0 {
		h := hs[0]
		return fmt.Errorf("halted: %d partition(s); first %s/%d at offset %d (id %s, %d attempts): %s",
			len(hs), h.Topic, h.Partition, h.Offset, h.ID, h.Attempts, h.Cause)
	}
	return nil
}

// Resume hands the halted event at topic/partition/offset to the handler
// again, with a fresh MaxRetries budget, and resumes fetching the partition
// once nothing else there is halted. It returns an error matching
// [ErrNotHalted] when that event is not the one halted there, and one
// matching [ErrStopping] once the agent is stopping.
func (c *Consumer) Resume(topic string, part int32, offset int64) error {
	return c.operate(topic, part, offset, func(p *partition, h *halt) *lane {
		h.it.base, h.it.resumed = h.it.attempt, true
		h.lane.state = laneQueued
		c.log.Info("halted event resumed by operator", c.attrs(h.it)...)
		return h.lane
	})
}

// Skip marks the halted event at topic/partition/offset done without
// handling it, logs it at WARN, and lets its lane go on. It returns an error
// matching [ErrNotHalted] when that event is not the one halted there, and
// one matching [ErrStopping] once the agent is stopping.
func (c *Consumer) Skip(topic string, part int32, offset int64) error {
	return c.operate(topic, part, offset, func(p *partition, h *halt) *lane {
		l := h.lane
		l.queue = l.queue[1:]
		c.freed(p.finish(h.it))
		p.m.skip.Inc()
		c.log.Warn("halted event skipped by operator", c.attrs(h.it, "attempts", h.it.attempt-h.it.base, "cause", h.it.lastErr)...)
		l.state = laneRunning // settle decides what comes next
		return p.settle(l)
	})
}

// operate applies fn to the halt at offset under the partition's lock, then
// schedules the lane fn returns and resumes fetching when no halt is left.
func (c *Consumer) operate(topic string, partition int32, offset int64, fn func(*partition, *halt) *lane) error {
	c.mu.RLock()
	p := c.parts[tp{topic, partition}]
	c.mu.RUnlock()
	if p == nil {
		return fmt.Errorf("%s/%d is not assigned to this agent: %w", topic, partition, ErrNotHalted)
	}
	p.mu.Lock()
	i := slices.IndexFunc(p.halts, func(h *halt) bool { return h.it.rec.Offset == offset })
	if i < 0 || p.gone.Load() {
		p.mu.Unlock()
		return fmt.Errorf("%s/%d offset %d: %w", topic, partition, offset, ErrNotHalted)
	}
	// A stopping agent neither retries (its lanes end) nor may commit past
	// the event its Run names as halted: the next run starts there.
	if c.stopping.Load() {
		p.mu.Unlock()
		return fmt.Errorf("%s/%d offset %d: %w", topic, partition, offset, ErrStopping)
	}
	h := p.halts[i]
	p.halts = slices.Delete(p.halts, i, i+1)
	next := fn(p, h)
	p.hold() // the skipped event may have been what held it
	p.mu.Unlock()

	c.syncFetch(topic, partition) // rare: applied whether anything changed or not
	if next != nil {
		c.schedule(next)
	}
	c.changed()
	return nil
}
