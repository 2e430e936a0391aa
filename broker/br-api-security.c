/* SPDX-License-Identifier: Apache-2.0 */
/* The security and backup records of a system: parse, call the tables' owner, answer. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "br-api.h"
#include "br-security.h"
#include "br-system.h"

/* A time of the body in cm_time_iso() form in @out ("" when absent), not in the future. */
static int check_time(BrCall *c, const char *key, char out[CM_TIME_ISO_LEN + 1])
{
    const char *v = cm_json_get_str(c->body, key, NULL);
    int64_t ms;
    char field[64];

    out[0] = 0;
    if (!v)
        return 0;
    snprintf(field, sizeof(field), "/%s", key);
    if (cm_time_parse_iso(v, &ms) < 0)
        return cm_error_set_code(&c->err, CM_ERROR_UNPROCESSABLE, "schema_violation", field,
                                 "not a valid date or time");
    if (ms > cm_now_ms() + 86400000)
        return cm_error_set_code(&c->err, CM_ERROR_UNPROCESSABLE, "schema_violation", field,
                                 "lies in the future");
    cm_time_iso(ms, out);
    return 0;
}

/* An end that lies before its start (times in cm_time_iso form compare as strings). */
static int check_order(CmError *err, const char *start_key, const char *start, const char *end_key,
                       const char *end)
{
    char field[64];
    if (!start[0] || !end[0] || strcmp(end, start) >= 0)
        return 0;
    snprintf(field, sizeof(field), "/%s", end_key);
    return cm_error_set_code(err, CM_ERROR_UNPROCESSABLE, "schema_violation", field,
                             "%s lies before %s (%s)", end_key, start_key, start);
}

/* System @id if the caller's department (@scope, 0: any) may see it; 404 otherwise. */
static int system_visible(CmDb *db, int64_t id, int64_t scope, CmError *err)
{
    _cleanup_json_ json_object *system = NULL;
    return br_system_get(db, id, scope, &system, err);
}

typedef struct {
    BrSecurityKind kind;
    int64_t id, system, scope;
    char at[CM_TIME_ISO_LEN + 1], end_at[CM_TIME_ISO_LEN + 1];
    BrSecurityRecord rec;
    json_object *body, *out;
} RecordWrite;

static void record_write_done(RecordWrite *w)
{
    json_object_put(w->out);
}

static int record_create_tx(BrTx *tx, void *ctx)
{
    static const char *const actions[] = {"vulnerability.create", "incident.create",
                                          "backup.attest"};
    RecordWrite *w = ctx;
    int r = system_visible(tx->db, w->system, w->scope, tx->err);
    if (r < 0)
        return r;
    r = br_security_create(tx, w->kind, w->system, &w->rec, &w->id);
    if (r < 0)
        return r;
    br_tx_audit_set(tx, actions[w->kind], "system", w->system, cm_json_to_string(w->body, NULL));
    return br_security_get(tx->db, w->kind, w->id, &w->out, tx->err);
}

static int record_create(BrCall *c, BrSecurityKind kind)
{
    static const char *const time_keys[][2] = {
        {"found_at", "fixed_at"}, {"occurred_at", "resolved_at"}, {"taken_at", NULL}};
    _cleanup_(record_write_done) RecordWrite w = {
        .kind = kind, .system = c->ids[0], .scope = br_call_scope(c), .body = c->body};
    char now[CM_TIME_ISO_LEN + 1];
    int r = check_time(c, time_keys[kind][0], w.at);

    if (r >= 0 && time_keys[kind][1])
        r = check_time(c, time_keys[kind][1], w.end_at);
    if (r >= 0 && kind == BR_SECURITY_VULNERABILITY) {
        bool fixed = strcmp(cm_json_get_str(c->body, "status", "open"), "fixed") == 0;
        cm_time_iso(cm_now_ms(), now);
        if (fixed && !w.end_at[0])
            memcpy(w.end_at, now, sizeof(now)); /* fixed now, as a PATCH to "fixed" says */
        else if (!fixed && w.end_at[0])
            r = cm_error_set_code(&c->err, CM_ERROR_UNPROCESSABLE, "schema_violation", "/fixed_at",
                                  "fixed_at is only for a fixed vulnerability");
    }
    if (r >= 0 && kind != BR_SECURITY_BACKUP)
        r = check_order(&c->err, time_keys[kind][0], w.at, time_keys[kind][1], w.end_at);
    if (r < 0)
        return r;
    w.rec = (BrSecurityRecord){
        .severity = cm_json_get_str(c->body, "severity", ""),
        .title = cm_json_get_str(c->body, "title", ""),
        .status = cm_json_get_str(c->body, "status", "open"),
        .description = cm_json_get_str(c->body, "description", ""),
        .location = cm_json_get_str(c->body, "location", ""),
        .sha256 = cm_json_get_str(c->body, "sha256", ""),
        .size_bytes = cm_json_get_int(c->body, "size_bytes", 0),
        .at = w.at,
        .end_at = w.end_at[0] ? w.end_at : NULL,
    };
    r = br_call_tx(c, "security.create", record_create_tx, &w);
    if (r < 0)
        return r;
    return br_reply(c, BR_HTTP_CREATED, TAKE_PTR(w.out));
}

