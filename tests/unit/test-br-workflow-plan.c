/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The workflow's planner: which steps each kind of job takes (the pure br_workflow_steps_*(),
 * written out step by step), and the planners on a real store with the repository's policies:
 * a trial's allocation, instances and job; a change's checks and steps; the retry of a failed
 * job. On SQLite, and on PostgreSQL with CB_TEST_PG_URL.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "br-daemon.h"
#include "br-schemas.h"
#include "br-workflow.h"
#include "cbt-store.h"
#include "cm-json.h"
#include "cm-util.h"

#define STEP(a, id, arg)                                                                           \
    {                                                                                              \
        BR_STEP_##a, id, arg, NULL                                                                 \
    }

static void assert_steps(const BrStepList *got, const BrStepSpec *want, size_t n)
{
    for (size_t i = 0; i < got->n || i < n; i++) {
        if (i >= got->n || i >= n || got->steps[i].action != want[i].action ||
            got->steps[i].instance_id != want[i].instance_id || got->steps[i].arg != want[i].arg)
            print_error("step %zu: got %s %lld %lld, want %s %lld %lld\n", i,
                        i < got->n ? br_step_action_to_string(got->steps[i].action) : "-",
                        i < got->n ? (long long)got->steps[i].instance_id : 0,
                        i < got->n ? (long long)got->steps[i].arg : 0,
                        i < n ? br_step_action_to_string(want[i].action) : "-",
                        i < n ? (long long)want[i].instance_id : 0,
                        i < n ? (long long)want[i].arg : 0);
        assert_true(i < got->n && i < n);
        assert_int_equal(got->steps[i].action, want[i].action);
        assert_int_equal(got->steps[i].instance_id, want[i].instance_id);
        assert_int_equal(got->steps[i].arg, want[i].arg);
    }
}

static BrInstanceLive live(int64_t id, unsigned idx, BrInstanceState state)
{
    return (BrInstanceLive){.id = id,
                            .idx = idx,
                            .sizes = {2, 1024, 10, 4, 2048},
                            .image = "debian-12",
                            .state = state};
}

/* ---- the pure half ---- */

static void test_steps_provision(void **state)
{
    const int64_t ids[] = {11, 12};
    const BrStepSpec want[] = {STEP(RESERVE, 0, 0), STEP(CREATE_VOLUME, 11, 0), STEP(DEFINE, 11, 0),
                               STEP(START, 11, 0),  STEP(CREATE_VOLUME, 12, 0), STEP(DEFINE, 12, 0),
                               STEP(START, 12, 0),  STEP(FINISH, 0, 0)};
    _cleanup_(br_step_list_clear) BrStepList l = {0};

    (void)state;
    assert_int_equal(br_workflow_steps_provision(ids, 2, &l), 0);
    assert_steps(&l, want, ELEMENTSOF(want));
}

/* Termination keeps the volumes; the end of a trial deletes them; a purge wipes them first.
 * An instance never placed has nothing on a host. */
