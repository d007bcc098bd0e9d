package consumer_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/eventkit/eventkit"
	"github.com/eventkit/eventkit/consumer"
	"github.com/eventkit/eventkit/internal/testkit"
	"github.com/eventkit/eventkit/kafka"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// An agent creates its group's replay topic, sized like its widest topic,
// and hands records replayed there to the same handler with Replay set.
func TestReplayTopicIsConsumed(t *testing.T) {
	b := testkit.Broker(t, 3, "orders")
	cl := testkit.Client(t, b.Addr())
	got := make(chan *eventkit.Event, 1)
	c := agent(t, b, "reports", "orders", eventkit.HandlerFunc(func(ctx context.Context, ev *eventkit.Event) error {
		got <- ev
		return nil
	}))
	run := testkit.Go(t, c.Run)

	topic := eventkit.ReplayTopic("reports")
	testkit.Eventually(t, 20*time.Second, func() error {
		_, err := kafka.PartitionCount(context.Background(), kadm.NewClient(cl), topic)
		return err
	})
	if n, _ := kafka.PartitionCount(context.Background(), kadm.NewClient(cl), topic); n != 3 {
		t.Fatalf("replay topic has %d partitions, want 3 like orders", n)
	}
	ev := &eventkit.Event{ID: "e-1", Source: "/test", Type: "t", Headers: []eventkit.Header{
		{Key: eventkit.HeaderReplayID, Value: []byte("r-1")},
		{Key: eventkit.HeaderReplayMode, Value: []byte("reprocess")},
		{Key: eventkit.HeaderReplayOrigin, Value: []byte("orders/2/7")},
	}}
	testkit.Produce(t, cl, kafka.RecordOf(topic, ev))
	select {
	case e := <-got:
		if e.Replay == nil || e.Replay.ID != "r-1" || e.Replay.Mode != eventkit.Reprocess || e.Replay.OriginTopic != "orders" || e.Replay.OriginOffset != 7 {
			t.Fatalf("replayed event %+v, replay %+v", e, e.Replay)
		}
		if e.Topic != topic {
			t.Fatalf("consumed from %s", e.Topic)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("replayed event not handled")
	}
	if err := run.Stop(); err != nil {
		t.Fatal(err)
	}
}

func TestReplayTopicOff(t *testing.T) {
	b := testkit.Broker(t, 1, "orders")
	cl := testkit.Client(t, b.Addr())
	testkit.Produce(t, cl, testkit.Events("orders", "e", 1, nil)...)
	done := make(chan struct{}, 1)
	c := agent(t, b, "g", "orders", eventkit.HandlerFunc(func(context.Context, *eventkit.Event) error {
		done <- struct{}{}
		return nil
	}), consumer.ReplayTopic(false))
	run := testkit.Go(t, c.Run)
	<-done
	if err := run.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := kafka.PartitionCount(context.Background(), kadm.NewClient(cl), eventkit.ReplayTopic("g")); err == nil {
		t.Fatal("replay topic created with ReplayTopic(false)")
	}
}

// A regex subscription whose exclusions would also exclude the group's
// replay topic is refused at start, saying which exclusion and why, rather
// than leaving replays to the group undelivered.
func TestReplayTopicExcludedIsRefused(t *testing.T) {
	b := testkit.Broker(t, 1, "orders")
	c := agent(t, b, "g", "^orders$", eventkit.HandlerFunc(func(context.Context, *eventkit.Event) error { return nil }),
		consumer.TopicRegex(), consumer.ClientOpts(kgo.ConsumeExcludeTopics(`^__`, `^eventkit\.`)))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := c.Run(ctx)
	if err == nil || !strings.Contains(err.Error(), `"^eventkit\\."`) || !strings.Contains(err.Error(), eventkit.ReplayTopic("g")) {
		t.Fatalf("Run = %v, want the exclusion and the replay topic named", err)
	}
}

// A regex subscription with exclusions of its own runs with the control
// plane and the replay topic on: the exclusions shape the group's
// subscription only, not the agent's helper clients, and spare the replay
// topic.
func TestRegexWithExclusions(t *testing.T) {
	b := testkit.Broker(t, 1, "orders", "orders.internal")
	cl := testkit.Client(t, b.Addr())
	got := make(chan *eventkit.Event, 4)
	c := agent(t, b, "g", "^orders", eventkit.HandlerFunc(func(ctx context.Context, ev *eventkit.Event) error {
		got <- ev
		return nil
	}), consumer.TopicRegex(), consumer.ClientOpts(kgo.ConsumeExcludeTopics(`^orders\.internal$`)))
	run := testkit.Go(t, c.Run)
	testkit.Produce(t, cl, testkit.Events("orders.internal", "hidden", 1, nil)...)
	handlesOrderThenReplay(t, cl, got)
	if err := run.Stop(); err != nil {
		t.Fatal(err)
	}
	handledNothingMore(t, got)
}

// handlesOrderThenReplay produces e-0 to orders, waits for the handler to
// get it (on got), then produces r-0 to group g's replay topic, which
// exists once the agent runs, and waits for it too.
func handlesOrderThenReplay(t *testing.T, cl *kgo.Client, got <-chan *eventkit.Event) {
	t.Helper()
	testkit.Produce(t, cl, testkit.Events("orders", "e", 1, nil)...)
	for i, id := range []string{"e-0", "r-0"} {
		select {
		case ev := <-got:
			if ev.ID != id {
				t.Fatalf("handled %s from %s, want %s", ev.ID, ev.Topic, id)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("%s not handled", id)
		}
		if i == 0 {
			testkit.Produce(t, cl, testkit.Events(eventkit.ReplayTopic("g"), "r", 1, nil)...)
		}
	}
}

func handledNothingMore(t *testing.T, got <-chan *eventkit.Event) {
	t.Helper()
	select {
	case ev := <-got:
		t.Fatalf("handled %s from %s", ev.ID, ev.Topic)
	default:
	}
}

// A regex subscription that matches replay topics takes the group's own
// and no other group's: those replays are addressed to their groups only.
func TestRegexLeavesOtherGroupsReplays(t *testing.T) {
	other := eventkit.ReplayTopic("g.other") // shares a prefix with g's own
	b := testkit.Broker(t, 1, "orders", other)
	cl := testkit.Client(t, b.Addr())
	testkit.Produce(t, cl, testkit.Events(other, "x", 1, nil)...)
	got := make(chan *eventkit.Event, 4)
	c := agent(t, b, "g", `^(orders|eventkit\.replay\..*)$`, eventkit.HandlerFunc(func(ctx context.Context, ev *eventkit.Event) error {
		got <- ev
		return nil
	}), consumer.TopicRegex())
	run := testkit.Go(t, c.Run)
	handlesOrderThenReplay(t, cl, got)
	for _, p := range c.Status().Partitions {
		if p.Topic == other {
			t.Errorf("assigned %s/%d, another group's replay topic", p.Topic, p.Partition)
		}
	}
	if err := run.Stop(); err != nil {
		t.Fatal(err)
	}
	handledNothingMore(t, got)
}

// ForeignReplays lets a watcher such as lookback's ingest see every
// group's replays.
func TestForeignReplaysSeesOtherGroupsReplays(t *testing.T) {
	other := eventkit.ReplayTopic("g.other")
	b := testkit.Broker(t, 1, other)
	testkit.Produce(t, testkit.Client(t, b.Addr()), testkit.Events(other, "x", 1, nil)...)
	got := make(chan *eventkit.Event, 4)
	c := agent(t, b, "watcher", `^eventkit\.replay\.`, eventkit.HandlerFunc(func(ctx context.Context, ev *eventkit.Event) error {
		got <- ev
		return nil
	}), consumer.TopicRegex(), consumer.ReplayTopic(false), consumer.ForeignReplays())
	run := testkit.Go(t, c.Run)
	select {
	case ev := <-got:
		if ev.ID != "x-0" || ev.Topic != other {
			t.Fatalf("handled %s from %s, want x-0 from %s", ev.ID, ev.Topic, other)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the other group's replay was not seen")
	}
	if err := run.Stop(); err != nil {
		t.Fatal(err)
	}
}
