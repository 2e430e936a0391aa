/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include "br-workflow.h"

/* Shared by the br-workflow-*.c files only. */

/* A request as the planners read it: its row (br-request.c's) and its resources parsed. */
typedef struct {
    BrRequestRow row;
    json_object *resources; /* NULL when it has none */
} BrWorkflowRequest;

/**
 * br_workflow_request_load:
 * Reads request @id (whoever asks: the workflow acts for the broker).
 * Returns: 0, or a negative errno with @err set (CM_ERROR_NOT_FOUND for no such request).
 */
int br_workflow_request_load(CmDb *db, int64_t id, BrWorkflowRequest *ret, CmError *err);

void br_workflow_request_clear(BrWorkflowRequest *r);
