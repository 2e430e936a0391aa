/* SPDX-License-Identifier: Apache-2.0 */
/* The vendor's service quality: its policy, the indicators' arithmetic, the scorecard. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "br-pricing.h"
#include "br-sla.h"
#include "cm-json.h"
#include "cm-time.h"
#include "cm-util.h"

static const char *const indicator_names[BR_SLA_MAX] = {
    "availability",      "trial_lead_time",     "allocation_lead_time", "change_lead_time",
    "incident_response", "incident_resolution", "vulnerability_fix",
};

/* What a case of each indicator is: its evidence's kind. */
static const char *const case_kinds[BR_SLA_MAX] = {
    "instance", "request", "job", "request", "incident", "incident", "vulnerability",
};

static const char *const severities[BR_SLA_SEVERITIES] = {"critical", "high", "medium", "low"};

static const char *const duty_names[BR_SLA_DUTY_MAX] = {
    "security_bulletin",
    "emergency_drill",
    "backup_restore_test",
    "operations_report",
};

/* Each duty's record as the API names it (its evidence's kind and link). */
static const struct {
    const char *kind, *path;
} duty_records[BR_SLA_DUTY_MAX] = {
    {"security_bulletin", "/v1/security-bulletins/"},
    {"emergency_drill", "/v1/emergency-drills/"},
    {"restore_test", "/v1/restore-tests/"},
    {"operations_report", "/v1/operations-reports/"},
};

const char *br_sla_duty_to_string(BrSlaDuty d)
{
    return (unsigned)d < BR_SLA_DUTY_MAX ? duty_names[d] : NULL;
}

const char *br_sla_indicator_to_string(BrSlaIndicator i)
{
    return (unsigned)i < BR_SLA_MAX ? indicator_names[i] : NULL;
}

int br_sla_severity_from_string(const char *s)
{
    for (int i = 0; s && i < BR_SLA_SEVERITIES; i++)
        if (strcmp(s, severities[i]) == 0)
            return i;
    return -1;
}

static int64_t bp(json_object *o, const char *key)
{
    return (int64_t)llround(cm_json_get_double(o, key, 0) * 100);
}

int br_sla_parse(json_object *doc, BrSlaPolicy *p, CmError *err)
{
    json_object *ind = cm_json_get(doc, "indicators");
    BrSlaPolicy q = {.cap_bp = bp(doc, "cap_percent")};

    for (int i = 0; i < BR_SLA_MAX; i++) {
        json_object *o = cm_json_get(ind, indicator_names[i]);
        json_object *lim = cm_json_get(o, "limit_hours");
        BrSlaRule *r = &q.rules[i];
        double unit = 3600000.0;

        if (!o) /* the schema requires each: a document from elsewhere */
            return cm_error_set(err, CM_ERROR_UNPROCESSABLE, "/indicators",
                                "indicator %s is missing", indicator_names[i]);
        if (!lim) {
            lim = cm_json_get(o, "limit_days");
            unit = 86400000.0;
        }
        r->target_ppm = (int64_t)llround(cm_json_get_double(o, "target_percent", 0) * 10000);
        r->deduction_bp = bp(o, "deduction_percent");
        r->cap_bp = bp(o, "cap_percent");
        for (int s = 0; s < BR_SLA_SEVERITIES; s++) {
            json_object *v = lim && json_object_is_type(lim, json_type_object)
                                 ? cm_json_get(lim, severities[s])
                                 : lim;
            r->limit_ms[s] = v ? (int64_t)llround(json_object_get_double(v) * unit) : 0;
        }
    }
    /* The duties are optional: a contract without one lists it as not measured. */
    for (int d = 0; d < BR_SLA_DUTY_MAX; d++) {
        json_object *o = cm_json_get(ind, duty_names[d]);
        BrSlaDutyRule *r = &q.duties[d];
        if (!o)
            continue;
        r->set = true;
        r->due_day = (int)cm_json_get_int(o, "due_day", 10);
        r->due_month = (int)cm_json_get_int(o, "due_month", 12);
        r->period_months = (int)cm_json_get_int(o, "period_months", 3);
        r->deduction_bp = bp(o, "deduction_percent");
        r->cap_bp = bp(o, "cap_percent");
        if (r->due_day < 1 || r->due_day > 31 || r->due_month < 1 || r->due_month > 12 ||
            r->period_months < 1 || 12 % r->period_months != 0)
            return cm_error_set(err, CM_ERROR_UNPROCESSABLE, "/indicators",
                                "indicator %s: due_day 1-31, due_month 1-12, period_months "
                                "dividing 12",
                                duty_names[d]);
    }
    *p = q;
    return 0;
}

