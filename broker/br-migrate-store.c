/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Copying an SQLite state to PostgreSQL (br-migrate-store.h). The tables are not listed here:
 * they are read from the source's catalogue, so a table a later migration adds is copied
 * without a change to this file, and one whose columns differ between the two is refused.
 */
#include "br-migrate-store.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "br-store.h"
#include "cm-cleanup.h"
#include "cm-crypto.h"
#include "cm-db.h"
#include "cm-json.h"
#include "cm-log.h"
#include "cm-util.h"

/* Parameters of one INSERT: PostgreSQL takes at most 65535, and larger batches gain nothing. */
#define BATCH_PARAMS 20000
#define BATCH_ROWS 500
/* Tables with at least this many rows report their progress every as many rows. */
#define PROGRESS_ROWS 100000

typedef struct {
    char *name;
    char **cols;
    size_t n_cols;
    char *pk; /* the single INTEGER primary key column, or NULL */
    char **deps;
    size_t n_deps;
    bool placed; /* in the foreign-key order already */
    /*
     * The table's statements. cm_db_prepare() keys its cache by the text's address, so these
     * texts live until both connections are closed (migration_clear()): no other text can
     * take their address while a connection still caches them.
     */
    char *sql_count, *sql_select, *sql_insert_full, *sql_insert_rest, *sql_max;
    size_t batch, rest;
} Table;

typedef struct {
    CmDb *src, *dst;
    Table *tables; /* in foreign-key order once ordered */
    size_t n_tables;
    FILE *progress;
} Migration;

static void table_clear(Table *t)
{
    free(t->name);
    for (size_t i = 0; i < t->n_cols; i++)
        free(t->cols[i]);
    free(t->cols);
    free(t->pk);
    for (size_t i = 0; i < t->n_deps; i++)
        free(t->deps[i]);
    free(t->deps);
    free(t->sql_count);
    free(t->sql_select);
    free(t->sql_insert_full);
    free(t->sql_insert_rest);
    free(t->sql_max);
}

static void migration_clear(Migration *m)
{
    /* The connections first: their caches hold the tables' texts. */
    m->src = cm_db_close(m->src);
    m->dst = cm_db_close(m->dst);
    for (size_t i = 0; i < m->n_tables; i++)
        table_clear(&m->tables[i]);
    free(m->tables);
    m->tables = NULL;
    m->n_tables = 0;
}

void br_migrate_report_clear(BrMigrateReport *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_tables; i++)
        free(r->tables[i].name);
    free(r->tables);
    *r = (BrMigrateReport){0};
}

static int strv_push(char ***v, size_t *n, const char *s)
{
    char **nv = realloc(*v, (*n + 1) * sizeof(char *));
    if (!nv)
        return -ENOMEM;
    *v = nv;
    nv[*n] = strdup(s);
    if (!nv[*n])
        return -ENOMEM;
    (*n)++;
    return 0;
}

static bool strv_has(char **v, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (cm_streq(v[i], s))
            return true;
    return false;
}

static int no_memory(CmError *err)
{
    return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
}

/* "a", "b", "c": the column list, each name quoted. */
static char *column_list(const Table *t)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);

    if (!f)
        return NULL;
    for (size_t i = 0; i < t->n_cols; i++)
        fprintf(f, "%s\"%s\"", i ? ", " : "", t->cols[i]);
    if (fclose(f) != 0) {
        free(text);
        return NULL;
    }
    return text;
}

/* INSERT INTO "t" (cols) VALUES (?, ?), (?, ?) ... for @rows rows. */
static char *insert_text(const Table *t, const char *cols, size_t rows)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);

    if (!f)
        return NULL;
    fprintf(f, "INSERT INTO \"%s\" (%s) VALUES ", t->name, cols);
    for (size_t r = 0; r < rows; r++) {
        fputs(r ? ", (" : "(", f);
        for (size_t c = 0; c < t->n_cols; c++)
            fputs(c ? ", ?" : "?", f);
        fputc(')', f);
    }
    if (fclose(f) != 0) {
        free(text);
        return NULL;
    }
    return text;
}

