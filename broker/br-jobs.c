/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "br-hostlock.h"
#include "br-jobs.h"
#include "cm-json.h"
#include "cm-log.h"
#include "cm-time.h"
#include "cm-util.h"
#include "cm-worker.h"

#define MAX_WORKERS 32
#define MAX_EXECUTING 256
#define IDLE_MS 1000
#define SWEEP_INTERVAL_MS 2000

struct BrJobs {
    BrStore *store;
    BrJobCallbacks cb;
    void *ctx;
    pthread_mutex_t lock; /* executing, host_locks */
    int64_t executing[MAX_EXECUTING];
    size_t n_executing;
    BrHostLocks host_locks;
    atomic_bool stopping;
    _Atomic(CmWorker *) workers; /* NULL until they all started */
    CmWorker *sweeper;
    atomic_uint_fast64_t done, failed;
};

/* ---- host locks: one job at a time per host, all of a job's hosts at once ---- */

static bool host_held(BrJobs *j, int64_t host_id, int64_t job_id)
{
    pthread_mutex_lock(&j->lock);
    bool held = br_host_locks_holds(&j->host_locks, job_id, host_id);
    pthread_mutex_unlock(&j->lock);
    return held;
}

/*
 * Takes every host that the job's remaining steps act on, or none (br-hostlock.h says why:
 * no job holds a host while it waits for another, and the oldest waiting job goes first).
 * The set is read afresh each time: it is known once the reserve step has placed the
 * instances, and only shrinks as steps are done.
 * Returns: 1 when the job holds them all, 0 when it must wait, or a negative errno.
 */
static int hosts_take(BrJobs *j, CmDb *db, const BrJobRow *job, CmError *err)
{
    _cleanup_free_ int64_t *hosts = NULL;
    int64_t blocker = 0;
    size_t n = 0;
    int r = br_job_hosts(db, job->id, &hosts, &n, err);

    if (r < 0)
        return r;
    pthread_mutex_lock(&j->lock);
    r = br_host_locks_acquire(&j->host_locks, job->id, hosts, n, cm_now_ms());
    for (size_t i = 0; r == 0 && i < n && !blocker; i++)
        blocker = br_host_locks_holder(&j->host_locks, hosts[i]);
    pthread_mutex_unlock(&j->lock);
    if (r == 0 && blocker)
        cm_log_debug("job %lld waits for its %zu hosts: job %lld holds one", (long long)job->id, n,
                     (long long)blocker);
    else if (r == 0)
        cm_log_debug("job %lld waits for its %zu hosts: an older job waits for one",
                     (long long)job->id, n);
    if (r == -ENOMEM)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    return r;
}

static void wake_workers(BrJobs *j)
{
    cm_worker_wake(atomic_load(&j->workers));
}

static void hosts_release(BrJobs *j, int64_t job_id)
{
    pthread_mutex_lock(&j->lock);
    br_host_locks_release(&j->host_locks, job_id);
    pthread_mutex_unlock(&j->lock);
    wake_workers(j);
}

/* ---- recording: each in a transaction of its own ---- */

typedef struct {
    BrJobs *j;
    const BrJobRow *job;
    const BrStepRow *step;
    const BrStepOutcome *out;
    const char *why, *when;
} JobWrite;

static int job_started_tx(BrTx *tx, void *ctx)
{
    JobWrite *w = ctx;
    return br_job_set_running(tx->db, w->job->id, tx->err);
}

static int job_ended_tx(BrTx *tx, void *ctx)
{
    JobWrite *w = ctx;
    return br_job_set_done(tx->db, w->job->id, tx->err);
}

static int step_started_tx(BrTx *tx, void *ctx)
{
    JobWrite *w = ctx;
    return br_job_step_start(tx->db, w->job->id, w->step->seq, tx->err);
}

