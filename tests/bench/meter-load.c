/* SPDX-License-Identifier: Apache-2.0 */
/*
 * meter-load: the load side of the metering benchmarks (tests/bench/ingest-bench.py and
 * rollup-bench.py; see README.md there).
 *
 *   meter-load bare DB INSTANCES WINDOWS [BATCH]
 *       The storage limit: the same rows the API run stores, inserted straight into a new
 *       SQLite file with the broker's schema (migration 3 of broker/br-migrations.c, taken from
 *       br_store_migrations(), so the two cannot drift), WAL, synchronous=FULL, one prepared
 *       INSERT (the broker's statement), one transaction per BATCH rows (default 1000).
 *
 *   meter-load post URL INSTANCES WINDOWS BATCH TOKEN_FILE:FIRST_ID [TOKEN_FILE:FIRST_ID ...]
 *       One client thread per TOKEN_FILE:FIRST_ID (one host's agent token and the first of its
 *       INSTANCES instance ids). Every body is built before the clock starts; then the threads
 *       start together and each POSTs its batches of BATCH windows to URL/v1/samples, one after
 *       the other over one keep-alive connection, checking 200 and the stored count.
 *
 *   In both, the windows start at $METER_BASE when it is set (a multiple of 300), else at
 *   the aligned time WINDOWS + 2 windows ago.
 *
 *   meter-load generate DB FIRST_ID INSTANCES DAY_START HOST_ID
 *       Writes one day (288 five-minute windows from DAY_START) for INSTANCES instances from
 *       FIRST_ID into a stopped broker's database, fast (synchronous=OFF, one transaction).
 *
 *   meter-load scan DB DAY_START SQL [PRAGMAS]
 *       Runs SQL (?1 = DAY_START, ?2 = the day's end) read-only, reading every column of every
 *       row, and prints the wall and CPU time: for comparing query plans of the rollup's read.
 *
 * The rows are a deterministic function of (instance, window), so every mode makes the same.
 * Windows are ordered as an agent's spool sends them: by window, then by instance.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <sqlite3.h>

#include "br-store.h"

#define DURATION 300

static const char *const insert_sql =
    "INSERT INTO samples(instance_id, start, host_id, duration, readings,"
    " expected, vcpus, memory_mib, cpu_avg, cpu_max, mem_avg, mem_max,"
    " mem_source, disk_rd_bytes, disk_wr_bytes, disk_rd_reqs, disk_wr_reqs,"
    " net_rx_bytes, net_tx_bytes, net_rx_pkts, net_tx_pkts)"
    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
    " ON CONFLICT DO NOTHING";

typedef struct {
    int64_t instance, start;
    double cpu_avg, cpu_max, mem_avg, mem_max;
    int64_t disk[4], net[4];
} Row;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
    fprintf(stderr, "meter-load: %s\n", what);
    exit(1);
}

static void die_db(sqlite3 *db, const char *what)
{
    fprintf(stderr, "meter-load: %s: %s\n", what, sqlite3_errmsg(db));
    exit(1);
}

static int64_t arg_int(const char *s)
{
    char *end;
    long long v = strtoll(s, &end, 10);
    if (*s == 0 || *end != 0 || v < 0)
        die("arguments are non-negative integers");
    return v;
}

/* The figures of instance @i's window @w: plausible (avg <= max <= vCPUs), all present. */
static void make_row(int64_t i, int64_t w, int64_t start, Row *r)
{
    uint64_t h = (uint64_t)i * 0x9E3779B97F4A7C15ull ^ (uint64_t)w * 0xC2B2AE3D27D4EB4Full;
    h ^= h >> 29;
    r->instance = i;
    r->start = start;
    r->cpu_avg = (double)(h % 1800) / 1000.0; /* 0 .. 1.8 cores of 2 */
    r->cpu_max = r->cpu_avg + (double)((h >> 11) % 200) / 1000.0;
    r->mem_avg = 256.0 + (double)((h >> 17) % 1500);
    r->mem_max = r->mem_avg + (double)((h >> 23) % 64);
    r->disk[0] = (int64_t)((h >> 3) % 50000000);
    r->disk[1] = (int64_t)((h >> 5) % 20000000);
    r->disk[2] = r->disk[0] / 4096;
    r->disk[3] = r->disk[1] / 4096;
    r->net[0] = (int64_t)((h >> 7) % 9000000);
    r->net[1] = (int64_t)((h >> 9) % 3000000);
    r->net[2] = r->net[0] / 1200;
    r->net[3] = r->net[1] / 1200;
}

