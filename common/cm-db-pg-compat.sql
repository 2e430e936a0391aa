-- SPDX-License-Identifier: Apache-2.0
-- The SQLite functions the broker's SQL uses, made in PostgreSQL so that the same statement
-- text runs on both backends (common/cm-db-pg.c runs this in the transaction of the first
-- migration; every object is CREATE OR REPLACE, so running it again is harmless).
-- They follow SQLite's documented behaviour for the inputs the broker gives them; where they
-- cannot (noted below), the store module writes its two texts with cm_db_sql().
-- Timestamps are UTC: every connection sets TimeZone to UTC.

-- iif(X, Y, Z): Y when X is true, else Z (also when X is NULL). SQLite takes any value as X;
-- here a boolean or an integer (non-zero is true).
CREATE OR REPLACE FUNCTION iif(c boolean, a anycompatible, b anycompatible)
RETURNS anycompatible LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT CASE WHEN c THEN a ELSE b END $$;

CREATE OR REPLACE FUNCTION iif(c bigint, a anycompatible, b anycompatible)
RETURNS anycompatible LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT CASE WHEN c <> 0 THEN a ELSE b END $$;

-- ifnull(X, Y) is coalesce(X, Y); instr(X, Y) the 1-based position of Y in X, 0 if absent.
CREATE OR REPLACE FUNCTION ifnull(a anycompatible, b anycompatible)
RETURNS anycompatible LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT coalesce(a, b) $$;

CREATE OR REPLACE FUNCTION instr(s text, sub text)
RETURNS bigint LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$ SELECT strpos(s, sub)::bigint $$;