/* The step is done, and its instance's new state and sizes are recorded with it. */
static int step_done_tx(BrTx *tx, void *ctx)
{
    JobWrite *w = ctx;
    const BrInstanceSizes *s = &w->out->sizes;
    int r = br_job_step_done(tx->db, w->job->id, w->step->seq, tx->err);

    if (r < 0 || !w->step->instance_id)
        return r;
    if (w->out->instance_state >= 0)
        r = br_instance_set_state(tx->db, w->step->instance_id,
                                  (BrInstanceState)w->out->instance_state, tx->err);
    if (r >= 0 && (s->vcpus >= 0 || s->memory_mib >= 0 || s->disk_gib >= 0 || s->max_vcpus >= 0 ||
                   s->max_memory_mib >= 0))
        r = br_instance_resize(tx->db, w->step->instance_id, s, tx->err);
    return r;
}

static int step_wait_tx(BrTx *tx, void *ctx)
{
    JobWrite *w = ctx;
    return br_job_step_wait(tx->db, w->job->id, w->why, w->when, tx->err);
}

/* A permanent failure: the step, the job, and what the job worked for, in one transaction. */
static int job_failed_tx(BrTx *tx, void *ctx)
{
    JobWrite *w = ctx;
    _cleanup_json_ json_object *detail = json_object_new_object();
    int r = br_job_fail(tx->db, w->job->id, w->step ? w->step->seq : -1, w->why, tx->err);

    if (r >= 0 && w->j->cb.fail)
        r = w->j->cb.fail(w->j->ctx, tx, w->job, w->why);
    if (r < 0)
        return r;
    json_object_object_add(detail, "error", json_object_new_string(w->why));
    return br_tx_audit(tx, "job.error", "job", w->job->id, "error",
                       cm_json_to_string(detail, NULL));
}

static int job_write(BrJobs *j, const char *name, BrTxFn fn, JobWrite *w, CmError *err)
{
    int r = br_tx_run(j->store, name, NULL, fn, w, err);
    if (r < 0)
        cm_log_error("job %lld: cannot record %s: %s", (long long)w->job->id, name, err->message);
    return r;
}

static void job_fail(BrJobs *j, const BrJobRow *job, const BrStepRow *step, const char *why)
{
    JobWrite w = {.j = j, .job = job, .step = step, .why = why};
    CmError err = {0};

    cm_log_error("job %lld (%s): step %d %s failed: %s", (long long)job->id,
                 br_job_kind_to_string(job->kind), step ? step->seq : -1,
                 step ? br_step_action_to_string(step->action) : "-", why);
    if (job_write(j, "job.error", job_failed_tx, &w, &err) >= 0)
        atomic_fetch_add(&j->failed, 1);
}

static int64_t seconds_since(const char *iso)
{
    int64_t t;
    if (!iso || !*iso || cm_time_parse_iso(iso, &t) < 0)
        return 0;
    return (cm_now_ms() - t) / 1000;
}

/*
 * Runs @job's steps until it ends, waits for a host, or must be retried later.
 * Returns: 0, or -EIO when the database failed it (the worker then pauses, rather than spin
 * on the same job).
 */
