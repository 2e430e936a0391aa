/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Placement benchmark: one placement decision over 1,000 hosts holding 10,000 instances
 * (target: < 5 ms). Prints figures; asserts nothing about time (see tests/bench/README.md).
 *
 *   1. br_placement_choose() alone, on hosts already in memory;
 *   2. the pieces of the broker's decision: the reserve step's host query (a copy of the SQL in
 *      br-workflow-place.c host_set_load(), so the two must be kept in step) and the live status
 *      lookup of every host (br_hosts_status());
 *   3. the whole decision as the broker makes it from its database, through public entry
 *      points: br_workflow_place_request() (the dry run: request, host query, live status,
 *      choose) and br_workflow_reserve() (the same inside a write transaction, plus the
 *      sibling query, the updates and the durable commit).
 *
 * The hosts are watched by a real BrHosts over libvirt's test driver (test:///default, shared
 * by every connection of the process), so every host is "connected" as in production. Its live
 * capacity (16 CPUs, 3 GiB, a 100 GiB pool) then wins over the database's, as in the broker.
 *
 * Usage: placement-bench [RUNS] (default 1000). Environment: BENCH_TMPDIR (default $TMPDIR or
 * /tmp) for the temporary database; BENCH_KEEP=1 keeps it.
 */
#include <sqlite3.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "br-daemon.h"
#include "br-hosts.h"
#include "br-jobs.h"
#include "br-placement.h"
#include "br-policy.h"
#include "br-schemas.h"
#include "br-store.h"
#include "br-virt.h"
#include "br-workflow.h"
#include "cm-db.h"
#include "cm-log.h"
#include "cm-time.h"

#define N_HOSTS 1000
#define N_INSTANCES 10000
#define INSTANCES_PER_ALLOCATION 4
#define TARGET_MS 5.0

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct {
    double median, p99, max, mean;
} Stats;

static Stats stats_of(double *v, size_t n)
{
    Stats s = {0};
    double sum = 0;
    qsort(v, n, sizeof(*v), cmp_double);
    for (size_t i = 0; i < n; i++)
        sum += v[i];
    s.median = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
    s.p99 = v[(size_t)ceil(0.99 * (double)n) - 1];
    s.max = v[n - 1];
    s.mean = sum / (double)n;
    return s;
}

static void report(const char *what, double *v, size_t n, bool goal)
{
    Stats s = stats_of(v, n);
    printf("%-58s %9.3f %9.3f %9.3f %9.3f %6zu", what, s.median, s.p99, s.max, s.mean, n);
    if (goal)
        printf("  %s (p99 < %.0f ms)", s.p99 < TARGET_MS ? "PASS" : "MISS", TARGET_MS);
    printf("\n");
    fflush(stdout);
}

static void die(const char *what, const CmError *err)
{
    fprintf(stderr, "placement-bench: %s: %s\n", what, err ? err->message : strerror(errno));
    exit(1);
}

/* ---- 1: the pure function ---- */

/* 1,000 hosts in the shape the broker sees: a few trial, disabled, in maintenance, lost. */
static void make_hosts(BrPlacementHost *h, char (*names)[32])
{
    unsigned seed = 42;
    for (int i = 0; i < N_HOSTS; i++) {
        snprintf(names[i], sizeof(names[i]), "host-%04d", i);
        h[i] = (BrPlacementHost){
            .id = i + 1,
            .name = names[i],
            .pool = i % 20 == 0 ? "trial" : "production",
            .enabled = i % 97 != 0,
            .maintenance = i % 89 == 0,
            .connected = i % 83 != 0,
            .cpus = 64,
            .memory_mib = 262144,
            .disk_gib = 4000,
            .cpu_ratio = 4.0,
            .ram_ratio = 1.0,
            .disk_ratio = 1.0,
        };
    }
    /* 10,000 instances of mixed sizes, spread unevenly. */
    for (int k = 0; k < N_INSTANCES; k++) {
        int i = (int)(rand_r(&seed) % N_HOSTS);
        h[i].used_vcpus += 1 + rand_r(&seed) % 8;
        h[i].used_memory_mib += 1024 * (1 + rand_r(&seed) % 16);
        h[i].used_disk_gib += 20 + rand_r(&seed) % 100;
    }
}