static int span_cmp(const void *a, const void *b)
{
    const BrSlaSpan *x = a, *y = b;
    return x->from_ms < y->from_ms ? -1 : x->from_ms > y->from_ms;
}

/* The length of [a, b) ∩ [c, d). */
static int64_t overlap(int64_t a, int64_t b, int64_t c, int64_t d)
{
    int64_t lo = a > c ? a : c, hi = b < d ? b : d;
    return hi > lo ? hi - lo : 0;
}

/* The host outages of @hd that overlap a stretch [a, b) the instance should have run on
 * @host, clipped to it, appended to @u. */
static size_t add_host_spans(BrSlaSpan *u, size_t nu, const BrSlaSpan *hd, size_t n_hd,
                             int64_t host, int64_t a, int64_t b)
{
    for (size_t k = 0; host > 0 && k < n_hd; k++) {
        if (hd[k].host_id != host || overlap(a, b, hd[k].from_ms, hd[k].to_ms) <= 0)
            continue;
        u[nu] = hd[k];
        u[nu].from_ms = hd[k].from_ms > a ? hd[k].from_ms : a;
        u[nu].to_ms = hd[k].to_ms < b ? hd[k].to_ms : b;
        nu++;
    }
    return nu;
}

/* The time of [a, b) and of its overlap with the @nu spans of @u (sorted, disjoint), less the
 * union of the @n_maint windows of host @host: added to @should and @down. */
static void add_stretch(int64_t a, int64_t b, int64_t host, const BrSlaSpan *maint, size_t n_maint,
                        const BrSlaSpan *u, size_t nu, int64_t *should, int64_t *down)
{
    int64_t cur = a;
    while (cur < b) {
        /* The next maintenance window of the host that covers or follows cur. */
        int64_t ws = b, we = b;
        for (size_t k = 0; k < n_maint; k++) {
            if (maint[k].host_id != host || maint[k].to_ms <= cur || maint[k].from_ms >= b)
                continue;
            int64_t s0 = maint[k].from_ms > cur ? maint[k].from_ms : cur;
            if (s0 < ws || (s0 == ws && maint[k].to_ms > we)) {
                ws = s0;
                we = maint[k].to_ms < b ? maint[k].to_ms : b;
            }
        }
        /* [cur, ws) counts; [ws, we) is maintenance. */
        *should += ws - cur;
        for (size_t k = 0; k < nu; k++)
            *down += overlap(cur, ws, u[k].from_ms, u[k].to_ms);
        cur = we > ws ? we : b;
    }
}

int64_t br_sla_instance_ms(const BrSlaState *h, size_t n, const BrSlaSpan *down, size_t n_down,
                           const BrSlaSpan *host_down, size_t n_host_down, const BrSlaSpan *maint,
                           size_t n_maint, int64_t t0, int64_t t1, int64_t *ret_down_ms)
{
    _cleanup_free_ BrSlaSpan *u = NULL;
    int64_t should = 0, down_ms = 0;
    size_t nu = 0, cap = n_down + n * n_host_down;

    /* Every span it was down: its own, and its host's while it was there; then their union,
     * so that two records of one outage count once. */
    if (cap > 0) {
        u = malloc(cap * sizeof(*u));
        if (!u) {
            *ret_down_ms = 0;
            return 0;
        }
        if (n_down > 0)
            memcpy(u, down, n_down * sizeof(*u));
        nu = n_down;
        for (size_t i = 0; i < n; i++) {
            int64_t a = h[i].at_ms, b = i + 1 < n ? h[i + 1].at_ms : t1;
            if (h[i].should_run)
                nu = add_host_spans(u, nu, host_down, n_host_down, h[i].host_id, a, b);
        }
    }
    if (nu > 0) {
        size_t m = 0;
        qsort(u, nu, sizeof(*u), span_cmp);
        for (size_t i = 1; i < nu; i++) {
            if (u[i].from_ms <= u[m].to_ms) {
                if (u[i].to_ms > u[m].to_ms)
                    u[m].to_ms = u[i].to_ms;
            } else {
                u[++m] = u[i];
            }
        }
        nu = m + 1;
    }
    for (size_t i = 0; i < n; i++) {
        int64_t a = h[i].at_ms, b = i + 1 < n ? h[i + 1].at_ms : t1;
        if (!h[i].should_run)
            continue;
        a = a > t0 ? a : t0;
        b = b < t1 ? b : t1;
        if (b <= a)
            continue;
        add_stretch(a, b, h[i].host_id, maint, n_maint, u, nu, &should, &down_ms);
    }
    *ret_down_ms = down_ms;
    return should;
}

