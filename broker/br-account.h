/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>

#include "br-password.h"
#include "br-tx.h"

/*
 * The accounts table: people and their roles, their API token's hash, their password's hash,
 * their e-mail address for notifications. The only file with SQL on `accounts`.
 */

/* Changes to an account; -1 (or email_set false) leaves a field as it is. */
typedef struct {
    int disabled;   /* 0, 1, or -1 */
    bool email_set; /* email given: a string, or NULL to clear it */
    const char *email;
    int email_notifications; /* 0, 1, or -1 */
} BrAccountFields;

/* What sign-in needs to know of an account. */
typedef struct {
    int64_t id;
    char name[128];
    BrRole role;
    int64_t department_id;
    bool disabled;
    char password_hash[BR_PASSWORD_HASH_LEN]; /* "" when it has none */
} BrAccountCreds;

/**
 * br_account_get:
 * Loads account @id as its API document (with has_password, email, email_notifications).
 * Returns: 0 and the document in @ret, -ENOENT with @err "not found", or another negative errno.
 */
int br_account_get(CmDb *db, int64_t id, json_object **ret, CmError *err);

/**
 * br_account_list:
 * One page of the accounts, of @role (NULL: any) and @department (0: any).
 * Returns: 0 and the array in @ret, or a negative errno with @err set.
 */
int br_account_list(CmDb *db, const char *role, int64_t department, const BrPage *page,
                    json_object **ret, CmError *err);

/**
 * br_account_create:
 * Adds an account (422 unknown_reference for a @department that does not exist, 409 duplicate
 * for a name in use) with the API token whose hash is @token_hash.
 * Returns: 0 and the new id in @ret_id, or a negative errno with tx->err set.
 */
int br_account_create(BrTx *tx, const char *name, const char *role, int64_t department,
                      const char *token_hash, const BrAccountFields *f, int64_t *ret_id);

/**
 * br_account_update:
 * Changes the given fields of account @id.
 * Returns: 0, -ENOENT when there is no such account, or another negative errno with tx->err.
 */
int br_account_update(BrTx *tx, int64_t id, const BrAccountFields *f);

/**
 * br_account_set_token:
 * Replaces the API token of account @id by the one whose hash is @token_hash.
 * Returns: 0, -ENOENT when there is no such account, or another negative errno with tx->err.
 */
int br_account_set_token(BrTx *tx, int64_t id, const char *token_hash);

/**
 * br_account_set_password:
 * Sets the password hash of account @id to @hash when the stored one still is @expected
 * (NULL: whatever it is), so that two changes racing cannot both win.
 * Returns: 0, -ENOENT (no such account), -ESTALE (it changed meanwhile, tx->err 409 conflict),
 * or another negative errno with tx->err set.
 */
int br_account_set_password(BrTx *tx, int64_t id, const char *hash, const char *expected);

/**
 * br_account_credentials:
 * Looks the account named @name up (exactly) for sign-in, or by @id when @name is NULL.
 * Returns: 1 and @ret filled, 0 when there is none, or a negative errno with @err set.
 */
int br_account_credentials(CmDb *db, const char *name, int64_t id, BrAccountCreds *ret,
                           CmError *err);

/**
 * br_account_whoami:
 * The document of the caller @actor: id, name, role, department_id and department_name,
 * has_password, email, email_notifications.
 * Returns: 0 and the document in @ret, or a negative errno with @err set.
 */
int br_account_whoami(CmDb *db, const BrActor *actor, json_object **ret, CmError *err);

/**
 * br_account_summary:
 * Who account @id is: {id, name, role, department_id, department_name}.
 * Returns: 0 and the document in @ret, -ENOENT with @err "not found", or another negative errno.
 */
int br_account_summary(CmDb *db, int64_t id, json_object **ret, CmError *err);

/**
 * br_account_check_enabled:
 * Returns: 0 when account @id exists and is enabled; -ENOENT (404) when it does not exist,
 * -EBUSY (409 account_disabled) when it is disabled, or another negative errno; @err set.
 */
int br_account_check_enabled(CmDb *db, int64_t id, CmError *err);

/* An account a notification goes to. */
typedef struct {
    int64_t id;
    char *email; /* NULL when it has none or opted out of e-mail */
} BrRecipient;

/**
 * br_account_recipients:
 * The enabled accounts a notification for @to (BR_TO_* of br-notification.h) reaches: the
 * reviewers, the vendors, those of @department, the consultant @consultant; never @exclude.
 * Returns: 0 with the array (free with br_recipients_free()) in @ret and its length in
 * @ret_n, or a negative errno with @err set.
 */
int br_account_recipients(CmDb *db, unsigned to, int64_t department, int64_t consultant,
                          int64_t exclude, BrRecipient **ret, size_t *ret_n, CmError *err);

/** br_recipients_free: frees @n recipients from br_account_recipients(). Accepts NULL. */
void br_recipients_free(BrRecipient *r, size_t n);

/**
 * br_account_any:
 * Returns: 1 when there is at least one account, 0 when there is none, or a negative errno
 * with @err set.
 */
int br_account_any(CmDb *db, CmError *err);

/**
 * br_account_by_token:
 * Looks up the enabled account whose API token's SHA-256 is @token_hash, as
 * br_account_credentials().
 * Returns: 1 and @ret filled, 0 when no enabled account has it, or a negative errno with @err.
 */
int br_account_by_token(CmDb *db, const char *token_hash, BrAccountCreds *ret, CmError *err);

/** br_account_creds_actor: makes @actor (id, name, role, department) the account of @creds. */
void br_account_creds_actor(const BrAccountCreds *creds, BrActor *actor);

/**
 * br_account_enabled_with_role:
 * Returns: 1 when account @id exists, is enabled and has @role; 0 when not; or a negative errno
 * with @err set.
 */
int br_account_enabled_with_role(CmDb *db, int64_t id, BrRole role, CmError *err);