static void bind_row(sqlite3_stmt *st, const Row *r, int64_t host_id)
{
    sqlite3_bind_int64(st, 1, r->instance);
    sqlite3_bind_int64(st, 2, r->start);
    sqlite3_bind_int64(st, 3, host_id);
    sqlite3_bind_int64(st, 4, DURATION);
    sqlite3_bind_int64(st, 5, 30);
    sqlite3_bind_int64(st, 6, 30);
    sqlite3_bind_int64(st, 7, 2);
    sqlite3_bind_int64(st, 8, 2048);
    sqlite3_bind_double(st, 9, r->cpu_avg);
    sqlite3_bind_double(st, 10, r->cpu_max);
    sqlite3_bind_double(st, 11, r->mem_avg);
    sqlite3_bind_double(st, 12, r->mem_max);
    sqlite3_bind_text(st, 13, "balloon", -1, SQLITE_STATIC);
    for (int k = 0; k < 4; k++)
        sqlite3_bind_int64(st, 14 + k, r->disk[k]);
    for (int k = 0; k < 4; k++)
        sqlite3_bind_int64(st, 18 + k, r->net[k]);
}

/* Where the windows of a run start: aligned, old enough to be finished, well inside the
 * retention (so the broker accepts every one of them). */
static int64_t first_window(int64_t windows)
{
    int64_t now = (int64_t)time(NULL);
    /* The driver passes one value to every run, so that a rerun sends the very same windows. */
    if (getenv("METER_BASE"))
        return arg_int(getenv("METER_BASE"));
    int64_t t = now - (windows + 2) * DURATION;
    return t - t % DURATION;
}

static void exec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        fprintf(stderr, "meter-load: %s: %s\n", sql, msg ? msg : "?");
        exit(1);
    }
}

/* ---- bare ---- */

static int cmd_bare(int argc, char **argv)
{
    if (argc < 5)
        die("usage: bare DB INSTANCES WINDOWS [BATCH]");
    const char *path = argv[2];
    int64_t n_inst = arg_int(argv[3]), windows = arg_int(argv[4]);
    int64_t batch = argc > 5 ? arg_int(argv[5]) : 1000, rows = 0, in_txn = 0;
    int64_t base = first_window(windows);
    unsigned n_mig = 0;
    const char *const *mig = br_store_migrations(&n_mig);
    sqlite3 *db;
    sqlite3_stmt *st;
    Row r;

    if (n_mig < 3 || !strstr(mig[2], "CREATE TABLE samples ("))
        die("migration 3 of br-migrations.c no longer holds the samples table: update me");
    if (sqlite3_open(path, &db) != SQLITE_OK)
        die_db(db, "open");
    exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;");
    /* For experiments only (the README's figures use neither): METER_PRAGMAS="PRAGMA ...;" */
    if (getenv("METER_PRAGMAS"))
        exec(db, getenv("METER_PRAGMAS"));
    exec(db, mig[2]); /* samples (WITHOUT ROWID) + samples_start, and the other metering tables */
    /* For experiments with the schema only, e.g. METER_SCHEMA_SQL="DROP INDEX samples_start;" */
    if (getenv("METER_SCHEMA_SQL"))
        exec(db, getenv("METER_SCHEMA_SQL"));
    if (sqlite3_prepare_v2(db, insert_sql, -1, &st, NULL) != SQLITE_OK)
        die_db(db, "prepare");

    double t0 = now_s();
    for (int64_t w = 0; w < windows; w++) {
        for (int64_t i = 1; i <= n_inst; i++) {
            if (in_txn == 0)
                exec(db, "BEGIN IMMEDIATE");
            make_row(i, w, base + w * DURATION, &r);
            bind_row(st, &r, 1);
            if (sqlite3_step(st) != SQLITE_DONE)
                die_db(db, "insert");
            sqlite3_reset(st);
            rows++;
            if (++in_txn == batch) {
                exec(db, "COMMIT");
                in_txn = 0;
            }
        }
    }
    if (in_txn)
        exec(db, "COMMIT");
    double dt = now_s() - t0;
    printf("bare rows=%" PRId64 " seconds=%.3f rows_per_s=%.0f\n", rows, dt, (double)rows / dt);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return 0;
}

