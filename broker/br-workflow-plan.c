/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The planners: inside the transaction of the API call that asks for the work, the allocation
 * and instance rows and a job with its steps. Which steps is decided by the pure
 * br_workflow_steps_*() functions at the end of this file.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "br-daemon.h"
#include "br-workflow-priv.h"
#include "cm-json.h"
#include "cm-log.h"

static int no_memory(CmError *err)
{
    return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
}

int br_workflow_request_load(CmDb *db, int64_t id, BrWorkflowRequest *ret, CmError *err)
{
    BrRequestRow row;
    int r = br_request_load(db, id, NULL, &row, err);

    if (r < 0)
        return r;
    *ret = (BrWorkflowRequest){.row = row};
    if (row.resources)
        cm_json_parse(row.resources, strlen(row.resources), &ret->resources, NULL);
    return 0;
}

void br_workflow_request_clear(BrWorkflowRequest *r)
{
    br_request_row_clear(&r->row);
    json_object_put(r->resources);
    r->resources = NULL;
}

/* Instances for @specs[from..], numbered from @first_idx; their ids in @ret_ids. */
static int create_instances(CmDb *db, const BrPolicies *p, int64_t alloc, unsigned first_idx,
                            json_object *specs, size_t from, int64_t **ret_ids, size_t *ret_n,
                            CmError *err)
{
    size_t n = specs ? json_object_array_length(specs) : 0;
    _cleanup_free_ int64_t *ids = calloc(n + 1, sizeof(*ids));

    if (!ids)
        return no_memory(err);
    for (size_t i = from; i < n; i++) {
        json_object *spec = json_object_array_get_idx(specs, i);
        const char *image = cm_json_get_str(spec, "image", "");
        int64_t vcpus = cm_json_get_int(spec, "vcpus", 1);
        int64_t mem = cm_json_get_int(spec, "memory_mib", 512);
        BrInstanceSizes sizes = {vcpus, mem, cm_json_get_int(spec, "disk_gib", 1),
                                 br_policy_max_vcpus(&p->lifecycle, vcpus),
                                 br_policy_max_memory_mib(&p->lifecycle, mem)};
        int r;

        if (!br_policy_image(p, image))
            return cm_error_set_code(err, CM_ERROR_UNPROCESSABLE, "unknown_image", "image",
                                     "image '%s' is not in the catalog", image);
        r = br_instance_create(db, alloc, first_idx + (unsigned)(i - from), &sizes, image,
                               &ids[i - from], err);
        if (r < 0)
            return r;
    }
    *ret_ids = TAKE_PTR(ids);
    *ret_n = n > from ? n - from : 0;
    return 0;
}

/* The job of @steps for @alloc, once its totals count the instances just planned. */
static int create_job(BrDaemon *d, CmDb *db, const BrActor *actor, BrJobKind kind,
                      int64_t request_id, int64_t alloc, BrStepList *steps, int64_t *ret_job,
                      CmError *err)
{
    int r = br_allocation_update_totals(db, alloc, err);
    if (r < 0)
        return r;
    return br_job_create(d->store, db, actor, kind, request_id, alloc, steps, ret_job, err);
}

static int plan_provision(BrDaemon *d, CmDb *db, const BrActor *actor, const BrWorkflowRequest *req,
                          bool trial, int64_t *ret_alloc, int64_t *ret_job, CmError *err)
{
    _cleanup_(br_policies_unrefp) BrPolicies *p = br_daemon_policies(d);
    _cleanup_(br_step_list_clear) BrStepList steps = {0};
    _cleanup_free_ int64_t *ids = NULL;
    int64_t alloc = 0;
    size_t n = 0;
    int r;

    r = br_allocation_create(db, req->row.department_id, req->row.system_id, req->row.id, trial,
                             &alloc, err);
    if (r < 0)
        return r;
    r = create_instances(db, p, alloc, 0, cm_json_get(req->resources, "instances"), 0, &ids, &n,
                         err);
    if (r < 0)
        return r;
    if (br_workflow_steps_provision(ids, n, &steps) < 0)
        return no_memory(err);
    r = br_request_set_allocation(db, req->row.id, alloc, trial, err);
    if (r < 0)
        return r;
    r = create_job(d, db, actor, BR_JOB_PROVISION, req->row.id, alloc, &steps, ret_job, err);
    if (r < 0)
        return r;
    if (ret_alloc)
        *ret_alloc = alloc;
    return 0;
}

