-- The state transfers owns, and its outbox. Times are Unix microseconds.

-- +goose Up
-- An account is served whole and never queried inside, so its owner keeps
-- it as one document next to the columns it looks it up by.
CREATE TABLE accounts (
	id         TEXT    PRIMARY KEY,
	version    INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	doc        BLOB    NOT NULL
) WITHOUT ROWID;

CREATE TABLE transfers (
	id           TEXT    PRIMARY KEY,
	from_account TEXT    NOT NULL REFERENCES accounts (id),
	to_account   TEXT    NOT NULL REFERENCES accounts (id),
	amount_minor INTEGER NOT NULL CHECK (amount_minor > 0),
	currency     TEXT    NOT NULL,
	status       TEXT    NOT NULL,
	reason       TEXT    NOT NULL DEFAULT '',
	created_at   INTEGER NOT NULL,
	settled_at   INTEGER
) WITHOUT ROWID;

-- The outbox holds the events not yet published; the publisher deletes
-- them once Kafka has them. seq orders it; id is the event id.
CREATE TABLE outbox (
	seq          INTEGER PRIMARY KEY AUTOINCREMENT,
	id           TEXT    NOT NULL UNIQUE,
	topic        TEXT    NOT NULL,
	key          TEXT    NOT NULL,
	type         TEXT    NOT NULL,
	schema       TEXT    NOT NULL DEFAULT '',
	time         INTEGER NOT NULL,
	data         BLOB    NOT NULL
);

-- +goose Down
DROP TABLE outbox;
DROP TABLE transfers;
DROP TABLE accounts;
