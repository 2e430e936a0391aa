/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>

#include "br-trial.h"
#include "cm-time.h"

int br_trial_record(BrTx *tx, int64_t request, const BrTrialResult *t)
{
    char at[CM_TIME_ISO_LEN + 1];
    _cleanup_stmt_ CmStmt *st =
        cm_db_prepare(tx->db,
                      "INSERT INTO trial_results(request_id, test, result, report_sha256,"
                      " comment, account_id, at) VALUES (?,?,?,?,?,?,?)",
                      tx->err);
    int r;

    if (!st)
        return -EIO;
    cm_time_iso(cm_now_ms(), at);
    CM_DB_BIND(st, request, t->test, t->result, t->report, t->comment ? t->comment : "",
               tx->actor->account_id, at);
    r = cm_stmt_exec(st, tx->err);
    if (r == -EEXIST)
        return cm_error_set_code(tx->err, CM_ERROR_CONFLICT, "duplicate", "/test",
                                 "the %s test of request %lld is already recorded", t->test,
                                 (long long)request);
    return r;
}

int br_trial_tally(CmDb *db, int64_t request, int64_t *ret_passed, int64_t *ret_failed,
                   CmError *err)
{
    _cleanup_stmt_ CmStmt *st = cm_db_prepare(db,
                                              "SELECT total(result = 'pass'),"
                                              " total(result = 'fail')"
                                              " FROM trial_results WHERE request_id = ?",
                                              err);
    int r;

    if (!st)
        return -EIO;
    CM_DB_BIND(st, request);
    r = cm_stmt_step(st, err);
    if (r < 0)
        return r;
    *ret_passed = r > 0 ? cm_stmt_int(st, 0) : 0;
    *ret_failed = r > 0 ? cm_stmt_int(st, 1) : 0;
    return 0;
}

int br_trial_results(CmDb *db, int64_t request, json_object **ret, CmError *err)
{
    _cleanup_stmt_ CmStmt *st = cm_db_prepare(
        db,
        "SELECT t.test, t.result, t.report_sha256 AS report, t.comment, t.account_id, t.at,"
        " a.name AS account FROM trial_results t LEFT JOIN accounts a ON a.id = t.account_id"
        " WHERE t.request_id = ? ORDER BY t.id",
        err);
    if (!st)
        return -EIO;
    CM_DB_BIND(st, request);
    return cm_stmt_rows_json(st, ret, err);
}
