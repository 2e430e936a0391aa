/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "br-host.h"
#include "cm-time.h"

/* Usage per host is kept by triggers (migration 5); the count of instances that may run is
 * the only aggregate. */
#define HOST_COLUMNS                                                                               \
    "h.id, h.name, h.uri, h.pool, h.storage_pool, coalesce(h.cpu_ratio, 0.0) AS cpu_ratio,"        \
    " coalesce(h.ram_ratio, 0.0) AS ram_ratio, coalesce(h.disk_ratio, 0.0) AS disk_ratio,"         \
    " h.enabled, h.maintenance, h.cpus, h.memory_mib, h.disk_gib, h.used_vcpus,"                   \
    " h.used_memory_mib, h.used_disk_gib,"                                                         \
    " (SELECT count(*) FROM instances i WHERE i.host_id = h.id"                                    \
    "  AND i.state NOT IN ('deleted','undefined')) AS instances,"                                  \
    " h.created_at, h.updated_at"

/* Returns: the number of rows @fn was given, or a negative errno. */
static int host_rows(CmStmt *st, BrHostFn fn, void *ctx, CmError *err)
{
    int r, n = 0;

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
            .instances = cm_stmt_int(st, 16),
            .created_at = cm_stmt_text(st, 17),
            .updated_at = cm_stmt_text(st, 18),
        };
        r = fn(ctx, &h);
        if (r < 0)
            return r;
        n++;
    }
    return r < 0 ? r : n;
}

int br_host_get(CmDb *db, int64_t id, BrHostFn fn, void *ctx, CmError *err)
{
    _cleanup_stmt_ CmStmt *st =
        cm_db_prepare(db, "SELECT " HOST_COLUMNS " FROM hosts h WHERE h.id = ?1", err);
    int r;

    if (!st)
        return -EIO;
    CM_DB_BIND(st, id);
    r = host_rows(st, fn, ctx, err);
    if (r == 0)
        return cm_error_set(err, CM_ERROR_NOT_FOUND, "", "no host with id %lld", (long long)id);
    return r < 0 ? r : 0;
}

int br_host_list(CmDb *db, const char *pool, const BrPage *page, BrHostFn fn, void *ctx,
                 CmError *err)
{
    _cleanup_stmt_ CmStmt *st =
        cm_db_prepare(db,
                      "SELECT " HOST_COLUMNS " FROM hosts h WHERE h.id > ?1"
                      " AND (h.pool = ?2 OR ?2 IS NULL) ORDER BY h.id LIMIT ?3",
                      err);
    int r;

    if (!st)
        return -EIO;
    CM_DB_BIND(st, page ? page->after : 0, pool, page ? page->limit : INT64_MAX);
    r = host_rows(st, fn, ctx, err);
    return r < 0 ? r : 0;
}

int br_host_create(BrTx *tx, const BrHostFields *f, const char *token_hash, int64_t *ret_id)
{
    char at[CM_TIME_ISO_LEN + 1];
    _cleanup_stmt_ CmStmt *st = NULL;
    int r;

    /* Which of the two unique fields is taken, asked first: a failed statement would end
     * the transaction on PostgreSQL. */
    st = cm_db_prepare(tx->db,
                       "SELECT EXISTS (SELECT 1 FROM hosts WHERE name = ?1) AS name_taken,"
                       " EXISTS (SELECT 1 FROM hosts WHERE uri = ?2) AS uri_taken",
                       tx->err);
    if (!st)
        return -EIO;
    CM_DB_BIND(st, f->name, f->uri);
    r = cm_stmt_step(st, tx->err);
    if (r < 0)
        return r;
    if (cm_stmt_int(st, 0) || cm_stmt_int(st, 1)) {
        bool name_taken = cm_stmt_int(st, 0) != 0;
        return cm_error_set_code(tx->err, CM_ERROR_CONFLICT, "duplicate",
                                 name_taken ? "/name" : "/uri",
                                 name_taken ? "a host with this name is already registered"
                                            : "a host with this URI is already registered");
    }
    cm_stmt_reset(st);

    cm_time_iso(cm_now_ms(), at);
    st = cm_db_prepare(tx->db,
                       "INSERT INTO hosts(name, uri, pool, storage_pool, cpu_ratio, ram_ratio,"
                       " disk_ratio, created_at, updated_at, agent_token_hash)"
                       " VALUES (?1, ?2, ?3, ?4, nullif(?5, 0.0), nullif(?6, 0.0), nullif(?7, 0.0),"
                       " ?8, ?8, ?9) RETURNING id",
                       tx->err);
    if (!st)
        return -EIO;
    CM_DB_BIND(st, f->name, f->uri, f->pool, f->storage_pool, f->ratio[0], f->ratio[1], f->ratio[2],
               at, token_hash);
    r = cm_stmt_step(st, tx->err);
    if (r < 0)
        return r;
    *ret_id = cm_stmt_int(st, 0);
    return 0;
}

static int changed_or_missing(BrTx *tx, CmStmt *st, int64_t id)
{
    int r = cm_stmt_exec(st, tx->err);
    if (r < 0)
        return r;
    if (cm_stmt_changes(st) == 0)
        return cm_error_set(tx->err, CM_ERROR_NOT_FOUND, "", "no host with id %lld", (long long)id);
    return 0;
}

int br_host_update(BrTx *tx, int64_t id, const BrHostFields *f)
{
    char at[CM_TIME_ISO_LEN + 1];
    _cleanup_stmt_ CmStmt *st =
        cm_db_prepare(tx->db,
                      "UPDATE hosts SET maintenance = iif(?1 < 0, maintenance, ?1),"
                      " enabled = iif(?2 < 0, enabled, ?2),"
                      " cpu_ratio = iif(?3 = 1, nullif(?4, 0.0), cpu_ratio),"
                      " ram_ratio = iif(?5 = 1, nullif(?6, 0.0), ram_ratio),"
                      " disk_ratio = iif(?7 = 1, nullif(?8, 0.0), disk_ratio),"
                      " storage_pool = coalesce(?9, storage_pool), updated_at = ?10 WHERE id = ?11",
                      tx->err);

    if (!st)
        return -EIO;
    cm_time_iso(cm_now_ms(), at);
    CM_DB_BIND(st, f->maintenance, f->enabled, f->ratio_set[0], f->ratio[0], f->ratio_set[1],
               f->ratio[1], f->ratio_set[2], f->ratio[2], f->storage_pool, at, id);
    return changed_or_missing(tx, st, id);
}

int br_host_set_agent_token(BrTx *tx, int64_t id, const char *token_hash)
{
    _cleanup_stmt_ CmStmt *st =
        cm_db_prepare(tx->db, "UPDATE hosts SET agent_token_hash = ?1 WHERE id = ?2", tx->err);
    if (!st)
        return -EIO;
    CM_DB_BIND(st, token_hash, id);
    return changed_or_missing(tx, st, id);
}

int br_host_set_capacity(CmDb *db, int64_t id, int64_t cpus, int64_t memory_mib, int64_t disk_gib,
                         CmError *err)
{
    _cleanup_stmt_ CmStmt *st =
        cm_db_prepare(db,
                      "UPDATE hosts SET cpus = ?2, memory_mib = ?3, disk_gib = ?4 WHERE id = ?1"
                      " AND (cpus <> ?2 OR memory_mib <> ?3 OR disk_gib <> ?4)",
                      err);
    if (!st)
        return -EIO;
    CM_DB_BIND(st, id, cpus, memory_mib, disk_gib);
    return cm_stmt_exec(st, err);
}

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
