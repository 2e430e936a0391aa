/* SPDX-License-Identifier: Apache-2.0 */
/*
 * People's sign-in to the console: passwords (argon2id), the session cookie, its CSRF token
 * and Origin check, the failed sign-in limits, one-time sign-in links. Bearer tokens are
 * untouched: the CLI and the agents go on as before. Parse, call the owners, answer.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "br-account.h"
#include "br-api.h"
#include "br-daemon.h"
#include "br-notification.h"
#include "br-password.h"
#include "br-session.h"
#include "cm-log.h"
#include "cm-util.h"

/* A session is marked used at most this often: one write per minute, not per call. */
#define TOUCH_EVERY_MS 60000

static bool call_is_tls(const BrCall *c)
{
    return c->d->config.tls_cert != NULL;
}

/* Whether the browser reaches us over TLS: ours, or a proxy's that public_url names. */
static bool browser_is_tls(const BrCall *c)
{
    const char *url = c->d->config.public_url;
    return call_is_tls(c) || (url && strncasecmp(url, "https://", 8) == 0);
}

static int64_t idle_ms(const BrCall *c)
{
    return (int64_t)c->d->config.session_idle_seconds * 1000;
}

static void set_cookie(BrCall *c, const char *token, int64_t max_age)
{
    char path[200], value[320];

    br_cookie_path(c->d->config.public_url, path, sizeof(path));
    snprintf(value, sizeof(value), "%s=%s; Path=%s; Max-Age=%lld; HttpOnly; SameSite=Strict%s",
             BR_SESSION_COOKIE, token ? token : "", path, (long long)max_age,
             browser_is_tls(c) ? "; Secure" : "");
    br_reply_header(c, "Set-Cookie", value);
}

/* An Origin header, when there is one, must be ours. */
static int check_origin(BrCall *c)
{
    const char *origin = br_call_header(c, "Origin");
    char expected[300];

    if (!origin)
        return 0;
    if (br_expected_origin(c->d->config.public_url, call_is_tls(c), br_call_header(c, "Host"),
                           expected, sizeof(expected)) < 0 ||
        !br_origin_matches(origin, expected))
        return cm_error_set_code(&c->err, CM_ERROR_FORBIDDEN, "origin_mismatch", "Origin",
                                 "the request comes from another site (Origin %s)", origin);
    return 0;
}

static int invalid_session(BrCall *c)
{
    set_cookie(c, NULL, 0);
    return cm_error_set_code(&c->err, CM_ERROR_UNAUTHENTICATED, "invalid_session", "Cookie",
                             "the session has ended or is not valid; sign in again");
}

static int touch_tx(BrTx *tx, void *ctx)
{
    return br_session_touch(tx, *(int64_t *)ctx);
}

int br_api_session_authenticate(BrCall *c)
{
    const char *cookie = br_call_header(c, "Cookie");
    char token[CM_TOKEN_LEN + 2];
    BrSession s;
    int r;

    if (!cookie || !br_cookie_value(cookie, BR_SESSION_COOKIE, token, sizeof(token)))
        return 0;
    if (strlen(token) != CM_TOKEN_LEN || strncmp(token, BR_SESSION_TOKEN_PREFIX, 4) != 0)
        return invalid_session(c);
    r = br_session_find(br_call_db(c), token, 0, idle_ms(c), &s, &c->err);
    if (r < 0)
        return r;
    if (r == 0)
        return invalid_session(c);
    if (strcmp(c->route->method, "GET") != 0 && strcmp(c->route->method, "HEAD") != 0) {
        r = check_origin(c);
        if (r < 0)
            return r;
        if (!br_csrf_matches(br_call_header(c, "X-CSRF-Token"), s.csrf_token))
            return cm_error_set_code(&c->err, CM_ERROR_FORBIDDEN, "csrf_failed", "X-CSRF-Token",
                                     "a write with the session cookie needs the session's "
                                     "X-CSRF-Token header");
    }
    if (cm_now_ms() - s.last_seen_ms >= TOUCH_EVERY_MS ||
        cm_now_ms() - s.last_seen_ms >= idle_ms(c) / 5) {
        r = br_tx_run(c->d->store, "session.touch", NULL, touch_tx, &s.id, &c->err);
        if (r < 0)
            return r;
    }
    c->actor.account_id = s.account_id;
    snprintf(c->actor.name, sizeof(c->actor.name), "%s", s.name);
    c->actor.role = s.role;
    c->actor.department_id = s.department_id;
    c->session_id = s.id;
    return 1;
}

