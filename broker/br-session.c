/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "br-account.h"
#include "br-session.h"

static void iso_after(int64_t ms, char out[CM_TIME_ISO_LEN + 1])
{
    cm_time_iso(cm_now_ms() + ms, out);
}

int br_session_create(BrTx *tx, int64_t account_id, const char *client, int64_t lifetime_ms,
                      bool must_change_password, const char *csrf, char token[CM_TOKEN_LEN + 1],
                      int64_t *ret_id)
{
    char hash[CM_SHA256_HEX_LEN + 1], fresh[BR_CSRF_LEN + 1], at[CM_TIME_ISO_LEN + 1],
        until[CM_TIME_ISO_LEN + 1];
    _cleanup_stmt_ CmStmt *st = NULL;
    int r;

    if (cm_token_new_prefixed(BR_SESSION_TOKEN_PREFIX, token) < 0 ||
        cm_token_hash(token, hash) < 0 || (!csrf && cm_token_new_prefixed("csrf", fresh) < 0))
        return cm_error_set(tx->err, CM_ERROR_INTERNAL, "", "no randomness for the session");
    cm_time_iso(cm_now_ms(), at);
    iso_after(lifetime_ms, until);
    st = cm_db_prepare(tx->db,
                       "INSERT INTO sessions(account_id, token_hash, csrf_token,"
                       " must_change_password, client, created_at, last_seen_at, expires_at)"
                       " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7) RETURNING id",
                       tx->err);
    if (!st)
        return -EIO;
    CM_DB_BIND(st, account_id, hash, csrf ? csrf : fresh, must_change_password, client, at, until);
    r = cm_stmt_step(st, tx->err);
    if (r < 0)
        return r;
    *ret_id = cm_stmt_int(st, 0);
    return 0;
}

int br_session_find(CmDb *db, const char *token, int64_t id, int64_t idle_ms, BrSession *ret,
                    CmError *err)
{
    char hash[CM_SHA256_HEX_LEN + 1] = "", now[CM_TIME_ISO_LEN + 1], idle[CM_TIME_ISO_LEN + 1];
    int64_t now_ms = cm_now_ms(), seen = 0;
    _cleanup_stmt_ CmStmt *st = NULL;
    int r, role;

    if (token && cm_token_hash(token, hash) < 0)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "cannot hash the session token");
    cm_time_iso(now_ms, now);
    cm_time_iso(now_ms - idle_ms, idle);
    st = cm_db_prepare(db,
                       "SELECT s.id, s.account_id, a.name, a.role,"
                       " coalesce(a.department_id, 0), s.csrf_token, s.must_change_password,"
                       " s.last_seen_at, s.expires_at FROM sessions s"
                       " JOIN accounts a ON a.id = s.account_id"
                       " WHERE (s.token_hash = ?1 OR s.id = ?2) AND s.revoked_at IS NULL"
                       " AND s.expires_at > ?3 AND s.last_seen_at > ?4 AND a.disabled = 0",
                       err);
    if (!st)
        return -EIO;
    CM_DB_BIND(st, hash, token ? 0 : id, now, idle);
    r = cm_stmt_step(st, err);
    if (r <= 0)
        return r;
    role = br_role_from_string(cm_stmt_text(st, 3));
    if (role < 0)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "account has an unknown role");
    cm_time_parse_iso(cm_stmt_text(st, 7), &seen);
    *ret = (BrSession){
        .id = cm_stmt_int(st, 0),
        .account_id = cm_stmt_int(st, 1),
        .role = (BrRole)role,
        .department_id = cm_stmt_int(st, 4),
        .must_change_password = cm_stmt_int(st, 6) != 0,
        .last_seen_ms = seen,
    };
    snprintf(ret->name, sizeof(ret->name), "%s", cm_stmt_text(st, 2));
    snprintf(ret->csrf_token, sizeof(ret->csrf_token), "%s", cm_stmt_text(st, 5));
    snprintf(ret->expires_at, sizeof(ret->expires_at), "%s", cm_stmt_text(st, 8));
    return 1;
}

int br_session_touch(BrTx *tx, int64_t id)
{
    char at[CM_TIME_ISO_LEN + 1];
    _cleanup_stmt_ CmStmt *st = cm_db_prepare(
        tx->db, "UPDATE sessions SET last_seen_at = ?1 WHERE id = ?2 AND last_seen_at < ?1",
        tx->err);
    if (!st)
        return -EIO;
    cm_time_iso(cm_now_ms(), at);
    CM_DB_BIND(st, at, id);
    return cm_stmt_exec(st, tx->err);
}

