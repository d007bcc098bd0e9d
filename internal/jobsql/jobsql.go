// Package jobsql holds what the SQLite and PostgreSQL replay job stores
// share: the row layout of the replay_jobs table and its statements, with
// one placeholder style per database.
package jobsql

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/eventkit/eventkit/internal/archivesql"
	"github.com/eventkit/eventkit/replay"
)

// Columns are the columns of replay_jobs in the order of Args and Scan.
const Columns = "id, status, created_by, created_at, finished_at, matched, sent, failed, spec, checkpoint, owner, lease_until"

// Statements are the store's SQL in one database's placeholders.
type Statements struct {
	Insert, Update, Acquire, Release, Get, List, ListStatus string
}

// New returns the statements with param(n) as the n-th placeholder
// (1-based).
func New(param func(n int) string) Statements {
	p := param
	return Statements{
		Insert: "INSERT INTO replay_jobs (" + Columns + ") VALUES (" + p(1) + ", " + p(2) + ", " + p(3) + ", " + p(4) + ", " +
			p(5) + ", " + p(6) + ", " + p(7) + ", " + p(8) + ", " + p(9) + ", " + p(10) + ", " + p(11) + ", " + p(12) + ")",
		// Only a running job moves, and only by its lease's owner: a job
		// cancelled elsewhere stays so, and a runner whose job was taken
		// over cannot write over the new owner's progress. The owner of a
		// job cancelled elsewhere still records its final counts, with no
		// finish time (status and finish time stay the cancel's): a
		// second cancel, which has one, is refused.
		Update: "UPDATE replay_jobs SET status = CASE WHEN status = 'running' THEN CAST(" + p(2) + " AS TEXT) ELSE status END" +
			", finished_at = CASE WHEN status = 'running' THEN CAST(" + p(3) + " AS BIGINT) ELSE finished_at END" +
			", matched = " + p(4) + ", sent = " + p(5) + ", failed = " + p(6) + ", checkpoint = " + p(7) +
			" WHERE id = " + p(1) + " AND owner = " + p(8) + " AND (status = 'running' OR (status = 'cancelled' AND CAST(" + p(2) +
			" AS TEXT) = 'cancelled' AND CAST(" + p(3) + " AS BIGINT) IS NULL))",
		// One statement, so that of two runners taking over an expired
		// lease at once exactly one gets the row: SQLite has one writer,
		// and PostgreSQL checks the WHERE again on the row the first
		// writer left.
		Acquire: "UPDATE replay_jobs SET owner = " + p(2) + ", lease_until = " + p(3) + " WHERE id = " + p(1) +
			" AND status = 'running' AND (owner = '' OR owner = " + p(2) + " OR lease_until <= " + p(4) + ") RETURNING " + Columns,
		Release:    "UPDATE replay_jobs SET owner = '', lease_until = 0 WHERE id = " + p(1) + " AND owner = " + p(2),
		Get:        "SELECT " + Columns + " FROM replay_jobs WHERE id = " + p(1),
		List:       "SELECT " + Columns + " FROM replay_jobs ORDER BY created_at DESC, id DESC",
		ListStatus: "SELECT " + Columns + " FROM replay_jobs WHERE status = " + p(1) + " ORDER BY created_at DESC, id DESC",
	}
}

// InsertArgs are the arguments of Insert.
func InsertArgs(j replay.Job) ([]any, error) {
	spec, err := json.Marshal(j.Spec)
	if err != nil {
		return nil, fmt.Errorf("replay job %s: spec: %w", j.ID, err)
	}
	ck, err := json.Marshal(j.Checkpoint)
	if err != nil {
		return nil, fmt.Errorf("replay job %s: checkpoint: %w", j.ID, err)
	}
	return []any{j.ID, string(j.Status), j.CreatedBy, j.CreatedAt.UnixNano(), finished(j), j.Matched, j.Sent, j.Failed, string(spec), string(ck),
		j.Lease.Owner, until(j.Lease)}, nil
}

// UpdateArgs are the arguments of Update.
func UpdateArgs(j replay.Job) ([]any, error) {
	ck, err := json.Marshal(j.Checkpoint)
	if err != nil {
		return nil, fmt.Errorf("replay job %s: checkpoint: %w", j.ID, err)
	}
	return []any{j.ID, string(j.Status), finished(j), j.Matched, j.Sent, j.Failed, string(ck), j.Lease.Owner}, nil
}

// AcquireArgs are the arguments of Acquire.
func AcquireArgs(id string, l replay.Lease, now time.Time) []any {
	return []any{id, l.Owner, until(l), now.UnixNano()}
}

// until is the lease's end in Unix nanoseconds; 0 for none, which the
// zero time would not give.
func until(l replay.Lease) int64 {
	if l.Until.IsZero() {
		return 0
	}
	return l.Until.UnixNano()
}

func finished(j replay.Job) *int64 {
	if j.FinishedAt == nil {
		return nil
	}
	ns := j.FinishedAt.UnixNano()
	return &ns
}

