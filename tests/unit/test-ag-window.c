/* SPDX-License-Identifier: Apache-2.0 */
/* The agent's counters-to-windows math (ag-window.c) with synthetic bulk-stats readings:
 * no libvirt, no clock; every time and counter is given. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "ag-window.h"

/* cmocka 1.1 compares floats only: doubles within @eps, with both values in the message. */
#define assert_near(got, want, eps) near_((got), (want), (eps), #got, __LINE__)

static void near_(double got, double want, double eps, const char *what, int line)
{
    if (!(fabs(got - want) <= eps))
        fail_msg("line %d: %s is %.12g, want %.12g", line, what, got, want);
}

#define NS INT64_C(1000000000)
/* A wall time on a 300 s (and 10 s) boundary, and an arbitrary monotonic origin: the two
 * clocks are unrelated, as in the agent. */
#define T0 INT64_C(1700000100)
#define M0 (INT64_C(987654) * NS)
#define WIN 300
#define IVL 10
/* Tiers off (every group every cycle), as the agent was before tiers: these tests hold the
 * window's definitions; test_tier_* below hold the tiered readings. */
static const AgTiming TIMING = {WIN, IVL, IVL};
static const AgTiming T10 = {10, 1, 1};

static AgDomainStats running_domain(uint64_t cpu_ns)
{
    AgDomainStats s;
    memset(&s, 0, sizeof(s));
    snprintf(s.uuid, sizeof(s.uuid), "6a2b1f0e-2c3d-4e5f-8a9b-0c1d2e3f4a5b");
    snprintf(s.name, sizeof(s.name), "cb-1-0");
    s.domain_id = 7;
    s.running = true;
    s.slow = true;
    s.ours = true;
    s.instance_id = 42;
    s.has_cpu = true;
    s.cpu_time_ns = cpu_ns;
    s.has_vcpus = true;
    s.vcpus = 2;
    return s;
}

/* One observation @t seconds after T0 (wall) and after M0 (monotonic). */
static int observe_at(AgMeter *m, const AgDomainStats *s, int64_t t, AgWindow *w)
{
    return ag_meter_observe(m, s, M0 + t * NS, T0 + t, &TIMING, w);
}

static void meter(AgMeter *m)
{
    ag_meter_init(m, "6a2b1f0e-2c3d-4e5f-8a9b-0c1d2e3f4a5b", "cb-1-0", 42);
}

/* The windows a meter finished, in order. */
typedef struct {
    AgWindow w[32];
    int n;
} Got;

/* The window starting @t seconds after T0; fails the test when there is none. */
static const AgWindow *got_get(const Got *g, int64_t t)
{
    static const AgWindow none;
    for (int i = 0; i < g->n; i++)
        if (g->w[i].start == T0 + t)
            return &g->w[i];
    fail_msg("no window was finished for [%lld, %lld) (of %d)", (long long)t, (long long)(t + WIN),
             g->n);
    return &none;
}

static int got_readings(const Got *g)
{
    int n = 0;
    for (int i = 0; i < g->n; i++)
        n += g->w[i].readings;
    return n;
}

/* Feeds a domain using @cores cores from @from to @to (seconds after T0) every IVL seconds,
 * collecting the windows finished into @g; the CPU counter carries on from @cpu.
 * Returns: the number of windows finished. */
static int feed(AgMeter *m, uint64_t *cpu, double cores, int64_t from, int64_t to, Got *g)
{
    int done = 0;
    for (int64_t t = from; t <= to; t += IVL) {
        AgDomainStats s;
        AgWindow w;
        if (t > from)
            *cpu += (uint64_t)(cores * (double)IVL * (double)NS);
        s = running_domain(*cpu);
        if (observe_at(m, &s, t, &w)) {
            done++;
            assert_true(g->n < 32);
            g->w[g->n++] = w;
        }
    }
    return done;
}

static int flush_into(AgMeter *m, int64_t t, Got *g)
{
    AgWindow w;
    if (!ag_meter_flush(m, T0 + t, &TIMING, &w))
        return 0;
    assert_true(g->n < 32);
    g->w[g->n++] = w;
    return 1;
}

static void test_one_core_over_a_full_window(void **state)
{
    AgMeter m;
    Got g = {0};
    const AgWindow *w;
    uint64_t cpu = 5 * NS;
    (void)state;
    meter(&m);
    /* One core (1e9 ns of CPU per 1e9 ns) from a baseline before the window to past its
     * end: the reading at 300 is [290, 300), the window's last; the one at 310 is the next
     * window's first and finishes [0, 300). */
    assert_int_equal(feed(&m, &cpu, 1.0, -IVL, WIN, &g), 1); /* [-10, 0) ends window -300 */
    assert_int_equal(feed(&m, &cpu, 1.0, WIN, WIN + IVL, &g), 1);
    w = got_get(&g, 0);
    assert_string_equal(w->uuid, "6a2b1f0e-2c3d-4e5f-8a9b-0c1d2e3f4a5b");
    assert_string_equal(w->name, "cb-1-0");
    assert_int_equal(w->instance_id, 42);
    assert_int_equal(w->duration, WIN);
    assert_int_equal(w->expected, WIN / IVL);
    assert_int_equal(w->readings, WIN / IVL);
    assert_true(w->has_cpu);
    assert_near(w->cpu_avg, 1.0, 1e-9);
    assert_near(w->cpu_max, 1.0, 1e-9);
    assert_true(w->has_vcpus);
    assert_int_equal(w->vcpus, 2);
    /* Every window finished is aligned and within its bounds. */
    for (int i = 0; i < g.n; i++) {
        assert_int_equal(g.w[i].start % WIN, 0);
        assert_true(g.w[i].readings <= g.w[i].expected);
        assert_near(g.w[i].cpu_avg, 1.0, 1e-9);
    }
}

