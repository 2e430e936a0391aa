/* SPDX-License-Identifier: Apache-2.0 */
/* GET /v1/reports/assessment, /v1/reports/operations and /v1/reports/costs in JSON, CSV or
 * HTML; GET /v1/reports/service-quality in JSON or HTML. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "br-api.h"
#include "br-cost.h"
#include "br-daemon.h"
#include "br-department.h"
#include "br-instance.h"
#include "br-metering.h"
#include "br-policy.h"
#include "br-report-sla.h"
#include "br-report.h"
#include "br-sla-explanation.h"
#include "br-sla.h"
#include "cm-time.h"

static int format_params(BrCall *c, const char **ret_format, BrLang *ret_lang)
{
    const char *f = br_call_query(c, "format"), *l = br_call_query(c, "lang");
    f = f ? f : "json";
    if (strcmp(f, "json") && strcmp(f, "csv") && strcmp(f, "html"))
        return cm_error_set(&c->err, CM_ERROR_INVALID, "format", "format is json, csv or html");
    if (l && strcmp(l, "zh") && strcmp(l, "en"))
        return cm_error_set(&c->err, CM_ERROR_INVALID, "lang", "lang is zh or en");
    *ret_format = f;
    *ret_lang = l && strcmp(l, "en") == 0 ? BR_LANG_EN : BR_LANG_ZH;
    return 0;
}

static int reply_report(BrCall *c, json_object *doc, const char *format, BrLang lang,
                        const char *filename)
{
    char disp[256];
    if (strcmp(format, "json") == 0)
        return br_reply(c, BR_HTTP_OK, doc);
    char *text = strcmp(format, "csv") == 0 ? br_report_csv(doc, lang) : br_report_html(doc, lang);
    json_object_put(doc);
    if (!text)
        return cm_error_set(&c->err, CM_ERROR_INTERNAL, "", "out of memory");
    bool csv = strcmp(format, "csv") == 0;
    snprintf(disp, sizeof(disp), "%s; filename=\"%.64s.%s\"", csv ? "attachment" : "inline",
             filename, csv ? "csv" : "html");
    br_reply_header(c, "Content-Disposition", disp);
    return br_reply_text(
        c, BR_HTTP_OK,
        strcmp(format, "csv") == 0 ? "text/csv; charset=utf-8" : "text/html; charset=utf-8", text);
}

/* detail=full (the default) or totals: a JSON report without its long lists (the console's
 * trend by month asks for twelve months at once). @ret_totals: whether totals were asked. */
static int detail_param(BrCall *c, const char *format, bool *ret_totals)
{
    const char *d = br_call_query(c, "detail");
    *ret_totals = false;
    if (!d || strcmp(d, "full") == 0)
        return 0;
    if (strcmp(d, "totals"))
        return cm_error_set(&c->err, CM_ERROR_INVALID, "detail", "detail is full or totals");
    if (strcmp(format, "json"))
        return cm_error_set(&c->err, CM_ERROR_INVALID, "detail", "detail=totals needs format=json");
    *ret_totals = true;
    return 0;
}

/* Drops the member @key of each object of the array @doc[@list]. */
static void drop_members(json_object *doc, const char *list, const char *key)
{
    json_object *a = cm_json_get(doc, list);
    for (size_t i = 0; a && i < json_object_array_length(a); i++)
        json_object_object_del(json_object_array_get_idx(a, i), key);
}

/* month=YYYY-MM: its first moment (epoch ms) in @ret_ms. */
static int month_param(BrCall *c, int64_t *ret_ms)
{
    const char *month = br_call_query(c, "month");
    char iso[32];

    if (!month || strlen(month) != 7)
        return cm_error_set(&c->err, CM_ERROR_INVALID, "month", "month=YYYY-MM is required");
    snprintf(iso, sizeof(iso), "%s-01T00:00:00Z", month);
    if (cm_time_parse_iso(iso, ret_ms) < 0)
        return cm_error_set(&c->err, CM_ERROR_INVALID, "month", "month=YYYY-MM is required");
    if (strncmp(month, "2000", 4) < 0 || strncmp(month, "2200", 4) > 0)
        return cm_error_set(&c->err, CM_ERROR_INVALID, "month",
                            "month must be in the years 2000 to 2200");
    return 0;
}