static void test_steps_takedown(void **state)
{
    const BrInstanceLive cur[] = {live(1, 0, BR_INSTANCE_RUNNING), live(2, 1, BR_INSTANCE_PENDING),
                                  live(3, 2, BR_INSTANCE_SHUTOFF)};
    const BrStepSpec reclaim[] = {STEP(SHUTDOWN, 1, 0), STEP(UNDEFINE, 1, 0), STEP(SHUTDOWN, 3, 0),
                                  STEP(UNDEFINE, 3, 0), STEP(FINISH, 0, 0)};
    const BrStepSpec trial[] = {STEP(SHUTDOWN, 1, 0),      STEP(UNDEFINE, 1, 0),
                                STEP(DELETE_VOLUME, 1, 0), STEP(SHUTDOWN, 3, 0),
                                STEP(UNDEFINE, 3, 0),      STEP(DELETE_VOLUME, 3, 0),
                                STEP(FINISH, 0, 0)};
    const BrStepSpec purge[] = {
        STEP(SHUTDOWN, 1, 0),      STEP(UNDEFINE, 1, 0),      STEP(WIPE, 1, 0),
        STEP(DELETE_VOLUME, 1, 0), STEP(SHUTDOWN, 3, 0),      STEP(UNDEFINE, 3, 0),
        STEP(WIPE, 3, 0),          STEP(DELETE_VOLUME, 3, 0), STEP(FINISH, 0, 0)};
    _cleanup_(br_step_list_clear) BrStepList a = {0}, b = {0}, c = {0}, none = {0};

    (void)state;
    assert_int_equal(br_workflow_steps_takedown(cur, 3, true, false, false, &a), 0);
    assert_steps(&a, reclaim, ELEMENTSOF(reclaim));
    assert_int_equal(br_workflow_steps_takedown(cur, 3, true, false, true, &b), 0);
    assert_steps(&b, trial, ELEMENTSOF(trial));
    assert_int_equal(br_workflow_steps_takedown(cur, 3, true, true, true, &c), 0);
    assert_steps(&c, purge, ELEMENTSOF(purge));
    /* Nothing placed: the job only finishes (the allocation still moves on). */
    assert_int_equal(br_workflow_steps_takedown(cur + 1, 1, true, true, true, &none), 0);
    assert_steps(&none, (const BrStepSpec[]){STEP(FINISH, 0, 0)}, 1);
}

static void test_steps_restore(void **state)
{
    const BrInstanceLive cur[] = {live(1, 0, BR_INSTANCE_UNDEFINED),
                                  live(2, 1, BR_INSTANCE_PENDING),
                                  live(3, 2, BR_INSTANCE_UNDEFINED)};
    const BrStepSpec want[] = {STEP(DEFINE, 1, 0), STEP(START, 1, 0), STEP(DEFINE, 3, 0),
                               STEP(START, 3, 0), STEP(FINISH, 0, 0)};
    _cleanup_(br_step_list_clear) BrStepList l = {0};

    (void)state;
    assert_int_equal(br_workflow_steps_restore(cur, 3, &l), 0);
    assert_steps(&l, want, ELEMENTSOF(want));
}

static void test_split_removed(void **state)
{
    BrInstanceLive cur[] = {live(10, 0, BR_INSTANCE_RUNNING), live(11, 1, BR_INSTANCE_RUNNING),
                            live(12, 2, BR_INSTANCE_RUNNING)};
    _cleanup_json_ json_object *one = json_tokener_parse("[1]");
    _cleanup_json_ json_object *two = json_tokener_parse("[2, 0]");
    _cleanup_json_ json_object *bad = json_tokener_parse("[2, 5]");
    size_t kept = 99;

    (void)state;
    /* No remove: everything kept, in order. */
    assert_int_equal(br_workflow_split_removed(cur, 3, NULL, &kept), 0);
    assert_int_equal(kept, 3);
    assert_int_equal(cur[0].id, 10);
    assert_int_equal(cur[2].id, 12);
    /* The kept first, in their order; the removed after them. */
    assert_int_equal(br_workflow_split_removed(cur, 3, one, &kept), 0);
    assert_int_equal(kept, 2);
    assert_int_equal(cur[0].id, 10);
    assert_int_equal(cur[1].id, 12);
    assert_int_equal(cur[2].id, 11);
    cur[0] = live(10, 0, BR_INSTANCE_RUNNING);
    cur[1] = live(11, 1, BR_INSTANCE_RUNNING);
    cur[2] = live(12, 2, BR_INSTANCE_RUNNING);
    assert_int_equal(br_workflow_split_removed(cur, 3, two, &kept), 0);
    assert_int_equal(kept, 1);
    assert_int_equal(cur[0].id, 11);
    /* An index that is no instance: its position + 1, nothing moved. */
    kept = 99;
    assert_int_equal(br_workflow_split_removed(cur, 3, bad, &kept), 2);
    assert_int_equal(kept, 99);
    assert_int_equal(cur[0].id, 11);
}

