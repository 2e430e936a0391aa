/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdint.h>

#include "br-role.h"
#include "br-store.h"
#include "cm-enum.h"
#include "cm-error.h"

/*
 * Jobs: persisted hypervisor work made of idempotent steps, run by worker threads off the
 * HTTP threads, one job at a time per host. A step is marked done only after its effect is
 * made; after a crash every step not marked done runs again and finds what the previous
 * attempt made (see br-virt.h), so a job resumes where it stopped.
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
    BR_STEP_RESERVE,     /* choose hosts for the instances that have none */
    BR_STEP_CREATE_VOLUME,
    BR_STEP_DEFINE,
    BR_STEP_START,
    BR_STEP_SET_VCPUS,   /* arg: vCPUs (live when running, and config) */
    BR_STEP_SET_MEMORY,  /* arg: MiB */
    BR_STEP_GROW_VOLUME, /* arg: GiB */
    BR_STEP_SHUTDOWN,    /* graceful, then forced after the policy's timeout */
    BR_STEP_REDEFINE,    /* spec: {"vcpus","memory_mib","disk_gib"}; new maximums */
    BR_STEP_UNDEFINE,
    BR_STEP_WIPE,
    BR_STEP_DELETE_VOLUME,
    BR_STEP_FINISH,      /* the workflow's state changes, in one transaction */
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

typedef struct BrJobs BrJobs;
struct BrDaemon;

/**
 * br_jobs_start:
 * Recovers unfinished jobs (steps that were running go back to pending) and starts
 * @workers threads. Returns: 0, or a negative errno with @err set.
 */
int br_jobs_start(struct BrDaemon *d, unsigned workers, BrJobs **ret, CmError *err);

/** br_jobs_stop: lets running steps finish, stops the workers, frees. Returns: NULL. */
BrJobs *br_jobs_stop(BrJobs *j);

/** br_jobs_kick: wakes the workers (after a job was committed). Accepts NULL. */
void br_jobs_kick(BrJobs *j);

/** br_jobs_counts: jobs done and failed since start, for /metrics. */
void br_jobs_counts(BrJobs *j, uint64_t *ret_done, uint64_t *ret_failed);
