/* SPDX-License-Identifier: Apache-2.0 */
/* INTERIM reads of other owners' tables: see br-interim.h. */
#include <errno.h>

#include "br-interim.h"
#include "cm-util.h"

int br_interim_allocation_get(CmDb *db, int64_t id, int64_t department, int64_t system,
                              BrInterimAllocation *ret, CmError *err)
{
    _cleanup_stmt_ CmStmt *st =
        cm_db_prepare(db,
                      "SELECT state, vcpus, memory_mib, disk_gib, instances FROM allocations"
                      " WHERE id = ?1 AND (?2 = 0 OR department_id = ?2)"
                      " AND (?3 = 0 OR system_id = ?3)",
                      err);
    int r;

    if (!st)
        return -EIO;
    CM_DB_BIND(st, id, department, system);
    r = cm_stmt_step(st, err);
    if (r <= 0)
        return r;
    cm_strscpy(ret->state, sizeof(ret->state), cm_stmt_text(st, 0));
    ret->size = (BrResources){cm_stmt_int(st, 1), cm_stmt_int(st, 2), cm_stmt_int(st, 3),
                              cm_stmt_int(st, 4)};
    return 1;
}

static int add_sums(CmStmt *st, int64_t department, BrResources *ret, CmError *err)
{
    int r;

    if (!st)
        return -EIO;
    CM_DB_BIND(st, department);
    r = cm_stmt_step(st, err);
    if (r > 0) {
        ret->vcpus += cm_stmt_int(st, 0);
        ret->memory_mib += cm_stmt_int(st, 1);
        ret->disk_gib += cm_stmt_int(st, 2);
        ret->instances += cm_stmt_int(st, 3);
    }
    return r < 0 ? r : 0;
}

int br_interim_allocation_usage(CmDb *db, int64_t department, BrResources *ret, CmError *err)
{
    _cleanup_stmt_ CmStmt *live =
        cm_db_prepare(db,
                      "SELECT total(vcpus), total(memory_mib), total(disk_gib), total(instances)"
                      " FROM allocations WHERE department_id = ? AND purpose = 'production'"
                      " AND state IN ('provisioning','active','resizing','reclaiming','error')",
                      err);
    _cleanup_stmt_ CmStmt *retained = NULL;
    int r = add_sums(live, department, ret, err);

    if (r < 0)
        return r;
    retained = cm_db_prepare(db,
                             "SELECT 0, 0, total(disk_gib), 0 FROM allocations"
                             " WHERE department_id = ? AND purpose = 'production'"
                             " AND state = 'retained'",
                             err);
    return add_sums(retained, department, ret, err);
}

int br_interim_review_findings(CmDb *db, int64_t department, json_object **ret, CmError *err)
{
    _cleanup_stmt_ CmStmt *st =
        cm_db_prepare(db,
                      "SELECT f.id, f.kind, i.name AS instance, f.frees_vcpus,"
                      " f.frees_memory_mib, f.rule FROM findings f"
                      " JOIN instances i ON i.id = f.instance_id"
                      " WHERE f.department_id = ? AND f.state IN ('open','acknowledged')"
                      " AND f.kind IN ('idle','over_provisioned') ORDER BY f.id LIMIT 100",
                      err);
    if (!st)
        return -EIO;
    CM_DB_BIND(st, department);
    return cm_stmt_rows_json(st, ret, err);
}

int br_interim_request_jobs(CmDb *db, int64_t request, json_object **ret, CmError *err)
{
    _cleanup_stmt_ CmStmt *st = cm_db_prepare(
        db, "SELECT id, kind, state, error FROM jobs WHERE request_id = ? ORDER BY id", err);
    if (!st)
        return -EIO;
    CM_DB_BIND(st, request);
    return cm_stmt_rows_json(st, ret, err);
}
