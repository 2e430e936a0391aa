/* SPDX-License-Identifier: Apache-2.0 */
/* Findings and their lifecycle, a finding's change request, the assessment run. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "br-api.h"
#include "br-assess.h"
#include "br-daemon.h"
#include "br-finding.h"
#include "br-instance.h"
#include "br-policy.h"
#include "br-request.h"
#include "cm-util.h"

static int br_api_findings_list(BrCall *c)
{
    _cleanup_(br_policies_unrefp) BrPolicies *pol = NULL;
    BrFindingFilter filter = {.state = br_call_query(c, "state"), .kind = br_call_query(c, "kind")};
    json_object *items;
    BrPage page;
    int r = br_call_page(c, &page);

    if (r >= 0)
        r = br_call_query_int(c, "department", 1, INT64_MAX, &filter.department);
    if (r >= 0)
        r = br_call_query_int(c, "allocation", 1, INT64_MAX, &filter.allocation);
    if (r < 0)
        return r;
    if (filter.state && strcmp(filter.state, "open") && strcmp(filter.state, "acknowledged") &&
        strcmp(filter.state, "resolved") && strcmp(filter.state, "dismissed") &&
        strcmp(filter.state, "live"))
        return cm_error_set(&c->err, CM_ERROR_INVALID, "state",
                            "state is open, acknowledged, resolved, dismissed or live");
    if (filter.kind && strcmp(filter.kind, "idle") && strcmp(filter.kind, "over_provisioned") &&
        strcmp(filter.kind, "under_provisioned"))
        return cm_error_set(&c->err, CM_ERROR_INVALID, "kind",
                            "kind is idle, over_provisioned or under_provisioned");
    if (br_call_is_department(c))
        filter.department = c->actor.department_id;
    pol = br_daemon_policies(c->d);
    r = br_finding_list(br_call_db(c), &filter, &pol->pricing, &page, &items, &c->err);
    if (r < 0)
        return r;
    return br_reply_list(c, items, &page);
}

static int br_api_findings_get(BrCall *c)
{
    _cleanup_(br_policies_unrefp) BrPolicies *pol = br_daemon_policies(c->d);
    json_object *o;
    int r = br_finding_get(br_call_db(c), c->ids[0], br_call_scope(c), &pol->pricing, &o, &c->err);
    if (r < 0)
        return r;
    return br_reply(c, BR_HTTP_OK, o);
}

typedef struct {
    BrCall *c;
    BrPolicies *pol;
    int64_t id, scope;
    const char *to;
    char action[48];
    json_object *out;
} FindingMove;

static int finding_move_tx(BrTx *tx, void *ctx)
{
    FindingMove *w = ctx;
    int r =
        br_finding_move(tx, w->id, w->scope, w->to, cm_json_get_str(w->c->body, "reason", NULL));
    if (r < 0)
        return r;
    snprintf(w->action, sizeof(w->action), "finding.%s", w->to);
    br_tx_audit_set(tx, w->action, "finding", w->id, cm_json_to_string(w->c->body, NULL));
    tx->outcome = w->to;
    return br_finding_get(tx->db, w->id, 0, &w->pol->pricing, &w->out, tx->err);
}

/* open → acknowledged → resolved | dismissed (with a reason). */
static int finding_move(BrCall *c, const char *to)
{
    _cleanup_(br_policies_unrefp) BrPolicies *pol = br_daemon_policies(c->d);
    FindingMove w = {.c = c, .pol = pol, .id = c->ids[0], .scope = br_call_scope(c), .to = to};
    int r;

    if (strcmp(to, "dismissed") == 0 && !cm_json_get_str(c->body, "reason", NULL))
        return cm_error_set_code(&c->err, CM_ERROR_UNPROCESSABLE, "missing_field", "/reason",
                                 "a reason is required to dismiss a finding");
    r = br_call_tx(c, "finding.move", finding_move_tx, &w);
    if (r < 0) {
        json_object_put(w.out);
        return r;
    }
    return br_reply(c, BR_HTTP_OK, w.out);
}

static int br_api_findings_acknowledge(BrCall *c)
{
    return finding_move(c, "acknowledged");
}

static int br_api_findings_resolve(BrCall *c)
{
    return finding_move(c, "resolved");
}

