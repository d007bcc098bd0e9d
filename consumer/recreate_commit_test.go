package consumer_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/eventkit/eventkit"
	"github.com/eventkit/eventkit/consumer"
	"github.com/eventkit/eventkit/internal/testkit"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kversion"
)

// An event of the old topic still being handled when the topic is deleted
// and created again finishes meanwhile, and its offset may be committed
// into the new topic (Kafka takes commits by name) before the agent sees
// the topic fail: the new topic's first records must be handled all the
// same.
func TestRecreatedTopicGetsNoStaleCommit(t *testing.T) {
	defer consumer.SetTopicGoneAfter(100 * time.Millisecond)()
	b := testkit.Broker(t, 1, "orders")
	cl := testkit.Client(t, b.Addr())
	testkit.Produce(t, cl, testkit.Events("orders", "old", 10, nil)...)
	rec := newRecorder()
	entered, release := make(chan struct{}), make(chan struct{})
	c := agent(t, b, "g", "orders", eventkit.HandlerFunc(func(_ context.Context, ev *eventkit.Event) error {
		if ev.ID == "old-9" && rec.count("old-9") == 0 {
			close(entered)
			<-release // still being handled when the topic goes
		}
		rec.add(ev)
		return nil
	}), consumer.ControlPlane(false), consumer.ReplayTopic(false),
		// A Kafka 3.x cluster: fetches go by topic id, offset commits by name.
		consumer.ClientOpts(kgo.MetadataMaxAge(300*time.Millisecond), kgo.MaxVersions(kversion.V3_9_0())))
	run := testkit.Go(t, c.Run)
	var once sync.Once
	letGo := func() { once.Do(func() { close(release) }) }
	t.Cleanup(letGo) // before the agent's stop
	<-entered
	// (0..8 are done; their marks wait for old-9, batched with it)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := kadm.NewClient(cl).DeleteTopics(ctx, "orders"); err != nil {
		t.Fatal(err)
	}
	if err := b.CreateTopic("orders", 1); err != nil {
		t.Fatal(err)
	}
	testkit.Produce(t, testkit.Client(t, b.Addr()), testkit.Events("orders", "new", 20, nil)...)
	letGo() // old-9 done: the agent's watermark is the old topic's 10

	testkit.Eventually(t, 60*time.Second, func() error {
		missing := 0
		for i := range 20 {
			if rec.count(fmt.Sprintf("new-%d", i)) == 0 {
				missing++
			}
		}
		if missing > 0 {
			return fmt.Errorf("%d of the new topic's 20 events never handled; committed %v", missing, testkit.Committed(t, cl, "g")["orders"])
		}
		return nil
	})
	if err := run.Stop(); err != nil {
		t.Fatal(err)
	}
}
