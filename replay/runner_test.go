package replay_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventkit/eventkit/internal/testkit"
	"github.com/eventkit/eventkit/lookback"
	"github.com/eventkit/eventkit/replay"
	"github.com/eventkit/eventkit/sqlite"
	"github.com/twmb/franz-go/pkg/kgo"
)

// listingStore holds Run's listings of the running jobs until released.
type listingStore struct {
	*sqlite.JobStore
	listing, release chan struct{}
	once             sync.Once // Run lists again every third of the lease TTL
}

func (s *listingStore) Jobs(ctx context.Context, status replay.Status) ([]replay.Job, error) {
	s.once.Do(func() { close(s.listing) })
	<-s.release
	return s.JobStore.Jobs(ctx, status)
}

// A job started while Run still lists the jobs to resume would be listed
// and resumed as well, and every record sent twice: Start refuses until
// the listing is done, which is when Ready closes.
func TestStartWaitsForResume(t *testing.T) {
	e := newIdleEnv(t, 3, nil)
	store := &listingStore{JobStore: e.jobs, listing: make(chan struct{}), release: make(chan struct{})}
	e.r = e.runnerOn(t, store)
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

// watchedStore counts what a Runner asks of the store, and can lose its
// releases as a killed process would.
type watchedStore struct {
	replay.JobStore
	noRelease bool

	mu       sync.Mutex
	listed   map[string]int // job id → listings of the running jobs that showed it
	acquired map[string]int // job id → leases granted, renewals included
}

func watch(s replay.JobStore) *watchedStore {
	return &watchedStore{JobStore: s, listed: make(map[string]int), acquired: make(map[string]int)}
}

func (s *watchedStore) Jobs(ctx context.Context, status replay.Status) ([]replay.Job, error) {
	jobs, err := s.JobStore.Jobs(ctx, status)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, j := range jobs {
		s.listed[j.ID]++
	}
	return jobs, err
}

func (s *watchedStore) AcquireJob(ctx context.Context, id string, l replay.Lease, now time.Time) (replay.Job, error) {
	j, err := s.JobStore.AcquireJob(ctx, id, l, now)
	if err == nil {
		s.mu.Lock()
		s.acquired[id]++
		s.mu.Unlock()
	}
	return j, err
}

func (s *watchedStore) ReleaseJob(ctx context.Context, id, owner string) error {
	if s.noRelease {
		return nil
	}
	return s.JobStore.ReleaseJob(ctx, id, owner)
}

func (s *watchedStore) counts(id string) (listed, acquired int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.listed[id], s.acquired[id]
}

// slowJob archives n records and has r start a job sending them to copies
// at 500 a second, and waits until it has sent some.
func (e *env) slowJob(t *testing.T, r *replay.Runner, n int) replay.Job {
	t.Helper()
	e.synthetic(t, n)
	j, err := r.Start(context.Background(), replay.Spec{Filter: lookback.Filter{Topic: "orders"}, Target: replay.Target{Topic: "copies"}, Rate: 500}, ops)
	if err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 30*time.Second, func() error {
		if got, _ := r.Get(context.Background(), j.ID); got.Sent < 100 {
			return fmt.Errorf("sent %d", got.Sent)
		}
		return nil
	})
	return j
}

// A lookback service and a CLI on one database: a job started on A is
// A's alone, however often B looks for jobs to resume, and B cancels it
// through the store.
func TestJobRunsInOneRunner(t *testing.T) {
	e := newIdleEnv(t, 3, []string{"copies"})
	e.r = e.runner(t, replay.RunnerID("A"))
	e.run(t, e.r)
	j := e.slowJob(t, e.r, 5000)

	store := watch(e.jobs)
	b := e.runnerOn(t, store, replay.RunnerID("B"), replay.LeaseTTL(60*time.Millisecond))
	e.run(t, b)
	testkit.Eventually(t, 30*time.Second, func() error {
		if listed, _ := store.counts(j.ID); listed < 5 {
			return fmt.Errorf("B listed the job %d times", listed)
		}
		return nil
	})
	if _, acquired := store.counts(j.ID); acquired != 0 {
		t.Fatalf("B acquired A's job %d times", acquired)
	}
	if got, _ := e.r.Get(context.Background(), j.ID); got.Status != replay.Running || got.Lease.Owner != "A" {
		t.Fatalf("job %+v, want running on A", got)
	}

	cancelled, err := b.Cancel(context.Background(), j.ID, ops)
	if err != nil || cancelled.Status != replay.Cancelled {
		t.Fatalf("cancel through B: %+v, %v", cancelled, err)
	}
	if got := e.wait(t, j.ID); got.Status != replay.Cancelled {
		t.Fatalf("job on A %+v, want cancelled", got)
	}
	byOrigin, _ := copies(t, e.b.Addr(), "copies", j.ID)
	for o, c := range byOrigin {
		if c != 1 {
			t.Errorf("origin %s sent %d times", o, c)
		}
	}
}