static int run_job(BrJobs *j, CmDb *db, BrJobRow *job)
{
    JobWrite w = {.j = j, .job = job};
    CmError err = {0};

    if (job->state == BR_JOB_QUEUED) {
        if (job_write(j, "job.start", job_started_tx, &w, &err) < 0)
            return -EIO;
        job->state = BR_JOB_RUNNING;
        cm_time_iso(cm_now_ms(), job->started_at);
        cm_log_info("job %lld (%s) started", (long long)job->id, br_job_kind_to_string(job->kind));
    }

    while (!atomic_load(&j->stopping)) {
        BrStepOutcome out = {.instance_state = -1, .sizes = BR_INSTANCE_SIZES_KEEP};
        BrStepRow step;
        int r;

        cm_error_clear(&err);
        r = br_job_next_step(db, job->id, &step, &err);
        if (r < 0) {
            cm_log_error("job %lld: cannot read its next step: %s", (long long)job->id,
                         err.message);
            return -EIO;
        }
        if (r == 0) {
            /* Every step is done (the finish step ends the job in its transaction). */
            r = job_write(j, "job.end", job_ended_tx, &w, &err);
            hosts_release(j, job->id);
            return r < 0 ? -EIO : 0;
        }
        w.step = &step;
        if (step.host_id && !host_held(j, step.host_id, job->id)) {
            r = hosts_take(j, db, job, &err);
            if (r < 0)
                cm_log_error("job %lld: cannot take its hosts: %s", (long long)job->id,
                             err.message);
            /* Else another job works on one of its hosts: the job waits, holding none, and
             * is run again as soon as its hosts are free (claim_next asks the table). */
            if (r <= 0)
                return r < 0 ? -EIO : 0;
        }
        if (job_write(j, "job.step_start", step_started_tx, &w, &err) < 0) {
            hosts_release(j, job->id);
            return -EIO;
        }

        cm_error_clear(&err);
        r = j->cb.run_step(j->ctx, job, &step, &out, &err);
        if (r == BR_STEP_RESULT_RECORDED && step.action == BR_STEP_FINISH) {
            atomic_fetch_add(&j->done, 1);
            hosts_release(j, job->id);
            cm_log_info("job %lld (%s) done", (long long)job->id, br_job_kind_to_string(job->kind));
            return 0;
        }
        if (r == BR_STEP_RESULT_RECORDED)
            continue;
        if (r >= 0) {
            CmError werr = {0};
            w.out = &out;
            if (job_write(j, "job.step_done", step_done_tx, &w, &werr) < 0) {
                hosts_release(j, job->id);
                return -EIO;
            }
            continue;
        }
        hosts_release(j, job->id);
        if (r == -EAGAIN && j->cb.retry_seconds &&
            seconds_since(job->started_at) < j->cb.retry_seconds(j->ctx)) {
            /* The host is away, or nothing fits: keep the job, try again with backoff. */
            int64_t delay = 1LL << (step.attempts < 6 ? step.attempts : 6);
            char when[CM_TIME_ISO_LEN + 1], why[sizeof(err.message)];
            cm_time_iso(cm_now_ms() + delay * 1000, when);
            cm_strscpy(why, sizeof(why), err.message);
            cm_log_warning("job %lld: step %s will be retried in %llds: %s", (long long)job->id,
                           br_step_action_to_string(step.action), (long long)delay, why);
            w.why = why;
            w.when = when;
            return job_write(j, "job.step_wait", step_wait_tx, &w, &err) < 0 ? -EIO : 0;
        }
        job_fail(j, job, &step, cm_error_is_set(&err) ? err.message : "step failed");
        return 0;
    }
    return 0;
}

/* ---- the workers ---- */

static bool executing(BrJobs *j, int64_t id)
{
    for (size_t i = 0; i < j->n_executing; i++)
        if (j->executing[i] == id)
            return true;
    return false;
}

static void unclaim(BrJobs *j, int64_t id)
{
    pthread_mutex_lock(&j->lock);
    for (size_t i = 0; i < j->n_executing; i++)
        if (j->executing[i] == id) {
            j->executing[i] = j->executing[--j->n_executing];
            break;
        }
    pthread_mutex_unlock(&j->lock);
    wake_workers(j);
}

/* Picks the oldest runnable job nobody is running and claims it. A job waiting for its hosts
 * is runnable once the host table could give them all to it; the release of hosts wakes the
 * workers, so it runs at once, without polling the database. */