/* Rollups of the period brought up to date before a report reads them: yesterday's and
 * today's (older days were rolled up after they ended; the report states when its last day
 * was, rollups_computed_at). */
static int rollups_up_to_date(BrCall *c, int64_t from, int64_t to)
{
    int64_t now = cm_now_ms() / 1000, today = now - now % 86400;
    for (int64_t day = today - 86400; day <= today; day += 86400) {
        if (day + 86400 <= from || day >= to)
            continue;
        int r = br_metering_rollup_if_stale(c->d, day, &c->err);
        if (r < 0)
            return r;
    }
    return 0;
}

/* A report read from one snapshot. */
typedef struct {
    BrDaemon *d;
    int64_t period, department; /* the year, or the month's first second */
    json_object *doc;
} ReportRead;

static int assessment_read(BrTx *tx, void *ctx)
{
    ReportRead *x = ctx;
    return br_report_assessment(x->d, tx->db, (int)x->period, x->department, &x->doc, tx->err);
}

static int operations_read(BrTx *tx, void *ctx)
{
    ReportRead *x = ctx;
    return br_report_operations(x->d, tx->db, x->period, x->department, &x->doc, tx->err);
}

static int br_api_reports_assessment(BrCall *c)
{
    int64_t year = 0, dept = 0;
    const char *format;
    BrLang lang;
    char name[64];
    int r;

    r = br_call_query_int(c, "year", 2000, 2200, &year);
    if (r >= 0 && !year)
        r = cm_error_set(&c->err, CM_ERROR_INVALID, "year", "year=YYYY is required");
    if (r >= 0)
        r = br_call_query_int(c, "department", 1, INT64_MAX, &dept);
    if (r >= 0)
        r = format_params(c, &format, &lang);
    if (r < 0)
        return r;
    /* A department sees its own assessment only. */
    if (br_call_is_department(c))
        dept = c->actor.department_id;
    {
        struct tm tm = {.tm_year = (int)year - 1900, .tm_mon = 0, .tm_mday = 1};
        int64_t y0 = (int64_t)timegm(&tm);
        tm = (struct tm){.tm_year = (int)year + 1 - 1900, .tm_mon = 0, .tm_mday = 1};
        r = rollups_up_to_date(c, y0, (int64_t)timegm(&tm));
        if (r < 0)
            return r;
    }
    ReportRead x = {c->d, year, dept, NULL};
    r = br_tx_read(c->d->store, "report.assessment", assessment_read, &x, &c->err);
    if (r < 0)
        return r;
    snprintf(name, sizeof(name), "assessment-%lld", (long long)year);
    return reply_report(c, x.doc, format, lang, name);
}

static int br_api_reports_operations(BrCall *c)
{
    const char *month = br_call_query(c, "month"), *format;
    int64_t dept = 0, ms = 0;
    char name[64];
    BrLang lang;
    int r;

    r = month_param(c, &ms);
    if (r >= 0)
        r = br_call_query_int(c, "department", 1, INT64_MAX, &dept);
    if (r >= 0)
        r = format_params(c, &format, &lang);
    if (r < 0)
        return r;
    if (br_call_is_department(c))
        dept = c->actor.department_id;
    {
        time_t t = (time_t)(ms / 1000);
        struct tm tm;
        gmtime_r(&t, &tm);
        tm.tm_mon += 1;
        r = rollups_up_to_date(c, ms / 1000, (int64_t)timegm(&tm));
        if (r < 0)
            return r;
    }
    ReportRead x = {c->d, ms / 1000, dept, NULL};
    r = br_tx_read(c->d->store, "report.operations", operations_read, &x, &c->err);
    if (r < 0)
        return r;
    snprintf(name, sizeof(name), "operations-%s", month);
    return reply_report(c, x.doc, format, lang, name);
}

