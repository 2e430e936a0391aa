/* SPDX-License-Identifier: Apache-2.0 */
/* The service-quality scorecard's reads (a read model: SELECT only). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "br-report-sla.h"
#include "cm-time.h"
#include "cm-util.h"

/* Grows @*v (of @*cap elements of @size) to hold one more than @n. Returns: 0 or -ENOMEM. */
static int grow(void **v, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return 0;
    void *nv = reallocarray(*v, *cap ? *cap * 2 : 16, size);
    if (!nv)
        return -ENOMEM;
    *v = nv;
    *cap = *cap ? *cap * 2 : 16;
    return 0;
}

static int64_t ms_of(CmStmt *st, int i, int64_t def)
{
    int64_t ms;
    if (cm_stmt_is_null(st, i) || cm_time_parse_iso(cm_stmt_text(st, i), &ms) < 0)
        return def;
    return ms;
}

/* Instances that should have run at some moment before @t1 and were not gone before @m0,
 * each with its history up to @t1. */
static int read_instances(CmDb *db, const char *m0, const char *t1, BrSlaInput *in, CmError *err)
{
    _cleanup_stmt_ CmStmt *st = cm_db_prepare(
        db,
        "SELECT h.instance_id, i.name, h.at, h.state, coalesce(h.host_id, 0)"
        " FROM instance_history h"
        " JOIN instances i ON i.id = h.instance_id WHERE h.at < ?2 AND h.instance_id IN"
        " (SELECT r.instance_id FROM instance_history r WHERE r.state = 'running'"
        "  AND r.at < ?2) AND NOT EXISTS (SELECT 1 FROM instance_history g"
        "  WHERE g.instance_id = h.instance_id AND g.state IN ('undefined','deleted')"
        "  AND g.at < ?1) ORDER BY h.instance_id, h.at, h.id",
        err);
    size_t cap = 0, cap_h = 0;
    int r;

    if (!st)
        return -EIO;
    CM_DB_BIND(st, m0, t1);
    while ((r = cm_stmt_step(st, err)) > 0) {
        BrSlaInstance *x = in->n_instances ? &in->instances[in->n_instances - 1] : NULL;
        if (!x || x->id != cm_stmt_int(st, 0)) {
            if (grow((void **)&in->instances, &cap, in->n_instances, sizeof(*x)) < 0)
                return -ENOMEM;
            x = &in->instances[in->n_instances++];
            *x = (BrSlaInstance){.id = cm_stmt_int(st, 0), .name = cm_stmt_strdup(st, 1)};
            cap_h = 0;
            if (!x->name)
                return -ENOMEM;
        }
        if (grow((void **)&x->h, &cap_h, x->n_h, sizeof(*x->h)) < 0)
            return -ENOMEM;
        x->h[x->n_h].at_ms = ms_of(st, 2, -1);
        x->h[x->n_h].should_run = strcmp(cm_stmt_text(st, 3), "running") == 0;
        x->h[x->n_h].host_id = cm_stmt_int(st, 4);
        if (x->h[x->n_h].at_ms >= 0)
            x->n_h++;
    }
    return r;
}

