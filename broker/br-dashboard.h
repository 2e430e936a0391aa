/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdint.h>

#include <json-c/json.h>

#include "br-policy.h"
#include "br-role.h"
#include "br-store.h"

/*
 * Read models of the console's overview pages: the reviewers' dashboard and the approval
 * queue. Summaries that read across the tables (counts and sums), never write; each row's own
 * document comes from the table's owner.
 */

/**
 * br_dashboard_summary:
 * The bureau's overview at @now_ms: on-cloud share, requests waiting and their age, active
 * allocations, live idle and over-provisioned findings with what they would free, the hosts'
 * capacity (after the overcommit of @placement) and headroom, and twelve months of trends.
 * Returns: 0 and the document in @ret, or a negative errno with @err set.
 */
int br_dashboard_summary(CmDb *db, const BrPlacementPolicyConf *placement, int64_t now_ms,
                         json_object **ret, CmError *err);

/**
 * br_dashboard_queue:
 * What waits for @role (a consultant: @account; a department: @department), oldest first, at
 * most @limit: each {"id", "action", "kind", "state", "waiting_since", "department_id",
 * "department_name", "system_id", "system_name", "vcpus", "memory_mib", "disk_gib",
 * "instances"}.
 * Returns: 0 and the array in @ret, or a negative errno with @err set.
 */
int br_dashboard_queue(CmDb *db, BrRole role, int64_t account, int64_t department, int64_t limit,
                       json_object **ret, CmError *err);
