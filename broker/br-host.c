/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdio.h>

#include "br-host.h"

/* -- added by people -- */

int br_host_connections(CmDb *db, json_object **ret, CmError *err)
{
    _cleanup_stmt_ CmStmt *st =
        cm_db_prepare(db, "SELECT id, uri, storage_pool FROM hosts ORDER BY id", err);
    if (!st)
        return -EIO;
    return cm_stmt_rows_json(st, ret, err);
}

int br_host_name(CmDb *db, int64_t id, char *name, size_t size, CmError *err)
{
    _cleanup_stmt_ CmStmt *st = cm_db_prepare(db, "SELECT name FROM hosts WHERE id = ?", err);
    int r;

    if (!st)
        return -EIO;
    CM_DB_BIND(st, id);
    r = cm_stmt_step(st, err);
    if (r > 0)
        snprintf(name, size, "%s", cm_stmt_text(st, 0));
    return r;
}

int br_host_by_agent_token(CmDb *db, const char *token_hash, int64_t *ret_id, char *name,
                           size_t size, CmError *err)
{
    _cleanup_stmt_ CmStmt *st =
        cm_db_prepare(db, "SELECT id, name FROM hosts WHERE agent_token_hash = ?", err);
    int r;

    if (!st)
        return -EIO;
    CM_DB_BIND(st, token_hash);
    r = cm_stmt_step(st, err);
    if (r > 0) {
        *ret_id = cm_stmt_int(st, 0);
        snprintf(name, size, "%s", cm_stmt_text(st, 1));
    }
    return r;
}
