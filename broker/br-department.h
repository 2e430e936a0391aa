/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdint.h>

#include <json-c/json.h>

#include "br-resources.h"
#include "br-store.h"
#include "br-tx.h"

/*
 * The departments table (委办局): each department's code, name and quota. The only file with
 * SQL on `departments`. Errors name the API field they are about.
 */

/**
 * br_department_get:
 * Loads department @id as its API document without its usage: id, code, name, quota
 * {vcpus, memory_mib, disk_gib, instances}, created_at, updated_at.
 * Returns: 0 and the document in @ret, -ENOENT with @err "not found", or another negative errno.
 */
int br_department_get(CmDb *db, int64_t id, json_object **ret, CmError *err);

/**
 * br_department_list:
 * One page of the departments (only department @only when not 0), as br_department_get().
 * Returns: 0 and the array in @ret, or a negative errno with @err set.
 */
int br_department_list(CmDb *db, int64_t only, const BrPage *page, json_object **ret, CmError *err);

/**
 * br_department_create:
 * Adds a department with @quota (409 duplicate for a code in use).
 * Returns: 0 and the new id in @ret_id, or a negative errno with tx->err set.
 */
int br_department_create(BrTx *tx, const char *code, const char *name, const BrResources *quota,
                         int64_t *ret_id);

/**
 * br_department_update:
 * Changes department @id's @name (NULL: unchanged) and the members of @quota that are not
 * negative (a negative one is left as it is).
 * Returns: 0, -ENOENT when there is no such department, or another negative errno with tx->err.
 */
int br_department_update(BrTx *tx, int64_t id, const char *name, const BrResources *quota);

/**
 * br_department_exists:
 * Returns: 1 when department @id exists, 0 when not, or a negative errno with @err set.
 */
int br_department_exists(CmDb *db, int64_t id, CmError *err);

/**
 * br_department_check_reference:
 * A department named by a body's "department_id" must exist.
 * Returns: 0, -ENOENT with @err 422 unknown_reference on /department_id, or another negative
 * errno with @err set.
 */
int br_department_check_reference(CmDb *db, int64_t id, CmError *err);

/**
 * br_department_quota:
 * Reads department @id's quota into @ret.
 * Returns: 0, -ENOENT when there is no such department (@err not set), or another negative
 * errno with @err set.
 */
int br_department_quota(CmDb *db, int64_t id, BrResources *ret, CmError *err);
