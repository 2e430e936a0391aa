/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>

#include "br-sla-explanation.h"
#include "br-store.h"
#include "cm-json.h"
#include "cm-time.h"

/* With the name of the account that wrote it (the console shows names, not ids). */
#define EXPLANATION_SELECT                                                                         \
    "SELECT e.id, e.month, e.indicator, e.text, e.account_id, a.name AS account_name,"             \
    " e.created_at FROM sla_explanations e LEFT JOIN accounts a ON a.id = e.account_id"

int br_sla_explanation_create(BrTx *tx, const char *month, const char *indicator, const char *text,
                              int64_t *ret_id)
{
    _cleanup_stmt_ CmStmt *st =
        cm_db_prepare(tx->db,
                      "INSERT INTO sla_explanations(month, indicator, text, account_id, created_at)"
                      " VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
                      tx->err);
    char now[CM_TIME_ISO_LEN + 1];
    int r;

    if (!st)
        return -EIO;
    cm_time_iso(cm_now_ms(), now);
    r = CM_DB_BIND(st, month, indicator, text, tx->actor->account_id, now);
    if (r >= 0)
        r = cm_stmt_step(st, tx->err);
    if (r < 0)
        return r;
    *ret_id = cm_stmt_int(st, 0);
    return 0;
}

int br_sla_explanation_get(CmDb *db, int64_t id, json_object **ret, CmError *err)
{
    return br_store_get_json(db, EXPLANATION_SELECT " WHERE e.id = ?1", "explanation", id, ret,
                             err);
}

int br_sla_explanation_list(CmDb *db, const char *month, json_object **ret, CmError *err)
{
    _cleanup_stmt_ CmStmt *st =
        cm_db_prepare(db, EXPLANATION_SELECT " WHERE e.month = ?1 ORDER BY e.id", err);
    if (!st)
        return -EIO;
    CM_DB_BIND(st, month);
    return cm_stmt_rows_json(st, ret, err);
}
