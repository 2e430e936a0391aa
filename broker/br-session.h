/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "br-ratelimit.h"
#include "br-tx.h"
#include "cm-crypto.h"
#include "cm-time.h"

/*
 * People signed in to the console: sessions (the cookie's token is stored only as its hash),
 * one-time sign-in links, and the failed sign-in counters that lock a name or an address for
 * a while. The only file with SQL on `sessions`, `sign_in_links` and `sign_in_failures`.
 * Beside them, the pure checks of a cookie-authenticated call: the cookie, its Origin, its
 * CSRF token.
 */

#define BR_SESSION_COOKIE "cb_session"
#define BR_SESSION_TOKEN_PREFIX "cbs_"
#define BR_LINK_TOKEN_PREFIX "cbl_"
#define BR_CSRF_LEN CM_TOKEN_LEN

/* A live session and who it is for. */
typedef struct {
    int64_t id;
    int64_t account_id;
    char name[128];
    BrRole role;
    int64_t department_id;
    char csrf_token[BR_CSRF_LEN + 1];
    bool must_change_password;
    int64_t last_seen_ms;
    char expires_at[CM_TIME_ISO_LEN + 1];
} BrSession;

/**
 * br_session_create:
 * Opens a session of @account_id for the client address @client that ends @lifetime_ms from
 * now at the latest; @csrf carries a CSRF token over from a session it replaces (NULL: a new
 * one). The cookie's token is written to @token; only its hash is stored.
 * Returns: 0 and the new id in @ret_id, or a negative errno with tx->err set.
 */
int br_session_create(BrTx *tx, int64_t account_id, const char *client, int64_t lifetime_ms,
                      bool must_change_password, const char *csrf, char token[CM_TOKEN_LEN + 1],
                      int64_t *ret_id);

/**
 * br_session_find:
 * Looks up the live session of the cookie token @token: not revoked, not past its end, used
 * within @idle_ms, of an enabled account. When @id is not 0 it is looked up by id instead.
 * Returns: 1 with @ret filled, 0 when there is none, or a negative errno with @err set.
 */
int br_session_find(CmDb *db, const char *token, int64_t id, int64_t idle_ms, BrSession *ret,
                    CmError *err);

/**
 * br_session_touch:
 * Marks session @id used now (for the idle timeout).
 * Returns: 0, or a negative errno with tx->err set.
 */
int br_session_touch(BrTx *tx, int64_t id);

/**
 * br_session_revoke:
 * Ends session @id (@reason kept: "sign_out", "password", "disabled").
 * Returns: 0, or a negative errno with tx->err set.
 */
int br_session_revoke(BrTx *tx, int64_t id, const char *reason);

/**
 * br_session_revoke_token:
 * Ends the live session whose cookie value is @token, if there is one (a sign-in replaces the
 * session the browser had: no cookie set before it survives it).
 * Returns: the number ended (0 or 1), or a negative errno with tx->err set.
 */
int br_session_revoke_token(BrTx *tx, const char *token, const char *reason);

/**
 * br_session_revoke_account:
 * Ends every live session of @account_id.
 * Returns: the number ended (>= 0), or a negative errno with tx->err set.
 */
int br_session_revoke_account(BrTx *tx, int64_t account_id, const char *reason);

/**
 * br_session_sweep:
 * Removes the sessions and sign-in links that ended before @before_ms.
 * Returns: 0, or a negative errno with tx->err set.
 */
int br_session_sweep(BrTx *tx, int64_t before_ms);

/**
 * br_session_json:
 * The session document of @s: account (id, name, role, department_id, department_name,
 * must_change_password), csrf_token, expires_at, idle_timeout_seconds.
 * Returns: 0 and the document in @ret, or a negative errno with @err set.
 */
int br_session_json(CmDb *db, const BrSession *s, int64_t idle_seconds, json_object **ret,
                    CmError *err);

/**
 * br_sign_in_link_create:
 * Issues the one-time link of @account_id (replacing an unused earlier one), valid for
 * @lifetime_ms; its token goes to @token and its end to @expires_at.
 * Returns: 0, or a negative errno with tx->err set.
 */
int br_sign_in_link_create(BrTx *tx, int64_t account_id, int64_t lifetime_ms,
                           char token[CM_TOKEN_LEN + 1], char expires_at[CM_TIME_ISO_LEN + 1]);

/**
 * br_sign_in_link_find:
 * Looks up the unexpired link of token @token.
 * Returns: 1 with its account in @ret_account, 0 when there is none, or a negative errno.
 */
int br_sign_in_link_find(CmDb *db, const char *token, int64_t *ret_account, CmError *err);

/**
 * br_sign_in_link_consume:
 * Uses up the link of @token for @account_id.
 * Returns: 1 when it was there (and is gone now), 0 when not, or a negative errno.
 */
int br_sign_in_link_consume(BrTx *tx, const char *token, int64_t account_id);

/**
 * br_sign_in_link_drop:
 * Removes the link of @account_id, used or not: a password set by any way makes an
 * outstanding link useless.
 * Returns: 0, or a negative errno with tx->err set.
 */
int br_sign_in_link_drop(BrTx *tx, int64_t account_id);

/**
 * br_sign_in_limit_load:
 * Reads the failure counter of @key ("account:NAME", "address:ADDR"); all zero when none.
 * Returns: 0, or a negative errno with @err set.
 */
int br_sign_in_limit_load(CmDb *db, const char *key, BrLimitState *ret, CmError *err);

/**
 * br_sign_in_limit_save:
 * Stores @s as the counter of @key; a counter back at zero is removed.
 * Returns: 0, or a negative errno with tx->err set.
 */
int br_sign_in_limit_save(BrTx *tx, const char *key, const BrLimitState *s);

/**
 * br_sign_in_limit_sweep:
 * Removes the counters whose window and lock ended before @before_ms.
 * Returns: 0, or a negative errno with tx->err set.
 */
int br_sign_in_limit_sweep(BrTx *tx, int64_t before_ms);

/* ---- the pure checks of a cookie-authenticated call ---- */

/**
 * br_cookie_value:
 * Finds cookie @name in a Cookie header @header and copies its value to @out.
 * Returns: true when found and it fit in @size.
 */
bool br_cookie_value(const char *header, const char *name, char *out, size_t size);

/**
 * br_expected_origin:
 * The origin cookie-authenticated writes must come from: that of @public_url when set, else
 * the scheme (https when @tls) with the request's @host. Default ports are left out.
 * Returns: 0 with it in @out, or -EINVAL when it cannot be told (no Host, a bad URL).
 */
int br_expected_origin(const char *public_url, bool tls, const char *host, char *out, size_t size);

/** br_origin_matches: Returns: true when the Origin header @origin is @expected (any case). */
bool br_origin_matches(const char *origin, const char *expected);

/** br_csrf_matches: Returns: true when @given equals @stored (in constant time). */
bool br_csrf_matches(const char *given, const char *stored);

/**
 * br_cookie_path:
 * The session cookie's Path: that of @public_url, or "/".
 */
void br_cookie_path(const char *public_url, char *out, size_t size);
