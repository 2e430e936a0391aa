/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "br-account.h"
#include "br-department.h"
#include "cm-time.h"

/* Who an account is: the start of every document of it. */
#define SUMMARY_COLUMNS                                                                            \
    "a.id, a.name, a.role, a.department_id,"                                                       \
    " (SELECT d.name FROM departments d WHERE d.id = a.department_id) AS department_name"

#define ACCOUNT_COLUMNS                                                                            \
    SUMMARY_COLUMNS                                                                                \
    ", a.disabled AS \"disabled:bool\", a.created_at, a.token_created_at,"                         \
    " a.password_hash IS NOT NULL AS \"has_password:bool\", a.password_changed_at, a.email,"       \
    " a.email_notifications AS \"email_notifications:bool\""

static int not_found(CmError *err, int64_t id)
{
    return cm_error_set(err, CM_ERROR_NOT_FOUND, "", "no account with id %lld", (long long)id);
}

int br_account_get(CmDb *db, int64_t id, json_object **ret, CmError *err)
{
    return br_store_get_json(db, "SELECT " ACCOUNT_COLUMNS " FROM accounts a WHERE a.id = ?",
                             "account", id, ret, err);
}

int br_account_whoami(CmDb *db, const BrActor *actor, json_object **ret, CmError *err)
{
    return br_store_get_json(db,
                             "SELECT " SUMMARY_COLUMNS ","
                             " a.password_hash IS NOT NULL AS \"has_password:bool\", a.email,"
                             " a.email_notifications AS \"email_notifications:bool\""
                             " FROM accounts a WHERE a.id = ?",
                             "account", actor->account_id, ret, err);
}

int br_account_summary(CmDb *db, int64_t id, json_object **ret, CmError *err)
{
    return br_store_get_json(db, "SELECT " SUMMARY_COLUMNS " FROM accounts a WHERE a.id = ?",
                             "account", id, ret, err);
}

int br_account_list(CmDb *db, const char *role, int64_t department, const BrPage *page,
                    json_object **ret, CmError *err)
{
    _cleanup_stmt_ CmStmt *st =
        cm_db_prepare(db,
                      "SELECT " ACCOUNT_COLUMNS " FROM accounts a WHERE a.id > ?1"
                      " AND (a.role = ?2 OR ?2 IS NULL) AND (?3 = 0 OR a.department_id = ?3)"
                      " ORDER BY a.id LIMIT ?4",
                      err);
    if (!st)
        return -EIO;
    CM_DB_BIND(st, page->after, role, department, page->limit);
    return cm_stmt_rows_json(st, ret, err);
}

int br_account_create(BrTx *tx, const char *name, const char *role, int64_t department,
                      const char *token_hash, const BrAccountFields *f, int64_t *ret_id)
{
    char at[CM_TIME_ISO_LEN + 1];
    _cleanup_stmt_ CmStmt *st = NULL;
    int r;

    if (department > 0) {
        r = br_department_check_reference(tx->db, department, tx->err);
        if (r < 0)
            return r;
    }
    cm_time_iso(cm_now_ms(), at);
    st = cm_db_prepare(tx->db,
                       "INSERT INTO accounts(name, role, department_id, token_hash, created_at,"
                       " token_created_at, email, email_notifications)"
                       " VALUES (?1, ?2, nullif(?3, 0), ?4, ?5, ?5, ?6, coalesce(?7, 1))"
                       " RETURNING id",
                       tx->err);
    if (!st)
        return -EIO;
    CM_DB_BIND(st, name, role, department, token_hash, at, f->email_set ? f->email : NULL);
    if (f->email_notifications >= 0)
        cm_stmt_bind_i64(st, 7, f->email_notifications);
    r = cm_stmt_step(st, tx->err);
    if (r == -EEXIST)
        return cm_error_set_code(tx->err, CM_ERROR_CONFLICT, "duplicate", "/name",
                                 "an account named '%s' already exists", name);
    if (r < 0)
        return r;
    *ret_id = cm_stmt_int(st, 0);
    return 0;
}

