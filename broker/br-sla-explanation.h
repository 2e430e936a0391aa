/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdint.h>

#include <json-c/json.h>

#include "br-tx.h"

/*
 * The vendor's explanations of the scorecard's indicators (docs/service-quality.md): what it
 * says about a month's indicator, kept beside the figures and never changing them. The only file
 * with SQL on sla_explanations.
 */

/**
 * br_sla_explanation_create:
 * Records the transaction actor's explanation @text of @indicator in @month ("YYYY-MM").
 * Returns: 0 and the new id in @ret_id, or a negative errno with tx->err set.
 */
int br_sla_explanation_create(BrTx *tx, const char *month, const char *indicator, const char *text,
                              int64_t *ret_id);

/**
 * br_sla_explanation_get:
 * Returns: 0 and explanation @id as its API document in @ret, or a negative errno with @err set.
 */
int br_sla_explanation_get(CmDb *db, int64_t id, json_object **ret, CmError *err);

/**
 * br_sla_explanation_list:
 * Returns: 0 and the explanations of @month, oldest first, as an array in @ret, or a negative
 * errno with @err set.
 */
int br_sla_explanation_list(CmDb *db, const char *month, json_object **ret, CmError *err);
