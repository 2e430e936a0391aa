/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "br-request.h"
#include "cm-json.h"
#include "cm-log.h"
#include "cm-time.h"

CM_ENUM_IMPL(br_request_kind, BrRequestKind, BR_REQUEST_KIND_MAX, "new", "change", "termination")

CM_ENUM_IMPL(br_request_state, BrRequestState, BR_REQUEST_STATE_MAX, "draft", "submitted",
             "returned", "withdrawn", "rejected", "approved", "in_trial", "trial_passed",
             "trial_failed", "allocated", "applying", "applied", "reclaiming", "reclaimed",
             "failed")

#define S(x) BR_REQUEST_STATE_##x

/*
 * The one transition table: allowed[from][to] holds the kinds of request for which the move
 * is allowed. Who may trigger a move (department, reviewer, a job) is the API's business;
 * this table only says which moves exist.
 */
static const unsigned allowed[BR_REQUEST_STATE_MAX][BR_REQUEST_STATE_MAX] = {
    [S(DRAFT)] = {[S(SUBMITTED)] = K_ANY, [S(WITHDRAWN)] = K_ANY},
    [S(SUBMITTED)] = {[S(RETURNED)] = K_ANY,
                      [S(REJECTED)] = K_ANY,
                      [S(APPROVED)] = K_ANY,
                      [S(WITHDRAWN)] = K_ANY},
    [S(RETURNED)] = {[S(SUBMITTED)] = K_ANY, [S(WITHDRAWN)] = K_ANY},
    /* What approval starts depends on the kind: a trial, a change, or a reclaim. */
    [S(APPROVED)] = {[S(IN_TRIAL)] = K_NEW,
                     [S(APPLYING)] = K_CHANGE,
                     [S(RECLAIMING)] = K_TERM,
                     [S(FAILED)] = K_ANY},
    [S(IN_TRIAL)] = {[S(TRIAL_PASSED)] = K_NEW, [S(TRIAL_FAILED)] = K_NEW, [S(FAILED)] = K_NEW},
    [S(TRIAL_PASSED)] = {[S(ALLOCATED)] = K_NEW, [S(FAILED)] = K_NEW},
    [S(APPLYING)] = {[S(APPLIED)] = K_CHANGE, [S(FAILED)] = K_CHANGE},
    [S(RECLAIMING)] = {[S(RECLAIMED)] = K_TERM, [S(FAILED)] = K_TERM},
    /* A retried job (POST /v1/jobs/{id}/retry) takes its request back to where the job's
     * failure found it: the trial's or the production provisioning, the change, the reclaim. */
    [S(FAILED)] = {[S(APPROVED)] = K_NEW,
                   [S(TRIAL_PASSED)] = K_NEW,
                   [S(APPLYING)] = K_CHANGE,
                   [S(RECLAIMING)] = K_TERM},
};

#undef S

bool br_request_transition_allowed(BrRequestKind kind, BrRequestState from, BrRequestState to)
{
    if ((unsigned)kind >= BR_REQUEST_KIND_MAX || (unsigned)from >= BR_REQUEST_STATE_MAX ||
        (unsigned)to >= BR_REQUEST_STATE_MAX)
        return false;
    return (allowed[from][to] & BR_KIND_BIT(kind)) != 0;
}

unsigned br_request_next_states(BrRequestKind kind, BrRequestState from,
                                BrRequestState out[BR_REQUEST_STATE_MAX])
{
    unsigned n = 0;
    for (int to = 0; to < BR_REQUEST_STATE_MAX; to++)
        if (br_request_transition_allowed(kind, from, (BrRequestState)to))
            out[n++] = (BrRequestState)to;
    return n;
}

bool br_request_state_is_final(BrRequestKind kind, BrRequestState s)
{
    BrRequestState next[BR_REQUEST_STATE_MAX];
    return br_request_next_states(kind, s, next) == 0;
}

bool br_request_state_is_editable(BrRequestState s)
{
    return s == BR_REQUEST_STATE_DRAFT || s == BR_REQUEST_STATE_RETURNED;
}

int br_request_set_state(BrStore *store, CmDb *db, const BrActor *actor, int64_t id,
                         BrRequestKind kind, BrRequestState from, BrRequestState to,
                         const char *action, const char *comment, CmError *err)
{
    const char *from_s = br_request_state_to_string(from);
    const char *to_s = br_request_state_to_string(to);
    char at[CM_TIME_ISO_LEN + 1];
    sqlite3_stmt *stmt;
    int r;

    if (!br_request_transition_allowed(kind, from, to))
        return cm_error_set_code(err, CM_ERROR_CONFLICT, "invalid_transition", "state",
                                 "a %s request cannot go from '%s' to '%s'",
                                 br_request_kind_to_string(kind), from_s, to_s ? to_s : "?");

    cm_time_iso(cm_now_ms(), at);
    /* Compare-and-set on the state: a concurrent move makes this a conflict, not a lost update. */
    stmt = cm_db_stmt(db,
                      "UPDATE requests SET state = ?, updated_at = ?, version = version + 1"
                      " WHERE id = ? AND state = ?",
                      err);
    if (!stmt)
        return -EIO;
    CM_DB_BIND(stmt, to_s, at, id, from_s);
    r = cm_db_step_done(db, stmt, err);
    if (r < 0)
        return r;
    if (sqlite3_changes(cm_db_handle(db)) != 1)
        return cm_error_set_code(err, CM_ERROR_CONFLICT, "invalid_transition", "state",
                                 "request %lld is no longer in state '%s'", (long long)id,
                                 from_s);

    stmt = cm_db_stmt(db,
                      "INSERT INTO request_history(request_id, from_state, to_state, account_id,"
                      " role, comment, at) VALUES (?,?,?,?,?,?,?)",
                      err);
    if (!stmt)
        return -EIO;
    CM_DB_BIND(stmt, id, from_s, to_s, actor->account_id, br_actor_role_name(actor),
               comment ? comment : "", at);
    r = cm_db_step_done(db, stmt, err);
    if (r < 0)
        return r;

    _cleanup_json_ json_object *detail = json_object_new_object();
    json_object_object_add(detail, "from", json_object_new_string(from_s));
    json_object_object_add(detail, "to", json_object_new_string(to_s));
    if (comment && *comment)
        json_object_object_add(detail, "comment", json_object_new_string(comment));
    r = br_store_audit(store, db, actor, action, "request", id, to_s,
                       cm_json_to_string(detail, NULL), err);
    if (r < 0)
        return r;

    cm_log_info("request %lld: %s → %s (%s by %s)", (long long)id, from_s, to_s, action,
                actor->name);
    return 0;
}

