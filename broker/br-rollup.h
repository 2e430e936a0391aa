/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "br-histogram.h"
#include "br-policy.h"

/*
 * The arithmetic of a daily rollup (pure: tests/unit/test-br-rollup.c): one instance's
 * 5-minute windows of one UTC day, in order, summed into the row br-metering.c stores.
 */

/* The counters of a window, in the rollup's column order. */
enum {
    BR_ROLLUP_DISK_RD_BYTES,
    BR_ROLLUP_DISK_WR_BYTES,
    BR_ROLLUP_DISK_RD_REQS,
    BR_ROLLUP_DISK_WR_REQS,
    BR_ROLLUP_NET_RX_BYTES,
    BR_ROLLUP_NET_TX_BYTES,
    BR_ROLLUP_NET_RX_PKTS,
    BR_ROLLUP_NET_TX_PKTS,
    BR_ROLLUP_COUNTERS,
};

/* One stored window; a figure missing is NAN (gauges) or -1 (counters, never negative). */
typedef struct {
    int64_t duration, readings, expected;
    int64_t vcpus, memory_mib; /* 0: missing */
    double cpu_avg, cpu_max, mem_avg, mem_max;
    int64_t counters[BR_ROLLUP_COUNTERS];
} BrRollupWindow;

/* One instance-day as stored: what is missing is NULL in the row (has_* false, 0 sizes). */
typedef struct {
    int64_t instance_id, windows, readings, expected, vcpus, memory_mib, duration;
    double coverage, cpu_avg, cpu_p95, cpu_max, mem_avg, mem_p95, mem_max, rx_p95, tx_p95;
    bool has_cpu, has_cpu_p95, has_cpu_max, has_mem, has_mem_p95, has_mem_max, has_rx, has_tx;
    int64_t counters[BR_ROLLUP_COUNTERS]; /* saturated at INT64_MAX */
    bool has_counter[BR_ROLLUP_COUNTERS];
    BrHistogram cpu_h, mem_h; /* utilization shares of vcpus and memory_mib; none when empty */
    int64_t idle_windows, idle_checked; /* windows under the assessment's idle thresholds */
} BrRollupRow;

/* The windows of one instance-day being summed. */
typedef struct {
    BrRollupRow row;
    double cpu_wsum, cpu_weight, mem_wsum, mem_weight;
    double *cpu_v, *mem_v, *rx_v, *tx_v; /* per window, for the exact percentiles */
    size_t n_cpu, n_mem, n_rx, n_tx, cap;
} BrRollupAcc;

/** br_rollup_begin: starts the day of instance @instance_id, keeping @a's memory. */
void br_rollup_begin(BrRollupAcc *a, int64_t instance_id);

/**
 * br_rollup_add:
 * Adds window @w; the idle thresholds of @p count the windows the assessment's idle rule
 * would call idle (it needs CPU and network of each window together, which no daily figure
 * keeps). Returns: 0, or -ENOMEM.
 */
int br_rollup_add(BrRollupAcc *a, const BrAssessmentPolicy *p, const BrRollupWindow *w);

/**
 * br_rollup_finish:
 * Returns: the day's row: readings-weighted averages, exact nearest-rank p95s of the windows,
 * maxima, counter sums, coverage = readings ÷ (a whole day of windows × the expected readings
 * per window), and the utilization histograms as shares of the day's largest size (a resize
 * during the day keeps every window's cores and MiB used).
 */
const BrRollupRow *br_rollup_finish(BrRollupAcc *a);

/** br_rollup_acc_free: frees @a's memory (not @a). */
void br_rollup_acc_free(BrRollupAcc *a);