static void bench_choose(unsigned runs, size_t n_demands, BrPlacementWeigher w, bool anti)
{
    static BrPlacementHost hosts[N_HOSTS], work[N_HOSTS];
    static char names[N_HOSTS][32];
    BrPlacementPolicy p = {.pool = "production", .anti_affinity = anti, .weigher = w};
    BrPlacementDemand d[16];
    size_t choice[16];
    bool siblings[N_HOSTS];
    double *t = calloc(runs, sizeof(double));
    char what[96];

    make_hosts(hosts, names);
    for (size_t k = 0; k < n_demands; k++)
        d[k] = (BrPlacementDemand){.vcpus = 4, .memory_mib = 8192, .disk_gib = 100};
    for (unsigned r = 0; r < runs; r++) {
        memcpy(work, hosts, sizeof(work)); /* each run starts from the same usage */
        memset(siblings, 0, sizeof(siblings));
        double t0 = now_ms();
        int rc = br_placement_choose(work, N_HOSTS, &p, d, n_demands, siblings, choice, NULL);
        t[r] = now_ms() - t0;
        if (rc < 0) {
            fprintf(stderr, "placement-bench: nothing fits\n");
            exit(1);
        }
    }
    snprintf(what, sizeof(what), "br_placement_choose, %zu instance%s, %s%s", n_demands,
             n_demands > 1 ? "s" : "", w == BR_PLACEMENT_SPREAD ? "spread" : "pack",
             anti ? ", anti-affinity" : "");
    report(what, t, runs, n_demands == 1);
    free(t);
}

/* ---- 2 and 3: from the database ---- */

static void exec_or_die(CmDb *db, const char *sql)
{
    CmError err = {0};
    if (cm_db_exec(db, sql, &err) < 0)
        die(sql, &err);
}

/* Fills the state: one department, system and account, 1,000 hosts, 2,500 allocations of 4
 * instances (10,000; a few undefined or deleted, as a real history has), one request of one
 * instance for the dry run, and one allocation with a pending instance for the reserve step. */