/* Cycles run on multiples of the interval (ag-main.c), so the reading made at a window's
 * first second measures the interval before it, which lies wholly in the previous window.
 * Each interval's CPU time belongs to the window it lies in. */
static void test_an_interval_counts_in_the_window_it_lies_in(void **state)
{
    AgMeter m;
    Got g = {0};
    AgDomainStats s;
    AgWindow w;
    const AgWindow *before, *inside;
    (void)state;
    meter(&m);
    /* One core during [-10, 0), then idle during [0, 20). */
    s = running_domain(0);
    assert_int_equal(observe_at(&m, &s, -IVL, &w), 0);
    s = running_domain(10 * NS);
    if (observe_at(&m, &s, 0, &w))
        g.w[g.n++] = w;
    s = running_domain(10 * NS);
    if (observe_at(&m, &s, IVL, &w))
        g.w[g.n++] = w;
    if (observe_at(&m, &s, 2 * IVL, &w))
        g.w[g.n++] = w;
    flush_into(&m, WIN, &g);
    inside = got_get(&g, 0);
    /* [0, 300) was idle throughout: its two readings are [0, 10) and [10, 20). */
    assert_near(inside->cpu_avg, 0.0, 1e-9);
    assert_near(inside->cpu_max, 0.0, 1e-9);
    /* The busy interval [-10, 0) is the previous window's. */
    before = got_get(&g, -WIN);
    assert_near(before->cpu_avg, 1.0, 1e-9);
}

static void test_avg_is_time_weighted_and_max_is_the_highest_reading(void **state)
{
    AgMeter m;
    AgWindow w;
    AgDomainStats s;
    uint64_t cpu = 0;
    (void)state;
    meter(&m);
    s = running_domain(cpu);
    assert_int_equal(observe_at(&m, &s, 0, &w), 0);
    /* 10 s at 0.5 core, 10 s at 1.5 cores, then a late cycle: 20 s at 0.25 core. */
    cpu += 5 * NS;
    s = running_domain(cpu);
    assert_int_equal(observe_at(&m, &s, 10, &w), 0);
    cpu += 15 * NS;
    s = running_domain(cpu);
    assert_int_equal(observe_at(&m, &s, 20, &w), 0);
    cpu += 5 * NS;
    s = running_domain(cpu);
    assert_int_equal(observe_at(&m, &s, 40, &w), 0);
    assert_int_equal(ag_meter_flush(&m, T0 + WIN, &TIMING, &w), 1);
    assert_int_equal(w.readings, 3);
    /* (5 + 15 + 5) s of CPU over 40 s: the late reading weighs twice. */
    assert_near(w.cpu_avg, 25.0 / 40.0, 1e-9);
    assert_near(w.cpu_max, 1.5, 1e-9);
    assert_true(w.cpu_avg <= w.cpu_max);
}

static void test_windows_align_to_the_epoch(void **state)
{
    AgMeter m;
    AgWindow w;
    AgDomainStats s;
    uint64_t cpu = 0;
    (void)state;
    meter(&m);
    /* Observations off the interval grid (an agent started at :07) still fall in windows
     * that start on multiples of the window length. */
    for (int64_t t = 7; t < WIN; t += IVL) {
        s = running_domain(cpu);
        assert_int_equal(observe_at(&m, &s, t, &w), 0);
        cpu += IVL * NS / 4;
    }
    s = running_domain(cpu);
    assert_int_equal(observe_at(&m, &s, WIN + 7, &w), 1);
    assert_int_equal(w.start, T0);
    assert_int_equal(w.start % WIN, 0);
    assert_int_equal(w.duration, WIN);
    /* 30 observations in [0, 300): the first is the baseline; 29 readings lie wholly in the
     * window, and the one from 297 to 307 straddles its end. */
    assert_true(w.readings == 29 || w.readings == 30);
    assert_int_equal(w.expected, 30);
    assert_near(w.cpu_avg, 0.25, 1e-9);

    /* Whichever window the straddling reading went to, the next one has at most it. */
    assert_int_equal(ag_meter_flush(&m, T0 + 2 * WIN, &TIMING, &w), w.readings == 29);
}