-- max(X, Y[, Z]) and min(...) with two or three arguments: the largest (smallest) argument,
-- NULL when any argument is NULL (PostgreSQL's greatest/least skip NULLs). Arguments of
-- different types meet in their common type: max(3, 2.5) is 3.0 here, 3 in SQLite.
CREATE OR REPLACE FUNCTION max(a anycompatible, b anycompatible)
RETURNS anycompatible LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT CASE WHEN a IS NULL OR b IS NULL THEN NULL WHEN a >= b THEN a ELSE b END $$;

CREATE OR REPLACE FUNCTION max(a anycompatible, b anycompatible, c anycompatible)
RETURNS anycompatible LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT CASE WHEN a IS NULL OR b IS NULL OR c IS NULL THEN NULL
                  ELSE greatest(a, b, c) END $$;

CREATE OR REPLACE FUNCTION min(a anycompatible, b anycompatible)
RETURNS anycompatible LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT CASE WHEN a IS NULL OR b IS NULL THEN NULL WHEN a <= b THEN a ELSE b END $$;

CREATE OR REPLACE FUNCTION min(a anycompatible, b anycompatible, c anycompatible)
RETURNS anycompatible LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT CASE WHEN a IS NULL OR b IS NULL OR c IS NULL THEN NULL
                  ELSE least(a, b, c) END $$;

-- total(X): the sum as a float, 0.0 over no rows or only NULLs. SQLite's comparisons are
-- integers, so total(x = 'a') and sum(x = 'a') count rows: both are made for booleans too
-- (sum of booleans: an integer, NULL over no rows, as SQLite's sum).
CREATE OR REPLACE AGGREGATE total(double precision) (
    SFUNC = float8pl, STYPE = double precision, INITCOND = '0', PARALLEL = SAFE);

CREATE OR REPLACE FUNCTION cm_total_bool(s double precision, v boolean)
RETURNS double precision LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$ SELECT s + v::int $$;

CREATE OR REPLACE AGGREGATE total(boolean) (
    SFUNC = cm_total_bool, STYPE = double precision, INITCOND = '0', PARALLEL = SAFE);

CREATE OR REPLACE FUNCTION cm_sum_bool(s bigint, v boolean)
RETURNS bigint LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT CASE WHEN v IS NULL THEN s ELSE coalesce(s, 0) + v::int END $$;

CREATE OR REPLACE AGGREGATE sum(boolean) (
    SFUNC = cm_sum_bool, STYPE = bigint, PARALLEL = SAFE);

-- unixepoch(T): the whole seconds since 1970 of an ISO 8601 time ('YYYY-MM-DD',
-- 'YYYY-MM-DD HH:MM[:SS[.SSS]]', a 'T' for the blank, an optional 'Z' or ±HH:MM; UTC when
-- none) or 'now'; NULL for text that is no time. SQLite also takes impossible dates such as
-- '2024-02-30' (as 2024-03-01); PostgreSQL refuses them with an error.
CREATE OR REPLACE FUNCTION unixepoch(t text)
RETURNS bigint LANGUAGE sql STABLE STRICT PARALLEL SAFE
AS $$
SELECT CASE
    WHEN t ~ '^\d{4}-\d\d-\d\d([ T]\d\d:\d\d(:\d\d(\.\d+)?)?)?$'
        THEN floor(extract(epoch FROM t::timestamp AT TIME ZONE 'UTC'))::bigint
    WHEN t ~ '^\d{4}-\d\d-\d\d[ T]\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:\d\d)$'
        THEN floor(extract(epoch FROM t::timestamptz))::bigint
    WHEN t = 'now' THEN floor(extract(epoch FROM now()))::bigint
END $$;

CREATE OR REPLACE FUNCTION unixepoch()
RETURNS bigint LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT floor(extract(epoch FROM now()))::bigint $$;

-- The time value and modifiers of SQLite's date functions, as a UTC timestamp. Time values:
-- the forms of unixepoch() above, 'now', or a number (a Julian day number, or seconds since
-- 1970 with the 'unixepoch' modifier). Modifiers: '±N days|hours|minutes|seconds|months|years'
-- (the singular too; whole months and years only), 'start of day|month|year', 'unixepoch',
-- 'utc' and 'localtime' (no-ops: the broker keeps UTC). Any other modifier raises an error
-- rather than answer differently from SQLite; an unreadable time value gives NULL, as in
-- SQLite.
CREATE OR REPLACE FUNCTION cm_sqlite_time(t text, mods text[])
RETURNS timestamp LANGUAGE plpgsql STABLE PARALLEL SAFE
AS $$
DECLARE
    ts timestamp;
    m text;
    parts text[];
    first boolean := true;
BEGIN
    IF t IS NULL THEN
        RETURN NULL;
    END IF;
    IF t ~ '^[+-]?(\d+(\.\d*)?|\.\d+)$' THEN
        IF coalesce(lower(mods[1]), '') = 'unixepoch' THEN
            ts := to_timestamp(t::double precision) AT TIME ZONE 'UTC';
        ELSE
            ts := to_timestamp((t::double precision - 2440587.5) * 86400) AT TIME ZONE 'UTC';
        END IF;
    ELSIF t = 'now' THEN
        ts := now() AT TIME ZONE 'UTC';
    ELSIF t ~ '^\d{4}-\d\d-\d\d([ T]\d\d:\d\d(:\d\d(\.\d+)?)?)?$' THEN
        ts := t::timestamp;
    ELSIF t ~ '^\d{4}-\d\d-\d\d[ T]\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:\d\d)$' THEN
        ts := t::timestamptz AT TIME ZONE 'UTC';
    ELSE
        RETURN NULL;
    END IF;
    FOREACH m IN ARRAY coalesce(mods, '{}'::text[]) LOOP
        IF m IS NULL THEN
            RETURN NULL;
        END IF;
        m := lower(trim(m));
        parts := regexp_match(m,
            '^([+-]?(\d+(\.\d*)?|\.\d+))\s+(day|hour|minute|second|month|year)s?$');
        IF parts IS NOT NULL THEN
            IF parts[4] IN ('month', 'year') THEN
                IF parts[1] !~ '^[+-]?\d+$' THEN
                    RAISE EXCEPTION 'cm_sqlite_time: fractional % steps are not supported',
                        parts[4];
                END IF;
                -- SQLite keeps the day and lets it overflow: Jan 31 + 1 month is Mar 2.
                ts := date_trunc('month', ts)
                    + make_interval(months => parts[1]::int
                                    * CASE WHEN parts[4] = 'year' THEN 12 ELSE 1 END)
                    + (extract(day FROM ts)::int - 1) * interval '1 day'
                    + (ts - date_trunc('day', ts));
            ELSE
                ts := ts + (parts[1] || ' ' || parts[4])::interval;
            END IF;
        ELSIF m = 'start of day' THEN
            ts := date_trunc('day', ts);
        ELSIF m = 'start of month' THEN
            ts := date_trunc('month', ts);
        ELSIF m = 'start of year' THEN
            ts := date_trunc('year', ts);
        ELSIF m = 'unixepoch' AND first AND t ~ '^[+-]?(\d+(\.\d*)?|\.\d+)$' THEN
            NULL; -- applied above
        ELSIF m IN ('utc', 'localtime') THEN
            NULL; -- the broker's times are UTC already
        ELSE
            RAISE EXCEPTION 'cm_sqlite_time: the modifier ''%'' is not supported on PostgreSQL', m;
        END IF;
        first := false;
    END LOOP;
    RETURN ts;
END $$;

-- strftime(FORMAT, TIME, MODIFIER...): SQLite's substitutions %d %f %H %j %J %m %M %s %S %w
-- %W %Y %%; NULL when the time is NULL or unreadable.
CREATE OR REPLACE FUNCTION strftime(fmt text, t text, VARIADIC mods text[])
RETURNS text LANGUAGE plpgsql STABLE PARALLEL SAFE
AS $$
DECLARE
    ts timestamp := cm_sqlite_time(t, mods);
    res text := '';
    i int := 1;
    c text;
    secs numeric;
BEGIN
    IF ts IS NULL OR fmt IS NULL THEN
        RETURN NULL;
    END IF;
    WHILE i <= length(fmt) LOOP
        c := substr(fmt, i, 1);
        IF c <> '%' OR i = length(fmt) THEN
            res := res || c;
            i := i + 1;
            CONTINUE;
        END IF;
        c := substr(fmt, i + 1, 1);
        i := i + 2;
        secs := extract(second FROM ts);
        res := res || CASE c
            WHEN 'd' THEN to_char(ts, 'DD')
            WHEN 'f' THEN to_char(trunc(secs, 3), 'FM00.000')
            WHEN 'H' THEN to_char(ts, 'HH24')
            WHEN 'j' THEN to_char(ts, 'DDD')
            WHEN 'J' THEN (extract(epoch FROM ts) / 86400 + 2440587.5)::double precision::text
            WHEN 'm' THEN to_char(ts, 'MM')
            WHEN 'M' THEN to_char(ts, 'MI')
            WHEN 's' THEN floor(extract(epoch FROM ts))::bigint::text
            WHEN 'S' THEN to_char(ts, 'SS')
            WHEN 'w' THEN extract(dow FROM ts)::int::text
            WHEN 'W' THEN lpad(((extract(doy FROM ts)::int - 1 + 7
                                 - (extract(dow FROM ts)::int + 6) % 7) / 7)::text, 2, '0')
            WHEN 'Y' THEN to_char(ts, 'YYYY')
            WHEN '%' THEN '%'
            ELSE NULL
        END;
        IF res IS NULL THEN
            RETURN NULL; -- an unknown substitution: SQLite answers NULL too
        END IF;
    END LOOP;
    RETURN res;
END $$;

CREATE OR REPLACE FUNCTION strftime(fmt text, t text)
RETURNS text LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT strftime(fmt, t, VARIADIC '{}'::text[]) $$;

-- date(T) with T a literal or an untyped parameter is PostgreSQL's cast to the type date:
-- the same text for a valid time, an error instead of NULL for text that is none.
CREATE OR REPLACE FUNCTION date(t text, VARIADIC mods text[])
RETURNS text LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT to_char(cm_sqlite_time(t, mods), 'YYYY-MM-DD') $$;

CREATE OR REPLACE FUNCTION date(t text)
RETURNS text LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT to_char(cm_sqlite_time(t, '{}'), 'YYYY-MM-DD') $$;

CREATE OR REPLACE FUNCTION datetime(t text, VARIADIC mods text[])
RETURNS text LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT to_char(cm_sqlite_time(t, mods), 'YYYY-MM-DD HH24:MI:SS') $$;

CREATE OR REPLACE FUNCTION datetime(t text)
RETURNS text LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT to_char(cm_sqlite_time(t, '{}'), 'YYYY-MM-DD HH24:MI:SS') $$;

CREATE OR REPLACE FUNCTION julianday(t text, VARIADIC mods text[])
RETURNS double precision LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT extract(epoch FROM cm_sqlite_time(t, mods))::double precision / 86400 + 2440587.5 $$;

CREATE OR REPLACE FUNCTION julianday(t text)
RETURNS double precision LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT julianday(t, VARIADIC '{}'::text[]) $$;

CREATE OR REPLACE FUNCTION unixepoch(t text, VARIADIC mods text[])
RETURNS bigint LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT floor(extract(epoch FROM cm_sqlite_time(t, mods)))::bigint $$;

-- The same with a number as the time value: a Julian day number, or with the 'unixepoch'
-- modifier seconds since 1970 (date(start, 'unixepoch')).
CREATE OR REPLACE FUNCTION strftime(fmt text, t double precision, VARIADIC mods text[])
RETURNS text LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT strftime(fmt, t::text, VARIADIC mods) $$;

CREATE OR REPLACE FUNCTION strftime(fmt text, t double precision)
RETURNS text LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT strftime(fmt, t::text, VARIADIC '{}'::text[]) $$;

CREATE OR REPLACE FUNCTION date(t double precision, VARIADIC mods text[])
RETURNS text LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT date(t::text, VARIADIC mods) $$;

CREATE OR REPLACE FUNCTION datetime(t double precision, VARIADIC mods text[])
RETURNS text LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT datetime(t::text, VARIADIC mods) $$;

CREATE OR REPLACE FUNCTION julianday(t double precision, VARIADIC mods text[])
RETURNS double precision LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT julianday(t::text, VARIADIC mods) $$;

CREATE OR REPLACE FUNCTION unixepoch(t double precision, VARIADIC mods text[])
RETURNS bigint LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT unixepoch(t::text, VARIADIC mods) $$;

CREATE OR REPLACE FUNCTION date(t double precision)
RETURNS text LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT date(t::text, VARIADIC '{}'::text[]) $$;

CREATE OR REPLACE FUNCTION datetime(t double precision)
RETURNS text LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT datetime(t::text, VARIADIC '{}'::text[]) $$;

CREATE OR REPLACE FUNCTION julianday(t double precision)
RETURNS double precision LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT julianday(t::text, VARIADIC '{}'::text[]) $$;

CREATE OR REPLACE FUNCTION unixepoch(t double precision)
RETURNS bigint LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT unixepoch(t::text, VARIADIC '{}'::text[]) $$;

-- sqlite_sequence(name, seq): the high-water mark of each table's generated ids (the audit
-- chain's verification reads it to find records deleted at the tail). Every identity column
-- is listed, not only those that were AUTOINCREMENT; a table shows once it has had a row.
CREATE OR REPLACE VIEW sqlite_sequence AS
SELECT c.relname::text AS name, pg_sequence_last_value(s.seq) AS seq
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = current_schema()
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attidentity <> ''
CROSS JOIN LATERAL (SELECT pg_get_serial_sequence(format('%I.%I', n.nspname, c.relname),
                                                  a.attname)::regclass AS seq) s
WHERE c.relkind = 'r' AND pg_sequence_last_value(s.seq) IS NOT NULL;
