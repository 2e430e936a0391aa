/* SPDX-License-Identifier: Apache-2.0 */
/* The audit trail: its records and their verification; the table's owner is br-audit.c. */
#include <errno.h>
#include <stdio.h>

#include "br-api.h"
#include "br-daemon.h"
#include "cm-util.h"
#include "cm-time.h"

/* ?from= / ?to=: an ISO 8601 time (or day), kept in the trail's own form for comparing. */
static int time_param(BrCall *c, const char *key, char out[CM_TIME_ISO_LEN + 1], const char **ret)
{
    const char *v = br_call_query(c, key);
    int64_t ms;

    if (!v)
        return 0;
    if (cm_time_parse_iso(v, &ms) < 0)
        return cm_error_set(&c->err, CM_ERROR_INVALID, key,
                            "query parameter '%s' must be an ISO 8601 time or day", key);
    cm_time_iso(ms, out);
    *ret = out;
    return 0;
}

static int br_api_audit_list(BrCall *c)
{
    char from[CM_TIME_ISO_LEN + 1], to[CM_TIME_ISO_LEN + 1];
    BrAuditFilter f = {
        .object_type = br_call_query(c, "object_type"),
        .action = br_call_query(c, "action"),
        .account = br_call_query(c, "account"),
    };
    json_object *items;
    size_t n;
    int r;

    r = br_api_page(c, &f.limit, &f.after);
    if (r >= 0)
        r = br_call_query_int(c, "object_id", 1, INT64_MAX, &f.object_id);
    if (r >= 0)
        r = time_param(c, "from", from, &f.from);
    if (r >= 0)
        r = time_param(c, "to", to, &f.to);
    if (r < 0)
        return r;
    r = br_audit_list(br_call_db(c), &f, &items, &c->err);
    if (r < 0)
        return r;
    n = json_object_array_length(items);
    return br_api_list_reply(c, items, f.limit,
                             n ? cm_json_get_int(json_object_array_get_idx(items, n - 1), "seq", 0)
                               : 0);
}

typedef struct {
    const uint8_t *key;
    const BrAuditAnchor *anchor;
    BrAuditVerdict v;
} AuditVerify;

static int audit_verify_tx(BrTx *tx, void *ctx)
{
    AuditVerify *w = ctx;
    return br_audit_verify(tx->db, w->key, w->anchor, &w->v, tx->err);
}

static int br_api_audit_verify(BrCall *c)
{
    BrAuditAnchor anchor = {0};
    AuditVerify w = {.key = br_store_audit_key(c->d->store)};
    BrAuditVerdict *v = &w.v;
    CmError ae = {0};
    json_object *o, *a = NULL;
    int r, ar;

    /* The anchor first: the walk's snapshot then holds at least what it anchors. */
    ar = br_audit_anchor_read(br_store_anchor_path(c->d->store), w.key, &anchor, &ae);
    w.anchor = ar >= 0 ? &anchor : NULL;
    r = br_call_read(c, "audit.verify", audit_verify_tx, &w);
    if (r < 0)
        return r;
    if (v->ok && ar == -ENOENT && v->records > 0) {
        v->ok = false;
        snprintf(v->reason, sizeof(v->reason),
                 "the audit anchor (STATE/audit.anchor) is missing: that the trail is whole "
                 "cannot be shown; compare with the last \"audit anchor\" line of the log");
    } else if (v->ok && ar < 0 && ar != -ENOENT) {
        v->ok = false;
        cm_strscpy(v->reason, sizeof(v->reason), ae.message);
    }
    o = json_object_new_object();
    json_object_object_add(o, "ok", json_object_new_boolean(v->ok));
    json_object_object_add(o, "records", json_object_new_int64(v->records));
    json_object_object_add(o, "first_bad", br_json_id_or_null(v->first_bad));
    json_object_object_add(o, "reason", v->ok ? NULL : json_object_new_string(v->reason));
    json_object_object_add(o, "head_hash", json_object_new_string(v->head_hash));
    if (ar >= 0) {
        a = json_object_new_object();
        json_object_object_add(a, "records", json_object_new_int64(anchor.records));
        json_object_object_add(a, "head_hash", json_object_new_string(anchor.head_hash));
        json_object_object_add(a, "at", json_object_new_string(anchor.at));
    }
    json_object_object_add(o, "anchor", a);
    return br_reply(c, BR_HTTP_OK, o);
}

static const BrRoute routes[] = {

    {"GET", "/v1/audit", br_api_audit_list, BR_ROLES_READERS, BR_BODY_NONE, NULL},
    {"GET", "/v1/audit/verify", br_api_audit_verify, BR_ROLES_READERS, BR_BODY_NONE, NULL},
};

const BrRouteTable br_api_audit_routes = {routes, ELEMENTSOF(routes)};