/* ---- the failed sign-in limits ---- */

typedef struct {
    char account_key[160];
    char address_key[96];
    BrLimitRule account_rule, address_rule;
} Limits;

static void limits_init(BrCall *c, Limits *l, const char *name, const char *address_kind)
{
    snprintf(l->account_key, sizeof(l->account_key), "account:%s", name ? name : "");
    snprintf(l->address_key, sizeof(l->address_key), "%s:%s", address_kind, c->actor.client);
    l->account_rule = (BrLimitRule){
        .max_failures = c->d->config.sign_in.account_failures,
        .window_ms = (int64_t)c->d->config.sign_in.window_seconds * 1000,
        .lockout_ms = (int64_t)c->d->config.sign_in.lockout_seconds * 1000,
    };
    l->address_rule = l->account_rule;
    l->address_rule.max_failures = c->d->config.sign_in.address_failures;
}

/* 429 with Retry-After while the name (when @name) or the address is locked. */
static int limits_check(BrCall *c, const Limits *l, bool by_account)
{
    BrLimitState a = {0}, b = {0};
    int64_t now = cm_now_ms(), wait;
    char secs[24];
    int r = 0;

    if (by_account) {
        r = br_sign_in_limit_load(br_call_db(c), l->account_key, &a, &c->err);
        if (r < 0)
            return r;
    }
    r = br_sign_in_limit_load(br_call_db(c), l->address_key, &b, &c->err);
    if (r < 0)
        return r;
    wait = br_limit_remaining(&a, now);
    if (br_limit_remaining(&b, now) > wait)
        wait = br_limit_remaining(&b, now);
    if (wait <= 0)
        return 0;
    snprintf(secs, sizeof(secs), "%lld", (long long)((wait + 999) / 1000));
    br_reply_header(c, "Retry-After", secs);
    return cm_error_set_code(&c->err, CM_ERROR_TOO_MANY, "too_many_attempts", "",
                             "too many failed attempts; try again in %s seconds", secs);
}

typedef struct {
    const Limits *limits;
    bool by_account;
    const char *action;
    int64_t account_id;
    json_object *detail;
} FailWrite;

static int fail_tx(BrTx *tx, void *ctx)
{
    FailWrite *w = ctx;
    int64_t now = cm_now_ms();
    BrLimitState s;
    int r;

    if (w->by_account) {
        r = br_sign_in_limit_load(tx->db, w->limits->account_key, &s, tx->err);
        if (r < 0)
            return r;
        br_limit_fail(&s, &w->limits->account_rule, now);
        r = br_sign_in_limit_save(tx, w->limits->account_key, &s);
        if (r < 0)
            return r;
    }
    r = br_sign_in_limit_load(tx->db, w->limits->address_key, &s, tx->err);
    if (r < 0)
        return r;
    br_limit_fail(&s, &w->limits->address_rule, now);
    r = br_sign_in_limit_save(tx, w->limits->address_key, &s);
    if (r < 0)
        return r;
    /* Counters of keys long quiet are dropped now and then, here where a write is open. */
    if (now % 16 == 0) {
        r = br_sign_in_limit_sweep(tx, now - 86400000);
        if (r < 0)
            return r;
    }
    return br_tx_audit(tx, w->action, "account", w->account_id, "refused",
                       cm_json_to_string(w->detail, NULL));
}

