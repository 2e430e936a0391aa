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
    _cleanup_stmt_ CmStmt *st = cm_db_prepare(
        db,
        "SELECT h.id, h.name, h.uri, h.pool, h.storage_pool, coalesce(h.cpu_ratio, 0.0),"
        " coalesce(h.ram_ratio, 0.0), coalesce(h.disk_ratio, 0.0), h.enabled, h.maintenance,"
        " h.cpus, h.memory_mib, h.disk_gib, h.used_vcpus, h.used_memory_mib, h.used_disk_gib,"
        " h.created_at, h.updated_at FROM hosts h ORDER BY h.id",
        err);
    int r;

    if (!st)
        return -EIO;
    while ((r = cm_stmt_step(st, err)) > 0) {
        BrHostRow h = {
            .id = cm_stmt_int(st, 0),
            .name = cm_stmt_text(st, 1),
            .uri = cm_stmt_text(st, 2),
            .pool = cm_stmt_text(st, 3),
            .storage_pool = cm_stmt_text(st, 4),
            .cpu_ratio = cm_stmt_double(st, 5),
            .ram_ratio = cm_stmt_double(st, 6),
            .disk_ratio = cm_stmt_double(st, 7),
            .enabled = cm_stmt_int(st, 8) != 0,
            .maintenance = cm_stmt_int(st, 9) != 0,
            .cpus = cm_stmt_int(st, 10),
            .memory_mib = cm_stmt_int(st, 11),
            .disk_gib = cm_stmt_int(st, 12),
            .used_vcpus = cm_stmt_int(st, 13),
            .used_memory_mib = cm_stmt_int(st, 14),
            .used_disk_gib = cm_stmt_int(st, 15),
            .created_at = cm_stmt_text(st, 16),
            .updated_at = cm_stmt_text(st, 17),
        };
        r = fn(ctx, &h);
        if (r < 0)
            return r;
    }
    return r < 0 ? r : 0;
}