static void populate(BrStore *store, int64_t *ret_request, int64_t *ret_alloc)
{
    CmError err = {0};
    CmDb *db;
    char at[CM_TIME_ISO_LEN + 1];
    unsigned seed = 7;

    cm_time_iso(cm_now_ms(), at);
    if (br_store_write_begin(store, &db, &err) < 0)
        die("write_begin", &err);
    sqlite3 *h = cm_db_handle(db);
    char *sql = sqlite3_mprintf(
        "INSERT INTO departments(id, code, name, quota_vcpus, quota_memory_mib, quota_disk_gib,"
        " quota_instances, created_at, updated_at) VALUES (1, 'bench', '基准', 1000000, 1000000000,"
        " 100000000, 100000, %Q, %Q);"
        "INSERT INTO accounts(id, name, role, token_hash, created_at, token_created_at)"
        " VALUES (1, 'bench-admin', 'admin', 'x', %Q, %Q);"
        "INSERT INTO systems(id, department_id, name, category, protection_level, status,"
        " created_at, updated_at) VALUES (1, 1, 'bench', 'website', 2, 'active', %Q, %Q);",
        at, at, at, at, at, at);
    exec_or_die(db, sql);
    sqlite3_free(sql);

    sqlite3_stmt *st;
    sqlite3_prepare_v2(h,
                       "INSERT INTO hosts(id, name, uri, pool, storage_pool, enabled, maintenance,"
                       " cpus, memory_mib, disk_gib, created_at, updated_at)"
                       " VALUES (?, ?, ?, ?, 'default-pool', ?, ?, 64, 262144, 4000, ?, ?)",
                       -1, &st, NULL);
    for (int i = 0; i < N_HOSTS; i++) {
        char name[32], uri[64];
        snprintf(name, sizeof(name), "host-%04d", i);
        snprintf(uri, sizeof(uri), "test:///default#host-%04d", i); /* unique, same driver */
        sqlite3_bind_int64(st, 1, i + 1);
        sqlite3_bind_text(st, 2, name, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 3, uri, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 4, i % 20 == 0 ? "trial" : "production", -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 5, i % 97 != 0);
        sqlite3_bind_int(st, 6, i % 89 == 0);
        sqlite3_bind_text(st, 7, at, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 8, at, -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE)
            die(sqlite3_errmsg(h), NULL);
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);

    sqlite3_prepare_v2(h,
                       "INSERT INTO allocations(id, department_id, system_id, request_id, state,"
                       " purpose, created_at, updated_at) VALUES (?, 1, 1, ?, 'active',"
                       " 'production', ?, ?)",
                       -1, &st, NULL);
    int n_alloc = N_INSTANCES / INSTANCES_PER_ALLOCATION;
    for (int a = 1; a <= n_alloc + 1; a++) {
        sqlite3_bind_int64(st, 1, a);
        sqlite3_bind_int64(st, 2, a);
        sqlite3_bind_text(st, 3, at, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, at, -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE)
            die(sqlite3_errmsg(h), NULL);
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);

    sqlite3_prepare_v2(h,
                       "INSERT INTO instances(allocation_id, idx, name, uuid, host_id, vcpus,"
                       " memory_mib, disk_gib, max_vcpus, max_memory_mib, image, pool, volume,"
                       " state, created_at, updated_at)"
                       " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'debian-12', 'default', ?, ?, ?, ?)",
                       -1, &st, NULL);
    for (int k = 0; k < N_INSTANCES + 1; k++) {
        bool pending = k == N_INSTANCES; /* the reserve step's instance */
        int a = pending ? n_alloc + 1 : 1 + k / INSTANCES_PER_ALLOCATION;
        int idx = pending ? 0 : k % INSTANCES_PER_ALLOCATION;
        char name[32], uuid[40], vol[48];
        int vcpus = 1 + (int)(rand_r(&seed) % 2), mem = 256 * (1 + (int)(rand_r(&seed) % 2));
        const char *state = pending       ? "pending"
                            : k % 50 == 0 ? "undefined"
                            : k % 71 == 0 ? "deleted"
                                          : "running";
        snprintf(name, sizeof(name), "cb-%d-%d", a, idx);
        snprintf(uuid, sizeof(uuid), "00000000-0000-4000-8000-%012d", k);
        snprintf(vol, sizeof(vol), "%s.qcow2", name);
        sqlite3_bind_int64(st, 1, a);
        sqlite3_bind_int(st, 2, idx);
        sqlite3_bind_text(st, 3, name, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 4, uuid, -1, SQLITE_TRANSIENT);
        if (pending)
            sqlite3_bind_null(st, 5);
        else
            sqlite3_bind_int64(st, 5, 1 + (int)(rand_r(&seed) % N_HOSTS));
        sqlite3_bind_int(st, 6, vcpus);
        sqlite3_bind_int(st, 7, mem);
        sqlite3_bind_int(st, 8, 5);
        sqlite3_bind_int(st, 9, vcpus * 2);
        sqlite3_bind_int(st, 10, mem * 2);
        sqlite3_bind_text(st, 11, vol, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 12, state, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 13, at, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 14, at, -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE)
            die(sqlite3_errmsg(h), NULL);
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);

    sql = sqlite3_mprintf(
        "INSERT INTO requests(id, department_id, system_id, kind, state, resources, vcpus,"
        " memory_mib, disk_gib, instances, justification, created_by, created_at, updated_at)"
        " VALUES (1, 1, 1, 'new', 'trial_passed', '{\"instances\":[{\"vcpus\":1,"
        "\"memory_mib\":256,\"disk_gib\":5,\"image\":\"debian-12\"}]}', 1, 256, 5, 1, 'bench',"
        " 1, %Q, %Q);"
        "INSERT INTO jobs(id, kind, state, allocation_id, created_at) VALUES (1, 'provision',"
        " 'running', %d, %Q);"
        "INSERT INTO job_steps(job_id, seq, action, state) VALUES (1, 0, 'reserve', 'running');",
        at, at, n_alloc + 1, at);
    exec_or_die(db, sql);
    sqlite3_free(sql);
    if (br_store_write_commit(store, db, &err) < 0)
        die("commit", &err);
    *ret_request = 1;
    *ret_alloc = n_alloc + 1;
}

/* The reserve step's host query, copied from br-workflow-place.c host_set_load(). */
static const char host_sql[] =
    "SELECT h.id, h.name, h.pool, h.enabled, h.maintenance, h.cpu_ratio, h.ram_ratio,"
    " h.disk_ratio, h.cpus, h.memory_mib, h.disk_gib,"
    " coalesce(u.vcpus, 0), coalesce(u.mem, 0), coalesce(u.disk, 0) FROM hosts h LEFT JOIN"
    " (SELECT host_id, sum(CASE WHEN state = 'undefined' THEN 0 ELSE vcpus END) AS vcpus,"
    "  sum(CASE WHEN state = 'undefined' THEN 0 ELSE memory_mib END) AS mem,"
    "  sum(disk_gib) AS disk FROM instances WHERE host_id IS NOT NULL"
    "  AND state != 'deleted' GROUP BY host_id) u ON u.host_id = h.id ORDER BY h.id";

