/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>

#include "ag-config.h"
#include "cm-error.h"

typedef struct AgAgent AgAgent;

/**
 * ag_agent_new:
 * Opens the spool, restores the meters saved by the last run, prepares the collector, the
 * pusher and /metrics. Returns: 0, or a negative errno with @err set.
 */
int ag_agent_new(AgConfig *config, AgAgent **ret, CmError *err);
AgAgent *ag_agent_free(AgAgent *a);

/**
 * ag_agent_cycle:
 * One reading of every domain and the host; finished windows and the meters' state go to the
 * spool in one transaction. Returns: 0, or a negative errno (the cycle still counted as a gap).
 */
int ag_agent_cycle(AgAgent *a, CmError *err);

/** ag_agent_start / ag_agent_stop: the pusher and /metrics threads. */
int ag_agent_start(AgAgent *a, CmError *err);
void ag_agent_stop(AgAgent *a);
