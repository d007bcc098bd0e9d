-- Reports keeps only the typed columns its queries need. Times are Unix
-- microseconds (UTC); amounts are integers in minor units.

-- +goose Up
CREATE TABLE transfers (
	id           TEXT    PRIMARY KEY,
	account      TEXT    NOT NULL, -- the paying account
	counterparty TEXT    NOT NULL,
	amount_minor INTEGER NOT NULL,
	currency     TEXT    NOT NULL,
	status       TEXT    NOT NULL, -- pending, completed, failed
	created_at   INTEGER NOT NULL,
	completed_at INTEGER           -- when it left pending, either way
) WITHOUT ROWID;

-- Per-account volume reads this index alone: it covers the query.
CREATE INDEX transfers_account_volume ON transfers (account, created_at, status, currency, amount_minor);

-- Failed transfers, newest first, page by page.
CREATE INDEX transfers_failed ON transfers (created_at, id) WHERE status = 'failed';

-- Daily totals of completed transfers by completion day (UTC), kept up to
-- date in the transaction that records each completion, so that the query
-- reads a few rows per day however many transfers there are.
CREATE TABLE daily_totals (
	day          TEXT    NOT NULL, -- YYYY-MM-DD
	currency     TEXT    NOT NULL,
	transfers    INTEGER NOT NULL,
	amount_minor INTEGER NOT NULL,
	PRIMARY KEY (day, currency)
) WITHOUT ROWID;

-- The few account fields reports use; the rest is asked of transfers.
CREATE TABLE accounts (
	id          TEXT    PRIMARY KEY,
	holder_name TEXT    NOT NULL,
	country     TEXT    NOT NULL,
	status      TEXT    NOT NULL,
	version     INTEGER NOT NULL,
	updated_at  INTEGER NOT NULL
) WITHOUT ROWID;

-- +goose Down
DROP TABLE accounts;
DROP TABLE daily_totals;
DROP TABLE transfers;
