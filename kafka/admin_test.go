package kafka_test

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/eventkit/eventkit/internal/testkit"
	"github.com/eventkit/eventkit/kafka"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestEnsureTopicAndPartitionCount(t *testing.T) {
	b := testkit.Broker(t, 1)
	adm := kadm.NewClient(testkit.Client(t, b.Addr()))
	ctx := testCtx(t)

	t.Run("missing topic", func(t *testing.T) {
		_, err := kafka.PartitionCount(ctx, adm, "orders")
		if !errors.Is(err, kerr.UnknownTopicOrPartition) {
			t.Fatalf("PartitionCount: %v, want UnknownTopicOrPartition", err)
		}
	})
	t.Run("created", func(t *testing.T) {
		if err := kafka.EnsureTopic(ctx, adm, "orders", 4); err != nil {
			t.Fatal(err)
		}
		if n, err := kafka.PartitionCount(ctx, adm, "orders"); err != nil || n != 4 {
			t.Fatalf("PartitionCount: %d, %v; want 4", n, err)
		}
	})
	t.Run("existing is left alone", func(t *testing.T) {
		if err := kafka.EnsureTopic(ctx, adm, "orders", 8); err != nil {
			t.Fatalf("EnsureTopic on an existing topic: %v", err)
		}
		if n, err := kafka.PartitionCount(ctx, adm, "orders"); err != nil || n != 4 {
			t.Fatalf("PartitionCount: %d, %v; want 4 still", n, err)
		}
	})
	t.Run("broker default", func(t *testing.T) {
		if err := kafka.EnsureTopic(ctx, adm, "audit", 0); err != nil {
			t.Fatal(err)
		}
		if n, err := kafka.PartitionCount(ctx, adm, "audit"); err != nil || n != 1 {
			t.Fatalf("PartitionCount: %d, %v; want the broker's default 1", n, err)
		}
	})
}

func TestGroupLag(t *testing.T) {
	b := testkit.Broker(t, 3, "orders", "payments")
	cl := testkit.Client(t, b.Addr(), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	adm := kadm.NewClient(cl)
	ctx := testCtx(t)

	// orders: 5, 3 and 0 records on partitions 0..2; payments: 2 on 0.
	var rs []*kgo.Record
	for p, n := range map[int32]int{0: 5, 1: 3} {
		for range n {
			rs = append(rs, &kgo.Record{Topic: "orders", Partition: p, Value: []byte("x")})
		}
	}
	rs = append(rs, &kgo.Record{Topic: "payments", Value: []byte("x")}, &kgo.Record{Topic: "payments", Value: []byte("x")})
	testkit.Produce(t, cl, rs...)

	t.Run("unknown group", func(t *testing.T) {
		_, err := kafka.GroupLag(ctx, adm, "nobody")
		if !errors.Is(err, kafka.ErrUnknownGroup) {
			t.Fatalf("GroupLag: %v, want ErrUnknownGroup", err)
		}
	})

	t.Run("committed on some partitions", func(t *testing.T) {
		commit(t, adm, "billing",
			kadm.Offset{Topic: "orders", Partition: 0, At: 2},
			kadm.Offset{Topic: "orders", Partition: 1, At: 3},
			kadm.Offset{Topic: "payments", Partition: 0, At: 1})
		got, err := kafka.GroupLag(ctx, adm, "billing")
		if err != nil {
			t.Fatal(err)
		}
		want := []kafka.PartitionLag{
			{Topic: "orders", Partition: 0, Committed: 2, End: 5, Lag: 3},
			{Topic: "orders", Partition: 1, Committed: 3, End: 3, Lag: 0},
			{Topic: "orders", Partition: 2, Committed: -1, End: 0, Lag: 0},
			{Topic: "payments", Partition: 0, Committed: 1, End: 2, Lag: 1},
			{Topic: "payments", Partition: 1, Committed: -1, End: 0, Lag: 0},
			{Topic: "payments", Partition: 2, Committed: -1, End: 0, Lag: 0},
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("GroupLag:\n got %+v\nwant %+v", got, want)
		}
	})

	t.Run("uncommitted partition counts from the log start", func(t *testing.T) {
		commit(t, adm, "late", kadm.Offset{Topic: "orders", Partition: 1, At: 1})
		got, err := kafka.GroupLag(ctx, adm, "late")
		if err != nil {
			t.Fatal(err)
		}
		want := []kafka.PartitionLag{
			{Topic: "orders", Partition: 0, Committed: -1, End: 5, Lag: 5},
			{Topic: "orders", Partition: 1, Committed: 1, End: 3, Lag: 2},
			{Topic: "orders", Partition: 2, Committed: -1, End: 0, Lag: 0},
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("GroupLag:\n got %+v\nwant %+v", got, want)
		}
	})

	t.Run("live group without commits", func(t *testing.T) {
		member := testkit.Client(t, b.Addr(), kgo.ConsumerGroup("fresh"), kgo.ConsumeTopics("orders"),
			kgo.DisableAutoCommit(), kgo.SessionTimeout(3*time.Second), kgo.RebalanceTimeout(2*time.Second))
		testkit.Eventually(t, 20*time.Second, func() error {
			member.PollFetches(ctx) // joins the group
			groups, err := adm.ListGroups(ctx)
			if err != nil {
				return err
			}
			if _, ok := groups["fresh"]; !ok {
				return errors.New("group fresh not listed yet")
			}
			return nil
		})
		got, err := kafka.GroupLag(ctx, adm, "fresh")
		if err != nil || len(got) != 0 {
			t.Fatalf("GroupLag: %+v, %v; want no partitions and no error", got, err)
		}
	})
}

// commit commits offsets for group as an offline group would.
func commit(t *testing.T, adm *kadm.Client, group string, offsets ...kadm.Offset) {
	t.Helper()
	var os kadm.Offsets
	for _, o := range offsets {
		os.Add(o)
	}
	if err := adm.CommitAllOffsets(testCtx(t), group, os); err != nil {
		t.Fatalf("commit %s: %v", group, err)
	}
}
