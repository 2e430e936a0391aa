/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The PostgreSQL backend of CmDb, over libpq. The API is the one SQLite has (cm-db.h):
 * statements written with SQLite's ?N parameters are converted to $N once, when first handed
 * out; each is prepared on the server under a name of its own, once per connection and per
 * kind of bindings (integers are sent as bigint, floats as double precision, blobs as bytea,
 * text and NULL untyped so that the server infers them from the statement); results are read
 * in text form and typed by their column's type OID, or, for a statement that asks for it
 * (cm_stmt_set_rows()), in binary form and one row at a time as the server sends them. Errors
 * are mapped as SQLite's are.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "cm-db-dialect.h"
#include "cm-db-priv.h"
#include "cm-embedded.h"
#include "cm-log.h"
#include "cm-util.h"

/* Type OIDs; catalog/pg_type_d.h comes with the server's headers, not libpq's. */
enum {
    OID_BOOL = 16,
    OID_BYTEA = 17,
    OID_INT8 = 20,
    OID_INT2 = 21,
    OID_INT4 = 23,
    OID_TEXT = 25,
    OID_OID = 26,
    OID_FLOAT4 = 700,
    OID_FLOAT8 = 701,
    OID_VARCHAR = 1043,
    OID_NUMERIC = 1700,
};

#define PG_MIN_SERVER 130000    /* anycompatible, used by the compatibility functions */
#define PG_CONNECT_TIMEOUT "10" /* seconds; a URL's own connect_timeout wins */
#define PG_LOCK_TIMEOUT "5s"    /* SQLite's busy timeout */

#define STR_(x) #x
#define STR(x) STR_(x)

/* common/cm-db-pg-compat.sql, embedded by tools/embed-files.py. */
extern const CmEmbedded cm_db_pg_compat_files[];

struct CmPg {
    PGconn *conn; /* NULL after a failed reconnect */
    char *url;
    CmDbFlags flags;
    unsigned next_name;
    bool in_tx;        /* a transaction was open after the last command */
    bool lost;         /* the connection broke, or reached a server that cannot write: reconnect */
    CmPgStmt *reading; /* the statement whose rows are still coming (CM_DB_ROWS_STREAM) */
};

/* A server-side prepared statement for one combination of binding types. */
typedef struct Variant {
    struct Variant *next;
    char name[16];
    Oid types[]; /* as bound, the key; 0 = inferred by the server */
} Variant;

struct CmPgStmt {
    char *text; /* with $N parameters */
    int n;      /* parameters */
    char **values;
    int *lengths;
    int *formats;
    Oid *types;
    Variant *variants;
    PGresult *res; /* of the current run (streaming: its current row); NULL before it runs */
    int row, rows;
    char **blobs; /* the current row's text bytea values decoded, binary numbers as text */
    size_t *blob_lens;
    int held;      /* blobs[] set: freed at the next row */
    Oid *types_of; /* the run's column types */
    int columns;
    CmDbRows mode;  /* how the next run's rows are read */
    bool binary;    /* the current run's rows are in binary form */
    bool streaming; /* its rows are still coming, one result each */
};

static void notice_log(void *arg, const char *message)
{
    (void)arg;
    cm_log_debug("postgresql: %.*s", (int)strcspn(message, "\n"), message);
}

/* libpq's messages end in a newline; the error text is kept to its first line. */
static const char *first_line(const char *s, char *buf, size_t size)
{
    snprintf(buf, size, "%.*s", (int)strcspn(s ? s : "", "\n"), s ? s : "");
    return buf;
}

static void note_tx(CmPg *pg)
{
    if (pg->conn && PQstatus(pg->conn) == CONNECTION_OK)
        pg->in_tx = PQtransactionStatus(pg->conn) != PQTRANS_IDLE;
    else
        pg->lost = true;
}

/* Maps a failed result (or none) to the errno and CmError SQLite's mapping gives. */
static int pg_error(CmDb *db, PGresult *res, CmError *err, const char *what)
{
    CmPg *pg = db->pg;
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = res ? PQresultErrorMessage(res) : NULL;
    char line[400];

    if (!msg || !*msg)
        msg = pg->conn ? PQerrorMessage(pg->conn) : "no connection";
    first_line(msg, line, sizeof(line));
    /* Lost, shut down, or a server that became a standby (25006 on a connection meant to
     * write: the old primary back as a standby, or one reached without
     * target_session_attrs=read-write): the next use reconnects with the same URL, and libpq's
     * host list with target_session_attrs=read-write finds the server that takes writes. */
    if (!pg->conn || PQstatus(pg->conn) != CONNECTION_OK || !state ||
        strncmp(state, "08", 2) == 0 || strcmp(state, "57P01") == 0 ||
        strcmp(state, "57P02") == 0 || strcmp(state, "57P03") == 0 ||
        (strcmp(state, "25006") == 0 && !(pg->flags & CM_DB_READONLY))) {
        pg->lost = true;
        cm_log_warning("postgresql: %s: %s%s%s", what, line, state ? " " : "", state ? state : "");
        cm_error_set(err, CM_ERROR_UNAVAILABLE, "", "database connection lost, try again");
        return -EIO;
    }
    if (strncmp(state, "23", 2) == 0) {
        cm_error_set_code(err, CM_ERROR_CONFLICT, "constraint", "", "%s: %s", what, line);
        return -EEXIST;
    }
    if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0 || strcmp(state, "55P03") == 0) {
        cm_error_set(err, CM_ERROR_UNAVAILABLE, "", "database is busy, try again");
        return -EAGAIN;
    }
    if (strcmp(state, "53100") == 0)
        cm_error_set(err, CM_ERROR_UNAVAILABLE, "", "disk full");
    else
        cm_error_set(err, CM_ERROR_INTERNAL, "", "database error");
    cm_log_error("postgresql: %s: %s (%s)", what, line, state);
    return -EIO;
}