int64_t br_sla_availability_steps(int64_t target_ppm, int64_t up_ms, int64_t should_ms)
{
    /* Below target by (target × should − up × 10^6) / (10^6 × should) of the time; a step is
     * 0.1 % = 1000 ppm: ceil(short / (1000 × should)). */
    __int128 shortfall = (__int128)target_ppm * should_ms - (__int128)up_ms * 1000000;
    __int128 step = (__int128)1000 * should_ms;
    if (should_ms <= 0 || shortfall <= 0)
        return 0;
    return (int64_t)((shortfall + step - 1) / step);
}

BrSlaCaseResult br_sla_case_judge(const BrSlaCase *c, int64_t limit_ms, int64_t now_ms)
{
    int64_t deadline = c->start_ms + limit_ms;
    if (c->end_ms >= 0)
        return c->end_ms > deadline ? BR_SLA_CASE_LATE : BR_SLA_CASE_MET;
    return now_ms > deadline ? BR_SLA_CASE_LATE : BR_SLA_CASE_PENDING;
}

int64_t br_sla_deduction_fen(int64_t fee_fen, int64_t steps, int64_t per_bp, int64_t cap_bp)
{
    __int128 share = (__int128)steps * per_bp;
    if (share > cap_bp)
        share = cap_bp;
    if (share <= 0 || fee_fen <= 0)
        return 0;
    return (int64_t)(((__int128)fee_fen * share + 5000) / 10000);
}

void br_sla_input_clear(BrSlaInput *in)
{
    for (size_t i = 0; i < in->n_instances; i++) {
        free(in->instances[i].name);
        free(in->instances[i].h);
        free(in->instances[i].down);
    }
    free(in->instances);
    free(in->host_down);
    free(in->maint);
    for (int i = 0; i < BR_SLA_MAX; i++)
        free(in->cases[i]);
    for (int i = 0; i < BR_SLA_DUTY_MAX; i++)
        free(in->records[i]);
    free(in->backed_up);
    memset(in, 0, sizeof(*in));
}

static json_object *iso_json(int64_t ms)
{
    char at[CM_TIME_ISO_LEN + 1];
    cm_time_iso(ms, at);
    return json_object_new_string(at);
}

/* @v / @div with @dec decimals, truncated, as a JSON number written so. */
static json_object *fixed_json(int64_t v, int64_t div, int dec)
{
    char s[48];
    int64_t scale = 1;
    for (int i = 0; i < dec; i++)
        scale *= 10;
    int64_t x = (int64_t)((__int128)v * scale / div);
    snprintf(s, sizeof(s), "%lld.%0*lld", (long long)(x / scale), dec, (long long)(x % scale));
    return json_object_new_double_s((double)x / (double)scale, s);
}

static json_object *percent_json(int64_t bp_)
{
    return fixed_json(bp_, 100, 2);
}

static const char *status_text(bool data, bool missed)
{
    return !data ? "no_data" : missed ? "missed" : "met";
}