static void test_a_reading_in_the_next_window_finishes_the_previous_once(void **state)
{
    AgMeter m;
    Got g = {0};
    AgWindow w;
    uint64_t cpu = 0;
    (void)state;
    meter(&m);
    /* The reading at 300 ([290, 300)) is still the window's; the one at 310 finishes it. */
    assert_int_equal(feed(&m, &cpu, 0.5, 0, WIN, &g), 0);
    assert_int_equal(feed(&m, &cpu, 0.5, WIN, WIN + IVL, &g), 1);
    assert_int_equal(g.w[0].start, T0);
    assert_int_equal(g.w[0].readings, WIN / IVL);
    assert_near(g.w[0].cpu_avg, 0.5, 1e-9);
    /* More readings in the new window (up to [590, 600)) finish nothing more. */
    assert_int_equal(feed(&m, &cpu, 0.5, WIN + IVL, 2 * WIN, &g), 0);
    /* Flushing before the end of the window finishes nothing either. */
    assert_int_equal(ag_meter_flush(&m, T0 + 2 * WIN - 1, &TIMING, &w), 0);
}

static void test_expected_is_window_over_interval(void **state)
{
    AgMeter m;
    AgWindow w;
    AgDomainStats s;
    (void)state;
    meter(&m);
    s = running_domain(0);
    assert_int_equal(ag_meter_observe(&m, &s, M0, T0, &T10, &w), 0);
    for (int i = 1; i <= 11; i++) {
        s = running_domain((uint64_t)i * NS);
        int done = ag_meter_observe(&m, &s, M0 + i * NS, T0 + i, &T10, &w);
        assert_int_equal(done, i == 11); /* [10, 11) is the first reading of the next */
    }
    assert_int_equal(w.start, T0);
    assert_int_equal(w.duration, 10);
    assert_int_equal(w.expected, 10);
    /* [0, 1) .. [9, 10): the ten readings that lie in the window. */
    assert_int_equal(w.readings, 10);
    assert_near(w.cpu_avg, 1.0, 1e-9);
}

static void test_readings_are_capped_at_expected(void **state)
{
    AgMeter m;
    AgWindow w;
    AgDomainStats s;
    uint64_t cpu = 0;
    (void)state;
    meter(&m);
    /* Cycles every 5 s where 10 s were configured (a restarted agent, a clock step): 59
     * readings in a window that expects 30. Coverage never exceeds 1. */
    for (int64_t t = 0; t < WIN; t += 5) {
        s = running_domain(cpu);
        assert_int_equal(observe_at(&m, &s, t, &w), 0);
        cpu += 5 * NS;
    }
    assert_int_equal(ag_meter_flush(&m, T0 + WIN, &TIMING, &w), 1);
    assert_int_equal(w.expected, 30);
    assert_int_equal(w.readings, 30);
    assert_near(w.cpu_avg, 1.0, 1e-9);
}

static void test_counter_going_backwards_starts_a_new_baseline(void **state)
{
    AgMeter m;
    AgWindow w;
    AgDomainStats s;
    (void)state;
    meter(&m);
    s = running_domain(100 * NS);
    observe_at(&m, &s, 0, &w);
    s = running_domain(105 * NS); /* 0.5 core */
    observe_at(&m, &s, 10, &w);
    /* The domain restarted: cpu.time is back near zero. That interval is dropped. */
    s = running_domain(2 * NS);
    s.domain_id = 8;
    observe_at(&m, &s, 20, &w);
    s = running_domain(7 * NS); /* 0.5 core from the new baseline */
    s.domain_id = 8;
    observe_at(&m, &s, 30, &w);
    assert_int_equal(ag_meter_flush(&m, T0 + WIN, &TIMING, &w), 1);
    assert_int_equal(w.readings, 2);
    assert_true(w.has_cpu);
    assert_true(w.cpu_avg >= 0);
    assert_near(w.cpu_avg, 0.5, 1e-9);
    assert_near(w.cpu_max, 0.5, 1e-9);
}

/* A young domain restarted between two cycles: its new counter has already passed the old
 * baseline, so only the new domain id tells. That interval is dropped too. */
static void test_a_restart_with_a_counter_ahead_is_told_by_the_domain_id(void **state)
{
    AgMeter m;
    AgWindow w;
    AgDomainStats s;
    (void)state;
    meter(&m);
    s = running_domain(1 * NS);
    observe_at(&m, &s, 0, &w);
    s = running_domain(6 * NS); /* 0.5 core */
    observe_at(&m, &s, 10, &w);
    s = running_domain(9 * NS); /* restarted: 9 s of CPU since, more than the old 6 */
    s.domain_id = 8;
    observe_at(&m, &s, 20, &w);
    s = running_domain(14 * NS); /* 0.5 core from the new baseline */
    s.domain_id = 8;
    observe_at(&m, &s, 30, &w);
    assert_int_equal(ag_meter_flush(&m, T0 + WIN, &TIMING, &w), 1);
    assert_int_equal(w.readings, 2);
    assert_near(w.cpu_avg, 0.5, 1e-9);
    assert_near(w.cpu_max, 0.5, 1e-9);
}