int br_session_revoke(BrTx *tx, int64_t id, const char *reason)
{
    char at[CM_TIME_ISO_LEN + 1];
    _cleanup_stmt_ CmStmt *st =
        cm_db_prepare(tx->db,
                      "UPDATE sessions SET revoked_at = ?1, revoked_reason = ?2"
                      " WHERE id = ?3 AND revoked_at IS NULL",
                      tx->err);
    if (!st)
        return -EIO;
    cm_time_iso(cm_now_ms(), at);
    CM_DB_BIND(st, at, reason, id);
    return cm_stmt_exec(st, tx->err);
}

int br_session_revoke_token(BrTx *tx, const char *token, const char *reason)
{
    char hash[CM_SHA256_HEX_LEN + 1], at[CM_TIME_ISO_LEN + 1];
    _cleanup_stmt_ CmStmt *st = NULL;
    int r;

    if (cm_token_hash(token, hash) < 0)
        return cm_error_set(tx->err, CM_ERROR_INTERNAL, "", "cannot hash the session token");
    st = cm_db_prepare(tx->db,
                       "UPDATE sessions SET revoked_at = ?1, revoked_reason = ?2"
                       " WHERE token_hash = ?3 AND revoked_at IS NULL",
                       tx->err);
    if (!st)
        return -EIO;
    cm_time_iso(cm_now_ms(), at);
    CM_DB_BIND(st, at, reason, hash);
    r = cm_stmt_exec(st, tx->err);
    return r < 0 ? r : (int)cm_stmt_changes(st);
}

int br_session_revoke_account(BrTx *tx, int64_t account_id, const char *reason)
{
    char at[CM_TIME_ISO_LEN + 1];
    _cleanup_stmt_ CmStmt *st =
        cm_db_prepare(tx->db,
                      "UPDATE sessions SET revoked_at = ?1, revoked_reason = ?2"
                      " WHERE account_id = ?3 AND revoked_at IS NULL",
                      tx->err);
    int r;

    if (!st)
        return -EIO;
    cm_time_iso(cm_now_ms(), at);
    CM_DB_BIND(st, at, reason, account_id);
    r = cm_stmt_exec(st, tx->err);
    return r < 0 ? r : (int)cm_stmt_changes(st);
}

int br_session_sweep(BrTx *tx, int64_t before_ms)
{
    char before[CM_TIME_ISO_LEN + 1];
    _cleanup_stmt_ CmStmt *st = NULL;
    int r;

    cm_time_iso(before_ms, before);
    st = cm_db_prepare(tx->db,
                       "DELETE FROM sessions WHERE expires_at < ?1 OR revoked_at < ?1"
                       " OR last_seen_at < ?1",
                       tx->err);
    if (!st)
        return -EIO;
    CM_DB_BIND(st, before);
    r = cm_stmt_exec(st, tx->err);
    if (r < 0)
        return r;
    st = cm_db_prepare(tx->db, "DELETE FROM sign_in_links WHERE expires_at < ?1", tx->err);
    if (!st)
        return -EIO;
    CM_DB_BIND(st, before);
    return cm_stmt_exec(st, tx->err);
}

int br_session_json(CmDb *db, const BrSession *s, int64_t idle_seconds, json_object **ret,
                    CmError *err)
{
    json_object *account, *o;
    int r = br_account_summary(db, s->account_id, &account, err);

    if (r == -ENOENT)
        return cm_error_set(err, CM_ERROR_UNAUTHENTICATED, "", "the session's account is gone");
    if (r < 0)
        return r;
    json_object_object_add(account, "must_change_password",
                           json_object_new_boolean(s->must_change_password));
    o = json_object_new_object();
    json_object_object_add(o, "account", account);
    json_object_object_add(o, "csrf_token", json_object_new_string(s->csrf_token));
    json_object_object_add(o, "expires_at", json_object_new_string(s->expires_at));
    json_object_object_add(o, "idle_timeout_seconds", json_object_new_int64(idle_seconds));
    *ret = o;
    return 0;
}

