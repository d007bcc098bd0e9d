// Package testkit holds what eventkit's tests share: an embedded broker per
// test, producing and reading offsets through real clients, and waiting on
// conditions with deadlines instead of sleeps.
package testkit

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/eventkit/eventkit"
	"github.com/eventkit/eventkit/consumer"
	"github.com/eventkit/eventkit/kafka"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Broker starts an in-memory embedded broker with the given topics, each with
// partitions partitions, and stops it when the test ends.
func Broker(tb testing.TB, partitions int32, topics ...string) *kafka.Broker {
	tb.Helper()
	b, err := kafka.StartBroker(kafka.BrokerConfig{
		Partitions: partitions,
		Topics:     topics,
		// Short group timeouts keep rebalance tests quick.
		Opts: []kfake.Opt{kfake.GroupMinSessionTimeout(500 * time.Millisecond)},
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(b.Close)
	return b
}

// ClientOpts are the franz-go options tests add on the embedded broker:
// quick metadata refresh, so that recovery from injected errors takes
// milliseconds, not seconds.
func ClientOpts() []kgo.Opt {
	return []kgo.Opt{kgo.MetadataMinAge(100 * time.Millisecond), kgo.RetryBackoffFn(func(int) time.Duration { return 20 * time.Millisecond })}
}

// AgentOpts are the consumer options of an agent on b for group and topic
// with quick timings: millisecond backoffs, frequent commits, short group
// timeouts and the test's [Logger]. Options added after them win.
func AgentOpts(tb testing.TB, b *kafka.Broker, group, topic string) []consumer.Opt {
	return append([]consumer.Opt{
		consumer.Brokers(b.Addr()),
		consumer.Group(group),
		consumer.Topics(topic),
	}, QuickAgent(tb)...)
}

// QuickAgent are the consumer options of [AgentOpts] that do not name the
// broker, group or topics, for code that runs the agent itself.
func QuickAgent(tb testing.TB) []consumer.Opt {
	return append([]consumer.Opt{consumer.ClientOpts(ClientOpts()...)}, AgentTimings(tb)...)
}

// AgentTimings are the quick timings of [AgentOpts] alone, for agents that
// a program under test configures itself: millisecond backoffs, frequent
// commits, short group timeouts and the test's [Logger].
func AgentTimings(tb testing.TB) []consumer.Opt {
	return []consumer.Opt{
		consumer.Backoff(time.Millisecond, 10*time.Millisecond),
		consumer.CommitInterval(50 * time.Millisecond),
		consumer.SessionTimeout(3 * time.Second),
		consumer.RebalanceTimeout(2 * time.Second),
		consumer.HeartbeatInterval(100 * time.Millisecond),
		consumer.DrainTimeout(time.Second),
		consumer.Logger(Logger(tb)),
	}
}

// Logger discards, unless EVENTKIT_TEST_LOG is set: then it writes
// everything down to DEBUG to stderr, each line naming the test.
func Logger(tb testing.TB) *slog.Logger {
	if os.Getenv("EVENTKIT_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", tb.Name())
	}
	return slog.New(slog.DiscardHandler)
}

// Client returns a plain franz-go client for addr, closed at the end of the
// test.
func Client(tb testing.TB, addr string, opts ...kgo.Opt) *kgo.Client {
	tb.Helper()
	cl, err := kgo.NewClient(append(append([]kgo.Opt{kgo.SeedBrokers(addr)}, ClientOpts()...), opts...)...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(cl.Close)
	return cl
}

// Produce writes records to topic and waits until all are acknowledged.
func Produce(tb testing.TB, cl *kgo.Client, rs ...*kgo.Record) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		tb.Fatalf("produce: %v", err)
	}
}

// Events returns n CloudEvents records for topic with ids "<prefix>-<i>",
// keys from key(i) (nil for none) and value "v<i>". To place them, set each
// record's Partition and produce with a client that uses
// kgo.ManualPartitioner.
func Events(topic, prefix string, n int, key func(i int) []byte) []*kgo.Record {
	rs := make([]*kgo.Record, n)
	for i := range n {
		ev := &eventkit.Event{
			ID: prefix + "-" + strconv.Itoa(i), Source: "/test", Type: "test.event",
			Data: []byte("v" + strconv.Itoa(i)), ContentType: "text/plain",
		}
		if key != nil {
			ev.Key = key(i)
		}
		rs[i] = kafka.RecordOf(topic, ev)
	}
	return rs
}

// Committed returns the group's committed offsets, -1 where none.
func Committed(tb testing.TB, cl *kgo.Client, group string) map[string]map[int32]int64 {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := kadm.NewClient(cl).FetchOffsets(ctx, group)
	out := make(map[string]map[int32]int64)
	if errors.Is(err, kerr.GroupIDNotFound) {
		return out // not created yet: nothing committed
	}
	if err != nil {
		tb.Fatalf("fetch offsets: %v", err)
	}
	resp.Each(func(o kadm.OffsetResponse) {
		if out[o.Topic] == nil {
			out[o.Topic] = make(map[int32]int64)
		}
		out[o.Topic][o.Partition] = o.At
	})
	return out
}

