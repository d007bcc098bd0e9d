-- The time and topic indexes continue with the rest of every query's order
-- (ts, topic, part, off), so that a page is read in index order with no
-- sort of the records that tie on ts.
--
-- The new indexes are built CONCURRENTLY, beside the old ones, so that
-- ingest and queries go on while they build; each statement can run again
-- after an interruption (an interrupted concurrent build leaves an invalid
-- index, which the DROP before it removes).

-- +goose NO TRANSACTION
-- +goose Up
DROP INDEX CONCURRENTLY IF EXISTS lookback_events_ts_order;
CREATE INDEX CONCURRENTLY lookback_events_ts_order ON lookback_events (ts, topic, part, off);
DROP INDEX CONCURRENTLY IF EXISTS lookback_events_ts;
DROP INDEX CONCURRENTLY IF EXISTS lookback_events_topic_order;
CREATE INDEX CONCURRENTLY lookback_events_topic_order ON lookback_events (topic, ts, part, off);
DROP INDEX CONCURRENTLY IF EXISTS lookback_events_topic;

-- +goose Down
DROP INDEX CONCURRENTLY IF EXISTS lookback_events_ts;
CREATE INDEX CONCURRENTLY lookback_events_ts ON lookback_events (ts);
DROP INDEX CONCURRENTLY IF EXISTS lookback_events_ts_order;
DROP INDEX CONCURRENTLY IF EXISTS lookback_events_topic;
CREATE INDEX CONCURRENTLY lookback_events_topic ON lookback_events (topic, ts);
DROP INDEX CONCURRENTLY IF EXISTS lookback_events_topic_order;