/* Runs @sql (one or more statements) and checks its result. */
static int pg_run(CmDb *db, const char *sql, CmError *err, const char *what)
{
    PGresult *res = PQexec(db->pg->conn, sql);
    ExecStatusType s = PQresultStatus(res);
    int r = 0;

    if (!res || (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK))
        r = pg_error(db, res, err, what);
    PQclear(res);
    note_tx(db->pg);
    return r;
}

static int pg_connect(CmDb *db, CmError *err)
{
    CmPg *pg = db->pg;
    /* connect_timeout comes first, so that the URL's own (expanded from dbname) wins. */
    const char *const keys[] = {"connect_timeout", "fallback_application_name", "dbname", NULL};
    const char *const vals[] = {PG_CONNECT_TIMEOUT, "cloudbroker", pg->url, NULL};
    char line[400];
    int r;

    pg->conn = PQconnectdbParams(keys, vals, 1);
    if (!pg->conn)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    if (PQstatus(pg->conn) != CONNECTION_OK) {
        first_line(PQerrorMessage(pg->conn), line, sizeof(line));
        cm_log_error("postgresql: cannot connect: %s", line);
        cm_error_set(err, CM_ERROR_UNAVAILABLE, "", "cannot connect to PostgreSQL: %s", line);
        PQfinish(pg->conn);
        pg->conn = NULL;
        return -EIO;
    }
    if (PQserverVersion(pg->conn) < PG_MIN_SERVER) {
        cm_error_set(err, CM_ERROR_INTERNAL, "",
                     "PostgreSQL %d or later is needed, the server is %d", PG_MIN_SERVER / 10000,
                     PQserverVersion(pg->conn) / 10000);
        PQfinish(pg->conn);
        pg->conn = NULL;
        return -ENOTSUP;
    }
    PQsetNoticeProcessor(pg->conn, notice_log, NULL);
    PQsetClientEncoding(pg->conn, "UTF8");
    /* What the dialect layer counts on: UTC times, ISO text, hex bytea, exact floats. No JIT:
     * the broker's big reads go by index a slice at a time, and their plans look costly (a
     * sub-select counted for every row), so the server compiled each slice's plan: 9-17 s of
     * the server's CPU in a rollup of 100,000 instances (58 s -> 42-49 s; tests/bench). */
    r = pg_run(db,
               (pg->flags & CM_DB_READONLY)
                   ? "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD';"
                     " SET IntervalStyle = 'postgres'; SET bytea_output = 'hex';"
                     " SET extra_float_digits = 1; SET client_min_messages = 'warning';"
                     " SET jit = off;"
                     " SET default_transaction_read_only = on"
               : (pg->flags & CM_DB_RELAXED)
                   ? "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD';"
                     " SET IntervalStyle = 'postgres'; SET bytea_output = 'hex';"
                     " SET extra_float_digits = 1; SET client_min_messages = 'warning';"
                     " SET jit = off;"
                     " SET synchronous_commit = off"
                   : "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD';"
                     " SET IntervalStyle = 'postgres'; SET bytea_output = 'hex';"
                     " SET extra_float_digits = 1; SET client_min_messages = 'warning';"
                     " SET jit = off",
               err, "session setup");
    if (r < 0) {
        PQfinish(pg->conn);
        pg->conn = NULL;
        return r;
    }
    pg->in_tx = false;
    pg->lost = false;
    return 0;
}

int cm_pg_open(const char *url, CmDbFlags flags, CmDb *db, CmError *err)
{
    db->pg = calloc(1, sizeof(*db->pg));
    if (!db->pg)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    db->pg->flags = flags;
    db->pg->url = strdup(url);
    if (!db->pg->url)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    return pg_connect(db, err);
}

static void variants_free(CmPgStmt *p)
{
    while (p->variants) {
        Variant *v = p->variants;
        p->variants = v->next;
        free(v);
    }
}

void cm_pg_close(CmDb *db)
{
    if (!db->pg)
        return;
    if (db->pg->conn)
        PQfinish(db->pg->conn);
    free(db->pg->url);
    free(db->pg);
    db->pg = NULL;
}

