/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ctl-figures.h"
#include "ctl-output.h"
#include "ctl-report.h"
#include "cm-json.h"
#include "cm-util.h"

#define L(lang, zh, en) ((lang) == CTL_LANG_EN ? (en) : (zh))

typedef enum {
    FIG_TEXT,    /* the value as it is */
    FIG_DEC1,    /* one decimal: scores, hours */
    FIG_DEC2,    /* two decimals: cores, GiB */
    FIG_DEC0,    /* no decimals: MiB */
    FIG_PERCENT, /* a share */
    FIG_COUNT,   /* the length of an array */
    FIG_FEN,     /* an integer of fen as yuan: 1234.05 */
} Fig;

typedef struct {
    const char *path; /* into the row's object, dotted */
    Fig fig;
    const char *zh, *en;
    CtlAlign align;
} Col;

/* The cells of the department name and code in the city's row. */
typedef struct {
    const char *name, *code;
} RowLabel;

static char *cell(json_object *row, const Col *c)
{
    json_object *v = ctl_json_path(row, c->path);
    switch (c->fig) {
    case FIG_DEC0:
        return ctl_figure_number(v, 0);
    case FIG_DEC1:
        return ctl_figure_number(v, 1);
    case FIG_DEC2:
        return ctl_figure_number(v, 2);
    case FIG_PERCENT:
        return ctl_figure_percent(v);
    case FIG_FEN: {
        int64_t fen = json_object_is_type(v, json_type_int) ? json_object_get_int64(v) : 0;
        return cm_strdup_printf("%s%" PRId64 ".%02" PRId64, fen < 0 ? "-" : "",
                                (fen < 0 ? -fen : fen) / 100, (fen < 0 ? -fen : fen) % 100);
    }
    case FIG_COUNT:
        return cm_strdup_printf("%zu", json_object_is_type(v, json_type_array)
                                           ? json_object_array_length(v)
                                           : (size_t)0);
    default:
        return ctl_json_text(v);
    }
}

/*
 * Prints a table of @cols with a row per member of @rows and, when @city is given, a last row
 * for it in which the "name" and "code" columns show @city_label.
 */
static int print_table(FILE *f, CtlLang lang, const Col *cols, size_t n, json_object *rows,
                       json_object *city, const RowLabel *city_label, size_t indent)
{
    _cleanup_free_ CtlColumn *columns = calloc(n, sizeof(*columns));
    _cleanup_free_ char **cells = calloc(n, sizeof(*cells));
    _cleanup_(ctl_table_freep) CtlTable *t = NULL;
    size_t nrows = json_object_is_type(rows, json_type_array) ? json_object_array_length(rows) : 0;
    int r = 0;

    if (!columns || !cells)
        return -ENOMEM;
    for (size_t c = 0; c < n; c++)
        columns[c] = (CtlColumn){L(lang, cols[c].zh, cols[c].en), cols[c].align};
    t = ctl_table_new(columns, n);
    if (!t)
        return -ENOMEM;
    for (size_t i = 0; i <= nrows && r >= 0; i++) {
        json_object *row = i < nrows ? json_object_array_get_idx(rows, i) : city;
        if (!row)
            break;
        for (size_t c = 0; c < n; c++) {
            if (i == nrows && strcmp(cols[c].path, "name") == 0)
                cells[c] = strdup(city_label->name);
            else if (i == nrows &&
                     (strcmp(cols[c].path, "code") == 0 || strcmp(cols[c].path, "rank") == 0))
                cells[c] = strdup(city_label->code);
            else
                cells[c] = cell(row, &cols[c]);
            if (!cells[c])
                r = -ENOMEM;
        }
        if (r >= 0)
            r = ctl_table_add_row(t, (const char *const *)cells, n);
        for (size_t c = 0; c < n; c++) {
            free(cells[c]);
            cells[c] = NULL;
        }
    }
    if (r < 0)
        return r;
    return ctl_table_print(t, f, indent);
}

