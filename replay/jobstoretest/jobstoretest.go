// Package jobstoretest is the suite every [replay.JobStore] must pass.
//
//	func TestJobStore(t *testing.T) {
//		jobstoretest.Run(t, func(t *testing.T) replay.JobStore { return newStoreForTest(t) })
//	}
package jobstoretest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/eventkit/eventkit"
	"github.com/eventkit/eventkit/lookback"
	"github.com/eventkit/eventkit/replay"
)

// Run runs the suite; newStore returns a fresh, empty store for each case.
func Run(t *testing.T, newStore func(t *testing.T) replay.JobStore) {
	t.Run("RoundTrip", func(t *testing.T) { testRoundTrip(t, newStore(t)) })
	t.Run("OnlyRunningJobsMove", func(t *testing.T) { testOnlyRunning(t, newStore(t)) })
	t.Run("ListNewestFirst", func(t *testing.T) { testList(t, newStore(t)) })
	t.Run("Lease", func(t *testing.T) { testLease(t, newStore(t)) })
	t.Run("OneOfConcurrentTakeoversWins", func(t *testing.T) { testConcurrentAcquire(t, newStore(t)) })
}

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 6, time.UTC)

func job(id string, at time.Time) replay.Job {
	part := int32(2)
	spec := replay.Spec{
		Filter: lookback.Filter{
			Topic: "orders", Partition: &part, Key: []byte{0, 'k', 0xff}, Type: "order.placed", IDs: []string{"a", "b"},
			From: t0.Add(-time.Hour), To: t0,
			Headers: []lookback.HeaderMatch{{Name: "tenant", Value: []byte("acme")}},
		},
		Target: replay.Target{Group: "billing"}, Mode: eventkit.Reprocess, Rate: 250,
	}
	return replay.Job{
		ID: id, Status: replay.Running, Matched: 10, Target: spec.Target, Mode: spec.Mode,
		CreatedBy: "ops", CreatedAt: at, Spec: spec,
		Checkpoint: replay.Checkpoint{Floors: map[int32]int64{0: 3, 1: 0}},
	}
}

func ctxOf(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func same(t *testing.T, got, want replay.Job) {
	t.Helper()
	// Times come back in the local zone; compare instants.
	if !got.CreatedAt.Equal(want.CreatedAt) || !got.Spec.Filter.From.Equal(want.Spec.Filter.From) || !got.Spec.Filter.To.Equal(want.Spec.Filter.To) ||
		(got.FinishedAt == nil) != (want.FinishedAt == nil) || (got.FinishedAt != nil && !got.FinishedAt.Equal(*want.FinishedAt)) ||
		!got.Lease.Until.Equal(want.Lease.Until) {
		t.Fatalf("times differ:\n got %+v\nwant %+v", got, want)
	}
	got.CreatedAt, got.FinishedAt, got.Spec.Filter.From, got.Spec.Filter.To = want.CreatedAt, want.FinishedAt, want.Spec.Filter.From, want.Spec.Filter.To
	got.Lease.Until = want.Lease.Until
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("job differs:\n got %+v\nwant %+v", got, want)
	}
}

func testRoundTrip(t *testing.T, s replay.JobStore) {
	ctx := ctxOf(t)
	j := job("j1", t0)
	if err := s.CreateJob(ctx, j); err != nil {
		t.Fatal(err)
	}
	got, err := s.Job(ctx, "j1")
	if err != nil {
		t.Fatal(err)
	}
	same(t, got, j)

	j.Sent, j.Failed, j.Matched = 7, 1, 11
	j.Checkpoint = replay.Checkpoint{Cursor: "abc", Floors: map[int32]int64{0: 9, 1: 4}}
	if err := s.UpdateJob(ctx, j); err != nil {
		t.Fatal(err)
	}
	got, _ = s.Job(ctx, "j1")
	same(t, got, j)

	if _, err := s.Job(ctx, "nope"); !errors.Is(err, replay.ErrJobNotFound) {
		t.Fatalf("unknown job: %v, want ErrJobNotFound", err)
	}
	// Ids from a URL path may hold anything; no job has such an id.
	for _, id := range []string{"a\x00b", "\xff"} {
		if _, err := s.Job(ctx, id); !errors.Is(err, replay.ErrJobNotFound) {
			t.Fatalf("job %q: %v, want ErrJobNotFound", id, err)
		}
		if err := s.UpdateJob(ctx, job(id, t0)); !errors.Is(err, replay.ErrJobNotFound) {
			t.Fatalf("update of job %q: %v, want ErrJobNotFound", id, err)
		}
	}
	if err := s.UpdateJob(ctx, job("nope", t0)); !errors.Is(err, replay.ErrJobNotFound) {
		t.Fatalf("update of an unknown job: %v, want ErrJobNotFound", err)
	}
	if _, err := s.AcquireJob(ctx, "nope", replay.Lease{Owner: "a", Until: t0.Add(time.Hour)}, t0); !errors.Is(err, replay.ErrJobNotFound) {
		t.Fatalf("acquire of an unknown job: %v, want ErrJobNotFound", err)
	}
	if err := s.ReleaseJob(ctx, "nope", "a"); err != nil {
		t.Fatalf("release of an unknown job: %v, want nothing released and no error", err)
	}
}

