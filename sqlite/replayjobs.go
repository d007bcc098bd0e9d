package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"time"

	"github.com/eventkit/eventkit/internal/jobsql"
	"github.com/eventkit/eventkit/replay"
)

// JobStore is a [replay.JobStore] in the database's replay_jobs table,
// next to the archive the jobs read.
type JobStore struct{ db *DB }

// NewJobStore returns the job store in db. It starts nothing and needs no
// Close.
func NewJobStore(db *DB) *JobStore { return &JobStore{db: db} }

var _ replay.JobStore = (*JobStore)(nil)

// Numbered placeholders, since the statements name their arguments out of
// order.
var jobStmts = jobsql.New(func(n int) string { return "?" + strconv.Itoa(n) })

// CreateJob implements [replay.JobStore].
func (s *JobStore) CreateJob(ctx context.Context, j replay.Job) error {
	args, err := jobsql.InsertArgs(j)
	if err != nil {
		return err
	}
	if _, err := s.db.write.ExecContext(ctx, jobStmts.Insert, args...); err != nil {
		return fmt.Errorf("replay job %s: create: %w", j.ID, err)
	}
	return nil
}

// UpdateJob implements [replay.JobStore].
func (s *JobStore) UpdateJob(ctx context.Context, j replay.Job) error {
	args, err := jobsql.UpdateArgs(j)
	if err != nil {
		return err
	}
	res, err := s.db.write.ExecContext(ctx, jobStmts.Update, args...)
	if err != nil {
		return fmt.Errorf("replay job %s: update: %w", j.ID, err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 1 {
		return err
	}
	return s.reader().Unchanged(ctx, j.ID, j.Lease.Owner)
}

// AcquireJob implements [replay.JobStore].
func (s *JobStore) AcquireJob(ctx context.Context, id string, l replay.Lease, now time.Time) (replay.Job, error) {
	return s.reader().Acquire(ctx, sqlConn{s.db.write}, id, l, now)
}

// ReleaseJob implements [replay.JobStore].
func (s *JobStore) ReleaseJob(ctx context.Context, id, owner string) error {
	if _, err := s.db.write.ExecContext(ctx, jobStmts.Release, id, owner); err != nil {
		return fmt.Errorf("replay job %s: release: %w", id, err)
	}
	return nil
}

// Job implements [replay.JobStore].
func (s *JobStore) Job(ctx context.Context, id string) (replay.Job, error) {
	return s.reader().Job(ctx, id)
}

// Jobs implements [replay.JobStore].
func (s *JobStore) Jobs(ctx context.Context, status replay.Status) ([]replay.Job, error) {
	return s.reader().Jobs(ctx, status)
}

func (s *JobStore) reader() jobsql.Reader {
	return jobsql.Reader{Conn: sqlConn{s.db.read}, Stmts: jobStmts, NoRows: sql.ErrNoRows}
}
