package consumer

import (
	"context"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// commitLoop commits the done watermarks every CommitInterval and refreshes
// the lag gauges.
func (c *Consumer) commitLoop(cl *kgo.Client) {
	defer c.workers.Done()
	t := time.NewTicker(c.cfg.commitInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			ps := c.snapshot()
			c.commitMu.Lock()
			c.commitLocked(context.Background(), cl, ps)
			c.commitMu.Unlock()
			select {
			case c.endsNow <- ps: // endsLoop looks up the paused partitions' ends
			default: // still at the last ones
			}
			c.updateLag(ps)
		case <-c.quit:
			return
		}
	}
}

func (c *Consumer) snapshot() []*partition {
	c.mu.RLock()
	defer c.mu.RUnlock()
	ps := make([]*partition, 0, len(c.parts))
	for _, p := range c.parts {
		ps = append(ps, p)
	}
	return ps
}

// commitLocked commits the watermark of every partition that moved since its
// last commit. The caller holds commitMu, which orders periodic, revoke and
// shutdown commits: a periodic commit can never land after a revoke's and
// rewind the group.
func (c *Consumer) commitLocked(ctx context.Context, cl *kgo.Client, ps []*partition) {
	offsets := make(map[string]map[int32]kgo.EpochOffset)
	byTP := make(map[tp]*partition)
	for _, p := range ps {
		p.mu.Lock()
		if !p.dropped && p.processed > p.committed {
			if offsets[p.topic] == nil {
				offsets[p.topic] = make(map[int32]kgo.EpochOffset)
			}
			offsets[p.topic][p.id] = kgo.EpochOffset{Epoch: p.epoch, Offset: p.processed}
			byTP[tp{p.topic, p.id}] = p
		}
		p.mu.Unlock()
	}
	if len(offsets) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.drainTimeout)
	defer cancel()
	cl.CommitOffsetsSync(ctx, offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			c.metrics.commits.WithLabelValues("error").Inc()
			c.log.Warn("offset commit failed; will retry", "error", err)
			return
		}
		ok := true
		for _, t := range resp.Topics {
			for _, rp := range t.Partitions {
				p := byTP[tp{t.Topic, rp.Partition}]
				if p == nil {
					continue
				}
				if err := kerr.ErrorForCode(rp.ErrorCode); err != nil {
					ok = false
					c.log.Warn("offset commit refused", "topic", t.Topic, "partition", rp.Partition, "error", err)
					continue
				}
				p.mu.Lock()
				p.committed = max(p.committed, offsets[t.Topic][rp.Partition].Offset)
				p.mu.Unlock()
			}
		}
		if ok {
			c.metrics.commits.WithLabelValues("ok").Inc()
		} else {
			c.metrics.commits.WithLabelValues("error").Inc()
		}
	})
}

// endsLoop looks up the ends of the paused partitions commitLoop hands it,
// one look-up at a time and beside the commits, which a slow leader must
// not hold. It returns once the agent quits, cancelling a look-up.
func (c *Consumer) endsLoop(cl *kgo.Client) {
	defer c.workers.Done()
	// A stop does not wait for a slow leader: quitting cancels the look-up.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { <-c.quit; cancel() }() // ends with the agent
	for {
		select {
		case ps := <-c.endsNow:
			c.refreshPausedEnds(ctx, cl, ps)
		case <-c.quit:
			return
		}
	}
}

// refreshPausedEnds looks up the end of each partition whose fetching is
// paused (held behind a retry, or halted under PausePartition): no fetch
// tells it while it waits, and its lag must keep growing as records arrive
// behind the event it waits on, or an alert on lag would never fire for a
// halt.
func (c *Consumer) refreshPausedEnds(ctx context.Context, cl *kgo.Client, ps []*partition) {
	var paused []*partition
	var topics []string
	for _, p := range ps {
		p.mu.Lock()
		if p.paused() {
			paused = append(paused, p)
			if !slices.Contains(topics, p.topic) {
				topics = append(topics, p.topic)
			}
		}
		p.mu.Unlock()
	}
	if len(paused) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.drainTimeout)
	defer cancel()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topics...)
	if err != nil {
		c.log.Debug("ends of paused partitions not looked up; their lag waits", "error", err)
		return
	}
	for _, p := range paused {
		if o, ok := ends.Lookup(p.topic, p.id); ok && o.Err == nil {
			p.mu.Lock()
			p.hwm = max(p.hwm, o.Offset)
			p.mu.Unlock()
		}
	}
}

// updateLag sets each partition's lag from where it stands: after what it
// processed, else at the offset the group committed (its own or one it
// inherited), else at the first record it fetched. A partition that has
// processed nothing yet, its first event retrying or halted, shows its
// whole backlog.
func (c *Consumer) updateLag(ps []*partition) {
	var inherited groupCommits
	for _, p := range ps {
		p.mu.Lock()
		pos, first := p.processed, int64(-1)
		if pos < 0 {
			pos = p.committed
		}
		if len(p.window) > 0 {
			first = p.window[0].rec.Offset
		}
		hwm := p.hwm
		p.mu.Unlock()
		if pos < 0 { // asked outside p.mu: it takes franz-go's group lock
			pos = inherited.of(c, p)
		}
		if pos < 0 {
			pos = first
		}
		if pos >= 0 && hwm >= 0 {
			p.m.lag.Set(float64(max(hwm-pos, 0)))
		}
	}
}