/* Counts a failure against the limits and audits it, then leaves @code in c->err. */
static int record_failure(BrCall *c, const Limits *l, bool by_account, const char *action,
                          int64_t account_id, const char *name, const char *reason)
{
    _cleanup_json_ json_object *detail = json_object_new_object();
    CmError saved = c->err;
    BrActor anonymous = c->actor;
    FailWrite w = {.limits = l,
                   .by_account = by_account,
                   .action = action,
                   .account_id = account_id,
                   .detail = detail};
    int r;

    if (name)
        json_object_object_add(detail, "name", json_object_new_string(name));
    json_object_object_add(detail, "reason", json_object_new_string(reason));
    if (!c->actor.account_id) {
        snprintf(anonymous.name, sizeof(anonymous.name), "anonymous");
        anonymous.role = BR_ROLE_MAX;
    }
    cm_error_clear(&c->err);
    r = br_tx_run(c->d->store, action, &anonymous, fail_tx, &w, &c->err);
    if (r < 0)
        return r;
    c->err = saved;
    return cm_error_kind_errno(saved.kind);
}

/* ---- POST /v1/session, GET /v1/session, DELETE /v1/session ---- */

static int reply_session(BrCall *c, unsigned status, int64_t id)
{
    json_object *o = NULL;
    int64_t unread = 0;
    BrSession s;
    CmDb *db = br_call_db(c);
    int r = br_session_find(db, NULL, id, idle_ms(c), &s, &c->err);

    if (r < 0)
        return r;
    if (r == 0)
        return invalid_session(c);
    r = br_notification_unread(db, s.account_id, &unread, &c->err);
    if (r < 0)
        return r;
    r = br_session_json(db, &s, c->d->config.session_idle_seconds, &o, &c->err);
    if (r < 0)
        return r;
    json_object_object_add(o, "unread_notifications", json_object_new_int64(unread));
    return br_reply(c, status, o);
}

typedef struct {
    const Limits *limits;
    const BrAccountCreds *creds;
    const char *replaced; /* the cookie the browser came with, or NULL */
    const char *rehash;   /* a stronger hash of the same password, or NULL */
    bool must_change;
    int64_t lifetime_ms;
    char token[CM_TOKEN_LEN + 1];
    int64_t session_id;
} SignIn;

static int sign_in_tx(BrTx *tx, void *ctx)
{
    SignIn *w = ctx;
    BrLimitState zero = {0};
    int r;

    r = br_sign_in_limit_save(tx, w->limits->account_key, &zero);
    if (r < 0)
        return r;
    /* Sessions and links over for a day are of no use: each sign-in clears them away. */
    r = br_session_sweep(tx, cm_now_ms() - 86400000);
    if (r < 0)
        return r;
    if (w->rehash) {
        r = br_account_set_password(tx, w->creds->id, w->rehash, w->creds->password_hash);
        if (r == -ESTALE) /* changed meanwhile: the new one stands */
            cm_error_clear(tx->err);
        else if (r < 0)
            return r;
    }
    /* The session the browser had (whoever's it was) ends: a cookie planted before the
     * sign-in, or a colleague's on a shared machine, does not go on beside the new one. */
    if (w->replaced) {
        r = br_session_revoke_token(tx, w->replaced, "replaced");
        if (r < 0)
            return r;
    }
    r = br_session_create(tx, w->creds->id, tx->actor->client, w->lifetime_ms, w->must_change, NULL,
                          w->token, &w->session_id);
    if (r < 0)
        return r;
    br_tx_audit_set(tx, "session.create", "account", w->creds->id, NULL);
    return 0;
}

