/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "br-role.h"
#include "br-store.h"
#include "br-tx.h"
#include "cm-enum.h"
#include "cm-error.h"

/*
 * The jobs and job_steps tables: persisted hypervisor work made of idempotent steps. The only
 * file with SQL on them; the engine that runs them is br-jobs.c.
 */

typedef enum {
    BR_JOB_PROVISION,     /* place, create volumes, define, start: trial or production */
    BR_JOB_RESIZE,        /* a change: live within the maximums, else shutdown/redefine/start */
    BR_JOB_RECLAIM,       /* termination: stop and undefine, keep the volumes (retained) */
    BR_JOB_TRIAL_RECLAIM, /* the trial ended: stop, undefine, delete the volumes */
    BR_JOB_PURGE,         /* end of retention: wipe and delete the volumes */
    BR_JOB_RESTORE,       /* a retained allocation back: define and start on its volumes */
    BR_JOB_KIND_MAX,
} BrJobKind;

CM_ENUM_DECL(br_job_kind, BrJobKind)

typedef enum {
    BR_STEP_RESERVE, /* choose hosts for the instances that have none */
    BR_STEP_CREATE_VOLUME,
    BR_STEP_DEFINE,
    BR_STEP_START,
    BR_STEP_SET_VCPUS,   /* arg: vCPUs (live when running, and config) */
    BR_STEP_SET_MEMORY,  /* arg: MiB */
    BR_STEP_GROW_VOLUME, /* arg: GiB */
    BR_STEP_SHUTDOWN,    /* graceful, then forced after the policy's timeout */
    BR_STEP_REDEFINE,    /* spec: {"vcpus","memory_mib","max_vcpus","max_memory_mib"} */
    BR_STEP_UNDEFINE,
    BR_STEP_WIPE,
    BR_STEP_DELETE_VOLUME,
    BR_STEP_FINISH, /* the workflow's state changes, in one transaction */
    BR_STEP_MAX,
} BrStepAction;

CM_ENUM_DECL(br_step_action, BrStepAction)

typedef enum {
    BR_JOB_QUEUED,
    BR_JOB_RUNNING,
    BR_JOB_DONE,
    BR_JOB_ERROR,
    BR_JOB_STATE_MAX,
} BrJobState;

CM_ENUM_DECL(br_job_state, BrJobState)

typedef struct {
    BrStepAction action;
    int64_t instance_id; /* 0 for RESERVE and FINISH */
    int64_t arg;
    const char *spec; /* compact JSON or NULL */
} BrStepSpec;

/* A growing list of steps, for the planners. */
typedef struct {
    BrStepSpec *steps;
    size_t n, cap;
    char **owned; /* spec strings the list owns */
    size_t n_owned;
} BrStepList;

/**
 * br_step_list_add:
 * Appends a step (@spec copied). Returns: 0, or -ENOMEM (the list unchanged).
 */
int br_step_list_add(BrStepList *l, BrStepAction action, int64_t instance_id, int64_t arg,
                     const char *spec);
void br_step_list_clear(BrStepList *l);

typedef struct {
    int64_t id;
    BrJobKind kind;
    BrJobState state;
    int64_t request_id, allocation_id;
    int64_t attempts;
    char created_at[32], started_at[32];
} BrJobRow;

/* A step not done yet, with the host of its instance. */
typedef struct {
    int seq;
    BrStepAction action;
    int64_t instance_id, arg, attempts, host_id;
    char spec[512];
} BrStepRow;

/**
 * br_job_create:
 * Inserts a queued job with @steps inside the caller's write transaction on @db, with its
 * audit record. Workers see it once the transaction commits and br_jobs_kick() is called.
 * Returns: 0 and the job's id in @ret_id, or a negative errno with @err set.
 */
int br_job_create(BrStore *store, CmDb *db, const BrActor *actor, BrJobKind kind,
                  int64_t request_id, int64_t allocation_id, const BrStepList *steps,
                  int64_t *ret_id, CmError *err);

/**
 * br_job_load:
 * Reads job @id. Returns: 0, or -ENOENT with @err set (CM_ERROR_NOT_FOUND), or another
 * negative errno.
 */
int br_job_load(CmDb *db, int64_t id, BrJobRow *ret, CmError *err);

