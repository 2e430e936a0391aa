/* SPDX-License-Identifier: Apache-2.0 */
/* Findings and their lifecycle (/v1/findings); the assessment run (/v1/assessment/run). */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "ctl-commands.h"
#include "ctl-figures.h"
#include "ctl-output.h"
#include "cm-json.h"
#include "cm-util.h"

static const char *const states[] = {
    "open", "acknowledged", "resolved", "dismissed", "live", NULL,
};
static const char *const kinds[] = {"idle", "over_provisioned", "under_provisioned", NULL};

static int finding_path(CtlContext *ctx, const char *id_s, const char *suffix, char **ret)
{
    int64_t id;
    int r = ctl_parse_id(ctx, "finding", id_s, &id);
    if (r < 0)
        return r;
    *ret = ctl_path("/v1/findings/%" PRId64 "%s", id, suffix);
    return *ret ? 0 : ctl_fail(ctx, -ENOMEM, "out of memory");
}

static bool is_idle(json_object *f)
{
    return strcmp(cm_json_get_str(f, "kind", ""), "idle") == 0;
}

/* What the recommendation comes to: "terminate" for an idle instance, else the new size. */
static char *recommended_text(json_object *f)
{
    json_object *rec = cm_json_get(f, "recommendation");
    if (strcmp(cm_json_get_str(rec, "action", ""), "terminate") == 0)
        return strdup("terminate");
    return ctl_figure_size(cm_json_get(rec, "recommended"));
}

static int cmd_list(CtlContext *ctx, const CtlArgs *args)
{
    static const CtlColumn cols[] = {
        {"ID", CTL_ALIGN_RIGHT},          {"KIND", CTL_ALIGN_LEFT},
        {"STATE", CTL_ALIGN_LEFT},        {"DEPARTMENT", CTL_ALIGN_LEFT},
        {"SYSTEM", CTL_ALIGN_LEFT},       {"ALLOCATION", CTL_ALIGN_RIGHT},
        {"INSTANCE", CTL_ALIGN_LEFT},     {"CURRENT", CTL_ALIGN_RIGHT},
        {"RECOMMENDED", CTL_ALIGN_RIGHT}, {"FREES", CTL_ALIGN_RIGHT},
        {"LAST_FOUND", CTL_ALIGN_LEFT},   {"REQUEST", CTL_ALIGN_RIGHT},
    };
    _cleanup_(ctl_table_freep) CtlTable *t = NULL;
    _cleanup_json_ json_object *doc = NULL;
    static const CtlFilter filters[] = {
        {"state", .choices = states},
        {"kind", .choices = kinds},
        {"department", .id_of = "department"},
        {"allocation", .id_of = "allocation"},
    };
    json_object *items, *next;
    size_t n;
    int r = ctl_fetch_filtered(ctx, "/v1/findings", filters, ELEMENTSOF(filters), args, &doc);

    if (r < 0)
        return r;
    if (ctl_emit_json(ctx, doc))
        return 0;
    items = cm_json_get(doc, "items");
    next = cm_json_get(doc, "next");
    n = items ? json_object_array_length(items) : 0;
    if (n == 0)
        fputs("(none)\n", ctx->out);
    else if (!(t = ctl_table_new(cols, ELEMENTSOF(cols))))
        return ctl_fail(ctx, -ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        json_object *f = json_object_array_get_idx(items, i);
        char *cells[ELEMENTSOF(cols)] = {
            ctl_json_text(cm_json_get(f, "id")),
            ctl_json_text(cm_json_get(f, "kind")),
            ctl_json_text(cm_json_get(f, "state")),
            ctl_json_cell(f, "department_id+department_name"),
            ctl_json_cell(f, "system_id+system_name"),
            ctl_json_text(cm_json_get(f, "allocation_id")),
            ctl_json_text(cm_json_get(f, "instance")),
            ctl_figure_size(ctl_json_path(f, "recommendation.current")),
            recommended_text(f),
            ctl_figure_size(cm_json_get(f, "frees")),
            ctl_json_text(cm_json_get(f, "last_found")),
            ctl_json_text(cm_json_get(f, "change_request_id")),
        };
        r = 0;
        for (size_t k = 0; k < ELEMENTSOF(cols); k++)
            if (!cells[k])
                r = -ENOMEM;
        if (r >= 0)
            r = ctl_table_add_row(t, (const char *const *)cells, ELEMENTSOF(cols));
        for (size_t k = 0; k < ELEMENTSOF(cols); k++)
            free(cells[k]);
        if (r < 0)
            return ctl_fail(ctx, r, "out of memory");
    }
    if (t) {
        ctl_table_print(t, ctx->out, 0);
        fputs("(CURRENT, RECOMMENDED, FREES: vCPUs/memory MiB)\n", ctx->out);
    }
    if (next)
        fprintf(ctx->out, "(more entries: add --after %" PRId64 ")\n", json_object_get_int64(next));
    return 0;
}

