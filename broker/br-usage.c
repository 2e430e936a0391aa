/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "br-histogram.h"
#include "br-usage.h"
#include "cm-time.h"

/* The columns every point has, from the samples or from the rollups. Counters summed over
 * many windows can pass 2^63: they saturate instead (SQLite's sum() fails on an integer
 * overflow; total() is a double, cast back with saturation); NULL when every window lacks
 * the counter. */
#define USAGE_COLUMNS                                                                              \
    " sum(readings) AS readings, sum(expected) AS expected,"                                       \
    " sum(cpu_avg * readings) / nullif(sum(CASE WHEN cpu_avg IS NOT NULL THEN readings END), 0)"   \
    " AS cpu_avg, max(cpu_max) AS cpu_max,"                                                        \
    " sum(mem_avg * readings) / nullif(sum(CASE WHEN mem_avg IS NOT NULL THEN readings END), 0)"   \
    " AS mem_avg, max(mem_max) AS mem_max, max(vcpus) AS vcpus, max(memory_mib) AS memory_mib,"    \
    " CASE WHEN count(disk_rd_bytes) > 0 THEN CAST(total(disk_rd_bytes) AS INTEGER) END AS "       \
    "disk_read_bytes,"                                                                             \
    " CASE WHEN count(disk_wr_bytes) > 0 THEN CAST(total(disk_wr_bytes) AS INTEGER) END AS "       \
    "disk_write_bytes,"                                                                            \
    " CASE WHEN count(net_rx_bytes) > 0 THEN CAST(total(net_rx_bytes) AS INTEGER) END AS "         \
    "net_rx_bytes,"                                                                                \
    " CASE WHEN count(net_tx_bytes) > 0 THEN CAST(total(net_tx_bytes) AS INTEGER) END AS "         \
    "net_tx_bytes,"                                                                                \
    " CASE WHEN count(disk_rd_reqs) > 0 THEN CAST(total(disk_rd_reqs) AS INTEGER) END AS "         \
    "disk_read_requests,"                                                                          \
    " CASE WHEN count(disk_wr_reqs) > 0 THEN CAST(total(disk_wr_reqs) AS INTEGER) END AS "         \
    "disk_write_requests,"                                                                         \
    " CASE WHEN count(net_rx_pkts) > 0 THEN CAST(total(net_rx_pkts) AS INTEGER) END AS "           \
    "net_rx_packets,"                                                                              \
    " CASE WHEN count(net_tx_pkts) > 0 THEN CAST(total(net_tx_pkts) AS INTEGER) END AS "           \
    "net_tx_packets,"                                                                              \
    " count(*) AS n"

/* Columns of the statements below, by name. */
enum {
    U_BUCKET,
    U_WINDOWS,
    U_P95,
    U_DURATION,
    U_READINGS,
    U_EXPECTED,
    U_CPU_AVG,
    U_CPU_MAX,
    U_MEM_AVG,
    U_MEM_MAX,
    U_VCPUS,
    U_MEMORY,
    U_COUNTERS, /* the eight counters, in the answer's order */
    U_ROWS = U_COUNTERS + 8,
};

static json_object *num_or_null(CmStmt *st, int col)
{
    return cm_stmt_is_null(st, col) ? NULL : json_object_new_double(cm_stmt_double(st, col));
}

static json_object *int_or_null(CmStmt *st, int col)
{
    return cm_stmt_is_null(st, col) ? NULL : json_object_new_int64(cm_stmt_int(st, col));
}

/* The department owning instance @id, within @department's scope (404 outside it). */
static int instance_scope(CmDb *db, int64_t id, int64_t department, CmError *err)
{
    _cleanup_stmt_ CmStmt *st =
        cm_db_prepare(db,
                      "SELECT a.department_id FROM instances i"
                      " JOIN allocations a ON a.id = i.allocation_id WHERE i.id = ?1"
                      " AND (?2 = 0 OR a.department_id = ?2)",
                      err);
    int r;

    if (!st)
        return -EIO;
    CM_DB_BIND(st, id, department);
    r = cm_stmt_step(st, err);
    if (r == 0)
        return cm_error_set(err, CM_ERROR_NOT_FOUND, "", "no instance with id %lld", (long long)id);
    return r < 0 ? r : 0;
}

