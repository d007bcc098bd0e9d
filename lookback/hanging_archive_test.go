package lookback_test

import (
	"context"
	"testing"
	"time"

	"github.com/eventkit/eventkit/consumer"
	"github.com/eventkit/eventkit/internal/testkit"
	"github.com/eventkit/eventkit/lookback"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
)

// slowArchive is a database that hangs on writes (a lock held elsewhere,
// a stalled connection) but honours its context, as database/sql does.
type slowArchive struct {
	lookback.Archive
	entered chan struct{}
}

func (a *slowArchive) Append(ctx context.Context, _ []lookback.Record, _ []lookback.ReplayLink) error {
	select {
	case a.entered <- struct{}{}:
	default:
	}
	<-ctx.Done()
	return ctx.Err()
}

func (a *slowArchive) DeleteBefore(context.Context, time.Time, int) (int64, error) { return 0, nil }

// A write that hangs (a lock, a stalled connection) must not keep Run from
// returning once it is cancelled: the drain gives up on it.
func TestIngestStopsWhileTheArchiveHangs(t *testing.T) {
	b := testkit.Broker(t, 1, "orders")
	cl := testkit.Client(t, b.Addr())
	testkit.Produce(t, cl, testkit.Events("orders", "o", 1, nil)...)

	before := goleak.IgnoreCurrent()
	a := &slowArchive{entered: make(chan struct{}, 1)}
	in, err := lookback.NewIngest(a,
		lookback.Brokers(b.Addr()),
		lookback.Registerer(prometheus.NewRegistry()),
		lookback.AgentOpts(append(testkit.QuickAgent(t), consumer.DrainTimeout(300*time.Millisecond))...),
	)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx) }()
	select {
	case <-a.entered:
	case <-time.After(30 * time.Second):
		t.Fatal("no write reached the archive")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Ingest.Run did not return 20s after ctx was cancelled (drain timeout 300ms) while the archive write hangs")
	}
	goleak.VerifyNone(t, before)
}