/* The common tail of an indicator: its result, deduction and explanation. */
static void add_result(json_object *o, const BrSlaRule *r, bool data, int64_t steps,
                       int64_t fee_fen, int64_t *sum_fen)
{
    int64_t fen = data ? br_sla_deduction_fen(fee_fen, steps, r->deduction_bp, r->cap_bp) : 0;
    int64_t share = (int64_t)steps * r->deduction_bp;
    json_object_object_add(o, "status", json_object_new_string(status_text(data, steps > 0)));
    json_object_object_add(o, "steps_missed", json_object_new_int64(data ? steps : 0));
    json_object_object_add(o, "deduction_percent",
                           percent_json(data ? (share < r->cap_bp ? share : r->cap_bp) : 0));
    json_object_object_add(o, "deduction_fen", json_object_new_int64(fen));
    json_object_object_add(o, "deduction", br_money_json(fen));
    *sum_fen += fen;
}

static json_object *rule_json(const BrSlaRule *r)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "deduction_percent", percent_json(r->deduction_bp));
    json_object_object_add(o, "cap_percent", percent_json(r->cap_bp));
    return o;
}

static json_object *availability_json(const BrSlaPolicy *p, const BrSlaInput *in, int64_t m0,
                                      int64_t t1, int64_t fee_fen, int64_t *sum_fen)
{
    const BrSlaRule *r = &p->rules[BR_SLA_AVAILABILITY];
    json_object *o = json_object_new_object(), *ev = json_object_new_array();
    json_object *target = rule_json(r), *m = json_object_new_object();
    int64_t should = 0, down = 0;

    json_object_object_add(o, "id", json_object_new_string("availability"));
    json_object_object_add(target, "percent", fixed_json(r->target_ppm, 10000, 4));
    json_object_object_add(o, "target", target);
    for (size_t i = 0; i < in->n_instances; i++) {
        const BrSlaInstance *x = &in->instances[i];
        int64_t d = 0, s = br_sla_instance_ms(x->h, x->n_h, x->down, x->n_down, in->host_down,
                                              in->n_host_down, in->maint, in->n_maint, m0, t1, &d);
        json_object *e, *ids, *hids;
        if (s <= 0)
            continue;
        should += s;
        down += d;
        e = json_object_new_object();
        ids = json_object_new_array();
        json_object_object_add(e, "instance_id", json_object_new_int64(x->id));
        json_object_object_add(e, "name", json_object_new_string(x->name ? x->name : ""));
        json_object_object_add(e, "should_run_ms", json_object_new_int64(s));
        json_object_object_add(e, "down_ms", json_object_new_int64(d));
        json_object_object_add(e, "percent", fixed_json((s - d) * 100, s, 4));
        for (size_t k = 0; k < x->n_down; k++)
            if (overlap(x->down[k].from_ms, x->down[k].to_ms, m0, t1) > 0)
                json_object_array_add(ids, json_object_new_int64(x->down[k].id));
        json_object_object_add(e, "events", ids);
        /* The outages of the hosts it should have run on meanwhile. */
        hids = json_object_new_array();
        for (size_t k = 0; k < in->n_host_down; k++) {
            const BrSlaSpan *hd = &in->host_down[k];
            bool hit = false;
            for (size_t j = 0; j < x->n_h && !hit; j++) {
                int64_t a = x->h[j].at_ms, b = j + 1 < x->n_h ? x->h[j + 1].at_ms : t1;
                a = a > m0 ? a : m0;
                hit = x->h[j].should_run && x->h[j].host_id == hd->host_id &&
                      overlap(a, b < t1 ? b : t1, hd->from_ms, hd->to_ms) > 0;
            }
            if (hit)
                json_object_array_add(hids, json_object_new_int64(hd->id));
        }
        json_object_object_add(e, "host_outages", hids);
        json_object_array_add(ev, e);
    }
    json_object_object_add(m, "should_run_ms", json_object_new_int64(should));
    json_object_object_add(m, "down_ms", json_object_new_int64(down));
    json_object_object_add(m, "percent",
                           should > 0 ? fixed_json((should - down) * 100, should, 4)
                                      : json_object_new_null());
    json_object_object_add(o, "measured", m);
    json_object_object_add(o, "evidence", ev);
    {
        json_object *mw = json_object_new_array();
        for (size_t k = 0; k < in->n_maint; k++)
            json_object_array_add(mw, json_object_new_int64(in->maint[k].id));
        json_object_object_add(o, "maintenance_windows", mw);
    }
    add_result(o, r, should > 0, br_sla_availability_steps(r->target_ppm, should - down, should),
               fee_fen, sum_fen);
    return o;
}

