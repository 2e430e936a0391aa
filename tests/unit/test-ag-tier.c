/* SPDX-License-Identifier: Apache-2.0 */
/* The tiers' scheduler and the cycle budget (ag-tier.c): which domains' slow groups a cycle
 * reads, and how many the budget lets it read. No libvirt, no clock. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "ag-tier.h"

#define NS INT64_C(1000000000)
#define T0 INT64_C(1700000100) /* a multiple of 300 */

static void test_slow_default_is_60_or_what_fits_the_window(void **state)
{
    (void)state;
    assert_int_equal(ag_tier_slow_default(10, 300), 60);
    assert_int_equal(ag_tier_slow_default(1, 300), 60);
    assert_int_equal(ag_tier_slow_default(30, 300), 60);
    assert_int_equal(ag_tier_slow_default(60, 300), 60);
    /* Test windows shorter than a minute: the window itself. */
    assert_int_equal(ag_tier_slow_default(1, 10), 10);
    assert_int_equal(ag_tier_slow_default(10, 10), 10);
    /* 90 s windows of 10 s readings: 30 s, the largest that divides the window. */
    assert_int_equal(ag_tier_slow_default(10, 90), 30);
    /* An interval above a minute: every cycle. */
    assert_int_equal(ag_tier_slow_default(120, 600), 120);
    for (int64_t i = 1; i <= 60; i++)
        for (int64_t w = i; w <= 3600; w += i) {
            int64_t s = ag_tier_slow_default(i, w);
            assert_int_equal(ag_tier_check(i, w, s), 0);
        }
}

static void test_check_wants_a_multiple_of_the_interval_dividing_the_window(void **state)
{
    (void)state;
    assert_int_equal(ag_tier_check(10, 300, 60), 0);
    assert_int_equal(ag_tier_check(10, 300, 10), 0);
    assert_int_equal(ag_tier_check(10, 300, 300), 0);
    assert_int_equal(ag_tier_check(10, 300, 5), -EINVAL);   /* below the interval */
    assert_int_equal(ag_tier_check(10, 300, 45), -EINVAL);  /* not a multiple of it */
    assert_int_equal(ag_tier_check(10, 300, 70), -EINVAL);  /* does not divide the window */
    assert_int_equal(ag_tier_check(10, 300, 600), -EINVAL); /* longer than the window */
}

static void test_each_slot_is_due_once_per_slow_interval(void **state)
{
    AgTiming t = {300, 10, 60};
    int slots = ag_tier_slots(&t);
    (void)state;
    assert_int_equal(slots, 6);
    for (int slot = 0; slot < slots; slot++) {
        int due = 0;
        /* One window, 30 ticks: the slot is due 5 times, 6 ticks apart. */
        int64_t last = -1;
        for (int64_t w = T0; w < T0 + 300; w += 10) {
            if (!ag_tier_due(slot, slots, ag_tier_tick(&t, w)))
                continue;
            due++;
            if (last >= 0)
                assert_int_equal(w - last, 60);
            last = w;
        }
        assert_int_equal(due, 5);
    }
    /* Slot 0 falls on the windows' boundaries. */
    assert_true(ag_tier_due(0, slots, ag_tier_tick(&t, T0)));
    /* Tiers off: every slot every tick. */
    AgTiming off = {300, 10, 10};
    assert_int_equal(ag_tier_slots(&off), 1);
    for (int64_t w = T0; w < T0 + 300; w += 10)
        assert_true(ag_tier_due(0, 1, ag_tier_tick(&off, w)));
}

static void test_slots_are_given_least_loaded_first(void **state)
{
    unsigned load[6] = {0};
    int slot[150];
    char uuid[37];
    (void)state;
    for (int i = 0; i < 150; i++) {
        snprintf(uuid, sizeof(uuid), "00000000-0000-4000-8000-%012d", i);
        slot[i] = ag_tier_assign(load, 6, ag_tier_hash(uuid));
        assert_in_range(slot[i], 0, 5);
        load[slot[i]]++;
    }
    for (int s = 0; s < 6; s++)
        assert_int_equal(load[s], 25);
    /* Ten domains of slot 2 go; the next ten new ones fill slot 2. */
    load[2] -= 10;
    for (int i = 0; i < 10; i++) {
        snprintf(uuid, sizeof(uuid), "00000000-0000-4000-9000-%012d", i);
        int s = ag_tier_assign(load, 6, ag_tier_hash(uuid));
        assert_int_equal(s, 2);
        load[s]++;
    }
    /* One slot: always 0. */
    assert_int_equal(ag_tier_assign(load, 1, 12345), 0);
    /* The hash is stable and tells UUIDs apart. */
    assert_int_equal(ag_tier_hash("6a2b1f0e-2c3d-4e5f-8a9b-0c1d2e3f4a5b"),
                     ag_tier_hash("6a2b1f0e-2c3d-4e5f-8a9b-0c1d2e3f4a5b"));
    assert_int_not_equal(ag_tier_hash("6a2b1f0e-2c3d-4e5f-8a9b-0c1d2e3f4a5b"),
                         ag_tier_hash("6a2b1f0e-2c3d-4e5f-8a9b-0c1d2e3f4a5c"));
}

