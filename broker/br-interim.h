/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * INTERIM (issue 10, wave 2): the reads that the requests' modules need of tables whose owner
 * modules other helpers are writing at the same time — allocations (br-allocation.c),
 * findings (br-finding.c), jobs (br-job.c). Each function moves
 * to its table's owner when that lands, and this file goes away. Reads only: nothing here
 * writes.
 */

#include <json-c/json.h>

#include "br-request.h"
#include "cm-db.h"

/* What the requests need of an allocation. */
typedef struct {
    char state[32];
    BrResources size;
} BrInterimAllocation;

/**
 * br_interim_allocation_get:
 * Reads allocation @id, of @department and @system when they are not 0 (→ br-allocation.c).
 * Returns: 1 with @ret filled, 0 when there is none, or a negative errno with @err set.
 */
int br_interim_allocation_get(CmDb *db, int64_t id, int64_t department, int64_t system,
                              BrInterimAllocation *ret, CmError *err);

/**
 * br_interim_allocation_usage:
 * Adds what department @department's production allocations hold to @ret: the live ones all
 * they have, the retained ones their disks (→ br-allocation.c).
 * Returns: 0, or a negative errno with @err set.
 */
int br_interim_allocation_usage(CmDb *db, int64_t department, BrResources *ret, CmError *err);

/**
 * br_interim_review_findings:
 * Department @department's live idle and over-provisioned findings, as the pre-review check
 * shows them, at most 100 (→ br-finding.c).
 * Returns: 0 and the array in @ret, or a negative errno with @err set.
 */
int br_interim_review_findings(CmDb *db, int64_t department, json_object **ret, CmError *err);

/**
 * br_interim_request_jobs:
 * The jobs working for request @request, oldest first (→ br-job.c).
 * Returns: 0 and the array in @ret, or a negative errno with @err set.
 */
int br_interim_request_jobs(CmDb *db, int64_t request, json_object **ret, CmError *err);
