/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "cm-db-priv.h"
#include "cm-log.h"
#include "cm-util.h"

/*
 * The API of cm-db.h and its SQLite backend. A PostgreSQL connection (db->pg, and st->pg on
 * its statements) is handed to cm-db-pg.c by one predictable branch at the top of each call,
 * so the SQLite path does what it did before plus that test.
 */
#define STMT_CACHE_SIZE CM_DB_STMT_CACHE_SIZE

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

static bool has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

int cm_db_open_url(const char *url, CmDbFlags flags, CmDb **ret, CmError *err)
{
    CmDb *db;
    int r;

    if (has_prefix(url, "sqlite:"))
        return cm_db_open(url + strlen("sqlite:"), flags, ret, err);
    if (!has_prefix(url, "postgresql://") && !has_prefix(url, "postgres://")) {
        if (strstr(url, "://") || !*url)
            return cm_error_set(err, CM_ERROR_INVALID, "database",
                                "the database must be sqlite:PATH or postgresql://...");
        return cm_db_open(url, flags, ret, err);
    }
    db = calloc(1, sizeof(*db));
    if (!db)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    r = cm_pg_open(url, flags, db, err);
    if (r < 0) {
        cm_pg_close(db);
        free(db);
        return r;
    }
    *ret = db;
    return 0;
}

char *cm_db_url_redact(const char *url)
{
    _cleanup_free_ char *s = strdup(url);
    char *scheme, *at, *colon, *p;

    if (!s)
        return NULL;
    /* scheme://user:PASSWORD@host... */
    scheme = strstr(s, "://");
    if (scheme) {
        char *auth = scheme + 3;
        at = strchr(auth, '@');
        colon = strchr(auth, ':');
        if (at && colon && colon < at && !memchr(auth, '/', (size_t)(at - auth))) {
            char *t = cm_strdup_printf("%.*s:***%s", (int)(colon - s), s, at);
            if (!t)
                return NULL;
            free(s);
            s = t;
        }
    }
    /* ...?password=SECRET&... */
    for (p = strstr(s, "password="); p; p = strstr(p + 1, "password=")) {
        if (p != s && p[-1] != '?' && p[-1] != '&' && p[-1] != ' ')
            continue;
        char *end = p + strlen("password=") + strcspn(p + strlen("password="), "& ");
        char *t = cm_strdup_printf("%.*spassword=***%s", (int)(p - s), s, end);
        if (!t)
            return NULL;
        p = t + (p - s);
        free(s);
        s = t;
    }
    return TAKE_PTR(s);
}

CmDb *cm_db_close(CmDb *db)
{
    if (!db)
        return NULL;
    for (size_t i = 0; i < STMT_CACHE_SIZE; i++) {
        sqlite3_finalize(db->cache[i].stmt);
        cm_pg_stmt_free(&db->cache[i]);
    }
    if (CM_UNLIKELY(db->pg))
        cm_pg_close(db);
    else
        sqlite3_close_v2(db->db);
    free(db);
    return NULL;
}

CmDbBackend cm_db_backend(CmDb *db)
{
    return db->pg ? CM_DB_POSTGRESQL : CM_DB_SQLITE;
}

const char *cm_db_sql(CmDb *db, const char *sqlite_text, const char *pg_text)
{
    return db && db->pg ? pg_text : sqlite_text;
}

sqlite3 *cm_db_handle(CmDb *db)
{
    return db->db;
}

CmStmt *cm_db_prepare(CmDb *db, const char *sql, CmError *err)
{
    uintptr_t h = (uintptr_t)sql;
    size_t i;

    /* A connection that could not be opened has set @err already. */
    if (!db) {
        if (!cm_error_is_set(err))
            cm_error_set(err, CM_ERROR_UNAVAILABLE, "", "no database connection");
        return NULL;
    }

    if (CM_UNLIKELY(db->pg) && cm_pg_ready(db, err) < 0)
        return NULL;
    h ^= h >> 17;
    h *= 0x9E3779B97F4A7C15ULL;
    i = (size_t)(h >> 40) & (STMT_CACHE_SIZE - 1);
    for (size_t probe = 0; probe < STMT_CACHE_SIZE; probe++, i = (i + 1) & (STMT_CACHE_SIZE - 1)) {
        CmStmt *st = &db->cache[i];
        if (st->sql == sql) {
            if (CM_UNLIKELY(st->pg)) {
                cm_pg_reset(st, true);
                cm_pg_set_rows(st, 0);
                st->changes = 0;
                return st;
            }
            sqlite3_reset(st->stmt);
            sqlite3_clear_bindings(st->stmt);
            st->changes = 0;
            return st;
        }
        if (CM_UNLIKELY(!st->sql && db->pg)) {
            st->db = db;
            if (cm_pg_stmt_init(st, sql, err) < 0)
                return NULL;
            st->sql = sql;
            return st;
        }
        if (!st->sql) {
            if (sqlite3_prepare_v3(db->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st->stmt, NULL) !=
                SQLITE_OK) {
                db_error(db, err, "prepare");
                cm_log_error("sqlite: failed statement: %s", sql);
                st->stmt = NULL;
                return NULL;
            }
            st->db = db;
            st->sql = sql;
            return st;
        }
    }
    cm_error_set(err, CM_ERROR_INTERNAL, "", "statement cache full");
    return NULL;
}

