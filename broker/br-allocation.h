/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "br-resources.h"
#include "br-role.h"
#include "br-store.h"
#include "cm-enum.h"

/*
 * The allocations table: the resources a request holds, trial or production, and their
 * lifecycle. The only file with SQL on `allocations`; its one transition table and
 * br_allocation_set_state() are the allocations' half of the state machine (docs/workflow.md).
 */

/** Allocation lifecycle (DESIGN.md): provisioning → active ⇄ resizing → reclaiming → ... */
typedef enum {
    BR_ALLOCATION_STATE_PROVISIONING,
    BR_ALLOCATION_STATE_ACTIVE,
    BR_ALLOCATION_STATE_RESIZING,
    BR_ALLOCATION_STATE_RECLAIMING,
    BR_ALLOCATION_STATE_RETAINED,
    BR_ALLOCATION_STATE_PURGED,
    BR_ALLOCATION_STATE_ERROR,
    BR_ALLOCATION_STATE_MAX,
} BrAllocationState;

CM_ENUM_DECL(br_allocation_state, BrAllocationState)

/** br_allocation_transition_allowed: Returns: true when @from → @to is in the table. */
bool br_allocation_transition_allowed(BrAllocationState from, BrAllocationState to);

/**
 * br_allocation_set_state:
 * Moves allocation @id from @from to @to inside the caller's write transaction on @db, as
 * br_request_set_state() does for requests: checks the table, updates the row with a
 * compare-and-set on @from (@reason becomes its error when @to is error), appends the audit
 * record for @action and logs "old → new".
 * Returns: 0, or a negative errno with @err set (CM_ERROR_CONFLICT "invalid_transition").
 */
int br_allocation_set_state(BrStore *store, CmDb *db, const BrActor *actor, int64_t id,
                            BrAllocationState from, BrAllocationState to, const char *action,
                            const char *reason, CmError *err);

/* What the workflow needs of an allocation. */
typedef struct {
    int64_t id, department_id, system_id, request_id;
    BrAllocationState state;
    bool trial;         /* purpose trial, else production */
    BrResources totals; /* of its live instances */
} BrAllocationRow;

/**
 * br_allocation_load:
 * Reads allocation @id. Returns: 0, -ENOENT with @err "no allocation N" (CM_ERROR_NOT_FOUND),
 * or another negative errno with @err set.
 */
int br_allocation_load(CmDb *db, int64_t id, BrAllocationRow *ret, CmError *err);

/**
 * br_allocation_find:
 * Reads allocation @id when it is of @department and @system (each when not 0).
 * Returns: 1 with @ret filled, 0 when there is none, or a negative errno with @err set.
 */
int br_allocation_find(CmDb *db, int64_t id, int64_t department, int64_t system,
                       BrAllocationRow *ret, CmError *err);

/**
 * br_allocation_usage:
 * Adds to @ret what department @department's production allocations hold: the live ones (in
 * error too) all they have, the retained ones their disks.
 * Returns: 0, or a negative errno with @err set.
 */
int br_allocation_usage(CmDb *db, int64_t department, BrResources *ret, CmError *err);

/**
 * br_allocation_create:
 * Inserts a provisioning allocation of @department's @system for request @request_id.
 * Returns: 0 and its id in @ret_id, or a negative errno with @err set.
 */
int br_allocation_create(CmDb *db, int64_t department, int64_t system, int64_t request_id,
                         bool trial, int64_t *ret_id, CmError *err);

/**
 * br_allocation_update_totals:
 * Recomputes allocation @id's totals from its live instances. Returns: 0 or a negative errno.
 */
int br_allocation_update_totals(CmDb *db, int64_t id, CmError *err);

/**
 * br_allocation_set_retained_until:
 * Sets (or with NULL clears) until when allocation @id's volumes are retained.
 * Returns: 0 or a negative errno with @err set.
 */
int br_allocation_set_retained_until(CmDb *db, int64_t id, const char *until, CmError *err);

/**
 * br_allocation_get:
 * Allocation @id as GET /v1/allocations/{id} shows it, with its instances, read in one
 * snapshot; @department, when not 0, scopes the lookup.
 * Returns: 0 and the document in @ret, -ENOENT with @err "no allocation with id N", or another
 * negative errno with @err set.
 */
int br_allocation_get(BrStore *s, int64_t id, int64_t department, json_object **ret, CmError *err);

/* The filters of GET /v1/allocations; 0 and NULL filter nothing. */
typedef struct {
    int64_t department, system;
    const char *state, *purpose;
} BrAllocationFilter;

/**
 * br_allocation_list:
 * One page of the allocations that pass @f (without their instances).
 * Returns: 0 and the array in @ret, or a negative errno with @err set.
 */
int br_allocation_list(CmDb *db, const BrAllocationFilter *f, const BrPage *page, json_object **ret,
                       CmError *err);

/**
 * br_allocation_due_purge:
 * Retained allocations whose retention ended by @now and that no purge job works on yet, at
 * most @max of them, oldest first.
 * Returns: how many ids were put in @ids, or a negative errno with @err set.
 */
int br_allocation_due_purge(CmDb *db, const char *now, int64_t *ids, size_t max, CmError *err);

/* A retained allocation whose purge is near, for its notice. */
typedef struct {
    int64_t id, department_id;
    char *system_name, *retained_until;
} BrAllocationPurgeSoon;

/**
 * br_allocation_purge_soon:
 * Retained allocations whose retention ends after @now and by @soon, at most @max of them.
 * Returns: how many entries of @ret were filled (their strings to be freed by the caller), or
 * a negative errno with @err set.
 */
int br_allocation_purge_soon(CmDb *db, const char *now, const char *soon,
                             BrAllocationPurgeSoon *ret, size_t max, CmError *err);
