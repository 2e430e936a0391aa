/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Cost statement benchmark (issue 12: "the monthly statement ... for 5,000 instances and a
 * month of history, under 2 s"). Prints figures; asserts nothing about time.
 *
 * A temporary SQLite store migrated by br_store_open() holds 20 departments, 200 systems,
 * 1,250 production allocations of 4 instances (5,000) made before December 2026, and their
 * history in December: every instance resized once, one in ten stopped and started again,
 * one in twenty terminated with its volume retained on the 20th and deleted on the 25th. The
 * pricing has a production price change on the 16th. Timed, each the median of RUNS:
 *
 *   1. br_instance_cost_history(): the read of the month's history (what GET /v1/reports/costs
 *      reads in its read transaction);
 *   2. br_cost_statement(): the pricing and the document;
 *   3. the JSON serialization, the CSV and the HTML renderings;
 *   4. the whole (1 + 2 + the JSON), as the handler answers format=json;
 *   5. the vendor's service-quality scorecard of the same month (docs/service-quality.md) over
 *      the same 5,000 instances, with an outage event for one in ten, a production provision
 *      job per allocation and an incident per system: br_report_sla_input() (its read),
 *      br_sla_scorecard(), and the whole JSON answer; the HTML rendering.
 *
 * Usage: cost-bench [RUNS] (default 5). Environment: BENCH_TMPDIR (default $TMPDIR or /tmp).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "br-cost.h"
#include "br-instance.h"
#include "br-report-sla.h"
#include "br-report.h"
#include "br-schemas.h"
#include "br-sla.h"
#include "br-store.h"
#include "cm-db.h"
#include "cm-json.h"
#include "cm-log.h"
#include "cm-time.h"

#define N_DEPARTMENTS 20
#define SYSTEMS_PER_DEPARTMENT 10
#define N_ALLOCATIONS 1250
#define INSTANCES_PER_ALLOCATION 4
#define DAY_MS INT64_C(86400000)

static const char *pricing_text =
    "{\"currency\": \"CNY\", \"prices\": ["
    " {\"from\": \"2026-01-01\", \"purpose\": \"production\", \"vcpu_hour\": 0.12,"
    "  \"memory_gib_hour\": 0.03, \"disk_gib_month\": 0.35,"
    "  \"images\": [{\"image\": \"windows\", \"vcpu_hour\": 0.30}]},"
    " {\"from\": \"2026-12-16\", \"purpose\": \"production\", \"vcpu_hour\": 0.10,"
    "  \"memory_gib_hour\": 0.03, \"disk_gib_month\": 0.35},"
    " {\"from\": \"2026-01-01\", \"purpose\": \"trial\", \"vcpu_hour\": 0,"
    "  \"memory_gib_hour\": 0, \"disk_gib_month\": 0}]}";

static const char *sla_text =
    "{\"cap_percent\": 20, \"indicators\": {"
    " \"availability\": {\"target_percent\": 99.9, \"deduction_percent\": 1,"
    "  \"cap_percent\": 10},"
    " \"trial_lead_time\": {\"limit_hours\": 24, \"deduction_percent\": 0.5, \"cap_percent\": 3},"
    " \"allocation_lead_time\": {\"limit_hours\": 4, \"deduction_percent\": 0.5,"
    "  \"cap_percent\": 3},"
    " \"change_lead_time\": {\"limit_hours\": 24, \"deduction_percent\": 0.5, \"cap_percent\": 3},"
    " \"incident_response\": {\"limit_hours\": {\"critical\": 0.5, \"high\": 1,"
    "  \"medium\": 4, \"low\": 24}, \"deduction_percent\": 1, \"cap_percent\": 5},"
    " \"incident_resolution\": {\"limit_hours\": {\"critical\": 4, \"high\": 24,"
    "  \"medium\": 72, \"low\": 168}, \"deduction_percent\": 1, \"cap_percent\": 5},"
    " \"vulnerability_fix\": {\"limit_days\": {\"critical\": 7, \"high\": 30,"
    "  \"medium\": 90, \"low\": 180}, \"deduction_percent\": 1, \"cap_percent\": 5}}}";

