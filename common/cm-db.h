/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <errno.h>
#include <stdint.h>

#include "cm-error.h"

typedef struct CmDb CmDb;

typedef enum {
    CM_DB_READWRITE = 0,
    CM_DB_READONLY = 1 << 0,
    /* Synchronous NORMAL instead of FULL: for spools whose loss on power cut is acceptable. */
    CM_DB_RELAXED = 1 << 1,
} CmDbFlags;

/* Which database a connection talks to. Only the store layer may ask (cm_db_backend()). */
typedef enum {
    CM_DB_SQLITE,
    CM_DB_POSTGRESQL,
} CmDbBackend;

/*
 * The advisory lock key that cm_db_begin_immediate() takes on PostgreSQL, for the length of
 * the transaction: one writer at a time over every broker on the database ("cbwriter").
 */
#define CM_DB_PG_WRITER_LOCK 7161417690751722866

/*
 * The advisory lock key of cm_db_serialize() ("cbserial" as 8 bytes): the tail of one shared
 * write transaction at a time (cm_db_begin_shared()).
 */
#define CM_DB_PG_SERIAL_LOCK 7161413237020909932

/**
 * cm_db_global_init:
 * Process-wide SQLite settings; call once before any database is opened. Turns off SQLite's
 * memory statistics, which take one global lock on every allocation.
 */
void cm_db_global_init(void);

/**
 * cm_db_open:
 * Opens (creating if needed) the SQLite database at @path in WAL mode with foreign keys on, a
 * busy timeout, SQLITE_DBCONFIG_DEFENSIVE and untrusted schema, synchronous=FULL unless
 * CM_DB_RELAXED. One CmDb belongs to one thread at a time.
 * Returns: 0 and the handle in @ret, or a negative errno with @err set.
 */
int cm_db_open(const char *path, CmDbFlags flags, CmDb **ret, CmError *err);

/**
 * cm_db_open_url:
 * Opens the database @url names: "sqlite:PATH" (or a plain PATH) as cm_db_open(), or
 * "postgresql://..." / "postgres://..." through libpq (any libpq URL: several hosts,
 * target_session_attrs=read-write, sslmode, ...). A PostgreSQL connection sets its session to
 * UTC and ISO formats; CM_DB_READONLY makes its transactions read-only, CM_DB_RELAXED turns
 * synchronous_commit off. A lost connection is reconnected on its next use outside a
 * transaction. One CmDb belongs to one thread at a time.
 * Returns: 0 and the handle in @ret, or a negative errno with @err set (-EINVAL for an
 * unknown scheme, -EIO when the server cannot be reached).
 */
int cm_db_open_url(const char *url, CmDbFlags flags, CmDb **ret, CmError *err);

/**
 * cm_db_url_redact:
 * Returns: a copy of @url fit for a log or a message: a password (user:PASSWORD@ or
 * password=...) is replaced by "***"; NULL on no memory.
 */
char *cm_db_url_redact(const char *url);

/** cm_db_close: finalizes cached statements and closes. Accepts NULL. Returns: NULL. */
CmDb *cm_db_close(CmDb *db);
CM_DEFINE_TRIVIAL_CLEANUP_FUNC(CmDb *, cm_db_close)

/** cm_db_backend: Returns: which database @db talks to. For the store layer only. */
CmDbBackend cm_db_backend(CmDb *db);

/**
 * cm_db_sql:
 * The store module's choice where no compatibility function can bridge the two dialects:
 * both texts have static lifetime and use SQLite's ?N parameters.
 * Returns: @sqlite_text on SQLite, @pg_text on PostgreSQL.
 */
const char *cm_db_sql(CmDb *db, const char *sqlite_text, const char *pg_text);

/**
 * cm_db_handle:
 * Returns: the connection's sqlite3 handle, NULL on PostgreSQL: for tests and benchmarks that
 * measure or tamper with SQLite itself (they include <sqlite3.h>); the program never uses it.
 */
struct sqlite3 *cm_db_handle(CmDb *db);

/*
 * Statements. A CmStmt is a prepared statement of one connection together with its current
 * row; cm_db_prepare() hands out the connection's cached statement for an SQL string, and the
 * _cleanup_stmt_ attribute resets it when the variable leaves scope, so no caller resets by
 * hand. The SQL uses SQLite's numbered parameters (?1, ?2, ... or plain ? in order).
 */
