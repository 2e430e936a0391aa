/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "br-account.h"
#include "br-request.h"
#include "br-system.h"
#include "cm-json.h"
#include "cm-log.h"
#include "cm-time.h"
#include "cm-util.h"

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
    [S(DRAFT)] = {[S(SUBMITTED)] = BR_KINDS_ANY, [S(WITHDRAWN)] = BR_KINDS_ANY},
    [S(SUBMITTED)] = {[S(RETURNED)] = BR_KINDS_ANY,
                      [S(REJECTED)] = BR_KINDS_ANY,
                      [S(APPROVED)] = BR_KINDS_ANY,
                      [S(WITHDRAWN)] = BR_KINDS_ANY},
    [S(RETURNED)] = {[S(SUBMITTED)] = BR_KINDS_ANY, [S(WITHDRAWN)] = BR_KINDS_ANY},
    /* What approval starts depends on the kind: a trial, a change, or a reclaim. */
    [S(APPROVED)] = {[S(IN_TRIAL)] = BR_KINDS_NEW,
                     [S(APPLYING)] = BR_KINDS_CHANGE,
                     [S(RECLAIMING)] = BR_KINDS_TERM,
                     [S(FAILED)] = BR_KINDS_ANY},
    [S(IN_TRIAL)] = {[S(TRIAL_PASSED)] = BR_KINDS_NEW,
                     [S(TRIAL_FAILED)] = BR_KINDS_NEW,
                     [S(FAILED)] = BR_KINDS_NEW},
    [S(TRIAL_PASSED)] = {[S(ALLOCATED)] = BR_KINDS_NEW, [S(FAILED)] = BR_KINDS_NEW},
    [S(APPLYING)] = {[S(APPLIED)] = BR_KINDS_CHANGE, [S(FAILED)] = BR_KINDS_CHANGE},
    [S(RECLAIMING)] = {[S(RECLAIMED)] = BR_KINDS_TERM, [S(FAILED)] = BR_KINDS_TERM},
    /* A retried job (POST /v1/jobs/{id}/retry) takes its request back to where the job's
     * failure found it: the trial's or the production provisioning, the change, the reclaim. */
    [S(FAILED)] = {[S(APPROVED)] = BR_KINDS_NEW,
                   [S(TRIAL_PASSED)] = BR_KINDS_NEW,
                   [S(APPLYING)] = BR_KINDS_CHANGE,
                   [S(RECLAIMING)] = BR_KINDS_TERM},
};

#undef S

/* The history's entry for a move of request @id (@from NULL: its creation). */
static int history_add(CmDb *db, int64_t id, const char *from, const char *to, const BrActor *actor,
                       const char *comment, const char *at, CmError *err)
{
    _cleanup_stmt_ CmStmt *st =
        cm_db_prepare(db,
                      "INSERT INTO request_history(request_id, from_state, to_state, account_id,"
                      " role, comment, at) VALUES (?,?,?,?,?,?,?)",
                      err);
    if (!st)
        return -EIO;
    CM_DB_BIND(st, id, from, to, actor->account_id, br_actor_role_name(actor),
               comment ? comment : "", at);
    return cm_stmt_exec(st, err);
}

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
    _cleanup_stmt_ CmStmt *st = NULL;
    int r;

    if (!br_request_transition_allowed(kind, from, to))
        return cm_error_set_code(err, CM_ERROR_CONFLICT, "invalid_transition", "state",
                                 "a %s request cannot go from '%s' to '%s'",
                                 br_request_kind_to_string(kind), from_s, to_s ? to_s : "?");

    cm_time_iso(cm_now_ms(), at);
    /* Compare-and-set on the state: a concurrent move makes this a conflict, not a lost update. */
    st = cm_db_prepare(db,
                       "UPDATE requests SET state = ?, updated_at = ?, version = version + 1"
                       " WHERE id = ? AND state = ?",
                       err);
    if (!st)
        return -EIO;
    CM_DB_BIND(st, to_s, at, id, from_s);
    r = cm_stmt_exec(st, err);
    if (r < 0)
        return r;
    if (cm_stmt_changes(st) != 1)
        return cm_error_set_code(err, CM_ERROR_CONFLICT, "invalid_transition", "state",
                                 "request %lld is no longer in state '%s'", (long long)id, from_s);

    r = history_add(db, id, from_s, to_s, actor, comment, at, err);
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

