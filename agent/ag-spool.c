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
    _cleanup_stmt_ CmStmt *st =
        cm_db_prepare(db, "UPDATE counters SET value = value + ?1 WHERE name = ?2", err);
    if (!st)
        return -EIO;
    CM_DB_BIND(st, delta, name);
    return cm_stmt_exec(st, err);
}

static int64_t counter_get(CmDb *db, const char *name)
{
    _cleanup_stmt_ CmStmt *st =
        cm_db_prepare(db, "SELECT value FROM counters WHERE name = ?1", NULL);
    if (!st)
        return 0;
    CM_DB_BIND(st, name);
    return cm_stmt_step(st, NULL) > 0 ? cm_stmt_int(st, 0) : 0;
}

/* The meters as they stand after this cycle, with the windows it finished. */
static int save_states(CmDb *db, const AgState *states, size_t n, CmError *err)
{
    int r = cm_db_exec(db, "DELETE FROM meters", err);

    for (size_t i = 0; r >= 0 && i < n; i++) {
        _cleanup_stmt_ CmStmt *st =
            cm_db_prepare(db, "INSERT OR REPLACE INTO meters VALUES (?1, ?2)", err);
        if (!st)
            return -EIO;
        r = cm_stmt_bind_text(st, 1, states[i].name);
        if (r >= 0)
            r = cm_stmt_bind_blob(st, 2, states[i].data, states[i].len);
        if (r >= 0)
            r = cm_stmt_exec(st, err);
    }
    return r;
}

/* Over the bound: the oldest windows go, and are counted. Returns: how many, or < 0. */
static int drop_oldest(CmDb *db, int64_t max_bytes, CmError *err)
{
    int dropped = 0, r = 0;

    while (r >= 0 && counter_get(db, "bytes") > max_bytes) {
        _cleanup_stmt_ CmStmt *old =
            cm_db_prepare(db, "SELECT seq, bytes FROM spool ORDER BY seq LIMIT 1", err);
        int64_t seq, bytes;

        if (!old)
            return -EIO;
        r = cm_stmt_step(old, err);
        if (r <= 0)
            break;
        seq = cm_stmt_int(old, 0);
        bytes = cm_stmt_int(old, 1);
        cm_stmt_reset(old);
        _cleanup_stmt_ CmStmt *del = cm_db_prepare(db, "DELETE FROM spool WHERE seq = ?1", err);
        if (!del)
            return -EIO;
        CM_DB_BIND(del, seq);
        r = cm_stmt_exec(del, err);
        if (r >= 0)
            r = counter_add(db, "bytes", -bytes, err);
        if (r >= 0)
            r = counter_add(db, "dropped_total", 1, err);
        dropped++;
    }
    return r < 0 ? r : dropped;
}

int ag_spool_append(AgSpool *s, const AgRecord *records, size_t n, const AgState *states,
                    size_t n_states, CmError *err)
{
    int64_t now = cm_now_ms() / 1000, added = 0;
    int r, dropped = 0;

    pthread_mutex_lock(&s->lock);
    r = cm_db_begin_immediate(s->db, err);
    for (size_t i = 0; r >= 0 && i < n; i++) {
        _cleanup_stmt_ CmStmt *st = cm_db_prepare(
            s->db, "INSERT INTO spool(kind, payload, bytes, created) VALUES (?1, ?2, ?3, ?4)", err);
        int64_t bytes = (int64_t)strlen(records[i].payload);
        if (!st) {
            r = -EIO;
            break;
        }
        CM_DB_BIND(st, kinds[records[i].kind], records[i].payload, bytes, now);
        r = cm_stmt_exec(st, err);
        added += bytes;
    }
    if (r >= 0)
        r = counter_add(s->db, "bytes", added, err);
    if (r >= 0 && states)
        r = save_states(s->db, states, n_states, err);
    if (r >= 0)
        r = dropped = drop_oldest(s->db, s->max_bytes, err);
    if (r >= 0)
        r = cm_db_commit(s->db, err);
    if (r < 0)
        cm_db_rollback(s->db);
    else if (dropped)
        cm_log_warning("spool full: dropped the %d oldest window(s)", dropped);
    pthread_mutex_unlock(&s->lock);
    return r < 0 ? r : 0;
}