int br_workflow_plan_trial(BrDaemon *d, CmDb *db, const BrActor *actor, int64_t request_id,
                           int64_t *ret_job, CmError *err)
{
    _cleanup_(br_workflow_request_clear) BrWorkflowRequest req = {0};
    int r = br_workflow_request_load(db, request_id, &req, err);
    if (r < 0)
        return r;
    return plan_provision(d, db, actor, &req, true, NULL, ret_job, err);
}

int br_workflow_plan_allocate(BrDaemon *d, CmDb *db, const BrActor *actor, int64_t request_id,
                              int64_t *ret_allocation, int64_t *ret_job, CmError *err)
{
    _cleanup_(br_workflow_request_clear) BrWorkflowRequest req = {0};
    int r = br_workflow_request_load(db, request_id, &req, err);
    if (r < 0)
        return r;
    if (req.row.state != BR_REQUEST_STATE_TRIAL_PASSED)
        return cm_error_set_code(err, CM_ERROR_CONFLICT, "invalid_state", "state",
                                 "request %lld is '%s'; resources are allocated after the trial "
                                 "passed",
                                 (long long)request_id, br_request_state_to_string(req.row.state));
    if (req.row.allocation_id)
        return cm_error_set_code(err, CM_ERROR_CONFLICT, "already_allocated", "state",
                                 "request %lld already has allocation %lld", (long long)request_id,
                                 (long long)req.row.allocation_id);
    return plan_provision(d, db, actor, &req, false, ret_allocation, ret_job, err);
}

/* The live instances of @req's allocation, split by its resources.remove (@ret_kept stay). */
static int change_instances(CmDb *db, const BrWorkflowRequest *req, BrInstanceLive **ret,
                            size_t *ret_n, size_t *ret_kept, CmError *err)
{
    json_object *remove = cm_json_get(req->resources, "remove");
    _cleanup_free_ BrInstanceLive *cur = NULL;
    char field[64];
    size_t n = 0, bad;
    int r = br_instance_load_live(db, req->row.allocation_id, &cur, &n, err);

    if (r < 0)
        return r;
    bad = br_workflow_split_removed(cur, n, remove, ret_kept);
    if (bad) {
        snprintf(field, sizeof(field), "/resources/remove/%zu", bad - 1);
        return cm_error_set_code(
            err, CM_ERROR_UNPROCESSABLE, "unknown_instance", field,
            "the allocation has no live instance with index %lld",
            (long long)json_object_get_int64(json_object_array_get_idx(remove, bad - 1)));
    }
    *ret = TAKE_PTR(cur);
    *ret_n = n;
    return 0;
}

static int check_change(CmDb *db, const BrWorkflowRequest *req, CmError *err)
{
    _cleanup_free_ BrInstanceLive *cur = NULL;
    json_object *specs = cm_json_get(req->resources, "instances");
    size_t n, kept, m = specs ? json_object_array_length(specs) : 0;
    int r = change_instances(db, req, &cur, &n, &kept, err);

    for (size_t i = 0; r >= 0 && i < kept && i < m; i++) {
        json_object *spec = json_object_array_get_idx(specs, i);
        char field[96];
        const char *why = NULL;

        if (strcmp(cm_json_get_str(spec, "image", ""), cur[i].image) != 0) {
            snprintf(field, sizeof(field), "/resources/instances/%zu/image", i);
            r = cm_error_set_code(err, CM_ERROR_UNPROCESSABLE, "image_change", field,
                                  "instance %zu runs image '%s'; a change cannot replace it", i,
                                  cur[i].image);
        } else if (cm_json_get_int(spec, "disk_gib", 0) < cur[i].sizes.disk_gib) {
            snprintf(field, sizeof(field), "/resources/instances/%zu/disk_gib", i);
            r = cm_error_set_code(err, CM_ERROR_UNPROCESSABLE, "disk_shrink", field,
                                  "disks only grow: instance %zu has %lld GiB", i,
                                  (long long)cur[i].sizes.disk_gib);
        } else if (br_workflow_needs_restart(&cur[i], spec, &why) && !req->row.restart_allowed) {
            snprintf(field, sizeof(field), "/resources/instances/%zu/%s", i, why);
            r = cm_error_set_code(err, CM_ERROR_UNPROCESSABLE, "restart_required", field,
                                  "instance %zu: this %s change goes beyond what can be done "
                                  "live (maximums %lld vCPUs, %lld MiB); set restart_allowed",
                                  i, why, (long long)cur[i].sizes.max_vcpus,
                                  (long long)cur[i].sizes.max_memory_mib);
        }
    }
    return r;
}