void cm_stmt_reset(CmStmt *st)
{
    if (!st)
        return;
    if (CM_UNLIKELY(st->pg)) {
        cm_pg_reset(st, true);
        return;
    }
    sqlite3_reset(st->stmt);
    sqlite3_clear_bindings(st->stmt);
}

void cm_stmt_set_rows(CmStmt *st, CmDbRows flags)
{
    if (CM_UNLIKELY(st->pg))
        cm_pg_set_rows(st, flags);
}

int cm_stmt_step(CmStmt *st, CmError *err)
{
    int r;

    if (CM_UNLIKELY(st->pg))
        return cm_pg_step(st, err);
    r = sqlite3_step(st->stmt);
    if (r == SQLITE_ROW)
        return 1;
    if (r == SQLITE_DONE) {
        st->changes = sqlite3_changes64(st->db->db);
        return 0;
    }
    r = db_error(st->db, err, "step");
    sqlite3_reset(st->stmt);
    return r;
}

int cm_stmt_exec(CmStmt *st, CmError *err)
{
    int r;
    while ((r = cm_stmt_step(st, err)) > 0)
        ;
    if (CM_UNLIKELY(st->pg))
        cm_pg_reset(st, false);
    else
        sqlite3_reset(st->stmt);
    return r;
}

int64_t cm_stmt_changes(CmStmt *st)
{
    return st->changes;
}

int cm_stmt_columns(CmStmt *st)
{
    if (CM_UNLIKELY(st->pg))
        return cm_pg_columns(st);
    return sqlite3_column_count(st->stmt);
}

const char *cm_stmt_name(CmStmt *st, int i)
{
    if (CM_UNLIKELY(st->pg))
        return cm_pg_name(st, i);
    return sqlite3_column_name(st->stmt, i);
}

CmDbType cm_stmt_type(CmStmt *st, int i)
{
    if (CM_UNLIKELY(st->pg))
        return cm_pg_type(st, i);
    switch (sqlite3_column_type(st->stmt, i)) {
    case SQLITE_INTEGER:
        return CM_DB_INTEGER;
    case SQLITE_FLOAT:
        return CM_DB_FLOAT;
    case SQLITE_TEXT:
        return CM_DB_TEXT;
    case SQLITE_BLOB:
        return CM_DB_BLOB;
    default:
        return CM_DB_NULL;
    }
}

bool cm_stmt_is_null(CmStmt *st, int i)
{
    if (CM_UNLIKELY(st->pg))
        return cm_pg_is_null(st, i);
    return sqlite3_column_type(st->stmt, i) == SQLITE_NULL;
}

int64_t cm_stmt_int(CmStmt *st, int i)
{
    if (CM_UNLIKELY(st->pg))
        return cm_pg_int(st, i);
    return sqlite3_column_int64(st->stmt, i);
}

double cm_stmt_double(CmStmt *st, int i)
{
    if (CM_UNLIKELY(st->pg))
        return cm_pg_double(st, i);
    return sqlite3_column_double(st->stmt, i);
}

const char *cm_stmt_text(CmStmt *st, int i)
{
    if (CM_UNLIKELY(st->pg))
        return cm_pg_text(st, i);
    return (const char *)sqlite3_column_text(st->stmt, i);
}

size_t cm_stmt_bytes(CmStmt *st, int i)
{
    if (CM_UNLIKELY(st->pg))
        return cm_pg_bytes(st, i);
    return (size_t)sqlite3_column_bytes(st->stmt, i);
}

