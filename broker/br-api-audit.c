/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdio.h>

#include <microhttpd.h>

#include "br-api.h"
#include "cm-util.h"

static int br_api_audit_list(BrCall *c)
{
    CmDb *db = br_api_read_db(c);
    const char *object_type = br_call_query(c, "object_type");
    const char *action = br_call_query(c, "action");
    sqlite3_stmt *stmt;
    json_object *items;
    int64_t limit, after, last = 0, object_id = 0;
    int r;

    if (!db)
        return -EIO;
    r = br_api_page(c, &limit, &after);
    if (r >= 0)
        r = br_call_query_int(c, "object_id", 1, INT64_MAX, &object_id);
    if (r < 0)
        return r;
    stmt = cm_db_stmt(db,
                      "SELECT seq, at, account_id, account_name, role, department_id, action,"
                      " object_type, object_id, outcome, request_id, client, detail, prev_hash,"
                      " hash FROM audit WHERE seq > ?1 AND (?2 IS NULL OR object_type = ?2)"
                      " AND (?3 = 0 OR object_id = ?3) AND (?4 IS NULL OR action = ?4)"
                      " ORDER BY seq LIMIT ?5",
                      &c->err);
    if (!stmt)
        return -EIO;
    CM_DB_BIND(stmt, after, object_type, object_id, action, limit);
    items = json_object_new_array();
    while ((r = cm_db_step_row(db, stmt, &c->err)) > 0) {
        json_object *o = json_object_new_object(), *detail = NULL;
        const char *d = cm_db_col_text(stmt, 12);
        last = sqlite3_column_int64(stmt, 0);
        if (d)
            cm_json_parse(d, (size_t)sqlite3_column_bytes(stmt, 12), &detail, NULL);
        json_object_object_add(o, "seq", json_object_new_int64(last));
        json_object_object_add(o, "at", br_json_col_text(stmt, 1));
        json_object_object_add(o, "account_id",
                               json_object_new_int64(sqlite3_column_int64(stmt, 2)));
        json_object_object_add(o, "account", br_json_col_text(stmt, 3));
        json_object_object_add(o, "role", br_json_col_text(stmt, 4));
        json_object_object_add(o, "department_id",
                               br_json_id_or_null(sqlite3_column_int64(stmt, 5)));
        json_object_object_add(o, "action", br_json_col_text(stmt, 6));
        json_object_object_add(o, "object_type", br_json_col_text(stmt, 7));
        json_object_object_add(o, "object_id",
                               json_object_new_int64(sqlite3_column_int64(stmt, 8)));
        json_object_object_add(o, "outcome", br_json_col_text(stmt, 9));
        json_object_object_add(o, "request_id", br_json_col_text(stmt, 10));
        json_object_object_add(o, "client", br_json_col_text(stmt, 11));
        json_object_object_add(o, "detail", detail);
        json_object_object_add(o, "prev_hash", br_json_col_text(stmt, 13));
        json_object_object_add(o, "hash", br_json_col_text(stmt, 14));
        json_object_array_add(items, o);
    }
    sqlite3_reset(stmt);
    if (r < 0) {
        json_object_put(items);
        return r;
    }
    return br_api_list_reply(c, items, limit, last);
}

static int br_api_audit_verify(BrCall *c)
{
    CmDb *db = br_api_read_db(c);
    const uint8_t *key = br_store_audit_key(c->d->store);
    BrAuditAnchor anchor = {0};
    BrAuditVerdict v;
    CmError ae = {0};
    json_object *o, *a = NULL;
    int r, ar;

    if (!db)
        return -EIO;
    /* The anchor first: the walk's snapshot then holds at least what it anchors. */
    ar = br_audit_anchor_read(br_store_anchor_path(c->d->store), key, &anchor, &ae);
    r = br_audit_verify(db, key, ar >= 0 ? &anchor : NULL, &v, &c->err);
    if (r < 0)
        return r;
    if (v.ok && ar == -ENOENT && v.records > 0) {
        v.ok = false;
        snprintf(v.reason, sizeof(v.reason),
                 "the audit anchor (STATE/audit.anchor) is missing: that the trail is whole "
                 "cannot be shown; compare with the last \"audit anchor\" line of the log");
    } else if (v.ok && ar < 0 && ar != -ENOENT) {
        v.ok = false;
        cm_strscpy(v.reason, sizeof(v.reason), ae.message);
    }
    o = json_object_new_object();
    json_object_object_add(o, "ok", json_object_new_boolean(v.ok));
    json_object_object_add(o, "records", json_object_new_int64(v.records));
    json_object_object_add(o, "first_bad", br_json_id_or_null(v.first_bad));
    json_object_object_add(o, "reason", v.ok ? NULL : json_object_new_string(v.reason));
    json_object_object_add(o, "head_hash", json_object_new_string(v.head_hash));
    if (ar >= 0) {
        a = json_object_new_object();
        json_object_object_add(a, "records", json_object_new_int64(anchor.records));
        json_object_object_add(a, "head_hash", json_object_new_string(anchor.head_hash));
        json_object_object_add(a, "at", json_object_new_string(anchor.at));
    }
    json_object_object_add(o, "anchor", a);
    return br_reply(c, MHD_HTTP_OK, o);
}

static const BrRoute routes[] = {

    {"GET", "/v1/audit", br_api_audit_list, BR_ROLES_READERS, BR_BODY_NONE, NULL},
    {"GET", "/v1/audit/verify", br_api_audit_verify, BR_ROLES_READERS, BR_BODY_NONE, NULL},
};

const BrRouteTable br_api_audit_routes = {routes, ELEMENTSOF(routes)};
