/* SPDX-License-Identifier: Apache-2.0 */
/* Requests: apply (create, edit, submit) and review (assign, opinions, decision), the trial's
 * results and the allocation: parse, check who may, call the tables' owners, answer. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "br-api.h"
#include "br-api-requests.h"
#include "br-daemon.h"
#include "br-jobs.h"
#include "br-material.h"
#include "br-trial.h"
#include "br-workflow.h"

int br_request_review(BrCall *c, CmDb *db, const BrRequestRow *row, json_object **ret_check,
                      BrReviewOutcome *ret_outcome)
{
    _cleanup_(br_policies_unrefp) BrPolicies *p = br_call_policies(c);
    return br_review_request(db, p, row, ret_check, ret_outcome, &c->err);
}

/* The full document of request @row: the row, its materials, history, opinions, check, trial,
 * jobs and the states it may go to next. */
static int request_document(BrCall *c, CmDb *db, const BrRequestRow *row, json_object **ret)
{
    _cleanup_json_ json_object *o = NULL;
    json_object *part, *trial;
    BrRequestState next[BR_REQUEST_STATE_MAX];
    unsigned n_next;
    int r;

    r = br_request_get(db, row->id, &o, &c->err);
    if (r < 0)
        return r;
    r = br_material_list(db, row->id, &part, NULL, &c->err);
    if (r < 0)
        return r;
    json_object_object_add(o, "materials", part);
    r = br_request_history(db, row->id, &part, &c->err);
    if (r < 0)
        return r;
    json_object_object_add(o, "history", part);
    r = br_request_opinions(db, row->id, &part, &c->err);
    if (r < 0)
        return r;
    json_object_object_add(o, "opinions", part);
    r = br_request_review(c, db, row, &part, NULL);
    if (r < 0)
        return r;
    json_object_object_add(o, "check", part);

    r = br_trial_results(db, row->id, &part, &c->err);
    if (r < 0)
        return r;
    trial = json_object_new_object();
    json_object_object_add(trial, "allocation_id", br_json_id_or_null(row->trial_allocation_id));
    json_object_object_add(trial, "deadline",
                           row->trial_deadline[0] ? json_object_new_string(row->trial_deadline)
                                                  : NULL);
    json_object_object_add(trial, "results", part);
    json_object_object_add(o, "trial", trial);
    r = br_job_list_for_request(db, row->id, &part, &c->err);
    if (r < 0)
        return r;
    json_object_object_add(o, "jobs", part);

    part = json_object_new_array();
    n_next = br_request_next_states(row->kind, row->state, next);
    for (unsigned i = 0; i < n_next; i++)
        json_object_array_add(part, json_object_new_string(br_request_state_to_string(next[i])));
    json_object_object_add(o, "next_states", part);
    *ret = TAKE_PTR(o);
    return 0;
}

/* Replies with the full request @id as the caller sees it now. */
static int reply_request(BrCall *c, int64_t id, unsigned status)
{
    _cleanup_(br_request_row_clear) BrRequestRow row = {0};
    CmDb *db = br_call_db(c);
    json_object *o;
    int r = br_request_load(db, id, &c->actor, &row, &c->err);

    if (r >= 0)
        r = request_document(c, db, &row, &o);
    if (r < 0)
        return r;
    return br_reply(c, status, o);
}

typedef struct {
    BrRequestDraft draft;
    int64_t id;
} RequestCreate;

static int create_tx(BrTx *tx, void *ctx)
{
    RequestCreate *w = ctx;
    return br_request_create(tx, &w->draft, &w->id);
}

static int br_api_requests_create(BrCall *c)
{
    RequestCreate w = {.draft = {
                           .department_id = c->actor.department_id,
                           .system_id = cm_json_get_int(c->body, "system", 0),
                           .allocation_id = cm_json_get_int(c->body, "allocation", 0),
                           .kind = (BrRequestKind)br_request_kind_from_string(
                               cm_json_get_str(c->body, "kind", "new")),
                           .resources = cm_json_get(c->body, "resources"),
                           .justification = cm_json_get_str(c->body, "justification", ""),
                           .restart_allowed = cm_json_get_bool(c->body, "restart_allowed", false),
                           .detail = cm_json_to_string(c->body, NULL),
                       }};
    int r = br_call_tx(c, "request.create", create_tx, &w);

    if (r < 0)
        return r;
    return reply_request(c, w.id, BR_HTTP_CREATED);
}

