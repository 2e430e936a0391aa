/* SPDX-License-Identifier: Apache-2.0 */
/* Allocations and their instances; restore and purge: parse, call the owners, answer. */
#include <errno.h>

#include "br-allocation.h"
#include "br-api.h"
#include "br-daemon.h"
#include "br-jobs.h"
#include "br-quota.h"
#include "br-workflow.h"

static int br_api_allocations_list(BrCall *c)
{
    BrAllocationFilter f = {.state = br_call_query(c, "state"),
                            .purpose = br_call_query(c, "purpose")};
    json_object *items;
    BrPage page;
    int r = br_call_page(c, &page);

    if (r >= 0)
        r = br_call_query_int(c, "department", 1, INT64_MAX, &f.department);
    if (r >= 0)
        r = br_call_query_int(c, "system", 1, INT64_MAX, &f.system);
    if (r < 0)
        return r;
    if (f.state && br_allocation_state_from_string(f.state) < 0)
        return cm_error_set(&c->err, CM_ERROR_INVALID, "state", "unknown allocation state");
    if (f.purpose && strcmp(f.purpose, "trial") != 0 && strcmp(f.purpose, "production") != 0)
        return cm_error_set(&c->err, CM_ERROR_INVALID, "purpose",
                            "purpose must be trial or production");
    if (br_call_is_department(c))
        f.department = c->actor.department_id;
    r = br_allocation_list(br_call_db(c), &f, &page, &items, &c->err);
    if (r < 0)
        return r;
    return br_reply_list(c, items, &page);
}

static int br_api_allocations_get(BrCall *c)
{
    json_object *o;
    int r = br_allocation_get(c->d->store, c->ids[0], br_call_scope(c), &o, &c->err);
    if (r < 0)
        return r;
    return br_reply(c, BR_HTTP_OK, o);
}

typedef struct {
    BrCall *c;
    bool restore;
    int64_t job;
} AllocationAction;

/* Restoring takes resources again: the quota is checked as for a new allocation. */
static int restore_quota_check(BrCall *c, CmDb *db, const BrAllocationRow *a)
{
    _cleanup_(br_policies_unrefp) BrPolicies *p = br_call_policies(c);
    BrQuotaUsage u;
    int r = br_quota_usage(db, a->department_id, 0, &u, &c->err);

    if (r < 0)
        return r;
    if (p->review.quota_enforce &&
        (u.allocated.vcpus + u.approved.vcpus + a->totals.vcpus > u.quota.vcpus ||
         u.allocated.memory_mib + u.approved.memory_mib + a->totals.memory_mib >
             u.quota.memory_mib ||
         u.allocated.instances + u.approved.instances + a->totals.instances > u.quota.instances))
        return cm_error_set_code(&c->err, CM_ERROR_UNPROCESSABLE, "review_rule_failed", "/quota",
                                 "restoring allocation %lld would exceed department %lld's quota",
                                 (long long)a->id, (long long)a->department_id);
    return 0;
}

static int allocation_action_tx(BrTx *tx, void *ctx)
{
    AllocationAction *w = ctx;
    BrCall *c = w->c;
    int64_t id = c->ids[0];
    BrAllocationRow a;
    int r = br_allocation_load(tx->db, id, &a, tx->err);

    /* A trial allocation left in error can be purged too; only production is restored. */
    if (r == -ENOENT || (r >= 0 && w->restore && a.trial))
        return br_not_found(c, "allocation", id);
    if (r >= 0 && w->restore)
        r = restore_quota_check(c, tx->db, &a);
    if (r >= 0)
        r = w->restore ? br_workflow_plan_restore(c->d, tx->db, tx->actor, id, &w->job, tx->err)
                       : br_workflow_plan_purge(c->d, tx->db, tx->actor, id, &w->job, tx->err);
    if (r < 0)
        return r;
    br_tx_audit_set(tx, w->restore ? "allocation.restore" : "allocation.purge", "allocation", id,
                    cm_json_to_string(c->body, NULL));
    tx->outcome = "accepted";
    return 0;
}

/* restore and purge: plan the job, answer 202 with the allocation and the job's id. */
static int allocation_action(BrCall *c, bool restore)
{
    AllocationAction w = {.c = c, .restore = restore};
    json_object *o;
    int r = br_call_tx(c, restore ? "allocation.restore" : "allocation.purge", allocation_action_tx,
                       &w);

    if (r < 0)
        return r;
    br_jobs_kick(c->d->jobs);
    r = br_allocation_get(c->d->store, c->ids[0], 0, &o, &c->err);
    if (r < 0)
        return r;
    json_object_object_add(o, "job_id", json_object_new_int64(w.job));
    return br_reply(c, BR_HTTP_ACCEPTED, o);
}

static int br_api_allocations_restore(BrCall *c)
{
    return allocation_action(c, true);
}

static int br_api_allocations_purge(BrCall *c)
{
    return allocation_action(c, false);
}

static const BrRoute routes[] = {

    {"GET", "/v1/allocations", br_api_allocations_list,
     BR_ROLES_DEPARTMENT | BR_ROLES_READERS | BR_ROLES_VENDOR, BR_BODY_NONE, NULL},
    {"GET", "/v1/allocations/{id}", br_api_allocations_get,
     BR_ROLES_DEPARTMENT | BR_ROLES_READERS | BR_ROLES_VENDOR, BR_BODY_NONE, NULL},
    {"POST", "/v1/allocations/{id}/restore", br_api_allocations_restore, BR_ROLES_REVIEWER,
     BR_BODY_JSON_OPTIONAL, "action"},
    {"POST", "/v1/allocations/{id}/purge", br_api_allocations_purge, BR_ROLES_REVIEWER,
     BR_BODY_JSON_OPTIONAL, "action"},
};

const BrRouteTable br_api_allocations_routes = {routes, ELEMENTSOF(routes)};