// Reader answers the store's reads the same way on either database.
type Reader struct {
	Conn  archivesql.Conn
	Stmts Statements
	// NoRows is the driver's error for a QueryRow that found nothing.
	NoRows error
}

// Job implements [replay.JobStore.Job].
func (r Reader) Job(ctx context.Context, id string) (replay.Job, error) {
	j, err := Scan(r.Conn.QueryRow(ctx, r.Stmts.Get, id))
	if errors.Is(err, r.NoRows) {
		return j, fmt.Errorf("replay job %s: %w", id, replay.ErrJobNotFound)
	}
	return j, err
}

// Jobs implements [replay.JobStore.Jobs].
func (r Reader) Jobs(ctx context.Context, status replay.Status) ([]replay.Job, error) {
	stmt, args := r.Stmts.List, []any(nil)
	if status != "" {
		stmt, args = r.Stmts.ListStatus, []any{string(status)}
	}
	rows, err := r.Conn.Query(ctx, stmt, args...)
	if err != nil {
		return nil, fmt.Errorf("replay jobs: %w", err)
	}
	defer rows.Close()
	var out []replay.Job
	for rows.Next() {
		j, err := Scan(rows)
		if err != nil {
			return nil, fmt.Errorf("replay jobs: %w", err)
		}
		out = append(out, j)
	}
	return out, rows.Err()
}

// Unchanged is the error of an update by owner that changed nothing: the
// job is unknown, no longer running, or held by another owner.
func (r Reader) Unchanged(ctx context.Context, id, owner string) error {
	j, err := r.Job(ctx, id)
	switch {
	case err != nil:
		return err
	case j.Status != replay.Running:
		return fmt.Errorf("replay job %s is %s: %w", id, j.Status, replay.ErrJobFinished)
	case j.Lease.Owner != owner:
		return fmt.Errorf("replay job %s is held by %s, not by %s: %w", id, holder(j.Lease.Owner), holder(owner), replay.ErrLeaseLost)
	}
	// Moved back meanwhile: the update found it otherwise.
	return fmt.Errorf("replay job %s changed during the update: %w", id, replay.ErrLeaseLost)
}

func holder(owner string) string {
	if owner == "" {
		return "no runner"
	}
	return owner
}

// Acquire implements [replay.JobStore.AcquireJob] with Acquire on the
// database's writer w.
func (r Reader) Acquire(ctx context.Context, w archivesql.Conn, id string, l replay.Lease, now time.Time) (replay.Job, error) {
	// A lease released or expired between a refused acquire and the read
	// that explains it would be reported held by no one: try again.
	for range 3 {
		j, err := Scan(w.QueryRow(ctx, r.Stmts.Acquire, AcquireArgs(id, l, now)...))
		if !errors.Is(err, r.NoRows) {
			if err != nil {
				return j, fmt.Errorf("replay job %s: acquire: %w", id, err)
			}
			return j, nil
		}
		if j, err = r.Job(ctx, id); err != nil {
			return j, err
		}
		if j.Status != replay.Running {
			return j, fmt.Errorf("replay job %s is %s: %w", id, j.Status, replay.ErrJobFinished)
		}
		if j.Lease.Held(now) && j.Lease.Owner != l.Owner {
			return j, fmt.Errorf("replay job %s is held by %s until %s: %w", id, j.Lease.Owner, j.Lease.Until.Format(time.RFC3339Nano), replay.ErrJobHeld)
		}
	}
	return replay.Job{}, fmt.Errorf("replay job %s: acquire: its lease keeps changing", id)
}

// Scan reads a row of Columns.
func Scan(row archivesql.Scanner) (replay.Job, error) {
	var (
		j                replay.Job
		status           string
		createdAt        int64
		finishedAt       *int64
		spec, checkpoint string
		leaseUntil       int64
	)
	if err := row.Scan(&j.ID, &status, &j.CreatedBy, &createdAt, &finishedAt, &j.Matched, &j.Sent, &j.Failed, &spec, &checkpoint,
		&j.Lease.Owner, &leaseUntil); err != nil {
		return j, err
	}
	if leaseUntil != 0 {
		j.Lease.Until = time.Unix(0, leaseUntil)
	}
	j.Status = replay.Status(status)
	j.CreatedAt = time.Unix(0, createdAt)
	if finishedAt != nil {
		t := time.Unix(0, *finishedAt)
		j.FinishedAt = &t
	}
	if err := json.Unmarshal([]byte(spec), &j.Spec); err != nil {
		return j, fmt.Errorf("replay job %s: spec: %w", j.ID, err)
	}
	if err := json.Unmarshal([]byte(checkpoint), &j.Checkpoint); err != nil {
		return j, fmt.Errorf("replay job %s: checkpoint: %w", j.ID, err)
	}
	j.Target, j.Mode = j.Spec.Target, j.Spec.Mode
	return j, nil
}
