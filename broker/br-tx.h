/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "br-role.h"
#include "br-store.h"
#include "cm-db.h"
#include "cm-error.h"

/*
 * The one transaction runner (GNU Taler's TEH_DB_run_transaction): br_tx_run() opens the
 * write transaction, calls the callback, which returns at its first error, appends the call's
 * audit record, and commits — or rolls everything back. Callbacks use tx->db with the table
 * owners' functions and never begin, commit or reset anything themselves.
 */
typedef struct {
    BrStore *store;
    CmDb *db;
    const BrActor *actor;
    CmError *err;

    /* The call's audit record, appended by the runner just before it commits. */
    const char *action; /* NULL: the callback recorded what it did itself, or nothing */
    const char *object_type;
    int64_t object_id;
    const char *outcome; /* "ok" when NULL */
    char *detail;        /* compact JSON, owned */
    bool serial;         /* holds the store's write lock (br_store_write_serialize()) */
} BrTx;

typedef int (*BrTxFn)(BrTx *tx, void *ctx);

/**
 * br_tx_run:
 * Runs @fn(@tx, @ctx) inside one write transaction named @name (for the log) acting as @actor.
 * Returns: what @fn returned when it and the commit succeeded (>= 0), or a negative errno with
 * @err set; nothing of the transaction is kept then.
 */
int br_tx_run(BrStore *s, const char *name, const BrActor *actor, BrTxFn fn, void *ctx,
              CmError *err);

/**
 * br_tx_run_shared:
 * br_tx_run() in a shared write transaction (br_store_write_begin_shared()): on PostgreSQL
 * @fn runs beside the shared transactions of other @key, on every broker, and beside no other
 * writer; its audit records and the commit are serialized with everyone's. For work whose
 * conflicts all fall under @key (the metering ingest: one key per host). On SQLite br_tx_run().
 * Returns: as br_tx_run().
 */
int br_tx_run_shared(BrStore *s, const char *name, const BrActor *actor, int64_t key, BrTxFn fn,
                     void *ctx, CmError *err);

/**
 * br_tx_read:
 * Runs @fn inside one read transaction: every statement of @fn sees the same snapshot.
 * Returns: what @fn returned, or a negative errno with @err set.
 */
int br_tx_read(BrStore *s, const char *name, BrTxFn fn, void *ctx, CmError *err);

/**
 * br_tx_audit_set:
 * Names the audit record the runner appends for this transaction (@detail copied; NULL for
 * none). A later call replaces an earlier one.
 */
void br_tx_audit_set(BrTx *tx, const char *action, const char *object_type, int64_t object_id,
                     const char *detail);

/**
 * br_tx_audit:
 * Appends an audit record now, in this transaction (for a transaction that records several).
 * Returns: 0, or a negative errno with tx->err set.
 */
int br_tx_audit(BrTx *tx, const char *action, const char *object_type, int64_t object_id,
                const char *outcome, const char *detail);