static int table_texts(Table *t, CmError *err)
{
    _cleanup_free_ char *cols = column_list(t);

    if (!cols)
        return no_memory(err);
    t->batch = BATCH_PARAMS / t->n_cols;
    if (t->batch > BATCH_ROWS)
        t->batch = BATCH_ROWS;
    if (t->batch == 0)
        t->batch = 1;
    t->sql_count = cm_strdup_printf("SELECT count(*) FROM \"%s\"", t->name);
    if (t->pk)
        t->sql_select =
            cm_strdup_printf("SELECT %s FROM \"%s\" ORDER BY \"%s\"", cols, t->name, t->pk);
    else
        t->sql_select = cm_strdup_printf("SELECT %s FROM \"%s\"", cols, t->name);
    t->sql_insert_full = insert_text(t, cols, t->batch);
    if (!t->sql_count || !t->sql_select || !t->sql_insert_full)
        return no_memory(err);
    return 0;
}

/* A name this file puts between double quotes: the broker's are lower-case snake_case. */
static bool name_plain(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_'))
            return false;
    return true;
}

/* Every table of the source with its columns, primary key and the tables it refers to. */
static int load_tables(Migration *m, CmError *err)
{
    _cleanup_stmt_ CmStmt *st =
        cm_db_prepare(m->src,
                      "SELECT name AS name FROM sqlite_master WHERE type = 'table'"
                      " AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name",
                      err);
    int r;

    if (!st)
        return -EIO;
    while ((r = cm_stmt_step(st, err)) > 0) {
        Table *nt = realloc(m->tables, (m->n_tables + 1) * sizeof(Table));
        if (!nt)
            return no_memory(err);
        m->tables = nt;
        m->tables[m->n_tables] = (Table){.name = cm_stmt_strdup(st, 0)};
        m->n_tables++;
        if (!m->tables[m->n_tables - 1].name)
            return no_memory(err);
    }
    if (r < 0)
        return r;

    for (size_t i = 0; i < m->n_tables; i++) {
        Table *t = &m->tables[i];
        int n_pk = 0;
        bool pk_integer = false;

        if (!name_plain(t->name))
            return cm_error_set(err, CM_ERROR_INVALID, "", "table name \"%s\" is not the broker's",
                                t->name);
        {
            _cleanup_stmt_ CmStmt *c = cm_db_prepare(
                m->src,
                "SELECT name AS name, upper(type) AS type, pk AS pk FROM pragma_table_info(?1)"
                " ORDER BY cid",
                err);
            if (!c)
                return -EIO;
            if (CM_DB_BIND(c, t->name) < 0)
                return cm_error_set(err, CM_ERROR_INTERNAL, "", "cannot bind");
            while ((r = cm_stmt_step(c, err)) > 0) {
                const char *name = cm_stmt_text(c, 0);
                if (!name_plain(name))
                    return cm_error_set(err, CM_ERROR_INVALID, "",
                                        "column %s.\"%s\" is not the broker's", t->name, name);
                if (strv_push(&t->cols, &t->n_cols, name) < 0)
                    return no_memory(err);
                if (cm_stmt_int(c, 2) > 0) {
                    n_pk++;
                    pk_integer = cm_streq(cm_stmt_text(c, 1), "INTEGER");
                    free(t->pk);
                    t->pk = strdup(name);
                    if (!t->pk)
                        return no_memory(err);
                }
            }
            if (r < 0)
                return r;
        }
        if (n_pk != 1 || !pk_integer) {
            free(t->pk);
            t->pk = NULL;
        }
        {
            _cleanup_stmt_ CmStmt *c = cm_db_prepare(
                m->src, "SELECT DISTINCT \"table\" AS name FROM pragma_foreign_key_list(?1)", err);
            if (!c)
                return -EIO;
            if (CM_DB_BIND(c, t->name) < 0)
                return cm_error_set(err, CM_ERROR_INTERNAL, "", "cannot bind");
            while ((r = cm_stmt_step(c, err)) > 0) {
                /* A table that refers to itself needs no order for that. */
                if (cm_streq(cm_stmt_text(c, 0), t->name))
                    continue;
                if (strv_push(&t->deps, &t->n_deps, cm_stmt_text(c, 0)) < 0)
                    return no_memory(err);
            }
            if (r < 0)
                return r;
        }
        if (t->n_cols == 0)
            return cm_error_set(err, CM_ERROR_INVALID, "", "table %s has no columns", t->name);
        r = table_texts(t, err);
        if (r < 0)
            return r;
    }
    return 0;
}