int br_sign_in_link_create(BrTx *tx, int64_t account_id, int64_t lifetime_ms,
                           char token[CM_TOKEN_LEN + 1], char expires_at[CM_TIME_ISO_LEN + 1])
{
    char hash[CM_SHA256_HEX_LEN + 1], at[CM_TIME_ISO_LEN + 1];
    /* One link per account: a new one replaces the earlier, used or not. */
    _cleanup_stmt_ CmStmt *st =
        cm_db_prepare(tx->db,
                      "INSERT INTO sign_in_links(account_id, token_hash, created_by, created_at,"
                      " expires_at) VALUES (?1, ?2, ?3, ?4, ?5)"
                      " ON CONFLICT (account_id) DO UPDATE SET token_hash = excluded.token_hash,"
                      " created_by = excluded.created_by, created_at = excluded.created_at,"
                      " expires_at = excluded.expires_at",
                      tx->err);
    if (!st)
        return -EIO;
    if (cm_token_new_prefixed(BR_LINK_TOKEN_PREFIX, token) < 0 || cm_token_hash(token, hash) < 0)
        return cm_error_set(tx->err, CM_ERROR_INTERNAL, "", "no randomness for the link");
    cm_time_iso(cm_now_ms(), at);
    iso_after(lifetime_ms, expires_at);
    CM_DB_BIND(st, account_id, hash, tx->actor->account_id, at, expires_at);
    return cm_stmt_exec(st, tx->err);
}

int br_sign_in_link_find(CmDb *db, const char *token, int64_t *ret_account, CmError *err)
{
    char hash[CM_SHA256_HEX_LEN + 1], now[CM_TIME_ISO_LEN + 1];
    _cleanup_stmt_ CmStmt *st = cm_db_prepare(
        db, "SELECT account_id FROM sign_in_links WHERE token_hash = ? AND expires_at > ?", err);
    int r;

    if (!st)
        return -EIO;
    if (cm_token_hash(token, hash) < 0)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "cannot hash the token");
    cm_time_iso(cm_now_ms(), now);
    CM_DB_BIND(st, hash, now);
    r = cm_stmt_step(st, err);
    if (r > 0)
        *ret_account = cm_stmt_int(st, 0);
    return r;
}

int br_sign_in_link_consume(BrTx *tx, const char *token, int64_t account_id)
{
    char hash[CM_SHA256_HEX_LEN + 1], now[CM_TIME_ISO_LEN + 1];
    _cleanup_stmt_ CmStmt *st =
        cm_db_prepare(tx->db,
                      "DELETE FROM sign_in_links WHERE token_hash = ? AND account_id = ?"
                      " AND expires_at > ?",
                      tx->err);
    int r;

    if (!st)
        return -EIO;
    if (cm_token_hash(token, hash) < 0)
        return cm_error_set(tx->err, CM_ERROR_INTERNAL, "", "cannot hash the token");
    cm_time_iso(cm_now_ms(), now);
    CM_DB_BIND(st, hash, account_id, now);
    r = cm_stmt_exec(st, tx->err);
    return r < 0 ? r : cm_stmt_changes(st) == 1;
}

int br_sign_in_link_drop(BrTx *tx, int64_t account_id)
{
    _cleanup_stmt_ CmStmt *st =
        cm_db_prepare(tx->db, "DELETE FROM sign_in_links WHERE account_id = ?", tx->err);
    if (!st)
        return -EIO;
    CM_DB_BIND(st, account_id);
    return cm_stmt_exec(st, tx->err);
}

int br_sign_in_limit_load(CmDb *db, const char *key, BrLimitState *ret, CmError *err)
{
    _cleanup_stmt_ CmStmt *st = cm_db_prepare(
        db, "SELECT failures, window_start, locked_until FROM sign_in_failures WHERE key = ?", err);
    int r;

    if (!st)
        return -EIO;
    CM_DB_BIND(st, key);
    r = cm_stmt_step(st, err);
    if (r < 0)
        return r;
    *ret = (BrLimitState){0};
    if (r > 0)
        *ret = (BrLimitState){.failures = cm_stmt_int(st, 0),
                              .window_start_ms = cm_stmt_int(st, 1),
                              .locked_until_ms = cm_stmt_int(st, 2)};
    return 0;
}

int br_sign_in_limit_save(BrTx *tx, const char *key, const BrLimitState *s)
{
    _cleanup_stmt_ CmStmt *st = NULL;

    if (s->failures == 0 && s->locked_until_ms == 0) {
        st = cm_db_prepare(tx->db, "DELETE FROM sign_in_failures WHERE key = ?", tx->err);
        if (!st)
            return -EIO;
        CM_DB_BIND(st, key);
        return cm_stmt_exec(st, tx->err);
    }
    st = cm_db_prepare(tx->db,
                       "INSERT INTO sign_in_failures(key, failures, window_start, locked_until)"
                       " VALUES (?1, ?2, ?3, ?4) ON CONFLICT (key) DO UPDATE SET"
                       " failures = excluded.failures, window_start = excluded.window_start,"
                       " locked_until = excluded.locked_until",
                       tx->err);
    if (!st)
        return -EIO;
    CM_DB_BIND(st, key, s->failures, s->window_start_ms, s->locked_until_ms);
    return cm_stmt_exec(st, tx->err);
}

