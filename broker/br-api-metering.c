/* SPDX-License-Identifier: Apache-2.0 */
/* POST /v1/samples, usage series and summaries, rollup on demand. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "br-api.h"
#include "br-daemon.h"
#include "br-hist.h"
#include "br-metering.h"
#include "cm-time.h"
#include "cm-util.h"

/* Counters summed over many windows can pass 2^63: they saturate instead (SQLite's sum()
 * fails on an integer overflow; total() is a double, cast back with saturation). NULL when
 * every window lacks the counter. */
#define SATSUM(col) "CASE WHEN count(" col ") > 0 THEN CAST(total(" col ") AS INTEGER) END"

static int64_t sat_add(int64_t a, int64_t b)
{
    int64_t r;
    return __builtin_add_overflow(a, b, &r) ? (b > 0 ? INT64_MAX : INT64_MIN) : r;
}

static int br_api_samples_post(BrCall *c)
{
    _cleanup_(br_samples_batch_free) BrSamplesBatch batch = {0};
    BrIngestResult res = {0};
    json_object *o, *rejected;
    char detail[256];
    CmDb *db;
    int r;

    /* The route's body is BR_BODY_JSON_RAW: parsed and checked here, in one pass, with the
     * answers cm_json_parse() and schemas/samples.json would give; before the write lock. */
    r = br_samples_parse(c->buf ? c->buf : "", c->len, &batch, &c->err);
    if (r < 0)
        return r;
    r = br_api_write_begin(c, &db);
    if (r < 0)
        return r;
    r = br_metering_ingest(c->d, db, c->actor.host_id, &batch, &res, &c->err);
    snprintf(detail, sizeof(detail),
             "{\"stored\":%lld,\"duplicates\":%lld,\"unowned\":%lld,\"host\":%lld,"
             "\"overlapping\":%lld,\"unowned_dropped\":%lld}",
             (long long)res.stored, (long long)res.duplicates, (long long)res.unowned,
             (long long)res.host, (long long)res.overlapping, (long long)res.unowned_dropped);
    if (r >= 0)
        r = br_store_audit(c->d->store, db, &c->actor, "samples.ingest", "host", c->actor.host_id,
                           "ok", detail, &c->err);
    r = br_api_write_end(c, db, r);
    if (r < 0)
        return r;
    o = json_object_new_object();
    json_object_object_add(o, "stored", json_object_new_int64(res.stored));
    json_object_object_add(o, "duplicates", json_object_new_int64(res.duplicates));
    json_object_object_add(o, "unowned", json_object_new_int64(res.unowned));
    json_object_object_add(o, "host", json_object_new_int64(res.host));
    json_object_object_add(o, "overlapping", json_object_new_int64(res.overlapping));
    json_object_object_add(o, "unowned_dropped", json_object_new_int64(res.unowned_dropped));
    /* Each window refused alone, as an error body would name it (the first 100). */
    rejected = json_object_new_array();
    for (size_t i = 0; i < res.n_rejected; i++) {
        const BrIngestRejection *x = &res.rejected[i];
        json_object *e = json_object_new_object();
        char field[64], msg[256];
        snprintf(field, sizeof(field), "/instances/%zu/start", x->index);
        snprintf(msg, sizeof(msg),
                 "record %zu: the window [%lld, %lld) of instance %lld overlaps the stored "
                 "window [%lld, %lld): not stored, its seconds would count twice",
                 x->index, (long long)x->start, (long long)(x->start + x->duration),
                 (long long)x->instance, (long long)x->other_start,
                 (long long)(x->other_start + x->other_duration));
        json_object_object_add(e, "code", json_object_new_string("overlapping_window"));
        json_object_object_add(e, "field", json_object_new_string(field));
        json_object_object_add(e, "message", json_object_new_string(msg));
        json_object_array_add(rejected, e);
    }
    json_object_object_add(o, "rejected", rejected);
    return br_reply(c, MHD_HTTP_OK, o);
}