static void test_needs_restart(void **state)
{
    const BrInstanceLive cur = live(1, 0, BR_INSTANCE_RUNNING); /* 2 of 4 vCPUs, 1024 of 2048 */
    static const struct {
        const char *spec, *field;
    } cases[] = {
        {"{\"vcpus\":4,\"memory_mib\":2048}", NULL},
        {"{\"vcpus\":2}", NULL},
        {"{\"vcpus\":5}", "vcpus"},
        {"{\"vcpus\":1}", "vcpus"},
        {"{\"vcpus\":2,\"memory_mib\":2049}", "memory_mib"},
        {"{\"memory_mib\":512}", NULL},
    };

    (void)state;
    for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
        _cleanup_json_ json_object *spec = json_tokener_parse(cases[i].spec);
        const char *field = NULL;
        bool restart = br_workflow_needs_restart(&cur, spec, &field);
        assert_int_equal(restart, cases[i].field != NULL);
        if (restart)
            assert_string_equal(field, cases[i].field);
    }
}

/* A change: instance idx 1 removed by name, idx 0 grown live, idx 2 past its maximum (a
 * restart, new maximums from the growth policy), one new instance; then one with fewer
 * instances than it keeps. */
static void test_steps_change(void **state)
{
    BrLifecyclePolicy lifecycle = {
        .vcpus_factor = 2, .memory_factor = 2, .max_vcpus = 64, .max_memory_mib = 262144};
    BrInstanceLive cur[] = {live(10, 0, BR_INSTANCE_RUNNING), live(11, 1, BR_INSTANCE_RUNNING),
                            live(12, 2, BR_INSTANCE_RUNNING)};
    _cleanup_json_ json_object *remove = json_tokener_parse("[1]");
    _cleanup_json_ json_object *specs =
        json_tokener_parse("[{\"vcpus\":4,\"memory_mib\":2048,\"disk_gib\":20},"
                           " {\"vcpus\":8,\"memory_mib\":1024,\"disk_gib\":30},"
                           " {\"vcpus\":1,\"memory_mib\":512,\"disk_gib\":5}]");
    _cleanup_json_ json_object *fewer = json_tokener_parse("[{\"vcpus\":2}]");
    const int64_t new_ids[] = {50};
    const BrStepSpec want[] = {
        STEP(SHUTDOWN, 11, 0),      STEP(UNDEFINE, 11, 0),     STEP(WIPE, 11, 0),
        STEP(DELETE_VOLUME, 11, 0), STEP(RESERVE, 0, 0),       STEP(SET_VCPUS, 10, 4),
        STEP(SET_MEMORY, 10, 2048), STEP(GROW_VOLUME, 10, 20), STEP(SHUTDOWN, 12, 0),
        STEP(GROW_VOLUME, 12, 30),  STEP(REDEFINE, 12, 0),     STEP(START, 12, 0),
        STEP(CREATE_VOLUME, 50, 0), STEP(DEFINE, 50, 0),       STEP(START, 50, 0),
        STEP(FINISH, 0, 0)};
    const BrStepSpec want_fewer[] = {STEP(SHUTDOWN, 11, 0), STEP(UNDEFINE, 11, 0),
                                     STEP(WIPE, 11, 0), STEP(DELETE_VOLUME, 11, 0),
                                     STEP(FINISH, 0, 0)};
    _cleanup_json_ json_object *same = json_tokener_parse("[{\"memory_mib\":1536}, {}]");
    const BrStepSpec want_same[] = {STEP(SET_MEMORY, 10, 1536), STEP(FINISH, 0, 0)};
    _cleanup_(br_step_list_clear) BrStepList l = {0}, f = {0}, g = {0};
    size_t kept;

    (void)state;
    assert_int_equal(br_workflow_split_removed(cur, 3, remove, &kept), 0);
    assert_int_equal(kept, 2);
    assert_int_equal(br_workflow_steps_change(cur, 3, kept, specs, &lifecycle, new_ids, &l), 0);
    assert_steps(&l, want, ELEMENTSOF(want));
    /* The redefinition carries the new sizes and maximums. */
    assert_string_equal(l.steps[10].spec, "{\"vcpus\":8,\"memory_mib\":1024,\"max_vcpus\":16,"
                                          "\"max_memory_mib\":2048}");

    /* No remove, one spec for two instances: the second goes, disk wiped. */
    cur[0] = live(10, 0, BR_INSTANCE_RUNNING);
    cur[1] = live(11, 1, BR_INSTANCE_RUNNING);
    assert_int_equal(br_workflow_steps_change(cur, 2, 2, fewer, &lifecycle, NULL, &f), 0);
    assert_steps(&f, want_fewer, ELEMENTSOF(want_fewer));

    /* As many specs as instances, all live: no reserve, no restart, nothing for equal sizes. */
    assert_int_equal(br_workflow_steps_change(cur, 2, 2, same, &lifecycle, NULL, &g), 0);
    assert_steps(&g, want_same, ELEMENTSOF(want_same));
}

