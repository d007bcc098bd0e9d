package replay

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/eventkit/eventkit"
	"github.com/eventkit/eventkit/lookback"
)

// Errors callers match (errors.Is).
var (
	// ErrInvalidSpec: the spec cannot be run as given (no target or two,
	// an unknown mode, a negative rate, a bad filter, a target topic that
	// does not exist).
	ErrInvalidSpec = errors.New("invalid replay")
	// ErrJobNotFound: no job has that id.
	ErrJobNotFound = errors.New("no such replay job")
	// ErrJobFinished: the job has already ended, so it cannot be
	// cancelled (or moved on) any more.
	ErrJobFinished = errors.New("replay job already finished")
	// ErrNotRunning: the [Runner] is not inside Run, so it cannot start a
	// job.
	ErrNotRunning = errors.New("replay runner not running")
	// ErrJobHeld: another runner's lease on the job has not expired, so
	// it runs the job and this one may not.
	ErrJobHeld = errors.New("replay job held by another runner")
	// ErrLeaseLost: the runner that wrote the job no longer holds its
	// lease; another one has taken the job over.
	ErrLeaseLost = errors.New("replay job lease lost")
)

// Target says where replayed records go: a topic, which every group
// consuming it sees, or one consumer group's replay topic, which only that
// group sees. Exactly one is set.
type Target struct {
	Topic string `json:"topic,omitempty"`
	Group string `json:"group,omitempty"`
}

// TopicName is the Kafka topic the target writes to.
func (t Target) TopicName() string {
	if t.Group != "" {
		return eventkit.ReplayTopic(t.Group)
	}
	return t.Topic
}

func (t Target) String() string {
	if t.Group != "" {
		return "group " + t.Group
	}
	return "topic " + t.Topic
}

// Spec says what a replay job sends, where and how fast.
type Spec struct {
	// Filter selects the archived records to send, oldest first. A job
	// replays what the archive holds when it starts: a filter without To
	// stops at the job's creation time.
	Filter lookback.Filter `json:"filter"`
	Target Target          `json:"target"`
	// Mode tells consumers' idempotency layer how to treat the copies.
	// Default: Reprocess for a group target, Deduplicate for a topic.
	Mode eventkit.ReplayMode `json:"mode"`
	// Rate is the most records a second the job sends; 0 means no limit.
	Rate float64 `json:"rate,omitempty"`
	// DryRun asks for the count and a sample only; [Runner.Start] refuses
	// it, [Runner.DryRun] answers it.
	DryRun bool `json:"dry_run,omitempty"`
}

// withDefaults returns s with its mode filled in from its target.
func (s Spec) withDefaults() Spec {
	if s.Mode == "" {
		s.Mode = eventkit.Deduplicate
		if s.Target.Group != "" {
			s.Mode = eventkit.Reprocess
		}
	}
	return s
}

// Validate reports every problem of s that needs neither the archive nor
// the brokers to find, matching [ErrInvalidSpec].
func (s Spec) Validate() error {
	var problems []string
	switch {
	case s.Target.Topic == "" && s.Target.Group == "":
		problems = append(problems, "no target: want a topic or a group")
	case s.Target.Topic != "" && s.Target.Group != "":
		problems = append(problems, "two targets: want a topic or a group, not both")
	}
	if s.Mode != "" && s.Mode != eventkit.Reprocess && s.Mode != eventkit.Deduplicate {
		problems = append(problems, fmt.Sprintf("mode %q: want reprocess or deduplicate", s.Mode))
	}
	if s.Rate < 0 || math.IsNaN(s.Rate) || math.IsInf(s.Rate, 0) {
		problems = append(problems, fmt.Sprintf("rate %g: want 0 (no limit) or a finite number of events a second", s.Rate))
	}
	if err := s.Filter.Validate(); err != nil {
		problems = append(problems, err.Error())
	}
	if len(problems) > 0 {
		return &matchErr{strings.Join(problems, "; "), ErrInvalidSpec}
	}
	return nil
}

// Status is where a job is in its life.
type Status string

const (
	Running   Status = "running"
	Done      Status = "done"
	Cancelled Status = "cancelled"
	// Failed: the archive could not be read, or at least one record could
	// not be produced.
	Failed Status = "failed"
)