static bool table_placed(const Migration *m, const char *name)
{
    for (size_t i = 0; i < m->n_tables; i++)
        if (cm_streq(m->tables[i].name, name))
            return m->tables[i].placed;
    return true; /* not a table of the source: nothing to wait for */
}

/* Orders the tables so that each comes after every table it refers to (by name otherwise). */
static int order_tables(Migration *m, CmError *err)
{
    _cleanup_free_ Table *ordered = calloc(m->n_tables ? m->n_tables : 1, sizeof(Table));
    size_t done = 0;

    if (!ordered)
        return no_memory(err);
    while (done < m->n_tables) {
        size_t before = done;
        for (size_t i = 0; i < m->n_tables; i++) {
            Table *t = &m->tables[i];
            bool ready = !t->placed;
            for (size_t d = 0; ready && d < t->n_deps; d++)
                ready = table_placed(m, t->deps[d]);
            if (ready) {
                t->placed = true;
                ordered[done++] = *t;
            }
        }
        if (done == before)
            return cm_error_set(err, CM_ERROR_INTERNAL, "",
                                "the tables' foreign keys form a cycle; cannot order the copy");
    }
    memcpy(m->tables, ordered, m->n_tables * sizeof(Table));
    return 0;
}

static int read_int(CmDb *db, const char *sql, const char *arg, int64_t *ret, CmError *err)
{
    _cleanup_stmt_ CmStmt *st = cm_db_prepare(db, sql, err);
    int r;

    if (!st)
        return -EIO;
    if (arg && CM_DB_BIND(st, arg) < 0)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "cannot bind");
    r = cm_stmt_step(st, err);
    if (r < 0)
        return r;
    *ret = r > 0 ? cm_stmt_int(st, 0) : 0;
    return 0;
}

/* The source: an existing SQLite file of the broker, brought to this program's version. */
static int open_source(Migration *m, const char *from, BrMigrateReport *report, CmError *err)
{
    const char *path = strncmp(from, "sqlite:", 7) == 0 ? from + 7 : from;
    const char *const *migrations;
    int64_t version;
    unsigned n;
    int r;

    if (strncmp(from, "postgres", 8) == 0)
        return cm_error_set(err, CM_ERROR_INVALID, "from",
                            "--from must be an SQLite database (sqlite:PATH), not PostgreSQL");
    if (access(path, R_OK | W_OK) < 0) {
        cm_error_set(err, CM_ERROR_NOT_FOUND, "from", "source %s: %s", path, strerror(errno));
        return -ENOENT;
    }
    r = cm_db_open_url(from, CM_DB_READWRITE, &m->src, err);
    if (r < 0)
        return r;
    if (cm_db_backend(m->src) != CM_DB_SQLITE)
        return cm_error_set(err, CM_ERROR_INVALID, "from", "--from must be an SQLite database");
    r = read_int(m->src, "PRAGMA user_version", NULL, &version, err);
    if (r < 0)
        return r;
    migrations = br_store_migrations(&n);
    report->source_version = (unsigned)version;
    report->version = n;
    if (version == 0)
        return cm_error_set(err, CM_ERROR_INVALID, "from",
                            "source %s is not a cloudbroker database (schema version 0)", path);
    if (version > (int64_t)n)
        return cm_error_set(err, CM_ERROR_INVALID, "from",
                            "source %s has schema version %" PRId64
                            ", newer than this cloudbrokerd's %u: use the cloudbrokerd that "
                            "wrote it",
                            path, version, n);
    if (version < (int64_t)n) {
        if (m->progress)
            fprintf(m->progress,
                    "migrate-store: source has schema version %" PRId64
                    ", migrating it to %u first\n",
                    version, n);
        r = cm_db_migrate(m->src, migrations, br_store_pg_migrations(), n, err);
        if (r < 0)
            return r;
    }
    return 0;
}

