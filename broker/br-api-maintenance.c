/* SPDX-License-Identifier: Apache-2.0 */
/* Maintenance windows of the hosts: parse, call the table's owner, answer. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "br-api.h"
#include "br-host.h"
#include "br-maintenance.h"
#include "cm-json.h"
#include "cm-time.h"

typedef struct {
    int64_t id, host;
    char starts[CM_TIME_ISO_LEN + 1], ends[CM_TIME_ISO_LEN + 1];
    bool agree;
    json_object *body, *out;
} WindowWrite;

static int window_create_tx(BrTx *tx, void *ctx)
{
    WindowWrite *w = ctx;
    char name[128];
    int r = br_host_name(tx->db, w->host, name, sizeof(name), tx->err);

    if (r <= 0)
        return r < 0 ? r
                     : cm_error_set_code(tx->err, CM_ERROR_UNPROCESSABLE, "schema_violation",
                                         "/host", "no host with id %lld", (long long)w->host);
    r = br_maintenance_create(tx, w->host, w->starts, w->ends,
                              cm_json_get_str(w->body, "reason", ""), &w->id);
    if (r < 0)
        return r;
    br_tx_audit_set(tx, "maintenance.propose", "maintenance_window", w->id,
                    cm_json_to_string(w->body, NULL));
    return br_maintenance_get(tx->db, w->id, &w->out, tx->err);
}

/* A time of the body, as cm_time_iso() writes it, in @out. */
static int body_time(BrCall *c, const char *key, int64_t *ret_ms, char out[CM_TIME_ISO_LEN + 1])
{
    char field[32];
    snprintf(field, sizeof(field), "/%s", key);
    if (cm_time_parse_iso(cm_json_get_str(c->body, key, ""), ret_ms) < 0)
        return cm_error_set_code(&c->err, CM_ERROR_UNPROCESSABLE, "schema_violation", field,
                                 "not a valid time");
    cm_time_iso(*ret_ms, out);
    return 0;
}

static int br_api_maintenance_create(BrCall *c)
{
    WindowWrite w = {.host = cm_json_get_int(c->body, "host", 0), .body = c->body};
    int64_t a, b;
    int r = body_time(c, "starts_at", &a, w.starts);

    if (r >= 0)
        r = body_time(c, "ends_at", &b, w.ends);
    if (r < 0)
        return r;
    /* Agreed ahead of time: a window proposed for time gone by would excuse an outage. */
    if (a <= cm_now_ms())
        return cm_error_set_code(&c->err, CM_ERROR_UNPROCESSABLE, "schema_violation", "/starts_at",
                                 "a maintenance window is proposed before it starts");
    if (b <= a)
        return cm_error_set_code(&c->err, CM_ERROR_UNPROCESSABLE, "schema_violation", "/ends_at",
                                 "ends_at lies at or before starts_at");
    r = br_call_tx(c, "maintenance.propose", window_create_tx, &w);
    if (r < 0)
        return r;
    return br_reply(c, BR_HTTP_CREATED, w.out);
}

static int window_decide_tx(BrTx *tx, void *ctx)
{
    WindowWrite *w = ctx;
    int r = br_maintenance_decide(tx, w->id, w->agree);
    if (r < 0)
        return r;
    br_tx_audit_set(tx, w->agree ? "maintenance.agree" : "maintenance.reject", "maintenance_window",
                    w->id, cm_json_to_string(w->body, NULL));
    return br_maintenance_get(tx->db, w->id, &w->out, tx->err);
}

static int br_api_maintenance_decide(BrCall *c)
{
    WindowWrite w = {
        .id = c->ids[0],
        .agree = strcmp(cm_json_get_str(c->body, "decision", ""), "agree") == 0,
        .body = c->body,
    };
    int r = br_call_tx(c, "maintenance.decide", window_decide_tx, &w);
    if (r < 0)
        return r;
    return br_reply(c, BR_HTTP_OK, w.out);
}

static int br_api_maintenance_list(BrCall *c)
{
    json_object *items;
    BrPage page;
    int r = br_call_page(c, &page);

    if (r >= 0)
        r = br_maintenance_list(br_call_db(c), &page, &items, &c->err);
    if (r < 0)
        return r;
    return br_reply_list(c, items, &page);
}

static const BrRoute routes[] = {
    {"GET", "/v1/maintenance-windows", br_api_maintenance_list,
     BR_ROLES_READERS | BR_ROLES_ADMIN | BR_ROLES_VENDOR, BR_BODY_NONE, NULL},
    {"POST", "/v1/maintenance-windows", br_api_maintenance_create, BR_ROLES_VENDOR, BR_BODY_JSON,
     "maintenance-create"},
    {"POST", "/v1/maintenance-windows/{id}/decision", br_api_maintenance_decide, BR_ROLES_REVIEWER,
     BR_BODY_JSON, "maintenance-decision"},
};

const BrRouteTable br_api_maintenance_routes = {routes, ELEMENTSOF(routes)};