/* ?from= / ?to=: ISO 8601 or seconds since the epoch. */
static int time_param(BrCall *c, const char *key, int64_t def, int64_t *ret)
{
    const char *v = br_call_query(c, key);
    int64_t t;
    if (!v) {
        *ret = def;
        return 0;
    }
    if (cm_parse_int64(v, 0, INT64_C(1) << 40, &t) == 0) {
        *ret = t;
        return 0;
    }
    if (cm_time_parse_iso(v, &t) == 0) {
        *ret = t / 1000;
        return 0;
    }
    return cm_error_set(&c->err, CM_ERROR_INVALID, key,
                        "%s must be an ISO 8601 time or seconds since the epoch", key);
}

/* from and to; and step when @step is not NULL (an allocation's summary has none). */
static int range_params(BrCall *c, int64_t *from, int64_t *to, int64_t *step)
{
    int64_t now = cm_now_ms() / 1000;
    int r = time_param(c, "to", now, to);
    if (r >= 0)
        r = time_param(c, "from", *to - 86400, from);
    if (r >= 0 && !step && *from >= *to)
        return cm_error_set(&c->err, CM_ERROR_INVALID, "from", "from must be before to");
    if (r < 0 || !step)
        return r;
    if (r >= 0) {
        *step = 300;
        r = br_call_query_int(c, "step", 10, 366 * 86400, step);
    }
    if (r < 0)
        return r;
    if (*from >= *to)
        return cm_error_set(&c->err, CM_ERROR_INVALID, "from", "from must be before to");
    if ((*to - *from) / *step > 20000)
        return cm_error_set(&c->err, CM_ERROR_INVALID, "step",
                            "at most 20000 points: choose a larger step");
    return 0;
}

/* The department owning instance @id, checking the caller's scope (404 outside it). */
static int instance_scope(BrCall *c, CmDb *db, int64_t id, int64_t *ret_vcpus)
{
    sqlite3_stmt *s = cm_db_stmt(db,
                                 "SELECT a.department_id, i.vcpus FROM instances i"
                                 " JOIN allocations a ON a.id = i.allocation_id WHERE i.id = ?",
                                 &c->err);
    int r;
    int64_t dept = 0;
    if (!s)
        return -EIO;
    CM_DB_BIND(s, id);
    r = cm_db_step_row(db, s, &c->err);
    if (r > 0) {
        dept = sqlite3_column_int64(s, 0);
        if (ret_vcpus)
            *ret_vcpus = sqlite3_column_int64(s, 1);
    }
    sqlite3_reset(s);
    if (r < 0)
        return r;
    if (r == 0 || (br_call_is_department(c) && dept != c->actor.department_id))
        return br_not_found(c, "instance", id);
    return 0;
}

static json_object *num_or_null(sqlite3_stmt *s, int col)
{
    return sqlite3_column_type(s, col) == SQLITE_NULL
               ? NULL
               : json_object_new_double(sqlite3_column_double(s, col));
}

static json_object *int_or_null(sqlite3_stmt *s, int col)
{
    return sqlite3_column_type(s, col) == SQLITE_NULL
               ? NULL
               : json_object_new_int64(sqlite3_column_int64(s, col));
}