/* ---- the planners on a store ---- */

typedef struct {
    CbtStore s;
    BrDaemon d;
} Fx;

static int setup(void **state)
{
    bool pg = *(const bool *)*state;
    Fx *f = calloc(1, sizeof(*f));
    CmError err = {0};
    int r;

    *state = f;
    pthread_mutex_init(&f->d.policies_lock, NULL);
    if (br_policies_load(SOURCE_DIR "/policies", &f->d.policies, &err) < 0) {
        fprintf(stderr, "policies: %s\n", err.message);
        return -1;
    }
    r = cbt_store_open(&f->s, pg, "plan");
    f->d.store = f->s.store;
    if (r <= 0)
        return r < 0 ? -1 : 0;
    /* 1: a new request approved; 2: a change of allocation 1 (made by plan_trial in a test). */
    return cbt_store_exec(&f->s,
                          "INSERT INTO requests(department_id, system_id, kind, state, resources,"
                          " justification, created_by, created_at, updated_at) VALUES"
                          " (1, 1, 'new', 'approved', '{\"instances\":[{\"vcpus\":2,"
                          "\"memory_mib\":1024,\"disk_gib\":10,\"image\":\"debian-12\"},"
                          "{\"vcpus\":1,\"memory_mib\":512,\"disk_gib\":5,"
                          "\"image\":\"debian-12\"}]}', 'j', 1, 't', 't');");
}

static int teardown(void **state)
{
    Fx *f = *state;
    cbt_store_close(&f->s);
    br_policies_unref(f->d.policies);
    pthread_mutex_destroy(&f->d.policies_lock);
    free(f);
    return 0;
}

#define FIXTURE(state)                                                                             \
    ({                                                                                             \
        Fx *f_ = *(state);                                                                         \
        if (!f_->s.store)                                                                          \
            skip();                                                                                \
        f_;                                                                                        \
    })

typedef struct {
    Fx *f;
    int (*plan)(BrDaemon *d, CmDb *db, const BrActor *actor, int64_t id, int64_t *ret_job,
                CmError *err);
    int64_t id, job;
} Plan;

static int plan_tx(BrTx *tx, void *ctx)
{
    Plan *p = ctx;
    return p->plan(&p->f->d, tx->db, tx->actor, p->id, &p->job, tx->err);
}

static int run_plan(Fx *f, Plan *p, CmError *err)
{
    p->f = f;
    return br_tx_run(f->s.store, "test.plan", NULL, plan_tx, p, err);
}

static void assert_job_steps(Fx *f, int64_t job, const char *want)
{
    _cleanup_free_ char *got = NULL;
    CmError err = {0};
    CmDb *db = br_store_db(f->s.store, &err);
    _cleanup_stmt_ CmStmt *st =
        cm_db_prepare(db, "SELECT action FROM job_steps WHERE job_id = ?1 ORDER BY seq", &err);
    size_t len = 0;

    assert_non_null(st);
    CM_DB_BIND(st, job);
    while (cm_stmt_step(st, &err) > 0) {
        char *next =
            cm_strdup_printf("%s%s%s", got ? got : "", got ? " " : "", cm_stmt_text(st, 0));
        free(got);
        got = next;
        len++;
    }
    assert_non_null(got);
    assert_string_equal(got, want);
}

