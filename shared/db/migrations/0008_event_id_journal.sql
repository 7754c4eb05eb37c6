-- The aggregator's dedup memory, journaled with each batch (services/aggregator/
-- adapters/id_journal.py): per input partition and event type, the 64-bit ids
-- (stable hashes of event_id) and event times the deduplicator was fed, in
-- order, and its watermark afterwards. Written in the batch's own transaction,
-- so it always matches the stored offsets; a new owner of the partition replays
-- the last dedup horizon of it instead of re-reading the records from Kafka.
-- Rows older than the horizon are deleted by the batches that follow.
--
-- hashes and ts_ms are int64 arrays, little-endian, one entry per event.

CREATE TABLE aggregator_event_ids (
    consumer_group text    NOT NULL,
    partition      integer NOT NULL CHECK (partition >= 0),
    kind           text    NOT NULL CHECK (kind IN ('share', 'block', 'miner')),
    seq            bigint  GENERATED ALWAYS AS IDENTITY,
    watermark_ms   bigint  NOT NULL,
    hashes         bytea   NOT NULL,
    ts_ms          bytea   NOT NULL CHECK (length(ts_ms) = length(hashes)),
    PRIMARY KEY (consumer_group, partition, kind, seq)
);
CREATE INDEX aggregator_event_ids_horizon
    ON aggregator_event_ids (consumer_group, partition, kind, watermark_ms);
-- Hashes are random: compressing them is wasted work.
ALTER TABLE aggregator_event_ids ALTER COLUMN hashes SET STORAGE EXTERNAL;
