/* SPDX-License-Identifier: Apache-2.0 */
/* Accounts and their tokens: parse, call the table's owner, answer. */
#include <errno.h>
#include <string.h>

#include "br-account.h"
#include "br-api.h"
#include "br-notification.h"
#include "br-session.h"
#include "cm-crypto.h"

typedef struct {
    int64_t id;
    const char *action; /* of the audit record of a change */
    const char *name, *role;
    int64_t department;
    BrAccountFields fields;
    char token[CM_TOKEN_LEN + 1], hash[CM_SHA256_HEX_LEN + 1];
    json_object *body, *out;
} AccountWrite;

static void account_write_done(AccountWrite *w)
{
    explicit_bzero(w->token, sizeof(w->token));
    json_object_put(w->out);
}

/* A new API token for w: shown once in the answer, only its hash is stored. */
static int new_token(BrCall *c, AccountWrite *w)
{
    if (cm_token_new(w->token) < 0 || cm_token_hash(w->token, w->hash) < 0)
        return cm_error_set(&c->err, CM_ERROR_INTERNAL, "", "no randomness for the token");
    return 0;
}

static void fields_from_body(json_object *body, BrAccountFields *f)
{
    json_object *disabled = cm_json_get(body, "disabled");
    json_object *notify = cm_json_get(body, "email_notifications");
    *f = (BrAccountFields){
        .disabled = disabled ? json_object_get_boolean(disabled) : -1,
        .email_set = json_object_object_get_ex(body, "email", NULL),
        .email = cm_json_get_str(body, "email", NULL),
        .email_notifications = notify ? json_object_get_boolean(notify) : -1,
    };
}

static int account_create_tx(BrTx *tx, void *ctx)
{
    AccountWrite *w = ctx;
    int r = br_account_create(tx, w->name, w->role, w->department, w->hash, &w->fields, &w->id);
    if (r < 0)
        return r;
    br_tx_audit_set(tx, "account.create", "account", w->id, cm_json_to_string(w->body, NULL));
    return br_account_get(tx->db, w->id, &w->out, tx->err);
}

static int br_api_accounts_create(BrCall *c)
{
    _cleanup_(account_write_done) AccountWrite w = {
        .name = cm_json_get_str(c->body, "name", ""),
        .role = cm_json_get_str(c->body, "role", ""),
        .department = cm_json_get_int(c->body, "department_id", 0),
        .body = c->body,
    };
    json_object *out;
    int r;

    if ((strcmp(w.role, "department") == 0) != (w.department > 0))
        return cm_error_set_code(&c->err, CM_ERROR_UNPROCESSABLE, "schema_violation",
                                 "/department_id",
                                 "department_id is required for the department role and "
                                 "not allowed for other roles");
    fields_from_body(c->body, &w.fields);
    w.fields.disabled = -1;
    r = new_token(c, &w);
    if (r < 0)
        return r;
    r = br_call_tx(c, "account.create", account_create_tx, &w);
    if (r < 0)
        return r;
    out = json_object_new_object();
    json_object_object_add(out, "account", TAKE_PTR(w.out));
    json_object_object_add(out, "token", json_object_new_string(w.token));
    return br_reply(c, BR_HTTP_CREATED, out);
}

static int br_api_accounts_list(BrCall *c)
{
    const char *role = br_call_query(c, "role");
    int64_t department = 0;
    json_object *items;
    BrPage page;
    int r = br_call_page(c, &page);

    if (r >= 0)
        r = br_call_query_int(c, "department", 1, INT64_MAX, &department);
    if (r < 0)
        return r;
    if (role && br_role_from_string(role) < 0)
        return cm_error_set(&c->err, CM_ERROR_INVALID, "role", "unknown role '%s'", role);
    r = br_account_list(br_call_db(c), role, department, &page, &items, &c->err);
    if (r < 0)
        return r;
    return br_reply_list(c, items, &page);
}

static int br_api_accounts_get(BrCall *c)
{
    json_object *o;
    int r = br_account_get(br_call_db(c), c->ids[0], &o, &c->err);
    if (r < 0)
        return r;
    return br_reply(c, BR_HTTP_OK, o);
}

