/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The job engine (br-jobs.c) with a fake step runner given through its callback struct, on a
 * real store: steps run in order and are recorded with what they changed, a failure ends the
 * job through the failure handler in one transaction, "try later" waits and tries again until
 * the retry window closes, one job at a time works on a host, the sweeper's jobs run, and an
 * interrupted job resumes after a restart. Leases (several brokers on one database): of two
 * claimers only one gets a job, a lease that ended is taken over and the old holder's writes
 * are refused, a live lease keeps the job from another engine until it ends, and two engines
 * on one PostgreSQL database run every step once. On SQLite, and on PostgreSQL with
 * CB_TEST_PG_URL.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "br-allocation.h"
#include "br-instance.h"
#include "br-jobs.h"
#include "cbt-store.h"
#include "cm-time.h"
#include "cm-util.h"

/* Step arguments that tell the fake runner what to do. */
#define ARG_FAIL 99 /* fails for good */
#define ARG_LATER 7 /* "try later" while Fake.later_left > 0 */
#define MAX_LOG 128

typedef struct {
    CbtStore s;
    BrJobs *jobs;
    pthread_mutex_t lock;
    struct {
        int64_t job, host;
        int seq;
        BrStepAction action;
        int64_t at_ms;
    } log[MAX_LOG];
    size_t n_log;
    atomic_int busy[3]; /* steps running on host 1 and 2 */
    atomic_bool overlap;
    atomic_int later_left;
    int64_t retry_seconds;
    atomic_int fails, sweeps;
    char fail_reason[128];
    int64_t fail_job, sweep_job;
    bool sweep_makes_job;
    int64_t alloc, inst[3]; /* instances 1 and 2 on hosts 1 and 2, 0 unused */
} Fake;

/* ---- the fake workflow ---- */

typedef struct {
    const BrJobRow *job;
    int seq;
} FinishCtx;

static int finish_tx(BrTx *tx, void *ctx)
{
    FinishCtx *f = ctx;
    int r = br_job_step_done(tx->db, f->job->id, f->seq, tx->err);
    return r < 0 ? r : br_job_set_done(tx->db, f->job->id, tx->err);
}

static int fake_run_step(void *ctx, const BrJobRow *job, const BrStepRow *step, BrStepOutcome *out,
                         CmError *err)
{
    Fake *f = ctx;
    int r = 0;

    pthread_mutex_lock(&f->lock);
    if (f->n_log < MAX_LOG)
        f->log[f->n_log++] =
            (typeof(f->log[0])){job->id, step->host_id, step->seq, step->action, cm_now_ms()};
    pthread_mutex_unlock(&f->lock);
    if (step->action == BR_STEP_FINISH) {
        FinishCtx fc = {job, step->seq};
        r = br_tx_run(f->s.store, "test.finish", NULL, finish_tx, &fc, err);
        return r < 0 ? r : BR_STEP_RESULT_RECORDED;
    }
    if (step->host_id > 0 && step->host_id < 3) {
        if (atomic_fetch_add(&f->busy[step->host_id], 1) > 0)
            atomic_store(&f->overlap, true);
        usleep(20000);
        atomic_fetch_sub(&f->busy[step->host_id], 1);
    }
    if (step->arg == ARG_FAIL)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "disk on fire");
    if (step->arg == ARG_LATER && atomic_fetch_sub(&f->later_left, 1) > 0) {
        cm_error_set(err, CM_ERROR_UNAVAILABLE, "", "host away");
        return -EAGAIN;
    }
    if (step->action == BR_STEP_CREATE_VOLUME)
        out->instance_state = BR_INSTANCE_CREATED;
    if (step->action == BR_STEP_SET_VCPUS)
        out->sizes.vcpus = step->arg;
    return 0;
}

static int fake_fail(void *ctx, BrTx *tx, const BrJobRow *job, const char *reason)
{
    Fake *f = ctx;
    BrAllocationRow a;
    int r = br_allocation_load(tx->db, job->allocation_id, &a, tx->err);

    atomic_fetch_add(&f->fails, 1);
    snprintf(f->fail_reason, sizeof(f->fail_reason), "%s", reason);
    f->fail_job = job->id;
    if (r < 0)
        return r;
    /* Written in the failure's transaction: it is kept with it. */
    return br_allocation_set_state(tx->store, tx->db, tx->actor, a.id, a.state,
                                   BR_ALLOCATION_STATE_ERROR, "allocation.job", reason, tx->err);
}

