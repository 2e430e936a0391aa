/* SPDX-License-Identifier: Apache-2.0 */
/* Requests: apply (create, edit, materials, submit) and review (assign, opinions, decision). */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "br-api.h"
#include "br-api-requests.h"
#include "br-daemon.h"
#include "br-quota.h"
#include "br-review.h"
#include "br-jobs.h"
#include "br-workflow.h"
#include "cm-time.h"

#define REQUEST_COLUMNS                                                                            \
    "id, department_id, system_id, kind, state, allocation_id, resources, vcpus, memory_mib,"      \
    " disk_gib, instances, justification, restart_allowed, consultant_id, created_by,"             \
    " created_at, updated_at, version, trial_allocation_id, trial_deadline"

/* The names of a request's department and system, beside their ids in lists. */
#define NAME_COLUMNS                                                                               \
    " (SELECT name FROM departments WHERE id = requests.department_id),"                           \
    " (SELECT name FROM systems WHERE id = requests.system_id)"

void br_request_row_clear(BrRequestRow *r)
{
    free(r->resources);
    free(r->justification);
    memset(r, 0, sizeof(*r));
}

static void row_from_stmt(sqlite3_stmt *s, BrRequestRow *r)
{
    const char *res = cm_db_col_text(s, 6);
    r->id = sqlite3_column_int64(s, 0);
    r->department_id = sqlite3_column_int64(s, 1);
    r->system_id = sqlite3_column_int64(s, 2);
    r->kind = (BrRequestKind)br_request_kind_from_string(cm_db_col_text(s, 3));
    r->state = (BrRequestState)br_request_state_from_string(cm_db_col_text(s, 4));
    r->allocation_id = sqlite3_column_int64(s, 5);
    r->resources = res ? strdup(res) : NULL;
    r->totals.vcpus = sqlite3_column_int64(s, 7);
    r->totals.memory_mib = sqlite3_column_int64(s, 8);
    r->totals.disk_gib = sqlite3_column_int64(s, 9);
    r->totals.instances = sqlite3_column_int64(s, 10);
    r->justification = strdup(cm_db_col_text(s, 11) ? cm_db_col_text(s, 11) : "");
    r->restart_allowed = sqlite3_column_int(s, 12) != 0;
    r->consultant_id = sqlite3_column_int64(s, 13);
    r->created_by = sqlite3_column_int64(s, 14);
    snprintf(r->created_at, sizeof(r->created_at), "%s", cm_db_col_text(s, 15));
    snprintf(r->updated_at, sizeof(r->updated_at), "%s", cm_db_col_text(s, 16));
    r->version = sqlite3_column_int64(s, 17);
    r->trial_allocation_id = sqlite3_column_int64(s, 18);
    snprintf(r->trial_deadline, sizeof(r->trial_deadline), "%s",
             cm_db_col_text(s, 19) ? cm_db_col_text(s, 19) : "");
}

/* Who may see a request; everyone else is told it does not exist. */
static bool request_visible(const BrCall *c, const BrRequestRow *r)
{
    switch (c->actor.role) {
    case BR_ROLE_DEPARTMENT:
        return r->department_id == c->actor.department_id;
    case BR_ROLE_CONSULTANT:
        return r->consultant_id == c->actor.account_id;
    case BR_ROLE_VENDOR:
        /* The vendor works on what the bureau approved: trials, allocations, reclaims. */
        return !(r->state == BR_REQUEST_STATE_DRAFT || r->state == BR_REQUEST_STATE_SUBMITTED ||
                 r->state == BR_REQUEST_STATE_RETURNED || r->state == BR_REQUEST_STATE_WITHDRAWN ||
                 r->state == BR_REQUEST_STATE_REJECTED);
    case BR_ROLE_REVIEWER:
    case BR_ROLE_AUDITOR:
        return true;
    default:
        return false;
    }
}

int br_request_load(BrCall *c, CmDb *db, int64_t id, BrRequestRow *ret)
{
    sqlite3_stmt *stmt =
        cm_db_stmt(db, "SELECT " REQUEST_COLUMNS " FROM requests WHERE id = ?", &c->err);
    BrRequestRow row = {0};
    int r;

    if (!stmt)
        return -EIO;
    CM_DB_BIND(stmt, id);
    r = cm_db_step_row(db, stmt, &c->err);
    if (r > 0)
        row_from_stmt(stmt, &row);
    sqlite3_reset(stmt);
    if (r < 0)
        return r;
    if (r == 0 || !request_visible(c, &row)) {
        br_request_row_clear(&row);
        return br_not_found(c, "request", id);
    }
    *ret = row;
    return 0;
}

static json_object *request_summary_json(const BrRequestRow *r)
{
    json_object *o = json_object_new_object();
    json_object *res = NULL;

    if (r->resources)
        cm_json_parse(r->resources, strlen(r->resources), &res, NULL);
    json_object_object_add(o, "id", json_object_new_int64(r->id));
    json_object_object_add(o, "department_id", json_object_new_int64(r->department_id));
    json_object_object_add(o, "system_id", json_object_new_int64(r->system_id));
    json_object_object_add(o, "kind", json_object_new_string(br_request_kind_to_string(r->kind)));
    json_object_object_add(o, "state",
                           json_object_new_string(br_request_state_to_string(r->state)));
    json_object_object_add(o, "allocation_id", br_json_id_or_null(r->allocation_id));
    json_object_object_add(o, "resources", res);
    json_object_object_add(o, "totals", br_resources_to_json(&r->totals));
    json_object_object_add(o, "justification", json_object_new_string(r->justification));
    json_object_object_add(o, "restart_allowed", json_object_new_boolean(r->restart_allowed));
    json_object_object_add(o, "consultant_id", br_json_id_or_null(r->consultant_id));
    json_object_object_add(o, "created_by", json_object_new_int64(r->created_by));
    json_object_object_add(o, "created_at", json_object_new_string(r->created_at));
    json_object_object_add(o, "updated_at", json_object_new_string(r->updated_at));
    json_object_object_add(o, "version", json_object_new_int64(r->version));
    return o;
}

/* The materials currently attached, as JSON, and as a bit set of kinds in @ret_present. */
static int materials_json(BrCall *c, CmDb *db, int64_t id, json_object **ret, unsigned *ret_present)
{
    sqlite3_stmt *stmt = cm_db_stmt(db,
                                    "SELECT kind, sha256, size, media_type, filename,"
                                    " uploaded_by, uploaded_at FROM materials"
                                    " WHERE request_id = ? AND current = 1 ORDER BY kind",
                                    &c->err);
    json_object *list = ret ? json_object_new_array() : NULL;
    unsigned present = 0;
    int r;

    if (!stmt) {
        json_object_put(list);
        return -EIO;
    }
    CM_DB_BIND(stmt, id);
    while ((r = cm_db_step_row(db, stmt, &c->err)) > 0) {
        int k = br_material_kind_from_string(cm_db_col_text(stmt, 0));
        if (k >= 0)
            present |= 1u << k;
        if (!list)
            continue; /* only the kinds were asked for */
        json_object *m = json_object_new_object();
        json_object_object_add(m, "kind", br_json_col_text(stmt, 0));
        json_object_object_add(m, "sha256", br_json_col_text(stmt, 1));
        json_object_object_add(m, "size", json_object_new_int64(sqlite3_column_int64(stmt, 2)));
        json_object_object_add(m, "media_type", br_json_col_text(stmt, 3));
        json_object_object_add(m, "filename", br_json_col_text(stmt, 4));
        json_object_object_add(m, "uploaded_by",
                               json_object_new_int64(sqlite3_column_int64(stmt, 5)));
        json_object_object_add(m, "uploaded_at", br_json_col_text(stmt, 6));
        json_object_array_add(list, m);
    }
    sqlite3_reset(stmt);
    if (r < 0) {
        json_object_put(list);
        return r;
    }
    if (ret)
        *ret = list;
    else
        json_object_put(list);
    if (ret_present)
        *ret_present = present;
    return 0;
}