func testOnlyRunning(t *testing.T, s replay.JobStore) {
	ctx := ctxOf(t)
	j := job("j1", t0)
	j.Lease = replay.Lease{Owner: "a", Until: t0.Add(time.Hour)}
	if err := s.CreateJob(ctx, j); err != nil {
		t.Fatal(err)
	}
	end := t0.Add(time.Minute)
	j.Status, j.FinishedAt = replay.Cancelled, &end
	if err := s.UpdateJob(ctx, j); err != nil {
		t.Fatal(err)
	}
	late := j
	late.Status, late.Sent = replay.Done, 10
	if err := s.UpdateJob(ctx, late); !errors.Is(err, replay.ErrJobFinished) {
		t.Fatalf("update of a cancelled job: %v, want ErrJobFinished", err)
	}
	// Its holder, once stopped, records its final counts; the status and
	// the finish time stay the cancel's. Nobody else may.
	again := j
	later := end.Add(time.Minute)
	again.FinishedAt = &later
	if err := s.UpdateJob(ctx, again); !errors.Is(err, replay.ErrJobFinished) {
		t.Fatalf("a second cancel: %v, want ErrJobFinished", err)
	}
	final := j
	final.Sent, final.Failed, final.Matched, final.FinishedAt = 7, 1, 9, nil
	if err := s.UpdateJob(ctx, final); err != nil {
		t.Fatalf("final counts of a job cancelled elsewhere, by its holder: %v", err)
	}
	final.FinishedAt = &end
	other := final
	other.Lease.Owner, other.Sent = "b", 99
	if err := s.UpdateJob(ctx, other); err == nil {
		t.Fatal("another runner wrote the counts of a cancelled job")
	}
	// Neither its holder nor another runner gets an ended job, even once
	// the lease has expired.
	for _, owner := range []string{"a", "b"} {
		if _, err := s.AcquireJob(ctx, "j1", replay.Lease{Owner: owner, Until: t0.Add(3 * time.Hour)}, t0.Add(2*time.Hour)); !errors.Is(err, replay.ErrJobFinished) {
			t.Fatalf("acquire of a cancelled job by %s: %v, want ErrJobFinished", owner, err)
		}
	}
	got, _ := s.Job(ctx, "j1")
	same(t, got, final)
}

func testList(t *testing.T, s replay.JobStore) {
	ctx := ctxOf(t)
	for i, id := range []string{"a", "b", "c"} {
		if err := s.CreateJob(ctx, job(id, t0.Add(time.Duration(i)*time.Second))); err != nil {
			t.Fatal(err)
		}
	}
	b := job("b", t0.Add(time.Second))
	b.Status = replay.Done
	if err := s.UpdateJob(ctx, b); err != nil {
		t.Fatal(err)
	}
	ids := func(status replay.Status) []string {
		jobs, err := s.Jobs(ctx, status)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, j := range jobs {
			out = append(out, j.ID)
		}
		return out
	}
	if got := ids(""); !reflect.DeepEqual(got, []string{"c", "b", "a"}) {
		t.Fatalf("all jobs %v, want newest first", got)
	}
	if got := ids(replay.Running); !reflect.DeepEqual(got, []string{"c", "a"}) {
		t.Fatalf("running jobs %v", got)
	}
	if got := ids(replay.Failed); got != nil {
		t.Fatalf("failed jobs %v, want none", got)
	}
}

