/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <errno.h>
#include <stdint.h>

#include <sqlite3.h>

#include "cm-error.h"

typedef struct CmDb CmDb;

typedef enum {
    CM_DB_READWRITE = 0,
    CM_DB_READONLY = 1 << 0,
    /* Synchronous NORMAL instead of FULL: for spools whose loss on power cut is acceptable. */
    CM_DB_RELAXED = 1 << 1,
} CmDbFlags;

/**
 * cm_db_global_init:
 * Process-wide SQLite settings; call once before any database is opened. Turns off SQLite's
 * memory statistics, which take one global lock on every allocation.
 */
void cm_db_global_init(void);

/**
 * cm_db_open:
 * Opens (creating if needed) the database at @path in WAL mode with foreign keys on, a busy
 * timeout, SQLITE_DBCONFIG_DEFENSIVE and untrusted schema, synchronous=FULL unless
 * CM_DB_RELAXED. One CmDb belongs to one thread at a time.
 * Returns: 0 and the handle in @ret, or a negative errno with @err set.
 */
int cm_db_open(const char *path, CmDbFlags flags, CmDb **ret, CmError *err);

/** cm_db_close: finalizes cached statements and closes. Accepts NULL. Returns: NULL. */
CmDb *cm_db_close(CmDb *db);
CM_DEFINE_TRIVIAL_CLEANUP_FUNC(CmDb *, cm_db_close)

sqlite3 *cm_db_handle(CmDb *db);

/**
 * cm_db_stmt:
 * Returns the prepared statement for @sql from this connection's cache, reset and with its
 * bindings cleared, preparing it on first use. @sql must be a string with static lifetime:
 * the cache is keyed by its address.
 * Returns: the statement, or NULL with @err set (CM_ERROR_INTERNAL).
 */
sqlite3_stmt *cm_db_stmt(CmDb *db, const char *sql, CmError *err);

/*
 * Type-checked binding: CM_DB_BIND(stmt, a, b, c) binds a, b, c to parameters 1, 2, 3,
 * choosing the SQLite call from each argument's C type (integers, double, strings; a NULL
 * pointer binds SQL NULL). Evaluates to 0, or -EINVAL when a bind failed.
 */
int cm_db_bind_i64_(sqlite3_stmt *s, int idx, int64_t v);
int cm_db_bind_double_(sqlite3_stmt *s, int idx, double v);
int cm_db_bind_text_(sqlite3_stmt *s, int idx, const char *v);
int cm_db_bind_null_(sqlite3_stmt *s, int idx, const void *v);

#define cm_db_bind_value(stmt, idx, v)                                                             \
    _Generic((v),                                                                                  \
        char *: cm_db_bind_text_,                                                                  \
        const char *: cm_db_bind_text_,                                                            \
        void *: cm_db_bind_null_,                                                                  \
        _Bool: cm_db_bind_i64_,                                                                    \
        int: cm_db_bind_i64_,                                                                      \
        unsigned: cm_db_bind_i64_,                                                                 \
        long: cm_db_bind_i64_,                                                                     \
        unsigned long: cm_db_bind_i64_,                                                            \
        long long: cm_db_bind_i64_,                                                                \
        double: cm_db_bind_double_)(stmt, idx, v)

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
#define CM__DB_NARGS(...) CM__DB_NARGS_(__VA_ARGS__, 20, 19, 18, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1)
#define CM__DB_NARGS_(_1, _2, _3, _4, _5, _6, _7, _8, _9, _10, _11, _12, _13, _14, _15, _16, _17, _18, _19, _20, N, ...) N
#define CM__DB_CAT(a, b) CM__DB_CAT_(a, b)
#define CM__DB_CAT_(a, b) a##b
#define CM_DB_BIND(stmt, ...)                                                                      \
    (CM__DB_CAT(CM__DB_B, CM__DB_NARGS(__VA_ARGS__))(stmt, 1, __VA_ARGS__) ? -EINVAL : 0)

/**
 * cm_db_exec:
 * Runs one or more statements without results.
 * Returns: 0, or a negative errno with @err set.
 */
int cm_db_exec(CmDb *db, const char *sql, CmError *err);

/**
 * cm_db_step_done:
 * Steps a statement that returns no rows and resets it.
 * Returns: 0, -EEXIST on a constraint violation, or another negative errno with @err set.
 */
int cm_db_step_done(CmDb *db, sqlite3_stmt *stmt, CmError *err);

/**
 * cm_db_step_row:
 * Steps once. Returns: 1 when a row is available, 0 when done, or a negative errno with @err.
 */
int cm_db_step_row(CmDb *db, sqlite3_stmt *stmt, CmError *err);

int cm_db_begin_immediate(CmDb *db, CmError *err);
int cm_db_begin_read(CmDb *db, CmError *err);
int cm_db_commit(CmDb *db, CmError *err);
/** cm_db_rollback: rolls back if a transaction is open; never fails. */
void cm_db_rollback(CmDb *db);

/**
 * cm_db_migrate:
 * Brings the schema to version @n by applying @migrations[user_version .. n-1], each in its
 * own transaction together with the new user_version. Refuses a database newer than @n.
 * Returns: 0, or a negative errno with @err set.
 */
int cm_db_migrate(CmDb *db, const char *const *migrations, unsigned n, CmError *err);

/** cm_db_last_insert_id: Returns: the rowid of the last insert on this connection. */
int64_t cm_db_last_insert_id(CmDb *db);

/** cm_db_col_text: Returns: column @i as text, or NULL for SQL NULL. */
const char *cm_db_col_text(sqlite3_stmt *stmt, int i);

static inline void cm_stmt_resetp(sqlite3_stmt **s)
{
    if (*s) {
        sqlite3_reset(*s);
        sqlite3_clear_bindings(*s);
    }
}
/* For statements from cm_db_stmt(): reset when leaving scope, the cache keeps them. */
#define _cleanup_stmt_ _cleanup_(cm_stmt_resetp)

static inline void cm_stmt_finalizep(sqlite3_stmt **s)
{
    if (*s)
        sqlite3_finalize(*s);
}
