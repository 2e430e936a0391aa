/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The assessment's pure part (br-assess.c), against docs/assessment.md with numbers worked out
 * by hand: coverage counts the days that are missing, a percentile over a window in which the
 * instance was resized is taken in what was used at the size it had, CPU measured above 100 %
 * is clamped, and the verdict sizes from those.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "br-assess.h"

#define DAY 86400
#define HOUR 3600

/* The shipped defaults (policies/assessment.json). */
static BrAssessmentPolicy policy(void)
{
    return (BrAssessmentPolicy){
        .idle_window = 14 * DAY,
        .over_window = 30 * DAY,
        .under_window = 30 * DAY,
        .idle_share = 0.95,
        .idle_cpu_cores = 0.03,
        .idle_net_in_bps = 2000,
        .idle_net_out_bps = 1000,
        .over_cpu_p95 = 0.40,
        .over_mem_p95 = 0.60,
        .under_cpu_p95 = 0.90,
        .under_mem_p95 = 0.90,
        .mode = BR_RIGHTSIZE_MODERATE,
        .headroom = 0.20,
        .min_vcpus = 1,
        .min_memory_mib = 512,
        .memory_step_mib = 256,
        .min_coverage = 0.80,
    };
}

/* One hourly window of 360 readings. */
static void window(BrUsageStats *s, const BrAssessmentPolicy *p, int64_t start, int64_t vcpus,
                   int64_t mem_mib, double cores, double mem_used)
{
    BrUsageWindow w = {start, HOUR,  360,      360,      vcpus,          mem_mib,
                       cores, cores, mem_used, mem_used, 50000.0 * HOUR, 20000.0 * HOUR};
    br_usage_stats_add_window(s, p, &w);
}

/* 30 days from t0, hourly, with the days @missing (0-based) never sent: 720 − 24 × n windows;
 * readings are expected over the whole 30 days (the span), so coverage = sent ÷ 720. */
static void test_coverage_counts_missing_days(void **state)
{
    BrAssessmentPolicy p = policy();
    BrUsageStats s;
    static const int missing[] = {2, 5, 8, 11, 14, 17, 20, 23, 26};
    int sent = 0;
    (void)state;
    memset(&s, 0, sizeof(s));
    for (int d = 0; d < 30; d++) {
        bool gone = false;
        for (size_t k = 0; k < sizeof(missing) / sizeof(*missing); k++)
            gone = gone || missing[k] == d;
        for (int h = 0; h < 24 && !gone; h++, sent++)
            window(&s, &p, (int64_t)d * DAY + h * HOUR, 4, 4096, 0.6, 1000);
    }
    s.span_seconds = 30.0 * DAY;
    br_usage_stats_finish(&s);
    assert_int_equal(sent, 21 * 24);
    /* 504 windows × 360 readings ÷ (30 days × 0.1 readings a second) = 0.70 */
    assert_true(fabs(br_usage_stats_coverage(&s) - 504.0 / 720.0) < 1e-12);

    /* Not judged at 70 %: the rule is never to judge on gaps. */
    BrVerdict v;
    BrUsageStats idle = s;
    assert_false(br_assess_verdict(&p, &idle, &s, (BrSize){4, 4096}, &v));
}

/* A whole day read from its rollup with no rollup for the next: the next still counts. */
static void test_coverage_rollup_days(void **state)
{
    BrAssessmentPolicy p = policy();
    BrUsageStats s;
    BrHistogram h;
    (void)state;
    (void)p;
    memset(&s, 0, sizeof(s));
    memset(&h, 0, sizeof(h));
    for (int i = 0; i < 24; i++)
        br_histogram_add(&h, 0.15);
    /* day 1: 24 windows (8640 readings of 8640); day 2: no row at all */
    br_usage_stats_add_rollup(&s, &(BrUsageDay){.windows = 24,
                                                .readings = 8640,
                                                .expected = 8640,
                                                .duration = HOUR,
                                                .vcpus = 4,
                                                .memory_mib = 4096,
                                                .idle = 0,
                                                .checked = 24,
                                                .cpu_h = &h,
                                                .mem_h = &h,
                                                .cpu_avg = 0.6,
                                                .cpu_max = 0.6,
                                                .mem_avg = 1000,
                                                .mem_max = 1000});
    s.span_seconds = 2.0 * DAY;
    br_usage_stats_finish(&s);
    assert_true(fabs(br_usage_stats_coverage(&s) - 0.5) < 1e-12);
}