static int open_target(Migration *m, const char *to, CmError *err)
{
    _cleanup_free_ char *shown = cm_db_url_redact(to);
    int r;

    if (strncmp(to, "postgresql://", 13) != 0 && strncmp(to, "postgres://", 11) != 0)
        return cm_error_set(err, CM_ERROR_INVALID, "to",
                            "--to must be a PostgreSQL URL (postgresql://...)");
    r = cm_db_open_url(to, CM_DB_READWRITE, &m->dst, err);
    if (r < 0) {
        CmError inner = *err;
        cm_error_set(err, inner.kind, "to", "target %s cannot be reached: %s",
                     shown ? shown : "(url)", inner.message);
        return r;
    }
    return 0;
}

/*
 * The target must hold no broker rows: each table of the source is absent or empty (the
 * migration's seed row of audit_head, a chain of 0 records, counts as empty), and a
 * schema_version there is not newer than this program's. An empty schema made by an earlier
 * run that failed is taken again.
 */
static int check_target_empty(Migration *m, unsigned version, CmError *err)
{
    int64_t exists, rows;
    int r;

    r = read_int(m->dst,
                 "SELECT count(*) FROM information_schema.tables"
                 " WHERE table_schema = current_schema() AND table_name = ?1",
                 "schema_version", &exists, err);
    if (r < 0)
        return r;
    if (exists) {
        r = read_int(m->dst, "SELECT coalesce(max(version), 0) FROM schema_version", NULL, &rows,
                     err);
        if (r < 0)
            return r;
        if (rows > (int64_t)version)
            return cm_error_set(err, CM_ERROR_CONFLICT, "to",
                                "target database has schema version %" PRId64
                                ", newer than this cloudbrokerd's %u",
                                rows, version);
    }
    for (size_t i = 0; i < m->n_tables; i++) {
        Table *t = &m->tables[i];
        r = read_int(m->dst,
                     "SELECT count(*) FROM information_schema.tables"
                     " WHERE table_schema = current_schema() AND table_name = ?1",
                     t->name, &exists, err);
        if (r < 0)
            return r;
        if (!exists)
            continue;
        if (cm_streq(t->name, "audit_head"))
            r = read_int(m->dst, "SELECT count(*) FROM audit_head WHERE records > 0", NULL, &rows,
                         err);
        else
            r = read_int(m->dst, t->sql_count, NULL, &rows, err);
        if (r < 0)
            return r;
        if (rows > 0) {
            cm_error_set(err, CM_ERROR_CONFLICT, "to",
                         "target database is not empty: table %s has %" PRId64
                         " rows; migrate-store copies into an empty database only",
                         t->name, rows);
            return -ENOTEMPTY;
        }
    }
    return 0;
}

/* The target's tables have the source's columns, no more and no fewer. */
static int check_target_columns(Migration *m, CmError *err)
{
    int r;

    for (size_t i = 0; i < m->n_tables; i++) {
        Table *t = &m->tables[i];
        _cleanup_stmt_ CmStmt *st =
            cm_db_prepare(m->dst,
                          "SELECT column_name::text AS name FROM information_schema.columns"
                          " WHERE table_schema = current_schema() AND table_name = ?1"
                          " ORDER BY ordinal_position",
                          err);
        size_t seen = 0;

        if (!st)
            return -EIO;
        if (CM_DB_BIND(st, t->name) < 0)
            return cm_error_set(err, CM_ERROR_INTERNAL, "", "cannot bind");
        while ((r = cm_stmt_step(st, err)) > 0) {
            if (!strv_has(t->cols, t->n_cols, cm_stmt_text(st, 0)))
                return cm_error_set(err, CM_ERROR_INTERNAL, "",
                                    "table %s: column %s of PostgreSQL's schema is not in "
                                    "SQLite's",
                                    t->name, cm_stmt_text(st, 0));
            seen++;
        }
        if (r < 0)
            return r;
        if (seen != t->n_cols)
            return cm_error_set(err, CM_ERROR_INTERNAL, "",
                                "table %s: PostgreSQL's schema has %zu of SQLite's %zu columns",
                                t->name, seen, t->n_cols);
    }
    return 0;
}

/* Binds column @c of the source's current row to parameter @idx, as text or NULL: every
 * parameter then has the type of its target column, and each INSERT is prepared once. */
