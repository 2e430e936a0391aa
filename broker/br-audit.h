/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "br-role.h"
#include "cm-db.h"
#include "cm-error.h"

#define BR_AUDIT_KEY_LEN 32

/*
 * The audit trail: one record per state-changing call, appended in the same transaction as the
 * change. Each record's hash is an HMAC-SHA256, keyed by a secret kept outside the database
 * (STATE/audit.key), over the previous record's hash and this record's fields: editing,
 * deleting or re-chaining rows with SQL alone is detected by br_audit_verify().
 */
typedef struct {
    const char *action;      /* "request.submit", "account.create", ... */
    const char *object_type; /* "request", "department", ... */
    int64_t object_id;
    const char *outcome; /* "ok", or the state the object reached */
    const char *detail;  /* compact JSON with the specifics, or NULL */
} BrAuditEntry;

/*
 * The chain's head as last written outside the database (STATE/audit.anchor, and the log):
 * the trail must still hold record `records` with hash `head_hash`, so that removing records
 * from its end, all of them included, is caught even when the head row (audit_head) is
 * lowered too.
 */
typedef struct {
    int64_t records; /* the head record's seq (records are numbered 1, 2, ...) */
    char head_hash[65];
    char at[32]; /* when it was written, ISO 8601 */
} BrAuditAnchor;

typedef struct {
    bool ok;
    int64_t records;   /* how many records were checked */
    int64_t first_bad; /* seq of the first record that fails, 0 when ok */
    char reason[256];
    char head_hash[65]; /* the hash of the last good record */
} BrAuditVerdict;

/**
 * br_audit_append:
 * Appends a record for @actor doing @e. Must run inside the caller's write transaction.
 * Returns: 0, or a negative errno with @err set.
 */
int br_audit_append(CmDb *db, const uint8_t key[BR_AUDIT_KEY_LEN], const BrActor *actor,
                    const BrAuditEntry *e, CmError *err);

/**
 * br_audit_append_head:
 * As br_audit_append(), and the record's seq and hash in @ret_head (when not NULL).
 * Returns: 0, or a negative errno with @err set.
 */
int br_audit_append_head(CmDb *db, const uint8_t key[BR_AUDIT_KEY_LEN], const BrActor *actor,
                         const BrAuditEntry *e, BrAuditAnchor *ret_head, CmError *err);

/**
 * br_audit_verify:
 * Walks the whole chain in order and checks sequence, links and keyed hashes, that no record
 * after the last one was removed (the head row audit_head) and, with @anchor, that
 * the trail still holds the anchored head (record @anchor->records with its hash). Run it in a
 * read transaction (br_tx_read()) for one snapshot of the trail.
 * Returns: 0 with the verdict in @ret (which may say the chain is broken), or a negative errno
 * with @err set when the database could not be read.
 */
int br_audit_verify(CmDb *db, const uint8_t key[BR_AUDIT_KEY_LEN], const BrAuditAnchor *anchor,
                    BrAuditVerdict *ret, CmError *err);

/**
 * br_audit_head:
 * Reads the chain's last record (@ret->records 0 for an empty trail), inside the caller's
 * transaction if any. Returns: 0, or a negative errno with @err set.
 */
int br_audit_head(CmDb *db, BrAuditAnchor *ret, CmError *err);

/**
 * br_audit_holds:
 * Whether the trail still holds @a's head record with its hash (true for an anchor of 0
 * records). Returns: 1 or 0, or a negative errno with @err set.
 */
int br_audit_holds(CmDb *db, const BrAuditAnchor *a, CmError *err);

/**
 * br_audit_anchor_write:
 * Writes @a to @path (JSON, keyed by an HMAC so that it cannot be edited without the key)
 * atomically and durably: a temporary file, fsync, rename, fsync of the folder.
 * Returns: 0, or a negative errno with @err set.
 */
int br_audit_anchor_write(const char *path, const uint8_t key[BR_AUDIT_KEY_LEN],
                          const BrAuditAnchor *a, CmError *err);

/**
 * br_audit_anchor_read:
 * Reads the anchor at @path into @ret.
 * Returns: 0; -ENOENT when there is none; -EBADMSG with @err set when it is damaged or its
 * HMAC does not match (edited, or written with another key); another negative errno.
 */
int br_audit_anchor_read(const char *path, const uint8_t key[BR_AUDIT_KEY_LEN], BrAuditAnchor *ret,
                         CmError *err);

/* What a list of the trail is narrowed to; NULL and 0 mean any. */
typedef struct {
    const char *object_type;
    int64_t object_id;
    const char *action;
    const char *account; /* the account's name as recorded */
    const char *from;    /* ISO times: at >= from and at < to */
    const char *to;
    int64_t after; /* seq cursor */
    int64_t limit;
} BrAuditFilter;

/**
 * br_audit_list:
 * The records matching @f, by seq, as their API documents.
 * Returns: 0 and the array in @ret, or a negative errno with @err set.
 */
int br_audit_list(CmDb *db, const BrAuditFilter *f, struct json_object **ret, CmError *err);

/**
 * br_audit_key_load:
 * Reads the key from @path, creating it (0600, 256 random bits) when @create and it is absent.
 * Returns: 0, or a negative errno with @err set.
 */
int br_audit_key_load(const char *path, bool create, uint8_t key[BR_AUDIT_KEY_LEN], CmError *err);

/* A record's hashed fields, in the order they are hashed (prev_hash first). */
typedef struct {
    const char *prev_hash;
    int64_t seq;
    const char *at;
    int64_t account_id;
    const char *account_name, *role;
    int64_t department_id;
    const char *action, *object_type;
    int64_t object_id;
    const char *outcome, *request_id, *client, *detail;
} BrAuditRecord;

/**
 * br_audit_record_hash:
 * Computes the keyed hash of @rec (exposed for tests and the verifier) into @out.
 * Returns: 0 or -EIO.
 */
int br_audit_record_hash(const uint8_t key[BR_AUDIT_KEY_LEN], const BrAuditRecord *rec,
                         char out[65]);

/**
 * br_audit_record_of_row:
 * The record in a row of "SELECT seq, at, account_id, account_name, role, department_id,
 * action, object_type, object_id, outcome, request_id, client, detail, ..." linked to
 * @prev_hash; its strings point into @st's row.
 */
BrAuditRecord br_audit_record_of_row(CmStmt *st, const char *prev_hash);
