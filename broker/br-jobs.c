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
#define ELSEWHERE_WAIT_MS 1000 /* a host claimed by another broker's job: look again after */

/* How run_job() ended, for what the worker does with the job's lease. */
typedef enum {
    RUN_RELEASE,   /* ended, failed, or waits: the lease is given up */
    RUN_ELSEWHERE, /* a host is another broker's: given up, not claimed again for a second */
    RUN_LOST,      /* the lease was taken over: nothing of the job is ours any more */
} RunEnd;

struct BrJobs {
    BrStore *store;
    BrJobCallbacks cb;
    void *ctx;
    char node[BR_JOB_NODE_MAX];
    bool leases; /* several brokers: jobs are claimed with leases in the database */
    int64_t lease_ms;
    CmWorker *renewer;
    pthread_mutex_t lock; /* executing, host_locks */
    int64_t executing[MAX_EXECUTING];
    size_t n_executing;
    BrHostLocks host_locks;
    atomic_bool stopping;
    _Atomic(CmWorker *) workers; /* NULL until they all started */
    CmWorker *sweeper;
    atomic_uint_fast64_t done, failed, takeovers, lost;
};

static BrJobLease lease_now(BrJobs *j)
{
    return (BrJobLease){.node = j->node, .now_ms = cm_now_ms(), .lease_ms = j->lease_ms};
}

/* Every write of a job's progress first extends its lease, and is refused when the lease was
 * taken over (by another broker, after this one could not renew it in time): the lease is
 * the fence that keeps two brokers from recording the same job. */
static int lease_hold(BrJobs *j, BrTx *tx, int64_t job_id)
{
    BrJobLease l = lease_now(j);
    int r;

    if (!j->leases)
        return 0;
    r = br_job_lease_hold(tx->db, job_id, &l, tx->err);

    if (r == 0)
        return cm_error_set_code(tx->err, CM_ERROR_CONFLICT, "lease_lost", "",
                                 "the lease of job %lld was taken over", (long long)job_id);
    return r < 0 ? r : 0;
}

/* ---- host locks: one job at a time per host, all of a job's hosts at once ---- */

static bool host_held(BrJobs *j, int64_t host_id, int64_t job_id)
{
    pthread_mutex_lock(&j->lock);
    bool held = br_host_locks_holds(&j->host_locks, job_id, host_id);
    pthread_mutex_unlock(&j->lock);
    return held;
}

typedef struct {
    BrJobs *j;
    int64_t job_id;
    const int64_t *hosts;
    size_t n;
} HostClaim;

static int hosts_claim_tx(BrTx *tx, void *ctx)
{
    HostClaim *h = ctx;
    BrJobLease l = lease_now(h->j);
    int r = lease_hold(h->j, tx, h->job_id);

    return r < 0 ? r : br_job_hosts_claim(tx->db, h->job_id, &l, h->hosts, h->n, tx->err);
}

/*
 * Takes every host that the job's remaining steps act on, or none (br-hostlock.h says why:
 * no job holds a host while it waits for another, and the oldest waiting job goes first):
 * first in this broker's table, then in the database's host_claims, which holds across
 * brokers for as long as the job's lease lives. The set is read afresh each time: it is known
 * once the reserve step has placed the instances, and only shrinks as steps are done.
 * Returns: 1 when the job holds them all, 0 when it must wait for a job of this broker,
 * -EBUSY when a job of another broker holds one, or another negative errno (-EEXIST with
 * code lease_lost: the lease was taken over).
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
    if (r <= 0 || !j->leases)
        return r;
    r = br_tx_run(j->store, "job.hosts", NULL, hosts_claim_tx,
                  &(HostClaim){.j = j, .job_id = job->id, .hosts = hosts, .n = n}, err);
    if (r == -EBUSY)
        cm_log_debug("job %lld waits for its %zu hosts: %s", (long long)job->id, n, err->message);
    return r < 0 ? r : 1;
}

static void wake_workers(BrJobs *j)
{
    cm_worker_wake(atomic_load(&j->workers));
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
    int r = lease_hold(w->j, tx, w->job->id);
    return r < 0 ? r : br_job_set_running(tx->db, w->job->id, tx->err);
}

static int job_ended_tx(BrTx *tx, void *ctx)
{
    JobWrite *w = ctx;
    int r = lease_hold(w->j, tx, w->job->id);
    return r < 0 ? r : br_job_set_done(tx->db, w->job->id, tx->err);
}

static int step_started_tx(BrTx *tx, void *ctx)
{
    JobWrite *w = ctx;
    int r = lease_hold(w->j, tx, w->job->id);
    return r < 0 ? r : br_job_step_start(tx->db, w->job->id, w->step->seq, w->j->node, tx->err);
}

/* The step is done, and its instance's new state and sizes are recorded with it. */
static int step_done_tx(BrTx *tx, void *ctx)
{
    JobWrite *w = ctx;
    const BrInstanceSizes *s = &w->out->sizes;
    int r = lease_hold(w->j, tx, w->job->id);

    if (r >= 0)
        r = br_job_step_done(tx->db, w->job->id, w->step->seq, tx->err);

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
    int r = lease_hold(w->j, tx, w->job->id);
    return r < 0 ? r : br_job_step_wait(tx->db, w->job->id, w->why, w->when, tx->err);
}