typedef struct CmStmt CmStmt;

/* The type of a column's value in the current row. */
typedef enum {
    CM_DB_NULL,
    CM_DB_INTEGER,
    CM_DB_FLOAT,
    CM_DB_TEXT,
    CM_DB_BLOB,
} CmDbType;

/**
 * cm_db_prepare:
 * Returns the statement for @sql from this connection's cache, reset and with its bindings
 * cleared, preparing it on first use. @sql must have static lifetime: the cache is keyed by
 * its address. On PostgreSQL the text is converted ($N parameters) here and prepared on the
 * server at its first step, so an SQL error shows there; a lost connection is reconnected
 * here when no transaction is open.
 * Returns: the statement, or NULL with @err set (CM_ERROR_INTERNAL; CM_ERROR_UNAVAILABLE when
 * the server cannot be reached).
 */
CmStmt *cm_db_prepare(CmDb *db, const char *sql, CmError *err);

/** cm_stmt_reset: ends the statement's current run and clears its bindings. Accepts NULL. */
void cm_stmt_reset(CmStmt *st);
static inline void cm_stmt_resetp(CmStmt **st)
{
    if (*st)
        cm_stmt_reset(*st);
}
/* For statements from cm_db_prepare(): reset when leaving scope, the cache keeps them. */
#define _cleanup_stmt_ _cleanup_(cm_stmt_resetp)

/* How a statement's rows are read on PostgreSQL (SQLite reads every statement one row at a
 * time, its values in place, and ignores these). For the big reads: a day of samples, a year
 * of rollups. */
typedef enum {
    /* In binary form: no number or bytea to parse from text. Columns of another type than
     * boolean, int2/4/8, oid, float4/8, text, varchar or bytea fail the step; cm_stmt_text()
     * of a float gives 17 significant digits (text form: the shortest exact). */
    CM_DB_ROWS_BINARY = 1 << 0,
    /* One row at a time as the server sends them (libpq's single-row mode), not the whole
     * answer at once: the caller works on a row while the server produces the next ones, and
     * holds one row in memory. The statement must be read to its end, or reset, before
     * another runs on the connection (that one fails with CM_ERROR_INTERNAL). */
    CM_DB_ROWS_STREAM = 1 << 1,
} CmDbRows;

/** cm_stmt_set_rows: how @st's rows are read from its next run until cm_db_prepare() hands
 * it out again (that clears them). */
void cm_stmt_set_rows(CmStmt *st, CmDbRows flags);

/**
 * cm_stmt_step:
 * Runs the statement to its next row. Returns: 1 when a row is available, 0 when done,
 * -EEXIST on a constraint violation (CM_ERROR_CONFLICT, code "constraint"), -EAGAIN when the
 * database is busy (on PostgreSQL also a serialization failure or deadlock), -EIO for a lost
 * connection (CM_ERROR_UNAVAILABLE) or another failure; @err is set on every failure. On
 * PostgreSQL an error inside a transaction ends it: the caller returns, the runner rolls back.
 */
int cm_stmt_step(CmStmt *st, CmError *err);

/**
 * cm_stmt_exec:
 * Runs the statement to its end (rows are skipped) and resets it.
 * Returns: 0, or a negative errno as cm_stmt_step() with @err set.
 */
int cm_stmt_exec(CmStmt *st, CmError *err);

/** cm_stmt_changes: Returns: the rows the last cm_stmt_exec()/step of @st changed. */
int64_t cm_stmt_changes(CmStmt *st);

/** cm_stmt_columns: Returns: the number of result columns (on PostgreSQL once it has run). */
int cm_stmt_columns(CmStmt *st);
/** cm_stmt_name: Returns: the name (alias) of column @i. */
const char *cm_stmt_name(CmStmt *st, int i);
/**
 * cm_stmt_type:
 * Returns: the type of column @i's value in the current row. On PostgreSQL by the column's
 * type: int2/4/8 and bool are integers (true is 1), float4/8 floats, numeric an integer when
 * the value is whole (as SQLite's sum()) else a float, bytea a blob, the rest (text, varchar,
 * json, jsonb, ...) text.
 */
