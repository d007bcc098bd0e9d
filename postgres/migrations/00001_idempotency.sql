-- The idempotency state machine: one record per key.
-- state: 1 claimed, 2 done, 3 released.

-- +goose Up
CREATE TABLE idempotency (
	-- Keys are compared byte-wise: the "C" collation keeps the primary key
	-- index cheap and its order independent of the locale.
	key         text        COLLATE "C" PRIMARY KEY,
	state       smallint    NOT NULL,
	owner       text        NOT NULL,
	token       bigint      NOT NULL,
	attempt     integer     NOT NULL,
	lease_until timestamptz NOT NULL,
	expires_at  timestamptz NOT NULL,
	done_at     timestamptz,
	result      bytea,
	taken_over  boolean     NOT NULL DEFAULT false
);

-- Pruning finds expired records through this index; claims and marks use
-- the primary key only.
CREATE INDEX idempotency_expires_at ON idempotency (expires_at);

-- +goose Down
DROP TABLE idempotency;
