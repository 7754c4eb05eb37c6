-- Hourly and daily roll-ups of the per-minute share tables, for history over
-- long ranges and with longer retention than the minutes (settings
-- RETENTION_*_HOURLY_DAYS / RETENTION_*_DAILY_DAYS). The aggregator's roll-up
-- job (services/aggregator/adapters/rollups.py) recomputes whole UTC hours from
-- the minute rows and whole UTC days from the hourly rows with idempotent
-- upserts, so a row always equals the sum of the rows below it.
--
-- ts is the start of the UTC hour / day. `minutes` counts the minute rows
-- behind a row. Hourly tables have daily partitions (as the minute tables);
-- daily tables have MONTHLY partitions (<table>_pYYYYMM): five years of daily
-- partitions would be ~1,800 per table. Both keep a DEFAULT partition, and
-- chimera_drop_partitions_before drops either kind once wholly past retention.

CREATE TABLE miner_metrics_hourly (
    pool                text             NOT NULL CHECK (pool <> ''),
    miner               text             NOT NULL CHECK (miner <> ''),
    worker              text             NOT NULL DEFAULT '',
    ts                  timestamptz      NOT NULL,
    accepted            bigint           NOT NULL DEFAULT 0 CHECK (accepted >= 0),
    rejected            bigint           NOT NULL DEFAULT 0 CHECK (rejected >= 0),
    stale               bigint           NOT NULL DEFAULT 0 CHECK (stale >= 0),
    difficulty_accepted double precision NOT NULL DEFAULT 0 CHECK (difficulty_accepted >= 0),
    best_difficulty     double precision NOT NULL DEFAULT 0 CHECK (best_difficulty >= 0),
    last_share_at       timestamptz,
    blocks_found        integer          NOT NULL DEFAULT 0 CHECK (blocks_found >= 0),
    minutes             integer          NOT NULL DEFAULT 0 CHECK (minutes >= 0),
    PRIMARY KEY (pool, miner, worker, ts)
) PARTITION BY RANGE (ts);
CREATE TABLE miner_metrics_hourly_default PARTITION OF miner_metrics_hourly DEFAULT;

CREATE TABLE miner_metrics_daily (LIKE miner_metrics_hourly INCLUDING DEFAULTS INCLUDING CONSTRAINTS,
    PRIMARY KEY (pool, miner, worker, ts)
) PARTITION BY RANGE (ts);
CREATE TABLE miner_metrics_daily_default PARTITION OF miner_metrics_daily DEFAULT;

CREATE TABLE pool_metrics_hourly (
    pool                text             NOT NULL CHECK (pool <> ''),
    ts                  timestamptz      NOT NULL,
    accepted            bigint           NOT NULL DEFAULT 0 CHECK (accepted >= 0),
    rejected            bigint           NOT NULL DEFAULT 0 CHECK (rejected >= 0),
    stale               bigint           NOT NULL DEFAULT 0 CHECK (stale >= 0),
    difficulty_accepted double precision NOT NULL DEFAULT 0 CHECK (difficulty_accepted >= 0),
    best_difficulty     double precision NOT NULL DEFAULT 0 CHECK (best_difficulty >= 0),
    blocks_found        integer          NOT NULL DEFAULT 0 CHECK (blocks_found >= 0),
    -- The largest per-minute active counts within the hour / day.
    active_miners_max   integer          NOT NULL DEFAULT 0 CHECK (active_miners_max >= 0),
    active_workers_max  integer          NOT NULL DEFAULT 0 CHECK (active_workers_max >= 0),
    minutes             integer          NOT NULL DEFAULT 0 CHECK (minutes >= 0),
    PRIMARY KEY (pool, ts)
) PARTITION BY RANGE (ts);
CREATE TABLE pool_metrics_hourly_default PARTITION OF pool_metrics_hourly DEFAULT;

CREATE TABLE pool_metrics_daily (LIKE pool_metrics_hourly INCLUDING DEFAULTS INCLUDING CONSTRAINTS,
    PRIMARY KEY (pool, ts)
) PARTITION BY RANGE (ts);
CREATE TABLE pool_metrics_daily_default PARTITION OF pool_metrics_daily DEFAULT;

-- Monthly counterpart of chimera_ensure_partitions (0001): creates the missing
-- partitions <tbl>_pYYYYMM for the months from_day .. to_day fall in (inclusive)
-- and returns their names; moves matching rows out of the default partition.
-- Same locking as the daily function. Idempotent.
CREATE FUNCTION chimera_ensure_month_partitions(tbl text, from_day date, to_day date)
RETURNS SETOF text
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    schema_name text := current_schema();
    parent regclass := chimera_partitioned_table(tbl);
    default_part text;
    columns text;
    month date;
    part text;
    lo timestamptz;
    hi timestamptz;
BEGIN
    IF from_day > to_day THEN
        RETURN;
    END IF;
    PERFORM chimera_partition_lock(tbl);

    SELECT c.relname INTO default_part
    FROM pg_inherits i
    JOIN pg_class c ON c.oid = i.inhrelid
    WHERE i.inhparent = parent AND pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT';

    SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) INTO columns
    FROM pg_attribute
    WHERE attrelid = parent AND attnum > 0 AND NOT attisdropped;

    FOR month IN
        SELECT generate_series(date_trunc('month', from_day), date_trunc('month', to_day), interval '1 month')::date
    LOOP
        part := format('%s_p%s', tbl, to_char(month, 'YYYYMM'));
        CONTINUE WHEN to_regclass(format('%I.%I', schema_name, part)) IS NOT NULL;
        lo := chimera_day_start(month);
        hi := chimera_day_start((month + interval '1 month')::date);

        EXECUTE format('LOCK TABLE ONLY %s IN SHARE UPDATE EXCLUSIVE MODE', parent);
        IF default_part IS NOT NULL THEN
            EXECUTE format('LOCK TABLE %I.%I IN ACCESS EXCLUSIVE MODE', schema_name, default_part);
        END IF;
        EXECUTE format(
            'CREATE TABLE %I.%I (LIKE %s INCLUDING DEFAULTS INCLUDING CONSTRAINTS'
            ' INCLUDING GENERATED INCLUDING STORAGE INCLUDING COMPRESSION)',
            schema_name, part, parent);
        IF default_part IS NOT NULL THEN
            EXECUTE format(
                'WITH moved AS (DELETE FROM %I.%I WHERE ts >= %L AND ts < %L RETURNING %s)'
                ' INSERT INTO %I.%I (%s) SELECT %s FROM moved',
                schema_name, default_part, lo, hi, columns,
                schema_name, part, columns, columns);
        END IF;
        EXECUTE format('ALTER TABLE %s ATTACH PARTITION %I.%I FOR VALUES FROM (%L) TO (%L)',
                       parent, schema_name, part, lo, hi);
        RETURN NEXT part;
    END LOOP;
END;
$$;
