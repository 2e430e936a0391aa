/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>

#include "br-department.h"
#include "cm-time.h"

#define DEPARTMENT_COLUMNS                                                                         \
    "id, code, name, quota_vcpus AS \"quota.vcpus\", quota_memory_mib AS \"quota.memory_mib\","    \
    " quota_disk_gib AS \"quota.disk_gib\", quota_instances AS \"quota.instances\","               \
    " created_at, updated_at"

int br_department_get(CmDb *db, int64_t id, json_object **ret, CmError *err)
{
    return br_store_get_json(db, "SELECT " DEPARTMENT_COLUMNS " FROM departments WHERE id = ?",
                             "department", id, ret, err);
}

int br_department_list(CmDb *db, int64_t only, const BrPage *page, json_object **ret, CmError *err)
{
    _cleanup_stmt_ CmStmt *st =
        cm_db_prepare(db,
                      "SELECT " DEPARTMENT_COLUMNS " FROM departments WHERE id > ?1"
                      " AND (?2 = 0 OR id = ?2) ORDER BY id LIMIT ?3",
                      err);
    if (!st)
        return -EIO;
    CM_DB_BIND(st, page->after, only, page->limit);
    return cm_stmt_rows_json(st, ret, err);
}

int br_department_create(BrTx *tx, const char *code, const char *name, const BrResources *quota,
                         int64_t *ret_id)
{
    char at[CM_TIME_ISO_LEN + 1];
    _cleanup_stmt_ CmStmt *st =
        cm_db_prepare(tx->db,
                      "INSERT INTO departments(code, name, quota_vcpus, quota_memory_mib,"
                      " quota_disk_gib, quota_instances, created_at, updated_at)"
                      " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7) RETURNING id",
                      tx->err);
    int r;

    if (!st)
        return -EIO;
    cm_time_iso(cm_now_ms(), at);
    CM_DB_BIND(st, code, name, quota->vcpus, quota->memory_mib, quota->disk_gib, quota->instances,
               at);
    r = cm_stmt_step(st, tx->err);
    if (r == -EEXIST)
        return cm_error_set_code(tx->err, CM_ERROR_CONFLICT, "duplicate", "/code",
                                 "a department with code '%s' already exists", code);
    if (r < 0)
        return r;
    *ret_id = cm_stmt_int(st, 0);
    return 0;
}

int br_department_update(BrTx *tx, int64_t id, const char *name, const BrResources *quota)
{
    char at[CM_TIME_ISO_LEN + 1];
    _cleanup_stmt_ CmStmt *st =
        cm_db_prepare(tx->db,
                      "UPDATE departments SET name = coalesce(?1, name),"
                      " quota_vcpus = iif(?2 < 0, quota_vcpus, ?2),"
                      " quota_memory_mib = iif(?3 < 0, quota_memory_mib, ?3),"
                      " quota_disk_gib = iif(?4 < 0, quota_disk_gib, ?4),"
                      " quota_instances = iif(?5 < 0, quota_instances, ?5), updated_at = ?6"
                      " WHERE id = ?7",
                      tx->err);

    if (!st)
        return -EIO;
    cm_time_iso(cm_now_ms(), at);
    CM_DB_BIND(st, name, quota->vcpus, quota->memory_mib, quota->disk_gib, quota->instances, at,
               id);
    return br_store_exec_changed(st, "department", id, tx->err);
}

int br_department_exists(CmDb *db, int64_t id, CmError *err)
{
    _cleanup_stmt_ CmStmt *st = cm_db_prepare(db, "SELECT 1 FROM departments WHERE id = ?", err);
    if (!st)
        return -EIO;
    CM_DB_BIND(st, id);
    return cm_stmt_step(st, err);
}

int br_department_check_reference(CmDb *db, int64_t id, CmError *err)
{
    int r = br_department_exists(db, id, err);
    if (r < 0)
        return r;
    if (r == 0)
        return cm_error_set_code(err, CM_ERROR_UNPROCESSABLE, "unknown_reference", "/department_id",
                                 "no department with id %lld", (long long)id);
    return 0;
}

int br_department_quota(CmDb *db, int64_t id, BrResources *ret, CmError *err)
{
    _cleanup_stmt_ CmStmt *st =
        cm_db_prepare(db,
                      "SELECT quota_vcpus, quota_memory_mib, quota_disk_gib, quota_instances"
                      " FROM departments WHERE id = ?",
                      err);
    int r;

    if (!st)
        return -EIO;
    CM_DB_BIND(st, id);
    r = cm_stmt_step(st, err);
    if (r < 0)
        return r;
    if (r == 0)
        return -ENOENT;
    *ret = (BrResources){
        .vcpus = cm_stmt_int(st, 0),
        .memory_mib = cm_stmt_int(st, 1),
        .disk_gib = cm_stmt_int(st, 2),
        .instances = cm_stmt_int(st, 3),
    };
    return 0;
}
