-- Replay jobs, so that a job and its checkpoint outlive the process running
-- it. Times are Unix nanoseconds; spec and checkpoint are JSON.

-- +goose Up
CREATE TABLE replay_jobs (
	id          TEXT    PRIMARY KEY,
	status      TEXT    NOT NULL,
	created_by  TEXT    NOT NULL,
	created_at  INTEGER NOT NULL,
	finished_at INTEGER,
	matched     INTEGER NOT NULL,
	sent        INTEGER NOT NULL,
	failed      INTEGER NOT NULL,
	spec        TEXT    NOT NULL,
	checkpoint  TEXT    NOT NULL
);
-- A starting runner looks for the running jobs; lists show newest first.
CREATE INDEX replay_jobs_status ON replay_jobs (status, created_at);
CREATE INDEX replay_jobs_created_at ON replay_jobs (created_at);

-- +goose Down
DROP TABLE replay_jobs;
