/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>

#include "br-quota.h"

json_object *br_resources_to_json(const BrResources *r)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "vcpus", json_object_new_int64(r->vcpus));
    json_object_object_add(o, "memory_mib", json_object_new_int64(r->memory_mib));
    json_object_object_add(o, "disk_gib", json_object_new_int64(r->disk_gib));
    json_object_object_add(o, "instances", json_object_new_int64(r->instances));
    return o;
}

void br_resources_add(BrResources *a, const BrResources *b)
{
    a->vcpus += b->vcpus;
    a->memory_mib += b->memory_mib;
    a->disk_gib += b->disk_gib;
    a->instances += b->instances;
}

static int sum_query(CmDb *db, const char *sql, int64_t department_id, int64_t exclude,
                     BrResources *out, CmError *err)
{
    sqlite3_stmt *stmt = cm_db_stmt(db, sql, err);
    int r;
    if (!stmt)
        return -EIO;
    CM_DB_BIND(stmt, department_id, exclude);
    r = cm_db_step_row(db, stmt, err);
    if (r > 0) {
        out->vcpus += sqlite3_column_int64(stmt, 0);
        out->memory_mib += sqlite3_column_int64(stmt, 1);
        out->disk_gib += sqlite3_column_int64(stmt, 2);
        out->instances += sqlite3_column_int64(stmt, 3);
    }
    sqlite3_reset(stmt);
    return r < 0 ? r : 0;
}

int br_quota_usage(CmDb *db, int64_t department_id, int64_t exclude_request, BrQuotaUsage *ret,
                   CmError *err)
{
    BrQuotaUsage u = {0};
    sqlite3_stmt *stmt;
    int r;

    stmt = cm_db_stmt(db,
                      "SELECT quota_vcpus, quota_memory_mib, quota_disk_gib, quota_instances"
                      " FROM departments WHERE id = ?",
                      err);
    if (!stmt)
        return -EIO;
    CM_DB_BIND(stmt, department_id);
    r = cm_db_step_row(db, stmt, err);
    if (r <= 0) {
        sqlite3_reset(stmt);
        return r < 0 ? r : -ENOENT;
    }
    u.quota.vcpus = sqlite3_column_int64(stmt, 0);
    u.quota.memory_mib = sqlite3_column_int64(stmt, 1);
    u.quota.disk_gib = sqlite3_column_int64(stmt, 2);
    u.quota.instances = sqlite3_column_int64(stmt, 3);
    sqlite3_reset(stmt);

    r = sum_query(db,
                  "SELECT total(vcpus), total(memory_mib), total(disk_gib), total(instances)"
                  " FROM allocations WHERE department_id = ?1 AND ?2 IS NOT NULL"
                  " AND purpose = 'production' AND state IN"
                  " ('provisioning','active','resizing','reclaiming','error')",
                  department_id, exclude_request, &u.allocated, err);
    if (r >= 0)
        r = sum_query(db,
                      "SELECT 0, 0, total(disk_gib), 0 FROM allocations"
                      " WHERE department_id = ?1 AND ?2 IS NOT NULL AND purpose = 'production'"
                      " AND state = 'retained'",
                      department_id, exclude_request, &u.allocated, err);
    if (r >= 0)
        r = sum_query(db,
                      "SELECT total(vcpus), total(memory_mib), total(disk_gib), total(instances)"
                      " FROM requests WHERE department_id = ?1 AND id != ?2 AND kind = 'new'"
                      " AND state IN ('approved','in_trial','trial_passed')"
                      " AND allocation_id IS NULL", /* once allocated, the allocation counts */
                      department_id, exclude_request, &u.approved, err);
    if (r >= 0)
        r = sum_query(db,
                      "SELECT total(max(r.vcpus - a.vcpus, 0)),"
                      " total(max(r.memory_mib - a.memory_mib, 0)),"
                      " total(max(r.disk_gib - a.disk_gib, 0)),"
                      " total(max(r.instances - a.instances, 0))"
                      " FROM requests r JOIN allocations a ON a.id = r.allocation_id"
                      " WHERE r.department_id = ?1 AND r.id != ?2 AND r.kind = 'change'"
                      " AND r.state IN ('approved','applying')",
                      department_id, exclude_request, &u.approved, err);
    if (r < 0)
        return r;
    *ret = u;
    return 0;
}
