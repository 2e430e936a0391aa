/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Metering read back: /v1/instances/{id}/usage and /v1/allocations/{id}/usage; and the daily
 * rollups recomputed on demand: POST /v1/metering/rollup.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl-commands.h"
#include "ctl-figures.h"
#include "ctl-output.h"
#include "ctl-time.h"
#include "cm-json.h"
#include "cm-util.h"

/* A usage error for a parser's @msg, or out of memory. */
static int parse_failed(CtlContext *ctx, int r, const char *msg)
{
    if (r == -ENOMEM)
        return ctl_fail(ctx, r, "out of memory");
    return ctl_usage_error(ctx, "%s", msg);
}

/* ?from=&to= (and ?step= when @with_step) from the options, in seconds. */
static int range_query(CtlContext *ctx, const CtlArgs *args, bool with_step, CtlQuery *q)
{
    const char *from_s = ctl_args_get(args, "from"), *to_s = ctl_args_get(args, "to");
    const char *step_s = with_step ? ctl_args_get(args, "step") : NULL;
    int64_t now = (int64_t)time(NULL), from = 0, to = 0, step = 0;
    _cleanup_free_ char *msg = NULL;
    int r;

    if (from_s && (r = ctl_time_parse_point("--from", from_s, now, &from, &msg)) < 0)
        return parse_failed(ctx, r, msg);
    if (to_s && (r = ctl_time_parse_point("--to", to_s, now, &to, &msg)) < 0)
        return parse_failed(ctx, r, msg);
    if (step_s && (r = ctl_time_parse_duration("--step", step_s, CTL_STEP_MIN, CTL_STEP_MAX, &step,
                                               &msg)) < 0)
        return parse_failed(ctx, r, msg);
    /* The broker's default range is the 24 hours before --to (or now). */
    if (from_s && to_s && from >= to)
        return ctl_usage_error(ctx, "--from must be before --to");
    if (from_s)
        ctl_query_add_int(q, "from", from);
    if (to_s)
        ctl_query_add_int(q, "to", to);
    if (step_s)
        ctl_query_add_int(q, "step", step);
    return 0;
}

/* GET /v1/<what>s/ID/usage with the range options. */
static int fetch_usage(CtlContext *ctx, const CtlArgs *args, const char *what, bool with_step,
                       json_object **ret)
{
    _cleanup_free_ char *path = NULL;
    CtlQuery q = {0};
    int64_t id;
    int r;

    r = ctl_parse_id(ctx, what, args->pos[0], &id);
    if (r >= 0)
        r = range_query(ctx, args, with_step, &q);
    if (r >= 0) {
        path =
            q.oom ? NULL : ctl_path("/v1/%ss/%" PRId64 "/usage%s", what, id, q.text ? q.text : "");
        r = path ? ctl_call(ctx, "GET", path, NULL, ret) : ctl_fail(ctx, -ENOMEM, "out of memory");
    }
    ctl_query_clear(&q);
    return r;
}

static void print_range(CtlContext *ctx, json_object *doc)
{
    _cleanup_free_ char *from = ctl_text_sanitize(cm_json_get_str(doc, "from", "?"), true);
    _cleanup_free_ char *to = ctl_text_sanitize(cm_json_get_str(doc, "to", "?"), true);
    fprintf(ctx->out, "from %s to %s", from ? from : "?", to ? to : "?");
}

