/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>

#include <microhttpd.h>

#include "br-api.h"
#include "br-daemon.h"
#include "br-quota.h"
#include "cm-time.h"

#define DEPARTMENT_COLUMNS                                                                         \
    "id, code, name, quota_vcpus, quota_memory_mib, quota_disk_gib, quota_instances,"              \
    " created_at, updated_at"

static json_object *department_from_row(sqlite3_stmt *stmt)
{
    json_object *o = json_object_new_object();
    BrResources q = {
        .vcpus = sqlite3_column_int64(stmt, 3),
        .memory_mib = sqlite3_column_int64(stmt, 4),
        .disk_gib = sqlite3_column_int64(stmt, 5),
        .instances = sqlite3_column_int64(stmt, 6),
    };
    json_object_object_add(o, "id", json_object_new_int64(sqlite3_column_int64(stmt, 0)));
    json_object_object_add(o, "code", br_json_col_text(stmt, 1));
    json_object_object_add(o, "name", br_json_col_text(stmt, 2));
    json_object_object_add(o, "quota", br_resources_to_json(&q));
    json_object_object_add(o, "created_at", br_json_col_text(stmt, 7));
    json_object_object_add(o, "updated_at", br_json_col_text(stmt, 8));
    return o;
}

/* Reads department @id with its usage into @ret (404 when absent or not the caller's). */
static int department_load(BrCall *c, CmDb *db, int64_t id, json_object **ret)
{
    sqlite3_stmt *stmt;
    BrQuotaUsage u;
    json_object *o, *usage;
    BrResources free_;
    int r;

    if (br_call_is_department(c) && c->actor.department_id != id)
        return br_not_found(c, "department", id);
    stmt = cm_db_stmt(db, "SELECT " DEPARTMENT_COLUMNS " FROM departments WHERE id = ?", &c->err);
    if (!stmt)
        return -EIO;
    CM_DB_BIND(stmt, id);
    r = cm_db_step_row(db, stmt, &c->err);
    if (r <= 0) {
        sqlite3_reset(stmt);
        return r < 0 ? r : br_not_found(c, "department", id);
    }
    o = department_from_row(stmt);
    sqlite3_reset(stmt);

    r = br_quota_usage(db, id, 0, &u, &c->err);
    if (r < 0) {
        json_object_put(o);
        return r == -ENOENT ? br_not_found(c, "department", id) : r;
    }
    free_ = u.quota;
    free_.vcpus -= u.allocated.vcpus + u.approved.vcpus;
    free_.memory_mib -= u.allocated.memory_mib + u.approved.memory_mib;
    free_.disk_gib -= u.allocated.disk_gib + u.approved.disk_gib;
    free_.instances -= u.allocated.instances + u.approved.instances;
    usage = json_object_new_object();
    json_object_object_add(usage, "allocated", br_resources_to_json(&u.allocated));
    json_object_object_add(usage, "approved", br_resources_to_json(&u.approved));
    json_object_object_add(usage, "headroom", br_resources_to_json(&free_));
    json_object_object_add(o, "usage", usage);
    *ret = o;
    return 0;
}

static void quota_from_json(json_object *q, BrResources *r)
{
    r->vcpus = cm_json_get_int(q, "vcpus", r->vcpus);
    r->memory_mib = cm_json_get_int(q, "memory_mib", r->memory_mib);
    r->disk_gib = cm_json_get_int(q, "disk_gib", r->disk_gib);
    r->instances = cm_json_get_int(q, "instances", r->instances);
}

static int br_api_departments_create(BrCall *c)
{
    _cleanup_(br_policies_unrefp) BrPolicies *p = br_call_policies(c);
    BrResources q = p->review.default_quota;
    char at[CM_TIME_ISO_LEN + 1];
    sqlite3_stmt *stmt;
    json_object *out = NULL;
    CmDb *db;
    int64_t id = 0;
    int r;

    quota_from_json(cm_json_get(c->body, "quota"), &q);
    cm_time_iso(cm_now_ms(), at);

    r = br_api_write_begin(c, &db);
    if (r < 0)
        return r;
    stmt = cm_db_stmt(db,
                      "INSERT INTO departments(code, name, quota_vcpus, quota_memory_mib,"
                      " quota_disk_gib, quota_instances, created_at, updated_at)"
                      " VALUES (?,?,?,?,?,?,?,?)",
                      &c->err);
    r = stmt ? 0 : -EIO;
    if (r >= 0) {
        CM_DB_BIND(stmt, cm_json_get_str(c->body, "code", ""), cm_json_get_str(c->body, "name", ""),
                   q.vcpus, q.memory_mib, q.disk_gib, q.instances, at, at);
        r = cm_db_step_done(db, stmt, &c->err);
        if (r == -EEXIST)
            r = cm_error_set_code(&c->err, CM_ERROR_CONFLICT, "duplicate", "/code",
                                  "a department with code '%s' already exists",
                                  cm_json_get_str(c->body, "code", ""));
    }
    if (r >= 0) {
        id = cm_db_last_insert_id(db);
        r = br_store_audit(c->d->store, db, &c->actor, "department.create", "department", id, "ok",
                           cm_json_to_string(c->body, NULL), &c->err);
    }
    if (r >= 0)
        r = department_load(c, db, id, &out);
    r = br_api_write_end(c, db, r);
    if (r < 0) {
        json_object_put(out);
        return r;
    }
    return br_reply(c, MHD_HTTP_CREATED, out);
}

