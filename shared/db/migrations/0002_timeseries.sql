-- The four time-series tables: range-partitioned by ts into UTC days (see
-- 0001_functions.sql), each with a DEFAULT partition as a safety net. Daily
-- partitions themselves are created by chimera_ensure_partitions, which
-- `chimera migrate` and `chimera retention` call.

-- Generic named samples (ingest API, exporters).
CREATE TABLE metrics (
    name   text             NOT NULL CHECK (name <> ''),
    value  double precision NOT NULL,
    labels jsonb            NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(labels) = 'object'),
    type   text             NOT NULL DEFAULT 'gauge'
                            CHECK (type IN ('gauge', 'counter', 'histogram')),
    ts     timestamptz      NOT NULL
) PARTITION BY RANGE (ts);
CREATE TABLE metrics_default PARTITION OF metrics DEFAULT;
-- Alert evaluation and dashboards read one metric over a time range.
CREATE INDEX metrics_name_ts_idx ON metrics (name, ts);
CREATE INDEX metrics_type_ts_idx ON metrics (type, ts);

-- Host / service resource usage. Usages are percentages; a multi-core CPU
-- may legitimately exceed 100, so only negatives are rejected.
CREATE TABLE performance_metrics (
    host              text             NOT NULL CHECK (host <> ''),
    service           text             NOT NULL DEFAULT '',
    cpu_usage         double precision CHECK (cpu_usage >= 0),
    memory_usage      double precision CHECK (memory_usage >= 0),
    disk_usage        double precision CHECK (disk_usage >= 0),
    network_in_bytes  bigint           CHECK (network_in_bytes >= 0),
    network_out_bytes bigint           CHECK (network_out_bytes >= 0),
    load_average      double precision CHECK (load_average >= 0),
    labels            jsonb            NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(labels) = 'object'),
    ts                timestamptz      NOT NULL
) PARTITION BY RANGE (ts);
CREATE TABLE performance_metrics_default PARTITION OF performance_metrics DEFAULT;
CREATE INDEX performance_metrics_host_ts_idx ON performance_metrics (host, ts);
CREATE INDEX performance_metrics_service_ts_idx ON performance_metrics (service, ts);

-- Per-worker share statistics, one row per minute (ts is the minute's start,
-- UTC). The aggregator upserts with ON CONFLICT (pool, miner, worker, ts) and
-- adds counts, so re-delivered batches must be de-duplicated upstream.
-- An unnamed worker is stored as '' because primary key columns are NOT NULL.
CREATE TABLE miner_metrics (
    pool                text             NOT NULL CHECK (pool <> ''),
    miner               text             NOT NULL CHECK (miner <> ''),
    worker              text             NOT NULL DEFAULT '',
    ts                  timestamptz      NOT NULL,
    accepted            bigint           NOT NULL DEFAULT 0 CHECK (accepted >= 0),
    rejected            bigint           NOT NULL DEFAULT 0 CHECK (rejected >= 0),
    stale               bigint           NOT NULL DEFAULT 0 CHECK (stale >= 0),
    -- Sum of the difficulty of accepted shares: hashrate = diff * 2^32 / seconds.
    difficulty_accepted double precision NOT NULL DEFAULT 0 CHECK (difficulty_accepted >= 0),
    best_difficulty     double precision NOT NULL DEFAULT 0 CHECK (best_difficulty >= 0),
    last_share_at       timestamptz,
    blocks_found        integer          NOT NULL DEFAULT 0 CHECK (blocks_found >= 0),
    -- What the mining software claims (H/s); absent for most stratum clients.
    reported_hashrate   double precision CHECK (reported_hashrate >= 0),
    -- Vardiff target at the end of the minute.
    share_difficulty    double precision CHECK (share_difficulty > 0),
    user_agent          text,
    PRIMARY KEY (pool, miner, worker, ts)
) PARTITION BY RANGE (ts);
CREATE TABLE miner_metrics_default PARTITION OF miner_metrics DEFAULT;
CREATE INDEX miner_metrics_miner_ts_idx ON miner_metrics (miner, ts);

-- Pool-wide totals, one row per minute.
CREATE TABLE pool_metrics (
    pool                text             NOT NULL CHECK (pool <> ''),
    ts                  timestamptz      NOT NULL,
    accepted            bigint           NOT NULL DEFAULT 0 CHECK (accepted >= 0),
    rejected            bigint           NOT NULL DEFAULT 0 CHECK (rejected >= 0),
    stale               bigint           NOT NULL DEFAULT 0 CHECK (stale >= 0),
    difficulty_accepted double precision NOT NULL DEFAULT 0 CHECK (difficulty_accepted >= 0),
    best_difficulty     double precision NOT NULL DEFAULT 0 CHECK (best_difficulty >= 0),
    active_miners       integer          NOT NULL DEFAULT 0 CHECK (active_miners >= 0),
    active_workers      integer          NOT NULL DEFAULT 0 CHECK (active_workers >= 0),
    blocks_found        integer          NOT NULL DEFAULT 0 CHECK (blocks_found >= 0),
    network_difficulty  double precision CHECK (network_difficulty > 0),
    block_height        bigint           CHECK (block_height >= 0),
    PRIMARY KEY (pool, ts)
) PARTITION BY RANGE (ts);
CREATE TABLE pool_metrics_default PARTITION OF pool_metrics DEFAULT;
