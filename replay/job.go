package replay

import (
	"context"
	"errors"
	"fmt"
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
	if s.Rate < 0 {
		problems = append(problems, fmt.Sprintf("rate %g: want 0 (no limit) or more", s.Rate))
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
}

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
	// CreateJob stores a new job.
	CreateJob(ctx context.Context, j Job) error
	// UpdateJob writes j's status, counters, checkpoint and finish time
	// over the stored job's, only while the stored job is running: it
	// fails matching [ErrJobFinished] otherwise (cancelled by another
	// process, say), and [ErrJobNotFound] for an unknown id.
	UpdateJob(ctx context.Context, j Job) error
	// Job returns the job with that id, or an error matching
	// [ErrJobNotFound].
	Job(ctx context.Context, id string) (Job, error)
	// Jobs lists the jobs in status (every job when empty), newest
	// first.
	Jobs(ctx context.Context, status Status) ([]Job, error)
}