int br_workflow_check_change(BrDaemon *d, CmDb *db, int64_t request_id, CmError *err)
{
    _cleanup_(br_workflow_request_clear) BrWorkflowRequest req = {0};
    int r;

    (void)d;
    r = br_workflow_request_load(db, request_id, &req, err);
    if (r < 0)
        return r;
    return check_change(db, &req, err);
}

int br_workflow_plan_change(BrDaemon *d, CmDb *db, const BrActor *actor, int64_t request_id,
                            int64_t *ret_job, CmError *err)
{
    _cleanup_(br_policies_unrefp) BrPolicies *p = br_daemon_policies(d);
    _cleanup_(br_workflow_request_clear) BrWorkflowRequest req = {0};
    _cleanup_(br_step_list_clear) BrStepList steps = {0};
    _cleanup_free_ BrInstanceLive *cur = NULL;
    _cleanup_free_ int64_t *new_ids = NULL;
    json_object *specs;
    size_t n = 0, kept = 0, n_new = 0;
    unsigned next_idx = 0;
    int r;

    r = br_workflow_request_load(db, request_id, &req, err);
    if (r >= 0)
        r = check_change(db, &req, err);
    /* Scale-in: the instances named in resources.remove go last; the others keep their
     * order. check_change() has refused an index that is not there. */
    if (r >= 0)
        r = change_instances(db, &req, &cur, &n, &kept, err);
    if (r >= 0)
        r = br_allocation_set_state(d->store, db, actor, req.row.allocation_id,
                                    BR_ALLOCATION_STATE_ACTIVE, BR_ALLOCATION_STATE_RESIZING,
                                    "allocation.resize", NULL, err);
    if (r < 0)
        return r;
    /* New instances take indexes after every live one's, removed ones included. */
    for (size_t i = 0; i < n; i++)
        if (cur[i].idx + 1 > next_idx)
            next_idx = cur[i].idx + 1;
    specs = cm_json_get(req.resources, "instances");
    r = create_instances(db, p, req.row.allocation_id, next_idx, specs, kept, &new_ids, &n_new,
                         err);
    if (r < 0)
        return r;
    if (br_workflow_steps_change(cur, n, kept, specs, &p->lifecycle, new_ids, &steps) < 0)
        return no_memory(err);
    return br_job_create(d->store, db, actor, BR_JOB_RESIZE, request_id, req.row.allocation_id,
                         &steps, ret_job, err);
}

/* The job that takes @alloc's instances down. */
static int plan_takedown(BrDaemon *d, CmDb *db, const BrActor *actor, BrJobKind kind,
                         int64_t request_id, int64_t alloc, int64_t *ret_job, CmError *err)
{
    _cleanup_(br_step_list_clear) BrStepList steps = {0};
    _cleanup_free_ BrInstanceLive *cur = NULL;
    size_t n = 0;
    int r = br_instance_load_live(db, alloc, &cur, &n, err);

    if (r < 0)
        return r;
    /* Termination keeps the volumes: the allocation is retained, and can be restored. */
    if (br_workflow_steps_takedown(cur, n, true, kind == BR_JOB_PURGE, kind != BR_JOB_RECLAIM,
                                   &steps) < 0)
        return no_memory(err);
    return br_job_create(d->store, db, actor, kind, request_id, alloc, &steps, ret_job, err);
}

int br_workflow_plan_reclaim(BrDaemon *d, CmDb *db, const BrActor *actor, int64_t request_id,
                             int64_t *ret_job, CmError *err)
{
    _cleanup_(br_workflow_request_clear) BrWorkflowRequest req = {0};
    int r = br_workflow_request_load(db, request_id, &req, err);

    if (r >= 0)
        r = br_allocation_set_state(d->store, db, actor, req.row.allocation_id,
                                    BR_ALLOCATION_STATE_ACTIVE, BR_ALLOCATION_STATE_RECLAIMING,
                                    "allocation.reclaim", NULL, err);
    if (r < 0)
        return r;
    return plan_takedown(d, db, actor, BR_JOB_RECLAIM, request_id, req.row.allocation_id, ret_job,
                         err);
}

