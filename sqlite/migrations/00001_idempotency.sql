-- The idempotency state machine: one record per key. Times are Unix
-- nanoseconds. state: 1 claimed, 2 done, 3 released.

-- +goose Up
CREATE TABLE idempotency (
	key         TEXT    PRIMARY KEY,
	state       INTEGER NOT NULL,
	owner       TEXT    NOT NULL,
	token       INTEGER NOT NULL,
	attempt     INTEGER NOT NULL,
	lease_until INTEGER NOT NULL,
	expires_at  INTEGER NOT NULL,
	done_at     INTEGER,
	result      BLOB,
	taken_over  INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

-- Pruning finds expired records through this index.
CREATE INDEX idempotency_expires_at ON idempotency (expires_at);

-- +goose Down
DROP TABLE idempotency;