int br_request_names(CmDb *db, int64_t id, BrRequestNames *ret, CmError *err)
{
    _cleanup_stmt_ CmStmt *st = cm_db_prepare(
        db,
        "SELECT r.department_id, coalesce(r.consultant_id, 0), r.kind, s.name, d.name"
        " FROM requests r JOIN systems s ON s.id = r.system_id"
        " JOIN departments d ON d.id = r.department_id WHERE r.id = ?",
        err);
    int r;

    if (!st)
        return -EIO;
    CM_DB_BIND(st, id);
    r = cm_stmt_step(st, err);
    if (r <= 0)
        return r;
    *ret = (BrRequestNames){.department_id = cm_stmt_int(st, 0),
                            .consultant_id = cm_stmt_int(st, 1)};
    snprintf(ret->kind, sizeof(ret->kind), "%s", cm_stmt_text(st, 2));
    snprintf(ret->system_name, sizeof(ret->system_name), "%s", cm_stmt_text(st, 3));
    snprintf(ret->department_name, sizeof(ret->department_name), "%s", cm_stmt_text(st, 4));
    return 1;
}

/* -- added by jobs -- */

int br_request_info_load(CmDb *db, int64_t id, BrRequestInfo *ret, CmError *err)
{
    _cleanup_stmt_ CmStmt *st = cm_db_prepare(
        db,
        "SELECT department_id, system_id, kind, state, resources, coalesce(allocation_id, 0),"
        " coalesce(trial_allocation_id, 0), restart_allowed FROM requests WHERE id = ?1",
        err);
    const char *res;
    int r;

    if (!st)
        return -EIO;
    CM_DB_BIND(st, id);
    r = cm_stmt_step(st, err);
    if (r < 0)
        return r;
    if (r == 0)
        return cm_error_set(err, CM_ERROR_NOT_FOUND, "", "no request %lld", (long long)id);
    *ret = (BrRequestInfo){
        .id = id,
        .department_id = cm_stmt_int(st, 0),
        .system_id = cm_stmt_int(st, 1),
        .kind = (BrRequestKind)br_request_kind_from_string(cm_stmt_text(st, 2)),
        .state = (BrRequestState)br_request_state_from_string(cm_stmt_text(st, 3)),
        .allocation_id = cm_stmt_int(st, 5),
        .trial_allocation_id = cm_stmt_int(st, 6),
        .restart_allowed = cm_stmt_int(st, 7) != 0,
    };
    res = cm_stmt_text(st, 4);
    if (res)
        cm_json_parse(res, strlen(res), &ret->resources, NULL);
    return 0;
}

void br_request_info_clear(BrRequestInfo *r)
{
    json_object_put(r->resources);
    memset(r, 0, sizeof(*r));
}

int br_request_set_allocation(CmDb *db, int64_t id, bool trial, int64_t allocation_id, CmError *err)
{
    _cleanup_stmt_ CmStmt *st =
        cm_db_prepare(db,
                      trial ? "UPDATE requests SET trial_allocation_id = ?2 WHERE id = ?1"
                            : "UPDATE requests SET allocation_id = ?2 WHERE id = ?1",
                      err);

    if (!st)
        return -EIO;
    CM_DB_BIND(st, id, allocation_id);
    return cm_stmt_exec(st, err);
}

int br_request_set_trial_deadline(CmDb *db, int64_t id, const char *deadline, CmError *err)
{
    _cleanup_stmt_ CmStmt *st =
        cm_db_prepare(db, "UPDATE requests SET trial_deadline = ?2 WHERE id = ?1", err);

    if (!st)
        return -EIO;
    CM_DB_BIND(st, id, deadline);
    return cm_stmt_exec(st, err);
}

int br_request_overdue_trials(CmDb *db, const char *now, int64_t *ids, size_t max, CmError *err)
{
    _cleanup_stmt_ CmStmt *st = cm_db_prepare(
        db,
        "SELECT id FROM requests WHERE state = 'in_trial' AND trial_deadline IS NOT NULL"
        " AND trial_deadline <= ?1 ORDER BY id LIMIT ?2",
        err);
    size_t n = 0;
    int r = 0;

    if (!st)
        return -EIO;
    CM_DB_BIND(st, now, (int64_t)max);
    while (n < max && (r = cm_stmt_step(st, err)) > 0)
        ids[n++] = cm_stmt_int(st, 0);
    return r < 0 ? r : (int)n;
}
