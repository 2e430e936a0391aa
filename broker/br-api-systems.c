/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>

#include <microhttpd.h>

#include "br-api.h"
#include "cm-time.h"

/* on_cloud is derived: a system is on the cloud while an allocation of it is live. */
#define SYSTEM_COLUMNS                                                                             \
    "s.id, s.department_id, s.name, s.description, s.category, s.protection_level, s.status,"      \
    " s.created_at, s.updated_at, EXISTS (SELECT 1 FROM allocations a WHERE a.system_id = s.id"    \
    " AND a.purpose = 'production' AND a.state IN ('active','resizing')),"                         \
    " (SELECT name FROM departments d WHERE d.id = s.department_id)"

static json_object *system_from_row(sqlite3_stmt *stmt)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "id", json_object_new_int64(sqlite3_column_int64(stmt, 0)));
    json_object_object_add(o, "department_id",
                           json_object_new_int64(sqlite3_column_int64(stmt, 1)));
    json_object_object_add(o, "department_name", br_json_col_text(stmt, 10));
    json_object_object_add(o, "name", br_json_col_text(stmt, 2));
    json_object_object_add(o, "description", br_json_col_text(stmt, 3));
    json_object_object_add(o, "category", br_json_col_text(stmt, 4));
    json_object_object_add(o, "protection_level",
                           json_object_new_int64(sqlite3_column_int64(stmt, 5)));
    json_object_object_add(o, "status", br_json_col_text(stmt, 6));
    json_object_object_add(o, "on_cloud", json_object_new_boolean(sqlite3_column_int(stmt, 9)));
    json_object_object_add(o, "created_at", br_json_col_text(stmt, 7));
    json_object_object_add(o, "updated_at", br_json_col_text(stmt, 8));
    return o;
}

static int system_load(BrCall *c, CmDb *db, int64_t id, json_object **ret)
{
    sqlite3_stmt *stmt = cm_db_stmt(db,
                                    "SELECT " SYSTEM_COLUMNS " FROM systems s WHERE s.id = ?1"
                                    " AND (?2 = 0 OR s.department_id = ?2)",
                                    &c->err);
    int r;
    if (!stmt)
        return -EIO;
    CM_DB_BIND(stmt, id, br_call_is_department(c) ? c->actor.department_id : 0);
    r = cm_db_step_row(db, stmt, &c->err);
    if (r > 0)
        *ret = system_from_row(stmt);
    sqlite3_reset(stmt);
    if (r == 0)
        return br_not_found(c, "system", id);
    return r < 0 ? r : 0;
}

int br_api_systems_create(BrCall *c)
{
    int64_t dept = cm_json_get_int(c->body, "department_id", 0);
    char at[CM_TIME_ISO_LEN + 1];
    json_object *out = NULL;
    sqlite3_stmt *stmt;
    CmDb *db;
    int64_t id = 0;
    int r;

    if (br_call_is_department(c)) {
        if (dept && dept != c->actor.department_id)
            return cm_error_set(&c->err, CM_ERROR_FORBIDDEN, "/department_id",
                                "a department registers systems for itself only");
        dept = c->actor.department_id;
    } else if (!dept) {
        return cm_error_set_code(&c->err, CM_ERROR_UNPROCESSABLE, "missing_field",
                                 "/department_id",
                                 "department_id is required when the bureau registers a system");
    }
    cm_time_iso(cm_now_ms(), at);
    r = br_api_write_begin(c, &db);
    if (r < 0)
        return r;
    stmt = cm_db_stmt(db, "SELECT 1 FROM departments WHERE id = ?", &c->err);
    r = stmt ? 0 : -EIO;
    if (r >= 0) {
        CM_DB_BIND(stmt, dept);
        r = cm_db_step_row(db, stmt, &c->err);
        sqlite3_reset(stmt);
        if (r == 0)
            r = cm_error_set_code(&c->err, CM_ERROR_UNPROCESSABLE, "unknown_reference",
                                  "/department_id", "no department with id %lld",
                                  (long long)dept);
    }
    if (r >= 0) {
        stmt = cm_db_stmt(db,
                          "INSERT INTO systems(department_id, name, description, category,"
                          " protection_level, status, created_at, updated_at)"
                          " VALUES (?,?,?,?,?,?,?,?)",
                          &c->err);
        r = stmt ? 0 : -EIO;
    }
    if (r >= 0) {
        CM_DB_BIND(stmt, dept, cm_json_get_str(c->body, "name", ""),
                   cm_json_get_str(c->body, "description", ""),
                   cm_json_get_str(c->body, "category", "other"),
                   cm_json_get_int(c->body, "protection_level", 2),
                   cm_json_get_str(c->body, "status", "in_service"), at);
        sqlite3_bind_text(stmt, 8, at, -1, SQLITE_TRANSIENT);
        r = cm_db_step_done(db, stmt, &c->err);
        if (r == -EEXIST)
            r = cm_error_set_code(&c->err, CM_ERROR_CONFLICT, "duplicate", "/name",
                                  "the department already has a system with this name");
    }
    if (r >= 0) {
        id = cm_db_last_insert_id(db);
        r = br_store_audit(c->d->store, db, &c->actor, "system.create", "system", id, "ok",
                           cm_json_to_string(c->body, NULL), &c->err);
    }
    if (r >= 0)
        r = system_load(c, db, id, &out);
    r = br_api_write_end(c, db, r);
    if (r < 0) {
        json_object_put(out);
        return r;
    }
    return br_reply(c, MHD_HTTP_CREATED, out);
}