/* "2026-01-01" of "2026-01-01T00:00:00.000Z". */
static void print_day(FILE *f, json_object *doc, const char *key)
{
    _cleanup_free_ char *clean = ctl_text_sanitize(cm_json_get_str(doc, key, "?"), true);
    fprintf(f, "%.10s", clean ? clean : "?");
}

/*
 * Finishes the text written through @f into *@buf (open_memstream() sets *@buf only when the
 * stream is flushed or closed). Returns: the text, or NULL after a failure.
 */
static char *finish(FILE *f, char **buf, int r)
{
    if (fclose(f) != 0 || r < 0) {
        free(*buf);
        return NULL;
    }
    return *buf;
}

static const Col score_cols[] = {
    {"rank", FIG_TEXT, "排名", "RANK", CTL_ALIGN_RIGHT},
    {"code", FIG_TEXT, "代码", "CODE", CTL_ALIGN_LEFT},
    {"name", FIG_TEXT, "单位", "DEPARTMENT", CTL_ALIGN_LEFT},
    {"cloud_share.systems", FIG_TEXT, "应用系统数", "SYSTEMS", CTL_ALIGN_RIGHT},
    {"cloud_share.on_cloud", FIG_TEXT, "上云系统数", "ON_CLOUD", CTL_ALIGN_RIGHT},
    {"cloud_share.share", FIG_PERCENT, "上云率", "CLOUD_SHARE", CTL_ALIGN_RIGHT},
    {"cloud_share.score", FIG_DEC1, "上云得分", "CLOUD", CTL_ALIGN_RIGHT},
    {"efficiency.score", FIG_DEC1, "效率得分", "EFFICIENCY", CTL_ALIGN_RIGHT},
    {"security.score", FIG_DEC1, "安全得分", "SECURITY", CTL_ALIGN_RIGHT},
    {"overall_score", FIG_DEC1, "综合得分", "OVERALL", CTL_ALIGN_RIGHT},
};

static const Col use_cols[] = {
    {"code", FIG_TEXT, "代码", "CODE", CTL_ALIGN_LEFT},
    {"name", FIG_TEXT, "单位", "DEPARTMENT", CTL_ALIGN_LEFT},
    {"efficiency.allocations", FIG_TEXT, "资源分配数", "ALLOCS", CTL_ALIGN_RIGHT},
    {"efficiency.allocated_vcpus", FIG_TEXT, "已分配vCPU", "VCPUS", CTL_ALIGN_RIGHT},
    {"efficiency.used_vcpus_avg", FIG_DEC2, "平均使用vCPU", "VCPUS_USED", CTL_ALIGN_RIGHT},
    {"efficiency.cpu_utilization_avg", FIG_PERCENT, "CPU利用率", "CPU_AVG", CTL_ALIGN_RIGHT},
    {"efficiency.cpu_utilization_p95", FIG_PERCENT, "CPU利用率P95", "CPU_P95", CTL_ALIGN_RIGHT},
    {"efficiency.allocated_memory_gib", FIG_DEC2, "已分配内存GiB", "MEM_GIB", CTL_ALIGN_RIGHT},
    {"efficiency.used_memory_gib_avg", FIG_DEC2, "平均使用内存GiB", "MEM_USED_GIB",
     CTL_ALIGN_RIGHT},
    {"efficiency.idle_allocations", FIG_TEXT, "闲置资源", "IDLE", CTL_ALIGN_RIGHT},
    {"efficiency.over_provisioned_allocations", FIG_TEXT, "配置过度", "OVER_PROV", CTL_ALIGN_RIGHT},
    {"efficiency.reclaimable_vcpus", FIG_TEXT, "可回收vCPU", "RECLAIM_VCPUS", CTL_ALIGN_RIGHT},
    {"efficiency.reclaimable_memory_gib", FIG_DEC2, "可回收内存GiB", "RECLAIM_GIB",
     CTL_ALIGN_RIGHT},
};

