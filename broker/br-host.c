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

/* -- added by jobs -- */

int br_host_list_placement(CmDb *db, BrHostFn fn, void *ctx, CmError *err)
{
    /* Only what placement reads, and no function per row (a coalesce() on the ratios cost
     * 20 % of a decision): a NULL ratio reads as 0 (cm_stmt_double()), "the policy's". */
    _cleanup_stmt_ CmStmt *st = cm_db_prepare(
        db,
        "SELECT h.id, h.name, h.pool, h.enabled, h.maintenance, h.cpu_ratio, h.ram_ratio,"
        " h.disk_ratio, h.cpus, h.memory_mib, h.disk_gib, h.used_vcpus, h.used_memory_mib,"
        " h.used_disk_gib FROM hosts h ORDER BY h.id",
        err);
    int r;

    if (!st)
        return -EIO;
    while ((r = cm_stmt_step(st, err)) > 0) {
        BrHostRow h = {
            .id = cm_stmt_int(st, 0),
            .name = cm_stmt_text(st, 1),
            .pool = cm_stmt_text(st, 2),
            .enabled = cm_stmt_int(st, 3) != 0,
            .maintenance = cm_stmt_int(st, 4) != 0,
            .cpu_ratio = cm_stmt_double(st, 5),
            .ram_ratio = cm_stmt_double(st, 6),
            .disk_ratio = cm_stmt_double(st, 7),
            .cpus = cm_stmt_int(st, 8),
            .memory_mib = cm_stmt_int(st, 9),
            .disk_gib = cm_stmt_int(st, 10),
            .used_vcpus = cm_stmt_int(st, 11),
            .used_memory_mib = cm_stmt_int(st, 12),
            .used_disk_gib = cm_stmt_int(st, 13),
        };
        r = fn(ctx, &h);
        if (r < 0)
            return r;
    }
    return r < 0 ? r : 0;
}
