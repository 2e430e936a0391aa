/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>

#include "br-finding.h"
#include "br-histogram.h"
#include "br-policy.h"
#include "br-role.h"
#include "br-store.h"
#include "cm-error.h"

typedef struct BrDaemon BrDaemon;

/*
 * Findings: idle, over- and under-provisioned instances, with their evidence and a right-sized
 * recommendation (policies/assessment.json). Whole days inside a rule's window come from the
 * daily rollups (percentiles from their merged histograms, exact to 1 %); the part-days at its
 * ends from the 5-minute samples. So a 30-day run over thousands of instances reads about a
 * day's samples, and a test's window of minutes reads samples only.
 */

/* Utilization histograms kept per size (vCPUs, MiB) the windows were measured at, so that a
 * percentile over a window in which the instance was resized is taken in cores (MiB) used,
 * then judged against the current size. */
#define BR_SIZED_HIST_SIZES 8
typedef struct {
    int n;
    int64_t size[BR_SIZED_HIST_SIZES];
    BrHistogram h[BR_SIZED_HIST_SIZES];
} BrSizedHist;

/**
 * br_sized_hist_util:
 * Returns: the quantile @q of what @sh counted, in cores (MiB) used — every bin's upper edge
 * times the size it was measured at, nearest rank — as a share of @current; exactly the bin
 * edge when every window had the current size; -1 when empty.
 */
double br_sized_hist_util(const BrSizedHist *sh, double q, int64_t current);

/* What one instance did over one window. */
typedef struct {
    int64_t window_seconds; /* the rule's window, for coverage */
    int64_t windows, readings, duration;
    /* Coverage: readings ÷ expected_total, where expected_total = the agent's reading rate
     * (expected readings ÷ seconds of the windows and days read) × span_seconds, the seconds
     * from the later of the window's start and the instance's first window to now: a day
     * without any window lowers it like any other gap. */
    double span_seconds;        /* set before finish */
    int64_t span_from;          /* epoch s: where the expected readings start */
    double seen_expected;       /* expected readings of the windows and rollup days read */
    double seen_seconds;        /* the seconds those windows and days span */
    double expected_total;      /* set by finish */
    BrHistogram cpu_h, mem_h;   /* utilization shares per window */
    BrSizedHist cpu_sh, mem_sh; /* the same, per size measured at */
    double cpu_wsum, cpu_w, cpu_max, mem_wsum, mem_w, mem_max;
    int64_t idle, checked; /* windows under the idle thresholds, windows with CPU data */
    double cpu_daily_max_sum, mem_daily_max_sum;
    int64_t days;
    int64_t rollup_days, sample_windows;
    /* internal: the day being accumulated from samples */
    int64_t cur_day;
    double cur_cpu_max, cur_mem_max;
} BrUsageStats;

typedef struct {
    bool idle, over, under;
    char rule[256];
    char rule_zh[384]; /* the same rule in Chinese, for the reports in Chinese */
    BrSize current, recommended, frees;
    double coverage, idle_share, cpu_p95_util, mem_p95_util;
    double cpu_stat_cores, mem_stat_mib; /* the statistic the recommendation sized on */
} BrVerdict;

/**
 * br_assess_verdict:
 * Applies the rules of @p to @idle_stats (the idle window) and @size_stats (the over/under
 * window) of an instance of @current size. Pure: tested without a database.
 * Returns: true when there is enough evidence (coverage) to judge; @ret holds the verdict.
 */
bool br_assess_verdict(const BrAssessmentPolicy *p, const BrUsageStats *idle_stats,
                       const BrUsageStats *size_stats, BrSize current, BrVerdict *ret);

/* One window of samples as the assessment reads it; a figure missing is NAN. */
typedef struct {
    int64_t start, duration, readings, expected;
    int64_t vcpus, memory_mib; /* the size measured at */
    double cpu_avg, cpu_max, mem_avg, mem_max, rx_bytes, tx_bytes;
} BrUsageWindow;

/* One day from its rollup row; its histograms (NULL: none) are shares of vcpus and memory_mib
 * (the day's largest size); a figure missing is NAN. */
typedef struct {
    int64_t windows, readings, expected, duration, vcpus, memory_mib;
    int64_t idle, checked; /* windows under the idle thresholds, windows with CPU data */
    const BrHistogram *cpu_h, *mem_h;
    double cpu_avg, cpu_max, mem_avg, mem_max;
} BrUsageDay;

/** br_usage_stats_add_window: adds one 5-minute (or other) sample window to @s. */
void br_usage_stats_add_window(BrUsageStats *s, const BrAssessmentPolicy *p,
                               const BrUsageWindow *w);

/** br_usage_stats_add_rollup: adds one whole day from its rollup row to @s. */
void br_usage_stats_add_rollup(BrUsageStats *s, const BrUsageDay *d);

/**
 * br_usage_stats_finish: closes the day being accumulated and computes the expected readings
 * over @s->span_seconds (set it first) at the reading rate of what was read.
 */
void br_usage_stats_finish(BrUsageStats *s);

/** br_usage_stats_coverage: Returns: min(1, readings ÷ expected), 0 without expected readings. */
double br_usage_stats_coverage(const BrUsageStats *s);

/**
 * br_assess_run:
 * Computes findings for every live production instance and records them in one transaction
 * (new ones open; live ones updated; those whose condition no longer holds resolved).
 * Returns: 0 with counts in @ret (JSON), or a negative errno with @err set.
 */
int br_assess_run(BrDaemon *d, const BrActor *actor, json_object **ret, CmError *err);

/**
 * br_assess_resolve_ended:
 * br_finding_resolve_ended() inside the caller's write transaction @db: resolves, with
 * @reason, the live findings of allocation @allocation_id whose instance or allocation has
 * ended, each audited as finding.resolved by the system. Called where a job ends, in the same
 * transaction as the state change.
 * Returns: the number of findings resolved, or a negative errno with @err set.
 */
int br_assess_resolve_ended(BrStore *store, CmDb *db, int64_t allocation_id, const char *reason,
                            CmError *err);

/**
 * br_assessor_start / br_assessor_stop:
 * The assessment run every run_interval_seconds of the policy (a CmWorker).
 * Returns: 0, or a negative errno with @err set; stop returns NULL and accepts NULL.
 */
typedef struct BrAssessor BrAssessor;
int br_assessor_start(BrDaemon *d, BrAssessor **ret, CmError *err);
BrAssessor *br_assessor_stop(BrAssessor *a);
