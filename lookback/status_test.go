package lookback_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/eventkit/eventkit"
	"github.com/eventkit/eventkit/consumer"
	"github.com/eventkit/eventkit/internal/testkit"
	"github.com/eventkit/eventkit/kafka"
	"github.com/eventkit/eventkit/lookback"
	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"
)

func statusBoard(t *testing.T, b *kafka.Broker, opts ...lookback.StatusOpt) *lookback.Status {
	t.Helper()
	board, err := lookback.NewStatus([]string{b.Addr()}, append([]lookback.StatusOpt{
		lookback.StatusClientOpts(testkit.ClientOpts()...), lookback.StatusLogger(testkit.Logger(t)),
	}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	testkit.Go(t, board.Run)
	return board
}

// members describes group g on the board as member → assigned partitions
// of orders (agents also hold their group's replay topic).
func members(board *lookback.Status, g string) map[string]int {
	out := map[string]int{}
	for _, st := range board.Group(g) {
		out[st.MemberID] = 0
		for _, p := range st.Partitions {
			if p.Topic == "orders" {
				out[st.MemberID]++
			}
		}
	}
	return out
}

const statusEvery = 200 * time.Millisecond

// A member that leaves is gone at once, one that falls silent after three
// intervals; the partitions they held show under the member that took
// them over.
func TestStatusBoardMembersComeAndGo(t *testing.T) {
	b := testkit.Broker(t, 2, "orders")
	cl := testkit.Client(t, b.Addr())
	clock := testkit.NewClock(time.Now())
	board := statusBoard(t, b, lookback.StatusClock(clock.Now))
	agentOpts := []consumer.Opt{consumer.StatusInterval(statusEvery)}
	a := testkit.Go(t, testkit.Agent(t, b, "g", "orders", eventkit.HandlerFunc(noop), agentOpts...).Run)
	testkit.Go(t, testkit.Agent(t, b, "g", "orders", eventkit.HandlerFunc(noop), agentOpts...).Run)

	testkit.Eventually(t, 30*time.Second, func() error {
		if m := members(board, "g"); len(m) != 2 || sum(m) != 2 {
			return fmt.Errorf("members %v, want two with a partition each", m)
		}
		return nil
	})
	if gs := board.Groups(); len(gs) != 1 || gs[0] != "g" {
		t.Fatalf("groups %q", gs)
	}
	if err := a.Stop(); err != nil {
		t.Fatal(err)
	}
	// The clock stands still: only the leaving status can remove it.
	var survivor string
	testkit.Eventually(t, 30*time.Second, func() error {
		m := members(board, "g")
		for id, n := range m {
			survivor = id
			if len(m) == 1 && n == 2 {
				return nil
			}
		}
		return fmt.Errorf("members %v, want one with both partitions", m)
	})

	// A member that dies without a word: its last status stays for three
	// of its intervals by the board's clock, then it is gone.
	ghost := eventkit.AgentStatus{
		Group: "g", MemberID: "ghost", Host: "gone", UpdatedAt: time.Now(), Interval: eventkit.Duration(time.Second),
		Partitions: []eventkit.PartitionStatus{{Topic: "orders", Partition: 1}},
	}
	produceStatus(t, cl, ghost)
	testkit.Eventually(t, 30*time.Second, func() error {
		if m := members(board, "g"); m["ghost"] != 1 {
			return fmt.Errorf("members %v, want the ghost too", m)
		}
		return nil
	})
	clock.Add(2 * time.Second)
	if m := members(board, "g"); m["ghost"] != 1 {
		t.Fatalf("ghost gone after two of its intervals: %v", m)
	}
	clock.Add(1500 * time.Millisecond)
	testkit.Eventually(t, 30*time.Second, func() error {
		if m := members(board, "g"); len(m) != 1 || m[survivor] != 2 {
			return fmt.Errorf("members %v, want %s alone with both partitions", m, survivor)
		}
		return nil
	})
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func produceStatus(t *testing.T, cl *kgo.Client, st eventkit.AgentStatus) {
	t.Helper()
	data, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	ev := &eventkit.Event{ID: "s-" + st.MemberID, Source: "/test", Type: eventkit.TypeAgentStatus, Time: st.UpdatedAt, Key: []byte(st.Group), Data: data}
	testkit.Produce(t, cl, kafka.RecordOf(eventkit.StatusTopic, ev))
}

// A command goes out only for the offset the latest status shows halted,
// in the form agents read; the agent applies it and reports so.
func TestStatusBoardSendsCommands(t *testing.T) {
	b := testkit.Broker(t, 1, "orders")
	cl := testkit.Client(t, b.Addr())
	board := statusBoard(t, b)
	testkit.Produce(t, cl, testkit.Events("orders", "e", 4, nil)...)
	c := testkit.Agent(t, b, "g", "orders", eventkit.HandlerFunc(func(_ context.Context, ev *eventkit.Event) error {
		if ev.ID == "e-1" {
			return errors.New("poison")
		}
		return nil
	}), consumer.MaxRetries(0), consumer.HaltPolicy(consumer.PausePartition), consumer.StatusInterval(statusEvery))
	testkit.Go(t, c.Run)

	if _, err := board.SendCommand(context.Background(), "eventkit.control.explode", eventkit.ControlCommand{Group: "g"}); !errors.Is(err, lookback.ErrBadQuery) {
		t.Fatalf("unknown type: %v", err)
	}
	testkit.Eventually(t, 30*time.Second, func() error {
		if _, ok := board.Halted("g", "orders", 0, 1); !ok {
			return fmt.Errorf("no halt on the board: %+v", board.Group("g"))
		}
		return nil
	})
	stale := eventkit.ControlCommand{Group: "g", Topic: "orders", Partition: 0, Offset: 2, RequestedBy: "otto"}
	if _, err := board.SendCommand(context.Background(), eventkit.TypeSkip, stale); !errors.Is(err, lookback.ErrNotHalted) {
		t.Fatalf("stale skip: %v, want ErrNotHalted", err)
	}
	id, err := board.SendCommand(context.Background(), eventkit.TypeSkip, eventkit.ControlCommand{Group: "g", Topic: "orders", Partition: 0, Offset: 1, RequestedBy: "otto"})
	if err != nil || id == "" {
		t.Fatalf("skip: %q, %v", id, err)
	}
	if _, ok := lookback.CommandSent(id); !ok {
		t.Errorf("command id %q does not tell when it was sent", id)
	}
	testkit.Eventually(t, 30*time.Second, func() error {
		o, ok := board.Outcome("g", id)
		if !ok || !o.Applied {
			return fmt.Errorf("outcome %+v (%v)", o, ok)
		}
		return nil
	})
	testkit.WaitCommitted(t, cl, "g", "orders", map[int32]int64{0: 4}, 30*time.Second)
}
func noop(context.Context, *eventkit.Event) error { return nil }

// A status read back from the window when the board starts has already
// been silent for its age: its member is gone three intervals after the
// status was sent, not three intervals after the board read it.
func TestStatusBoardCountsTheAgeOfWhatItReadsBack(t *testing.T) {
	b := testkit.Broker(t, 1, "orders")
	if err := b.CreateTopic(eventkit.StatusTopic, 1); err != nil {
		t.Fatal(err)
	}
	cl := testkit.Client(t, b.Addr())
	// 8 s old: read back well within its expiry of 15 s, however slow the
	// machine.
	sent := time.Now().Add(-8 * time.Second)
	st := eventkit.AgentStatus{Group: "g", MemberID: "old", Host: "h", UpdatedAt: sent, Interval: eventkit.Duration(5 * time.Second)}
	data, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	r := kafka.RecordOf(eventkit.StatusTopic, &eventkit.Event{ID: "s1", Source: "/test", Type: eventkit.TypeAgentStatus, Time: sent, Key: []byte("g"), Data: data})
	r.Timestamp = sent
	testkit.Produce(t, cl, r)

	clock := testkit.NewClock(time.Now())
	board := statusBoard(t, b, lookback.StatusClock(clock.Now))
	testkit.Eventually(t, 30*time.Second, func() error {
		if len(board.Group("g")) != 1 {
			return errors.New("status not read back")
		}
		return nil
	})
	clock.Add(8 * time.Second) // 16 s after it was sent: past three intervals
	if ms := board.Group("g"); len(ms) != 0 {
		t.Errorf("member listed 16 s after its last status, three intervals of 5 s: %+v", ms)
	}
}

// The ids SendCommand makes tell when the command was sent.
func TestCommandSent(t *testing.T) {
	v7, err := uuid.NewV7()
	if err != nil {
		t.Fatal(err)
	}
	if at, ok := lookback.CommandSent(v7.String()); !ok || time.Since(at) > time.Minute || time.Since(at) < -time.Minute {
		t.Errorf("v7 id: sent %v, %v; want about now", at, ok)
	}
	for _, id := range []string{"c1", uuid.NewString(), ""} {
		if _, ok := lookback.CommandSent(id); ok {
			t.Errorf("%q: a time, want none", id)
		}
	}
}