typedef struct {
    Fake *f;
    BrJobKind kind;
    const BrStepSpec *steps;
    size_t n;
    int64_t id;
} MakeJob;

static int make_job_tx(BrTx *tx, void *ctx)
{
    MakeJob *m = ctx;
    _cleanup_(br_step_list_clear) BrStepList l = {0};

    for (size_t i = 0; i < m->n; i++)
        if (br_step_list_add(&l, m->steps[i].action, m->steps[i].instance_id, m->steps[i].arg,
                             m->steps[i].spec) < 0)
            return -ENOMEM;
    return br_job_create(tx->store, tx->db, tx->actor, m->kind, 0, m->f->alloc, &l, &m->id,
                         tx->err);
}

static int64_t make_job(Fake *f, const BrStepSpec *steps, size_t n)
{
    MakeJob m = {f, BR_JOB_PROVISION, steps, n, 0};
    CmError err = {0};
    assert_int_equal(br_tx_run(f->s.store, "test.job", NULL, make_job_tx, &m, &err), 0);
    return m.id;
}

static int fake_sweep(void *ctx)
{
    Fake *f = ctx;
    if (atomic_fetch_add(&f->sweeps, 1) == 0 && f->sweep_makes_job) {
        const BrStepSpec steps[] = {{BR_STEP_START, f->inst[1], 0, NULL},
                                    {BR_STEP_FINISH, 0, 0, NULL}};
        f->sweep_job = make_job(f, steps, ELEMENTSOF(steps));
        return 1;
    }
    return 0;
}

static int64_t fake_retry_seconds(void *ctx)
{
    return ((Fake *)ctx)->retry_seconds;
}

static const BrJobCallbacks fake_callbacks = {
    .run_step = fake_run_step,
    .fail = fake_fail,
    .sweep = fake_sweep,
    .retry_seconds = fake_retry_seconds,
};

/* ---- fixture ---- */

static int setup_instances_tx(BrTx *tx, void *ctx)
{
    Fake *f = ctx;
    BrInstanceSizes sizes = {2, 1024, 10, 4, 2048};
    int r = br_allocation_create(tx->db, 1, 1, 1, false, &f->alloc, tx->err);

    for (unsigned i = 1; r >= 0 && i < 3; i++) {
        r = br_instance_create(tx->db, f->alloc, i, &sizes, "debian-12", &f->inst[i], tx->err);
        if (r >= 0)
            r = br_instance_place(tx->db, f->inst[i], i, "default", tx->err);
    }
    return r;
}

static int setup(void **state)
{
    bool pg = *(const bool *)*state;
    Fake *f = calloc(1, sizeof(*f));
    CmError err = {0};
    int r;

    pthread_mutex_init(&f->lock, NULL);
    f->retry_seconds = 3600;
    *state = f;
    r = cbt_store_open(&f->s, pg, "jobs");
    if (r <= 0)
        return r < 0 ? -1 : 0;
    return br_tx_run(f->s.store, "test.setup", NULL, setup_instances_tx, f, &err) < 0 ? -1 : 0;
}

static int teardown(void **state)
{
    Fake *f = *state;
    f->jobs = br_jobs_stop(f->jobs);
    cbt_store_close(&f->s);
    pthread_mutex_destroy(&f->lock);
    free(f);
    return 0;
}

#define FIXTURE(state)                                                                             \
    ({                                                                                             \
        Fake *f_ = *(state);                                                                       \
        if (!f_->s.store)                                                                          \
            skip();                                                                                \
        f_;                                                                                        \
    })

static void start(Fake *f, unsigned workers)
{
    CmError err = {0};
    BrJobsOptions o = {
        .workers = workers, .node = "test-a", .leases = f->s.pg, .lease_seconds = 30};
    assert_int_equal(br_jobs_start(f->s.store, &fake_callbacks, f, &o, &f->jobs, &err), 0);
    br_jobs_kick(f->jobs);
}