static void test_plan_trial(void **state)
{
    Fx *f = FIXTURE(state);
    Plan p = {.plan = br_workflow_plan_trial, .id = 1};
    _cleanup_free_ char *purpose = NULL, *astate = NULL, *name = NULL;
    CmError err = {0};
    int64_t alloc;

    assert_int_equal(run_plan(f, &p, &err), 0);
    alloc = cbt_store_int(&f->s, "SELECT trial_allocation_id FROM requests WHERE id = 1", 0);
    assert_true(alloc > 0);
    purpose = cbt_store_text(&f->s, "SELECT purpose FROM allocations WHERE id = ?1", 1, alloc);
    astate = cbt_store_text(&f->s, "SELECT state FROM allocations WHERE id = ?1", 1, alloc);
    assert_string_equal(purpose, "trial");
    assert_string_equal(astate, "provisioning");
    /* The totals count the instances planned; maximums follow the growth policy (x2). */
    assert_int_equal(cbt_store_int(&f->s, "SELECT vcpus FROM allocations WHERE id = ?1", 1, alloc),
                     3);
    assert_int_equal(
        cbt_store_int(&f->s, "SELECT instances FROM allocations WHERE id = ?1", 1, alloc), 2);
    name = cbt_store_text(&f->s,
                          "SELECT name FROM instances WHERE allocation_id = ?1 AND idx = 1"
                          " AND state = 'pending' AND max_vcpus = 2 AND max_memory_mib = 1024",
                          1, alloc);
    assert_non_null(name);
    assert_true(strncmp(name, "cb-", 3) == 0 && strstr(name, "-1") != NULL);
    assert_job_steps(f, p.job,
                     "reserve create_volume define start create_volume define start finish");
    assert_int_equal(cbt_store_int(&f->s,
                                   "SELECT count(*) FROM audit WHERE action = 'job.create'"
                                   " AND object_id = ?1",
                                   1, p.job),
                     1);
}

static void test_plan_trial_unknown_image(void **state)
{
    Fx *f = FIXTURE(state);
    Plan p = {.plan = br_workflow_plan_trial, .id = 1};
    CmError err = {0};

    assert_int_equal(cbt_store_exec(&f->s,
                                    "UPDATE requests SET resources ="
                                    " '{\"instances\":[{\"vcpus\":1,\"image\":\"win95\"}]}'"),
                     0);
    assert_true(run_plan(f, &p, &err) < 0);
    assert_string_equal(err.code, "unknown_image");
    /* Nothing of it is kept. */
    assert_int_equal(cbt_store_int(&f->s, "SELECT count(*) FROM allocations", 0), 0);
    assert_int_equal(cbt_store_int(&f->s, "SELECT count(*) FROM jobs", 0), 0);
}

/* The trial allocation made active with its instances running, and change request 2 on it. */
static int64_t active_with_change(Fx *f, const char *resources, bool restart_allowed)
{
    Plan p = {.plan = br_workflow_plan_trial, .id = 1};
    CmError err = {0};
    _cleanup_free_ char *sql = NULL;
    int64_t alloc;

    assert_int_equal(run_plan(f, &p, &err), 0);
    alloc = cbt_store_int(&f->s, "SELECT trial_allocation_id FROM requests WHERE id = 1", 0);
    sql = cm_strdup_printf(
        "UPDATE allocations SET state = 'active' WHERE id = %lld;"
        "UPDATE instances SET state = 'running', host_id = 1 WHERE allocation_id = %lld;"
        "UPDATE jobs SET state = 'done';"
        "INSERT INTO requests(department_id, system_id, kind, state, allocation_id, resources,"
        " restart_allowed, justification, created_by, created_at, updated_at) VALUES"
        " (1, 1, 'change', 'approved', %lld, '%s', %d, 'j', 1, 't', 't');",
        (long long)alloc, (long long)alloc, (long long)alloc, resources, restart_allowed);
    assert_int_equal(cbt_store_exec(&f->s, sql), 0);
    return alloc;
}