// WaitCommitted waits up to timeout until the group's committed offset of
// every partition in want equals want's, and fails the test after that.
func WaitCommitted(tb testing.TB, cl *kgo.Client, group, topic string, want map[int32]int64, timeout time.Duration) {
	tb.Helper()
	Eventually(tb, timeout, func() error {
		got := Committed(tb, cl, group)[topic]
		for p, w := range want {
			if got[p] != w {
				return fmt.Errorf("committed %v, want %v", got, want)
			}
		}
		return nil
	})
}

// EndOffsets returns the end offset of every partition of topic.
func EndOffsets(tb testing.TB, cl *kgo.Client, topic string) map[int32]int64 {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		tb.Fatalf("end offsets: %v", err)
	}
	out := make(map[int32]int64)
	ends.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
	return out
}

// Eventually polls cond until it returns nil or the deadline passes, then
// fails the test with cond's last error.
func Eventually(tb testing.TB, timeout time.Duration, cond func() error) {
	tb.Helper()
	if err := Within(timeout, cond); err != nil {
		tb.Fatalf("condition not met within %v: %v", timeout, err)
	}
}

// Within polls cond until it returns nil or the deadline passes, and
// returns cond's last error: Eventually for a test that goes on to say
// more about what it sees.
func Within(timeout time.Duration, cond func() error) error {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		err := cond()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		<-tick.C
	}
}

// Running is a Run call in a goroutine of the test.
type Running struct {
	tb     testing.TB
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

// Go starts run in a goroutine; the test's cleanup stops it.
func Go(tb testing.TB, run func(context.Context) error) *Running {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &Running{tb: tb, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.err = run(ctx)
	}()
	tb.Cleanup(func() { r.cancel(); <-r.done })
	return r
}

// Stop cancels the context and returns Run's error, failing the test if Run
// takes more than a minute to return.
func (r *Running) Stop() error {
	r.tb.Helper()
	r.cancel()
	return r.Wait(time.Minute)
}

// Cancel cancels the context without waiting for Run to return.
func (r *Running) Cancel() { r.cancel() }

// Wait returns Run's error once it returns by itself, failing the test after
// timeout.
func (r *Running) Wait(timeout time.Duration) error {
	r.tb.Helper()
	select {
	case <-r.done:
		return r.err
	case <-time.After(timeout):
		r.tb.Fatalf("Run did not return within %v", timeout)
		return nil
	}
}

// Done is closed when Run has returned.
func (r *Running) Done() <-chan struct{} { return r.done }

// Lag returns the sum over partitions of end offset minus committed offset.
func Lag(tb testing.TB, cl *kgo.Client, group, topic string) (int64, error) {
	tb.Helper()
	ends := EndOffsets(tb, cl, topic)
	committed := Committed(tb, cl, group)[topic]
	var lag int64
	for p, end := range ends {
		c, ok := committed[p]
		if !ok || c < 0 {
			c = 0
		}
		lag += end - c
	}
	if lag != 0 {
		return lag, fmt.Errorf("lag %d (committed %v, ends %v)", lag, committed, ends)
	}
	return 0, nil
}

// ReadAll reads topic from its start, without a consumer group, up to the
// end offsets it has when ReadAll is called, and returns the records in
// partition and offset order. It fails the test if they do not all arrive
// within 30 seconds.
func ReadAll(tb testing.TB, addr, topic string, opts ...kgo.Opt) []*kgo.Record {
	tb.Helper()
	cl := Client(tb, addr, append([]kgo.Opt{
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	}, opts...)...)
	want := EndOffsets(tb, cl, topic)
	next := make(map[int32]int64)
	done := func() bool {
		for p, end := range want {
			if next[p] < end {
				return false
			}
		}
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []*kgo.Record
	for !done() {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			tb.Fatalf("read %s: got %d records, want offsets up to %v: %v", topic, len(out), want, ctx.Err())
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset < want[r.Partition] {
				out = append(out, r)
				next[r.Partition] = r.Offset + 1
			}
		})
	}
	slices.SortFunc(out, func(a, b *kgo.Record) int {
		return cmp.Or(cmp.Compare(a.Partition, b.Partition), cmp.Compare(a.Offset, b.Offset))
	})
	return out
}

// Agent builds a consumer on b for group and topic with AgentOpts, then
// opts, failing the test on a configuration error.
func Agent(tb testing.TB, b *kafka.Broker, group, topic string, h eventkit.Handler, opts ...consumer.Opt) *consumer.Consumer {
	tb.Helper()
	c, err := consumer.New(h, append(AgentOpts(tb, b, group, topic), opts...)...)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// Buffer is a bytes.Buffer that a child process, a logger and the test can
// share.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Clock is a clock that moves only when told, for the Clock options of
// the agent and the status board.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock standing at now.
func NewClock(now time.Time) *Clock { return &Clock{now: now} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Add moves the clock by d.
func (c *Clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