static json_object *cases_json(const BrSlaPolicy *p, const BrSlaInput *in, BrSlaIndicator ind,
                               int64_t t1, int64_t fee_fen, int64_t *sum_fen)
{
    const BrSlaRule *r = &p->rules[ind];
    json_object *o = json_object_new_object(), *ev = json_object_new_array();
    json_object *target = rule_json(r), *m = json_object_new_object(), *lim;
    bool by_severity = ind >= BR_SLA_INCIDENT_RESPONSE;
    int64_t n = 0, late = 0, pending = 0, longest = -1;

    json_object_object_add(o, "id", json_object_new_string(indicator_names[ind]));
    if (by_severity) {
        lim = json_object_new_object();
        for (int s = 0; s < BR_SLA_SEVERITIES; s++)
            json_object_object_add(lim, severities[s], fixed_json(r->limit_ms[s], 3600000, 3));
    } else {
        lim = fixed_json(r->limit_ms[0], 3600000, 3);
    }
    json_object_object_add(target, "limit_hours", lim);
    json_object_object_add(target, "late", json_object_new_int64(0));
    json_object_object_add(o, "target", target);
    for (size_t i = 0; i < in->n_cases[ind]; i++) {
        const BrSlaCase *c = &in->cases[ind][i];
        int sev = c->severity >= 0 && c->severity < BR_SLA_SEVERITIES ? c->severity : 0;
        BrSlaCaseResult res = br_sla_case_judge(c, r->limit_ms[by_severity ? sev : 0], t1);
        int64_t took = (c->end_ms >= 0 ? c->end_ms : t1) - c->start_ms;
        json_object *e = json_object_new_object();

        json_object_object_add(e, "kind", json_object_new_string(case_kinds[ind]));
        json_object_object_add(e, "id", json_object_new_int64(c->id));
        if (by_severity)
            json_object_object_add(e, "severity", json_object_new_string(severities[sev]));
        json_object_object_add(e, "from", iso_json(c->start_ms));
        json_object_object_add(e, "to",
                               c->end_ms >= 0 ? iso_json(c->end_ms) : json_object_new_null());
        json_object_object_add(e, "hours", fixed_json(took > 0 ? took : 0, 3600000, 3));
        json_object_object_add(e, "result",
                               json_object_new_string(res == BR_SLA_CASE_LATE  ? "late"
                                                      : res == BR_SLA_CASE_MET ? "met"
                                                                               : "pending"));
        json_object_array_add(ev, e);
        if (res == BR_SLA_CASE_PENDING) {
            pending++;
            continue;
        }
        n++;
        late += res == BR_SLA_CASE_LATE;
        if (took > longest)
            longest = took;
    }
    json_object_object_add(m, "cases", json_object_new_int64(n));
    json_object_object_add(m, "late", json_object_new_int64(late));
    json_object_object_add(m, "pending", json_object_new_int64(pending));
    json_object_object_add(m, "longest_hours",
                           longest >= 0 ? fixed_json(longest, 3600000, 3) : json_object_new_null());
    json_object_object_add(o, "measured", m);
    json_object_object_add(o, "evidence", ev);
    add_result(o, r, n > 0, late, fee_fen, sum_fen);
    return o;
}

/* The start of the month @add months after the month of @ms (UTC). */
static int64_t month_start(int64_t ms, int add)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    tm.tm_mday = 1;
    tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
    tm.tm_mon += add;
    return (int64_t)timegm(&tm) * 1000;
}

/* The month of @ms, 0 (January) to 11. */
static int month_index(int64_t ms)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    return tm.tm_mon;
}

/* Does record @x meet duty @d of the period [p0, p1) with deadline @due? */
static bool record_in_time(BrSlaDuty d, const BrSlaRecord *x, int64_t p0, int64_t p1, int64_t due)
{
    if (x->recorded_ms >= due)
        return false;
    if (d == BR_SLA_DUTY_BULLETIN || d == BR_SLA_DUTY_REPORT)
        return true; /* read for the month already */
    return x->at_ms >= p0 && x->at_ms < p1 && (d != BR_SLA_DUTY_RESTORE_TEST || x->ok);
}

