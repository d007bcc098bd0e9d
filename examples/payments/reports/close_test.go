package reports_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/eventkit/eventkit/examples/payments/reports"
	"github.com/eventkit/eventkit/internal/testkit"
	"go.uber.org/goleak"
)

// New starts the database, the idempotency store and the batcher: Close
// stops them for a Service that will not Run.
func TestCloseWithoutRun(t *testing.T) {
	b := testkit.Broker(t, 1, "payments.transfers", "payments.accounts")
	before := goleak.IgnoreCurrent()

	ctx, cancel := context.WithCancel(context.Background())
	svc, err := reports.New(ctx, reports.Config{
		Brokers:      []string{b.Addr()},
		DBPath:       filepath.Join(t.TempDir(), "reports.db"),
		TransfersURL: "http://127.0.0.1:1",
		ClientOpts:   testkit.ClientOpts(),
	})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	svc.Close() // a Service that will not Run
	goleak.VerifyNone(t, before)
}