int br_workflow_plan_trial_reclaim(BrDaemon *d, CmDb *db, const BrActor *actor, int64_t request_id,
                                   int64_t *ret_job, CmError *err)
{
    _cleanup_(br_workflow_request_clear) BrWorkflowRequest req = {0};
    BrAllocationRow a;
    int r = br_workflow_request_load(db, request_id, &req, err);

    if (r < 0)
        return r;
    *ret_job = 0;
    if (!req.row.trial_allocation_id)
        return 0;
    r = br_allocation_load(db, req.row.trial_allocation_id, &a, err);
    if (r < 0)
        return r;
    /* Already reclaimed, or still provisioning (its job's failure reclaims nothing). */
    if (a.state != BR_ALLOCATION_STATE_ACTIVE && a.state != BR_ALLOCATION_STATE_ERROR)
        return 0;
    r = br_allocation_set_state(d->store, db, actor, a.id, a.state, BR_ALLOCATION_STATE_RECLAIMING,
                                "allocation.reclaim_trial", NULL, err);
    if (r < 0)
        return r;
    return plan_takedown(d, db, actor, BR_JOB_TRIAL_RECLAIM, request_id, a.id, ret_job, err);
}

int br_workflow_plan_restore(BrDaemon *d, CmDb *db, const BrActor *actor, int64_t allocation_id,
                             int64_t *ret_job, CmError *err)
{
    _cleanup_(br_step_list_clear) BrStepList steps = {0};
    _cleanup_free_ BrInstanceLive *cur = NULL;
    BrAllocationRow a;
    size_t n = 0;
    int r = br_allocation_load(db, allocation_id, &a, err);

    if (r < 0)
        return r;
    if (a.state != BR_ALLOCATION_STATE_RETAINED)
        return cm_error_set_code(err, CM_ERROR_CONFLICT, "invalid_state", "state",
                                 "allocation %lld is '%s'; only a retained allocation is restored",
                                 (long long)allocation_id, br_allocation_state_to_string(a.state));
    r = br_allocation_set_state(d->store, db, actor, allocation_id, BR_ALLOCATION_STATE_RETAINED,
                                BR_ALLOCATION_STATE_PROVISIONING, "allocation.restore", NULL, err);
    if (r >= 0)
        r = br_instance_load_live(db, allocation_id, &cur, &n, err);
    if (r < 0)
        return r;
    if (br_workflow_steps_restore(cur, n, &steps) < 0)
        return no_memory(err);
    return br_job_create(d->store, db, actor, BR_JOB_RESTORE, 0, allocation_id, &steps, ret_job,
                         err);
}

int br_workflow_plan_purge(BrDaemon *d, CmDb *db, const BrActor *actor, int64_t allocation_id,
                           int64_t *ret_job, CmError *err)
{
    BrAllocationRow a;
    int r = br_allocation_load(db, allocation_id, &a, err);

    if (r < 0)
        return r;
    if (a.state != BR_ALLOCATION_STATE_RETAINED && a.state != BR_ALLOCATION_STATE_ERROR)
        return cm_error_set_code(err, CM_ERROR_CONFLICT, "invalid_state", "state",
                                 "allocation %lld is '%s'; only a retained (or failed) allocation "
                                 "is purged",
                                 (long long)allocation_id, br_allocation_state_to_string(a.state));
    r = br_job_open_for(db, allocation_id, BR_JOB_PURGE, err);
    if (r < 0)
        return r;
    if (r > 0)
        return cm_error_set_code(err, CM_ERROR_CONFLICT, "job_open", "state",
                                 "allocation %lld is already being purged",
                                 (long long)allocation_id);
    return plan_takedown(d, db, actor, BR_JOB_PURGE, 0, allocation_id, ret_job, err);
}

/* ---- retrying a failed job ---- */

