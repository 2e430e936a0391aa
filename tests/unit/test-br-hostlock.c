/* SPDX-License-Identifier: Apache-2.0 */
/* The job engine's host locks (br-hostlock.c): all of a job's hosts or none, oldest first. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "br-hostlock.h"
#include "cm-util.h"

static const int64_t H12[] = {1, 2}, H21[] = {2, 1}, H2[] = {2}, H1[] = {1}, H23[] = {2, 3};

/* Jobs 1 and 2 each want hosts 1 and 2 (in opposite orders): the first one takes both, the
 * second holds nothing while it waits, and gets both once the first is done. */
static void test_crossing_jobs_never_deadlock(void **state)
{
    BrHostLocks t = {0};
    (void)state;

    assert_int_equal(br_host_locks_acquire(&t, 1, H12, 2, 0), 1);
    assert_int_equal(br_host_locks_acquire(&t, 2, H21, 2, 0), 0);
    assert_false(br_host_locks_holds(&t, 2, 1));
    assert_false(br_host_locks_holds(&t, 2, 2));
    assert_true(br_host_locks_holds(&t, 1, 1));
    assert_true(br_host_locks_holds(&t, 1, 2));
    assert_true(br_host_locks_must_wait(&t, 2, 10));

    br_host_locks_release(&t, 1);
    assert_int_equal(br_host_locks_holder(&t, 1), 0);
    assert_false(br_host_locks_must_wait(&t, 2, 20));
    assert_int_equal(br_host_locks_acquire(&t, 2, H21, 2, 20), 1);
    assert_int_equal(br_host_locks_holder(&t, 1), 2);
    assert_int_equal(br_host_locks_holder(&t, 2), 2);
    br_host_locks_clear(&t);
}

/* A job that held host 1 and now needs 1 and 2 while 2 is taken gives 1 back (no
 * hold-and-wait), even though nobody else asked for it. */
static void test_waiting_job_holds_nothing(void **state)
{
    BrHostLocks t = {0};
    (void)state;

    assert_int_equal(br_host_locks_acquire(&t, 5, H1, 1, 0), 1);
    assert_int_equal(br_host_locks_acquire(&t, 6, H2, 1, 0), 1);
    assert_int_equal(br_host_locks_acquire(&t, 5, H12, 2, 0), 0);
    assert_int_equal(br_host_locks_holder(&t, 1), 0);
    assert_int_equal(br_host_locks_holder(&t, 2), 6);
    /* Its own wish does not block it, and a job may ask for a host twice. */
    static const int64_t dup[] = {1, 1, 2, 2};
    br_host_locks_release(&t, 6);
    assert_int_equal(br_host_locks_acquire(&t, 5, dup, 4, 1), 1);
    assert_int_equal(t.n_held, 2);
    assert_int_equal(t.n_wanted, 0);
    br_host_locks_clear(&t);
}

/* Oldest first: job 3 waits for hosts 1 and 2 (1 held by job 9); job 12, younger, may not take
 * host 2 although it is free, and job 2, older than 3, may. */
static void test_older_waiter_goes_first(void **state)
{
    BrHostLocks t = {0};
    (void)state;

    assert_int_equal(br_host_locks_acquire(&t, 9, H1, 1, 0), 1);
    assert_int_equal(br_host_locks_acquire(&t, 3, H12, 2, 0), 0);
    assert_int_equal(br_host_locks_acquire(&t, 12, H2, 1, 0), 0);
    assert_true(br_host_locks_must_wait(&t, 12, 1));
    assert_int_equal(br_host_locks_holder(&t, 2), 0);

    assert_int_equal(br_host_locks_acquire(&t, 2, H2, 1, 1), 1);
    br_host_locks_release(&t, 2);

    br_host_locks_release(&t, 9);
    assert_false(br_host_locks_must_wait(&t, 3, 2));
    assert_true(br_host_locks_must_wait(&t, 12, 2)); /* job 3 still comes first */
    assert_int_equal(br_host_locks_acquire(&t, 3, H12, 2, 2), 1);
    assert_int_equal(br_host_locks_acquire(&t, 12, H2, 1, 3), 0);
    br_host_locks_release(&t, 3);
    assert_int_equal(br_host_locks_acquire(&t, 12, H2, 1, 4), 1);
    br_host_locks_clear(&t);
}

/* A wish nobody renews lapses after the TTL; one renewed by must_wait does not. */
static void test_wishes_lapse_unless_renewed(void **state)
{
    BrHostLocks t = {0};
    const int64_t ttl = BR_HOST_LOCKS_WAIT_TTL_MS;
    (void)state;

    assert_int_equal(br_host_locks_acquire(&t, 7, H12, 2, 0), 1);
    assert_int_equal(br_host_locks_acquire(&t, 8, H23, 2, 0), 0); /* wants 2 and 3 */
    assert_int_equal(br_host_locks_acquire(&t, 9, (const int64_t[]){3}, 1, 10), 0);
    assert_true(br_host_locks_must_wait(&t, 8, ttl)); /* renewed at ttl */
    assert_int_equal(br_host_locks_acquire(&t, 9, (const int64_t[]){3}, 1, ttl + 5), 0);

    /* Job 8 stops asking: after the TTL its claim on host 3 no longer stops job 9. */
    assert_int_equal(br_host_locks_acquire(&t, 9, (const int64_t[]){3}, 1, 2 * ttl + 1), 1);
    br_host_locks_clear(&t);
}

