/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <pthread.h>
#include <stdbool.h>

#include <json-c/json.h>

#include "br-audit.h"
#include "cm-db.h"
#include "cm-error.h"

/*
 * The broker's database: one SQLite file in WAL mode, or a PostgreSQL database (cm-db.h).
 * Each thread gets its own connection (readers never wait for each other); writers take one
 * process-wide lock around cm_db_begin_immediate() (on PostgreSQL also an advisory lock that
 * serializes the writers of every broker), so the audit chain's head never races. On
 * PostgreSQL a shared write transaction (br_store_write_begin_shared(): the metering ingest)
 * runs beside the other shared ones and takes a process-wide lock of its own and the
 * database's serial lock only for its tail, the audit record and the commit
 * (br_store_write_serialize()).
 */
typedef struct BrStore BrStore;

/* One page of a list: rows with an id above @after, at most @limit of them, by id. */
typedef struct {
    int64_t limit;
    int64_t after;
} BrPage;

/**
 * br_store_get_json:
 * Runs @sql (static, its only parameter ?1 = @id) and turns its row into JSON
 * (cm_stmt_row_json()): the document of one object.
 * Returns: 0 and the document in @ret; -ENOENT with @err 404 "no @what with id @id" when there
 * is no row; or another negative errno with @err set.
 */
int br_store_get_json(CmDb *db, const char *sql, const char *what, int64_t id, json_object **ret,
                      CmError *err);

/**
 * br_store_exec_changed:
 * Runs @st (an UPDATE of the row @id) to its end.
 * Returns: 0 when it changed a row; -ENOENT with @err 404 "no @what with id @id" when it
 * changed none; or the negative errno of cm_stmt_exec() (-EEXIST on a constraint).
 */
int br_store_exec_changed(CmStmt *st, const char *what, int64_t id, CmError *err);

/**
 * br_store_open:
 * Opens the database @url ("sqlite:PATH", a plain SQLite path, or "postgresql://...", see
 * cm_db_open_url()), applies pending migrations and loads the audit key from @audit_key_path.
 * Returns: 0 and the store in @ret, or a negative errno with @err set.
 */
int br_store_open(const char *url, const char *audit_key_path, BrStore **ret, CmError *err);

/** br_store_free: closes every thread's connection. Accepts NULL. Returns: NULL. */
BrStore *br_store_free(BrStore *s);
CM_DEFINE_TRIVIAL_CLEANUP_FUNC(BrStore *, br_store_free)

/**
 * br_store_db:
 * Returns: this thread's connection, opening it on first use; NULL with @err set on failure.
 */
CmDb *br_store_db(BrStore *s, CmError *err);

/**
 * br_store_write_begin:
 * Takes the write lock and opens an immediate transaction on this thread's connection.
 * Returns: 0 and the connection in @ret_db, or a negative errno with @err set (lock released).
 */
int br_store_write_begin(BrStore *s, CmDb **ret_db, CmError *err);

/**
 * br_store_write_begin_shared:
 * Opens a write transaction on this thread's connection that, on PostgreSQL, runs beside
 * other shared ones of other @key (cm_db_begin_shared()) and holds no process-wide lock yet:
 * @ret_serial false. On SQLite it is br_store_write_begin(): @ret_serial true. Before its
 * audit record and its commit the caller calls br_store_write_serialize(); it ends with
 * br_store_write_commit_shared() (serialized) or br_store_write_abort_shared().
 * Returns: 0 and the connection in @ret_db, or a negative errno with @err set.
 */
int br_store_write_begin_shared(BrStore *s, int64_t key, CmDb **ret_db, bool *ret_serial,
                                CmError *err);

/**
 * br_store_write_serialize:
 * In a shared write transaction not yet serialized (*@serial false): takes the store's serial
 * lock and the database's (cm_db_serialize()), after which the audit chain's head is this
 * transaction's until it ends; sets *@serial. Does nothing when *@serial is set.
 * Returns: 0, or a negative errno with @err set (then abort with *@serial as it is).
 */
int br_store_write_serialize(BrStore *s, CmDb *db, bool *serial, CmError *err);

/**
 * br_store_write_commit_shared:
 * br_store_write_commit() for a shared write transaction, serialized.
 * Returns: 0, or a negative errno with @err set.
 */
int br_store_write_commit_shared(BrStore *s, CmDb *db, CmError *err);

/** br_store_write_abort_shared: rolls back and releases what @serial says is held. */
void br_store_write_abort_shared(BrStore *s, CmDb *db, bool serial);

/**
 * br_store_write_commit:
 * Commits (durably: synchronous=FULL) and releases the write lock. On failure the transaction
 * is rolled back. Returns: 0, or a negative errno with @err set.
 */
int br_store_write_commit(BrStore *s, CmDb *db, CmError *err);

/** br_store_write_abort: rolls back and releases the write lock. */
void br_store_write_abort(BrStore *s, CmDb *db);

/**
 * br_store_set_anchor_every:
 * The audit anchor (STATE/audit.anchor) follows the chain's head every @every records and at
 * shutdown (default 32).
 */
void br_store_set_anchor_every(BrStore *s, unsigned every);

/** br_store_anchor_path: Returns: the audit anchor's path (STATE/audit.anchor). */
const char *br_store_anchor_path(BrStore *s);

/** br_store_audit_key: Returns: the audit chain's key. */
const uint8_t *br_store_audit_key(BrStore *s);

/** br_store_generation: Returns: a counter bumped by every commit (for caches). */
uint64_t br_store_generation(BrStore *s);

/** br_store_url: Returns: the database's URL (or SQLite path) as opened. */
const char *br_store_url(BrStore *s);

/** br_store_migrations: Returns: the migration list (SQLite's text) and its length in @ret_n. */
const char *const *br_store_migrations(unsigned *ret_n);

/*
 * Called by br_store_audit() after each record is appended, in the same transaction: what
 * must happen atomically with every audited change (notifications) hangs here. A failure
 * fails the transaction.
 */
typedef int (*BrAuditHook)(void *ctx, CmDb *db, const BrActor *actor, const BrAuditEntry *e,
                           CmError *err);

/** br_store_set_audit_hook: installs @hook (NULL: none); call before serving. */
void br_store_set_audit_hook(BrStore *s, BrAuditHook hook, void *ctx);

/**
 * br_store_pg_migrations:
 * Returns: as many entries as br_store_migrations(): for each version the PostgreSQL text to
 * run instead of the translation of SQLite's (cm_db_dialect_ddl()), or NULL to translate.
 */
const char *const *br_store_pg_migrations(void);

/**
 * br_store_audit:
 * Appends an audit record inside the current write transaction on @db.
 * Returns: 0, or a negative errno with @err set.
 */
int br_store_audit(BrStore *s, CmDb *db, const BrActor *actor, const char *action,
                   const char *object_type, int64_t object_id, const char *outcome,
                   const char *detail, CmError *err);