CmDbType cm_stmt_type(CmStmt *st, int i);
bool cm_stmt_is_null(CmStmt *st, int i);
/** cm_stmt_int: Returns: column @i as an integer (0 for NULL; true is 1). */
int64_t cm_stmt_int(CmStmt *st, int i);
/** cm_stmt_double: Returns: column @i as a double (0 for NULL). */
double cm_stmt_double(CmStmt *st, int i);
/** cm_stmt_text: Returns: column @i as text, valid until the next step or reset; NULL for NULL. */
const char *cm_stmt_text(CmStmt *st, int i);
/** cm_stmt_bytes: Returns: the length in bytes of column @i's text or blob. */
size_t cm_stmt_bytes(CmStmt *st, int i);
/** cm_stmt_blob: Returns: column @i's bytes (cm_stmt_bytes() long); NULL for NULL. */
const void *cm_stmt_blob(CmStmt *st, int i);

/** cm_stmt_strdup: Returns: a copy of column @i's text, "" for NULL, or NULL on no memory. */
char *cm_stmt_strdup(CmStmt *st, int i);

/**
 * cm_stmt_row_json:
 * Turns the current row into a JSON object keyed by the columns' names: integers, floats,
 * text and NULL as their JSON kinds. A name may end in a type tag that the key loses:
 * "on_cloud:bool" gives a boolean, "detail:json" parses stored JSON text (invalid text
 * stays a string). A name "parent.key" puts the value under "key" in the object "parent",
 * which takes the place of its first column ("quota.vcpus", "quota.disk_gib" make one
 * "quota" object). Returns: the new object (never NULL).
 */
struct json_object *cm_stmt_row_json(CmStmt *st);

/**
 * cm_stmt_rows_json:
 * Steps @st to its end, each row made a JSON object as by cm_stmt_row_json(), and resets it.
 * Returns: 0 and the array in @ret, or a negative errno with @err set.
 */
int cm_stmt_rows_json(CmStmt *st, struct json_object **ret, CmError *err);

/**
 * cm_stmt_ints:
 * Steps @st to its end, collecting each row's first column as an integer, and resets it.
 * Returns: 0 with the array (free() it; NULL when empty) in @ret and its length in @ret_n, or a
 * negative errno with @err set.
 */
int cm_stmt_ints(CmStmt *st, int64_t **ret, size_t *ret_n, CmError *err);

int cm_stmt_bind_i64(CmStmt *st, int idx, int64_t v);
int cm_stmt_bind_double(CmStmt *st, int idx, double v);
/** cm_stmt_bind_text: binds a copy of @v, or SQL NULL when @v is NULL. Returns: 0 or -EINVAL. */
int cm_stmt_bind_text(CmStmt *st, int idx, const char *v);
int cm_stmt_bind_blob(CmStmt *st, int idx, const void *v, size_t len);
int cm_stmt_bind_null(CmStmt *st, int idx);

/*
 * Type-checked binding: CM_DB_BIND(stmt, a, b, c) binds a, b, c to parameters 1, 2, 3,
 * choosing the call from each argument's C type (integers, double, strings; a NULL pointer
 * binds SQL NULL). Evaluates to 0, or -EINVAL when a bind failed.
 */
int cm_stmt_bind_i64_(CmStmt *s, int idx, int64_t v);
int cm_stmt_bind_double_(CmStmt *s, int idx, double v);
int cm_stmt_bind_text_(CmStmt *s, int idx, const char *v);
int cm_stmt_bind_null_(CmStmt *s, int idx, const void *v);

