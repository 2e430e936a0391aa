/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Inside the database layer: the connection and statement structures that cm-db.c (the API
 * and the SQLite backend) and cm-db-pg.c (the PostgreSQL backend) share. Nothing outside
 * common/cm-db*.c includes this.
 */

#include <sqlite3.h>

#include "cm-db.h"

/* The PostgreSQL branches are laid out off the SQLite path. */
#define CM_UNLIKELY(x) __builtin_expect(!!(x), 0)

#define CM_DB_STMT_CACHE_SIZE 512 /* power of two; more distinct SQL strings than the code holds */

typedef struct CmPg CmPg;
typedef struct CmPgStmt CmPgStmt;

struct CmStmt {
    CmDb *db;
    const char *sql; /* the cache key; NULL for a free slot */
    sqlite3_stmt *stmt;
    CmPgStmt *pg; /* the PostgreSQL side; NULL on SQLite, which is all the hot path checks */
    int64_t changes;
};

struct CmDb {
    sqlite3 *db; /* NULL on PostgreSQL */
    CmPg *pg;    /* NULL on SQLite */
    CmStmt cache[CM_DB_STMT_CACHE_SIZE];
};

/*
 * The PostgreSQL backend (cm-db-pg.c). Each function is what the cm_db_* or cm_stmt_* of the
 * same name does on a PostgreSQL connection; cm-db.c calls them when db->pg (st->pg) is set.
 */
int cm_pg_open(const char *url, CmDbFlags flags, CmDb *db, CmError *err);
void cm_pg_close(CmDb *db);
int cm_pg_ready(CmDb *db, CmError *err);
int cm_pg_stmt_init(CmStmt *st, const char *sql, CmError *err);
void cm_pg_stmt_free(CmStmt *st);
void cm_pg_reset(CmStmt *st, bool clear_bindings);
void cm_pg_set_rows(CmStmt *st, CmDbRows flags);
int cm_pg_step(CmStmt *st, CmError *err);
int cm_pg_columns(CmStmt *st);
const char *cm_pg_name(CmStmt *st, int i);
CmDbType cm_pg_type(CmStmt *st, int i);
bool cm_pg_is_null(CmStmt *st, int i);
int64_t cm_pg_int(CmStmt *st, int i);
double cm_pg_double(CmStmt *st, int i);
const char *cm_pg_text(CmStmt *st, int i);
size_t cm_pg_bytes(CmStmt *st, int i);
const void *cm_pg_blob(CmStmt *st, int i);
int cm_pg_bind(CmStmt *st, int idx, CmDbType type, const void *v, size_t len);
int cm_pg_exec(CmDb *db, const char *sql, CmError *err);
int cm_pg_begin_immediate(CmDb *db, CmError *err);
int cm_pg_copy_in(CmDb *db, const char *sql, const char *data, size_t len, int64_t *ret_rows,
                  CmError *err);
int cm_pg_begin_shared(CmDb *db, int64_t key, CmError *err);
int cm_pg_serialize(CmDb *db, CmError *err);
int cm_pg_begin_read(CmDb *db, CmError *err);
int cm_pg_commit(CmDb *db, CmError *err);
void cm_pg_rollback(CmDb *db);
int cm_pg_migrate(CmDb *db, const char *const *migrations, const char *const *pg_migrations,
                  unsigned n, CmError *err);