void br_workflow_retry_states(BrJobKind kind, bool trial, BrAllocationState *ret_allocation,
                              BrRequestState *ret_request)
{
    /* The mirror of br_workflow_fail(): the request goes back to where the failure found it. */
    *ret_request = BR_REQUEST_STATE_MAX;
    switch (kind) {
    case BR_JOB_PROVISION:
        *ret_allocation = BR_ALLOCATION_STATE_PROVISIONING;
        *ret_request = trial ? BR_REQUEST_STATE_APPROVED : BR_REQUEST_STATE_TRIAL_PASSED;
        break;
    case BR_JOB_RESTORE:
        *ret_allocation = BR_ALLOCATION_STATE_PROVISIONING;
        break;
    case BR_JOB_RESIZE:
        *ret_allocation = BR_ALLOCATION_STATE_RESIZING;
        *ret_request = BR_REQUEST_STATE_APPLYING;
        break;
    case BR_JOB_RECLAIM:
        *ret_allocation = BR_ALLOCATION_STATE_RECLAIMING;
        *ret_request = BR_REQUEST_STATE_RECLAIMING;
        break;
    case BR_JOB_TRIAL_RECLAIM:
        *ret_allocation = BR_ALLOCATION_STATE_RECLAIMING;
        break;
    case BR_JOB_PURGE:
    default:
        /* A purge ends from error as well as from retained (error → purged is allowed). */
        *ret_allocation = BR_ALLOCATION_STATE_ERROR;
        break;
    }
}

/* The allocation of a failed job: still in error, and not worked on by a later job. */
static int retry_allocation(CmDb *db, const BrJobRow *job, BrAllocationRow *ret, CmError *err)
{
    BrJobKind later_kind = BR_JOB_KIND_MAX;
    int64_t later = 0;
    int r = br_job_later(db, job->allocation_id, job->id, &later, &later_kind, err);

    if (r < 0)
        return r;
    if (later)
        return cm_error_set_code(err, CM_ERROR_CONFLICT, "superseded", "state",
                                 "job %lld (%s) came after job %lld on allocation %lld; only "
                                 "the allocation's latest job can be retried",
                                 (long long)later, br_job_kind_to_string(later_kind),
                                 (long long)job->id, (long long)job->allocation_id);
    r = br_allocation_load(db, job->allocation_id, ret, err);
    if (r < 0)
        return r;
    if (ret->state != BR_ALLOCATION_STATE_ERROR)
        return cm_error_set_code(err, CM_ERROR_CONFLICT, "invalid_state", "state",
                                 "allocation %lld is '%s', not error; its job %lld cannot be "
                                 "retried",
                                 (long long)job->allocation_id,
                                 br_allocation_state_to_string(ret->state), (long long)job->id);
    return 0;
}

int br_workflow_plan_retry(BrDaemon *d, CmDb *db, const BrActor *actor, int64_t job_id,
                           const char *comment, CmError *err)
{
    BrAllocationRow a = {.state = BR_ALLOCATION_STATE_ERROR};
    BrAllocationState alloc_to;
    BrRequestState req_to;
    BrJobRow job;
    int r;

    r = br_job_load(db, job_id, &job, err);
    if (r < 0)
        return r;
    if (job.state != BR_JOB_ERROR)
        return cm_error_set_code(err, CM_ERROR_CONFLICT, "invalid_state", "state",
                                 "job %lld is '%s'; only a failed job is retried",
                                 (long long)job_id, br_job_state_to_string(job.state));
    if (job.allocation_id) {
        r = retry_allocation(db, &job, &a, err);
        if (r < 0)
            return r;
    }
    br_workflow_retry_states(job.kind, a.trial, &alloc_to, &req_to);
    if (job.allocation_id && alloc_to != a.state) {
        r = br_allocation_set_state(d->store, db, actor, job.allocation_id, a.state, alloc_to,
                                    "allocation.retry", comment, err);
        if (r < 0)
            return r;
    }
    if (job.request_id && req_to != BR_REQUEST_STATE_MAX) {
        _cleanup_(br_workflow_request_clear) BrWorkflowRequest req = {0};
        r = br_workflow_request_load(db, job.request_id, &req, err);
        if (r < 0)
            return r;
        if (req.row.state != BR_REQUEST_STATE_FAILED)
            return cm_error_set_code(err, CM_ERROR_CONFLICT, "invalid_state", "state",
                                     "request %lld is '%s', not failed; its job %lld cannot be "
                                     "retried",
                                     (long long)req.row.id,
                                     br_request_state_to_string(req.row.state), (long long)job_id);
        r = br_request_set_state(d->store, db, actor, req.row.id, req.row.kind,
                                 BR_REQUEST_STATE_FAILED, req_to, "request.retry",
                                 comment && *comment ? comment : "its job is retried", err);
        if (r < 0)
            return r;
    }
    /* An instance still 'placed' has nothing on its host: its create_volume step never ran, or
     * failed (a crash leaves a step running, then pending, never failed). It goes back to
     * placement, so that a host taken out of service since is avoided; what exists on a host
     * stays where it is. */
    r = br_job_has_step(db, job_id, BR_STEP_RESERVE, err);
    if (r > 0)
        r = br_instance_unplace_job(db, job_id, err);
    if (r < 0)
        return r;
    return br_job_reopen(d->store, db, actor, job_id, r > 0, comment, r, err);
}

