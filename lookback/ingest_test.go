package lookback_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/eventkit/eventkit"
	"github.com/eventkit/eventkit/internal/testkit"
	"github.com/eventkit/eventkit/kafka"
	"github.com/eventkit/eventkit/lookback"
	"github.com/eventkit/eventkit/sqlite"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var topics = []string{"orders", "payments", "shipments"}

// ingest runs an ingest on b into a with quick group timings until the
// test ends or the returned stop is called.
func ingest(t *testing.T, b *kafka.Broker, a lookback.Archive, opts ...lookback.Opt) *testkit.Running {
	t.Helper()
	in, err := lookback.NewIngest(a, append([]lookback.Opt{
		lookback.Brokers(b.Addr()),
		lookback.Concurrency(256),
		lookback.Logger(testkit.Logger(t)),
		lookback.Registerer(prometheus.NewRegistry()),
		lookback.AgentOpts(testkit.QuickAgent(t)...),
	}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return testkit.Go(t, in.Run)
}

// waitArchived waits until every record on the topics is committed by the
// group, which the ingest does only once they are archived.
func waitArchived(t *testing.T, cl *kgo.Client, group string) {
	t.Helper()
	for _, topic := range topics {
		testkit.WaitCommitted(t, cl, group, topic, testkit.EndOffsets(t, cl, topic), 30*time.Second)
	}
}

func count(t *testing.T, a lookback.Archive, f lookback.Filter) int64 {
	t.Helper()
	n, err := a.Count(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestIngestEndToEnd(t *testing.T) {
	b := testkit.Broker(t, 3, append(topics, "eventkit.status", eventkit.ReplayTopic("reports"), "__internal")...)
	cl := testkit.Client(t, b.Addr())
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "lookback.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	a := sqlite.NewArchive(db)

	// 20 events a topic, 5 of them on orders 3 days old, and one
	// malformed record; eventkit's own and internal topics get some too.
	old := time.Now().Add(-72 * time.Hour).Truncate(time.Millisecond)
	var produced []*kgo.Record
	for ti, topic := range topics {
		for i := range 20 {
			ev := &eventkit.Event{
				ID: fmt.Sprintf("%s-%d", topic, i), Source: "/svc/" + topic, Type: []string{"created", "updated"}[i%2],
				Subject: "subject-" + strconv.Itoa(i%3), Key: []byte("acct-" + strconv.Itoa(i%4)), Data: []byte(`{"i":` + strconv.Itoa(i) + `}`),
				ContentType: "application/json",
				Headers:     []eventkit.Header{{Key: "tenant", Value: []byte("t" + strconv.Itoa((i+ti)%2))}},
			}
			r := kafka.RecordOf(topic, ev)
			if ti == 0 && i < 5 {
				r.Timestamp = old
			}
			produced = append(produced, r)
		}
	}
	malformed := &kgo.Record{Topic: "payments", Key: []byte{0xff, 0x00}, Value: []byte{0xde, 0xad}, Headers: []kgo.RecordHeader{
		{Key: "ce_id", Value: []byte("bad-1")}, {Key: "ce_time", Value: []byte("yesterday")}, {Key: "ce_type", Value: []byte{0xff}},
	}}
	produced = append(produced, malformed)
	testkit.Produce(t, cl, produced...)
	testkit.Produce(t, cl, testkit.Events("eventkit.status", "status", 3, nil)...)
	testkit.Produce(t, cl, testkit.Events(eventkit.ReplayTopic("reports"), "replay", 3, nil)...)
	testkit.Produce(t, cl, testkit.Events("__internal", "internal", 3, nil)...)

	run := ingest(t, b, a, lookback.Retention(0))
	waitArchived(t, cl, lookback.DefaultGroup)
	total := int64(len(produced))
	if n := count(t, a, lookback.Filter{}); n != total {
		t.Fatalf("archived %d, want %d (and nothing of eventkit's or internal topics)", n, total)
	}

	t.Run("every record whole", func(t *testing.T) {
		for _, r := range produced {
			got, err := a.Get(context.Background(), r.Topic, r.Partition, r.Offset)
			if err != nil {
				t.Fatalf("%s/%d/%d: %v", r.Topic, r.Partition, r.Offset, err)
			}
			if !bytes.Equal(got.Key, r.Key) || !bytes.Equal(got.Value, r.Value) || !got.Timestamp.Equal(r.Timestamp) || len(got.Headers) != len(r.Headers) {
				t.Fatalf("%s/%d/%d archived as %+v", r.Topic, r.Partition, r.Offset, got)
			}
			for i, h := range r.Headers {
				if got.Headers[i].Key != h.Key || !bytes.Equal(got.Headers[i].Value, h.Value) {
					t.Errorf("%s/%d/%d header %d = %v, want %v", r.Topic, r.Partition, r.Offset, i, got.Headers[i], h)
				}
			}
		}
		got, _ := a.Get(context.Background(), malformed.Topic, malformed.Partition, malformed.Offset)
		if got.ID != "bad-1" || !got.Time.IsZero() || got.Type != "" {
			t.Errorf("malformed record's attributes: %+v", got)
		}
	})

	t.Run("every filter", func(t *testing.T) {
		p := produced[0].Partition
		cases := []struct {
			f    lookback.Filter
			want func(r *kgo.Record, ev *eventkit.Event) bool
		}{
			{lookback.Filter{Topic: "payments"}, func(r *kgo.Record, _ *eventkit.Event) bool { return r.Topic == "payments" }},
			{lookback.Filter{Topic: "orders", Partition: &p}, func(r *kgo.Record, _ *eventkit.Event) bool { return r.Topic == "orders" && r.Partition == p }},
			{lookback.Filter{Key: []byte("acct-1")}, func(r *kgo.Record, _ *eventkit.Event) bool { return string(r.Key) == "acct-1" }},
			{lookback.Filter{Key: []byte{0xff, 0x00}}, func(r *kgo.Record, _ *eventkit.Event) bool { return r == malformed }},
			{lookback.Filter{Type: "updated"}, func(_ *kgo.Record, ev *eventkit.Event) bool { return ev.Type == "updated" }},
			{lookback.Filter{ID: "shipments-7"}, func(_ *kgo.Record, ev *eventkit.Event) bool { return ev.ID == "shipments-7" }},
			{lookback.Filter{IDs: []string{"orders-1", "payments-2"}}, func(_ *kgo.Record, ev *eventkit.Event) bool { return ev.ID == "orders-1" || ev.ID == "payments-2" }},
			{lookback.Filter{Subject: "subject-2"}, func(_ *kgo.Record, ev *eventkit.Event) bool { return ev.Subject == "subject-2" }},
			{lookback.Filter{Source: "/svc/orders"}, func(_ *kgo.Record, ev *eventkit.Event) bool { return ev.Source == "/svc/orders" }},
			{lookback.Filter{To: old}, func(r *kgo.Record, _ *eventkit.Event) bool { return !r.Timestamp.After(old) }},
			{lookback.Filter{From: old.Add(time.Millisecond)}, func(r *kgo.Record, _ *eventkit.Event) bool { return r.Timestamp.After(old) }},
			{lookback.Filter{Headers: []lookback.HeaderMatch{{Name: "tenant", Value: []byte("t1")}, {Name: "ce_type", Value: []byte("created")}}},
				func(_ *kgo.Record, ev *eventkit.Event) bool {
					v, _ := ev.Header("tenant")
					return string(v) == "t1" && ev.Type == "created"
				}},
		}
		for _, c := range cases {
			var want int64
			for _, r := range produced {
				if c.want(r, kafka.EventOf(r)) {
					want++
				}
			}
			if got := count(t, a, c.f); got != want || want == 0 {
				t.Errorf("filter %+v: %d, want %d", c.f, got, want)
			}
		}
	})
	if err := run.Stop(); err != nil {
		t.Fatal(err)
	}

	t.Run("re-ingest adds nothing", func(t *testing.T) {
		// Another group reads every record again from the start.
		again := ingest(t, b, a, lookback.Group("lookback-again"), lookback.Retention(0))
		waitArchived(t, cl, "lookback-again")
		if err := again.Stop(); err != nil {
			t.Fatal(err)
		}
		if n := count(t, a, lookback.Filter{}); n != total {
			t.Fatalf("after re-ingest %d, want %d", n, total)
		}
	})

	t.Run("restart, replays and retention", func(t *testing.T) {
		run := ingest(t, b, a, lookback.Retention(48*time.Hour), lookback.PruneInterval(20*time.Millisecond))
		fresh := testkit.Events("shipments", "fresh", 4, nil)
		replayed := kafka.RecordOf("orders", &eventkit.Event{ID: "orders-3", Source: "/svc/orders", Type: "updated", Headers: []eventkit.Header{
			{Key: eventkit.HeaderReplayID, Value: []byte("replay-1")},
			{Key: eventkit.HeaderReplayMode, Value: []byte(eventkit.Deduplicate)},
			{Key: eventkit.HeaderReplayOrigin, Value: []byte(eventkit.FormatCoordinates(produced[3].Topic, produced[3].Partition, produced[3].Offset))},
		}})
		testkit.Produce(t, cl, append(fresh, replayed)...)
		waitArchived(t, cl, lookback.DefaultGroup)
		want := total - 5 + int64(len(fresh))
		testkit.Eventually(t, 30*time.Second, func() error {
			if n := count(t, a, lookback.Filter{}); n != want {
				return fmt.Errorf("%d archived, want %d", n, want)
			}
			return nil
		})
		if n := count(t, a, lookback.Filter{To: old}); n != 0 {
			t.Errorf("%d old records survived retention", n)
		}
		if n := count(t, a, lookback.Filter{Topic: "orders"}); n != 15 {
			t.Errorf("orders has %d records, want the 15 recent (the replayed copy is a link)", n)
		}
		// The replayed copy is linked to an original even after retention
		// removed that original.
		links, err := a.Links(context.Background(), produced[3].Topic, produced[3].Partition, produced[3].Offset)
		if err != nil || len(links) != 1 || links[0].ReplayID != "replay-1" || links[0].Mode != eventkit.Deduplicate ||
			links[0].Offset != replayed.Offset || links[0].Topic != "orders" {
			t.Errorf("links = %+v, %v", links, err)
		}
		if _, err := a.Get(context.Background(), replayed.Topic, replayed.Partition, replayed.Offset); !errors.Is(err, lookback.ErrNotFound) {
			t.Errorf("the replayed copy was archived as a record: %v", err)
		}
		if err := run.Stop(); err != nil {
			t.Fatal(err)
		}
	})
}

func TestNewIngestRejectsBadConfig(t *testing.T) {
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "lookback.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for name, opts := range map[string][]lookback.Opt{
		"no brokers":    nil,
		"bad pattern":   {lookback.Brokers("x:1"), lookback.Topics("(")},
		"bad exclusion": {lookback.Brokers("x:1"), lookback.Exclude("[")},
		"no batch":      {lookback.Brokers("x:1"), lookback.BatchSize(0)},
	} {
		if _, err := lookback.NewIngest(sqlite.NewArchive(db), opts...); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// An alert on eventkit_lookback_errors_total needs its series before the
// first error, or it has nothing to compare against.
func TestErrorSeriesListedBeforeAnyError(t *testing.T) {
	b := testkit.Broker(t, 1, topics...)
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "lookback.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	reg := prometheus.NewRegistry()
	ingest(t, b, sqlite.NewArchive(db), lookback.Registerer(reg))
	testkit.Eventually(t, 30*time.Second, func() error {
		mfs, err := reg.Gather()
		if err != nil {
			return err
		}
		ops := map[string]bool{}
		for _, mf := range mfs {
			if mf.GetName() != "eventkit_lookback_errors_total" {
				continue
			}
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "op" && m.GetCounter().GetValue() == 0 {
						ops[l.GetValue()] = true
					}
				}
			}
		}
		if !ops["append"] || !ops["prune"] {
			return fmt.Errorf("series at 0 by op: %v", ops)
		}
		return nil
	})
}
