/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

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