const void *cm_stmt_blob(CmStmt *st, int i)
{
    if (CM_UNLIKELY(st->pg))
        return cm_pg_blob(st, i);
    return sqlite3_column_blob(st->stmt, i);
}

char *cm_stmt_strdup(CmStmt *st, int i)
{
    const char *t = cm_stmt_text(st, i);
    return strdup(t ? t : "");
}

json_object *cm_stmt_row_json(CmStmt *st)
{
    json_object *o = json_object_new_object();
    int n = cm_stmt_columns(st);

    for (int i = 0; i < n; i++) {
        const char *name = cm_stmt_name(st, i), *tag = strrchr(name, ':');
        size_t keylen = tag ? (size_t)(tag - name) : strlen(name);
        const char *dot = memchr(name, '.', keylen);
        json_object *v = NULL, *into = o;

        if (cm_stmt_is_null(st, i))
            v = NULL;
        else if (tag && strcmp(tag, ":bool") == 0)
            v = json_object_new_boolean(cm_stmt_int(st, i) != 0);
        else if (tag && strcmp(tag, ":json") == 0) {
            v = json_tokener_parse(cm_stmt_text(st, i));
            if (!v)
                v = json_object_new_string_len(cm_stmt_text(st, i), (int)cm_stmt_bytes(st, i));
        } else
            switch (cm_stmt_type(st, i)) {
            case CM_DB_INTEGER:
                v = json_object_new_int64(cm_stmt_int(st, i));
                break;
            case CM_DB_FLOAT:
                v = json_object_new_double(cm_stmt_double(st, i));
                break;
            default:
                v = json_object_new_string_len(cm_stmt_text(st, i), (int)cm_stmt_bytes(st, i));
                break;
            }
        /* "parent.key": into the object "parent", made where its first column is. */
        if (dot) {
            const char *parent = strndupa(name, (size_t)(dot - name));
            if (!json_object_object_get_ex(o, parent, &into)) {
                into = json_object_new_object();
                json_object_object_add(o, parent, into);
            }
            keylen -= (size_t)(dot + 1 - name);
            name = dot + 1;
        }
        /* Column names live only as long as the prepared statement: the key is copied. */
        json_object_object_add(into, strndupa(name, keylen), v);
    }
    return o;
}

int cm_stmt_rows_json(CmStmt *st, json_object **ret, CmError *err)
{
    json_object *items = json_object_new_array();
    int r;

    while ((r = cm_stmt_step(st, err)) > 0)
        json_object_array_add(items, cm_stmt_row_json(st));
    cm_stmt_reset(st);
    if (r < 0) {
        json_object_put(items);
        return r;
    }
    *ret = items;
    return 0;
}

int cm_stmt_ints(CmStmt *st, int64_t **ret, size_t *ret_n, CmError *err)
{
    _cleanup_free_ int64_t *v = NULL;
    size_t n = 0, cap = 0;
    int r;

    while ((r = cm_stmt_step(st, err)) > 0) {
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 8;
            int64_t *nv = reallocarray(v, ncap, sizeof(*nv));
            if (!nv) {
                cm_stmt_reset(st);
                return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
            }
            v = nv;
            cap = ncap;
        }
        v[n++] = cm_stmt_int(st, 0);
    }
    cm_stmt_reset(st);
    if (r < 0)
        return r;
    *ret = TAKE_PTR(v);
    *ret_n = n;
    return 0;
}

int cm_stmt_bind_i64(CmStmt *st, int idx, int64_t v)
{
    if (CM_UNLIKELY(st->pg))
        return cm_pg_bind(st, idx, CM_DB_INTEGER, &v, 0);
    return sqlite3_bind_int64(st->stmt, idx, v) == SQLITE_OK ? 0 : -EINVAL;
}

int cm_stmt_bind_double(CmStmt *st, int idx, double v)
{
    if (CM_UNLIKELY(st->pg))
        return cm_pg_bind(st, idx, CM_DB_FLOAT, &v, 0);
    return sqlite3_bind_double(st->stmt, idx, v) == SQLITE_OK ? 0 : -EINVAL;
}

int cm_stmt_bind_text(CmStmt *st, int idx, const char *v)
{
    int r;

    if (CM_UNLIKELY(st->pg))
        return cm_pg_bind(st, idx, v ? CM_DB_TEXT : CM_DB_NULL, v, 0);
    r = v ? sqlite3_bind_text(st->stmt, idx, v, -1, SQLITE_TRANSIENT)
          : sqlite3_bind_null(st->stmt, idx);
    return r == SQLITE_OK ? 0 : -EINVAL;
}