/* ---- the steps of each kind of job: pure ---- */

#define ADD(steps, action, id, arg, spec)                                                          \
    do {                                                                                           \
        if (br_step_list_add(steps, action, id, arg, spec) < 0)                                    \
            return -ENOMEM;                                                                        \
    } while (0)

int br_workflow_steps_provision(const int64_t *ids, size_t n, BrStepList *steps)
{
    ADD(steps, BR_STEP_RESERVE, 0, 0, NULL);
    for (size_t i = 0; i < n; i++) {
        ADD(steps, BR_STEP_CREATE_VOLUME, ids[i], 0, NULL);
        ADD(steps, BR_STEP_DEFINE, ids[i], 0, NULL);
        ADD(steps, BR_STEP_START, ids[i], 0, NULL);
    }
    ADD(steps, BR_STEP_FINISH, 0, 0, NULL);
    return 0;
}

/* An instance the department asked to remove: shut down, undefined, its disk wiped. */
static int steps_remove(int64_t id, BrStepList *steps)
{
    ADD(steps, BR_STEP_SHUTDOWN, id, 0, NULL);
    ADD(steps, BR_STEP_UNDEFINE, id, 0, NULL);
    ADD(steps, BR_STEP_WIPE, id, 0, NULL);
    ADD(steps, BR_STEP_DELETE_VOLUME, id, 0, NULL);
    return 0;
}

int br_workflow_steps_takedown(const BrInstanceLive *cur, size_t n, bool undefine, bool wipe,
                               bool delete_volume, BrStepList *steps)
{
    for (size_t i = 0; i < n; i++) {
        /* Never placed: nothing exists on any host. */
        if (cur[i].state == BR_INSTANCE_PENDING)
            continue;
        ADD(steps, BR_STEP_SHUTDOWN, cur[i].id, 0, NULL);
        if (undefine)
            ADD(steps, BR_STEP_UNDEFINE, cur[i].id, 0, NULL);
        if (wipe)
            ADD(steps, BR_STEP_WIPE, cur[i].id, 0, NULL);
        if (delete_volume)
            ADD(steps, BR_STEP_DELETE_VOLUME, cur[i].id, 0, NULL);
    }
    ADD(steps, BR_STEP_FINISH, 0, 0, NULL);
    return 0;
}

int br_workflow_steps_restore(const BrInstanceLive *cur, size_t n, BrStepList *steps)
{
    for (size_t i = 0; i < n; i++) {
        if (cur[i].state == BR_INSTANCE_PENDING)
            continue;
        ADD(steps, BR_STEP_DEFINE, cur[i].id, 0, NULL);
        ADD(steps, BR_STEP_START, cur[i].id, 0, NULL);
    }
    ADD(steps, BR_STEP_FINISH, 0, 0, NULL);
    return 0;
}

static bool removed(json_object *remove, unsigned idx)
{
    size_t n = remove ? json_object_array_length(remove) : 0;
    for (size_t k = 0; k < n; k++)
        if (json_object_get_int64(json_object_array_get_idx(remove, k)) == (int64_t)idx)
            return true;
    return false;
}

size_t br_workflow_split_removed(BrInstanceLive *cur, size_t n, json_object *remove,
                                 size_t *ret_kept)
{
    size_t kept = 0, n_rm = remove ? json_object_array_length(remove) : 0;

    for (size_t k = 0; k < n_rm; k++) {
        int64_t idx = json_object_get_int64(json_object_array_get_idx(remove, k));
        bool found = false;
        for (size_t i = 0; i < n && !found; i++)
            found = (int64_t)cur[i].idx == idx;
        if (!found)
            return k + 1;
    }
    for (size_t i = 0; i < n; i++)
        if (!removed(remove, cur[i].idx)) {
            BrInstanceLive x = cur[i];
            memmove(&cur[kept + 1], &cur[kept], (i - kept) * sizeof(*cur));
            cur[kept++] = x;
        }
    *ret_kept = kept;
    return 0;
}

