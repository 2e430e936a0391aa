/* SPDX-License-Identifier: Apache-2.0 */
/* Allocations and their instances; restore and purge; jobs; reconciler events. */
#include <errno.h>

#include <microhttpd.h>

#include "br-api-requests.h"
#include "br-api.h"
#include "br-daemon.h"
#include "br-jobs.h"
#include "br-quota.h"
#include "br-workflow.h"

#define ALLOCATION_COLUMNS                                                                         \
    "id, department_id, system_id, request_id, purpose, state, vcpus, memory_mib, disk_gib,"       \
    " instances, retained_until, error, created_at, updated_at,"                                   \
    " (SELECT name FROM departments WHERE id = allocations.department_id),"                        \
    " (SELECT name FROM systems WHERE id = allocations.system_id)"

static json_object *allocation_from_row(sqlite3_stmt *s)
{
    json_object *o = json_object_new_object();
    BrResources t = {sqlite3_column_int64(s, 6), sqlite3_column_int64(s, 7),
                     sqlite3_column_int64(s, 8), sqlite3_column_int64(s, 9)};
    json_object_object_add(o, "id", json_object_new_int64(sqlite3_column_int64(s, 0)));
    json_object_object_add(o, "department_id", json_object_new_int64(sqlite3_column_int64(s, 1)));
    json_object_object_add(o, "department_name", br_json_col_text(s, 14));
    json_object_object_add(o, "system_id", json_object_new_int64(sqlite3_column_int64(s, 2)));
    json_object_object_add(o, "system_name", br_json_col_text(s, 15));
    json_object_object_add(o, "request_id", json_object_new_int64(sqlite3_column_int64(s, 3)));
    json_object_object_add(o, "purpose", br_json_col_text(s, 4));
    json_object_object_add(o, "state", br_json_col_text(s, 5));
    json_object_object_add(o, "totals", br_resources_to_json(&t));
    json_object_object_add(o, "retained_until", br_json_col_text(s, 10));
    json_object_object_add(o, "error", br_json_col_text(s, 11));
    json_object_object_add(o, "created_at", br_json_col_text(s, 12));
    json_object_object_add(o, "updated_at", br_json_col_text(s, 13));
    return o;
}

static int instances_json(BrCall *c, CmDb *db, int64_t alloc, json_object **ret)
{
    sqlite3_stmt *s = cm_db_stmt(db,
                                 "SELECT i.id, i.idx, i.name, i.uuid, i.host_id, h.name, i.vcpus,"
                                 " i.memory_mib, i.disk_gib, i.max_vcpus, i.max_memory_mib,"
                                 " i.image, i.pool, i.volume, i.state, i.observed_state,"
                                 " i.observed_at FROM instances i LEFT JOIN hosts h"
                                 " ON h.id = i.host_id WHERE i.allocation_id = ? ORDER BY i.idx",
                                 &c->err);
    json_object *list;
    int r;
    if (!s)
        return -EIO;
    CM_DB_BIND(s, alloc);
    list = json_object_new_array();
    while ((r = cm_db_step_row(db, s, &c->err)) > 0) {
        json_object *o = json_object_new_object(), *host = NULL;
        if (sqlite3_column_type(s, 4) != SQLITE_NULL) {
            host = json_object_new_object();
            json_object_object_add(host, "id", json_object_new_int64(sqlite3_column_int64(s, 4)));
            json_object_object_add(host, "name", br_json_col_text(s, 5));
        }
        json_object_object_add(o, "id", json_object_new_int64(sqlite3_column_int64(s, 0)));
        json_object_object_add(o, "index", json_object_new_int64(sqlite3_column_int64(s, 1)));
        json_object_object_add(o, "name", br_json_col_text(s, 2));
        json_object_object_add(o, "uuid", br_json_col_text(s, 3));
        json_object_object_add(o, "host", host);
        json_object_object_add(o, "vcpus", json_object_new_int64(sqlite3_column_int64(s, 6)));
        json_object_object_add(o, "memory_mib", json_object_new_int64(sqlite3_column_int64(s, 7)));
        json_object_object_add(o, "disk_gib", json_object_new_int64(sqlite3_column_int64(s, 8)));
        json_object_object_add(o, "max_vcpus", json_object_new_int64(sqlite3_column_int64(s, 9)));
        json_object_object_add(o, "max_memory_mib",
                               json_object_new_int64(sqlite3_column_int64(s, 10)));
        json_object_object_add(o, "image", br_json_col_text(s, 11));
        json_object_object_add(o, "pool", br_json_col_text(s, 12));
        json_object_object_add(o, "volume", br_json_col_text(s, 13));
        json_object_object_add(o, "state", br_json_col_text(s, 14));
        /* The live state as the reconciler last saw it; never blocks on a hypervisor. */
        json_object_object_add(o, "live_state", br_json_col_text(s, 15));
        json_object_object_add(o, "live_state_at", br_json_col_text(s, 16));
        json_object_array_add(list, o);
    }
    sqlite3_reset(s);
    if (r < 0) {
        json_object_put(list);
        return r;
    }
    *ret = list;
    return 0;
}