int br_request_review(BrCall *c, CmDb *db, const BrRequestRow *row, json_object **ret_check,
                      BrReviewOutcome *ret_outcome)
{
    _cleanup_(br_policies_unrefp) BrPolicies *p = br_call_policies(c);
    _cleanup_json_ json_object *resources = NULL;
    BrReviewInput in = {.kind = row->kind, .policy = &p->review, .catalog = &p->catalog};
    BrQuotaUsage usage;
    json_object *check;
    int r;

    r = materials_json(c, db, row->id, NULL, &in.materials_present);
    if (r < 0)
        return r;
    r = br_quota_usage(db, row->department_id, row->id, &usage, &c->err);
    if (r < 0)
        return r == -ENOENT ? cm_error_set(&c->err, CM_ERROR_INTERNAL, "", "department vanished")
                            : r;
    if (row->resources)
        cm_json_parse(row->resources, strlen(row->resources), &resources, NULL);
    in.instances = cm_json_get(resources, "instances");
    in.usage = &usage;
    in.requested = row->totals;
    if (row->kind == BR_REQUEST_KIND_TERMINATION) {
        memset(&in.requested, 0, sizeof(in.requested));
    } else if (row->kind == BR_REQUEST_KIND_CHANGE && row->allocation_id) {
        /* A change asks for the difference between the new and the current size. */
        sqlite3_stmt *stmt = cm_db_stmt(db,
                                        "SELECT vcpus, memory_mib, disk_gib, instances"
                                        " FROM allocations WHERE id = ?",
                                        &c->err);
        if (!stmt)
            return -EIO;
        CM_DB_BIND(stmt, row->allocation_id);
        if (cm_db_step_row(db, stmt, &c->err) > 0) {
            in.requested.vcpus -= sqlite3_column_int64(stmt, 0);
            in.requested.memory_mib -= sqlite3_column_int64(stmt, 1);
            in.requested.disk_gib -= sqlite3_column_int64(stmt, 2);
            in.requested.instances -= sqlite3_column_int64(stmt, 3);
        }
        sqlite3_reset(stmt);
        if (in.requested.vcpus < 0)
            in.requested.vcpus = 0;
        if (in.requested.memory_mib < 0)
            in.requested.memory_mib = 0;
        if (in.requested.disk_gib < 0)
            in.requested.disk_gib = 0;
        if (in.requested.instances < 0)
            in.requested.instances = 0;
    }
    {
        /* The department's live idle and over-provisioned findings, for the reviewer. */
        sqlite3_stmt *fs = cm_db_stmt(db,
                                      "SELECT f.id, f.kind, i.name, f.frees_vcpus,"
                                      " f.frees_memory_mib, f.rule FROM findings f"
                                      " JOIN instances i ON i.id = f.instance_id"
                                      " WHERE f.department_id = ? AND f.state IN"
                                      " ('open','acknowledged') AND f.kind IN"
                                      " ('idle','over_provisioned') ORDER BY f.id LIMIT 100",
                                      &c->err);
        if (!fs)
            return -EIO;
        in.findings = json_object_new_array();
        CM_DB_BIND(fs, row->department_id);
        while (sqlite3_step(fs) == SQLITE_ROW) {
            json_object *f = json_object_new_object();
            json_object_object_add(f, "id", json_object_new_int64(sqlite3_column_int64(fs, 0)));
            json_object_object_add(f, "kind", br_json_col_text(fs, 1));
            json_object_object_add(f, "instance", br_json_col_text(fs, 2));
            json_object_object_add(f, "frees_vcpus",
                                   json_object_new_int64(sqlite3_column_int64(fs, 3)));
            json_object_object_add(f, "frees_memory_mib",
                                   json_object_new_int64(sqlite3_column_int64(fs, 4)));
            json_object_object_add(f, "rule", br_json_col_text(fs, 5));
            json_object_array_add(in.findings, f);
        }
        sqlite3_reset(fs);
    }
    check = br_review_check(&in, ret_outcome);
    json_object_put(in.findings);
    if (ret_check)
        *ret_check = check;
    else
        json_object_put(check);
    return 0;
}

