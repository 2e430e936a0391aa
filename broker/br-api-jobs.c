/* SPDX-License-Identifier: Apache-2.0 */
/* Jobs: their list, one with its steps, and the retry of a failed one. */
#include <errno.h>

#include "br-daemon.h"
#include "br-api-requests.h"
#include "br-api.h"
#include "br-jobs.h"
#include "br-workflow.h"

static int br_api_jobs_list(BrCall *c)
{
    BrJobFilter f = {.state = br_call_query(c, "state"), .department = br_call_scope(c)};
    json_object *items;
    BrPage page;
    int r = br_call_page(c, &page);

    if (r >= 0)
        r = br_call_query_int(c, "request", 1, INT64_MAX, &f.request);
    if (r >= 0)
        r = br_call_query_int(c, "allocation", 1, INT64_MAX, &f.allocation);
    if (r < 0)
        return r;
    if (f.state && br_job_state_from_string(f.state) < 0)
        return cm_error_set(&c->err, CM_ERROR_INVALID, "state", "unknown job state");
    r = br_job_list(br_call_db(c), &f, &page, &items, &c->err);
    if (r < 0)
        return r;
    return br_reply_list(c, items, &page);
}

static int br_api_jobs_get(BrCall *c)
{
    json_object *o;
    int r = br_job_get(c->d->store, c->ids[0], br_call_scope(c), &o, &c->err);
    if (r < 0)
        return r;
    return br_reply(c, BR_HTTP_OK, o);
}

/*
 * A request that holds its resources again when its failed job is retried (a trial's
 * provisioning, a change) is checked against the quota first, as at approval: other requests
 * may have been granted meanwhile. A production provisioning's allocation counts against the
 * quota all along (error included), so it is not checked twice.
 */
static int retry_quota_check(BrCall *c, CmDb *db, const BrJobRow *job)
{
    BrRequestRow row = {0};
    BrReviewOutcome out;
    bool holds_again;
    int r;

    if (job->state != BR_JOB_ERROR || !job->request_id ||
        (job->kind != BR_JOB_PROVISION && job->kind != BR_JOB_RESIZE))
        return 0;
    r = br_request_load(db, job->request_id, &c->actor, &row, &c->err);
    holds_again = r >= 0 && row.state == BR_REQUEST_STATE_FAILED &&
                  (job->kind == BR_JOB_RESIZE ||
                   (row.trial_allocation_id && row.trial_allocation_id == job->allocation_id));
    if (holds_again)
        r = br_request_review(c, db, &row, NULL, &out);
    if (r >= 0 && holds_again && br_review_first_failure(&out, 1u << BR_REVIEW_RULE_QUOTA) >= 0)
        r = cm_error_set_code(&c->err, CM_ERROR_UNPROCESSABLE, "review_rule_failed",
                              "/check/rules/2",
                              "retrying job %lld would take request %lld's resources again "
                              "beyond the department's quota",
                              (long long)job->id, (long long)job->request_id);
    br_request_row_clear(&row);
    return r;
}

typedef struct {
    BrCall *call;
    int64_t request_id;
    BrRequestState request_state; /* as the retry left it, read in its transaction */
    json_object *job;             /* the job as the retry left it (queued) */
} JobRetry;

static int job_retry_tx(BrTx *tx, void *ctx)
{
    JobRetry *x = ctx;
    BrCall *c = x->call;
    BrRequestRow row = {0};
    BrJobRow job;
    int r = br_job_load(tx->db, c->ids[0], &job, tx->err);

    if (r == -ENOENT)
        return br_not_found(c, "job", c->ids[0]);
    if (r >= 0)
        r = retry_quota_check(c, tx->db, &job);
    if (r >= 0)
        r = br_workflow_plan_retry(c->d, tx->db, tx->actor, job.id,
                                   cm_json_get_str(c->body, "comment", NULL), tx->err);
    if (r >= 0) {
        json_object_put(x->job);
        x->job = NULL;
        r = br_job_get_tx(tx, job.id, br_call_scope(c), &x->job);
    }
    if (r < 0 || !job.request_id)
        return r;
    r = br_request_load(tx->db, job.request_id, NULL, &row, tx->err);
    x->request_id = job.request_id;
    x->request_state = row.state;
    br_request_row_clear(&row);
    return r;
}

/*
 * A failed job again, once the vendor has mended its cause: its request and allocation go
 * back to where the failure found them (br_workflow_plan_retry). The answer says the job and
 * the request's state as the retry left them, read in its transaction: by the time the answer
 * is written, the job engine may have started the job and moved the request on.
 */
static int br_api_jobs_retry(BrCall *c)
{
    JobRetry x = {.call = c};
    json_object *o;
    int r = br_call_tx(c, "job.retry", job_retry_tx, &x);

    if (r < 0) {
        json_object_put(x.job);
        return r;
    }
    o = TAKE_PTR(x.job);
    br_jobs_kick(c->d->jobs);
    if (x.request_id)
        json_object_object_add(o, "request_state",
                               json_object_new_string(br_request_state_to_string(x.request_state)));
    return br_reply(c, BR_HTTP_ACCEPTED, o);
}

static const BrRoute routes[] = {

    {"GET", "/v1/jobs", br_api_jobs_list, BR_ROLES_DEPARTMENT | BR_ROLES_READERS | BR_ROLES_VENDOR,
     BR_BODY_NONE, NULL},
    {"GET", "/v1/jobs/{id}", br_api_jobs_get,
     BR_ROLES_DEPARTMENT | BR_ROLES_READERS | BR_ROLES_VENDOR, BR_BODY_NONE, NULL},
    {"POST", "/v1/jobs/{id}/retry", br_api_jobs_retry, BR_ROLES_VENDOR | BR_ROLES_REVIEWER,
     BR_BODY_JSON_OPTIONAL, "action"},
};

const BrRouteTable br_api_jobs_routes = {routes, ELEMENTSOF(routes)};
