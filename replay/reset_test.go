package replay_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/eventkit/eventkit"
	"github.com/eventkit/eventkit/consumer"
	"github.com/eventkit/eventkit/internal/testkit"
	"github.com/eventkit/eventkit/kafka"
	"github.com/eventkit/eventkit/replay"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// t0 is when the first record of each partition was written; record i was
// written i minutes later.
var t0 = time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)

// orders is an embedded broker whose topic "orders" has two partitions of
// ten records each, and a group "billing" that committed offset 6 on
// partition 0 and never committed on partition 1, whose records before
// offset 2 are deleted.
type orders struct {
	b    *kafka.Broker
	addr string
	cl   *kgo.Client
	adm  *kadm.Client
}

func newOrders(t *testing.T) orders {
	t.Helper()
	b := testkit.Broker(t, 2, "orders")
	cl := testkit.Client(t, b.Addr(), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	var rs []*kgo.Record
	for p := range int32(2) {
		for i, r := range testkit.Events("orders", fmt.Sprint("p", p), 10, nil) {
			r.Partition, r.Timestamp = p, t0.Add(time.Duration(i)*time.Minute)
			rs = append(rs, r)
		}
	}
	testkit.Produce(t, cl, rs...)
	o := orders{b: b, addr: b.Addr(), cl: cl, adm: kadm.NewClient(cl)}
	ctx := context.Background()
	if _, err := o.adm.DeleteRecords(ctx, kadm.Offsets{"orders": {1: {Topic: "orders", Partition: 1, At: 2}}}); err != nil {
		t.Fatal(err)
	}
	o.commit(t, "billing", map[int32]int64{0: 6})
	return o
}

// commit sets group's committed offsets on orders, as a group that stopped
// there would have left them.
func (o orders) commit(t *testing.T, group string, at map[int32]int64) {
	t.Helper()
	os := make(kadm.Offsets)
	for p, off := range at {
		os.Add(kadm.Offset{Topic: "orders", Partition: p, At: off, LeaderEpoch: -1})
	}
	if err := o.adm.CommitAllOffsets(context.Background(), group, os); err != nil {
		t.Fatal(err)
	}
}

func (o orders) committed(t *testing.T, group string) map[int32]int64 {
	t.Helper()
	return testkit.Committed(t, o.cl, group)["orders"]
}

func ptr[T any](v T) *T { return &v }

// row is a plan row in short: current, new, lag before, lag after.
type row [4]int64

func rows(p replay.Plan) map[string]row {
	out := make(map[string]row)
	for _, m := range p.Rows {
		out[fmt.Sprintf("%s/%d", m.Topic, m.Partition)] = row{m.Current, m.New, m.LagBefore, m.LagAfter}
	}
	return out
}

func TestPlanReset(t *testing.T) {
	o := newOrders(t)
	// orders/0: committed 6, start 0, end 10. orders/1: never committed,
	// start 2, end 10, so its lag counts from 2.
	for _, tc := range []struct {
		name string
		req  replay.ResetRequest
		want map[string]row
	}{
		{"to time", replay.ResetRequest{ToTime: ptr(t0.Add(3 * time.Minute))},
			map[string]row{"orders/0": {6, 3, 4, 7}, "orders/1": {-1, 3, 8, 7}}},
		{"to time between records", replay.ResetRequest{ToTime: ptr(t0.Add(3*time.Minute + time.Second))},
			map[string]row{"orders/0": {6, 4, 4, 6}, "orders/1": {-1, 4, 8, 6}}},
		{"to time half a millisecond after a record", replay.ResetRequest{ToTime: ptr(t0.Add(3*time.Minute + 500*time.Microsecond))},
			map[string]row{"orders/0": {6, 4, 4, 6}, "orders/1": {-1, 4, 8, 6}}},
		{"to time after the last record", replay.ResetRequest{ToTime: ptr(t0.Add(time.Hour))},
			map[string]row{"orders/0": {6, 10, 4, 0}, "orders/1": {-1, 10, 8, 0}}},
		{"to time before the first kept record", replay.ResetRequest{ToTime: ptr(t0.Add(-time.Hour))},
			map[string]row{"orders/0": {6, 0, 4, 10}, "orders/1": {-1, 2, 8, 8}}},
		{"shift back counts from the commit, or the start", replay.ResetRequest{ShiftBy: ptr[int64](-2)},
			map[string]row{"orders/0": {6, 4, 4, 6}, "orders/1": {-1, 2, 8, 8}}},
		{"shift forward", replay.ResetRequest{ShiftBy: ptr[int64](3)},
			map[string]row{"orders/0": {6, 9, 4, 1}, "orders/1": {-1, 5, 8, 5}}},
		{"shift past the end stops at the end", replay.ResetRequest{ShiftBy: ptr[int64](1 << 62)},
			map[string]row{"orders/0": {6, 10, 4, 0}, "orders/1": {-1, 10, 8, 0}}},
		{"to offset", replay.ResetRequest{ToOffset: ptr[int64](1)},
			map[string]row{"orders/0": {6, 1, 4, 9}, "orders/1": {-1, 2, 8, 8}}},
		{"to offset past the end", replay.ResetRequest{ToOffset: ptr[int64](50)},
			map[string]row{"orders/0": {6, 10, 4, 0}, "orders/1": {-1, 10, 8, 0}}},
		{"to earliest", replay.ResetRequest{ToEarliest: true},
			map[string]row{"orders/0": {6, 0, 4, 10}, "orders/1": {-1, 2, 8, 8}}},
		{"to latest", replay.ResetRequest{ToLatest: true},
			map[string]row{"orders/0": {6, 10, 4, 0}, "orders/1": {-1, 10, 8, 0}}},
		{"one partition", replay.ResetRequest{Topics: []string{"orders"}, Partitions: []int32{1}, ToLatest: true},
			map[string]row{"orders/1": {-1, 10, 8, 0}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.req.Group = "billing"
			plan, err := replay.PlanReset(context.Background(), o.adm, tc.req)
			if err != nil {
				t.Fatal(err)
			}
			if plan.Executed || plan.Group != "billing" {
				t.Errorf("plan executed %v for group %q, want a dry run for billing", plan.Executed, plan.Group)
			}
			if got := rows(plan); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("plan (current, new, lag before, lag after)\n got %v\nwant %v", got, tc.want)
			}
		})
	}
	if got := o.committed(t, "billing"); !reflect.DeepEqual(got, map[int32]int64{0: 6}) {
		t.Fatalf("plans changed the committed offsets to %v", got)
	}
}