static int br_api_requests_list(BrCall *c)
{
    BrRequestFilter f = {.state = br_call_query(c, "state"), .kind = br_call_query(c, "kind")};
    BrPage page;
    json_object *items;
    int r = br_call_page(c, &page);

    if (r >= 0)
        r = br_call_query_int(c, "department", 1, INT64_MAX, &f.department_id);
    if (r >= 0)
        r = br_call_query_int(c, "system", 1, INT64_MAX, &f.system_id);
    if (r < 0)
        return r;
    if (f.state && br_request_state_from_string(f.state) < 0)
        return cm_error_set(&c->err, CM_ERROR_INVALID, "state", "unknown state '%s'", f.state);
    if (f.kind && br_request_kind_from_string(f.kind) < 0)
        return cm_error_set(&c->err, CM_ERROR_INVALID, "kind", "unknown kind '%s'", f.kind);
    r = br_request_list(br_call_db(c), &c->actor, &f, &page, &items, &c->err);
    if (r < 0)
        return r;
    return br_reply_list(c, items, &page);
}

/*
 * GET /v1/requests/{id} is the most frequent call and its document is the same for every
 * caller allowed to see it. It is cached serialised, keyed by the store's commit generation
 * and the policies' generation: any commit or policy reload makes every entry stale. The
 * fields the visibility check needs are kept with it, so scoping is checked on every hit.
 */
#define CACHE_SLOTS 1024

typedef struct {
    pthread_mutex_t lock;
    int64_t id;
    uint64_t generation, policies_generation;
    int64_t department_id, consultant_id; /* for br_request_visible() */
    BrRequestState state;
    char *body;
    size_t len;
} CacheSlot;

static CacheSlot cache[CACHE_SLOTS];
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;

static void cache_init(void)
{
    for (size_t i = 0; i < CACHE_SLOTS; i++)
        pthread_mutex_init(&cache[i].lock, NULL);
}

static int cache_reply(BrCall *c, int64_t id, uint64_t gen, uint64_t pgen)
{
    CacheSlot *slot = &cache[(uint64_t)id % CACHE_SLOTS];
    char *copy = NULL;
    bool visible = false;

    pthread_mutex_lock(&slot->lock);
    if (slot->body && slot->id == id && slot->generation == gen &&
        slot->policies_generation == pgen) {
        visible =
            br_request_visible(&c->actor, slot->department_id, slot->consultant_id, slot->state);
        if (visible) {
            copy = malloc(slot->len + 1);
            if (copy)
                memcpy(copy, slot->body, slot->len + 1);
        }
    } else {
        pthread_mutex_unlock(&slot->lock);
        return 0; /* a miss */
    }
    pthread_mutex_unlock(&slot->lock);
    if (!visible)
        return br_not_found(c, "request", id);
    if (!copy)
        return cm_error_set(&c->err, CM_ERROR_INTERNAL, "", "out of memory");
    br_reply_text(c, BR_HTTP_OK, "application/json", copy);
    return 1;
}

static void cache_store(int64_t id, uint64_t gen, uint64_t pgen, const BrRequestRow *row,
                        const char *body, size_t len)
{
    CacheSlot *slot = &cache[(uint64_t)id % CACHE_SLOTS];
    char *copy = malloc(len + 1);
    if (!copy)
        return;
    memcpy(copy, body, len);
    copy[len] = 0;
    pthread_mutex_lock(&slot->lock);
    free(slot->body);
    slot->body = copy;
    slot->len = len;
    slot->id = id;
    slot->generation = gen;
    slot->policies_generation = pgen;
    slot->department_id = row->department_id;
    slot->consultant_id = row->consultant_id;
    slot->state = row->state;
    pthread_mutex_unlock(&slot->lock);
}

typedef struct {
    BrCall *c;
    BrRequestRow row;
    json_object *out;
} RequestRead;

static int request_read_tx(BrTx *tx, void *ctx)
{
    RequestRead *rd = ctx;
    int r = br_request_load(tx->db, rd->c->ids[0], &rd->c->actor, &rd->row, tx->err);
    if (r < 0)
        return r;
    return request_document(rd->c, tx->db, &rd->row, &rd->out);
}

