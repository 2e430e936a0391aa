/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include "br-api.h"
#include "br-review.h"
#include "cm-time.h"

/* One row of `requests`, as the handlers use it. */
typedef struct {
    int64_t id, department_id, system_id, allocation_id, consultant_id, created_by, version;
    BrRequestKind kind;
    BrRequestState state;
    BrResources totals;
    char *resources; /* compact JSON, or NULL */
    char *justification;
    bool restart_allowed;
    char created_at[CM_TIME_ISO_LEN + 1];
    char updated_at[CM_TIME_ISO_LEN + 1];
    int64_t trial_allocation_id;
    char trial_deadline[CM_TIME_ISO_LEN + 1];
} BrRequestRow;

void br_request_row_clear(BrRequestRow *r);

/**
 * br_request_load:
 * Reads request @id if the caller may see it.
 * Returns: 0, or a negative errno with c->err set (404 for requests the caller may not see).
 */
int br_request_load(BrCall *c, CmDb *db, int64_t id, BrRequestRow *ret);

/**
 * br_request_review:
 * Runs the pre-review check for @row. Returns: 0 with the JSON in @ret_check (optional) and
 * the outcome in @ret_outcome (optional), or a negative errno with c->err set.
 */
int br_request_review(BrCall *c, CmDb *db, const BrRequestRow *row, json_object **ret_check,
                      BrReviewOutcome *ret_outcome);