static void print_evidence(CtlContext *ctx, json_object *ev)
{
    const int w = 12;
    json_object *win = cm_json_get(ev, "window"), *cpu = cm_json_get(ev, "cpu");
    json_object *mem = cm_json_get(ev, "memory");
    _cleanup_free_ char *from = ctl_text_sanitize(cm_json_get_str(win, "from", "?"), true);
    _cleanup_free_ char *to = ctl_text_sanitize(cm_json_get_str(win, "to", "?"), true);
    _cleanup_free_ char *cov = ctl_figure_percent(cm_json_get(ev, "coverage"));
    _cleanup_free_ char *c_avg = ctl_figure_number(cm_json_get(cpu, "avg_cores"), 3);
    _cleanup_free_ char *c_p95 = ctl_figure_number(cm_json_get(cpu, "p95_cores"), 3);
    _cleanup_free_ char *c_max = ctl_figure_number(cm_json_get(cpu, "max_cores"), 3);
    _cleanup_free_ char *c_util = ctl_figure_percent(cm_json_get(cpu, "p95_utilization"));
    _cleanup_free_ char *m_avg = ctl_figure_number(cm_json_get(mem, "avg_mib"), 0);
    _cleanup_free_ char *m_p95 = ctl_figure_number(cm_json_get(mem, "p95_mib"), 0);
    _cleanup_free_ char *m_max = ctl_figure_number(cm_json_get(mem, "max_mib"), 0);
    _cleanup_free_ char *m_util = ctl_figure_percent(cm_json_get(mem, "p95_utilization"));
    _cleanup_free_ char *window = NULL, *coverage = NULL, *cpu_line = NULL, *mem_line = NULL;

    if (!json_object_is_type(ev, json_type_object))
        return;
    window = cm_strdup_printf("%s to %s (%.1f days)", from ? from : "?", to ? to : "?",
                              (double)cm_json_get_int(win, "seconds", 0) / 86400.0);
    coverage = cm_strdup_printf("%s (%" PRId64 " windows: %" PRId64
                                " whole day%s from the daily rollups, %" PRId64 " sample windows)",
                                cov ? cov : "?", cm_json_get_int(ev, "windows", 0),
                                cm_json_get_int(ev, "rollup_days", 0),
                                cm_json_get_int(ev, "rollup_days", 0) == 1 ? "" : "s",
                                cm_json_get_int(ev, "sample_windows", 0));
    cpu_line =
        cm_strdup_printf("avg %s, p95 %s (%s of the vCPUs), max %s cores", c_avg ? c_avg : "?",
                         c_p95 ? c_p95 : "?", c_util ? c_util : "?", c_max ? c_max : "?");
    mem_line =
        cm_strdup_printf("avg %s, p95 %s (%s of the memory), max %s MiB used", m_avg ? m_avg : "?",
                         m_p95 ? m_p95 : "?", m_util ? m_util : "?", m_max ? m_max : "?");
    fputs("\nEvidence:\n", ctx->out);
    ctl_print_field(ctx->out, 2, w, "Window", window);
    ctl_print_field(ctx->out, 2, w, "Coverage", coverage);
    ctl_print_field(ctx->out, 2, w, "CPU", cpu_line);
    ctl_print_field(ctx->out, 2, w, "Memory", mem_line);
    if (cm_json_get(ev, "idle_share")) {
        _cleanup_free_ char *share = ctl_figure_percent(cm_json_get(ev, "idle_share"));
        _cleanup_free_ char *idle =
            cm_strdup_printf("%" PRId64 " of %" PRId64 " windows under the idle thresholds (%s)",
                             cm_json_get_int(ev, "idle_windows", 0),
                             cm_json_get_int(ev, "checked_windows", 0), share ? share : "?");
        ctl_print_field(ctx->out, 2, w, "Idle", idle);
    }
    ctl_print_json_field(ctx->out, 2, w, "Percentiles", cm_json_get(ev, "percentile_resolution"));
}

