/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <json-c/json.h>

#include "br-allocation.h"
#include "br-instance.h"
#include "br-job.h"
#include "br-placement.h"
#include "br-policy.h"
#include "br-request.h"
#include "br-tx.h"

typedef struct BrDaemon BrDaemon;

/*
 * The second half of the workflow (Art. 7 §3-6) as jobs, in four files:
 * - br-workflow-plan.c: the planners create allocations, instances and jobs inside the API's
 *   transaction (the steps themselves are chosen by the pure br_workflow_steps_*() below);
 * - br-workflow-place.c: placement on the hosts, and the reserve step;
 * - br-workflow-end.c: the finish step and the failure handler move the request and the
 *   allocation when a job ends;
 * - br-workflow-sweep.c: the sweeper ends trials whose time ran out and purges allocations
 *   whose retention ended.
 * The job engine (br-jobs.c) reaches the last three only through br-steps.c's callbacks.
 */

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
int br_workflow_plan_trial_reclaim(BrDaemon *d, CmDb *db, const BrActor *actor, int64_t request_id,
                                   int64_t *ret_job, CmError *err);

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

/**
 * br_workflow_reserve:
 * The reserve step of @job (seq @seq): places the allocation's instances that have no host,
 * and records itself done, in one transaction under the placement lock.
 * Returns: 0, -EAGAIN when nothing fits now (try later), or another negative errno with @err.
 */
int br_workflow_reserve(BrDaemon *d, const BrJobRow *job, int seq, CmError *err);

/**
 * br_workflow_finish:
 * The finish step of @job (seq @seq): the state changes at the end of the job, the step and
 * the job's end, in one transaction. Returns: 0 or a negative errno with @err set.
 */
int br_workflow_finish(BrDaemon *d, const BrJobRow *job, int seq, CmError *err);

/**
 * br_workflow_fail:
 * @job failed for good: its allocation goes to error and its request to failed, inside the
 * failure's transaction @tx. Returns: 0 or a negative errno with tx->err set.
 */
int br_workflow_fail(BrDaemon *d, BrTx *tx, const BrJobRow *job, const char *reason);

/** br_workflow_sweep: ends overdue trials, purges expired retentions. Returns: jobs made. */
int br_workflow_sweep(BrDaemon *d);

/** br_workflow_retry_seconds: Returns: how long a job keeps retrying an absent host. */
int64_t br_workflow_retry_seconds(BrDaemon *d);

/*
 * The planners' pure half: which steps a job takes, from what the allocation has and what the
 * request asks for. No database, no libvirt (tests/unit/test-br-workflow.c). Every job ends
 * with its finish step.
 */

/**
 * br_workflow_steps_provision:
 * The steps of a provisioning job for the new instances @ids: reserve (placement), then for
 * each its volume, definition and start, then finish. Returns: 0 or -ENOMEM.
 */
int br_workflow_steps_provision(const int64_t *ids, size_t n, BrStepList *steps);

/**
 * br_workflow_steps_takedown:
 * The steps that take every live instance of @cur down (shut down, then optionally undefine,
 * wipe, delete the volume), then finish; instances never placed have nothing on a host and
 * are skipped. Returns: 0 or -ENOMEM.
 */
int br_workflow_steps_takedown(const BrInstanceLive *cur, size_t n, bool undefine, bool wipe,
                               bool delete_volume, BrStepList *steps);

/**
 * br_workflow_steps_restore:
 * Define and start for every placed instance of @cur, then finish. Returns: 0 or -ENOMEM.
 */
int br_workflow_steps_restore(const BrInstanceLive *cur, size_t n, BrStepList *steps);

/**
 * br_workflow_split_removed:
 * A change's resources.remove (scale-in): moves the instances of @cur whose indexes @remove
 * names to the end, keeping the others' order, so the first *@ret_kept are matched in order to
 * resources.instances. Returns: 0, or the position in @remove of an index that is no instance
 * of @cur, plus one (@cur is left as it was then).
 */
size_t br_workflow_split_removed(BrInstanceLive *cur, size_t n, json_object *remove,
                                 size_t *ret_kept);

/**
 * br_workflow_needs_restart:
 * Returns: true when instance @cur cannot become @spec ({vcpus, memory_mib}) live: its vCPUs
 * shrink or pass the maximum set at define time, or its memory passes its maximum; @ret_field
 * names which.
 */
bool br_workflow_needs_restart(const BrInstanceLive *cur, json_object *spec,
                               const char **ret_field);

/**
 * br_workflow_steps_change:
 * The steps of a change of the @n instances @cur, split by br_workflow_split_removed() into
 * the @kept first and the removed: the removed go (shut down, undefined, wiped, deleted); with
 * more @specs than @kept a reserve step comes next; the kept become @specs' first ones (live
 * within the maximums, else shut down, grown, redefined with new maximums from @lifecycle and
 * started); the @specs beyond @kept are provisioned as the new instances @new_ids; the kept
 * beyond @specs go; then finish. Returns: 0 or -ENOMEM.
 */
int br_workflow_steps_change(const BrInstanceLive *cur, size_t n, size_t kept, json_object *specs,
                             const BrLifecyclePolicy *lifecycle, const int64_t *new_ids,
                             BrStepList *steps);
