-- The lookback archive and the audit log. Times are Unix nanoseconds.

-- +goose Up
-- One row per archived record. seq is the rowid, which the header index
-- refers to; the coordinates are unique, so that ingesting a record twice
-- stores it once. Empty attributes are NULL and stay out of the partial
-- indexes. specversion only answers header filters on ce_specversion.
CREATE TABLE lookback_events (
	seq          INTEGER PRIMARY KEY,
	topic        TEXT    NOT NULL,
	part         INTEGER NOT NULL,
	off          INTEGER NOT NULL,
	ts           INTEGER NOT NULL,
	key          BLOB,
	value        BLOB,
	headers      BLOB,
	ce_id        TEXT,
	ce_type      TEXT,
	ce_source    TEXT,
	ce_subject   TEXT,
	ce_time      INTEGER,
	content_type TEXT,
	specversion  TEXT
);

-- Every query orders by (ts, topic, part, off); an index that leads with a
-- filter's column and continues with ts serves the filter and the order,
-- and SQLite sorts only the records that share a timestamp.
CREATE UNIQUE INDEX lookback_events_coords ON lookback_events (topic, part, off);
CREATE INDEX lookback_events_ts ON lookback_events (ts);
CREATE INDEX lookback_events_topic ON lookback_events (topic, ts);
CREATE INDEX lookback_events_key ON lookback_events (key, ts) WHERE key IS NOT NULL;
CREATE INDEX lookback_events_id ON lookback_events (ce_id) WHERE ce_id IS NOT NULL;
CREATE INDEX lookback_events_type ON lookback_events (ce_type, ts) WHERE ce_type IS NOT NULL;
CREATE INDEX lookback_events_source ON lookback_events (ce_source, ts) WHERE ce_source IS NOT NULL;
CREATE INDEX lookback_events_subject ON lookback_events (ce_subject, ts) WHERE ce_subject IS NOT NULL;

-- Header filters: every header that no column of lookback_events holds.
CREATE TABLE lookback_headers (
	name  TEXT    NOT NULL,
	value BLOB    NOT NULL,
	seq   INTEGER NOT NULL,
	PRIMARY KEY (name, value, seq)
) WITHOUT ROWID;
CREATE INDEX lookback_headers_seq ON lookback_headers (seq);

-- Records per partition, kept by Append and DeleteBefore, so that the
-- topic list does not count millions of rows.
CREATE TABLE lookback_partitions (
	topic TEXT    NOT NULL,
	part  INTEGER NOT NULL,
	count INTEGER NOT NULL,
	PRIMARY KEY (topic, part)
) WITHOUT ROWID;

-- Replayed records, keyed by their own coordinates, found by their origin.
CREATE TABLE lookback_links (
	topic        TEXT    NOT NULL,
	part         INTEGER NOT NULL,
	off          INTEGER NOT NULL,
	ts           INTEGER NOT NULL,
	replay_id    TEXT    NOT NULL,
	mode         TEXT    NOT NULL,
	origin_topic TEXT    NOT NULL,
	origin_part  INTEGER NOT NULL,
	origin_off   INTEGER NOT NULL,
	PRIMARY KEY (topic, part, off)
);
CREATE INDEX lookback_links_origin ON lookback_links (origin_topic, origin_part, origin_off, ts);
CREATE INDEX lookback_links_ts ON lookback_links (ts);

CREATE TABLE lookback_audit (
	id      INTEGER PRIMARY KEY AUTOINCREMENT,
	at      INTEGER NOT NULL,
	actor   TEXT    NOT NULL,
	role    TEXT    NOT NULL,
	action  TEXT    NOT NULL,
	target  TEXT    NOT NULL,
	detail  TEXT    NOT NULL,
	outcome TEXT    NOT NULL
);
CREATE INDEX lookback_audit_actor ON lookback_audit (actor, id);
CREATE INDEX lookback_audit_action ON lookback_audit (action, id);

-- +goose Down
DROP TABLE lookback_audit;
DROP TABLE lookback_links;
DROP TABLE lookback_partitions;
DROP TABLE lookback_headers;
DROP TABLE lookback_events;
