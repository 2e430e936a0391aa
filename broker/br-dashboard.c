/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "br-dashboard.h"
#include "cm-json.h"
#include "cm-time.h"
#include "cm-util.h"

#define DAY_MS 86400000LL

/* Counts are sums of CASE (not of booleans): SQL that PostgreSQL runs too. */
static int one_row(CmDb *db, const char *sql, json_object **ret, CmError *err)
{
    _cleanup_stmt_ CmStmt *st = cm_db_prepare(db, sql, err);
    int r;

    if (!st)
        return -EIO;
    r = cm_stmt_step(st, err);
    if (r < 0)
        return r;
    *ret = r > 0 ? cm_stmt_row_json(st) : json_object_new_object();
    return 0;
}

static int rows(CmDb *db, const char *sql, const char *a, const char *b, json_object **ret,
                CmError *err)
{
    _cleanup_stmt_ CmStmt *st = cm_db_prepare(db, sql, err);
    if (!st)
        return -EIO;
    CM_DB_BIND(st, a, b);
    return cm_stmt_rows_json(st, ret, err);
}

static int hosts(CmDb *db, const BrPlacementPolicyConf *p, json_object **ret, CmError *err)
{
    _cleanup_stmt_ CmStmt *st = cm_db_prepare(
        db,
        "SELECT id, name, pool, enabled AS \"enabled:bool\", maintenance AS \"maintenance:bool\","
        " cpus, memory_mib, disk_gib,"
        " cpus * coalesce(cpu_ratio, ?1) AS capacity_vcpus,"
        " memory_mib * coalesce(ram_ratio, ?2) AS capacity_memory_mib,"
        " disk_gib * coalesce(disk_ratio, ?3) AS capacity_disk_gib,"
        " used_vcpus, used_memory_mib, used_disk_gib"
        " FROM hosts ORDER BY pool, id",
        err);
    json_object *items;
    int r;

    if (!st)
        return -EIO;
    CM_DB_BIND(st, p->cpu_ratio, p->ram_ratio, p->disk_ratio);
    r = cm_stmt_rows_json(st, &items, err);
    if (r < 0)
        return r;
    for (size_t i = 0; i < json_object_array_length(items); i++) {
        json_object *h = json_object_array_get_idx(items, i), *head = json_object_new_object();
        static const char *const dims[][3] = {
            {"vcpus", "capacity_vcpus", "used_vcpus"},
            {"memory_mib", "capacity_memory_mib", "used_memory_mib"},
            {"disk_gib", "capacity_disk_gib", "used_disk_gib"}};
        /* Capacities truncated here: SQL's CAST of a float rounds on PostgreSQL. */
        for (size_t k = 0; k < 3; k++) {
            int64_t capacity = (int64_t)cm_json_get_double(h, dims[k][1], 0);
            json_object_object_add(h, dims[k][1], json_object_new_int64(capacity));
            json_object_object_add(
                head, dims[k][0],
                json_object_new_int64(capacity - cm_json_get_int(h, dims[k][2], 0)));
        }
        json_object_object_add(h, "headroom", head);
    }
    *ret = items;
    return 0;
}

/* Twelve months up to @now's, oldest first: a month without a row gets zeros. Takes @rows. */
static json_object *months_filled(json_object *rows, const char *now)
{
    json_object *out = json_object_new_array();
    int year = (now[0] - '0') * 1000 + (now[1] - '0') * 100 + (now[2] - '0') * 10 + (now[3] - '0');
    int month = (now[5] - '0') * 10 + (now[6] - '0');
    static const char *const keys[] = {"requests_submitted", "requests_approved", "allocations",
                                       "allocated_vcpus", "findings"};

    month -= 11;
    while (month < 1) {
        month += 12;
        year--;
    }
    for (int i = 0; i < 12; i++) {
        char name[16];
        json_object *found = NULL;
        snprintf(name, sizeof(name), "%04d-%02d", year, month);
        for (size_t k = 0; k < json_object_array_length(rows) && !found; k++) {
            json_object *row = json_object_array_get_idx(rows, k);
            if (strcmp(cm_json_get_str(row, "month", ""), name) == 0)
                found = json_object_get(row);
        }
        if (!found) {
            found = json_object_new_object();
            json_object_object_add(found, "month", json_object_new_string(name));
            for (size_t k = 0; k < ELEMENTSOF(keys); k++)
                json_object_object_add(found, keys[k], json_object_new_int(0));
        }
        json_object_array_add(out, found);
        if (++month > 12) {
            month = 1;
            year++;
        }
    }
    json_object_put(rows);
    return out;
}

