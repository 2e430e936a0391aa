/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "br-store.h"
#include "cm-log.h"
#include "cm-util.h"

#define MAX_CONNECTIONS 256

struct BrStore {
    char *url;
    uint8_t audit_key[BR_AUDIT_KEY_LEN];
    /* The audit chain's anchor outside the database (STATE/audit.anchor); the head is what
     * the serialized writer appended (tx_head: an immediate writer under write_lock, a shared
     * one under serial_lock, never both at once: the database's locks exclude each other) and
     * what was committed (head, with the anchor under anchor_lock). */
    char *anchor_path;
    unsigned anchor_every;
    BrAuditAnchor anchor, head, tx_head;
    bool anchor_frozen; /* the trail no longer holds it: it is never overwritten */
    pthread_key_t tls;
    pthread_mutex_t write_lock;
    pthread_mutex_t serial_lock;
    pthread_mutex_t anchor_lock;
    pthread_mutex_t conns_lock;
    CmDb *conns[MAX_CONNECTIONS];
    size_t n_conns;
    atomic_uint_fast64_t generation;
    BrAuditHook audit_hook;
    void *audit_hook_ctx;
};

/*
 * Moves the anchor to the committed head when @force (the first record, the shutdown), or when
 * anchor_every records were appended since: the same records anchored on every run, which the
 * documentation's examples rely on. Never over an anchor the trail no longer holds: that is
 * evidence, for GET /v1/audit/verify to report.
 */
static void anchor_update(BrStore *s, CmDb *db, bool force)
{
    CmError err = {0};
    int r;

    if (s->anchor_frozen || s->head.records <= s->anchor.records)
        return;
    if (!force && s->anchor.records > 0 &&
        s->head.records - s->anchor.records < (int64_t)s->anchor_every)
        return;
    r = br_audit_holds(db, &s->anchor, &err);
    if (r == 0) {
        s->anchor_frozen = true;
        cm_log_error("audit: the trail no longer holds record %lld anchored at %s: it was "
                     "truncated or rewritten; the anchor in %s is kept (GET /v1/audit/verify)",
                     (long long)s->anchor.records, s->anchor.at, s->anchor_path);
        return;
    }
    if (r > 0)
        r = br_audit_anchor_write(s->anchor_path, s->audit_key, &s->head, &err);
    if (r < 0) {
        cm_log_error("audit: cannot anchor the trail: %s", err.message);
        return;
    }
    s->anchor = s->head;
    /* The journal keeps every anchor: a second copy out of the state folder's reach. */
    cm_log_notice("audit anchor: %lld records, head %s", (long long)s->anchor.records,
                  s->anchor.head_hash);
}

/* At open: the anchor read back and compared with the trail; a first one when there is none. */
static int anchor_open(BrStore *s, CmDb *db, const char *key_path, CmError *err)
{
    const char *slash = strrchr(key_path, '/');
    CmError e = {0};
    int r;

    s->anchor_every = 32;
    s->anchor_path = slash
                         ? cm_strdup_printf("%.*s/audit.anchor", (int)(slash - key_path), key_path)
                         : strdup("audit.anchor");
    if (!s->anchor_path)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    r = br_audit_anchor_read(s->anchor_path, s->audit_key, &s->anchor, &e);
    if (r == -ENOENT) {
        memset(&s->anchor, 0, sizeof(s->anchor));
        if (s->head.records > 0)
            cm_log_warning("audit: no anchor in %s for a trail of %lld records: the current "
                           "head is anchored now",
                           s->anchor_path, (long long)s->head.records);
        anchor_update(s, db, true);
        return 0;
    }
    if (r < 0) {
        s->anchor_frozen = true;
        cm_log_error("audit: %s; it is kept as it is (GET /v1/audit/verify)", e.message);
        return 0;
    }
    r = br_audit_holds(db, &s->anchor, err);
    if (r < 0)
        return r;
    if (r == 0) {
        s->anchor_frozen = true;
        cm_log_error("audit: the trail no longer holds record %lld anchored at %s: it was "
                     "truncated or rewritten (GET /v1/audit/verify)",
                     (long long)s->anchor.records, s->anchor.at);
    }
    return 0;
}