/* A permanent failure: the step, the job, and what the job worked for, in one transaction. */
static int job_failed_tx(BrTx *tx, void *ctx)
{
    JobWrite *w = ctx;
    _cleanup_json_ json_object *detail = json_object_new_object();
    int r = lease_hold(w->j, tx, w->job->id);

    if (r >= 0)
        r = br_job_fail(tx->db, w->job->id, w->step ? w->step->seq : -1, w->why, tx->err);
    if (r >= 0 && w->j->cb.fail)
        r = w->j->cb.fail(w->j->ctx, tx, w->job, w->why);
    if (r < 0)
        return r;
    json_object_object_add(detail, "error", json_object_new_string(w->why));
    return br_tx_audit(tx, "job.error", "job", w->job->id, "error",
                       cm_json_to_string(detail, NULL));
}

static bool lease_lost(const CmError *err)
{
    return cm_streq(err->code, "lease_lost");
}

static int job_write(BrJobs *j, const char *name, BrTxFn fn, JobWrite *w, CmError *err)
{
    int r = br_tx_run(j->store, name, NULL, fn, w, err);
    if (r < 0 && lease_lost(err))
        cm_log_warning("job %lld: not recording %s: %s; another broker runs it now",
                       (long long)w->job->id, name, err->message);
    else if (r < 0)
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

/* What the worker does with the lease after a failed write: -EIO pauses the worker. */
static int write_failed(BrJobs *j, const CmError *err)
{
    if (lease_lost(err)) {
        atomic_fetch_add(&j->lost, 1);
        return RUN_LOST;
    }
    return -EIO;
}

static int64_t seconds_since(const char *iso)
{
    int64_t t;
    if (!iso || !*iso || cm_time_parse_iso(iso, &t) < 0)
        return 0;
    return (cm_now_ms() - t) / 1000;
}

/*
 * Runs @job's steps until it ends, waits for a host, or must be retried later. The caller
 * holds the job's lease, and gives back the job's hosts and lease afterwards.
 * Returns: a RunEnd, or -EIO when the database failed it (the worker then pauses, rather than
 * spin on the same job).
 */
static int run_job(BrJobs *j, CmDb *db, BrJobRow *job)
{
    JobWrite w = {.j = j, .job = job};
    CmError err = {0};

    if (job->state == BR_JOB_QUEUED) {
        if (job_write(j, "job.start", job_started_tx, &w, &err) < 0)
            return write_failed(j, &err);
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
            if (job_write(j, "job.end", job_ended_tx, &w, &err) < 0)
                return write_failed(j, &err);
            return RUN_RELEASE;
        }
        w.step = &step;
        if (step.host_id && !host_held(j, step.host_id, job->id)) {
            r = hosts_take(j, db, job, &err);
            if (r == -EBUSY)
                return RUN_ELSEWHERE;
            if (r < 0 && lease_lost(&err))
                return write_failed(j, &err);
            if (r < 0)
                cm_log_error("job %lld: cannot take its hosts: %s", (long long)job->id,
                             err.message);
            /* Else another job works on one of its hosts: the job waits, holding none, and
             * is run again as soon as its hosts are free (claim_next asks the table). */
            if (r <= 0)
                return r < 0 ? -EIO : RUN_RELEASE;
        }
        if (job_write(j, "job.step_start", step_started_tx, &w, &err) < 0)
            return write_failed(j, &err);

        cm_error_clear(&err);
        r = j->cb.run_step(j->ctx, job, &step, &out, &err);
        if (r == BR_STEP_RESULT_RECORDED && step.action == BR_STEP_FINISH) {
            atomic_fetch_add(&j->done, 1);
            cm_log_info("job %lld (%s) done", (long long)job->id, br_job_kind_to_string(job->kind));
            return RUN_RELEASE;
        }
        if (r == BR_STEP_RESULT_RECORDED)
            continue;
        if (r >= 0) {
            CmError werr = {0};
            w.out = &out;
            if (job_write(j, "job.step_done", step_done_tx, &w, &werr) < 0)
                return write_failed(j, &werr);
            continue;
        }
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
            if (job_write(j, "job.step_wait", step_wait_tx, &w, &err) < 0)
                return write_failed(j, &err);
            return RUN_RELEASE;
        }
        job_fail(j, job, &step, cm_error_is_set(&err) ? err.message : "step failed");
        return RUN_RELEASE;
    }
    return RUN_RELEASE;
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

