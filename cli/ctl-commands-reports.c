/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The reports: the annual assessment (Art. 9, GET /v1/reports/assessment), the periodic
 * operations report (Art. 8, GET /v1/reports/operations), the monthly cost statement
 * (GET /v1/reports/costs) and the vendor's service-quality scorecard
 * (GET /v1/reports/service-quality), as the broker renders them (JSON, CSV, HTML) or as a summary
 * in the terminal.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl-commands.h"
#include "ctl-file.h"
#include "ctl-output.h"
#include "ctl-report.h"
#include "cm-crypto.h"
#include "cm-json.h"
#include "cm-util.h"

static const char *const formats[] = {"json", "csv", "html", NULL};
static const char *const langs[] = {"zh", "en", NULL};

typedef struct {
    const char *kind;  /* "assessment": the path's last part */
    const char *key;   /* "year": the query parameter and option naming the period */
    const char *title; /* "annual assessment" */
} Report;

/* The report's URL from the options; @format is sent unless it is the default, json. */
static int report_path(CtlContext *ctx, const Report *rep, const CtlArgs *args, const char *format,
                       char **ret)
{
    const char *dept = ctl_args_get(args, "department"), *lang = ctl_args_get(args, "lang");
    CtlQuery q = {0};
    int64_t id;
    int r = 0;

    if (dept && (r = ctl_parse_id(ctx, "department", dept, &id)) < 0)
        return r;
    /* The period is the broker's to judge: it names the field when it refuses one. */
    ctl_query_add(&q, rep->key, ctl_args_get(args, rep->key));
    ctl_query_add(&q, "department", dept);
    if (strcmp(format, "json") != 0)
        ctl_query_add(&q, "format", format);
    /* Only the HTML rendering has words in it; CSV has fixed column names, but for the cost
     * statement's, which follow the language too. */
    if (strcmp(format, "html") == 0 ||
        (strcmp(format, "csv") == 0 && strcmp(rep->kind, "costs") == 0))
        ctl_query_add(&q, "lang", lang);
    *ret = q.oom ? NULL : ctl_path("/v1/reports/%s%s", rep->kind, q.text ? q.text : "");
    ctl_query_clear(&q);
    return *ret ? 0 : ctl_fail(ctx, -ENOMEM, "out of memory");
}

/* After a file was written: where it went, as text or (--json) as a document. */
static void report_saved(CtlContext *ctx, const Report *rep, const CtlArgs *args,
                         const char *format, const char *path, uint64_t size, const char *sha256)
{
    if (ctx->json) {
        _cleanup_json_ json_object *o = json_object_new_object();
        json_object_object_add(o, "path", json_object_new_string(path));
        json_object_object_add(o, "format", json_object_new_string(format));
        json_object_object_add(o, "size", json_object_new_int64((int64_t)size));
        json_object_object_add(o, "sha256", json_object_new_string(sha256));
        ctl_print_json(ctx->out, o);
        return;
    }
    _cleanup_free_ char *period = ctl_text_sanitize(ctl_args_get(args, rep->key), true);
    fprintf(ctx->out, "Saved the %s of %s (%s) to %s: %" PRIu64 " bytes, sha256 %s\n", rep->title,
            period ? period : "?", format, path, size, sha256);
}

/* CSV and HTML: the broker's rendering, streamed to stdout or into @out. */
static int fetch_rendered(CtlContext *ctx, const Report *rep, const CtlArgs *args,
                          const char *format, const char *out)
{
    _cleanup_free_ char *path = NULL;
    CtlAtomicFile file = CTL_ATOMIC_FILE_INIT;
    CtlTransfer got = {0};
    CtlHttpError e;
    CtlHttp *h;
    int r;

    r = report_path(ctx, rep, args, format, &path);
    if (r >= 0)
        r = ctl_http(ctx, &h);
    if (r < 0)
        return r;
    if (!out) {
        fflush(ctx->out);
        r = ctl_http_download(h, path, STDOUT_FILENO, &got, &e);
        if (r < 0)
            ctl_print_api_error(ctx, &e);
        return r;
    }
    r = ctl_atomic_open(&file, out, 0666);
    if (r < 0)
        return ctl_fail(ctx, r, "cannot create a file next to %s: %s", out, strerror(-r));
    r = ctl_http_download(h, path, file.fd, &got, &e);
    if (r < 0) {
        ctl_print_api_error(ctx, &e);
        ctl_atomic_abort(&file);
        return r;
    }
    r = ctl_atomic_commit(&file);
    if (r < 0)
        return ctl_fail(ctx, r, "cannot write %s: %s", out, strerror(-r));
    report_saved(ctx, rep, args, format, out, got.size, got.sha256);
    return 0;
}

