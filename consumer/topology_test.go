package consumer_test

import (
	"context"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventkit/eventkit"
	"github.com/eventkit/eventkit/consumer"
	"github.com/eventkit/eventkit/internal/testkit"
	"github.com/eventkit/eventkit/kafka"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// fetchCounter counts the Fetch requests a client sends.
type fetchCounter struct{ n atomic.Int64 }

func (f *fetchCounter) OnBrokerWrite(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, _ error) {
	if key == 1 { // Fetch
		f.n.Add(1)
	}
}

var _ kgo.HookBrokerWrite = (*fetchCounter)(nil)

// A deleted topic fails every fetch at once. The agent must neither poll
// it in a loop, burning a core, nor log a line a poll.
func TestDeletedTopicNeitherSpinsNorFloods(t *testing.T) {
	var logs logBuffer
	fetches := &fetchCounter{}
	_, _, _, run := ordersDeleted(t, "orders", consumer.Logger(logs.logger()),
		consumer.ClientOpts(kgo.MetadataMaxAge(300*time.Millisecond), kgo.WithHooks(fetches)))
	// Wait for the first failed fetch, then watch two seconds of them.
	testkit.Eventually(t, 30*time.Second, func() error {
		if !strings.Contains(logs.String(), `msg="fetch error"`) {
			return net.ErrClosed // any error: not yet
		}
		return nil
	})
	before := fetches.n.Load()
	deadline := time.Now().Add(2 * time.Second)
	<-time.After(time.Until(deadline)) // a window to count in, not a synchronisation
	sent := fetches.n.Load() - before
	lines := strings.Count(logs.String(), `msg="fetch error"`)
	if err := run.Stop(); err != nil {
		t.Fatal(err)
	}
	if sent > 100 {
		t.Errorf("%d fetches in 2 s after the topic was deleted: the poll loop spins", sent)
	}
	if lines > 5 {
		t.Errorf("%d fetch error lines logged: one a poll", lines)
	}
}

// A topic deleted and created again is consumed again, from its start:
// franz-go keeps the old topic's id and fails its fetches until the topic
// is purged and added back, and the old topic's offsets must not be
// committed into the new one.
func TestRecreatedTopicConsumedAgain(t *testing.T) {
	t.Run("named", func(t *testing.T) { testRecreatedTopic(t, "orders") })
	t.Run("pattern", func(t *testing.T) { testRecreatedTopic(t, "^ord.*", consumer.TopicRegex()) })
}

func testRecreatedTopic(t *testing.T, topics string, opts ...consumer.Opt) {
	defer consumer.SetTopicGoneAfter(100 * time.Millisecond)()
	b, cl, rec, run := ordersDeleted(t, topics, append(opts, consumer.ClientOpts(kgo.MetadataMaxAge(300*time.Millisecond)))...)
	createOrders(t, b, cl, rec)
	if err := run.Stop(); err != nil {
		t.Fatal(err)
	}
}

// A topic deleted, then created again later, after the agent took it for
// gone, is consumed again once it exists.
func TestDeletedTopicConsumedOnceCreatedAgain(t *testing.T) {
	defer consumer.SetTopicGoneAfter(100 * time.Millisecond)()
	var logs logBuffer
	b, cl, rec, run := ordersDeleted(t, "orders", consumer.Logger(logs.logger()),
		consumer.ClientOpts(kgo.MetadataMaxAge(300*time.Millisecond)))
	testkit.Eventually(t, 30*time.Second, func() error {
		if !logs.contains("topic gone", "orders") {
			return net.ErrClosed // any error: not yet
		}
		return nil
	})
	createOrders(t, b, cl, rec)
	if err := run.Stop(); err != nil {
		t.Fatal(err)
	}
}

// ordersDeleted runs an agent on topics (which must take in the topic
// orders) until it has handled and committed 10 events of orders, then
// deletes orders. It returns the broker, a client, what the handler saw
// and the running agent.
func ordersDeleted(t *testing.T, topics string, opts ...consumer.Opt) (*kafka.Broker, *kgo.Client, *recorder, *testkit.Running) {
	t.Helper()
	b := testkit.Broker(t, 1, "orders")
	cl := testkit.Client(t, b.Addr())
	testkit.Produce(t, cl, testkit.Events("orders", "old", 10, nil)...)
	rec := newRecorder()
	c := agent(t, b, "g", topics, eventkit.HandlerFunc(func(_ context.Context, ev *eventkit.Event) error {
		rec.add(ev)
		return nil
	}), append([]consumer.Opt{consumer.ControlPlane(false), consumer.ReplayTopic(false)}, opts...)...)
	run := testkit.Go(t, c.Run)
	committedAt(t, cl, "g", "orders", map[int32]int64{0: 10})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := kadm.NewClient(cl).DeleteTopics(ctx, "orders"); err != nil {
		t.Fatal(err)
	}
	return b, cl, rec, run
}

// createOrders creates orders again with 4 new events, and waits until
// the agent has handled them and committed the new topic's end.
func createOrders(t *testing.T, b *kafka.Broker, cl *kgo.Client, rec *recorder) {
	t.Helper()
	if err := b.CreateTopic("orders", 1); err != nil {
		t.Fatal(err)
	}
	testkit.Produce(t, testkit.Client(t, b.Addr()), testkit.Events("orders", "new", 4, nil)...)
	testkit.Eventually(t, 30*time.Second, atLeast(14, rec.distinct, "events handled, old and new"))
	committedAt(t, cl, "g", "orders", map[int32]int64{0: 4})
}