func TestExecuteReset(t *testing.T) {
	o := newOrders(t)
	ctx := context.Background()
	plan, err := replay.PlanReset(ctx, o.adm, replay.ResetRequest{Group: "billing", ShiftBy: ptr[int64](-3)})
	if err != nil {
		t.Fatal(err)
	}
	if got := o.committed(t, "billing"); !reflect.DeepEqual(got, map[int32]int64{0: 6}) {
		t.Fatalf("after the dry run the group committed %v, want it unchanged", got)
	}

	done, err := replay.ExecuteReset(ctx, o.adm, plan)
	if err != nil {
		t.Fatal(err)
	}
	if !done.Executed {
		t.Error("executed plan not marked executed")
	}
	if got, want := o.committed(t, "billing"), map[int32]int64{0: 3, 1: 2}; !reflect.DeepEqual(got, want) {
		t.Fatalf("after execute the group committed %v, want %v", got, want)
	}

	// The same plan again would move the group from where it no longer is.
	if _, err := replay.ExecuteReset(ctx, o.adm, plan); !errors.Is(err, replay.ErrPlanStale) {
		t.Fatalf("stale plan: %v, want ErrPlanStale", err)
	}
	if got, want := o.committed(t, "billing"), map[int32]int64{0: 3, 1: 2}; !reflect.DeepEqual(got, want) {
		t.Fatalf("a stale plan changed the offsets to %v", got)
	}
}

// A group the cluster does not know yet gets its starting offsets set
// before its first agent starts, as with Kafka's own tool, once its topics
// are named.
func TestResetNewGroup(t *testing.T) {
	o := newOrders(t)
	ctx := context.Background()
	req := replay.ResetRequest{Group: "audit", Topics: []string{"orders"}, ToTime: ptr(t0.Add(4 * time.Minute))}
	plan, err := replay.PlanReset(ctx, o.adm, req)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := rows(plan), map[string]row{"orders/0": {-1, 4, 10, 6}, "orders/1": {-1, 4, 8, 6}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("plan (current, new, lag before, lag after)\n got %v\nwant %v", got, want)
	}
	if groups, err := o.adm.ListGroups(ctx); err != nil || slices.Contains(groups.Groups(), "audit") {
		t.Fatalf("after the dry run the cluster lists groups %v (%v), want no audit", groups.Groups(), err)
	}
	if _, err := replay.ExecuteReset(ctx, o.adm, plan); err != nil {
		t.Fatal(err)
	}
	if got, want := o.committed(t, "audit"), map[int32]int64{0: 4, 1: 4}; !reflect.DeepEqual(got, want) {
		t.Fatalf("the new group committed %v, want %v", got, want)
	}
	// The group exists now: the plan made while it did not is stale.
	if _, err := replay.ExecuteReset(ctx, o.adm, plan); !errors.Is(err, replay.ErrPlanStale) {
		t.Fatalf("plan of a group that exists since: %v, want ErrPlanStale", err)
	}
}