static int cmd_instance(CtlContext *ctx, const CtlArgs *args)
{
    static const CtlColumn base_cols[] = {
        {"START", CTL_ALIGN_LEFT},         {"COVERAGE", CTL_ALIGN_RIGHT},
        {"VCPUS", CTL_ALIGN_RIGHT},        {"CPU_AVG", CTL_ALIGN_RIGHT},
        {"CPU_MAX", CTL_ALIGN_RIGHT},      {"CPU_P95", CTL_ALIGN_RIGHT},
        {"CPU_UTIL", CTL_ALIGN_RIGHT},     {"MEMORY_MIB", CTL_ALIGN_RIGHT},
        {"MEM_USED_AVG", CTL_ALIGN_RIGHT}, {"MEM_USED_MAX", CTL_ALIGN_RIGHT},
        {"MEM_UTIL", CTL_ALIGN_RIGHT},     {"NET_RX", CTL_ALIGN_RIGHT},
        {"NET_TX", CTL_ALIGN_RIGHT},       {"DISK_READ", CTL_ALIGN_RIGHT},
        {"DISK_WRITE", CTL_ALIGN_RIGHT},
    };
    enum { P95_COLUMN = 5, N_COLS = ELEMENTSOF(base_cols) };
    _cleanup_json_ json_object *doc = NULL;
    _cleanup_(ctl_table_freep) CtlTable *t = NULL;
    CtlColumn cols[N_COLS];
    json_object *points;
    bool daily;
    size_t n, nc = 0;
    int r;

    r = fetch_usage(ctx, args, "instance", true, &doc);
    if (r < 0)
        return r;
    if (ctl_emit_json(ctx, doc))
        return 0;
    points = cm_json_get(doc, "points");
    n = json_object_is_type(points, json_type_array) ? json_object_array_length(points) : 0;
    /* Only points made of daily rollups carry a p95. */
    daily = strcmp(cm_json_get_str(doc, "source", ""), "daily rollups") == 0;
    for (size_t c = 0; c < N_COLS; c++)
        if (c != P95_COLUMN || daily)
            cols[nc++] = base_cols[c];

    fprintf(ctx->out, "Instance %" PRId64 ", ", cm_json_get_int(doc, "instance_id", 0));
    print_range(ctx, doc);
    fprintf(ctx->out, ", a point every %" PRId64 " s from the %s:\n",
            cm_json_get_int(doc, "step", 0), cm_json_get_str(doc, "source", "?"));
    if (n == 0) {
        fputs("(no windows in this range: nothing was measured, or the agent has not sent them "
              "yet)\n",
              ctx->out);
        return 0;
    }
    t = ctl_table_new(cols, nc);
    if (!t)
        return ctl_fail(ctx, -ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        json_object *p = json_object_array_get_idx(points, i);
        char *cells[N_COLS] = {
            ctl_json_text(cm_json_get(p, "start")),
            ctl_figure_percent(cm_json_get(p, "coverage")),
            ctl_json_text(cm_json_get(p, "vcpus")),
            ctl_figure_number(cm_json_get(p, "cpu_cores_avg"), 3),
            ctl_figure_number(cm_json_get(p, "cpu_cores_max"), 3),
            ctl_figure_number(cm_json_get(p, "cpu_cores_p95"), 3),
            ctl_figure_percent(cm_json_get(p, "cpu_utilization_avg")),
            ctl_json_text(cm_json_get(p, "memory_mib")),
            ctl_figure_number(cm_json_get(p, "memory_used_mib_avg"), 0),
            ctl_figure_number(cm_json_get(p, "memory_used_mib_max"), 0),
            ctl_figure_percent(cm_json_get(p, "memory_utilization_avg")),
            ctl_figure_bytes(cm_json_get(p, "net_rx_bytes")),
            ctl_figure_bytes(cm_json_get(p, "net_tx_bytes")),
            ctl_figure_bytes(cm_json_get(p, "disk_read_bytes")),
            ctl_figure_bytes(cm_json_get(p, "disk_write_bytes")),
        };
        char *row[N_COLS];
        size_t k = 0;
        r = 0;
        for (size_t c = 0; c < N_COLS; c++) {
            if (!cells[c])
                r = -ENOMEM;
            if (c != P95_COLUMN || daily)
                row[k++] = cells[c];
        }
        if (r >= 0)
            r = ctl_table_add_row(t, (const char *const *)row, nc);
        for (size_t c = 0; c < N_COLS; c++)
            free(cells[c]);
        if (r < 0)
            return ctl_fail(ctx, r, "out of memory");
    }
    ctl_table_print(t, ctx->out, 0);
    fputs("(CPU in cores, memory in MiB; COVERAGE: the readings that arrived of those expected)\n",
          ctx->out);
    return 0;
}

