/* SPDX-License-Identifier: Apache-2.0 */
/* The systems (应用系统) of the departments: parse, call the table's owner, answer. */

#include "br-api.h"
#include "br-system.h"

typedef struct {
    int64_t id, department;
    BrSystemFields fields;
    json_object *body, *out;
} SystemWrite;

static void system_write_done(SystemWrite *w)
{
    json_object_put(w->out);
}

static void fields_from_body(json_object *body, BrSystemFields *f)
{
    *f = (BrSystemFields){
        .name = cm_json_get_str(body, "name", NULL),
        .description = cm_json_get_str(body, "description", NULL),
        .category = cm_json_get_str(body, "category", NULL),
        .protection_level = cm_json_get_int(body, "protection_level", -1),
        .status = cm_json_get_str(body, "status", NULL),
    };
}

static int system_create_tx(BrTx *tx, void *ctx)
{
    SystemWrite *w = ctx;
    int r = br_system_create(tx, w->department, &w->fields, &w->id);
    if (r < 0)
        return r;
    br_tx_audit_set(tx, "system.create", "system", w->id, cm_json_to_string(w->body, NULL));
    return br_system_get(tx->db, w->id, 0, &w->out, tx->err);
}

static int br_api_systems_create(BrCall *c)
{
    _cleanup_(system_write_done) SystemWrite w = {
        .department = cm_json_get_int(c->body, "department_id", 0), .body = c->body};
    int r;

    if (br_call_is_department(c)) {
        if (w.department && w.department != c->actor.department_id)
            return cm_error_set(&c->err, CM_ERROR_FORBIDDEN, "/department_id",
                                "a department registers systems for itself only");
        w.department = c->actor.department_id;
    } else if (!w.department) {
        return cm_error_set_code(&c->err, CM_ERROR_UNPROCESSABLE, "missing_field", "/department_id",
                                 "department_id is required when the bureau registers a system");
    }
    fields_from_body(c->body, &w.fields);
    r = br_call_tx(c, "system.create", system_create_tx, &w);
    if (r < 0)
        return r;
    return br_reply(c, BR_HTTP_CREATED, TAKE_PTR(w.out));
}

static int br_api_systems_list(BrCall *c)
{
    BrPage page;
    int64_t department = 0;
    json_object *items;
    int r = br_call_page(c, &page);

    if (r >= 0)
        r = br_call_query_int(c, "department", 1, INT64_MAX, &department);
    if (r >= 0)
        r = br_system_list(br_call_db(c), br_call_scope(c) ? br_call_scope(c) : department, &page,
                           &items, &c->err);
    if (r < 0)
        return r;
    return br_reply_list(c, items, &page);
}

static int br_api_systems_get(BrCall *c)
{
    json_object *o;
    int r = br_system_get(br_call_db(c), c->ids[0], br_call_scope(c), &o, &c->err);
    if (r < 0)
        return r;
    return br_reply(c, BR_HTTP_OK, o);
}

static int system_patch_tx(BrTx *tx, void *ctx)
{
    SystemWrite *w = ctx;
    int r = br_system_update(tx, w->id, w->department, &w->fields);
    if (r < 0)
        return r;
    br_tx_audit_set(tx, "system.update", "system", w->id, cm_json_to_string(w->body, NULL));
    return br_system_get(tx->db, w->id, 0, &w->out, tx->err);
}

static int br_api_systems_patch(BrCall *c)
{
    _cleanup_(system_write_done)
        SystemWrite w = {.id = c->ids[0], .department = br_call_scope(c), .body = c->body};
    int r;

    fields_from_body(c->body, &w.fields);
    r = br_call_tx(c, "system.update", system_patch_tx, &w);
    if (r < 0)
        return r;
    return br_reply(c, BR_HTTP_OK, TAKE_PTR(w.out));
}

static const BrRoute routes[] = {

    {"POST", "/v1/systems", br_api_systems_create, BR_ROLES_DEPARTMENT | BR_ROLES_REVIEWER,
     BR_BODY_JSON, "system-create"},
    {"GET", "/v1/systems", br_api_systems_list,
     BR_ROLES_DEPARTMENT | BR_ROLES_READERS | BR_ROLES_VENDOR, BR_BODY_NONE, NULL},
    {"GET", "/v1/systems/{id}", br_api_systems_get,
     BR_ROLES_DEPARTMENT | BR_ROLES_READERS | BR_ROLES_VENDOR, BR_BODY_NONE, NULL},
    {"PATCH", "/v1/systems/{id}", br_api_systems_patch, BR_ROLES_DEPARTMENT | BR_ROLES_REVIEWER,
     BR_BODY_JSON, "system-patch"},
};

const BrRouteTable br_api_systems_routes = {routes, ELEMENTSOF(routes)};