static int br_api_findings_dismiss(BrCall *c)
{
    return finding_move(c, "dismissed");
}

/* A finding's draft request, as POST /v1/requests would make it. */
typedef struct {
    BrCall *c;
    int64_t id, scope, alloc, system, req_id;
    const char *req_kind;
    json_object *resources; /* NULL: none (a termination) */
    bool restart;
    char just[512];
} ChangeRequest;

/* The allocation's instances as they are, the finding's at the recommended size; for a
 * scale-in, the idle one left out of the list and named by its index in "remove". */
static int draft_resources(ChangeRequest *w, CmDb *db, const BrFinding *f, bool scale_in)
{
    _cleanup_json_ json_object *live = NULL;
    json_object *list = json_object_new_array(), *remove = NULL;
    int r = br_instance_list_live(db, f->allocation_id, &live, &w->c->err);

    w->resources = json_object_new_object();
    json_object_object_add(w->resources, "instances", list);
    if (scale_in) {
        remove = json_object_new_array();
        json_object_object_add(w->resources, "remove", remove);
    }
    for (size_t k = 0; r >= 0 && k < json_object_array_length(live); k++) {
        json_object *x = json_object_array_get_idx(live, k), *one;
        bool me = cm_json_get_int(x, "id", 0) == f->instance_id;
        if (me && scale_in) {
            json_object_array_add(remove, json_object_get(cm_json_get(x, "idx")));
            continue;
        }
        one = json_object_new_object();
        json_object_object_add(
            one, "vcpus",
            json_object_new_int64(me ? f->recommended.vcpus : cm_json_get_int(x, "vcpus", 0)));
        json_object_object_add(one, "memory_mib",
                               json_object_new_int64(me ? f->recommended.memory_mib
                                                        : cm_json_get_int(x, "memory_mib", 0)));
        json_object_object_add(one, "disk_gib",
                               json_object_new_int64(cm_json_get_int(x, "disk_gib", 0)));
        json_object_object_add(one, "image", json_object_get(cm_json_get(x, "image")));
        json_object_array_add(list, one);
    }
    return r;
}

static int change_request_tx(BrTx *tx, void *ctx)
{
    ChangeRequest *w = ctx;
    _cleanup_json_ json_object *what = json_object_new_object();
    char detail[64], comment[64];
    bool idle, scale_in = false;
    BrFinding f;
    int r = br_finding_load(tx->db, w->id, w->scope, &f, tx->err);

    if (r < 0)
        return r;
    if (strcmp(f.state, "open") != 0 && strcmp(f.state, "acknowledged") != 0)
        return cm_error_set_code(tx->err, CM_ERROR_CONFLICT, "invalid_state", "state",
                                 "finding %lld is '%s'", (long long)w->id, f.state);
    if (f.change_request_id)
        return cm_error_set_code(tx->err, CM_ERROR_CONFLICT, "duplicate", "change_request_id",
                                 "finding %lld already has request %lld", (long long)w->id,
                                 (long long)f.change_request_id);
    /* The same rules as POST /v1/requests: one open request per live allocation. */
    r = br_request_check_allocation(tx->db, f.department_id, f.allocation_id, f.system_id, tx->err);
    idle = strcmp(f.kind, "idle") == 0;
    /* An idle instance beside instances that are not idle: remove that one (scale-in), not
     * the allocation. */
    if (r >= 0 && idle)
        r = br_finding_others_busy(tx->db, f.allocation_id, f.instance_id, &scale_in, tx->err);
    if (r >= 0 && (!idle || scale_in))
        r = draft_resources(w, tx->db, &f, scale_in);
    if (r < 0)
        return r;
    /* Fewer vCPUs can only be applied by a restart. */
    w->restart = !idle && f.recommended.vcpus < f.current.vcpus;
    w->alloc = f.allocation_id;
    w->system = f.system_id;
    w->req_kind = idle && !scale_in ? "termination" : "change";
    snprintf(w->just, sizeof(w->just), "%s of finding %lld (%s).",
             scale_in ? "Scale-in: removal of an idle instance while the others work, on the "
                        "advice"
             : idle   ? "Termination of an idle instance, on the advice"
                      : "Right-sizing as recommended",
             (long long)w->id, f.kind);
    /* The one create of requests, as POST /v1/requests drafts one; audited as that audits a
     * draft, with what it asks for. */
    json_object_object_add(what, "system", json_object_new_int64(w->system));
    json_object_object_add(what, "kind", json_object_new_string(w->req_kind));
    json_object_object_add(what, "allocation", json_object_new_int64(w->alloc));
    if (w->resources)
        json_object_object_add(what, "resources", json_object_get(w->resources));
    json_object_object_add(what, "finding", json_object_new_int64(w->id));
    snprintf(comment, sizeof(comment), "from finding %lld", (long long)w->id);
    BrRequestDraft draft = {.department_id = f.department_id,
                            .system_id = w->system,
                            .allocation_id = w->alloc,
                            .kind = (BrRequestKind)br_request_kind_from_string(w->req_kind),
                            .resources = w->resources,
                            .justification = w->just,
                            .restart_allowed = w->restart,
                            .comment = comment,
                            .detail = cm_json_to_string(what, NULL)};
    r = br_request_create(tx, &draft, &w->req_id);
    if (r >= 0)
        r = br_finding_set_change_request(tx, w->id, w->req_id);
    if (r < 0)
        return r;
    snprintf(detail, sizeof(detail), "{\"request_id\":%lld}", (long long)w->req_id);
    br_tx_audit_set(tx, "finding.change_request", "finding", w->id, detail);
    tx->outcome = "draft";
    return 0;
}