static int br_api_departments_list(BrCall *c)
{
    CmDb *db = br_api_read_db(c);
    sqlite3_stmt *stmt;
    json_object *items;
    int64_t limit, after, last = 0;
    int r;

    if (!db)
        return -EIO;
    r = br_api_page(c, &limit, &after);
    if (r < 0)
        return r;
    stmt = cm_db_stmt(db,
                      "SELECT " DEPARTMENT_COLUMNS " FROM departments WHERE id > ?1"
                      " AND (?2 = 0 OR id = ?2) ORDER BY id LIMIT ?3",
                      &c->err);
    if (!stmt)
        return -EIO;
    CM_DB_BIND(stmt, after, br_call_is_department(c) ? c->actor.department_id : 0, limit);
    items = json_object_new_array();
    while ((r = cm_db_step_row(db, stmt, &c->err)) > 0) {
        last = sqlite3_column_int64(stmt, 0);
        json_object_array_add(items, department_from_row(stmt));
    }
    sqlite3_reset(stmt);
    if (r < 0) {
        json_object_put(items);
        return r;
    }
    return br_api_list_reply(c, items, limit, last);
}

static int br_api_departments_get(BrCall *c)
{
    CmDb *db = br_api_read_db(c);
    json_object *o = NULL;
    int r;

    if (!db)
        return -EIO;
    r = cm_db_begin_read(db, &c->err);
    if (r < 0)
        return r;
    r = department_load(c, db, c->ids[0], &o);
    cm_db_rollback(db);
    if (r < 0)
        return r;
    return br_reply(c, MHD_HTTP_OK, o);
}

static int br_api_departments_patch(BrCall *c)
{
    int64_t id = c->ids[0];
    char at[CM_TIME_ISO_LEN + 1];
    sqlite3_stmt *stmt;
    json_object *out = NULL;
    CmDb *db;
    int r;

    cm_time_iso(cm_now_ms(), at);
    r = br_api_write_begin(c, &db);
    if (r < 0)
        return r;
    json_object *q = cm_json_get(c->body, "quota");
    stmt = cm_db_stmt(db,
                      "UPDATE departments SET name = coalesce(?, name),"
                      " quota_vcpus = coalesce(?, quota_vcpus),"
                      " quota_memory_mib = coalesce(?, quota_memory_mib),"
                      " quota_disk_gib = coalesce(?, quota_disk_gib),"
                      " quota_instances = coalesce(?, quota_instances), updated_at = ?"
                      " WHERE id = ?",
                      &c->err);
    r = stmt ? 0 : -EIO;
    if (r >= 0) {
        const char *keys[] = {"vcpus", "memory_mib", "disk_gib", "instances"};
        sqlite3_bind_text(stmt, 1, cm_json_get_str(c->body, "name", NULL), -1, SQLITE_TRANSIENT);
        for (int i = 0; i < 4; i++) {
            json_object *v = cm_json_get(q, keys[i]);
            if (v)
                sqlite3_bind_int64(stmt, 2 + i, json_object_get_int64(v));
            else
                sqlite3_bind_null(stmt, 2 + i);
        }
        sqlite3_bind_text(stmt, 6, at, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(stmt, 7, id);
        r = cm_db_step_done(db, stmt, &c->err);
    }
    if (r >= 0 && sqlite3_changes(cm_db_handle(db)) == 0)
        r = br_not_found(c, "department", id);
    if (r >= 0)
        r = br_store_audit(c->d->store, db, &c->actor, "department.update", "department", id, "ok",
                           cm_json_to_string(c->body, NULL), &c->err);
    if (r >= 0)
        r = department_load(c, db, id, &out);
    r = br_api_write_end(c, db, r);
    if (r < 0) {
        json_object_put(out);
        return r;
    }
    return br_reply(c, MHD_HTTP_OK, out);
}

static const BrRoute routes[] = {

    {"POST", "/v1/departments", br_api_departments_create, R_ADMIN, BR_BODY_JSON,
     "department-create"},
    {"GET", "/v1/departments", br_api_departments_list, BR_ROLES_ACCOUNTS, BR_BODY_NONE, NULL},
    {"GET", "/v1/departments/{id}", br_api_departments_get, BR_ROLES_ACCOUNTS, BR_BODY_NONE, NULL},
    {"PATCH", "/v1/departments/{id}", br_api_departments_patch, R_ADMIN | R_REVIEWER, BR_BODY_JSON,
     "department-patch"},
};

const BrRouteTable br_api_departments_routes = {routes, ELEMENTSOF(routes)};