int cm_pg_ready(CmDb *db, CmError *err)
{
    CmPg *pg = db->pg;
    int r;

    if (!pg->lost && pg->conn && PQstatus(pg->conn) == CONNECTION_OK)
        return 0;
    /* Never reconnect inside a transaction: its statements would silently run outside it. */
    if (pg->in_tx) {
        cm_error_set(err, CM_ERROR_UNAVAILABLE, "",
                     "database connection lost in a transaction, try again");
        return -EIO;
    }
    /* The server forgot the prepared statements with the session. */
    for (size_t i = 0; i < CM_DB_STMT_CACHE_SIZE; i++)
        if (db->cache[i].pg)
            variants_free(db->cache[i].pg);
    if (pg->conn)
        PQfinish(pg->conn);
    pg->conn = NULL;
    if (pg->reading) {
        pg->reading->streaming = false;
        pg->reading = NULL;
    }
    r = pg_connect(db, err);
    if (r < 0)
        return r;
    cm_log_notice("postgresql: reconnected");
    return 0;
}

int cm_pg_stmt_init(CmStmt *st, const char *sql, CmError *err)
{
    CmPgStmt *p = calloc(1, sizeof(*p));
    int r;

    if (!p)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    r = cm_db_dialect_params(sql, &p->text, &p->n);
    if (r < 0) {
        free(p);
        cm_log_error("postgresql: cannot convert the parameters of: %s", sql);
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "invalid SQL parameters");
    }
    if (p->n > 0) {
        p->values = calloc((size_t)p->n, sizeof(*p->values));
        p->lengths = calloc((size_t)p->n, sizeof(*p->lengths));
        p->formats = calloc((size_t)p->n, sizeof(*p->formats));
        p->types = calloc((size_t)p->n, sizeof(*p->types));
        if (!p->values || !p->lengths || !p->formats || !p->types) {
            st->pg = p;
            cm_pg_stmt_free(st);
            return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
        }
    }
    st->pg = p;
    return 0;
}

static void blobs_clear(CmPgStmt *p)
{
    if (!p->held)
        return;
    for (int i = 0; i < p->columns; i++) {
        free(p->blobs[i]);
        p->blobs[i] = NULL;
    }
    p->held = 0;
}

/* Reads what is left of a streaming run (its rows, its end), so the connection is free again. */
static void stream_end(CmDb *db, CmPgStmt *p)
{
    PGresult *res;

    if (!p->streaming)
        return;
    while (db->pg->conn && (res = PQgetResult(db->pg->conn)))
        PQclear(res);
    p->streaming = false;
    if (db->pg->reading == p)
        db->pg->reading = NULL;
    note_tx(db->pg);
}

void cm_pg_reset(CmStmt *st, bool clear_bindings)
{
    CmPgStmt *p = st->pg;

    blobs_clear(p);
    free(p->blobs);
    free(p->blob_lens);
    free(p->types_of);
    p->blobs = NULL;
    p->blob_lens = NULL;
    p->types_of = NULL;
    p->columns = 0;
    PQclear(p->res);
    p->res = NULL;
    stream_end(st->db, p);
    p->binary = false;
    if (!clear_bindings || !p->values)
        return;
    for (int i = 0; i < p->n; i++) {
        free(p->values[i]);
        p->values[i] = NULL;
        p->lengths[i] = 0;
        p->formats[i] = 0;
        p->types[i] = 0;
    }
}

void cm_pg_set_rows(CmStmt *st, CmDbRows flags)
{
    st->pg->mode = flags;
}

void cm_pg_stmt_free(CmStmt *st)
{
    CmPgStmt *p = st->pg;

    if (!p)
        return;
    cm_pg_reset(st, true);
    variants_free(p);
    free(p->text);
    free(p->values);
    free(p->lengths);
    free(p->formats);
    free(p->types);
    free(p);
    st->pg = NULL;
}

static PGresult *prepare(CmDb *db, CmPgStmt *p, const char *name, bool untyped_as_text)
{
    _cleanup_free_ Oid *types = NULL;

    if (!untyped_as_text || p->n == 0)
        return PQprepare(db->pg->conn, name, p->text, p->n, p->types);
    types = malloc((size_t)p->n * sizeof(Oid));
    if (!types)
        return NULL;
    for (int i = 0; i < p->n; i++)
        types[i] = p->types[i] == 0 ? OID_TEXT : p->types[i];
    return PQprepare(db->pg->conn, name, p->text, p->n, types);
}