static int br_api_requests_get(BrCall *c)
{
    int64_t id = c->ids[0];
    uint64_t gen = br_store_generation(c->d->store);
    uint64_t pgen = br_daemon_policies_generation(c->d);
    RequestRead rd = {.c = c};
    int r;

    pthread_once(&cache_once, cache_init);
    r = cache_reply(c, id, gen, pgen);
    if (r != 0)
        return r < 0 ? r : 0;
    /* One read transaction: every part of the answer comes from the same snapshot. */
    r = br_tx_read(c->d->store, "request.get", request_read_tx, &rd, &c->err);
    if (r >= 0) {
        size_t len;
        const char *text = cm_json_to_string(rd.out, &len);
        cache_store(id, gen, pgen, &rd.row, text, len);
    }
    br_request_row_clear(&rd.row);
    if (r < 0)
        return r;
    return br_reply(c, BR_HTTP_OK, rd.out);
}

/*
 * The writes on one request: the runner's transaction loads the row as the caller may see it
 * (404 otherwise), the handler's step checks and changes it, and the answer is the request as
 * it is then.
 */
typedef struct RequestWrite RequestWrite;
typedef int (*RequestStep)(BrTx *tx, RequestWrite *w);

struct RequestWrite {
    BrCall *c;
    RequestStep step;
    BrRequestRow row;
    bool kick;        /* the step planned hypervisor work: wake the job workers after the commit */
    json_object *out; /* the answer, made in the transaction */
    /* the department's moves */
    const char *action;
    BrRequestState to;
    bool check;
};

static int request_write_tx(BrTx *tx, void *ctx)
{
    RequestWrite *w = ctx;
    _cleanup_(br_request_row_clear) BrRequestRow after = {0};
    int r;

    json_object_put(w->out); /* from an earlier try of the transaction */
    w->out = NULL;
    br_request_row_clear(&w->row);
    r = br_request_load(tx->db, w->c->ids[0], &w->c->actor, &w->row, tx->err);
    if (r >= 0)
        r = w->step(tx, w);
    /* The answer is read here, as the step leaves the request: read after the commit, a job
     * the step queued could already have run (a change's resize was done and the request
     * applied in the answer to its approval). */
    if (r >= 0)
        r = br_request_load(tx->db, w->row.id, &w->c->actor, &after, tx->err);
    if (r >= 0)
        r = request_document(w->c, tx->db, &after, &w->out);
    return r;
}

static int request_write(BrCall *c, RequestWrite *w, const char *name, unsigned status)
{
    int r;

    w->c = c;
    r = br_call_tx(c, name, request_write_tx, w);
    br_request_row_clear(&w->row);
    if (r < 0) {
        json_object_put(w->out);
        return r;
    }
    if (w->kick)
        br_jobs_kick(c->d->jobs);
    return br_reply(c, status, w->out);
}

/* 409 for a request that is not where the step needs it. */
static int wrong_state(BrTx *tx, const BrRequestRow *row, const char *code, const char *why)
{
    return cm_error_set_code(tx->err, CM_ERROR_CONFLICT, code, "state", "request %lld is '%s'; %s",
                             (long long)row->id, br_request_state_to_string(row->state), why);
}

static int patch_step(BrTx *tx, RequestWrite *w)
{
    json_object *body = w->c->body, *resources = cm_json_get(body, "resources");
    json_object *restart = cm_json_get(body, "restart_allowed");
    int r;

    if (!br_request_state_is_editable(w->row.state))
        return wrong_state(tx, &w->row, "invalid_state",
                           "it can be edited only while draft or returned");
    if (resources && w->row.kind == BR_REQUEST_KIND_TERMINATION)
        return cm_error_set_code(tx->err, CM_ERROR_UNPROCESSABLE, "schema_violation", "/resources",
                                 "a termination request carries no resources");
    if (cm_json_get(resources, "remove") && w->row.kind != BR_REQUEST_KIND_CHANGE)
        return cm_error_set_code(tx->err, CM_ERROR_UNPROCESSABLE, "schema_violation",
                                 "/resources/remove", "only a change removes instances");
    r = br_request_update(tx, w->row.id, resources, cm_json_get_str(body, "justification", NULL),
                          restart ? json_object_get_boolean(restart) : -1);
    if (r < 0)
        return r;
    br_tx_audit_set(tx, "request.update", "request", w->row.id, cm_json_to_string(body, NULL));
    return 0;
}

