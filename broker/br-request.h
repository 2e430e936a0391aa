/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>

#include "br-allocation.h"
#include "br-resources.h"
#include "br-role.h"
#include "br-store.h"
#include "br-tx.h"
#include "cm-enum.h"
#include "cm-time.h"

typedef enum {
    BR_REQUEST_KIND_NEW,
    BR_REQUEST_KIND_CHANGE,
    BR_REQUEST_KIND_TERMINATION,
    BR_REQUEST_KIND_MAX,
} BrRequestKind;

CM_ENUM_DECL(br_request_kind, BrRequestKind)

#define BR_KIND_BIT(k) (1u << (k))
#define BR_KINDS_NEW BR_KIND_BIT(BR_REQUEST_KIND_NEW)
#define BR_KINDS_CHANGE BR_KIND_BIT(BR_REQUEST_KIND_CHANGE)
#define BR_KINDS_TERM BR_KIND_BIT(BR_REQUEST_KIND_TERMINATION)
#define BR_KINDS_ANY (BR_KINDS_NEW | BR_KINDS_CHANGE | BR_KINDS_TERM)

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
 * br_resources_of_instances:
 * Returns: the totals of a resources.instances array (NULL gives zeros).
 */
BrResources br_resources_of_instances(json_object *instances);

/*
 * The store of requests, their history and the opinions on them (this file holds all their
 * SQL). Handlers check who may do what and call these; they write no SQL.
 */

/* One row of `requests`, as the handlers and the workflow use it. */
typedef struct {
    int64_t id, department_id, system_id, allocation_id, consultant_id, created_by, version;
    BrRequestKind kind;
    BrRequestState state;
    BrResources totals;
    char *resources; /* compact JSON, or NULL */
    char *justification;
    bool restart_allowed;
    char created_at[CM_TIME_ISO_LEN + 1];
    char updated_at[CM_TIME_ISO_LEN + 1];
    int64_t trial_allocation_id;
    char trial_deadline[CM_TIME_ISO_LEN + 1];
} BrRequestRow;

void br_request_row_clear(BrRequestRow *r);

/**
 * br_request_visible:
 * Whether @viewer may see a request of @department_id, assigned to @consultant_id, in @state:
 * a department its own, a consultant those assigned to it, the vendor what the bureau
 * approved, the reviewers and auditors all. Everyone else is told it does not exist.
 */
bool br_request_visible(const BrActor *viewer, int64_t department_id, int64_t consultant_id,
                        BrRequestState state);

/**
 * br_request_load:
 * Reads request @id; with @viewer, only when @viewer may see it (br_request_visible()).
 * Returns: 0, or a negative errno with @err set (CM_ERROR_NOT_FOUND also for a request
 * @viewer may not see).
 */
int br_request_load(CmDb *db, int64_t id, const BrActor *viewer, BrRequestRow *ret, CmError *err);

/**
 * br_request_get:
 * Request @id as its document begins: the row, its totals, its system and department.
 * Returns: 0 and the object in @ret, or a negative errno with @err set.
 */
int br_request_get(CmDb *db, int64_t id, json_object **ret, CmError *err);

/** br_request_history: Returns: 0 and request @id's moves, oldest first, in @ret; or -errno. */
int br_request_history(CmDb *db, int64_t id, json_object **ret, CmError *err);

/** br_request_opinions: Returns: 0 and the opinions on request @id, oldest first; or -errno. */
int br_request_opinions(CmDb *db, int64_t id, json_object **ret, CmError *err);

/* What a list of requests is narrowed to; NULL and 0 mean any. */
typedef struct {
    const char *state, *kind;
    int64_t department_id, system_id;
} BrRequestFilter;

/**
 * br_request_list:
 * One page of the requests @viewer may see that match @f, by id.
 * Returns: 0 and the array in @ret, or a negative errno with @err set.
 */
int br_request_list(CmDb *db, const BrActor *viewer, const BrRequestFilter *f, const BrPage *page,
                    json_object **ret, CmError *err);

/* A new request as its department drafts it (POST /v1/requests, or from a finding). */
typedef struct {
    int64_t department_id, system_id;
    int64_t allocation_id; /* the live allocation a change or termination acts on */
    BrRequestKind kind;
    json_object *resources; /* {"instances": [...], "remove": [...]}, or NULL */
    const char *justification;
    bool restart_allowed;
    const char *comment; /* on the first history entry; NULL for none */
    const char *detail;  /* the audit record's */
} BrRequestDraft;

/**
 * br_request_create:
 * Drafts @d in @tx: the system is the department's (422 unknown_reference /system), a change
 * or termination acts on a live allocation (br_request_check_allocation()), the totals are
 * those of the resources' instances; the history starts at draft and the audit record
 * "request.create" is appended.
 * Returns: 0 and the new id in @ret_id, or a negative errno with tx->err set.
 */
int br_request_create(BrTx *tx, const BrRequestDraft *d, int64_t *ret_id);

/**
 * br_request_check_allocation:
 * A change or termination may be drafted on @allocation of @department's @system: it exists
 * (422 unknown_reference), is active (409 invalid_state) and has no request still open (409
 * open_request); errors name /allocation.
 * Returns: 0, or a negative errno with @err set.
 */
int br_request_check_allocation(CmDb *db, int64_t department, int64_t allocation, int64_t system,
                                CmError *err);

/**
 * br_request_update:
 * Edits request @id in @tx: @resources (NULL: kept) with its totals, @justification (NULL:
 * kept), @restart_allowed (< 0: kept). Returns: 0, or a negative errno with tx->err set.
 */
int br_request_update(BrTx *tx, int64_t id, json_object *resources, const char *justification,
                      int restart_allowed);

/**
 * br_request_assign:
 * Assigns request @id to @consultant, an enabled consultant account (else 422
 * unknown_reference /consultant). Returns: 0, or a negative errno with tx->err set.
 */
int br_request_assign(BrTx *tx, int64_t id, int64_t consultant);

/**
 * br_request_add_opinion:
 * Records the caller's opinion on request @id. Returns: 0, or a negative errno with tx->err.
 */
int br_request_add_opinion(BrTx *tx, int64_t id, const char *recommendation, const char *comment);

/*
 * For the workflow (br-workflow.c): a request's allocations and its trial's deadline, set as
 * the planners and the ends of jobs decide, inside the caller's write transaction on @db.
 */

/**
 * br_request_set_allocation:
 * Records @allocation as request @id's trial allocation (@trial) or its production one.
 * Returns: 0, or a negative errno with @err set.
 */
int br_request_set_allocation(CmDb *db, int64_t id, int64_t allocation, bool trial, CmError *err);

/** br_request_set_trial_deadline: Returns: 0 with @deadline (ISO 8601) set on request @id, or -errno. */
int br_request_set_trial_deadline(CmDb *db, int64_t id, const char *deadline, CmError *err);

/**
 * br_request_overdue_trials:
 * Fills @ids with at most @max requests in trial whose deadline is at or before @now.
 * Returns: 0 and their number in @ret_n, or a negative errno with @err set.
 */
int br_request_overdue_trials(CmDb *db, const char *now, int64_t *ids, size_t max, size_t *ret_n,
                              CmError *err);

/**
 * br_request_approved_usage:
 * What department @department_id was granted and has not got yet, leaving request @exclude
 * out: new requests approved or in trial, and the growth of approved changes.
 * Returns: 0 with the sums added to @ret, or a negative errno with @err set.
 */
int br_request_approved_usage(CmDb *db, int64_t department_id, int64_t exclude, BrResources *ret,
                              CmError *err);

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