static void print_recommendation(CtlContext *ctx, json_object *f)
{
    const int w = 12;
    json_object *rec = cm_json_get(f, "recommendation");
    _cleanup_free_ char *cur = ctl_figure_size(cm_json_get(rec, "current"));
    _cleanup_free_ char *frees = ctl_figure_size(cm_json_get(f, "frees"));
    _cleanup_free_ char *to = recommended_text(f);
    _cleanup_free_ char *head = NULL, *size = NULL;

    if (!json_object_is_type(rec, json_type_object))
        return;
    head = cm_strdup_printf("%s (mode %s, headroom %.0f%%)", cm_json_get_str(rec, "action", "?"),
                            cm_json_get_str(rec, "mode", "?"),
                            cm_json_get_double(rec, "headroom", 0) * 100.0);
    if (is_idle(f))
        size = cm_strdup_printf("%s now; terminating frees %s (vCPUs/memory MiB)", cur ? cur : "?",
                                frees ? frees : "?");
    else
        size = cm_strdup_printf("%s -> %s, frees %s (vCPUs/memory MiB)", cur ? cur : "?",
                                to ? to : "?", frees ? frees : "?");
    fputs("\nRecommendation:\n", ctx->out);
    ctl_print_field(ctx->out, 2, w, "Action", head);
    ctl_print_field(ctx->out, 2, w, "Size", size);
}

static void print_finding(CtlContext *ctx, json_object *f)
{
    const int w = 14;
    _cleanup_free_ char *inst = ctl_text_sanitize(cm_json_get_str(f, "instance", "?"), true);
    _cleanup_free_ char *where = cm_strdup_printf(
        "%s (instance %" PRId64 ", allocation %" PRId64 ")", inst ? inst : "?",
        cm_json_get_int(f, "instance_id", 0), cm_json_get_int(f, "allocation_id", 0));
    _cleanup_free_ char *dept = ctl_json_cell(f, "department_id+department_name");
    _cleanup_free_ char *system = ctl_json_cell(f, "system_id+system_name");

    fprintf(ctx->out, "Finding %" PRId64 " (%s): %s\n", cm_json_get_int(f, "id", 0),
            cm_json_get_str(f, "kind", "?"), cm_json_get_str(f, "state", "?"));
    ctl_print_field(ctx->out, 2, w, "Instance", where);
    ctl_print_field(ctx->out, 2, w, "Department", dept);
    ctl_print_field(ctx->out, 2, w, "System", system);
    ctl_print_json_field(ctx->out, 2, w, "Rule", cm_json_get(f, "rule"));
    ctl_print_json_field(ctx->out, 2, w, "First found", cm_json_get(f, "first_found"));
    ctl_print_json_field(ctx->out, 2, w, "Last found", cm_json_get(f, "last_found"));
    ctl_print_json_field(ctx->out, 2, w, "State changed", cm_json_get(f, "state_changed_at"));
    if (cm_json_get(f, "reason"))
        ctl_print_json_field(ctx->out, 2, w, "Reason", cm_json_get(f, "reason"));
    ctl_print_json_field(ctx->out, 2, w, "Request", cm_json_get(f, "change_request_id"));
    print_evidence(ctx, cm_json_get(f, "evidence"));
    print_recommendation(ctx, f);
}

static int cmd_show(CtlContext *ctx, const CtlArgs *args)
{
    _cleanup_json_ json_object *o = NULL;
    _cleanup_free_ char *path = NULL;
    int r;

    r = finding_path(ctx, args->pos[0], "", &path);
    if (r >= 0)
        r = ctl_call(ctx, "GET", path, NULL, &o);
    if (r < 0)
        return r;
    if (ctl_emit_json(ctx, o))
        return 0;
    print_finding(ctx, o);
    if (strcmp(cm_json_get_str(o, "state", ""), "open") == 0 ||
        strcmp(cm_json_get_str(o, "state", ""), "acknowledged") == 0) {
        if (!cm_json_get(o, "change_request_id") ||
            json_object_is_type(cm_json_get(o, "change_request_id"), json_type_null))
            fprintf(ctx->out,
                    "\nThe department can draft the %s request for it with: %s finding "
                    "change-request %" PRId64 "\n",
                    is_idle(o) ? "termination" : "change", CTL_PROGRAM,
                    cm_json_get_int(o, "id", 0));
    }
    return 0;
}