BrSlaDutyResult br_sla_duty_judge(BrSlaDuty d, const BrSlaDutyRule *rule, const BrSlaInput *in,
                                  int64_t m0, int64_t m1, int64_t now_ms)
{
    BrSlaDutyResult res = {.p0 = m0, .p1 = m1, .judge0 = m0, .judge1 = m1, .data = true};
    const BrSlaRecord *recs = in->records[d];
    size_t n = in->n_records[d];

    switch (d) {
    case BR_SLA_DUTY_BULLETIN:
    case BR_SLA_DUTY_REPORT: {
        /* By the end of day due_day of the next month, or of its last day. */
        int64_t days = (month_start(m1, 1) - m1) / 86400000;
        res.due_ms = m1 + (rule->due_day < days ? rule->due_day : days) * 86400000;
        break;
    }
    case BR_SLA_DUTY_DRILL:
        res.p0 = month_start(m0, -month_index(m0));
        res.p1 = month_start(res.p0, 12);
        res.due_ms = month_start(res.p0, rule->due_month);
        res.judge0 = month_start(res.p0, rule->due_month - 1);
        res.judge1 = res.due_ms;
        break;
    case BR_SLA_DUTY_RESTORE_TEST:
    default:
        res.p0 = month_start(m0, -(month_index(m0) % rule->period_months));
        res.p1 = month_start(res.p0, rule->period_months);
        res.due_ms = res.p1;
        res.judge0 = month_start(res.p1, -1);
        res.judge1 = res.p1;
        break;
    }
    if (d != BR_SLA_DUTY_RESTORE_TEST) {
        bool done = false;
        for (size_t i = 0; i < n && !done; i++)
            done = record_in_time(d, &recs[i], res.p0, res.p1, res.due_ms);
        res.met = done;
        res.missed = !done && now_ms >= res.due_ms;
        res.pending = !done && !res.missed;
        return res;
    }
    /* Each system backed up before the period began: its own restore test. */
    res.data = false;
    for (size_t k = 0; k < in->n_backed_up; k++) {
        bool done = false;
        if (in->backed_up[k].since_ms >= res.p0)
            continue;
        res.data = true;
        for (size_t i = 0; i < n && !done; i++)
            done = recs[i].system_id == in->backed_up[k].id &&
                   record_in_time(d, &recs[i], res.p0, res.p1, res.due_ms);
        if (done)
            res.met++;
        else if (now_ms >= res.due_ms)
            res.missed++;
        else
            res.pending++;
    }
    return res;
}

static void month_text(int64_t ms, char out[8])
{
    char at[CM_TIME_ISO_LEN + 1];
    cm_time_iso(ms, at);
    snprintf(out, 8, "%.7s", at);
}

