package consumer_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventkit/eventkit"
	"github.com/eventkit/eventkit/consumer"
	"github.com/eventkit/eventkit/internal/testkit"
	"github.com/eventkit/eventkit/kafka"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// statusReader follows eventkit.status and keeps the latest status per
// member.
type statusReader struct {
	t  *testing.T
	cl *kgo.Client
}

func newStatusReader(t *testing.T, addr string) *statusReader {
	return &statusReader{t: t, cl: testkit.Client(t, addr, kgo.ConsumeTopics(eventkit.StatusTopic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))}
}

// await reads statuses until one satisfies ok, and returns it.
func (r *statusReader) await(what string, ok func(eventkit.AgentStatus) bool) eventkit.AgentStatus {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		fs := r.cl.PollFetches(ctx)
		if ctx.Err() != nil {
			r.t.Fatalf("no status %s within 30s", what)
		}
		var found *eventkit.AgentStatus
		fs.EachRecord(func(rec *kgo.Record) {
			ev := kafka.EventOf(rec)
			var st eventkit.AgentStatus
			if ev.Type != eventkit.TypeAgentStatus || json.Unmarshal(ev.Data, &st) != nil {
				r.t.Errorf("bad status record %s: %s", ev.Type, ev.Data)
				return
			}
			if found == nil && ok(st) {
				found = &st
			}
		})
		if found != nil {
			return *found
		}
	}
}

func sendCommand(t *testing.T, cl *kgo.Client, typ string, cmd eventkit.ControlCommand) {
	t.Helper()
	sendCommandAt(t, cl, typ, cmd, time.Now())
}

// sendCommandAt sends a command stamped with the sender's clock reading at.
func sendCommandAt(t *testing.T, cl *kgo.Client, typ string, cmd eventkit.ControlCommand, at time.Time) {
	t.Helper()
	data, _ := json.Marshal(cmd)
	ev := &eventkit.Event{ID: cmd.CommandID, Source: "/test", Type: typ, Time: at, Key: []byte(cmd.Group), Data: data}
	testkit.Produce(t, cl, kafka.RecordOf(eventkit.ControlTopic, ev))
}

// A halted partition shows in the status the agent publishes; a stale skip
// is refused and reported, a current one applied; the final status says the
// member left.
func TestControlPlaneStatusAndCommands(t *testing.T) {
	b := testkit.Broker(t, 1, "orders")
	cl := testkit.Client(t, b.Addr())
	testkit.Produce(t, cl, testkit.Events("orders", "e", 5, nil)...)

	c := agent(t, b, "g", "orders", eventkit.HandlerFunc(func(ctx context.Context, ev *eventkit.Event) error {
		if ev.ID == "e-2" {
			return errors.New("poison")
		}
		return nil
	}), consumer.MaxRetries(1), consumer.HaltPolicy(consumer.PausePartition), consumer.StatusInterval(200*time.Millisecond))
	run := testkit.Go(t, c.Run)
	statuses := newStatusReader(t, b.Addr())

	st := statuses.await("with the halt", func(st eventkit.AgentStatus) bool { return len(st.Halted) == 1 })
	h := st.Halted[0]
	if st.Group != "g" || st.MemberID == "" || st.Host == "" || h.Topic != "orders" || h.Offset != 2 || h.ID != "e-2" || h.Cause != "poison" || h.Attempts != 2 {
		t.Fatalf("status %+v", st)
	}

	sendCommand(t, cl, eventkit.TypeSkip, eventkit.ControlCommand{CommandID: "c-stale", Group: "g", Topic: "orders", Partition: 0, Offset: 1, RequestedBy: "ops"})
	st = statuses.await("with the stale command refused", func(st eventkit.AgentStatus) bool { return hasOutcome(st, "c-stale") })
	if out := outcome(st, "c-stale"); out.Applied || out.Reason == "" || len(st.Halted) != 1 {
		t.Fatalf("stale command outcome %+v, halted %v", out, st.Halted)
	}
	// The sender's clock runs an hour behind the agent's: the command, sent
	// after the agent started, applies all the same.
	sendCommandAt(t, cl, eventkit.TypeSkip, eventkit.ControlCommand{CommandID: "c-1", Group: "g", Topic: "orders", Partition: 0, Offset: 2, RequestedBy: "ops"},
		time.Now().Add(-time.Hour))
	st = statuses.await("with the skip applied", func(st eventkit.AgentStatus) bool { return hasOutcome(st, "c-1") })
	if !outcome(st, "c-1").Applied {
		t.Fatalf("skip not applied: %+v", outcome(st, "c-1"))
	}
	committedAt(t, cl, "g", "orders", map[int32]int64{0: 5})
	if err := run.Stop(); err != nil {
		t.Fatal(err)
	}
	statuses.await("that says the member left", func(st eventkit.AgentStatus) bool { return st.Leaving })
}