/* The server-side statement for the current bindings' types, prepared on first need. */
static Variant *variant(CmStmt *st, CmError *err)
{
    CmPgStmt *p = st->pg;
    CmDb *db = st->db;
    size_t size = (size_t)p->n * sizeof(Oid);
    CmError ignored = {0};
    bool untyped = false, guard;
    PGresult *res;
    Variant *v;

    for (v = p->variants; v; v = v->next)
        if (size == 0 || memcmp(v->types, p->types, size) == 0)
            return v;
    v = calloc(1, sizeof(*v) + size);
    if (!v) {
        cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
        return NULL;
    }
    if (size > 0)
        memcpy(v->types, p->types, size);
    snprintf(v->name, sizeof(v->name), "cm%u", db->pg->next_name++);
    /* A parameter used where nothing tells its type ("?1 IS NULL"), bound NULL or text:
     * SQLite would take anything there; text is the closest. The server says 42P08 instead
     * of 42P18 when such a use comes first and a typed one later ("?1 IS NULL OR x = ?1").
     * Inside a transaction the failed try would abort it: a savepoint keeps it. */
    for (int i = 0; i < p->n && !untyped; i++)
        untyped = p->types[i] == 0;
    guard =
        untyped && db->pg->in_tx && pg_run(db, "SAVEPOINT cm_prepare", &ignored, "prepare") >= 0;
    res = prepare(db, p, v->name, false);
    if (PQresultStatus(res) == PGRES_FATAL_ERROR &&
        (cm_streq(PQresultErrorField(res, PG_DIAG_SQLSTATE), "42P18") ||
         cm_streq(PQresultErrorField(res, PG_DIAG_SQLSTATE), "42P08")) &&
        (!db->pg->in_tx || guard)) {
        PQclear(res);
        if (guard)
            pg_run(db, "ROLLBACK TO SAVEPOINT cm_prepare", &ignored, "prepare");
        res = prepare(db, p, v->name, true);
    }
    if (guard && PQresultStatus(res) == PGRES_COMMAND_OK)
        pg_run(db, "RELEASE SAVEPOINT cm_prepare", &ignored, "prepare");
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        pg_error(db, res, err, "prepare");
        cm_log_error("postgresql: failed statement: %s", p->text);
        PQclear(res);
        note_tx(db->pg);
        free(v);
        return NULL;
    }
    PQclear(res);
    v->next = p->variants;
    p->variants = v;
    return v;
}

/* The types a binary row is read as; another (numeric, json, a time) is read in text form. */
static bool binary_readable(Oid type)
{
    switch (type) {
    case OID_BOOL:
    case OID_BYTEA:
    case OID_INT8:
    case OID_INT2:
    case OID_INT4:
    case OID_TEXT:
    case OID_OID:
    case OID_FLOAT4:
    case OID_FLOAT8:
    case OID_VARCHAR:
        return true;
    default:
        return false;
    }
}

/* Takes @res (not NULL) as the run's current result; the first one of a run makes room for
 * its columns and checks that binary rows can be read. */
static int take_result(CmStmt *st, PGresult *res, CmError *err)
{
    CmPgStmt *p = st->pg;
    int n = PQnfields(res);

    p->res = res;
    p->row = -1;
    p->rows = PQntuples(res);
    p->binary = PQbinaryTuples(res) != 0;
    if (n == 0 || p->blobs)
        return 0;
    for (int i = 0; p->binary && i < n; i++)
        if (!binary_readable(PQftype(res, i))) {
            cm_log_error("postgresql: column %s (type %u) cannot be read in binary form: %s",
                         PQfname(res, i), PQftype(res, i), p->text);
            return cm_error_set(err, CM_ERROR_INTERNAL, "", "database error");
        }
    p->blobs = calloc((size_t)n, sizeof(*p->blobs));
    p->blob_lens = calloc((size_t)n, sizeof(*p->blob_lens));
    p->types_of = calloc((size_t)n, sizeof(*p->types_of));
    if (!p->blobs || !p->blob_lens || !p->types_of)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    for (int i = 0; i < n; i++)
        p->types_of[i] = PQftype(res, i);
    p->columns = n;
    return 0;
}

/* The next result of a streaming run: a row (1), the end (0, an empty result kept so that a
 * further step answers 0 again), or a failure; the connection is free again after either. */
static int stream_next(CmStmt *st, CmError *err)
{
    CmPgStmt *p = st->pg;
    CmDb *db = st->db;
    PGresult *res = PQgetResult(db->pg->conn);
    ExecStatusType s = PQresultStatus(res);
    const char *tuples;
    int r;

    PQclear(p->res);
    p->res = NULL;
    if (s == PGRES_SINGLE_TUPLE) {
        r = take_result(st, res, err);
        p->row = 0;
        return r < 0 ? r : 1;
    }
    if (!res || (s != PGRES_TUPLES_OK && s != PGRES_COMMAND_OK)) {
        r = pg_error(db, res, err, "step");
        PQclear(res);
        stream_end(db, p);
        return r;
    }
    stream_end(db, p);
    tuples = PQcmdTuples(res);
    st->changes = *tuples ? strtoll(tuples, NULL, 10) : 0;
    r = take_result(st, res, err);
    return r < 0 ? r : 0;
}