static int cmd_allocation(CtlContext *ctx, const CtlArgs *args)
{
    static const CtlColumn cols[] = {
        {"INSTANCE", CTL_ALIGN_RIGHT},     {"NAME", CTL_ALIGN_LEFT},
        {"WINDOWS", CTL_ALIGN_RIGHT},      {"COVERAGE", CTL_ALIGN_RIGHT},
        {"VCPUS", CTL_ALIGN_RIGHT},        {"MEMORY_MIB", CTL_ALIGN_RIGHT},
        {"CPU_AVG", CTL_ALIGN_RIGHT},      {"CPU_P95", CTL_ALIGN_RIGHT},
        {"CPU_MAX", CTL_ALIGN_RIGHT},      {"MEM_USED_AVG", CTL_ALIGN_RIGHT},
        {"MEM_USED_P95", CTL_ALIGN_RIGHT}, {"MEM_USED_MAX", CTL_ALIGN_RIGHT},
        {"NET_RX", CTL_ALIGN_RIGHT},       {"NET_TX", CTL_ALIGN_RIGHT},
    };
    _cleanup_json_ json_object *doc = NULL;
    _cleanup_(ctl_table_freep) CtlTable *t = NULL;
    json_object *list;
    size_t n;
    int r;

    r = fetch_usage(ctx, args, "allocation", false, &doc);
    if (r < 0)
        return r;
    if (ctl_emit_json(ctx, doc))
        return 0;
    list = cm_json_get(doc, "instances");
    n = json_object_is_type(list, json_type_array) ? json_object_array_length(list) : 0;
    fprintf(ctx->out, "Allocation %" PRId64 ", ", cm_json_get_int(doc, "allocation_id", 0));
    print_range(ctx, doc);
    fputs(", from the 5-minute samples:\n", ctx->out);
    if (n == 0) {
        fputs("(the allocation has no instances)\n", ctx->out);
        return 0;
    }
    t = ctl_table_new(cols, ELEMENTSOF(cols));
    if (!t)
        return ctl_fail(ctx, -ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        json_object *x = json_object_array_get_idx(list, i);
        char *cells[ELEMENTSOF(cols)] = {
            ctl_json_text(cm_json_get(x, "instance_id")),
            ctl_json_text(cm_json_get(x, "name")),
            ctl_json_text(cm_json_get(x, "windows")),
            ctl_figure_percent(cm_json_get(x, "coverage")),
            ctl_json_text(cm_json_get(x, "vcpus")),
            ctl_json_text(cm_json_get(x, "memory_mib")),
            ctl_figure_number(cm_json_get(x, "cpu_cores_avg"), 3),
            ctl_figure_number(cm_json_get(x, "cpu_cores_p95"), 3),
            ctl_figure_number(cm_json_get(x, "cpu_cores_max"), 3),
            ctl_figure_number(cm_json_get(x, "memory_used_mib_avg"), 0),
            ctl_figure_number(cm_json_get(x, "memory_used_mib_p95"), 0),
            ctl_figure_number(cm_json_get(x, "memory_used_mib_max"), 0),
            ctl_figure_bytes(cm_json_get(x, "net_rx_bytes")),
            ctl_figure_bytes(cm_json_get(x, "net_tx_bytes")),
        };
        r = 0;
        for (size_t c = 0; c < ELEMENTSOF(cols); c++)
            if (!cells[c])
                r = -ENOMEM;
        if (r >= 0)
            r = ctl_table_add_row(t, (const char *const *)cells, ELEMENTSOF(cols));
        for (size_t c = 0; c < ELEMENTSOF(cols); c++)
            free(cells[c]);
        if (r < 0)
            return ctl_fail(ctx, r, "out of memory");
    }
    ctl_table_print(t, ctx->out, 0);
    fputs("(CPU in cores, memory in MiB; p95: of the 5-minute windows' averages)\n", ctx->out);
    return 0;
}