/* acknowledge, resolve and dismiss: the finding after the move. */
static int move(CtlContext *ctx, const CtlArgs *args, const char *verb, const char *done)
{
    _cleanup_json_ json_object *body = json_object_new_object(), *o = NULL;
    _cleanup_free_ char *path = NULL, *suffix = ctl_path("/%s", verb), *inst = NULL;
    const char *comment = ctl_args_get(args, "comment");
    int r;

    if (!suffix || !body)
        return ctl_fail(ctx, -ENOMEM, "out of memory");
    if (comment && !*comment)
        return ctl_usage_error(ctx, "--comment must not be empty");
    r = finding_path(ctx, args->pos[0], suffix, &path);
    if (r < 0)
        return r;
    /* The API calls it the finding's reason; the CLI's free text is --comment everywhere. */
    if (comment)
        json_object_object_add(body, "reason", json_object_new_string(comment));
    r = ctl_call(ctx, "POST", path, body, &o);
    if (r < 0)
        return r;
    if (ctl_emit_json(ctx, o))
        return 0;
    inst = ctl_text_sanitize(cm_json_get_str(o, "instance", "?"), true);
    fprintf(ctx->out, "Finding %" PRId64 " (%s of %s) %s.\n", cm_json_get_int(o, "id", 0),
            cm_json_get_str(o, "kind", "?"), inst ? inst : "?", done);
    return 0;
}

static int cmd_acknowledge(CtlContext *ctx, const CtlArgs *args)
{
    return move(ctx, args, "acknowledge", "acknowledged");
}

static int cmd_resolve(CtlContext *ctx, const CtlArgs *args)
{
    return move(ctx, args, "resolve", "resolved");
}

static int cmd_dismiss(CtlContext *ctx, const CtlArgs *args)
{
    return move(ctx, args, "dismiss", "dismissed: it will not be raised again");
}

static int cmd_change_request(CtlContext *ctx, const CtlArgs *args)
{
    _cleanup_json_ json_object *o = NULL;
    _cleanup_free_ char *path = NULL;
    int64_t req;
    int r;

    r = finding_path(ctx, args->pos[0], "/change-request", &path);
    if (r >= 0)
        r = ctl_call(ctx, "POST", path, NULL, &o);
    if (r < 0)
        return r;
    if (ctl_emit_json(ctx, o))
        return 0;
    req = cm_json_get_int(o, "request_id", 0);
    fprintf(ctx->out,
            "Draft request %" PRId64 " made from finding %" PRId64 ".\n"
            "Review it with:  %s request show %" PRId64 "\n"
            "Submit it with:  %s request submit %" PRId64 "\n",
            req, cm_json_get_int(o, "finding_id", 0), CTL_PROGRAM, req, CTL_PROGRAM, req);
    return 0;
}

static int cmd_run(CtlContext *ctx, const CtlArgs *args)
{
    static const struct {
        const char *key, *label;
    } rows[] = {
        {"created", "findings created"},
        {"updated", "findings updated"},
        {"resolved", "findings resolved"},
        {"insufficient_evidence", "not judged: too little coverage"},
        {"too_young", "not judged: too young"},
    };
    _cleanup_json_ json_object *o = NULL;
    int r;

    r = ctl_call(ctx, "POST", "/v1/assessment/run", NULL, &o);
    if (r < 0)
        return r;
    if (ctl_emit_json(ctx, o))
        return 0;
    fprintf(ctx->out,
            "Assessment run done in %.2f s over %" PRId64 " live production instance%s:\n",
            cm_json_get_double(o, "seconds", 0), cm_json_get_int(o, "instances", 0),
            cm_json_get_int(o, "instances", 0) == 1 ? "" : "s");
    for (size_t i = 0; i < ELEMENTSOF(rows); i++) {
        _cleanup_free_ char *v = ctl_json_text(cm_json_get(o, rows[i].key));
        ctl_print_field(ctx->out, 2, 31, rows[i].label, v);
    }
    fprintf(ctx->out, "List the live findings with: %s finding list --state live\n", CTL_PROGRAM);
    return 0;
}