// A Runner that dies keeps its jobs' leases; once a lease has expired
// another Runner takes the job over and finishes it, sending every record
// once.
func TestTakeOverAfterCrash(t *testing.T) {
	e := newIdleEnv(t, 3, []string{"copies"})
	const n = 1500
	crashing := watch(e.jobs)
	crashing.noRelease = true
	a := e.runnerOn(t, crashing, replay.RunnerID("A"), replay.LeaseTTL(time.Hour))
	runA := e.run(t, a)
	j := e.slowJob(t, a, n)

	store := watch(e.jobs)
	b := e.runnerOn(t, store, replay.RunnerID("B"), replay.LeaseTTL(300*time.Millisecond))
	e.run(t, b)
	if err := runA.Stop(); err != nil { // A dies without releasing its job
		t.Fatal(err)
	}
	held, err := e.jobs.Job(context.Background(), j.ID)
	if err != nil || held.Status != replay.Running || held.Lease.Owner != "A" {
		t.Fatalf("job after A died: %+v, %v; want running, held by A", held, err)
	}
	if _, acquired := store.counts(j.ID); acquired != 0 {
		t.Fatalf("B took the job over %d times while A's lease ran", acquired)
	}
	// An hour on: A's lease ends now, as it would once its TTL passed
	// without a renewal.
	now := time.Now()
	if _, err := e.jobs.AcquireJob(context.Background(), j.ID, replay.Lease{Owner: "A", Until: now}, now); err != nil {
		t.Fatal(err)
	}
	taken := ended(t, b, j.ID)
	if _, acquired := store.counts(j.ID); acquired == 0 {
		t.Fatal("the job ended without B taking it over")
	}
	e.sentOnce(t, taken, "copies", n)
}

// stoppedJob starts a slow job of n records on a Runner that it stops
// gracefully once some are sent.
func stoppedJob(t *testing.T, n int) (*env, replay.Job) {
	t.Helper()
	e := newIdleEnv(t, 3, []string{"copies"})
	a := e.runner(t, replay.RunnerID("A"), replay.LeaseTTL(time.Hour))
	runA := e.run(t, a)
	j := e.slowJob(t, a, n)
	if err := runA.Stop(); err != nil {
		t.Fatal(err)
	}
	return e, j
}

// A Runner that stops gracefully releases its unfinished jobs: the next
// Runner resumes them at once, long before their leases would expire.
func TestGracefulStopReleases(t *testing.T) {
	const n = 1500
	e, j := stoppedJob(t, n)
	stopped, err := e.jobs.Job(context.Background(), j.ID)
	if err != nil || stopped.Status != replay.Running || stopped.Lease != (replay.Lease{}) {
		t.Fatalf("job after A stopped: %+v, %v; want running and released", stopped, err)
	}

	e.r = e.runner(t, replay.RunnerID("C"), replay.LeaseTTL(time.Hour))
	e.run(t, e.r)
	e.sentOnce(t, e.wait(t, j.ID), "copies", n)
}