static void test_disk_and_net_going_backwards_add_nothing(void **state)
{
    AgMeter m;
    AgWindow w;
    AgDomainStats s;
    (void)state;
    meter(&m);
    s = running_domain(0);
    s.has_disk = s.has_net = true;
    s.disk_rd_bytes = 1000, s.disk_wr_bytes = 2000, s.disk_rd_reqs = 10, s.disk_wr_reqs = 20;
    s.net_rx_bytes = 500, s.net_tx_bytes = 600, s.net_rx_pkts = 5, s.net_tx_pkts = 6;
    observe_at(&m, &s, 0, &w);
    /* +100 everywhere (and +1 request or packet) */
    s.cpu_time_ns += NS;
    s.disk_rd_bytes += 100, s.disk_wr_bytes += 100, s.disk_rd_reqs += 1, s.disk_wr_reqs += 1;
    s.net_rx_bytes += 100, s.net_tx_bytes += 100, s.net_rx_pkts += 1, s.net_tx_pkts += 1;
    observe_at(&m, &s, 10, &w);
    /* Everything reset (a new QEMU process): the interval adds nothing, never a huge
     * unsigned difference. */
    AgDomainStats z = running_domain(0);
    z.has_disk = z.has_net = true;
    observe_at(&m, &z, 20, &w);
    /* From the new baseline: +7 bytes each. */
    z.cpu_time_ns = NS;
    z.disk_rd_bytes = z.disk_wr_bytes = z.net_rx_bytes = z.net_tx_bytes = 7;
    observe_at(&m, &z, 30, &w);
    assert_int_equal(ag_meter_flush(&m, T0 + WIN, &TIMING, &w), 1);
    assert_int_equal(w.readings, 2);
    assert_true(w.has_disk);
    assert_true(w.has_net);
    assert_int_equal(w.disk_rd_bytes, 107);
    assert_int_equal(w.disk_wr_bytes, 107);
    assert_int_equal(w.disk_rd_reqs, 1);
    assert_int_equal(w.disk_wr_reqs, 1);
    assert_int_equal(w.net_rx_bytes, 107);
    assert_int_equal(w.net_tx_bytes, 107);
    assert_int_equal(w.net_rx_pkts, 1);
    assert_int_equal(w.net_tx_pkts, 1);
    assert_near(w.cpu_avg, 0.1, 1e-9);
}

static void test_a_gap_is_one_reading_covering_it(void **state)
{
    AgMeter m;
    Got g = {0}, after = {0};
    AgDomainStats s;
    AgWindow w;
    uint64_t cpu = 0;
    (void)state;
    meter(&m);
    /* Full readings in [0, 300) from a baseline in the window before. */
    feed(&m, &cpu, 1.0, -IVL, WIN - IVL, &g);
    /* Then nothing (libvirt away) until 630: [300, 600) has no observation at all. The flush
     * each cycle ends [0, 300) on time. */
    flush_into(&m, WIN + 5, &g);
    const AgWindow *first = got_get(&g, 0);
    assert_true(first->readings >= 29);
    assert_near(first->cpu_avg, 1.0, 1e-9);
    assert_int_equal(ag_meter_flush(&m, T0 + 2 * WIN + 5, &TIMING, &w), 0);
    /* The guest ran at one core throughout; the first reading after the gap covers all
     * 630 - 290 = 340 s once, the next one 10 s. */
    cpu += 340 * NS;
    s = running_domain(cpu);
    if (observe_at(&m, &s, 2 * WIN + 30, &w))
        after.w[after.n++] = w;
    cpu += IVL * NS;
    s = running_domain(cpu);
    if (observe_at(&m, &s, 2 * WIN + 40, &w))
        after.w[after.n++] = w;
    flush_into(&m, 3 * WIN, &after);
    flush_into(&m, 4 * WIN, &after);
    /* Two readings where 34 were expected: the gap shows as missing readings; no window is
     * made up for the gap, and no CPU time is lost or counted twice: still one core. */
    assert_true(after.n >= 1);
    assert_int_equal(got_readings(&after), 2);
    for (int i = 0; i < after.n; i++) {
        assert_int_equal(after.w[i].start % WIN, 0);
        assert_true(after.w[i].start >= T0 + WIN);
        assert_int_equal(after.w[i].expected, 30);
        assert_near(after.w[i].cpu_avg, 1.0, 1e-9);
        assert_near(after.w[i].cpu_max, 1.0, 1e-9);
    }
}

