/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "ag-spool.h"
#include "cm-db.h"
#include "cm-log.h"
#include "cm-time.h"

static const char *const kinds[AG_RECORD_KIND_MAX] = {"instance", "unowned", "host"};

static const char *const migrations[] = {
    "CREATE TABLE spool ("
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  kind TEXT NOT NULL,"
    "  payload TEXT NOT NULL,"
    "  bytes INTEGER NOT NULL,"
    "  created INTEGER NOT NULL"
    ");"
    "CREATE TABLE rejected ("
    "  seq INTEGER PRIMARY KEY,"
    "  kind TEXT NOT NULL,"
    "  payload TEXT NOT NULL,"
    "  status INTEGER NOT NULL,"
    "  reason TEXT NOT NULL,"
    "  at INTEGER NOT NULL"
    ");"
    "CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;"
    "INSERT INTO counters VALUES ('dropped_total', 0), ('rejected_total', 0),"
    " ('pushed_total', 0), ('bytes', 0);"
    "CREATE TABLE meters (name TEXT PRIMARY KEY, state BLOB NOT NULL) WITHOUT ROWID;",
};

struct AgSpool {
    pthread_mutex_t lock; /* the cycle and the pusher share one connection */
    CmDb *db;
    int64_t max_bytes;
};

int ag_spool_open(const char *path, int64_t max_bytes, AgSpool **ret, CmError *err)
{
    AgSpool *s = calloc(1, sizeof(*s));
    int r;
    if (!s)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    /* synchronous=NORMAL in WAL: a killed agent loses nothing committed; only a power cut
     * can take the last transactions, which the broker's dedup makes harmless to resend. */
    r = cm_db_open(path, CM_DB_RELAXED, &s->db, err);
    if (r >= 0)
        r = cm_db_migrate(s->db, migrations, NULL, ELEMENTSOF(migrations), err);
    if (r < 0) {
        cm_db_close(s->db);
        free(s);
        return r;
    }
    pthread_mutex_init(&s->lock, NULL);
    s->max_bytes = max_bytes;
    *ret = s;
    return 0;
}

AgSpool *ag_spool_close(AgSpool *s)
{
    if (!s)
        return NULL;
    cm_db_close(s->db);
    pthread_mutex_destroy(&s->lock);
    free(s);
    return NULL;
}

static int counter_add(CmDb *db, const char *name, int64_t delta, CmError *err)
{
    sqlite3_stmt *st = cm_db_stmt(db, "UPDATE counters SET value = value + ? WHERE name = ?", err);
    if (!st)
        return -EIO;
    CM_DB_BIND(st, delta, name);
    return cm_db_step_done(db, st, err);
}

static int64_t counter_get(CmDb *db, const char *name)
{
    sqlite3_stmt *st = cm_db_stmt(db, "SELECT value FROM counters WHERE name = ?", NULL);
    int64_t v = 0;
    if (!st)
        return 0;
    CM_DB_BIND(st, name);
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return v;
}

