/* SPDX-License-Identifier: Apache-2.0 */
/* The annual assessment (Art. 9) and the periodic operations report (Art. 8), as JSON. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "br-cost.h"
#include "br-daemon.h"
#include "br-histogram.h"
#include "br-instance.h"
#include "br-report.h"
#include "cm-json.h"
#include "cm-time.h"
#include "cm-util.h"

static void iso_of(int64_t t, char out[CM_TIME_ISO_LEN + 1])
{
    cm_time_iso(t * 1000, out);
}

static json_object *num(double v)
{
    return json_object_new_double(round(v * 10000) / 10000);
}

static json_object *score_or_null(double v)
{
    return v < 0 ? NULL : json_object_new_double(round(v * 10) / 10);
}

/* The allocations "on the cloud during" [from, to): made before its end, not gone before it. */
#define LIVE_ALLOCATION                                                                            \
    "a.purpose = 'production' AND a.created_at < ?2 AND NOT (a.state IN ('retained','purged')"     \
    " AND a.updated_at < ?1)"

/* A finding (f, of instance i in allocation a) live at the cut (?4): found before it, and
 * then open or acknowledged on an instance that still existed, or ended only after it. */
#define LIVE_AT_CUT                                                                                \
    "f.first_found < ?4 AND ((f.state IN ('open','acknowledged')"                                  \
    " AND i.state NOT IN ('undefined','deleted')"                                                  \
    " AND a.state NOT IN ('reclaiming','retained','purged'))"                                      \
    " OR (f.state NOT IN ('open','acknowledged') AND f.state_changed_at >= ?4))"

/* When instance i stopped holding its vCPUs and memory (epoch s; NULL while it holds them):
 * the end of the undefine step (reclaim, scale-in) that followed its last define or start
 * (a purge undefines a retained instance again; a restore defines it again), else its last
 * change of state. */
#define INSTANCE_ENDED_AT                                                                          \
    "(CASE WHEN i.state IN ('undefined','deleted') THEN coalesce((SELECT"                          \
    " unixepoch(min(js.finished_at)) FROM job_steps js WHERE js.instance_id = i.id"                \
    " AND js.action = 'undefine' AND js.state = 'done' AND js.finished_at >= coalesce((SELECT"     \
    " max(j2.finished_at) FROM job_steps j2 WHERE j2.instance_id = i.id AND j2.action IN"          \
    " ('define','start','redefine') AND j2.state = 'done'), '')), unixepoch(i.updated_at)) END)"

typedef struct {
    int64_t id;
    char code[64], name[256];
    /* cloud share */
    int64_t systems, on_cloud;
    /* efficiency: sizes held during the year, and the year's time-weighted figures */
    int64_t alloc_vcpus, alloc_mem, allocations, idle_allocs, over_allocs;
    int64_t reclaim_vcpus, reclaim_mem, reclaim_fen;
    double used_cores, used_mem_mib;
    double alloc_vcpu_h, alloc_mem_gib_h;     /* held: size × hours held in the year */
    double meas_vcpu_h, meas_mem_gib_h;       /* of those, the hours with readings */
    double used_vcpu_h, used_mem_gib_h;       /* cores (GiB) in use × hours with readings */
    double reclaim_vcpu_h, reclaim_mem_gib_h; /* live findings' frees × hours live */
    double coverage;
    bool no_data;
    BrHistogram cpu_h;
    /* security */
    int64_t sec_systems, test_passed, backup_ok, no_severe, no_incidents, incidents;
    int64_t vulns[4];
    double s_cloud, s_eff, s_sec, overall;
    int rank;
} Dept;

static int dept_index(Dept *d, size_t n, int64_t id)
{
    for (size_t i = 0; i < n; i++)
        if (d[i].id == id)
            return (int)i;
    return -1;
}

static double weighted(const BrAssessmentPolicy *p, double cloud, double eff, double sec)
{
    double sum = 0, w = 0;
    if (cloud >= 0)
        sum += p->w_cloud * cloud, w += p->w_cloud;
    if (eff >= 0)
        sum += p->w_efficiency * eff, w += p->w_efficiency;
    if (sec >= 0)
        sum += p->w_security * sec, w += p->w_security;
    return w > 0 ? sum / w : -1;
}

static void scores(const BrAssessmentPolicy *p, Dept *x)
{
    x->s_cloud = x->systems ? 100.0 * (double)x->on_cloud / (double)x->systems : -1;
    /* Efficiency over the year, time-weighted: the vCPU-hours (GiB-hours) the live idle and
     * over-provisioned findings would have freed, of those held. Without enough measured
     * hours it is "no data", never a perfect score. */
    x->s_eff = -1;
    x->coverage = x->alloc_vcpu_h > 0      ? fmin(1, x->meas_vcpu_h / x->alloc_vcpu_h)
                  : x->alloc_mem_gib_h > 0 ? fmin(1, x->meas_mem_gib_h / x->alloc_mem_gib_h)
                                           : 0;
    if (x->alloc_vcpu_h > 0 || x->alloc_mem_gib_h > 0) {
        if (x->coverage < p->min_coverage) {
            x->no_data = true;
        } else {
            double cpu = x->alloc_vcpu_h > 0 ? 1 - x->reclaim_vcpu_h / x->alloc_vcpu_h : 1;
            double mem = x->alloc_mem_gib_h > 0 ? 1 - x->reclaim_mem_gib_h / x->alloc_mem_gib_h : 1;
            x->s_eff = 100.0 * (fmax(0, cpu) + fmax(0, mem)) / 2;
        }
    }
    if (x->sec_systems > 0) {
        double n = (double)x->sec_systems,
               w = p->w_test + p->w_backup + p->w_vulns + p->w_incidents;
        x->s_sec = w > 0 ? 100.0 *
                               (p->w_test * (double)x->test_passed / n +
                                p->w_backup * (double)x->backup_ok / n +
                                p->w_vulns * (double)x->no_severe / n +
                                p->w_incidents * (double)x->no_incidents / n) /
                               w
                         : -1;
    } else {
        x->s_sec = -1;
    }
    x->overall = weighted(p, x->s_cloud, x->s_eff, x->s_sec);
}

static json_object *hours(double v)
{
    return json_object_new_double(round(v * 100) / 100);
}

