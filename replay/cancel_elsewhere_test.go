package replay_test

import (
	"context"
	"testing"

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