/* Memory resized inside the window: 29 days at 4096 MiB using 1000 (24.4 % → bin 25 → 1024 MiB),
 * 26 hours at 2048 (48.8 % → bin 49 → 1003.52 MiB). p95 in MiB used = 1024 = 50 % of 2048:
 * over-provisioned, sized ⌈1024 × 1.2 ÷ 256⌉ × 256 = 1280 MiB (not 0.25 × 2048 → 768). */
static void test_resize_within_window(void **state)
{
    BrAssessmentPolicy p = policy();
    BrUsageStats s;
    BrVerdict v;
    int64_t t = 0;
    (void)state;
    memset(&s, 0, sizeof(s));
    for (int i = 0; i < 720 - 26; i++, t += HOUR)
        window(&s, &p, t, 2, 4096, 0.31, 1000);
    for (int i = 0; i < 26; i++, t += HOUR)
        window(&s, &p, t, 2, 2048, 0.31, 1000);
    s.span_seconds = 30.0 * DAY;
    br_usage_stats_finish(&s);
    assert_true(fabs(br_sized_hist_util(&s.mem_sh, 0.95, 2048) - 0.5) < 1e-12);
    BrUsageStats idle = s;
    assert_true(br_assess_verdict(&p, &idle, &s, (BrSize){2, 2048}, &v));
    assert_false(v.idle);
    assert_true(v.over);
    assert_int_equal(v.recommended.memory_mib, 1280);
    assert_int_equal(v.recommended.vcpus, 1); /* 0.31 / 2 → 0.16 × 2 × 1.2 = 0.384 → 1 */
    assert_true(fabs(v.mem_stat_mib - 1024) < 1e-9);
    assert_non_null(strstr(v.rule, "p95 memory 50 % of 2048 MiB (below 60 %)"));
    assert_non_null(strstr(v.rule_zh, "内存第95百分位为 2048 MiB 的 50 %（低于 60 %）"));
}

/* Without a resize the quantile is exactly the bin edge of the current size. */
static void test_one_size_exact(void **state)
{
    BrSizedHist sh;
    (void)state;
    memset(&sh, 0, sizeof(sh));
    sh.n = 1;
    sh.size[0] = 4;
    for (int i = 0; i < 100; i++)
        br_histogram_add(&sh.h[0], i < 50 ? 0.275 : 0.05); /* bins 28 and 5 */
    assert_true(br_sized_hist_util(&sh, 0.95, 4) == 0.28);
    assert_true(br_sized_hist_util(&sh, 0.95, 8) == 0.14); /* 1.12 cores of 8 */
    memset(&sh, 0, sizeof(sh));
    assert_true(br_sized_hist_util(&sh, 0.95, 4) == -1);
}

/* 2.1 cores measured on 2 vCPUs (105 %): clamped to 100 % → p95 1.00 > 0.90, under-provisioned,
 * ⌈1.00 × 2 × 1.2⌉ = 3 vCPUs; memory 3000 / 4096 = 73 % → 0.74: neither. */
static void test_cpu_above_100(void **state)
{
    BrAssessmentPolicy p = policy();
    BrUsageStats s;
    BrVerdict v;
    (void)state;
    memset(&s, 0, sizeof(s));
    for (int i = 0; i < 720; i++)
        br_usage_stats_add_window(&s, &p,
                                  &(BrUsageWindow){(int64_t)i * HOUR, HOUR, 360, 360, 2, 4096, 2.1,
                                                   2.2, 3000, 3050, 50000.0 * HOUR,
                                                   20000.0 * HOUR});
    s.span_seconds = 30.0 * DAY;
    br_usage_stats_finish(&s);
    BrUsageStats idle = s;
    assert_true(br_assess_verdict(&p, &idle, &s, (BrSize){2, 4096}, &v));
    assert_true(v.under);
    assert_false(v.over);
    assert_int_equal(v.recommended.vcpus, 3);
    assert_int_equal(v.recommended.memory_mib, 4096);
    assert_int_equal(v.frees.vcpus, -1);
    assert_true(fabs(v.cpu_p95_util - 1.0) < 1e-12);
    assert_true(fabs(s.cpu_max - 2.2) < 1e-12); /* the evidence keeps what was measured */
}