int br_account_update(BrTx *tx, int64_t id, const BrAccountFields *f)
{
    _cleanup_stmt_ CmStmt *st =
        cm_db_prepare(tx->db,
                      "UPDATE accounts"
                      " SET disabled = CASE WHEN ?1 < 0 THEN disabled ELSE ?1 END,"
                      " email = CASE WHEN ?2 <> 0 THEN ?3 ELSE email END,"
                      " email_notifications = CASE WHEN ?4 < 0 THEN email_notifications"
                      " ELSE ?4 END"
                      " WHERE id = ?5",
                      tx->err);

    if (!st)
        return -EIO;
    CM_DB_BIND(st, f->disabled, f->email_set, f->email, f->email_notifications, id);
    return br_store_exec_changed(st, "account", id, tx->err);
}

int br_account_set_token(BrTx *tx, int64_t id, const char *token_hash)
{
    char at[CM_TIME_ISO_LEN + 1];
    _cleanup_stmt_ CmStmt *st = cm_db_prepare(
        tx->db, "UPDATE accounts SET token_hash = ?, token_created_at = ? WHERE id = ?", tx->err);

    if (!st)
        return -EIO;
    cm_time_iso(cm_now_ms(), at);
    CM_DB_BIND(st, token_hash, at, id);
    return br_store_exec_changed(st, "account", id, tx->err);
}

int br_account_set_password(BrTx *tx, int64_t id, const char *hash, const char *expected)
{
    char at[CM_TIME_ISO_LEN + 1];
    _cleanup_stmt_ CmStmt *st =
        cm_db_prepare(tx->db,
                      "UPDATE accounts SET password_hash = ?1, password_changed_at = ?2"
                      " WHERE id = ?3 AND (password_hash = ?4 OR ?4 IS NULL)",
                      tx->err);
    int r;

    if (!st)
        return -EIO;
    cm_time_iso(cm_now_ms(), at);
    CM_DB_BIND(st, hash, at, id, expected);
    r = cm_stmt_exec(st, tx->err);
    if (r < 0)
        return r;
    if (cm_stmt_changes(st) == 1)
        return 0;
    if (!expected)
        return not_found(tx->err, id);
    cm_error_set_code(tx->err, CM_ERROR_CONFLICT, "conflict", "",
                      "the password was changed meanwhile; try again");
    return -ESTALE;
}

#define CREDS_COLUMNS                                                                              \
    "id, name, role, coalesce(department_id, 0), disabled, coalesce(password_hash, '')"

/* Steps @st (selecting CREDS_COLUMNS) once into @ret. Returns: 1, 0 for no row, or < 0. */
static int creds_step(CmStmt *st, BrAccountCreds *ret, CmError *err)
{
    int r = cm_stmt_step(st, err), role;

    if (r <= 0)
        return r;
    role = br_role_from_string(cm_stmt_text(st, 2));
    if (role < 0)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "account has an unknown role");
    *ret = (BrAccountCreds){
        .id = cm_stmt_int(st, 0),
        .role = (BrRole)role,
        .department_id = cm_stmt_int(st, 3),
        .disabled = cm_stmt_int(st, 4) != 0,
    };
    snprintf(ret->name, sizeof(ret->name), "%s", cm_stmt_text(st, 1));
    snprintf(ret->password_hash, sizeof(ret->password_hash), "%s", cm_stmt_text(st, 5));
    return 1;
}

int br_account_credentials(CmDb *db, const char *name, int64_t id, BrAccountCreds *ret,
                           CmError *err)
{
    _cleanup_stmt_ CmStmt *st =
        cm_db_prepare(db,
                      "SELECT " CREDS_COLUMNS " FROM accounts"
                      " WHERE (name = ?1 AND ?1 IS NOT NULL) OR (?1 IS NULL AND id = ?2)",
                      err);
    if (!st)
        return -EIO;
    CM_DB_BIND(st, name, id);
    return creds_step(st, ret, err);
}