int br_store_open(const char *url, const char *audit_key_path, BrStore **ret, CmError *err)
{
    _cleanup_(cm_db_closep) CmDb *db = NULL;
    _cleanup_(br_store_freep) BrStore *s = NULL;
    const char *const *migrations;
    unsigned n;
    int r;

    r = cm_db_open_url(url, CM_DB_READWRITE, &db, err);
    if (r < 0)
        return r;
    migrations = br_store_migrations(&n);
    r = cm_db_migrate(db, migrations, br_store_pg_migrations(), n, err);
    if (r < 0)
        return r;

    s = calloc(1, sizeof(*s));
    if (!s || !(s->url = strdup(url)))
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    pthread_key_create(&s->tls, NULL);
    pthread_mutex_init(&s->write_lock, NULL);
    pthread_mutex_init(&s->serial_lock, NULL);
    pthread_mutex_init(&s->anchor_lock, NULL);
    pthread_mutex_init(&s->conns_lock, NULL);
    r = br_audit_head(db, &s->head, err);
    if (r < 0)
        return r;
    /* A new key for an existing trail would make every record look forged: refuse. */
    r = br_audit_key_load(audit_key_path, s->head.records == 0, s->audit_key, err);
    if (r < 0)
        return r;
    r = anchor_open(s, db, audit_key_path, err);
    if (r < 0)
        return r;
    /* The migrating connection becomes the opening thread's own. */
    s->conns[s->n_conns++] = db;
    pthread_setspecific(s->tls, TAKE_PTR(db));
    *ret = TAKE_PTR(s);
    return 0;
}

BrStore *br_store_free(BrStore *s)
{
    CmError err = {0};
    CmDb *db;

    if (!s)
        return NULL;
    /* At shutdown the anchor catches up with the head (not for a store that failed to open:
     * it has no connection yet). */
    db = s->n_conns > 0 ? br_store_db(s, &err) : NULL;
    if (db && br_audit_head(db, &s->head, &err) >= 0)
        anchor_update(s, db, true);
    for (size_t i = 0; i < s->n_conns; i++)
        cm_db_close(s->conns[i]);
    pthread_key_delete(s->tls);
    pthread_mutex_destroy(&s->write_lock);
    pthread_mutex_destroy(&s->serial_lock);
    pthread_mutex_destroy(&s->anchor_lock);
    pthread_mutex_destroy(&s->conns_lock);
    memset(s->audit_key, 0, sizeof(s->audit_key));
    free(s->url);
    free(s->anchor_path);
    free(s);
    return NULL;
}

CmDb *br_store_db(BrStore *s, CmError *err)
{
    CmDb *db = pthread_getspecific(s->tls);
    if (db)
        return db;
    if (cm_db_open_url(s->url, CM_DB_READWRITE, &db, err) < 0)
        return NULL;
    pthread_mutex_lock(&s->conns_lock);
    if (s->n_conns == MAX_CONNECTIONS) {
        pthread_mutex_unlock(&s->conns_lock);
        cm_db_close(db);
        cm_error_set(err, CM_ERROR_UNAVAILABLE, "", "too many database connections");
        return NULL;
    }
    s->conns[s->n_conns++] = db;
    pthread_mutex_unlock(&s->conns_lock);
    pthread_setspecific(s->tls, db);
    return db;
}

int br_store_write_begin(BrStore *s, CmDb **ret_db, CmError *err)
{
    CmDb *db = br_store_db(s, err);
    int r;

    if (!db)
        return -EIO;
    pthread_mutex_lock(&s->write_lock);
    r = cm_db_begin_immediate(db, err);
    if (r < 0) {
        pthread_mutex_unlock(&s->write_lock);
        return r;
    }
    s->tx_head.records = 0;
    *ret_db = db;
    return 0;
}

int br_store_write_begin_shared(BrStore *s, int64_t key, CmDb **ret_db, bool *ret_serial,
                                CmError *err)
{
    CmDb *db = br_store_db(s, err);
    int r;

    if (!db)
        return -EIO;
    if (cm_db_backend(db) != CM_DB_POSTGRESQL) {
        r = br_store_write_begin(s, ret_db, err);
        *ret_serial = r >= 0;
        return r;
    }
    r = cm_db_begin_shared(db, key, err);
    if (r < 0)
        return r;
    *ret_serial = false;
    *ret_db = db;
    return 0;
}

int br_store_write_serialize(BrStore *s, CmDb *db, bool *serial, CmError *err)
{
    int r;

    if (*serial)
        return 0;
    /* Not write_lock: an immediate writer of this broker may hold it while it waits for the
     * database's writer lock, which this transaction holds shared until it ends. */
    pthread_mutex_lock(&s->serial_lock);
    r = cm_db_serialize(db, err);
    if (r < 0) {
        pthread_mutex_unlock(&s->serial_lock);
        return r;
    }
    s->tx_head.records = 0;
    *serial = true;
    return 0;
}