/* The job's state once it ended (done or error), waiting at most 10 s. */
static char *wait_end(Fake *f, int64_t job)
{
    for (int i = 0; i < 500; i++) {
        char *st = cbt_store_text(&f->s, "SELECT state FROM jobs WHERE id = ?1", 1, job);
        if (st && (strcmp(st, "done") == 0 || strcmp(st, "error") == 0))
            return st;
        free(st);
        usleep(20000);
    }
    return strdup("timeout");
}

static int64_t step_attempts(Fake *f, int64_t job, int seq)
{
    return cbt_store_int(&f->s, "SELECT attempts FROM job_steps WHERE job_id = ?1 AND seq = ?2", 2,
                         job, (int64_t)seq);
}

static char *step_state(Fake *f, int64_t job, int seq)
{
    return cbt_store_text(&f->s, "SELECT state FROM job_steps WHERE job_id = ?1 AND seq = ?2", 2,
                          job, (int64_t)seq);
}

/* ---- tests ---- */

static void test_steps_in_order(void **state)
{
    Fake *f = FIXTURE(state);
    const BrStepSpec steps[] = {{BR_STEP_CREATE_VOLUME, f->inst[1], 0, NULL},
                                {BR_STEP_SET_VCPUS, f->inst[1], 4, NULL},
                                {BR_STEP_FINISH, 0, 0, NULL}};
    int64_t job = make_job(f, steps, ELEMENTSOF(steps));
    _cleanup_free_ char *end = NULL, *istate = NULL;
    uint64_t done, failed;

    start(f, 2);
    end = wait_end(f, job);
    assert_string_equal(end, "done");
    assert_int_equal(f->n_log, 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(f->log[i].seq, i);
        assert_int_equal(f->log[i].action, steps[i].action);
        assert_int_equal(step_attempts(f, job, i), 1);
        _cleanup_free_ char *s = step_state(f, job, i);
        assert_string_equal(s, "done");
    }
    /* What each step changed is recorded with it. */
    istate = cbt_store_text(&f->s, "SELECT state FROM instances WHERE id = ?1", 1, f->inst[1]);
    assert_string_equal(istate, "created");
    assert_int_equal(
        cbt_store_int(&f->s, "SELECT vcpus FROM instances WHERE id = ?1", 1, f->inst[1]), 4);
    assert_int_equal(
        cbt_store_int(&f->s, "SELECT max_vcpus FROM instances WHERE id = ?1", 1, f->inst[1]), 4);
    br_jobs_counts(f->jobs, &done, &failed);
    assert_int_equal(done, 1);
    assert_int_equal(failed, 0);
    assert_int_equal(atomic_load(&f->fails), 0);
}

static void test_failure(void **state)
{
    Fake *f = FIXTURE(state);
    const BrStepSpec steps[] = {{BR_STEP_CREATE_VOLUME, f->inst[1], 0, NULL},
                                {BR_STEP_SET_VCPUS, f->inst[1], ARG_FAIL, NULL},
                                {BR_STEP_START, f->inst[1], 0, NULL},
                                {BR_STEP_FINISH, 0, 0, NULL}};
    int64_t job = make_job(f, steps, ELEMENTSOF(steps));
    _cleanup_free_ char *end = NULL, *error = NULL, *s1 = NULL, *s2 = NULL, *astate = NULL;
    uint64_t done, failed;

    start(f, 2);
    end = wait_end(f, job);
    assert_string_equal(end, "error");
    error = cbt_store_text(&f->s, "SELECT error FROM jobs WHERE id = ?1", 1, job);
    assert_string_equal(error, "disk on fire");
    s1 = step_state(f, job, 1);
    s2 = step_state(f, job, 2);
    assert_string_equal(s1, "error");
    assert_string_equal(s2, "pending");
    /* Nothing after the failed step ran; the handler was called once, in the transaction. */
    assert_int_equal(f->n_log, 2);
    assert_int_equal(atomic_load(&f->fails), 1);
    assert_int_equal(f->fail_job, job);
    assert_string_equal(f->fail_reason, "disk on fire");
    astate = cbt_store_text(&f->s, "SELECT state FROM allocations WHERE id = ?1", 1, f->alloc);
    assert_string_equal(astate, "error");
    assert_int_equal(cbt_store_int(&f->s,
                                   "SELECT count(*) FROM audit WHERE action = 'job.error'"
                                   " AND object_id = ?1",
                                   1, job),
                     1);
    br_jobs_counts(f->jobs, &done, &failed);
    assert_int_equal(done, 0);
    assert_int_equal(failed, 1);
}