static int br_api_requests_patch(BrCall *c)
{
    RequestWrite w = {.step = patch_step};
    return request_write(c, &w, "request.update", BR_HTTP_OK);
}

/* Refuses a submission that lacks required materials or breaks an enforced limit. */
static int check_submittable(BrTx *tx, RequestWrite *w)
{
    const BrRequestRow *row = &w->row;
    BrReviewOutcome o;
    int r = br_request_review(w->c, tx->db, row, NULL, &o);
    char missing[256] = "";

    if (r < 0)
        return r;
    if (!o.ok[BR_REVIEW_RULE_MATERIALS] && o.enforced[BR_REVIEW_RULE_MATERIALS]) {
        const char *first = NULL;
        for (int m = 0; m < BR_MATERIAL_MAX; m++) {
            if (!(o.missing & (1u << m)))
                continue;
            const char *name = br_material_kind_to_string((BrMaterialKind)m);
            size_t used = strlen(missing);
            snprintf(missing + used, sizeof(missing) - used, "%s%s", used ? ", " : "", name);
            if (!first)
                first = name;
        }
        char field[96];
        snprintf(field, sizeof(field), "/materials/%s", first);
        return cm_error_set_code(tx->err, CM_ERROR_UNPROCESSABLE, "materials_missing", field,
                                 "required materials are missing: %s", missing);
    }
    if (!o.ok[BR_REVIEW_RULE_CATALOG])
        return cm_error_set_code(tx->err, CM_ERROR_UNPROCESSABLE, "unknown_image",
                                 "/resources/instances",
                                 "the request names an image that is not in the catalog; see "
                                 "the images_in_catalog rule of the check in GET "
                                 "/v1/requests/%lld",
                                 (long long)row->id);
    if (row->kind == BR_REQUEST_KIND_CHANGE) {
        r = br_workflow_check_change(w->c->d, tx->db, row->id, tx->err);
        if (r < 0)
            return r;
    }
    if (!o.ok[BR_REVIEW_RULE_LIMITS] && o.enforced[BR_REVIEW_RULE_LIMITS])
        return cm_error_set_code(tx->err, CM_ERROR_UNPROCESSABLE, "limit_exceeded",
                                 "/resources/instances",
                                 "the request exceeds the per-instance limits of the review "
                                 "policy; see the instance_limits rule of the check in GET "
                                 "/v1/requests/%lld",
                                 (long long)row->id);
    return 0;
}

/* A department's move of its own request: submit, resubmit or withdraw. */
static int department_move_step(BrTx *tx, RequestWrite *w)
{
    const BrRequestRow *row = &w->row;
    int r;

    /* resubmit only answers a return; submit only leaves a draft. */
    if (strcmp(w->action, "request.submit") == 0 && row->state != BR_REQUEST_STATE_DRAFT)
        return cm_error_set_code(tx->err, CM_ERROR_CONFLICT, "invalid_transition", "state",
                                 "request %lld is '%s'; only a draft can be submitted%s",
                                 (long long)row->id, br_request_state_to_string(row->state),
                                 row->state == BR_REQUEST_STATE_RETURNED ? " (use resubmit)" : "");
    if (strcmp(w->action, "request.resubmit") == 0 && row->state != BR_REQUEST_STATE_RETURNED)
        return wrong_state(tx, row, "invalid_transition",
                           "only a returned request can be resubmitted");
    if (!br_request_transition_allowed(row->kind, row->state, w->to))
        return cm_error_set_code(tx->err, CM_ERROR_CONFLICT, "invalid_transition", "state",
                                 "request %lld is '%s' and cannot become '%s'", (long long)row->id,
                                 br_request_state_to_string(row->state),
                                 br_request_state_to_string(w->to));
    if (w->check) {
        r = check_submittable(tx, w);
        if (r < 0)
            return r;
    }
    return br_request_set_state(tx->store, tx->db, tx->actor, row->id, row->kind, row->state, w->to,
                                w->action, cm_json_get_str(w->c->body, "comment", ""), tx->err);
}

