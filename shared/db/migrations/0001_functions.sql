-- Daily range partitions for the time-series tables, managed in SQL so any
-- client (the Python runner, psql, a cron job) gets the same behaviour.
--
-- Design:
--   * each time-series table is PARTITION BY RANGE (ts) with one partition per
--     UTC day named <table>_pYYYYMMDD, plus <table>_default (DEFAULT) so an
--     insert for a day nobody created yet is stored instead of failing;
--   * chimera_ensure_partitions moves any such rows out of the default
--     partition when it creates their day, so the default stays (near) empty
--     and retention can drop whole days;
--   * chimera_drop_partitions_before drops whole days and deletes expired rows
--     from the default partition, which is never dropped;
--   * both functions serialise per table with a transaction-level advisory
--     lock, so concurrent callers (two services starting at once) are safe;
--   * everything resolves against current_schema(), so the same functions work
--     in whichever schema the connection's search_path names.
--
-- Callers that must not queue behind long queries should SET lock_timeout
-- first: attaching a partition needs an ACCESS EXCLUSIVE lock on the default
-- partition, which every unpruned query on the parent also touches.

-- Advisory lock namespace (first key) shared by the partition functions; the
-- second key is hashtext(schema.table).
CREATE FUNCTION chimera_partition_lock(tbl text) RETURNS void
LANGUAGE sql VOLATILE AS $$
    SELECT pg_advisory_xact_lock(614202001, hashtext(current_schema() || '.' || tbl));
$$;

-- The partitioned table `tbl` in the current schema, or an error naming it.
CREATE FUNCTION chimera_partitioned_table(tbl text) RETURNS regclass
LANGUAGE plpgsql STABLE AS $$
DECLARE
    schema_name text := current_schema();
    rel regclass;
BEGIN
    IF schema_name IS NULL THEN
        RAISE EXCEPTION 'no schema on the search_path';
    END IF;
    rel := to_regclass(format('%I.%I', schema_name, tbl));
    IF rel IS NULL OR (SELECT relkind FROM pg_class WHERE oid = rel) <> 'p' THEN
        RAISE EXCEPTION 'no partitioned table %.% exists', schema_name, tbl
            USING ERRCODE = 'undefined_table';
    END IF;
    RETURN rel;
END;
$$;

-- Midnight UTC of `day`, independent of the session's TimeZone.
CREATE FUNCTION chimera_day_start(day date) RETURNS timestamptz
LANGUAGE sql IMMUTABLE AS $$
    SELECT day::timestamp AT TIME ZONE 'UTC';
$$;

-- Creates the missing daily partitions of `tbl` for from_day .. to_day
-- (inclusive) and returns the names it created. Idempotent.
CREATE FUNCTION chimera_ensure_partitions(tbl text, from_day date, to_day date)
RETURNS SETOF text
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    schema_name text := current_schema();
    parent regclass := chimera_partitioned_table(tbl);
    default_part text;
    columns text;
    day date;
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

    FOR day IN SELECT generate_series(from_day, to_day, interval '1 day')::date LOOP
        part := format('%s_p%s', tbl, to_char(day, 'YYYYMMDD'));
        CONTINUE WHEN to_regclass(format('%I.%I', schema_name, part)) IS NOT NULL;
        lo := chimera_day_start(day);
        hi := chimera_day_start(day + 1);

        -- Lock order parent -> default matches what ATTACH takes, and holding
        -- the default partition from here on stops inserts for this day from
        -- landing in it between the move and the attach.
        EXECUTE format('LOCK TABLE ONLY %s IN SHARE UPDATE EXCLUSIVE MODE', parent);
        IF default_part IS NOT NULL THEN
            EXECUTE format('LOCK TABLE %I.%I IN ACCESS EXCLUSIVE MODE', schema_name, default_part);
        END IF;

        -- Build the partition standalone and ATTACH it: ATTACH needs only
        -- SHARE UPDATE EXCLUSIVE on the parent (CREATE ... PARTITION OF needs
        -- ACCESS EXCLUSIVE), so ingest into other days keeps flowing.
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

-- Drops the daily partitions of `tbl` whose whole range ends on or before
-- midnight UTC of `cutoff`, and returns their names. Rows older than the
-- cutoff that sit in the default partition are deleted; the default partition
-- itself is never dropped.
CREATE FUNCTION chimera_drop_partitions_before(tbl text, cutoff date)
RETURNS SETOF text
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    schema_name text := current_schema();
    parent regclass := chimera_partitioned_table(tbl);
    cutoff_ts timestamptz := chimera_day_start(cutoff);
    part record;
    bounds text[];
BEGIN
    PERFORM chimera_partition_lock(tbl);
    FOR part IN
        SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) AS bound
        FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = parent
        ORDER BY c.relname
    LOOP
        IF part.bound = 'DEFAULT' THEN
            EXECUTE format('DELETE FROM %I.%I WHERE ts < %L', schema_name, part.relname, cutoff_ts);
            CONTINUE;
        END IF;
        -- Bounds print as quoted timestamps in this session's TimeZone with an
        -- offset, so they cast back exactly; MINVALUE/MAXVALUE do not match.
        bounds := regexp_match(part.bound, '^FOR VALUES FROM \(''([^'']+)''\) TO \(''([^'']+)''\)$');
        CONTINUE WHEN bounds IS NULL OR bounds[2]::timestamptz > cutoff_ts;
        EXECUTE format('DROP TABLE %I.%I', schema_name, part.relname);
        RETURN NEXT part.relname;
    END LOOP;
END;
$$;

-- Keeps updated_at honest for every mutable table without trusting callers.
CREATE FUNCTION chimera_touch_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;