BrResources br_resources_of_instances(json_object *instances)
{
    BrResources t = {0};
    size_t n = instances ? json_object_array_length(instances) : 0;
    for (size_t i = 0; i < n; i++) {
        json_object *inst = json_object_array_get_idx(instances, i);
        t.vcpus += cm_json_get_int(inst, "vcpus", 0);
        t.memory_mib += cm_json_get_int(inst, "memory_mib", 0);
        t.disk_gib += cm_json_get_int(inst, "disk_gib", 0);
        t.instances++;
    }
    return t;
}

void br_request_row_clear(BrRequestRow *r)
{
    free(r->resources);
    free(r->justification);
    memset(r, 0, sizeof(*r));
}

bool br_request_visible(const BrActor *viewer, int64_t department_id, int64_t consultant_id,
                        BrRequestState state)
{
    switch (viewer->role) {
    case BR_ROLE_DEPARTMENT:
        return department_id == viewer->department_id;
    case BR_ROLE_CONSULTANT:
        return consultant_id == viewer->account_id;
    case BR_ROLE_VENDOR:
        /* The vendor works on what the bureau approved: trials, allocations, reclaims. */
        return !(state == BR_REQUEST_STATE_DRAFT || state == BR_REQUEST_STATE_SUBMITTED ||
                 state == BR_REQUEST_STATE_RETURNED || state == BR_REQUEST_STATE_WITHDRAWN ||
                 state == BR_REQUEST_STATE_REJECTED);
    case BR_ROLE_REVIEWER:
    case BR_ROLE_AUDITOR:
        return true;
    default:
        return false;
    }
}

static int not_found(CmError *err, int64_t id)
{
    return cm_error_set(err, CM_ERROR_NOT_FOUND, "", "no request with id %lld", (long long)id);
}

int br_request_load(CmDb *db, int64_t id, const BrActor *viewer, BrRequestRow *ret, CmError *err)
{
    _cleanup_stmt_ CmStmt *st = cm_db_prepare(
        db,
        "SELECT id, department_id, system_id, kind, state, coalesce(allocation_id, 0),"
        " resources, vcpus, memory_mib, disk_gib, instances, justification, restart_allowed,"
        " coalesce(consultant_id, 0), created_by, created_at, updated_at, version,"
        " coalesce(trial_allocation_id, 0), coalesce(trial_deadline, '')"
        " FROM requests WHERE id = ?",
        err);
    BrRequestRow row;
    int r;

    if (!st)
        return -EIO;
    CM_DB_BIND(st, id);
    r = cm_stmt_step(st, err);
    if (r < 0)
        return r;
    if (r == 0)
        return not_found(err, id);
    row = (BrRequestRow){
        .id = cm_stmt_int(st, 0),
        .department_id = cm_stmt_int(st, 1),
        .system_id = cm_stmt_int(st, 2),
        .kind = (BrRequestKind)br_request_kind_from_string(cm_stmt_text(st, 3)),
        .state = (BrRequestState)br_request_state_from_string(cm_stmt_text(st, 4)),
        .allocation_id = cm_stmt_int(st, 5),
        .resources = cm_stmt_is_null(st, 6) ? NULL : cm_stmt_strdup(st, 6),
        .totals = {cm_stmt_int(st, 7), cm_stmt_int(st, 8), cm_stmt_int(st, 9), cm_stmt_int(st, 10)},
        .justification = cm_stmt_strdup(st, 11),
        .restart_allowed = cm_stmt_int(st, 12) != 0,
        .consultant_id = cm_stmt_int(st, 13),
        .created_by = cm_stmt_int(st, 14),
        .version = cm_stmt_int(st, 17),
        .trial_allocation_id = cm_stmt_int(st, 18),
    };
    cm_strscpy(row.created_at, sizeof(row.created_at), cm_stmt_text(st, 15));
    cm_strscpy(row.updated_at, sizeof(row.updated_at), cm_stmt_text(st, 16));
    cm_strscpy(row.trial_deadline, sizeof(row.trial_deadline), cm_stmt_text(st, 19));
    if (!row.justification || (!row.resources && !cm_stmt_is_null(st, 6))) {
        br_request_row_clear(&row);
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    }
    if (viewer && !br_request_visible(viewer, row.department_id, row.consultant_id, row.state)) {
        br_request_row_clear(&row);
        return not_found(err, id);
    }
    *ret = row;
    return 0;
}