static int allocation_load(BrCall *c, CmDb *db, int64_t id, json_object **ret)
{
    sqlite3_stmt *s = cm_db_stmt(db,
                                 "SELECT " ALLOCATION_COLUMNS " FROM allocations WHERE id = ?1"
                                 " AND (?2 = 0 OR department_id = ?2)",
                                 &c->err);
    json_object *o = NULL, *inst = NULL;
    int r;
    if (!s)
        return -EIO;
    CM_DB_BIND(s, id, br_call_is_department(c) ? c->actor.department_id : 0);
    r = cm_db_step_row(db, s, &c->err);
    if (r > 0)
        o = allocation_from_row(s);
    sqlite3_reset(s);
    if (r <= 0)
        return r < 0 ? r : br_not_found(c, "allocation", id);
    r = instances_json(c, db, id, &inst);
    if (r < 0) {
        json_object_put(o);
        return r;
    }
    json_object_object_add(o, "instances", inst);
    *ret = o;
    return 0;
}

static int br_api_allocations_list(BrCall *c)
{
    CmDb *db = br_api_read_db(c);
    const char *state = br_call_query(c, "state"), *purpose = br_call_query(c, "purpose");
    int64_t limit, after, last = 0, dept = 0, system = 0;
    sqlite3_stmt *s;
    json_object *items;
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
    if (state && br_allocation_state_from_string(state) < 0)
        return cm_error_set(&c->err, CM_ERROR_INVALID, "state", "unknown allocation state");
    if (purpose && strcmp(purpose, "trial") != 0 && strcmp(purpose, "production") != 0)
        return cm_error_set(&c->err, CM_ERROR_INVALID, "purpose",
                            "purpose must be trial or production");
    if (br_call_is_department(c))
        dept = c->actor.department_id;
    s = cm_db_stmt(db,
                   "SELECT " ALLOCATION_COLUMNS " FROM allocations WHERE id > ?1"
                   " AND (?2 = 0 OR department_id = ?2) AND (?3 = 0 OR system_id = ?3)"
                   " AND (?4 IS NULL OR state = ?4) AND (?5 IS NULL OR purpose = ?5)"
                   " ORDER BY id LIMIT ?6",
                   &c->err);
    if (!s)
        return -EIO;
    CM_DB_BIND(s, after, dept, system, state, purpose, limit);
    items = json_object_new_array();
    while ((r = cm_db_step_row(db, s, &c->err)) > 0) {
        last = sqlite3_column_int64(s, 0);
        json_object_array_add(items, allocation_from_row(s));
    }
    sqlite3_reset(s);
    if (r < 0) {
        json_object_put(items);
        return r;
    }
    return br_api_list_reply(c, items, limit, last);
}