static json_object *duty_json(const BrSlaPolicy *p, const BrSlaInput *in, BrSlaDuty d, int64_t m0,
                              int64_t m1, int64_t fee_fen, int64_t *sum_fen)
{
    const BrSlaDutyRule *rule = &p->duties[d];
    BrSlaDutyResult res = br_sla_duty_judge(d, rule, in, m0, m1, in->now_ms);
    json_object *o = json_object_new_object(), *target = json_object_new_object();
    json_object *period = json_object_new_object(), *m = json_object_new_object();
    json_object *ev = json_object_new_array();
    const char *status = !res.data     ? "no_data"
                         : res.missed  ? "missed"
                         : res.pending ? "pending"
                                       : "met";
    /* A miss is deducted once: in the month that judges the period. */
    bool judged_here = res.judge0 == m0;
    int64_t steps = judged_here && res.data ? res.missed : 0;
    int64_t share = steps * rule->deduction_bp;
    int64_t fen = br_sla_deduction_fen(fee_fen, steps, rule->deduction_bp, rule->cap_bp);
    int64_t n_rec = 0, in_time = 0;
    char month[8];

    json_object_object_add(o, "id", json_object_new_string(duty_names[d]));
    if (d == BR_SLA_DUTY_DRILL)
        json_object_object_add(target, "due_month", json_object_new_int(rule->due_month));
    else if (d == BR_SLA_DUTY_RESTORE_TEST)
        json_object_object_add(target, "period_months", json_object_new_int(rule->period_months));
    else
        json_object_object_add(target, "due_day", json_object_new_int(rule->due_day));
    json_object_object_add(target, "due", iso_json(res.due_ms));
    json_object_object_add(target, "deduction_percent", percent_json(rule->deduction_bp));
    json_object_object_add(target, "cap_percent", percent_json(rule->cap_bp));
    json_object_object_add(o, "target", target);
    json_object_object_add(period, "from", iso_json(res.p0));
    json_object_object_add(period, "to", iso_json(res.p1));
    json_object_object_add(o, "period", period);
    month_text(res.judge0, month);
    json_object_object_add(o, "judged_in", json_object_new_string(month));

    for (size_t i = 0; i < in->n_records[d]; i++) {
        const BrSlaRecord *x = &in->records[d][i];
        bool ok = record_in_time(d, x, res.p0, res.p1, res.due_ms);
        json_object *e;
        char href[64];
        if (d != BR_SLA_DUTY_BULLETIN && d != BR_SLA_DUTY_REPORT &&
            (x->at_ms < res.p0 || x->at_ms >= res.p1))
            continue; /* of another period */
        e = json_object_new_object();
        snprintf(href, sizeof(href), "%s%lld", duty_records[d].path, (long long)x->id);
        json_object_object_add(e, "kind", json_object_new_string(duty_records[d].kind));
        json_object_object_add(e, "id", json_object_new_int64(x->id));
        json_object_object_add(e, "href", json_object_new_string(href));
        if (d == BR_SLA_DUTY_RESTORE_TEST)
            json_object_object_add(e, "system_id", json_object_new_int64(x->system_id));
        json_object_object_add(e, "from", iso_json(x->at_ms));
        json_object_object_add(e, "to", iso_json(x->recorded_ms));
        json_object_object_add(e, "result",
                               json_object_new_string(ok ? "met"
                                                      : d == BR_SLA_DUTY_RESTORE_TEST && !x->ok
                                                          ? "failed"
                                                          : "late"));
        json_object_array_add(ev, e);
        n_rec++;
        in_time += ok;
    }
    /* The systems still without a restore test of the period. */
    for (size_t k = 0; d == BR_SLA_DUTY_RESTORE_TEST && k < in->n_backed_up; k++) {
        bool done = false;
        if (in->backed_up[k].since_ms >= res.p0)
            continue;
        for (size_t i = 0; i < in->n_records[d] && !done; i++)
            done = in->records[d][i].system_id == in->backed_up[k].id &&
                   record_in_time(d, &in->records[d][i], res.p0, res.p1, res.due_ms);
        if (!done) {
            json_object *e = json_object_new_object();
            char href[48];
            snprintf(href, sizeof(href), "/v1/systems/%lld", (long long)in->backed_up[k].id);
            json_object_object_add(e, "kind", json_object_new_string("system"));
            json_object_object_add(e, "id", json_object_new_int64(in->backed_up[k].id));
            json_object_object_add(e, "href", json_object_new_string(href));
            json_object_object_add(
                e, "result",
                json_object_new_string(in->now_ms >= res.due_ms ? "missing" : "pending"));
            json_object_array_add(ev, e);
        }
    }
    json_object_object_add(m, "records", json_object_new_int64(n_rec));
    json_object_object_add(m, "in_time", json_object_new_int64(in_time));
    if (d == BR_SLA_DUTY_RESTORE_TEST) {
        json_object_object_add(m, "systems",
                               json_object_new_int64(res.met + res.missed + res.pending));
        json_object_object_add(m, "systems_met", json_object_new_int64(res.met));
    }
    json_object_object_add(m, "missed", json_object_new_int64(res.missed));
    json_object_object_add(m, "pending", json_object_new_int64(res.pending));
    json_object_object_add(o, "measured", m);
    json_object_object_add(o, "evidence", ev);
    json_object_object_add(o, "status", json_object_new_string(status));
    json_object_object_add(o, "steps_missed", json_object_new_int64(steps));
    json_object_object_add(o, "deduction_percent",
                           percent_json(share < rule->cap_bp ? share : rule->cap_bp));
    json_object_object_add(o, "deduction_fen", json_object_new_int64(fen));
    json_object_object_add(o, "deduction", br_money_json(fen));
    *sum_fen += fen;
    return o;
}