static void test_try_later(void **state)
{
    Fake *f = FIXTURE(state);
    const BrStepSpec steps[] = {{BR_STEP_CREATE_VOLUME, f->inst[1], ARG_LATER, NULL},
                                {BR_STEP_FINISH, 0, 0, NULL}};
    int64_t job = make_job(f, steps, ELEMENTSOF(steps));
    _cleanup_free_ char *end = NULL;

    atomic_store(&f->later_left, 1);
    start(f, 2);
    end = wait_end(f, job);
    assert_string_equal(end, "done");
    /* Tried, put back with a retry time 1 s ahead, tried again, then finished. */
    assert_int_equal(f->n_log, 3);
    assert_int_equal(f->log[0].seq, 0);
    assert_int_equal(f->log[1].seq, 0);
    assert_true(f->log[1].at_ms - f->log[0].at_ms >= 900);
    assert_int_equal(step_attempts(f, job, 0), 2);
    assert_int_equal(atomic_load(&f->fails), 0);
}

static void test_try_later_window_over(void **state)
{
    Fake *f = FIXTURE(state);
    const BrStepSpec steps[] = {{BR_STEP_CREATE_VOLUME, f->inst[1], ARG_LATER, NULL},
                                {BR_STEP_FINISH, 0, 0, NULL}};
    int64_t job = make_job(f, steps, ELEMENTSOF(steps));
    _cleanup_free_ char *end = NULL;

    atomic_store(&f->later_left, 100);
    f->retry_seconds = 0;
    start(f, 1);
    end = wait_end(f, job);
    assert_string_equal(end, "error");
    assert_int_equal(atomic_load(&f->fails), 1);
    assert_string_equal(f->fail_reason, "host away");
}

/* Jobs whose instances share hosts: never two steps on one host at once, and a job's steps on
 * a host are never interleaved with another job's (it holds all its hosts until it ends). */
static void test_one_job_per_host(void **state)
{
    Fake *f = FIXTURE(state);
    const BrStepSpec a[] = {{BR_STEP_CREATE_VOLUME, f->inst[1], 0, NULL},
                            {BR_STEP_START, f->inst[1], 0, NULL},
                            {BR_STEP_FINISH, 0, 0, NULL}};
    const BrStepSpec b[] = {{BR_STEP_CREATE_VOLUME, f->inst[2], 0, NULL},
                            {BR_STEP_START, f->inst[1], 0, NULL},
                            {BR_STEP_START, f->inst[2], 0, NULL},
                            {BR_STEP_FINISH, 0, 0, NULL}};
    const BrStepSpec c[] = {{BR_STEP_DEFINE, f->inst[2], 0, NULL},
                            {BR_STEP_START, f->inst[2], 0, NULL},
                            {BR_STEP_FINISH, 0, 0, NULL}};
    int64_t jobs[6];
    uint64_t done, failed;

    for (int i = 0; i < 2; i++) {
        jobs[3 * i] = make_job(f, a, ELEMENTSOF(a));
        jobs[3 * i + 1] = make_job(f, b, ELEMENTSOF(b));
        jobs[3 * i + 2] = make_job(f, c, ELEMENTSOF(c));
    }
    start(f, 4);
    for (size_t i = 0; i < ELEMENTSOF(jobs); i++) {
        _cleanup_free_ char *end = wait_end(f, jobs[i]);
        assert_string_equal(end, "done");
    }
    assert_false(atomic_load(&f->overlap));
    for (int64_t host = 1; host <= 2; host++) {
        int64_t seen[8] = {0}, current = 0;
        size_t n_seen = 0;
        for (size_t i = 0; i < f->n_log; i++) {
            if (f->log[i].host != host || f->log[i].job == current)
                continue;
            for (size_t k = 0; k < n_seen; k++)
                assert_int_not_equal(seen[k], f->log[i].job); /* came back: interleaved */
            seen[n_seen++] = current = f->log[i].job;
        }
    }
    br_jobs_counts(f->jobs, &done, &failed);
    assert_int_equal(done, 6);
    assert_int_equal(failed, 0);
}