static int execute(CmStmt *st, CmError *err)
{
    CmPgStmt *p = st->pg;
    CmDb *db = st->db;
    int binary = (p->mode & CM_DB_ROWS_BINARY) ? 1 : 0;
    ExecStatusType s;
    const char *tuples;
    PGresult *res;
    Variant *v;
    int r;

    if (!db->pg->conn)
        return pg_error(db, NULL, err, "step");
    if (db->pg->reading) {
        cm_log_error("postgresql: a statement ran while another one's rows were being read: %s",
                     p->text);
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "database error");
    }
    v = variant(st, err);
    if (!v)
        return -EIO;
    if (p->mode & CM_DB_ROWS_STREAM) {
        if (!PQsendQueryPrepared(db->pg->conn, v->name, p->n, (const char *const *)p->values,
                                 p->lengths, p->formats, binary)) {
            r = pg_error(db, NULL, err, "step");
            note_tx(db->pg);
            return r;
        }
        if (!PQsetSingleRowMode(db->pg->conn)) {
            /* not expected right after the send; the answer is read and dropped, not left to
             * the connection's next statement */
            while ((res = PQgetResult(db->pg->conn)))
                PQclear(res);
            note_tx(db->pg);
            cm_log_error("postgresql: single-row mode refused: %s", p->text);
            return cm_error_set(err, CM_ERROR_INTERNAL, "", "database error");
        }
        p->streaming = true;
        db->pg->reading = p;
        return 0;
    }
    res = PQexecPrepared(db->pg->conn, v->name, p->n, (const char *const *)p->values, p->lengths,
                         p->formats, binary);
    s = PQresultStatus(res);
    if (!res || (s != PGRES_TUPLES_OK && s != PGRES_COMMAND_OK)) {
        r = pg_error(db, res, err, "step");
        PQclear(res);
        note_tx(db->pg);
        return r;
    }
    note_tx(db->pg);
    tuples = PQcmdTuples(res);
    st->changes = *tuples ? strtoll(tuples, NULL, 10) : 0;
    r = take_result(st, res, err);
    if (r < 0)
        cm_pg_reset(st, false);
    return r;
}

int cm_pg_step(CmStmt *st, CmError *err)
{
    CmPgStmt *p = st->pg;

    if (!p->res && !p->streaming) {
        int r = execute(st, err);
        if (r < 0)
            return r;
    }
    blobs_clear(p);
    if (p->streaming)
        return stream_next(st, err);
    if (p->row + 1 >= p->rows) {
        p->row = p->rows;
        return 0;
    }
    p->row++;
    return 1;
}

int cm_pg_columns(CmStmt *st)
{
    return st->pg->res ? PQnfields(st->pg->res) : 0;
}

const char *cm_pg_name(CmStmt *st, int i)
{
    return st->pg->res ? PQfname(st->pg->res, i) : NULL;
}

/* The current row's value of column @i (text or binary form), NULL for SQL NULL or no row. */
static const char *cell(CmStmt *st, int i)
{
    CmPgStmt *p = st->pg;

    if (!p->res || p->row < 0 || p->row >= p->rows || i < 0 || i >= p->columns ||
        PQgetisnull(p->res, p->row, i))
        return NULL;
    return PQgetvalue(p->res, p->row, i);
}

/* Column @i's type (a column there is: cell() gave a value). */
static Oid type_of(CmStmt *st, int i)
{
    return st->pg->types_of[i];
}

bool cm_pg_is_null(CmStmt *st, int i)
{
    return !cell(st, i);
}

/* A big-endian integer of @len bytes (a binary int2, int4, int8, oid, float4 or float8). */
static uint64_t big_endian(const char *v, int len)
{
    uint64_t x = 0;

    for (int k = 0; k < len; k++)
        x = x << 8 | (uint8_t)v[k];
    return x;
}

/* A number column's value in binary form, as int64 (@ret_i, exact for the integer types) and
 * as double (@ret_d). Returns: false for another type. */
static bool binary_number(Oid type, const char *v, int64_t *ret_i, double *ret_d)
{
    uint64_t u;
    uint32_t u4;
    float f;

    switch (type) {
    case OID_BOOL:
        *ret_i = *v != 0;
        break;
    case OID_INT2:
        *ret_i = (int16_t)big_endian(v, 2);
        break;
    case OID_INT4:
        *ret_i = (int32_t)big_endian(v, 4);
        break;
    case OID_OID:
        *ret_i = (uint32_t)big_endian(v, 4);
        break;
    case OID_INT8:
        *ret_i = (int64_t)big_endian(v, 8);
        break;
    case OID_FLOAT4:
        u4 = (uint32_t)big_endian(v, 4);
        memcpy(&f, &u4, sizeof(f));
        *ret_d = f;
        return true;
    case OID_FLOAT8:
        u = big_endian(v, 8);
        memcpy(ret_d, &u, sizeof(*ret_d));
        return true;
    default:
        return false;
    }
    *ret_d = (double)*ret_i;
    return true;
}

/* A numeric value that is a whole number fitting int64: SQLite's sum() gives integers there. */
static bool integral(const char *v)
{
    size_t digits;

    if (*v == '-')
        v++;
    digits = strspn(v, "0123456789");
    return digits > 0 && digits <= 18 && v[digits] == '\0';
}

/* As SQLite: a float truncated toward zero, saturating; NaN is 0. */
static int64_t int_of_double(double d)
{
    if (isnan(d))
        return 0;
    if (d >= 9223372036854775807.0)
        return INT64_MAX;
    if (d <= -9223372036854775808.0)
        return INT64_MIN;
    return (int64_t)d;
}

CmDbType cm_pg_type(CmStmt *st, int i)
{
    const char *v = cell(st, i);

    if (!v)
        return CM_DB_NULL;
    switch (type_of(st, i)) {
    case OID_BOOL:
    case OID_INT2:
    case OID_INT4:
    case OID_INT8:
    case OID_OID:
        return CM_DB_INTEGER;
    case OID_FLOAT4:
    case OID_FLOAT8:
        return CM_DB_FLOAT;
    case OID_NUMERIC: /* never in binary form (take_result()) */
        return integral(v) ? CM_DB_INTEGER : CM_DB_FLOAT;
    case OID_BYTEA:
        return CM_DB_BLOB;
    default:
        return CM_DB_TEXT;
    }
}