static int br_api_session_create(BrCall *c)
{
    const char *name = cm_json_get_str(c->body, "name", "");
    const char *password = cm_json_get_str(c->body, "password", "");
    char rehash[BR_PASSWORD_HASH_LEN], old[CM_TOKEN_LEN + 2];
    const char *cookie;
    BrAccountCreds creds = {0};
    Limits l;
    SignIn w = {.limits = &l,
                .creds = &creds,
                .lifetime_ms = (int64_t)c->d->config.session_lifetime_seconds * 1000};
    BrActor actor = c->actor;
    bool ok;
    int r;

    r = check_origin(c);
    if (r < 0)
        return r;
    limits_init(c, &l, name, "address");
    r = limits_check(c, &l, true);
    if (r == -EAGAIN && c->err.kind == CM_ERROR_TOO_MANY)
        return record_failure(c, &l, false, "session.fail", 0, name, "locked");
    if (r < 0)
        return r;
    r = br_account_credentials(br_call_db(c), name, 0, &creds, &c->err);
    if (r < 0)
        return r;
    /* Unknown name, no password, disabled: the same work and the same answer as a wrong
     * password, so that the answers tell nothing about which accounts exist. */
    ok = br_password_verify(r > 0 ? creds.password_hash : NULL, password) && r > 0 &&
         !creds.disabled;
    if (!ok) {
        cm_error_set_code(&c->err, CM_ERROR_UNAUTHENTICATED, "invalid_credentials", "",
                          "the name or the password is wrong");
        return record_failure(c, &l, true, "session.fail", creds.id, name, "invalid_credentials");
    }
    if (br_password_needs_rehash(creds.password_hash) && br_password_hash(password, rehash) >= 0)
        w.rehash = rehash;
    cookie = br_call_header(c, "Cookie");
    if (cookie && br_cookie_value(cookie, BR_SESSION_COOKIE, old, sizeof(old)) &&
        strlen(old) == CM_TOKEN_LEN && strncmp(old, BR_SESSION_TOKEN_PREFIX, 4) == 0)
        w.replaced = old;
    /* A password that no longer meets the rules (they were raised) must be changed. */
    w.must_change = br_password_check_strength(creds.name, password, "", NULL) < 0;

    br_account_creds_actor(&creds, &actor);
    r = br_tx_run(c->d->store, "session.create", &actor, sign_in_tx, &w, &c->err);
    if (r < 0)
        return r;
    set_cookie(c, w.token, c->d->config.session_lifetime_seconds);
    explicit_bzero(w.token, sizeof(w.token));
    return reply_session(c, BR_HTTP_OK, w.session_id);
}

static int br_api_session_get(BrCall *c)
{
    if (!c->session_id)
        return cm_error_set_code(&c->err, CM_ERROR_UNAUTHENTICATED, "invalid_session", "Cookie",
                                 "this call is not made with a console session");
    return reply_session(c, BR_HTTP_OK, c->session_id);
}

static int sign_out_tx(BrTx *tx, void *ctx)
{
    int64_t id = *(int64_t *)ctx;
    int r = br_session_revoke(tx, id, "sign_out");
    if (r < 0)
        return r;
    br_tx_audit_set(tx, "session.delete", "account", tx->actor->account_id, NULL);
    return 0;
}

static int br_api_session_delete(BrCall *c)
{
    int r;

    if (!c->session_id)
        return cm_error_set_code(&c->err, CM_ERROR_UNAUTHENTICATED, "invalid_session", "Cookie",
                                 "this call is not made with a console session");
    r = br_call_tx(c, "session.delete", sign_out_tx, &c->session_id);
    if (r < 0)
        return r;
    set_cookie(c, NULL, 0);
    return br_reply_no_content(c, BR_HTTP_NO_CONTENT);
}

/* ---- passwords ---- */

typedef struct {
    int64_t account_id;
    const char *hash, *expected;
    const char *via;
    const char *link_token; /* the link used up, or NULL */
    int64_t keep_session;   /* a session to carry on under a new cookie, or 0 */
    char csrf[BR_CSRF_LEN + 1];
    char token[CM_TOKEN_LEN + 1];
    int64_t lifetime_ms;
    int64_t new_session;
} PasswordWrite;

static int password_tx(BrTx *tx, void *ctx)
{
    PasswordWrite *w = ctx;
    _cleanup_json_ json_object *detail = json_object_new_object();
    int r, ended;

    if (w->link_token) {
        r = br_sign_in_link_consume(tx, w->link_token, w->account_id);
        if (r < 0)
            return r;
        if (r == 0)
            return cm_error_set_code(tx->err, CM_ERROR_INVALID, "invalid_token", "/token",
                                     "the link is not valid, used or expired");
    }
    r = br_account_set_password(tx, w->account_id, w->hash, w->expected);
    if (r < 0)
        return r;
    /* Every session of the account ends: whoever knew the old password is out; and a link
     * still outstanding could set another one behind the owner's back. */
    ended = br_session_revoke_account(tx, w->account_id, "password");
    if (ended < 0)
        return ended;
    r = br_sign_in_link_drop(tx, w->account_id);
    if (r < 0)
        return r;
    if (w->keep_session) {
        r = br_session_create(tx, w->account_id, tx->actor->client, w->lifetime_ms, false, w->csrf,
                              w->token, &w->new_session);
        if (r < 0)
            return r;
    }
    json_object_object_add(detail, "via", json_object_new_string(w->via));
    json_object_object_add(detail, "sessions_ended", json_object_new_int(ended));
    br_tx_audit_set(tx, "account.password", "account", w->account_id,
                    cm_json_to_string(detail, NULL));
    return 0;
}