static void test_memory_from_balloon_else_rss(void **state)
{
    AgMeter m;
    AgWindow w;
    AgDomainStats s;
    (void)state;
    meter(&m);
    s = running_domain(0);
    s.has_balloon_current = true;
    s.balloon_current_kib = 1024 * 1024;
    s.has_balloon_available = s.has_balloon_unused = s.has_balloon_rss = true;
    s.balloon_available_kib = 1000 * 1024;
    s.balloon_unused_kib = 900 * 1024; /* 100 MiB used */
    s.balloon_rss_kib = 700 * 1024;    /* not used: the guest's own figure wins */
    observe_at(&m, &s, 0, &w);
    s.cpu_time_ns += NS;
    s.balloon_unused_kib = 700 * 1024; /* 300 MiB used */
    observe_at(&m, &s, 10, &w);
    assert_int_equal(ag_meter_flush(&m, T0 + WIN, &TIMING, &w), 1);
    assert_true(w.has_mem);
    assert_non_null(w.mem_source);
    assert_string_equal(w.mem_source, "balloon");
    assert_near(w.mem_avg, 200.0, 1e-9);
    assert_near(w.mem_max, 300.0, 1e-9);
    assert_true(w.has_memory_mib);
    assert_int_equal(w.memory_mib, 1024);

    /* No guest statistics (no balloon driver in the guest): the QEMU process's RSS. */
    meter(&m);
    s = running_domain(0);
    s.has_balloon_rss = true;
    s.balloon_rss_kib = 64 * 1024;
    observe_at(&m, &s, 0, &w);
    s.cpu_time_ns += NS;
    s.balloon_rss_kib = 128 * 1024;
    observe_at(&m, &s, 10, &w);
    assert_int_equal(ag_meter_flush(&m, T0 + WIN, &TIMING, &w), 1);
    assert_true(w.has_mem);
    assert_string_equal(w.mem_source, "rss");
    assert_near(w.mem_avg, 96.0, 1e-9);
    assert_near(w.mem_max, 128.0, 1e-9);

    /* available below unused is nonsense: RSS instead. */
    meter(&m);
    s = running_domain(0);
    s.has_balloon_available = s.has_balloon_unused = s.has_balloon_rss = true;
    s.balloon_available_kib = 100;
    s.balloon_unused_kib = 200;
    s.balloon_rss_kib = 10 * 1024;
    observe_at(&m, &s, 0, &w);
    s.cpu_time_ns += NS;
    observe_at(&m, &s, 10, &w);
    assert_int_equal(ag_meter_flush(&m, T0 + WIN, &TIMING, &w), 1);
    assert_string_equal(w.mem_source, "rss");
    assert_near(w.mem_avg, 10.0, 1e-9);
}

static void test_missing_fields_stay_missing(void **state)
{
    AgMeter m;
    AgWindow w;
    AgDomainStats s;
    (void)state;
    meter(&m);
    /* Only the CPU counter: no vCPUs, no balloon, no disks or interfaces reported. */
    s = running_domain(0);
    s.has_vcpus = false;
    s.vcpus = 0;
    observe_at(&m, &s, 0, &w);
    s.cpu_time_ns = 3 * NS;
    observe_at(&m, &s, 10, &w);
    assert_int_equal(ag_meter_flush(&m, T0 + WIN, &TIMING, &w), 1);
    assert_true(w.has_cpu);
    assert_false(w.has_vcpus);
    assert_false(w.has_memory_mib);
    assert_false(w.has_mem);
    assert_null(w.mem_source);
    assert_false(w.has_disk);
    assert_false(w.has_net);
    assert_int_equal(w.disk_rd_bytes, 0);
    assert_int_equal(w.net_rx_bytes, 0);

    /* No CPU counter, only the disks: a reading, but the CPU is missing, not zero. */
    meter(&m);
    s = running_domain(0);
    s.has_cpu = false;
    s.has_disk = true;
    s.disk_rd_bytes = 10;
    observe_at(&m, &s, 0, &w);
    s.disk_rd_bytes = 30;
    observe_at(&m, &s, 10, &w);
    assert_int_equal(ag_meter_flush(&m, T0 + WIN, &TIMING, &w), 1);
    assert_int_equal(w.readings, 1);
    assert_false(w.has_cpu);
    assert_true(w.has_disk);
    assert_int_equal(w.disk_rd_bytes, 20);
}

static void test_a_domain_not_running_gives_no_reading(void **state)
{
    AgMeter m;
    AgWindow w;
    AgDomainStats s;
    (void)state;
    meter(&m);
    /* Shut off (or paused) for a whole window: nothing to send. */
    for (int64_t t = 0; t < WIN; t += IVL) {
        s = running_domain(0);
        s.running = false;
        s.has_cpu = false;
        assert_int_equal(observe_at(&m, &s, t, &w), 0);
    }
    s = running_domain(0);
    s.running = false;
    assert_int_equal(observe_at(&m, &s, WIN, &w), 0);
    assert_int_equal(ag_meter_flush(&m, T0 + 2 * WIN, &TIMING, &w), 0);

    /* Running, paused, running: the paused intervals count nothing, and the interval from
     * the pause to the resume is not a reading either. */
    meter(&m);
    s = running_domain(10 * NS);
    observe_at(&m, &s, 0, &w);
    s = running_domain(20 * NS);
    observe_at(&m, &s, 10, &w); /* 1 core */
    s = running_domain(20 * NS);
    s.running = false;
    observe_at(&m, &s, 20, &w);
    observe_at(&m, &s, 30, &w);
    s = running_domain(25 * NS);
    observe_at(&m, &s, 40, &w); /* resumed: a new baseline */
    s = running_domain(35 * NS);
    observe_at(&m, &s, 50, &w); /* 1 core */
    assert_int_equal(ag_meter_flush(&m, T0 + WIN, &TIMING, &w), 1);
    assert_int_equal(w.readings, 2);
    assert_near(w.cpu_avg, 1.0, 1e-9);
}

