/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The ends of jobs: the finish step moves the request and the allocation on when a job's work
 * is done, the failure handler when it failed for good.
 */
#include <errno.h>

#include "br-daemon.h"
#include "br-assess.h"
#include "br-workflow-priv.h"
#include "cm-log.h"
#include "cm-time.h"

/* Request @request_id moves from @from to @to, if it is still in @from (logged otherwise). */
static int request_move(BrTx *tx, int64_t request_id, BrRequestState from, BrRequestState to,
                        const char *comment)
{
    _cleanup_(br_workflow_request_clear) BrWorkflowRequest req = {0};
    int r;

    if (!request_id)
        return 0;
    r = br_workflow_request_load(tx->db, request_id, &req, tx->err);
    if (r < 0)
        return r;
    if (req.row.state == from)
        return br_request_set_state(tx->store, tx->db, tx->actor, request_id, req.row.kind, from,
                                    to, "request.job", comment, tx->err);
    if (req.row.state != to)
        cm_log_warning("request %lld is '%s', expected '%s' at the end of its job",
                       (long long)request_id, br_request_state_to_string(req.row.state),
                       br_request_state_to_string(from));
    return 0;
}

/* The job's allocation moves to @to, from wherever it is (nothing when it is there). */
static int alloc_move(BrTx *tx, int64_t id, BrAllocationState to)
{
    BrAllocationRow a;
    int r = br_allocation_load(tx->db, id, &a, tx->err);

    if (r < 0 || a.state == to)
        return r;
    return br_allocation_set_state(tx->store, tx->db, tx->actor, id, a.state, to, "allocation.job",
                                   NULL, tx->err);
}

/* Retained for @seconds from now (the policy's retention), or (@keep false) no longer. */
static int retain(BrTx *tx, int64_t id, bool keep, int64_t seconds)
{
    char until[CM_TIME_ISO_LEN + 1];

    cm_time_iso(cm_now_ms() + seconds * 1000, until);
    return br_allocation_set_retained_until(tx->db, id, keep ? until : NULL, tx->err);
}

typedef struct {
    BrDaemon *d;
    const BrJobRow *job;
    int seq;
} Finish;

/* What the end of each kind of job changes. */
static int finish_kind(BrTx *tx, const BrPolicies *p, const BrJobRow *job, bool trial)
{
    int64_t alloc = job->allocation_id;
    char deadline[CM_TIME_ISO_LEN + 1];
    int r;

    switch (job->kind) {
    case BR_JOB_PROVISION:
        r = alloc_move(tx, alloc, BR_ALLOCATION_STATE_ACTIVE);
        if (r < 0)
            return r;
        if (!trial)
            return request_move(tx, job->request_id, BR_REQUEST_STATE_TRIAL_PASSED,
                                BR_REQUEST_STATE_ALLOCATED, "production instances running");
        cm_time_iso(cm_now_ms() + p->lifecycle.trial_seconds * 1000, deadline);
        r = br_request_set_trial_deadline(tx->db, job->request_id, deadline, tx->err);
        if (r < 0)
            return r;
        return request_move(tx, job->request_id, BR_REQUEST_STATE_APPROVED,
                            BR_REQUEST_STATE_IN_TRIAL, "trial environment running");
    case BR_JOB_RESTORE:
        r = retain(tx, alloc, false, 0);
        return r < 0 ? r : alloc_move(tx, alloc, BR_ALLOCATION_STATE_ACTIVE);
    case BR_JOB_RESIZE:
        r = alloc_move(tx, alloc, BR_ALLOCATION_STATE_ACTIVE);
        if (r < 0)
            return r;
        return request_move(tx, job->request_id, BR_REQUEST_STATE_APPLYING,
                            BR_REQUEST_STATE_APPLIED, "change applied");
    case BR_JOB_RECLAIM:
        r = retain(tx, alloc, true, p->lifecycle.retention_seconds);
        if (r >= 0)
            r = alloc_move(tx, alloc, BR_ALLOCATION_STATE_RETAINED);
        if (r < 0)
            return r;
        return request_move(tx, job->request_id, BR_REQUEST_STATE_RECLAIMING,
                            BR_REQUEST_STATE_RECLAIMED,
                            "instances removed; volumes retained until the purge");
    case BR_JOB_TRIAL_RECLAIM:
        r = alloc_move(tx, alloc, BR_ALLOCATION_STATE_RETAINED);
        return r < 0 ? r : alloc_move(tx, alloc, BR_ALLOCATION_STATE_PURGED);
    case BR_JOB_PURGE:
        r = retain(tx, alloc, false, 0);
        return r < 0 ? r : alloc_move(tx, alloc, BR_ALLOCATION_STATE_PURGED);
    default:
        return 0;
    }
}