/* One hourly window with its network rates and its CPU maximum given. */
static void net_window(BrUsageStats *s, const BrAssessmentPolicy *p, int64_t start, int64_t vcpus,
                       int64_t mem_mib, double cores, double cores_max, double mem_used,
                       double rx_bps, double tx_bps)
{
    BrUsageWindow w = {start, HOUR,      360,      360,      vcpus,         mem_mib,
                       cores, cores_max, mem_used, mem_used, rx_bps * HOUR, tx_bps * HOUR};
    br_usage_stats_add_window(s, p, &w);
}

/* 14 days at 0.01 cores with 100 B/s each way: idle in every window (≥ 95 % needed), so
 * the whole instance is reclaimable. */
static void test_idle(void **state)
{
    BrAssessmentPolicy p = policy();
    BrUsageStats s;
    BrVerdict v;
    (void)state;
    memset(&s, 0, sizeof(s));
    for (int i = 0; i < 14 * 24; i++)
        net_window(&s, &p, (int64_t)i * HOUR, 2, 2048, 0.01, 0.01, 300, 100, 100);
    s.span_seconds = 14.0 * DAY;
    br_usage_stats_finish(&s);
    assert_true(br_assess_verdict(&p, &s, &s, (BrSize){2, 2048}, &v));
    assert_true(v.idle);
    assert_true(fabs(v.idle_share - 1) < 1e-12);
    assert_true(fabs(v.coverage - 1) < 1e-12);
    assert_int_equal(v.recommended.vcpus, 0);
    assert_int_equal(v.recommended.memory_mib, 0);
    assert_int_equal(v.frees.vcpus, 2);
    assert_int_equal(v.frees.memory_mib, 2048);
    assert_string_equal(v.rule, "idle in 100.0 % of windows (at least 95 % needed): CPU below "
                                "0.03 cores, network below 2000 B/s in and 1000 B/s out");
}

/* The same with 17 of the 336 windows receiving 5000 B/s: idle in 94.9 %, short of 95 %. The
 * sizing rules judge it instead: p95 CPU 0.5 % of 2 vCPUs → bin 1 → 0.02 cores × 1.2 → 1 vCPU;
 * memory 300 of 2048 MiB (14.6 % → bin 15 → 307.2 MiB) × 1.2 → 2 steps of 256 = 512 MiB. */
static void test_idle_short_of_share(void **state)
{
    BrAssessmentPolicy p = policy();
    BrUsageStats s;
    BrVerdict v;
    (void)state;
    memset(&s, 0, sizeof(s));
    for (int i = 0; i < 14 * 24; i++)
        net_window(&s, &p, (int64_t)i * HOUR, 2, 2048, 0.01, 0.01, 300, i % 20 == 0 ? 5000 : 100,
                   100);
    s.span_seconds = 14.0 * DAY;
    br_usage_stats_finish(&s);
    assert_int_equal(s.idle, 336 - 17);
    assert_true(br_assess_verdict(&p, &s, &s, (BrSize){2, 2048}, &v));
    assert_false(v.idle);
    assert_true(fabs(v.idle_share - 319.0 / 336.0) < 1e-12);
    assert_true(v.over);
    assert_false(v.under);
    assert_int_equal(v.recommended.vcpus, 1);
    assert_int_equal(v.recommended.memory_mib, 512);
    assert_int_equal(v.frees.vcpus, 1);
    assert_int_equal(v.frees.memory_mib, 1536);
}

/* Idle in every window sent, but 4 of the 14 days never came: 71 % coverage, not judged. */
static void test_idle_needs_coverage(void **state)
{
    BrAssessmentPolicy p = policy();
    BrUsageStats s;
    BrVerdict v;
    (void)state;
    memset(&s, 0, sizeof(s));
    for (int i = 0; i < 10 * 24; i++)
        net_window(&s, &p, (int64_t)i * HOUR, 2, 2048, 0.01, 0.01, 300, 100, 100);
    s.span_seconds = 14.0 * DAY;
    br_usage_stats_finish(&s);
    assert_true(fabs(br_usage_stats_coverage(&s) - 10.0 / 14.0) < 1e-12);
    assert_false(br_assess_verdict(&p, &s, &s, (BrSize){2, 2048}, &v));
    assert_false(v.idle || v.over || v.under);
}