int64_t cm_pg_int(CmStmt *st, int i)
{
    const char *v = cell(st, i);
    Oid type;
    int64_t n;
    double d;

    if (!v)
        return 0;
    type = type_of(st, i);
    if (st->pg->binary && binary_number(type, v, &n, &d))
        return type == OID_FLOAT4 || type == OID_FLOAT8 ? int_of_double(d) : n;
    switch (type) {
    case OID_BOOL:
        return *v == 't';
    case OID_INT2:
    case OID_INT4:
    case OID_INT8:
    case OID_OID:
        return strtoll(v, NULL, 10);
    default:
        if (integral(v))
            return strtoll(v, NULL, 10);
        /* As SQLite: a float (or numeric text) truncated toward zero, saturating. */
        return int_of_double(strtod(v, NULL));
    }
}

double cm_pg_double(CmStmt *st, int i)
{
    const char *v = cell(st, i);
    int64_t n;
    double d;

    if (!v)
        return 0;
    if (st->pg->binary && binary_number(type_of(st, i), v, &n, &d))
        return d;
    if (type_of(st, i) == OID_BOOL)
        return *v == 't' ? 1.0 : 0.0;
    return strtod(v, NULL);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Column @i of type bytea: in binary form as it came (libpq ends every value with a NUL);
 * in text form decoded from its hex (bytea_output = hex) and NUL-terminated. */
static const char *blob(CmStmt *st, int i, size_t *ret_len)
{
    CmPgStmt *p = st->pg;
    const char *v = cell(st, i);
    size_t n;
    char *b;

    if (!v)
        return NULL;
    if (p->binary) {
        *ret_len = (size_t)PQgetlength(p->res, p->row, i);
        return v;
    }
    if (p->blobs[i]) {
        *ret_len = p->blob_lens[i];
        return p->blobs[i];
    }
    n = strlen(v);
    if (n < 2 || v[0] != '\\' || v[1] != 'x' || n % 2)
        return NULL;
    b = malloc((n - 2) / 2 + 1);
    if (!b)
        return NULL;
    for (size_t k = 0; k < (n - 2) / 2; k++) {
        int hi = hexval(v[2 + 2 * k]), lo = hexval(v[3 + 2 * k]);
        if (hi < 0 || lo < 0) {
            free(b);
            return NULL;
        }
        b[k] = (char)(hi << 4 | lo);
    }
    b[(n - 2) / 2] = '\0';
    p->blobs[i] = b;
    p->held++;
    p->blob_lens[i] = (n - 2) / 2;
    *ret_len = p->blob_lens[i];
    return b;
}

/* A binary number column as text (decimal; a float with 17 significant digits), kept with
 * the row; NULL on no memory. */
static const char *binary_text(CmStmt *st, int i, Oid type, const char *v)
{
    CmPgStmt *p = st->pg;
    char buf[40];
    int64_t n;
    double d;

    if (p->blobs[i])
        return p->blobs[i];
    if (!binary_number(type, v, &n, &d))
        return v;
    if (type == OID_FLOAT4 || type == OID_FLOAT8)
        snprintf(buf, sizeof(buf), "%.17g", d);
    else
        snprintf(buf, sizeof(buf), "%" PRId64, n);
    p->blobs[i] = strdup(buf);
    p->held += p->blobs[i] != NULL;
    return p->blobs[i];
}

const char *cm_pg_text(CmStmt *st, int i)
{
    const char *v = cell(st, i);
    Oid type;
    size_t len;

    if (!v)
        return NULL;
    type = type_of(st, i);
    switch (type) {
    case OID_BOOL:
        return (st->pg->binary ? *v != 0 : *v == 't') ? "1" : "0";
    case OID_BYTEA:
        return blob(st, i, &len);
    default:
        return st->pg->binary ? binary_text(st, i, type, v) : v;
    }
}

size_t cm_pg_bytes(CmStmt *st, int i)
{
    size_t len = 0;
    const char *v = cell(st, i);

    if (!v)
        return 0;
    switch (type_of(st, i)) {
    case OID_BOOL:
        return 1;
    case OID_BYTEA:
        return blob(st, i, &len) ? len : 0;
    default:
        if (!st->pg->binary)
            return (size_t)PQgetlength(st->pg->res, st->pg->row, i);
        v = cm_pg_text(st, i);
        return v ? strlen(v) : 0;
    }
}

const void *cm_pg_blob(CmStmt *st, int i)
{
    size_t len;

    if (!cell(st, i))
        return NULL;
    if (type_of(st, i) == OID_BYTEA)
        return blob(st, i, &len);
    return cm_pg_text(st, i);
}

int cm_pg_bind(CmStmt *st, int idx, CmDbType type, const void *v, size_t len)
{
    CmPgStmt *p = st->pg;
    char *value = NULL;
    Oid oid = 0;

    if (idx < 1 || idx > p->n)
        return -EINVAL;
    switch (type) {
    case CM_DB_INTEGER:
        value = cm_strdup_printf("%" PRId64, *(const int64_t *)v);
        oid = OID_INT8;
        break;
    case CM_DB_FLOAT: {
        double d = *(const double *)v;
        value = isnan(d)   ? strdup("NaN")
                : isinf(d) ? strdup(d > 0 ? "Infinity" : "-Infinity")
                           : cm_strdup_printf("%.17g", d);
        oid = OID_FLOAT8;
        break;
    }
    case CM_DB_TEXT:
        value = strdup(v);
        break;
    case CM_DB_BLOB:
        value = malloc(len ? len : 1);
        if (value && len)
            memcpy(value, v, len);
        oid = OID_BYTEA;
        break;
    case CM_DB_NULL:
        break;
    }
    if (type != CM_DB_NULL && !value)
        return -ENOMEM;
    free(p->values[idx - 1]);
    p->values[idx - 1] = value;
    p->lengths[idx - 1] = (int)len;
    p->formats[idx - 1] = type == CM_DB_BLOB; /* bytes go as they are, the rest as text */
    p->types[idx - 1] = oid;
    return 0;
}

int cm_pg_exec(CmDb *db, const char *sql, CmError *err)
{
    int r = cm_pg_ready(db, err);
    return r < 0 ? r : pg_run(db, sql, err, "exec");
}

int cm_pg_copy_in(CmDb *db, const char *sql, const char *data, size_t len, int64_t *ret_rows,
                  CmError *err)
{
    PGconn *conn;
    PGresult *res;
    int r = cm_pg_ready(db, err);

    if (r < 0)
        return r;
    conn = db->pg->conn;
    res = PQexec(conn, sql);
    if (PQresultStatus(res) != PGRES_COPY_IN) {
        r = pg_error(db, res, err, "copy");
        PQclear(res);
        note_tx(db->pg);
        return r;
    }
    PQclear(res);
    /* A blocking connection: each call sends or fails (1 or -1), in pieces under INT_MAX. */
    for (size_t off = 0, piece; off < len && r >= 0; off += piece) {
        piece = len - off < (1u << 20) ? len - off : (1u << 20);
        if (PQputCopyData(conn, data + off, (int)piece) != 1)
            r = -EIO;
    }
    if (PQputCopyEnd(conn, r < 0 ? "cannot send the rows" : NULL) != 1)
        r = -EIO;
    /* The COPY's result, then the end of the query (NULL). */
    while ((res = PQgetResult(conn))) {
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            if (!cm_error_is_set(err))
                r = pg_error(db, res, err, "copy");
        } else if (r >= 0 && ret_rows) {
            *ret_rows = strtoll(PQcmdTuples(res), NULL, 10);
        }
        PQclear(res);
    }
    if (r < 0 && !cm_error_is_set(err))
        r = pg_error(db, NULL, err, "copy"); /* the sending failed: the connection is lost */
    note_tx(db->pg);
    return r;
}