static int br_api_allocations_get(BrCall *c)
{
    CmDb *db = br_api_read_db(c);
    json_object *o = NULL;
    int r;
    if (!db)
        return -EIO;
    r = cm_db_begin_read(db, &c->err);
    if (r < 0)
        return r;
    r = allocation_load(c, db, c->ids[0], &o);
    cm_db_rollback(db);
    if (r < 0)
        return r;
    return br_reply(c, MHD_HTTP_OK, o);
}

/* restore and purge: plan the job, answer 202 with the allocation and the job's id. */
static int allocation_action(BrCall *c, bool restore)
{
    int64_t id = c->ids[0], job = 0, dept = 0;
    json_object *o = NULL;
    CmDb *db;
    int r;

    r = br_api_write_begin(c, &db);
    if (r < 0)
        return r;
    /* A trial allocation left in error can be purged too; only production is restored. */
    sqlite3_stmt *s = cm_db_stmt(db,
                                 "SELECT department_id FROM allocations WHERE id = ?1"
                                 " AND (?2 = 0 OR purpose = 'production')",
                                 &c->err);
    r = s ? 0 : -EIO;
    if (r >= 0) {
        CM_DB_BIND(s, id, (int64_t)restore);
        r = cm_db_step_row(db, s, &c->err);
        if (r > 0)
            dept = sqlite3_column_int64(s, 0);
        sqlite3_reset(s);
        if (r == 0)
            r = br_not_found(c, "allocation", id);
    }
    if (r >= 0 && restore) {
        /* Restoring takes resources again: the quota is checked as for a new allocation. */
        _cleanup_(br_policies_unrefp) BrPolicies *p = br_call_policies(c);
        BrQuotaUsage u;
        s = cm_db_stmt(db, "SELECT vcpus, memory_mib, instances FROM allocations WHERE id = ?",
                       &c->err);
        r = s ? br_quota_usage(db, dept, 0, &u, &c->err) : -EIO;
        if (r >= 0) {
            CM_DB_BIND(s, id);
            if (cm_db_step_row(db, s, &c->err) > 0 && p->review.quota_enforce &&
                (u.allocated.vcpus + u.approved.vcpus + sqlite3_column_int64(s, 0) >
                     u.quota.vcpus ||
                 u.allocated.memory_mib + u.approved.memory_mib + sqlite3_column_int64(s, 1) >
                     u.quota.memory_mib ||
                 u.allocated.instances + u.approved.instances + sqlite3_column_int64(s, 2) >
                     u.quota.instances))
                r = cm_error_set_code(&c->err, CM_ERROR_UNPROCESSABLE, "review_rule_failed",
                                      "/quota",
                                      "restoring allocation %lld would exceed department %lld's "
                                      "quota",
                                      (long long)id, (long long)dept);
            sqlite3_reset(s);
        }
    }
    if (r >= 0)
        r = restore ? br_workflow_plan_restore(c->d, db, &c->actor, id, &job, &c->err)
                    : br_workflow_plan_purge(c->d, db, &c->actor, id, &job, &c->err);
    if (r >= 0)
        r = br_store_audit(c->d->store, db, &c->actor,
                           restore ? "allocation.restore" : "allocation.purge", "allocation", id,
                           "accepted", cm_json_to_string(c->body, NULL), &c->err);
    r = br_api_write_end(c, db, r);
    if (r < 0)
        return r;
    br_jobs_kick(c->d->jobs);
    r = allocation_load(c, br_api_read_db(c), id, &o);
    if (r < 0)
        return r;
    json_object_object_add(o, "job_id", json_object_new_int64(job));
    return br_reply(c, MHD_HTTP_ACCEPTED, o);
}

static int br_api_allocations_restore(BrCall *c)
{
    return allocation_action(c, true);
}

static int br_api_allocations_purge(BrCall *c)
{
    return allocation_action(c, false);
}

/* ---- jobs ---- */