static json_object *dept_json(const Dept *x, bool city)
{
    json_object *o = json_object_new_object(), *c = json_object_new_object();
    json_object *e = json_object_new_object(), *s = json_object_new_object();
    json_object *v = json_object_new_object();
    static const char *const sev[4] = {"critical", "high", "medium", "low"};
    double p95 = br_histogram_quantile(&x->cpu_h, 0.95);
    bool held = x->alloc_vcpu_h > 0 || x->alloc_mem_gib_h > 0;

    if (!city) {
        json_object_object_add(o, "id", json_object_new_int64(x->id));
        json_object_object_add(o, "code", json_object_new_string(x->code));
        json_object_object_add(o, "name", json_object_new_string(x->name));
    }
    json_object_object_add(c, "systems", json_object_new_int64(x->systems));
    json_object_object_add(c, "on_cloud", json_object_new_int64(x->on_cloud));
    json_object_object_add(c, "share",
                           x->systems ? num((double)x->on_cloud / (double)x->systems) : NULL);
    json_object_object_add(c, "score", score_or_null(x->s_cloud));
    json_object_object_add(o, "cloud_share", c);

    json_object_object_add(e, "allocations", json_object_new_int64(x->allocations));
    json_object_object_add(e, "allocated_vcpus", json_object_new_int64(x->alloc_vcpus));
    json_object_object_add(e, "allocated_memory_gib", num((double)x->alloc_mem / 1024.0));
    json_object_object_add(e, "used_vcpus_avg", num(x->used_cores));
    json_object_object_add(e, "used_memory_gib_avg", num(x->used_mem_mib / 1024.0));
    json_object_object_add(e, "cpu_utilization_avg",
                           x->meas_vcpu_h > 0 ? num(x->used_vcpu_h / x->meas_vcpu_h) : NULL);
    json_object_object_add(e, "cpu_utilization_p95", p95 >= 0 ? num(p95) : NULL);
    json_object_object_add(e, "allocated_vcpu_hours", hours(x->alloc_vcpu_h));
    json_object_object_add(e, "allocated_memory_gib_hours", hours(x->alloc_mem_gib_h));
    json_object_object_add(e, "measured_vcpu_hours", hours(x->meas_vcpu_h));
    json_object_object_add(e, "used_vcpu_hours", hours(x->used_vcpu_h));
    json_object_object_add(e, "used_memory_gib_hours", hours(x->used_mem_gib_h));
    json_object_object_add(e, "reclaimable_vcpu_hours", hours(x->reclaim_vcpu_h));
    json_object_object_add(e, "reclaimable_memory_gib_hours", hours(x->reclaim_mem_gib_h));
    json_object_object_add(e, "coverage", held ? num(x->coverage) : NULL);
    json_object_object_add(e, "no_data", json_object_new_boolean(x->no_data));
    json_object_object_add(e, "idle_allocations", json_object_new_int64(x->idle_allocs));
    json_object_object_add(e, "over_provisioned_allocations",
                           json_object_new_int64(x->over_allocs));
    json_object_object_add(e, "reclaimable_vcpus", json_object_new_int64(x->reclaim_vcpus));
    json_object_object_add(e, "reclaimable_memory_gib", num((double)x->reclaim_mem / 1024.0));
    json_object_object_add(e, "reclaimable_monthly_saving_fen",
                           json_object_new_int64(x->reclaim_fen));
    json_object_object_add(e, "reclaimable_monthly_saving", br_money_json(x->reclaim_fen));
    json_object_object_add(e, "score", score_or_null(x->s_eff));
    json_object_object_add(o, "efficiency", e);

    json_object_object_add(s, "systems_on_cloud", json_object_new_int64(x->sec_systems));
    json_object_object_add(s, "security_test_passed", json_object_new_int64(x->test_passed));
    json_object_object_add(s, "backup_attested", json_object_new_int64(x->backup_ok));
    for (int k = 0; k < 4; k++)
        json_object_object_add(v, sev[k], json_object_new_int64(x->vulns[k]));
    json_object_object_add(s, "open_vulnerabilities", v);
    json_object_object_add(s, "incidents", json_object_new_int64(x->incidents));
    json_object_object_add(s, "score", score_or_null(x->s_sec));
    json_object_object_add(o, "security", s);
    json_object_object_add(o, "overall_score", score_or_null(x->overall));
    if (!city)
        json_object_object_add(o, "rank", x->rank ? json_object_new_int64(x->rank) : NULL);
    return o;
}