/* ---- post ---- */

typedef struct {
    const char *url;
    char auth[256];
    int64_t first_id, n_inst, windows, batch, base;
    char **bodies;
    size_t *lens;
    int64_t *rows;
    size_t n_bodies;
    pthread_barrier_t *go;
    double t_start, t_end;
    int64_t stored, duplicates, failed;
    char error[512];
} Client;

typedef struct {
    char *data;
    size_t len, cap;
} Buf;

static void buf_add(Buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void buf_add(Buf *b, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0)
            die("vsnprintf");
        if (b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return;
        }
        b->cap = (b->cap + (size_t)n + 1) * 2;
        b->data = realloc(b->data, b->cap);
        if (!b->data)
            die("out of memory");
    }
}

/* The record exactly as the agent writes it (agent/ag-agent.c window_json()). */
static void add_record(Buf *b, const Row *r, bool first)
{
    buf_add(b,
            "%s{\"instance\":%" PRId64 ",\"uuid\":\"00000000-0000-4000-8000-%012" PRId64
            "\",\"start\":%" PRId64 ",\"duration\":%d,\"readings\":30,\"expected\":30,"
            "\"vcpus\":2,\"memory_mib\":2048,\"cpu_cores_avg\":%.6f,\"cpu_cores_max\":%.6f,"
            "\"memory_used_mib_avg\":%.6f,\"memory_used_mib_max\":%.6f,\"net_rx_bytes\":%" PRId64
            ",\"net_tx_bytes\":%" PRId64
            ",\"memory_source\":\"balloon\",\"disk_read_bytes\":%" PRId64
            ",\"disk_write_bytes\":%" PRId64 ",\"disk_read_requests\":%" PRId64
            ",\"disk_write_requests\":%" PRId64 ",\"net_rx_packets\":%" PRId64
            ",\"net_tx_packets\":%" PRId64 "}",
            first ? "" : ",", r->instance, r->instance, r->start, DURATION, r->cpu_avg, r->cpu_max,
            r->mem_avg, r->mem_max, r->net[0], r->net[1], r->disk[0], r->disk[1], r->disk[2],
            r->disk[3], r->net[2], r->net[3]);
}

static void build_bodies(Client *c)
{
    int64_t total = c->n_inst * c->windows;
    size_t n = (size_t)((total + c->batch - 1) / c->batch), k = 0;
    Buf b = {0};
    int64_t in_body = 0;
    Row r;

    c->bodies = calloc(n, sizeof(char *));
    c->lens = calloc(n, sizeof(size_t));
    c->rows = calloc(n, sizeof(int64_t));
    if (!c->bodies || !c->lens || !c->rows)
        die("out of memory");
    for (int64_t w = 0; w < c->windows; w++) {
        for (int64_t i = 0; i < c->n_inst; i++) {
            if (in_body == 0) {
                b = (Buf){0};
                buf_add(&b, "{\"instances\":[");
            }
            make_row(c->first_id + i, w, c->base + w * DURATION, &r);
            add_record(&b, &r, in_body == 0);
            if (++in_body == c->batch) {
                buf_add(&b, "]}");
                c->bodies[k] = b.data;
                c->lens[k] = b.len;
                c->rows[k++] = in_body;
                in_body = 0;
            }
        }
    }
    if (in_body) {
        buf_add(&b, "]}");
        c->bodies[k] = b.data;
        c->lens[k] = b.len;
        c->rows[k++] = in_body;
    }
    c->n_bodies = k;
}