static int bind_value(CmStmt *ins, int idx, CmStmt *row, int c)
{
    char num[64];

    switch (cm_stmt_type(row, c)) {
    case CM_DB_NULL:
        return cm_stmt_bind_null(ins, idx);
    case CM_DB_INTEGER:
        snprintf(num, sizeof(num), "%" PRId64, cm_stmt_int(row, c));
        return cm_stmt_bind_text(ins, idx, num);
    case CM_DB_FLOAT: {
        double d = cm_stmt_double(row, c);
        if (isnan(d))
            return cm_stmt_bind_text(ins, idx, "NaN");
        if (isinf(d))
            return cm_stmt_bind_text(ins, idx, d > 0 ? "Infinity" : "-Infinity");
        snprintf(num, sizeof(num), "%.17g", d);
        return cm_stmt_bind_text(ins, idx, num);
    }
    case CM_DB_TEXT:
        return cm_stmt_bind_text(ins, idx, cm_stmt_text(row, c));
    case CM_DB_BLOB: {
        /* bytea's hex input form */
        static const char hex[] = "0123456789abcdef";
        const unsigned char *b = cm_stmt_blob(row, c);
        size_t len = cm_stmt_bytes(row, c);
        _cleanup_free_ char *text = malloc(2 * len + 3);
        if (!text)
            return -ENOMEM;
        text[0] = '\\';
        text[1] = 'x';
        for (size_t i = 0; i < len; i++) {
            text[2 + 2 * i] = hex[b[i] >> 4];
            text[3 + 2 * i] = hex[b[i] & 15];
        }
        text[2 + 2 * len] = '\0';
        return cm_stmt_bind_text(ins, idx, text);
    }
    }
    return -EINVAL;
}

static int copy_table(Migration *m, Table *t, int64_t *ret_rows, CmError *err)
{
    _cleanup_stmt_ CmStmt *sel = NULL;
    int64_t total, copied = 0, next_report = PROGRESS_ROWS;
    _cleanup_free_ char *cols = NULL;
    int r;

    r = read_int(m->src, t->sql_count, NULL, &total, err);
    if (r < 0)
        return r;
    /* The read transaction holds the count: the last batch is this much shorter. */
    t->rest = (size_t)(total % (int64_t)t->batch);
    if (t->rest > 0) {
        cols = column_list(t);
        t->sql_insert_rest = cols ? insert_text(t, cols, t->rest) : NULL;
        if (!t->sql_insert_rest)
            return no_memory(err);
    }
    sel = cm_db_prepare(m->src, t->sql_select, err);
    if (!sel)
        return -EIO;
    while (copied < total) {
        size_t rows = total - copied >= (int64_t)t->batch ? t->batch : t->rest;
        _cleanup_stmt_ CmStmt *ins =
            cm_db_prepare(m->dst, rows == t->batch ? t->sql_insert_full : t->sql_insert_rest, err);
        if (!ins)
            return -EIO;
        for (size_t i = 0; i < rows; i++) {
            r = cm_stmt_step(sel, err);
            if (r < 0)
                return r;
            if (r == 0)
                return cm_error_set(err, CM_ERROR_INTERNAL, "",
                                    "table %s: the source ended after %zu of %" PRId64 " rows",
                                    t->name, (size_t)copied + i, total);
            for (size_t c = 0; c < t->n_cols; c++)
                if (bind_value(ins, (int)(i * t->n_cols + c + 1), sel, (int)c) < 0)
                    return no_memory(err);
        }
        r = cm_stmt_exec(ins, err);
        if (r < 0)
            return r;
        copied += (int64_t)rows;
        if (m->progress && total >= PROGRESS_ROWS && copied >= next_report) {
            fprintf(m->progress, "migrate-store: %s %" PRId64 "/%" PRId64 " rows copied\n", t->name,
                    copied, total);
            next_report += PROGRESS_ROWS;
        }
    }
    *ret_rows = copied;
    return 0;
}

/*
 * Sets the identity sequence of @t, if it has one, past its highest id and past SQLite's
 * AUTOINCREMENT mark for it (the audit trail's: a record removed at the tail stays visible),
 * so the next insert on PostgreSQL takes a fresh id.
 */
