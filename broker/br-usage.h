/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdint.h>

#include <json-c/json.h>

#include "cm-db.h"
#include "cm-error.h"

/*
 * The usage answers: a read model over samples, rollups, instances and allocations (SELECT
 * only). Run each inside one read transaction (br_tx_read()).
 */

/**
 * br_usage_instance:
 * GET /v1/instances/{id}/usage: instance @instance_id's figures in [@from, @to) by @step
 * seconds (epoch s), from the 5-minute samples, or from the daily rollups when @step is a day
 * or more (then whole days). @department, when not 0, scopes the instance.
 * Returns: 0 and the document in @ret, or a negative errno with @err set (-ENOENT).
 */
int br_usage_instance(CmDb *db, int64_t instance_id, int64_t department, int64_t from, int64_t to,
                      int64_t step, json_object **ret, CmError *err);

/**
 * br_usage_allocation:
 * GET /v1/allocations/{id}/usage: each instance of allocation @allocation_id summed over
 * [@from, @to) from its samples. @department, when not 0, scopes the allocation.
 * Returns: 0 and the document in @ret, or a negative errno with @err set (-ENOENT).
 */
int br_usage_allocation(CmDb *db, int64_t allocation_id, int64_t department, int64_t from,
                        int64_t to, json_object **ret, CmError *err);
