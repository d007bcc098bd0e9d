package postgres

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/eventkit/eventkit/internal/archivesql"
	"github.com/eventkit/eventkit/internal/jobsql"
	"github.com/eventkit/eventkit/replay"
	"github.com/jackc/pgx/v5"
)

// JobStore is a [replay.JobStore] in the database's replay_jobs table,
// next to the archive the jobs read.
type JobStore struct{ db *DB }

// NewJobStore returns the job store in db. It starts nothing and needs no
// Close.
func NewJobStore(db *DB) *JobStore { return &JobStore{db: db} }

var _ replay.JobStore = (*JobStore)(nil)

var jobStmts = jobsql.New(func(n int) string { return "$" + strconv.Itoa(n) })

// CreateJob implements [replay.JobStore].
func (s *JobStore) CreateJob(ctx context.Context, j replay.Job) error {
	j.CreatedBy = text(j.CreatedBy)
	args, err := jobsql.InsertArgs(j)
	if err != nil {
		return err
	}
	if _, err := s.db.pool.Exec(ctx, jobStmts.Insert, args...); err != nil {
		return fmt.Errorf("replay job %s: create: %w", j.ID, err)
	}
	return nil
}

// UpdateJob implements [replay.JobStore].
func (s *JobStore) UpdateJob(ctx context.Context, j replay.Job) error {
	if !archivesql.Storable(j.ID) {
		return fmt.Errorf("replay job %s: %w", j.ID, replay.ErrJobNotFound)
	}
	args, err := jobsql.UpdateArgs(j)
	if err != nil {
		return err
	}
	tag, err := s.db.pool.Exec(ctx, jobStmts.Update, args...)
	if err != nil {
		return fmt.Errorf("replay job %s: update: %w", j.ID, err)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	return s.reader().Unchanged(ctx, j.ID, j.Lease.Owner)
}

// AcquireJob implements [replay.JobStore].
func (s *JobStore) AcquireJob(ctx context.Context, id string, l replay.Lease, now time.Time) (replay.Job, error) {
	if !archivesql.Storable(id) {
		return replay.Job{}, fmt.Errorf("replay job %s: %w", id, replay.ErrJobNotFound)
	}
	return s.reader().Acquire(ctx, pgConn{s.db.pool}, id, l, now)
}

// ReleaseJob implements [replay.JobStore].
func (s *JobStore) ReleaseJob(ctx context.Context, id, owner string) error {
	if !archivesql.Storable(id) {
		return nil // no such job: nothing to release
	}
	if _, err := s.db.pool.Exec(ctx, jobStmts.Release, id, owner); err != nil {
		return fmt.Errorf("replay job %s: release: %w", id, err)
	}
	return nil
}

// Job implements [replay.JobStore].
func (s *JobStore) Job(ctx context.Context, id string) (replay.Job, error) {
	if !archivesql.Storable(id) {
		return replay.Job{}, fmt.Errorf("replay job %s: %w", id, replay.ErrJobNotFound)
	}
	return s.reader().Job(ctx, id)
}

// Jobs implements [replay.JobStore].
func (s *JobStore) Jobs(ctx context.Context, status replay.Status) ([]replay.Job, error) {
	return s.reader().Jobs(ctx, status)
}

func (s *JobStore) reader() jobsql.Reader {
	return jobsql.Reader{Conn: pgConn{s.db.pool}, Stmts: jobStmts, NoRows: pgx.ErrNoRows}
}
