/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The arithmetic of a daily rollup (br-rollup.c), with figures worked out by hand: averages
 * weighted by readings, exact nearest-rank p95s, coverage over a whole day of windows,
 * counters summed with saturation, the idle windows counted, and the histograms as shares of
 * the day's largest size.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "br-rollup.h"

static BrAssessmentPolicy policy(void)
{
    return (BrAssessmentPolicy){
        .idle_cpu_cores = 0.03, .idle_net_in_bps = 2000, .idle_net_out_bps = 1000};
}

/* A 5-minute window of @readings of 30, every counter missing. */
static BrRollupWindow window(int64_t readings, int64_t vcpus, int64_t mem, double cpu, double used)
{
    BrRollupWindow w = {.duration = 300,
                        .readings = readings,
                        .expected = 30,
                        .vcpus = vcpus,
                        .memory_mib = mem,
                        .cpu_avg = cpu,
                        .cpu_max = cpu,
                        .mem_avg = used,
                        .mem_max = used};
    for (int k = 0; k < BR_ROLLUP_COUNTERS; k++)
        w.counters[k] = -1;
    return w;
}

static void near(double got, double want)
{
    if (fabs(got - want) > 1e-12)
        fail_msg("%.17g, want %.17g", got, want);
}

/* 30 readings at 1 core and 10 at 3: the average is weighted by readings, (30 + 30) / 40;
 * coverage is 40 readings of a day of 288 windows × 30. */
static void test_weighted_average_and_coverage(void **state)
{
    BrAssessmentPolicy p = policy();
    BrRollupAcc a = {0};
    BrRollupWindow w1 = window(30, 4, 4096, 1.0, 1024), w2 = window(10, 4, 4096, 3.0, 3072);
    const BrRollupRow *o;
    (void)state;

    br_rollup_begin(&a, 7);
    assert_int_equal(br_rollup_add(&a, &p, &w1), 0);
    assert_int_equal(br_rollup_add(&a, &p, &w2), 0);
    o = br_rollup_finish(&a);
    assert_int_equal(o->instance_id, 7);
    assert_int_equal(o->windows, 2);
    assert_int_equal(o->readings, 40);
    assert_int_equal(o->expected, 288 * 30);
    near(o->coverage, 40.0 / 8640.0);
    assert_true(o->has_cpu && o->has_mem);
    near(o->cpu_avg, 1.5);
    near(o->mem_avg, (1024.0 * 30 + 3072.0 * 10) / 40);
    near(o->cpu_max, 3.0);
    near(o->mem_max, 3072);
    assert_int_equal(o->vcpus, 4);
    assert_int_equal(o->memory_mib, 4096);
    assert_int_equal(o->duration, 300);
    br_rollup_acc_free(&a);
}

/* p95 of 20 windows at 0.1, 0.2, ... 2.0 cores: the 19th value (nearest rank ⌈0.95 × 20⌉). */
static void test_p95_nearest_rank(void **state)
{
    BrAssessmentPolicy p = policy();
    BrRollupAcc a = {0};
    const BrRollupRow *o;
    (void)state;

    br_rollup_begin(&a, 1);
    for (int i = 20; i >= 1; i--) { /* any order */
        BrRollupWindow w = window(30, 2, 1024, i / 10.0, 100);
        assert_int_equal(br_rollup_add(&a, &p, &w), 0);
    }
    o = br_rollup_finish(&a);
    assert_true(o->has_cpu_p95);
    near(o->cpu_p95, 1.9);
    near(o->mem_p95, 100);
    br_rollup_acc_free(&a);
}

/* A day of full coverage is 1, never more: more readings than expected are clamped. */
static void test_coverage_clamped(void **state)
{
    BrAssessmentPolicy p = policy();
    BrRollupAcc a = {0};
    (void)state;

    br_rollup_begin(&a, 1);
    for (int i = 0; i < 300; i++) {
        BrRollupWindow w = window(30, 1, 512, 0.5, 100);
        assert_int_equal(br_rollup_add(&a, &p, &w), 0);
    }
    near(br_rollup_finish(&a)->coverage, 1.0);
    br_rollup_acc_free(&a);
}

/* Counters: summed where reported, NULL where never reported, saturated, never wrapped. */
static void test_counters(void **state)
{
    BrAssessmentPolicy p = policy();
    BrRollupAcc a = {0};
    BrRollupWindow w1 = window(30, 1, 512, 0.5, 100), w2 = w1;
    const BrRollupRow *o;
    (void)state;

    w1.counters[BR_ROLLUP_DISK_RD_BYTES] = 1000;
    w2.counters[BR_ROLLUP_DISK_RD_BYTES] = 24;
    w1.counters[BR_ROLLUP_NET_TX_PKTS] = INT64_MAX - 5;
    w2.counters[BR_ROLLUP_NET_TX_PKTS] = 10;
    br_rollup_begin(&a, 1);
    br_rollup_add(&a, &p, &w1);
    br_rollup_add(&a, &p, &w2);
    o = br_rollup_finish(&a);
    assert_true(o->has_counter[BR_ROLLUP_DISK_RD_BYTES]);
    assert_int_equal(o->counters[BR_ROLLUP_DISK_RD_BYTES], 1024);
    assert_true(o->has_counter[BR_ROLLUP_NET_TX_PKTS]);
    assert_int_equal(o->counters[BR_ROLLUP_NET_TX_PKTS], INT64_MAX);
    assert_false(o->has_counter[BR_ROLLUP_DISK_WR_BYTES]);
    assert_false(o->has_rx); /* no rx figure: no p95 of it */
    br_rollup_acc_free(&a);
}