static int cmp_rank(const void *a, const void *b)
{
    const Dept *x = *(Dept *const *)a, *y = *(Dept *const *)b;
    if (x->overall != y->overall)
        return x->overall > y->overall ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* Column @i as a JSON string, or null for NULL. */
static json_object *text_or_null(CmStmt *st, int i)
{
    return cm_stmt_is_null(st, i)
               ? NULL
               : json_object_new_string_len(cm_stmt_text(st, i), (int)cm_stmt_bytes(st, i));
}

/* When the period's last day of rollups was computed (the one that still changes): the report
 * states it (null: no rollup yet). */
static int rollups_computed_at(CmDb *db, const char *d0, const char *d1, json_object *doc,
                               CmError *err)
{
    _cleanup_stmt_ CmStmt *st =
        cm_db_prepare(db,
                      "SELECT max(computed_at) AS computed_at FROM rollups WHERE day = (SELECT"
                      " max(day) FROM rollups WHERE day >= ?1 AND day < ?2)",
                      err);
    int r;

    if (!st)
        return -EIO;
    CM_DB_BIND(st, d0, d1);
    r = cm_stmt_step(st, err);
    if (r > 0)
        json_object_object_add(doc, "rollups_computed_at", text_or_null(st, 0));
    return r < 0 ? r : 0;
}

/* A department named in the query must exist: an unknown one is a 404, not an empty report. */
static int department_exists(CmDb *db, int64_t department, CmError *err)
{
    _cleanup_stmt_ CmStmt *st = NULL;
    int r;

    if (!department)
        return 0;
    st = cm_db_prepare(db, "SELECT 1 FROM departments WHERE id = ?1", err);
    if (!st)
        return -EIO;
    CM_DB_BIND(st, department);
    r = cm_stmt_step(st, err);
    if (r == 0)
        return cm_error_set(err, CM_ERROR_NOT_FOUND, "department", "no department with id %lld",
                            (long long)department);
    return r < 0 ? r : 0;
}

/* The annual assessment being summed: its period and every department's figures. */
typedef struct {
    const BrAssessmentPolicy *p;
    const BrPricingPolicy *pricing;
    int64_t department, y0, hcut, cut_ms;
    char a0[CM_TIME_ISO_LEN + 1], a1[CM_TIME_ISO_LEN + 1], acut[CM_TIME_ISO_LEN + 1];
    char d0[16], d1[16];
    Dept *depts, city;
    size_t n;
    json_object *nobudget;
} Assess;

/* The department @id's figures and the city's, which every row adds to; false when @id is
 * not reported. */
static bool targets(Assess *x, int64_t id, Dept *out[2])
{
    int i = dept_index(x->depts, x->n, id);
    out[0] = i >= 0 ? &x->depts[i] : NULL;
    out[1] = &x->city;
    return i >= 0;
}

static int assess_departments(CmDb *db, Assess *x, CmError *err)
{
    _cleanup_stmt_ CmStmt *st = cm_db_prepare(
        db, "SELECT id, code, name FROM departments WHERE ?1 = 0 OR id = ?1 ORDER BY id", err);
    int r;

    if (!st)
        return -EIO;
    CM_DB_BIND(st, x->department);
    while ((r = cm_stmt_step(st, err)) > 0) {
        Dept *nd = realloc(x->depts, (x->n + 1) * sizeof(*nd));
        if (!nd)
            return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
        x->depts = nd;
        nd = &x->depts[x->n++];
        *nd = (Dept){.id = cm_stmt_int(st, 0)};
        cm_strscpy(nd->code, sizeof(nd->code), cm_stmt_text(st, 1));
        cm_strscpy(nd->name, sizeof(nd->name), cm_stmt_text(st, 2));
    }
    return r;
}

/* Systems: counted unless retired; on the cloud when one of their allocations was live. */
static int assess_systems(CmDb *db, Assess *x, CmError *err)
{
    _cleanup_stmt_ CmStmt *st = cm_db_prepare(
        db,
        "SELECT s.id, s.department_id, s.name, d.name AS department,"
        " EXISTS (SELECT 1 FROM allocations a WHERE a.system_id = s.id AND " LIVE_ALLOCATION
        ") AS on_cloud,"
        " EXISTS (SELECT 1 FROM trial_results t JOIN requests r ON r.id = t.request_id"
        "  WHERE r.system_id = s.id AND t.test = 'security' AND t.result = 'pass'"
        "  AND t.at < ?2) AS test,"
        " EXISTS (SELECT 1 FROM backups b WHERE b.system_id = s.id AND b.taken_at < ?3"
        "  AND b.taken_at >= strftime('%Y-%m-%dT%H:%M:%fZ', ?3, '-' || ?4 || ' days')) AS backup,"
        " (SELECT count(*) FROM vulnerabilities v WHERE v.system_id = s.id"
        "  AND v.severity = 'critical' AND v.found_at < ?2 AND (v.status = 'open'"
        "  OR v.fixed_at >= ?3)) AS critical,"
        " (SELECT count(*) FROM vulnerabilities v WHERE v.system_id = s.id"
        "  AND v.severity = 'high' AND v.found_at < ?2 AND (v.status = 'open'"
        "  OR v.fixed_at >= ?3)) AS high,"
        " (SELECT count(*) FROM vulnerabilities v WHERE v.system_id = s.id"
        "  AND v.severity = 'medium' AND v.found_at < ?2 AND (v.status = 'open'"
        "  OR v.fixed_at >= ?3)) AS medium,"
        " (SELECT count(*) FROM vulnerabilities v WHERE v.system_id = s.id"
        "  AND v.severity = 'low' AND v.found_at < ?2 AND (v.status = 'open'"
        "  OR v.fixed_at >= ?3)) AS low,"
        " (SELECT count(*) FROM incidents i WHERE i.system_id = s.id"
        "  AND i.occurred_at >= ?1 AND i.occurred_at < ?2) AS incidents"
        " FROM systems s JOIN departments d ON d.id = s.department_id"
        " WHERE s.status != 'retired' AND s.created_at < ?2"
        " AND (?5 = 0 OR s.department_id = ?5) ORDER BY s.id",
        err);
    int r;

    if (!st)
        return -EIO;
    CM_DB_BIND(st, x->a0, x->a1, x->acut, x->p->backup_max_age_days, x->department);
    while ((r = cm_stmt_step(st, err)) > 0) {
        bool on = cm_stmt_int(st, 4), test = cm_stmt_int(st, 5), backup = cm_stmt_int(st, 6);
        int64_t v[4] = {cm_stmt_int(st, 7), cm_stmt_int(st, 8), cm_stmt_int(st, 9),
                        cm_stmt_int(st, 10)};
        int64_t inc = cm_stmt_int(st, 11);
        Dept *to[2];
        if (!targets(x, cm_stmt_int(st, 1), to))
            continue;
        for (int k = 0; k < 2; k++) {
            to[k]->systems++;
            to[k]->on_cloud += on;
            if (!on)
                continue;
            to[k]->sec_systems++;
            to[k]->test_passed += test;
            to[k]->backup_ok += backup;
            to[k]->no_severe += (v[0] + v[1]) == 0;
            to[k]->no_incidents += inc == 0;
            to[k]->incidents += inc;
            for (int q = 0; q < 4; q++)
                to[k]->vulns[q] += v[q];
        }
        if (!on || !backup) {
            /* Art. 5: not on the cloud, or its data not backed up there: no budget. */
            json_object *o = json_object_new_object(), *why = json_object_new_array();
            json_object_object_add(o, "system_id", json_object_new_int64(cm_stmt_int(st, 0)));
            json_object_object_add(o, "system", text_or_null(st, 2));
            json_object_object_add(o, "department_id", json_object_new_int64(cm_stmt_int(st, 1)));
            json_object_object_add(o, "department", text_or_null(st, 3));
            if (!on)
                json_object_array_add(why, json_object_new_string("not_on_cloud"));
            if (!backup)
                json_object_array_add(why, json_object_new_string("no_backup"));
            json_object_object_add(o, "reasons", why);
            json_object_array_add(x->nobudget, o);
        }
    }
    return r;
}

/* Allocations live during the year, and what their findings would free at the cut: the
 * findings live then, of instances that still existed. */
static int assess_allocations(CmDb *db, Assess *x, CmError *err)
{
    _cleanup_stmt_ CmStmt *st = cm_db_prepare(
        db,
        "SELECT a.department_id,"
        " EXISTS (SELECT 1 FROM findings f WHERE f.allocation_id = a.id"
        "  AND f.kind = 'idle' AND f.first_found < ?2 AND (f.state IN"
        "  ('open','acknowledged') OR f.state_changed_at >= ?1)) AS idle,"
        " EXISTS (SELECT 1 FROM findings f WHERE f.allocation_id = a.id"
        "  AND f.kind = 'over_provisioned' AND f.first_found < ?2 AND (f.state IN"
        "  ('open','acknowledged') OR f.state_changed_at >= ?1)) AS over,"
        " (SELECT coalesce(sum(max(f.frees_vcpus, 0)), 0) FROM findings f"
        "  JOIN instances i ON i.id = f.instance_id WHERE f.allocation_id = a.id"
        "  AND f.kind IN ('idle','over_provisioned') AND " LIVE_AT_CUT ") AS vcpus,"
        " (SELECT coalesce(sum(max(f.frees_memory_mib, 0)), 0) FROM findings f"
        "  JOIN instances i ON i.id = f.instance_id WHERE f.allocation_id = a.id"
        "  AND f.kind IN ('idle','over_provisioned') AND " LIVE_AT_CUT ") AS memory_mib"
        " FROM allocations a WHERE " LIVE_ALLOCATION " AND (?3 = 0 OR a.department_id = ?3)",
        err);
    int r;

    if (!st)
        return -EIO;
    CM_DB_BIND(st, x->a0, x->a1, x->department, x->acut);
    while ((r = cm_stmt_step(st, err)) > 0) {
        Dept *to[2];
        if (!targets(x, cm_stmt_int(st, 0), to))
            continue;
        for (int k = 0; k < 2; k++) {
            to[k]->allocations++;
            to[k]->idle_allocs += cm_stmt_int(st, 1);
            to[k]->over_allocs += cm_stmt_int(st, 2);
            to[k]->reclaim_vcpus += cm_stmt_int(st, 3);
            to[k]->reclaim_mem += cm_stmt_int(st, 4);
        }
    }
    return r;
}

/* What the findings live at the cut would save a month, priced at the cut (docs/costs.md
 * "Waste in money"): each finding's positive frees at its instance's image's prices. */
static int assess_reclaim_money(CmDb *db, Assess *x, CmError *err)
{
    _cleanup_stmt_ CmStmt *st = cm_db_prepare(
        db,
        "SELECT a.department_id, i.image, a.purpose, max(f.frees_vcpus, 0),"
        " max(f.frees_memory_mib, 0) FROM findings f JOIN instances i ON i.id = f.instance_id"
        " JOIN allocations a ON a.id = f.allocation_id WHERE " LIVE_ALLOCATION
        " AND (?3 = 0 OR a.department_id = ?3) AND f.kind IN ('idle','over_provisioned')"
        " AND " LIVE_AT_CUT,
        err);
    int r;

    if (!st)
        return -EIO;
    CM_DB_BIND(st, x->a0, x->a1, x->department, x->acut);
    while ((r = cm_stmt_step(st, err)) > 0) {
        Dept *to[2];
        if (!targets(x, cm_stmt_int(st, 0), to))
            continue;
        int64_t fen = br_cost_monthly_fen(x->pricing, strcmp(cm_stmt_text(st, 2), "trial") == 0,
                                          cm_stmt_text(st, 1), x->cut_ms, cm_stmt_int(st, 3),
                                          cm_stmt_int(st, 4));
        for (int k = 0; k < 2; k++)
            to[k]->reclaim_fen += fen;
    }
    return r;
}

/* What each instance held during the year, time-weighted: its size × the hours from its
 * creation (or its first day of metering, when the history is older) to its end, inside
 * [year start, the last full hour). An instance ended in the year still counts for the hours
 * it held. */
static int assess_held(CmDb *db, Assess *x, CmError *err)
{
    _cleanup_stmt_ CmStmt *st = cm_db_prepare(
        db,
        "SELECT a.department_id, i.vcpus, i.memory_mib, unixepoch(i.created_at) AS created,"
        " " INSTANCE_ENDED_AT " AS ended,"
        " (SELECT unixepoch(min(r.day)) FROM rollups r WHERE r.instance_id = i.id"
        "  AND r.day >= ?4 AND r.day < ?5) AS metered"
        " FROM allocations a JOIN instances i ON i.allocation_id = a.id"
        " WHERE " LIVE_ALLOCATION " AND i.state != 'pending'"
        " AND (?3 = 0 OR a.department_id = ?3)",
        err);
    int r;

    if (!st)
        return -EIO;
    CM_DB_BIND(st, x->a0, x->a1, x->department, x->d0, x->d1);
    while ((r = cm_stmt_step(st, err)) > 0) {
        int64_t vcpus = cm_stmt_int(st, 1), mem = cm_stmt_int(st, 2);
        int64_t h0 = cm_stmt_int(st, 3), h1 = x->hcut;
        Dept *to[2];
        if (!cm_stmt_is_null(st, 5) && cm_stmt_int(st, 5) < h0)
            h0 = cm_stmt_int(st, 5);
        if (h0 < x->y0)
            h0 = x->y0;
        if (!cm_stmt_is_null(st, 4) && cm_stmt_int(st, 4) < h1)
            h1 = cm_stmt_int(st, 4);
        if (!targets(x, cm_stmt_int(st, 0), to) || h1 <= h0)
            continue;
        double held = (double)(h1 - h0) / 3600.0;
        for (int k = 0; k < 2; k++) {
            to[k]->alloc_vcpus += vcpus;
            to[k]->alloc_mem += mem;
            to[k]->alloc_vcpu_h += (double)vcpus * held;
            to[k]->alloc_mem_gib_h += (double)mem / 1024.0 * held;
        }
    }
    return r;
}

/* The hours the live idle and over-provisioned findings would have freed: from the start of
 * the evidence that first raised each (first found − its rule's window, not before the
 * instance's first data) to its end (resolved, dismissed, the instance gone, or the cut),
 * inside the year. */
#define RECLAIM_SQL(WINDOW_SECONDS)                                                                \
    "SELECT a.department_id, max(f.frees_vcpus, 0) AS vcpus,"                                      \
    " max(f.frees_memory_mib, 0) AS memory_mib,"                                                   \
    " max(?4, unixepoch(f.first_found) - coalesce(" WINDOW_SECONDS ", 0),"                         \
    "  min(unixepoch(i.created_at), coalesce((SELECT unixepoch(min(r.day))"                        \
    "  FROM rollups r WHERE r.instance_id = i.id), unixepoch(i.created_at)))) AS f0,"              \
    " min(?5, coalesce(" INSTANCE_ENDED_AT ", ?5), CASE WHEN f.state IN"                           \
    "  ('open','acknowledged') THEN ?5 ELSE unixepoch(f.state_changed_at) END) AS f1"              \
    " FROM findings f JOIN allocations a ON a.id = f.allocation_id"                                \
    " JOIN instances i ON i.id = f.instance_id"                                                    \
    " WHERE f.kind IN ('idle','over_provisioned') AND " LIVE_ALLOCATION                            \
    " AND f.first_found < ?2 AND (?3 = 0 OR a.department_id = ?3)"

static int assess_reclaim(CmDb *db, Assess *x, CmError *err)
{
    _cleanup_stmt_ CmStmt *st = cm_db_prepare(
        db,
        cm_db_sql(db, RECLAIM_SQL("f.evidence ->> '$.window.seconds'"),
                  RECLAIM_SQL("CAST(f.evidence::json #>> '{window,seconds}' AS BIGINT)")),
        err);
    int r;

    if (!st)
        return -EIO;
    CM_DB_BIND(st, x->a0, x->a1, x->department, x->y0, x->hcut);
    while ((r = cm_stmt_step(st, err)) > 0) {
        int64_t f0 = cm_stmt_int(st, 3), f1 = cm_stmt_int(st, 4);
        Dept *to[2];
        if (!targets(x, cm_stmt_int(st, 0), to) || f1 <= f0)
            continue;
        double live = (double)(f1 - f0) / 3600.0;
        for (int k = 0; k < 2; k++) {
            to[k]->reclaim_vcpu_h += (double)cm_stmt_int(st, 1) * live;
            to[k]->reclaim_mem_gib_h += (double)cm_stmt_int(st, 2) / 1024.0 * live;
        }
    }
    return r;
}

#define USE_SLICE 1000 /* instances per read on PostgreSQL: a row each, their year's days in it */

/* One instance's use over the period, added to its department's (and the city's) when it ends:
 * its readings-weighted averages (the cores and MiB it used, in C and CW, M and MW), and the
 * sums of its days' hours measured (24 h × the day's coverage) with the cores and GiB in use
 * over them. */
typedef struct {
    double cs, cw, ms, mw;
    double meas_vcpu_h, meas_mem_gib_h, used_vcpu_h, used_mem_gib_h;
} InstanceUse;

static void use_flush(Assess *x, Dept *dept, const InstanceUse *u)
{
    Dept *to[2] = {dept, &x->city};
    for (int k = 0; k < 2; k++) {
        to[k]->used_cores += u->cw > 0 ? u->cs / u->cw : 0;
        to[k]->used_mem_mib += u->mw > 0 ? u->ms / u->mw : 0;
        to[k]->meas_vcpu_h += u->meas_vcpu_h;
        to[k]->meas_mem_gib_h += u->meas_mem_gib_h;
        to[k]->used_vcpu_h += u->used_vcpu_h;
        to[k]->used_mem_gib_h += u->used_mem_gib_h;
    }
}

/* SQLite: one day of an instance (columns as USE_DAYS_SQL's) added to @u, its histogram to
 * @dept's. The same arithmetic, in the same order, as USE_YEAR_SQL's sums on PostgreSQL. */
static void use_add_day(Dept *dept, InstanceUse *u, CmStmt *st)
{
    double rd = (double)cm_stmt_int(st, 2), expected = (double)cm_stmt_int(st, 6);
    double measured = expected > 0 ? 24.0 * fmin(1, rd / expected) : 0;
    double vcpus = (double)cm_stmt_int(st, 7), mem_mib = (double)cm_stmt_int(st, 8);
    const void *blob = cm_stmt_blob(st, 5);

    u->meas_vcpu_h += vcpus * measured;
    u->meas_mem_gib_h += mem_mib / 1024.0 * measured;
    if (!cm_stmt_is_null(st, 3)) {
        u->cs += cm_stmt_double(st, 3) * rd, u->cw += rd;
        u->used_vcpu_h += cm_stmt_double(st, 3) * measured;
    }
    if (!cm_stmt_is_null(st, 4)) {
        u->ms += cm_stmt_double(st, 4) * rd, u->mw += rd;
        u->used_mem_gib_h += cm_stmt_double(st, 4) / 1024.0 * measured;
    }
    if (blob)
        (void)br_histogram_merge_blob(&dept->cpu_h, blob, cm_stmt_bytes(st, 5));
}

static uint32_t be32(const uint8_t *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

/* PostgreSQL: an instance's year as one row of USE_YEAR_SQL (sums: NULL when no day had the
 * figure), its days' histograms as a bytea[] in the server's binary form: the dimensions
 * (one), a flag, the element type, the length and lower bound, then each element's length
 * (4 bytes, big-endian; -1 for NULL) and bytes. */
static void use_add_year(Dept *dept, InstanceUse *u, CmStmt *st)
{
    const uint8_t *b = cm_stmt_blob(st, 10);
    size_t len = b ? cm_stmt_bytes(st, 10) : 0, at = 20;
    double *sums[] = {&u->cs,          &u->cw,
                      &u->ms,          &u->mw,
                      &u->meas_vcpu_h, &u->meas_mem_gib_h,
                      &u->used_vcpu_h, &u->used_mem_gib_h};

    for (int k = 0; k < 8; k++)
        *sums[k] = cm_stmt_is_null(st, 2 + k) ? 0 : cm_stmt_double(st, 2 + k);
    if (len < at || be32(b) != 1)
        return;
    for (uint32_t i = 0, n = be32(b + 12); i < n && at + 4 <= len; i++) {
        uint32_t m = be32(b + at);
        at += 4;
        if (m == UINT32_MAX)
            continue; /* NULL */
        if (m > len - at)
            break;
        (void)br_histogram_merge_blob(&dept->cpu_h, b + at, m);
        at += m;
    }
}

/* Use over the year, from the daily rollups: each instance's average (weighted by its
 * readings), summed per department; the hours measured (24 h × the day's coverage) with the
 * cores and GiB in use over them; utilization percentiles from the merged histograms. */
static int assess_use(CmDb *db, Assess *x, CmError *err)
{
    /* SQLite, in process: each instance's days, along the rollups' primary key (instance_id,
     * day). CROSS JOIN keeps that loop order without a sort (the day index and a sort of every
     * row with its histogram took 8 times longer for a year of 5,000).
     * PostgreSQL: a row per instance, summed on the server. A row per day cost more to send and
     * to take (each a message, each of its values a send function on the server and a result
     * in libpq) than to read: 7.3 million for a year of 20,000 instances. The sums are
     * use_add_day()'s products, added in the order the server reads the days (along the
     * primary key); on both backends an instance's sums are then added to its department's.
     * Slices of instances bound each statement. */
#define USE_DAYS_SQL                                                                               \
    "SELECT a.department_id, r.instance_id, r.readings, r.cpu_avg, r.mem_avg,"                     \
    " r.cpu_util_hist, r.expected, coalesce(r.vcpus, i.vcpus) AS vcpus,"                           \
    " coalesce(r.memory_mib, i.memory_mib) AS memory_mib FROM allocations a JOIN instances i"      \
    " ON i.allocation_id = a.id CROSS JOIN rollups r"                                              \
    " WHERE r.instance_id = i.id AND " LIVE_ALLOCATION                                             \
    " AND r.day >= ?4 AND r.day < ?5 AND (?3 = 0 OR a.department_id = ?3)"                         \
    " AND ?6 IS NOT NULL AND ?7 IS NOT NULL"
#define USE_YEAR_SQL                                                                               \
    "SELECT a.department_id, i.id, y.cs, y.cw, y.ms, y.mw, y.meas_vcpu_h, y.meas_mem_gib_h,"       \
    " y.used_vcpu_h, y.used_mem_gib_h, y.hists FROM allocations a JOIN instances i"                \
    " ON i.allocation_id = a.id CROSS JOIN LATERAL (SELECT"                                        \
    " sum(r.cpu_avg * r.readings::float8) AS cs,"                                                  \
    " sum(r.readings::float8) FILTER (WHERE r.cpu_avg IS NOT NULL) AS cw,"                         \
    " sum(r.mem_avg * r.readings::float8) AS ms,"                                                  \
    " sum(r.readings::float8) FILTER (WHERE r.mem_avg IS NOT NULL) AS mw,"                         \
    " sum(coalesce(r.vcpus, i.vcpus)::float8 * d.measured) AS meas_vcpu_h,"                        \
    " sum(coalesce(r.memory_mib, i.memory_mib)::float8 / 1024::float8 * d.measured)"               \
    " AS meas_mem_gib_h, sum(r.cpu_avg * d.measured) AS used_vcpu_h,"                              \
    " sum(r.mem_avg / 1024::float8 * d.measured) AS used_mem_gib_h,"                               \
    " array_send(array_agg(r.cpu_util_hist) FILTER (WHERE r.cpu_util_hist IS NOT NULL)) AS hists"  \
    " FROM rollups r CROSS JOIN LATERAL (SELECT CASE WHEN r.expected > 0 THEN 24::float8"          \
    " * least(1::float8, r.readings::float8 / r.expected::float8) ELSE 0::float8 END"              \
    " AS measured) d WHERE r.instance_id = i.id AND r.day >= ?4 AND r.day < ?5) y"                 \
    " WHERE " LIVE_ALLOCATION " AND (?3 = 0 OR a.department_id = ?3) AND i.id > ?6"                \
    " AND i.id <= ?7 ORDER BY i.id"
    _cleanup_stmt_ CmStmt *st = cm_db_prepare(db, cm_db_sql(db, USE_DAYS_SQL, USE_YEAR_SQL), err);
    bool sliced = cm_db_backend(db) == CM_DB_POSTGRESQL;
    int64_t after = 0, last = INT64_MAX, instance = 0;
    InstanceUse u = {0};
    Dept *dept = NULL, *to[2];
    int r = 0;

    if (!st)
        return -EIO;
    /* the histograms as bytes, not hex text; rows as the server finds them */
    cm_stmt_set_rows(st, CM_DB_ROWS_BINARY | CM_DB_ROWS_STREAM);
    for (;;) {
        if (sliced && (r = br_instance_slice_end(db, after, USE_SLICE, &last, err)) < 0)
            return r;
        if (last == 0 || (!sliced && after))
            break;
        cm_stmt_reset(st);
        CM_DB_BIND(st, x->a0, x->a1, x->department, x->d0, x->d1, after, last);
        after = last;
        while ((r = cm_stmt_step(st, err)) > 0) {
            if (cm_stmt_int(st, 1) != instance) {
                if (dept)
                    use_flush(x, dept, &u);
                u = (InstanceUse){0};
                instance = cm_stmt_int(st, 1);
                dept = targets(x, cm_stmt_int(st, 0), to) ? to[0] : NULL;
            }
            if (dept && sliced)
                use_add_year(dept, &u, st);
            else if (dept)
                use_add_day(dept, &u, st);
        }
        if (r < 0)
            return r;
    }
    if (dept)
        use_flush(x, dept, &u);
    /* the city's histogram: every department's */
    for (size_t i = 0; i < x->n; i++)
        br_histogram_merge(&x->city.cpu_h, &x->depts[i].cpu_h);
    return r;
#undef USE_DAYS_SQL
#undef USE_YEAR_SQL
}

static json_object *methodology_json(const BrAssessmentPolicy *p)
{
    json_object *m = json_object_new_object(), *w = json_object_new_object();
    json_object *sw = json_object_new_object();
    json_object_object_add(w, "cloud_share", num(p->w_cloud));
    json_object_object_add(w, "efficiency", num(p->w_efficiency));
    json_object_object_add(w, "security", num(p->w_security));
    json_object_object_add(sw, "security_test_passed", num(p->w_test));
    json_object_object_add(sw, "backup_attested", num(p->w_backup));
    json_object_object_add(sw, "no_open_severe_vulnerabilities", num(p->w_vulns));
    json_object_object_add(sw, "no_incidents", num(p->w_incidents));
    json_object_object_add(m, "weights", w);
    json_object_object_add(m, "security_weights", sw);
    json_object_object_add(m, "backup_max_age_days", json_object_new_int64(p->backup_max_age_days));
    json_object_object_add(m, "percentile_resolution",
                           json_object_new_string("1 % of allocated vCPUs (daily histograms "
                                                  "merged)"));
    json_object_object_add(m, "min_coverage", num(p->min_coverage));
    json_object_object_add(
        m, "time_weighting",
        json_object_new_string("vCPU-hours and GiB-hours: each instance's size x the hours "
                               "it was held in the year, to hours_to"));
    return m;
}

int br_report_assessment(BrDaemon *d, CmDb *db, int year, int64_t department, json_object **ret,
                         CmError *err)
{
    _cleanup_(br_policies_unrefp) BrPolicies *pol = br_daemon_policies(d);
    struct tm tm = {.tm_year = year - 1900, .tm_mon = 0, .tm_mday = 1};
    int64_t now_ms = cm_now_ms(), now = now_ms / 1000, y1;
    Assess x = {.p = &pol->assessment,
                .pricing = &pol->pricing,
                .department = department,
                .y0 = (int64_t)timegm(&tm)};
    _cleanup_json_ json_object *nobudget = x.nobudget = json_object_new_array();
    _cleanup_free_ Dept **order = NULL;
    json_object *doc, *list;
    char at[CM_TIME_ISO_LEN + 1];
    size_t n_ranked = 0;
    int r;

    tm = (struct tm){.tm_year = year + 1 - 1900, .tm_mon = 0, .tm_mday = 1};
    y1 = (int64_t)timegm(&tm);
    /* the year's hours are counted to the last full hour (or the year's end) */
    x.hcut = y1 < now ? y1 : now - now % 3600;
    iso_of(x.y0, x.a0);
    iso_of(y1, x.a1);
    /* To the millisecond: a finding resolved a moment ago ended before this cut. */
    x.cut_ms = y1 < now ? y1 * 1000 : now_ms;
    cm_time_iso(x.cut_ms, x.acut);
    snprintf(x.d0, sizeof(x.d0), "%04u-01-01", (unsigned)year % 10000u);
    snprintf(x.d1, sizeof(x.d1), "%04u-01-01", (unsigned)(year + 1) % 10000u);

    r = department_exists(db, department, err);
    if (r >= 0)
        r = assess_departments(db, &x, err);
    if (r >= 0)
        r = assess_systems(db, &x, err);
    if (r >= 0)
        r = assess_allocations(db, &x, err);
    if (r >= 0)
        r = assess_held(db, &x, err);
    if (r >= 0)
        r = assess_reclaim(db, &x, err);
    if (r >= 0)
        r = assess_reclaim_money(db, &x, err);
    if (r >= 0)
        r = assess_use(db, &x, err);
    order = calloc(x.n + 1, sizeof(Dept *));
    if (r >= 0 && !order)
        r = cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    if (r < 0) {
        free(x.depts);
        return r;
    }

    /* Scores and the ranking. */
    for (size_t i = 0; i < x.n; i++) {
        scores(x.p, &x.depts[i]);
        if (x.depts[i].overall >= 0)
            order[n_ranked++] = &x.depts[i];
    }
    scores(x.p, &x.city);
    qsort(order, n_ranked, sizeof(*order), cmp_rank);
    for (size_t i = 0; i < n_ranked; i++)
        order[i]->rank = (int)i + 1;

    doc = json_object_new_object();
    json_object_object_add(doc, "report", json_object_new_string("annual_assessment"));
    json_object_object_add(doc, "year", json_object_new_int64(year));
    cm_time_iso(cm_now_ms(), at);
    json_object_object_add(doc, "generated_at", json_object_new_string(at));
    json_object_object_add(doc, "period_from", json_object_new_string(x.a0));
    json_object_object_add(doc, "period_to", json_object_new_string(x.a1));
    json_object_object_add(doc, "period_cut", json_object_new_string(x.acut));
    iso_of(x.hcut, at);
    json_object_object_add(doc, "hours_to", json_object_new_string(at));
    r = rollups_computed_at(db, x.d0, x.d1, doc, err);
    if (r < 0) {
        json_object_put(doc);
        free(x.depts);
        return r;
    }
    json_object_object_add(doc, "methodology", methodology_json(x.p));
    json_object_object_add(doc, "city", dept_json(&x.city, true));
    list = json_object_new_array();
    for (size_t i = 0; i < x.n; i++)
        json_object_array_add(list, dept_json(&x.depts[i], false));
    json_object_object_add(doc, "departments", list);
    json_object_object_add(doc, "no_budget", TAKE_PTR(nobudget));
    free(x.depts);
    *ret = doc;
    return 0;
}

/* ---- the operations report ---- */

/* Figures summed over instances (a department, the city). */
typedef struct {
    int64_t instances, util_n;
    double hours, readings, expected, running_s, unreachable_s, observed_s, exist_s, util_sum;
} OpsTotals;

/* The month's requests handled: received (submitted, once per request), decided, and the days
 * from each decision's (re)submission to it. */
typedef struct {
    int64_t id; /* department; 0: the city */
    int64_t received, approved, returned, rejected;
    double *days;
    size_t n_days, cap_days;
} OpsRequests;

static void ops_totals_add(OpsTotals *t, const OpsTotals *x)
{
    t->instances += x->instances;
    t->util_n += x->util_n;
    t->hours += x->hours;
    t->readings += x->readings;
    t->expected += x->expected;
    t->running_s += x->running_s;
    t->unreachable_s += x->unreachable_s;
    t->observed_s += x->observed_s;
    t->exist_s += x->exist_s;
    t->util_sum += x->util_sum;
}

/* Availability = seconds seen running ÷ seconds observed; "no data" (NULL) when less than
 * @min_observed of the instance's existence was observed. */
static json_object *availability_json(double running, double observed, double exist,
                                      double min_observed)
{
    if (exist <= 0 || observed <= 0 || observed < min_observed * exist)
        return NULL;
    return num(fmin(1, running / observed));
}

static json_object *ops_totals_json(const OpsTotals *t, double min_observed)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "instances", json_object_new_int64(t->instances));
    json_object_object_add(o, "instance_hours", num(t->hours));
    json_object_object_add(
        o, "availability",
        availability_json(t->running_s, t->observed_s, t->exist_s, min_observed));
    json_object_object_add(o, "observed_share",
                           t->exist_s > 0 ? num(fmin(1, t->observed_s / t->exist_s)) : NULL);
    json_object_object_add(o, "running_hours", num(t->running_s / 3600.0));
    json_object_object_add(o, "unreachable_hours", num(t->unreachable_s / 3600.0));
    json_object_object_add(o, "coverage",
                           t->expected > 0 ? num(fmin(1, t->readings / t->expected)) : NULL);
    json_object_object_add(o, "cpu_utilization_avg",
                           t->util_n ? num(t->util_sum / (double)t->util_n) : NULL);
    return o;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static json_object *ops_requests_json(OpsRequests *q)
{
    json_object *o = json_object_new_object();
    double median = 0;
    if (q->n_days) {
        qsort(q->days, q->n_days, sizeof(double), cmp_double);
        median = q->n_days % 2 ? q->days[q->n_days / 2]
                               : (q->days[q->n_days / 2 - 1] + q->days[q->n_days / 2]) / 2;
    }
    json_object_object_add(o, "received", json_object_new_int64(q->received));
    json_object_object_add(o, "approved", json_object_new_int64(q->approved));
    json_object_object_add(o, "returned", json_object_new_int64(q->returned));
    json_object_object_add(o, "rejected", json_object_new_int64(q->rejected));
    json_object_object_add(o, "decided", json_object_new_int64((int64_t)q->n_days));
    json_object_object_add(o, "median_days_to_decide", q->n_days ? num(median) : NULL);
    return o;
}

static int ops_requests_add(OpsRequests *q, const char *to, double days)
{
    if (strcmp(to, "submitted") == 0) {
        q->received++;
        return 0;
    }
    if (strcmp(to, "approved") == 0)
        q->approved++;
    else if (strcmp(to, "returned") == 0)
        q->returned++;
    else
        q->rejected++;
    if (days < 0)
        return 0;
    if (q->n_days == q->cap_days) {
        size_t cap = q->cap_days ? q->cap_days * 2 : 16;
        double *nd = realloc(q->days, cap * sizeof(double));
        if (!nd)
            return -ENOMEM;
        q->days = nd;
        q->cap_days = cap;
    }
    q->days[q->n_days++] = days;
    return 0;
}

/* Every request moved in [?1, ?2): submissions (each request once) and review decisions, with
 * the days since the submission each decision answered. */
static int ops_requests_load(CmDb *db, const char *a0, const char *a1, int64_t department,
                             OpsRequests *per, size_t n, OpsRequests *city, CmError *err)
{
    _cleanup_stmt_ CmStmt *st = cm_db_prepare(
        db,
        "SELECT q.department_id, h.to_state,"
        " julianday(h.at) - (SELECT max(julianday(h2.at))"
        "  FROM request_history h2 WHERE h2.request_id = h.request_id"
        "  AND h2.to_state = 'submitted' AND h2.at <= h.at) AS days"
        " FROM request_history h JOIN requests q ON q.id = h.request_id"
        " WHERE h.at >= ?1 AND h.at < ?2 AND (?3 = 0 OR q.department_id = ?3)"
        " AND (h.to_state IN ('approved','returned','rejected')"
        "  OR (h.to_state = 'submitted' AND h.id = (SELECT min(h3.id) FROM request_history h3"
        "   WHERE h3.request_id = h.request_id AND h3.to_state = 'submitted'"
        "   AND h3.at >= ?1 AND h3.at < ?2)))",
        err);
    int r;

    if (!st)
        return -EIO;
    CM_DB_BIND(st, a0, a1, department);
    while ((r = cm_stmt_step(st, err)) > 0) {
        int64_t dep = cm_stmt_int(st, 0);
        const char *to = cm_stmt_text(st, 1);
        double days = cm_stmt_is_null(st, 2) ? -1 : cm_stmt_double(st, 2);
        for (size_t i = 0; i < n; i++)
            if (per[i].id == dep && ops_requests_add(&per[i], to, days) < 0)
                return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
        if (ops_requests_add(city, to, days) < 0)
            return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    }
    return r;
}

/* Seconds instance @id was observed in [t0, t1): running, unreachable, and in all. */
static int observed(CmDb *db, int64_t id, int64_t t0, int64_t t1, double *ret_running,
                    double *ret_unreachable, double *ret_all, CmError *err)
{
    _cleanup_stmt_ CmStmt *st =
        cm_db_prepare(db,
                      "SELECT coalesce(sum(CASE WHEN state = 'running' THEN d END), 0) AS running,"
                      " coalesce(sum(CASE WHEN state = 'unreachable' THEN d END), 0)"
                      " AS unreachable, coalesce(sum(d), 0) AS seen FROM (SELECT state, max(0,"
                      "  min(coalesce(until, last_seen), ?3) - max(since, ?2)) AS d"
                      "  FROM observations WHERE instance_id = ?1 AND since < ?3"
                      "  AND coalesce(until, last_seen) > ?2) AS o",
                      err);
    int r;

    if (!st)
        return -EIO;
    CM_DB_BIND(st, id, t0, t1);
    r = cm_stmt_step(st, err);
    if (r > 0) {
        *ret_running = cm_stmt_double(st, 0);
        *ret_unreachable = cm_stmt_double(st, 1);
        *ret_all = cm_stmt_double(st, 2);
    }
    return r < 0 ? r : 0;
}

/* The operations report being made: its period, and the department being added. */
typedef struct {
    int64_t month_start, cut;
    double min_observed;
    char a0[CM_TIME_ISO_LEN + 1], a1[CM_TIME_ISO_LEN + 1], d0[16], d1[16];
} Ops;

static json_object *num_col(CmStmt *st, int i)
{
    return cm_stmt_is_null(st, i) ? NULL : num(cm_stmt_double(st, i));
}

/* Instances that existed during the month, with their figures from the rollups. */
static int ops_instances(CmDb *db, const Ops *x, int64_t dep_id, json_object *insts, OpsTotals *tot,
                         CmError *err)
{
    _cleanup_stmt_ CmStmt *st = cm_db_prepare(
        db,
        "SELECT i.id, i.name, i.allocation_id, sy.name AS system, i.vcpus, i.memory_mib,"
        " max(unixepoch(i.created_at), ?3) AS t0,"
        " min(coalesce(" INSTANCE_ENDED_AT ", ?4), ?4) AS t1,"
        " (SELECT coalesce(sum(r.readings), 0) FROM rollups r WHERE r.instance_id = i.id"
        "  AND r.day >= ?5 AND r.day < ?6) AS readings,"
        " (SELECT sum(r.cpu_avg * r.readings) / nullif(sum(r.readings), 0) FROM rollups r"
        "  WHERE r.instance_id = i.id AND r.day >= ?5 AND r.day < ?6) AS cpu_avg,"
        " (SELECT max(r.cpu_p95) FROM rollups r WHERE r.instance_id = i.id AND r.day >= ?5"
        "  AND r.day < ?6) AS cpu_p95,"
        " (SELECT sum(r.mem_avg * r.readings) / nullif(sum(r.readings), 0) FROM rollups r"
        "  WHERE r.instance_id = i.id AND r.day >= ?5 AND r.day < ?6) AS mem_avg,"
        " (SELECT sum(r.expected * 1.0) / count(*) / 86400.0 FROM rollups r"
        "  WHERE r.instance_id = i.id AND r.day >= ?5 AND r.day < ?6) AS rate,"
        " max(?3, min(unixepoch(i.created_at), coalesce((SELECT unixepoch(min(r.day))"
        "  FROM rollups r WHERE r.instance_id = i.id AND r.day >= ?5 AND r.day < ?6),"
        "  unixepoch(i.created_at)))) AS m0"
        " FROM instances i JOIN allocations a ON a.id = i.allocation_id"
        " JOIN systems sy ON sy.id = a.system_id WHERE a.department_id = ?1"
        " AND a.purpose = 'production' AND i.created_at < ?2 AND i.state != 'pending'"
        " AND coalesce(" INSTANCE_ENDED_AT ", ?3) >= ?3"
        " ORDER BY i.id",
        err);
    int r;

    if (!st)
        return -EIO;
    CM_DB_BIND(st, dep_id, x->a1, x->month_start, x->cut, x->d0, x->d1);
    while ((r = cm_stmt_step(st, err)) > 0) {
        json_object *o = json_object_new_object();
        int64_t t0 = cm_stmt_int(st, 6), t1 = cm_stmt_int(st, 7), m0 = cm_stmt_int(st, 13);
        double hours = t1 > t0 ? (double)(t1 - t0) / 3600.0 : 0;
        double readings = (double)cm_stmt_int(st, 8);
        /* Readings expected a second: the agent's rate on the instance's days, or its default
         * (a reading every 10 s) when none of them came. */
        double rate = cm_stmt_is_null(st, 12) ? 0.1 : cm_stmt_double(st, 12);
        double expected = t1 > m0 ? rate * (double)(t1 - m0) : 0;
        double running = 0, unreachable = 0, seen = 0;
        int64_t vcpus = cm_stmt_int(st, 4);
        bool has_cpu = !cm_stmt_is_null(st, 9) && vcpus > 0;

        json_object_array_add(insts, o);
        if (t1 > t0 &&
            (r = observed(db, cm_stmt_int(st, 0), t0, t1, &running, &unreachable, &seen, err)) < 0)
            return r;
        json_object_object_add(o, "id", json_object_new_int64(cm_stmt_int(st, 0)));
        json_object_object_add(o, "name", text_or_null(st, 1));
        json_object_object_add(o, "allocation_id", json_object_new_int64(cm_stmt_int(st, 2)));
        json_object_object_add(o, "system", text_or_null(st, 3));
        json_object_object_add(o, "vcpus", json_object_new_int64(vcpus));
        json_object_object_add(o, "memory_mib", json_object_new_int64(cm_stmt_int(st, 5)));
        json_object_object_add(o, "instance_hours", num(hours));
        json_object_object_add(
            o, "availability",
            availability_json(running, seen, (double)(t1 - t0), x->min_observed));
        json_object_object_add(o, "observed_share",
                               t1 > t0 ? num(fmin(1, seen / (double)(t1 - t0))) : NULL);
        json_object_object_add(o, "running_hours", num(running / 3600.0));
        json_object_object_add(o, "coverage",
                               expected > 0 ? num(fmin(1, readings / expected)) : NULL);
        json_object_object_add(o, "readings", json_object_new_int64((int64_t)readings));
        json_object_object_add(o, "cpu_cores_avg", num_col(st, 9));
        json_object_object_add(o, "cpu_utilization_avg",
                               has_cpu ? num(cm_stmt_double(st, 9) / (double)vcpus) : NULL);
        json_object_object_add(o, "cpu_cores_p95_daily_max", num_col(st, 10));
        json_object_object_add(o, "memory_used_mib_avg", num_col(st, 11));
        tot->instances++;
        tot->hours += hours;
        tot->readings += readings;
        tot->expected += expected;
        tot->running_s += running;
        tot->unreachable_s += unreachable;
        tot->observed_s += seen;
        tot->exist_s += t1 > t0 ? (double)(t1 - t0) : 0;
        if (has_cpu) {
            tot->util_sum += cm_stmt_double(st, 9) / (double)vcpus;
            tot->util_n++;
        }
    }
    return r;
}

/* Daily utilization for the chart. */
static int ops_daily(CmDb *db, const Ops *x, int64_t dep_id, json_object *daily, CmError *err)
{
    _cleanup_stmt_ CmStmt *st =
        cm_db_prepare(db,
                      "SELECT r.day, sum(r.vcpus) AS vcpus, sum(r.memory_mib) AS memory_mib,"
                      " sum(r.cpu_avg) AS cpu_avg, sum(r.mem_avg) AS mem_avg"
                      " FROM rollups r JOIN instances i ON i.id = r.instance_id"
                      " JOIN allocations a ON a.id = i.allocation_id WHERE a.department_id = ?1"
                      " AND a.purpose = 'production' AND r.day >= ?2 AND r.day < ?3"
                      " GROUP BY r.day ORDER BY r.day",
                      err);
    int r;

    if (!st)
        return -EIO;
    CM_DB_BIND(st, dep_id, x->d0, x->d1);
    while ((r = cm_stmt_step(st, err)) > 0) {
        json_object *o = json_object_new_object();
        double vc = (double)cm_stmt_int(st, 1), mm = (double)cm_stmt_int(st, 2);
        json_object_object_add(o, "day", text_or_null(st, 0));
        json_object_object_add(o, "cpu_utilization",
                               vc > 0 && !cm_stmt_is_null(st, 3) ? num(cm_stmt_double(st, 3) / vc)
                                                                 : NULL);
        json_object_object_add(o, "memory_utilization",
                               mm > 0 && !cm_stmt_is_null(st, 4) ? num(cm_stmt_double(st, 4) / mm)
                                                                 : NULL);
        json_object_array_add(daily, o);
    }
    return r;
}

/* The reconciler's events on the department's instances. */
static int ops_events(CmDb *db, const Ops *x, int64_t dep_id, json_object **ret, CmError *err)
{
    _cleanup_stmt_ CmStmt *st =
        cm_db_prepare(db,
                      "SELECT e.id, e.kind, e.severity, e.domain_name AS instance, e.message,"
                      " e.first_seen, e.resolved_at, e.detail AS \"detail:json\" FROM events e"
                      " JOIN allocations a ON a.id = e.allocation_id WHERE a.department_id = ?1"
                      " AND e.first_seen >= ?2 AND e.first_seen < ?3 ORDER BY e.id",
                      err);

    if (!st)
        return -EIO;
    CM_DB_BIND(st, dep_id, x->a0, x->a1);
    return cm_stmt_rows_json(st, ret, err);
}

/* Live findings with their right-sizing, on instances that still exist: nothing advises
 * reclaiming what is gone. */
#define OPS_FINDINGS_SQL(RULE_ZH, ACTION)                                                          \
    "SELECT f.id, f.kind, i.name AS instance, f.rule, " RULE_ZH " AS rule_zh, " ACTION             \
    " AS action, f.current_vcpus, f.current_memory_mib, f.recommended_vcpus,"                      \
    " f.recommended_memory_mib, f.frees_vcpus, f.frees_memory_mib, f.state FROM findings f"        \
    " JOIN instances i ON i.id = f.instance_id"                                                    \
    " JOIN allocations a ON a.id = f.allocation_id WHERE f.department_id = ?1"                     \
    " AND f.state IN ('open','acknowledged')"                                                      \
    " AND i.state NOT IN ('undefined','deleted')"                                                  \
    " AND a.state NOT IN ('reclaiming','retained','purged') ORDER BY f.id"

static int ops_findings(CmDb *db, int64_t dep_id, json_object **ret, CmError *err)
{
    _cleanup_stmt_ CmStmt *st = cm_db_prepare(
        db,
        cm_db_sql(db,
                  OPS_FINDINGS_SQL("f.evidence ->> '$.rule_zh'", "f.recommendation ->> '$.action'"),
                  OPS_FINDINGS_SQL("f.evidence::json ->> 'rule_zh'",
                                   "f.recommendation::json ->> 'action'")),
        err);

    if (!st)
        return -EIO;
    CM_DB_BIND(st, dep_id);
    return cm_stmt_rows_json(st, ret, err);
}

static int ops_departments(CmDb *db, int64_t department, json_object **ret, CmError *err)
{
    _cleanup_stmt_ CmStmt *st = cm_db_prepare(
        db, "SELECT id, code, name FROM departments WHERE ?1 = 0 OR id = ?1 ORDER BY id", err);

    if (!st)
        return -EIO;
    CM_DB_BIND(st, department);
    return cm_stmt_rows_json(st, ret, err);
}

/* One department's sections; every statement runs to its end: an error fails the whole
 * report rather than leaving a section short. */
static int ops_department(CmDb *db, const Ops *x, json_object *dep, OpsTotals *tot, CmError *err)
{
    const int64_t dep_id = cm_json_get_int(dep, "id", 0);
    json_object *insts = json_object_new_array(), *daily = json_object_new_array();
    json_object *events = NULL, *findings = NULL;
    int r;

    json_object_object_add(dep, "instances", insts);
    json_object_object_add(dep, "daily", daily);
    r = ops_instances(db, x, dep_id, insts, tot, err);
    if (r >= 0)
        r = ops_daily(db, x, dep_id, daily, err);
    if (r >= 0)
        r = ops_events(db, x, dep_id, &events, err);
    json_object_object_add(dep, "events", events ? events : json_object_new_array());
    if (r >= 0)
        r = ops_findings(db, dep_id, &findings, err);
    json_object_object_add(dep, "findings", findings ? findings : json_object_new_array());
    return r;
}

int br_report_operations(BrDaemon *d, CmDb *db, int64_t month_start, int64_t department,
                         json_object **ret, CmError *err)
{
    _cleanup_(br_policies_unrefp) BrPolicies *pol = br_daemon_policies(d);
    time_t t = (time_t)month_start;
    struct tm tm;
    int64_t month_end, now = cm_now_ms() / 1000;
    Ops x = {.month_start = month_start, .min_observed = pol->assessment.min_coverage};
    char name[16], at[CM_TIME_ISO_LEN + 1];
    _cleanup_free_ OpsRequests *reqs = NULL;
    OpsRequests city_reqs = {0};
    OpsTotals city = {0};
    json_object *doc, *list = NULL, *c;
    size_t n = 0;
    int r;

    gmtime_r(&t, &tm);
    strftime(name, sizeof(name), "%Y-%m", &tm);
    tm.tm_mon += 1;
    month_end = (int64_t)timegm(&tm);
    x.cut = month_end < now ? month_end : now;
    iso_of(month_start, x.a0);
    iso_of(month_end, x.a1);
    snprintf(x.d0, sizeof(x.d0), "%.10s", x.a0);
    snprintf(x.d1, sizeof(x.d1), "%.10s", x.a1);

    r = department_exists(db, department, err);
    if (r >= 0)
        r = ops_departments(db, department, &list, err);
    if (r < 0)
        return r;
    doc = json_object_new_object();
    json_object_object_add(doc, "report", json_object_new_string("operations"));
    json_object_object_add(doc, "month", json_object_new_string(name));
    json_object_object_add(doc, "period_from", json_object_new_string(x.a0));
    json_object_object_add(doc, "period_to", json_object_new_string(x.a1));
    cm_time_iso(cm_now_ms(), at);
    json_object_object_add(doc, "generated_at", json_object_new_string(at));
    iso_of(x.cut, at);
    json_object_object_add(doc, "period_cut", json_object_new_string(at));
    json_object_object_add(doc, "departments", list);
    n = json_object_array_length(list);
    r = rollups_computed_at(db, x.d0, x.d1, doc, err);
    reqs = calloc(n + 1, sizeof(*reqs));
    if (r >= 0 && !reqs)
        r = cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    for (size_t k = 0; r >= 0 && k < n; k++)
        reqs[k].id = cm_json_get_int(json_object_array_get_idx(list, k), "id", 0);
    if (r >= 0)
        r = ops_requests_load(db, x.a0, x.a1, department, reqs, n, &city_reqs, err);
    for (size_t k = 0; k < n && r >= 0; k++) {
        json_object *dep = json_object_array_get_idx(list, k);
        OpsTotals tot = {0};
        r = ops_department(db, &x, dep, &tot, err);
        json_object_object_add(dep, "totals", ops_totals_json(&tot, x.min_observed));
        json_object_object_add(dep, "requests", ops_requests_json(&reqs[k]));
        ops_totals_add(&city, &tot);
    }
    if (r >= 0) {
        c = json_object_new_object();
        json_object_object_add(c, "totals", ops_totals_json(&city, x.min_observed));
        json_object_object_add(c, "requests", ops_requests_json(&city_reqs));
        json_object_object_add(doc, "city", c);
    }
    for (size_t k = 0; reqs && k < n; k++)
        free(reqs[k].days);
    free(city_reqs.days);
    if (r < 0) {
        json_object_put(doc);
        return r;
    }
    *ret = doc;
    return 0;
}