#define JOB_COLUMNS                                                                                \
    "j.id, j.kind, j.state, j.request_id, j.allocation_id, j.error, j.created_at, j.started_at,"   \
    " j.finished_at, j.not_before,"                                                                \
    " (SELECT count(*) FROM job_steps s WHERE s.job_id = j.id AND s.state = 'done'),"              \
    " (SELECT count(*) FROM job_steps s WHERE s.job_id = j.id), j.attempts,"                       \
    " a.department_id, (SELECT name FROM departments WHERE id = a.department_id),"                 \
    " a.system_id, (SELECT name FROM systems WHERE id = a.system_id)"

/* The allocation a job works for, for its department's and system's names. */
#define JOB_FROM " FROM jobs j LEFT JOIN allocations a ON a.id = j.allocation_id"

/* A department sees the jobs of its own allocations. */
#define JOB_SCOPE(n)                                                                               \
    " AND (?" #n " = 0 OR EXISTS (SELECT 1 FROM allocations sa WHERE sa.id = j.allocation_id"      \
    " AND sa.department_id = ?" #n "))"

static json_object *job_from_row(sqlite3_stmt *s)
{
    json_object *o = json_object_new_object(), *progress = json_object_new_object();
    int64_t done = sqlite3_column_int64(s, 10), total = sqlite3_column_int64(s, 11);
    json_object_object_add(o, "id", json_object_new_int64(sqlite3_column_int64(s, 0)));
    json_object_object_add(o, "kind", br_json_col_text(s, 1));
    json_object_object_add(o, "state", br_json_col_text(s, 2));
    json_object_object_add(o, "request_id", br_json_id_or_null(sqlite3_column_int64(s, 3)));
    json_object_object_add(o, "allocation_id", br_json_id_or_null(sqlite3_column_int64(s, 4)));
    json_object_object_add(o, "department_id", br_json_id_or_null(sqlite3_column_int64(s, 13)));
    json_object_object_add(o, "department_name", br_json_col_text(s, 14));
    json_object_object_add(o, "system_id", br_json_id_or_null(sqlite3_column_int64(s, 15)));
    json_object_object_add(o, "system_name", br_json_col_text(s, 16));
    json_object_object_add(o, "error", br_json_col_text(s, 5));
    json_object_object_add(o, "created_at", br_json_col_text(s, 6));
    json_object_object_add(o, "started_at", br_json_col_text(s, 7));
    json_object_object_add(o, "finished_at", br_json_col_text(s, 8));
    json_object_object_add(o, "retry_at", br_json_col_text(s, 9));
    /* How often it was retried by hand after failing (POST /v1/jobs/{id}/retry). */
    json_object_object_add(o, "retries", json_object_new_int64(sqlite3_column_int64(s, 12)));
    json_object_object_add(progress, "done", json_object_new_int64(done));
    json_object_object_add(progress, "total", json_object_new_int64(total));
    json_object_object_add(progress, "percent",
                           json_object_new_int64(total ? done * 100 / total : 100));
    json_object_object_add(o, "progress", progress);
    return o;
}

static int br_api_jobs_list(BrCall *c)
{
    CmDb *db = br_api_read_db(c);
    const char *state = br_call_query(c, "state");
    int64_t limit, after, last = 0, request = 0, alloc = 0;
    sqlite3_stmt *s;
    json_object *items;
    int r;

    if (!db)
        return -EIO;
    r = br_api_page(c, &limit, &after);
    if (r >= 0)
        r = br_call_query_int(c, "request", 1, INT64_MAX, &request);
    if (r >= 0)
        r = br_call_query_int(c, "allocation", 1, INT64_MAX, &alloc);
    if (r < 0)
        return r;
    if (state && br_job_state_from_string(state) < 0)
        return cm_error_set(&c->err, CM_ERROR_INVALID, "state", "unknown job state");
    s = cm_db_stmt(db,
                   "SELECT " JOB_COLUMNS JOB_FROM " WHERE j.id > ?1 AND (?2 IS NULL OR"
                   " j.state = ?2) AND (?3 = 0 OR j.request_id = ?3) AND (?4 = 0 OR"
                   " j.allocation_id = ?4)" JOB_SCOPE(5) " ORDER BY j.id LIMIT ?6",
                   &c->err);
    if (!s)
        return -EIO;
    CM_DB_BIND(s, after, state, request, alloc,
               br_call_is_department(c) ? c->actor.department_id : 0, limit);
    items = json_object_new_array();
    while ((r = cm_db_step_row(db, s, &c->err)) > 0) {
        last = sqlite3_column_int64(s, 0);
        json_object_array_add(items, job_from_row(s));
    }
    sqlite3_reset(s);
    if (r < 0) {
        json_object_put(items);
        return r;
    }
    return br_api_list_reply(c, items, limit, last);
}