static int check_change(Fx *f, CmError *err)
{
    CmDb *db = br_store_db(f->s.store, err);
    return br_workflow_check_change(&f->d, db, 2, err);
}

static void test_check_change(void **state)
{
    static const struct {
        const char *resources, *code, *field;
    } cases[] = {
        {"{\"instances\":[{\"vcpus\":2,\"memory_mib\":1024,\"disk_gib\":10,"
         "\"image\":\"debian-11\"}]}",
         "image_change", "/resources/instances/0/image"},
        {"{\"instances\":[{\"vcpus\":2,\"memory_mib\":1024,\"disk_gib\":9,"
         "\"image\":\"debian-12\"}]}",
         "disk_shrink", "/resources/instances/0/disk_gib"},
        {"{\"instances\":[{\"vcpus\":5,\"memory_mib\":1024,\"disk_gib\":10,"
         "\"image\":\"debian-12\"}]}",
         "restart_required", "/resources/instances/0/vcpus"},
        {"{\"instances\":[],\"remove\":[0,7]}", "unknown_instance", "/resources/remove/1"},
    };

    Fx *f = FIXTURE(state);

    active_with_change(f, cases[0].resources, false);
    for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
        _cleanup_free_ char *sql = cm_strdup_printf(
            "UPDATE requests SET resources = '%s' WHERE id = 2", cases[i].resources);
        CmError err = {0};

        assert_int_equal(cbt_store_exec(&f->s, sql), 0);
        assert_true(check_change(f, &err) < 0);
        assert_string_equal(err.code, cases[i].code);
        assert_string_equal(err.field, cases[i].field);
    }
}

static void test_plan_change(void **state)
{
    Fx *f = FIXTURE(state);
    Plan p = {.plan = br_workflow_plan_change, .id = 2};
    _cleanup_free_ char *astate = NULL, *spec = NULL;
    CmError err = {0};
    int64_t alloc = active_with_change(
        f,
        "{\"instances\":[{\"vcpus\":8,\"memory_mib\":1024,\"disk_gib\":10,"
        "\"image\":\"debian-12\"},{\"vcpus\":1,\"memory_mib\":512,\"disk_gib\":5,"
        "\"image\":\"debian-12\"}],\"remove\":[1]}",
        true);

    assert_int_equal(check_change(f, &err), 0);
    assert_int_equal(run_plan(f, &p, &err), 0);
    astate = cbt_store_text(&f->s, "SELECT state FROM allocations WHERE id = ?1", 1, alloc);
    assert_string_equal(astate, "resizing");
    /* idx 1 removed; idx 0 past its maximum: restarted; the second spec a new idx 2. */
    assert_job_steps(f, p.job,
                     "shutdown undefine wipe delete_volume reserve shutdown redefine start"
                     " create_volume define start finish");
    assert_int_equal(cbt_store_int(&f->s,
                                   "SELECT count(*) FROM instances WHERE allocation_id = ?1"
                                   " AND idx = 2 AND state = 'pending'",
                                   1, alloc),
                     1);
    spec =
        cbt_store_text(&f->s, "SELECT spec FROM job_steps WHERE job_id = ?1 AND seq = 6", 1, p.job);
    assert_string_equal(spec, "{\"vcpus\":8,\"memory_mib\":1024,\"max_vcpus\":16,"
                              "\"max_memory_mib\":2048}");
}

typedef struct {
    Fx *f;
    int64_t job;
} Retry;

static int retry_tx(BrTx *tx, void *ctx)
{
    Retry *r = ctx;
    return br_workflow_plan_retry(&r->f->d, tx->db, tx->actor, r->job, "mended", tx->err);
}

/* A trial's provisioning failed with its instances placed but not made: the retry takes the
 * allocation and the request back, sends them back to placement, queues the job again. */
