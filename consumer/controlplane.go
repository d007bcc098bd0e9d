package consumer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/eventkit/eventkit"
	"github.com/eventkit/eventkit/kafka"
	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// keptOutcomes is how many command outcomes a status report carries.
const keptOutcomes = 16

// prepareTopics creates, before the group client subscribes, the topics the
// agent relies on besides its own: the group's replay topic (as wide as the
// widest consumed topic) and the control plane's two. A cluster that refuses
// (no create permission) only delays what needs them: the agent logs it and
// goes on. It returns where commands for this agent start (controlStart).
func (c *Consumer) prepareTopics(ctx context.Context) controlFrom {
	if !c.cfg.replay && !c.cfg.control {
		return controlFrom{}
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.drainTimeout)
	defer cancel()
	cl, err := kgo.NewClient(c.connOpts()...)
	if err != nil {
		c.log.Warn("topics not checked", "error", err)
		return controlFrom{unknown: true}
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	want := map[string]int32{}
	if c.cfg.replay {
		want[eventkit.ReplayTopic(c.cfg.group)] = c.widestTopic(ctx, adm)
	}
	if c.cfg.control {
		want[eventkit.StatusTopic] = 1
		want[eventkit.ControlTopic] = 1
	}
	for topic, partitions := range want {
		if err := kafka.EnsureTopic(ctx, adm, topic, partitions); err != nil {
			c.log.Warn("topic could not be created; what needs it waits until it exists", "topic", topic, "error", err)
		}
	}
	if !c.cfg.control {
		return controlFrom{}
	}
	return c.controlStart(ctx, adm)
}

// controlFrom is where the commands for this agent start on eventkit.control.
type controlFrom struct {
	// floors holds each partition's end when the agent started: the
	// records below it were sent before, and are not for this agent. A
	// partition not in it was created since: all it holds is new.
	floors map[int32]int64
	// unknown: the ends could not be looked up, and the control client
	// starts wherever they are once it looks.
	unknown bool
}

// opts returns the control client's options. It reads the topic, not the
// partitions it had at start, so that a partition added later is read too.
func (f controlFrom) opts() []kgo.Opt {
	start := kgo.NewOffset().AtStart()
	if f.unknown {
		start = kgo.NewOffset().AtEnd()
	}
	return []kgo.Opt{kgo.ConsumeTopics(eventkit.ControlTopic), kgo.ConsumeResetOffset(start)}
}

// before reports whether r was on eventkit.control before the agent started.
func (f controlFrom) before(r *kgo.Record) bool { return r.Offset < f.floors[r.Partition] }

// controlStart looks up where eventkit.control ends, before the member
// joins. A client told to start "at the end" looks it up itself, later, in
// the background: a command sent meanwhile (to a halt the agent already
// published) would fall behind its start and be lost.
func (c *Consumer) controlStart(ctx context.Context, adm *kadm.Client) controlFrom {
	ends, err := adm.ListEndOffsets(ctx, eventkit.ControlTopic)
	floors := make(map[int32]int64)
	if err == nil {
		ends.Each(func(o kadm.ListedOffset) {
			switch {
			case errors.Is(o.Err, kerr.UnknownTopicOrPartition): // not created yet
			case o.Err != nil:
				err = o.Err
			default:
				floors[o.Partition] = o.Offset
			}
		})
	}
	if err != nil {
		c.log.Warn("control topic's end not known at start; a command sent before the agent finds it is missed", "error", err)
		return controlFrom{unknown: true}
	}
	return controlFrom{floors: floors}
}

// changed asks for a status report now rather than at the next tick.
func (c *Consumer) changed() {
	select {
	case c.statusNow <- struct{}{}:
	default:
	}
}

// statusLoop publishes the agent's status every StatusInterval and at once
// after a change.
func (c *Consumer) statusLoop(cl *kgo.Client) {
	defer c.workers.Done()
	t := time.NewTicker(c.cfg.statusInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-c.statusNow:
		case <-c.quit:
			return
		}
		c.publishStatus(cl, false)
	}
}