/* Job @id with its steps, as GET /v1/jobs/{id} shows it; scoped for a department. */
static int job_load(BrCall *c, CmDb *db, int64_t id, json_object **ret)
{
    sqlite3_stmt *s;
    json_object *o = NULL, *steps;
    int r;

    r = cm_db_begin_read(db, &c->err);
    if (r < 0)
        return r;
    s = cm_db_stmt(db, "SELECT " JOB_COLUMNS JOB_FROM " WHERE j.id = ?1" JOB_SCOPE(2), &c->err);
    r = s ? 0 : -EIO;
    if (r >= 0) {
        CM_DB_BIND(s, id, br_call_is_department(c) ? c->actor.department_id : 0);
        r = cm_db_step_row(db, s, &c->err);
        if (r > 0)
            o = job_from_row(s);
        sqlite3_reset(s);
        if (r == 0)
            r = br_not_found(c, "job", id);
    }
    if (r >= 0) {
        s = cm_db_stmt(db,
                       "SELECT st.seq, st.action, st.instance_id, st.arg, st.state, st.attempts,"
                       " st.error, st.started_at, st.finished_at, i.name, i.host_id, h.name"
                       " FROM job_steps st LEFT JOIN instances i ON i.id = st.instance_id"
                       " LEFT JOIN hosts h ON h.id = i.host_id WHERE st.job_id = ?"
                       " ORDER BY st.seq",
                       &c->err);
        r = s ? 0 : -EIO;
    }
    if (r >= 0) {
        CM_DB_BIND(s, id);
        steps = json_object_new_array();
        while ((r = cm_db_step_row(db, s, &c->err)) > 0) {
            json_object *st = json_object_new_object();
            json_object_object_add(st, "seq", json_object_new_int64(sqlite3_column_int64(s, 0)));
            json_object_object_add(st, "action", br_json_col_text(s, 1));
            json_object_object_add(st, "instance_id",
                                   br_json_id_or_null(sqlite3_column_int64(s, 2)));
            json_object_object_add(st, "instance_name", br_json_col_text(s, 9));
            json_object_object_add(st, "host_id", br_json_id_or_null(sqlite3_column_int64(s, 10)));
            json_object_object_add(st, "host_name", br_json_col_text(s, 11));
            json_object_object_add(st, "arg", json_object_new_int64(sqlite3_column_int64(s, 3)));
            json_object_object_add(st, "state", br_json_col_text(s, 4));
            json_object_object_add(st, "attempts",
                                   json_object_new_int64(sqlite3_column_int64(s, 5)));
            json_object_object_add(st, "error", br_json_col_text(s, 6));
            json_object_object_add(st, "started_at", br_json_col_text(s, 7));
            json_object_object_add(st, "finished_at", br_json_col_text(s, 8));
            json_object_array_add(steps, st);
        }
        sqlite3_reset(s);
        json_object_object_add(o, "steps", steps);
    }
    cm_db_rollback(db);
    if (r < 0) {
        json_object_put(o);
        return r;
    }
    *ret = o;
    return 0;
}

static int br_api_jobs_get(BrCall *c)
{
    CmDb *db = br_api_read_db(c);
    json_object *o = NULL;
    int r;

    if (!db)
        return -EIO;
    r = job_load(c, db, c->ids[0], &o);
    if (r < 0)
        return r;
    return br_reply(c, MHD_HTTP_OK, o);
}

