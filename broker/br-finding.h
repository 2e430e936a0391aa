/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>

#include "br-cost.h"
#include "br-tx.h"

/*
 * The findings table: what the assessment found on an instance (idle, over- or
 * under-provisioned) and where the department and the bureau took it (open → acknowledged →
 * resolved | dismissed). The only file with SQL on `findings`.
 */

/* A size: vCPUs and MiB. */
typedef struct {
    int64_t vcpus, memory_mib;
} BrSize;

/* What a state change or a change request needs to know of a finding. */
typedef struct {
    int64_t id, instance_id, allocation_id, department_id, system_id, change_request_id;
    char kind[24], state[16];
    BrSize current, recommended;
} BrFinding;

/* The filters of a list: 0 and NULL for none; state "live" is open or acknowledged. */
typedef struct {
    int64_t department, allocation;
    const char *state, *kind;
} BrFindingFilter;

/* What the assessment found on one instance, for one kind. */
typedef struct {
    int64_t instance_id, allocation_id, department_id, system_id;
    const char *kind, *rule;
    json_object *evidence, *recommendation;
    BrSize current, recommended, frees;
} BrFindingFound;

/**
 * br_finding_get:
 * Loads finding @id as its API document; @department, when not 0, scopes the lookup. With
 * @pricing, the document ends with "money": what the instance costs a month and what the
 * recommendation would save, at the prices in force now.
 * Returns: 0 and the document in @ret, -ENOENT with @err "not found", or another negative errno.
 */
int br_finding_get(CmDb *db, int64_t id, int64_t department, const BrPricingPolicy *pricing,
                   json_object **ret, CmError *err);

/**
 * br_finding_list:
 * Returns: 0 and one page of the findings that pass @filter in @ret (each with "money" when
 * @pricing is given, as br_finding_get()), or a negative errno.
 */
int br_finding_list(CmDb *db, const BrFindingFilter *filter, const BrPricingPolicy *pricing,
                    const BrPage *page, json_object **ret, CmError *err);

/**
 * br_finding_load:
 * Reads finding @id (scoped to @department when not 0).
 * Returns: 0, -ENOENT with @err "not found", or another negative errno with @err set.
 */
int br_finding_load(CmDb *db, int64_t id, int64_t department, BrFinding *ret, CmError *err);

/**
 * br_finding_move:
 * Moves finding @id (scoped to @department when not 0) to state @to, keeping @reason when not
 * NULL: open → acknowledged; open or acknowledged → resolved or dismissed.
 * Returns: 0, or a negative errno with tx->err set (404; 409 invalid_transition).
 */
int br_finding_move(BrTx *tx, int64_t id, int64_t department, const char *to, const char *reason);

/** br_finding_set_change_request: Returns: 0, or a negative errno with tx->err set. */
int br_finding_set_change_request(BrTx *tx, int64_t id, int64_t request_id);

/**
 * br_finding_others_busy:
 * Whether allocation @allocation_id has a live instance besides @instance_id that no live
 * idle finding names: an idle instance beside it is removed (scale-in), not the allocation.
 * Returns: 0 and the answer in @ret, or a negative errno with @err set.
 */
int br_finding_others_busy(CmDb *db, int64_t allocation_id, int64_t instance_id, bool *ret,
                           CmError *err);

/* An instance's live (or dismissed) finding of one kind, as br_finding_live_load() found it. */
typedef struct {
    int64_t instance_id;
    char kind[24];
    int64_t id;
    bool dismissed;
} BrFindingLive;

/**
 * br_finding_live_load:
 * Appends to @live (@n_live entries, grown with realloc) the newest open, acknowledged or
 * dismissed finding of each kind of the @n instances @instance_ids, in one statement.
 * Returns: 0, or a negative errno with tx->err set.
 */
int br_finding_live_load(BrTx *tx, const int64_t *instance_ids, size_t n, BrFindingLive **live,
                         size_t *n_live);

/** br_finding_live_sort: sorts @live by instance and kind for br_finding_live_find(). */
void br_finding_live_sort(BrFindingLive *live, size_t n);

/** br_finding_live_find: Returns: the entry of @instance_id and @kind in the sorted @live, or NULL. */
const BrFindingLive *br_finding_live_find(const BrFindingLive *live, size_t n, int64_t instance_id,
                                          const char *kind);

/**
 * br_finding_raise:
 * Records what the assessment found, at @at: @live, the instance's finding of that kind found
 * by br_finding_live_load() (NULL: none), is updated, else a new one opened — unless the bureau
 * dismissed it (with a reason): that one is left alone.
 * Returns: 2 and the new id in @ret_id when opened, 1 when updated, 0 when left, or a
 * negative errno with tx->err set.
 */
int br_finding_raise(BrTx *tx, const BrFindingFound *f, const BrFindingLive *live, const char *at,
                     int64_t *ret_id);

/**
 * br_finding_resolve_stale:
 * Resolves the live findings of kind @kind of the @n instances @instance_ids: their condition
 * no longer holds. Returns: the number resolved, or a negative errno with tx->err set.
 */
int br_finding_resolve_stale(BrTx *tx, const int64_t *instance_ids, size_t n, const char *kind,
                             const char *at);

/**
 * br_finding_resolve_ended:
 * Resolves, with @reason, the live findings of allocation @allocation_id whose instance has
 * ended (undefined or deleted) or whose allocation has (retained or purged), each audited as
 * finding.resolved by the system.
 * Returns: the number resolved, or a negative errno with tx->err set.
 */
int br_finding_resolve_ended(BrTx *tx, int64_t allocation_id, const char *reason);

/**
 * br_finding_list_reclaimable:
 * The first 100 live idle and over-provisioned findings of @department, for the reviewer
 * (the pre-review check): each {id, kind, instance, frees_vcpus, frees_memory_mib, rule,
 * monthly_saving_fen} (the saving at @pricing's rates in force now).
 * Returns: 0 and the array in @ret, or a negative errno with @err set.
 */
int br_finding_list_reclaimable(CmDb *db, int64_t department, const BrPricingPolicy *pricing,
                                json_object **ret, CmError *err);
