-- The PostgreSQL form of sqlite/00001_reports.sql: the same tables and
-- indexes, with BIGINT where SQLite's INTEGER is 64 bits anyway, and ids in
-- the "C" collation so that they sort (and page) by byte as in SQLite.

-- +goose Up
CREATE TABLE transfers (
	id           TEXT COLLATE "C" PRIMARY KEY,
	account      TEXT COLLATE "C" NOT NULL,
	counterparty TEXT   NOT NULL,
	amount_minor BIGINT NOT NULL,
	currency     TEXT   NOT NULL,
	status       TEXT   NOT NULL,
	created_at   BIGINT NOT NULL,
	completed_at BIGINT
);

CREATE INDEX transfers_account_volume ON transfers (account, created_at, status, currency, amount_minor);

CREATE INDEX transfers_failed ON transfers (created_at, id) WHERE status = 'failed';

CREATE TABLE daily_totals (
	day          TEXT COLLATE "C" NOT NULL,
	currency     TEXT COLLATE "C" NOT NULL,
	transfers    BIGINT NOT NULL,
	amount_minor BIGINT NOT NULL,
	PRIMARY KEY (day, currency)
);

CREATE TABLE accounts (
	id          TEXT COLLATE "C" PRIMARY KEY,
	holder_name TEXT   NOT NULL,
	country     TEXT   NOT NULL,
	status      TEXT   NOT NULL,
	version     BIGINT NOT NULL,
	updated_at  BIGINT NOT NULL
);

-- +goose Down
DROP TABLE accounts;
DROP TABLE daily_totals;
DROP TABLE transfers;