/*
 * A failed job again, once the vendor has mended its cause: its request and allocation go
 * back to where the failure found them (br_workflow_plan_retry). A request that holds its
 * resources again (a trial's provisioning, a change) is checked against the quota first, as
 * at approval: other requests may have been granted meanwhile. A production provisioning's
 * allocation counts against the quota all along (error included), so it is not checked twice.
 */
static int br_api_jobs_retry(BrCall *c)
{
    int64_t id = c->ids[0];
    const char *comment = cm_json_get_str(c->body, "comment", NULL);
    json_object *o = NULL;
    BrJobRow job;
    CmDb *db;
    int r;

    r = br_api_write_begin(c, &db);
    if (r < 0)
        return r;
    r = br_job_load(db, id, &job, &c->err);
    if (r == -ENOENT)
        r = br_not_found(c, "job", id);
    if (r >= 0 && job.state == BR_JOB_ERROR && job.request_id &&
        (job.kind == BR_JOB_PROVISION || job.kind == BR_JOB_RESIZE)) {
        BrRequestRow row = {0};
        BrReviewOutcome out;
        /* -- changed by requests: br_request_load() is the owner's (br-request.c) -- */
        r = br_request_load(db, job.request_id, &c->actor, &row, &c->err);
        bool holds_again =
            r >= 0 && row.state == BR_REQUEST_STATE_FAILED &&
            (job.kind == BR_JOB_RESIZE ||
             (row.trial_allocation_id && row.trial_allocation_id == job.allocation_id));
        if (holds_again)
            r = br_request_review(c, db, &row, NULL, &out);
        if (r >= 0 && holds_again && br_review_first_failure(&out, 1u << BR_REVIEW_RULE_QUOTA) >= 0)
            r = cm_error_set_code(&c->err, CM_ERROR_UNPROCESSABLE, "review_rule_failed",
                                  "/check/rules/2",
                                  "retrying job %lld would take request %lld's resources again "
                                  "beyond the department's quota",
                                  (long long)id, (long long)job.request_id);
        br_request_row_clear(&row);
    }
    if (r >= 0)
        r = br_workflow_plan_retry(c->d, db, &c->actor, id, comment, &c->err);
    r = br_api_write_end(c, db, r);
    if (r < 0)
        return r;
    br_jobs_kick(c->d->jobs);
    r = job_load(c, br_api_read_db(c), id, &o);
    if (r < 0)
        return r;
    return br_reply(c, MHD_HTTP_ACCEPTED, o);
}

static const BrRoute routes[] = {

    {"GET", "/v1/allocations", br_api_allocations_list, R_DEPARTMENT | BR_ROLES_READERS | R_VENDOR,
     BR_BODY_NONE, NULL},
    {"GET", "/v1/allocations/{id}", br_api_allocations_get,
     R_DEPARTMENT | BR_ROLES_READERS | R_VENDOR, BR_BODY_NONE, NULL},
    {"POST", "/v1/allocations/{id}/restore", br_api_allocations_restore, R_REVIEWER,
     BR_BODY_JSON_OPTIONAL, "action"},
    {"POST", "/v1/allocations/{id}/purge", br_api_allocations_purge, R_REVIEWER,
     BR_BODY_JSON_OPTIONAL, "action"},
    {"GET", "/v1/jobs", br_api_jobs_list, R_DEPARTMENT | BR_ROLES_READERS | R_VENDOR, BR_BODY_NONE,
     NULL},
    {"GET", "/v1/jobs/{id}", br_api_jobs_get, R_DEPARTMENT | BR_ROLES_READERS | R_VENDOR,
     BR_BODY_NONE, NULL},
    {"POST", "/v1/jobs/{id}/retry", br_api_jobs_retry, R_VENDOR | R_REVIEWER, BR_BODY_JSON_OPTIONAL,
     "action"},
};

const BrRouteTable br_api_allocations_routes = {routes, ELEMENTSOF(routes)};
