/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>

#include "br-allocation.h"
#include "br-role.h"
#include "br-store.h"
#include "cm-enum.h"

typedef enum {
    BR_REQUEST_KIND_NEW,
    BR_REQUEST_KIND_CHANGE,
    BR_REQUEST_KIND_TERMINATION,
    BR_REQUEST_KIND_MAX,
} BrRequestKind;

CM_ENUM_DECL(br_request_kind, BrRequestKind)

#define BR_KIND_BIT(k) (1u << (k))
#define K_NEW BR_KIND_BIT(BR_REQUEST_KIND_NEW)
#define K_CHANGE BR_KIND_BIT(BR_REQUEST_KIND_CHANGE)
#define K_TERM BR_KIND_BIT(BR_REQUEST_KIND_TERMINATION)
#define K_ANY (K_NEW | K_CHANGE | K_TERM)

/* Every state a request can be in, for all three kinds (DESIGN.md "The workflow"). */
typedef enum {
    BR_REQUEST_STATE_DRAFT,
    BR_REQUEST_STATE_SUBMITTED,
    BR_REQUEST_STATE_RETURNED,
    BR_REQUEST_STATE_WITHDRAWN,
    BR_REQUEST_STATE_REJECTED,
    BR_REQUEST_STATE_APPROVED,
    BR_REQUEST_STATE_IN_TRIAL,
    BR_REQUEST_STATE_TRIAL_PASSED,
    BR_REQUEST_STATE_TRIAL_FAILED,
    BR_REQUEST_STATE_ALLOCATED,
    BR_REQUEST_STATE_APPLYING,
    BR_REQUEST_STATE_APPLIED,
    BR_REQUEST_STATE_RECLAIMING,
    BR_REQUEST_STATE_RECLAIMED,
    BR_REQUEST_STATE_FAILED,
    BR_REQUEST_STATE_MAX,
} BrRequestState;

CM_ENUM_DECL(br_request_state, BrRequestState)

/**
 * br_request_transition_allowed:
 * Returns: true when a request of @kind may move from @from to @to (the one transition table).
 */
bool br_request_transition_allowed(BrRequestKind kind, BrRequestState from, BrRequestState to);

/** br_request_state_is_final: Returns: true when no transition leaves @s for @kind. */
bool br_request_state_is_final(BrRequestKind kind, BrRequestState s);

/** br_request_state_is_editable: Returns: true for draft and returned. */
bool br_request_state_is_editable(BrRequestState s);

/**
 * br_request_next_states:
 * Fills @out with the states reachable from @from for @kind. Returns: how many.
 */
unsigned br_request_next_states(BrRequestKind kind, BrRequestState from,
                                BrRequestState out[BR_REQUEST_STATE_MAX]);

/**
 * br_request_set_state:
 * Moves request @id from @from to @to inside the caller's write transaction on @db: checks
 * the transition table and that the row is still in @from (else CM_ERROR_CONFLICT naming the
 * current state), updates the row, appends the history entry with @comment and the audit
 * record for @action, and logs "old → new".
 * Returns: 0, or a negative errno with @err set.
 */
int br_request_set_state(BrStore *store, CmDb *db, const BrActor *actor, int64_t id,
                         BrRequestKind kind, BrRequestState from, BrRequestState to,
                         const char *action, const char *comment, CmError *err);

/* What is shown of a request beside its id. */
typedef struct {
    int64_t department_id;
    int64_t consultant_id; /* 0 when none is assigned */
    char kind[16];
    char system_name[256];
    char department_name[256];
} BrRequestNames;

/**
 * br_request_names:
 * Reads request @id's department, consultant, kind and the names of its system and department.
 * Returns: 1 with @ret filled, 0 when there is no such request, or a negative errno with @err.
 */
int br_request_names(CmDb *db, int64_t id, BrRequestNames *ret, CmError *err);

/* -- added by jobs -- */

/* What the workflow's planners need of a request. */
typedef struct {
    int64_t id, department_id, system_id, allocation_id, trial_allocation_id;
    BrRequestKind kind;
    BrRequestState state;
    bool restart_allowed;
    json_object *resources; /* parsed; owned */
} BrRequestInfo;

/**
 * br_request_info_load:
 * Reads request @id for the planners. Returns: 0, -ENOENT with @err "no request N", or another
 * negative errno with @err set.
 */
int br_request_info_load(CmDb *db, int64_t id, BrRequestInfo *ret, CmError *err);

void br_request_info_clear(BrRequestInfo *r);

/**
 * br_request_set_allocation:
 * Records @allocation_id as request @id's trial allocation (@trial) or its production one.
 * Returns: 0 or a negative errno with @err set.
 */
int br_request_set_allocation(CmDb *db, int64_t id, bool trial, int64_t allocation_id,
                              CmError *err);

/** br_request_set_trial_deadline: Returns: 0 or a negative errno with @err set. */
int br_request_set_trial_deadline(CmDb *db, int64_t id, const char *deadline, CmError *err);

/**
 * br_request_overdue_trials:
 * Requests in trial whose deadline is not after @now, at most @max, oldest first.
 * Returns: how many ids were put in @ids, or a negative errno with @err set.
 */
int br_request_overdue_trials(CmDb *db, const char *now, int64_t *ids, size_t max, CmError *err);
