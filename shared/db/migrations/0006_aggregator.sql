-- The aggregator's own state: input positions committed with the figures,
-- worker liveness, what a new partition owner needs to rebuild its memory,
-- and round effort / luck computed from the pool's minute rows.

-- Where each input partition of a consumer group stands, written in the SAME
-- transaction as the figures derived from the records before it: the figures
-- and the position can never disagree, whatever crashes. A writer only moves a
-- row from the value it read when it took the partition (compare-and-set under
-- a row lock), so a member that lost the partition without noticing fails and
-- rolls back instead of counting the records a second time.
CREATE TABLE aggregator_offsets (
    consumer_group    text        NOT NULL CHECK (consumer_group <> ''),
    topic             text        NOT NULL CHECK (topic <> ''),
    partition         integer     NOT NULL CHECK (partition >= 0),
    -- The offset of the next record to process.
    next_offset       bigint      NOT NULL CHECK (next_offset >= 0),
    -- Kafka timestamp of the last record processed: where a new owner starts
    -- re-reading records to warm up its deduplicator (minus the horizon).
    last_record_ts_ms bigint,
    -- Newest share event time of the partition: lateness is judged against it.
    watermark_ms      bigint,
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_group, topic, partition)
);
CREATE TRIGGER aggregator_offsets_touch BEFORE UPDATE ON aggregator_offsets
    FOR EACH ROW EXECUTE FUNCTION chimera_touch_updated_at();

-- Liveness of every worker the aggregator has seen. A worker is online while
-- now() < offline_after: the deadline the aggregator derived from the
-- worker's own share rate (or the time of a disconnect with no connection left).
CREATE TABLE worker_status (
    pool             text        NOT NULL CHECK (pool <> ''),
    miner            text        NOT NULL CHECK (miner <> ''),
    worker           text        NOT NULL DEFAULT '',
    last_share_at    timestamptz,
    offline_after    timestamptz NOT NULL,
    -- NULL: no connection event seen; else whether any node still holds a connection.
    connected        boolean,
    -- Newest connect event and each node's newest connection event
    -- ({"node": [ts_ms, connected]}): what a new owner restores liveness from.
    connected_at     timestamptz,
    connections      jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(connections) = 'object'),
    -- The input partition number the worker's events arrive on (key = miner).
    source_partition integer     NOT NULL CHECK (source_partition >= 0),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (pool, miner, worker)
);
-- Counting online workers (and miners) of a pool: WHERE pool = $1 AND offline_after > now().
CREATE INDEX worker_status_pool_offline_idx ON worker_status (pool, offline_after);
CREATE INDEX worker_status_partition_idx ON worker_status (source_partition);

-- Blocks: when the current status was reported (the ledger orders status
-- events by it) and the input partition, so a new owner restores its ledger.
ALTER TABLE blocks ADD COLUMN status_at timestamptz;
ALTER TABLE blocks ADD COLUMN source_partition integer CHECK (source_partition >= 0);
CREATE INDEX blocks_source_partition_idx ON blocks (source_partition, found_at);

-- Accepted difficulty of a pool between two instants, from its minute rows.
-- A minute only partly inside [p_from, p_to) counts pro rata: the shares of a
-- minute are taken as evenly spread over it, which misplaces at most one
-- minute's work per round boundary in a particular round and nothing on average.
CREATE FUNCTION chimera_pool_work(p_pool text, p_from timestamptz, p_to timestamptz)
RETURNS double precision
LANGUAGE sql STABLE AS $$
    SELECT coalesce(sum(difficulty_accepted
               * extract(epoch FROM least(ts + interval '1 minute', p_to) - greatest(ts, p_from))
               / 60.0), 0)::double precision
    FROM pool_metrics
    WHERE pool = p_pool AND ts > p_from - interval '1 minute' AND ts < p_to;
$$;