int ag_spool_append(AgSpool *s, const AgRecord *records, size_t n, const AgState *states,
                    size_t n_states, CmError *err)
{
    int64_t now = cm_now_ms() / 1000, added = 0, dropped = 0;
    sqlite3_stmt *st;
    int r;

    pthread_mutex_lock(&s->lock);
    r = cm_db_begin_immediate(s->db, err);
    if (r < 0)
        goto out;
    st = cm_db_stmt(s->db, "INSERT INTO spool(kind, payload, bytes, created) VALUES (?, ?, ?, ?)",
                    err);
    r = st ? 0 : -EIO;
    for (size_t i = 0; r >= 0 && i < n; i++) {
        int64_t bytes = (int64_t)strlen(records[i].payload);
        CM_DB_BIND(st, kinds[records[i].kind], records[i].payload, bytes, now);
        r = cm_db_step_done(s->db, st, err);
        added += bytes;
    }
    if (r >= 0)
        r = counter_add(s->db, "bytes", added, err);
    /* The meters as they stand after this cycle, with the windows it finished. */
    if (r >= 0 && states)
        r = cm_db_exec(s->db, "DELETE FROM meters", err);
    for (size_t i = 0; r >= 0 && states && i < n_states; i++) {
        sqlite3_stmt *ms = cm_db_stmt(s->db, "INSERT OR REPLACE INTO meters VALUES (?, ?)", err);
        if (!ms) {
            r = -EIO;
            break;
        }
        sqlite3_bind_text(ms, 1, states[i].name, -1, SQLITE_TRANSIENT);
        sqlite3_bind_blob(ms, 2, states[i].data, (int)states[i].len, SQLITE_TRANSIENT);
        r = cm_db_step_done(s->db, ms, err);
    }
    /* Over the bound: the oldest windows go, and are counted. */
    while (r >= 0 && counter_get(s->db, "bytes") > s->max_bytes) {
        sqlite3_stmt *old =
            cm_db_stmt(s->db, "SELECT seq, bytes FROM spool ORDER BY seq LIMIT 1", err);
        int64_t seq = 0, bytes = 0;
        if (!old) {
            r = -EIO;
            break;
        }
        if (sqlite3_step(old) == SQLITE_ROW) {
            seq = sqlite3_column_int64(old, 0);
            bytes = sqlite3_column_int64(old, 1);
        }
        sqlite3_reset(old);
        if (!seq)
            break;
        sqlite3_stmt *del = cm_db_stmt(s->db, "DELETE FROM spool WHERE seq = ?", err);
        if (!del) {
            r = -EIO;
            break;
        }
        CM_DB_BIND(del, seq);
        r = cm_db_step_done(s->db, del, err);
        if (r >= 0)
            r = counter_add(s->db, "bytes", -bytes, err);
        if (r >= 0)
            r = counter_add(s->db, "dropped_total", 1, err);
        dropped++;
    }
    if (r >= 0)
        r = cm_db_commit(s->db, err);
    if (r < 0)
        cm_db_rollback(s->db);
    else if (dropped)
        cm_log_warning("spool full: dropped the %lld oldest window(s)", (long long)dropped);
out:
    pthread_mutex_unlock(&s->lock);
    return r;
}

int ag_spool_peek(AgSpool *s, size_t max, int64_t max_bytes, int64_t *seqs, AgRecord *ret,
                  CmError *err)
{
    sqlite3_stmt *st;
    size_t n = 0;
    int64_t bytes = 0;
    pthread_mutex_lock(&s->lock);
    st = cm_db_stmt(s->db, "SELECT seq, kind, payload, bytes FROM spool ORDER BY seq LIMIT ?", err);
    if (!st) {
        pthread_mutex_unlock(&s->lock);
        return -EIO;
    }
    CM_DB_BIND(st, (int64_t)max);
    while (n < max && sqlite3_step(st) == SQLITE_ROW) {
        int64_t b = sqlite3_column_int64(st, 3);
        if (n > 0 && bytes + b > max_bytes)
            break;
        const char *kind = cm_db_col_text(st, 1);
        seqs[n] = sqlite3_column_int64(st, 0);
        ret[n].kind = strcmp(kind, "host") == 0      ? AG_RECORD_HOST
                      : strcmp(kind, "unowned") == 0 ? AG_RECORD_UNOWNED
                                                     : AG_RECORD_INSTANCE;
        ret[n].payload = strdup(cm_db_col_text(st, 2));
        if (!ret[n].payload)
            break;
        bytes += b;
        n++;
    }
    sqlite3_reset(st);
    pthread_mutex_unlock(&s->lock);
    return (int)n;
}

void ag_spool_records_free(AgRecord *r, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(r[i].payload);
        r[i].payload = NULL;
    }
}