/* The columns of a request's document, in the order the API shows them. */
#define REQUEST_JSON                                                                               \
    "r.id, r.department_id, r.system_id, r.kind, r.state, r.allocation_id,"                        \
    " r.resources AS \"resources:json\", r.vcpus AS \"totals.vcpus\","                             \
    " r.memory_mib AS \"totals.memory_mib\", r.disk_gib AS \"totals.disk_gib\","                   \
    " r.instances AS \"totals.instances\", r.justification,"                                       \
    " r.restart_allowed AS \"restart_allowed:bool\", r.consultant_id, r.created_by,"               \
    " r.created_at, r.updated_at, r.version"

int br_request_get(CmDb *db, int64_t id, json_object **ret, CmError *err)
{
    /* The system and department with it, so a reviewer or consultant reads the request alone. */
    _cleanup_stmt_ CmStmt *st = cm_db_prepare(
        db,
        "SELECT " REQUEST_JSON ", s.id AS \"system.id\", s.name AS \"system.name\","
        " s.description AS \"system.description\", s.category AS \"system.category\","
        " s.protection_level AS \"system.protection_level\","
        " r.department_id AS \"department.id\", d.code AS \"department.code\","
        " d.name AS \"department.name\", d.name AS department_name, s.name AS system_name"
        " FROM requests r JOIN systems s ON s.id = r.system_id"
        " JOIN departments d ON d.id = s.department_id WHERE r.id = ?",
        err);
    int r;

    if (!st)
        return -EIO;
    CM_DB_BIND(st, id);
    r = cm_stmt_step(st, err);
    if (r < 0)
        return r;
    if (r == 0)
        return not_found(err, id);
    *ret = cm_stmt_row_json(st);
    return 0;
}

int br_request_history(CmDb *db, int64_t id, json_object **ret, CmError *err)
{
    _cleanup_stmt_ CmStmt *st = cm_db_prepare(
        db,
        "SELECT h.from_state AS \"from\", h.to_state AS \"to\", h.account_id, h.role,"
        " h.comment, h.at, CASE WHEN h.account_id = 0 THEN 'cloudbrokerd' ELSE a.name END"
        " AS account FROM request_history h LEFT JOIN accounts a ON a.id = h.account_id"
        " WHERE h.request_id = ? ORDER BY h.id",
        err);
    if (!st)
        return -EIO;
    CM_DB_BIND(st, id);
    return cm_stmt_rows_json(st, ret, err);
}

int br_request_opinions(CmDb *db, int64_t id, json_object **ret, CmError *err)
{
    _cleanup_stmt_ CmStmt *st = cm_db_prepare(
        db,
        "SELECT o.id, o.account_id, a.name AS account, o.role, o.recommendation, o.comment,"
        " o.at FROM opinions o JOIN accounts a ON a.id = o.account_id"
        " WHERE o.request_id = ? ORDER BY o.id",
        err);
    if (!st)
        return -EIO;
    CM_DB_BIND(st, id);
    return cm_stmt_rows_json(st, ret, err);
}