// publishStatus writes one eventkit.agent.status event, keyed by group. A
// member not yet in the group has nothing to report.
func (c *Consumer) publishStatus(cl *kgo.Client, leaving bool) {
	st := c.Status()
	if st.MemberID == "" {
		return
	}
	st.Leaving = leaving
	data, err := json.Marshal(st)
	if err != nil {
		c.log.Error("status not encoded", "error", err)
		return
	}
	ev := &eventkit.Event{
		ID: uuid.NewString(), Source: "eventkit/agent/" + c.cfg.group + "/" + st.MemberID, Type: eventkit.TypeAgentStatus,
		Time: st.UpdatedAt, Subject: c.cfg.group, ContentType: "application/json", Key: []byte(c.cfg.group), Data: data,
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.drainTimeout)
	defer cancel()
	if err := kafka.ProduceSync(ctx, cl, kafka.RecordOf(eventkit.StatusTopic, ev)); err != nil {
		c.log.Warn("status not published", "error", err)
	}
}

// controlLoop reads eventkit.control past the ends it had when the agent
// started (from), so that commands sent before are never applied, and
// applies the commands for this group to the partitions this member owns.
// It returns when ctx ends.
//
// Where the log ended when the agent started is what tells old commands
// from new ones, not their ce_time: the sender's clock is not the agent's,
// and a sender a few seconds behind would have its commands to a freshly
// started agent dropped.
func (c *Consumer) controlLoop(ctx context.Context, cl *kgo.Client, from controlFrom) {
	defer c.workers.Done()
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil || fs.IsClientClosed() {
			return
		}
		fs.EachError(func(topic string, partition int32, err error) {
			c.log.Warn("control topic fetch error", "partition", partition, "error", err)
		})
		fs.EachRecord(func(r *kgo.Record) {
			if string(r.Key) == c.cfg.group && !from.before(r) {
				c.command(kafka.EventOf(r))
			}
		})
	}
}

// command applies one control command when this member owns its partition;
// the member that does reports the outcome in its next status.
func (c *Consumer) command(ev *eventkit.Event) {
	var cmd eventkit.ControlCommand
	if err := json.Unmarshal(ev.Data, &cmd); err != nil || cmd.Group != c.cfg.group {
		c.log.Warn("control command ignored: not a command for this group", "offset", ev.Offset, "type", ev.Type, "error", err)
		return
	}
	c.mu.RLock()
	_, owned := c.parts[tp{cmd.Topic, cmd.Partition}]
	c.mu.RUnlock()
	if !owned {
		return
	}
	var err error
	switch ev.Type {
	case eventkit.TypeResume:
		err = c.Resume(cmd.Topic, cmd.Partition, cmd.Offset)
	case eventkit.TypeSkip:
		err = c.Skip(cmd.Topic, cmd.Partition, cmd.Offset)
	default:
		err = fmt.Errorf("unknown command type %q", ev.Type)
	}
	out := eventkit.CommandOutcome{
		CommandID: cmd.CommandID, Type: ev.Type, Topic: cmd.Topic, Partition: cmd.Partition,
		Offset: cmd.Offset, Applied: err == nil, At: c.cfg.now(),
	}
	if err != nil {
		out.Reason = err.Error()
		switch {
		case errors.Is(err, ErrNotHalted):
			out.Reason = "stale: the partition is not halted at that offset"
		case errors.Is(err, ErrStopping):
			out.Reason = "the agent is stopping: its next run starts at the halted event"
		}
		c.log.Warn("control command refused", "command_id", cmd.CommandID, "type", ev.Type, "topic", cmd.Topic,
			"partition", cmd.Partition, "offset", cmd.Offset, "requested_by", cmd.RequestedBy, "reason", out.Reason)
	} else {
		c.log.Info("control command applied", "command_id", cmd.CommandID, "type", ev.Type, "topic", cmd.Topic,
			"partition", cmd.Partition, "offset", cmd.Offset, "requested_by", cmd.RequestedBy)
	}
	c.outcomeMu.Lock()
	c.outcomeLog = append(c.outcomeLog, out)
	if len(c.outcomeLog) > keptOutcomes {
		c.outcomeLog = c.outcomeLog[len(c.outcomeLog)-keptOutcomes:]
	}
	c.outcomeMu.Unlock()
	c.changed()
}

func (c *Consumer) outcomes() []eventkit.CommandOutcome {
	c.outcomeMu.Lock()
	defer c.outcomeMu.Unlock()
	return append([]eventkit.CommandOutcome(nil), c.outcomeLog...)
}