int br_api_systems_list(BrCall *c)
{
    CmDb *db = br_api_read_db(c);
    sqlite3_stmt *stmt;
    json_object *items;
    int64_t limit, after, last = 0, dept = 0;
    int r;

    if (!db)
        return -EIO;
    r = br_api_page(c, &limit, &after);
    if (r >= 0)
        r = br_call_query_int(c, "department", 1, INT64_MAX, &dept);
    if (r < 0)
        return r;
    if (br_call_is_department(c))
        dept = c->actor.department_id;
    stmt = cm_db_stmt(db,
                      "SELECT " SYSTEM_COLUMNS " FROM systems s WHERE s.id > ?1"
                      " AND (?2 = 0 OR s.department_id = ?2) ORDER BY s.id LIMIT ?3",
                      &c->err);
    if (!stmt)
        return -EIO;
    CM_DB_BIND(stmt, after, dept, limit);
    items = json_object_new_array();
    while ((r = cm_db_step_row(db, stmt, &c->err)) > 0) {
        last = sqlite3_column_int64(stmt, 0);
        json_object_array_add(items, system_from_row(stmt));
    }
    sqlite3_reset(stmt);
    if (r < 0) {
        json_object_put(items);
        return r;
    }
    return br_api_list_reply(c, items, limit, last);
}

int br_api_systems_get(BrCall *c)
{
    CmDb *db = br_api_read_db(c);
    json_object *o = NULL;
    int r;
    if (!db)
        return -EIO;
    r = system_load(c, db, c->ids[0], &o);
    if (r < 0)
        return r;
    return br_reply(c, MHD_HTTP_OK, o);
}

int br_api_systems_patch(BrCall *c)
{
    int64_t id = c->ids[0];
    char at[CM_TIME_ISO_LEN + 1];
    json_object *out = NULL, *level;
    sqlite3_stmt *stmt;
    CmDb *db;
    int r;

    cm_time_iso(cm_now_ms(), at);
    r = br_api_write_begin(c, &db);
    if (r < 0)
        return r;
    stmt = cm_db_stmt(db,
                      "UPDATE systems SET name = coalesce(?1, name),"
                      " description = coalesce(?2, description), category = coalesce(?3, category),"
                      " protection_level = coalesce(?4, protection_level),"
                      " status = coalesce(?5, status), updated_at = ?6"
                      " WHERE id = ?7 AND (?8 = 0 OR department_id = ?8)",
                      &c->err);
    r = stmt ? 0 : -EIO;
    if (r >= 0) {
        CM_DB_BIND(stmt, cm_json_get_str(c->body, "name", NULL),
                   cm_json_get_str(c->body, "description", NULL),
                   cm_json_get_str(c->body, "category", NULL));
        level = cm_json_get(c->body, "protection_level");
        if (level)
            sqlite3_bind_int64(stmt, 4, json_object_get_int64(level));
        sqlite3_bind_text(stmt, 5, cm_json_get_str(c->body, "status", NULL), -1,
                          SQLITE_TRANSIENT);
        sqlite3_bind_text(stmt, 6, at, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(stmt, 7, id);
        sqlite3_bind_int64(stmt, 8, br_call_is_department(c) ? c->actor.department_id : 0);
        r = cm_db_step_done(db, stmt, &c->err);
        if (r == -EEXIST)
            r = cm_error_set_code(&c->err, CM_ERROR_CONFLICT, "duplicate", "/name",
                                  "the department already has a system with this name");
    }
    if (r >= 0 && sqlite3_changes(cm_db_handle(db)) == 0)
        r = br_not_found(c, "system", id);
    if (r >= 0)
        r = br_store_audit(c->d->store, db, &c->actor, "system.update", "system", id, "ok",
                           cm_json_to_string(c->body, NULL), &c->err);
    if (r >= 0)
        r = system_load(c, db, id, &out);
    r = br_api_write_end(c, db, r);
    if (r < 0) {
        json_object_put(out);
        return r;
    }
    return br_reply(c, MHD_HTTP_OK, out);
}