/* The cost statement of a month: the instances' history read in one snapshot, priced by
 * the pricing policy in force now (docs/costs.md). */
typedef struct {
    int64_t m0, m1, t1, department;
    BrCostInstance *v;
    size_t n;
} CostRead;

static int costs_read(BrTx *tx, void *ctx)
{
    CostRead *x = ctx;
    if (x->department > 0) {
        int r = br_department_exists(tx->db, x->department, tx->err);
        if (r <= 0)
            return r < 0 ? r
                         : cm_error_set(tx->err, CM_ERROR_NOT_FOUND, "department",
                                        "no department %lld", (long long)x->department);
    }
    return br_instance_cost_history(tx->db, x->m0, x->t1, x->department, &x->v, &x->n, tx->err);
}

static int br_api_reports_costs(BrCall *c)
{
    _cleanup_(br_policies_unrefp) BrPolicies *pol = NULL;
    CostRead x = {0};
    const char *format;
    json_object *doc = NULL;
    char name[64];
    bool totals;
    BrLang lang;
    int r;

    r = month_param(c, &x.m0);
    if (r >= 0)
        r = br_call_query_int(c, "department", 1, INT64_MAX, &x.department);
    if (r >= 0)
        r = format_params(c, &format, &lang);
    if (r >= 0)
        r = detail_param(c, format, &totals);
    if (r < 0)
        return r;
    if (br_call_is_department(c))
        x.department = c->actor.department_id;
    {
        time_t t = (time_t)(x.m0 / 1000);
        struct tm tm;
        gmtime_r(&t, &tm);
        tm.tm_mon += 1;
        x.m1 = (int64_t)timegm(&tm) * 1000;
    }
    x.t1 = cm_now_ms() < x.m1 ? cm_now_ms() : x.m1;
    if (x.t1 < x.m0)
        x.t1 = x.m0; /* a month to come: nothing yet */
    r = br_tx_read(c->d->store, "report.costs", costs_read, &x, &c->err);
    if (r < 0)
        return r;
    pol = br_daemon_policies(c->d);
    r = br_cost_statement(&pol->pricing, x.v, x.n, x.m0, x.m1, x.t1, &doc);
    br_cost_instances_free(x.v, x.n);
    if (r < 0)
        return cm_error_set(&c->err, CM_ERROR_INTERNAL, "", "out of memory");
    if (totals)
        drop_members(doc, "departments", "systems");
    snprintf(name, sizeof(name), "costs-%s", br_call_query(c, "month"));
    return reply_report(c, doc, format, lang, name);
}

/* The vendor's scorecard of a month (docs/service-quality.md): what the broker recorded, read
 * in one snapshot, judged by the service-quality policy in force now, the fee from the pricing
 * policy's service fee. */
typedef struct {
    int64_t m0, t1;
    const char *month;
    BrSlaInput in;
    json_object *explanations;
} SlaRead;

static int sla_read(BrTx *tx, void *ctx)
{
    SlaRead *x = ctx;
    int r = br_sla_explanation_list(tx->db, x->month, &x->explanations, tx->err);
    if (r < 0)
        return r;
    return br_report_sla_input(tx->db, x->m0, x->t1, &x->in, tx->err);
}

