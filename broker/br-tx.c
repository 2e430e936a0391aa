/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "br-tx.h"
#include "cm-log.h"

void br_tx_audit_set(BrTx *tx, const char *action, const char *object_type, int64_t object_id,
                     const char *detail)
{
    free(tx->detail);
    tx->detail = detail ? strdup(detail) : NULL;
    tx->action = action;
    tx->object_type = object_type;
    tx->object_id = object_id;
}

int br_tx_audit(BrTx *tx, const char *action, const char *object_type, int64_t object_id,
                const char *outcome, const char *detail)
{
    /* the chain's head is the serialized writer's: a shared transaction takes its turn now */
    int r = br_store_write_serialize(tx->store, tx->db, &tx->serial, tx->err);

    if (r < 0)
        return r;
    return br_store_audit(tx->store, tx->db, tx->actor, action, object_type, object_id,
                          outcome ? outcome : "ok", detail, tx->err);
}

static int run(BrStore *s, const char *name, const BrActor *actor, const int64_t *key, BrTxFn fn,
               void *ctx, CmError *err)
{
    BrTx tx = {.store = s, .actor = actor ? actor : br_actor_system(), .err = err};
    int r, ret;

    if (key)
        r = br_store_write_begin_shared(s, *key, &tx.db, &tx.serial, err);
    else
        r = br_store_write_begin(s, &tx.db, err);
    if (r < 0)
        return r;
    tx.serial = tx.serial || !key;
    ret = r = fn(&tx, ctx);
    if (r >= 0 && tx.action)
        r = br_tx_audit(&tx, tx.action, tx.object_type, tx.object_id, tx.outcome, tx.detail);
    if (r >= 0)
        r = br_store_write_serialize(s, tx.db, &tx.serial, err);
    free(tx.detail);
    if (r < 0) {
        if (key)
            br_store_write_abort_shared(s, tx.db, tx.serial);
        else
            br_store_write_abort(s, tx.db);
        cm_log_debug("transaction %s rolled back (%d)", name, r);
        return r;
    }
    r = key ? br_store_write_commit_shared(s, tx.db, err) : br_store_write_commit(s, tx.db, err);
    return r < 0 ? r : ret;
}

int br_tx_run(BrStore *s, const char *name, const BrActor *actor, BrTxFn fn, void *ctx,
              CmError *err)
{
    return run(s, name, actor, NULL, fn, ctx, err);
}

int br_tx_run_shared(BrStore *s, const char *name, const BrActor *actor, int64_t key, BrTxFn fn,
                     void *ctx, CmError *err)
{
    return run(s, name, actor, &key, fn, ctx, err);
}

int br_tx_read(BrStore *s, const char *name, BrTxFn fn, void *ctx, CmError *err)
{
    BrTx tx = {.store = s, .actor = br_actor_system(), .err = err};
    int r;

    tx.db = br_store_db(s, err);
    if (!tx.db)
        return -EIO;
    r = cm_db_begin_read(tx.db, err);
    if (r < 0)
        return r;
    r = fn(&tx, ctx);
    cm_db_rollback(tx.db);
    if (r < 0)
        cm_log_debug("read transaction %s failed (%d)", name, r);
    return r;
}
