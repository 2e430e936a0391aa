/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <string.h>

#include <microhttpd.h>

#include "br-api.h"
#include "cm-crypto.h"
#include "cm-time.h"

#define ACCOUNT_COLUMNS                                                                            \
    "id, name, role, department_id, disabled, created_at, token_created_at,"                       \
    " (SELECT d.name FROM departments d WHERE d.id = accounts.department_id)"

static json_object *account_from_row(sqlite3_stmt *stmt)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "id", json_object_new_int64(sqlite3_column_int64(stmt, 0)));
    json_object_object_add(o, "name", br_json_col_text(stmt, 1));
    json_object_object_add(o, "role", br_json_col_text(stmt, 2));
    json_object_object_add(o, "department_id",
                           br_json_id_or_null(sqlite3_column_int64(stmt, 3)));
    json_object_object_add(o, "department_name", br_json_col_text(stmt, 7));
    json_object_object_add(o, "disabled", json_object_new_boolean(sqlite3_column_int(stmt, 4)));
    json_object_object_add(o, "created_at", br_json_col_text(stmt, 5));
    json_object_object_add(o, "token_created_at", br_json_col_text(stmt, 6));
    return o;
}

static int account_load(BrCall *c, CmDb *db, int64_t id, json_object **ret)
{
    sqlite3_stmt *stmt =
        cm_db_stmt(db, "SELECT " ACCOUNT_COLUMNS " FROM accounts WHERE id = ?", &c->err);
    int r;
    if (!stmt)
        return -EIO;
    CM_DB_BIND(stmt, id);
    r = cm_db_step_row(db, stmt, &c->err);
    if (r > 0)
        *ret = account_from_row(stmt);
    sqlite3_reset(stmt);
    if (r == 0)
        return br_not_found(c, "account", id);
    return r < 0 ? r : 0;
}

