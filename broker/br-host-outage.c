/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>

#include "br-host-outage.h"

int br_host_outage_begin(CmDb *db, int64_t host_id, const char *at, CmError *err)
{
    _cleanup_stmt_ CmStmt *st =
        cm_db_prepare(db,
                      "INSERT INTO host_outages(host_id, lost_at) SELECT ?1, ?2 WHERE NOT EXISTS"
                      " (SELECT 1 FROM host_outages WHERE host_id = ?1 AND back_at IS NULL)",
                      err);
    if (!st)
        return -EIO;
    CM_DB_BIND(st, host_id, at);
    return cm_stmt_exec(st, err);
}

int br_host_outage_end(CmDb *db, int64_t host_id, const char *at, CmError *err)
{
    _cleanup_stmt_ CmStmt *st =
        cm_db_prepare(db,
                      "UPDATE host_outages SET back_at = ?2 WHERE host_id = ?1 AND back_at IS NULL"
                      " AND lost_at <= ?2",
                      err);
    if (!st)
        return -EIO;
    CM_DB_BIND(st, host_id, at);
    return cm_stmt_exec(st, err);
}