static void die(const char *what, const CmError *err)
{
    fprintf(stderr, "cost-bench: %s: %s\n", what, err ? err->message : strerror(errno));
    exit(1);
}

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

static void step_or_die(CmStmt *st)
{
    CmError err = {0};
    if (cm_stmt_exec(st, &err) < 0)
        die("insert", &err);
    cm_stmt_reset(st);
}

static int64_t ms_of(const char *iso)
{
    int64_t t = 0;
    if (cm_time_parse_iso(iso, &t) < 0)
        die(iso, NULL);
    return t;
}

/* One history row of instance @id at @t. */
static void history(CmStmt *st, int64_t id, int64_t t, const char *state, int64_t vcpus,
                    int64_t mib, int64_t gib)
{
    char at[CM_TIME_ISO_LEN + 1];
    cm_time_iso(t, at);
    CM_DB_BIND(st, id, at, state, vcpus, mib, gib);
    step_or_die(st);
}

/* Fills the store; returns the number of history rows. */
static int64_t populate(BrStore *store)
{
    CmError err = {0};
    CmDb *db;
    int64_t dec = ms_of("2026-12-01T00:00:00Z"), made = ms_of("2026-11-10T08:00:00Z");
    int64_t rows = 0, id = 0;
    unsigned seed = 11;
    char at[CM_TIME_ISO_LEN + 1];

    cm_time_iso(made, at);
    if (br_store_write_begin(store, &db, &err) < 0)
        die("write_begin", &err);
    {
        _cleanup_stmt_ CmStmt *dep =
            cm_db_prepare(db,
                          "INSERT INTO departments(id, code, name, quota_vcpus, quota_memory_mib,"
                          " quota_disk_gib, quota_instances, created_at, updated_at)"
                          " VALUES (?1, ?2, ?2, 100000, 100000000, 1000000, 10000, ?3, ?3)",
                          &err);
        _cleanup_stmt_ CmStmt *sys = cm_db_prepare(
            db,
            "INSERT INTO systems(id, department_id, name, category, protection_level, status,"
            " created_at, updated_at) VALUES (?1, ?2, ?3, 'website', 2, 'active', ?4, ?4)",
            &err);
        _cleanup_stmt_ CmStmt *alloc = cm_db_prepare(
            db,
            "INSERT INTO allocations(id, department_id, system_id, request_id, state, purpose,"
            " created_at, updated_at) VALUES (?1, ?2, ?3, ?1, 'active', 'production', ?4, ?4)",
            &err);
        _cleanup_stmt_ CmStmt *inst = cm_db_prepare(
            db,
            "INSERT INTO instances(id, allocation_id, idx, name, uuid, vcpus, memory_mib,"
            " disk_gib, max_vcpus, max_memory_mib, image, pool, volume, state, created_at,"
            " updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?6, ?7, ?9, 'default', ?4,"
            " 'running', ?10, ?10)",
            &err);
        _cleanup_stmt_ CmStmt *hist = cm_db_prepare(
            db,
            "INSERT INTO instance_history(instance_id, at, state, vcpus, memory_mib, disk_gib)"
            " VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            &err);
        _cleanup_stmt_ CmStmt *ev = cm_db_prepare(
            db,
            "INSERT INTO events(kind, severity, instance_id, message, first_seen, last_seen,"
            " resolved_at) VALUES ('instance_state', 'warning', ?1, 'stopped', ?2, ?3, ?3)",
            &err);
        _cleanup_stmt_ CmStmt *job = cm_db_prepare(
            db,
            "INSERT INTO jobs(kind, state, allocation_id, created_at, started_at, finished_at)"
            " VALUES ('provision', 'done', ?1, ?2, ?2, ?3)",
            &err);
        _cleanup_stmt_ CmStmt *inc = cm_db_prepare(
            db,
            "INSERT INTO incidents(system_id, severity, title, occurred_at, resolved_at,"
            " recorded_by, created_at, resolution_recorded_at) VALUES (?1, ?2, 'bench', ?3, ?4,"
            " 1, ?5, ?4)",
            &err);
        if (!dep || !sys || !alloc || !inst || !hist || !ev || !job || !inc)
            die("prepare", &err);
        for (int d = 1; d <= N_DEPARTMENTS; d++) {
            char code[16];
            snprintf(code, sizeof(code), "d%02d", d);
            CM_DB_BIND(dep, d, code, at);
            step_or_die(dep);
            for (int s = 0; s < SYSTEMS_PER_DEPARTMENT; s++) {
                char name[32];
                snprintf(name, sizeof(name), "system-%02d-%02d", d, s);
                CM_DB_BIND(sys, (d - 1) * SYSTEMS_PER_DEPARTMENT + s + 1, d, name, at);
                step_or_die(sys);
                {
                    static const char *const sev[] = {"critical", "high", "medium", "low"};
                    char o[CM_TIME_ISO_LEN + 1], c[CM_TIME_ISO_LEN + 1], z[CM_TIME_ISO_LEN + 1];
                    int64_t occ = dec + (int64_t)(s * 3 + d) % 28 * DAY_MS;
                    cm_time_iso(occ, o);
                    cm_time_iso(occ + 600000, c);
                    cm_time_iso(occ + (int64_t)(1 + (s + d) % 30) * 3600000, z);
                    CM_DB_BIND(inc, (d - 1) * SYSTEMS_PER_DEPARTMENT + s + 1, sev[(s + d) % 4], o,
                               z, c);
                    step_or_die(inc);
                }
            }
        }
        for (int a = 1; a <= N_ALLOCATIONS; a++) {
            int64_t system = 1 + (a - 1) % (N_DEPARTMENTS * SYSTEMS_PER_DEPARTMENT);
            int64_t department = 1 + (system - 1) / SYSTEMS_PER_DEPARTMENT;
            CM_DB_BIND(alloc, a, department, system, at);
            step_or_die(alloc);
            {
                char c[CM_TIME_ISO_LEN + 1], z[CM_TIME_ISO_LEN + 1];
                int64_t made_job = dec + (int64_t)(a % 28) * DAY_MS + 3600000;
                cm_time_iso(made_job, c);
                cm_time_iso(made_job + (int64_t)(a % 7) * 3600000, z);
                CM_DB_BIND(job, a, c, z);
                step_or_die(job);
            }
            for (int k = 0; k < INSTANCES_PER_ALLOCATION; k++) {
                char name[32], uuid[40];
                int64_t v = 1 + rand_r(&seed) % 8, m = 1024 * (1 + rand_r(&seed) % 16);
                int64_t g = 20 + rand_r(&seed) % 200;
                const char *image = rand_r(&seed) % 10 == 0 ? "windows" : "debian-12";

                id++;
                snprintf(name, sizeof(name), "cb-%d-%d", a, k);
                snprintf(uuid, sizeof(uuid), "00000000-0000-4000-8000-%012lld", (long long)id);
                CM_DB_BIND(inst, id, a, k, name, uuid, v, m, g, image, at);
                step_or_die(inst);
                history(hist, id, made, "pending", v, m, g);
                history(hist, id, made + 1000, "placed", v, m, g);
                history(hist, id, made + 2000, "created", v, m, g);
                history(hist, id, made + 3000, "defined", v, m, g);
                history(hist, id, made + 4000, "running", v, m, g);
                rows += 5;
                /* December: a resize at a random moment; some stopped and started; some
                 * terminated with retention, then purged. */
                int64_t t = dec + (int64_t)(rand_r(&seed) % 31) * DAY_MS + rand_r(&seed) % DAY_MS;
                history(hist, id, t, "running", v + 1, m * 2, g);
                rows++;
                if (id % 10 == 5) { /* an outage of 2 h on the 5th */
                    char x[CM_TIME_ISO_LEN + 1], y[CM_TIME_ISO_LEN + 1];
                    cm_time_iso(dec + 5 * DAY_MS, x);
                    cm_time_iso(dec + 5 * DAY_MS + 7200000, y);
                    CM_DB_BIND(ev, id, x, y);
                    step_or_die(ev);
                }
                if (id % 10 == 0) {
                    history(hist, id, dec + 3 * DAY_MS, "shutoff", v, m, g);
                    history(hist, id, dec + 4 * DAY_MS, "running", v, m, g);
                    rows += 2;
                }
                if (id % 20 == 0) {
                    history(hist, id, dec + 20 * DAY_MS, "undefined", v, m, g);
                    history(hist, id, dec + 25 * DAY_MS, "deleted", v, m, g);
                    rows += 2;
                }
            }
        }
    }
    if (br_store_write_commit(store, db, &err) < 0)
        die("commit", &err);
    return rows;
}

typedef struct {
    const char *what;
    double ms[64];
    int n;
} Figure;

static void report(const Figure *f)
{
    double s[64];
    memcpy(s, f->ms, sizeof(double) * (size_t)f->n);
    qsort(s, (size_t)f->n, sizeof(double), cmp_double);
    printf("%-52s %9.1f %9.1f %9.1f %5d\n", f->what, s[f->n / 2], s[0], s[f->n - 1], f->n);
}

int main(int argc, char **argv)
{
    int runs = argc > 1 ? (int)strtol(argv[1], NULL, 10) : 5;
    const char *tmp = getenv("BENCH_TMPDIR") ? getenv("BENCH_TMPDIR")
                      : getenv("TMPDIR")     ? getenv("TMPDIR")
                                             : "/tmp";
    char dir[512], db_path[600], key_path[600];
    _cleanup_json_ json_object *pdoc = NULL;
    BrPricingPolicy pricing = {0};
    BrStore *store = NULL;
    CmError err = {0};
    int64_t m0 = ms_of("2026-12-01T00:00:00Z"), m1 = ms_of("2027-01-01T00:00:00Z");
    Figure f_read = {"read: br_instance_cost_history", {0}, 0};
    Figure f_price = {"price: br_cost_statement", {0}, 0};
    Figure f_json = {"JSON serialization", {0}, 0};
    Figure f_csv = {"CSV rendering", {0}, 0};
    Figure f_html = {"HTML rendering", {0}, 0};
    Figure f_all = {"the whole JSON answer (read + price + serialize)", {0}, 0};
    size_t json_len = 0, csv_len = 0, html_len = 0;
    int64_t total_fen = 0;

    if (runs < 1 || runs > 64)
        runs = 5;
    cm_log_set_level(CM_LOG_WARNING);
    cm_db_global_init();
    if (br_schemas_init(&err) < 0)
        die("schemas", &err);
    if (cm_json_parse(pricing_text, strlen(pricing_text), &pdoc, &err) < 0 ||
        br_pricing_parse(pdoc, &pricing, &err) < 0)
        die("pricing", &err);
    snprintf(dir, sizeof(dir), "%s/cost-bench-XXXXXX", tmp);
    if (!mkdtemp(dir))
        die("mkdtemp", NULL);
    snprintf(db_path, sizeof(db_path), "%s/broker.db", dir);
    snprintf(key_path, sizeof(key_path), "%s/audit.key", dir);
    if (br_store_open(db_path, key_path, &store, &err) < 0)
        die("br_store_open", &err);
    double t = now_ms();
    int64_t rows = populate(store);
    printf("cost benchmark: %d instances, %lld history rows (December 2026), filled in %.0f ms; "
           "%d runs per figure (ms)\n",
           N_ALLOCATIONS * INSTANCES_PER_ALLOCATION, (long long)rows, now_ms() - t, runs);
    printf("%-52s %9s %9s %9s %5s\n", "", "median", "min", "max", "runs");

    CmDb *db = br_store_db(store, &err);
    if (!db)
        die("br_store_db", &err);
    for (int i = 0; i < runs; i++) {
        BrCostInstance *v = NULL;
        size_t n = 0;
        json_object *doc = NULL;
        const char *text;

        double t0 = now_ms();
        if (br_instance_cost_history(db, m0, m1, 0, &v, &n, &err) < 0)
            die("br_instance_cost_history", &err);
        double t1 = now_ms();
        if (br_cost_statement(&pricing, v, n, m0, m1, m1, &doc) < 0)
            die("br_cost_statement", NULL);
        double t2 = now_ms();
        text = json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PLAIN);
        json_len = strlen(text);
        double t3 = now_ms();
        char *csv = br_report_csv(doc, BR_LANG_ZH);
        double t4 = now_ms();
        char *html = br_report_html(doc, BR_LANG_ZH);
        double t5 = now_ms();
        csv_len = csv ? strlen(csv) : 0;
        html_len = html ? strlen(html) : 0;
        total_fen = cm_json_get_int(cm_json_get(doc, "total"), "total_fen", -1);
        free(csv);
        free(html);
        json_object_put(doc);
        br_cost_instances_free(v, n);
        f_read.ms[i] = t1 - t0;
        f_price.ms[i] = t2 - t1;
        f_json.ms[i] = t3 - t2;
        f_csv.ms[i] = t4 - t3;
        f_html.ms[i] = t5 - t4;
        f_all.ms[i] = t3 - t0;
        f_read.n = f_price.n = f_json.n = f_csv.n = f_html.n = f_all.n = i + 1;
    }
    /* The scorecard of the same month. */
    _cleanup_json_ json_object *sdoc = NULL;
    BrSlaPolicy sla;
    Figure f_sread = {"scorecard read: br_report_sla_input", {0}, 0};
    Figure f_score = {"scorecard: br_sla_scorecard", {0}, 0};
    Figure f_sall = {"the whole scorecard JSON answer", {0}, 0};
    Figure f_shtml = {"scorecard HTML rendering", {0}, 0};
    size_t sjson_len = 0;
    int64_t fee_after = 0, avail_down = 0;
    if (cm_json_parse(sla_text, strlen(sla_text), &sdoc, &err) < 0 ||
        br_schema_check("policy-service-quality", sdoc, &err) < 0 ||
        br_sla_parse(sdoc, &sla, &err) < 0)
        die("service quality", &err);
    for (int i = 0; i < runs; i++) {
        BrSlaInput in = {0};
        json_object *doc = NULL;
        double t0 = now_ms();
        if (br_report_sla_input(db, m0, m1, &in, &err) < 0)
            die("br_report_sla_input", &err);
        double t1 = now_ms();
        if (br_sla_scorecard(&sla, &in, m0, m1, m1, 30000000, &doc) < 0)
            die("br_sla_scorecard", NULL);
        double t2 = now_ms();
        sjson_len = strlen(json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PLAIN));
        double t3 = now_ms();
        char *html = br_report_html(doc, BR_LANG_ZH);
        double t4 = now_ms();
        fee_after = cm_json_get_int(doc, "fee_after_fen", -1);
        avail_down = cm_json_get_int(
            cm_json_get(json_object_array_get_idx(cm_json_get(doc, "indicators"), 0), "measured"),
            "down_ms", -1);
        free(html);
        json_object_put(doc);
        br_sla_input_clear(&in);
        f_sread.ms[i] = t1 - t0;
        f_score.ms[i] = t2 - t1;
        f_sall.ms[i] = t3 - t0;
        f_shtml.ms[i] = t4 - t3;
        f_sread.n = f_score.n = f_sall.n = f_shtml.n = i + 1;
    }
    report(&f_read);
    report(&f_price);
    report(&f_json);
    report(&f_csv);
    report(&f_html);
    report(&f_all);
    printf("statement: total %lld.%02lld yuan; JSON %zu bytes, CSV %zu bytes, HTML %zu bytes\n",
           (long long)(total_fen / 100), (long long)(total_fen % 100), json_len, csv_len, html_len);
    report(&f_sread);
    report(&f_score);
    report(&f_sall);
    report(&f_shtml);
    printf(
        "scorecard: %lld ms down in all, fee after deductions %lld.%02lld yuan; JSON %zu bytes\n",
        (long long)avail_down, (long long)(fee_after / 100), (long long)(fee_after % 100),
        sjson_len);
    br_pricing_clear(&pricing);
    br_store_free(store);
    unlink(db_path);
    unlink(key_path);
    {
        char p[700];
        snprintf(p, sizeof(p), "%s-wal", db_path);
        unlink(p);
        snprintf(p, sizeof(p), "%s-shm", db_path);
        unlink(p);
    }
    rmdir(dir);
    return 0;
}