static json_object *point_json(CmStmt *st, bool daily, int64_t step)
{
    static const char *const counters[8] = {
        "disk_read_bytes",    "disk_write_bytes",    "net_rx_bytes",   "net_tx_bytes",
        "disk_read_requests", "disk_write_requests", "net_rx_packets", "net_tx_packets"};
    json_object *p = json_object_new_object();
    int64_t readings = cm_stmt_int(st, U_READINGS), windows = cm_stmt_int(st, U_WINDOWS);
    int64_t duration = cm_stmt_int(st, U_DURATION) > 0 ? cm_stmt_int(st, U_DURATION) : 300;
    int64_t rows = cm_stmt_int(st, U_ROWS);
    double per_window = windows ? (double)cm_stmt_int(st, U_EXPECTED) / (double)windows : 1;
    /* Coverage: the readings that arrived out of those the whole step should have (daily:
     * the rollups' expected readings per day, over the days there are). */
    double expected = daily ? (double)cm_stmt_int(st, U_EXPECTED) * ((double)step / 86400.0) /
                                  (double)(rows ? rows : 1)
                            : (double)step / (double)duration * per_window;
    double coverage = expected > 0 ? (double)readings / expected : 0;
    int64_t vcpus = cm_stmt_int(st, U_VCPUS), mem = cm_stmt_int(st, U_MEMORY);
    char when[CM_TIME_ISO_LEN + 1];

    cm_time_iso(cm_stmt_int(st, U_BUCKET) * 1000, when);
    json_object_object_add(p, "start", json_object_new_string(when));
    json_object_object_add(p, "windows", json_object_new_int64(windows));
    json_object_object_add(p, "readings", json_object_new_int64(readings));
    json_object_object_add(p, "coverage", json_object_new_double(coverage > 1 ? 1 : coverage));
    json_object_object_add(p, "vcpus", int_or_null(st, U_VCPUS));
    json_object_object_add(p, "memory_mib", int_or_null(st, U_MEMORY));
    json_object_object_add(p, "cpu_cores_avg", num_or_null(st, U_CPU_AVG));
    json_object_object_add(p, "cpu_cores_max", num_or_null(st, U_CPU_MAX));
    if (daily)
        json_object_object_add(p, "cpu_cores_p95", num_or_null(st, U_P95));
    json_object_object_add(
        p, "cpu_utilization_avg",
        !cm_stmt_is_null(st, U_CPU_AVG) && vcpus > 0
            ? json_object_new_double(cm_stmt_double(st, U_CPU_AVG) / (double)vcpus)
            : NULL);
    json_object_object_add(p, "memory_used_mib_avg", num_or_null(st, U_MEM_AVG));
    json_object_object_add(p, "memory_used_mib_max", num_or_null(st, U_MEM_MAX));
    json_object_object_add(p, "memory_utilization_avg",
                           !cm_stmt_is_null(st, U_MEM_AVG) && mem > 0
                               ? json_object_new_double(cm_stmt_double(st, U_MEM_AVG) / (double)mem)
                               : NULL);
    for (int k = 0; k < 8; k++)
        json_object_object_add(p, counters[k], int_or_null(st, U_COUNTERS + k));
    return p;
}

int br_usage_instance(CmDb *db, int64_t instance_id, int64_t department, int64_t from, int64_t to,
                      int64_t step, json_object **ret, CmError *err)
{
    /* A day or more per point comes from the daily rollups, kept for ever. */
    bool daily = step >= 86400;
    _cleanup_stmt_ CmStmt *st = NULL;
    char f[CM_TIME_ISO_LEN + 1], t[CM_TIME_ISO_LEN + 1];
    json_object *o, *points;
    int r = instance_scope(db, instance_id, department, err);

    if (r < 0)
        return r;
    if (daily) {
        step -= step % 86400;
        st = cm_db_prepare(db,
                           "SELECT (unixepoch(day) / ?1) * ?1 AS b, sum(windows) AS windows,"
                           " max(cpu_p95) AS p95, 86400 AS duration," USAGE_COLUMNS
                           " FROM rollups WHERE instance_id = ?2 AND unixepoch(day) >= ?3"
                           " AND unixepoch(day) < ?4 GROUP BY b ORDER BY b",
                           err);
    } else {
        st = cm_db_prepare(db,
                           "SELECT (start / ?1) * ?1 AS b, count(*) AS windows, NULL AS p95,"
                           " max(duration) AS duration," USAGE_COLUMNS
                           " FROM samples WHERE instance_id = ?2 AND start >= ?3 AND start < ?4"
                           " GROUP BY b ORDER BY b",
                           err);
    }
    if (!st)
        return -EIO;
    CM_DB_BIND(st, step, instance_id, from, to);
    points = json_object_new_array();
    while ((r = cm_stmt_step(st, err)) > 0)
        json_object_array_add(points, point_json(st, daily, step));
    if (r < 0) {
        json_object_put(points);
        return r;
    }
    cm_time_iso(from * 1000, f);
    cm_time_iso(to * 1000, t);
    o = json_object_new_object();
    json_object_object_add(o, "instance_id", json_object_new_int64(instance_id));
    json_object_object_add(o, "from", json_object_new_string(f));
    json_object_object_add(o, "to", json_object_new_string(t));
    json_object_object_add(o, "step", json_object_new_int64(step));
    json_object_object_add(o, "source",
                           json_object_new_string(daily ? "daily rollups" : "5-minute samples"));
    json_object_object_add(o, "points", points);
    *ret = o;
    return 0;
}

static int64_t sat_add(int64_t a, int64_t b)
{
    int64_t r;
    return __builtin_add_overflow(a, b, &r) ? (b > 0 ? INT64_MAX : INT64_MIN) : r;
}