// A job resumed on a target whose partitions end with a transaction marker
// (another application writes to it transactionally) finishes: the
// read-back of what was sent does not wait for a last record that never
// comes.
func TestResumeAfterATransactionalWrite(t *testing.T) {
	const n = 1500
	e, j := stoppedJob(t, n)
	tx := testkit.Client(t, e.b.Addr(), kgo.TransactionalID("app-tx"), kgo.DefaultProduceTopic("copies"),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err := tx.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for p := range int32(3) {
		if err := tx.ProduceSync(t.Context(), &kgo.Record{Topic: "copies", Partition: p, Value: []byte("app")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.EndTransaction(t.Context(), kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	e.r = e.runner(t, replay.RunnerID("B"), replay.LeaseTTL(time.Hour))
	e.run(t, e.r)
	e.sentOnce(t, e.wait(t, j.ID), "copies", n)
}

// A Runner whose job another runner has taken over (its lease expired
// while the process stalled, say) stops sending it and leaves the job as
// the new holder has it: neither finished nor saved.
func TestTakenOverJobStops(t *testing.T) {
	e := newIdleEnv(t, 3, []string{"copies"})
	e.r = e.runner(t, replay.RunnerID("A"), replay.LeaseTTL(300*time.Millisecond))
	e.run(t, e.r)
	j := e.slowJob(t, e.r, 5000)

	now := time.Now()
	stolen, err := e.jobs.AcquireJob(context.Background(), j.ID, replay.Lease{Owner: "B", Until: now.Add(time.Hour)}, now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	stopped := e.wait(t, j.ID)
	if stopped.Status != replay.Running || stopped.Lease.Owner != "B" || stopped.Sent != stolen.Sent || stopped.Checkpoint.Cursor != stolen.Checkpoint.Cursor {
		t.Fatalf("job after A stopped: %+v; want it as B took it: %+v", stopped, stolen)
	}
	_, mine := copies(t, e.b.Addr(), "copies", j.ID)
	if len(mine) >= 5000 {
		t.Fatalf("A sent all %d records of a job it no longer held", len(mine))
	}
}

// stalledArchive answers no query: each waits for its context to end and
// fails with its error, as a query a cancel cuts short does.
type stalledArchive struct {
	*sqlite.Archive
	asked chan struct{} // a query is waiting
	once  sync.Once
}

func (a *stalledArchive) Query(ctx context.Context, _ lookback.Query) (lookback.Page, error) {
	a.once.Do(func() { close(a.asked) })
	<-ctx.Done()
	return lookback.Page{}, fmt.Errorf("archive: query: %w", ctx.Err())
}

// A cancel that cuts a job's archive read short ends the job cancelled,
// not failed, whether the cancel finds it reading its slices' bounds
// (pages of one make slices of eight) or reading a page.
func TestCancelDuringRead(t *testing.T) {
	for _, readers := range []int{2, 1} {
		t.Run(fmt.Sprintf("readers=%d", readers), func(t *testing.T) {
			e := &env{b: testkit.Broker(t, 1, "copies")}
			e.cl = testkit.Client(t, e.b.Addr())
			e.db = openSQLite(t, t.TempDir()+"/lookback.db")
			e.arch = sqlite.NewArchive(e.db)
			e.synthetic(t, 30)
			arch := &stalledArchive{Archive: e.arch, asked: make(chan struct{})}
			e.r = replay.NewRunner(e.cl, arch, sqlite.NewJobStore(e.db), replay.Logger(testkit.Logger(t)),
				replay.PageSize(1), replay.Readers(readers))
			testkit.Go(t, e.r.Run)
			<-e.r.Ready()

			j := e.start(t, replay.Spec{Filter: lookback.Filter{Topic: "orders"}, Target: replay.Target{Topic: "copies"}})
			<-arch.asked
			j, err := e.r.Cancel(context.Background(), j.ID, ops)
			if err != nil || j.Status != replay.Cancelled {
				t.Fatalf("cancel during a read: %+v, %v; want cancelled", j, err)
			}
		})
	}
}

// stallingStore hangs every lease renewal once stalled, as a database that
// stops answering does.
type stallingStore struct {
	replay.JobStore
	stalled atomic.Bool
}

func (s *stallingStore) AcquireJob(ctx context.Context, id string, l replay.Lease, now time.Time) (replay.Job, error) {
	if s.stalled.Load() {
		<-ctx.Done()
		return replay.Job{}, ctx.Err()
	}
	return s.JobStore.AcquireJob(ctx, id, l, now)
}

// A runner whose lease renewal hangs stops producing before its lease
// runs out: another runner takes the job over once it has, reads back
// what was sent, and sends the rest, each record once.
func TestStalledRenewalStopsProducing(t *testing.T) {
	e := newIdleEnv(t, 3, []string{"copies"})
	// A lease long enough that the third of it the runner stops early by
	// is plenty for its last records to land, however busy the machine.
	const n = 3000
	store := &stallingStore{JobStore: e.jobs}
	a := e.runnerOn(t, store, replay.RunnerID("A"), replay.LeaseTTL(1500*time.Millisecond))
	e.run(t, a)
	j := e.slowJob(t, a, n)
	store.stalled.Store(true)

	b := e.runnerOn(t, e.jobs, replay.RunnerID("B"), replay.LeaseTTL(1500*time.Millisecond))
	e.run(t, b)
	got := ended(t, b, j.ID)
	byOrigin, _ := copies(t, e.b.Addr(), "copies", j.ID)
	twice := 0
	for _, c := range byOrigin {
		if c > 1 {
			twice++
		}
	}
	if twice > 0 || len(byOrigin) != n || got.Status != replay.Done {
		t.Fatalf("job %s, %d sent; %d origins on the target, %d of them more than once; want each of %d once",
			got.Status, got.Sent, len(byOrigin), twice, n)
	}
}
