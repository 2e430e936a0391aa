/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>

#include "br-maintenance.h"
#include "br-store.h"
#include "cm-json.h"
#include "cm-time.h"

#define WINDOW_SELECT                                                                              \
    "SELECT id, host_id, starts_at, ends_at, reason, state, proposed_by, decided_by, decided_at,"  \
    " created_at FROM maintenance_windows"

int br_maintenance_create(BrTx *tx, int64_t host_id, const char *starts_at, const char *ends_at,
                          const char *reason, int64_t *ret_id)
{
    _cleanup_stmt_ CmStmt *st = cm_db_prepare(
        tx->db,
        "INSERT INTO maintenance_windows(host_id, starts_at, ends_at, reason, state, proposed_by,"
        " created_at) VALUES (?1, ?2, ?3, ?4, 'proposed', ?5, ?6) RETURNING id",
        tx->err);
    char now[CM_TIME_ISO_LEN + 1];
    int r;

    if (!st)
        return -EIO;
    cm_time_iso(cm_now_ms(), now);
    r = CM_DB_BIND(st, host_id, starts_at, ends_at, reason, tx->actor->account_id, now);
    if (r >= 0)
        r = cm_stmt_step(st, tx->err);
    if (r < 0)
        return r;
    *ret_id = cm_stmt_int(st, 0);
    return 0;
}

int br_maintenance_decide(BrTx *tx, int64_t id, bool agree)
{
    _cleanup_stmt_ CmStmt *st =
        cm_db_prepare(tx->db,
                      "UPDATE maintenance_windows SET state = ?2, decided_by = ?3, decided_at = ?4"
                      " WHERE id = ?1 AND state = 'proposed'",
                      tx->err);
    _cleanup_json_ json_object *cur = NULL;
    char now[CM_TIME_ISO_LEN + 1];
    int r;

    if (!st)
        return -EIO;
    cm_time_iso(cm_now_ms(), now);
    CM_DB_BIND(st, id, agree ? "agreed" : "rejected", tx->actor->account_id, now);
    r = cm_stmt_exec(st, tx->err);
    if (r < 0 || cm_stmt_changes(st) == 1)
        return r;
    r = br_maintenance_get(tx->db, id, &cur, tx->err);
    if (r < 0)
        return r;
    return cm_error_set_code(tx->err, CM_ERROR_CONFLICT, "invalid_state", "state",
                             "maintenance window %lld is '%s'; only a proposed one is decided",
                             (long long)id, cm_json_get_str(cur, "state", "?"));
}

int br_maintenance_get(CmDb *db, int64_t id, json_object **ret, CmError *err)
{
    return br_store_get_json(db, WINDOW_SELECT " WHERE id = ?1", "maintenance window", id, ret,
                             err);
}

int br_maintenance_list(CmDb *db, const BrPage *page, json_object **ret, CmError *err)
{
    _cleanup_stmt_ CmStmt *st =
        cm_db_prepare(db, WINDOW_SELECT " WHERE id > ?1 ORDER BY id LIMIT ?2", err);
    if (!st)
        return -EIO;
    CM_DB_BIND(st, page->after, page->limit);
    return cm_stmt_rows_json(st, ret, err);
}