/*
 * Begins a transaction with @sql. A connection found lost here has done nothing of the
 * transaction yet: it is reconnected and the begin tried once more, so that the first request
 * after a failover (or a server restart) is served, not answered 503.
 */
static int begin(CmDb *db, const char *sql, CmError *err)
{
    int r = cm_pg_exec(db, sql, err);

    if (r < 0 && db->pg->lost && !db->pg->in_tx) {
        cm_error_clear(err);
        r = cm_pg_exec(db, sql, err);
    }
    if (r < 0)
        cm_pg_rollback(db);
    return r;
}

int cm_pg_begin_immediate(CmDb *db, CmError *err)
{
    /* SQLite's BEGIN IMMEDIATE: one writer at a time, over every broker on the database.
     * The advisory lock goes with the transaction; waiting longer than SQLite's busy
     * timeout gives -EAGAIN (lock_not_available) as SQLITE_BUSY does. */
    return begin(db,
                 "BEGIN; SET LOCAL lock_timeout = '" PG_LOCK_TIMEOUT "';"
                 " SELECT pg_advisory_xact_lock(" STR(CM_DB_PG_WRITER_LOCK) ")",
                 err);
}

int cm_pg_begin_shared(CmDb *db, int64_t key, CmError *err)
{
    char sql[256];

    /* The writer lock first, then @key: an immediate writer holds nothing a shared
     * transaction waits for, and the holders of @key wait only for each other. */
    snprintf(sql, sizeof(sql),
             "BEGIN; SET LOCAL lock_timeout = '" PG_LOCK_TIMEOUT "';"
             " SELECT pg_advisory_xact_lock_shared(" STR(
                 CM_DB_PG_WRITER_LOCK) ");"
                                       " SELECT pg_advisory_xact_lock(%lld)",
             (long long)key);
    return begin(db, sql, err);
}

int cm_pg_serialize(CmDb *db, CmError *err)
{
    return cm_pg_exec(db, "SELECT pg_advisory_xact_lock(" STR(CM_DB_PG_SERIAL_LOCK) ")", err);
}