/**
 * br_job_reopen:
 * Puts failed job @id back in the queue inside the caller's write transaction on @db: its
 * failed step (and, with @reserve_again, its reserve step) pending again, the job queued with
 * its start cleared (so the retry window of a waiting step starts afresh) and its count of
 * retries up by one, and the audit record `job.retry` with the previous error, @comment and
 * @replaced (instances sent back to placement). Steps done stay done: they are idempotent, and
 * the job resumes at the step that failed.
 * Returns: 0, or a negative errno with @err set (CM_ERROR_CONFLICT when the job is not failed).
 */
int br_job_reopen(BrStore *store, CmDb *db, const BrActor *actor, int64_t id, bool reserve_again,
                  const char *comment, int64_t replaced, CmError *err);

/* Who claims a job, when, and for how long (docs/architecture.md, Several brokers). */
#define BR_JOB_NODE_MAX 64
typedef struct {
    const char *node; /* the broker's node name */
    int64_t now_ms;   /* the broker's clock */
    int64_t lease_ms;
} BrJobLease;

/**
 * br_job_recover:
 * After a start: the leases held under @node (a previous run of this broker; on SQLite, the
 * only broker, every lease) end; steps left running by a job nobody leases at @now_ms go back
 * to pending (they are idempotent), the host claims of such jobs are dropped, and they wait
 * for no retry time any more. Returns: 0 or a negative errno.
 */
int br_job_recover(CmDb *db, const char *node, int64_t now_ms, CmError *err);

/**
 * br_job_runnable:
 * The jobs queued or running whose retry time (if any) is not after @now and whose lease (if
 * any) ended before @now_ms, oldest first.
 * Returns: 0 with the array (to be freed) in @ret and its length in @ret_n, or a negative
 * errno with @err set.
 */
int br_job_runnable(CmDb *db, const char *now, int64_t now_ms, BrJobRow **ret, size_t *ret_n,
                    CmError *err);

/**
 * br_job_claim:
 * Inside the caller's write transaction: takes the lease of the oldest runnable job (as
 * br_job_runnable() at @now and @lease->now_ms) for which @skip (may be NULL) says no, for
 * @lease->node until @lease->now_ms + @lease->lease_ms. On PostgreSQL the candidates are read
 * with FOR UPDATE SKIP LOCKED. @ret_previous gets the node whose lease had ended ("" when the
 * job was free): a takeover.
 * Returns: 1 with the job in @ret, 0 when there is none to claim, or a negative errno.
 */
int br_job_claim(CmDb *db, const BrJobLease *lease, const char *now,
                 bool (*skip)(void *ctx, int64_t job_id), void *skip_ctx, BrJobRow *ret,
                 char *ret_previous, size_t previous_size, CmError *err);

/**
 * br_job_lease_hold:
 * Extends the lease of job @job_id to @lease->now_ms + @lease->lease_ms if @lease->node still
 * holds it. Returns: 1 when it does, 0 when the lease was lost (taken over), or a negative
 * errno with @err set.
 */
int br_job_lease_hold(CmDb *db, int64_t job_id, const BrJobLease *lease, CmError *err);

/**
 * br_job_lease_renew:
 * Extends every lease @lease->node holds that has not ended. Returns: 0 or a negative errno.
 */
int br_job_lease_renew(CmDb *db, const BrJobLease *lease, CmError *err);

/**
 * br_job_lease_release:
 * @node gives up the lease of job @job_id and its host claims; with @not_before (an ISO time,
 * or NULL) the job is not claimed again before then. Returns: 0 or a negative errno.
 */
int br_job_lease_release(CmDb *db, int64_t job_id, const char *node, const char *not_before,
                         CmError *err);

/**
 * br_job_hosts_claim:
 * Inside the caller's write transaction: claims the @n hosts of @hosts for job @job_id, whose
 * lease @lease->node holds. A host is free when it is unclaimed, claimed by this job, or
 * claimed by a job whose lease ended. The caller rolls back on failure (claims are all or
 * none). Returns: 0, -EBUSY with @err naming the job and node that hold a host, or another
 * negative errno.
 */
int br_job_hosts_claim(CmDb *db, int64_t job_id, const BrJobLease *lease, const int64_t *hosts,
                       size_t n, CmError *err);