static bool claim_next(BrJobs *j, CmDb *db, BrJobRow *ret)
{
    char now[CM_TIME_ISO_LEN + 1];
    _cleanup_free_ BrJobRow *jobs = NULL;
    CmError err = {0};
    bool found = false;
    size_t n = 0;

    cm_time_iso(cm_now_ms(), now);
    if (br_job_runnable(db, now, &jobs, &n, &err) < 0) {
        cm_log_error("job worker: %s", err.message);
        return false;
    }
    pthread_mutex_lock(&j->lock);
    for (size_t i = 0; i < n && !found && j->n_executing < MAX_EXECUTING; i++) {
        /* Waiting for hosts another job holds (or an older one waits for): not yet. */
        if (executing(j, jobs[i].id) ||
            br_host_locks_must_wait(&j->host_locks, jobs[i].id, cm_now_ms()))
            continue;
        *ret = jobs[i];
        j->executing[j->n_executing++] = jobs[i].id;
        found = true;
    }
    pthread_mutex_unlock(&j->lock);
    return found;
}

/* One pass of a worker: one job run as far as it goes. */
static int64_t worker_pass(void *ctx)
{
    BrJobs *j = ctx;
    CmError err = {0};
    CmDb *db = br_store_db(j->store, &err);
    BrJobRow job;
    int r;

    if (!db) {
        cm_log_error("job worker: %s", err.message);
        return IDLE_MS;
    }
    if (atomic_load(&j->stopping) || !claim_next(j, db, &job))
        return IDLE_MS;
    r = run_job(j, db, &job);
    unclaim(j, job.id);
    return r < 0 ? IDLE_MS : 0;
}

static int64_t sweeper_pass(void *ctx)
{
    BrJobs *j = ctx;
    if (j->cb.sweep(j->ctx) > 0)
        br_jobs_kick(j);
    return SWEEP_INTERVAL_MS;
}

static int recover_tx(BrTx *tx, void *ctx)
{
    (void)ctx;
    return br_job_recover(tx->db, tx->err);
}

int br_jobs_start(BrStore *store, const BrJobCallbacks *cb, void *ctx, unsigned workers,
                  BrJobs **ret, CmError *err)
{
    CmWorkerConfig wc = {.name = "job worker",
                         .threads = workers > MAX_WORKERS ? MAX_WORKERS : workers,
                         .run = worker_pass};
    CmWorker *w = NULL;
    BrJobs *j;
    int r;

    /* Recovery: a step that was running when we stopped runs again (steps are idempotent). */
    r = br_tx_run(store, "jobs.recover", NULL, recover_tx, NULL, err);
    if (r < 0)
        return r;
    j = calloc(1, sizeof(*j));
    if (!j)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    *j = (BrJobs){.store = store, .cb = *cb, .ctx = ctx};
    pthread_mutex_init(&j->lock, NULL);
    wc.ctx = j;
    if (cb->sweep) {
        CmWorkerConfig sc = {.name = "job sweeper", .run = sweeper_pass, .ctx = j};
        r = cm_worker_start(&sc, &j->sweeper, err);
    }
    if (r >= 0 && workers)
        r = cm_worker_start(&wc, &w, err);
    atomic_store(&j->workers, w);
    if (r < 0) {
        br_jobs_stop(j);
        return r;
    }
    *ret = j;
    return 0;
}

BrJobs *br_jobs_stop(BrJobs *j)
{
    if (!j)
        return NULL;
    atomic_store(&j->stopping, true);
    j->sweeper = cm_worker_stop(j->sweeper);
    cm_worker_stop(atomic_exchange(&j->workers, NULL));
    pthread_mutex_destroy(&j->lock);
    br_host_locks_clear(&j->host_locks);
    free(j);
    return NULL;
}

void br_jobs_kick(BrJobs *j)
{
    if (j)
        wake_workers(j);
}

void br_jobs_counts(BrJobs *j, uint64_t *ret_done, uint64_t *ret_failed)
{
    *ret_done = j ? atomic_load(&j->done) : 0;
    *ret_failed = j ? atomic_load(&j->failed) : 0;
}