static int set_sequence(Migration *m, Table *t, CmError *err)
{
    _cleanup_free_ char *column = NULL;
    int64_t high = 0, mark = 0, exists;
    int r;

    {
        _cleanup_stmt_ CmStmt *st = cm_db_prepare(
            m->dst,
            "SELECT a.attname::text AS name FROM pg_attribute a WHERE a.attrelid = to_regclass(?1)"
            " AND a.attidentity <> '' AND NOT a.attisdropped",
            err);
        if (!st)
            return -EIO;
        if (CM_DB_BIND(st, t->name) < 0)
            return cm_error_set(err, CM_ERROR_INTERNAL, "", "cannot bind");
        r = cm_stmt_step(st, err);
        if (r <= 0)
            return r;
        column = cm_stmt_strdup(st, 0);
        if (!column)
            return no_memory(err);
    }
    if (!name_plain(column))
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "table %s: identity column \"%s\"", t->name,
                            column);
    t->sql_max = cm_strdup_printf("SELECT coalesce(max(\"%s\"), 0) FROM \"%s\"", column, t->name);
    if (!t->sql_max)
        return no_memory(err);
    r = read_int(m->dst, t->sql_max, NULL, &high, err);
    if (r < 0)
        return r;
    r = read_int(m->src,
                 "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
                 " AND name = 'sqlite_sequence'",
                 NULL, &exists, err);
    if (r < 0)
        return r;
    if (exists) {
        r = read_int(m->src, "SELECT coalesce(max(seq), 0) FROM sqlite_sequence WHERE name = ?1",
                     t->name, &mark, err);
        if (r < 0)
            return r;
    }
    if (mark > high)
        high = mark;
    if (high <= 0)
        return 0;
    {
        _cleanup_stmt_ CmStmt *st = cm_db_prepare(
            m->dst, "SELECT setval(pg_get_serial_sequence(?1, ?2)::regclass, ?3, true)", err);
        if (!st)
            return -EIO;
        if (CM_DB_BIND(st, t->name, column, high) < 0)
            return cm_error_set(err, CM_ERROR_INTERNAL, "", "cannot bind");
        return cm_stmt_exec(st, err);
    }
}

static int buf_put(char **buf, size_t *len, size_t *cap, const void *data, size_t n)
{
    if (*len + n > *cap) {
        size_t ncap = (*cap ? *cap * 2 : 256);
        while (ncap < *len + n)
            ncap *= 2;
        char *nb = realloc(*buf, ncap);
        if (!nb)
            return -ENOMEM;
        *buf = nb;
        *cap = ncap;
    }
    memcpy(*buf + *len, data, n);
    *len += n;
    return 0;
}

typedef struct {
    char hex[CM_SHA256_HEX_LEN + 1];
} RowHash;

static int row_hash_cmp(const void *a, const void *b)
{
    return memcmp(a, b, sizeof(RowHash));
}

/*
 * The SHA-256 of each row of @t on @db, sorted: the table as a multiset of rows, whatever
 * order and collation each database reads it in. A value is hashed with its kind, so 1,
 * 1.0 and '1' differ; a float by its shortest exact text (both read doubles exactly).
 */
static int table_hashes(CmDb *db, Table *t, RowHash **ret, size_t *ret_n, CmError *err)
{
    _cleanup_stmt_ CmStmt *st = cm_db_prepare(db, t->sql_select, err);
    _cleanup_free_ RowHash *hashes = NULL;
    _cleanup_free_ char *buf = NULL;
    size_t n = 0, cap_h = 0, cap = 0;
    int r;

    if (!st)
        return -EIO;
    while ((r = cm_stmt_step(st, err)) > 0) {
        size_t len = 0;
        for (size_t c = 0; c < t->n_cols; c++) {
            char head[64];
            const void *data = NULL;
            size_t data_len = 0;
            int i = (int)c;
            switch (cm_stmt_type(st, i)) {
            case CM_DB_NULL:
                snprintf(head, sizeof(head), "n;");
                break;
            case CM_DB_INTEGER:
                snprintf(head, sizeof(head), "i%" PRId64 ";", cm_stmt_int(st, i));
                break;
            case CM_DB_FLOAT:
                snprintf(head, sizeof(head), "f%.17g;", cm_stmt_double(st, i));
                break;
            case CM_DB_TEXT:
                data = cm_stmt_text(st, i);
                data_len = cm_stmt_bytes(st, i);
                snprintf(head, sizeof(head), "t%zu:", data_len);
                break;
            case CM_DB_BLOB:
                data = cm_stmt_blob(st, i);
                data_len = cm_stmt_bytes(st, i);
                snprintf(head, sizeof(head), "b%zu:", data_len);
                break;
            }
            if (buf_put(&buf, &len, &cap, head, strlen(head)) < 0 ||
                (data_len && buf_put(&buf, &len, &cap, data, data_len) < 0))
                return no_memory(err);
        }
        if (n == cap_h) {
            size_t ncap = cap_h ? cap_h * 2 : 1024;
            RowHash *nh = realloc(hashes, ncap * sizeof(RowHash));
            if (!nh)
                return no_memory(err);
            hashes = nh;
            cap_h = ncap;
        }
        if (cm_sha256_hex(buf ? buf : "", len, hashes[n].hex) < 0)
            return cm_error_set(err, CM_ERROR_INTERNAL, "", "cannot hash a row");
        n++;
    }
    if (r < 0)
        return r;
    if (n > 1)
        qsort(hashes, n, sizeof(RowHash), row_hash_cmp);
    *ret = TAKE_PTR(hashes);
    *ret_n = n;
    return 0;
}

