/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "br-store.h"
#include "cm-log.h"

#define MAX_CONNECTIONS 256

struct BrStore {
    char *path;
    uint8_t audit_key[BR_AUDIT_KEY_LEN];
    pthread_key_t tls;
    pthread_mutex_t write_lock;
    pthread_mutex_t conns_lock;
    CmDb *conns[MAX_CONNECTIONS];
    size_t n_conns;
    atomic_uint_fast64_t generation;
    BrAuditHook audit_hook;
    void *audit_hook_ctx;
};

static bool store_has_audit(CmDb *db)
{
    sqlite3_stmt *stmt = cm_db_stmt(db, "SELECT EXISTS (SELECT 1 FROM audit)", NULL);
    bool has = stmt && sqlite3_step(stmt) == SQLITE_ROW && sqlite3_column_int(stmt, 0);
    if (stmt)
        sqlite3_reset(stmt);
    return has;
}

int br_store_open(const char *path, const char *audit_key_path, BrStore **ret, CmError *err)
{
    _cleanup_(cm_db_closep) CmDb *db = NULL;
    BrStore *s;
    const char *const *migrations;
    unsigned n;
    int r;

    r = cm_db_open(path, CM_DB_READWRITE, &db, err);
    if (r < 0)
        return r;
    migrations = br_store_migrations(&n);
    r = cm_db_migrate(db, migrations, n, err);
    if (r < 0)
        return r;

    s = calloc(1, sizeof(*s));
    if (!s)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    s->path = strdup(path);
    /* A new key for an existing trail would make every record look forged: refuse. */
    r = br_audit_key_load(audit_key_path, !store_has_audit(db), s->audit_key, err);
    if (r < 0 || !s->path) {
        free(s->path);
        free(s);
        return r < 0 ? r : cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    }
    pthread_key_create(&s->tls, NULL);
    pthread_mutex_init(&s->write_lock, NULL);
    pthread_mutex_init(&s->conns_lock, NULL);
    /* The migrating connection becomes the opening thread's own. */
    s->conns[s->n_conns++] = db;
    pthread_setspecific(s->tls, TAKE_PTR(db));
    *ret = s;
    return 0;
}

BrStore *br_store_free(BrStore *s)
{
    if (!s)
        return NULL;
    for (size_t i = 0; i < s->n_conns; i++)
        cm_db_close(s->conns[i]);
    pthread_key_delete(s->tls);
    pthread_mutex_destroy(&s->write_lock);
    pthread_mutex_destroy(&s->conns_lock);
    memset(s->audit_key, 0, sizeof(s->audit_key));
    free(s->path);
    free(s);
    return NULL;
}

CmDb *br_store_db(BrStore *s, CmError *err)
{
    CmDb *db = pthread_getspecific(s->tls);
    if (db)
        return db;
    if (cm_db_open(s->path, CM_DB_READWRITE, &db, err) < 0)
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
    *ret_db = db;
    return 0;
}

int br_store_write_commit(BrStore *s, CmDb *db, CmError *err)
{
    int r = cm_db_commit(db, err);
    if (r < 0)
        cm_db_rollback(db);
    else
        atomic_fetch_add(&s->generation, 1);
    pthread_mutex_unlock(&s->write_lock);
    return r;
}

void br_store_write_abort(BrStore *s, CmDb *db)
{
    cm_db_rollback(db);
    pthread_mutex_unlock(&s->write_lock);
}

const uint8_t *br_store_audit_key(BrStore *s)
{
    return s->audit_key;
}

uint64_t br_store_generation(BrStore *s)
{
    return atomic_load(&s->generation);
}

const char *br_store_path(BrStore *s)
{
    return s->path;
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
    int r = br_audit_append(db, s->audit_key, actor, &e, err);
    if (r < 0 || !s->audit_hook)
        return r;
    return s->audit_hook(s->audit_hook_ctx, db, actor, &e, err);
}

void br_store_set_audit_hook(BrStore *s, BrAuditHook hook, void *ctx)
{
    s->audit_hook = hook;
    s->audit_hook_ctx = ctx;
}