static const CtlOption list_options[] = {
    {"state", 0, "STATE", CTL_OPT_VALUE,
     "open, acknowledged, resolved, dismissed, or live (open and acknowledged)"},
    {"kind", 0, "KIND", CTL_OPT_VALUE, "idle, over_provisioned or under_provisioned"},
    {"department", 0, "ID", CTL_OPT_VALUE, "only this department's findings"},
    {"allocation", 0, "ID", CTL_OPT_VALUE, "only the findings of this allocation"},
    CTL_LIST_OPTIONS,
    {NULL},
};

static const CtlOption comment_options[] = {
    {"comment", 0, "TEXT", CTL_OPT_VALUE, "why; kept as the finding's reason"},
    {NULL},
};

static const CtlOption dismiss_options[] = {
    {"comment", 0, "TEXT", CTL_OPT_VALUE | CTL_OPT_REQUIRED,
     "why the finding does not apply; kept as its reason"},
    {NULL},
};

#define FINDING_ID .args = "ID", .min_args = 1, .max_args = 1

const CtlCommand ctl_finding_commands[] = {
    {
        .group = "finding",
        .verb = "list",
        .handler = cmd_list,
        .help = "list findings: idle, over- and under-provisioned instances",
        .options = list_options,
        .description =
            "A department sees its own findings. Each finding recommends a size (or, for\n"
            "an idle instance, termination) and says what that frees.",
        .example = "  cloudbrokerctl finding list --state live\n"
                   "  cloudbrokerctl finding list --kind idle --department 2",
    },
    {
        .group = "finding",
        .verb = "show",
        .handler = cmd_show,
        .help = "show a finding: its evidence, rule and recommendation",
        FINDING_ID,
        .example = "  cloudbrokerctl finding show 3",
    },
    {
        .group = "finding",
        .verb = "acknowledge",
        .handler = cmd_acknowledge,
        .help = "acknowledge an open finding (department, reviewer)",
        FINDING_ID,
        .options = comment_options,
        .example = "  cloudbrokerctl finding acknowledge 3 --comment 'resizing in the next window'",
    },
    {
        .group = "finding",
        .verb = "resolve",
        .handler = cmd_resolve,
        .help = "mark an open or acknowledged finding resolved (department, reviewer)",
        FINDING_ID,
        .options = comment_options,
        .description = "A later assessment run that finds the condition again opens a new finding.",
        .example = "  cloudbrokerctl finding resolve 3 --comment 'resized by request 12'",
    },
    {
        .group = "finding",
        .verb = "dismiss",
        .handler = cmd_dismiss,
        .help = "dismiss a finding that does not apply (reviewer)",
        FINDING_ID,
        .options = dismiss_options,
        .description = "A dismissed condition is never raised again for that instance.",
        .example = "  cloudbrokerctl finding dismiss 3 --comment 'standby for the disaster "
                   "recovery drill'",
    },
    {
        .group = "finding",
        .verb = "change-request",
        .handler = cmd_change_request,
        .help = "draft the request a finding recommends (department)",
        FINDING_ID,
        .description =
            "For an idle instance a termination request of its allocation; otherwise a change\n"
            "request with every instance of the allocation as it is and this one at the\n"
            "recommended size. The request stays a draft until the department submits it;\n"
            "a finding gets one request only.",
        .example = "  cloudbrokerctl finding change-request 3\n"
                   "  cloudbrokerctl request submit 12",
    },
    {NULL},
};

const CtlCommand ctl_assessment_commands[] = {
    {
        .group = "assessment",
        .verb = "run",
        .handler = cmd_run,
        .help = "judge every live production instance now and record findings (reviewer, vendor)",
        .description =
            "The broker runs the assessment by itself every run interval of the assessment\n"
            "policy. An instance younger than the policy's minimum age, or with too little\n"
            "coverage, is not judged; a condition that no longer holds resolves its finding.",
        .example = "  cloudbrokerctl assessment run\n"
                   "  cloudbrokerctl finding list --state live",
    },
    {NULL},
};
