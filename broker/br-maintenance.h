/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>

#include "br-store.h"
#include "br-tx.h"

/*
 * Maintenance windows of the hosts (docs/service-quality.md): proposed by the vendor ahead of
 * time, agreed or rejected by the reviewer. An agreed window is left out of the availability of
 * the instances on its host. The only file with SQL on maintenance_windows.
 */

/**
 * br_maintenance_create:
 * Records the transaction actor's proposal of a window on host @host_id from @starts_at to
 * @ends_at (cm_time_iso() form) for @reason.
 * Returns: 0 and the new id in @ret_id, or a negative errno with tx->err set.
 */
int br_maintenance_create(BrTx *tx, int64_t host_id, const char *starts_at, const char *ends_at,
                          const char *reason, int64_t *ret_id);

/**
 * br_maintenance_decide:
 * Agrees to (@agree) or rejects proposed window @id, by the transaction's actor.
 * Returns: 0, or a negative errno with tx->err set (-ENOENT no such window, -EBUSY not
 * proposed any more: CM_ERROR_CONFLICT naming "state").
 */
int br_maintenance_decide(BrTx *tx, int64_t id, bool agree);

/**
 * br_maintenance_get:
 * Returns: 0 and window @id as its API document in @ret, or a negative errno with @err set.
 */
int br_maintenance_get(CmDb *db, int64_t id, json_object **ret, CmError *err);

/**
 * br_maintenance_list:
 * Returns: 0 and one page of the windows, by id, in @ret, or a negative errno with @err set.
 */
int br_maintenance_list(CmDb *db, const BrPage *page, json_object **ret, CmError *err);