#define cm__db_bind_fn(v, pfx)                                                                     \
    _Generic((v),                                                                                  \
        char *: pfx##_bind_text_,                                                                  \
        const char *: pfx##_bind_text_,                                                            \
        void *: pfx##_bind_null_,                                                                  \
        _Bool: pfx##_bind_i64_,                                                                    \
        int: pfx##_bind_i64_,                                                                      \
        unsigned: pfx##_bind_i64_,                                                                 \
        long: pfx##_bind_i64_,                                                                     \
        unsigned long: pfx##_bind_i64_,                                                            \
        long long: pfx##_bind_i64_,                                                                \
        double: pfx##_bind_double_)

#define cm_db_bind_value(stmt, idx, v) cm__db_bind_fn(v, cm_stmt)((CmStmt *)(stmt), idx, v)

#define CM__DB_B1(s, i, a) cm_db_bind_value(s, i, a)
#define CM__DB_B2(s, i, a, ...) (cm_db_bind_value(s, i, a) | CM__DB_B1(s, (i) + 1, __VA_ARGS__))
#define CM__DB_B3(s, i, a, ...) (cm_db_bind_value(s, i, a) | CM__DB_B2(s, (i) + 1, __VA_ARGS__))
#define CM__DB_B4(s, i, a, ...) (cm_db_bind_value(s, i, a) | CM__DB_B3(s, (i) + 1, __VA_ARGS__))
#define CM__DB_B5(s, i, a, ...) (cm_db_bind_value(s, i, a) | CM__DB_B4(s, (i) + 1, __VA_ARGS__))
#define CM__DB_B6(s, i, a, ...) (cm_db_bind_value(s, i, a) | CM__DB_B5(s, (i) + 1, __VA_ARGS__))
#define CM__DB_B7(s, i, a, ...) (cm_db_bind_value(s, i, a) | CM__DB_B6(s, (i) + 1, __VA_ARGS__))
#define CM__DB_B8(s, i, a, ...) (cm_db_bind_value(s, i, a) | CM__DB_B7(s, (i) + 1, __VA_ARGS__))
#define CM__DB_B9(s, i, a, ...) (cm_db_bind_value(s, i, a) | CM__DB_B8(s, (i) + 1, __VA_ARGS__))
#define CM__DB_B10(s, i, a, ...) (cm_db_bind_value(s, i, a) | CM__DB_B9(s, (i) + 1, __VA_ARGS__))
#define CM__DB_B11(s, i, a, ...) (cm_db_bind_value(s, i, a) | CM__DB_B10(s, (i) + 1, __VA_ARGS__))
#define CM__DB_B12(s, i, a, ...) (cm_db_bind_value(s, i, a) | CM__DB_B11(s, (i) + 1, __VA_ARGS__))
#define CM__DB_B13(s, i, a, ...) (cm_db_bind_value(s, i, a) | CM__DB_B12(s, (i) + 1, __VA_ARGS__))
#define CM__DB_B14(s, i, a, ...) (cm_db_bind_value(s, i, a) | CM__DB_B13(s, (i) + 1, __VA_ARGS__))
#define CM__DB_B15(s, i, a, ...) (cm_db_bind_value(s, i, a) | CM__DB_B14(s, (i) + 1, __VA_ARGS__))
#define CM__DB_B16(s, i, a, ...) (cm_db_bind_value(s, i, a) | CM__DB_B15(s, (i) + 1, __VA_ARGS__))
#define CM__DB_B17(s, i, a, ...) (cm_db_bind_value(s, i, a) | CM__DB_B16(s, (i) + 1, __VA_ARGS__))
#define CM__DB_B18(s, i, a, ...) (cm_db_bind_value(s, i, a) | CM__DB_B17(s, (i) + 1, __VA_ARGS__))
#define CM__DB_B19(s, i, a, ...) (cm_db_bind_value(s, i, a) | CM__DB_B18(s, (i) + 1, __VA_ARGS__))
#define CM__DB_B20(s, i, a, ...) (cm_db_bind_value(s, i, a) | CM__DB_B19(s, (i) + 1, __VA_ARGS__))
#define CM__DB_NARGS(...)                                                                          \
    CM__DB_NARGS_(__VA_ARGS__, 20, 19, 18, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, \
                  1)
#define CM__DB_NARGS_(_1, _2, _3, _4, _5, _6, _7, _8, _9, _10, _11, _12, _13, _14, _15, _16, _17,  \
                      _18, _19, _20, N, ...)                                                       \
    N
#define CM__DB_CAT(a, b) CM__DB_CAT_(a, b)
#define CM__DB_CAT_(a, b) a##b
#define CM_DB_BIND(stmt, ...)                                                                      \
    (CM__DB_CAT(CM__DB_B, CM__DB_NARGS(__VA_ARGS__))(stmt, 1, __VA_ARGS__) ? -EINVAL : 0)