static int request_full_json(BrCall *c, CmDb *db, const BrRequestRow *row, json_object **ret)
{
    json_object *o = request_summary_json(row), *list, *check = NULL;
    sqlite3_stmt *stmt;
    BrRequestState next[BR_REQUEST_STATE_MAX];
    unsigned n_next;
    int r;

    /* The system and department, so a reviewer or consultant reads the request alone. */
    stmt = cm_db_stmt(db,
                      "SELECT s.name, s.description, s.category, s.protection_level, d.code,"
                      " d.name FROM systems s JOIN departments d ON d.id = s.department_id"
                      " WHERE s.id = ?",
                      &c->err);
    if (!stmt)
        goto error;
    CM_DB_BIND(stmt, row->system_id);
    if ((r = cm_db_step_row(db, stmt, &c->err)) > 0) {
        json_object *s = json_object_new_object(), *d = json_object_new_object();
        json_object_object_add(s, "id", json_object_new_int64(row->system_id));
        json_object_object_add(s, "name", br_json_col_text(stmt, 0));
        json_object_object_add(s, "description", br_json_col_text(stmt, 1));
        json_object_object_add(s, "category", br_json_col_text(stmt, 2));
        json_object_object_add(s, "protection_level",
                               json_object_new_int64(sqlite3_column_int64(stmt, 3)));
        json_object_object_add(d, "id", json_object_new_int64(row->department_id));
        json_object_object_add(d, "code", br_json_col_text(stmt, 4));
        json_object_object_add(d, "name", br_json_col_text(stmt, 5));
        json_object_object_add(o, "system", s);
        json_object_object_add(o, "department", d);
        json_object_object_add(o, "department_name", br_json_col_text(stmt, 5));
        json_object_object_add(o, "system_name", br_json_col_text(stmt, 0));
    }
    sqlite3_reset(stmt);
    if (r < 0)
        goto error;

    if (materials_json(c, db, row->id, &list, NULL) < 0)
        goto error;
    json_object_object_add(o, "materials", list);

    stmt = cm_db_stmt(db,
                      "SELECT h.from_state, h.to_state, h.account_id, h.role, h.comment, h.at,"
                      " CASE WHEN h.account_id = 0 THEN 'cloudbrokerd' ELSE a.name END"
                      " FROM request_history h LEFT JOIN accounts a"
                      " ON a.id = h.account_id WHERE h.request_id = ? ORDER BY h.id",
                      &c->err);
    if (!stmt)
        goto error;
    CM_DB_BIND(stmt, row->id);
    list = json_object_new_array();
    while ((r = cm_db_step_row(db, stmt, &c->err)) > 0) {
        json_object *h = json_object_new_object();
        json_object_object_add(h, "from", br_json_col_text(stmt, 0));
        json_object_object_add(h, "to", br_json_col_text(stmt, 1));
        json_object_object_add(h, "account_id",
                               json_object_new_int64(sqlite3_column_int64(stmt, 2)));
        json_object_object_add(h, "role", br_json_col_text(stmt, 3));
        json_object_object_add(h, "comment", br_json_col_text(stmt, 4));
        json_object_object_add(h, "at", br_json_col_text(stmt, 5));
        json_object_object_add(h, "account", br_json_col_text(stmt, 6));
        json_object_array_add(list, h);
    }
    sqlite3_reset(stmt);
    json_object_object_add(o, "history", list);
    if (r < 0)
        goto error;

    stmt = cm_db_stmt(db,
                      "SELECT o.id, o.account_id, a.name, o.role, o.recommendation, o.comment, o.at"
                      " FROM opinions o JOIN accounts a ON a.id = o.account_id"
                      " WHERE o.request_id = ? ORDER BY o.id",
                      &c->err);
    if (!stmt)
        goto error;
    CM_DB_BIND(stmt, row->id);
    list = json_object_new_array();
    while ((r = cm_db_step_row(db, stmt, &c->err)) > 0) {
        json_object *op = json_object_new_object();
        json_object_object_add(op, "id", json_object_new_int64(sqlite3_column_int64(stmt, 0)));
        json_object_object_add(op, "account_id",
                               json_object_new_int64(sqlite3_column_int64(stmt, 1)));
        json_object_object_add(op, "account", br_json_col_text(stmt, 2));
        json_object_object_add(op, "role", br_json_col_text(stmt, 3));
        json_object_object_add(op, "recommendation", br_json_col_text(stmt, 4));
        json_object_object_add(op, "comment", br_json_col_text(stmt, 5));
        json_object_object_add(op, "at", br_json_col_text(stmt, 6));
        json_object_array_add(list, op);
    }
    sqlite3_reset(stmt);
    json_object_object_add(o, "opinions", list);
    if (r < 0)
        goto error;

    if (br_request_review(c, db, row, &check, NULL) < 0)
        goto error;
    json_object_object_add(o, "check", check);

    /* The trial's results and the jobs working for this request. */
    stmt = cm_db_stmt(db,
                      "SELECT t.test, t.result, t.report_sha256, t.comment, t.account_id, t.at,"
                      " a.name FROM trial_results t LEFT JOIN accounts a ON a.id = t.account_id"
                      " WHERE t.request_id = ? ORDER BY t.id",
                      &c->err);
    if (!stmt)
        goto error;
    CM_DB_BIND(stmt, row->id);
    list = json_object_new_array();
    while ((r = cm_db_step_row(db, stmt, &c->err)) > 0) {
        json_object *t = json_object_new_object();
        json_object_object_add(t, "test", br_json_col_text(stmt, 0));
        json_object_object_add(t, "result", br_json_col_text(stmt, 1));
        json_object_object_add(t, "report", br_json_col_text(stmt, 2));
        json_object_object_add(t, "comment", br_json_col_text(stmt, 3));
        json_object_object_add(t, "account_id",
                               json_object_new_int64(sqlite3_column_int64(stmt, 4)));
        json_object_object_add(t, "at", br_json_col_text(stmt, 5));
        json_object_object_add(t, "account", br_json_col_text(stmt, 6));
        json_object_array_add(list, t);
    }
    sqlite3_reset(stmt);
    {
        json_object *trial = json_object_new_object();
        json_object_object_add(trial, "allocation_id",
                               br_json_id_or_null(row->trial_allocation_id));
        json_object_object_add(trial, "deadline",
                               row->trial_deadline[0] ? json_object_new_string(row->trial_deadline)
                                                      : NULL);
        json_object_object_add(trial, "results", list);
        json_object_object_add(o, "trial", trial);
    }
    if (r < 0)
        goto error;
    stmt = cm_db_stmt(
        db, "SELECT id, kind, state, error FROM jobs WHERE request_id = ? ORDER BY id", &c->err);
    if (!stmt)
        goto error;
    CM_DB_BIND(stmt, row->id);
    list = json_object_new_array();
    while ((r = cm_db_step_row(db, stmt, &c->err)) > 0) {
        json_object *j = json_object_new_object();
        json_object_object_add(j, "id", json_object_new_int64(sqlite3_column_int64(stmt, 0)));
        json_object_object_add(j, "kind", br_json_col_text(stmt, 1));
        json_object_object_add(j, "state", br_json_col_text(stmt, 2));
        json_object_object_add(j, "error", br_json_col_text(stmt, 3));
        json_object_array_add(list, j);
    }
    sqlite3_reset(stmt);
    json_object_object_add(o, "jobs", list);
    if (r < 0)
        goto error;

    list = json_object_new_array();
    n_next = br_request_next_states(row->kind, row->state, next);
    for (unsigned i = 0; i < n_next; i++)
        json_object_array_add(list, json_object_new_string(br_request_state_to_string(next[i])));
    json_object_object_add(o, "next_states", list);

    *ret = o;
    return 0;

error:
    json_object_put(o);
    return cm_error_is_set(&c->err) ? cm_error_kind_errno(c->err.kind) : -EIO;
}

/* Replies with the full request @id as the caller sees it now. */
static int reply_request(BrCall *c, CmDb *db, int64_t id, unsigned status)
{
    BrRequestRow row = {0};
    json_object *o = NULL;
    int r = br_request_load(c, db, id, &row);
    if (r >= 0)
        r = request_full_json(c, db, &row, &o);
    br_request_row_clear(&row);
    if (r < 0)
        return r;
    return br_reply(c, status, o);
}

/* The body's resources: stored as compact JSON, with their totals. */
static int resources_from_body(BrCall *c, json_object *resources, char **ret_text,
                               BrResources *ret_totals)
{
    json_object *instances = cm_json_get(resources, "instances");
    const char *text;

    *ret_totals = br_resources_of_instances(instances);
    if (!resources) {
        *ret_text = NULL;
        return 0;
    }
    text = cm_json_to_string(resources, NULL);
    *ret_text = strdup(text);
    if (!*ret_text)
        return cm_error_set(&c->err, CM_ERROR_INTERNAL, "", "out of memory");
    return 0;
}

/* Changes and terminations act on one live allocation of the caller's department's @system:
 * it exists (422 unknown_reference), is active (409 invalid_state) and has no request still
 * open (409 open_request). Errors name /allocation. */
