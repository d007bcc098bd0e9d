-- Replay jobs, so that a job and its checkpoint outlive the process running
-- it. Times are Unix nanoseconds; spec and checkpoint are JSON.

-- +goose Up
CREATE TABLE replay_jobs (
	id          text    PRIMARY KEY,
	status      text    NOT NULL,
	created_by  text    NOT NULL,
	created_at  bigint  NOT NULL,
	finished_at bigint,
	matched     bigint  NOT NULL,
	sent        bigint  NOT NULL,
	failed      bigint  NOT NULL,
	spec        text    NOT NULL,
	checkpoint  text    NOT NULL
);
-- A starting runner looks for the running jobs; lists show newest first.
CREATE INDEX replay_jobs_status ON replay_jobs (status, created_at);
CREATE INDEX replay_jobs_created_at ON replay_jobs (created_at);

-- +goose Down
DROP TABLE replay_jobs;