static void test_sweeper(void **state)
{
    Fake *f = FIXTURE(state);
    _cleanup_free_ char *end = NULL;

    f->sweep_makes_job = true;
    start(f, 1);
    for (int i = 0; i < 250 && !f->sweep_job; i++)
        usleep(20000);
    assert_true(f->sweep_job > 0);
    end = wait_end(f, f->sweep_job);
    assert_string_equal(end, "done");
    assert_true(atomic_load(&f->sweeps) >= 1);
}

/* A crash left a step running and the job waiting for a retry time: at start the step runs
 * again (steps are idempotent) and the job does not wait. */
static void test_recovery(void **state)
{
    Fake *f = FIXTURE(state);
    const BrStepSpec steps[] = {{BR_STEP_CREATE_VOLUME, f->inst[1], 0, NULL},
                                {BR_STEP_START, f->inst[1], 0, NULL},
                                {BR_STEP_FINISH, 0, 0, NULL}};
    int64_t job = make_job(f, steps, ELEMENTSOF(steps));
    _cleanup_free_ char *sql = NULL, *end = NULL;

    sql = cm_strdup_printf("UPDATE jobs SET state = 'running', started_at = '2026-01-01T00:00:00Z',"
                           " not_before = '2999-01-01T00:00:00Z' WHERE id = %lld;"
                           "UPDATE job_steps SET state = 'done', attempts = 1 WHERE job_id = %lld"
                           " AND seq = 0;"
                           "UPDATE job_steps SET state = 'running', attempts = 1 WHERE job_id ="
                           " %lld AND seq = 1;",
                           (long long)job, (long long)job, (long long)job);
    assert_int_equal(cbt_store_exec(&f->s, sql), 0);
    start(f, 1);
    end = wait_end(f, job);
    assert_string_equal(end, "done");
    assert_int_equal(f->n_log, 2);
    assert_int_equal(f->log[0].seq, 1);
    assert_int_equal(step_attempts(f, job, 0), 1);
    assert_int_equal(step_attempts(f, job, 1), 2);
}

/* ---- leases ---- */

typedef struct {
    BrJobLease lease;
    BrJobRow job;
    char previous[BR_JOB_NODE_MAX];
    int64_t job_id; /* br_job_lease_hold: the job */
} ClaimCtx;

static int claim_tx(BrTx *tx, void *ctx)
{
    ClaimCtx *c = ctx;
    char now[CM_TIME_ISO_LEN + 1];
    cm_time_iso(c->lease.now_ms, now);
    return br_job_claim(tx->db, &c->lease, now, NULL, NULL, &c->job, c->previous,
                        sizeof(c->previous), tx->err);
}

static int claim(Fake *f, const char *node, int64_t now_ms, ClaimCtx *c)
{
    CmError err = {0};
    *c = (ClaimCtx){.lease = {.node = node, .now_ms = now_ms, .lease_ms = 10000}};
    return br_tx_run(f->s.store, "test.claim", NULL, claim_tx, c, &err);
}

static int hold_tx(BrTx *tx, void *ctx)
{
    ClaimCtx *c = ctx;
    return br_job_lease_hold(tx->db, c->job_id, &c->lease, tx->err);
}

static int hold(Fake *f, const char *node, int64_t job, int64_t now_ms)
{
    ClaimCtx c = {.lease = {.node = node, .now_ms = now_ms, .lease_ms = 10000}, .job_id = job};
    CmError err = {0};
    return br_tx_run(f->s.store, "test.hold", NULL, hold_tx, &c, &err);
}

/* Two claimers on one database: one gets the job; once its lease ended the other takes it
 * over, and the first one's writes (which hold the lease first) are refused. */
