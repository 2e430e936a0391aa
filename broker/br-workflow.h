/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <json-c/json.h>

#include "br-jobs.h"
#include "br-placement.h"
#include "br-request.h"

typedef struct BrDaemon BrDaemon;

/*
 * The second half of the workflow (Art. 7 §3-6) as jobs: the planners create allocations,
 * instances and jobs inside the API's transaction; the finish and fail handlers move the
 * request and the allocation when a job ends; the sweeper ends trials whose time ran out and
 * purges allocations whose retention ended.
 */

/** br_allocation_set_state: as br_request_set_state(), for allocations. */
int br_allocation_set_state(BrStore *store, CmDb *db, const BrActor *actor, int64_t id,
                            BrAllocationState from, BrAllocationState to, const char *action,
                            const char *reason, CmError *err);

/**
 * br_workflow_plan_trial:
 * For an approved `new` request: a trial allocation of its instances and the job that
 * provisions them in the trial pool. Returns: 0 and the job id, or a negative errno.
 */
int br_workflow_plan_trial(BrDaemon *d, CmDb *db, const BrActor *actor, int64_t request_id,
                           int64_t *ret_job, CmError *err);

/** br_workflow_plan_allocate: production allocation and its provisioning job. */
int br_workflow_plan_allocate(BrDaemon *d, CmDb *db, const BrActor *actor, int64_t request_id,
                              int64_t *ret_allocation, int64_t *ret_job, CmError *err);

/**
 * br_workflow_check_change:
 * Checks that change request @request_id can be applied: same images, disks only grow, and
 * a restart is allowed when vCPUs shrink or a size passes the maximums set at define time.
 * Returns: 0, or a negative errno with @err naming the instance and field.
 */
int br_workflow_check_change(BrDaemon *d, CmDb *db, int64_t request_id, CmError *err);

/** br_workflow_plan_change: the resize job of an approved change. */
int br_workflow_plan_change(BrDaemon *d, CmDb *db, const BrActor *actor, int64_t request_id,
                            int64_t *ret_job, CmError *err);

/** br_workflow_plan_reclaim: the reclaim job of an approved termination. */
int br_workflow_plan_reclaim(BrDaemon *d, CmDb *db, const BrActor *actor, int64_t request_id,
                             int64_t *ret_job, CmError *err);

/** br_workflow_plan_trial_reclaim: the trial of @request_id ended: reclaim its instances. */
int br_workflow_plan_trial_reclaim(BrDaemon *d, CmDb *db, const BrActor *actor,
                                   int64_t request_id, int64_t *ret_job, CmError *err);

/** br_workflow_plan_restore: a retained allocation back into service. */
int br_workflow_plan_restore(BrDaemon *d, CmDb *db, const BrActor *actor, int64_t allocation_id,
                             int64_t *ret_job, CmError *err);

/** br_workflow_plan_purge: wipe and delete a retained (or failed) allocation's volumes. */
int br_workflow_plan_purge(BrDaemon *d, CmDb *db, const BrActor *actor, int64_t allocation_id,
                           int64_t *ret_job, CmError *err);

/**
 * br_workflow_retry_states:
 * Where a retry of a failed job of @kind takes its allocation (@ret_allocation: the state the
 * job works in, or error for a purge, which ends from error) and its request (@ret_request:
 * where the failure found it, or BR_REQUEST_STATE_MAX when the failure left the request alone);
 * @trial: the job works on a trial allocation. Pure.
 */
void br_workflow_retry_states(BrJobKind kind, bool trial, BrAllocationState *ret_allocation,
                              BrRequestState *ret_request);

/**
 * br_workflow_plan_retry:
 * Retries failed job @job_id inside the caller's write transaction on @db, once the vendor
 * has mended what made it fail: the allocation leaves error for the state the job works in,
 * the request goes back from failed to where the job's failure found it (both audited with
 * @comment), instances the job placed but made nothing of yet go back to placement (so hosts
 * taken out of service since are avoided), and the job is queued again (br_job_reopen).
 * Returns: 0, or a negative errno with @err set: 404 for no such job, 409 when the job has not
 * failed, a later job acts on its allocation ("superseded"), or the allocation or the request
 * moved on since.
 */
int br_workflow_plan_retry(BrDaemon *d, CmDb *db, const BrActor *actor, int64_t job_id,
                           const char *comment, CmError *err);

/**
 * br_workflow_place:
 * Dry-runs placement of @allocation_id's instances that have no host yet (or, with
 * @request_id for a request not yet allocated, of its requested instances) in @pool.
 * Returns: 0, or -ENOSPC with @err (CM_ERROR_CONFLICT, "no_capacity") saying per host which
 * filter refused, or another negative errno.
 */
int br_workflow_place_request(BrDaemon *d, CmDb *db, int64_t request_id, const char *pool,
                              CmError *err);

/** br_workflow_reserve: the reserve step (records itself). Returns: 0, -EAGAIN, or -errno. */
int br_workflow_reserve(BrDaemon *d, const BrJobRow *job, int seq, CmError *err);

/** br_workflow_finish: the finish step (records itself with the job's end). */
int br_workflow_finish(BrDaemon *d, const BrJobRow *job, int seq, CmError *err);

/** br_workflow_fail: moves the job's request/allocation on a permanent failure (in @db). */
int br_workflow_fail(BrDaemon *d, CmDb *db, const BrJobRow *job, const char *reason,
                     CmError *err);

/** br_workflow_sweep: ends overdue trials, purges expired retentions. Returns: jobs made. */
int br_workflow_sweep(BrDaemon *d);

/** br_workflow_retry_seconds: Returns: how long a job keeps retrying an absent host. */
int64_t br_workflow_retry_seconds(BrDaemon *d);