func testLease(t *testing.T, s replay.JobStore) {
	ctx := ctxOf(t)
	free := job("free", t0)
	held := job("held", t0)
	held.Lease = replay.Lease{Owner: "a", Until: t0.Add(time.Minute)}
	for _, j := range []replay.Job{free, held} {
		if err := s.CreateJob(ctx, j); err != nil {
			t.Fatal(err)
		}
	}
	stored := func(id string) replay.Job {
		t.Helper()
		j, err := s.Job(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return j
	}
	same(t, stored("held"), held)
	acquire := func(id, owner string, until, now time.Time) (replay.Job, error) {
		return s.AcquireJob(ctx, id, replay.Lease{Owner: owner, Until: until}, now)
	}

	t.Run("free job", func(t *testing.T) {
		got, err := acquire("free", "b", t0.Add(time.Minute), t0)
		if err != nil {
			t.Fatal(err)
		}
		free.Lease = replay.Lease{Owner: "b", Until: t0.Add(time.Minute)}
		same(t, got, free)
		same(t, stored("free"), free)
	})
	t.Run("held by another", func(t *testing.T) {
		got, err := acquire("held", "b", t0.Add(2*time.Minute), t0.Add(59*time.Second))
		if !errors.Is(err, replay.ErrJobHeld) {
			t.Fatalf("acquire of a job a holds: %v, want ErrJobHeld", err)
		}
		if got.Lease.Owner != "a" || !got.Lease.Until.Equal(held.Lease.Until) {
			t.Fatalf("refused acquire returned lease %+v, want a's", got.Lease)
		}
		same(t, stored("held"), held)
	})
	t.Run("renewed by its holder", func(t *testing.T) {
		got, err := acquire("held", "a", t0.Add(2*time.Minute), t0.Add(30*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		held.Lease.Until = t0.Add(2 * time.Minute)
		same(t, got, held)
		same(t, stored("held"), held)
	})
	t.Run("taken over once expired", func(t *testing.T) {
		got, err := acquire("held", "b", t0.Add(3*time.Minute), held.Lease.Until)
		if err != nil {
			t.Fatal(err)
		}
		held.Lease = replay.Lease{Owner: "b", Until: t0.Add(3 * time.Minute)}
		same(t, got, held)
	})
	t.Run("update by the former holder", func(t *testing.T) {
		late := held
		late.Lease.Owner, late.Sent = "a", 5
		if err := s.UpdateJob(ctx, late); !errors.Is(err, replay.ErrLeaseLost) {
			t.Fatalf("update by a after b took over: %v, want ErrLeaseLost", err)
		}
		same(t, stored("held"), held)
		held.Sent = 6
		if err := s.UpdateJob(ctx, held); err != nil {
			t.Fatalf("update by the holder: %v", err)
		}
		same(t, stored("held"), held)
	})
	t.Run("release", func(t *testing.T) {
		if err := s.ReleaseJob(ctx, "held", "a"); err != nil {
			t.Fatalf("release by a non-holder: %v, want nothing released and no error", err)
		}
		same(t, stored("held"), held)
		if err := s.ReleaseJob(ctx, "held", "b"); err != nil {
			t.Fatal(err)
		}
		held.Lease = replay.Lease{}
		same(t, stored("held"), held)
		// Free at once, long before b's lease would have expired.
		got, err := acquire("held", "a", t0.Add(4*time.Minute), t0)
		if err != nil {
			t.Fatal(err)
		}
		held.Lease = replay.Lease{Owner: "a", Until: t0.Add(4 * time.Minute)}
		same(t, got, held)
	})
}

// Runners that find the same lease expired take the job over at once: one
// of them gets it.
func testConcurrentAcquire(t *testing.T, s replay.JobStore) {
	ctx := ctxOf(t)
	j := job("j1", t0)
	j.Lease = replay.Lease{Owner: "crashed", Until: t0}
	if err := s.CreateJob(ctx, j); err != nil {
		t.Fatal(err)
	}
	const n = 8
	errs := make(chan error, n)
	for i := range n {
		go func() {
			_, err := s.AcquireJob(ctx, "j1", replay.Lease{Owner: fmt.Sprint("runner-", i), Until: t0.Add(time.Minute)}, t0)
			errs <- err
		}()
	}
	won := 0
	for range n {
		switch err := <-errs; {
		case err == nil:
			won++
		case !errors.Is(err, replay.ErrJobHeld):
			t.Errorf("acquire: %v, want ErrJobHeld for all but one", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d runners acquired the job, want 1", won)
	}
}