static int write_json(CtlContext *ctx, const Report *rep, const CtlArgs *args, json_object *doc,
                      const char *out)
{
    const char *text = json_object_to_json_string_ext(
        doc, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE);
    _cleanup_free_ char *line = text ? cm_strdup_printf("%s\n", text) : NULL;
    CtlAtomicFile file = CTL_ATOMIC_FILE_INIT;
    char sha[CM_SHA256_HEX_LEN + 1];
    size_t len;
    int r;

    if (!line || cm_sha256_hex(line, strlen(line), sha) < 0)
        return ctl_fail(ctx, -ENOMEM, "out of memory");
    len = strlen(line);
    r = ctl_atomic_open(&file, out, 0666);
    if (r < 0)
        return ctl_fail(ctx, r, "cannot create a file next to %s: %s", out, strerror(-r));
    r = ctl_atomic_write(&file, line, len);
    if (r < 0) {
        ctl_atomic_abort(&file);
        return ctl_fail(ctx, r, "cannot write %s: %s", out, strerror(-r));
    }
    r = ctl_atomic_commit(&file);
    if (r < 0)
        return ctl_fail(ctx, r, "cannot write %s: %s", out, strerror(-r));
    report_saved(ctx, rep, args, "json", out, len, sha);
    return 0;
}

static int run_report(CtlContext *ctx, const CtlArgs *args, const Report *rep)
{
    const char *format = ctl_args_get(args, "format"), *lang = ctl_args_get(args, "lang");
    const char *out = ctl_args_get(args, "output");
    _cleanup_json_ json_object *doc = NULL;
    _cleanup_free_ char *path = NULL, *text = NULL;
    CtlLang l;
    int r;

    if (format && (r = ctl_check_choice(ctx, "--format", format, formats)) < 0)
        return r;
    if (lang && (r = ctl_check_choice(ctx, "--lang", lang, langs)) < 0)
        return r;
    if (out && strcmp(out, "-") == 0)
        out = NULL;
    if (out && !*out)
        return ctl_usage_error(ctx, "-o needs a file name (or - for stdout)");
    /* A file's format, when not given, follows its name; else JSON, the whole document. */
    if (!format && out)
        format = ctl_report_format_of_path(out) ? ctl_report_format_of_path(out) : "json";
    if (format && strcmp(format, "json") != 0)
        return fetch_rendered(ctx, rep, args, format, out);

    r = report_path(ctx, rep, args, "json", &path);
    if (r >= 0)
        r = ctl_call(ctx, "GET", path, NULL, &doc);
    if (r < 0)
        return r;
    if (out)
        return write_json(ctx, rep, args, doc, out);
    if (format || ctx->json)
        return ctl_print_json(ctx->out, doc);
    /* The default in the terminal: a summary in the broker's default language, Chinese. */
    l = lang && strcmp(lang, "en") == 0 ? CTL_LANG_EN : CTL_LANG_ZH;
    text = strcmp(rep->kind, "assessment") == 0        ? ctl_report_assessment_text(doc, l)
           : strcmp(rep->kind, "costs") == 0           ? ctl_report_costs_text(doc, l)
           : strcmp(rep->kind, "service-quality") == 0 ? ctl_report_service_quality_text(doc, l)
                                                       : ctl_report_operations_text(doc, l);
    if (!text)
        return ctl_fail(ctx, -ENOMEM, "out of memory");
    fputs(text, ctx->out);
    return 0;
}

static int cmd_assessment(CtlContext *ctx, const CtlArgs *args)
{
    static const Report rep = {"assessment", "year", "annual assessment"};
    return run_report(ctx, args, &rep);
}

static int cmd_operations(CtlContext *ctx, const CtlArgs *args)
{
    static const Report rep = {"operations", "month", "operations report"};
    return run_report(ctx, args, &rep);
}

static int cmd_costs(CtlContext *ctx, const CtlArgs *args)
{
    static const Report rep = {"costs", "month", "cost statement"};
    return run_report(ctx, args, &rep);
}

static int cmd_service_quality(CtlContext *ctx, const CtlArgs *args)
{
    static const Report rep = {"service-quality", "month", "service-quality scorecard"};
    return run_report(ctx, args, &rep);
}

#define REPORT_OPTIONS                                                                             \
    {"department", 0, "ID", CTL_OPT_VALUE,                                                         \
     "only this department (a department account always gets its own)"},                           \
        {"format", 0, "FORMAT", CTL_OPT_VALUE,                                                     \
         "json, csv or html, rendered by the broker (default: a summary in the terminal; "         \
         "with -o, from the file's name, else json)"},                                             \
        {"lang", 0, "LANG", CTL_OPT_VALUE,                                                         \
         "zh (default) or en: the HTML report's and the summary's language"},                      \
    {                                                                                              \
        "output", 'o', "FILE", CTL_OPT_VALUE,                                                      \
            "write the report to FILE, complete or not at all (default: stdout)"                   \
    }