static size_t on_reply(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    Buf *b = userdata;
    size_t n = size * nmemb;
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->data = realloc(b->data, b->cap);
        if (!b->data)
            return 0;
    }
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    b->data[b->len] = 0;
    return n;
}

static int64_t json_int(const char *text, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof(pat), "\"%s\":", key);
    const char *p = text ? strstr(text, pat) : NULL;
    return p ? strtoll(p + strlen(pat), NULL, 10) : -1;
}

static void *client_thread(void *arg)
{
    Client *c = arg;
    CURL *curl = curl_easy_init();
    struct curl_slist *headers = NULL;
    char url[1024];
    Buf reply = {0};

    snprintf(url, sizeof(url), "%s/v1/samples", c->url);
    headers = curl_slist_append(headers, c->auth);
    headers = curl_slist_append(headers, "Content-Type: application/json");
    headers = curl_slist_append(headers, "Expect:");
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 120L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_reply);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &reply);

    pthread_barrier_wait(c->go);
    c->t_start = now_s();
    for (size_t k = 0; k < c->n_bodies; k++) {
        long status = 0;
        reply.len = 0;
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, c->bodies[k]);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)c->lens[k]);
        CURLcode rc = curl_easy_perform(curl);
        if (rc == CURLE_OK)
            curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
        int64_t stored = json_int(reply.data, "stored"), dup = json_int(reply.data, "duplicates");
        if (rc != CURLE_OK || status != 200 || stored + dup != c->rows[k]) {
            c->failed++;
            if (!c->error[0])
                snprintf(c->error, sizeof(c->error), "batch %zu: %s %ld %.300s", k,
                         rc == CURLE_OK ? "HTTP" : curl_easy_strerror(rc), status,
                         reply.data ? reply.data : "");
            continue;
        }
        c->stored += stored;
        c->duplicates += dup;
    }
    c->t_end = now_s();
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    free(reply.data);
    return NULL;
}

static int cmd_post(int argc, char **argv)
{
    if (argc < 7)
        die("usage: post URL INSTANCES WINDOWS BATCH TOKEN_FILE:FIRST_ID...");
    int64_t n_inst = arg_int(argv[3]), windows = arg_int(argv[4]), batch = arg_int(argv[5]);
    int n = argc - 6;
    Client *cl = calloc((size_t)n, sizeof(*cl));
    pthread_t *th = calloc((size_t)n, sizeof(*th));
    pthread_barrier_t go;
    int64_t base = first_window(windows), stored = 0, dup = 0, failed = 0, rows = 0;
    size_t bytes = 0, bodies = 0;

    if (!cl || !th || batch < 1)
        die("bad arguments");
    curl_global_init(CURL_GLOBAL_DEFAULT);
    pthread_barrier_init(&go, NULL, (unsigned)n + 1);
    for (int k = 0; k < n; k++) {
        char *spec = argv[6 + k], *colon = strrchr(spec, ':');
        char token[200] = "";
        if (!colon)
            die("TOKEN_FILE:FIRST_ID");
        *colon = 0;
        FILE *f = fopen(spec, "r");
        if (!f || !fgets(token, sizeof(token), f))
            die("cannot read a token file");
        fclose(f);
        token[strcspn(token, "\r\n")] = 0;
        cl[k].url = argv[2];
        snprintf(cl[k].auth, sizeof(cl[k].auth), "Authorization: Bearer %s", token);
        cl[k].first_id = arg_int(colon + 1);
        cl[k].n_inst = n_inst;
        cl[k].windows = windows;
        cl[k].batch = batch;
        cl[k].base = base;
        cl[k].go = &go;
        build_bodies(&cl[k]);
        for (size_t b = 0; b < cl[k].n_bodies; b++) {
            bytes += cl[k].lens[b];
            rows += cl[k].rows[b];
        }
        bodies += cl[k].n_bodies;
    }
    for (int k = 0; k < n; k++)
        if (pthread_create(&th[k], NULL, client_thread, &cl[k]) != 0)
            die("pthread_create");
    pthread_barrier_wait(&go);
    double t0 = now_s();
    for (int k = 0; k < n; k++)
        pthread_join(th[k], NULL);
    double dt = now_s() - t0;
    for (int k = 0; k < n; k++) {
        stored += cl[k].stored;
        dup += cl[k].duplicates;
        failed += cl[k].failed;
        if (cl[k].error[0])
            fprintf(stderr, "meter-load: client %d: %s\n", k, cl[k].error);
    }
    printf("post clients=%d batches=%zu rows=%" PRId64 " body_bytes=%zu stored=%" PRId64
           " duplicates=%" PRId64 " failed_batches=%" PRId64 " seconds=%.3f rows_per_s=%.0f\n",
           n, bodies, rows, bytes, stored, dup, failed, dt, (double)stored / dt);
    for (int k = 0; k < n; k++) {
        for (size_t b = 0; b < cl[k].n_bodies; b++)
            free(cl[k].bodies[b]);
        free(cl[k].bodies);
        free(cl[k].lens);
        free(cl[k].rows);
    }
    free(cl);
    free(th);
    curl_global_cleanup();
    return failed ? 1 : 0;
}