/* One instance's figures over a range, from its samples. */
static int instance_summary(CmDb *db, int64_t id, const char *name, int64_t from, int64_t to,
                            json_object **ret, CmError *err)
{
    _cleanup_stmt_ CmStmt *st =
        cm_db_prepare(db,
                      "SELECT readings, expected, duration, vcpus, memory_mib,"
                      " cpu_avg, cpu_max, mem_avg, mem_max, net_rx_bytes,"
                      " net_tx_bytes FROM samples WHERE instance_id = ?1"
                      " AND start >= ?2 AND start < ?3",
                      err);
    _cleanup_free_ double *cpu = NULL, *mem = NULL;
    size_t n_cpu = 0, n_mem = 0, cap = 0;
    int64_t windows = 0, readings = 0, expected_per = 0, duration = 300, vcpus = 0, memory = 0;
    int64_t rx = 0, tx = 0;
    double cpu_w = 0, cpu_sum = 0, mem_w = 0, mem_sum = 0, cpu_max = -1, mem_max = -1;
    json_object *o;
    int r;

    if (!st)
        return -EIO;
    CM_DB_BIND(st, id, from, to);
    while ((r = cm_stmt_step(st, err)) > 0) {
        int64_t rd = cm_stmt_int(st, 0);
        if (windows == (int64_t)cap) {
            double *nc, *nm;
            cap = cap ? cap * 2 : 256;
            if ((nc = realloc(cpu, cap * sizeof(double))))
                cpu = nc;
            if ((nm = realloc(mem, cap * sizeof(double))))
                mem = nm;
            if (!nc || !nm)
                return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
        }
        windows++;
        readings += rd;
        expected_per = cm_stmt_int(st, 1);
        duration = cm_stmt_int(st, 2);
        if (!cm_stmt_is_null(st, 3))
            vcpus = cm_stmt_int(st, 3);
        if (!cm_stmt_is_null(st, 4))
            memory = cm_stmt_int(st, 4);
        if (!cm_stmt_is_null(st, 5)) {
            cpu[n_cpu++] = cm_stmt_double(st, 5);
            cpu_sum += cm_stmt_double(st, 5) * (double)rd;
            cpu_w += (double)rd;
        }
        if (!cm_stmt_is_null(st, 6) && cm_stmt_double(st, 6) > cpu_max)
            cpu_max = cm_stmt_double(st, 6);
        if (!cm_stmt_is_null(st, 7)) {
            mem[n_mem++] = cm_stmt_double(st, 7);
            mem_sum += cm_stmt_double(st, 7) * (double)rd;
            mem_w += (double)rd;
        }
        if (!cm_stmt_is_null(st, 8) && cm_stmt_double(st, 8) > mem_max)
            mem_max = cm_stmt_double(st, 8);
        rx = sat_add(rx, cm_stmt_int(st, 9));
        tx = sat_add(tx, cm_stmt_int(st, 10));
    }
    if (r < 0) /* a short read is no summary */
        return r;
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
    *ret = o;
    return 0;
}

int br_usage_allocation(CmDb *db, int64_t allocation_id, int64_t department, int64_t from,
                        int64_t to, json_object **ret, CmError *err)
{
    _cleanup_stmt_ CmStmt *st =
        cm_db_prepare(db,
                      "SELECT i.id, i.name FROM instances i JOIN allocations a"
                      " ON a.id = i.allocation_id WHERE a.id = ?1"
                      " AND (?2 = 0 OR a.department_id = ?2) ORDER BY i.idx",
                      err);
    _cleanup_stmt_ CmStmt *exists = NULL;
    char f[CM_TIME_ISO_LEN + 1], t[CM_TIME_ISO_LEN + 1];
    json_object *o, *list;
    int r;

    exists = cm_db_prepare(
        db, "SELECT 1 FROM allocations WHERE id = ?1 AND (?2 = 0 OR department_id = ?2)", err);
    if (!st || !exists)
        return -EIO;
    CM_DB_BIND(exists, allocation_id, department);
    r = cm_stmt_step(exists, err);
    if (r == 0)
        return cm_error_set(err, CM_ERROR_NOT_FOUND, "", "no allocation with id %lld",
                            (long long)allocation_id);
    if (r < 0)
        return r;
    /* Every instance of the allocation, summed as it is read. */
    CM_DB_BIND(st, allocation_id, department);
    list = json_object_new_array();
    while ((r = cm_stmt_step(st, err)) > 0) {
        json_object *one = NULL;
        r = instance_summary(db, cm_stmt_int(st, 0), cm_stmt_text(st, 1), from, to, &one, err);
        if (r < 0)
            break;
        json_object_array_add(list, one);
    }
    if (r < 0) {
        json_object_put(list);
        return r;
    }
    cm_time_iso(from * 1000, f);
    cm_time_iso(to * 1000, t);
    o = json_object_new_object();
    json_object_object_add(o, "allocation_id", json_object_new_int64(allocation_id));
    json_object_object_add(o, "from", json_object_new_string(f));
    json_object_object_add(o, "to", json_object_new_string(t));
    json_object_object_add(o, "instances", list);
    *ret = o;
    return 0;
}