/* Not now: a job this broker runs (its lease ended while a step ran long), or one that waits
 * for hosts another job of this broker holds (or an older one waits for). */
static bool claim_skip(void *ctx, int64_t job_id)
{
    BrJobs *j = ctx;
    bool skip;

    pthread_mutex_lock(&j->lock);
    skip = executing(j, job_id) || j->n_executing >= MAX_EXECUTING ||
           br_host_locks_must_wait(&j->host_locks, job_id, cm_now_ms());
    pthread_mutex_unlock(&j->lock);
    return skip;
}

typedef struct {
    BrJobs *j;
    const char *now;
    BrJobRow *job;
    char previous[BR_JOB_NODE_MAX];
} Claim;

static int claim_tx(BrTx *tx, void *ctx)
{
    Claim *c = ctx;
    BrJobLease l = lease_now(c->j);
    _cleanup_json_ json_object *detail = NULL;
    int r = br_job_claim(tx->db, &l, c->now, claim_skip, c->j, c->job, c->previous,
                         sizeof(c->previous), tx->err);

    if (r <= 0)
        return r;
    pthread_mutex_lock(&c->j->lock);
    c->j->executing[c->j->n_executing++] = c->job->id;
    pthread_mutex_unlock(&c->j->lock);
    if (!c->previous[0] || cm_streq(c->previous, c->j->node))
        return 1;
    /* The broker that held it stopped renewing its lease: it died or lost the database. */
    detail = json_object_new_object();
    json_object_object_add(detail, "from", json_object_new_string(c->previous));
    json_object_object_add(detail, "to", json_object_new_string(c->j->node));
    r = br_tx_audit(tx, "job.takeover", "job", c->job->id, "running",
                    cm_json_to_string(detail, NULL));
    return r < 0 ? r : 1;
}

/* Picks the oldest runnable job nobody runs and claims its lease. A job waiting for its hosts
 * is runnable once the host table could give them all to it; the release of hosts wakes the
 * workers, so it runs at once, without polling the database. The claim is a write: it is
 * made only when a read found a candidate. */
static bool claim_next(BrJobs *j, CmDb *db, BrJobRow *ret)
{
    char now[CM_TIME_ISO_LEN + 1];
    _cleanup_free_ BrJobRow *jobs = NULL;
    Claim c = {.j = j, .now = now, .job = ret};
    CmError err = {0};
    bool any = false;
    size_t n = 0;
    int r;

    cm_time_iso(cm_now_ms(), now);
    if (br_job_runnable(db, now, cm_now_ms(), &jobs, &n, &err) < 0) {
        cm_log_error("job worker: %s", err.message);
        return false;
    }
    for (size_t i = 0; i < n && !any; i++)
        if (!claim_skip(j, jobs[i].id)) {
            any = true;
            *ret = jobs[i];
        }
    if (!any)
        return false;
    if (!j->leases) {
        /* The only broker: the table of the jobs it runs is the whole claim. */
        pthread_mutex_lock(&j->lock);
        any = !executing(j, ret->id) && j->n_executing < MAX_EXECUTING;
        if (any)
            j->executing[j->n_executing++] = ret->id;
        pthread_mutex_unlock(&j->lock);
        return any;
    }
    r = br_tx_run(j->store, "job.claim", NULL, claim_tx, &c, &err);
    if (r < 0)
        cm_log_error("job worker: cannot claim a job: %s", err.message);
    if (r > 0 && c.previous[0] && !cm_streq(c.previous, j->node)) {
        atomic_fetch_add(&j->takeovers, 1);
        cm_log_notice("job %lld (%s): taken over from %s, whose lease ended", (long long)ret->id,
                      br_job_kind_to_string(ret->kind), c.previous);
    }
    return r > 0;
}

typedef struct {
    BrJobs *j;
    int64_t job_id;
    const char *not_before;
} Release;

static int release_tx(BrTx *tx, void *ctx)
{
    Release *rel = ctx;
    return br_job_lease_release(tx->db, rel->job_id, rel->j->node, rel->not_before, tx->err);
}

