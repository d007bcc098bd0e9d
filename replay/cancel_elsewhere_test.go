package replay_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/eventkit/eventkit/internal/testkit"
	"github.com/eventkit/eventkit/replay"
	"github.com/twmb/franz-go/pkg/kgo"
)

// A job cancelled through another Runner ends with the counters of what
// its holder sent, not of its last checkpoint.
func TestCancelElsewhereCountsEverySent(t *testing.T) {
	e := newIdleEnv(t, 3, []string{"copies"})
	e.r = e.runner(t, replay.RunnerID("A"))
	e.run(t, e.r)
	j := e.slowJob(t, e.r, 5000)

	b := e.runnerOn(t, e.jobs, replay.RunnerID("B"))
	e.run(t, b)
	cancelled, err := b.Cancel(context.Background(), j.ID, ops)
	if err != nil || cancelled.Status != replay.Cancelled {
		t.Fatalf("cancel through B: %+v, %v", cancelled, err)
	}
	final := e.wait(t, j.ID) // once A has stopped it, in-flight records drained
	if final.Status != replay.Cancelled {
		t.Fatalf("job %+v, want cancelled", final)
	}
	_, mine := copies(t, e.b.Addr(), "copies", j.ID)
	if cancelled.Sent != final.Sent {
		t.Errorf("Cancel answered %d sent, the job ended with %d", cancelled.Sent, final.Sent)
	}
	if int64(len(mine)) != final.Sent {
		t.Fatalf("cancelled job says %d sent (cancel answered %d), the target holds %d of its copies", final.Sent, cancelled.Sent, len(mine))
	}
}

// A cancel through another Runner returns once no copy can land any more.
func TestCancelElsewhereStopsSending(t *testing.T) {
	e := newIdleEnv(t, 1, []string{"copies"})
	e.r = e.runner(t, replay.RunnerID("A"))
	e.run(t, e.r)
	j := e.slowJob(t, e.r, 5000)
	b := e.runnerOn(t, e.jobs, replay.RunnerID("B"))
	e.run(t, b)
	if _, err := b.Cancel(context.Background(), j.ID, ops); err != nil {
		t.Fatal(err)
	}
	testkit.Produce(t, testkit.Client(t, e.b.Addr()), &kgo.Record{Topic: "copies", Value: []byte("sentinel")})
	e.wait(t, j.ID)
	after := 0
	seen := false
	for _, r := range testkit.ReadAll(t, e.b.Addr(), "copies") {
		if string(r.Value) == "sentinel" {
			seen = true
		} else if seen {
			after++
		}
	}
	if after > 0 {
		t.Fatalf("%d copies landed after Cancel (through B) had returned", after)
	}
}

// holderStore is runner A's store: it says when A has written the final
// counts of a job cancelled elsewhere, and holds A's lease release until
// the test lets it go.
type holderStore struct {
	replay.JobStore
	settled     chan struct{}
	settleOnce  sync.Once
	releaseGate chan struct{}
}

func (s *holderStore) UpdateJob(ctx context.Context, j replay.Job) error {
	err := s.JobStore.UpdateJob(ctx, j)
	if err == nil && j.Status == replay.Cancelled {
		s.settleOnce.Do(func() { close(s.settled) })
	}
	return err
}

func (s *holderStore) ReleaseJob(ctx context.Context, id, owner string) error {
	select {
	case <-s.releaseGate:
	case <-time.After(30 * time.Second):
	}
	return s.JobStore.ReleaseJob(ctx, id, owner)
}

// lateCanceller is runner C's store: its first read of the job (still
// running) is answered only once A has settled the job, as a slow request
// racing another cancel would be.
type lateCanceller struct {
	replay.JobStore
	read    chan struct{}
	after   <-chan struct{}
	once    sync.Once
	wrote   chan struct{}
	wroteOn sync.Once
}

func (s *lateCanceller) Job(ctx context.Context, id string) (replay.Job, error) {
	j, err := s.JobStore.Job(ctx, id)
	s.once.Do(func() {
		close(s.read)
		select {
		case <-s.after:
		case <-time.After(30 * time.Second):
		}
	})
	return j, err
}

func (s *lateCanceller) UpdateJob(ctx context.Context, j replay.Job) error {
	err := s.JobStore.UpdateJob(ctx, j)
	s.wroteOn.Do(func() { close(s.wrote) })
	return err
}

// Two cancels of one job through two other runners: one cancels, the other
// finds the job ended (409). Neither may write the checkpoint's counts over
// the holder's final ones.
// Two cancels through other runners, the second having read the job still
// running: the second is refused, and the final counts the holder wrote
// stay.
func TestConcurrentCancelsElsewhere(t *testing.T) {
	e := newIdleEnv(t, 1, []string{"copies"})
	aStore := &holderStore{JobStore: e.jobs, settled: make(chan struct{}), releaseGate: make(chan struct{})}
	e.r = e.runnerOn(t, aStore, replay.RunnerID("A"))
	e.run(t, e.r)
	j := e.slowJob(t, e.r, 5000)

	cStore := &lateCanceller{JobStore: e.jobs, read: make(chan struct{}), after: aStore.settled, wrote: make(chan struct{})}
	go func() { <-cStore.wrote; close(aStore.releaseGate) }()

	b := e.runnerOn(t, e.jobs, replay.RunnerID("B"))
	e.run(t, b)
	c := e.runnerOn(t, cStore, replay.RunnerID("C"))
	e.run(t, c)

	type res struct {
		j   replay.Job
		err error
	}
	cRes := make(chan res, 1)
	go func() {
		j, err := c.Cancel(context.Background(), j.ID, ops)
		cRes <- res{j, err}
	}()
	<-cStore.read // C has read the job running
	bJob, bErr := b.Cancel(context.Background(), j.ID, ops)
	var cr res
	select {
	case cr = <-cRes:
	case <-time.After(60 * time.Second):
		t.Fatal("C's cancel did not return")
	}
	final := e.wait(t, j.ID)
	_, mine := copies(t, e.b.Addr(), "copies", j.ID)
	t.Logf("B: sent=%d err=%v; C: sent=%d err=%v; stored sent=%d; copies on target=%d", bJob.Sent, bErr, cr.j.Sent, cr.err, final.Sent, len(mine))
	if bErr == nil && cr.err == nil {
		t.Errorf("both cancels succeeded; the second must fail with ErrJobFinished")
	}
	if cr.err != nil && !errors.Is(cr.err, replay.ErrJobFinished) {
		t.Errorf("C: %v", cr.err)
	}
	if final.Sent != int64(len(mine)) {
		t.Errorf("job stored with sent=%d, the target holds %d of its copies", final.Sent, len(mine))
	}
}