static void test_claim_once(void **state)
{
    Fake *f = FIXTURE(state);
    const BrStepSpec steps[] = {{BR_STEP_START, f->inst[1], 0, NULL}, {BR_STEP_FINISH, 0, 0, NULL}};
    int64_t job = make_job(f, steps, ELEMENTSOF(steps)), t0 = cm_now_ms();
    _cleanup_free_ char *owner = NULL;
    ClaimCtx a, b;

    assert_int_equal(claim(f, "node-a", t0, &a), 1);
    assert_int_equal(a.job.id, job);
    assert_string_equal(a.previous, "");
    assert_int_equal(claim(f, "node-b", t0 + 1, &b), 0);
    assert_int_equal(claim(f, "node-b", t0 + 9999, &b), 0);
    owner = cbt_store_text(&f->s, "SELECT lease_owner FROM jobs WHERE id = ?1", 1, job);
    assert_string_equal(owner, "node-a");
    assert_int_equal(hold(f, "node-a", job, t0 + 5000), 1); /* renewed until t0 + 15000 */
    assert_int_equal(claim(f, "node-b", t0 + 12000, &b), 0);

    /* node-a stops renewing: after the lease, node-b takes over. */
    assert_int_equal(claim(f, "node-b", t0 + 15001, &b), 1);
    assert_int_equal(b.job.id, job);
    assert_string_equal(b.previous, "node-a");
    assert_int_equal(hold(f, "node-a", job, t0 + 15002), 0);
    assert_int_equal(hold(f, "node-b", job, t0 + 15002), 1);
    assert_int_equal(claim(f, "node-a", t0 + 15003, &a), 0);
}

/* The job engine: a job whose holder's lease ended (a broker killed with a step running) is
 * taken over; the step that was running runs again, the others once, and the takeover is in
 * the audit trail. On SQLite (one broker) every old lease is this broker's own and simply
 * ends at start. */
static void test_takeover(void **state)
{
    Fake *f = FIXTURE(state);
    const BrStepSpec steps[] = {{BR_STEP_CREATE_VOLUME, f->inst[1], 0, NULL},
                                {BR_STEP_START, f->inst[1], 0, NULL},
                                {BR_STEP_FINISH, 0, 0, NULL}};
    int64_t job = make_job(f, steps, ELEMENTSOF(steps));
    _cleanup_free_ char *sql = NULL, *end = NULL, *node1 = NULL;
    uint64_t taken, lost;
    unsigned running;

    sql = cm_strdup_printf("UPDATE jobs SET state = 'running', started_at = '2026-01-01T00:00:00Z',"
                           " lease_owner = 'dead', lease_until = %lld WHERE id = %lld;"
                           "UPDATE job_steps SET state = 'done', attempts = 1, node = 'dead'"
                           " WHERE job_id = %lld AND seq = 0;"
                           "UPDATE job_steps SET state = 'running', attempts = 1, node = 'dead'"
                           " WHERE job_id = %lld AND seq = 1;",
                           (long long)(cm_now_ms() - 1000), (long long)job, (long long)job,
                           (long long)job);
    assert_int_equal(cbt_store_exec(&f->s, sql), 0);
    start(f, 1);
    end = wait_end(f, job);
    assert_string_equal(end, "done");
    assert_int_equal(f->n_log, 2);
    assert_int_equal(f->log[0].seq, 1);
    assert_int_equal(step_attempts(f, job, 0), 1);
    assert_int_equal(step_attempts(f, job, 1), 2);
    assert_int_equal(step_attempts(f, job, 2), 1);
    node1 =
        cbt_store_text(&f->s, "SELECT node FROM job_steps WHERE job_id = ?1 AND seq = 1", 1, job);
    assert_string_equal(node1, "test-a");
    assert_int_equal(
        cbt_store_int(&f->s, "SELECT count(*) FROM jobs WHERE id = ?1 AND lease_owner IS NULL", 1,
                      job),
        1);
    br_jobs_lease_counts(f->jobs, &taken, &lost, &running);
    assert_int_equal(lost, 0);
    assert_int_equal(taken, f->s.pg ? 1 : 0);
    assert_int_equal(cbt_store_int(&f->s,
                                   "SELECT count(*) FROM audit WHERE action = 'job.takeover'"
                                   " AND object_id = ?1",
                                   1, job),
                     f->s.pg ? 1 : 0);
}

/* A live lease of another broker: on PostgreSQL the engine leaves the job alone until the
 * lease ends, then runs it; on SQLite there is no other broker, the lease is an old one of
 * this broker's and the job runs at once. */