static int cmd_rollup(CtlContext *ctx, const CtlArgs *args)
{
    _cleanup_json_ json_object *body = json_object_new_object(), *o = NULL;
    const char *day_s = ctl_args_get(args, "day");
    _cleanup_free_ char *msg = NULL;
    char day[CTL_DAY_LEN + 1];
    int r;

    r = ctl_time_parse_day("--day", day_s ? day_s : "today", (int64_t)time(NULL), day, &msg);
    if (r < 0)
        return parse_failed(ctx, r, msg);
    json_object_object_add(body, "day", json_object_new_string(day));
    r = ctl_call(ctx, "POST", "/v1/metering/rollup", body, &o);
    if (r < 0)
        return r;
    if (ctl_emit_json(ctx, o))
        return 0;
    fprintf(ctx->out, "Rolled up %s (UTC): %" PRId64 " instance%s with samples that day.\n", day,
            cm_json_get_int(o, "instances", 0), cm_json_get_int(o, "instances", 0) == 1 ? "" : "s");
    return 0;
}

#define RANGE_OPTIONS                                                                              \
    {"from", 0, "TIME", CTL_OPT_VALUE,                                                             \
     "start: ISO 8601 (2026-11-27, 2026-11-27T08:00:00Z), epoch seconds, now, or -2h, -7d "        \
     "(default: 24 hours before --to)"},                                                           \
    {                                                                                              \
        "to", 0, "TIME", CTL_OPT_VALUE, "end, excluded, in the same forms (default: now)"          \
    }

static const CtlOption instance_options[] = {
    RANGE_OPTIONS,
    {"step", 0, "DURATION", CTL_OPT_VALUE,
     "one point per DURATION: seconds, or 5m, 1h, 1d, 1w (10 s to 366 d; default 300); a day "
     "or more reads the daily rollups"},
    {NULL},
};

static const CtlOption allocation_options[] = {
    RANGE_OPTIONS,
    {NULL},
};

static const CtlOption rollup_options[] = {
    {"day", 0, "DAY", CTL_OPT_VALUE, "the UTC day YYYY-MM-DD, today or yesterday (default today)"},
    {NULL},
};

const CtlCommand ctl_usage_commands[] = {
    {
        .group = "usage",
        .verb = "instance",
        .handler = cmd_instance,
        .help = "an instance's measured use over time: CPU, memory, disk, network",
        .args = "ID",
        .min_args = 1,
        .max_args = 1,
        .options = instance_options,
        .description =
            "Groups the 5-minute windows the host's agent sent into one point per --step; with\n"
            "a step of a day or more the points come from the daily rollups (kept for ever,\n"
            "while samples are kept for the metering policy's retention) and add the p95.\n"
            "A step without windows has no point: gaps are shown as they are, never filled.\n"
            "A department sees its own instances only.",
        .example = "  cloudbrokerctl usage instance 4 --from -6h --step 1h\n"
                   "  cloudbrokerctl usage instance 4 --from 2026-11-01 --to 2026-12-01 --step 1d",
    },
    {
        .group = "usage",
        .verb = "allocation",
        .handler = cmd_allocation,
        .help = "per instance of an allocation: coverage, CPU and memory avg/p95/max",
        .args = "ID",
        .min_args = 1,
        .max_args = 1,
        .options = allocation_options,
        .description = "Computed from the 5-minute samples of the range, so the range must lie "
                       "within the\nsample retention (35 days by default).",
        .example = "  cloudbrokerctl usage allocation 2 --from -7d",
    },
    {NULL},
};

const CtlCommand ctl_metering_commands[] = {
    {
        .group = "metering",
        .verb = "rollup",
        .handler = cmd_rollup,
        .help = "recompute the daily rollups of one UTC day now (vendor, admin)",
        .options = rollup_options,
        .description =
            "The broker recomputes yesterday and today by itself every rollup interval; this is\n"
            "for an older day whose windows arrived late (a host that was cut off for days).\n"
            "The day's rollups are replaced; the call is audited as metering.rollup.",
        .example = "  cloudbrokerctl metering rollup --day 2026-11-27\n"
                   "  cloudbrokerctl metering rollup --day yesterday",
    },
    {NULL},
};