int br_api_allocation_changeable(BrCall *c, CmDb *db, int64_t allocation, int64_t system)
{
    sqlite3_stmt *stmt;
    int r;

    stmt = cm_db_stmt(db,
                      "SELECT state FROM allocations WHERE id = ? AND system_id = ?"
                      " AND department_id = ?",
                      &c->err);
    r = stmt ? 0 : -EIO;
    if (r >= 0) {
        CM_DB_BIND(stmt, allocation, system, c->actor.department_id);
        r = cm_db_step_row(db, stmt, &c->err);
        if (r == 0)
            r = cm_error_set_code(&c->err, CM_ERROR_UNPROCESSABLE, "unknown_reference",
                                  "/allocation", "system %lld has no allocation with id %lld",
                                  (long long)system, (long long)allocation);
        else if (r > 0 && strcmp(cm_db_col_text(stmt, 0), "active") != 0)
            r = cm_error_set_code(&c->err, CM_ERROR_CONFLICT, "invalid_state", "/allocation",
                                  "allocation %lld is '%s', not active", (long long)allocation,
                                  cm_db_col_text(stmt, 0));
        sqlite3_reset(stmt);
    }
    if (r < 0)
        return r;
    stmt = cm_db_stmt(db,
                      "SELECT id FROM requests WHERE allocation_id = ? AND state IN"
                      " ('draft','submitted','returned','approved','applying','reclaiming')",
                      &c->err);
    r = stmt ? 0 : -EIO;
    if (r >= 0) {
        CM_DB_BIND(stmt, allocation);
        r = cm_db_step_row(db, stmt, &c->err);
        if (r > 0)
            r = cm_error_set_code(&c->err, CM_ERROR_CONFLICT, "open_request", "/allocation",
                                  "request %lld on this allocation is still open",
                                  (long long)sqlite3_column_int64(stmt, 0));
        sqlite3_reset(stmt);
    }
    return r < 0 ? r : 0;
}

