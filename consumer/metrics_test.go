package consumer_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/eventkit/eventkit"
	"github.com/eventkit/eventkit/consumer"
	"github.com/eventkit/eventkit/internal/testkit"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The handler duration is the handler's: the agent's own work between two
// calls, here a dead-letter produce that takes an hour by the agent's
// clock, is not added to the next call.
func TestHandlerDurationIsTheHandlers(t *testing.T) {
	b := testkit.Broker(t, 1, "orders", "orders.dlq")
	cl := testkit.Client(t, b.Addr())
	testkit.Produce(t, cl, testkit.Events("orders", "e", 2, nil)...)
	clock := testkit.NewClock(time.Now())
	produced := make(chan struct{}, 1)
	// The agent's only produce (no control plane, no replay topic) is the
	// dead letter of e-0.
	b.Cluster().ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		b.Cluster().KeepControl()
		clock.Add(time.Hour)
		select {
		case produced <- struct{}{}:
		default:
		}
		return nil, nil, false
	})
	reg := prometheus.NewRegistry()
	c := agent(t, b, "g", "orders", eventkit.HandlerFunc(func(ctx context.Context, ev *eventkit.Event) error {
		if ev.ID == "e-0" {
			return eventkit.Warn(errors.New("bad card"))
		}
		return nil
	}), consumer.Registerer(reg), consumer.Clock(clock.Now), consumer.DeadLetterTopic("orders.dlq"),
		consumer.ReplayTopic(false), consumer.ControlPlane(false))
	run := testkit.Go(t, c.Run)
	committedAt(t, cl, "g", "orders", map[int32]int64{0: 2})
	select {
	case <-produced:
	default:
		t.Fatal("no dead letter produced")
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	calls := uint64(0)
	for _, mf := range mfs {
		if mf.GetName() == "eventkit_consumer_handler_duration_seconds" {
			for _, m := range mf.GetMetric() {
				h := m.GetHistogram()
				calls += h.GetSampleCount()
				if h.GetSampleSum() != 0 {
					t.Errorf("handler time %v s for calls that took none by the agent's clock", h.GetSampleSum())
				}
			}
		}
	}
	if calls != 2 {
		t.Errorf("%d calls measured, want 2", calls)
	}
	if err := run.Stop(); err != nil {
		t.Fatal(err)
	}
}

// Before anything is processed, the lag counts from the group's committed
// offset: a first event stuck retrying or halted shows the whole backlog
// behind it, which is when a lag alert should fire.
func TestLagBeforeAnythingIsProcessed(t *testing.T) {
	b := testkit.Broker(t, 1, "orders")
	cl := testkit.Client(t, b.Addr())
	testkit.Produce(t, cl, testkit.Events("orders", "e", 10, nil)...)
	var offs kadm.Offsets
	offs.Add(kadm.Offset{Topic: "orders", Partition: 0, At: 2, LeaderEpoch: -1})
	if err := kadm.NewClient(cl).CommitAllOffsets(t.Context(), "g", offs); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	c := agent(t, b, "g", "orders", eventkit.HandlerFunc(func(ctx context.Context, ev *eventkit.Event) error {
		return eventkit.Retry(errors.New("db down"))
	}), consumer.Registerer(reg), consumer.MaxRetries(0), consumer.HaltPolicy(consumer.PausePartition),
		consumer.ReplayTopic(false), consumer.ControlPlane(false))
	run := testkit.Go(t, c.Run)
	testkit.Eventually(t, 20*time.Second, func() error {
		if lag, err := gauge(reg, "eventkit_consumer_lag"); err != nil || lag != 8 {
			return fmt.Errorf("lag %v (%v), want the 8 records after the committed offset 2", lag, err)
		}
		return nil
	})
	if err := run.Stop(); err != nil {
		t.Fatal(err)
	}
}

// The halted-partitions gauge counts partitions: under ByKey one partition
// may hold halts of several keys.
func TestHaltedPartitionsCountsPartitions(t *testing.T) {
	b := testkit.Broker(t, 1, "orders")
	cl := testkit.Client(t, b.Addr())
	testkit.Produce(t, cl, testkit.Events("orders", "e", 4, func(i int) []byte { return []byte{'a' + byte(i%2)} })...)
	reg := prometheus.NewRegistry()
	c := agent(t, b, "g", "orders", eventkit.HandlerFunc(func(ctx context.Context, ev *eventkit.Event) error {
		return eventkit.Retry(errors.New("db down"))
	}), consumer.Registerer(reg), consumer.MaxRetries(0), consumer.HaltPolicy(consumer.PausePartition),
		consumer.Ordering(consumer.ByKey), consumer.ReplayTopic(false), consumer.ControlPlane(false))
	run := testkit.Go(t, c.Run)
	testkit.Eventually(t, 20*time.Second, func() error {
		if n := len(c.Halted()); n != 2 {
			return fmt.Errorf("%d halts, want 2 (keys a and b of orders/0)", n)
		}
		return nil
	})
	if g := gaugeValue(t, reg, "eventkit_consumer_halted_partitions"); g != 1 {
		t.Errorf("halted partitions %v with one partition paused, want 1", g)
	}
	if err := run.Stop(); err != nil {
		t.Fatal(err)
	}
}

