package replay_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventkit/eventkit/internal/testkit"
	"github.com/eventkit/eventkit/lookback"
	"github.com/eventkit/eventkit/replay"
)

// hangingStore is a job store whose writes hang once hang is set (a lock
// held elsewhere, a stalled connection), honouring their context as
// database/sql and pgx do.
type hangingStore struct {
	replay.JobStore
	hang    atomic.Bool
	entered chan struct{}
}

func (s *hangingStore) UpdateJob(ctx context.Context, j replay.Job) error {
	if s.hang.Load() {
		select {
		case s.entered <- struct{}{}:
		default:
		}
		<-ctx.Done()
		return ctx.Err()
	}
	return s.JobStore.UpdateJob(ctx, j)
}

// A checkpoint write outlives the job's context, bounded: a database that
// hangs must not keep Run from returning once it is cancelled.
func TestRunnerStopsWhileTheStoreHangs(t *testing.T) {
	e := newIdleEnv(t, 3, []string{"orders", "copies"})
	store := &hangingStore{JobStore: e.jobs, entered: make(chan struct{}, 1)}
	r := e.runnerOn(t, store)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	<-r.Ready()
	e.synthetic(t, 3000)
	j, err := r.Start(context.Background(), replay.Spec{Filter: lookback.Filter{Topic: "orders"}, Target: replay.Target{Topic: "copies"}, Rate: 500}, ops)
	if err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 30*time.Second, func() error {
		g, err := r.Get(context.Background(), j.ID)
		if err == nil && g.Sent == 0 {
			err = errors.New("job sent nothing yet")
		}
		return err
	})
	store.hang.Store(true)
	select {
	case <-store.entered:
	case <-time.After(30 * time.Second):
		t.Fatal("no checkpoint write reached the store")
	}
	cancel()
	select {
	case err := <-done:
		t.Logf("Run returned: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("Runner.Run did not return 30s after ctx was cancelled while the job store hangs")
	}
}