int cm_pg_begin_read(CmDb *db, CmError *err)
{
    /* One snapshot for the whole read, as a SQLite read transaction sees. */
    return begin(db, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", err);
}

int cm_pg_commit(CmDb *db, CmError *err)
{
    PGresult *res;
    int r = 0;

    if (!db->pg->conn || db->pg->lost)
        return pg_error(db, NULL, err, "commit");
    res = PQexec(db->pg->conn, "COMMIT");
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        r = pg_error(db, res, err, "commit");
    else if (cm_streq(PQcmdStatus(res), "ROLLBACK")) {
        /* A statement of the transaction had failed: PostgreSQL then rolls back on COMMIT. */
        cm_log_error("postgresql: commit of a failed transaction: rolled back");
        r = cm_error_set(err, CM_ERROR_INTERNAL, "", "database error");
    }
    PQclear(res);
    note_tx(db->pg);
    return r;
}

void cm_pg_rollback(CmDb *db)
{
    CmPg *pg = db->pg;

    if (pg->conn && PQstatus(pg->conn) == CONNECTION_OK &&
        PQtransactionStatus(pg->conn) != PQTRANS_IDLE)
        PQclear(PQexec(pg->conn, "ROLLBACK"));
    pg->in_tx = false;
}

/* One integer from a query without parameters; @ret untouched when there is no row. */
static int query_int(CmDb *db, const char *sql, int64_t *ret, CmError *err)
{
    PGresult *res = PQexec(db->pg->conn, sql);
    int r = 0;

    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        r = pg_error(db, res, err, "query");
    else if (PQntuples(res) > 0 && !PQgetisnull(res, 0, 0))
        *ret = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    note_tx(db->pg);
    return r;
}

/* The database's collation decides the order of text in ORDER BY; SQLite's is byte-wise. */
static void check_collation(CmDb *db)
{
    PGresult *res = PQexec(db->pg->conn, "SELECT datcollate FROM pg_database"
                                         " WHERE datname = current_database()");
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
        const char *c = PQgetvalue(res, 0, 0);
        if (strcmp(c, "C") != 0 && strcmp(c, "POSIX") != 0 && strncmp(c, "C.", 2) != 0)
            cm_log_warning("postgresql: the database's collation is %s: text sorts differently"
                           " than on SQLite; create it with LC_COLLATE 'C' (operator guide)",
                           c);
    }
    PQclear(res);
}

static int migrate_one(CmDb *db, const char *const *migrations, const char *const *pg_migrations,
                       unsigned n, bool *ret_done, CmError *err)
{
    _cleanup_free_ char *translated = NULL, *why = NULL;
    int64_t version = 0;
    const char *sql;
    char set[160];
    int r;

    /* Under the writer lock: several brokers starting at once migrate one after another. */
    r = cm_pg_begin_immediate(db, err);
    if (r < 0)
        return r;
    r = pg_run(db,
               "CREATE TABLE IF NOT EXISTS schema_version ("
               " id integer PRIMARY KEY CHECK (id = 1), version integer NOT NULL)",
               err, "schema_version");
    if (r >= 0)
        r = query_int(db, "SELECT version FROM schema_version", &version, err);
    if (r < 0)
        goto error;
    if (version > (int64_t)n) {
        r = cm_error_set(err, CM_ERROR_INTERNAL, "",
                         "database schema version %lld is newer than this program (%u)",
                         (long long)version, n);
        goto error;
    }
    if (version == (int64_t)n) {
        *ret_done = true;
        return cm_pg_commit(db, err);
    }
    sql = pg_migrations ? pg_migrations[version] : NULL;
    if (!sql) {
        r = cm_db_dialect_ddl(migrations[version], &translated, &why);
        if (r < 0) {
            r = cm_error_set(err, CM_ERROR_INTERNAL, "", "migration %lld: %s",
                             (long long)version + 1, why ? why : strerror(-r));
            goto error;
        }
        sql = translated;
    }
    /* The compatibility functions come with the first migration. */
    if (version == 0)
        r = pg_run(db, cm_db_pg_compat_files[0].text, err, "compatibility functions");
    if (r >= 0)
        r = pg_run(db, sql, err, "migration");
    snprintf(set, sizeof(set),
             "INSERT INTO schema_version VALUES (1, %lld)"
             " ON CONFLICT (id) DO UPDATE SET version = excluded.version",
             (long long)version + 1);
    if (r >= 0)
        r = pg_run(db, set, err, "schema_version");
    if (r < 0)
        goto error;
    r = cm_pg_commit(db, err);
    if (r < 0)
        goto error;
    cm_log_info("database schema migrated to version %lld", (long long)version + 1);
    return 0;

error:
    cm_pg_rollback(db);
    if (version < (int64_t)n)
        cm_log_error("migration to schema version %lld failed", (long long)version + 1);
    return r;
}

int cm_pg_migrate(CmDb *db, const char *const *migrations, const char *const *pg_migrations,
                  unsigned n, CmError *err)
{
    bool done = false;
    int r;

    r = cm_pg_ready(db, err);
    if (r < 0)
        return r;
    check_collation(db);
    while (!done) {
        r = migrate_one(db, migrations, pg_migrations, n, &done, err);
        if (r < 0)
            return r;
    }
    return 0;
}
