// Package jobstoretest is the suite every [replay.JobStore] must pass.
//
//	func TestJobStore(t *testing.T) {
//		jobstoretest.Run(t, func(t *testing.T) replay.JobStore { return newStoreForTest(t) })
//	}
package jobstoretest

import (
	"context"
	"errors"
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
		(got.FinishedAt == nil) != (want.FinishedAt == nil) || (got.FinishedAt != nil && !got.FinishedAt.Equal(*want.FinishedAt)) {
		t.Fatalf("times differ:\n got %+v\nwant %+v", got, want)
	}
	got.CreatedAt, got.FinishedAt, got.Spec.Filter.From, got.Spec.Filter.To = want.CreatedAt, want.FinishedAt, want.Spec.Filter.From, want.Spec.Filter.To
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
	if err := s.UpdateJob(ctx, job("nope", t0)); !errors.Is(err, replay.ErrJobNotFound) {
		t.Fatalf("update of an unknown job: %v, want ErrJobNotFound", err)
	}
}

func testOnlyRunning(t *testing.T, s replay.JobStore) {
	ctx := ctxOf(t)
	j := job("j1", t0)
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
	got, _ := s.Job(ctx, "j1")
	same(t, got, j)
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