static BrSlaInstance *find_instance(BrSlaInput *in, int64_t id)
{
    size_t lo = 0, hi = in->n_instances; /* by id */
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (in->instances[mid].id == id)
            return &in->instances[mid];
        if (in->instances[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* The reconciler's events that say an instance was not as it should be: from the pass that
 * first saw it to the pass that saw it gone (or @t1 while open). */
static int read_down(CmDb *db, const char *m0, const char *t1, int64_t t1_ms, BrSlaInput *in,
                     CmError *err)
{
    _cleanup_stmt_ CmStmt *st = cm_db_prepare(
        db,
        "SELECT id, instance_id, first_seen, resolved_at FROM events"
        " WHERE kind IN ('instance_missing','instance_state') AND instance_id IS NOT NULL"
        " AND first_seen < ?2 AND (resolved_at IS NULL OR resolved_at > ?1)"
        " ORDER BY instance_id, first_seen, id",
        err);
    size_t cap = 0;
    int64_t last = -1;
    int r;

    if (!st)
        return -EIO;
    CM_DB_BIND(st, m0, t1);
    while ((r = cm_stmt_step(st, err)) > 0) {
        BrSlaInstance *x = find_instance(in, cm_stmt_int(st, 1));
        if (!x)
            continue;
        if (x->id != last)
            cap = 0;
        last = x->id;
        if (grow((void **)&x->down, &cap, x->n_down, sizeof(*x->down)) < 0)
            return -ENOMEM;
        x->down[x->n_down] = (BrSlaSpan){
            .id = cm_stmt_int(st, 0),
            .from_ms = ms_of(st, 2, t1_ms),
            .to_ms = ms_of(st, 3, t1_ms),
        };
        x->n_down++;
    }
    return r;
}

/* The hosts' lost connections that overlap the period (open ones to @t1). */
static int read_host_down(CmDb *db, const char *m0, const char *t1, int64_t t1_ms, BrSlaInput *in,
                          CmError *err)
{
    _cleanup_stmt_ CmStmt *st =
        cm_db_prepare(db,
                      "SELECT id, host_id, lost_at, back_at FROM host_outages WHERE lost_at < ?2"
                      " AND (back_at IS NULL OR back_at > ?1) ORDER BY host_id, lost_at, id",
                      err);
    size_t cap = 0;
    int r;

    if (!st)
        return -EIO;
    CM_DB_BIND(st, m0, t1);
    while ((r = cm_stmt_step(st, err)) > 0) {
        if (grow((void **)&in->host_down, &cap, in->n_host_down, sizeof(*in->host_down)) < 0)
            return -ENOMEM;
        in->host_down[in->n_host_down++] = (BrSlaSpan){
            .id = cm_stmt_int(st, 0),
            .host_id = cm_stmt_int(st, 1),
            .from_ms = ms_of(st, 2, t1_ms),
            .to_ms = ms_of(st, 3, t1_ms),
        };
    }
    return r;
}

/* The hosts' agreed maintenance windows that overlap the period. */
static int read_maint(CmDb *db, const char *m0, const char *t1, BrSlaInput *in, CmError *err)
{
    _cleanup_stmt_ CmStmt *st = cm_db_prepare(
        db,
        "SELECT id, host_id, starts_at, ends_at FROM maintenance_windows WHERE state = 'agreed'"
        " AND starts_at < ?2 AND ends_at > ?1 ORDER BY host_id, starts_at, id",
        err);
    size_t cap = 0;
    int r;

    if (!st)
        return -EIO;
    CM_DB_BIND(st, m0, t1);
    while ((r = cm_stmt_step(st, err)) > 0) {
        int64_t a = ms_of(st, 2, -1), b = ms_of(st, 3, -1);
        if (a < 0 || b < 0)
            continue;
        if (grow((void **)&in->maint, &cap, in->n_maint, sizeof(*in->maint)) < 0)
            return -ENOMEM;
        in->maint[in->n_maint++] = (BrSlaSpan){
            .id = cm_stmt_int(st, 0),
            .host_id = cm_stmt_int(st, 1),
            .from_ms = a,
            .to_ms = b,
        };
    }
    return r;
}

/* The clocks of one indicator: each row (id, severity or NULL, start, end or NULL). */
static int read_cases(CmDb *db, const char *sql, const char *m0, const char *t1, BrSlaIndicator ind,
                      BrSlaInput *in, CmError *err)
{
    _cleanup_stmt_ CmStmt *st = cm_db_prepare(db, sql, err);
    size_t cap = 0;
    int r;

    if (!st)
        return -EIO;
    CM_DB_BIND(st, m0, t1);
    while ((r = cm_stmt_step(st, err)) > 0) {
        int64_t start = ms_of(st, 2, -1);
        if (start < 0)
            continue;
        if (grow((void **)&in->cases[ind], &cap, in->n_cases[ind], sizeof(BrSlaCase)) < 0)
            return -ENOMEM;
        int sev = cm_stmt_is_null(st, 1) ? 0 : br_sla_severity_from_string(cm_stmt_text(st, 1));
        in->cases[ind][in->n_cases[ind]++] = (BrSlaCase){
            .id = cm_stmt_int(st, 0),
            .severity = sev < 0 ? 0 : sev,
            .start_ms = start,
            .end_ms = ms_of(st, 3, -1),
        };
    }
    return r;
}

/* Each clock is counted in the month it started. */
static const struct {
    BrSlaIndicator ind;
    const char *sql;
} case_reads[] = {
    /* A new request's approval (its first move submitted → approved) to its trial running. */
    {BR_SLA_TRIAL_LEAD_TIME,
     "SELECT h.request_id, NULL, min(h.at), (SELECT min(t.at) FROM request_history t"
     " WHERE t.request_id = h.request_id AND t.to_state = 'in_trial') FROM request_history h"
     " JOIN requests q ON q.id = h.request_id WHERE q.kind = 'new' AND h.to_state = 'approved'"
     " AND h.from_state = 'submitted' GROUP BY h.request_id"
     " HAVING min(h.at) >= ?1 AND min(h.at) < ?2 ORDER BY h.request_id"},
    /* The allocate decision (the production provision job made) to the job done: its
     * instances run. A retried job keeps its start. */
    {BR_SLA_ALLOCATION_LEAD_TIME,
     "SELECT j.id, NULL, j.created_at, CASE WHEN j.state = 'done' THEN j.finished_at END"
     " FROM jobs j JOIN allocations a ON a.id = j.allocation_id WHERE j.kind = 'provision'"
     " AND a.purpose = 'production' AND j.created_at >= ?1 AND j.created_at < ?2"
     " ORDER BY j.id"},
    /* A change request's approval to the change applied. */
    {BR_SLA_CHANGE_LEAD_TIME,
     "SELECT h.request_id, NULL, min(h.at), (SELECT min(t.at) FROM request_history t"
     " WHERE t.request_id = h.request_id AND t.to_state = 'applied') FROM request_history h"
     " JOIN requests q ON q.id = h.request_id WHERE q.kind = 'change'"
     " AND h.to_state = 'approved' AND h.from_state = 'submitted' GROUP BY h.request_id"
     " HAVING min(h.at) >= ?1 AND min(h.at) < ?2 ORDER BY h.request_id"},
    /* An incident's occurrence to its record in the broker. */
    {BR_SLA_INCIDENT_RESPONSE, "SELECT id, severity, occurred_at, created_at FROM incidents"
                               " WHERE occurred_at >= ?1 AND occurred_at < ?2 ORDER BY id"},
    /* An incident's occurrence to the broker told it is resolved. */
    {BR_SLA_INCIDENT_RESOLUTION,
     "SELECT id, severity, occurred_at, resolution_recorded_at FROM incidents"
     " WHERE occurred_at >= ?1 AND occurred_at < ?2 ORDER BY id"},
    /* A vulnerability found to the broker told it is fixed; an accepted risk is no case. */
    {BR_SLA_VULNERABILITY_FIX,
     "SELECT id, severity, found_at, fix_recorded_at FROM vulnerabilities"
     " WHERE status <> 'accepted' AND found_at >= ?1 AND found_at < ?2 ORDER BY id"},
};

/* The records of each duty: (id, its time, when the broker was told, system, ok). Bulletins
 * and reports of the month (?1 "YYYY-MM"); drills and restore tests held in its calendar
 * year [?1, ?2). */
static const char *const record_reads[BR_SLA_DUTY_MAX] = {
    "SELECT id, published_at, created_at, 0, 1 FROM security_bulletins WHERE month = ?1"
    " ORDER BY id",
    "SELECT id, held_at, created_at, 0, 1 FROM emergency_drills WHERE held_at >= ?1"
    " AND held_at < ?2 ORDER BY id",
    "SELECT id, tested_at, created_at, system_id, CASE WHEN result = 'ok' THEN 1 ELSE 0 END"
    " FROM restore_tests WHERE tested_at >= ?1 AND tested_at < ?2 ORDER BY id",
    "SELECT id, delivered_at, created_at, 0, 1 FROM operations_reports WHERE month = ?1"
    " ORDER BY id",
};

static int read_records(CmDb *db, BrSlaDuty d, const char *month, const char *y0, const char *y1,
                        BrSlaInput *in, CmError *err)
{
    _cleanup_stmt_ CmStmt *st = cm_db_prepare(db, record_reads[d], err);
    size_t cap = 0;
    int r;

    if (!st)
        return -EIO;
    if (d == BR_SLA_DUTY_BULLETIN || d == BR_SLA_DUTY_REPORT)
        CM_DB_BIND(st, month);
    else
        CM_DB_BIND(st, y0, y1);
    while ((r = cm_stmt_step(st, err)) > 0) {
        int64_t at = ms_of(st, 1, -1), rec = ms_of(st, 2, -1);
        if (at < 0 || rec < 0)
            continue;
        if (grow((void **)&in->records[d], &cap, in->n_records[d], sizeof(BrSlaRecord)) < 0)
            return -ENOMEM;
        in->records[d][in->n_records[d]++] = (BrSlaRecord){
            .id = cm_stmt_int(st, 0),
            .at_ms = at,
            .recorded_ms = rec,
            .system_id = cm_stmt_int(st, 3),
            .ok = cm_stmt_int(st, 4) != 0,
        };
    }
    return r;
}

/* The systems with a backup attested, since the first one was taken. */
static int read_backed_up(CmDb *db, BrSlaInput *in, CmError *err)
{
    _cleanup_stmt_ CmStmt *st = cm_db_prepare(
        db, "SELECT system_id, min(taken_at) FROM backups GROUP BY system_id ORDER BY system_id",
        err);
    size_t cap = 0;
    int r;

    if (!st)
        return -EIO;
    while ((r = cm_stmt_step(st, err)) > 0) {
        int64_t since = ms_of(st, 1, -1);
        if (since < 0)
            continue;
        if (grow((void **)&in->backed_up, &cap, in->n_backed_up, sizeof(*in->backed_up)) < 0)
            return -ENOMEM;
        in->backed_up[in->n_backed_up++] =
            (BrSlaBackedUp){.id = cm_stmt_int(st, 0), .since_ms = since};
    }
    return r;
}

int br_report_sla_input(CmDb *db, int64_t m0, int64_t t1, BrSlaInput *ret, CmError *err)
{
    char y0[CM_TIME_ISO_LEN + 1], y1[CM_TIME_ISO_LEN + 1], month[8];
    char a[CM_TIME_ISO_LEN + 1], b[CM_TIME_ISO_LEN + 1];
    BrSlaInput in = {0};
    int r;

    cm_time_iso(m0, a);
    cm_time_iso(t1, b);
    r = read_instances(db, a, b, &in, err);
    if (r >= 0)
        r = read_down(db, a, b, t1, &in, err);
    if (r >= 0)
        r = read_host_down(db, a, b, t1, &in, err);
    if (r >= 0)
        r = read_maint(db, a, b, &in, err);
    for (size_t i = 0; i < ELEMENTSOF(case_reads) && r >= 0; i++)
        r = read_cases(db, case_reads[i].sql, a, b, case_reads[i].ind, &in, err);
    {
        time_t t = (time_t)(m0 / 1000);
        struct tm tm;
        gmtime_r(&t, &tm);
        snprintf(month, sizeof(month), "%.7s", a);
        tm = (struct tm){.tm_year = tm.tm_year, .tm_mday = 1};
        cm_time_iso((int64_t)timegm(&tm) * 1000, y0);
        tm.tm_year++;
        cm_time_iso((int64_t)timegm(&tm) * 1000, y1);
    }
    for (int d = 0; d < BR_SLA_DUTY_MAX && r >= 0; d++)
        r = read_records(db, (BrSlaDuty)d, month, y0, y1, &in, err);
    if (r >= 0)
        r = read_backed_up(db, &in, err);
    if (r == -ENOMEM)
        cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    if (r < 0) {
        br_sla_input_clear(&in);
        return r;
    }
    *ret = in;
    return 0;
}
