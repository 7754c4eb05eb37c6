-- One body for the daily (0001) and monthly (0007) partition functions, which
-- had grown as near-copies: chimera_ensure_range_partitions creates the
-- missing partitions of `tbl` for every `step` ('day' or 'month') that
-- from_day .. to_day touch (inclusive), named <tbl>_pYYYYMMDD or <tbl>_pYYYYMM,
-- moves matching rows out of the default partition, and returns their names.
-- The two old functions keep their names and signatures and now call it.
--
-- Locking (unchanged): parent SHARE UPDATE EXCLUSIVE then default ACCESS
-- EXCLUSIVE, the order ATTACH takes; the partition is built standalone and
-- ATTACHed (CREATE ... PARTITION OF would need ACCESS EXCLUSIVE on the
-- parent), so inserts into other ranges keep flowing. Idempotent.

CREATE FUNCTION chimera_ensure_range_partitions(tbl text, from_day date, to_day date, step text)
RETURNS SETOF text
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    schema_name text := current_schema();
    parent regclass := chimera_partitioned_table(tbl);
    width interval;
    suffix text;
    default_part text;
    columns text;
    first date;
    part text;
    lo timestamptz;
    hi timestamptz;
BEGIN
    IF step = 'day' THEN
        width := interval '1 day';
        suffix := 'YYYYMMDD';
    ELSIF step = 'month' THEN
        width := interval '1 month';
        suffix := 'YYYYMM';
    ELSE
        RAISE EXCEPTION 'partition step must be day or month, not %', step USING ERRCODE = '22023';
    END IF;
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

    FOR first IN
        SELECT generate_series(date_trunc(step, from_day), date_trunc(step, to_day), width)::date
    LOOP
        part := format('%s_p%s', tbl, to_char(first, suffix));
        CONTINUE WHEN to_regclass(format('%I.%I', schema_name, part)) IS NOT NULL;
        lo := chimera_day_start(first);
        hi := chimera_day_start((first + width)::date);

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

CREATE OR REPLACE FUNCTION chimera_ensure_partitions(tbl text, from_day date, to_day date)
RETURNS SETOF text
LANGUAGE sql VOLATILE AS $$
    SELECT * FROM chimera_ensure_range_partitions(tbl, from_day, to_day, 'day');
$$;

CREATE OR REPLACE FUNCTION chimera_ensure_month_partitions(tbl text, from_day date, to_day date)
RETURNS SETOF text
LANGUAGE sql VOLATILE AS $$
    SELECT * FROM chimera_ensure_range_partitions(tbl, from_day, to_day, 'month');
$$;