static int br_api_requests_submit(BrCall *c)
{
    RequestWrite w = {.step = department_move_step,
                      .action = "request.submit",
                      .to = BR_REQUEST_STATE_SUBMITTED,
                      .check = true};
    return request_write(c, &w, w.action, BR_HTTP_OK);
}

static int br_api_requests_resubmit(BrCall *c)
{
    RequestWrite w = {.step = department_move_step,
                      .action = "request.resubmit",
                      .to = BR_REQUEST_STATE_SUBMITTED,
                      .check = true};
    return request_write(c, &w, w.action, BR_HTTP_OK);
}

static int br_api_requests_withdraw(BrCall *c)
{
    RequestWrite w = {.step = department_move_step,
                      .action = "request.withdraw",
                      .to = BR_REQUEST_STATE_WITHDRAWN};
    return request_write(c, &w, w.action, BR_HTTP_OK);
}

static int assign_step(BrTx *tx, RequestWrite *w)
{
    int64_t consultant = cm_json_get_int(w->c->body, "consultant", 0);
    char detail[64];
    int r;

    if (w->row.state != BR_REQUEST_STATE_SUBMITTED)
        return wrong_state(tx, &w->row, "invalid_state",
                           "consultants are assigned while it is submitted");
    r = br_request_assign(tx, w->row.id, consultant);
    if (r < 0)
        return r;
    snprintf(detail, sizeof(detail), "{\"consultant\":%lld}", (long long)consultant);
    br_tx_audit_set(tx, "request.assign", "request", w->row.id, detail);
    return 0;
}

static int br_api_requests_assign(BrCall *c)
{
    RequestWrite w = {.step = assign_step};
    return request_write(c, &w, "request.assign", BR_HTTP_OK);
}

static int opinion_step(BrTx *tx, RequestWrite *w)
{
    const char *recommendation = cm_json_get_str(w->c->body, "recommendation", "");
    int r;

    if (w->row.state != BR_REQUEST_STATE_SUBMITTED)
        return wrong_state(tx, &w->row, "invalid_state",
                           "opinions are recorded while it is submitted");
    r = br_request_add_opinion(tx, w->row.id, recommendation,
                               cm_json_get_str(w->c->body, "comment", ""));
    if (r < 0)
        return r;
    return br_tx_audit(tx, "request.opinion", "request", w->row.id, recommendation,
                       cm_json_to_string(w->c->body, NULL));
}

static int br_api_requests_opinion(BrCall *c)
{
    RequestWrite w = {.step = opinion_step};
    return request_write(c, &w, "request.opinion", BR_HTTP_CREATED);
}

/* Approval honours every enforced rule; the reviewer sees why in GET's check. */
static int check_approvable(BrTx *tx, RequestWrite *w)
{
    BrReviewOutcome o;
    char field[64];
    int failed, r = br_request_review(w->c, tx->db, &w->row, NULL, &o);

    if (r < 0)
        return r;
    failed = br_review_first_failure(&o, ~0u);
    if (failed >= 0) {
        /* A pointer into GET /v1/requests/{id}: the rules array is in enum order. */
        snprintf(field, sizeof(field), "/check/rules/%d", failed);
        return cm_error_set_code(tx->err, CM_ERROR_UNPROCESSABLE, "review_rule_failed", field,
                                 "cannot approve: the enforced rule '%s' fails; see check in "
                                 "GET /v1/requests/%lld",
                                 br_review_rule_to_string((BrReviewRule)failed),
                                 (long long)w->row.id);
    }
    if (w->row.kind == BR_REQUEST_KIND_CHANGE)
        return br_workflow_check_change(w->c->d, tx->db, w->row.id, tx->err);
    return 0;
}