int br_api_accounts_create(BrCall *c)
{
    const char *name = cm_json_get_str(c->body, "name", "");
    const char *role = cm_json_get_str(c->body, "role", "");
    int64_t dept = cm_json_get_int(c->body, "department_id", 0);
    char token[CM_TOKEN_LEN + 1], hash[CM_SHA256_HEX_LEN + 1], at[CM_TIME_ISO_LEN + 1];
    sqlite3_stmt *stmt;
    json_object *account = NULL, *out;
    CmDb *db;
    int64_t id = 0;
    int r;

    if ((strcmp(role, "department") == 0) != (dept > 0))
        return cm_error_set_code(&c->err, CM_ERROR_UNPROCESSABLE, "schema_violation",
                                 "/department_id",
                                 "department_id is required for the department role and "
                                 "not allowed for other roles");
    if (cm_token_new(token) < 0 || cm_token_hash(token, hash) < 0)
        return cm_error_set(&c->err, CM_ERROR_INTERNAL, "", "no randomness for the token");
    cm_time_iso(cm_now_ms(), at);

    r = br_api_write_begin(c, &db);
    if (r < 0)
        return r;
    if (dept > 0) {
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
    }
    if (r >= 0) {
        stmt = cm_db_stmt(db,
                          "INSERT INTO accounts(name, role, department_id, token_hash,"
                          " created_at, token_created_at) VALUES (?,?,?,?,?,?)",
                          &c->err);
        r = stmt ? 0 : -EIO;
    }
    if (r >= 0) {
        CM_DB_BIND(stmt, name, role);
        if (dept > 0)
            sqlite3_bind_int64(stmt, 3, dept);
        sqlite3_bind_text(stmt, 4, hash, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(stmt, 5, at, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(stmt, 6, at, -1, SQLITE_TRANSIENT);
        r = cm_db_step_done(db, stmt, &c->err);
        if (r == -EEXIST)
            r = cm_error_set_code(&c->err, CM_ERROR_CONFLICT, "duplicate", "/name",
                                  "an account named '%s' already exists", name);
    }
    if (r >= 0) {
        id = cm_db_last_insert_id(db);
        r = br_store_audit(c->d->store, db, &c->actor, "account.create", "account", id, "ok",
                           cm_json_to_string(c->body, NULL), &c->err);
    }
    if (r >= 0)
        r = account_load(c, db, id, &account);
    r = br_api_write_end(c, db, r);
    if (r < 0) {
        json_object_put(account);
        explicit_bzero(token, sizeof(token));
        return r;
    }
    out = json_object_new_object();
    json_object_object_add(out, "account", account);
    /* The only time the token is ever shown: only its hash is stored. */
    json_object_object_add(out, "token", json_object_new_string(token));
    explicit_bzero(token, sizeof(token));
    return br_reply(c, MHD_HTTP_CREATED, out);
}

int br_api_accounts_list(BrCall *c)
{
    CmDb *db = br_api_read_db(c);
    const char *role = br_call_query(c, "role");
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
    if (role && br_role_from_string(role) < 0)
        return cm_error_set(&c->err, CM_ERROR_INVALID, "role", "unknown role '%s'", role);
    stmt = cm_db_stmt(db,
                      "SELECT " ACCOUNT_COLUMNS " FROM accounts WHERE id > ?1"
                      " AND (?2 IS NULL OR role = ?2) AND (?3 = 0 OR department_id = ?3)"
                      " ORDER BY id LIMIT ?4",
                      &c->err);
    if (!stmt)
        return -EIO;
    CM_DB_BIND(stmt, after, role, dept, limit);
    items = json_object_new_array();
    while ((r = cm_db_step_row(db, stmt, &c->err)) > 0) {
        last = sqlite3_column_int64(stmt, 0);
        json_object_array_add(items, account_from_row(stmt));
    }
    sqlite3_reset(stmt);
    if (r < 0) {
        json_object_put(items);
        return r;
    }
    return br_api_list_reply(c, items, limit, last);
}

int br_api_accounts_get(BrCall *c)
{
    CmDb *db = br_api_read_db(c);
    json_object *o = NULL;
    int r;
    if (!db)
        return -EIO;
    r = account_load(c, db, c->ids[0], &o);
    if (r < 0)
        return r;
    return br_reply(c, MHD_HTTP_OK, o);
}

int br_api_accounts_patch(BrCall *c)
{
    int64_t id = c->ids[0];
    json_object *disabled = cm_json_get(c->body, "disabled");
    json_object *out = NULL;
    sqlite3_stmt *stmt;
    CmDb *db;
    int r;

    if (disabled && json_object_get_boolean(disabled) && id == c->actor.account_id)
        return cm_error_set_code(&c->err, CM_ERROR_CONFLICT, "self_lockout", "/disabled",
                                 "an account cannot disable itself");
    r = br_api_write_begin(c, &db);
    if (r < 0)
        return r;
    stmt = cm_db_stmt(db, "UPDATE accounts SET disabled = coalesce(?, disabled) WHERE id = ?",
                      &c->err);
    r = stmt ? 0 : -EIO;
    if (r >= 0) {
        if (disabled)
            sqlite3_bind_int(stmt, 1, json_object_get_boolean(disabled));
        sqlite3_bind_int64(stmt, 2, id);
        r = cm_db_step_done(db, stmt, &c->err);
    }
    if (r >= 0 && sqlite3_changes(cm_db_handle(db)) == 0)
        r = br_not_found(c, "account", id);
    if (r >= 0)
        r = br_store_audit(c->d->store, db, &c->actor, "account.update", "account", id, "ok",
                           cm_json_to_string(c->body, NULL), &c->err);
    if (r >= 0)
        r = account_load(c, db, id, &out);
    r = br_api_write_end(c, db, r);
    if (r < 0) {
        json_object_put(out);
        return r;
    }
    return br_reply(c, MHD_HTTP_OK, out);
}

/* POST /v1/accounts/{id}/token (admin) and POST /v1/whoami/token (oneself). */
int br_api_accounts_rotate(BrCall *c)
{
    int64_t id = c->n_ids ? c->ids[0] : c->actor.account_id;
    char token[CM_TOKEN_LEN + 1], hash[CM_SHA256_HEX_LEN + 1], at[CM_TIME_ISO_LEN + 1];
    sqlite3_stmt *stmt;
    json_object *out;
    CmDb *db;
    int r;

    if (cm_token_new(token) < 0 || cm_token_hash(token, hash) < 0)
        return cm_error_set(&c->err, CM_ERROR_INTERNAL, "", "no randomness for the token");
    cm_time_iso(cm_now_ms(), at);
    r = br_api_write_begin(c, &db);
    if (r < 0)
        return r;
    stmt = cm_db_stmt(db, "UPDATE accounts SET token_hash = ?, token_created_at = ? WHERE id = ?",
                      &c->err);
    r = stmt ? 0 : -EIO;
    if (r >= 0) {
        CM_DB_BIND(stmt, hash, at, id);
        r = cm_db_step_done(db, stmt, &c->err);
    }
    if (r >= 0 && sqlite3_changes(cm_db_handle(db)) == 0)
        r = br_not_found(c, "account", id);
    if (r >= 0)
        r = br_store_audit(c->d->store, db, &c->actor, "account.rotate_token", "account", id,
                           "ok", NULL, &c->err);
    r = br_api_write_end(c, db, r);
    if (r < 0) {
        explicit_bzero(token, sizeof(token));
        return r;
    }
    out = json_object_new_object();
    json_object_object_add(out, "id", json_object_new_int64(id));
    json_object_object_add(out, "token", json_object_new_string(token));
    explicit_bzero(token, sizeof(token));
    return br_reply(c, MHD_HTTP_OK, out);
}
