/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <json-c/json.h>

#include "br-policy.h"
#include "cm-db.h"

/* A department's quota and what holds part of it. */
typedef struct {
    BrResources quota;
    BrResources allocated; /* live allocations; retained ones hold their disks only */
    BrResources approved;  /* granted but not yet allocated: new requests approved/in trial,
                              the growth of approved changes */
} BrQuotaUsage;

/**
 * br_quota_usage:
 * Reads department @department_id's quota and usage, leaving request @exclude_request out
 * (so a request being checked is not counted against itself).
 * Returns: 0, -ENOENT when there is no such department, or another negative errno with @err.
 */
int br_quota_usage(CmDb *db, int64_t department_id, int64_t exclude_request, BrQuotaUsage *ret,
                   CmError *err);

/** br_resources_to_json: Returns: {"vcpus":..,"memory_mib":..,"disk_gib":..,"instances":..}. */
json_object *br_resources_to_json(const BrResources *r);

/** br_resources_add: @a += @b. */
void br_resources_add(BrResources *a, const BrResources *b);