int br_sla_scorecard(const BrSlaPolicy *p, const BrSlaInput *in, int64_t m0, int64_t m1, int64_t t1,
                     int64_t fee_fen, json_object **ret)
{
    json_object *doc = json_object_new_object(), *inds = json_object_new_array();
    int64_t sum = 0, cap_fen = br_sla_deduction_fen(fee_fen, 1, p->cap_bp, p->cap_bp);
    char month[8];

    if (!doc || !inds) {
        json_object_put(doc);
        json_object_put(inds);
        return -ENOMEM;
    }
    {
        char at[CM_TIME_ISO_LEN + 1];
        cm_time_iso(m0, at);
        snprintf(month, sizeof(month), "%.7s", at);
    }
    json_object_object_add(doc, "report", json_object_new_string("service_quality"));
    json_object_object_add(doc, "month", json_object_new_string(month));
    json_object_object_add(doc, "from", iso_json(m0));
    json_object_object_add(doc, "to", iso_json(t1));
    json_object_object_add(doc, "complete", json_object_new_boolean(t1 >= m1));
    json_object_array_add(inds, availability_json(p, in, m0, t1, fee_fen, &sum));
    for (int i = BR_SLA_TRIAL_LEAD_TIME; i < BR_SLA_MAX; i++)
        json_object_array_add(inds, cases_json(p, in, (BrSlaIndicator)i, t1, fee_fen, &sum));
    for (int d = 0; d < BR_SLA_DUTY_MAX; d++) {
        json_object *o;
        if (p->duties[d].set) {
            json_object_array_add(inds, duty_json(p, in, (BrSlaDuty)d, m0, m1, fee_fen, &sum));
            continue;
        }
        /* Not in the policy: shown, never scored. */
        o = json_object_new_object();
        json_object_object_add(o, "id", json_object_new_string(duty_names[d]));
        json_object_object_add(o, "status", json_object_new_string("not_measured"));
        json_object_array_add(inds, o);
    }
    json_object_object_add(doc, "indicators", inds);
    int64_t ded = sum < cap_fen ? sum : cap_fen;
    json_object_object_add(doc, "currency", json_object_new_string("CNY"));
    json_object_object_add(doc, "fee_fen", json_object_new_int64(fee_fen));
    json_object_object_add(doc, "fee", br_money_json(fee_fen));
    json_object_object_add(doc, "cap_percent", percent_json(p->cap_bp));
    json_object_object_add(doc, "deductions_fen", json_object_new_int64(sum));
    json_object_object_add(doc, "deduction_fen", json_object_new_int64(ded));
    json_object_object_add(doc, "deduction", br_money_json(ded));
    json_object_object_add(doc, "fee_after_fen", json_object_new_int64(fee_fen - ded));
    json_object_object_add(doc, "fee_after", br_money_json(fee_fen - ded));
    *ret = doc;
    return 0;
}

void br_sla_attach_explanations(json_object *doc, json_object *list)
{
    json_object *inds = cm_json_get(doc, "indicators");
    size_t n = inds ? json_object_array_length(inds) : 0;
    size_t nl = list ? json_object_array_length(list) : 0;

    for (size_t i = 0; i < n; i++) {
        json_object *x = json_object_array_get_idx(inds, i), *out;
        const char *id = cm_json_get_str(x, "id", "");
        if (!cm_json_get(x, "target"))
            continue; /* not measured: nothing to explain */
        out = json_object_new_array();
        for (size_t k = 0; k < nl; k++) {
            json_object *e = json_object_array_get_idx(list, k);
            if (strcmp(cm_json_get_str(e, "indicator", ""), id) == 0)
                json_object_array_add(out, json_object_get(e));
        }
        json_object_object_add(x, "explanations", out);
    }
}