static int account_patch_tx(BrTx *tx, void *ctx)
{
    AccountWrite *w = ctx;
    int r = br_account_update(tx, w->id, &w->fields);
    if (r < 0)
        return r;
    /* A disabled account is out at once: its console sessions end with it. */
    if (w->fields.disabled == 1) {
        r = br_session_revoke_account(tx, w->id, "disabled");
        if (r < 0)
            return r;
    }
    br_tx_audit_set(tx, w->action ? w->action : "account.update", "account", w->id,
                    cm_json_to_string(w->body, NULL));
    return br_account_get(tx->db, w->id, &w->out, tx->err);
}

static int br_api_accounts_patch(BrCall *c)
{
    _cleanup_(account_write_done) AccountWrite w = {.id = c->ids[0], .body = c->body};
    int r;

    fields_from_body(c->body, &w.fields);
    if (w.fields.disabled == 1 && w.id == c->actor.account_id)
        return cm_error_set_code(&c->err, CM_ERROR_CONFLICT, "self_lockout", "/disabled",
                                 "an account cannot disable itself");
    r = br_call_tx(c, "account.update", account_patch_tx, &w);
    if (r < 0)
        return r;
    return br_reply(c, BR_HTTP_OK, TAKE_PTR(w.out));
}

/* PATCH /v1/whoami: one's own e-mail address and whether to be mailed. */
static int br_api_whoami_patch(BrCall *c)
{
    _cleanup_(account_write_done) AccountWrite w = {
        .id = c->actor.account_id, .action = "account.update_self", .body = c->body};
    int r;

    fields_from_body(c->body, &w.fields);
    w.fields.disabled = -1;
    r = br_call_tx(c, "account.update_self", account_patch_tx, &w);
    if (r < 0)
        return r;
    return br_api_whoami_reply(c);
}

static int account_rotate_tx(BrTx *tx, void *ctx)
{
    AccountWrite *w = ctx;
    int r = br_account_set_token(tx, w->id, w->hash);
    if (r < 0)
        return r;
    br_tx_audit_set(tx, "account.rotate_token", "account", w->id, NULL);
    return 0;
}

/* POST /v1/accounts/{id}/token (admin) and POST /v1/whoami/token (oneself). */
static int br_api_accounts_rotate(BrCall *c)
{
    _cleanup_(account_write_done)
        AccountWrite w = {.id = c->n_ids ? c->ids[0] : c->actor.account_id};
    json_object *out;
    int r = new_token(c, &w);

    if (r < 0)
        return r;
    r = br_call_tx(c, "account.rotate_token", account_rotate_tx, &w);
    if (r < 0)
        return r;
    out = json_object_new_object();
    json_object_object_add(out, "id", json_object_new_int64(w.id));
    json_object_object_add(out, "token", json_object_new_string(w.token));
    return br_reply(c, BR_HTTP_OK, out);
}

static const BrRoute routes[] = {
    {"POST", "/v1/whoami/token", br_api_accounts_rotate, BR_ROLES_ACCOUNTS, BR_BODY_JSON_OPTIONAL,
     "empty"},
    /* One's own e-mail address for notifications and whether to get them by mail. */
    {"PATCH", "/v1/whoami", br_api_whoami_patch, BR_ROLES_ACCOUNTS, BR_BODY_JSON, "whoami-patch"},

    {"POST", "/v1/accounts", br_api_accounts_create, BR_ROLES_ADMIN, BR_BODY_JSON,
     "account-create"},
    {"GET", "/v1/accounts", br_api_accounts_list, BR_ROLES_ADMIN | BR_ROLES_READERS, BR_BODY_NONE,
     NULL},
    {"GET", "/v1/accounts/{id}", br_api_accounts_get, BR_ROLES_ADMIN | BR_ROLES_READERS,
     BR_BODY_NONE, NULL},
    {"PATCH", "/v1/accounts/{id}", br_api_accounts_patch, BR_ROLES_ADMIN, BR_BODY_JSON,
     "account-patch"},
    {"POST", "/v1/accounts/{id}/token", br_api_accounts_rotate, BR_ROLES_ADMIN,
     BR_BODY_JSON_OPTIONAL, "empty"},
};

const BrRouteTable br_api_accounts_routes = {routes, ELEMENTSOF(routes)};