static int br_api_instances_usage(BrCall *c)
{
    int64_t id = c->ids[0], from, to, step;
    CmDb *db = br_api_read_db(c);
    json_object *o, *points;
    bool daily;
    sqlite3_stmt *s;
    int r;

    if (!db)
        return -EIO;
    r = range_params(c, &from, &to, &step);
    if (r >= 0)
        r = cm_db_begin_read(db, &c->err);
    if (r < 0)
        return r;
    r = instance_scope(c, db, id, NULL);
    if (r < 0) {
        cm_db_rollback(db);
        return r;
    }
    /* A day or more per point comes from the daily rollups, kept for ever. */
    daily = step >= 86400;
    if (daily) {
        step -= step % 86400;
        s = cm_db_stmt(
            db,
            "SELECT (unixepoch(day) / ?1) * ?1 AS b, sum(windows), sum(readings),"
            " sum(expected), sum(cpu_avg * readings) / nullif(sum(CASE WHEN cpu_avg"
            " IS NOT NULL THEN readings END), 0), max(cpu_max), max(cpu_p95),"
            " sum(mem_avg * readings) / nullif(sum(CASE WHEN mem_avg IS NOT NULL"
            " THEN readings END), 0), max(mem_max), max(vcpus), max(memory_mib),"
            " " SATSUM("disk_rd_bytes") ", " SATSUM(
                "disk_wr_bytes") ","
                                 " " SATSUM("net_rx_bytes") ", " SATSUM(
                                     "net_tx_bytes") ","
                                                     " " SATSUM("disk_rd_reqs") ", " SATSUM(
                                                         "disk_wr_reqs") ","
                                                                         " " SATSUM("net_rx_pkts") ", " SATSUM(
                                                                             "net_tx_pkts") ", "
                                                                                            "86400,"
                                                                                            " count"
                                                                                            "(*)"
                                                                                            " FROM "
                                                                                            "rollup"
                                                                                            "s "
                                                                                            "WHERE "
                                                                                            "instan"
                                                                                            "ce_id "
                                                                                            "= ?2 "
                                                                                            "AND "
                                                                                            "unixep"
                                                                                            "och("
                                                                                            "day) "
                                                                                            ">= ?3"
                                                                                            " AND "
                                                                                            "unixep"
                                                                                            "och("
                                                                                            "day) "
                                                                                            "< ?4 "
                                                                                            "GROUP "
                                                                                            "BY b "
                                                                                            "ORDER "
                                                                                            "BY b",
            &c->err);
    } else {
        s = cm_db_stmt(
            db,
            "SELECT (start / ?1) * ?1 AS b, count(*), sum(readings), sum(expected),"
            " sum(cpu_avg * readings) / nullif(sum(CASE WHEN cpu_avg IS NOT NULL"
            " THEN readings END), 0), max(cpu_max), NULL,"
            " sum(mem_avg * readings) / nullif(sum(CASE WHEN mem_avg IS NOT NULL"
            " THEN readings END), 0), max(mem_max), max(vcpus), max(memory_mib),"
            " " SATSUM("disk_rd_bytes") ", " SATSUM(
                "disk_wr_bytes") ","
                                 " " SATSUM("net_rx_bytes") ", " SATSUM(
                                     "net_tx_bytes") ","
                                                     " " SATSUM("disk_rd_reqs") ", " SATSUM(
                                                         "disk_wr_reqs") ","
                                                                         " " SATSUM("net_rx_pkts") ", " SATSUM(
                                                                             "net_tx_pkts") ", "
                                                                                            "max("
                                                                                            "durati"
                                                                                            "on), "
                                                                                            "count("
                                                                                            "*)"
                                                                                            " FROM "
                                                                                            "sample"
                                                                                            "s "
                                                                                            "WHERE "
                                                                                            "instan"
                                                                                            "ce_id "
                                                                                            "= ?2 "
                                                                                            "AND "
                                                                                            "start "
                                                                                            ">= ?3 "
                                                                                            "AND "
                                                                                            "start "
                                                                                            "< ?4"
                                                                                            " GROUP"
                                                                                            " BY b "
                                                                                            "ORDER "
                                                                                            "BY b",
            &c->err);
    }
    if (!s) {
        cm_db_rollback(db);
        return -EIO;
    }
    CM_DB_BIND(s, step, id, from, to);
    points = json_object_new_array();
    while ((r = cm_db_step_row(db, s, &c->err)) > 0) {
        json_object *p = json_object_new_object();
        int64_t readings = sqlite3_column_int64(s, 2), windows = sqlite3_column_int64(s, 1);
        int64_t duration = sqlite3_column_int64(s, 19) > 0 ? sqlite3_column_int64(s, 19) : 300;
        double per_window = windows ? (double)sqlite3_column_int64(s, 3) / (double)windows : 1;
        /* Coverage: the readings that arrived out of those the whole step should have. */
        /* (daily: the rollups' expected readings per day, over the days there are) */
        int64_t rows = sqlite3_column_int64(s, 20);
        double expected = daily ? (double)sqlite3_column_int64(s, 3) * ((double)step / 86400.0) /
                                      (double)(rows ? rows : 1)
                                : (double)step / (double)duration * per_window;
        double coverage = expected > 0 ? (double)readings / expected : 0;
        int64_t vcpus = sqlite3_column_int64(s, 9), mem = sqlite3_column_int64(s, 10);
        char when[CM_TIME_ISO_LEN + 1];
        cm_time_iso(sqlite3_column_int64(s, 0) * 1000, when);
        json_object_object_add(p, "start", json_object_new_string(when));
        json_object_object_add(p, "windows", json_object_new_int64(windows));
        json_object_object_add(p, "readings", json_object_new_int64(readings));
        json_object_object_add(p, "coverage", json_object_new_double(coverage > 1 ? 1 : coverage));
        json_object_object_add(p, "vcpus", int_or_null(s, 9));
        json_object_object_add(p, "memory_mib", int_or_null(s, 10));
        json_object_object_add(p, "cpu_cores_avg", num_or_null(s, 4));
        json_object_object_add(p, "cpu_cores_max", num_or_null(s, 5));
        if (daily)
            json_object_object_add(p, "cpu_cores_p95", num_or_null(s, 6));
        json_object_object_add(
            p, "cpu_utilization_avg",
            sqlite3_column_type(s, 4) != SQLITE_NULL && vcpus > 0
                ? json_object_new_double(sqlite3_column_double(s, 4) / (double)vcpus)
                : NULL);
        json_object_object_add(p, "memory_used_mib_avg", num_or_null(s, 7));
        json_object_object_add(p, "memory_used_mib_max", num_or_null(s, 8));
        json_object_object_add(
            p, "memory_utilization_avg",
            sqlite3_column_type(s, 7) != SQLITE_NULL && mem > 0
                ? json_object_new_double(sqlite3_column_double(s, 7) / (double)mem)
                : NULL);
        json_object_object_add(p, "disk_read_bytes", int_or_null(s, 11));
        json_object_object_add(p, "disk_write_bytes", int_or_null(s, 12));
        json_object_object_add(p, "net_rx_bytes", int_or_null(s, 13));
        json_object_object_add(p, "net_tx_bytes", int_or_null(s, 14));
        json_object_object_add(p, "disk_read_requests", int_or_null(s, 15));
        json_object_object_add(p, "disk_write_requests", int_or_null(s, 16));
        json_object_object_add(p, "net_rx_packets", int_or_null(s, 17));
        json_object_object_add(p, "net_tx_packets", int_or_null(s, 18));
        json_object_array_add(points, p);
    }
    sqlite3_reset(s);
    cm_db_rollback(db);
    if (r < 0) {
        json_object_put(points);
        return r;
    }
    o = json_object_new_object();
    char f[CM_TIME_ISO_LEN + 1], t[CM_TIME_ISO_LEN + 1];
    cm_time_iso(from * 1000, f);
    cm_time_iso(to * 1000, t);
    json_object_object_add(o, "instance_id", json_object_new_int64(id));
    json_object_object_add(o, "from", json_object_new_string(f));
    json_object_object_add(o, "to", json_object_new_string(t));
    json_object_object_add(o, "step", json_object_new_int64(step));
    json_object_object_add(o, "source",
                           json_object_new_string(daily ? "daily rollups" : "5-minute samples"));
    json_object_object_add(o, "points", points);
    return br_reply(c, MHD_HTTP_OK, o);
}

