-- The lookback archive and the audit log. Times are Unix nanoseconds in a
-- bigint: timestamptz keeps microseconds, and a cursor must compare
-- exactly.
--
-- Retention: one table with a b-tree on ts, deleted oldest first in
-- chunks (DeleteBefore's limit). The index on ts is needed anyway, to serve
-- time ranges and the order of every query; each chunk holds its locks
-- briefly and autovacuum reclaims the space in the background. Daily
-- partitions would make retention a DROP, but they would put ts into every
-- unique key (so that (topic, part, off) could no longer be unique on its
-- own) and need partitions made ahead of the data; at the rates one
-- lookback node ingests, chunked deletes keep up.
--
-- PostgreSQL refuses b-tree entries above about 2.7 kB, and a record's key
-- or attributes may be that long: the indexes hold the first 256 bytes of
-- them, and queries match that prefix and then the whole value, so that no
-- record can fail to be archived. Attributes and header names are bytea,
-- because text refuses the NUL bytes and invalid UTF-8 that a malformed
-- record may carry.

-- +goose Up
CREATE TABLE lookback_events (
	seq          bigint  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	topic        text    COLLATE "C" NOT NULL,
	part         integer NOT NULL,
	off          bigint  NOT NULL,
	ts           bigint  NOT NULL,
	key          bytea,
	value        bytea,
	headers      bytea,
	ce_id        bytea,
	ce_type      bytea,
	ce_source    bytea,
	ce_subject   bytea,
	ce_time      bigint,
	content_type bytea,
	specversion  bytea,
	UNIQUE (topic, part, off)
);

-- Every query orders by (ts, topic, part, off); an index that leads with a
-- filter's column and continues with ts serves the filter and the order
-- (PostgreSQL sorts incrementally only the records that tie on ts).
CREATE INDEX lookback_events_ts ON lookback_events (ts);
CREATE INDEX lookback_events_topic ON lookback_events (topic, ts);
CREATE INDEX lookback_events_key ON lookback_events (substr(key, 1, 256), ts) WHERE key IS NOT NULL;
CREATE INDEX lookback_events_id ON lookback_events (substr(ce_id, 1, 256)) WHERE ce_id IS NOT NULL;
CREATE INDEX lookback_events_type ON lookback_events (substr(ce_type, 1, 256), ts) WHERE ce_type IS NOT NULL;
CREATE INDEX lookback_events_source ON lookback_events (substr(ce_source, 1, 256), ts) WHERE ce_source IS NOT NULL;
CREATE INDEX lookback_events_subject ON lookback_events (substr(ce_subject, 1, 256), ts) WHERE ce_subject IS NOT NULL;

-- Header filters: every header that no column of lookback_events holds.
CREATE TABLE lookback_headers (
	seq   bigint NOT NULL,
	name  bytea  NOT NULL,
	value bytea  NOT NULL
);
CREATE INDEX lookback_headers_match ON lookback_headers (substr(name, 1, 256), substr(value, 1, 256));
CREATE INDEX lookback_headers_seq ON lookback_headers (seq);

-- Records per partition, kept by Append and DeleteBefore, so that the
-- topic list does not count millions of rows.
CREATE TABLE lookback_partitions (
	topic text    COLLATE "C" NOT NULL,
	part  integer NOT NULL,
	count bigint  NOT NULL,
	PRIMARY KEY (topic, part)
);

-- Replayed records, keyed by their own coordinates, found by their origin.
CREATE TABLE lookback_links (
	topic        text    COLLATE "C" NOT NULL,
	part         integer NOT NULL,
	off          bigint  NOT NULL,
	ts           bigint  NOT NULL,
	replay_id    text    NOT NULL,
	mode         text    NOT NULL,
	origin_topic text    COLLATE "C" NOT NULL,
	origin_part  integer NOT NULL,
	origin_off   bigint  NOT NULL,
	PRIMARY KEY (topic, part, off)
);
CREATE INDEX lookback_links_origin ON lookback_links (origin_topic, origin_part, origin_off, ts);
CREATE INDEX lookback_links_ts ON lookback_links (ts);

CREATE TABLE lookback_audit (
	id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	at      bigint NOT NULL,
	actor   text   NOT NULL,
	role    text   NOT NULL,
	action  text   NOT NULL,
	target  text   NOT NULL,
	detail  text   NOT NULL,
	outcome text   NOT NULL
);
CREATE INDEX lookback_audit_actor ON lookback_audit (actor, id);
CREATE INDEX lookback_audit_action ON lookback_audit (action, id);

-- +goose Down
DROP TABLE lookback_audit;
DROP TABLE lookback_links;
DROP TABLE lookback_partitions;
DROP TABLE lookback_headers;
DROP TABLE lookback_events;
