/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdint.h>

#include "cm-db.h"

/*
 * The observations table: what each instance was seen doing, pass after pass, as stretches
 * of one state ('running', 'paused', 'shutoff', 'other', 'absent', or 'unreachable' while its
 * host's connection was down), from which the operations report computes availability. The
 * only file that writes `observations` (the reports read them in their read model).
 */

/* What one pass saw of an instance; @state NULL: it should have no domain (ended, or not
 * made yet), so its stretch ends where it was last seen. */
typedef struct {
    int64_t instance_id;
    const char *state;
} BrObservationSeen;

/**
 * br_observation_record:
 * Records one pass over host @host_id at @now (epoch seconds), inside the caller's write
 * transaction: an instance's open stretch is extended while its state stays the same, ended
 * and followed by a new one when it changes, and ended at its last pass when the passes
 * stopped coming for longer than @max_gap seconds (that time counts as not observed).
 * Returns: 0, or a negative errno with @err set.
 */
int br_observation_record(CmDb *db, int64_t host_id, const BrObservationSeen *seen, size_t n,
                          int64_t now, int64_t max_gap, CmError *err);
