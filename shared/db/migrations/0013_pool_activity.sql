-- Active miners and workers per minute (services/aggregator/domain/activity.py,
-- docs/aggregator.md "Active miners and workers"): the aggregator counts them
-- exactly once from the share stream and adds them to pool_metrics in the same
-- transaction as the other figures. Each worker's share-minutes (the state that
-- keeps the counts exact across restarts and late shares) are stored beside its
-- liveness row: the first minute as epoch ms and the minutes as little-endian bits.
-- The batch write function takes the new columns (two pool, two worker arrays).

ALTER TABLE worker_status
    ADD COLUMN active_base_ms bigint,
    ADD COLUMN active_minutes bytea;

DROP FUNCTION chimera_aggregator_write(
    text, text[], integer[], bigint[],
    text[], text[], text[], bigint[], bigint[], bigint[], bigint[], double precision[],
    double precision[], bigint[], integer[],
    text[], bigint[], bigint[], bigint[], bigint[], double precision[], double precision[], integer[],
    text[], text[], bigint[], text[], text[], double precision[], double precision[], text[],
    bigint[], bigint[], integer[],
    text[], text[], text[], bigint[], bigint[], boolean[], bigint[], text[], integer[],
    text[], integer[], bigint[], bigint[], bigint[]);

CREATE FUNCTION chimera_aggregator_write(
    p_group text,
    c_topic text[], c_partition integer[], c_expected bigint[],
    m_pool text[], m_miner text[], m_worker text[], m_minute_ms bigint[], m_accepted bigint[],
    m_rejected bigint[], m_stale bigint[], m_difficulty double precision[],
    m_best double precision[], m_last_ms bigint[], m_blocks integer[],
    p_pool text[], p_minute_ms bigint[], p_accepted bigint[], p_rejected bigint[], p_stale bigint[],
    p_difficulty double precision[], p_best double precision[], p_blocks integer[],
    p_active_miners integer[], p_active_workers integer[],
    b_hash text[], b_pool text[], b_height bigint[], b_miner text[], b_worker text[],
    b_network_difficulty double precision[], b_reward double precision[], b_status text[],
    b_found_ms bigint[], b_status_ms bigint[], b_partition integer[],
    w_pool text[], w_miner text[], w_worker text[], w_last_ms bigint[], w_offline_ms bigint[],
    w_connected boolean[], w_connected_ms bigint[], w_connections text[], w_partition integer[],
    w_active_base_ms bigint[], w_active_minutes bytea[],
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
                                   best_difficulty, blocks_found, active_miners, active_workers)
    SELECT u.pool, v_epoch + u.minute_ms * v_ms, u.accepted, u.rejected, u.stale, u.difficulty,
           u.best, u.blocks, u.active_miners, u.active_workers
    FROM unnest(p_pool, p_minute_ms, p_accepted, p_rejected, p_stale, p_difficulty, p_best,
                p_blocks, p_active_miners, p_active_workers) WITH ORDINALITY
         AS u(pool, minute_ms, accepted, rejected, stale, difficulty, best, blocks, active_miners,
              active_workers, n)
    ORDER BY u.n
    ON CONFLICT (pool, ts) DO UPDATE SET
        accepted = p.accepted + EXCLUDED.accepted,
        rejected = p.rejected + EXCLUDED.rejected,
        stale = p.stale + EXCLUDED.stale,
        difficulty_accepted = p.difficulty_accepted + EXCLUDED.difficulty_accepted,
        best_difficulty = greatest(p.best_difficulty, EXCLUDED.best_difficulty),
        blocks_found = p.blocks_found + EXCLUDED.blocks_found,
        active_miners = p.active_miners + EXCLUDED.active_miners,
        active_workers = p.active_workers + EXCLUDED.active_workers;

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
                                    connected_at, connections, source_partition, updated_at,
                                    active_base_ms, active_minutes)
    SELECT u.pool, u.miner, u.worker, v_epoch + u.last_ms * v_ms, v_epoch + u.offline_ms * v_ms,
           u.connected, v_epoch + u.connected_ms * v_ms, u.connections::jsonb, u.source_partition, now(),
           u.active_base_ms, u.active_minutes
    FROM unnest(w_pool, w_miner, w_worker, w_last_ms, w_offline_ms, w_connected, w_connected_ms,
                w_connections, w_partition, w_active_base_ms, w_active_minutes) WITH ORDINALITY
         AS u(pool, miner, worker, last_ms, offline_ms, connected, connected_ms, connections,
              source_partition, active_base_ms, active_minutes, n)
    ORDER BY u.n
    ON CONFLICT (pool, miner, worker) DO UPDATE SET
        last_share_at = greatest(w.last_share_at, EXCLUDED.last_share_at),
        offline_after = EXCLUDED.offline_after,
        connected = EXCLUDED.connected,
        connected_at = greatest(w.connected_at, EXCLUDED.connected_at),
        connections = EXCLUDED.connections,
        source_partition = EXCLUDED.source_partition,
        updated_at = now(),
        active_base_ms = coalesce(EXCLUDED.active_base_ms, w.active_base_ms),
        active_minutes = coalesce(EXCLUDED.active_minutes, w.active_minutes);

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