// Job is a replay job as operators see it; its JSON form is the answer of
// lookback's GET /api/v1/replays/{id}.
type Job struct {
	ID         string              `json:"id"`
	Status     Status              `json:"status"`
	Matched    int64               `json:"matched"`
	Sent       int64               `json:"sent"`
	Failed     int64               `json:"failed"`
	Target     Target              `json:"target"`
	Mode       eventkit.ReplayMode `json:"mode"`
	CreatedBy  string              `json:"created_by"`
	CreatedAt  time.Time           `json:"created_at"`
	FinishedAt *time.Time          `json:"finished_at"` // null while running

	// Spec is what the job runs, with its defaults and its bounded filter.
	Spec Spec `json:"-"`
	// Checkpoint is how far the job got, kept by the [JobStore] so that a
	// restarted [Runner] resumes there.
	Checkpoint Checkpoint `json:"-"`
	// Lease says which runner runs the job, and until when without a
	// renewal; the zero Lease leaves the job to any runner.
	Lease Lease `json:"-"`
}

// Lease gives a running job to one [Runner] until a time, so that two
// runners on one store never both send it. Its holder renews it while it
// runs the job; a runner that was killed stops renewing, and once Until
// has passed another runner takes the job over.
type Lease struct {
	Owner string    // the runner's id; empty: no runner
	Until time.Time // when the lease ends unless renewed
}

// Held reports whether the lease keeps the job from every runner but its
// owner at now: it has an owner and has not expired.
func (l Lease) Held(now time.Time) bool { return l.Owner != "" && l.Until.After(now) }

// Checkpoint is the durable progress of a job.
type Checkpoint struct {
	// Cursor continues the job's archive query after the last record of a
	// prefix whose every record was acknowledged by Kafka (or failed);
	// empty before the first.
	Cursor string `json:"cursor,omitempty"`
	// Floors holds, per partition of the target topic, an offset at or
	// below every record of this job that comes after Cursor: where a
	// resumed job looks for the records a crashed run sent after its last
	// checkpoint.
	Floors map[int32]int64 `json:"floors"`
}

// JobStore keeps replay jobs in the archive's database, so that jobs and
// their checkpoints outlive the process running them. Implementations are
// in packages sqlite and postgres; both pass replay/jobstoretest.
type JobStore interface {
	// CreateJob stores a new job, with its lease.
	CreateJob(ctx context.Context, j Job) error
	// UpdateJob writes j's status, counters, checkpoint and finish time
	// over the stored job's, only while the stored job is running and
	// its lease is j.Lease.Owner's: it fails matching [ErrJobFinished]
	// when the job has ended (cancelled by another process, say),
	// [ErrLeaseLost] when another owner holds it, and [ErrJobNotFound]
	// for an unknown id. It leaves the lease as it is. One exception:
	// the lease's owner of a job cancelled elsewhere writes its final
	// counters and checkpoint with j.Status Cancelled and no FinishedAt,
	// once it has stopped; the stored status and finish time stay. A
	// cancel, which has a FinishedAt, is refused as for any ended job.
	UpdateJob(ctx context.Context, j Job) error
	// AcquireJob gives the running job with that id to l.Owner until
	// l.Until, in one atomic step, when no runner holds it at now: its
	// owner is empty, is l.Owner already (which is how a holder renews
	// its lease), or its lease ended at or before now. It returns the job
	// as stored after the change. Otherwise it fails matching
	// [ErrJobHeld], and returns the job as stored, whose Lease names the
	// holder; [ErrJobFinished] for a job that has ended, [ErrJobNotFound]
	// for an unknown id.
	AcquireJob(ctx context.Context, id string, l Lease, now time.Time) (Job, error)
	// ReleaseJob clears the job's lease when owner holds it, so that
	// another runner may take the job over at once; when owner does not
	// hold it there is nothing to release, and no error.
	ReleaseJob(ctx context.Context, id, owner string) error
	// Job returns the job with that id, or an error matching
	// [ErrJobNotFound].
	Job(ctx context.Context, id string) (Job, error)
	// Jobs lists the jobs in status (every job when empty), newest
	// first.
	Jobs(ctx context.Context, status Status) ([]Job, error)
}