/* Whether @t holds the same rows on both sides; the count of rows that differ in @ret_diff. */
static int compare_table(Migration *m, Table *t, int64_t *ret_diff, CmError *err)
{
    _cleanup_free_ RowHash *a = NULL, *b = NULL;
    size_t na = 0, nb = 0, i = 0, j = 0;
    int64_t diff = 0;
    int r;

    r = table_hashes(m->src, t, &a, &na, err);
    if (r < 0)
        return r;
    r = table_hashes(m->dst, t, &b, &nb, err);
    if (r < 0)
        return r;
    /* Both sorted: walk them together, counting the rows only one side has. */
    while (i < na || j < nb) {
        int c = i == na ? 1 : j == nb ? -1 : row_hash_cmp(&a[i], &b[j]);
        if (c == 0) {
            i++;
            j++;
        } else if (c < 0) {
            diff++;
            i++;
        } else {
            diff++;
            j++;
        }
    }
    *ret_diff = diff;
    return 0;
}

static int alter_triggers(Migration *m, bool enable, CmError *err)
{
    for (size_t i = 0; i < m->n_tables; i++) {
        _cleanup_free_ char *sql = cm_strdup_printf(
            "ALTER TABLE \"%s\" %s TRIGGER USER", m->tables[i].name, enable ? "ENABLE" : "DISABLE");
        int r;
        if (!sql)
            return no_memory(err);
        r = cm_db_exec(m->dst, sql, err);
        if (r < 0)
            return r;
    }
    return 0;
}

static int report_add(BrMigrateReport *report, const char *name, int64_t rows)
{
    BrMigrateTable *nt = realloc(report->tables, (report->n_tables + 1) * sizeof(*nt));
    if (!nt)
        return -ENOMEM;
    report->tables = nt;
    nt[report->n_tables] = (BrMigrateTable){.name = strdup(name), .rows = rows};
    if (!nt[report->n_tables].name)
        return -ENOMEM;
    report->n_tables++;
    return 0;
}

/* Everything after both databases are open and checked, in the target's one transaction. */
static int copy_and_compare(Migration *m, BrMigrateReport *report, CmError *err)
{
    _cleanup_free_ char *differing = NULL;
    size_t differing_len = 0;
    int r;

    r = alter_triggers(m, false, err);
    if (r < 0)
        return r;
    /* The migration seeds the chain's head with 0 records; the source's head replaces it. */
    r = cm_db_exec(m->dst, "DELETE FROM audit_head", err);
    if (r < 0)
        return r;
    for (size_t i = 0; i < m->n_tables; i++) {
        int64_t rows = 0;
        r = copy_table(m, &m->tables[i], &rows, err);
        if (r < 0)
            return r;
        if (report_add(report, m->tables[i].name, rows) < 0)
            return no_memory(err);
    }
    for (size_t i = 0; i < m->n_tables; i++) {
        r = set_sequence(m, &m->tables[i], err);
        if (r < 0)
            return r;
    }
    r = alter_triggers(m, true, err);
    if (r < 0)
        return r;
    for (size_t i = 0; i < m->n_tables; i++) {
        BrMigrateTable *rt = &report->tables[i];
        int64_t diff;
        r = compare_table(m, &m->tables[i], &diff, err);
        if (r < 0)
            return r;
        rt->compared = true;
        rt->identical = diff == 0;
        if (diff > 0) {
            _cleanup_free_ char *more = cm_strdup_printf("%s%s (%" PRId64 " rows differ)",
                                                         differing ? ", " : "", rt->name, diff);
            size_t n = more ? strlen(more) : 0;
            char *nd = more ? realloc(differing, differing_len + n + 1) : NULL;
            if (!nd)
                return no_memory(err);
            memcpy(nd + differing_len, more, n + 1);
            differing = nd;
            differing_len += n;
        }
        if (m->progress && rt->rows >= PROGRESS_ROWS)
            fprintf(m->progress, "migrate-store: %s compared\n", rt->name);
    }
    if (differing) {
        cm_error_set(err, CM_ERROR_INTERNAL, "",
                     "the target differs from the source after the copy: %s; nothing was "
                     "committed",
                     differing);
        return -EBADMSG;
    }
    return 0;
}