/* Commits; the committed head and the anchor follow. The head appended is taken before the
 * commit, while the database's locks still keep every other writer out of tx_head. */
static int commit(BrStore *s, CmDb *db, CmError *err)
{
    BrAuditAnchor appended = s->tx_head;
    int r;

    s->tx_head.records = 0;
    r = cm_db_commit(db, err);
    if (r < 0) {
        cm_db_rollback(db);
        return r;
    }
    atomic_fetch_add(&s->generation, 1);
    if (appended.records > 0) {
        pthread_mutex_lock(&s->anchor_lock);
        /* commits are in the chain's order, what follows them need not be */
        if (appended.records > s->head.records)
            s->head = appended;
        anchor_update(s, db, false);
        pthread_mutex_unlock(&s->anchor_lock);
    }
    return 0;
}

int br_store_write_commit(BrStore *s, CmDb *db, CmError *err)
{
    int r = commit(s, db, err);
    pthread_mutex_unlock(&s->write_lock);
    return r;
}

void br_store_write_abort(BrStore *s, CmDb *db)
{
    cm_db_rollback(db);
    s->tx_head.records = 0;
    pthread_mutex_unlock(&s->write_lock);
}

int br_store_write_commit_shared(BrStore *s, CmDb *db, CmError *err)
{
    int r;

    if (cm_db_backend(db) != CM_DB_POSTGRESQL)
        return br_store_write_commit(s, db, err);
    r = commit(s, db, err);
    pthread_mutex_unlock(&s->serial_lock);
    return r;
}

void br_store_write_abort_shared(BrStore *s, CmDb *db, bool serial)
{
    if (cm_db_backend(db) != CM_DB_POSTGRESQL) {
        br_store_write_abort(s, db);
        return;
    }
    cm_db_rollback(db);
    if (serial) {
        s->tx_head.records = 0;
        pthread_mutex_unlock(&s->serial_lock);
    }
}

void br_store_set_anchor_every(BrStore *s, unsigned every)
{
    s->anchor_every = every ? every : 1;
}

const char *br_store_anchor_path(BrStore *s)
{
    return s->anchor_path;
}

const uint8_t *br_store_audit_key(BrStore *s)
{
    return s->audit_key;
}

uint64_t br_store_generation(BrStore *s)
{
    return atomic_load(&s->generation);
}

const char *br_store_url(BrStore *s)
{
    return s->url;
}

int br_store_audit(BrStore *s, CmDb *db, const BrActor *actor, const char *action,
                   const char *object_type, int64_t object_id, const char *outcome,
                   const char *detail, CmError *err)
{
    BrAuditEntry e = {
        .action = action,
        .object_type = object_type,
        .object_id = object_id,
        .outcome = outcome,
        .detail = detail,
    };
    /* The write lock's holder is the only one to touch tx_head. */
    int r = br_audit_append_head(db, s->audit_key, actor, &e, &s->tx_head, err);
    if (r < 0 || !s->audit_hook)
        return r;
    return s->audit_hook(s->audit_hook_ctx, db, actor, &e, err);
}

void br_store_set_audit_hook(BrStore *s, BrAuditHook hook, void *ctx)
{
    s->audit_hook = hook;
    s->audit_hook_ctx = ctx;
}

static int not_found(CmError *err, const char *what, int64_t id)
{
    return cm_error_set(err, CM_ERROR_NOT_FOUND, "", "no %s with id %lld", what, (long long)id);
}

int br_store_exec_changed(CmStmt *st, const char *what, int64_t id, CmError *err)
{
    int r = cm_stmt_exec(st, err);
    if (r < 0)
        return r;
    return cm_stmt_changes(st) ? 0 : not_found(err, what, id);
}

int br_store_get_json(CmDb *db, const char *sql, const char *what, int64_t id, json_object **ret,
                      CmError *err)
{
    _cleanup_stmt_ CmStmt *st = cm_db_prepare(db, sql, err);
    int r;

    if (!st)
        return -EIO;
    CM_DB_BIND(st, id);
    r = cm_stmt_step(st, err);
    if (r < 0)
        return r;
    if (r == 0)
        return not_found(err, what, id);
    *ret = cm_stmt_row_json(st);
    return 0;
}