bool br_workflow_needs_restart(const BrInstanceLive *cur, json_object *spec, const char **ret_field)
{
    int64_t vcpus = cm_json_get_int(spec, "vcpus", cur->sizes.vcpus);
    int64_t mem = cm_json_get_int(spec, "memory_mib", cur->sizes.memory_mib);

    if (vcpus > cur->sizes.max_vcpus || vcpus < cur->sizes.vcpus) {
        /* Growing past the maximum needs a new definition; removing vCPUs from a running
         * guest needs its cooperation, which we do not count on. */
        *ret_field = "vcpus";
        return true;
    }
    if (mem > cur->sizes.max_memory_mib) {
        *ret_field = "memory_mib";
        return true;
    }
    return false;
}

/* Instance @cur becomes @spec: live within its maximums, else through a restart. */
static int steps_resize(const BrInstanceLive *cur, json_object *spec,
                        const BrLifecyclePolicy *lifecycle, BrStepList *steps)
{
    const BrInstanceSizes *s = &cur->sizes;
    int64_t vcpus = cm_json_get_int(spec, "vcpus", s->vcpus);
    int64_t mem = cm_json_get_int(spec, "memory_mib", s->memory_mib);
    int64_t disk = cm_json_get_int(spec, "disk_gib", s->disk_gib);
    char redefine[256];
    const char *why;

    if (!br_workflow_needs_restart(cur, spec, &why)) {
        if (vcpus != s->vcpus)
            ADD(steps, BR_STEP_SET_VCPUS, cur->id, vcpus, NULL);
        if (mem != s->memory_mib)
            ADD(steps, BR_STEP_SET_MEMORY, cur->id, mem, NULL);
        if (disk > s->disk_gib)
            ADD(steps, BR_STEP_GROW_VOLUME, cur->id, disk, NULL);
        return 0;
    }
    snprintf(redefine, sizeof(redefine),
             "{\"vcpus\":%lld,\"memory_mib\":%lld,\"max_vcpus\":%lld,\"max_memory_mib\":%lld}",
             (long long)vcpus, (long long)mem, (long long)br_policy_max_vcpus(lifecycle, vcpus),
             (long long)br_policy_max_memory_mib(lifecycle, mem));
    ADD(steps, BR_STEP_SHUTDOWN, cur->id, 0, NULL);
    if (disk > s->disk_gib)
        ADD(steps, BR_STEP_GROW_VOLUME, cur->id, disk, NULL);
    ADD(steps, BR_STEP_REDEFINE, cur->id, 0, redefine);
    ADD(steps, BR_STEP_START, cur->id, 0, NULL);
    return 0;
}

int br_workflow_steps_change(const BrInstanceLive *cur, size_t n, size_t kept, json_object *specs,
                             const BrLifecyclePolicy *lifecycle, const int64_t *new_ids,
                             BrStepList *steps)
{
    size_t m = specs ? json_object_array_length(specs) : 0;

    for (size_t i = kept; i < n; i++)
        if (steps_remove(cur[i].id, steps) < 0)
            return -ENOMEM;
    if (m > kept)
        ADD(steps, BR_STEP_RESERVE, 0, 0, NULL);
    for (size_t i = 0; i < kept && i < m; i++)
        if (steps_resize(&cur[i], json_object_array_get_idx(specs, i), lifecycle, steps) < 0)
            return -ENOMEM;
    for (size_t i = kept; i < m; i++) {
        ADD(steps, BR_STEP_CREATE_VOLUME, new_ids[i - kept], 0, NULL);
        ADD(steps, BR_STEP_DEFINE, new_ids[i - kept], 0, NULL);
        ADD(steps, BR_STEP_START, new_ids[i - kept], 0, NULL);
    }
    /* Fewer instances: the ones at the end go, disks wiped: the department asked. */
    for (size_t i = m; i < kept; i++)
        if (steps_remove(cur[i].id, steps) < 0)
            return -ENOMEM;
    ADD(steps, BR_STEP_FINISH, 0, 0, NULL);
    return 0;
}