static void test_flush_finishes_the_window_of_a_domain_not_seen(void **state)
{
    AgMeter m;
    Got g = {0}, later = {0};
    AgDomainStats s;
    AgWindow w;
    uint64_t cpu = 0;
    (void)state;
    meter(&m);
    /* Nothing to flush on a meter that never saw its domain. */
    assert_int_equal(ag_meter_flush(&m, T0 + 5 * WIN, &TIMING, &w), 0);

    assert_int_equal(feed(&m, &cpu, 0.25, 100, 200, &g), 0);
    /* Not yet at the end of the window. */
    assert_int_equal(ag_meter_flush(&m, T0 + WIN - 1, &TIMING, &w), 0);
    /* The domain vanished; its window still ends on time, once. */
    assert_int_equal(ag_meter_flush(&m, T0 + WIN, &TIMING, &w), 1);
    assert_int_equal(w.start, T0);
    assert_int_equal(w.readings, 10);
    assert_near(w.cpu_avg, 0.25, 1e-9);
    assert_int_equal(ag_meter_flush(&m, T0 + WIN + 1, &TIMING, &w), 0);
    assert_int_equal(ag_meter_flush(&m, T0 + 2 * WIN, &TIMING, &w), 0);

    /* It comes back in the next window: the baseline survived the flushes, so the one
     * reading from 200 to 600 (at 0.25 core) is not lost. */
    cpu += (uint64_t)(0.25 * 400 * (double)NS);
    s = running_domain(cpu);
    if (observe_at(&m, &s, 2 * WIN, &w))
        later.w[later.n++] = w;
    flush_into(&m, 3 * WIN, &later);
    flush_into(&m, 4 * WIN, &later);
    assert_int_equal(later.n, 1);
    assert_int_equal(later.w[0].readings, 1);
    assert_near(later.w[0].cpu_avg, 0.25, 1e-9);
}

static void test_unowned_domain_keeps_instance_zero(void **state)
{
    AgMeter m;
    AgWindow w;
    AgDomainStats s;
    (void)state;
    ag_meter_init(&m, "11111111-2222-3333-4444-555555555555", "someone-elses", 0);
    s = running_domain(0);
    snprintf(s.uuid, sizeof(s.uuid), "11111111-2222-3333-4444-555555555555");
    snprintf(s.name, sizeof(s.name), "someone-elses");
    s.ours = false;
    s.instance_id = 0;
    observe_at(&m, &s, 0, &w);
    s.cpu_time_ns = NS;
    observe_at(&m, &s, 10, &w);
    assert_int_equal(ag_meter_flush(&m, T0 + WIN, &TIMING, &w), 1);
    assert_int_equal(w.instance_id, 0);
    assert_string_equal(w.name, "someone-elses");
}

static AgHostStats host_stats(uint64_t busy_s, uint64_t total_s)
{
    AgHostStats h;
    memset(&h, 0, sizeof(h));
    h.has_cpu = true;
    h.cpu_busy_ns = busy_s * (uint64_t)NS;
    h.cpu_total_ns = total_s * (uint64_t)NS;
    h.cpus = 4;
    h.memory_mib = 16384;
    h.has_memory = true;
    h.memory_used_mib = 4096;
    h.domains = 3;
    return h;
}

static void test_host_meter(void **state)
{
    AgHostMeter m;
    AgHostWindow w;
    AgHostStats h;
    (void)state;
    memset(&m, 0, sizeof(m));
    /* 4 CPUs: 40 s of CPU time per 10 s. */
    h = host_stats(100, 1000);
    assert_int_equal(ag_host_meter_observe(&m, &h, 0.010, T0, WIN, IVL, &w), 0);
    h = host_stats(120, 1040); /* half busy: 2 cores */
    h.domains = 5;
    assert_int_equal(ag_host_meter_observe(&m, &h, 0.030, T0 + 10, WIN, IVL, &w), 0);
    h = host_stats(160, 1080); /* all busy: 4 cores */
    h.memory_used_mib = 8192;
    assert_int_equal(ag_host_meter_observe(&m, &h, 0.020, T0 + 20, WIN, IVL, &w), 0);
    /* A counter going back (a host reboot under a long-lived meter): no reading. */
    h = host_stats(1, 5);
    assert_int_equal(ag_host_meter_observe(&m, &h, 0.020, T0 + 30, WIN, IVL, &w), 0);
    h = host_stats(2, 45); /* 1/40 busy: 0.1 core, over [30, 310): mostly the next window */
    h.domains = 2;
    assert_int_equal(ag_host_meter_observe(&m, &h, 0.020, T0 + WIN + IVL, WIN, IVL, &w), 1);
    assert_int_equal(w.start, T0);
    assert_int_equal(w.duration, WIN);
    assert_int_equal(w.expected, 30);
    assert_int_equal(w.cpus, 4);
    assert_int_equal(w.memory_mib, 16384);
    assert_int_equal(w.domains_max, 5);
    assert_true(w.has_cpu);
    assert_near(w.cpu_avg, 3.0, 1e-9);
    assert_near(w.cpu_max, 4.0, 1e-9);
    assert_true(w.has_mem);
    assert_near(w.mem_avg, (4096.0 * 3 + 8192.0) / 4, 1e-9);
    assert_near(w.cycle_avg, (0.010 + 0.030 + 0.020 + 0.020) / 4, 1e-9);
    assert_near(w.cycle_max, 0.030, 1e-9);
    assert_true(w.readings <= w.expected);

    /* The next window started from the last baseline: 0.1 core. */
    h = host_stats(2, 45);
    assert_int_equal(ag_host_meter_observe(&m, &h, 0.020, T0 + 2 * WIN + IVL, WIN, IVL, &w), 1);
    assert_int_equal(w.start, T0 + WIN);
    assert_int_equal(w.readings, 1);
    assert_near(w.cpu_avg, 0.1, 1e-9);
    assert_int_equal(w.domains_max, 2);
}

