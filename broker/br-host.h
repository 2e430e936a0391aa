/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "br-tx.h"

/*
 * The hosts table: every hypervisor registered, its pool, overcommit ratios, flags, the
 * capacity last seen, what is placed on it (kept by triggers, migration 5) and its agent's
 * token hash. The only file with SQL on `hosts`. Errors name the API field they are about.
 */

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
 * br_host_get:
 * Calls @fn with host @id's row.
 * Returns: what @fn returned, -ENOENT with @err "not found", or another negative errno.
 */
int br_host_get(CmDb *db, int64_t id, BrHostFn fn, void *ctx, CmError *err);

/**
 * br_host_list:
 * Calls @fn with each host's row by id: of @pool only when not NULL, one page when @page is
 * not NULL. Stops at @fn's first error.
 * Returns: 0, or a negative errno (@fn's, or with @err set).
 */
int br_host_list(CmDb *db, const char *pool, const BrPage *page, BrHostFn fn, void *ctx,
                 CmError *err);

/* A host's fields as given. Ratios: 0 for the policy's; in an update, ratio_set[i] false
 * leaves ratio i (cpu, ram, disk) unchanged. Flags: -1 unchanged. Strings: NULL unchanged. */
typedef struct {
    const char *name, *uri, *pool, *storage_pool;
    double ratio[3];
    bool ratio_set[3];
    int enabled, maintenance;
} BrHostFields;

/**
 * br_host_create:
 * Registers a host with its agent's token hash @token_hash (409 duplicate naming /name or
 * /uri when one is taken).
 * Returns: 0 and the new id in @ret_id, or a negative errno with tx->err set.
 */
int br_host_create(BrTx *tx, const BrHostFields *f, const char *token_hash, int64_t *ret_id);

/**
 * br_host_update:
 * Changes the given fields of host @id.
 * Returns: 0, -ENOENT when there is no such host, or another negative errno with tx->err set.
 */
int br_host_update(BrTx *tx, int64_t id, const BrHostFields *f);

/**
 * br_host_set_agent_token:
 * Replaces host @id's agent token hash.
 * Returns: 0, -ENOENT when there is no such host, or another negative errno with tx->err set.
 */
int br_host_set_agent_token(BrTx *tx, int64_t id, const char *token_hash);

/**
 * br_host_set_capacity:
 * Records the capacity last seen on host @id (written only when it changed), so a host shows
 * its size while disconnected and after a restart.
 * Returns: 0, or a negative errno with @err set.
 */
int br_host_set_capacity(CmDb *db, int64_t id, int64_t cpus, int64_t memory_mib, int64_t disk_gib,
                         CmError *err);

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

/**
 * br_host_list_placement:
 * Calls @fn with each host's row by id, with what placement reads only (id, name, pool, flags,
 * ratios, capacity, what is placed on it; the other fields NULL or 0): as br_host_list() but
 * without its count of instances, which would make every decision aggregate over the
 * instances again (three times slower on placement-bench's 1,000 hosts). Stops at @fn's first
 * error. Returns: 0, or a negative errno (@fn's, or with @err set).
 */
int br_host_list_placement(CmDb *db, BrHostFn fn, void *ctx, CmError *err);