/* 30 days on 4 vCPUs at 0.2 cores (5 % → bin 5), one window a day peaking at 0.5 cores on even
 * days and 2.5 on odd ones; memory 1000 of 4096 MiB. Each mode sizes from its statistic:
 * moderate the p95 (0.2 cores → ⌈0.24⌉ = 1 vCPU; 1024 MiB → 1280), conservative the maximum
 * (2.5 → ⌈3.0⌉ = 3; 1000 → 1280), aggressive the mean daily maximum (1.5 → ⌈1.8⌉ = 2). */
static void test_modes(void **state)
{
    static const struct {
        BrRightsizeMode mode;
        int64_t vcpus;
        double stat;
    } want[] = {{BR_RIGHTSIZE_MODERATE, 1, 0.2},
                {BR_RIGHTSIZE_CONSERVATIVE, 3, 2.5},
                {BR_RIGHTSIZE_AGGRESSIVE, 2, 1.5}};
    BrUsageStats s;
    (void)state;
    for (size_t m = 0; m < sizeof(want) / sizeof(*want); m++) {
        BrAssessmentPolicy p = policy();
        BrVerdict v;
        p.mode = want[m].mode;
        memset(&s, 0, sizeof(s));
        for (int i = 0; i < 30 * 24; i++)
            net_window(&s, &p, (int64_t)i * HOUR, 4, 4096, 0.2,
                       i % 24 == 12 ? (i / 24 % 2 ? 2.5 : 0.5) : 0.2, 1000, 100, 100);
        s.span_seconds = 30.0 * DAY;
        br_usage_stats_finish(&s);
        assert_true(br_assess_verdict(&p, &s, &s, (BrSize){4, 4096}, &v));
        assert_true(v.over);
        assert_true(fabs(v.cpu_stat_cores - want[m].stat) < 1e-9);
        assert_int_equal(v.recommended.vcpus, want[m].vcpus);
        assert_int_equal(v.recommended.memory_mib, 1280);
        assert_int_equal(v.frees.vcpus, 4 - want[m].vcpus);
    }
}

/* CPU over-provisioned while memory runs short (1950 of 2048 MiB: 95.2 % → bin 96): each
 * dimension moves the way its own rule fired, vCPUs down to 1 and memory up to
 * ⌈1966.08 × 1.2 ÷ 256⌉ × 256 = 2560 MiB; the finding is both. */
static void test_each_dimension_its_way(void **state)
{
    BrAssessmentPolicy p = policy();
    BrUsageStats s;
    BrVerdict v;
    (void)state;
    memset(&s, 0, sizeof(s));
    for (int i = 0; i < 30 * 24; i++)
        net_window(&s, &p, (int64_t)i * HOUR, 4, 2048, 0.2, 0.2, 1950, 100, 100);
    s.span_seconds = 30.0 * DAY;
    br_usage_stats_finish(&s);
    assert_true(br_assess_verdict(&p, &s, &s, (BrSize){4, 2048}, &v));
    assert_true(v.over);
    assert_true(v.under);
    assert_int_equal(v.recommended.vcpus, 1);
    assert_int_equal(v.recommended.memory_mib, 2560);
    assert_int_equal(v.frees.memory_mib, -512);
    assert_string_equal(v.rule, "p95 CPU 5 % of 4 vCPUs (below 40 %); p95 memory 96 % of 2048 MiB "
                                "(above 90 %)");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_coverage_counts_missing_days),
        cmocka_unit_test(test_coverage_rollup_days),
        cmocka_unit_test(test_resize_within_window),
        cmocka_unit_test(test_one_size_exact),
        cmocka_unit_test(test_cpu_above_100),
        cmocka_unit_test(test_idle),
        cmocka_unit_test(test_idle_short_of_share),
        cmocka_unit_test(test_idle_needs_coverage),
        cmocka_unit_test(test_modes),
        cmocka_unit_test(test_each_dimension_its_way),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