static const Col security_cols[] = {
    {"code", FIG_TEXT, "代码", "CODE", CTL_ALIGN_LEFT},
    {"name", FIG_TEXT, "单位", "DEPARTMENT", CTL_ALIGN_LEFT},
    {"security.systems_on_cloud", FIG_TEXT, "上云系统数", "ON_CLOUD", CTL_ALIGN_RIGHT},
    {"security.security_test_passed", FIG_TEXT, "安全测试通过", "TEST_PASSED", CTL_ALIGN_RIGHT},
    {"security.backup_attested", FIG_TEXT, "已备份", "BACKED_UP", CTL_ALIGN_RIGHT},
    {"security.open_vulnerabilities.critical", FIG_TEXT, "严重漏洞", "CRITICAL", CTL_ALIGN_RIGHT},
    {"security.open_vulnerabilities.high", FIG_TEXT, "高危漏洞", "HIGH", CTL_ALIGN_RIGHT},
    {"security.open_vulnerabilities.medium", FIG_TEXT, "中危漏洞", "MEDIUM", CTL_ALIGN_RIGHT},
    {"security.open_vulnerabilities.low", FIG_TEXT, "低危漏洞", "LOW", CTL_ALIGN_RIGHT},
    {"security.incidents", FIG_TEXT, "安全事件", "INCIDENTS", CTL_ALIGN_RIGHT},
};

static const char *reason_text(const char *why, CtlLang lang)
{
    if (strcmp(why, "not_on_cloud") == 0)
        return L(lang, "未上云", "not on the cloud");
    if (strcmp(why, "no_backup") == 0)
        return L(lang, "未备份", "no backup");
    return why;
}

static int print_no_budget(FILE *f, json_object *list, CtlLang lang)
{
    const CtlColumn cols[] = {
        {L(lang, "系统编号", "SYSTEM_ID"), CTL_ALIGN_RIGHT},
        {L(lang, "应用系统", "SYSTEM"), CTL_ALIGN_LEFT},
        {L(lang, "单位", "DEPARTMENT"), CTL_ALIGN_LEFT},
        {L(lang, "原因", "REASONS"), CTL_ALIGN_LEFT},
    };
    size_t n = json_object_is_type(list, json_type_array) ? json_object_array_length(list) : 0;
    _cleanup_(ctl_table_freep) CtlTable *t = NULL;
    int r = 0;

    if (n == 0) {
        fprintf(f, "  %s\n", L(lang, "（无）", "(none)"));
        return 0;
    }
    t = ctl_table_new(cols, ELEMENTSOF(cols));
    if (!t)
        return -ENOMEM;
    for (size_t i = 0; i < n && r >= 0; i++) {
        json_object *x = json_object_array_get_idx(list, i), *why = cm_json_get(x, "reasons");
        _cleanup_free_ char *reasons = strdup("");
        for (size_t k = 0; reasons && json_object_is_type(why, json_type_array) &&
                           k < json_object_array_length(why);
             k++) {
            const char *w = json_object_get_string(json_object_array_get_idx(why, k));
            char *next = cm_strdup_printf("%s%s%s", reasons, k ? L(lang, "、", ", ") : "",
                                          reason_text(w ? w : "?", lang));
            free(reasons);
            reasons = next;
        }
        char *cells[4] = {
            ctl_json_text(cm_json_get(x, "system_id")),
            ctl_json_text(cm_json_get(x, "system")),
            ctl_json_text(cm_json_get(x, "department")),
            reasons ? strdup(reasons) : NULL,
        };
        r = cells[0] && cells[1] && cells[2] && cells[3]
                ? ctl_table_add_row(t, (const char *const *)cells, 4)
                : -ENOMEM;
        for (size_t k = 0; k < 4; k++)
            free(cells[k]);
    }
    if (r < 0)
        return r;
    return ctl_table_print(t, f, 2);
}