/**
 * cm_db_exec:
 * Runs one or more statements without results or parameters, as they are (no dialect work).
 * Returns: 0, or a negative errno with @err set.
 */
int cm_db_exec(CmDb *db, const char *sql, CmError *err);

/**
 * cm_db_copy_in:
 * PostgreSQL only: runs @sql, a COPY ... FROM STDIN in text format, with the @len bytes of
 * @data as its input (rows ending in a newline, columns separated by tabs, \N for NULL,
 * nothing else escaped by the caller: its values must not hold a tab, newline or backslash).
 * Returns: 0 and the rows copied in @ret_rows (may be NULL), -ENOTSUP on SQLite, or a negative
 * errno with @err set as cm_stmt_exec() sets it.
 */
int cm_db_copy_in(CmDb *db, const char *sql, const char *data, size_t len, int64_t *ret_rows,
                  CmError *err);

/**
 * cm_db_begin_immediate:
 * Opens a write transaction that no other writer runs beside: SQLite's BEGIN IMMEDIATE; on
 * PostgreSQL BEGIN and the transaction-scoped advisory lock CM_DB_PG_WRITER_LOCK, which
 * serializes the writers of every broker on the database (the audit chain has one head).
 * A PostgreSQL connection found lost at the BEGIN is reconnected and the BEGIN tried once more.
 * Returns: 0, -EAGAIN when another writer held on longer than 5 s, or a negative errno with
 * @err set; no transaction is left open on failure.
 */
int cm_db_begin_immediate(CmDb *db, CmError *err);

/**
 * cm_db_begin_shared:
 * Opens a write transaction that runs beside other shared ones but beside no
 * cm_db_begin_immediate() writer: on PostgreSQL BEGIN, CM_DB_PG_WRITER_LOCK in shared mode
 * (an immediate writer waits for the shared ones and they for it), then the advisory lock
 * @key exclusive (one transaction per @key at a time, over every broker). Its work must not
 * depend on what another shared transaction of another @key writes; what must be serial (the
 * audit chain's head) comes after cm_db_serialize(). SQLite has one writer: BEGIN IMMEDIATE,
 * @key unused. Lock waits, retries and failures as cm_db_begin_immediate().
 * Returns: 0, -EAGAIN when a lock was held longer than 5 s, or a negative errno with @err set.
 */
int cm_db_begin_shared(CmDb *db, int64_t key, CmError *err);

/**
 * cm_db_serialize:
 * In a transaction of cm_db_begin_shared(): takes CM_DB_PG_SERIAL_LOCK until it ends, so that
 * the rest of the transaction runs after the serialized tails of the other shared ones have
 * committed or rolled back, and before the next. Does nothing on SQLite (one writer anyway).
 * Returns: 0, -EAGAIN after 5 s, or a negative errno with @err set (roll back then).
 */
int cm_db_serialize(CmDb *db, CmError *err);

/**
 * cm_db_begin_read:
 * Opens a read transaction: one snapshot for all its statements (on PostgreSQL REPEATABLE
 * READ READ ONLY); a lost PostgreSQL connection is retried once as cm_db_begin_immediate().
 * Returns: 0, or a negative errno with @err set.
 */
int cm_db_begin_read(CmDb *db, CmError *err);
int cm_db_commit(CmDb *db, CmError *err);
/** cm_db_rollback: rolls back if a transaction is open; never fails. */
void cm_db_rollback(CmDb *db);

/**
 * cm_db_migrate:
 * Brings the schema to version @n by applying @migrations[version .. n-1], each in its own
 * transaction together with the new version. Refuses a database newer than @n. SQLite keeps
 * the version in user_version. PostgreSQL keeps it in the table schema_version, migrates under
 * the writer lock (brokers starting together take turns), creates the compatibility functions
 * (common/cm-db-pg-compat.sql) with the first migration, and runs @pg_migrations[v] when that
 * is set, else @migrations[v] translated by cm_db_dialect_ddl(); @pg_migrations may be NULL.
 * Returns: 0, or a negative errno with @err set.
 */
int cm_db_migrate(CmDb *db, const char *const *migrations, const char *const *pg_migrations,
                  unsigned n, CmError *err);