static int br_api_session_password(BrCall *c)
{
    const char *current = cm_json_get_str(c->body, "current_password", NULL);
    const char *fresh = cm_json_get_str(c->body, "new_password", "");
    char hash[BR_PASSWORD_HASH_LEN];
    BrAccountCreds creds;
    PasswordWrite w = {.account_id = c->actor.account_id, .via = "change", .hash = hash};
    Limits l;
    BrSession s;
    int r;

    limits_init(c, &l, c->actor.name, "address");
    r = limits_check(c, &l, true);
    if (r < 0)
        return r;
    r = br_account_credentials(br_call_db(c), NULL, c->actor.account_id, &creds, &c->err);
    if (r < 0)
        return r;
    if (r == 0)
        return cm_error_set(&c->err, CM_ERROR_NOT_FOUND, "", "the account is gone");
    /* An account without a password sets its first one with its token or session alone. */
    if (creds.password_hash[0] && (!current || !br_password_verify(creds.password_hash, current))) {
        cm_error_set_code(&c->err, CM_ERROR_FORBIDDEN, "invalid_credentials", "/current_password",
                          "the current password is wrong");
        return record_failure(c, &l, true, "account.password", creds.id, NULL,
                              "invalid_credentials");
    }
    r = br_password_check_strength(creds.name, fresh, "/new_password", &c->err);
    if (r < 0)
        return r;
    if (br_password_hash(fresh, hash) < 0)
        return cm_error_set(&c->err, CM_ERROR_UNAVAILABLE, "", "no memory to hash the password");
    w.expected = creds.password_hash[0] ? creds.password_hash : NULL;
    if (c->session_id) {
        r = br_session_find(br_call_db(c), NULL, c->session_id, idle_ms(c), &s, &c->err);
        if (r < 0)
            return r;
        if (r > 0) {
            w.keep_session = s.id;
            snprintf(w.csrf, sizeof(w.csrf), "%s", s.csrf_token);
            w.lifetime_ms = (int64_t)c->d->config.session_lifetime_seconds * 1000;
        }
    }
    r = br_call_tx(c, "account.password", password_tx, &w);
    if (r < 0)
        return r;
    if (w.new_session) {
        set_cookie(c, w.token, c->d->config.session_lifetime_seconds);
        explicit_bzero(w.token, sizeof(w.token));
    }
    return br_reply_no_content(c, BR_HTTP_NO_CONTENT);
}

