package consumer_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eventkit/eventkit"
	"github.com/eventkit/eventkit/internal/testkit"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"
)

// TestMain fails the package if any goroutine outlives the tests: every
// agent's Run must stop all it started.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// agent builds a consumer on b for group and topic with quick timings.
var agent = testkit.Agent

// recorder counts handler calls per event id and keeps the order they came in.
type recorder struct {
	mu    sync.Mutex
	calls map[string]int
	order []string
}

func newRecorder() *recorder { return &recorder{calls: make(map[string]int)} }

func (r *recorder) add(ev *eventkit.Event) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls[ev.ID]++
	r.order = append(r.order, ev.ID)
	return r.calls[ev.ID]
}

func (r *recorder) count(id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls[id]
}

func (r *recorder) distinct() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.calls)
}

func (r *recorder) total() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.order)
}

func atLeast(n int, got func() int, what string) func() error {
	return func() error {
		if g := got(); g < n {
			return fmt.Errorf("%s: %d of %d", what, g, n)
		}
		return nil
	}
}

// committedAt waits until the group's committed offset of every listed
// partition equals want.
func committedAt(t testing.TB, cl *kgo.Client, group, topic string, want map[int32]int64) {
	t.Helper()
	testkit.WaitCommitted(t, cl, group, topic, want, 20*time.Second)
}

func noop(context.Context, *eventkit.Event) error { return nil }

// logBuffer collects text log lines for assertions.
type logBuffer struct{ testkit.Buffer }

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// contains reports whether one line holds every part.
func (l *logBuffer) contains(parts ...string) bool {
	for _, line := range strings.Split(l.String(), "\n") {
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(line, p)
		}
		if ok {
			return true
		}
	}
	return false
}

func counterValue(t testing.TB, g prometheus.Gatherer, name, label, value string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label && lp.GetValue() == value {
					sum += m.GetCounter().GetValue()
				}
			}
		}
	}
	return sum
}

func gaugeValue(t testing.TB, g prometheus.Gatherer, name string) float64 {
	t.Helper()
	v, err := gauge(g, name)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// gauge sums the gauge name over its series, or fails when it has none.
func gauge(g prometheus.Gatherer, name string) (float64, error) {
	mfs, err := g.Gather()
	if err != nil {
		return 0, err
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			var sum float64
			for _, m := range mf.GetMetric() {
				sum += m.GetGauge().GetValue()
			}
			return sum, nil
		}
	}
	return 0, fmt.Errorf("no metric %s", name)
}

// consumeAll reads n records of topic from the start without a group.
func consumeAll(t testing.TB, cl *kgo.Client, topic string, n int) []*kgo.Record {
	t.Helper()
	rd := testkit.Client(t, cl.OptValue(kgo.SeedBrokers).([]string)[0], kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n {
		fs := rd.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records from %s", len(out), n, topic)
		}
		out = append(out, fs.Records()...)
	}
	return out
}

func headerMap(hs []kgo.RecordHeader) map[string]string {
	m := make(map[string]string, len(hs))
	for _, h := range hs {
		m[h.Key] = string(h.Value)
	}
	return m
}
