/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

/*
 * One domain's counters from one bulk stats call, in our own types (only the collector sees
 * libvirt). A field libvirt did not report is marked missing, never zero.
 */
typedef struct {
    char uuid[37];
    char name[128];
    int domain_id; /* changes when the domain restarts */
    bool running;
    bool ours; /* carries the project's metadata */
    int64_t instance_id;
    /* The slow groups (balloon, block) were asked for this cycle; or they were due and the
     * cycle budget shed them. Without @slow, the balloon and disk fields say nothing. */
    bool slow, shed;

    bool has_cpu;
    uint64_t cpu_time_ns; /* cpu.time: all of the guest's vCPUs and QEMU's threads */
    bool has_vcpus;
    int64_t vcpus; /* vcpu.current, or the live count libvirt keeps (tiered) */
    bool has_balloon_current, has_balloon_available, has_balloon_unused, has_balloon_rss;
    int64_t balloon_current_kib, balloon_available_kib, balloon_unused_kib, balloon_rss_kib;
    bool has_disk;
    uint64_t disk_rd_bytes, disk_wr_bytes, disk_rd_reqs, disk_wr_reqs;
    bool has_net;
    uint64_t net_rx_bytes, net_tx_bytes, net_rx_pkts, net_tx_pkts;
} AgDomainStats;

/* The host, from node calls made once per cycle. */
typedef struct {
    bool has_cpu;
    uint64_t cpu_busy_ns, cpu_total_ns; /* summed over all CPUs */
    int64_t cpus, memory_mib;
    bool has_memory;
    int64_t memory_used_mib;
    int64_t domains;
} AgHostStats;
