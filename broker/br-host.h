/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "br-store.h"
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

/* -- added by jobs -- */
/* BrHostRow and BrHostFn as the hosts helper declares them on its branch (when both are
 * merged, theirs stay and these two go). */

/* A host's row; the strings are valid during the callback that gets it. */
typedef struct {
    int64_t id;
    const char *name, *uri, *pool, *storage_pool;
    double cpu_ratio, ram_ratio, disk_ratio; /* 0: none of its own (the placement policy's) */
    bool enabled, maintenance;
    int64_t cpus, memory_mib, disk_gib;                 /* the capacity last recorded */
    int64_t used_vcpus, used_memory_mib, used_disk_gib; /* what is placed on it */
    int64_t instances;                                  /* instances that may run there */
    const char *created_at, *updated_at;
} BrHostRow;

typedef int (*BrHostFn)(void *ctx, const BrHostRow *h);

/**
 * br_host_list_placement:
 * Calls @fn with each host's row by id, with what placement reads only (id, name, pool, flags,
 * ratios, capacity, what is placed on it; the other fields NULL or 0): as br_host_list() but
 * without its count of instances, which would make every decision aggregate over the
 * instances again (three times slower on placement-bench's 1,000 hosts). Stops at @fn's first
 * error. Returns: 0, or a negative errno (@fn's, or with @err set).
 */
int br_host_list_placement(CmDb *db, BrHostFn fn, void *ctx, CmError *err);