static int br_api_vulnerabilities_create(BrCall *c)
{
    return record_create(c, BR_SECURITY_VULNERABILITY);
}

static int br_api_incidents_create(BrCall *c)
{
    return record_create(c, BR_SECURITY_INCIDENT);
}

static int br_api_backups_create(BrCall *c)
{
    return record_create(c, BR_SECURITY_BACKUP);
}

static int record_list(BrCall *c, BrSecurityKind kind)
{
    CmDb *db = br_call_db(c);
    json_object *items;
    BrPage page;
    int r = br_call_page(c, &page);

    if (r >= 0)
        r = system_visible(db, c->ids[0], br_call_scope(c), &c->err);
    if (r >= 0)
        r = br_security_list(db, kind, c->ids[0], &page, &items, &c->err);
    if (r < 0)
        return r;
    return br_reply_list(c, items, &page);
}

static int br_api_vulnerabilities_list(BrCall *c)
{
    return record_list(c, BR_SECURITY_VULNERABILITY);
}

static int br_api_incidents_list(BrCall *c)
{
    return record_list(c, BR_SECURITY_INCIDENT);
}

static int br_api_backups_list(BrCall *c)
{
    return record_list(c, BR_SECURITY_BACKUP);
}

static int vulnerability_patch_tx(BrTx *tx, void *ctx)
{
    RecordWrite *w = ctx;
    const char *status = cm_json_get_str(w->body, "status", "open");
    BrSecurityState s;
    int r = br_security_load(tx->db, BR_SECURITY_VULNERABILITY, w->id, &s, tx->err);

    if (r < 0)
        return r;
    /* Another department's vulnerability is as missing as one that does not exist. */
    if (system_visible(tx->db, s.system_id, w->scope, tx->err) < 0)
        return cm_error_set(tx->err, CM_ERROR_NOT_FOUND, "", "no vulnerability with id %lld",
                            (long long)w->id);
    /* "fixed" without a time: a vulnerability fixed before keeps the time it was fixed (the
     * assessment counts it), one fixed now is fixed now. */
    if (strcmp(status, "fixed") == 0 && !w->end_at[0])
        memcpy(w->end_at, strcmp(s.status, "fixed") == 0 && s.end_at[0] ? s.end_at : w->at,
               sizeof(w->end_at));
    r = check_order(tx->err, "found_at", s.at, "fixed_at", w->end_at);
    if (r >= 0)
        r = br_security_update(tx, BR_SECURITY_VULNERABILITY, w->id, status, w->end_at);
    if (r < 0)
        return r;
    br_tx_audit_set(tx, "vulnerability.update", "vulnerability", w->id,
                    cm_json_to_string(w->body, NULL));
    tx->outcome = cm_json_get_str(w->body, "status", "");
    return br_security_get(tx->db, BR_SECURITY_VULNERABILITY, w->id, &w->out, tx->err);
}