static void bench_sql(CmDb *db, unsigned runs, const char *what)
{
    double *t = calloc(runs, sizeof(double));
    CmError err = {0};
    for (unsigned r = 0; r < runs; r++) {
        _cleanup_stmt_ CmStmt *st = cm_db_prepare(db, host_sql, &err);
        size_t rows = 0;
        int64_t sum = 0;
        double t0 = now_ms();
        while (cm_stmt_step(st, &err) > 0) {
            rows++;
            sum += cm_stmt_int(st, 11) + cm_stmt_int(st, 12);
            (void)cm_stmt_text(st, 1);
            (void)cm_stmt_text(st, 2);
        }
        t[r] = now_ms() - t0;
        if (rows != N_HOSTS || sum == 0)
            die("host query returned the wrong rows", NULL);
    }
    report(what, t, runs, false);
    free(t);
}

/* The host rows alone: the floor for any query that does not aggregate the instances. */
static void bench_hosts_only(CmDb *db, unsigned runs)
{
    static const char sql[] = "SELECT id, name, pool, enabled, maintenance, cpu_ratio, ram_ratio,"
                              " disk_ratio, cpus, memory_mib, disk_gib FROM hosts ORDER BY id";
    double *t = calloc(runs, sizeof(double));
    CmError err = {0};
    for (unsigned r = 0; r < runs; r++) {
        _cleanup_stmt_ CmStmt *st = cm_db_prepare(db, sql, &err);
        size_t rows = 0;
        double t0 = now_ms();
        while (cm_stmt_step(st, &err) > 0) {
            rows++;
            (void)cm_stmt_text(st, 1);
        }
        t[r] = now_ms() - t0;
        if (rows != N_HOSTS)
            die("host rows", NULL);
    }
    report("  the 1,000 host rows alone (no aggregation)", t, runs, false);
    free(t);
}

static void bench_status(BrHosts *hosts, unsigned runs)
{
    double *t = calloc(runs, sizeof(double));
    for (unsigned r = 0; r < runs; r++) {
        BrHostStatus st;
        unsigned known = 0;
        double t0 = now_ms();
        for (int64_t id = 1; id <= N_HOSTS; id++)
            known += br_hosts_status(hosts, id, &st);
        t[r] = now_ms() - t0;
        if (known != N_HOSTS)
            die("a host is not watched", NULL);
    }
    report("br_hosts_status x 1,000 (live status lookups)", t, runs, false);
    free(t);
}

static void bench_place_request(BrDaemon *d, CmDb *db, int64_t request, unsigned runs,
                                const char *what)
{
    double *t = calloc(runs, sizeof(double));
    for (unsigned r = 0; r < runs; r++) {
        CmError err = {0};
        double t0 = now_ms();
        int rc = br_workflow_place_request(d, db, request, "production", &err);
        t[r] = now_ms() - t0;
        if (rc < 0)
            die("br_workflow_place_request", &err);
    }
    report(what, t, runs, true);
    free(t);
}

static void bench_reserve(BrDaemon *d, int64_t alloc, unsigned runs)
{
    double *t = calloc(runs, sizeof(double));
    BrJobRow job = {
        .id = 1, .kind = BR_JOB_PROVISION, .state = BR_JOB_RUNNING, .allocation_id = alloc};
    CmError err = {0};
    CmDb *db = br_store_db(d->store, &err);
    char *undo = sqlite3_mprintf("UPDATE instances SET host_id = NULL, pool = NULL,"
                                 " state = 'pending' WHERE allocation_id = %lld;"
                                 "UPDATE job_steps SET state = 'running' WHERE job_id = 1",
                                 (long long)alloc);
    for (unsigned r = 0; r < runs; r++) {
        if (br_store_write_begin(d->store, &db, &err) < 0)
            die("write_begin", &err);
        exec_or_die(db, undo);
        if (br_store_write_commit(d->store, db, &err) < 0)
            die("commit", &err);
        double t0 = now_ms();
        int rc = br_workflow_reserve(d, &job, 0, &err);
        t[r] = now_ms() - t0;
        if (rc < 0)
            die("br_workflow_reserve", &err);
    }
    sqlite3_free(undo);
    report("br_workflow_reserve (+ write txn, updates, fsync commit)", t, runs, false);
    free(t);
}

