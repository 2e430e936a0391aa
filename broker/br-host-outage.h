/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdint.h>

#include "cm-db.h"

/*
 * The broker's record of its hosts' lost connections (docs/service-quality.md): from the moment a
 * live connection to a host was lost to the moment one was made again. The service-quality
 * scorecard counts it as down time of the instances that should have run there. The only file
 * with SQL on host_outages.
 */

/**
 * br_host_outage_begin:
 * Records that the connection to host @host_id was lost at @at (cm_time_iso() form), unless an
 * outage of the host is open already (another broker's, or one a restart left open).
 * Returns: 0, or a negative errno with @err set.
 */
int br_host_outage_begin(CmDb *db, int64_t host_id, const char *at, CmError *err);

/**
 * br_host_outage_end:
 * Closes the open outage of host @host_id, if any, at @at: a connection was made.
 * Returns: 0, or a negative errno with @err set.
 */
int br_host_outage_end(CmDb *db, int64_t host_id, const char *at, CmError *err);
