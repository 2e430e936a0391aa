/* SPDX-License-Identifier: Apache-2.0 */
/* CSV and HTML renderings of the report documents (br-report.c). */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "br-report.h"
#include "cm-json.h"

typedef struct {
    char *buf;
    size_t len, cap;
    bool failed;
} Out;

static void outf(Out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void outf(Out *o, const char *fmt, ...)
{
    va_list ap;
    if (o->failed)
        return;
    for (;;) {
        va_start(ap, fmt);
        int n = vsnprintf(o->buf ? o->buf + o->len : NULL, o->buf ? o->cap - o->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            o->failed = true;
            return;
        }
        if (o->buf && o->len + (size_t)n < o->cap) {
            o->len += (size_t)n;
            return;
        }
        size_t ncap = (o->cap + (size_t)n + 1) * 2;
        char *nb = realloc(o->buf, ncap);
        if (!nb) {
            o->failed = true;
            return;
        }
        o->buf = nb;
        o->cap = ncap;
    }
}

static char *out_take(Out *o)
{
    if (o->failed) {
        free(o->buf);
        return NULL;
    }
    return o->buf ? o->buf : strdup("");
}

/* Text as HTML: &, <, >, " escaped. */
static void html_text(Out *o, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '&':
            outf(o, "&amp;");
            break;
        case '<':
            outf(o, "&lt;");
            break;
        case '>':
            outf(o, "&gt;");
            break;
        case '"':
            outf(o, "&quot;");
            break;
        default:
            outf(o, "%c", *s);
        }
    }
}

/* A CSV field, quoted when it must be; a leading =+-@ is quoted and prefixed with ' so a
 * spreadsheet never evaluates text from a department as a formula. */
static void csv_field(Out *o, const char *s)
{
    bool formula = s && s[0] && strchr("=+-@", s[0]);
    bool quote = s && (strpbrk(s, ",\"\r\n") || formula);
    if (!s)
        return;
    if (!quote) {
        outf(o, "%s", s);
        return;
    }
    outf(o, "\"");
    if (formula && !(s[0] == '-' && s[1] >= '0' && s[1] <= '9'))
        outf(o, "'");
    for (; *s; s++)
        outf(o, *s == '"' ? "\"\"" : "%c", *s);
    outf(o, "\"");
}

/* A JSON value at a dotted path ("efficiency.score"); NULL when absent. */
static json_object *at(json_object *o, const char *path)
{
    char key[64];
    const char *p = path;
    while (o && *p) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        if (n >= sizeof(key))
            return NULL;
        memcpy(key, p, n);
        key[n] = 0;
        o = cm_json_get(o, key);
        p += n + (dot ? 1 : 0);
    }
    return o;
}