int br_migrate_store(const char *from, const char *to, FILE *progress, BrMigrateReport *report,
                     CmError *err)
{
    _cleanup_(migration_clear) Migration m = {.progress = progress};
    const char *const *migrations;
    unsigned n;
    int r;

    r = open_source(&m, from, report, err);
    if (r < 0)
        return r;
    r = open_target(&m, to, err);
    if (r < 0)
        return r;
    r = load_tables(&m, err);
    if (r < 0)
        return r;
    r = order_tables(&m, err);
    if (r < 0)
        return r;
    r = check_target_empty(&m, report->version, err);
    if (r < 0)
        return r;
    migrations = br_store_migrations(&n);
    r = cm_db_migrate(m.dst, migrations, br_store_pg_migrations(), n, err);
    if (r < 0)
        return r;
    r = check_target_columns(&m, err);
    if (r < 0)
        return r;

    /* One snapshot of the source; the target under the writer lock that brokers take. */
    r = cm_db_begin_read(m.src, err);
    if (r < 0)
        return r;
    r = cm_db_begin_immediate(m.dst, err);
    if (r < 0) {
        cm_db_rollback(m.src);
        return r;
    }
    r = copy_and_compare(&m, report, err);
    if (r >= 0)
        r = cm_db_commit(m.dst, err);
    if (r < 0)
        cm_db_rollback(m.dst);
    cm_db_rollback(m.src);
    return r;
}

void br_migrate_report_print(const BrMigrateReport *r, bool json, const char *error, FILE *f)
{
    if (json) {
        _cleanup_json_ json_object *o = json_object_new_object();
        json_object *tables = json_object_new_array();
        for (size_t i = 0; i < r->n_tables; i++) {
            json_object *t = json_object_new_object();
            json_object_object_add(t, "name", json_object_new_string(r->tables[i].name));
            json_object_object_add(t, "rows", json_object_new_int64(r->tables[i].rows));
            json_object_object_add(
                t, "identical",
                r->tables[i].compared ? json_object_new_boolean(r->tables[i].identical) : NULL);
            json_object_array_add(tables, t);
        }
        json_object_object_add(o, "ok", json_object_new_boolean(!error));
        json_object_object_add(o, "schema_version", json_object_new_int64(r->version));
        json_object_object_add(o, "source_schema_version",
                               json_object_new_int64(r->source_version));
        json_object_object_add(o, "tables", tables);
        if (error)
            json_object_object_add(o, "error", json_object_new_string(error));
        fprintf(f, "%s\n",
                json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
                                                      JSON_C_TO_STRING_NOSLASHESCAPE));
        return;
    }
    for (size_t i = 0; i < r->n_tables; i++) {
        const BrMigrateTable *t = &r->tables[i];
        fprintf(f, "%s %" PRId64 " rows copied, %s\n", t->name, t->rows,
                !t->compared   ? "not compared"
                : t->identical ? "identical"
                               : "DIFFERENT");
    }
    if (!error) {
        int64_t rows = 0;
        for (size_t i = 0; i < r->n_tables; i++)
            rows += r->tables[i].rows;
        fprintf(f,
                "migrate-store: %zu tables, %" PRId64 " rows copied at schema version %u, "
                "every table identical\n",
                r->n_tables, rows, r->version);
    }
}