/* After run_job(): the job's hosts and (unless it was taken over) its lease go back. */
static void release(BrJobs *j, int64_t job_id, int how)
{
    char when[CM_TIME_ISO_LEN + 1];
    Release rel = {.j = j, .job_id = job_id};
    CmError err = {0};

    pthread_mutex_lock(&j->lock);
    br_host_locks_release(&j->host_locks, job_id);
    pthread_mutex_unlock(&j->lock);
    if (how == RUN_ELSEWHERE) {
        cm_time_iso(cm_now_ms() + ELSEWHERE_WAIT_MS, when);
        rel.not_before = when;
    }
    if (j->leases && how != RUN_LOST &&
        br_tx_run(j->store, "job.release", NULL, release_tx, &rel, &err) < 0)
        cm_log_warning("job %lld: cannot give its lease back (it ends by itself): %s",
                       (long long)job_id, err.message);
    unclaim(j, job_id);
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
    release(j, job.id, r);
    return r < 0 ? IDLE_MS : 0;
}

static int64_t sweeper_pass(void *ctx)
{
    BrJobs *j = ctx;
    if (j->cb.sweep(j->ctx) > 0)
        br_jobs_kick(j);
    return SWEEP_INTERVAL_MS;
}

static int renew_tx(BrTx *tx, void *ctx)
{
    BrJobs *j = ctx;
    BrJobLease l = lease_now(j);
    return br_job_lease_renew(tx->db, &l, tx->err);
}

/* The leases of the jobs this broker runs are renewed three times per lease, so that a step
 * that runs long (a graceful shutdown, a wipe) keeps its job. */
static int64_t renewer_pass(void *ctx)
{
    BrJobs *j = ctx;
    CmError err = {0};
    size_t n;

    pthread_mutex_lock(&j->lock);
    n = j->n_executing;
    pthread_mutex_unlock(&j->lock);
    if (n > 0 && br_tx_run(j->store, "job.lease", NULL, renew_tx, j, &err) < 0)
        cm_log_warning("job leases: cannot renew: %s", err.message);
    return j->lease_ms / 3;
}

typedef struct {
    const char *node;
} Recover;

static int recover_tx(BrTx *tx, void *ctx)
{
    Recover *rc = ctx;
    return br_job_recover(tx->db, rc->node, cm_now_ms(), tx->err);
}

int br_jobs_start(BrStore *store, const BrJobCallbacks *cb, void *ctx, const BrJobsOptions *o,
                  BrJobs **ret, CmError *err)
{
    CmWorkerConfig wc = {.name = "job worker",
                         .threads = o->workers > MAX_WORKERS ? MAX_WORKERS : o->workers,
                         .run = worker_pass};
    CmWorker *w = NULL;
    BrJobs *j;
    int r;

    if (!o->node || !*o->node || strlen(o->node) >= BR_JOB_NODE_MAX || o->lease_seconds < 3)
        return cm_error_set(err, CM_ERROR_INVALID, "", "a node name and a lease of 3 s or more");
    /* Recovery: a step that was running when we stopped runs again (steps are idempotent). */
    r = br_tx_run(store, "jobs.recover", NULL, recover_tx, &(Recover){o->node}, err);
    if (r < 0)
        return r;
    j = calloc(1, sizeof(*j));
    if (!j)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    *j = (BrJobs){.store = store,
                  .cb = *cb,
                  .ctx = ctx,
                  .leases = o->leases,
                  .lease_ms = o->lease_seconds * 1000};
    cm_strscpy(j->node, sizeof(j->node), o->node);
    pthread_mutex_init(&j->lock, NULL);
    wc.ctx = j;
    if (cb->sweep) {
        CmWorkerConfig sc = {.name = "job sweeper", .run = sweeper_pass, .ctx = j};
        r = cm_worker_start(&sc, &j->sweeper, err);
    }
    if (r >= 0 && o->leases) {
        CmWorkerConfig lc = {
            .name = "job lease", .run = renewer_pass, .ctx = j, .first_delay_ms = j->lease_ms / 3};
        r = cm_worker_start(&lc, &j->renewer, err);
    }
    if (r >= 0 && o->workers)
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
    j->renewer = cm_worker_stop(j->renewer);
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

void br_jobs_lease_counts(BrJobs *j, uint64_t *ret_taken_over, uint64_t *ret_lost,
                          unsigned *ret_running)
{
    *ret_taken_over = j ? atomic_load(&j->takeovers) : 0;
    *ret_lost = j ? atomic_load(&j->lost) : 0;
    *ret_running = 0;
    if (j) {
        pthread_mutex_lock(&j->lock);
        *ret_running = (unsigned)j->n_executing;
        pthread_mutex_unlock(&j->lock);
    }
}