static void value_text(json_object *v, char *buf, size_t size, bool percent)
{
    if (!v) {
        snprintf(buf, size, "%s", percent ? "—" : "");
        return;
    }
    switch (json_object_get_type(v)) {
    case json_type_double:
        if (percent)
            snprintf(buf, size, "%.1f %%", json_object_get_double(v) * 100);
        else
            snprintf(buf, size, "%.2f", json_object_get_double(v));
        break;
    case json_type_int:
        snprintf(buf, size, "%lld", (long long)json_object_get_int64(v));
        break;
    case json_type_string:
        snprintf(buf, size, "%s", json_object_get_string(v));
        break;
    default:
        snprintf(buf, size, "%s", json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
    }
}

/* Columns of the assessment: a path into a department, a CSV name, labels in two languages. */
typedef struct {
    const char *path, *csv, *zh, *en;
    bool percent;
} Column;

static const Column assess_cols[] = {
    {"rank", "rank", "排名", "Rank", false},
    {"code", "department_code", "代码", "Code", false},
    {"name", "department", "单位", "Department", false},
    {"cloud_share.systems", "systems", "应用系统数", "Systems", false},
    {"cloud_share.on_cloud", "systems_on_cloud", "上云系统数", "On cloud", false},
    {"cloud_share.share", "cloud_share", "上云率", "Cloud share", true},
    {"cloud_share.score", "cloud_share_score", "上云得分", "Cloud score", false},
    {"efficiency.allocated_vcpus", "allocated_vcpus", "已分配vCPU", "vCPUs allocated", false},
    {"efficiency.used_vcpus_avg", "used_vcpus_avg", "平均使用vCPU", "vCPUs used (avg)", false},
    {"efficiency.cpu_utilization_p95", "cpu_utilization_p95", "CPU利用率P95", "CPU p95", true},
    {"efficiency.allocated_memory_gib", "allocated_memory_gib", "已分配内存GiB", "Memory GiB",
     false},
    {"efficiency.idle_allocations", "idle_allocations", "闲置资源", "Idle", false},
    {"efficiency.over_provisioned_allocations", "over_provisioned_allocations", "配置过度",
     "Over-provisioned", false},
    {"efficiency.reclaimable_vcpus", "reclaimable_vcpus", "可回收vCPU", "Reclaimable vCPUs", false},
    {"efficiency.reclaimable_memory_gib", "reclaimable_memory_gib", "可回收内存GiB",
     "Reclaimable GiB", false},
    {"efficiency.score", "efficiency_score", "效率得分", "Efficiency score", false},
    {"security.security_test_passed", "security_test_passed", "安全测试通过",
     "Security test passed", false},
    {"security.backup_attested", "backup_attested", "已备份", "Backed up", false},
    {"security.open_vulnerabilities.critical", "open_vulns_critical", "严重漏洞", "Critical vulns",
     false},
    {"security.open_vulnerabilities.high", "open_vulns_high", "高危漏洞", "High vulns", false},
    {"security.incidents", "incidents", "安全事件", "Incidents", false},
    {"security.score", "security_score", "安全得分", "Security score", false},
    {"overall_score", "overall_score", "综合得分", "Overall", false},
    /* In the CSV only (after the columns above): the year's time-weighted figures. */
    {"efficiency.coverage", "efficiency_coverage", "覆盖率", "Coverage", true},
    {"efficiency.no_data", "efficiency_no_data", "无数据", "No data", false},
    {"efficiency.cpu_utilization_avg", "cpu_utilization_avg", "CPU利用率", "CPU utilization", true},
    {"efficiency.allocated_vcpu_hours", "allocated_vcpu_hours", "已分配vCPU小时",
     "vCPU-hours allocated", false},
    {"efficiency.used_vcpu_hours", "used_vcpu_hours", "已使用vCPU小时", "vCPU-hours used", false},
    {"efficiency.allocated_memory_gib_hours", "allocated_memory_gib_hours", "已分配内存GiB小时",
     "GiB-hours allocated", false},
    {"efficiency.used_memory_gib_hours", "used_memory_gib_hours", "已使用内存GiB小时",
     "GiB-hours used", false},
    {"efficiency.reclaimable_vcpu_hours", "reclaimable_vcpu_hours", "可回收vCPU小时",
     "Reclaimable vCPU-hours", false},
    {"efficiency.reclaimable_memory_gib_hours", "reclaimable_memory_gib_hours", "可回收内存GiB小时",
     "Reclaimable GiB-hours", false},
    /* Waste in money (docs/costs.md): on the page in the efficiency table. */
    {"efficiency.reclaimable_monthly_saving", "reclaimable_monthly_saving_yuan", "可节约（元/月）",
     "Saving (yuan/month)", false},
};

/* The page's three tables of assess_cols: scores, efficiency, security (a department's code
 * and name in each); 23 columns in one table do not fit a printed page. */
static const size_t assess_scores[] = {0, 1, 2, 3, 4, 5, 6, 15, 21, 22};
static const size_t assess_efficiency[] = {1, 2, 7, 8, 9, 10, 11, 12, 13, 14, 32, 15};
static const size_t assess_security[] = {1, 2, 16, 17, 18, 19, 20, 21};
/* The year, time-weighted: vCPU-hours and GiB-hours held, used and reclaimable, the CPU
 * utilization over the hours measured and the coverage. */
static const size_t assess_hours[] = {1, 2, 26, 27, 30, 28, 29, 31, 25, 23};

static const Column ops_cols[] = {
    {"name", "instance", "实例", "Instance", false},
    {"system", "system", "应用系统", "System", false},
    {"vcpus", "vcpus", "vCPU", "vCPUs", false},
    {"memory_mib", "memory_mib", "内存MiB", "Memory MiB", false},
    {"instance_hours", "instance_hours", "实例小时", "Instance-hours", false},
    {"cpu_cores_avg", "cpu_cores_avg", "平均CPU核", "CPU cores (avg)", false},
    {"cpu_utilization_avg", "cpu_utilization_avg", "CPU利用率", "CPU utilization", true},
    {"cpu_cores_p95_daily_max", "cpu_cores_p95", "CPU核P95(日最高)", "CPU cores p95 (max day)",
     false},
    {"memory_used_mib_avg", "memory_used_mib_avg", "平均内存MiB", "Memory used MiB (avg)", false},
    {"availability", "availability", "可用率", "Availability", true},
    {"coverage", "coverage", "计量覆盖率", "Metering coverage", true},
};

/* The operations report's totals (a department's, the city's), in the CSV. */
static const Column ops_total_cols[] = {
    {"instances", "instances", "实例数", "Instances", false},
    {"instance_hours", "instance_hours", "实例小时", "Instance-hours", false},
    {"availability", "availability", "可用率", "Availability", true},
    {"observed_share", "observed_share", "观测覆盖率", "Observed", true},
    {"running_hours", "running_hours", "运行小时", "Running hours", false},
    {"unreachable_hours", "unreachable_hours", "主机失联小时", "Host unreachable hours", false},
    {"coverage", "coverage", "计量覆盖率", "Metering coverage", true},
    {"cpu_utilization_avg", "cpu_utilization_avg", "平均CPU利用率", "Average CPU utilization",
     true},
};

static const Column ops_request_cols[] = {
    {"received", "received", "收到申请", "Received", false},
    {"approved", "approved", "批准", "Approved", false},
    {"returned", "returned", "退回", "Returned", false},
    {"rejected", "rejected", "驳回", "Rejected", false},
    {"median_days_to_decide", "median_days_to_decide", "决定用时中位数（天）",
     "Median days to decide", false},
};

static const Column ops_finding_cols[] = {
    {"instance", "instance", "实例", "Instance", false},
    {"kind", "kind", "发现", "Finding", false},
    {"action", "action", "建议", "Action", false},
    {"state", "state", "状态", "State", false},
    {"recommended_vcpus", "recommended_vcpus", "建议vCPU", "Recommended vCPUs", false},
    {"recommended_memory_mib", "recommended_memory_mib", "建议内存MiB", "Recommended MiB", false},
    {"frees_vcpus", "frees_vcpus", "可释放vCPU", "Frees vCPUs", false},
    {"frees_memory_mib", "frees_memory_mib", "可释放内存MiB", "Frees MiB", false},
    {"rule", "rule", "依据", "Evidence", false},
};

static const Column ops_event_cols[] = {
    {"first_seen", "first_seen", "时间", "When", false},
    {"kind", "kind", "类型", "Kind", false},
    {"severity", "severity", "级别", "Severity", false},
    {"instance", "instance", "实例", "Instance", false},
    {"message", "message", "说明", "Message", false},
    {"resolved_at", "resolved_at", "已解决", "Resolved", false},
};

static const Column ops_daily_cols[] = {
    {"day", "day", "日期", "Day", false},
    {"cpu_utilization", "cpu_utilization", "CPU利用率", "CPU utilization", true},
    {"memory_utilization", "memory_utilization", "内存利用率", "Memory utilization", true},
};

/* One CSV section: a header of the department's code and name and @cols, then a row per
 * element of the array @key of each department (or, @key NULL, the object @obj_key of each
 * department, then the same of @city as CITY). */
static void csv_section(Out *o, json_object *deps, const char *key, const char *obj_key,
                        json_object *city, const Column *cols, size_t n_cols)
{
    char buf[256];
    size_t nd = deps ? json_object_array_length(deps) : 0;
    outf(o, "department_code,department");
    for (size_t c = 0; c < n_cols; c++)
        outf(o, ",%s", cols[c].csv);
    outf(o, "\r\n");
    for (size_t i = 0; i <= nd; i++) {
        json_object *d = i < nd ? json_object_array_get_idx(deps, i) : city;
        json_object *rows = key ? cm_json_get(d, key) : NULL;
        size_t nr = key ? (rows ? json_object_array_length(rows) : 0) : (d ? 1 : 0);
        if (i == nd && (key || !city))
            break;
        for (size_t k = 0; k < nr; k++) {
            json_object *x = key ? json_object_array_get_idx(rows, k) : cm_json_get(d, obj_key);
            if (i < nd) {
                csv_field(o, cm_json_get_str(d, "code", ""));
                outf(o, ",");
                csv_field(o, cm_json_get_str(d, "name", ""));
            } else {
                outf(o, ",CITY");
            }
            for (size_t c = 0; c < n_cols; c++) {
                value_text(at(x, cols[c].path), buf, sizeof(buf), false);
                outf(o, ",");
                csv_field(o, buf);
            }
            outf(o, "\r\n");
        }
    }
}

static char *costs_csv(json_object *r, BrLang lang);
static char *service_quality_csv(json_object *r, BrLang lang);

char *br_report_csv(json_object *report, BrLang lang)
{
    Out o = {0};
    char buf[256];
    bool assessment = strcmp(cm_json_get_str(report, "report", ""), "annual_assessment") == 0;
    json_object *deps = cm_json_get(report, "departments");
    size_t nd = deps ? json_object_array_length(deps) : 0;

    if (strcmp(cm_json_get_str(report, "report", ""), "cost_statement") == 0)
        return costs_csv(report, lang);
    if (strcmp(cm_json_get_str(report, "report", ""), "service_quality") == 0)
        return service_quality_csv(report, lang);
    outf(&o, "\xef\xbb\xbf"); /* BOM: spreadsheets then read UTF-8 */
    if (assessment) {
        for (size_t c = 0; c < ELEMENTSOF(assess_cols); c++)
            outf(&o, "%s%s", c ? "," : "", assess_cols[c].csv);
        outf(&o, "\r\n");
        for (size_t i = 0; i < nd; i++) {
            json_object *d = json_object_array_get_idx(deps, i);
            for (size_t c = 0; c < ELEMENTSOF(assess_cols); c++) {
                value_text(at(d, assess_cols[c].path), buf, sizeof(buf), false);
                if (c)
                    outf(&o, ",");
                csv_field(&o, buf);
            }
            outf(&o, "\r\n");
        }
        json_object *city = cm_json_get(report, "city");
        for (size_t c = 0; c < ELEMENTSOF(assess_cols); c++) {
            if (c)
                outf(&o, ",");
            if (strcmp(assess_cols[c].path, "name") == 0) {
                outf(&o, "CITY");
                continue;
            }
            value_text(at(city, assess_cols[c].path), buf, sizeof(buf), false);
            csv_field(&o, buf);
        }
        outf(&o, "\r\n\r\nno_budget_system_id,system,department,reasons\r\n");
        json_object *nb = cm_json_get(report, "no_budget");
        for (size_t i = 0; nb && i < json_object_array_length(nb); i++) {
            json_object *x = json_object_array_get_idx(nb, i);
            json_object *why = cm_json_get(x, "reasons");
            char reasons[64] = "";
            for (size_t k = 0; why && k < json_object_array_length(why); k++) {
                size_t u = strlen(reasons);
                snprintf(reasons + u, sizeof(reasons) - u, "%s%s", k ? ";" : "",
                         json_object_get_string(json_object_array_get_idx(why, k)));
            }
            outf(&o, "%lld,", (long long)cm_json_get_int(x, "system_id", 0));
            csv_field(&o, cm_json_get_str(x, "system", ""));
            outf(&o, ",");
            csv_field(&o, cm_json_get_str(x, "department", ""));
            outf(&o, ",%s\r\n", reasons);
        }
        return out_take(&o);
    }
    /* Every section of the report, each with its own header, separated by an empty line:
     * instances, totals (with the city's), requests handled (with the city's), daily
     * utilization, findings, events. */
    json_object *city = cm_json_get(report, "city");
    csv_section(&o, deps, "instances", NULL, NULL, ops_cols, ELEMENTSOF(ops_cols));
    outf(&o, "\r\n");
    csv_section(&o, deps, NULL, "totals", city, ops_total_cols, ELEMENTSOF(ops_total_cols));
    outf(&o, "\r\n");
    csv_section(&o, deps, NULL, "requests", city, ops_request_cols, ELEMENTSOF(ops_request_cols));
    outf(&o, "\r\n");
    csv_section(&o, deps, "daily", NULL, NULL, ops_daily_cols, ELEMENTSOF(ops_daily_cols));
    outf(&o, "\r\n");
    csv_section(&o, deps, "findings", NULL, NULL, ops_finding_cols, ELEMENTSOF(ops_finding_cols));
    outf(&o, "\r\n");
    csv_section(&o, deps, "events", NULL, NULL, ops_event_cols, ELEMENTSOF(ops_event_cols));
    (void)buf;
    return out_take(&o);
}

/* ---- HTML ---- */

#define L(zh, en) (lang == BR_LANG_ZH ? (zh) : (en))

static const char *style =
    "body{font-family:'Noto Sans CJK SC','Noto Sans SC','Source Han Sans SC','WenQuanYi Micro Hei',"
    "'Microsoft YaHei',sans-serif;margin:24px;color:#1a1a1a;font-size:13px}"
    "h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:24px 0 8px;border-bottom:2px solid "
    "#24527a;padding-bottom:3px}h3{font-size:14px;margin:16px 0 6px}"
    ".meta{color:#555;margin-bottom:16px}.cards{display:flex;gap:12px;flex-wrap:wrap}"
    ".card{border:1px solid #c8d3df;border-radius:6px;padding:8px 14px;min-width:140px}"
    ".card b{display:block;font-size:20px;color:#24527a}"
    "table{border-collapse:collapse;width:100%;margin:6px 0 12px;font-size:12px}"
    "th,td{border:1px solid #c8d3df;padding:3px 6px;text-align:right;vertical-align:top}"
    "th{background:#e9f0f7;text-align:center}td.t{text-align:left}"
    "tr:nth-child(even) td{background:#f7f9fb}.chart{margin:8px 0}"
    ".cards,.chart,p{page-break-inside:avoid}h3{page-break-after:avoid}"
    "@media print{body{margin:10mm}h2{page-break-after:avoid}"
    "table{page-break-inside:auto;font-size:10px}th,td{padding:2px 4px}"
    "tr{page-break-inside:avoid}}";

static void html_head(Out *o, BrLang lang, const char *title)
{
    outf(o,
         "<!DOCTYPE html>\n<html lang=\"%s\"><head><meta charset=\"utf-8\">"
         "<meta name=\"viewport\" content=\"width=device-width\">"
         "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
         "style-src 'unsafe-inline'; img-src data:\"><title>",
         lang == BR_LANG_ZH ? "zh-CN" : "en");
    html_text(o, title);
    outf(o, "</title><style>%s</style></head><body>\n", style);
}

/* Horizontal bars of 0..100 scores, one per label. */
static void svg_bars(Out *o, const char *title, const char *const *labels, const double *values,
                     size_t n)
{
    int row = 22, left = 170, width = 640;
    int height = (int)n * row + 34;
    outf(o,
         "<svg class=\"chart\" role=\"img\" xmlns=\"http://www.w3.org/2000/svg\" "
         "width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\"><title>",
         width, height, width, height);
    html_text(o, title);
    outf(o, "</title>");
    for (int g = 0; g <= 100; g += 25)
        outf(o,
             "<line x1=\"%d\" y1=\"4\" x2=\"%d\" y2=\"%d\" stroke=\"#dde4ec\"/>"
             "<text x=\"%d\" y=\"%d\" font-size=\"10\" text-anchor=\"middle\" "
             "fill=\"#666\">%d</text>",
             left + g * 4, left + g * 4, height - 22, left + g * 4, height - 8, g);
    for (size_t i = 0; i < n; i++) {
        int y = 6 + (int)i * row;
        double v = values[i] < 0 ? 0 : values[i] > 100 ? 100 : values[i];
        outf(o, "<text x=\"%d\" y=\"%d\" font-size=\"11\" text-anchor=\"end\">", left - 6, y + 13);
        html_text(o, labels[i]);
        outf(o,
             "</text><rect x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"16\" fill=\"#3d7ab8\"/>"
             "<text x=\"%.1f\" y=\"%d\" font-size=\"11\">%s</text>",
             left, y, v * 4, left + v * 4 + 4, y + 13, values[i] < 0 ? "—" : "");
        if (values[i] >= 0)
            outf(o, "<text x=\"%.1f\" y=\"%d\" font-size=\"11\">%.1f</text>", left + v * 4 + 4,
                 y + 13, values[i]);
    }
    outf(o, "</svg>\n");
}

/* Daily series (0..1) as lines, with a legend. */
static void svg_lines(Out *o, const char *title, json_object *daily, const char *const *keys,
                      const char *const *names, size_t n_series)
{
    static const char *const colors[] = {"#3d7ab8", "#d9822b"};
    int width = 640, height = 220, left = 40, top = 10, plot_w = 580, plot_h = 170;
    size_t n = daily ? json_object_array_length(daily) : 0;

    outf(o,
         "<svg class=\"chart\" role=\"img\" xmlns=\"http://www.w3.org/2000/svg\" "
         "width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\"><title>",
         width, height, width, height);
    html_text(o, title);
    outf(o, "</title>");
    for (int g = 0; g <= 100; g += 25) {
        double y = top + plot_h - plot_h * g / 100.0;
        outf(o,
             "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#dde4ec\"/>"
             "<text x=\"%d\" y=\"%.1f\" font-size=\"10\" text-anchor=\"end\" "
             "fill=\"#666\">%d%%</text>",
             left, y, left + plot_w, y, left - 4, y + 3, g);
    }
    for (size_t k = 0; k < n_series; k++) {
        outf(o, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"",
             colors[k % 2]);
        for (size_t i = 0; i < n; i++) {
            json_object *v = cm_json_get(json_object_array_get_idx(daily, i), keys[k]);
            if (!v)
                continue;
            double x = left + (n > 1 ? plot_w * (double)i / (double)(n - 1) : plot_w / 2.0);
            double val = fmin(1, fmax(0, json_object_get_double(v)));
            outf(o, "%.1f,%.1f ", x, top + plot_h - plot_h * val);
        }
        outf(o, "\"/>");
        /* A dot on every day, so that a day alone (a line needs two) still shows. */
        for (size_t i = 0; i < n; i++) {
            json_object *v = cm_json_get(json_object_array_get_idx(daily, i), keys[k]);
            if (!v)
                continue;
            double x = left + (n > 1 ? plot_w * (double)i / (double)(n - 1) : plot_w / 2.0);
            double val = fmin(1, fmax(0, json_object_get_double(v)));
            outf(o, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>", x,
                 top + plot_h - plot_h * val, colors[k % 2]);
        }
        outf(o,
             "<rect x=\"%d\" y=\"%d\" width=\"10\" height=\"10\" fill=\"%s\"/>"
             "<text x=\"%d\" y=\"%d\" font-size=\"11\">",
             left + 10 + (int)k * 160, height - 18, colors[k % 2], left + 24 + (int)k * 160,
             height - 9);
        html_text(o, names[k]);
        outf(o, "</text>");
    }
    if (n) {
        outf(o, "<text x=\"%d\" y=\"%d\" font-size=\"10\" fill=\"#666\">", left, top + plot_h + 14);
        html_text(o, cm_json_get_str(json_object_array_get_idx(daily, 0), "day", ""));
        outf(o,
             "</text><text x=\"%d\" y=\"%d\" font-size=\"10\" fill=\"#666\" "
             "text-anchor=\"end\">",
             left + plot_w, top + plot_h + 14);
        html_text(o, cm_json_get_str(json_object_array_get_idx(daily, n - 1), "day", ""));
        outf(o, "</text>");
    }
    outf(o, "</svg>\n");
}

/* The one row of an empty table: it says so. */
static void none_row(Out *o, BrLang lang, size_t n_cols)
{
    outf(o, "<tr class=\"none\"><td class=\"t\" colspan=\"%zu\">", n_cols);
    html_text(o, L("无", "none"));
    outf(o, "</td></tr>\n");
}

/* An efficiency score that is null: "no data" with its coverage when the department held
 * resources without enough measured hours; "—" when it held none. */
static void no_data_text(BrLang lang, json_object *dept, char *buf, size_t size)
{
    json_object *cov = at(dept, "efficiency.coverage");
    if (!cm_json_get_bool(cm_json_get(dept, "efficiency"), "no_data", false)) {
        snprintf(buf, size, "—");
        return;
    }
    snprintf(buf, size, L("无数据（覆盖率 %.1f %%）", "no data (coverage %.1f %%)"),
             cov ? json_object_get_double(cov) * 100 : 0.0);
}

/* A table of @rows with the columns @pick (indexes into @cols), or all @n_cols when @pick is
 * NULL: the CSV has every column, the page splits them into tables that fit its width. */
static void html_table_pick(Out *o, BrLang lang, json_object *rows, const Column *cols,
                            const size_t *pick, size_t n_cols)
{
    char buf[256];
    outf(o, "<table><thead><tr>");
    for (size_t c = 0; c < n_cols; c++) {
        const Column *col = &cols[pick ? pick[c] : c];
        outf(o, "<th>");
        html_text(o, L(col->zh, col->en));
        outf(o, "</th>");
    }
    outf(o, "</tr></thead><tbody>\n");
    for (size_t i = 0; rows && i < json_object_array_length(rows); i++) {
        json_object *r = json_object_array_get_idx(rows, i);
        outf(o, "<tr>");
        for (size_t c = 0; c < n_cols; c++) {
            const Column *col = &cols[pick ? pick[c] : c];
            json_object *v = at(r, col->path);
            value_text(v, buf, sizeof(buf), col->percent);
            if (!v && strcmp(col->path, "efficiency.score") == 0)
                no_data_text(lang, r, buf, sizeof(buf));
            outf(o, "<td%s>", v && json_object_is_type(v, json_type_string) ? " class=\"t\"" : "");
            html_text(o, buf);
            outf(o, "</td>");
        }
        outf(o, "</tr>\n");
    }
    if (!rows || json_object_array_length(rows) == 0)
        none_row(o, lang, n_cols);
    outf(o, "</tbody></table>\n");
}

static void html_table(Out *o, BrLang lang, json_object *rows, const Column *cols, size_t n_cols)
{
    html_table_pick(o, lang, rows, cols, NULL, n_cols);
}

static void card(Out *o, const char *label, json_object *v, bool percent)
{
    char buf[64];
    value_text(v, buf, sizeof(buf), percent);
    outf(o, "<div class=\"card\">");
    html_text(o, label);
    outf(o, "<b>");
    html_text(o, buf[0] ? buf : "—");
    outf(o, "</b></div>");
}

static void card_text(Out *o, const char *label, const char *text)
{
    outf(o, "<div class=\"card\">");
    html_text(o, label);
    outf(o, "<b>");
    html_text(o, text);
    outf(o, "</b></div>");
}

/* When the period's rollups were last computed, or that there are none yet. */
static void rollups_meta(Out *o, BrLang lang, json_object *r)
{
    const char *at_ = cm_json_get_str(r, "rollups_computed_at", NULL);
    html_text(o, L("；计量数据汇总于 ", "; metering rolled up at "));
    html_text(o, at_ ? at_ : L("（尚无汇总）", "(no rollup yet)"));
}

static char *assessment_html(json_object *r, BrLang lang)
{
    Out o = {0};
    char title[160];
    json_object *city = cm_json_get(r, "city"), *deps = cm_json_get(r, "departments");
    json_object *meth = cm_json_get(r, "methodology");
    size_t nd = deps ? json_object_array_length(deps) : 0;

    snprintf(title, sizeof(title), "%s %lld",
             L("政务云平台使用情况年度考核", "Annual assessment of government-cloud use"),
             (long long)cm_json_get_int(r, "year", 0));
    html_head(&o, lang, title);
    outf(&o, "<h1>");
    html_text(&o, title);
    outf(&o, "</h1><div class=\"meta\">");
    html_text(&o, L("依据《电子政务管理办法》第九条；生成于 ", "Under Art. 9 of the Measures; "
                                                               "generated "));
    html_text(&o, cm_json_get_str(r, "generated_at", ""));
    html_text(&o,
              L("；百分位精度：已分配vCPU的 1 %（按日直方图合并）", "; percentile resolution: "));
    if (lang == BR_LANG_EN)
        html_text(&o, cm_json_get_str(meth, "percentile_resolution", ""));
    rollups_meta(&o, lang, r);
    outf(&o, "</div>\n<section><h2>");
    html_text(&o, L("全市概况", "City overview"));
    outf(&o, "</h2><div class=\"cards\">");
    card(&o, L("上云率", "Cloud share"), at(city, "cloud_share.share"), true);
    if (at(city, "efficiency.score") ||
        !cm_json_get_bool(cm_json_get(city, "efficiency"), "no_data", false)) {
        card(&o, L("效率得分", "Efficiency score"), at(city, "efficiency.score"), false);
    } else {
        char no_data[96];
        no_data_text(lang, city, no_data, sizeof(no_data));
        card_text(&o, L("效率得分", "Efficiency score"), no_data);
    }
    card(&o, L("安全得分", "Security score"), at(city, "security.score"), false);
    card(&o, L("综合得分", "Overall score"), at(city, "overall_score"), false);
    card(&o, L("可回收vCPU", "Reclaimable vCPUs"), at(city, "efficiency.reclaimable_vcpus"), false);
    card(&o, L("可回收内存GiB", "Reclaimable GiB"), at(city, "efficiency.reclaimable_memory_gib"),
         false);
    card(&o, L("可节约（元/月）", "Saving (yuan/month)"),
         at(city, "efficiency.reclaimable_monthly_saving"), false);
    outf(&o, "</div></section>\n<section><h2>");
    html_text(&o, L("各单位综合得分", "Overall score by department"));
    outf(&o, "</h2>");
    {
        const char **labels = calloc(nd + 1, sizeof(char *));
        double *values = calloc(nd + 1, sizeof(double));
        if (labels && values) {
            for (size_t i = 0; i < nd; i++) {
                json_object *d = json_object_array_get_idx(deps, i);
                json_object *v = cm_json_get(d, "overall_score");
                labels[i] = cm_json_get_str(d, "name", "");
                values[i] = v ? json_object_get_double(v) : -1;
            }
            svg_bars(&o, L("综合得分", "Overall score"), labels, values, nd);
        }
        free(labels);
        free(values);
    }
    outf(&o, "</section>\n<section><h2>");
    html_text(&o, L("考核指标（上云率、资源使用效率、安全状况）",
                    "Indicators (cloud share, resource-use efficiency, security status)"));
    outf(&o, "</h2><h3>");
    html_text(&o, L("得分", "Scores"));
    outf(&o, "</h3>");
    html_table_pick(&o, lang, deps, assess_cols, assess_scores, ELEMENTSOF(assess_scores));
    outf(&o, "<h3>");
    html_text(&o, L("资源使用效率", "Resource-use efficiency"));
    outf(&o, "</h3>");
    html_table_pick(&o, lang, deps, assess_cols, assess_efficiency, ELEMENTSOF(assess_efficiency));
    outf(&o, "<h3>");
    html_text(&o, L("全年按时间加权的资源使用", "The year's use, time-weighted"));
    outf(&o, "</h3>");
    html_table_pick(&o, lang, deps, assess_cols, assess_hours, ELEMENTSOF(assess_hours));
    outf(&o, "<h3>");
    html_text(&o, L("安全状况", "Security status"));
    outf(&o, "</h3>");
    html_table_pick(&o, lang, deps, assess_cols, assess_security, ELEMENTSOF(assess_security));
    outf(&o, "<p>");
    html_text(&o, L("权重：上云率 ", "Weights: cloud share "));
    {
        char w[160];
        snprintf(w, sizeof(w), "%.2f, %s %.2f, %s %.2f",
                 cm_json_get_double(cm_json_get(meth, "weights"), "cloud_share", 0),
                 L("效率", "efficiency"),
                 cm_json_get_double(cm_json_get(meth, "weights"), "efficiency", 0),
                 L("安全", "security"),
                 cm_json_get_double(cm_json_get(meth, "weights"), "security", 0));
        html_text(&o, w);
    }
    outf(&o, "</p><p>");
    {
        char w[512];
        snprintf(w, sizeof(w),
                 L("资源使用效率按时间加权：每个实例的规格 × 本年度内持有的小时数"
                   "（vCPU小时、GiB小时），年内已结束的资源按其持有的时间计入；"
                   "计量覆盖率低于 %.0f %% 的单位效率得分为“无数据”，并注明覆盖率。",
                   "Resource-use efficiency is time-weighted: each instance's size × the hours "
                   "it was held in the year (vCPU-hours, GiB-hours); resources that ended "
                   "during the year count for the time they were held. A department whose "
                   "metering covers less than %.0f %% of those hours has no efficiency score "
                   "(\"no data\", with its coverage)."),
                 cm_json_get_double(meth, "min_coverage", 0.8) * 100);
        html_text(&o, w);
    }
    outf(&o, "</p></section>\n<section><h2>");
    html_text(&o, L("未上云或未备份的系统（第五条：不予安排经费）",
                    "Systems not on the cloud or without backup (Art. 5: no budget)"));
    outf(&o, "</h2><table><thead><tr><th>");
    html_text(&o, L("应用系统", "System"));
    outf(&o, "</th><th>");
    html_text(&o, L("单位", "Department"));
    outf(&o, "</th><th>");
    html_text(&o, L("原因", "Reasons"));
    outf(&o, "</th></tr></thead><tbody>");
    json_object *nb = cm_json_get(r, "no_budget");
    for (size_t i = 0; nb && i < json_object_array_length(nb); i++) {
        json_object *x = json_object_array_get_idx(nb, i), *why = cm_json_get(x, "reasons");
        outf(&o, "<tr><td class=\"t\">");
        html_text(&o, cm_json_get_str(x, "system", ""));
        outf(&o, "</td><td class=\"t\">");
        html_text(&o, cm_json_get_str(x, "department", ""));
        outf(&o, "</td><td class=\"t\">");
        for (size_t k = 0; why && k < json_object_array_length(why); k++) {
            const char *w = json_object_get_string(json_object_array_get_idx(why, k));
            if (k)
                html_text(&o, L("、", "; "));
            html_text(&o, strcmp(w, "not_on_cloud") == 0 ? L("未上云", "not on the cloud")
                                                         : L("未备份", "no backup"));
        }
        outf(&o, "</td></tr>");
    }
    if (!nb || json_object_array_length(nb) == 0)
        none_row(&o, lang, 3);
    outf(&o, "</tbody></table></section>\n</body></html>\n");
    return out_take(&o);
}

/* The Chinese name of a state the reconciler saw. */
static const char *state_zh(const char *s)
{
    static const char *const names[][2] = {
        {"running", "运行"},
        {"paused", "暂停"},
        {"shutoff", "关机"},
        {"absent", "不存在"},
    };
    for (size_t i = 0; i < ELEMENTSOF(names); i++)
        if (s && strncmp(s, names[i][0], strlen(names[i][0])) == 0)
            return names[i][1];
    return "其他";
}

/*
 * An event of the reconciler in Chinese, from its kind and its structured detail (what was
 * seen, what was expected, the domain; docs/api.md "Events"). An event recorded before events
 * had a detail gets a text from its kind alone.
 */
static void event_zh(json_object *x, char *buf, size_t size)
{
    const char *kind = cm_json_get_str(x, "kind", "");
    const char *name = cm_json_get_str(x, "instance", "");
    json_object *detail = cm_json_get(x, "detail");
    const char *seen = cm_json_get_str(detail, "seen", NULL);
    const char *expected = cm_json_get_str(detail, "expected", "");

    if (!detail || !json_object_is_type(detail, json_type_object))
        snprintf(buf, size, "运行事件：%s，%s",
                 strcmp(kind, "instance_missing") == 0 ? "实例缺失"
                 : strcmp(kind, "instance_state") == 0 ? "实例状态异常"
                 : strcmp(kind, "unowned_domain") == 0 ? "未登记的域"
                                                       : "其他",
                 name);
    else if (strcmp(kind, "instance_missing") == 0)
        snprintf(buf, size, "实例 %s 应在此主机上，但其域不存在",
                 cm_json_get_str(detail, "domain_name", name));
    else if (strcmp(kind, "instance_state") == 0 && strcmp(expected, "absent") == 0)
        snprintf(buf, size, "实例 %s 已回收，但其域仍然存在（%s）", name, state_zh(seen));
    else if (strcmp(kind, "instance_state") == 0)
        snprintf(buf, size, "实例 %s 应处于运行状态，实际为%s", name, state_zh(seen));
    else if (strcmp(kind, "unowned_domain") == 0)
        snprintf(buf, size, "域 %s 不属于任何分配%s", name,
                 cm_json_get_bool(detail, "metadata", false) ? "，但带有本平台的元数据" : "");
    else
        snprintf(buf, size, "运行事件 %s", name);
}

static const char *event_kind_text(BrLang lang, const char *kind)
{
    if (strcmp(kind, "instance_missing") == 0)
        return L("实例缺失", "instance missing");
    if (strcmp(kind, "instance_state") == 0)
        return L("实例状态异常", "instance state");
    if (strcmp(kind, "unowned_domain") == 0)
        return L("未登记的域", "unowned domain");
    return L("其他", kind);
}

/* A finding's evidence in the report's language: the rule recorded in Chinese with it, or
 * (a finding recorded before the rule was kept in Chinese) what its kind means. */
static const char *finding_rule(BrLang lang, json_object *x)
{
    const char *kind = cm_json_get_str(x, "kind", "");
    if (lang == BR_LANG_EN)
        return cm_json_get_str(x, "rule", "");
    if (cm_json_get_str(x, "rule_zh", NULL) && *cm_json_get_str(x, "rule_zh", ""))
        return cm_json_get_str(x, "rule_zh", "");
    return strcmp(kind, "idle") == 0 ? "满足闲置规则（详见发现的依据）"
           : strcmp(kind, "over_provisioned") == 0
               ? "利用率第95百分位低于配置过度阈值（详见发现的依据）"
               : "利用率第95百分位高于配置不足阈值（详见发现的依据）";
}

/* The operations report's cards of @tot (a department's or the city's totals). */
static void ops_cards(Out *o, BrLang lang, json_object *tot)
{
    outf(o, "<div class=\"cards\">");
    card(o, L("实例数", "Instances"), cm_json_get(tot, "instances"), false);
    card(o, L("实例小时", "Instance-hours"), cm_json_get(tot, "instance_hours"), false);
    card(o, L("可用率", "Availability"), cm_json_get(tot, "availability"), true);
    card(o, L("计量覆盖率", "Metering coverage"), cm_json_get(tot, "coverage"), true);
    card(o, L("平均CPU利用率", "Average CPU utilization"), cm_json_get(tot, "cpu_utilization_avg"),
         true);
    outf(o, "</div>");
}

/* The month's requests handled, as one line. */
static void ops_requests_line(Out *o, BrLang lang, json_object *q)
{
    char buf[256], median[32];
    json_object *m = cm_json_get(q, "median_days_to_decide");
    if (m)
        snprintf(median, sizeof(median), "%.1f", json_object_get_double(m));
    else
        snprintf(median, sizeof(median), "—");
    snprintf(buf, sizeof(buf),
             L("本月受理申请：收到 %lld，批准 %lld，退回 %lld，驳回 %lld；"
               "从提交到决定用时中位数 %s 天",
               "Requests this month: %lld received, %lld approved, %lld returned, %lld rejected; "
               "median days from submission to decision %s"),
             (long long)cm_json_get_int(q, "received", 0),
             (long long)cm_json_get_int(q, "approved", 0),
             (long long)cm_json_get_int(q, "returned", 0),
             (long long)cm_json_get_int(q, "rejected", 0), median);
    outf(o, "<p>");
    html_text(o, buf);
    outf(o, "</p>");
}

static char *operations_html(json_object *r, BrLang lang)
{
    Out o = {0};
    char title[160], buf[512];
    json_object *deps = cm_json_get(r, "departments"), *city = cm_json_get(r, "city");

    snprintf(title, sizeof(title), "%s %s", L("政务云资源运行报告", "Operations report"),
             cm_json_get_str(r, "month", ""));
    html_head(&o, lang, title);
    outf(&o, "<h1>");
    html_text(&o, title);
    outf(&o, "</h1><div class=\"meta\">");
    html_text(&o, L("依据第八条：资源利用、运维情况与优化建议；生成于 ",
                    "Under Art. 8: resource use, operations and optimisation advice; generated "));
    html_text(&o, cm_json_get_str(r, "generated_at", ""));
    rollups_meta(&o, lang, r);
    outf(&o, "</div>\n<section><h2>");
    html_text(&o, L("全市合计", "City totals"));
    outf(&o, "</h2>");
    ops_cards(&o, lang, cm_json_get(city, "totals"));
    ops_requests_line(&o, lang, cm_json_get(city, "requests"));
    outf(&o, "<p>");
    html_text(
        &o,
        L("可用率：实例被观测到运行的时间占被观测时间的比例（来自对账程序看到的状态和主机连接）；"
          "计量覆盖率：收到的计量读数占应收读数的比例。",
          "Availability: the share of the observed time the instances were seen "
          "running (the reconciler's observed states and the host connection); "
          "metering coverage: the share of the expected readings that arrived."));
    outf(&o, "</p></section>\n");
    for (size_t i = 0; deps && i < json_object_array_length(deps); i++) {
        json_object *d = json_object_array_get_idx(deps, i), *tot = cm_json_get(d, "totals");
        outf(&o, "<section><h2>");
        html_text(&o, cm_json_get_str(d, "name", ""));
        outf(&o, "</h2>");
        ops_cards(&o, lang, tot);
        ops_requests_line(&o, lang, cm_json_get(d, "requests"));
        outf(&o, "<h3>");
        html_text(&o, L("每日利用率", "Daily utilization"));
        outf(&o, "</h3>");
        {
            static const char *const keys[] = {"cpu_utilization", "memory_utilization"};
            const char *names[] = {L("CPU利用率", "CPU utilization"),
                                   L("内存利用率", "Memory utilization")};
            svg_lines(&o, L("每日利用率", "Daily utilization"), cm_json_get(d, "daily"), keys,
                      names, 2);
        }
        outf(&o, "<h3>");
        html_text(&o, L("实例利用情况", "Instances"));
        outf(&o, "</h3>");
        html_table(&o, lang, cm_json_get(d, "instances"), ops_cols, ELEMENTSOF(ops_cols));
        outf(&o, "<h3>");
        html_text(&o, L("优化建议（闲置与配置不当）", "Right-sizing advice (idle and mis-sized)"));
        outf(&o, "</h3><table><thead><tr><th>");
        html_text(&o, L("实例", "Instance"));
        outf(&o, "</th><th>");
        html_text(&o, L("发现", "Finding"));
        outf(&o, "</th><th>");
        html_text(&o, L("依据", "Evidence"));
        outf(&o, "</th><th>");
        html_text(&o, L("建议配置", "Recommended size"));
        outf(&o, "</th><th>");
        html_text(&o, L("可释放", "Frees"));
        outf(&o, "</th></tr></thead><tbody>");
        json_object *f = cm_json_get(d, "findings");
        for (size_t k = 0; f && k < json_object_array_length(f); k++) {
            json_object *x = json_object_array_get_idx(f, k);
            const char *kind = cm_json_get_str(x, "kind", "");
            const char *action = cm_json_get_str(x, "action", "");
            outf(&o, "<tr><td class=\"t\">");
            html_text(&o, cm_json_get_str(x, "instance", ""));
            outf(&o, "</td><td class=\"t\">");
            html_text(&o, strcmp(kind, "idle") == 0 ? L("闲置", "idle")
                          : strcmp(kind, "over_provisioned") == 0
                              ? L("配置过度", "over-provisioned")
                              : L("配置不足", "under-provisioned"));
            outf(&o, "</td><td class=\"t\">");
            html_text(&o, finding_rule(lang, x));
            outf(&o, "</td><td>");
            if (strcmp(kind, "idle") == 0 && strcmp(action, "scale_in") == 0)
                snprintf(buf, sizeof(buf), "%s",
                         L("建议缩容：移除此实例", "scale in: remove this instance"));
            else if (strcmp(kind, "idle") == 0)
                snprintf(buf, sizeof(buf), "%s", L("建议回收", "reclaim"));
            else
                snprintf(buf, sizeof(buf), "%lld vCPU / %lld MiB",
                         (long long)cm_json_get_int(x, "recommended_vcpus", 0),
                         (long long)cm_json_get_int(x, "recommended_memory_mib", 0));
            html_text(&o, buf);
            outf(&o, "</td><td>");
            snprintf(buf, sizeof(buf), "%lld vCPU / %lld MiB",
                     (long long)cm_json_get_int(x, "frees_vcpus", 0),
                     (long long)cm_json_get_int(x, "frees_memory_mib", 0));
            html_text(&o, buf);
            outf(&o, "</td></tr>");
        }
        if (!f || json_object_array_length(f) == 0)
            none_row(&o, lang, 5);
        outf(&o, "</tbody></table><h3>");
        html_text(&o, L("运行事件", "Events"));
        outf(&o, "</h3><table><thead><tr><th>");
        html_text(&o, L("时间", "When"));
        outf(&o, "</th><th>");
        html_text(&o, L("类型", "Kind"));
        outf(&o, "</th><th>");
        html_text(&o, L("说明", "Message"));
        outf(&o, "</th><th>");
        html_text(&o, L("已解决", "Resolved"));
        outf(&o, "</th></tr></thead><tbody>");
        json_object *ev = cm_json_get(d, "events");
        for (size_t k = 0; ev && k < json_object_array_length(ev); k++) {
            json_object *x = json_object_array_get_idx(ev, k);
            outf(&o, "<tr><td class=\"t\">");
            html_text(&o, cm_json_get_str(x, "first_seen", ""));
            outf(&o, "</td><td class=\"t\">");
            html_text(&o, event_kind_text(lang, cm_json_get_str(x, "kind", "")));
            outf(&o, "</td><td class=\"t\">");
            if (lang == BR_LANG_ZH) {
                event_zh(x, buf, sizeof(buf));
                html_text(&o, buf);
            } else {
                html_text(&o, cm_json_get_str(x, "message", ""));
            }
            outf(&o, "</td><td class=\"t\">");
            html_text(&o, cm_json_get_str(x, "resolved_at", "—"));
            outf(&o, "</td></tr>");
        }
        if (!ev || json_object_array_length(ev) == 0)
            none_row(&o, lang, 4);
        outf(&o, "</tbody></table></section>\n");
    }
    if (!deps || json_object_array_length(deps) == 0) {
        outf(&o, "<p>");
        html_text(&o, L("无", "none"));
        outf(&o, "</p>");
    }
    outf(&o, "</body></html>\n");
    return out_take(&o);
}

static char *costs_html(json_object *r, BrLang lang);
static char *service_quality_html(json_object *r, BrLang lang);

char *br_report_html(json_object *report, BrLang lang)
{
    if (strcmp(cm_json_get_str(report, "report", ""), "service_quality") == 0)
        return service_quality_html(report, lang);
    if (strcmp(cm_json_get_str(report, "report", ""), "cost_statement") == 0)
        return costs_html(report, lang);
    if (strcmp(cm_json_get_str(report, "report", ""), "annual_assessment") == 0)
        return assessment_html(report, lang);
    return operations_html(report, lang);
}

/* ---- the cost statement (docs/costs.md) ---- */

/* Yuan from fen, exactly: "1234.05". */
static void yuan_text(int64_t fen, char *buf, size_t size)
{
    snprintf(buf, size, "%s%lld.%02lld", fen < 0 ? "-" : "", llabs(fen) / 100LL,
             llabs(fen) % 100LL);
}

static const char *purpose_text(BrLang lang, const char *purpose)
{
    return strcmp(purpose, "trial") == 0 ? L("试运行", "trial") : L("生产", "production");
}

/* One line of the statement per part of an instance's bill. */
typedef struct {
    json_object *dep, *sys, *alloc, *inst, *part;
} CostLine;

typedef void (*CostLineFn)(Out *o, BrLang lang, const CostLine *l);

static void costs_each_line(Out *o, BrLang lang, json_object *dep, CostLineFn fn)
{
    json_object *systems = cm_json_get(dep, "systems");
    for (size_t s = 0; systems && s < json_object_array_length(systems); s++) {
        json_object *sys = json_object_array_get_idx(systems, s);
        json_object *allocs = cm_json_get(sys, "allocations");
        for (size_t a = 0; allocs && a < json_object_array_length(allocs); a++) {
            json_object *alloc = json_object_array_get_idx(allocs, a);
            json_object *insts = cm_json_get(alloc, "instances");
            for (size_t i = 0; insts && i < json_object_array_length(insts); i++) {
                json_object *inst = json_object_array_get_idx(insts, i);
                json_object *parts = cm_json_get(inst, "parts");
                for (size_t k = 0; parts && k < json_object_array_length(parts); k++) {
                    CostLine l = {dep, sys, alloc, inst, json_object_array_get_idx(parts, k)};
                    fn(o, lang, &l);
                }
            }
        }
    }
}

/* The columns of a line: the page's headers in two languages and the CSV's English one. */
static const struct {
    const char *zh, *en, *csv;
} cost_cols[] = {
    {"系统", "System", "system"},
    {"分配", "Allocation", "allocation"},
    {"用途", "Purpose", "purpose"},
    {"实例", "Instance", "instance"},
    {"镜像", "Image", "image"},
    {"起", "From", "from"},
    {"止", "To", "to"},
    {"小时", "Hours", "hours"},
    {"vCPU", "vCPUs", "vcpus"},
    {"内存 (MiB)", "Memory (MiB)", "memory_mib"},
    {"磁盘 (GiB)", "Disk (GiB)", "disk_gib"},
    {"计算 (元)", "Compute (yuan)", "compute_yuan"},
    {"内存 (元)", "Memory (yuan)", "memory_yuan"},
    {"磁盘 (元)", "Disk (yuan)", "disk_yuan"},
    {"合计 (元)", "Total (yuan)", "total_yuan"},
};

/* The texts of a line; @page: times as "MM-DD HH:MM:SS" (the month is the page's), else the
 * whole UTC time as the JSON has it. */
static void cost_line_texts(BrLang lang, const CostLine *l, bool page, char texts[][72])
{
    json_object *p = l->part;
    const char *from = cm_json_get_str(p, "from", ""), *to = cm_json_get_str(p, "to", "");
    snprintf(texts[0], 72, "%s", cm_json_get_str(l->sys, "name", ""));
    snprintf(texts[1], 72, "%lld", (long long)cm_json_get_int(l->alloc, "id", 0));
    snprintf(texts[2], 72, "%s", purpose_text(lang, cm_json_get_str(l->alloc, "purpose", "")));
    snprintf(texts[3], 72, "%s", cm_json_get_str(l->inst, "name", ""));
    snprintf(texts[4], 72, "%s", cm_json_get_str(l->inst, "image", ""));
    if (page && strlen(from) >= 19 && strlen(to) >= 19) {
        snprintf(texts[5], 72, "%.5s %.8s", from + 5, from + 11);
        snprintf(texts[6], 72, "%.5s %.8s", to + 5, to + 11);
    } else {
        snprintf(texts[5], 72, "%s", from);
        snprintf(texts[6], 72, "%s", to);
    }
    snprintf(texts[7], 72, "%.4f", cm_json_get_double(p, "hours", 0));
    snprintf(texts[8], 72, "%lld", (long long)cm_json_get_int(p, "vcpus", 0));
    snprintf(texts[9], 72, "%lld", (long long)cm_json_get_int(p, "memory_mib", 0));
    snprintf(texts[10], 72, "%lld", (long long)cm_json_get_int(p, "disk_gib", 0));
    yuan_text(cm_json_get_int(p, "compute_fen", 0), texts[11], 72);
    yuan_text(cm_json_get_int(p, "memory_fen", 0), texts[12], 72);
    yuan_text(cm_json_get_int(p, "disk_fen", 0), texts[13], 72);
    yuan_text(cm_json_get_int(p, "total_fen", 0), texts[14], 72);
}

static void csv_cost_line(Out *o, BrLang lang, const CostLine *l)
{
    char texts[ELEMENTSOF(cost_cols)][72];
    cost_line_texts(lang, l, false, texts);
    csv_field(o, cm_json_get_str(l->dep, "code", ""));
    outf(o, ",");
    csv_field(o, cm_json_get_str(l->dep, "name", ""));
    for (size_t c = 0; c < ELEMENTSOF(cost_cols); c++) {
        outf(o, ",");
        csv_field(o, texts[c]);
    }
    outf(o, "\r\n");
}

/* A row of sums: compute, memory, disk, total in yuan. */
static void csv_sums(Out *o, json_object *x)
{
    static const char *const keys[] = {"compute_fen", "memory_fen", "disk_fen", "total_fen"};
    char buf[32];
    for (size_t k = 0; k < ELEMENTSOF(keys); k++) {
        yuan_text(cm_json_get_int(x, keys[k], 0), buf, sizeof(buf));
        outf(o, ",%s", buf);
    }
    outf(o, "\r\n");
}

/* Two sections: a line per part of each instance's bill, then each department's sums and the
 * total; headers in @lang. */
static char *costs_csv(json_object *r, BrLang lang)
{
    Out o = {0};
    json_object *deps = cm_json_get(r, "departments");

    outf(&o, "\xef\xbb\xbf");
    outf(&o, "%s,%s", L("部门代码", "department_code"), L("部门", "department"));
    for (size_t c = 0; c < ELEMENTSOF(cost_cols); c++)
        outf(&o, ",%s", L(cost_cols[c].zh, cost_cols[c].csv));
    outf(&o, "\r\n");
    for (size_t i = 0; deps && i < json_object_array_length(deps); i++)
        costs_each_line(&o, lang, json_object_array_get_idx(deps, i), csv_cost_line);
    outf(&o, "\r\n%s,%s,%s,%s,%s,%s\r\n", L("部门代码", "department_code"), L("部门", "department"),
         L("计算 (元)", "compute_yuan"), L("内存 (元)", "memory_yuan"), L("磁盘 (元)", "disk_yuan"),
         L("合计 (元)", "total_yuan"));
    for (size_t i = 0; deps && i < json_object_array_length(deps); i++) {
        json_object *d = json_object_array_get_idx(deps, i);
        csv_field(&o, cm_json_get_str(d, "code", ""));
        outf(&o, ",");
        csv_field(&o, cm_json_get_str(d, "name", ""));
        csv_sums(&o, d);
    }
    outf(&o, ",%s", L("合计", "TOTAL"));
    csv_sums(&o, cm_json_get(r, "total"));
    return out_take(&o);
}

/* The page's columns: 15 do not fit a printed page, so the allocation shows its purpose and
 * the image is left to the CSV and the JSON. */
static bool cost_col_on_page(size_t c)
{
    return c != 2 && c != 4;
}

static void html_cost_line(Out *o, BrLang lang, const CostLine *l)
{
    char texts[ELEMENTSOF(cost_cols)][72];
    cost_line_texts(lang, l, true, texts);
    snprintf(texts[1], sizeof(texts[1]), "%lld %s", (long long)cm_json_get_int(l->alloc, "id", 0),
             purpose_text(lang, cm_json_get_str(l->alloc, "purpose", "")));
    outf(o, "<tr>");
    for (size_t c = 0; c < ELEMENTSOF(cost_cols); c++) {
        if (!cost_col_on_page(c))
            continue;
        outf(o, "<td%s>", c < 7 ? " class=\"t\"" : "");
        html_text(o, texts[c]);
        outf(o, "</td>");
    }
    outf(o, "</tr>\n");
}

static void html_sums_cells(Out *o, json_object *x)
{
    static const char *const keys[] = {"compute_fen", "memory_fen", "disk_fen", "total_fen"};
    char buf[32];
    for (size_t k = 0; k < ELEMENTSOF(keys); k++) {
        yuan_text(cm_json_get_int(x, keys[k], 0), buf, sizeof(buf));
        outf(o, "<td>%s</td>", buf);
    }
}

static char *costs_html(json_object *r, BrLang lang)
{
    Out o = {0};
    char title[160], buf[32];
    json_object *deps = cm_json_get(r, "departments"), *total = cm_json_get(r, "total");
    size_t nd = deps ? json_object_array_length(deps) : 0;

    snprintf(title, sizeof(title), "%s %s", L("政务云资源费用月度账单", "Monthly cost statement"),
             cm_json_get_str(r, "month", ""));
    html_head(&o, lang, title);
    outf(&o, "<h1>");
    html_text(&o, title);
    outf(&o, "</h1><div class=\"meta\">");
    html_text(&o, L("计费期间 ", "Period "));
    html_text(&o, cm_json_get_str(r, "from", ""));
    html_text(&o, " — ");
    html_text(&o, cm_json_get_str(r, "to", ""));
    html_text(&o, cm_json_get_bool(r, "complete", false) ? L("（整月）", " (whole month)")
                                                         : L("（月初至今）", " (month to date)"));
    html_text(&o, L("；币种 人民币（元）", "; currency CNY (yuan)"));
    outf(&o, "</div><div class=\"cards\">");
    yuan_text(cm_json_get_int(total, "total_fen", 0), buf, sizeof(buf));
    card_text(&o, L("合计 (元)", "Total (yuan)"), buf);
    yuan_text(cm_json_get_int(total, "compute_fen", 0), buf, sizeof(buf));
    card_text(&o, L("计算 (元)", "Compute (yuan)"), buf);
    yuan_text(cm_json_get_int(total, "memory_fen", 0), buf, sizeof(buf));
    card_text(&o, L("内存 (元)", "Memory (yuan)"), buf);
    yuan_text(cm_json_get_int(total, "disk_fen", 0), buf, sizeof(buf));
    card_text(&o, L("磁盘 (元)", "Disk (yuan)"), buf);
    outf(&o, "</div>\n<h2>");
    html_text(&o, L("各部门费用", "Cost by department"));
    outf(&o,
         "</h2><table><thead><tr><th>%s</th><th>%s</th><th>%s</th><th>%s</th><th>%s</th>"
         "<th>%s</th></tr></thead><tbody>\n",
         L("部门代码", "Code"), L("部门", "Department"), L("计算 (元)", "Compute (yuan)"),
         L("内存 (元)", "Memory (yuan)"), L("磁盘 (元)", "Disk (yuan)"),
         L("合计 (元)", "Total (yuan)"));
    for (size_t i = 0; i < nd; i++) {
        json_object *d = json_object_array_get_idx(deps, i);
        outf(&o, "<tr><td class=\"t\">");
        html_text(&o, cm_json_get_str(d, "code", ""));
        outf(&o, "</td><td class=\"t\">");
        html_text(&o, cm_json_get_str(d, "name", ""));
        outf(&o, "</td>");
        html_sums_cells(&o, d);
        outf(&o, "</tr>\n");
    }
    if (nd == 0)
        none_row(&o, lang, 6);
    outf(&o, "<tr><td class=\"t\"></td><td class=\"t\"><b>");
    html_text(&o, L("合计", "Total"));
    outf(&o, "</b></td>");
    html_sums_cells(&o, total);
    outf(&o, "</tr></tbody></table>\n");
    for (size_t i = 0; i < nd; i++) {
        json_object *d = json_object_array_get_idx(deps, i);
        outf(&o, "<h3>");
        html_text(&o, cm_json_get_str(d, "name", ""));
        outf(&o, " (");
        html_text(&o, cm_json_get_str(d, "code", ""));
        outf(&o, ")</h3><table><thead><tr>");
        for (size_t c = 0; c < ELEMENTSOF(cost_cols); c++) {
            if (!cost_col_on_page(c))
                continue;
            outf(&o, "<th>");
            html_text(&o, c == 1 ? L("分配（用途）", "Allocation (purpose)")
                                 : L(cost_cols[c].zh, cost_cols[c].en));
            outf(&o, "</th>");
        }
        outf(&o, "</tr></thead><tbody>\n");
        costs_each_line(&o, lang, d, html_cost_line);
        outf(&o, "</tbody></table>\n");
    }
    outf(&o, "</body></html>\n");
    return out_take(&o);
}

/* ---- the vendor's service-quality scorecard (docs/service-quality.md) ---- */

static const struct {
    const char *id, *zh, *en;
} sla_names[] = {
    {"availability", "实例可用性", "Instance availability"},
    {"trial_lead_time", "试用环境交付时长", "Trial environment lead time"},
    {"allocation_lead_time", "资源分配交付时长", "Allocation lead time"},
    {"change_lead_time", "变更实施时长", "Change lead time"},
    {"incident_response", "安全事件响应时长", "Incident response time"},
    {"incident_resolution", "安全事件处置时长", "Incident resolution time"},
    {"vulnerability_fix", "漏洞修复时限", "Vulnerabilities fixed in time"},
    {"security_bulletin", "月度安全通报", "Monthly security bulletin"},
    {"emergency_drill", "年度应急演练", "Yearly emergency drill"},
    {"backup_restore_test", "备份恢复测试", "Backup restore test"},
    {"operations_report", "月度运维报告", "Monthly operations report"},
};

static const char *sla_name(BrLang lang, const char *id)
{
    for (size_t i = 0; i < ELEMENTSOF(sla_names); i++)
        if (strcmp(sla_names[i].id, id) == 0)
            return L(sla_names[i].zh, sla_names[i].en);
    return id;
}

static const char *sla_status(BrLang lang, const char *st)
{
    return strcmp(st, "met") == 0       ? L("达标", "met")
           : strcmp(st, "missed") == 0  ? L("未达标", "missed")
           : strcmp(st, "no_data") == 0 ? L("无数据", "no data")
           : strcmp(st, "pending") == 0 ? L("待定（期限未到）", "pending (not yet due)")
                                        : L("未计量", "not measured");
}

/* The JSON number @v as its text ("" for null). */
static void sla_num(Out *o, json_object *v)
{
    html_text(o, v ? json_object_to_json_string(v) : "");
}

static void sla_target(Out *o, BrLang lang, json_object *t)
{
    json_object *lim = cm_json_get(t, "limit_hours");
    if (cm_json_get(t, "due")) {
        /* A duty: done and recorded before its deadline. */
        html_text(o, L("记录于 ", "recorded before "));
        html_text(o, cm_json_get_str(t, "due", ""));
    } else if (cm_json_get(t, "percent")) {
        outf(o, "≥ ");
        sla_num(o, cm_json_get(t, "percent"));
        outf(o, " %%");
    } else if (lim && json_object_is_type(lim, json_type_object)) {
        bool first = true;
        json_object_object_foreach(lim, k, v)
        {
            outf(o, "%s%s ≤ ", first ? "" : "; ", k);
            sla_num(o, v);
            html_text(o, L(" 小时", " h"));
            first = false;
        }
    } else if (lim) {
        outf(o, "≤ ");
        sla_num(o, lim);
        html_text(o, L(" 小时", " h"));
    }
}

static void sla_measured(Out *o, BrLang lang, json_object *m)
{
    if (!m)
        return;
    if (cm_json_get(m, "should_run_ms")) {
        if (json_object_get_type(cm_json_get(m, "percent")) != json_type_null) {
            sla_num(o, cm_json_get(m, "percent"));
            outf(o, " %%");
        }
        return;
    }
    if (cm_json_get(m, "in_time")) {
        outf(o, L("按时记录 %lld / 共 %lld 条", "%lld of %lld records in time"),
             (long long)cm_json_get_int(m, "in_time", 0),
             (long long)cm_json_get_int(m, "records", 0));
        if (cm_json_get(m, "systems"))
            outf(o, L("；%lld / %lld 个系统已测", "; %lld of %lld systems tested"),
                 (long long)cm_json_get_int(m, "systems_met", 0),
                 (long long)cm_json_get_int(m, "systems", 0));
        return;
    }
    outf(o, "%lld %s %lld", (long long)cm_json_get_int(m, "late", 0), L("超时 / 共", "late of"),
         (long long)cm_json_get_int(m, "cases", 0));
    if (cm_json_get_int(m, "pending", 0))
        outf(o, L("（%lld 进行中）", " (%lld pending)"),
             (long long)cm_json_get_int(m, "pending", 0));
}

static char *service_quality_html(json_object *r, BrLang lang)
{
    json_object *inds = cm_json_get(r, "indicators");
    size_t n = inds ? json_object_array_length(inds) : 0;
    char title[96], buf[48];
    Out o = {0};

    snprintf(title, sizeof(title), "%s %s",
             L("服务商服务质量月度考核", "Vendor service-quality scorecard"),
             cm_json_get_str(r, "month", ""));
    html_head(&o, lang, title);
    outf(&o, "<h1>");
    html_text(&o, title);
    outf(&o, "</h1><div class=\"meta\">");
    html_text(&o, L("考核期间 ", "Period "));
    html_text(&o, cm_json_get_str(r, "from", ""));
    html_text(&o, " — ");
    html_text(&o, cm_json_get_str(r, "to", ""));
    html_text(&o, cm_json_get_bool(r, "complete", false) ? L("（整月）", " (whole month)")
                                                         : L("（月初至今）", " (month to date)"));
    outf(&o, "</div><div class=\"cards\">");
    yuan_text(cm_json_get_int(r, "fee_fen", 0), buf, sizeof(buf));
    card_text(&o, L("月度服务费 (元)", "Monthly fee (yuan)"), buf);
    yuan_text(cm_json_get_int(r, "deduction_fen", 0), buf, sizeof(buf));
    card_text(&o, L("扣减 (元)", "Deduction (yuan)"), buf);
    yuan_text(cm_json_get_int(r, "fee_after_fen", 0), buf, sizeof(buf));
    card_text(&o, L("扣减后服务费 (元)", "Fee after deductions (yuan)"), buf);
    outf(&o, "</div>\n<h2>");
    html_text(&o, L("考核指标", "Indicators"));
    outf(&o,
         "</h2><table><thead><tr><th>%s</th><th>%s</th><th>%s</th><th>%s</th><th>%s</th>"
         "<th>%s</th></tr></thead><tbody>\n",
         L("指标", "Indicator"), L("目标", "Target"), L("实测", "Measured"), L("结果", "Result"),
         L("扣减比例 (%)", "Deduction (%)"), L("扣减 (元)", "Deduction (yuan)"));
    for (size_t i = 0; i < n; i++) {
        json_object *x = json_object_array_get_idx(inds, i);
        const char *st = cm_json_get_str(x, "status", "");
        outf(&o, "<tr><td class=\"t\">");
        html_text(&o, sla_name(lang, cm_json_get_str(x, "id", "")));
        outf(&o, "</td><td class=\"t\">");
        sla_target(&o, lang, cm_json_get(x, "target"));
        outf(&o, "</td><td class=\"t\">");
        sla_measured(&o, lang, cm_json_get(x, "measured"));
        outf(&o, "</td><td class=\"t\">");
        html_text(&o, sla_status(lang, st));
        outf(&o, "</td><td>");
        sla_num(&o, cm_json_get(x, "deduction_percent"));
        outf(&o, "</td><td>");
        if (cm_json_get(x, "deduction_fen")) {
            yuan_text(cm_json_get_int(x, "deduction_fen", 0), buf, sizeof(buf));
            html_text(&o, buf);
        }
        outf(&o, "</td></tr>\n");
    }
    outf(&o, "</tbody></table>\n");
    for (size_t i = 0; i < n; i++) {
        json_object *x = json_object_array_get_idx(inds, i), *ex = cm_json_get(x, "explanations");
        for (size_t k = 0; ex && k < json_object_array_length(ex); k++) {
            json_object *e = json_object_array_get_idx(ex, k);
            outf(&o, "<p><b>");
            html_text(&o, L("服务商说明", "Vendor's explanation"));
            outf(&o, "</b> (");
            html_text(&o, sla_name(lang, cm_json_get_str(x, "id", "")));
            outf(&o, ", ");
            html_text(&o, cm_json_get_str(e, "created_at", ""));
            outf(&o, "): ");
            html_text(&o, cm_json_get_str(e, "text", ""));
            outf(&o, "</p>\n");
        }
    }
    for (size_t i = 0; i < n; i++) {
        json_object *x = json_object_array_get_idx(inds, i), *ev = cm_json_get(x, "evidence");
        size_t ne = ev ? json_object_array_length(ev) : 0;
        bool avail = strcmp(cm_json_get_str(x, "id", ""), "availability") == 0;
        if (!ne)
            continue;
        outf(&o, "<h3>");
        html_text(&o, sla_name(lang, cm_json_get_str(x, "id", "")));
        if (avail)
            outf(&o,
                 "</h3><table><thead><tr><th>%s</th><th>%s</th><th>%s</th><th>%s</th>"
                 "<th>%s</th></tr></thead><tbody>\n",
                 L("实例", "Instance"), L("应运行 (毫秒)", "Should run (ms)"),
                 L("中断 (毫秒)", "Down (ms)"), L("可用性 (%)", "Availability (%)"),
                 L("事件", "Events"));
        else
            outf(&o,
                 "</h3><table><thead><tr><th>%s</th><th>%s</th><th>%s</th><th>%s</th>"
                 "<th>%s</th></tr></thead><tbody>\n",
                 L("记录", "Record"), L("起", "From"), L("止", "To"), L("小时", "Hours"),
                 L("结果", "Result"));
        for (size_t k = 0; k < ne; k++) {
            json_object *e = json_object_array_get_idx(ev, k);
            outf(&o, "<tr><td class=\"t\">");
            if (avail) {
                html_text(&o, cm_json_get_str(e, "name", ""));
                outf(&o, "</td><td>%lld</td><td>%lld</td><td>",
                     (long long)cm_json_get_int(e, "should_run_ms", 0),
                     (long long)cm_json_get_int(e, "down_ms", 0));
                sla_num(&o, cm_json_get(e, "percent"));
                outf(&o, "</td><td class=\"t\">");
                sla_num(&o, cm_json_get(e, "events"));
            } else {
                html_text(&o, cm_json_get_str(e, "kind", ""));
                outf(&o, " %lld", (long long)cm_json_get_int(e, "id", 0));
                if (cm_json_get(e, "severity")) {
                    outf(&o, " (");
                    html_text(&o, cm_json_get_str(e, "severity", ""));
                    outf(&o, ")");
                }
                outf(&o, "</td><td class=\"t\">");
                html_text(&o, cm_json_get_str(e, "from", ""));
                outf(&o, "</td><td class=\"t\">");
                html_text(&o, cm_json_get_str(e, "to", "—"));
                outf(&o, "</td><td>");
                sla_num(&o, cm_json_get(e, "hours"));
                outf(&o, "</td><td class=\"t\">");
                const char *res = cm_json_get_str(e, "result", "");
                html_text(&o, strcmp(res, "late") == 0      ? L("超时", "late")
                              : strcmp(res, "met") == 0     ? L("按时", "in time")
                              : strcmp(res, "failed") == 0  ? L("恢复失败", "restore failed")
                              : strcmp(res, "missing") == 0 ? L("缺失", "missing")
                                                            : L("进行中", "pending"));
            }
            outf(&o, "</td></tr>\n");
        }
        outf(&o, "</tbody></table>\n");
    }
    outf(&o, "</body></html>\n");
    return out_take(&o);
}

/* The members of @v as "key=value; key=value", nested objects' members as "key.member" and
 * arrays as their count: the CSV's target and measured cells, the JSON's numbers as written. */
static void sla_flat(Out *o, const char *prefix, json_object *v, bool *first)
{
    json_object_object_foreach(v, k, x)
    {
        char key[96];
        snprintf(key, sizeof(key), "%s%s%s", prefix, prefix[0] ? "." : "", k);
        if (x && json_object_is_type(x, json_type_object)) {
            sla_flat(o, key, x, first);
            continue;
        }
        outf(o, "%s%s=", *first ? "" : "; ", key);
        *first = false;
        if (x && json_object_is_type(x, json_type_array))
            outf(o, "%zu", json_object_array_length(x));
        else if (x && json_object_is_type(x, json_type_string))
            outf(o, "%s", json_object_get_string(x));
        else
            outf(o, "%s", x ? json_object_to_json_string(x) : "null");
    }
}

static void sla_flat_field(Out *o, json_object *v)
{
    Out cell = {0};
    bool first = true;
    _cleanup_free_ char *text = NULL;

    if (v && json_object_is_type(v, json_type_object))
        sla_flat(&cell, "", v, &first);
    text = out_take(&cell);
    if (!text)
        o->failed = true;
    csv_field(o, text ? text : "");
}

/* One line per indicator (its target and measured values flattened, its result and deduction),
 * then the month's fee, deduction and fee after it: the numbers of the JSON, in fen and yuan. */
static char *service_quality_csv(json_object *r, BrLang lang)
{
    Out o = {0};
    json_object *inds = cm_json_get(r, "indicators");

    outf(&o, "\xef\xbb\xbf");
    outf(&o, "%s,%s,%s,%s,%s,%s,%s\r\n", L("指标代码", "indicator"), L("指标", "name"),
         L("目标", "target"), L("实测", "measured"), L("结果", "status"),
         L("扣减比例 (%)", "deduction_percent"), L("扣减 (分)", "deduction_fen"));
    for (size_t i = 0; inds && i < json_object_array_length(inds); i++) {
        json_object *x = json_object_array_get_idx(inds, i),
                    *pct = cm_json_get(x, "deduction_percent");
        const char *id = cm_json_get_str(x, "id", "");
        csv_field(&o, id);
        outf(&o, ",");
        csv_field(&o, sla_name(lang, id));
        outf(&o, ",");
        sla_flat_field(&o, cm_json_get(x, "target"));
        outf(&o, ",");
        sla_flat_field(&o, cm_json_get(x, "measured"));
        outf(&o, ",%s,", cm_json_get_str(x, "status", ""));
        if (pct)
            outf(&o, "%s", json_object_to_json_string(pct));
        outf(&o, ",");
        if (cm_json_get(x, "deduction_fen"))
            outf(&o, "%lld", (long long)cm_json_get_int(x, "deduction_fen", 0));
        outf(&o, "\r\n");
    }
    outf(&o, "\r\n%s,%s,%s,%s,%s,%s\r\n", L("月份", "month"), L("服务费 (分)", "fee_fen"),
         L("扣减合计 (分)", "deductions_fen"), L("封顶 (%)", "cap_percent"),
         L("实际扣减 (分)", "deduction_fen"), L("扣减后服务费 (分)", "fee_after_fen"));
    csv_field(&o, cm_json_get_str(r, "month", ""));
    outf(&o, ",%lld,%lld,%s,%lld,%lld\r\n", (long long)cm_json_get_int(r, "fee_fen", 0),
         (long long)cm_json_get_int(r, "deductions_fen", 0),
         cm_json_get(r, "cap_percent") ? json_object_to_json_string(cm_json_get(r, "cap_percent"))
                                       : "",
         (long long)cm_json_get_int(r, "deduction_fen", 0),
         (long long)cm_json_get_int(r, "fee_after_fen", 0));
    return out_take(&o);
}