/* One instance's figures over a range, from its samples. */
static json_object *instance_summary(CmDb *db, int64_t id, const char *name, int64_t from,
                                     int64_t to, CmError *err)
{
    sqlite3_stmt *s = cm_db_stmt(db,
                                 "SELECT readings, expected, duration, vcpus, memory_mib,"
                                 " cpu_avg, cpu_max, mem_avg, mem_max, net_rx_bytes,"
                                 " net_tx_bytes FROM samples WHERE instance_id = ?"
                                 " AND start >= ? AND start < ?",
                                 err);
    _cleanup_free_ double *cpu = NULL, *mem = NULL;
    size_t n_cpu = 0, n_mem = 0, cap = 0;
    int64_t windows = 0, readings = 0, expected_per = 0, duration = 300, vcpus = 0, memory = 0;
    int64_t rx = 0, tx = 0;
    double cpu_w = 0, cpu_sum = 0, mem_w = 0, mem_sum = 0, cpu_max = -1, mem_max = -1;
    json_object *o;

    if (!s)
        return NULL;
    CM_DB_BIND(s, id, from, to);
    int rc;
    while ((rc = cm_db_step_row(db, s, err)) > 0) {
        if (windows == (int64_t)cap) {
            cap = cap ? cap * 2 : 256;
            double *nc = realloc(cpu, cap * sizeof(double)), *nm;
            if (nc)
                cpu = nc;
            nm = realloc(mem, cap * sizeof(double));
            if (nm)
                mem = nm;
            if (!nc || !nm) {
                rc = cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
                break;
            }
        }
        int64_t rd = sqlite3_column_int64(s, 0);
        windows++;
        readings += rd;
        expected_per = sqlite3_column_int64(s, 1);
        duration = sqlite3_column_int64(s, 2);
        if (sqlite3_column_type(s, 3) != SQLITE_NULL)
            vcpus = sqlite3_column_int64(s, 3);
        if (sqlite3_column_type(s, 4) != SQLITE_NULL)
            memory = sqlite3_column_int64(s, 4);
        if (sqlite3_column_type(s, 5) != SQLITE_NULL) {
            cpu[n_cpu++] = sqlite3_column_double(s, 5);
            cpu_sum += sqlite3_column_double(s, 5) * (double)rd;
            cpu_w += (double)rd;
        }
        if (sqlite3_column_type(s, 6) != SQLITE_NULL && sqlite3_column_double(s, 6) > cpu_max)
            cpu_max = sqlite3_column_double(s, 6);
        if (sqlite3_column_type(s, 7) != SQLITE_NULL) {
            mem[n_mem++] = sqlite3_column_double(s, 7);
            mem_sum += sqlite3_column_double(s, 7) * (double)rd;
            mem_w += (double)rd;
        }
        if (sqlite3_column_type(s, 8) != SQLITE_NULL && sqlite3_column_double(s, 8) > mem_max)
            mem_max = sqlite3_column_double(s, 8);
        rx = sat_add(rx, sqlite3_column_int64(s, 9));
        tx = sat_add(tx, sqlite3_column_int64(s, 10));
    }
    sqlite3_reset(s);
    if (rc < 0) /* a short read is no summary */
        return NULL;
    double expected =
        duration > 0 ? (double)(to - from) / (double)duration * (double)expected_per : 0;
    o = json_object_new_object();
    json_object_object_add(o, "instance_id", json_object_new_int64(id));
    json_object_object_add(o, "name", json_object_new_string(name));
    json_object_object_add(o, "windows", json_object_new_int64(windows));
    json_object_object_add(
        o, "coverage",
        json_object_new_double(expected > 0 ? fmin(1, (double)readings / expected) : 0));
    json_object_object_add(o, "vcpus", json_object_new_int64(vcpus));
    json_object_object_add(o, "memory_mib", json_object_new_int64(memory));
    json_object_object_add(o, "cpu_cores_avg",
                           cpu_w > 0 ? json_object_new_double(cpu_sum / cpu_w) : NULL);
    json_object_object_add(o, "cpu_cores_p95",
                           n_cpu ? json_object_new_double(br_quantile_exact(cpu, n_cpu, 0.95))
                                 : NULL);
    json_object_object_add(o, "cpu_cores_max",
                           cpu_max >= 0 ? json_object_new_double(cpu_max) : NULL);
    json_object_object_add(o, "memory_used_mib_avg",
                           mem_w > 0 ? json_object_new_double(mem_sum / mem_w) : NULL);
    json_object_object_add(o, "memory_used_mib_p95",
                           n_mem ? json_object_new_double(br_quantile_exact(mem, n_mem, 0.95))
                                 : NULL);
    json_object_object_add(o, "memory_used_mib_max",
                           mem_max >= 0 ? json_object_new_double(mem_max) : NULL);
    json_object_object_add(o, "net_rx_bytes", json_object_new_int64(rx));
    json_object_object_add(o, "net_tx_bytes", json_object_new_int64(tx));
    return o;
}

