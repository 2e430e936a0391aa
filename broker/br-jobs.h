/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdint.h>

#include "br-instance.h"
#include "br-job.h"
#include "br-store.h"
#include "br-tx.h"
#include "cm-error.h"

/*
 * The job engine: worker threads that run the persisted jobs (br-job.h) off the HTTP threads,
 * oldest first, one job at a time per host (br-hostlock.h), and a sweeper. A step is marked
 * done only after its effect is made; after a crash every step not marked done runs again and
 * finds what the previous attempt made (see br-virt.h), so a job resumes where it stopped.
 *
 * The engine knows no workflow: what a step does, what a failure changes and what the sweeper
 * looks for are given to it as callbacks (libvirt's virDomainObjPrivateJobCallbacks, systemd's
 * UNIT_VTABLE), so it includes nothing above the store.
 */

/* What a step that the engine records changed of its instance. */
typedef struct {
    int instance_state;    /* a BrInstanceState, or -1 when unchanged */
    BrInstanceSizes sizes; /* BR_INSTANCE_SIZES_KEEP when unchanged */
} BrStepOutcome;

/* run_step() returns this when the step recorded itself as done (reserve, finish). */
#define BR_STEP_RESULT_RECORDED 1

typedef struct {
    /*
     * Carries out @step of @job (@out starts unchanged). Returns: 0 when done (the engine
     * records it with @out), BR_STEP_RESULT_RECORDED when the step recorded itself (a step of
     * action finish ends the job so), -EAGAIN when it is to be tried again later (a host away,
     * no room), or another negative errno with @err set for a failure that retrying will not
     * mend. Called without any lock held; steps of one job never run at once.
     */
    int (*run_step)(void *ctx, const BrJobRow *job, const BrStepRow *step, BrStepOutcome *out,
                    CmError *err);
    /* A job failed for good: moves what it worked for, inside the failure's transaction @tx.
     * Returns: 0, or a negative errno with tx->err set (nothing of the failure is kept). */
    int (*fail)(void *ctx, BrTx *tx, const BrJobRow *job, const char *reason);
    /* One pass of the sweeper (every 2 s). Returns: how many jobs it made (the workers are
     * woken for them). NULL: no sweeper. */
    int (*sweep)(void *ctx);
    /* How long, in seconds since the job started, a step keeps being tried again. */
    int64_t (*retry_seconds)(void *ctx);
} BrJobCallbacks;

typedef struct BrJobs BrJobs;

typedef struct {
    unsigned workers;      /* threads that run jobs; 0: none (the engine only records) */
    const char *node;      /* this broker's node name: it holds the leases of the jobs it runs */
    bool leases;           /* several brokers share the database: claim jobs with leases */
    int64_t lease_seconds; /* a job's lease (at least 3), renewed every third of it */
} BrJobsOptions;

/**
 * br_jobs_start:
 * Recovers unfinished jobs (br_job_recover(): this node's old leases end, steps left running
 * by nobody go back to pending) and starts @o->workers threads, the lease renewer and the
 * sweeper, which call @cb with @ctx. With @o->leases (PostgreSQL, where other brokers may
 * run) a worker claims the oldest runnable job whose lease is free or ended (br_job_claim())
 * and the job's hosts in the database, runs it as far as it goes, and gives them back; every
 * record of its progress first checks that the lease is still this broker's. Without (the only
 * broker, SQLite) the engine's own table of running jobs is the claim, as before leases.
 * Returns: 0 and the engine in @ret, or a negative errno with @err set.
 */
int br_jobs_start(BrStore *store, const BrJobCallbacks *cb, void *ctx, const BrJobsOptions *o,
                  BrJobs **ret, CmError *err);

/** br_jobs_stop: lets running steps finish, stops the threads, frees. Returns: NULL. */
BrJobs *br_jobs_stop(BrJobs *j);

/** br_jobs_kick: wakes the workers (after a job was committed). Accepts NULL. */
void br_jobs_kick(BrJobs *j);

/** br_jobs_counts: jobs done and failed since start, for /metrics. */
void br_jobs_counts(BrJobs *j, uint64_t *ret_done, uint64_t *ret_failed);

/**
 * br_jobs_lease_counts:
 * For /metrics: jobs taken over from another broker whose lease had ended, jobs this broker
 * stopped because its lease was taken over, both since start, and the jobs it runs now.
 */
void br_jobs_lease_counts(BrJobs *j, uint64_t *ret_taken_over, uint64_t *ret_lost,
                          unsigned *ret_running);