static int remove_rows(AgSpool *s, const int64_t *seqs, size_t n, const char *counter, long status,
                       const char *reason, CmError *err)
{
    int r;
    int64_t bytes = 0, removed = 0;
    pthread_mutex_lock(&s->lock);
    r = cm_db_begin_immediate(s->db, err);
    for (size_t i = 0; r >= 0 && i < n; i++) {
        sqlite3_stmt *st;
        if (reason) {
            st = cm_db_stmt(s->db,
                            "INSERT INTO rejected(seq, kind, payload, status, reason, at)"
                            " SELECT seq, kind, payload, ?, ?, ? FROM spool WHERE seq = ?",
                            err);
            if (!st) {
                r = -EIO;
                break;
            }
            CM_DB_BIND(st, (int64_t)status, reason, cm_now_ms() / 1000, seqs[i]);
            r = cm_db_step_done(s->db, st, err);
        }
        st = cm_db_stmt(s->db, "SELECT bytes FROM spool WHERE seq = ?", err);
        if (r >= 0 && st) {
            CM_DB_BIND(st, seqs[i]);
            if (sqlite3_step(st) == SQLITE_ROW)
                bytes += sqlite3_column_int64(st, 0);
            sqlite3_reset(st);
        }
        st = cm_db_stmt(s->db, "DELETE FROM spool WHERE seq = ?", err);
        if (r >= 0 && st) {
            CM_DB_BIND(st, seqs[i]);
            r = cm_db_step_done(s->db, st, err);
            /* A row the bound dropped while it was in flight is counted there, not here. */
            removed += sqlite3_changes(cm_db_handle(s->db));
        }
    }
    if (r >= 0)
        r = counter_add(s->db, counter, removed, err);
    if (r >= 0)
        r = counter_add(s->db, "bytes", -bytes, err);
    if (r >= 0)
        r = cm_db_commit(s->db, err);
    if (r < 0)
        cm_db_rollback(s->db);
    pthread_mutex_unlock(&s->lock);
    return r;
}

int ag_spool_ack(AgSpool *s, const int64_t *seqs, size_t n, CmError *err)
{
    return remove_rows(s, seqs, n, "pushed_total", 0, NULL, err);
}

int ag_spool_reject(AgSpool *s, const int64_t *seqs, size_t n, long status, const char *reason,
                    CmError *err)
{
    return remove_rows(s, seqs, n, "rejected_total", status, reason ? reason : "", err);
}

int ag_spool_stats(AgSpool *s, AgSpoolStats *ret, CmError *err)
{
    sqlite3_stmt *st;
    AgSpoolStats v = {0};
    pthread_mutex_lock(&s->lock);
    st = cm_db_stmt(s->db, "SELECT count(*), min(created) FROM spool", err);
    if (st && sqlite3_step(st) == SQLITE_ROW) {
        v.rows = sqlite3_column_int64(st, 0);
        v.oldest_created = sqlite3_column_int64(st, 1);
    }
    if (st)
        sqlite3_reset(st);
    v.bytes = counter_get(s->db, "bytes");
    v.dropped_total = counter_get(s->db, "dropped_total");
    v.rejected_total = counter_get(s->db, "rejected_total");
    v.pushed_total = counter_get(s->db, "pushed_total");
    pthread_mutex_unlock(&s->lock);
    *ret = v;
    return st ? 0 : -EIO;
}

int ag_spool_load_states(AgSpool *s,
                         void (*fn)(void *userdata, const char *name, const void *data, size_t len),
                         void *userdata, CmError *err)
{
    sqlite3_stmt *st;
    int n = 0;
    pthread_mutex_lock(&s->lock);
    st = cm_db_stmt(s->db, "SELECT name, state FROM meters", err);
    if (!st) {
        pthread_mutex_unlock(&s->lock);
        return -EIO;
    }
    while (sqlite3_step(st) == SQLITE_ROW) {
        fn(userdata, cm_db_col_text(st, 0), sqlite3_column_blob(st, 1),
           (size_t)sqlite3_column_bytes(st, 1));
        n++;
    }
    sqlite3_reset(st);
    pthread_mutex_unlock(&s->lock);
    return n;
}
