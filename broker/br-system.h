/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdint.h>

#include <json-c/json.h>

#include "br-tx.h"

/*
 * The systems table (应用系统): every application system of a department, on the cloud or not.
 * The only file with SQL on `systems`. Errors name the API field they are about.
 */

/* A system's fields as given; NULL (or protection_level < 0) leaves a field unchanged. */
typedef struct {
    const char *name;
    const char *description;
    const char *category;
    int64_t protection_level;
    const char *status;
} BrSystemFields;

/**
 * br_system_get:
 * Loads system @id as its API document; @department, when not 0, scopes the lookup.
 * Returns: 0 and the document in @ret, -ENOENT with @err "not found", or another negative errno.
 */
int br_system_get(CmDb *db, int64_t id, int64_t department, json_object **ret, CmError *err);

/**
 * br_system_list:
 * One page of the systems, of @department only when not 0.
 * Returns: 0 and the array in @ret, or a negative errno with @err set.
 */
int br_system_list(CmDb *db, int64_t department, const BrPage *page, json_object **ret,
                   CmError *err);

/**
 * br_system_create:
 * Registers a system of @department (422 unknown_reference when there is no such department,
 * 409 duplicate for a name the department already uses). Fields left NULL take the defaults.
 * Returns: 0 and the new id in @ret_id, or a negative errno with tx->err set.
 */
int br_system_create(BrTx *tx, int64_t department, const BrSystemFields *f, int64_t *ret_id);

/**
 * br_system_update:
 * Changes the given fields of system @id (scoped to @department when not 0).
 * Returns: 0, -ENOENT when there is no such system, or another negative errno with tx->err set.
 */
int br_system_update(BrTx *tx, int64_t id, int64_t department, const BrSystemFields *f);

/**
 * br_system_exists:
 * Returns: 1 when system @id exists (and, when @department is not 0, is that department's), 0
 * when not, or a negative errno with @err set.
 */
int br_system_exists(CmDb *db, int64_t id, int64_t department, CmError *err);