static void test_plan_retry(void **state)
{
    Fx *f = FIXTURE(state);
    Plan p = {.plan = br_workflow_plan_trial, .id = 1};
    _cleanup_free_ char *sql = NULL, *astate = NULL, *rstate = NULL, *jstate = NULL;
    _cleanup_free_ char *detail = NULL;
    _cleanup_json_ json_object *d = NULL;
    CmError err = {0};
    Retry rt = {f, 0};
    int64_t alloc;

    assert_int_equal(run_plan(f, &p, &err), 0);
    rt.job = p.job;
    alloc = cbt_store_int(&f->s, "SELECT trial_allocation_id FROM requests WHERE id = 1", 0);
    sql = cm_strdup_printf(
        "UPDATE allocations SET state = 'error', error = 'boom' WHERE id = %lld;"
        "UPDATE requests SET state = 'failed' WHERE id = 1;"
        "UPDATE instances SET state = 'placed', host_id = 1 WHERE allocation_id = %lld;"
        "UPDATE jobs SET state = 'error', error = 'boom' WHERE id = %lld;"
        "UPDATE job_steps SET state = 'done' WHERE job_id = %lld AND seq = 0;"
        "UPDATE job_steps SET state = 'error', error = 'boom' WHERE job_id = %lld AND seq = 1;",
        (long long)alloc, (long long)alloc, (long long)p.job, (long long)p.job, (long long)p.job);
    assert_int_equal(cbt_store_exec(&f->s, sql), 0);

    assert_int_equal(br_tx_run(f->s.store, "test.retry", NULL, retry_tx, &rt, &err), 0);
    astate = cbt_store_text(&f->s, "SELECT state FROM allocations WHERE id = ?1", 1, alloc);
    rstate = cbt_store_text(&f->s, "SELECT state FROM requests WHERE id = 1", 0);
    jstate = cbt_store_text(&f->s, "SELECT state FROM jobs WHERE id = ?1", 1, p.job);
    assert_string_equal(astate, "provisioning");
    assert_string_equal(rstate, "approved");
    assert_string_equal(jstate, "queued");
    assert_int_equal(cbt_store_int(&f->s, "SELECT attempts FROM jobs WHERE id = ?1", 1, p.job), 1);
    /* Both instances were only placed: back to placement, and the reserve step runs again. */
    assert_int_equal(cbt_store_int(&f->s,
                                   "SELECT count(*) FROM instances WHERE allocation_id = ?1"
                                   " AND state = 'pending' AND host_id IS NULL",
                                   1, alloc),
                     2);
    assert_int_equal(cbt_store_int(&f->s,
                                   "SELECT count(*) FROM job_steps WHERE job_id = ?1"
                                   " AND state = 'pending'",
                                   1, p.job),
                     8);
    detail = cbt_store_text(
        &f->s, "SELECT detail FROM audit WHERE action = 'job.retry' AND object_id = ?1", 1, p.job);
    d = json_tokener_parse(detail);
    assert_int_equal(cm_json_get_int(d, "replaced_instances", -1), 2);
    assert_string_equal(cm_json_get_str(d, "previous_error", ""), "boom");
    assert_string_equal(cm_json_get_str(d, "comment", ""), "mended");
    /* A job not failed is not retried. */
    assert_true(br_tx_run(f->s.store, "test.retry", NULL, retry_tx, &rt, &err) < 0);
    assert_string_equal(err.code, "invalid_state");
}

static const bool SQLITE = false, POSTGRESQL = true;

#define ON(t, backend)                                                                             \
    cmocka_unit_test_prestate_setup_teardown(t, setup, teardown, (void *)&(backend))
#define BOTH(t) ON(t, SQLITE), ON(t, POSTGRESQL)

int main(void)
{
    CmError err = {0};
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_steps_provision),
        cmocka_unit_test(test_steps_takedown),
        cmocka_unit_test(test_steps_restore),
        cmocka_unit_test(test_split_removed),
        cmocka_unit_test(test_needs_restart),
        cmocka_unit_test(test_steps_change),
        BOTH(test_plan_trial),
        BOTH(test_plan_trial_unknown_image),
        BOTH(test_check_change),
        BOTH(test_plan_change),
        BOTH(test_plan_retry),
    };
    if (br_schemas_init(&err) < 0) {
        fprintf(stderr, "schemas: %s\n", err.message);
        return 1;
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
