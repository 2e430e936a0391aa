/* SPDX-License-Identifier: Apache-2.0 */
/* The departments and their quotas: parse, call the table's owner, answer. */
#include <errno.h>

#include "br-api.h"
#include "br-department.h"
#include "br-quota.h"

typedef struct {
    BrCall *c;
    int64_t id;
    BrResources quota;
    json_object *out;
} DepartmentCall;

static void department_call_done(DepartmentCall *w)
{
    json_object_put(w->out);
}

/* Department w->id with its usage into w->out (404 when absent or not the caller's). */
static int department_load(BrTx *tx, void *ctx)
{
    DepartmentCall *w = ctx;
    BrQuotaUsage u;
    BrResources headroom;
    json_object *usage;
    int r;

    if (br_call_scope(w->c) && br_call_scope(w->c) != w->id)
        return br_not_found(w->c, "department", w->id);
    r = br_department_get(tx->db, w->id, &w->out, tx->err);
    if (r < 0)
        return r;
    r = br_quota_usage(tx->db, w->id, 0, &u, tx->err);
    if (r < 0)
        return r == -ENOENT ? br_not_found(w->c, "department", w->id) : r;
    headroom = u.quota;
    headroom.vcpus -= u.allocated.vcpus + u.approved.vcpus;
    headroom.memory_mib -= u.allocated.memory_mib + u.approved.memory_mib;
    headroom.disk_gib -= u.allocated.disk_gib + u.approved.disk_gib;
    headroom.instances -= u.allocated.instances + u.approved.instances;
    usage = json_object_new_object();
    json_object_object_add(usage, "allocated", br_resources_to_json(&u.allocated));
    json_object_object_add(usage, "approved", br_resources_to_json(&u.approved));
    json_object_object_add(usage, "headroom", br_resources_to_json(&headroom));
    json_object_object_add(w->out, "usage", usage);
    return 0;
}

static void quota_from_json(json_object *q, BrResources *r)
{
    r->vcpus = cm_json_get_int(q, "vcpus", r->vcpus);
    r->memory_mib = cm_json_get_int(q, "memory_mib", r->memory_mib);
    r->disk_gib = cm_json_get_int(q, "disk_gib", r->disk_gib);
    r->instances = cm_json_get_int(q, "instances", r->instances);
}

static int department_create_tx(BrTx *tx, void *ctx)
{
    DepartmentCall *w = ctx;
    json_object *body = w->c->body;
    int r = br_department_create(tx, cm_json_get_str(body, "code", ""),
                                 cm_json_get_str(body, "name", ""), &w->quota, &w->id);
    if (r < 0)
        return r;
    br_tx_audit_set(tx, "department.create", "department", w->id, cm_json_to_string(body, NULL));
    return department_load(tx, w);
}

static int br_api_departments_create(BrCall *c)
{
    _cleanup_(br_policies_unrefp) BrPolicies *p = br_call_policies(c);
    _cleanup_(department_call_done) DepartmentCall w = {.c = c, .quota = p->review.default_quota};
    int r;

    quota_from_json(cm_json_get(c->body, "quota"), &w.quota);
    r = br_call_tx(c, "department.create", department_create_tx, &w);
    if (r < 0)
        return r;
    return br_reply(c, BR_HTTP_CREATED, TAKE_PTR(w.out));
}

static int br_api_departments_list(BrCall *c)
{
    json_object *items;
    BrPage page;
    int r = br_call_page(c, &page);

    if (r >= 0)
        r = br_department_list(br_call_db(c), br_call_scope(c), &page, &items, &c->err);
    if (r < 0)
        return r;
    return br_reply_list(c, items, &page);
}

static int br_api_departments_get(BrCall *c)
{
    _cleanup_(department_call_done) DepartmentCall w = {.c = c, .id = c->ids[0]};
    int r = br_call_read(c, "department.get", department_load, &w);
    if (r < 0)
        return r;
    return br_reply(c, BR_HTTP_OK, TAKE_PTR(w.out));
}

static int department_patch_tx(BrTx *tx, void *ctx)
{
    DepartmentCall *w = ctx;
    json_object *body = w->c->body;
    int r = br_department_update(tx, w->id, cm_json_get_str(body, "name", NULL), &w->quota);
    if (r < 0)
        return r;
    br_tx_audit_set(tx, "department.update", "department", w->id, cm_json_to_string(body, NULL));
    return department_load(tx, w);
}

static int br_api_departments_patch(BrCall *c)
{
    _cleanup_(department_call_done)
        DepartmentCall w = {.c = c, .id = c->ids[0], .quota = {-1, -1, -1, -1}};
    int r;

    quota_from_json(cm_json_get(c->body, "quota"), &w.quota);
    r = br_call_tx(c, "department.update", department_patch_tx, &w);
    if (r < 0)
        return r;
    return br_reply(c, BR_HTTP_OK, TAKE_PTR(w.out));
}

static const BrRoute routes[] = {

    {"POST", "/v1/departments", br_api_departments_create, BR_ROLES_ADMIN, BR_BODY_JSON,
     "department-create"},
    {"GET", "/v1/departments", br_api_departments_list, BR_ROLES_ACCOUNTS, BR_BODY_NONE, NULL},
    {"GET", "/v1/departments/{id}", br_api_departments_get, BR_ROLES_ACCOUNTS, BR_BODY_NONE, NULL},
    {"PATCH", "/v1/departments/{id}", br_api_departments_patch, BR_ROLES_ADMIN | BR_ROLES_REVIEWER,
     BR_BODY_JSON, "department-patch"},
};

const BrRouteTable br_api_departments_routes = {routes, ELEMENTSOF(routes)};