// A halted partition is not fetched, yet its lag keeps growing as records
// arrive behind the halted event, so that an alert on lag fires for it.
func TestLagGrowsWhileHalted(t *testing.T) {
	b := testkit.Broker(t, 1, "orders")
	cl := testkit.Client(t, b.Addr())
	testkit.Produce(t, cl, testkit.Events("orders", "e", 10, nil)...)
	reg := prometheus.NewRegistry()
	c := agent(t, b, "g", "orders", eventkit.HandlerFunc(func(ctx context.Context, ev *eventkit.Event) error {
		return eventkit.Retry(errors.New("db down"))
	}), consumer.Registerer(reg), consumer.MaxRetries(0), consumer.HaltPolicy(consumer.PausePartition),
		consumer.ReplayTopic(false), consumer.ControlPlane(false))
	run := testkit.Go(t, c.Run)
	lagIs := func(want float64) func() error {
		return func() error {
			if lag, err := gauge(reg, "eventkit_consumer_lag"); err != nil || lag != want {
				return fmt.Errorf("lag %v (%v), want %v", lag, err, want)
			}
			return nil
		}
	}
	testkit.Eventually(t, 20*time.Second, func() error {
		if len(c.Halted()) != 1 {
			return errors.New("not halted yet")
		}
		return lagIs(10)()
	})
	testkit.Produce(t, cl, testkit.Events("orders", "f", 15, nil)...)
	testkit.Eventually(t, 20*time.Second, lagIs(25))
	if err := run.Stop(); err != nil {
		t.Fatal(err)
	}
}

// Looking up a paused partition's end waits on its leader; a slow one must
// not hold the commits of the partitions that flow.
func TestSlowEndLookupHoldsNoCommit(t *testing.T) {
	kc, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.SeedTopics(2, "orders"),
		kfake.GroupMinSessionTimeout(500*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kc.Close)
	// The halted partition's leader is neither the coordinator nor the
	// other partition's leader.
	coord := kc.CoordinatorFor("g")
	slow := (coord + 1) % 3
	if err := kc.MoveTopicPartition("orders", 0, slow); err != nil {
		t.Fatal(err)
	}
	if err := kc.MoveTopicPartition("orders", 1, coord); err != nil {
		t.Fatal(err)
	}
	cl := testkit.Client(t, kc.ListenAddrs()[0], kgo.RecordPartitioner(kgo.ManualPartitioner()))
	to := func(p int32, n int) []*kgo.Record {
		rs := testkit.Events("orders", "e", n, nil)
		for _, r := range rs {
			r.Partition = p
		}
		return rs
	}
	testkit.Produce(t, cl, to(0, 1)...)
	testkit.Produce(t, cl, to(1, 5)...)
	c, err := consumer.New(eventkit.HandlerFunc(func(ctx context.Context, ev *eventkit.Event) error {
		if ev.Partition == 0 {
			return eventkit.Retry(errors.New("db down"))
		}
		return nil
	}), append(testkit.QuickAgent(t), consumer.Brokers(kc.ListenAddrs()...), consumer.Group("g"), consumer.Topics("orders"),
		consumer.MaxRetries(0), consumer.HaltPolicy(consumer.PausePartition),
		consumer.ReplayTopic(false), consumer.ControlPlane(false),
		consumer.DrainTimeout(30*time.Second), consumer.SessionTimeout(45*time.Second), consumer.RebalanceTimeout(40*time.Second))...)
	if err != nil {
		t.Fatal(err)
	}
	run := testkit.Go(t, c.Run)
	testkit.Eventually(t, 20*time.Second, func() error {
		if len(c.Halted()) != 1 {
			return errors.New("not halted yet")
		}
		return nil
	})
	testkit.WaitCommitted(t, cl, "g", "orders", map[int32]int64{1: 5}, 20*time.Second)

	// The slow leader holds every end look-up from now on.
	release := make(chan struct{})
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	t.Cleanup(free)
	asked := make(chan struct{}, 1)
	kc.ControlKey(int16(kmsg.ListOffsets), func(kmsg.Request) (kmsg.Response, error, bool) {
		kc.KeepControl()
		if kc.CurrentNode() != slow {
			return nil, nil, false
		}
		select {
		case asked <- struct{}{}:
		default:
		}
		kc.SleepControl(func() { <-release })
		return nil, nil, false
	})
	select {
	case <-asked:
	case <-time.After(20 * time.Second):
		t.Fatal("no end look-up")
	}
	testkit.Produce(t, cl, to(1, 5)...)
	testkit.WaitCommitted(t, cl, "g", "orders", map[int32]int64{1: 10}, 20*time.Second)
	free()
	if err := run.Stop(); err != nil {
		t.Fatal(err)
	}
}