int cm_stmt_bind_blob(CmStmt *st, int idx, const void *v, size_t len)
{
    if (CM_UNLIKELY(st->pg))
        return cm_pg_bind(st, idx, v ? CM_DB_BLOB : CM_DB_NULL, v, len);
    return sqlite3_bind_blob64(st->stmt, idx, v, len, SQLITE_TRANSIENT) == SQLITE_OK ? 0 : -EINVAL;
}

int cm_stmt_bind_null(CmStmt *st, int idx)
{
    if (CM_UNLIKELY(st->pg))
        return cm_pg_bind(st, idx, CM_DB_NULL, NULL, 0);
    return sqlite3_bind_null(st->stmt, idx) == SQLITE_OK ? 0 : -EINVAL;
}

int cm_stmt_bind_i64_(CmStmt *s, int idx, int64_t v)
{
    return cm_stmt_bind_i64(s, idx, v) ? 1 : 0;
}

int cm_stmt_bind_double_(CmStmt *s, int idx, double v)
{
    return cm_stmt_bind_double(s, idx, v) ? 1 : 0;
}

int cm_stmt_bind_text_(CmStmt *s, int idx, const char *v)
{
    return cm_stmt_bind_text(s, idx, v) ? 1 : 0;
}

int cm_stmt_bind_null_(CmStmt *s, int idx, const void *v)
{
    (void)v;
    return cm_stmt_bind_null(s, idx) ? 1 : 0;
}

int cm_db_exec(CmDb *db, const char *sql, CmError *err)
{
    char *msg = NULL;

    if (CM_UNLIKELY(db->pg))
        return cm_pg_exec(db, sql, err);
    if (sqlite3_exec(db->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        int r = db_error(db, err, msg ? msg : "exec");
        sqlite3_free(msg);
        return r;
    }
    return 0;
}

int cm_db_begin_immediate(CmDb *db, CmError *err)
{
    if (CM_UNLIKELY(db->pg))
        return cm_pg_begin_immediate(db, err);
    return cm_db_exec(db, "BEGIN IMMEDIATE", err);
}

int cm_db_copy_in(CmDb *db, const char *sql, const char *data, size_t len, int64_t *ret_rows,
                  CmError *err)
{
    if (CM_UNLIKELY(db->pg))
        return cm_pg_copy_in(db, sql, data, len, ret_rows, err);
    cm_error_set(err, CM_ERROR_INTERNAL, "", "COPY is PostgreSQL's");
    return -ENOTSUP;
}

int cm_db_begin_shared(CmDb *db, int64_t key, CmError *err)
{
    if (CM_UNLIKELY(db->pg))
        return cm_pg_begin_shared(db, key, err);
    return cm_db_exec(db, "BEGIN IMMEDIATE", err);
}

int cm_db_serialize(CmDb *db, CmError *err)
{
    return CM_UNLIKELY(db->pg) ? cm_pg_serialize(db, err) : 0;
}

int cm_db_begin_read(CmDb *db, CmError *err)
{
    if (CM_UNLIKELY(db->pg))
        return cm_pg_begin_read(db, err);
    return cm_db_exec(db, "BEGIN DEFERRED", err);
}

int cm_db_commit(CmDb *db, CmError *err)
{
    if (CM_UNLIKELY(db->pg))
        return cm_pg_commit(db, err);
    return cm_db_exec(db, "COMMIT", err);
}

void cm_db_rollback(CmDb *db)
{
    if (CM_UNLIKELY(db->pg)) {
        cm_pg_rollback(db);
        return;
    }
    if (!sqlite3_get_autocommit(db->db))
        sqlite3_exec(db->db, "ROLLBACK", NULL, NULL, NULL);
}

int cm_db_migrate(CmDb *db, const char *const *migrations, const char *const *pg_migrations,
                  unsigned n, CmError *err)
{
    int64_t version = 0;
    int r;

    if (CM_UNLIKELY(db->pg))
        return cm_pg_migrate(db, migrations, pg_migrations, n, err);

    {
        _cleanup_stmt_ CmStmt *st = cm_db_prepare(db, "PRAGMA user_version", err);
        if (!st)
            return -EIO;
        r = cm_stmt_step(st, err);
        if (r < 0)
            return r;
        version = cm_stmt_int(st, 0);
    }

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