int br_dashboard_summary(CmDb *db, const BrPlacementPolicyConf *placement, int64_t now_ms,
                         json_object **ret, CmError *err)
{
    _cleanup_json_ json_object *o = json_object_new_object();
    json_object *part = NULL;
    char now[CM_TIME_ISO_LEN + 1], since[CM_TIME_ISO_LEN + 1];
    char d1[CM_TIME_ISO_LEN + 1], d3[CM_TIME_ISO_LEN + 1], d7[CM_TIME_ISO_LEN + 1];
    int r;

    cm_time_iso(now_ms, now);
    cm_time_iso(now_ms - DAY_MS, d1);
    cm_time_iso(now_ms - 3 * DAY_MS, d3);
    cm_time_iso(now_ms - 7 * DAY_MS, d7);
    /* Trends from the first day of the month eleven months back. */
    {
        int64_t t = now_ms - 334 * DAY_MS;
        cm_time_iso(t, since);
        since[8] = '0';
        since[9] = '1';
        memcpy(since + 10, "T00:00:00.000Z", 15);
    }
    json_object_object_add(o, "at", json_object_new_string(now));

    r = one_row(db,
                "SELECT count(*) AS total, coalesce(sum(CASE WHEN EXISTS (SELECT 1"
                " FROM allocations a WHERE a.system_id = s.id AND a.purpose = 'production'"
                " AND a.state IN ('active','resizing')) THEN 1 ELSE 0 END), 0) AS on_cloud"
                " FROM systems s WHERE s.status <> 'retired'",
                &part, err);
    if (r < 0)
        return r;
    {
        int64_t total = cm_json_get_int(part, "total", 0);
        json_object_object_add(
            part, "share",
            json_object_new_double(total ? (double)cm_json_get_int(part, "on_cloud", 0) / total
                                         : 0.0));
    }
    json_object_object_add(o, "systems", part);

    {
        _cleanup_stmt_ CmStmt *st = cm_db_prepare(
            db,
            "SELECT count(*) AS waiting, min(w.since) AS oldest_since,"
            " coalesce(sum(CASE WHEN w.since > ?1 THEN 1 ELSE 0 END), 0) AS under_1d,"
            " coalesce(sum(CASE WHEN w.since <= ?1 AND w.since > ?2 THEN 1 ELSE 0 END), 0)"
            "  AS from_1d_to_3d,"
            " coalesce(sum(CASE WHEN w.since <= ?2 AND w.since > ?3 THEN 1 ELSE 0 END), 0)"
            "  AS from_3d_to_7d,"
            " coalesce(sum(CASE WHEN w.since <= ?3 THEN 1 ELSE 0 END), 0) AS over_7d,"
            " coalesce(sum(CASE WHEN w.state = 'submitted' THEN 1 ELSE 0 END), 0)"
            "  AS to_review,"
            " coalesce(sum(CASE WHEN w.state = 'trial_passed' THEN 1 ELSE 0 END), 0)"
            "  AS to_allocate,"
            " coalesce(sum(CASE WHEN w.state = 'in_trial' THEN 1 ELSE 0 END), 0) AS in_trial"
            " FROM (SELECT r.state, (SELECT max(h.at) FROM request_history h"
            "  WHERE h.request_id = r.id) AS since FROM requests r"
            "  WHERE r.state IN ('submitted','trial_passed','in_trial')) w",
            err);
        if (!st)
            return -EIO;
        CM_DB_BIND(st, d1, d3, d7);
        r = cm_stmt_step(st, err);
        if (r < 0)
            return r;
        part = cm_stmt_row_json(st);
        json_object_object_add(o, "requests", part);
    }

    r = one_row(db,
                "SELECT count(*) AS active, coalesce(sum(vcpus), 0) AS vcpus,"
                " coalesce(sum(memory_mib), 0) AS memory_mib,"
                " coalesce(sum(disk_gib), 0) AS disk_gib,"
                " coalesce(sum(instances), 0) AS instances FROM allocations"
                " WHERE purpose = 'production' AND state IN ('active','resizing')",
                &part, err);
    if (r < 0)
        return r;
    json_object_object_add(o, "allocations", part);

    r = one_row(db,
                "SELECT coalesce(sum(CASE WHEN kind = 'idle' THEN 1 ELSE 0 END), 0) AS idle,"
                " coalesce(sum(CASE WHEN kind = 'over_provisioned' THEN 1 ELSE 0 END), 0)"
                "  AS over_provisioned,"
                " coalesce(sum(CASE WHEN kind = 'under_provisioned' THEN 1 ELSE 0 END), 0)"
                "  AS under_provisioned,"
                " coalesce(sum(CASE WHEN kind = 'idle' THEN current_vcpus"
                "  WHEN kind = 'over_provisioned' THEN frees_vcpus ELSE 0 END), 0)"
                "  AS reclaimable_vcpus,"
                " round(coalesce(sum(CASE WHEN kind = 'idle' THEN current_memory_mib"
                "  WHEN kind = 'over_provisioned' THEN frees_memory_mib ELSE 0 END), 0)"
                "  / 1024.0, 1) AS reclaimable_memory_gib"
                " FROM findings WHERE state IN ('open','acknowledged')",
                &part, err);
    if (r < 0)
        return r;
    json_object_object_add(o, "findings", part);

    r = hosts(db, placement, &part, err);
    if (r < 0)
        return r;
    json_object_object_add(o, "hosts", part);

    /* Months as "YYYY-MM": text, so the same in any SQL. */
    r = rows(db,
             "SELECT m.month, coalesce(sub.n, 0) AS requests_submitted,"
             " coalesce(apr.n, 0) AS requests_approved, coalesce(al.n, 0) AS allocations,"
             " coalesce(al.vcpus, 0) AS allocated_vcpus, coalesce(fi.n, 0) AS findings"
             " FROM (SELECT substr(at, 1, 7) AS month FROM request_history WHERE at >= ?1"
             "  UNION SELECT substr(created_at, 1, 7) FROM allocations WHERE created_at >= ?1"
             "  UNION SELECT substr(first_found, 1, 7) FROM findings WHERE first_found >= ?1"
             "  UNION SELECT substr(?2, 1, 7)) m"
             " LEFT JOIN (SELECT substr(at, 1, 7) AS month, count(*) AS n FROM request_history"
             "  WHERE at >= ?1 AND to_state = 'submitted' GROUP BY 1) sub ON sub.month = m.month"
             " LEFT JOIN (SELECT substr(at, 1, 7) AS month, count(*) AS n FROM request_history"
             "  WHERE at >= ?1 AND to_state = 'approved' GROUP BY 1) apr ON apr.month = m.month"
             " LEFT JOIN (SELECT substr(created_at, 1, 7) AS month, count(*) AS n,"
             "  sum(vcpus) AS vcpus FROM allocations WHERE created_at >= ?1"
             "  AND purpose = 'production' GROUP BY 1) al ON al.month = m.month"
             " LEFT JOIN (SELECT substr(first_found, 1, 7) AS month, count(*) AS n"
             "  FROM findings WHERE first_found >= ?1 GROUP BY 1) fi ON fi.month = m.month"
             " ORDER BY m.month",
             since, now, &part, err);
    if (r < 0)
        return r;
    json_object_object_add(o, "trends", months_filled(part, now));
    *ret = TAKE_PTR(o);
    return 0;
}