int br_request_list(CmDb *db, const BrActor *viewer, const BrRequestFilter *f, const BrPage *page,
                    json_object **ret, CmError *err)
{
    /* Scoping is in the query so that pages stay full; br_request_visible() says the same. */
    _cleanup_stmt_ CmStmt *st = cm_db_prepare(
        db,
        "SELECT " REQUEST_JSON ","
        " (SELECT d.name FROM departments d WHERE d.id = r.department_id) AS department_name,"
        " (SELECT s.name FROM systems s WHERE s.id = r.system_id) AS system_name"
        " FROM requests r WHERE r.id > ?1"
        " AND (?2 = 0 OR r.department_id = ?2) AND r.state = coalesce(?3, r.state)"
        " AND r.kind = coalesce(?4, r.kind) AND (?5 = 0 OR r.system_id = ?5)"
        " AND (?6 = 0 OR r.consultant_id = ?6)"
        " AND (?7 = 0 OR r.state NOT IN ('draft','submitted','returned','withdrawn','rejected'))"
        " ORDER BY r.id LIMIT ?8",
        err);
    BrRole role = viewer->role;

    if (!st)
        return -EIO;
    CM_DB_BIND(st, page->after,
               role == BR_ROLE_DEPARTMENT ? viewer->department_id : f->department_id, f->state,
               f->kind, f->system_id, role == BR_ROLE_CONSULTANT ? viewer->account_id : 0,
               (int64_t)(role == BR_ROLE_VENDOR), page->limit);
    return cm_stmt_rows_json(st, ret, err);
}

int br_request_check_allocation(CmDb *db, int64_t department, int64_t allocation, int64_t system,
                                CmError *err)
{
    BrAllocationRow a;
    _cleanup_stmt_ CmStmt *st = NULL;
    int r = br_allocation_find(db, allocation, department, system, &a, err);

    if (r < 0)
        return r;
    if (r == 0)
        return cm_error_set_code(err, CM_ERROR_UNPROCESSABLE, "unknown_reference", "/allocation",
                                 "system %lld has no allocation with id %lld", (long long)system,
                                 (long long)allocation);
    if (a.state != BR_ALLOCATION_STATE_ACTIVE)
        return cm_error_set_code(err, CM_ERROR_CONFLICT, "invalid_state", "/allocation",
                                 "allocation %lld is '%s', not active", (long long)allocation,
                                 br_allocation_state_to_string(a.state));
    st = cm_db_prepare(db,
                       "SELECT id FROM requests WHERE allocation_id = ? AND state IN"
                       " ('draft','submitted','returned','approved','applying','reclaiming')"
                       " ORDER BY id LIMIT 1",
                       err);
    if (!st)
        return -EIO;
    CM_DB_BIND(st, allocation);
    r = cm_stmt_step(st, err);
    if (r > 0)
        return cm_error_set_code(err, CM_ERROR_CONFLICT, "open_request", "/allocation",
                                 "request %lld on this allocation is still open",
                                 (long long)cm_stmt_int(st, 0));
    return r;
}

int br_request_create(BrTx *tx, const BrRequestDraft *d, int64_t *ret_id)
{
    BrResources t = br_resources_of_instances(cm_json_get(d->resources, "instances"));
    char at[CM_TIME_ISO_LEN + 1];
    _cleanup_stmt_ CmStmt *st = NULL;
    int64_t id;
    int r;

    r = br_system_exists(tx->db, d->system_id, d->department_id, tx->err);
    if (r < 0)
        return r;
    if (r == 0)
        return cm_error_set_code(tx->err, CM_ERROR_UNPROCESSABLE, "unknown_reference", "/system",
                                 "your department has no system with id %lld",
                                 (long long)d->system_id);
    if (d->kind != BR_REQUEST_KIND_NEW) {
        r = br_request_check_allocation(tx->db, d->department_id, d->allocation_id, d->system_id,
                                        tx->err);
        if (r < 0)
            return r;
    }

    cm_time_iso(cm_now_ms(), at);
    st = cm_db_prepare(tx->db,
                       "INSERT INTO requests(department_id, system_id, kind, state, allocation_id,"
                       " resources, vcpus, memory_mib, disk_gib, instances, justification,"
                       " restart_allowed, created_by, created_at, updated_at)"
                       " VALUES (?1, ?2, ?3, 'draft', nullif(?4, 0), ?5, ?6, ?7, ?8, ?9, ?10,"
                       " ?11, ?12, ?13, ?13) RETURNING id",
                       tx->err);
    if (!st)
        return -EIO;
    CM_DB_BIND(st, d->department_id, d->system_id, br_request_kind_to_string(d->kind),
               d->allocation_id, d->resources ? cm_json_to_string(d->resources, NULL) : NULL,
               t.vcpus, t.memory_mib, t.disk_gib, t.instances,
               d->justification ? d->justification : "", d->restart_allowed, tx->actor->account_id,
               at);
    r = cm_stmt_step(st, tx->err);
    if (r < 0)
        return r;
    id = cm_stmt_int(st, 0);
    cm_stmt_reset(st);

    r = history_add(tx->db, id, NULL, "draft", tx->actor, d->comment, at, tx->err);
    if (r < 0)
        return r;
    r = br_tx_audit(tx, "request.create", "request", id, "draft", d->detail);
    if (r < 0)
        return r;
    *ret_id = id;
    return 0;
}