/* 150 domains in 6 slots as the agent gives them out; every fifth one paused. */
static void fleet(int *slot, bool *running, size_t n)
{
    unsigned load[6] = {0};
    char uuid[37];
    for (size_t i = 0; i < n; i++) {
        snprintf(uuid, sizeof(uuid), "00000000-0000-4000-8000-%012zu", i);
        slot[i] = ag_tier_assign(load, 6, ag_tier_hash(uuid));
        load[slot[i]]++;
        running[i] = i % 5 != 0;
    }
}

static void test_a_cycle_never_asks_every_qemu(void **state)
{
    AgTiming t = {300, 10, 60};
    int slot[150];
    bool running[150];
    AgTierAction plan[150];
    int reads[150] = {0};
    (void)state;
    fleet(slot, running, 150);
    for (int64_t w = T0; w < T0 + 300; w += 10) {
        int64_t tick = ag_tier_tick(&t, w);
        size_t due = ag_tier_count_due(slot, running, 150, 6, tick);
        size_t read = ag_tier_plan(slot, running, 150, 6, tick, due, plan);
        assert_int_equal(read, due);
        /* A sixth of the fleet, give or take the paused ones: never all of it. */
        assert_in_range(due, 15, 25);
        for (size_t i = 0; i < 150; i++) {
            assert_true(plan[i] != AG_TIER_SHED);
            if (plan[i] == AG_TIER_READ) {
                assert_true(running[i]);
                assert_int_equal(slot[i], (int)(tick % 6));
                reads[i]++;
            }
        }
    }
    /* Over a window every running domain is read 5 times, the paused ones never. */
    for (size_t i = 0; i < 150; i++)
        assert_int_equal(reads[i], running[i] ? 5 : 0);
}

static void test_the_budget_sheds_the_rest_in_turn(void **state)
{
    AgTiming t = {300, 10, 60};
    int slot[8] = {0, 0, 0, 0, 1, 1, 1, 1};
    bool running[8] = {true, true, true, true, true, true, true, true};
    AgTierAction plan[8];
    int shed[8] = {0}, read[8] = {0};
    (void)state;
    /* Room for 3 of the 4 domains of slot 0, four times the slot comes round: each one is shed
     * once, not the same one every time. */
    for (int64_t w = T0; w < T0 + 4 * 60; w += 10) {
        int64_t tick = ag_tier_tick(&t, w);
        size_t n = ag_tier_plan(slot, running, 8, 6, tick, 3, plan);
        for (int i = 0; i < 8; i++) {
            shed[i] += plan[i] == AG_TIER_SHED;
            read[i] += plan[i] == AG_TIER_READ;
        }
        if (tick % 6 == 0 || tick % 6 == 1)
            assert_int_equal(n, 3);
        else
            assert_int_equal(n, 0);
    }
    for (int i = 0; i < 8; i++) {
        assert_int_equal(shed[i], 1);
        assert_int_equal(read[i], 3);
    }
    /* No room: every due domain shed, none read. */
    assert_int_equal(ag_tier_plan(slot, running, 8, 6, ag_tier_tick(&t, T0), 0, plan), 0);
    for (int i = 0; i < 8; i++)
        assert_int_equal(plan[i], slot[i] == 0 ? AG_TIER_SHED : AG_TIER_SKIP);
}

static void test_budget_allow_and_update(void **state)
{
    AgBudget b;
    (void)state;
    ag_budget_init(&b, 10);
    /* The cost is unknown at first: every due domain. */
    assert_int_equal(ag_budget_allow(&b, 0, 25), 25);
    /* A cycle of 2 s that read 25 domains' slow groups in 1 s: 40 ms each. */
    ag_budget_update(&b, 2 * NS, 1 * NS, 25);
    assert_false(b.overran);
    assert_int_equal((int64_t)b.slow_ns_per_domain, 40000000);
    /* 8 s is the budget (80 % of 10 s): after 1 s, 7 s fit 175 domains. */
    assert_int_equal(ag_budget_allow(&b, 1 * NS, 25), 25);
    assert_int_equal(ag_budget_allow(&b, 1 * NS, 500), 175);
    /* After 7.6 s, 0.4 s: 10 of them. */
    assert_int_equal(ag_budget_allow(&b, 7600 * (NS / 1000), 25), 10);
    /* Past the budget: none. */
    assert_int_equal(ag_budget_allow(&b, 9 * NS, 25), 0);
    /* A cycle that overran its interval: the next one sheds every slow reading... */
    ag_budget_update(&b, 11 * NS, 0, 0);
    assert_true(b.overran);
    assert_int_equal(ag_budget_allow(&b, 0, 25), 0);
    /* ...and the one after it, back in time, reads again. */
    ag_budget_update(&b, 1 * NS, 0, 0);
    assert_false(b.overran);
    assert_int_equal(ag_budget_allow(&b, 0, 25), 25);
    /* The cost is a moving average: one slow call of 100 ms per domain moves it part way. */
    ag_budget_update(&b, 5 * NS, 25 * NS / 10, 25);
    assert_true(b.slow_ns_per_domain > 40e6 && b.slow_ns_per_domain < 100e6);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_slow_default_is_60_or_what_fits_the_window),
        cmocka_unit_test(test_check_wants_a_multiple_of_the_interval_dividing_the_window),
        cmocka_unit_test(test_each_slot_is_due_once_per_slow_interval),
        cmocka_unit_test(test_slots_are_given_least_loaded_first),
        cmocka_unit_test(test_a_cycle_never_asks_every_qemu),
        cmocka_unit_test(test_the_budget_sheds_the_rest_in_turn),
        cmocka_unit_test(test_budget_allow_and_update),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
