package consumer_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/eventkit/eventkit"
	"github.com/eventkit/eventkit/consumer"
	"github.com/eventkit/eventkit/internal/testkit"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
)

// produceTx writes recs in one transaction, then commits or aborts it.
// The transaction's marker takes an offset of its own.
func produceTx(t *testing.T, addr string, commit bool, recs ...*kgo.Record) {
	t.Helper()
	cl := testkit.Client(t, addr, kgo.TransactionalID("tx-"+t.Name()))
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
		t.Fatal(err)
	}
}

// Records of an aborted transaction never existed as far as Kafka is
// concerned: the handler never sees them. Every transaction's marker, the
// last offset of the log included, is passed by the commit, so the lag of a
// group that handled everything is 0.
func TestTransactionalTopics(t *testing.T) {
	b := testkit.Broker(t, 1, "orders")
	cl := testkit.Client(t, b.Addr())
	produceTx(t, b.Addr(), true, testkit.Events("orders", "ok-a", 3, nil)...)
	produceTx(t, b.Addr(), false, testkit.Events("orders", "aborted-a", 3, nil)...)
	produceTx(t, b.Addr(), true, testkit.Events("orders", "ok-b", 3, nil)...)
	produceTx(t, b.Addr(), false, testkit.Events("orders", "aborted-b", 3, nil)...)
	ends := testkit.EndOffsets(t, cl, "orders")
	if ends[0] != 16 {
		t.Fatalf("log ends at %d, want 16 (12 records, 4 markers)", ends[0])
	}

	rec := newRecorder()
	reg := prometheus.NewRegistry()
	c := agent(t, b, "g", "orders", eventkit.HandlerFunc(func(_ context.Context, ev *eventkit.Event) error {
		rec.add(ev)
		return nil
	}), consumer.ControlPlane(false), consumer.ReplayTopic(false), consumer.Registerer(reg))
	run := testkit.Go(t, c.Run)
	testkit.WaitCommitted(t, cl, "g", "orders", ends, 20*time.Second)
	testkit.Eventually(t, 10*time.Second, func() error {
		if lag := gaugeValue(t, reg, "eventkit_consumer_lag"); lag != 0 {
			return fmt.Errorf("eventkit_consumer_lag %v", lag)
		}
		return nil
	})
	if err := run.Stop(); err != nil {
		t.Fatal(err)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.calls) != 6 {
		t.Errorf("handled %d events, want the 6 committed ones: %v", len(rec.calls), rec.order)
	}
	for id := range rec.calls {
		if strings.HasPrefix(id, "aborted") {
			t.Errorf("handler got %s of an aborted transaction", id)
		}
	}
}