-- Effort of every block found at or after p_since: the pool's accepted
-- difficulty since the block before it (any status: an orphaned block still
-- ended the pool's round) over its network difficulty. The pool's first
-- block has no known round start and keeps effort NULL. Rerun as late shares
-- land (up to 24 h late), so the figure converges; returns the rows changed.
CREATE FUNCTION chimera_refresh_block_effort(p_since timestamptz)
RETURNS integer
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    changed integer;
BEGIN
    UPDATE blocks b SET effort = e.effort
    FROM (
        SELECT t.hash,
               chimera_pool_work(t.pool, prev.found_at, t.found_at) / t.network_difficulty AS effort
        FROM blocks t
        CROSS JOIN LATERAL (
            SELECT p.found_at FROM blocks p
            WHERE p.pool = t.pool AND (p.found_at, p.hash) < (t.found_at, t.hash)
            ORDER BY p.found_at DESC, p.hash DESC
            LIMIT 1
        ) prev
        WHERE t.found_at >= p_since
    ) e
    WHERE b.hash = e.hash AND b.effort IS DISTINCT FROM e.effort;
    GET DIAGNOSTICS changed = ROW_COUNT;
    RETURN changed;
END;
$$;

-- Luck over the pool's last p_blocks blocks with a known effort:
-- blocks / sum(effort) (1.0 = as expected, higher = luckier); NULL without any.
CREATE FUNCTION chimera_pool_luck(p_pool text, p_blocks integer)
RETURNS TABLE (blocks integer, luck double precision)
LANGUAGE sql STABLE AS $$
    SELECT count(*)::integer,
           CASE WHEN sum(effort) > 0 THEN count(*) / sum(effort) END
    FROM (
        SELECT effort FROM blocks
        WHERE pool = p_pool AND effort IS NOT NULL
        ORDER BY found_at DESC, hash DESC
        LIMIT p_blocks
    ) recent;
$$;

-- Online miners and workers of a pool at an instant (now() for "currently").
CREATE FUNCTION chimera_active_workers(p_pool text, p_at timestamptz)
RETURNS TABLE (active_miners integer, active_workers integer)
LANGUAGE sql STABLE AS $$
    SELECT count(DISTINCT miner)::integer, count(*)::integer
    FROM worker_status
    WHERE pool = p_pool AND offline_after > p_at;
$$;

-- One batch of the aggregator, in ONE statement (so one round trip: the
-- database works while the aggregator folds the next batch), hence one
-- transaction: the figures and the input offsets they come from commit
-- together or not at all.
--
-- c_*: every (topic, partition) of the batch's partitions with the offset
-- the caller read when it took the partition. The rows are locked in
-- (topic, partition) order; if any moved, another member owns that partition
-- now: nothing is written and the stale partition numbers are returned (the
-- caller drops them and calls again for the rest). Otherwise the rows below
-- are upserted, each set sorted by key by the caller (same lock order for
-- every writer), and '{}' is returned.
-- m_*: miner_metrics deltas (additive; best and last take the max);
-- p_*: pool_metrics deltas (several partitions add to one pool minute);
-- b_*: blocks, absolute (the caller's ledger holds each block's whole state);
-- w_*: worker_status of the touched workers; o_*: the offsets to move to.
-- Times are integer epoch milliseconds.
CREATE FUNCTION chimera_aggregator_write(
    p_group text,
    c_topic text[], c_partition integer[], c_expected bigint[],
    m_pool text[], m_miner text[], m_worker text[], m_minute_ms bigint[], m_accepted bigint[],
    m_rejected bigint[], m_stale bigint[], m_difficulty double precision[],
    m_best double precision[], m_last_ms bigint[], m_blocks integer[],
    p_pool text[], p_minute_ms bigint[], p_accepted bigint[], p_rejected bigint[], p_stale bigint[],
    p_difficulty double precision[], p_best double precision[], p_blocks integer[],
    b_hash text[], b_pool text[], b_height bigint[], b_miner text[], b_worker text[],
    b_network_difficulty double precision[], b_reward double precision[], b_status text[],
    b_found_ms bigint[], b_status_ms bigint[], b_partition integer[],
    w_pool text[], w_miner text[], w_worker text[], w_last_ms bigint[], w_offline_ms bigint[],
    w_connected boolean[], w_connected_ms bigint[], w_connections text[], w_partition integer[],
    o_topic text[], o_partition integer[], o_next bigint[], o_last_ts_ms bigint[], o_watermark_ms bigint[]
)
RETURNS integer[]
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_epoch constant timestamptz := timestamptz '1970-01-01 00:00:00+00';
    v_ms constant interval := interval '1 millisecond';
    v_stale integer[];
BEGIN
    PERFORM 1 FROM aggregator_offsets o
    JOIN unnest(c_topic, c_partition) AS c(topic, partition)
      ON o.topic = c.topic AND o.partition = c.partition
    WHERE o.consumer_group = p_group
    ORDER BY o.topic, o.partition
    FOR UPDATE OF o;
    -- A new statement: sees what a writer we waited for committed.
    SELECT coalesce(array_agg(DISTINCT c.partition), '{}') INTO v_stale
    FROM unnest(c_topic, c_partition, c_expected) AS c(topic, partition, expected)
    LEFT JOIN aggregator_offsets o
      ON o.consumer_group = p_group AND o.topic = c.topic AND o.partition = c.partition
    WHERE o.next_offset IS DISTINCT FROM c.expected;
    IF cardinality(v_stale) > 0 THEN
        RETURN v_stale;
    END IF;

    INSERT INTO miner_metrics AS m (pool, miner, worker, ts, accepted, rejected, stale,
                                    difficulty_accepted, best_difficulty, last_share_at, blocks_found)
    SELECT u.pool, u.miner, u.worker, v_epoch + u.minute_ms * v_ms, u.accepted, u.rejected, u.stale,
           u.difficulty, u.best, v_epoch + u.last_ms * v_ms, u.blocks
    FROM unnest(m_pool, m_miner, m_worker, m_minute_ms, m_accepted, m_rejected, m_stale,
                m_difficulty, m_best, m_last_ms, m_blocks) WITH ORDINALITY
         AS u(pool, miner, worker, minute_ms, accepted, rejected, stale, difficulty, best, last_ms,
              blocks, n)
    ORDER BY u.n
    ON CONFLICT (pool, miner, worker, ts) DO UPDATE SET
        accepted = m.accepted + EXCLUDED.accepted,
        rejected = m.rejected + EXCLUDED.rejected,
        stale = m.stale + EXCLUDED.stale,
        difficulty_accepted = m.difficulty_accepted + EXCLUDED.difficulty_accepted,
        best_difficulty = greatest(m.best_difficulty, EXCLUDED.best_difficulty),
        last_share_at = greatest(m.last_share_at, EXCLUDED.last_share_at),
        blocks_found = m.blocks_found + EXCLUDED.blocks_found;

    INSERT INTO pool_metrics AS p (pool, ts, accepted, rejected, stale, difficulty_accepted,
                                   best_difficulty, blocks_found)
    SELECT u.pool, v_epoch + u.minute_ms * v_ms, u.accepted, u.rejected, u.stale, u.difficulty,
           u.best, u.blocks
    FROM unnest(p_pool, p_minute_ms, p_accepted, p_rejected, p_stale, p_difficulty, p_best,
                p_blocks) WITH ORDINALITY
         AS u(pool, minute_ms, accepted, rejected, stale, difficulty, best, blocks, n)
    ORDER BY u.n
    ON CONFLICT (pool, ts) DO UPDATE SET
        accepted = p.accepted + EXCLUDED.accepted,
        rejected = p.rejected + EXCLUDED.rejected,
        stale = p.stale + EXCLUDED.stale,
        difficulty_accepted = p.difficulty_accepted + EXCLUDED.difficulty_accepted,
        best_difficulty = greatest(p.best_difficulty, EXCLUDED.best_difficulty),
        blocks_found = p.blocks_found + EXCLUDED.blocks_found;

    INSERT INTO blocks AS b (hash, pool, height, miner, worker, network_difficulty, reward,
                             status, found_at, status_at, source_partition)
    SELECT u.hash, u.pool, u.height, u.miner, u.worker, u.network_difficulty, u.reward, u.status,
           v_epoch + u.found_ms * v_ms, v_epoch + u.status_ms * v_ms, u.source_partition
    FROM unnest(b_hash, b_pool, b_height, b_miner, b_worker, b_network_difficulty, b_reward,
                b_status, b_found_ms, b_status_ms, b_partition) WITH ORDINALITY
         AS u(hash, pool, height, miner, worker, network_difficulty, reward, status, found_ms,
              status_ms, source_partition, n)
    ORDER BY u.n
    ON CONFLICT (hash) DO UPDATE SET
        pool = EXCLUDED.pool, height = EXCLUDED.height, miner = EXCLUDED.miner,
        worker = EXCLUDED.worker, network_difficulty = EXCLUDED.network_difficulty,
        reward = EXCLUDED.reward, status = EXCLUDED.status, found_at = EXCLUDED.found_at,
        status_at = EXCLUDED.status_at, source_partition = EXCLUDED.source_partition;

    INSERT INTO worker_status AS w (pool, miner, worker, last_share_at, offline_after, connected,
                                    connected_at, connections, source_partition, updated_at)
    SELECT u.pool, u.miner, u.worker, v_epoch + u.last_ms * v_ms, v_epoch + u.offline_ms * v_ms,
           u.connected, v_epoch + u.connected_ms * v_ms, u.connections::jsonb, u.source_partition, now()
    FROM unnest(w_pool, w_miner, w_worker, w_last_ms, w_offline_ms, w_connected, w_connected_ms,
                w_connections, w_partition) WITH ORDINALITY
         AS u(pool, miner, worker, last_ms, offline_ms, connected, connected_ms, connections,
              source_partition, n)
    ORDER BY u.n
    ON CONFLICT (pool, miner, worker) DO UPDATE SET
        last_share_at = greatest(w.last_share_at, EXCLUDED.last_share_at),
        offline_after = EXCLUDED.offline_after,
        connected = EXCLUDED.connected,
        connected_at = greatest(w.connected_at, EXCLUDED.connected_at),
        connections = EXCLUDED.connections,
        source_partition = EXCLUDED.source_partition,
        updated_at = now();

    UPDATE aggregator_offsets o
    SET next_offset = u.next_offset,
        last_record_ts_ms = coalesce(u.last_ts_ms, o.last_record_ts_ms),
        watermark_ms = greatest(o.watermark_ms, u.watermark_ms)
    FROM unnest(o_topic, o_partition, o_next, o_last_ts_ms, o_watermark_ms)
         AS u(topic, partition, next_offset, last_ts_ms, watermark_ms)
    WHERE o.consumer_group = p_group AND o.topic = u.topic AND o.partition = u.partition;
    RETURN '{}';
END;
$$;