int br_request_update(BrTx *tx, int64_t id, json_object *resources, const char *justification,
                      int restart_allowed)
{
    BrResources t = br_resources_of_instances(cm_json_get(resources, "instances"));
    char at[CM_TIME_ISO_LEN + 1];
    _cleanup_stmt_ CmStmt *st =
        cm_db_prepare(tx->db,
                      "UPDATE requests SET resources = coalesce(?1, resources),"
                      " vcpus = CASE WHEN ?1 IS NULL THEN vcpus ELSE ?2 END,"
                      " memory_mib = CASE WHEN ?1 IS NULL THEN memory_mib ELSE ?3 END,"
                      " disk_gib = CASE WHEN ?1 IS NULL THEN disk_gib ELSE ?4 END,"
                      " instances = CASE WHEN ?1 IS NULL THEN instances ELSE ?5 END,"
                      " justification = coalesce(?6, justification),"
                      " restart_allowed = iif(?7 < 0, restart_allowed, ?7),"
                      " updated_at = ?8, version = version + 1 WHERE id = ?9",
                      tx->err);
    if (!st)
        return -EIO;
    cm_time_iso(cm_now_ms(), at);
    CM_DB_BIND(st, resources ? cm_json_to_string(resources, NULL) : NULL, t.vcpus, t.memory_mib,
               t.disk_gib, t.instances, justification, restart_allowed, at, id);
    return cm_stmt_exec(st, tx->err);
}

int br_request_assign(BrTx *tx, int64_t id, int64_t consultant)
{
    _cleanup_stmt_ CmStmt *st = NULL;
    int r = br_account_enabled_with_role(tx->db, consultant, BR_ROLE_CONSULTANT, tx->err);

    if (r < 0)
        return r;
    if (r == 0)
        return cm_error_set_code(tx->err, CM_ERROR_UNPROCESSABLE, "unknown_reference",
                                 "/consultant", "no enabled consultant account with id %lld",
                                 (long long)consultant);
    st = cm_db_prepare(tx->db,
                       "UPDATE requests SET consultant_id = ?, version = version + 1 WHERE id = ?",
                       tx->err);
    if (!st)
        return -EIO;
    CM_DB_BIND(st, consultant, id);
    return cm_stmt_exec(st, tx->err);
}

int br_request_add_opinion(BrTx *tx, int64_t id, const char *recommendation, const char *comment)
{
    char at[CM_TIME_ISO_LEN + 1];
    _cleanup_stmt_ CmStmt *st =
        cm_db_prepare(tx->db,
                      "INSERT INTO opinions(request_id, account_id, role, recommendation,"
                      " comment, at) VALUES (?,?,?,?,?,?)",
                      tx->err);
    if (!st)
        return -EIO;
    cm_time_iso(cm_now_ms(), at);
    CM_DB_BIND(st, id, tx->actor->account_id, br_actor_role_name(tx->actor), recommendation,
               comment, at);
    return cm_stmt_exec(st, tx->err);
}

static int add_sums(CmStmt *st, int64_t department_id, int64_t exclude, BrResources *ret,
                    CmError *err)
{
    int r;

    if (!st)
        return -EIO;
    CM_DB_BIND(st, department_id, exclude);
    r = cm_stmt_step(st, err);
    if (r > 0) {
        ret->vcpus += cm_stmt_int(st, 0);
        ret->memory_mib += cm_stmt_int(st, 1);
        ret->disk_gib += cm_stmt_int(st, 2);
        ret->instances += cm_stmt_int(st, 3);
    }
    return r < 0 ? r : 0;
}