// Commands sent before an agent started are not for it.
func TestControlPlaneIgnoresOldCommands(t *testing.T) {
	b := testkit.Broker(t, 1, "orders")
	cl := testkit.Client(t, b.Addr())
	if err := b.CreateTopic(eventkit.ControlTopic, 1); err != nil {
		t.Fatal(err)
	}
	testkit.Produce(t, cl, testkit.Events("orders", "e", 1, nil)...)
	sendCommand(t, cl, eventkit.TypeSkip, eventkit.ControlCommand{CommandID: "old", Group: "g", Topic: "orders", Partition: 0, Offset: 0})

	c := agent(t, b, "g", "orders", eventkit.HandlerFunc(func(context.Context, *eventkit.Event) error {
		return errors.New("poison")
	}), consumer.MaxRetries(0), consumer.HaltPolicy(consumer.PausePartition), consumer.StatusInterval(100*time.Millisecond))
	run := testkit.Go(t, c.Run)
	statuses := newStatusReader(t, b.Addr())
	statuses.await("with the halt", func(st eventkit.AgentStatus) bool { return len(st.Halted) == 1 })
	// Several more reports go by; the old command never shows as applied.
	for range 3 {
		st := statuses.await("", func(eventkit.AgentStatus) bool { return true })
		if hasOutcome(st, "old") || len(st.Halted) != 1 {
			t.Fatalf("old command acted on: %+v", st)
		}
	}
	if err := run.Stop(); err != nil {
		t.Fatal(err)
	}
}

func hasOutcome(st eventkit.AgentStatus, id string) bool { return outcome(st, id).CommandID == id }

func outcome(st eventkit.AgentStatus, id string) eventkit.CommandOutcome {
	for _, o := range st.Commands {
		if o.CommandID == id {
			return o
		}
	}
	return eventkit.CommandOutcome{}
}

// A command sent once the agent runs is applied even when the control
// client was slow to learn where the control topic ended at start: the
// agent looks that end up before it joins, so a command to a halt it has
// published cannot fall behind its start.
func TestControlPlaneCommandWhileStartIsLookedUp(t *testing.T) {
	b := testkit.Broker(t, 1, "orders")
	if err := b.CreateTopic(eventkit.ControlTopic, 1); err != nil {
		t.Fatal(err)
	}
	cl := testkit.Client(t, b.Addr())
	testkit.Produce(t, cl, testkit.Events("orders", "e", 2, nil)...)
	// Holds, until the skip is sent, a consuming client's own look-up of
	// the control topic's end (kgo's consumer sends the partition's leader
	// epoch, an admin's look-up -1): the look-up of a client told to start
	// "at the end".
	release := make(chan struct{})
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(release) }) })
	b.Cluster().ControlKey(int16(kmsg.ListOffsets), func(req kmsg.Request) (kmsg.Response, error, bool) {
		b.Cluster().KeepControl()
		for _, tp := range req.(*kmsg.ListOffsetsRequest).Topics {
			if tp.Topic == eventkit.ControlTopic && slices.ContainsFunc(tp.Partitions, func(p kmsg.ListOffsetsRequestTopicPartition) bool { return p.CurrentLeaderEpoch >= 0 }) {
				b.Cluster().SleepControl(func() { <-release })
			}
		}
		return nil, nil, false
	})
	c := agent(t, b, "g", "orders", eventkit.HandlerFunc(func(ctx context.Context, ev *eventkit.Event) error {
		if ev.ID == "e-0" {
			return errors.New("poison")
		}
		return nil
	}), consumer.MaxRetries(0), consumer.HaltPolicy(consumer.PausePartition), consumer.StatusInterval(200*time.Millisecond))
	run := testkit.Go(t, c.Run)
	statuses := newStatusReader(t, b.Addr())
	statuses.await("the halt", func(st eventkit.AgentStatus) bool { return len(st.Halted) == 1 })
	sendCommand(t, cl, eventkit.TypeSkip, eventkit.ControlCommand{CommandID: "s1", Group: "g", Topic: "orders", Partition: 0, Offset: 0})
	once.Do(func() { close(release) })
	st := statuses.await("the skip's outcome", func(st eventkit.AgentStatus) bool { return hasOutcome(st, "s1") })
	if !outcome(st, "s1").Applied {
		t.Fatalf("skip refused: %+v", outcome(st, "s1"))
	}
	if err := run.Stop(); err != nil {
		t.Fatal(err)
	}
}

