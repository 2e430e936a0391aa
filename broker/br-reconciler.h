/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdint.h>

#include "br-event.h"

typedef struct BrDaemon BrDaemon;
typedef struct BrReconciler BrReconciler;

/*
 * The reconciler compares, on an interval, every connected host's domains with what the
 * database says should be there. An instance stopped, paused or missing out of band, and a
 * domain that no allocation owns, each become an event (GET /v1/events) and count in
 * /metrics. It records what it sees (events, each instance's observed state); it never
 * rewrites the workflow's own records to match, and never judges what a job of the broker is
 * making or removing.
 */

/** br_reconciler_start: starts its loop. Returns: 0, or a negative errno with @err. */
int br_reconciler_start(BrDaemon *d, BrReconciler **ret, CmError *err);

/** br_reconciler_stop: stops and frees. Accepts NULL. Returns: NULL. */
BrReconciler *br_reconciler_stop(BrReconciler *r);

/** br_reconciler_counts: events opened per kind since start. */
void br_reconciler_counts(BrReconciler *r, uint64_t ret[BR_EVENT_KIND_MAX]);