static void test_host_meter_without_cpu_or_memory(void **state)
{
    AgHostMeter m;
    AgHostWindow w;
    AgHostStats h;
    (void)state;
    memset(&m, 0, sizeof(m));
    memset(&h, 0, sizeof(h));
    h.cpus = 2;
    for (int64_t t = 0; t < 10; t++)
        assert_int_equal(ag_host_meter_observe(&m, &h, 0.001, T0 + t, 10, 1, &w), 0);
    assert_int_equal(ag_host_meter_observe(&m, &h, 0.001, T0 + 10, 10, 1, &w), 1);
    assert_false(w.has_cpu);
    assert_false(w.has_mem);
    assert_int_equal(w.expected, 10);
    assert_int_equal(w.readings, 10);
}

/* ---- tiered: the slow groups (balloon, block) every 60 s, a slot of 6 ---- */

static const AgTiming TIERED = {WIN, IVL, 60};

/* A domain spinning one core, read every 10 s from @from to @to (seconds after T0); the slow
 * groups only on the ticks of @slot (of 6), with 1 MB read and 100 MiB + t/10 MiB used per
 * 10 s; the slow readings of the ticks in @shed_from..@shed_to are shed. Finished windows go
 * into @g. */
typedef struct {
    uint64_t cpu, disk;
} Counters;

static void feed_tiered(AgMeter *m, Counters *c, int slot, int64_t from, int64_t to,
                        int64_t shed_from, int64_t shed_to, Got *g)
{
    for (int64_t t = from; t <= to; t += IVL) {
        AgDomainStats s;
        AgWindow w;
        if (t > from) {
            c->cpu += (uint64_t)IVL * NS;
            c->disk += 1000000;
        }
        s = running_domain(c->cpu);
        s.slow = ag_tier_due(slot, ag_tier_slots(&TIERED), ag_tier_tick(&TIERED, T0 + t));
        if (s.slow && t >= shed_from && t <= shed_to) {
            s.slow = false;
            s.shed = true;
        }
        if (s.slow) {
            s.has_disk = true;
            s.disk_rd_bytes = c->disk;
            s.has_balloon_rss = true;
            s.balloon_rss_kib = (100 + t / 10) * 1024;
        }
        if (ag_meter_observe(m, &s, M0 + t * NS, T0 + t, &TIERED, &w)) {
            assert_true(g->n < 32);
            g->w[g->n++] = w;
        }
    }
}

static void test_tier_disk_read_every_minute_is_exact(void **state)
{
    AgMeter m;
    Counters c = {0, 0};
    Got g = {0};
    (void)state;
    meter(&m);
    /* Slot 0: the slow readings fall on the window's boundaries. */
    feed_tiered(&m, &c, 0, 0, 2 * WIN + IVL, -1, -1, &g);
    assert_int_equal(g.n, 2);
    for (int i = 0; i < 2; i++) {
        const AgWindow *w = &g.w[i];
        assert_int_equal(w->readings, 30);
        assert_int_equal(w->expected, 30);
        assert_int_equal(w->slow_expected, 5);
        /* The first window also has the observation at 0 that started the baseline. */
        assert_int_equal(w->memory_readings, i == 0 ? 6 : 5);
        assert_int_equal(w->disk_readings, 5);
        assert_int_equal(w->shed, 0);
        assert_true(w->has_disk);
        /* 30 intervals of 1 MB, read in 5 deltas of a minute: the same bytes. */
        assert_int_equal(w->disk_rd_bytes, 30000000);
        assert_near(w->cpu_avg, 1.0, 1e-9);
    }
    /* Memory: the mean of the observations the window has: t = 360, 420, ... 600 in the
     * second, 136, 142, 148, 154, 160 MiB; and 0, 60, ... 300 in the first. */
    assert_near(g.w[1].mem_avg, 148.0, 1e-9);
    assert_near(g.w[1].mem_max, 160.0, 1e-9);
    assert_near(g.w[0].mem_avg, 115.0, 1e-9);
    assert_string_equal(g.w[1].mem_source, "rss");
}

static void test_tier_staggered_disk_lands_where_its_reading_ends(void **state)
{
    AgMeter m;
    Counters c = {0, 0};
    Got g = {0};
    uint64_t sum = 0, last_read = 0;
    (void)state;
    meter(&m);
    /* Slot 3: read at 30, 90, ..., 270, 330, ...: the reading from 270 to 330 ends in the
     * second window and is counted there, whole. */
    feed_tiered(&m, &c, 3, 0, 3 * WIN + IVL, -1, -1, &g);
    assert_int_equal(g.n, 3);
    /* The first window: the baseline at 30, then 4 readings to 270. */
    assert_int_equal(g.w[0].disk_readings, 4);
    assert_int_equal(g.w[0].disk_rd_bytes, 24000000);
    assert_int_equal(g.w[0].memory_readings, 5);
    assert_int_equal(g.w[1].memory_readings, 5);
    for (int i = 1; i < 3; i++) {
        assert_int_equal(g.w[i].disk_readings, 5);
        /* [270, 570) and [570, 870): 30 intervals each, shifted by 30 s. */
        assert_int_equal(g.w[i].disk_rd_bytes, 30000000);
    }
    for (int i = 0; i < 3; i++)
        sum += g.w[i].disk_rd_bytes;
    /* Nothing lost or counted twice: the sum is the counter's increase from the first slow
     * reading (t = 30) to the last one in the third window (t = 870). */
    last_read = 87 * 1000000 - 3 * 1000000;
    assert_int_equal(sum, last_read);
}