static int br_api_requests_create(BrCall *c)
{
    const char *kind_s = cm_json_get_str(c->body, "kind", "new");
    BrRequestKind kind = (BrRequestKind)br_request_kind_from_string(kind_s);
    int64_t system = cm_json_get_int(c->body, "system", 0);
    int64_t allocation = cm_json_get_int(c->body, "allocation", 0);
    _cleanup_free_ char *resources = NULL;
    char at[CM_TIME_ISO_LEN + 1];
    BrResources totals;
    sqlite3_stmt *stmt;
    CmDb *db;
    int64_t id = 0;
    int r;

    r = resources_from_body(c, cm_json_get(c->body, "resources"), &resources, &totals);
    if (r < 0)
        return r;
    cm_time_iso(cm_now_ms(), at);

    r = br_api_write_begin(c, &db);
    if (r < 0)
        return r;
    stmt = cm_db_stmt(db, "SELECT 1 FROM systems WHERE id = ? AND department_id = ?", &c->err);
    r = stmt ? 0 : -EIO;
    if (r >= 0) {
        CM_DB_BIND(stmt, system, c->actor.department_id);
        r = cm_db_step_row(db, stmt, &c->err);
        sqlite3_reset(stmt);
        if (r == 0)
            r = cm_error_set_code(&c->err, CM_ERROR_UNPROCESSABLE, "unknown_reference", "/system",
                                  "your department has no system with id %lld", (long long)system);
    }
    if (r >= 0 && kind != BR_REQUEST_KIND_NEW)
        r = br_api_allocation_changeable(c, db, allocation, system);
    if (r >= 0) {
        stmt = cm_db_stmt(db,
                          "INSERT INTO requests(department_id, system_id, kind, state,"
                          " allocation_id, resources, vcpus, memory_mib, disk_gib, instances,"
                          " justification, restart_allowed, created_by, created_at, updated_at)"
                          " VALUES (?,?,?,'draft',?,?,?,?,?,?,?,?,?,?,?)",
                          &c->err);
        r = stmt ? 0 : -EIO;
    }
    if (r >= 0) {
        CM_DB_BIND(stmt, c->actor.department_id, system, kind_s);
        if (allocation)
            sqlite3_bind_int64(stmt, 4, allocation);
        sqlite3_bind_text(stmt, 5, resources, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(stmt, 6, totals.vcpus);
        sqlite3_bind_int64(stmt, 7, totals.memory_mib);
        sqlite3_bind_int64(stmt, 8, totals.disk_gib);
        sqlite3_bind_int64(stmt, 9, totals.instances);
        sqlite3_bind_text(stmt, 10, cm_json_get_str(c->body, "justification", ""), -1,
                          SQLITE_TRANSIENT);
        sqlite3_bind_int(stmt, 11, cm_json_get_bool(c->body, "restart_allowed", false));
        sqlite3_bind_int64(stmt, 12, c->actor.account_id);
        sqlite3_bind_text(stmt, 13, at, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(stmt, 14, at, -1, SQLITE_TRANSIENT);
        r = cm_db_step_done(db, stmt, &c->err);
    }
    if (r >= 0) {
        id = cm_db_last_insert_id(db);
        stmt = cm_db_stmt(db,
                          "INSERT INTO request_history(request_id, from_state, to_state,"
                          " account_id, role, at) VALUES (?, NULL, 'draft', ?, ?, ?)",
                          &c->err);
        r = stmt ? 0 : -EIO;
        if (r >= 0) {
            CM_DB_BIND(stmt, id, c->actor.account_id, br_actor_role_name(&c->actor), at);
            r = cm_db_step_done(db, stmt, &c->err);
        }
    }
    if (r >= 0)
        r = br_store_audit(c->d->store, db, &c->actor, "request.create", "request", id, "draft",
                           cm_json_to_string(c->body, NULL), &c->err);
    r = br_api_write_end(c, db, r);
    if (r < 0)
        return r;
    return reply_request(c, br_api_read_db(c), id, MHD_HTTP_CREATED);
}

static int br_api_requests_list(BrCall *c)
{
    CmDb *db = br_api_read_db(c);
    const char *state = br_call_query(c, "state"), *kind = br_call_query(c, "kind");
    sqlite3_stmt *stmt;
    json_object *items;
    int64_t limit, after, last = 0, dept = 0, system = 0;
    int r;

    if (!db)
        return -EIO;
    r = br_api_page(c, &limit, &after);
    if (r >= 0)
        r = br_call_query_int(c, "department", 1, INT64_MAX, &dept);
    if (r >= 0)
        r = br_call_query_int(c, "system", 1, INT64_MAX, &system);
    if (r < 0)
        return r;
    if (state && br_request_state_from_string(state) < 0)
        return cm_error_set(&c->err, CM_ERROR_INVALID, "state", "unknown state '%s'", state);
    if (kind && br_request_kind_from_string(kind) < 0)
        return cm_error_set(&c->err, CM_ERROR_INVALID, "kind", "unknown kind '%s'", kind);
    if (br_call_is_department(c))
        dept = c->actor.department_id;

    /* Scoping is in the query so that pages stay full; request_visible() says the same. */
    stmt = cm_db_stmt(db,
                      "SELECT " REQUEST_COLUMNS "," NAME_COLUMNS " FROM requests WHERE id > ?1"
                      " AND (?2 = 0 OR department_id = ?2) AND (?3 IS NULL OR state = ?3)"
                      " AND (?4 IS NULL OR kind = ?4) AND (?5 = 0 OR system_id = ?5)"
                      " AND (?6 = 0 OR consultant_id = ?6)"
                      " AND (?7 = 0 OR state NOT IN"
                      "  ('draft','submitted','returned','withdrawn','rejected'))"
                      " ORDER BY id LIMIT ?8",
                      &c->err);
    if (!stmt)
        return -EIO;
    CM_DB_BIND(stmt, after, dept, state, kind, system,
               c->actor.role == BR_ROLE_CONSULTANT ? c->actor.account_id : (int64_t)0,
               (int64_t)(c->actor.role == BR_ROLE_VENDOR), limit);
    items = json_object_new_array();
    while ((r = cm_db_step_row(db, stmt, &c->err)) > 0) {
        BrRequestRow row = {0};
        row_from_stmt(stmt, &row);
        last = row.id;
        if (request_visible(c, &row)) {
            json_object *o = request_summary_json(&row);
            json_object_object_add(o, "department_name", br_json_col_text(stmt, 20));
            json_object_object_add(o, "system_name", br_json_col_text(stmt, 21));
            json_object_array_add(items, o);
        }
        br_request_row_clear(&row);
    }
    sqlite3_reset(stmt);
    if (r < 0) {
        json_object_put(items);
        return r;
    }
    return br_api_list_reply(c, items, limit, last);
}

/*
 * GET /v1/requests/{id} is the most frequent call and its document is the same for every
 * caller allowed to see it. It is cached serialised, keyed by the store's commit generation
 * and the policies' generation: any commit or policy reload makes every entry stale. The
 * fields the visibility check needs are kept with it, so scoping is checked on every hit.
 */
#define CACHE_SLOTS 1024

typedef struct {
    pthread_mutex_t lock;
    int64_t id;
    uint64_t generation, policies_generation;
    BrRequestRow scope; /* department_id, consultant_id, state only */
    char *body;
    size_t len;
} CacheSlot;

static CacheSlot cache[CACHE_SLOTS];
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;

static void cache_init(void)
{
    for (size_t i = 0; i < CACHE_SLOTS; i++)
        pthread_mutex_init(&cache[i].lock, NULL);
}

static int cache_reply(BrCall *c, int64_t id, uint64_t gen, uint64_t pgen)
{
    CacheSlot *slot = &cache[(uint64_t)id % CACHE_SLOTS];
    char *copy = NULL;
    bool visible = false;

    pthread_mutex_lock(&slot->lock);
    if (slot->body && slot->id == id && slot->generation == gen &&
        slot->policies_generation == pgen) {
        visible = request_visible(c, &slot->scope);
        if (visible) {
            copy = malloc(slot->len + 1);
            if (copy)
                memcpy(copy, slot->body, slot->len + 1);
        }
    } else {
        pthread_mutex_unlock(&slot->lock);
        return 0; /* a miss */
    }
    pthread_mutex_unlock(&slot->lock);
    if (!visible)
        return br_not_found(c, "request", id);
    if (!copy)
        return cm_error_set(&c->err, CM_ERROR_INTERNAL, "", "out of memory");
    br_reply_text(c, MHD_HTTP_OK, "application/json", copy);
    return 1;
}

static void cache_store(int64_t id, uint64_t gen, uint64_t pgen, const BrRequestRow *row,
                        const char *body, size_t len)
{
    CacheSlot *slot = &cache[(uint64_t)id % CACHE_SLOTS];
    char *copy = malloc(len + 1);
    if (!copy)
        return;
    memcpy(copy, body, len);
    copy[len] = 0;
    pthread_mutex_lock(&slot->lock);
    free(slot->body);
    slot->body = copy;
    slot->len = len;
    slot->id = id;
    slot->generation = gen;
    slot->policies_generation = pgen;
    slot->scope = (BrRequestRow){.id = id,
                                 .department_id = row->department_id,
                                 .consultant_id = row->consultant_id,
                                 .state = row->state};
    pthread_mutex_unlock(&slot->lock);
}

static int br_api_requests_get(BrCall *c)
{
    int64_t id = c->ids[0];
    uint64_t gen = br_store_generation(c->d->store);
    uint64_t pgen = br_daemon_policies_generation(c->d);
    CmDb *db = br_api_read_db(c);
    BrRequestRow row = {0};
    json_object *o = NULL;
    int r;

    pthread_once(&cache_once, cache_init);
    r = cache_reply(c, id, gen, pgen);
    if (r != 0)
        return r < 0 ? r : 0;
    if (!db)
        return -EIO;
    /* One read transaction: every part of the answer comes from the same snapshot. */
    r = cm_db_begin_read(db, &c->err);
    if (r < 0)
        return r;
    r = br_request_load(c, db, id, &row);
    if (r >= 0)
        r = request_full_json(c, db, &row, &o);
    cm_db_rollback(db);
    if (r >= 0) {
        size_t len;
        const char *text = cm_json_to_string(o, &len);
        cache_store(id, gen, pgen, &row, text, len);
    }
    br_request_row_clear(&row);
    if (r < 0)
        return r;
    return br_reply(c, MHD_HTTP_OK, o);
}

static int br_api_requests_patch(BrCall *c)
{
    int64_t id = c->ids[0];
    json_object *resources = cm_json_get(c->body, "resources");
    json_object *restart = cm_json_get(c->body, "restart_allowed");
    _cleanup_free_ char *res_text = NULL;
    char at[CM_TIME_ISO_LEN + 1];
    BrRequestRow row = {0};
    BrResources totals;
    sqlite3_stmt *stmt;
    CmDb *db;
    int r;

    r = resources_from_body(c, resources, &res_text, &totals);
    if (r < 0)
        return r;
    cm_time_iso(cm_now_ms(), at);
    r = br_api_write_begin(c, &db);
    if (r < 0)
        return r;
    r = br_request_load(c, db, id, &row);
    if (r >= 0 && !br_request_state_is_editable(row.state))
        r = cm_error_set_code(&c->err, CM_ERROR_CONFLICT, "invalid_state", "state",
                              "request %lld is '%s'; it can be edited only while draft or "
                              "returned",
                              (long long)id, br_request_state_to_string(row.state));
    if (r >= 0 && resources && row.kind == BR_REQUEST_KIND_TERMINATION)
        r = cm_error_set_code(&c->err, CM_ERROR_UNPROCESSABLE, "schema_violation", "/resources",
                              "a termination request carries no resources");
    if (r >= 0 && cm_json_get(resources, "remove") && row.kind != BR_REQUEST_KIND_CHANGE)
        r = cm_error_set_code(&c->err, CM_ERROR_UNPROCESSABLE, "schema_violation",
                              "/resources/remove", "only a change removes instances");
    if (r >= 0) {
        stmt = cm_db_stmt(db,
                          "UPDATE requests SET resources = coalesce(?1, resources),"
                          " vcpus = CASE WHEN ?1 IS NULL THEN vcpus ELSE ?2 END,"
                          " memory_mib = CASE WHEN ?1 IS NULL THEN memory_mib ELSE ?3 END,"
                          " disk_gib = CASE WHEN ?1 IS NULL THEN disk_gib ELSE ?4 END,"
                          " instances = CASE WHEN ?1 IS NULL THEN instances ELSE ?5 END,"
                          " justification = coalesce(?6, justification),"
                          " restart_allowed = coalesce(?7, restart_allowed),"
                          " updated_at = ?8, version = version + 1 WHERE id = ?9",
                          &c->err);
        r = stmt ? 0 : -EIO;
    }
    if (r >= 0) {
        CM_DB_BIND(stmt, res_text, totals.vcpus, totals.memory_mib, totals.disk_gib,
                   totals.instances, cm_json_get_str(c->body, "justification", NULL));
        if (restart)
            sqlite3_bind_int(stmt, 7, json_object_get_boolean(restart));
        sqlite3_bind_text(stmt, 8, at, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(stmt, 9, id);
        r = cm_db_step_done(db, stmt, &c->err);
    }
    if (r >= 0)
        r = br_store_audit(c->d->store, db, &c->actor, "request.update", "request", id, "ok",
                           cm_json_to_string(c->body, NULL), &c->err);
    br_request_row_clear(&row);
    r = br_api_write_end(c, db, r);
    if (r < 0)
        return r;
    return reply_request(c, br_api_read_db(c), id, MHD_HTTP_OK);
}

/* Refuses a submission that lacks required materials or breaks an enforced limit. */
static int check_submittable(BrCall *c, CmDb *db, const BrRequestRow *row)
{
    BrReviewOutcome o;
    int r = br_request_review(c, db, row, NULL, &o);
    char missing[256] = "";

    if (r < 0)
        return r;
    if (!o.ok[BR_REVIEW_RULE_MATERIALS] && o.enforced[BR_REVIEW_RULE_MATERIALS]) {
        const char *first = NULL;
        for (int m = 0; m < BR_MATERIAL_MAX; m++) {
            if (!(o.missing & (1u << m)))
                continue;
            const char *name = br_material_kind_to_string((BrMaterialKind)m);
            size_t used = strlen(missing);
            snprintf(missing + used, sizeof(missing) - used, "%s%s", used ? ", " : "", name);
            if (!first)
                first = name;
        }
        char field[96];
        snprintf(field, sizeof(field), "/materials/%s", first);
        return cm_error_set_code(&c->err, CM_ERROR_UNPROCESSABLE, "materials_missing", field,
                                 "required materials are missing: %s", missing);
    }
    if (!o.ok[BR_REVIEW_RULE_CATALOG])
        return cm_error_set_code(&c->err, CM_ERROR_UNPROCESSABLE, "unknown_image",
                                 "/resources/instances",
                                 "the request names an image that is not in the catalog; see "
                                 "the images_in_catalog rule of the check in GET "
                                 "/v1/requests/%lld",
                                 (long long)row->id);
    if (row->kind == BR_REQUEST_KIND_CHANGE) {
        r = br_workflow_check_change(c->d, db, row->id, &c->err);
        if (r < 0)
            return r;
    }
    if (!o.ok[BR_REVIEW_RULE_LIMITS] && o.enforced[BR_REVIEW_RULE_LIMITS])
        return cm_error_set_code(&c->err, CM_ERROR_UNPROCESSABLE, "limit_exceeded",
                                 "/resources/instances",
                                 "the request exceeds the per-instance limits of the review "
                                 "policy; see the instance_limits rule of the check in GET "
                                 "/v1/requests/%lld",
                                 (long long)row->id);
    return 0;
}

/* A department's move of its own request: submit, resubmit or withdraw. */
static int department_move(BrCall *c, const char *action, BrRequestState to, bool check)
{
    int64_t id = c->ids[0];
    BrRequestRow row = {0};
    const char *comment = cm_json_get_str(c->body, "comment", "");
    CmDb *db;
    int r;

    r = br_api_write_begin(c, &db);
    if (r < 0)
        return r;
    r = br_request_load(c, db, id, &row);
    /* resubmit only answers a return; submit only leaves a draft. */
    if (r >= 0 && strcmp(action, "request.submit") == 0 && row.state != BR_REQUEST_STATE_DRAFT)
        r = cm_error_set_code(&c->err, CM_ERROR_CONFLICT, "invalid_transition", "state",
                              "request %lld is '%s'; only a draft can be submitted%s",
                              (long long)id, br_request_state_to_string(row.state),
                              row.state == BR_REQUEST_STATE_RETURNED ? " (use resubmit)" : "");
    if (r >= 0 && strcmp(action, "request.resubmit") == 0 && row.state != BR_REQUEST_STATE_RETURNED)
        r = cm_error_set_code(&c->err, CM_ERROR_CONFLICT, "invalid_transition", "state",
                              "request %lld is '%s'; only a returned request can be resubmitted",
                              (long long)id, br_request_state_to_string(row.state));
    if (r >= 0 && !br_request_transition_allowed(row.kind, row.state, to))
        r = cm_error_set_code(&c->err, CM_ERROR_CONFLICT, "invalid_transition", "state",
                              "request %lld is '%s' and cannot become '%s'", (long long)id,
                              br_request_state_to_string(row.state),
                              br_request_state_to_string(to));
    if (r >= 0 && check)
        r = check_submittable(c, db, &row);
    if (r >= 0)
        r = br_request_set_state(c->d->store, db, &c->actor, id, row.kind, row.state, to, action,
                                 comment, &c->err);
    br_request_row_clear(&row);
    r = br_api_write_end(c, db, r);
    if (r < 0)
        return r;
    return reply_request(c, br_api_read_db(c), id, MHD_HTTP_OK);
}

static int br_api_requests_submit(BrCall *c)
{
    return department_move(c, "request.submit", BR_REQUEST_STATE_SUBMITTED, true);
}

static int br_api_requests_resubmit(BrCall *c)
{
    return department_move(c, "request.resubmit", BR_REQUEST_STATE_SUBMITTED, true);
}

static int br_api_requests_withdraw(BrCall *c)
{
    return department_move(c, "request.withdraw", BR_REQUEST_STATE_WITHDRAWN, false);
}

static int br_api_requests_assign(BrCall *c)
{
    int64_t id = c->ids[0], consultant = cm_json_get_int(c->body, "consultant", 0);
    BrRequestRow row = {0};
    sqlite3_stmt *stmt;
    CmDb *db;
    char detail[64];
    int r;

    r = br_api_write_begin(c, &db);
    if (r < 0)
        return r;
    r = br_request_load(c, db, id, &row);
    if (r >= 0 && row.state != BR_REQUEST_STATE_SUBMITTED)
        r = cm_error_set_code(&c->err, CM_ERROR_CONFLICT, "invalid_state", "state",
                              "request %lld is '%s'; consultants are assigned while it is "
                              "submitted",
                              (long long)id, br_request_state_to_string(row.state));
    if (r >= 0) {
        stmt = cm_db_stmt(db,
                          "SELECT 1 FROM accounts WHERE id = ? AND role = 'consultant'"
                          " AND disabled = 0",
                          &c->err);
        r = stmt ? 0 : -EIO;
        if (r >= 0) {
            CM_DB_BIND(stmt, consultant);
            r = cm_db_step_row(db, stmt, &c->err);
            sqlite3_reset(stmt);
            if (r == 0)
                r = cm_error_set_code(&c->err, CM_ERROR_UNPROCESSABLE, "unknown_reference",
                                      "/consultant", "no enabled consultant account with id %lld",
                                      (long long)consultant);
        }
    }
    if (r >= 0) {
        stmt = cm_db_stmt(db,
                          "UPDATE requests SET consultant_id = ?, version = version + 1"
                          " WHERE id = ?",
                          &c->err);
        r = stmt ? 0 : -EIO;
        if (r >= 0) {
            CM_DB_BIND(stmt, consultant, id);
            r = cm_db_step_done(db, stmt, &c->err);
        }
    }
    snprintf(detail, sizeof(detail), "{\"consultant\":%lld}", (long long)consultant);
    if (r >= 0)
        r = br_store_audit(c->d->store, db, &c->actor, "request.assign", "request", id, "ok",
                           detail, &c->err);
    br_request_row_clear(&row);
    r = br_api_write_end(c, db, r);
    if (r < 0)
        return r;
    return reply_request(c, br_api_read_db(c), id, MHD_HTTP_OK);
}

static int br_api_requests_opinion(BrCall *c)
{
    int64_t id = c->ids[0];
    char at[CM_TIME_ISO_LEN + 1];
    BrRequestRow row = {0};
    sqlite3_stmt *stmt;
    CmDb *db;
    int r;

    cm_time_iso(cm_now_ms(), at);
    r = br_api_write_begin(c, &db);
    if (r < 0)
        return r;
    r = br_request_load(c, db, id, &row);
    if (r >= 0 && row.state != BR_REQUEST_STATE_SUBMITTED)
        r = cm_error_set_code(&c->err, CM_ERROR_CONFLICT, "invalid_state", "state",
                              "request %lld is '%s'; opinions are recorded while it is submitted",
                              (long long)id, br_request_state_to_string(row.state));
    if (r >= 0) {
        stmt = cm_db_stmt(db,
                          "INSERT INTO opinions(request_id, account_id, role, recommendation,"
                          " comment, at) VALUES (?,?,?,?,?,?)",
                          &c->err);
        r = stmt ? 0 : -EIO;
        if (r >= 0) {
            CM_DB_BIND(stmt, id, c->actor.account_id, br_actor_role_name(&c->actor),
                       cm_json_get_str(c->body, "recommendation", ""),
                       cm_json_get_str(c->body, "comment", ""), at);
            r = cm_db_step_done(db, stmt, &c->err);
        }
    }
    if (r >= 0)
        r = br_store_audit(c->d->store, db, &c->actor, "request.opinion", "request", id,
                           cm_json_get_str(c->body, "recommendation", ""),
                           cm_json_to_string(c->body, NULL), &c->err);
    br_request_row_clear(&row);
    r = br_api_write_end(c, db, r);
    if (r < 0)
        return r;
    return reply_request(c, br_api_read_db(c), id, MHD_HTTP_CREATED);
}

static int br_api_requests_decision(BrCall *c)
{
    int64_t id = c->ids[0];
    const char *decision = cm_json_get_str(c->body, "decision", "");
    const char *comment = cm_json_get_str(c->body, "comment", "");
    BrRequestState to = strcmp(decision, "approve") == 0  ? BR_REQUEST_STATE_APPROVED
                        : strcmp(decision, "reject") == 0 ? BR_REQUEST_STATE_REJECTED
                                                          : BR_REQUEST_STATE_RETURNED;
    BrRequestRow row = {0};
    CmDb *db;
    int r;

    r = br_api_write_begin(c, &db);
    if (r < 0)
        return r;
    r = br_request_load(c, db, id, &row);
    if (r >= 0 && !br_request_transition_allowed(row.kind, row.state, to))
        r = cm_error_set_code(&c->err, CM_ERROR_CONFLICT, "invalid_transition", "state",
                              "request %lld is '%s'; a decision is taken on a submitted request",
                              (long long)id, br_request_state_to_string(row.state));
    if (r >= 0 && to == BR_REQUEST_STATE_APPROVED) {
        /* Approval honours every enforced rule; the reviewer sees why in GET's check. */
        BrReviewOutcome o;
        r = br_request_review(c, db, &row, NULL, &o);
        int failed = r >= 0 ? br_review_first_failure(&o, ~0u) : -1;
        if (failed >= 0) {
            char field[64];
            /* A pointer into GET /v1/requests/{id}: the rules array is in enum order. */
            snprintf(field, sizeof(field), "/check/rules/%d", failed);
            r = cm_error_set_code(&c->err, CM_ERROR_UNPROCESSABLE, "review_rule_failed", field,
                                  "cannot approve: the enforced rule '%s' fails; see check in "
                                  "GET /v1/requests/%lld",
                                  br_review_rule_to_string((BrReviewRule)failed), (long long)id);
        }
    }
    if (r >= 0 && to == BR_REQUEST_STATE_APPROVED && row.kind == BR_REQUEST_KIND_CHANGE)
        r = br_workflow_check_change(c->d, db, id, &c->err);
    if (r >= 0)
        r = br_request_set_state(c->d->store, db, &c->actor, id, row.kind, row.state, to,
                                 "request.decision", comment, &c->err);
    if (r >= 0 && to == BR_REQUEST_STATE_APPROVED) {
        /* Approval starts the hypervisor work, as a job, in the same transaction. */
        int64_t job = 0;
        switch (row.kind) {
        case BR_REQUEST_KIND_NEW:
            r = br_workflow_plan_trial(c->d, db, &c->actor, id, &job, &c->err);
            break;
        case BR_REQUEST_KIND_CHANGE:
            r = br_request_set_state(c->d->store, db, &c->actor, id, row.kind,
                                     BR_REQUEST_STATE_APPROVED, BR_REQUEST_STATE_APPLYING,
                                     "request.apply", NULL, &c->err);
            if (r >= 0)
                r = br_workflow_plan_change(c->d, db, &c->actor, id, &job, &c->err);
            break;
        case BR_REQUEST_KIND_TERMINATION:
            r = br_request_set_state(c->d->store, db, &c->actor, id, row.kind,
                                     BR_REQUEST_STATE_APPROVED, BR_REQUEST_STATE_RECLAIMING,
                                     "request.reclaim", NULL, &c->err);
            if (r >= 0)
                r = br_workflow_plan_reclaim(c->d, db, &c->actor, id, &job, &c->err);
            break;
        default:
            break;
        }
    }
    br_request_row_clear(&row);
    r = br_api_write_end(c, db, r);
    if (r < 0)
        return r;
    br_jobs_kick(c->d->jobs);
    return reply_request(c, br_api_read_db(c), id, MHD_HTTP_OK);
}

static int br_api_requests_allocate(BrCall *c)
{
    int64_t id = c->ids[0], alloc = 0, job = 0;
    BrRequestRow row = {0};
    BrReviewOutcome o;
    CmDb *db;
    int r;

    r = br_api_write_begin(c, &db);
    if (r < 0)
        return r;
    r = br_request_load(c, db, id, &row);
    if (r >= 0 && row.state != BR_REQUEST_STATE_TRIAL_PASSED)
        r = cm_error_set_code(&c->err, CM_ERROR_CONFLICT, "invalid_transition", "state",
                              "request %lld is '%s'; resources are allocated once the trial "
                              "passed",
                              (long long)id, br_request_state_to_string(row.state));
    /* Quotas again: other requests may have been granted since this one was approved. */
    if (r >= 0)
        r = br_request_review(c, db, &row, NULL, &o);
    if (r >= 0 && br_review_first_failure(&o, 1u << BR_REVIEW_RULE_QUOTA) >= 0)
        r = cm_error_set_code(
            &c->err, CM_ERROR_UNPROCESSABLE, "review_rule_failed", "/check/rules/2",
            "allocating request %lld would exceed the department's quota now", (long long)id);
    /* Nothing is created when no host can take the instances: say which filter refused. */
    if (r >= 0)
        r = br_workflow_place_request(c->d, db, id, "production", &c->err);
    if (r >= 0)
        r = br_workflow_plan_allocate(c->d, db, &c->actor, id, &alloc, &job, &c->err);
    if (r >= 0)
        r = br_store_audit(c->d->store, db, &c->actor, "request.allocate", "request", id,
                           "accepted", cm_json_to_string(c->body, NULL), &c->err);
    br_request_row_clear(&row);
    r = br_api_write_end(c, db, r);
    if (r < 0)
        return r;
    br_jobs_kick(c->d->jobs);
    return reply_request(c, br_api_read_db(c), id, MHD_HTTP_ACCEPTED);
}

static int br_api_requests_trial_result(BrCall *c)
{
    int64_t id = c->ids[0];
    const char *test = cm_json_get_str(c->body, "test", "");
    const char *result = cm_json_get_str(c->body, "result", "");
    const char *report = cm_json_get_str(c->body, "report", "");
    char at[CM_TIME_ISO_LEN + 1];
    BrRequestRow row = {0};
    sqlite3_stmt *stmt;
    int64_t passed = 0, failed = 0, job = 0;
    CmDb *db;
    int r;

    cm_time_iso(cm_now_ms(), at);
    r = br_api_write_begin(c, &db);
    if (r < 0)
        return r;
    r = br_request_load(c, db, id, &row);
    if (r >= 0 && row.state != BR_REQUEST_STATE_IN_TRIAL)
        r = cm_error_set_code(&c->err, CM_ERROR_CONFLICT, "invalid_state", "state",
                              "request %lld is '%s'; results are recorded during the trial",
                              (long long)id, br_request_state_to_string(row.state));
    if (r >= 0) {
        stmt = cm_db_stmt(db,
                          "SELECT 1 FROM materials WHERE request_id = ? AND kind = 'test_report'"
                          " AND sha256 = ?",
                          &c->err);
        r = stmt ? 0 : -EIO;
        if (r >= 0) {
            CM_DB_BIND(stmt, id, report);
            r = cm_db_step_row(db, stmt, &c->err);
            sqlite3_reset(stmt);
            if (r == 0)
                r = cm_error_set_code(&c->err, CM_ERROR_UNPROCESSABLE, "unknown_reference",
                                      "/report",
                                      "no test_report material with this SHA-256 is attached "
                                      "to request %lld; upload the report first",
                                      (long long)id);
        }
    }
    if (r >= 0) {
        stmt = cm_db_stmt(db,
                          "INSERT INTO trial_results(request_id, test, result, report_sha256,"
                          " comment, account_id, at) VALUES (?,?,?,?,?,?,?)",
                          &c->err);
        r = stmt ? 0 : -EIO;
        if (r >= 0) {
            CM_DB_BIND(stmt, id, test, result, report, cm_json_get_str(c->body, "comment", ""),
                       c->actor.account_id, at);
            r = cm_db_step_done(db, stmt, &c->err);
            if (r == -EEXIST)
                r = cm_error_set_code(&c->err, CM_ERROR_CONFLICT, "duplicate", "/test",
                                      "the %s test of request %lld is already recorded", test,
                                      (long long)id);
        }
    }
    if (r >= 0)
        r = br_store_audit(c->d->store, db, &c->actor, "request.trial_result", "request", id,
                           result, cm_json_to_string(c->body, NULL), &c->err);
    if (r >= 0) {
        stmt = cm_db_stmt(db,
                          "SELECT total(result = 'pass'), total(result = 'fail')"
                          " FROM trial_results WHERE request_id = ?",
                          &c->err);
        r = stmt ? 0 : -EIO;
        if (r >= 0) {
            CM_DB_BIND(stmt, id);
            if (cm_db_step_row(db, stmt, &c->err) > 0) {
                passed = sqlite3_column_int64(stmt, 0);
                failed = sqlite3_column_int64(stmt, 1);
            }
            sqlite3_reset(stmt);
        }
    }
    /* Any failure ends the trial; all three passed ends it well. Either way it is reclaimed. */
    if (r >= 0 && (failed > 0 || passed == 3)) {
        r = br_request_set_state(
            c->d->store, db, &c->actor, id, row.kind, row.state,
            failed ? BR_REQUEST_STATE_TRIAL_FAILED : BR_REQUEST_STATE_TRIAL_PASSED,
            "request.trial_end", failed ? "a trial test failed" : "all three trial tests passed",
            &c->err);
        if (r >= 0)
            r = br_workflow_plan_trial_reclaim(c->d, db, &c->actor, id, &job, &c->err);
    }
    br_request_row_clear(&row);
    r = br_api_write_end(c, db, r);
    if (r < 0)
        return r;
    br_jobs_kick(c->d->jobs);
    return reply_request(c, br_api_read_db(c), id, MHD_HTTP_CREATED);
}

static const BrRoute routes[] = {

    {"POST", "/v1/requests", br_api_requests_create, R_DEPARTMENT, BR_BODY_JSON, "request-create"},
    {"GET", "/v1/requests", br_api_requests_list,
     R_DEPARTMENT | BR_ROLES_READERS | R_CONSULTANT | R_VENDOR, BR_BODY_NONE, NULL},
    {"GET", "/v1/requests/{id}", br_api_requests_get,
     R_DEPARTMENT | BR_ROLES_READERS | R_CONSULTANT | R_VENDOR, BR_BODY_NONE, NULL},
    {"PATCH", "/v1/requests/{id}", br_api_requests_patch, R_DEPARTMENT, BR_BODY_JSON,
     "request-patch"},
    {"POST", "/v1/requests/{id}/submit", br_api_requests_submit, R_DEPARTMENT,
     BR_BODY_JSON_OPTIONAL, "action"},
    {"POST", "/v1/requests/{id}/resubmit", br_api_requests_resubmit, R_DEPARTMENT,
     BR_BODY_JSON_OPTIONAL, "action"},
    {"POST", "/v1/requests/{id}/withdraw", br_api_requests_withdraw, R_DEPARTMENT,
     BR_BODY_JSON_OPTIONAL, "action"},
    {"POST", "/v1/requests/{id}/assign", br_api_requests_assign, R_REVIEWER, BR_BODY_JSON,
     "request-assign"},
    {"POST", "/v1/requests/{id}/opinions", br_api_requests_opinion, R_REVIEWER | R_CONSULTANT,
     BR_BODY_JSON, "opinion-create"},
    {"POST", "/v1/requests/{id}/decision", br_api_requests_decision, R_REVIEWER, BR_BODY_JSON,
     "decision"},

    {"POST", "/v1/requests/{id}/trial-results", br_api_requests_trial_result, R_VENDOR,
     BR_BODY_JSON, "trial-result"},
    {"POST", "/v1/requests/{id}/allocate", br_api_requests_allocate, R_REVIEWER,
     BR_BODY_JSON_OPTIONAL, "action"},
};

const BrRouteTable br_api_requests_routes = {routes, ELEMENTSOF(routes)};
