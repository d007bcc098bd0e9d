-- A lease gives a running replay job to one runner (owner) until
-- lease_until, in Unix nanoseconds, so that two processes on one database
-- never both send it. Jobs of older versions have no owner: any runner
-- takes them.

-- +goose Up
ALTER TABLE replay_jobs ADD COLUMN owner TEXT NOT NULL DEFAULT '';
ALTER TABLE replay_jobs ADD COLUMN lease_until INTEGER NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE replay_jobs DROP COLUMN lease_until;
ALTER TABLE replay_jobs DROP COLUMN owner;