int br_dashboard_queue(CmDb *db, BrRole role, int64_t account, int64_t department, int64_t limit,
                       json_object **ret, CmError *err)
{
    /* The action each role owes, by state: a reviewer decides and allocates; a consultant
     * gives the opinions asked of it; a vendor records the trial's results; a department
     * sends back what was returned and its drafts. */
    _cleanup_stmt_ CmStmt *st = cm_db_prepare(
        db,
        "SELECT r.id, CASE"
        "  WHEN ?1 = 'reviewer' AND r.state = 'submitted' THEN 'review'"
        "  WHEN ?1 = 'reviewer' AND r.state = 'trial_passed' THEN 'allocate'"
        "  WHEN ?1 = 'consultant' THEN 'opinion'"
        "  WHEN ?1 = 'vendor' THEN 'trial_results'"
        "  WHEN ?1 = 'department' AND r.state = 'returned' THEN 'resubmit'"
        "  ELSE 'submit' END AS action,"
        " r.kind, r.state,"
        " coalesce((SELECT max(h.at) FROM request_history h WHERE h.request_id = r.id),"
        "  r.created_at) AS waiting_since,"
        " r.department_id, d.name AS department_name, r.system_id, s.name AS system_name,"
        " r.vcpus, r.memory_mib, r.disk_gib, r.instances, r.consultant_id"
        " FROM requests r JOIN departments d ON d.id = r.department_id"
        " JOIN systems s ON s.id = r.system_id WHERE"
        " (?1 = 'reviewer' AND r.state IN ('submitted','trial_passed'))"
        " OR (?1 = 'consultant' AND r.state = 'submitted' AND r.consultant_id = ?2"
        "  AND NOT EXISTS (SELECT 1 FROM opinions o WHERE o.request_id = r.id"
        "  AND o.account_id = ?2))"
        " OR (?1 = 'vendor' AND r.state = 'in_trial')"
        " OR (?1 = 'department' AND r.department_id = ?3 AND r.state IN ('returned','draft'))"
        " ORDER BY waiting_since, r.id LIMIT ?4",
        err);
    if (!st)
        return -EIO;
    CM_DB_BIND(st, br_role_to_string(role), account, department, limit);
    return cm_stmt_rows_json(st, ret, err);
}
