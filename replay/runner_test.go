package replay_test

import (
	"context"
	"errors"
	"testing"

	"github.com/eventkit/eventkit/internal/testkit"
	"github.com/eventkit/eventkit/lookback"
	"github.com/eventkit/eventkit/replay"
	"github.com/eventkit/eventkit/sqlite"
)

// listingStore holds Run's listing of the running jobs until released.
type listingStore struct {
	*sqlite.JobStore
	listing, release chan struct{}
}

func (s *listingStore) Jobs(ctx context.Context, status replay.Status) ([]replay.Job, error) {
	close(s.listing)
	<-s.release
	return s.JobStore.Jobs(ctx, status)
}

// A job started while Run still lists the jobs to resume would be listed
// and resumed as well, and every record sent twice: Start refuses until
// the listing is done, which is when Ready closes.
func TestStartWaitsForResume(t *testing.T) {
	e := &env{b: testkit.Broker(t, 3)}
	e.cl = testkit.Client(t, e.b.Addr())
	e.db = openSQLite(t, t.TempDir()+"/lookback.db")
	e.arch = sqlite.NewArchive(e.db)
	store := &listingStore{JobStore: sqlite.NewJobStore(e.db), listing: make(chan struct{}), release: make(chan struct{})}
	e.r = replay.NewRunner(e.cl, e.arch, store, replay.Logger(testkit.Logger(t)))
	e.synthetic(t, 30)
	testkit.Go(t, e.r.Run)

	spec := replay.Spec{Filter: lookback.Filter{Topic: "orders"}, Target: replay.Target{Group: "billing"}}
	<-store.listing
	if _, err := e.r.Start(context.Background(), spec, ops); !errors.Is(err, replay.ErrNotRunning) {
		t.Fatalf("Start during the listing: %v, want ErrNotRunning", err)
	}
	select {
	case <-e.r.Ready():
		t.Fatal("Ready closed before the listing ended")
	default:
	}
	close(store.release)
	<-e.r.Ready()
	j := e.wait(t, e.start(t, spec).ID)
	if j.Status != replay.Done || j.Sent != 30 {
		t.Fatalf("job %+v, want done with 30 sent", j)
	}
	byOrigin, mine := copies(t, e.b.Addr(), "eventkit.replay.billing", j.ID)
	if len(mine) != 30 || len(byOrigin) != 30 {
		t.Fatalf("%d copies of %d origins, want 30 of 30", len(mine), len(byOrigin))
	}
}