static void test_tier_shed_readings_are_counted_and_cpu_stays(void **state)
{
    AgMeter m;
    Counters c = {0, 0};
    Got g = {0};
    (void)state;
    meter(&m);
    /* The slow readings at 420 and 480 (in the second window) are shed. */
    feed_tiered(&m, &c, 0, 0, 2 * WIN + IVL, WIN + 120, WIN + 180, &g);
    assert_int_equal(g.n, 2);
    assert_int_equal(g.w[0].shed, 0);
    assert_int_equal(g.w[1].shed, 2);
    assert_int_equal(g.w[1].memory_readings, 3);
    assert_int_equal(g.w[1].disk_readings, 3);
    /* The deltas stay exact: the reading after the shed ones covers their time. */
    assert_int_equal(g.w[1].disk_rd_bytes, 30000000);
    /* The CPU readings are never shed. */
    assert_int_equal(g.w[1].readings, 30);
    assert_near(g.w[1].cpu_avg, 1.0, 1e-9);
}

static void test_tier_pause_keeps_the_disk_baseline_restart_does_not(void **state)
{
    AgMeter m;
    AgWindow w;
    AgDomainStats s;
    (void)state;
    meter(&m);
    s = running_domain(0);
    s.has_disk = true;
    s.disk_rd_bytes = 1000;
    observe_at(&m, &s, 0, &w);
    /* Paused at 10: a fast observation only, no reading. */
    s.running = false;
    s.slow = false;
    observe_at(&m, &s, 10, &w);
    /* Running again, the slow groups read at 60: the bytes since 0 count. */
    s.running = true;
    s.slow = true;
    s.disk_rd_bytes = 5000;
    observe_at(&m, &s, 60, &w);
    s.slow = false;
    s.cpu_time_ns += NS;
    observe_at(&m, &s, 70, &w);
    assert_int_equal(ag_meter_flush(&m, T0 + WIN, &TIERED, &w), 1);
    assert_true(w.has_disk);
    assert_int_equal(w.disk_rd_bytes, 4000);
    assert_int_equal(w.disk_readings, 1);

    /* Restarted (a new domain id) between two slow readings: no delta across it. */
    meter(&m);
    s = running_domain(0);
    s.has_disk = true;
    s.disk_rd_bytes = 1000;
    observe_at(&m, &s, 0, &w);
    s.slow = false;
    s.domain_id = 8;
    observe_at(&m, &s, 10, &w);
    s.slow = true;
    s.disk_rd_bytes = 9000;
    s.cpu_time_ns += NS;
    observe_at(&m, &s, 60, &w);
    s.disk_rd_bytes = 9500;
    s.cpu_time_ns += NS;
    observe_at(&m, &s, 120, &w);
    assert_int_equal(ag_meter_flush(&m, T0 + WIN, &TIERED, &w), 1);
    assert_int_equal(w.disk_rd_bytes, 500);
    assert_int_equal(w.disk_readings, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_core_over_a_full_window),
        cmocka_unit_test(test_an_interval_counts_in_the_window_it_lies_in),
        cmocka_unit_test(test_avg_is_time_weighted_and_max_is_the_highest_reading),
        cmocka_unit_test(test_windows_align_to_the_epoch),
        cmocka_unit_test(test_a_reading_in_the_next_window_finishes_the_previous_once),
        cmocka_unit_test(test_expected_is_window_over_interval),
        cmocka_unit_test(test_readings_are_capped_at_expected),
        cmocka_unit_test(test_counter_going_backwards_starts_a_new_baseline),
        cmocka_unit_test(test_a_restart_with_a_counter_ahead_is_told_by_the_domain_id),
        cmocka_unit_test(test_disk_and_net_going_backwards_add_nothing),
        cmocka_unit_test(test_a_gap_is_one_reading_covering_it),
        cmocka_unit_test(test_memory_from_balloon_else_rss),
        cmocka_unit_test(test_missing_fields_stay_missing),
        cmocka_unit_test(test_a_domain_not_running_gives_no_reading),
        cmocka_unit_test(test_flush_finishes_the_window_of_a_domain_not_seen),
        cmocka_unit_test(test_unowned_domain_keeps_instance_zero),
        cmocka_unit_test(test_host_meter),
        cmocka_unit_test(test_host_meter_without_cpu_or_memory),
        cmocka_unit_test(test_tier_disk_read_every_minute_is_exact),
        cmocka_unit_test(test_tier_staggered_disk_lands_where_its_reading_ends),
        cmocka_unit_test(test_tier_shed_readings_are_counted_and_cpu_stays),
        cmocka_unit_test(test_tier_pause_keeps_the_disk_baseline_restart_does_not),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