/**
 * br_job_next_step:
 * The first step of job @job_id not done. Returns: 1 with @ret filled, 0 when every step is
 * done, or a negative errno with @err set.
 */
int br_job_next_step(CmDb *db, int64_t job_id, BrStepRow *ret, CmError *err);

/**
 * br_job_hosts:
 * The hosts that the steps of job @job_id not done yet act on, each once, by id.
 * Returns: 0 with the array (to be freed) in @ret and its length in @ret_n, or a negative
 * errno with @err set.
 */
int br_job_hosts(CmDb *db, int64_t job_id, int64_t **ret, size_t *ret_n, CmError *err);

/** br_job_set_running: a queued job starts now. Returns: 0 or a negative errno. */
int br_job_set_running(CmDb *db, int64_t job_id, CmError *err);

/** br_job_set_done: a running job ends well now. Returns: 0 or a negative errno. */
int br_job_set_done(CmDb *db, int64_t job_id, CmError *err);

/**
 * br_job_fail:
 * Job @job_id ends in error now with @why, and so does its step @seq (unless @seq < 0).
 * Returns: 0 or a negative errno with @err set.
 */
int br_job_fail(CmDb *db, int64_t job_id, int seq, const char *why, CmError *err);

/**
 * br_job_step_start:
 * Step @seq runs (one more attempt) on the broker @node. Returns: 0 or a negative errno.
 */
int br_job_step_start(CmDb *db, int64_t job_id, int seq, const char *node, CmError *err);

/** br_job_step_done: step @seq is done. Returns: 0 or a negative errno. */
int br_job_step_done(CmDb *db, int64_t job_id, int seq, CmError *err);

/**
 * br_job_step_wait:
 * The running step of job @job_id goes back to pending with @why, and the job waits until
 * @not_before (an ISO time). Returns: 0 or a negative errno with @err set.
 */
int br_job_step_wait(CmDb *db, int64_t job_id, const char *why, const char *not_before,
                     CmError *err);

/**
 * br_job_later:
 * The newest job of allocation @allocation_id made after job @job_id: its id in @ret_id (0
 * when none) and its kind in @ret_kind. Returns: 0 or a negative errno with @err set.
 */
int br_job_later(CmDb *db, int64_t allocation_id, int64_t job_id, int64_t *ret_id,
                 BrJobKind *ret_kind, CmError *err);

/**
 * br_job_open_for:
 * Returns: 1 when a job of @kind is queued or running for allocation @allocation_id, 0 when
 * none is, or a negative errno with @err set.
 */
int br_job_open_for(CmDb *db, int64_t allocation_id, BrJobKind kind, CmError *err);

/**
 * br_job_has_step:
 * Returns: 1 when job @job_id has a step of @action, 0 when not, or a negative errno.
 */
int br_job_has_step(CmDb *db, int64_t job_id, BrStepAction action, CmError *err);

/**
 * br_job_list_for_request:
 * The jobs working for request @request_id, oldest first, as its document lists them:
 * [{"id", "kind", "state", "error"}, ...].
 * Returns: 0 and the array in @ret, or a negative errno with @err set.
 */
int br_job_list_for_request(CmDb *db, int64_t request_id, json_object **ret, CmError *err);

/* The filters of GET /v1/jobs; 0 and NULL filter nothing. */
typedef struct {
    const char *state;
    int64_t request, allocation, department;
} BrJobFilter;

/**
 * br_job_list:
 * One page of the jobs that pass @f, as GET /v1/jobs shows them.
 * Returns: 0 and the array in @ret, or a negative errno with @err set.
 */
int br_job_list(CmDb *db, const BrJobFilter *f, const BrPage *page, json_object **ret,
                CmError *err);

/**
 * br_job_get:
 * Job @id with its steps as GET /v1/jobs/{id} shows it, read in one snapshot; @department,
 * when not 0, sees only the jobs of its own allocations.
 * Returns: 0 and the document in @ret, -ENOENT with @err "no job with id N", or another
 * negative errno with @err set.
 */
int br_job_get(BrStore *s, int64_t id, int64_t department, json_object **ret, CmError *err);

/** br_job_get_tx: br_job_get() inside the transaction @tx. Returns: 0, or a negative errno. */
int br_job_get_tx(BrTx *tx, int64_t id, int64_t department, json_object **ret);