static int br_api_reports_service_quality(BrCall *c)
{
    _cleanup_(br_policies_unrefp) BrPolicies *pol = NULL;
    const char *format = br_call_query(c, "format");
    json_object *doc = NULL;
    SlaRead x = {0};
    int64_t m1;
    char name[64];
    bool totals;
    BrLang lang;
    int r;

    r = month_param(c, &x.m0);
    if (r >= 0)
        r = format_params(c, &format, &lang);
    if (r >= 0)
        r = detail_param(c, format, &totals);
    if (r < 0)
        return r;
    {
        time_t t = (time_t)(x.m0 / 1000);
        struct tm tm;
        gmtime_r(&t, &tm);
        tm.tm_mon += 1;
        m1 = (int64_t)timegm(&tm) * 1000;
    }
    x.t1 = cm_now_ms() < m1 ? cm_now_ms() : m1;
    if (x.t1 < x.m0)
        x.t1 = x.m0; /* a month to come: nothing yet */
    x.month = br_call_query(c, "month");
    r = br_tx_read(c->d->store, "report.service_quality", sla_read, &x, &c->err);
    if (r < 0) {
        json_object_put(x.explanations);
        return r;
    }
    x.in.now_ms = cm_now_ms();
    pol = br_daemon_policies(c->d);
    r = br_sla_scorecard(&pol->service_quality, &x.in, x.m0, m1, x.t1,
                         br_pricing_fee_fen(&pol->pricing, x.m0, m1), &doc);
    br_sla_input_clear(&x.in);
    if (r >= 0)
        br_sla_attach_explanations(doc, x.explanations);
    json_object_put(x.explanations);
    if (r < 0)
        return cm_error_set(&c->err, CM_ERROR_INTERNAL, "", "out of memory");
    if (totals)
        drop_members(doc, "indicators", "evidence");
    snprintf(name, sizeof(name), "service-quality-%s", br_call_query(c, "month"));
    return reply_report(c, doc, format, lang, name);
}

/* The vendor's explanation of a month's indicator, audited; the figures do not change. */
typedef struct {
    const char *month, *indicator, *text;
    int64_t id;
    json_object *body, *out;
} ExplanationWrite;

static int explanation_create_tx(BrTx *tx, void *ctx)
{
    ExplanationWrite *w = ctx;
    int r = br_sla_explanation_create(tx, w->month, w->indicator, w->text, &w->id);
    if (r < 0)
        return r;
    br_tx_audit_set(tx, "sla.explanation", "sla_explanation", w->id,
                    cm_json_to_string(w->body, NULL));
    return br_sla_explanation_get(tx->db, w->id, &w->out, tx->err);
}

static int br_api_reports_service_quality_explain(BrCall *c)
{
    ExplanationWrite w = {
        .month = cm_json_get_str(c->body, "month", ""),
        .indicator = cm_json_get_str(c->body, "indicator", ""),
        .text = cm_json_get_str(c->body, "text", ""),
        .body = c->body,
    };
    char now[CM_TIME_ISO_LEN + 1];
    int r;

    /* A month that has begun (the schema checked its form; "YYYY-MM" compares as text). */
    cm_time_iso(cm_now_ms(), now);
    if (strncmp(w.month, now, 7) > 0)
        return cm_error_set_code(&c->err, CM_ERROR_UNPROCESSABLE, "schema_violation", "/month",
                                 "month %s has not begun", w.month);
    r = br_call_tx(c, "sla.explanation", explanation_create_tx, &w);
    if (r < 0)
        return r;
    return br_reply(c, BR_HTTP_CREATED, w.out);
}

static const BrRoute routes[] = {
    {"GET", "/v1/reports/assessment", br_api_reports_assessment,
     BR_ROLES_DEPARTMENT | BR_ROLES_READERS, BR_BODY_NONE, NULL},
    {"GET", "/v1/reports/operations", br_api_reports_operations,
     BR_ROLES_DEPARTMENT | BR_ROLES_READERS | BR_ROLES_VENDOR, BR_BODY_NONE, NULL},
    {"GET", "/v1/reports/costs", br_api_reports_costs,
     BR_ROLES_DEPARTMENT | BR_ROLES_READERS | BR_ROLES_ADMIN, BR_BODY_NONE, NULL},
    {"GET", "/v1/reports/service-quality", br_api_reports_service_quality,
     BR_ROLES_READERS | BR_ROLES_ADMIN | BR_ROLES_VENDOR, BR_BODY_NONE, NULL},
    {"POST", "/v1/reports/service-quality/explanations", br_api_reports_service_quality_explain,
     BR_ROLES_VENDOR, BR_BODY_JSON, "sla-explanation-create"},
};

const BrRouteTable br_api_reports_routes = {routes, ELEMENTSOF(routes)};