int ag_spool_peek(AgSpool *s, size_t max, int64_t max_bytes, int64_t *seqs, AgRecord *ret,
                  CmError *err)
{
    size_t n = 0;
    int64_t bytes = 0;

    pthread_mutex_lock(&s->lock);
    {
        _cleanup_stmt_ CmStmt *st = cm_db_prepare(
            s->db, "SELECT seq, kind, payload, bytes FROM spool ORDER BY seq LIMIT ?1", err);
        if (!st) {
            pthread_mutex_unlock(&s->lock);
            return -EIO;
        }
        CM_DB_BIND(st, (int64_t)max);
        while (n < max && cm_stmt_step(st, err) > 0) {
            int64_t b = cm_stmt_int(st, 3);
            const char *kind = cm_stmt_text(st, 1);
            if (n > 0 && bytes + b > max_bytes)
                break;
            seqs[n] = cm_stmt_int(st, 0);
            ret[n].kind = strcmp(kind, "host") == 0      ? AG_RECORD_HOST
                          : strcmp(kind, "unowned") == 0 ? AG_RECORD_UNOWNED
                                                         : AG_RECORD_INSTANCE;
            ret[n].payload = cm_stmt_strdup(st, 2);
            if (!ret[n].payload)
                break;
            bytes += b;
            n++;
        }
    }
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

/* Removes one row, rejected with @status and @reason first when @reason; its bytes and
 * whether it was still there (a row the bound dropped in flight is counted there) added up. */
static int remove_row(CmDb *db, int64_t seq, long status, const char *reason, int64_t *bytes,
                      int64_t *removed, CmError *err)
{
    int r;

    if (reason) {
        _cleanup_stmt_ CmStmt *st =
            cm_db_prepare(db,
                          "INSERT INTO rejected(seq, kind, payload, status, reason, at)"
                          " SELECT seq, kind, payload, ?1, ?2, ?3 FROM spool WHERE seq = ?4",
                          err);
        if (!st)
            return -EIO;
        CM_DB_BIND(st, (int64_t)status, reason, cm_now_ms() / 1000, seq);
        r = cm_stmt_exec(st, err);
        if (r < 0)
            return r;
    }
    _cleanup_stmt_ CmStmt *del =
        cm_db_prepare(db, "DELETE FROM spool WHERE seq = ?1 RETURNING bytes", err);
    if (!del)
        return -EIO;
    CM_DB_BIND(del, seq);
    r = cm_stmt_step(del, err);
    if (r > 0) {
        *bytes += cm_stmt_int(del, 0);
        (*removed)++;
    }
    return r < 0 ? r : 0;
}

static int remove_rows(AgSpool *s, const int64_t *seqs, size_t n, const char *counter, long status,
                       const char *reason, CmError *err)
{
    int64_t bytes = 0, removed = 0;
    int r;

    pthread_mutex_lock(&s->lock);
    r = cm_db_begin_immediate(s->db, err);
    for (size_t i = 0; r >= 0 && i < n; i++)
        r = remove_row(s->db, seqs[i], status, reason, &bytes, &removed, err);
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
    AgSpoolStats v = {0};
    int r;

    pthread_mutex_lock(&s->lock);
    {
        _cleanup_stmt_ CmStmt *st =
            cm_db_prepare(s->db, "SELECT count(*), min(created) FROM spool", err);
        r = st ? cm_stmt_step(st, err) : -EIO;
        if (r > 0) {
            v.rows = cm_stmt_int(st, 0);
            v.oldest_created = cm_stmt_int(st, 1);
        }
    }
    v.bytes = counter_get(s->db, "bytes");
    v.dropped_total = counter_get(s->db, "dropped_total");
    v.rejected_total = counter_get(s->db, "rejected_total");
    v.pushed_total = counter_get(s->db, "pushed_total");
    pthread_mutex_unlock(&s->lock);
    *ret = v;
    return r < 0 ? r : 0;
}

int ag_spool_load_states(AgSpool *s,
                         void (*fn)(void *userdata, const char *name, const void *data, size_t len),
                         void *userdata, CmError *err)
{
    int n = 0, r;

    pthread_mutex_lock(&s->lock);
    {
        _cleanup_stmt_ CmStmt *st = cm_db_prepare(s->db, "SELECT name, state FROM meters", err);
        if (!st) {
            pthread_mutex_unlock(&s->lock);
            return -EIO;
        }
        while ((r = cm_stmt_step(st, err)) > 0) {
            fn(userdata, cm_stmt_text(st, 0), cm_stmt_blob(st, 1), cm_stmt_bytes(st, 1));
            n++;
        }
    }
    pthread_mutex_unlock(&s->lock);
    return r < 0 ? r : n;
}
