/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "ag-stats.h"
#include "cm-error.h"

/*
 * The agent's collector: the one place in the agent that includes <libvirt/libvirt.h>. Each
 * cycle is one virConnectGetAllDomainStats() call with NOWAIT for the groups asked, plus the
 * node's CPU and memory counters; then, tiered, one virDomainListGetStats() for the slow groups
 * of the domains whose turn it is. A domain's metadata (and, tiered, its vCPU count, which
 * libvirt keeps without asking QEMU) is read only when it first appears, restarts (its id
 * changes) or libvirt reports its metadata changed; the vCPU count again at each slow reading.
 *
 * Tiered, the CPU time does not come from the cpu-total group: libvirt 9.0 answers it with a
 * QMP query-stats to every QEMU (halt-polling times), as costly as the balloon group. It is
 * read per running domain with virDomainGetCPUStats() (the domain's cgroup, the source of
 * cpu.time), or virDomainGetInfo() where libvirt runs without cgroups (qemu:///session: the
 * QEMU process's /proc times, as cpu.time is there); neither involves QEMU.
 */
typedef struct AgCollector AgCollector;

/* The stats groups a bulk call asks for. */
typedef enum {
    AG_GROUPS_FAST = 1 << 0, /* state, interface: no QEMU monitor */
    AG_GROUPS_CPU = 1 << 1,  /* cpu-total; without it, the CPU time per domain (see above) */
    AG_GROUPS_SLOW = 1 << 2, /* balloon, block: libvirt asks each QEMU */
    AG_GROUPS_VCPU = 1 << 3, /* vcpu: libvirt asks each QEMU too */
    AG_GROUPS_ALL = AG_GROUPS_FAST | AG_GROUPS_CPU | AG_GROUPS_SLOW | AG_GROUPS_VCPU,
} AgGroups;

/**
 * ag_collector_new:
 * Prepares a collector for @uri (the connection is opened by ag_collector_sample()).
 * Returns: 0, or a negative errno with @err set.
 */
int ag_collector_new(const char *uri, AgCollector **ret, CmError *err);
AgCollector *ag_collector_free(AgCollector *c);

/**
 * ag_collector_sample:
 * One cycle: (re)connects when needed, then reads every domain's stats @groups (AgGroups) and
 * the host's. With AG_GROUPS_SLOW every record is marked slow; without AG_GROUPS_VCPU the vCPU
 * count is the one kept since the domain's last metadata or slow reading.
 * Returns: 0 with a malloc'ed array in @ret (its length in @ret_n), or a negative errno with
 * @err set when libvirt is unreachable (the caller records the gap and tries again).
 */
int ag_collector_sample(AgCollector *c, unsigned groups, AgDomainStats **ret, size_t *ret_n,
                        AgHostStats *host, CmError *err);

/**
 * ag_collector_sample_slow:
 * Reads the slow groups of the domains @want[i] of @stats (the array the last
 * ag_collector_sample() returned, @n long) in one virDomainListGetStats() call with NOWAIT,
 * and their vCPU counts; each domain read is marked slow in @stats.
 * Returns: the number of domains read, or a negative errno with @err set.
 */
int ag_collector_sample_slow(AgCollector *c, AgDomainStats *stats, size_t n, const bool *want,
                             CmError *err);

/** ag_collector_reconnects: Returns: connections opened so far (the first included). */
uint64_t ag_collector_connects(AgCollector *c);

/** ag_collector_connected: Returns: true while the connection is alive. */
bool ag_collector_connected(AgCollector *c);