int br_account_by_token(CmDb *db, const char *token_hash, BrAccountCreds *ret, CmError *err)
{
    _cleanup_stmt_ CmStmt *st = cm_db_prepare(
        db, "SELECT " CREDS_COLUMNS " FROM accounts WHERE token_hash = ? AND disabled = 0", err);
    if (!st)
        return -EIO;
    CM_DB_BIND(st, token_hash);
    return creds_step(st, ret, err);
}

void br_account_creds_actor(const BrAccountCreds *creds, BrActor *actor)
{
    actor->account_id = creds->id;
    snprintf(actor->name, sizeof(actor->name), "%s", creds->name);
    actor->role = creds->role;
    actor->department_id = creds->department_id;
}

int br_account_check_enabled(CmDb *db, int64_t id, CmError *err)
{
    _cleanup_stmt_ CmStmt *st =
        cm_db_prepare(db, "SELECT disabled FROM accounts WHERE id = ?", err);
    int r;

    if (!st)
        return -EIO;
    CM_DB_BIND(st, id);
    r = cm_stmt_step(st, err);
    if (r < 0)
        return r;
    if (r == 0)
        return not_found(err, id);
    if (cm_stmt_int(st, 0))
        return cm_error_set_code(err, CM_ERROR_CONFLICT, "account_disabled", "",
                                 "account %lld is disabled", (long long)id);
    return 0;
}

int br_account_recipients(CmDb *db, unsigned to, int64_t department, int64_t consultant,
                          int64_t exclude, BrRecipient **ret, size_t *ret_n, CmError *err)
{
    /* The bits are those of br-notification.h: reviewers 1, department 2, consultant 4,
     * vendors 8. */
    _cleanup_stmt_ CmStmt *st =
        cm_db_prepare(db,
                      "SELECT id, CASE WHEN email_notifications <> 0 THEN email END FROM accounts"
                      " WHERE disabled = 0 AND id <> ?5 AND ("
                      " ((?1 & 1) <> 0 AND role = 'reviewer')"
                      " OR ((?1 & 8) <> 0 AND role = 'vendor')"
                      " OR ((?1 & 2) <> 0 AND role = 'department' AND department_id = ?2)"
                      " OR ((?1 & 4) <> 0 AND id = ?3 AND role = 'consultant'))"
                      " ORDER BY id LIMIT ?4",
                      err);
    BrRecipient *list = NULL;
    size_t n = 0, cap = 0;
    int r;

    if (!st)
        return -EIO;
    CM_DB_BIND(st, (int64_t)to, department, consultant, (int64_t)10000, exclude);
    while ((r = cm_stmt_step(st, err)) > 0) {
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            BrRecipient *nl = realloc(list, ncap * sizeof(*nl));
            if (!nl) {
                r = cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
                break;
            }
            list = nl;
            cap = ncap;
        }
        list[n].id = cm_stmt_int(st, 0);
        list[n].email = cm_stmt_is_null(st, 1) ? NULL : cm_stmt_strdup(st, 1);
        n++;
    }
    if (r < 0) {
        br_recipients_free(list, n);
        return r;
    }
    *ret = list;
    *ret_n = n;
    return 0;
}

void br_recipients_free(BrRecipient *r, size_t n)
{
    for (size_t i = 0; r && i < n; i++)
        free(r[i].email);
    free(r);
}

int br_account_any(CmDb *db, CmError *err)
{
    _cleanup_stmt_ CmStmt *st =
        cm_db_prepare(db, "SELECT EXISTS (SELECT 1 FROM accounts) AS \"any:bool\"", err);
    int r;

    if (!st)
        return -EIO;
    r = cm_stmt_step(st, err);
    if (r <= 0)
        return r < 0 ? r : cm_error_set(err, CM_ERROR_INTERNAL, "", "no answer");
    return cm_stmt_int(st, 0) != 0;
}

int br_account_enabled_with_role(CmDb *db, int64_t id, BrRole role, CmError *err)
{
    _cleanup_stmt_ CmStmt *st =
        cm_db_prepare(db, "SELECT 1 FROM accounts WHERE id = ? AND role = ? AND disabled = 0", err);
    if (!st)
        return -EIO;
    CM_DB_BIND(st, id, br_role_to_string(role));
    return cm_stmt_step(st, err);
}
