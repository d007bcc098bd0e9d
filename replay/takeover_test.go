package replay_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventkit/eventkit/internal/testkit"
	"github.com/eventkit/eventkit/lookback"
	"github.com/eventkit/eventkit/replay"
	"github.com/eventkit/eventkit/sqlite"
)

// gate holds calls while on, until mu is closed: a database that hangs.
type gate struct {
	mu      chan struct{} // closed: open gate
	on      atomic.Bool
	blocked chan struct{} // closed once a call waits at the gate
	once    sync.Once
}

func newGate() *gate { return &gate{mu: make(chan struct{}), blocked: make(chan struct{})} }

func (g *gate) pass(ctx context.Context) error {
	if !g.on.Load() {
		return nil
	}
	g.once.Do(func() { close(g.blocked) })
	select {
	case <-g.mu:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

type gatedArchive struct {
	*sqlite.Archive
	g *gate
}

func (a *gatedArchive) Query(ctx context.Context, q lookback.Query) (lookback.Page, error) {
	if err := a.g.pass(ctx); err != nil {
		return lookback.Page{}, err
	}
	return a.Archive.Query(ctx, q)
}

type gatedStore struct {
	replay.JobStore
	g        *gate
	acquired atomic.Int64
}

func (s *gatedStore) AcquireJob(ctx context.Context, id string, l replay.Lease, now time.Time) (replay.Job, error) {
	if err := s.g.pass(ctx); err != nil {
		return replay.Job{}, err
	}
	j, err := s.JobStore.AcquireJob(ctx, id, l, now)
	if err == nil {
		s.acquired.Add(1)
	}
	return j, err
}

// A runner whose database hangs past its lease, while another takes the
// job over, sends some of it and lets it go, must not go on from its own
// cursor once its renewal comes through: that would send again what the
// other sent.
func TestStaleRunnerStopsAfterATakeover(t *testing.T) {
	e := newIdleEnv(t, 3, []string{"copies"})
	const n = 5000
	e.synthetic(t, n)
	arch := &gatedArchive{Archive: e.arch, g: newGate()}
	storeA := &gatedStore{JobStore: e.jobs, g: newGate()}
	a := replay.NewRunner(e.cl, arch, storeA, replay.Logger(testkit.Logger(t)), replay.CheckpointInterval(20*time.Millisecond),
		replay.RunnerID("A"), replay.LeaseTTL(3*time.Second), replay.PageSize(20), replay.Readers(1))
	e.run(t, a)
	j, err := a.Start(context.Background(), replay.Spec{Filter: lookback.Filter{Topic: "orders"}, Target: replay.Target{Topic: "copies"}, Rate: 500}, ops)
	if err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 30*time.Second, func() error {
		if got, _ := a.Get(context.Background(), j.ID); got.Sent < 100 {
			return fmt.Errorf("sent %d", got.Sent)
		}
		return nil
	})
	// A's database hangs: its renewals and its archive reads wait.
	storeA.g.on.Store(true)
	arch.g.on.Store(true)
	<-arch.g.blocked
	<-storeA.g.blocked

	// B takes the job over once A's lease expires, sends some, and stops
	// gracefully, releasing it.
	b := e.runnerOn(t, e.jobs, replay.RunnerID("B"), replay.LeaseTTL(300*time.Millisecond))
	runB := e.run(t, b)
	var takenAt int64
	testkit.Eventually(t, 30*time.Second, func() error {
		got, err := e.jobs.Job(context.Background(), j.ID)
		if err != nil || got.Lease.Owner != "B" {
			return fmt.Errorf("not taken over: %+v %v", got.Lease, err)
		}
		takenAt = got.Sent
		return nil
	})
	testkit.Eventually(t, 30*time.Second, func() error {
		if got, _ := b.Get(context.Background(), j.ID); got.Sent < takenAt+300 {
			return fmt.Errorf("B sent %d (took it at %d)", got.Sent, takenAt)
		}
		return nil
	})
	if err := runB.Stop(); err != nil {
		t.Fatal(err)
	}
	if got, _ := e.jobs.Job(context.Background(), j.ID); got.Status != replay.Running || got.Lease.Owner != "" {
		t.Fatalf("after B stopped: %+v, want running and released", got)
	}

	// A's database comes back: first its renewals, then its archive read.
	before := storeA.acquired.Load()
	close(storeA.g.mu)
	testkit.Eventually(t, 30*time.Second, func() error {
		if got := storeA.acquired.Load(); got < before+2 {
			return fmt.Errorf("A renewed %d times", got-before)
		}
		return nil
	})
	close(arch.g.mu)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	final, err := a.Wait(ctx, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	byOrigin, _ := copies(t, e.b.Addr(), "copies", j.ID)
	twice := 0
	for _, c := range byOrigin {
		if c > 1 {
			twice++
		}
	}
	if twice > 0 {
		t.Fatalf("job %s (sent %d, owner %q): %d of %d origins on the target more than once", final.Status, final.Sent, final.Lease.Owner, twice, len(byOrigin))
	}
}
