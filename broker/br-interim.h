/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * INTERIM (issue 10, wave 2): the reads that the requests' modules need of tables whose owner
 * modules other helpers are writing at the same time — findings (br-finding.c); those of
 * allocations and jobs moved to br-allocation.c and br-job.c. Each function moves to its
 * table's owner when that lands, and this file goes away. Reads only: nothing here
 * writes.
 */

#include <json-c/json.h>

#include "br-request.h"
#include "cm-db.h"

/**
 * br_interim_review_findings:
 * Department @department's live idle and over-provisioned findings, as the pre-review check
 * shows them, at most 100 (→ br-finding.c).
 * Returns: 0 and the array in @ret, or a negative errno with @err set.
 */
int br_interim_review_findings(CmDb *db, int64_t department, json_object **ret, CmError *err);