static int br_api_allocations_usage(BrCall *c)
{
    int64_t id = c->ids[0], from, to, dept = 0;
    CmDb *db = br_api_read_db(c);
    sqlite3_stmt *s;
    json_object *o, *list;
    int r;

    if (!db)
        return -EIO;
    r = range_params(c, &from, &to, NULL);
    if (r >= 0)
        r = cm_db_begin_read(db, &c->err);
    if (r < 0)
        return r;
    s = cm_db_stmt(db, "SELECT department_id FROM allocations WHERE id = ?", &c->err);
    r = s ? 0 : -EIO;
    if (r >= 0) {
        CM_DB_BIND(s, id);
        r = cm_db_step_row(db, s, &c->err);
        if (r > 0)
            dept = sqlite3_column_int64(s, 0);
        sqlite3_reset(s);
        if (r == 0 || (r > 0 && br_call_is_department(c) && dept != c->actor.department_id))
            r = br_not_found(c, "allocation", id);
    }
    list = json_object_new_array();
    if (r >= 0) {
        s = cm_db_stmt(db, "SELECT id, name FROM instances WHERE allocation_id = ? ORDER BY idx",
                       &c->err);
        r = s ? 0 : -EIO;
    }
    if (r >= 0) {
        /* Every instance of the allocation, summed as it is read. */
        CM_DB_BIND(s, id);
        while (r >= 0 && (r = cm_db_step_row(db, s, &c->err)) > 0) {
            json_object *one = instance_summary(db, sqlite3_column_int64(s, 0),
                                                cm_db_col_text(s, 1), from, to, &c->err);
            if (!one) {
                r = -EIO;
            } else {
                json_object_array_add(list, one);
                r = 0;
            }
        }
        sqlite3_reset(s);
    }
    cm_db_rollback(db);
    if (r < 0) {
        json_object_put(list);
        return r;
    }
    o = json_object_new_object();
    char f[CM_TIME_ISO_LEN + 1], t[CM_TIME_ISO_LEN + 1];
    cm_time_iso(from * 1000, f);
    cm_time_iso(to * 1000, t);
    json_object_object_add(o, "allocation_id", json_object_new_int64(id));
    json_object_object_add(o, "from", json_object_new_string(f));
    json_object_object_add(o, "to", json_object_new_string(t));
    json_object_object_add(o, "instances", list);
    return br_reply(c, MHD_HTTP_OK, o);
}