/* Re-taking with another set holds exactly the new set. */
static void test_reacquire_replaces_the_set(void **state)
{
    BrHostLocks t = {0};
    (void)state;

    assert_int_equal(br_host_locks_acquire(&t, 4, H12, 2, 0), 1);
    assert_int_equal(br_host_locks_acquire(&t, 4, H23, 2, 0), 1);
    assert_int_equal(br_host_locks_holder(&t, 1), 0);
    assert_int_equal(br_host_locks_holder(&t, 2), 4);
    assert_int_equal(br_host_locks_holder(&t, 3), 4);
    assert_int_equal(br_host_locks_acquire(&t, 4, NULL, 0, 0), 1);
    assert_int_equal(t.n_held, 0);
    br_host_locks_release(&t, 4); /* releasing what one does not hold is harmless */
    br_host_locks_clear(&t);
}

/*
 * A simulation of the engine: 60 jobs, each with 1-6 steps spread over random hosts of 5,
 * made in batches, run by 4 workers that take the oldest runnable job (as claim_next does),
 * one step per tick. Property: no host is ever held by two jobs, and every job ends; no tick
 * passes without a step while work has arrived (the oldest waiting job can always start once
 * the holders are done), so it takes at most the serial work plus the ticks before the last
 * batch arrived.
 */
#define SIM_JOBS 60
#define SIM_HOSTS 5
#define SIM_WORKERS 4

typedef struct {
    int64_t id;
    int64_t hosts[6];
    size_t n_steps, done;
    int worker; /* -1: not running */
    bool ended;
} SimJob;

static uint32_t rnd(uint32_t *s)
{
    *s = *s * 1103515245u + 12345u;
    return (*s >> 16) & 0x7fff;
}

static void test_simulation_every_job_ends(void **state)
{
    BrHostLocks t = {0};
    SimJob jobs[SIM_JOBS];
    uint32_t seed = 2024;
    size_t made = 0, ended = 0, total_steps = 0;
    int tick;
    (void)state;

    for (size_t i = 0; i < SIM_JOBS; i++) {
        jobs[i] = (SimJob){.id = (int64_t)i + 1, .n_steps = 1 + rnd(&seed) % 6, .worker = -1};
        for (size_t k = 0; k < jobs[i].n_steps; k++)
            jobs[i].hosts[k] = 1 + rnd(&seed) % SIM_HOSTS;
        total_steps += jobs[i].n_steps;
    }
    for (tick = 0; ended < SIM_JOBS && tick < 100000; tick++) {
        /* New jobs arrive in batches of ten, as when a reviewer approves a pile at once. */
        if (tick % 20 == 0 && made < SIM_JOBS)
            made += made + 10 <= SIM_JOBS ? 10 : SIM_JOBS - made;
        for (int w = 0; w < SIM_WORKERS; w++) {
            SimJob *run = NULL;
            for (size_t i = 0; i < made && !run; i++)
                if (jobs[i].worker == w)
                    run = &jobs[i];
            if (!run) {
                /* claim_next: the oldest job nobody runs that does not wait for hosts. */
                for (size_t i = 0; i < made && !run; i++)
                    if (!jobs[i].ended && jobs[i].worker < 0 &&
                        !br_host_locks_must_wait(&t, jobs[i].id, tick))
                        run = &jobs[i];
                if (!run)
                    continue;
                int r = br_host_locks_acquire(&t, run->id, run->hosts + run->done,
                                              run->n_steps - run->done, tick);
                assert_true(r >= 0);
                if (r == 0)
                    continue;
                run->worker = w;
            }
            /* One step on its host, which it must hold, and nobody else. */
            assert_int_equal(br_host_locks_holder(&t, run->hosts[run->done]), run->id);
            if (++run->done == run->n_steps) {
                br_host_locks_release(&t, run->id);
                run->worker = -1;
                run->ended = true;
                ended++;
            }
        }
        /* Never two holders of one host. */
        for (size_t a = 0; a < t.n_held; a++)
            for (size_t b = a + 1; b < t.n_held; b++)
                assert_false(t.held[a].host_id == t.held[b].host_id);
    }
    assert_int_equal(ended, SIM_JOBS);
    assert_true((size_t)tick <= total_steps + 100);
    br_host_locks_clear(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crossing_jobs_never_deadlock),
        cmocka_unit_test(test_waiting_job_holds_nothing),
        cmocka_unit_test(test_older_waiter_goes_first),
        cmocka_unit_test(test_wishes_lapse_unless_renewed),
        cmocka_unit_test(test_reacquire_replaces_the_set),
        cmocka_unit_test(test_simulation_every_job_ends),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
