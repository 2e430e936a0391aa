/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cm-db.h"
#include "cm-log.h"

#define STMT_CACHE_SIZE 512 /* power of two; more distinct SQL strings than the code holds */

struct CmDb {
    sqlite3 *db;
    struct {
        const char *sql;
        sqlite3_stmt *stmt;
    } cache[STMT_CACHE_SIZE];
};

static int db_error(CmDb *db, CmError *err, const char *what)
{
    int code = sqlite3_extended_errcode(db->db);
    int primary = code & 0xff;

    if (primary == SQLITE_CONSTRAINT) {
        cm_error_set_code(err, CM_ERROR_CONFLICT, "constraint", "", "%s: %s", what,
                          sqlite3_errmsg(db->db));
        return -EEXIST;
    }
    if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED) {
        cm_error_set(err, CM_ERROR_UNAVAILABLE, "", "database is busy, try again");
        return -EAGAIN;
    }
    if (primary == SQLITE_FULL)
        cm_error_set(err, CM_ERROR_UNAVAILABLE, "", "disk full");
    else
        cm_error_set(err, CM_ERROR_INTERNAL, "", "database error");
    cm_log_error("sqlite: %s: %s (%d)", what, sqlite3_errmsg(db->db), code);
    return -EIO;
}

void cm_db_global_init(void)
{
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

int cm_db_open(const char *path, CmDbFlags flags, CmDb **ret, CmError *err)
{
    CmDb *db;
    int r, oflags;
    int on = 1;

    db = calloc(1, sizeof(*db));
    if (!db)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");

    oflags = SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE;
    oflags |= (flags & CM_DB_READONLY) ? SQLITE_OPEN_READONLY
                                        : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    r = sqlite3_open_v2(path, &db->db, oflags, NULL);
    if (r != SQLITE_OK) {
        cm_error_set(err, CM_ERROR_INTERNAL, "", "cannot open database %s: %s", path,
                     db->db ? sqlite3_errmsg(db->db) : sqlite3_errstr(r));
        sqlite3_close(db->db);
        free(db);
        return -EIO;
    }
    sqlite3_extended_result_codes(db->db, 1);
    sqlite3_busy_timeout(db->db, 5000);
    /* Defensive: no writable_schema, no corrupting PRAGMAs even through a bug of ours. */
    sqlite3_db_config(db->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
    sqlite3_db_config(db->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
    sqlite3_db_config(db->db, SQLITE_DBCONFIG_ENABLE_FKEY, 1, &on);

    const char *setup = (flags & CM_DB_READONLY) ? "PRAGMA foreign_keys=ON;"
                        : (flags & CM_DB_RELAXED)
                            ? "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                              "PRAGMA foreign_keys=ON;"
                            : "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                              "PRAGMA foreign_keys=ON;";
    r = cm_db_exec(db, setup, err);
    if (r < 0) {
        cm_db_close(db);
        return r;
    }
    *ret = db;
    return 0;
}

CmDb *cm_db_close(CmDb *db)
{
    if (!db)
        return NULL;
    for (size_t i = 0; i < STMT_CACHE_SIZE; i++)
        sqlite3_finalize(db->cache[i].stmt);
    sqlite3_close_v2(db->db);
    free(db);
    return NULL;
}

sqlite3 *cm_db_handle(CmDb *db)
{
    return db->db;
}

sqlite3_stmt *cm_db_stmt(CmDb *db, const char *sql, CmError *err)
{
    uintptr_t h = (uintptr_t)sql;
    size_t i;

    h ^= h >> 17;
    h *= 0x9E3779B97F4A7C15ULL;
    i = (size_t)(h >> 40) & (STMT_CACHE_SIZE - 1);
    for (size_t probe = 0; probe < STMT_CACHE_SIZE; probe++, i = (i + 1) & (STMT_CACHE_SIZE - 1)) {
        if (db->cache[i].sql == sql) {
            sqlite3_reset(db->cache[i].stmt);
            sqlite3_clear_bindings(db->cache[i].stmt);
            return db->cache[i].stmt;
        }
        if (!db->cache[i].sql) {
            sqlite3_stmt *stmt = NULL;
            if (sqlite3_prepare_v3(db->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, NULL) !=
                SQLITE_OK) {
                db_error(db, err, "prepare");
                cm_log_error("sqlite: failed statement: %s", sql);
                return NULL;
            }
            db->cache[i].sql = sql;
            db->cache[i].stmt = stmt;
            return stmt;
        }
    }
    cm_error_set(err, CM_ERROR_INTERNAL, "", "statement cache full");
    return NULL;
}

int cm_db_bind_i64_(sqlite3_stmt *s, int idx, int64_t v)
{
    return sqlite3_bind_int64(s, idx, v) == SQLITE_OK ? 0 : 1;
}

int cm_db_bind_double_(sqlite3_stmt *s, int idx, double v)
{
    return sqlite3_bind_double(s, idx, v) == SQLITE_OK ? 0 : 1;
}

int cm_db_bind_text_(sqlite3_stmt *s, int idx, const char *v)
{
    int r = v ? sqlite3_bind_text(s, idx, v, -1, SQLITE_TRANSIENT) : sqlite3_bind_null(s, idx);
    return r == SQLITE_OK ? 0 : 1;
}

int cm_db_bind_null_(sqlite3_stmt *s, int idx, const void *v)
{
    (void)v;
    return sqlite3_bind_null(s, idx) == SQLITE_OK ? 0 : 1;
}

int cm_db_exec(CmDb *db, const char *sql, CmError *err)
{
    char *msg = NULL;
    if (sqlite3_exec(db->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        int r = db_error(db, err, msg ? msg : "exec");
        sqlite3_free(msg);
        return r;
    }
    return 0;
}

int cm_db_step_done(CmDb *db, sqlite3_stmt *stmt, CmError *err)
{
    int r = sqlite3_step(stmt);
    if (r == SQLITE_DONE || r == SQLITE_ROW) {
        sqlite3_reset(stmt);
        return 0;
    }
    r = db_error(db, err, "step");
    sqlite3_reset(stmt);
    return r;
}

int cm_db_step_row(CmDb *db, sqlite3_stmt *stmt, CmError *err)
{
    int r = sqlite3_step(stmt);
    if (r == SQLITE_ROW)
        return 1;
    if (r == SQLITE_DONE)
        return 0;
    return db_error(db, err, "step");
}

int cm_db_begin_immediate(CmDb *db, CmError *err)
{
    return cm_db_exec(db, "BEGIN IMMEDIATE", err);
}

int cm_db_begin_read(CmDb *db, CmError *err)
{
    return cm_db_exec(db, "BEGIN DEFERRED", err);
}

int cm_db_commit(CmDb *db, CmError *err)
{
    return cm_db_exec(db, "COMMIT", err);
}

void cm_db_rollback(CmDb *db)
{
    if (!sqlite3_get_autocommit(db->db))
        sqlite3_exec(db->db, "ROLLBACK", NULL, NULL, NULL);
}

int cm_db_migrate(CmDb *db, const char *const *migrations, unsigned n, CmError *err)
{
    sqlite3_stmt *stmt;
    int64_t version = 0;
    int r;

    stmt = cm_db_stmt(db, "PRAGMA user_version", err);
    if (!stmt)
        return -EIO;
    r = cm_db_step_row(db, stmt, err);
    if (r < 0)
        return r;
    version = sqlite3_column_int64(stmt, 0);
    sqlite3_reset(stmt);

    if (version > (int64_t)n)
        return cm_error_set(err, CM_ERROR_INTERNAL, "",
                            "database schema version %lld is newer than this program (%u)",
                            (long long)version, n);

    for (unsigned v = (unsigned)version; v < n; v++) {
        char pragma[64];
        r = cm_db_begin_immediate(db, err);
        if (r < 0)
            return r;
        r = cm_db_exec(db, migrations[v], err);
        if (r >= 0) {
            snprintf(pragma, sizeof(pragma), "PRAGMA user_version=%u", v + 1);
            r = cm_db_exec(db, pragma, err);
        }
        if (r >= 0)
            r = cm_db_commit(db, err);
        if (r < 0) {
            cm_db_rollback(db);
            cm_log_error("migration to schema version %u failed", v + 1);
            return r;
        }
        cm_log_info("database schema migrated to version %u", v + 1);
    }
    return 0;
}

int64_t cm_db_last_insert_id(CmDb *db)
{
    return sqlite3_last_insert_rowid(db->db);
}

const char *cm_db_col_text(sqlite3_stmt *stmt, int i)
{
    return (const char *)sqlite3_column_text(stmt, i);
}