// Under StopService a halt stops the agent, which may take a while (here
// an event of another key holds the drain). A resume or a skip sent
// meanwhile is refused: the agent no longer retries, and must not commit
// past the event its Run names as halted.
func TestControlPlaneRefusesCommandsWhileStopping(t *testing.T) {
	for _, typ := range []string{eventkit.TypeResume, eventkit.TypeSkip} {
		t.Run(typ, func(t *testing.T) {
			b := testkit.Broker(t, 1, "orders")
			cl := testkit.Client(t, b.Addr())
			testkit.Produce(t, cl, testkit.Events("orders", "e", 2, func(i int) []byte { return []byte{byte('a' + i)} })...)
			release := make(chan struct{})
			var once sync.Once
			t.Cleanup(func() { once.Do(func() { close(release) }) })
			var poisoned atomic.Int32
			c := agent(t, b, "g", "orders", eventkit.HandlerFunc(func(ctx context.Context, ev *eventkit.Event) error {
				switch ev.ID {
				case "e-0":
					<-release
				case "e-1":
					poisoned.Add(1)
					return errors.New("poison")
				}
				return nil
			}), consumer.Ordering(consumer.ByKey), consumer.MaxRetries(0), consumer.StatusInterval(200*time.Millisecond),
				consumer.DrainTimeout(20*time.Second), consumer.RebalanceTimeout(40*time.Second), consumer.SessionTimeout(45*time.Second))
			run := testkit.Go(t, c.Run)
			statuses := newStatusReader(t, b.Addr())
			statuses.await("the halt", func(st eventkit.AgentStatus) bool { return len(st.Halted) == 1 })
			sendCommand(t, cl, typ, eventkit.ControlCommand{CommandID: "c1", Group: "g", Topic: "orders", Partition: 0, Offset: 1})
			st := statuses.await("the outcome", func(st eventkit.AgentStatus) bool { return hasOutcome(st, "c1") })
			once.Do(func() { close(release) })
			err := run.Wait(30 * time.Second)
			if out := outcome(st, "c1"); out.Applied || !strings.Contains(out.Reason, "stopping") {
				t.Errorf("outcome %+v, want refused: the agent is stopping", out)
			}
			if !errors.Is(err, consumer.ErrHalted) {
				t.Fatalf("Run returned %v, want the halt", err)
			}
			if got := testkit.Committed(t, cl, "g")["orders"][0]; got != 1 || poisoned.Load() != 1 {
				t.Errorf("committed %d after %d calls of the halted event; want 1 (up to it), 1 call", got, poisoned.Load())
			}
		})
	}
}

// eventkit.control widened while the agent runs (the group's commands,
// keyed by group, may hash to the new partition): a command on the new
// partition reaches the agent, which follows the topic, not the
// partitions it had at start.
func TestControlPlaneFollowsNewControlPartitions(t *testing.T) {
	b := testkit.Broker(t, 1, "orders")
	if err := b.CreateTopic(eventkit.ControlTopic, 1); err != nil {
		t.Fatal(err)
	}
	cl := testkit.Client(t, b.Addr(), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	testkit.Produce(t, cl, testkit.Events("orders", "e", 1, nil)...)
	c := agent(t, b, "g", "orders", eventkit.HandlerFunc(func(context.Context, *eventkit.Event) error {
		return errors.New("poison")
	}), consumer.MaxRetries(0), consumer.HaltPolicy(consumer.PausePartition), consumer.StatusInterval(200*time.Millisecond),
		// A quick metadata refresh: the new partition is seen within a second.
		consumer.ClientOpts(append(testkit.ClientOpts(), kgo.MetadataMaxAge(300*time.Millisecond))...))
	run := testkit.Go(t, c.Run)
	testkit.Eventually(t, 20*time.Second, func() error {
		if len(c.Halted()) != 1 {
			return errors.New("not halted yet")
		}
		return nil
	})
	if _, err := kadm.NewClient(cl).CreatePartitions(context.Background(), 1, eventkit.ControlTopic); err != nil {
		t.Fatal(err)
	}
	// A skip on partition 1 every half second, until the agent finds the
	// partition and applies one.
	var sent int
	var last time.Time
	testkit.Eventually(t, 20*time.Second, func() error {
		for _, o := range c.Status().Commands {
			if o.Applied {
				return nil
			}
		}
		if time.Since(last) > 500*time.Millisecond {
			sent++
			last = time.Now()
			cmd := eventkit.ControlCommand{CommandID: fmt.Sprintf("s%d", sent), Group: "g", Topic: "orders", Partition: 0, Offset: 0}
			data, err := json.Marshal(cmd)
			if err != nil {
				t.Fatal(err)
			}
			r := kafka.RecordOf(eventkit.ControlTopic, &eventkit.Event{ID: cmd.CommandID, Source: "/test", Type: eventkit.TypeSkip, Time: time.Now(), Key: []byte("g"), Data: data})
			r.Partition = 1
			testkit.Produce(t, cl, r)
		}
		return errors.New("no command on the new control partition applied")
	})
	if err := run.Stop(); err != nil {
		t.Fatal(err)
	}
}