static const CtlOption assessment_options[] = {
    {"year", 0, "YYYY", CTL_OPT_VALUE | CTL_OPT_REQUIRED, "the calendar year (UTC)"},
    REPORT_OPTIONS,
    {NULL},
};

static const CtlOption operations_options[] = {
    {"month", 0, "YYYY-MM", CTL_OPT_VALUE | CTL_OPT_REQUIRED, "the calendar month (UTC)"},
    REPORT_OPTIONS,
    {NULL},
};

static const CtlOption costs_options[] = {
    {"month", 0, "YYYY-MM", CTL_OPT_VALUE | CTL_OPT_REQUIRED, "the calendar month (UTC)"},
    REPORT_OPTIONS,
    {NULL},
};

static const CtlOption service_quality_options[] = {
    {"month", 0, "YYYY-MM", CTL_OPT_VALUE | CTL_OPT_REQUIRED, "the calendar month (UTC)"},
    {"format", 0, "FORMAT", CTL_OPT_VALUE,
     "json, csv or html, rendered by the broker (default: a summary in the terminal; with -o, "
     "from the file's name, else json)"},
    {"lang", 0, "LANG", CTL_OPT_VALUE,
     "zh (default) or en: the HTML report's and the summary's language"},
    {"output", 'o', "FILE", CTL_OPT_VALUE,
     "write the report to FILE, complete or not at all (default: stdout)"},
    {NULL},
};

const CtlCommand ctl_report_commands[] = {
    {
        .group = "report",
        .verb = "assessment",
        .handler = cmd_assessment,
        .help = "the annual assessment (Art. 9): scores and ranks of the departments",
        .options = assessment_options,
        .description =
            "Per department and for the city: the share of systems on the cloud, resource-use\n"
            "efficiency and security status, their scores, the ranking, and Art. 5's systems\n"
            "without budget (off the cloud or without a recent backup). JSON, CSV and HTML\n"
            "carry the same figures; the HTML page is self-contained and printable. Without\n"
            "--format and -o a summary is printed; --json prints the JSON document.",
        .example = "  cloudbrokerctl report assessment --year 2026\n"
                   "  cloudbrokerctl report assessment --year 2026 --format html -o report.html\n"
                   "  cloudbrokerctl report assessment --year 2026 --format csv > assessment.csv",
    },
    {
        .group = "report",
        .verb = "operations",
        .handler = cmd_operations,
        .help = "the monthly operations report (Art. 8): use, availability, findings, events",
        .options = operations_options,
        .description =
            "Per department: its production instances with their instance-hours and\n"
            "utilization, availability, the daily utilization, the live findings with their\n"
            "right-sizing, and the reconciler's events. Formats as for 'report assessment'.",
        .example = "  cloudbrokerctl report operations --month 2026-11 --lang en\n"
                   "  cloudbrokerctl report operations --month 2026-11 --department 2 -o nov.html",
    },
    {
        .group = "report",
        .verb = "costs",
        .handler = cmd_costs,
        .help = "the monthly cost statement: what each department's resources cost",
        .options = costs_options,
        .description =
            "Per department, system, allocation and instance: compute, memory and disk in\n"
            "yuan from the instances' recorded history and policies/pricing.json, a line for\n"
            "every stretch at one size and one price (docs/costs.md). The month under way is\n"
            "priced up to now. Formats as for 'report assessment'; the CSV's headers follow\n"
            "--lang as well.",
        .example = "  cloudbrokerctl report costs --month 2026-11\n"
                   "  cloudbrokerctl report costs --month 2026-11 --format csv -o costs.csv",
    },
    {
        .group = "report",
        .verb = "service-quality",
        .handler = cmd_service_quality,
        .help = "the vendor's monthly service-quality scorecard and the fee after deductions",
        .options = service_quality_options,
        .description =
            "Each indicator of policies/service-quality.json (availability, lead times,\n"
            "incidents, vulnerabilities) measured from what the broker recorded, met or\n"
            "missed, its evidence and deduction, and the month's service fee before and after\n"
            "the deductions (docs/service-quality.md). JSON, CSV or HTML; without --format and\n"
            "-o a summary is printed; --json prints the JSON document.",
        .example = "  cloudbrokerctl report service-quality --month 2026-11\n"
                   "  cloudbrokerctl report service-quality --month 2026-11 -o scorecard.html\n"
                   "  cloudbrokerctl report service-quality --month 2026-11 -o scorecard.csv",
    },
    {NULL},
};