int br_sign_in_limit_sweep(BrTx *tx, int64_t before_ms)
{
    _cleanup_stmt_ CmStmt *st = cm_db_prepare(
        tx->db, "DELETE FROM sign_in_failures WHERE window_start < ?1 AND locked_until < ?1",
        tx->err);
    if (!st)
        return -EIO;
    CM_DB_BIND(st, before_ms);
    return cm_stmt_exec(st, tx->err);
}

/* ---- pure checks ---- */

bool br_cookie_value(const char *header, const char *name, char *out, size_t size)
{
    size_t n = strlen(name);

    for (const char *p = header; p && *p;) {
        const char *end = strchr(p, ';');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        while (len && (*p == ' ' || *p == '\t')) {
            p++;
            len--;
        }
        if (len > n && strncmp(p, name, n) == 0 && p[n] == '=') {
            size_t vlen = len - n - 1;
            while (vlen && (p[n + 1 + vlen - 1] == ' ' || p[n + 1 + vlen - 1] == '\t'))
                vlen--;
            if (vlen + 1 > size)
                return false;
            memcpy(out, p + n + 1, vlen);
            out[vlen] = 0;
            return true;
        }
        p = end ? end + 1 : NULL;
    }
    return false;
}

/* "scheme://host[:port]" from @url's start, lower case, default port dropped. */
static int origin_of(const char *scheme, const char *hostport, size_t hp_len, char *out,
                     size_t size)
{
    const char *def = strcmp(scheme, "https") == 0 ? ":443" : ":80";
    size_t dl = strlen(def);
    int n;

    if (hp_len == 0)
        return -EINVAL;
    for (size_t i = 0; i < hp_len; i++)
        if (hostport[i] <= ' ' || hostport[i] == '/' || hostport[i] == '@' || hostport[i] == 0x7f)
            return -EINVAL;
    if (hp_len > dl && strncmp(hostport + hp_len - dl, def, dl) == 0)
        hp_len -= dl;
    n = snprintf(out, size, "%s://%.*s", scheme, (int)hp_len, hostport);
    if (n < 0 || (size_t)n >= size)
        return -EINVAL;
    for (char *p = out; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    return 0;
}

int br_expected_origin(const char *public_url, bool tls, const char *host, char *out, size_t size)
{
    if (public_url) {
        const char *sep = strstr(public_url, "://");
        char scheme[8];
        if (!sep || sep - public_url >= (ptrdiff_t)sizeof(scheme))
            return -EINVAL;
        snprintf(scheme, sizeof(scheme), "%.*s", (int)(sep - public_url), public_url);
        for (char *p = scheme; *p; p++)
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p - 'A' + 'a');
        sep += 3;
        return origin_of(scheme, sep, strcspn(sep, "/?#"), out, size);
    }
    if (!host)
        return -EINVAL;
    return origin_of(tls ? "https" : "http", host, strlen(host), out, size);
}

bool br_origin_matches(const char *origin, const char *expected)
{
    const char *sep = strstr(origin, "://");
    char norm[300], scheme[8];

    if (!sep || sep - origin >= (ptrdiff_t)sizeof(scheme) || strchr(sep + 3, '/'))
        return false;
    snprintf(scheme, sizeof(scheme), "%.*s", (int)(sep - origin), origin);
    for (char *p = scheme; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    if (origin_of(scheme, sep + 3, strlen(sep + 3), norm, sizeof(norm)) < 0)
        return false;
    return strcmp(norm, expected) == 0;
}

bool br_csrf_matches(const char *given, const char *stored)
{
    size_t n = strlen(stored);
    return given && *stored && strlen(given) == n && cm_memeq_const(given, stored, n);
}

void br_cookie_path(const char *public_url, char *out, size_t size)
{
    const char *sep = public_url ? strstr(public_url, "://") : NULL;
    const char *path = sep ? strchr(sep + 3, '/') : NULL;
    size_t len = path ? strcspn(path, "?#") : 0;

    /* Cookie attributes end at ';': a path holding one (or a control byte) is not used. */
    for (size_t i = 0; i < len; i++)
        if (path[i] == ';' || (unsigned char)path[i] < 0x21 || path[i] == 0x7f)
            len = 0;
    if (!len || len + 1 > size)
        snprintf(out, size, "/");
    else
        snprintf(out, size, "%.*s", (int)len, path);
}
