/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdint.h>

#include <json-c/json.h>

#include "br-tx.h"
#include "cm-time.h"

/*
 * The security and backup records of a system (Art. 9's security status): vulnerabilities,
 * incidents and backup attestations. The only file with SQL on those three tables.
 */
typedef enum {
    BR_SECURITY_VULNERABILITY,
    BR_SECURITY_INCIDENT,
    BR_SECURITY_BACKUP,
    BR_SECURITY_KIND_MAX,
} BrSecurityKind;

/* A record as given; times in cm_time_iso() form, NULL when absent. */
typedef struct {
    const char *severity, *title, *status, *description; /* vulnerabilities, incidents */
    const char *location, *sha256;                       /* backups */
    int64_t size_bytes;
    const char *at;     /* found_at, occurred_at, taken_at */
    const char *end_at; /* fixed_at, resolved_at */
} BrSecurityRecord;

/* What a change needs to know of a stored record; "" for what it does not have. */
typedef struct {
    int64_t system_id;
    char at[CM_TIME_ISO_LEN + 1];
    char status[16];
    char end_at[CM_TIME_ISO_LEN + 1];
} BrSecurityState;

/**
 * br_security_create:
 * Records @rec of @kind for system @system_id, recorded by the transaction's actor.
 * Returns: 0 and the new id in @ret_id, or a negative errno with tx->err set.
 */
int br_security_create(BrTx *tx, BrSecurityKind kind, int64_t system_id,
                       const BrSecurityRecord *rec, int64_t *ret_id);

/**
 * br_security_get:
 * Returns: 0 and record @id of @kind as its API document in @ret, or a negative errno with
 * @err set (-ENOENT "no vulnerability with id N").
 */
int br_security_get(CmDb *db, BrSecurityKind kind, int64_t id, json_object **ret, CmError *err);

/**
 * br_security_list:
 * Returns: 0 and one page of the records of @kind of system @system_id in @ret, or a negative
 * errno with @err set.
 */
int br_security_list(CmDb *db, BrSecurityKind kind, int64_t system_id, const BrPage *page,
                     json_object **ret, CmError *err);

/**
 * br_security_load:
 * Returns: 0 and the state of record @id of @kind in @ret, or a negative errno with @err set
 * (-ENOENT as br_security_get()).
 */
int br_security_load(CmDb *db, BrSecurityKind kind, int64_t id, BrSecurityState *ret, CmError *err);

/**
 * br_security_update:
 * A vulnerability's @status and fixed time @end_at, or an incident's resolution time @end_at
 * ("" or NULL: open).
 * Returns: 0, or a negative errno with tx->err set.
 */
int br_security_update(BrTx *tx, BrSecurityKind kind, int64_t id, const char *status,
                       const char *end_at);