static void wait_connected(BrHosts *hosts)
{
    double t0 = now_ms();
    for (;;) {
        unsigned total = 0, connected = 0;
        uint64_t reconnects = 0;
        br_hosts_counts(hosts, &total, &connected, &reconnects);
        if (connected == N_HOSTS) {
            fprintf(stderr, "== %u hosts connected in %.0f ms\n", connected, now_ms() - t0);
            return;
        }
        if (now_ms() - t0 > 120000)
            die("hosts did not connect", NULL);
        usleep(50000);
    }
}

int main(int argc, char **argv)
{
    unsigned runs = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 10) : 1000;
    const char *tmp = getenv("BENCH_TMPDIR") ? getenv("BENCH_TMPDIR")
                      : getenv("TMPDIR")     ? getenv("TMPDIR")
                                             : "/tmp";
    const char *keep = getenv("BENCH_KEEP");
    char dir[512], db_path[600], key_path[600];
    BrDaemon d = {0};
    CmError err = {0};
    int64_t request = 0, alloc = 0;

    if (runs < 10)
        runs = 10;
    printf("placement benchmark: %d hosts, %d instances, %u runs per figure (ms)\n", N_HOSTS,
           N_INSTANCES, runs);
    printf("%-58s %9s %9s %9s %9s %6s\n", "", "median", "p99", "max", "mean", "runs");

    bench_choose(runs, 1, BR_PLACEMENT_SPREAD, false);
    bench_choose(runs, 1, BR_PLACEMENT_PACK, false);
    bench_choose(runs, 1, BR_PLACEMENT_SPREAD, true);
    bench_choose(runs, 10, BR_PLACEMENT_SPREAD, true);

    cm_log_set_level(CM_LOG_WARNING);
    cm_db_global_init();
    if (br_schemas_init(&err) < 0)
        die("schemas", &err);
    snprintf(dir, sizeof(dir), "%s/placement-bench-XXXXXX", tmp);
    if (!mkdtemp(dir))
        die("mkdtemp", NULL);
    snprintf(db_path, sizeof(db_path), "%s/broker.db", dir);
    snprintf(key_path, sizeof(key_path), "%s/audit.key", dir);
    if (br_store_open(db_path, key_path, &d.store, &err) < 0)
        die("br_store_open", &err);
    pthread_mutex_init(&d.policies_lock, NULL);
    if (br_policies_load(SOURCE_DIR "/policies", &d.policies, &err) < 0)
        die("policies", &err);
    populate(d.store, &request, &alloc);

    if (br_virt_init(&err) < 0)
        die("br_virt_init", &err);
    d.hosts = br_hosts_new();
    for (int64_t id = 1; id <= N_HOSTS; id++)
        if (br_hosts_watch(d.hosts, id, "test:///default", "default-pool") < 0)
            die("br_hosts_watch", NULL);
    wait_connected(d.hosts);

    CmDb *db = br_store_db(d.store, &err);
    if (!db)
        die("br_store_db", &err);
    bench_sql(db, runs, "host query alone (SQL of host_set_load, 1,000 rows)");
    bench_status(d.hosts, runs);
    bench_place_request(&d, db, request, runs, "br_workflow_place_request (DB + status + choose)");
    bench_reserve(&d, alloc, runs < 200 ? runs : 200);

    /*
     * What-ifs, on this temporary database only, to size the remedies: a covering index for
     * the aggregation, and the floor of reading the 1,000 host rows with no aggregation at all
     * (what a per-host usage table kept up to date by each placement would cost).
     */
    printf("what-if (this benchmark's database only):\n");
    exec_or_die(db, "CREATE INDEX bench_cover ON instances(host_id, state, vcpus, memory_mib,"
                    " disk_gib)");
    bench_sql(db, runs, "  host query with a covering index on instances");
    bench_place_request(&d, db, request, runs, "  br_workflow_place_request, covering index");
    bench_hosts_only(db, runs);

    d.hosts = br_hosts_free(d.hosts);
    br_policies_unref(d.policies);
    d.store = br_store_free(d.store);
    if (keep && strcmp(keep, "1") == 0) {
        fprintf(stderr, "== kept %s\n", dir);
    } else {
        char path[700];
        static const char *const files[] = {"broker.db", "broker.db-wal", "broker.db-shm",
                                            "audit.key"};
        for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
            snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
            unlink(path);
        }
        rmdir(dir);
    }
    return 0;
}