static int br_api_password_setup(BrCall *c)
{
    const char *token = cm_json_get_str(c->body, "token", "");
    const char *password = cm_json_get_str(c->body, "password", "");
    char hash[BR_PASSWORD_HASH_LEN];
    BrAccountCreds creds = {0};
    PasswordWrite w = {.via = "link", .hash = hash, .link_token = token};
    BrActor actor = c->actor;
    Limits l;
    int64_t account = 0;
    int r;

    r = check_origin(c);
    if (r < 0)
        return r;
    limits_init(c, &l, NULL, "setup");
    r = limits_check(c, &l, false);
    if (r < 0)
        return r;
    r = 0;
    if (strlen(token) == CM_TOKEN_LEN && strncmp(token, BR_LINK_TOKEN_PREFIX, 4) == 0)
        r = br_sign_in_link_find(br_call_db(c), token, &account, &c->err);
    if (r > 0)
        r = br_account_credentials(br_call_db(c), NULL, account, &creds, &c->err);
    if (r < 0)
        return r;
    if (r == 0 || creds.disabled) {
        cm_error_set_code(&c->err, CM_ERROR_INVALID, "invalid_token", "/token",
                          "the link is not valid, used or expired");
        return record_failure(c, &l, false, "account.password", creds.id, NULL, "invalid_token");
    }
    r = br_password_check_strength(creds.name, password, "/password", &c->err);
    if (r < 0)
        return r;
    if (br_password_hash(password, hash) < 0)
        return cm_error_set(&c->err, CM_ERROR_UNAVAILABLE, "", "no memory to hash the password");
    w.account_id = creds.id;
    br_account_creds_actor(&creds, &actor);
    r = br_tx_run(c->d->store, "account.password", &actor, password_tx, &w, &c->err);
    if (r < 0) {
        if (strcmp(c->err.code, "invalid_token") == 0)
            return record_failure(c, &l, false, "account.password", creds.id, NULL,
                                  "invalid_token");
        return r;
    }
    return br_reply_no_content(c, BR_HTTP_NO_CONTENT);
}

/* ---- POST /v1/accounts/{id}/sign-in-link ---- */

typedef struct {
    int64_t id;
    int64_t lifetime_ms;
    char token[CM_TOKEN_LEN + 1];
    char expires_at[CM_TIME_ISO_LEN + 1];
} LinkWrite;

static int link_tx(BrTx *tx, void *ctx)
{
    LinkWrite *w = ctx;
    _cleanup_json_ json_object *detail = json_object_new_object();
    int r = br_account_check_enabled(tx->db, w->id, tx->err);
    if (r < 0)
        return r;
    r = br_sign_in_link_create(tx, w->id, w->lifetime_ms, w->token, w->expires_at);
    if (r < 0)
        return r;
    json_object_object_add(detail, "expires_at", json_object_new_string(w->expires_at));
    br_tx_audit_set(tx, "account.sign_in_link", "account", w->id, cm_json_to_string(detail, NULL));
    return 0;
}

static int br_api_accounts_sign_in_link(BrCall *c)
{
    LinkWrite w = {.id = c->ids[0],
                   .lifetime_ms = (int64_t)c->d->config.sign_in_link_seconds * 1000};
    _cleanup_free_ char *path = NULL;
    json_object *o;
    int r = br_call_tx(c, "account.sign_in_link", link_tx, &w);

    if (r < 0)
        return r;
    path = cm_strdup_printf("#/set-password?token=%s", w.token);
    if (!path)
        return cm_error_set(&c->err, CM_ERROR_INTERNAL, "", "out of memory");
    o = json_object_new_object();
    json_object_object_add(o, "token", json_object_new_string(w.token));
    json_object_object_add(o, "path", json_object_new_string(path));
    json_object_object_add(o, "expires_at", json_object_new_string(w.expires_at));
    explicit_bzero(w.token, sizeof(w.token));
    return br_reply(c, BR_HTTP_CREATED, o);
}

static const BrRoute routes[] = {
    /* No token: the sign-in and the password set with a one-time link. */
    {"POST", "/v1/session", br_api_session_create, 0, BR_BODY_JSON, "session-create"},
    {"POST", "/v1/password/setup", br_api_password_setup, 0, BR_BODY_JSON, "password-setup"},
    /* The session of the cookie: a token is let through and answered invalid_session. */
    {"GET", "/v1/session", br_api_session_get, BR_ROLES_ACCOUNTS, BR_BODY_NONE, NULL},
    {"DELETE", "/v1/session", br_api_session_delete, BR_ROLES_ACCOUNTS, BR_BODY_NONE, NULL},
    {"POST", "/v1/session/password", br_api_session_password, BR_ROLES_ACCOUNTS, BR_BODY_JSON,
     "password-change"},
    {"POST", "/v1/accounts/{id}/sign-in-link", br_api_accounts_sign_in_link, BR_ROLES_ADMIN,
     BR_BODY_JSON_OPTIONAL, "empty"},
};

const BrRouteTable br_api_session_routes = {routes, ELEMENTSOF(routes)};