func TestResetRefusedWhileGroupHasMembers(t *testing.T) {
	o := newOrders(t)
	ctx := context.Background()
	checkActive := func(t *testing.T, group string, plan replay.Plan) {
		t.Helper()
		_, err := replay.PlanReset(ctx, o.adm, replay.ResetRequest{Group: group, Topics: []string{"orders"}, ToEarliest: true})
		if !errors.Is(err, replay.ErrGroupActive) || !strings.Contains(err.Error(), "1 active member") ||
			!strings.Contains(err.Error(), "only resets the offsets of an empty group") {
			t.Fatalf("plan while a member runs: %v, want ErrGroupActive naming 1 member and Kafka's rule", err)
		}
		if _, err := replay.ExecuteReset(ctx, o.adm, plan); !errors.Is(err, replay.ErrGroupActive) {
			t.Fatalf("execute while a member runs: %v, want ErrGroupActive", err)
		}
	}
	// emptied waits until the group has no member left and resets it.
	emptied := func(t *testing.T, group string) replay.Plan {
		t.Helper()
		var plan replay.Plan
		testkit.Eventually(t, 30*time.Second, func() (err error) {
			plan, err = replay.PlanReset(ctx, o.adm, replay.ResetRequest{Group: group, Topics: []string{"orders"}, ToEarliest: true})
			return err
		})
		plan, err := replay.ExecuteReset(ctx, o.adm, plan)
		if err != nil {
			t.Fatal(err)
		}
		return plan
	}

	t.Run("consumer agent", func(t *testing.T) {
		o.commit(t, "ledger", map[int32]int64{0: 4, 1: 4})
		plan, err := replay.PlanReset(ctx, o.adm, replay.ResetRequest{Group: "ledger", ToEarliest: true})
		if err != nil {
			t.Fatal(err)
		}
		noop := eventkit.HandlerFunc(func(context.Context, *eventkit.Event) error { return nil })
		agent := testkit.Agent(t, o.b, "ledger", "orders", noop, consumer.ReplayTopic(false), consumer.ControlPlane(false))
		run := testkit.Go(t, agent.Run)
		testkit.WaitCommitted(t, o.cl, "ledger", "orders", map[int32]int64{0: 10, 1: 10}, 30*time.Second)

		checkActive(t, "ledger", plan)
		if got, want := o.committed(t, "ledger"), map[int32]int64{0: 10, 1: 10}; !reflect.DeepEqual(got, want) {
			t.Fatalf("refused reset changed the offsets to %v", got)
		}

		if err := run.Stop(); err != nil {
			t.Fatal(err)
		}
		emptied(t, "ledger")
		if got, want := o.committed(t, "ledger"), map[int32]int64{0: 0, 1: 2}; !reflect.DeepEqual(got, want) {
			t.Fatalf("after the agent stopped the reset committed %v, want %v", got, want)
		}
	})

	t.Run("KIP-848 member", func(t *testing.T) {
		member := testkit.Client(t, o.addr, kgo.ConsumerGroup("audit"), kgo.ConsumeTopics("orders"),
			kgo.ServerSideBalancer(), kgo.Balancers(kgo.RangeBalancer()),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		pollCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		for n := 0; n == 0; {
			fs := member.PollFetches(pollCtx)
			if pollCtx.Err() != nil {
				t.Fatalf("the KIP-848 member read nothing: %v", pollCtx.Err())
			}
			n = fs.NumRecords()
		}
		if err := member.CommitUncommittedOffsets(ctx); err != nil {
			t.Fatal(err)
		}
		checkActive(t, "audit", replay.Plan{Group: "audit"})

		member.Close()
		emptied(t, "audit")
	})
}

func TestResetBadInput(t *testing.T) {
	o := newOrders(t)
	for _, tc := range []struct {
		name string
		req  replay.ResetRequest
		is   error
		want string
	}{
		{"no target", replay.ResetRequest{Group: "billing"}, replay.ErrInvalidReset, "no target"},
		{"two targets", replay.ResetRequest{Group: "billing", ToTime: &t0, ShiftBy: ptr[int64](1)}, replay.ErrInvalidReset, "more than one target (to-time, shift-by)"},
		{"negative offset", replay.ResetRequest{Group: "billing", ToOffset: ptr[int64](-1)}, replay.ErrInvalidReset, "to-offset -1"},
		{"no group", replay.ResetRequest{ToLatest: true}, replay.ErrInvalidReset, "no group"},
		{"unknown group", replay.ResetRequest{Group: "nobody", ToLatest: true}, kafka.ErrUnknownGroup, `group "nobody": no such consumer group; name its topics`},
		{"unknown topic", replay.ResetRequest{Group: "billing", Topics: []string{"orders", "nope"}, ToLatest: true}, kerr.UnknownTopicOrPartition, "topic nope does not exist"},
		{"unknown partition", replay.ResetRequest{Group: "billing", Partitions: []int32{0, 7}, ToLatest: true}, kerr.UnknownTopicOrPartition, "topic orders has no partition 7 (it has 2)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := replay.PlanReset(context.Background(), o.adm, tc.req)
			if !errors.Is(err, tc.is) || err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error matching %v that says %q", err, tc.is, tc.want)
			}
		})
	}
}