/* The idle rule per window: CPU under 0.03 cores with rx under 2000 B/s and tx under 1000 B/s
 * (a missing network figure is no traffic); windows without CPU are not checked. The p95 of
 * the rates is over the windows that have them. */
static void test_idle_windows(void **state)
{
    BrAssessmentPolicy p = policy();
    BrRollupAcc a = {0};
    BrRollupWindow quiet = window(30, 1, 512, 0.01, 100), busy_net = quiet, busy_cpu = quiet;
    BrRollupWindow no_cpu = quiet;
    const BrRollupRow *o;
    (void)state;

    quiet.counters[BR_ROLLUP_NET_RX_BYTES] = 300 * 1999;    /* 1999 B/s */
    busy_net.counters[BR_ROLLUP_NET_TX_BYTES] = 300 * 1000; /* 1000 B/s: not under */
    busy_cpu.cpu_avg = busy_cpu.cpu_max = 0.03;
    no_cpu.cpu_avg = no_cpu.cpu_max = NAN;
    br_rollup_begin(&a, 1);
    br_rollup_add(&a, &p, &quiet);
    br_rollup_add(&a, &p, &busy_net);
    br_rollup_add(&a, &p, &busy_cpu);
    br_rollup_add(&a, &p, &no_cpu);
    o = br_rollup_finish(&a);
    assert_int_equal(o->idle_checked, 3);
    assert_int_equal(o->idle_windows, 1);
    assert_true(o->has_rx && o->has_tx);
    near(o->rx_p95, 1999);
    near(o->tx_p95, 1000);
    near(o->cpu_avg, (0.01 * 2 + 0.03) * 30 / 90); /* the window without CPU weighs 0 */
    br_rollup_acc_free(&a);
}

/* Resized during the day: 1 core used of 2 vCPUs, then 1 of 4. The histogram holds shares of
 * the day's largest size (4): both windows at 25 %, so the cores used stay comparable. */
static void test_histogram_of_largest_size(void **state)
{
    BrAssessmentPolicy p = policy();
    BrRollupAcc a = {0};
    BrRollupWindow small = window(30, 2, 2048, 1.0, 1024), large = window(30, 4, 4096, 1.0, 1024);
    const BrRollupRow *o;
    (void)state;

    br_rollup_begin(&a, 1);
    br_rollup_add(&a, &p, &small);
    br_rollup_add(&a, &p, &large);
    o = br_rollup_finish(&a);
    assert_int_equal(o->vcpus, 4);
    assert_int_equal(o->cpu_h.count, 2);
    assert_int_equal(o->cpu_h.bins[25], 2);
    assert_int_equal(o->mem_h.bins[25], 2);
    br_rollup_acc_free(&a);
}

/* Nothing but timing: no figure, no histogram, every "has" false; the next instance starts
 * afresh on the same memory. */
static void test_missing_figures_and_reuse(void **state)
{
    BrAssessmentPolicy p = policy();
    BrRollupAcc a = {0};
    BrRollupWindow bare = window(30, 0, 0, NAN, NAN), full = window(30, 2, 2048, 1.0, 1024);
    const BrRollupRow *o;
    (void)state;

    br_rollup_begin(&a, 1);
    br_rollup_add(&a, &p, &full);
    br_rollup_finish(&a);
    br_rollup_begin(&a, 2);
    br_rollup_add(&a, &p, &bare);
    o = br_rollup_finish(&a);
    assert_int_equal(o->instance_id, 2);
    assert_int_equal(o->windows, 1);
    assert_false(o->has_cpu || o->has_cpu_p95 || o->has_cpu_max);
    assert_false(o->has_mem || o->has_mem_p95 || o->has_mem_max);
    assert_int_equal(o->vcpus, 0);
    assert_int_equal(o->memory_mib, 0);
    assert_int_equal(o->cpu_h.count, 0);
    assert_int_equal(o->idle_checked, 0);
    br_rollup_acc_free(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_weighted_average_and_coverage),
        cmocka_unit_test(test_p95_nearest_rank),
        cmocka_unit_test(test_coverage_clamped),
        cmocka_unit_test(test_counters),
        cmocka_unit_test(test_idle_windows),
        cmocka_unit_test(test_histogram_of_largest_size),
        cmocka_unit_test(test_missing_figures_and_reuse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
