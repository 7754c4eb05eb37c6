-- Idempotent persistence of the metrics API (POST /api/metrics*).
--
-- The API gives every accepted sample a random uuid that travels with it in
-- its Kafka envelope; the persister inserts with ON CONFLICT DO NOTHING on it,
-- so a batch re-delivered after a crash (stored, offsets not yet committed)
-- adds no second row. A unique index on a partitioned table must contain the
-- partition key, hence (id, ts): a re-delivered envelope repeats both.
-- Rows written before this migration keep id NULL, and NULLs never conflict.
-- miner_metrics needs nothing: the API's reported columns are upserted on its
-- primary key, which is idempotent by itself.
ALTER TABLE metrics ADD COLUMN id uuid;
ALTER TABLE performance_metrics ADD COLUMN id uuid;
CREATE UNIQUE INDEX metrics_id_ts_key ON metrics (id, ts);
CREATE UNIQUE INDEX performance_metrics_id_ts_key ON performance_metrics (id, ts);