/* Ranked departments first, best first; the unranked after them, by code. */
static int cmp_rank(const void *a, const void *b)
{
    json_object *x = *(json_object *const *)a, *y = *(json_object *const *)b;
    int64_t rx = cm_json_get_int(x, "rank", 0), ry = cm_json_get_int(y, "rank", 0);

    if ((rx > 0) != (ry > 0))
        return rx > 0 ? -1 : 1;
    if (rx != ry)
        return rx < ry ? -1 : 1;
    return strcmp(cm_json_get_str(x, "code", ""), cm_json_get_str(y, "code", ""));
}

/* A new array of @depts' rows (referenced, not copied) in the order of their rank. */
static json_object *by_rank(json_object *depts)
{
    size_t n = json_object_is_type(depts, json_type_array) ? json_object_array_length(depts) : 0;
    _cleanup_free_ json_object **rows = calloc(n ? n : 1, sizeof(*rows));
    json_object *out = json_object_new_array();

    if (!rows || !out) {
        json_object_put(out);
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        rows[i] = json_object_array_get_idx(depts, i);
    qsort(rows, n, sizeof(*rows), cmp_rank);
    for (size_t i = 0; i < n; i++)
        json_object_array_add(out, json_object_get(rows[i]));
    return out;
}

char *ctl_report_assessment_text(json_object *doc, CtlLang lang)
{
    _cleanup_json_ json_object *depts = by_rank(cm_json_get(doc, "departments"));
    json_object *city = cm_json_get(doc, "city");
    json_object *weights = ctl_json_path(doc, "methodology.weights");
    const RowLabel city_label = {L(lang, "全市", "City"), "-"};
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    int r = 0;

    if (!depts || !f) {
        if (f)
            fclose(f);
        free(buf);
        return NULL;
    }
    if (lang == CTL_LANG_EN)
        fprintf(f, "Annual assessment %" PRId64 " (Art. 9), ", cm_json_get_int(doc, "year", 0));
    else
        fprintf(f, "%" PRId64 "年度政务云平台使用情况考核（第九条），",
                cm_json_get_int(doc, "year", 0));
    print_day(f, doc, "period_from");
    fputs(L(lang, " 至 ", " to "), f);
    print_day(f, doc, "period_to");
    fputs(L(lang, "（不含）；生成于 ", " (excluded); generated "), f);
    {
        _cleanup_free_ char *at =
            ctl_text_sanitize(cm_json_get_str(doc, "generated_at", "?"), true);
        fprintf(f, "%s\n", at ? at : "?");
    }

    fprintf(f,
            L(lang, "\n得分（0-100；权重：上云率 %g，效率 %g，安全 %g）：\n",
              "\nScores (0-100; weights: cloud share %g, efficiency %g, security %g):\n"),
            cm_json_get_double(weights, "cloud_share", 0),
            cm_json_get_double(weights, "efficiency", 0),
            cm_json_get_double(weights, "security", 0));
    r = print_table(f, lang, score_cols, ELEMENTSOF(score_cols), depts, city, &city_label, 2);
    if (r >= 0) {
        fputs(L(lang, "\n资源使用效率：\n", "\nResource use:\n"), f);
        r = print_table(f, lang, use_cols, ELEMENTSOF(use_cols), depts, city, &city_label, 2);
    }
    if (r >= 0) {
        fputs(L(lang, "\n安全状况（上云系统）：\n", "\nSecurity (systems on the cloud):\n"), f);
        r = print_table(f, lang, security_cols, ELEMENTSOF(security_cols), depts, city, &city_label,
                        2);
    }
    if (r >= 0) {
        fputs(L(lang, "\n未上云或未备份的系统（第五条：不予安排经费）：\n",
                "\nSystems off the cloud or without a backup (Art. 5: no budget):\n"),
              f);
        r = print_no_budget(f, cm_json_get(doc, "no_budget"), lang);
    }
    return finish(f, &buf, r);
}

static const Col ops_total_cols[] = {
    {"code", FIG_TEXT, "代码", "CODE", CTL_ALIGN_LEFT},
    {"name", FIG_TEXT, "单位", "DEPARTMENT", CTL_ALIGN_LEFT},
    {"totals.instances", FIG_TEXT, "实例数", "INSTANCES", CTL_ALIGN_RIGHT},
    {"totals.instance_hours", FIG_DEC1, "实例小时", "INSTANCE_HOURS", CTL_ALIGN_RIGHT},
    {"totals.availability", FIG_PERCENT, "可用率", "AVAILABILITY", CTL_ALIGN_RIGHT},
    {"totals.cpu_utilization_avg", FIG_PERCENT, "平均CPU利用率", "CPU_AVG", CTL_ALIGN_RIGHT},
    {"findings", FIG_COUNT, "优化建议", "FINDINGS", CTL_ALIGN_RIGHT},
    {"events", FIG_COUNT, "运行事件", "EVENTS", CTL_ALIGN_RIGHT},
};

static const Col ops_instance_cols[] = {
    {"name", FIG_TEXT, "实例", "INSTANCE", CTL_ALIGN_LEFT},
    {"system", FIG_TEXT, "应用系统", "SYSTEM", CTL_ALIGN_LEFT},
    {"vcpus", FIG_TEXT, "vCPU", "VCPUS", CTL_ALIGN_RIGHT},
    {"memory_mib", FIG_TEXT, "内存MiB", "MEMORY_MIB", CTL_ALIGN_RIGHT},
    {"instance_hours", FIG_DEC1, "实例小时", "HOURS", CTL_ALIGN_RIGHT},
    {"cpu_cores_avg", FIG_DEC2, "平均CPU核", "CPU_CORES_AVG", CTL_ALIGN_RIGHT},
    {"cpu_utilization_avg", FIG_PERCENT, "CPU利用率", "CPU_AVG", CTL_ALIGN_RIGHT},
    {"cpu_cores_p95_daily_max", FIG_DEC2, "CPU核P95(日最高)", "CPU_CORES_P95", CTL_ALIGN_RIGHT},
    {"memory_used_mib_avg", FIG_DEC0, "平均内存MiB", "MEMORY_USED_MIB", CTL_ALIGN_RIGHT},
};

static const char *kind_text(const char *kind, CtlLang lang)
{
    if (strcmp(kind, "idle") == 0)
        return L(lang, "闲置", "idle");
    if (strcmp(kind, "over_provisioned") == 0)
        return L(lang, "配置过度", "over-provisioned");
    if (strcmp(kind, "under_provisioned") == 0)
        return L(lang, "配置不足", "under-provisioned");
    return kind;
}

static int print_ops_findings(FILE *f, json_object *list, CtlLang lang)
{
    const CtlColumn cols[] = {
        {L(lang, "编号", "ID"), CTL_ALIGN_RIGHT},
        {L(lang, "发现", "KIND"), CTL_ALIGN_LEFT},
        {L(lang, "实例", "INSTANCE"), CTL_ALIGN_LEFT},
        {L(lang, "当前配置", "CURRENT"), CTL_ALIGN_RIGHT},
        {L(lang, "建议配置", "RECOMMENDED"), CTL_ALIGN_RIGHT},
        {L(lang, "可释放", "FREES"), CTL_ALIGN_RIGHT},
        {L(lang, "状态", "STATE"), CTL_ALIGN_LEFT},
    };
    size_t n = json_object_array_length(list);
    _cleanup_(ctl_table_freep) CtlTable *t = ctl_table_new(cols, ELEMENTSOF(cols));
    int r = 0;

    if (!t)
        return -ENOMEM;
    for (size_t i = 0; i < n && r >= 0; i++) {
        json_object *x = json_object_array_get_idx(list, i);
        bool idle = strcmp(cm_json_get_str(x, "kind", ""), "idle") == 0;
        char *cells[7] = {
            ctl_json_text(cm_json_get(x, "id")),
            strdup(kind_text(cm_json_get_str(x, "kind", "?"), lang)),
            ctl_json_text(cm_json_get(x, "instance")),
            cm_strdup_printf("%" PRId64 "/%" PRId64, cm_json_get_int(x, "current_vcpus", 0),
                             cm_json_get_int(x, "current_memory_mib", 0)),
            idle ? strdup(L(lang, "建议回收", "reclaim"))
                 : cm_strdup_printf("%" PRId64 "/%" PRId64,
                                    cm_json_get_int(x, "recommended_vcpus", 0),
                                    cm_json_get_int(x, "recommended_memory_mib", 0)),
            cm_strdup_printf("%" PRId64 "/%" PRId64, cm_json_get_int(x, "frees_vcpus", 0),
                             cm_json_get_int(x, "frees_memory_mib", 0)),
            ctl_json_text(cm_json_get(x, "state")),
        };
        r = 0;
        for (size_t k = 0; k < 7; k++)
            if (!cells[k])
                r = -ENOMEM;
        if (r >= 0)
            r = ctl_table_add_row(t, (const char *const *)cells, 7);
        for (size_t k = 0; k < 7; k++)
            free(cells[k]);
    }
    if (r < 0)
        return r;
    return ctl_table_print(t, f, 4);
}

static int print_ops_events(FILE *f, json_object *list, CtlLang lang)
{
    const CtlColumn cols[] = {
        {L(lang, "时间", "FIRST_SEEN"), CTL_ALIGN_LEFT},
        {L(lang, "类型", "KIND"), CTL_ALIGN_LEFT},
        {L(lang, "级别", "SEVERITY"), CTL_ALIGN_LEFT},
        {L(lang, "实例", "INSTANCE"), CTL_ALIGN_LEFT},
        {L(lang, "已解决", "RESOLVED"), CTL_ALIGN_LEFT},
        {L(lang, "说明", "MESSAGE"), CTL_ALIGN_LEFT},
    };
    static const char *const keys[] = {"first_seen", "kind",        "severity",
                                       "instance",   "resolved_at", "message"};
    size_t n = json_object_array_length(list);
    _cleanup_(ctl_table_freep) CtlTable *t = ctl_table_new(cols, ELEMENTSOF(cols));
    int r = 0;

    if (!t)
        return -ENOMEM;
    for (size_t i = 0; i < n && r >= 0; i++)
        r = ctl_table_add_json_row(t, json_object_array_get_idx(list, i), keys, ELEMENTSOF(keys));
    if (r < 0)
        return r;
    return ctl_table_print(t, f, 4);
}

static size_t array_len(json_object *o, const char *key)
{
    json_object *a = cm_json_get(o, key);
    return json_object_is_type(a, json_type_array) ? json_object_array_length(a) : 0;
}

char *ctl_report_operations_text(json_object *doc, CtlLang lang)
{
    json_object *depts = cm_json_get(doc, "departments");
    size_t n = json_object_is_type(depts, json_type_array) ? json_object_array_length(depts) : 0;
    _cleanup_free_ char *month = ctl_text_sanitize(cm_json_get_str(doc, "month", "?"), true);
    _cleanup_free_ char *at = ctl_text_sanitize(cm_json_get_str(doc, "generated_at", "?"), true);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    int r = 0;

    if (!f)
        return NULL;
    fprintf(f, L(lang, "政务云资源运行报告 %s（第八条），", "Operations report %s (Art. 8), "),
            month ? month : "?");
    print_day(f, doc, "period_from");
    fputs(L(lang, " 至 ", " to "), f);
    print_day(f, doc, "period_to");
    fprintf(f, L(lang, "（不含）；生成于 %s\n\n", " (excluded); generated %s\n\n"), at ? at : "?");
    if (n == 0) {
        fprintf(f, "%s\n", L(lang, "（无单位）", "(no departments)"));
        return finish(f, &buf, 0);
    }
    r = print_table(f, lang, ops_total_cols, ELEMENTSOF(ops_total_cols), depts, NULL, NULL, 0);
    for (size_t i = 0; i < n && r >= 0; i++) {
        json_object *d = json_object_array_get_idx(depts, i);
        _cleanup_free_ char *name = ctl_text_sanitize(cm_json_get_str(d, "name", "?"), true);
        _cleanup_free_ char *code = ctl_text_sanitize(cm_json_get_str(d, "code", "?"), true);

        if (array_len(d, "instances") + array_len(d, "findings") + array_len(d, "events") == 0)
            continue;
        fprintf(f, "\n%s (%s):\n", name ? name : "?", code ? code : "?");
        if (array_len(d, "instances")) {
            fprintf(f, "  %s\n", L(lang, "实例利用情况：", "Instances:"));
            r = print_table(f, lang, ops_instance_cols, ELEMENTSOF(ops_instance_cols),
                            cm_json_get(d, "instances"), NULL, NULL, 4);
        }
        if (r >= 0 && array_len(d, "findings")) {
            fprintf(f, "  %s\n",
                    L(lang, "优化建议（闲置与配置不当；vCPU/内存MiB）：",
                      "Right-sizing advice (idle and mis-sized; vCPUs/memory MiB):"));
            r = print_ops_findings(f, cm_json_get(d, "findings"), lang);
        }
        if (r >= 0 && array_len(d, "events")) {
            fprintf(f, "  %s\n", L(lang, "运行事件：", "Events:"));
            r = print_ops_events(f, cm_json_get(d, "events"), lang);
        }
    }
    return finish(f, &buf, r);
}

static const Col cost_cols[] = {
    {"code", FIG_TEXT, "代码", "CODE", CTL_ALIGN_LEFT},
    {"name", FIG_TEXT, "单位", "DEPARTMENT", CTL_ALIGN_LEFT},
    {"compute_fen", FIG_FEN, "计算（元）", "COMPUTE_YUAN", CTL_ALIGN_RIGHT},
    {"memory_fen", FIG_FEN, "内存（元）", "MEMORY_YUAN", CTL_ALIGN_RIGHT},
    {"disk_fen", FIG_FEN, "磁盘（元）", "DISK_YUAN", CTL_ALIGN_RIGHT},
    {"total_fen", FIG_FEN, "合计（元）", "TOTAL_YUAN", CTL_ALIGN_RIGHT},
};

char *ctl_report_costs_text(json_object *doc, CtlLang lang)
{
    json_object *depts = cm_json_get(doc, "departments");
    size_t n = json_object_is_type(depts, json_type_array) ? json_object_array_length(depts) : 0;
    _cleanup_free_ char *month = ctl_text_sanitize(cm_json_get_str(doc, "month", "?"), true);
    _cleanup_free_ char *to = ctl_text_sanitize(cm_json_get_str(doc, "to", "?"), true);
    const RowLabel total = {L(lang, "合计", "TOTAL"), ""};
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    int r;

    if (!f)
        return NULL;
    fprintf(f, L(lang, "政务云资源费用月度账单 %s，", "Monthly cost statement %s, "),
            month ? month : "?");
    print_day(f, doc, "from");
    fprintf(f, L(lang, " 至 %s%s\n\n", " to %s%s\n\n"), to ? to : "?",
            cm_json_get_bool(doc, "complete", false) ? L(lang, "（整月）", " (whole month)")
                                                     : L(lang, "（月初至今）", " (month to date)"));
    if (n == 0)
        fprintf(f, "%s\n", L(lang, "（无费用）", "(nothing billed)"));
    r = print_table(f, lang, cost_cols, ELEMENTSOF(cost_cols), depts, cm_json_get(doc, "total"),
                    &total, 0);
    return finish(f, &buf, r);
}

/* Yuan of @fen: "1234.05". */
static void fprint_yuan(FILE *f, int64_t fen)
{
    fprintf(f, "%s%" PRId64 ".%02" PRId64, fen < 0 ? "-" : "", (fen < 0 ? -fen : fen) / 100,
            (fen < 0 ? -fen : fen) % 100);
}

char *ctl_report_service_quality_text(json_object *doc, CtlLang lang)
{
    json_object *inds = cm_json_get(doc, "indicators");
    size_t n = json_object_is_type(inds, json_type_array) ? json_object_array_length(inds) : 0;
    _cleanup_free_ char *month = ctl_text_sanitize(cm_json_get_str(doc, "month", "?"), true);
    _cleanup_free_ char *to = ctl_text_sanitize(cm_json_get_str(doc, "to", "?"), true);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);

    if (!f)
        return NULL;
    fprintf(f, L(lang, "服务商服务质量月度考核 %s，", "Vendor service-quality scorecard %s, "),
            month ? month : "?");
    print_day(f, doc, "from");
    fprintf(f, L(lang, " 至 %s%s\n\n", " to %s%s\n\n"), to ? to : "?",
            cm_json_get_bool(doc, "complete", false) ? L(lang, "（整月）", " (whole month)")
                                                     : L(lang, "（月初至今）", " (month to date)"));
    for (size_t i = 0; i < n; i++) {
        json_object *x = json_object_array_get_idx(inds, i), *m = cm_json_get(x, "measured");
        _cleanup_free_ char *id = ctl_text_sanitize(cm_json_get_str(x, "id", "?"), true);
        _cleanup_free_ char *st = ctl_text_sanitize(cm_json_get_str(x, "status", "?"), true);
        fprintf(f, "  %-22s %-13s", id ? id : "?", st ? st : "?");
        if (m && cm_json_get(m, "should_run_ms")) {
            json_object *p = cm_json_get(m, "percent");
            fprintf(f, " %s %%",
                    p && !json_object_is_type(p, json_type_null) ? json_object_get_string(p) : "-");
        } else if (m) {
            fprintf(f, L(lang, " 超时 %" PRId64 " / %" PRId64, " late %" PRId64 " of %" PRId64),
                    cm_json_get_int(m, "late", 0), cm_json_get_int(m, "cases", 0));
        }
        if (cm_json_get(x, "deduction_fen")) {
            fprintf(f, L(lang, "  扣减 ", "  deduction "));
            fprint_yuan(f, cm_json_get_int(x, "deduction_fen", 0));
        }
        fputc('\n', f);
    }
    fprintf(f, L(lang, "\n月度服务费 ", "\nMonthly fee "));
    fprint_yuan(f, cm_json_get_int(doc, "fee_fen", 0));
    fprintf(f, L(lang, " 元，扣减 ", " yuan, deduction "));
    fprint_yuan(f, cm_json_get_int(doc, "deduction_fen", 0));
    fprintf(f, L(lang, " 元，扣减后 ", " yuan, after deductions "));
    fprint_yuan(f, cm_json_get_int(doc, "fee_after_fen", 0));
    fprintf(f, L(lang, " 元\n", " yuan\n"));
    return finish(f, &buf, 0);
}

const char *ctl_report_format_of_path(const char *path)
{
    static const struct {
        const char *ext, *format;
    } map[] = {{".json", "json"}, {".csv", "csv"}, {".html", "html"}, {".htm", "html"}};
    size_t n = strlen(path);

    for (size_t i = 0; i < ELEMENTSOF(map); i++) {
        size_t e = strlen(map[i].ext);
        if (n > e && strcasecmp(path + n - e, map[i].ext) == 0 && path[n - e - 1] != '/')
            return map[i].format;
    }
    return NULL;
}
