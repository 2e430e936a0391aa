/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include "br-api.h"
#include "br-request.h"
#include "br-review.h"

/**
 * br_request_review:
 * Runs the pre-review check for @row under the call's policies (br_review_request()).
 * Returns: 0 with the JSON in @ret_check (optional) and the outcome in @ret_outcome
 * (optional), or a negative errno with c->err set.
 */
int br_request_review(BrCall *c, CmDb *db, const BrRequestRow *row, json_object **ret_check,
                      BrReviewOutcome *ret_outcome);
