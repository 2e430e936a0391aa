/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "ag-stats.h"
#include "cm-error.h"

/*
 * The agent's collector: the one place in the agent that includes <libvirt/libvirt.h>. Each
 * cycle is one virConnectGetAllDomainStats() call with NOWAIT, plus the node's CPU and memory
 * counters; a domain's metadata is read only when it first appears, restarts (its id changes)
 * or libvirt reports its metadata changed.
 */
typedef struct AgCollector AgCollector;

/**
 * ag_collector_new:
 * Prepares a collector for @uri (the connection is opened by ag_collector_sample()).
 * Returns: 0, or a negative errno with @err set.
 */
int ag_collector_new(const char *uri, AgCollector **ret, CmError *err);
AgCollector *ag_collector_free(AgCollector *c);

/**
 * ag_collector_sample:
 * One cycle: (re)connects when needed, then reads every domain's stats and the host's.
 * Returns: 0 with a malloc'ed array in @ret (its length in @ret_n), or a negative errno with
 * @err set when libvirt is unreachable (the caller records the gap and tries again).
 */
int ag_collector_sample(AgCollector *c, AgDomainStats **ret, size_t *ret_n, AgHostStats *host,
                        CmError *err);

/** ag_collector_reconnects: Returns: connections opened so far (the first included). */
uint64_t ag_collector_connects(AgCollector *c);

/** ag_collector_connected: Returns: true while the connection is alive. */
bool ag_collector_connected(AgCollector *c);
