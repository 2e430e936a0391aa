/* SPDX-License-Identifier: Apache-2.0 */
/* The reviewers' dashboard and the approval queue: parse, call the read models, answer. */
#include <string.h>

#include "br-api-requests.h"
#include "br-api.h"
#include "br-daemon.h"
#include "br-dashboard.h"
#include "br-hosts.h"
#include "br-review.h"
#include "cm-time.h"

typedef struct {
    const BrPlacementPolicyConf *placement;
    json_object *out;
} Summary;

static int summary_tx(BrTx *tx, void *ctx)
{
    Summary *w = ctx;
    return br_dashboard_summary(tx->db, w->placement, cm_now_ms(), &w->out, tx->err);
}

static int br_api_dashboard(BrCall *c)
{
    _cleanup_(br_policies_unrefp) BrPolicies *p = br_call_policies(c);
    Summary w = {.placement = &p->placement};
    json_object *o, *hosts;
    /* One snapshot for all the counts. */
    int r = br_call_read(c, "dashboard", summary_tx, &w);

    if (r < 0)
        return r;
    o = w.out;
    /* Whether each host's libvirt connection is up is known to the daemon, not the database. */
    hosts = cm_json_get(o, "hosts");
    for (size_t i = 0; i < json_object_array_length(hosts); i++) {
        json_object *h = json_object_array_get_idx(hosts, i);
        BrHostStatus st = {0};
        bool known = c->d->hosts && br_hosts_status(c->d->hosts, cm_json_get_int(h, "id", 0), &st);
        json_object_object_add(h, "connected", json_object_new_boolean(known && st.connected));
    }
    return br_reply(c, BR_HTTP_OK, o);
}

/* The pre-review check of a request that still waits on its materials and sizes. */
static int add_precheck(BrCall *c, CmDb *db, json_object *item)
{
    const char *state = cm_json_get_str(item, "state", "");
    _cleanup_json_ json_object *check = NULL;
    BrRequestRow row = {0};
    BrReviewOutcome outcome;
    json_object *pre, *failed, *advisory;
    int r;

    if (strcmp(state, "submitted") != 0 && strcmp(state, "returned") != 0 &&
        strcmp(state, "draft") != 0) {
        json_object_object_add(item, "precheck", NULL);
        return 0;
    }
    /* -- changed by requests: br_request_load() is the owner's (br-request.c) -- */
    r = br_request_load(db, cm_json_get_int(item, "id", 0), &c->actor, &row, &c->err);
    if (r >= 0)
        r = br_request_review(c, db, &row, &check, &outcome);
    br_request_row_clear(&row);
    if (r < 0)
        return r;
    pre = json_object_new_object();
    failed = json_object_new_array();
    advisory = json_object_new_array();
    for (int i = 0; i < BR_REVIEW_RULE_MAX; i++)
        if (!outcome.ok[i])
            json_object_array_add(
                outcome.enforced[i] ? failed : advisory,
                json_object_new_string(br_review_rule_to_string((BrReviewRule)i)));
    json_object_object_add(pre, "ok",
                           json_object_new_boolean(cm_json_get_bool(check, "ok", false)));
    json_object_object_add(pre, "failed", failed);
    json_object_object_add(pre, "advisory", advisory);
    json_object_object_add(item, "precheck", pre);
    return 0;
}

static int br_api_queue(BrCall *c)
{
    CmDb *db = br_call_db(c);
    json_object *items, *o;
    int64_t limit = 100;
    int r = br_call_query_int(c, "limit", 1, 1000, &limit);

    if (r >= 0)
        r = br_dashboard_queue(db, c->actor.role, c->actor.account_id, c->actor.department_id,
                               limit, &items, &c->err);
    if (r < 0)
        return r;
    for (size_t i = 0; i < json_object_array_length(items) && r >= 0; i++) {
        json_object *item = json_object_array_get_idx(items, i);
        /* Only the consultant itself is told whom a request is assigned to. */
        json_object_object_del(item, "consultant_id");
        r = add_precheck(c, db, item);
    }
    if (r < 0) {
        json_object_put(items);
        return r;
    }
    o = json_object_new_object();
    json_object_object_add(o, "items", items);
    json_object_object_add(o, "next", NULL);
    return br_reply(c, BR_HTTP_OK, o);
}

static const BrRoute routes[] = {
    /* The bureau's overview; what waits for one who acts on requests. */
    {"GET", "/v1/dashboard", br_api_dashboard, BR_ROLES_READERS, BR_BODY_NONE, NULL},
    {"GET", "/v1/queue", br_api_queue,
     BR_ROLES_REVIEWER | BR_ROLES_CONSULTANT | BR_ROLES_VENDOR | BR_ROLES_DEPARTMENT, BR_BODY_NONE,
     NULL},
};

const BrRouteTable br_api_dashboard_routes = {routes, ELEMENTSOF(routes)};