static int decision_step(BrTx *tx, RequestWrite *w)
{
    const BrRequestRow *row = &w->row;
    BrDaemon *d = w->c->d;
    const char *decision = cm_json_get_str(w->c->body, "decision", "");
    BrRequestState to = strcmp(decision, "approve") == 0  ? BR_REQUEST_STATE_APPROVED
                        : strcmp(decision, "reject") == 0 ? BR_REQUEST_STATE_REJECTED
                                                          : BR_REQUEST_STATE_RETURNED;
    int64_t job = 0;
    int r;

    if (!br_request_transition_allowed(row->kind, row->state, to))
        return wrong_state(tx, row, "invalid_transition",
                           "a decision is taken on a submitted request");
    if (to == BR_REQUEST_STATE_APPROVED) {
        r = check_approvable(tx, w);
        if (r < 0)
            return r;
    }
    r = br_request_set_state(tx->store, tx->db, tx->actor, row->id, row->kind, row->state, to,
                             "request.decision", cm_json_get_str(w->c->body, "comment", ""),
                             tx->err);
    if (r < 0 || to != BR_REQUEST_STATE_APPROVED)
        return r;
    /* Approval starts the hypervisor work, as a job, in the same transaction. */
    w->kick = true;
    switch (row->kind) {
    case BR_REQUEST_KIND_NEW:
        return br_workflow_plan_trial(d, tx->db, tx->actor, row->id, &job, tx->err);
    case BR_REQUEST_KIND_CHANGE:
        r = br_request_set_state(tx->store, tx->db, tx->actor, row->id, row->kind,
                                 BR_REQUEST_STATE_APPROVED, BR_REQUEST_STATE_APPLYING,
                                 "request.apply", NULL, tx->err);
        return r < 0 ? r : br_workflow_plan_change(d, tx->db, tx->actor, row->id, &job, tx->err);
    case BR_REQUEST_KIND_TERMINATION:
        r = br_request_set_state(tx->store, tx->db, tx->actor, row->id, row->kind,
                                 BR_REQUEST_STATE_APPROVED, BR_REQUEST_STATE_RECLAIMING,
                                 "request.reclaim", NULL, tx->err);
        return r < 0 ? r : br_workflow_plan_reclaim(d, tx->db, tx->actor, row->id, &job, tx->err);
    default:
        return 0;
    }
}

static int br_api_requests_decision(BrCall *c)
{
    RequestWrite w = {.step = decision_step};
    return request_write(c, &w, "request.decision", BR_HTTP_OK);
}

static int allocate_step(BrTx *tx, RequestWrite *w)
{
    int64_t id = w->row.id, alloc = 0, job = 0;
    BrReviewOutcome o;
    int r;

    if (w->row.state != BR_REQUEST_STATE_TRIAL_PASSED)
        return wrong_state(tx, &w->row, "invalid_transition",
                           "resources are allocated once the trial passed");
    /* Quotas again: other requests may have been granted since this one was approved. */
    r = br_request_review(w->c, tx->db, &w->row, NULL, &o);
    if (r < 0)
        return r;
    if (br_review_first_failure(&o, 1u << BR_REVIEW_RULE_QUOTA) >= 0)
        return cm_error_set_code(
            tx->err, CM_ERROR_UNPROCESSABLE, "review_rule_failed", "/check/rules/2",
            "allocating request %lld would exceed the department's quota now", (long long)id);
    /* Nothing is created when no host can take the instances: say which filter refused. */
    r = br_workflow_place_request(w->c->d, tx->db, id, "production", tx->err);
    if (r < 0)
        return r;
    r = br_workflow_plan_allocate(w->c->d, tx->db, tx->actor, id, &alloc, &job, tx->err);
    if (r < 0)
        return r;
    w->kick = true;
    return br_tx_audit(tx, "request.allocate", "request", id, "accepted",
                       cm_json_to_string(w->c->body, NULL));
}

static int br_api_requests_allocate(BrCall *c)
{
    RequestWrite w = {.step = allocate_step};
    return request_write(c, &w, "request.allocate", BR_HTTP_ACCEPTED);
}

