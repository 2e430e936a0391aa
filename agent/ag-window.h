/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "ag-stats.h"
#include "ag-tier.h"

/*
 * Turning counters into windows, without libvirt or I/O (and so tested alone). A reading is
 * the interval between two observations of a domain; its rates (CPU cores, bytes) come from the
 * counters' deltas over the monotonic time between them. A counter that goes backwards
 * (reboot, migration) starts a new baseline and that interval is dropped, never negative. The
 * last counters are kept across a lost connection, so the first reading after it covers the
 * whole gap (one reading where many were expected: the gap shows as missing readings).
 *
 * Tiered: the slow groups come only in the cycles that asked for them (AgDomainStats.slow).
 * Disk counters keep a baseline of their own, from one slow observation to the next, so their
 * deltas stay exact however rarely they are read; memory's average is over the observations
 * the window has. The window says how many of each it had (memory_readings, disk_readings, out
 * of slow_expected) and how many the cycle budget shed.
 */

/* A finished window, ready to be sent. */
typedef struct {
    char uuid[37];
    char name[128];
    int64_t instance_id; /* 0: unowned */
    int64_t start, duration;
    int readings, expected;
    int memory_readings, disk_readings, slow_expected, shed;
    bool has_vcpus;
    int64_t vcpus;
    bool has_memory_mib;
    int64_t memory_mib;
    bool has_cpu;
    double cpu_avg, cpu_max; /* cores */
    bool has_mem;
    double mem_avg, mem_max; /* MiB */
    const char *mem_source;  /* "balloon" or "rss" */
    bool has_disk;
    uint64_t disk_rd_bytes, disk_wr_bytes, disk_rd_reqs, disk_wr_reqs;
    bool has_net;
    uint64_t net_rx_bytes, net_tx_bytes, net_rx_pkts, net_tx_pkts;
} AgWindow;

/* One domain being metered. Plain data: it is saved as bytes in the spool each cycle, so a
 * restarted agent continues the window it was filling. */
typedef struct {
    char uuid[37];
    char name[128];
    int64_t instance_id;
    int64_t last_seen_wall;

    /* The baseline: the last counters and when they were read. */
    bool have_base;
    int64_t base_mono_ns;
    int base_domain_id; /* a restarted domain gets a new id: its counters start again */
    bool base_has_cpu, base_has_disk, base_has_net;
    uint64_t base_cpu_ns;
    uint64_t base_disk[4], base_net[4];
    bool have_slow_base; /* the disk baseline is from a slow observation of a running domain */
    int slot;            /* the tier slot of its slow readings; -1: none yet */
    bool has_last_mem;
    double last_mem; /* the last memory value read (for /metrics between slow readings) */

    /* The window being filled. */
    int64_t window_start; /* -1: none yet */
    int readings;
    double cpu_core_ns, cpu_dt_ns, cpu_max; /* sum of cores x time, time, max rate */
    int cpu_readings;
    double mem_sum, mem_max;
    int mem_readings, disk_readings, shed;
    int mem_source; /* 0: none, 1: balloon, 2: rss (a number, so the meter is plain data) */
    bool has_vcpus, has_memory_mib;
    int64_t vcpus, memory_mib;
    bool has_disk, has_net;
    uint64_t disk[4], net[4];
} AgMeter;

/** ag_meter_init: an empty meter for a domain. */
void ag_meter_init(AgMeter *m, const char *uuid, const char *name, int64_t instance_id);

/**
 * ag_meter_observe:
 * Takes one observation made at @mono_ns (CLOCK_MONOTONIC) and @wall_s (seconds since the
 * epoch). When @wall_s is past the window being filled, that window is finished first and
 * written to @ret_done (returns 1). Windows are @t->window long, aligned to the epoch, and
 * expect window / interval readings, and window / slow_interval of the slow groups.
 * Returns: 1 when a window was finished into @ret_done, else 0.
 */
int ag_meter_observe(AgMeter *m, const AgDomainStats *s, int64_t mono_ns, int64_t wall_s,
                     const AgTiming *t, AgWindow *ret_done);

/**
 * ag_meter_flush:
 * Finishes the window being filled when @wall_s is past its end (the domain was not seen,
 * or the cycle came late). Returns: 1 when a window was finished into @ret_done, else 0.
 */
int ag_meter_flush(AgMeter *m, int64_t wall_s, const AgTiming *t, AgWindow *ret_done);

/* The host's own windows. */
typedef struct {
    bool have_base;
    uint64_t base_busy, base_total;
    int64_t window_start;
    int64_t last_wall; /* when the last reading was taken */
    int readings;
    double cpu_sum, cpu_max;
    int cpu_readings;
    double mem_sum;
    int mem_readings;
    int64_t cpus, memory_mib, domains_max;
    double cycle_sum, cycle_max;
} AgHostMeter;

typedef struct {
    int64_t start, duration;
    int readings, expected;
    int64_t cpus, memory_mib, domains_max;
    bool has_cpu, has_mem;
    double cpu_avg, cpu_max, mem_avg;
    double cycle_avg, cycle_max;
} AgHostWindow;

/** ag_host_meter_observe: as ag_meter_observe() for the host; @cycle_s is the cycle's time. */
int ag_host_meter_observe(AgHostMeter *m, const AgHostStats *s, double cycle_s, int64_t wall_s,
                          int64_t window_s, int64_t interval_s, AgHostWindow *ret_done);