/* ---- generate ---- */

static int cmd_generate(int argc, char **argv)
{
    if (argc != 7)
        die("usage: generate DB FIRST_ID INSTANCES DAY_START HOST_ID");
    int64_t first = arg_int(argv[3]), n_inst = arg_int(argv[4]), day = arg_int(argv[5]);
    int64_t host = arg_int(argv[6]), rows = 0;
    sqlite3 *db;
    sqlite3_stmt *st;
    Row r;

    if (day % 86400)
        die("DAY_START must be a UTC midnight");
    if (sqlite3_open_v2(argv[2], &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
        die_db(db, "open");
    exec(db, "PRAGMA synchronous=OFF; BEGIN IMMEDIATE");
    if (sqlite3_prepare_v2(db, insert_sql, -1, &st, NULL) != SQLITE_OK)
        die_db(db, "prepare");
    double t0 = now_s();
    for (int64_t i = first; i < first + n_inst; i++) {
        for (int64_t w = 0; w < 86400 / DURATION; w++) {
            make_row(i, w, day + w * DURATION, &r);
            bind_row(st, &r, host);
            if (sqlite3_step(st) != SQLITE_DONE)
                die_db(db, "insert");
            sqlite3_reset(st);
            rows++;
        }
    }
    exec(db, "COMMIT");
    printf("generate rows=%" PRId64 " seconds=%.3f\n", rows, now_s() - t0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return 0;
}

/* ---- scan: a query plan experiment for the rollup's read ---- */

static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmd_scan(int argc, char **argv)
{
    if (argc < 5)
        die("usage: scan DB DAY_START SQL [PRAGMAS]");
    int64_t day = arg_int(argv[3]), rows = 0;
    double sum = 0;
    sqlite3 *db;
    sqlite3_stmt *st;

    if (sqlite3_open_v2(argv[2], &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
        die_db(db, "open");
    if (argc > 5)
        exec(db, argv[5]);
    if (sqlite3_prepare_v2(db, argv[4], -1, &st, NULL) != SQLITE_OK)
        die_db(db, "prepare");
    sqlite3_bind_int64(st, 1, day);
    sqlite3_bind_int64(st, 2, day + 86400);
    double t0 = now_s(), c0 = cpu_s();
    while (sqlite3_step(st) == SQLITE_ROW) {
        for (int k = 0; k < sqlite3_column_count(st); k++)
            if (sqlite3_column_type(st, k) != SQLITE_NULL)
                sum += sqlite3_column_double(st, k);
        rows++;
    }
    printf("scan rows=%" PRId64 " seconds=%.3f cpu_seconds=%.3f checksum=%.6g\n", rows,
           now_s() - t0, cpu_s() - c0, sum);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "scan") == 0)
        return cmd_scan(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "bare") == 0)
        return cmd_bare(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "post") == 0)
        return cmd_post(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "generate") == 0)
        return cmd_generate(argc, argv);
    fprintf(stderr, "usage: meter-load bare|post|generate ... (see the comment at the top of "
                    "tests/bench/meter-load.c)\n");
    return 2;
}