static int trial_result_step(BrTx *tx, RequestWrite *w)
{
    json_object *body = w->c->body;
    BrTrialResult t = {.test = cm_json_get_str(body, "test", ""),
                       .result = cm_json_get_str(body, "result", ""),
                       .report = cm_json_get_str(body, "report", ""),
                       .comment = cm_json_get_str(body, "comment", "")};
    int64_t id = w->row.id, passed = 0, failed = 0, job = 0;
    int r;

    if (w->row.state != BR_REQUEST_STATE_IN_TRIAL)
        return wrong_state(tx, &w->row, "invalid_state", "results are recorded during the trial");
    r = br_material_has(tx->db, id, "test_report", t.report, tx->err);
    if (r < 0)
        return r;
    if (r == 0)
        return cm_error_set_code(tx->err, CM_ERROR_UNPROCESSABLE, "unknown_reference", "/report",
                                 "no test_report material with this SHA-256 is attached to "
                                 "request %lld; upload the report first",
                                 (long long)id);
    r = br_trial_record(tx, id, &t);
    if (r < 0)
        return r;
    r = br_tx_audit(tx, "request.trial_result", "request", id, t.result,
                    cm_json_to_string(body, NULL));
    if (r < 0)
        return r;
    r = br_trial_tally(tx->db, id, &passed, &failed, tx->err);
    if (r < 0)
        return r;
    w->kick = true;
    /* Any failure ends the trial; all three passed ends it well. Either way it is reclaimed. */
    if (!(failed > 0 || passed == 3))
        return 0;
    r = br_request_set_state(
        tx->store, tx->db, tx->actor, id, w->row.kind, w->row.state,
        failed ? BR_REQUEST_STATE_TRIAL_FAILED : BR_REQUEST_STATE_TRIAL_PASSED, "request.trial_end",
        failed ? "a trial test failed" : "all three trial tests passed", tx->err);
    if (r < 0)
        return r;
    return br_workflow_plan_trial_reclaim(w->c->d, tx->db, tx->actor, id, &job, tx->err);
}

static int br_api_requests_trial_result(BrCall *c)
{
    RequestWrite w = {.step = trial_result_step};
    return request_write(c, &w, "request.trial_result", BR_HTTP_CREATED);
}

static const BrRoute routes[] = {

    {"POST", "/v1/requests", br_api_requests_create, BR_ROLES_DEPARTMENT, BR_BODY_JSON,
     "request-create"},
    {"GET", "/v1/requests", br_api_requests_list,
     BR_ROLES_DEPARTMENT | BR_ROLES_READERS | BR_ROLES_CONSULTANT | BR_ROLES_VENDOR, BR_BODY_NONE,
     NULL},
    {"GET", "/v1/requests/{id}", br_api_requests_get,
     BR_ROLES_DEPARTMENT | BR_ROLES_READERS | BR_ROLES_CONSULTANT | BR_ROLES_VENDOR, BR_BODY_NONE,
     NULL},
    {"PATCH", "/v1/requests/{id}", br_api_requests_patch, BR_ROLES_DEPARTMENT, BR_BODY_JSON,
     "request-patch"},
    {"POST", "/v1/requests/{id}/submit", br_api_requests_submit, BR_ROLES_DEPARTMENT,
     BR_BODY_JSON_OPTIONAL, "action"},
    {"POST", "/v1/requests/{id}/resubmit", br_api_requests_resubmit, BR_ROLES_DEPARTMENT,
     BR_BODY_JSON_OPTIONAL, "action"},
    {"POST", "/v1/requests/{id}/withdraw", br_api_requests_withdraw, BR_ROLES_DEPARTMENT,
     BR_BODY_JSON_OPTIONAL, "action"},
    {"POST", "/v1/requests/{id}/assign", br_api_requests_assign, BR_ROLES_REVIEWER, BR_BODY_JSON,
     "request-assign"},
    {"POST", "/v1/requests/{id}/opinions", br_api_requests_opinion,
     BR_ROLES_REVIEWER | BR_ROLES_CONSULTANT, BR_BODY_JSON, "opinion-create"},
    {"POST", "/v1/requests/{id}/decision", br_api_requests_decision, BR_ROLES_REVIEWER,
     BR_BODY_JSON, "decision"},

    {"POST", "/v1/requests/{id}/trial-results", br_api_requests_trial_result, BR_ROLES_VENDOR,
     BR_BODY_JSON, "trial-result"},
    {"POST", "/v1/requests/{id}/allocate", br_api_requests_allocate, BR_ROLES_REVIEWER,
     BR_BODY_JSON_OPTIONAL, "action"},
};

const BrRouteTable br_api_requests_routes = {routes, ELEMENTSOF(routes)};