static void test_live_lease_waits(void **state)
{
    Fake *f = FIXTURE(state);
    const BrStepSpec steps[] = {{BR_STEP_START, f->inst[1], 0, NULL}, {BR_STEP_FINISH, 0, 0, NULL}};
    int64_t job = make_job(f, steps, ELEMENTSOF(steps)), until = cm_now_ms() + 2500;
    _cleanup_free_ char *sql = NULL, *end = NULL;

    sql = cm_strdup_printf("UPDATE jobs SET lease_owner = 'other', lease_until = %lld"
                           " WHERE id = %lld",
                           (long long)until, (long long)job);
    assert_int_equal(cbt_store_exec(&f->s, sql), 0);
    start(f, 2);
    end = wait_end(f, job);
    assert_string_equal(end, "done");
    assert_int_equal(f->n_log, 2);
    if (f->s.pg)
        assert_true(f->log[0].at_ms > until);
    else
        assert_true(f->log[0].at_ms < until - 1000);
}

/* Two engines (two brokers) on one PostgreSQL database, one connection pool each: every job
 * ends, every step ran exactly once, and no two steps ran on one host at once. */
static void test_two_engines(void **state)
{
    Fake *f = FIXTURE(state);
    const BrStepSpec a[] = {{BR_STEP_CREATE_VOLUME, f->inst[1], 0, NULL},
                            {BR_STEP_START, f->inst[1], 0, NULL},
                            {BR_STEP_FINISH, 0, 0, NULL}};
    const BrStepSpec b[] = {{BR_STEP_CREATE_VOLUME, f->inst[2], 0, NULL},
                            {BR_STEP_START, f->inst[1], 0, NULL},
                            {BR_STEP_START, f->inst[2], 0, NULL},
                            {BR_STEP_FINISH, 0, 0, NULL}};
    _cleanup_free_ char *key = NULL;
    BrJobsOptions o = {.workers = 2, .node = "test-b", .leases = true, .lease_seconds = 30};
    BrStore *second = NULL;
    BrJobs *other = NULL;
    CmError err = {0};
    int64_t jobs[8];
    size_t steps = 0;

    if (!f->s.pg)
        skip(); /* one broker on SQLite */
    key = cm_strdup_printf("%s/audit.key", f->s.dir);
    assert_int_equal(br_store_open(br_store_url(f->s.store), key, &second, &err), 0);
    for (size_t i = 0; i < ELEMENTSOF(jobs); i++) {
        jobs[i] = i % 2 ? make_job(f, b, ELEMENTSOF(b)) : make_job(f, a, ELEMENTSOF(a));
        steps += i % 2 ? ELEMENTSOF(b) : ELEMENTSOF(a);
    }
    assert_int_equal(br_jobs_start(second, &fake_callbacks, f, &o, &other, &err), 0);
    start(f, 2);
    br_jobs_kick(other);
    for (size_t i = 0; i < ELEMENTSOF(jobs); i++) {
        _cleanup_free_ char *end = wait_end(f, jobs[i]);
        assert_string_equal(end, "done");
    }
    other = br_jobs_stop(other);
    second = br_store_free(second);
    assert_int_equal(f->n_log, steps);
    assert_int_equal(cbt_store_int(&f->s, "SELECT count(*) FROM job_steps WHERE attempts <> 1", 0),
                     0);
    assert_false(atomic_load(&f->overlap));
    assert_int_equal(cbt_store_int(&f->s, "SELECT count(*) FROM host_claims", 0), 0);
}

static const bool SQLITE = false, POSTGRESQL = true;

#define ON(t, backend, name)                                                                       \
    cmocka_unit_test_prestate_setup_teardown(t, setup, teardown, (void *)&(backend))
#define BOTH(t) ON(t, SQLITE, "sqlite"), ON(t, POSTGRESQL, "postgresql")

int main(void)
{
    const struct CMUnitTest tests[] = {
        BOTH(test_steps_in_order),   BOTH(test_failure),
        BOTH(test_try_later),        BOTH(test_try_later_window_over),
        BOTH(test_one_job_per_host), BOTH(test_sweeper),
        BOTH(test_recovery),         BOTH(test_claim_once),
        BOTH(test_takeover),         BOTH(test_live_lease_waits),
        BOTH(test_two_engines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
