package transfers_test

import (
	"context"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/eventkit/eventkit/examples/payments/transfers"
	"github.com/eventkit/eventkit/internal/testkit"
	"go.uber.org/goleak"
)

// stuckStore answers account look-ups only when their context ends, as a
// database behind a held lock would.
type stuckStore struct {
	*transfers.SQLiteStore
	entered chan struct{}
}

func (s *stuckStore) Account(ctx context.Context, id string) (*transfers.Account, error) {
	select {
	case s.entered <- struct{}{}:
	default:
	}
	<-ctx.Done()
	return nil, ctx.Err()
}

// Run closes the client and the database once it stops serving: no
// handler may still run by then, one stuck on a lock included.
func TestRunWaitsForItsHandlers(t *testing.T) {
	b := testkit.Broker(t, 2)
	db, err := transfers.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "transfers.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	st := &stuckStore{SQLiteStore: db, entered: make(chan struct{}, 1)}
	hc := &http.Client{Transport: &http.Transport{}}
	defer hc.CloseIdleConnections()

	before := goleak.IgnoreCurrent()
	svc, err := transfers.New(context.Background(), transfers.Config{
		Brokers: []string{b.Addr()}, Store: st, ClientOpts: testkit.ClientOpts(), Logger: testkit.Logger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()

	reqCtx, stopReq := context.WithCancel(context.Background())
	defer stopReq()
	go func() {
		req, _ := http.NewRequestWithContext(reqCtx, "GET", svc.URL()+"/accounts/a1", nil)
		if resp, err := hc.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	select {
	case <-st.entered:
	case <-time.After(30 * time.Second):
		t.Fatal("request never reached the store")
	}
	cancel()
	select {
	case err := <-done:
		t.Logf("Run returned: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return")
	}
	// Run has returned: nothing it started may still run.
	err = goleak.Find(before, goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreAnyFunction("net/http.(*Client).do")) // the test's own client
	stopReq()
	if err != nil {
		t.Fatal(err)
	}
}