static int br_api_vulnerabilities_patch(BrCall *c)
{
    _cleanup_(record_write_done)
        RecordWrite w = {.id = c->ids[0], .scope = br_call_scope(c), .body = c->body};
    int r = check_time(c, "fixed_at", w.end_at);

    if (r < 0)
        return r;
    if (w.end_at[0] && strcmp(cm_json_get_str(c->body, "status", ""), "fixed") != 0)
        return cm_error_set_code(&c->err, CM_ERROR_UNPROCESSABLE, "schema_violation", "/fixed_at",
                                 "fixed_at is only for a fixed vulnerability");
    cm_time_iso(cm_now_ms(), w.at);
    r = br_call_tx(c, "vulnerability.update", vulnerability_patch_tx, &w);
    if (r < 0)
        return r;
    return br_reply(c, BR_HTTP_OK, TAKE_PTR(w.out));
}

static int incident_patch_tx(BrTx *tx, void *ctx)
{
    RecordWrite *w = ctx;
    BrSecurityState s;
    int r = br_security_load(tx->db, BR_SECURITY_INCIDENT, w->id, &s, tx->err);

    if (r < 0)
        return r;
    /* Another department's incident is as missing as one that does not exist. */
    r = system_visible(tx->db, s.system_id, w->scope, tx->err);
    if (r == -ENOENT) {
        cm_error_clear(tx->err);
        return cm_error_set(tx->err, CM_ERROR_NOT_FOUND, "", "no incident with id %lld",
                            (long long)w->id);
    }
    if (r >= 0)
        r = check_order(tx->err, "occurred_at", s.at, "resolved_at", w->end_at);
    if (r >= 0)
        r = br_security_update(tx, BR_SECURITY_INCIDENT, w->id, NULL, w->end_at);
    if (r < 0)
        return r;
    br_tx_audit_set(tx, "incident.update", "incident", w->id, cm_json_to_string(w->body, NULL));
    tx->outcome = w->end_at[0] ? "resolved" : "open";
    return br_security_get(tx->db, BR_SECURITY_INCIDENT, w->id, &w->out, tx->err);
}

static int br_api_incidents_patch(BrCall *c)
{
    _cleanup_(record_write_done)
        RecordWrite w = {.id = c->ids[0], .scope = br_call_scope(c), .body = c->body};
    /* A time, or null: the incident is not resolved (yet). */
    int r = check_time(c, "resolved_at", w.end_at);

    if (r >= 0)
        r = br_call_tx(c, "incident.update", incident_patch_tx, &w);
    if (r < 0)
        return r;
    return br_reply(c, BR_HTTP_OK, TAKE_PTR(w.out));
}

static const BrRoute routes[] = {

    /* Security and backup records (Art. 9's security status). */
    {"POST", "/v1/systems/{id}/vulnerabilities", br_api_vulnerabilities_create,
     BR_ROLES_DEPARTMENT | BR_ROLES_VENDOR, BR_BODY_JSON, "vulnerability-create"},
    {"GET", "/v1/systems/{id}/vulnerabilities", br_api_vulnerabilities_list,
     BR_ROLES_DEPARTMENT | BR_ROLES_READERS | BR_ROLES_VENDOR, BR_BODY_NONE, NULL},
    {"PATCH", "/v1/vulnerabilities/{id}", br_api_vulnerabilities_patch,
     BR_ROLES_DEPARTMENT | BR_ROLES_VENDOR, BR_BODY_JSON, "vulnerability-patch"},
    {"POST", "/v1/systems/{id}/incidents", br_api_incidents_create,
     BR_ROLES_DEPARTMENT | BR_ROLES_VENDOR, BR_BODY_JSON, "incident-create"},
    {"GET", "/v1/systems/{id}/incidents", br_api_incidents_list,
     BR_ROLES_DEPARTMENT | BR_ROLES_READERS | BR_ROLES_VENDOR, BR_BODY_NONE, NULL},
    {"PATCH", "/v1/incidents/{id}", br_api_incidents_patch, BR_ROLES_DEPARTMENT | BR_ROLES_VENDOR,
     BR_BODY_JSON, "incident-patch"},
    {"POST", "/v1/systems/{id}/backups", br_api_backups_create,
     BR_ROLES_DEPARTMENT | BR_ROLES_VENDOR, BR_BODY_JSON, "backup-create"},
    {"GET", "/v1/systems/{id}/backups", br_api_backups_list,
     BR_ROLES_DEPARTMENT | BR_ROLES_READERS | BR_ROLES_VENDOR, BR_BODY_NONE, NULL},
};

const BrRouteTable br_api_security_routes = {routes, ELEMENTSOF(routes)};
