package idempotency_test

import (
	"context"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eventkit/eventkit"
	"github.com/eventkit/eventkit/consumer"
	"github.com/eventkit/eventkit/idempotency"
	"github.com/eventkit/eventkit/internal/testkit"
	"github.com/eventkit/eventkit/kafka"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
)

// calls counts handler calls by a label of the event.
type calls struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *calls) add(label string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[label]++
}

func (c *calls) snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.n)
}

// skipped reads the middleware's count of events skipped as already done.
func skipped(t *testing.T, reg *prometheus.Registry) int {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "eventkit_idempotency_events_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "outcome" && l.GetValue() == "skipped" {
					return int(m.GetCounter().GetValue())
				}
			}
		}
	}
	return 0
}

// runToEnd runs an agent with h behind the middleware on a SQLite store
// until the group has committed every partition of topic up to its end,
// and checks that the agent is still running: nothing crashed it.
func runToEnd(t *testing.T, cl *kgo.Client, b *kafka.Broker, group, topic string, h eventkit.Handler, reg *prometheus.Registry, opts ...consumer.Opt) {
	t.Helper()
	_, store := openStore(t)
	mw := idempotency.Middleware(store, idempotency.Registerer(reg), idempotency.Logger(testkit.Logger(t)))
	c, err := consumer.New(eventkit.Chain(h, mw), append(append(testkit.AgentOpts(t, b, group, topic),
		// A duplicate handled on another partition while its original is
		// in flight is retried until the original is done: as long as that
		// takes, which the test's deadline bounds.
		consumer.MaxRetries(-1),
	), opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	r := testkit.Go(t, c.Run)
	testkit.WaitCommitted(t, cl, group, topic, testkit.EndOffsets(t, cl, topic), time.Minute)
	select {
	case <-r.Done():
		t.Fatalf("agent stopped: %v", r.Wait(0))
	default:
	}
	if err := r.Stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
}

func TestAgentDuplicatesHandledOnce(t *testing.T) {
	const (
		topic      = "orders"
		partitions = 4
		events     = 2000
		duplicates = events / 100
	)
	b := testkit.Broker(t, partitions, topic)
	cl := testkit.Client(t, b.Addr(), kgo.RecordPartitioner(kgo.ManualPartitioner()))

	// Each duplicate is the same ce_source and ce_id re-sent at a later
	// position, usually on another partition than its original.
	rng := rand.New(rand.NewPCG(3, 1))
	ids := make([]int, events)
	for i := range ids {
		ids[i] = i
	}
	for range duplicates {
		orig := rng.IntN(events)
		ids = slices.Insert(ids, orig+1+rng.IntN(len(ids)-orig), orig)
	}
	rs := make([]*kgo.Record, len(ids))
	for pos, i := range ids {
		rs[pos] = kafka.RecordOf(topic, &eventkit.Event{ID: "e-" + strconv.Itoa(i), Source: "/shop", Type: "order.placed"})
		rs[pos].Partition = int32(pos % partitions)
	}
	testkit.Produce(t, cl, rs...)

	var got calls
	h := eventkit.HandlerFunc(func(_ context.Context, ev *eventkit.Event) error {
		got.add(ev.ID)
		return nil
	})
	reg := prometheus.NewRegistry()
	// Many events in flight make the store's batches big, and the test
	// quick; which of two copies of an event runs first does not matter.
	runToEnd(t, cl, b, "ledger", topic, h, reg, consumer.Ordering(consumer.Unordered), consumer.Concurrency(64))

	n := got.snapshot()
	for i := range events {
		if id := "e-" + strconv.Itoa(i); n[id] != 1 {
			t.Errorf("%s handled %d times, want once", id, n[id])
		}
	}
	if len(n) != events {
		t.Errorf("handled %d distinct ids, want %d", len(n), events)
	}
	if s := skipped(t, reg); s != duplicates {
		t.Errorf("skipped %d events as done, want the %d duplicates", s, duplicates)
	}
}

// TestAgentBadInput sends events that stress the keys through the agent:
// each is handled per the key rules, nothing crashes, nothing is skipped
// that is not a duplicate.
func TestAgentBadInput(t *testing.T) {
	const topic = "intake"
	b := testkit.Broker(t, 1, topic)
	cl := testkit.Client(t, b.Addr())
	huge := strings.Repeat("h", 2048)
	type input struct {
		label string
		hs    [][2]string // record headers; none: not a CloudEvent, no id
		want  int         // handler calls
	}
	ceHeaders := func(id, source string) [][2]string {
		return [][2]string{{"ce_id", id}, {"ce_source", source}, {"ce_type", "t"}, {"ce_specversion", "1.0"}}
	}
	inputs := []input{
		// Without an id, the coordinates are the key: a producer's repeat
		// is a new record, and processed.
		{"no-id-1", nil, 1},
		{"no-id-2", nil, 1},
		{"huge", ceHeaders(huge, "/s"), 1},
		{"huge-again", ceHeaders(huge, "/s"), 0},
		{"huge-other", ceHeaders(huge+"x", "/s"), 1},
		{"latin1-source", ceHeaders("same", "\xff\xfe"), 1},
		{"other-latin1-source", ceHeaders("same", "\xff\xfd"), 1},
		{"latin1-source-again", ceHeaders("same", "\xff\xfe"), 0},
		{"escaped-lookalike", ceHeaders("same", "%FF%FE"), 1},
		{"latin1-id", ceHeaders("\xe9t\xe9", "/s"), 1},
	}
	rs := make([]*kgo.Record, len(inputs))
	for i, in := range inputs {
		r := &kgo.Record{Topic: topic, Value: []byte("same payload"), Headers: []kgo.RecordHeader{{Key: "label", Value: []byte(in.label)}}}
		for _, h := range in.hs {
			r.Headers = append(r.Headers, kgo.RecordHeader{Key: h[0], Value: []byte(h[1])})
		}
		rs[i] = r
	}
	testkit.Produce(t, cl, rs...)

	var got, warned calls
	h := eventkit.HandlerFunc(func(_ context.Context, ev *eventkit.Event) error {
		label, _ := ev.Header("label")
		got.add(string(label))
		if ev.DecodeErr != nil {
			// What a handler does with an event it cannot trust: flag it,
			// so that it is logged with its coordinates and counted.
			warned.add(string(label))
			return eventkit.Warn(ev.DecodeErr)
		}
		return nil
	})
	// One partition, one event at a time: the first copy of an event is
	// the one handled.
	runToEnd(t, cl, b, "intake-group", topic, h, prometheus.NewRegistry(), consumer.Ordering(consumer.ByPartition))

	n, w := got.snapshot(), warned.snapshot()
	for _, in := range inputs {
		if n[in.label] != in.want {
			t.Errorf("%s: handled %d times, want %d", in.label, n[in.label], in.want)
		}
	}
	for _, label := range []string{"latin1-source", "other-latin1-source", "latin1-id"} {
		if w[label] != 1 {
			t.Errorf("%s: warned %d times, want once (its headers are not UTF-8)", label, w[label])
		}
	}
}