/* A draft change (or, for an idle instance, termination) request sized as recommended. */
static int br_api_findings_change_request(BrCall *c)
{
    ChangeRequest w = {.c = c, .id = c->ids[0], .scope = br_call_scope(c)};
    json_object *o;
    int r;

    r = br_call_tx(c, "finding.change_request", change_request_tx, &w);
    json_object_put(w.resources);
    if (r < 0)
        return r;
    o = json_object_new_object();
    json_object_object_add(o, "finding_id", json_object_new_int64(w.id));
    json_object_object_add(o, "request_id", json_object_new_int64(w.req_id));
    return br_reply(c, BR_HTTP_CREATED, o);
}

static int br_api_assessment_run(BrCall *c)
{
    json_object *o = NULL;
    int r = br_assess_run(c->d, &c->actor, &o, &c->err);
    if (r < 0)
        return r;
    return br_reply(c, BR_HTTP_OK, o);
}

static const BrRoute routes[] = {

    /* Assessment: findings and the run (Art. 5, 8, 9); security records in br-api-security.c,
     * reports in br-api-reports.c. */
    {"GET", "/v1/findings", br_api_findings_list,
     BR_ROLES_DEPARTMENT | BR_ROLES_READERS | BR_ROLES_VENDOR, BR_BODY_NONE, NULL},
    {"GET", "/v1/findings/{id}", br_api_findings_get,
     BR_ROLES_DEPARTMENT | BR_ROLES_READERS | BR_ROLES_VENDOR, BR_BODY_NONE, NULL},
    {"POST", "/v1/findings/{id}/acknowledge", br_api_findings_acknowledge,
     BR_ROLES_DEPARTMENT | BR_ROLES_REVIEWER, BR_BODY_JSON_OPTIONAL, "finding-action"},
    {"POST", "/v1/findings/{id}/resolve", br_api_findings_resolve,
     BR_ROLES_DEPARTMENT | BR_ROLES_REVIEWER, BR_BODY_JSON_OPTIONAL, "finding-action"},
    {"POST", "/v1/findings/{id}/dismiss", br_api_findings_dismiss, BR_ROLES_REVIEWER, BR_BODY_JSON,
     "finding-action"},
    {"POST", "/v1/findings/{id}/change-request", br_api_findings_change_request,
     BR_ROLES_DEPARTMENT, BR_BODY_JSON_OPTIONAL, "empty"},
    {"POST", "/v1/assessment/run", br_api_assessment_run, BR_ROLES_REVIEWER | BR_ROLES_VENDOR,
     BR_BODY_JSON_OPTIONAL, "empty"},
};

const BrRouteTable br_api_findings_routes = {routes, ELEMENTSOF(routes)};
