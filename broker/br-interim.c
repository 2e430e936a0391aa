/* SPDX-License-Identifier: Apache-2.0 */
/* INTERIM reads of other owners' tables: see br-interim.h. */
#include <errno.h>

#include "br-interim.h"
#include "cm-util.h"

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