static int br_api_metering_rollup(BrCall *c)
{
    const char *day = cm_json_get_str(c->body, "day", "");
    char iso[32];
    int64_t ms;
    int n, r;
    json_object *o;
    CmDb *db;

    snprintf(iso, sizeof(iso), "%sT00:00:00Z", day);
    if (cm_time_parse_iso(iso, &ms) < 0)
        return cm_error_set_code(&c->err, CM_ERROR_UNPROCESSABLE, "schema_violation", "/day",
                                 "not a calendar day");
    if (ms < INT64_C(946684800000) || ms > cm_now_ms() + 86400000)
        return cm_error_set(&c->err, CM_ERROR_UNPROCESSABLE, "/day",
                            "the day must lie between 2000-01-01 and tomorrow");
    n = br_metering_rollup_day(c->d, ms / 1000, &c->err);
    if (n < 0)
        return n;
    r = br_api_write_begin(c, &db);
    if (r < 0)
        return r;
    r = br_store_audit(c->d->store, db, &c->actor, "metering.rollup", "rollup", 0, "ok",
                       cm_json_to_string(c->body, NULL), &c->err);
    r = br_api_write_end(c, db, r);
    if (r < 0)
        return r;
    o = json_object_new_object();
    json_object_object_add(o, "day", json_object_new_string(day));
    json_object_object_add(o, "instances", json_object_new_int64(n));
    return br_reply(c, MHD_HTTP_OK, o);
}

static const BrRoute routes[] = {

    /* Metering: agents post windows; usage is read with the same scoping as allocations. */
    /* The hot path: parsed by br_samples_parse() into structs, to schemas/samples.json. */
    {"POST", "/v1/samples", br_api_samples_post, R_AGENT, BR_BODY_JSON_RAW, "samples", NULL,
     32u * 1024 * 1024},
    {"GET", "/v1/instances/{id}/usage", br_api_instances_usage,
     R_DEPARTMENT | BR_ROLES_READERS | R_VENDOR, BR_BODY_NONE, NULL},
    {"GET", "/v1/allocations/{id}/usage", br_api_allocations_usage,
     R_DEPARTMENT | BR_ROLES_READERS | R_VENDOR, BR_BODY_NONE, NULL},
    {"POST", "/v1/metering/rollup", br_api_metering_rollup, R_VENDOR | R_ADMIN, BR_BODY_JSON,
     "rollup"},
};

const BrRouteTable br_api_metering_routes = {routes, ELEMENTSOF(routes)};
