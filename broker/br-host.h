/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "cm-db.h"
#include "cm-error.h"

/* The hosts table: the only file with SQL on `hosts`. */

/* -- added by people -- */

/**
 * br_host_connections:
 * Every host's connection settings, by id: [{"id", "uri", "storage_pool"}, ...].
 * Returns: 0 and the array in @ret, or a negative errno with @err set.
 */
int br_host_connections(CmDb *db, json_object **ret, CmError *err);

/**
 * br_host_name:
 * Copies host @id's name into @name (of @size bytes).
 * Returns: 1 when found, 0 when there is no such host, or a negative errno with @err set.
 */
int br_host_name(CmDb *db, int64_t id, char *name, size_t size, CmError *err);

/**
 * br_host_by_agent_token:
 * Looks up the host whose agent token's SHA-256 is @token_hash: its id in @ret_id and its
 * name in @name (of @size bytes).
 * Returns: 1 when found, 0 when no host has it, or a negative errno with @err set.
 */
int br_host_by_agent_token(CmDb *db, const char *token_hash, int64_t *ret_id, char *name,
                           size_t size, CmError *err);