static int finish_tx(BrTx *tx, void *ctx)
{
    Finish *w = ctx;
    _cleanup_(br_policies_unrefp) BrPolicies *p = br_daemon_policies(w->d);
    const BrJobRow *job = w->job;
    BrAllocationRow a;
    int r;

    r = br_allocation_load(tx->db, job->allocation_id, &a, tx->err);
    if (r >= 0)
        r = br_allocation_update_totals(tx->db, a.id, tx->err);
    if (r >= 0)
        r = finish_kind(tx, p, job, a.trial);
    /* Findings follow their instance: those of what this job ended are resolved with it. */
    if (r >= 0 &&
        (job->kind == BR_JOB_RECLAIM || job->kind == BR_JOB_PURGE || job->kind == BR_JOB_RESIZE))
        r = br_assess_resolve_ended(tx->store, tx->db, a.id,
                                    job->kind == BR_JOB_RECLAIM ? "the allocation was reclaimed"
                                    : job->kind == BR_JOB_PURGE ? "the allocation was purged"
                                                                : "the instance was removed "
                                                                  "(scale-in)",
                                    tx->err);
    if (r >= 0)
        r = br_job_step_done(tx->db, job->id, w->seq, tx->err);
    if (r >= 0)
        r = br_job_set_done(tx->db, job->id, tx->err);
    if (r < 0)
        return r;
    br_tx_audit_set(tx, "job.done", "job", job->id, NULL);
    tx->outcome = "done";
    return 0;
}

int br_workflow_finish(BrDaemon *d, const BrJobRow *job, int seq, CmError *err)
{
    Finish w = {.d = d, .job = job, .seq = seq};
    return br_tx_run(d->store, "job.finish", NULL, finish_tx, &w, err);
}

int br_workflow_fail(BrDaemon *d, BrTx *tx, const BrJobRow *job, const char *reason)
{
    BrAllocationRow a = {0};
    int r;

    (void)d;
    if (job->allocation_id) {
        r = br_allocation_load(tx->db, job->allocation_id, &a, tx->err);
        if (r < 0)
            return r;
        if (a.state != BR_ALLOCATION_STATE_ERROR &&
            br_allocation_transition_allowed(a.state, BR_ALLOCATION_STATE_ERROR)) {
            r = br_allocation_set_state(tx->store, tx->db, tx->actor, a.id, a.state,
                                        BR_ALLOCATION_STATE_ERROR, "allocation.job", reason,
                                        tx->err);
            if (r < 0)
                return r;
        }
    }
    switch (job->request_id ? job->kind : BR_JOB_KIND_MAX) {
    case BR_JOB_PROVISION:
        return request_move(tx, job->request_id,
                            a.trial ? BR_REQUEST_STATE_APPROVED : BR_REQUEST_STATE_TRIAL_PASSED,
                            BR_REQUEST_STATE_FAILED, reason);
    case BR_JOB_RESIZE:
        return request_move(tx, job->request_id, BR_REQUEST_STATE_APPLYING, BR_REQUEST_STATE_FAILED,
                            reason);
    case BR_JOB_RECLAIM:
        return request_move(tx, job->request_id, BR_REQUEST_STATE_RECLAIMING,
                            BR_REQUEST_STATE_FAILED, reason);
    default:
        return 0;
    }
}

int64_t br_workflow_retry_seconds(BrDaemon *d)
{
    _cleanup_(br_policies_unrefp) BrPolicies *p = br_daemon_policies(d);
    return p->lifecycle.job_retry_seconds;
}