int br_request_approved_usage(CmDb *db, int64_t department_id, int64_t exclude, BrResources *ret,
                              CmError *err)
{
    /* Once a new request is allocated, its allocation counts instead. */
    _cleanup_stmt_ CmStmt *granted = cm_db_prepare(
        db,
        "SELECT total(vcpus), total(memory_mib), total(disk_gib), total(instances)"
        " FROM requests WHERE department_id = ?1 AND id != ?2 AND kind = 'new'"
        " AND state IN ('approved','in_trial','trial_passed') AND allocation_id IS NULL",
        err);
    _cleanup_stmt_ CmStmt *growth = NULL;
    int r = add_sums(granted, department_id, exclude, ret, err);

    if (r < 0)
        return r;
    /* An approved change holds what it adds to its allocation. */
    growth = cm_db_prepare(db,
                           "SELECT total(max(r.vcpus - a.vcpus, 0)),"
                           " total(max(r.memory_mib - a.memory_mib, 0)),"
                           " total(max(r.disk_gib - a.disk_gib, 0)),"
                           " total(max(r.instances - a.instances, 0))"
                           " FROM requests r JOIN allocations a ON a.id = r.allocation_id"
                           " WHERE r.department_id = ?1 AND r.id != ?2 AND r.kind = 'change'"
                           " AND r.state IN ('approved','applying')",
                           err);
    return add_sums(growth, department_id, exclude, ret, err);
}

int br_request_set_allocation(CmDb *db, int64_t id, int64_t allocation, bool trial, CmError *err)
{
    _cleanup_stmt_ CmStmt *st =
        cm_db_prepare(db,
                      trial ? "UPDATE requests SET trial_allocation_id = ? WHERE id = ?"
                            : "UPDATE requests SET allocation_id = ? WHERE id = ?",
                      err);
    if (!st)
        return -EIO;
    CM_DB_BIND(st, allocation, id);
    return cm_stmt_exec(st, err);
}

int br_request_set_trial_deadline(CmDb *db, int64_t id, const char *deadline, CmError *err)
{
    _cleanup_stmt_ CmStmt *st =
        cm_db_prepare(db, "UPDATE requests SET trial_deadline = ? WHERE id = ?", err);
    if (!st)
        return -EIO;
    CM_DB_BIND(st, deadline, id);
    return cm_stmt_exec(st, err);
}

int br_request_overdue_trials(CmDb *db, const char *now, int64_t *ids, size_t max, size_t *ret_n,
                              CmError *err)
{
    _cleanup_stmt_ CmStmt *st =
        cm_db_prepare(db,
                      "SELECT id FROM requests WHERE state = 'in_trial'"
                      " AND trial_deadline IS NOT NULL AND trial_deadline <= ? ORDER BY id LIMIT ?",
                      err);
    size_t n = 0;
    int r = 0;

    if (!st)
        return -EIO;
    CM_DB_BIND(st, now, (int64_t)max);
    while (n < max && (r = cm_stmt_step(st, err)) > 0)
        ids[n++] = cm_stmt_int(st, 0);
    if (r < 0)
        return r;
    *ret_n = n;
    return 0;
}

int br_request_names(CmDb *db, int64_t id, BrRequestNames *ret, CmError *err)
{
    _cleanup_stmt_ CmStmt *st =
        cm_db_prepare(db,
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
    *ret =
        (BrRequestNames){.department_id = cm_stmt_int(st, 0), .consultant_id = cm_stmt_int(st, 1)};
    snprintf(ret->kind, sizeof(ret->kind), "%s", cm_stmt_text(st, 2));
    snprintf(ret->system_name, sizeof(ret->system_name), "%s", cm_stmt_text(st, 3));
    snprintf(ret->department_name, sizeof(ret->department_name), "%s", cm_stmt_text(st, 4));
    return 1;
}
