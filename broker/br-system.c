/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>

#include "br-department.h"
#include "br-system.h"
#include "cm-time.h"

/* on_cloud is derived: a system is on the cloud while a production allocation of it is live. */
#define SYSTEM_COLUMNS                                                                             \
    "s.id, s.department_id,"                                                                       \
    " (SELECT d.name FROM departments d WHERE d.id = s.department_id) AS department_name,"         \
    " s.name, s.description, s.category, s.protection_level, s.status,"                            \
    " EXISTS (SELECT 1 FROM allocations a WHERE a.system_id = s.id"                                \
    " AND a.purpose = 'production' AND a.state IN ('active','resizing')) AS \"on_cloud:bool\","    \
    " s.created_at, s.updated_at"

int br_system_get(CmDb *db, int64_t id, int64_t department, json_object **ret, CmError *err)
{
    _cleanup_stmt_ CmStmt *st =
        cm_db_prepare(db,
                      "SELECT " SYSTEM_COLUMNS " FROM systems s WHERE s.id = ?1"
                      " AND (?2 = 0 OR s.department_id = ?2)",
                      err);
    int r;

    if (!st)
        return -EIO;
    CM_DB_BIND(st, id, department);
    r = cm_stmt_step(st, err);
    if (r < 0)
        return r;
    if (r == 0)
        return cm_error_set(err, CM_ERROR_NOT_FOUND, "", "no system with id %lld", (long long)id);
    *ret = cm_stmt_row_json(st);
    return 0;
}

int br_system_list(CmDb *db, int64_t department, const BrPage *page, json_object **ret,
                   CmError *err)
{
    _cleanup_stmt_ CmStmt *st =
        cm_db_prepare(db,
                      "SELECT " SYSTEM_COLUMNS " FROM systems s WHERE s.id > ?1"
                      " AND (?2 = 0 OR s.department_id = ?2)"
                      " ORDER BY s.id LIMIT ?3",
                      err);
    if (!st)
        return -EIO;
    CM_DB_BIND(st, page->after, department, page->limit);
    return cm_stmt_rows_json(st, ret, err);
}

int br_system_create(BrTx *tx, int64_t department, const BrSystemFields *f, int64_t *ret_id)
{
    char at[CM_TIME_ISO_LEN + 1];
    _cleanup_stmt_ CmStmt *st = NULL;
    int r;

    r = br_department_check_reference(tx->db, department, tx->err);
    if (r < 0)
        return r;

    cm_time_iso(cm_now_ms(), at);
    st = cm_db_prepare(tx->db,
                       "INSERT INTO systems(department_id, name, description, category,"
                       " protection_level, status, created_at, updated_at)"
                       " VALUES (?1, ?2, coalesce(?3, ''), coalesce(?4, 'other'),"
                       " iif(?5 < 0, 2, ?5), coalesce(?6, 'in_service'), ?7, ?7) RETURNING id",
                       tx->err);
    if (!st)
        return -EIO;
    CM_DB_BIND(st, department, f->name, f->description, f->category, f->protection_level, f->status,
               at);
    r = cm_stmt_step(st, tx->err);
    if (r == -EEXIST)
        return cm_error_set_code(tx->err, CM_ERROR_CONFLICT, "duplicate", "/name",
                                 "the department already has a system with this name");
    if (r < 0)
        return r;
    *ret_id = cm_stmt_int(st, 0);
    return 0;
}

int br_system_update(BrTx *tx, int64_t id, int64_t department, const BrSystemFields *f)
{
    char at[CM_TIME_ISO_LEN + 1];
    _cleanup_stmt_ CmStmt *st = cm_db_prepare(
        tx->db,
        "UPDATE systems SET name = coalesce(?1, name), description = coalesce(?2, description),"
        " category = coalesce(?3, category),"
        " protection_level = iif(?4 < 0, protection_level, ?4),"
        " status = coalesce(?5, status), updated_at = ?6"
        " WHERE id = ?7 AND (?8 = 0 OR department_id = ?8)",
        tx->err);
    int r;

    if (!st)
        return -EIO;
    cm_time_iso(cm_now_ms(), at);
    CM_DB_BIND(st, f->name, f->description, f->category, f->protection_level, f->status, at, id,
               department);
    r = br_store_exec_changed(st, "system", id, tx->err);
    if (r == -EEXIST)
        return cm_error_set_code(tx->err, CM_ERROR_CONFLICT, "duplicate", "/name",
                                 "the department already has a system with this name");
    return r;
}

int br_system_exists(CmDb *db, int64_t id, int64_t department, CmError *err)
{
    _cleanup_stmt_ CmStmt *st = cm_db_prepare(
        db, "SELECT 1 FROM systems WHERE id = ?1 AND (?2 = 0 OR department_id = ?2)", err);
    if (!st)
        return -EIO;
    CM_DB_BIND(st, id, department);
    return cm_stmt_step(st, err);
}
