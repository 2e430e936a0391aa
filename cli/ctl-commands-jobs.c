/* SPDX-License-Identifier: Apache-2.0 */
/* Jobs (/v1/jobs): hypervisor work and its steps; the reconciler's events (/v1/events). */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl-commands.h"
#include "ctl-job.h"
#include "ctl-output.h"
#include "ctl-values.h"
#include "cm-json.h"
#include "cm-util.h"

static const char *const job_states[] = {"queued", "running", "done", "error", NULL};
static const char *const event_kinds[] = {"instance_missing", "instance_state", "unowned_domain",
                                          NULL};

#define WATCH_INTERVAL_DEFAULT 1.0

static int job_path(CtlContext *ctx, const char *id_s, char **ret)
{
    int64_t id;
    int r = ctl_parse_id(ctx, "job", id_s, &id);
    if (r < 0)
        return r;
    *ret = ctl_path("/v1/jobs/%" PRId64, id);
    return *ret ? 0 : ctl_fail(ctx, -ENOMEM, "out of memory");
}

static int cmd_list(CtlContext *ctx, const CtlArgs *args)
{
    static const CtlColumn cols[] = {
        {"ID", CTL_ALIGN_RIGHT},      {"KIND", CTL_ALIGN_LEFT},        {"STATE", CTL_ALIGN_LEFT},
        {"REQUEST", CTL_ALIGN_RIGHT}, {"ALLOCATION", CTL_ALIGN_RIGHT}, {"SYSTEM", CTL_ALIGN_LEFT},
        {"STEPS", CTL_ALIGN_RIGHT},   {"CREATED", CTL_ALIGN_LEFT},     {"FINISHED", CTL_ALIGN_LEFT},
        {"ERROR", CTL_ALIGN_LEFT},
    };
    _cleanup_(ctl_table_freep) CtlTable *t = NULL;
    _cleanup_json_ json_object *doc = NULL;
    static const CtlFilter filters[] = {
        {"state", .choices = job_states},
        {"request", .id_of = "request"},
        {"allocation", .id_of = "allocation"},
    };
    json_object *items, *next;
    size_t n;
    int r = ctl_fetch_filtered(ctx, "/v1/jobs", filters, ELEMENTSOF(filters), args, &doc);

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
        json_object *j = json_object_array_get_idx(items, i);
        json_object *p = cm_json_get(j, "progress");
        char *cells[ELEMENTSOF(cols)] = {
            ctl_json_text(cm_json_get(j, "id")),
            ctl_json_text(cm_json_get(j, "kind")),
            ctl_json_text(cm_json_get(j, "state")),
            ctl_json_text(cm_json_get(j, "request_id")),
            ctl_json_text(cm_json_get(j, "allocation_id")),
            ctl_json_cell(j, "system_id+system_name"),
            cm_strdup_printf("%" PRId64 "/%" PRId64, cm_json_get_int(p, "done", 0),
                             cm_json_get_int(p, "total", 0)),
            ctl_json_text(cm_json_get(j, "created_at")),
            ctl_json_text(cm_json_get(j, "finished_at")),
            ctl_json_text(cm_json_get(j, "error")),
        };
        r = ctl_table_add_row(t, (const char *const *)cells, ELEMENTSOF(cols));
        for (size_t k = 0; k < ELEMENTSOF(cols); k++)
            free(cells[k]);
        if (r < 0)
            return ctl_fail(ctx, r, "out of memory");
    }
    if (t)
        ctl_table_print(t, ctx->out, 0);
    if (next)
        fprintf(ctx->out, "(more entries: add --after %" PRId64 ")\n", json_object_get_int64(next));
    return 0;
}

static void print_job(CtlContext *ctx, json_object *j)
{
    static const CtlColumn cols[] = {
        {"#", CTL_ALIGN_RIGHT},        {"ACTION", CTL_ALIGN_LEFT},   {"INSTANCE", CTL_ALIGN_LEFT},
        {"HOST", CTL_ALIGN_LEFT},      {"ARG", CTL_ALIGN_RIGHT},     {"STATE", CTL_ALIGN_LEFT},
        {"ATTEMPTS", CTL_ALIGN_RIGHT}, {"FINISHED", CTL_ALIGN_LEFT}, {"ERROR", CTL_ALIGN_LEFT},
    };
    const int w = 11;
    json_object *steps = cm_json_get(j, "steps"), *p = cm_json_get(j, "progress");
    size_t n = json_object_is_type(steps, json_type_array) ? json_object_array_length(steps) : 0;
    _cleanup_(ctl_table_freep) CtlTable *t = NULL;
    _cleanup_free_ char *progress = cm_strdup_printf(
        "%" PRId64 " of %" PRId64 " steps done (%" PRId64 "%%)", cm_json_get_int(p, "done", 0),
        cm_json_get_int(p, "total", 0), cm_json_get_int(p, "percent", 0));
    const char *state = cm_json_get_str(j, "state", "?");

    fprintf(ctx->out, "Job %" PRId64 " (%s): %s\n", cm_json_get_int(j, "id", 0),
            cm_json_get_str(j, "kind", "?"), state);
    ctl_print_json_field(ctx->out, 2, w, "Request", cm_json_get(j, "request_id"));
    ctl_print_json_field(ctx->out, 2, w, "Allocation", cm_json_get(j, "allocation_id"));
    if (cm_json_get_int(j, "system_id", 0)) {
        _cleanup_free_ char *dept = ctl_json_cell(j, "department_id+department_name");
        _cleanup_free_ char *system = ctl_json_cell(j, "system_id+system_name");
        ctl_print_field(ctx->out, 2, w, "Department", dept);
        ctl_print_field(ctx->out, 2, w, "System", system);
    }
    ctl_print_field(ctx->out, 2, w, "Progress", progress);
    ctl_print_json_field(ctx->out, 2, w, "Created", cm_json_get(j, "created_at"));
    ctl_print_json_field(ctx->out, 2, w, "Started", cm_json_get(j, "started_at"));
    ctl_print_json_field(ctx->out, 2, w, "Finished", cm_json_get(j, "finished_at"));
    if (cm_json_get_int(j, "retries", 0) > 0)
        ctl_print_json_field(ctx->out, 2, w, "Retries", cm_json_get(j, "retries"));
    /* Set once a step had to wait; only meaningful while the job is unfinished. */
    if (cm_json_get_str(j, "retry_at", NULL) &&
        (strcmp(state, "queued") == 0 || strcmp(state, "running") == 0))
        ctl_print_json_field(ctx->out, 2, w, "Next try", cm_json_get(j, "retry_at"));
    if (cm_json_get_str(j, "error", NULL))
        ctl_print_json_field(ctx->out, 2, w, "Error", cm_json_get(j, "error"));

    fputs("\nSteps:\n", ctx->out);
    if (n == 0) {
        fputs("  (none)\n", ctx->out);
        return;
    }
    t = ctl_table_new(cols, ELEMENTSOF(cols));
    for (size_t i = 0; t && i < n; i++) {
        json_object *s = json_object_array_get_idx(steps, i);
        const char *action = cm_json_get_str(s, "action", "");
        bool has_arg = strcmp(action, "set_vcpus") == 0 || strcmp(action, "set_memory") == 0 ||
                       strcmp(action, "grow_volume") == 0;
        char *cells[ELEMENTSOF(cols)] = {
            cm_strdup_printf("%" PRId64, cm_json_get_int(s, "seq", 0) + 1),
            ctl_json_text(cm_json_get(s, "action")),
            ctl_json_cell(s, "instance_id+instance_name"),
            ctl_json_cell(s, "host_id+host_name"),
            has_arg ? ctl_json_text(cm_json_get(s, "arg")) : strdup("-"),
            ctl_json_text(cm_json_get(s, "state")),
            ctl_json_text(cm_json_get(s, "attempts")),
            ctl_json_text(cm_json_get(s, "finished_at")),
            ctl_json_text(cm_json_get(s, "error")),
        };
        ctl_table_add_row(t, (const char *const *)cells, ELEMENTSOF(cols));
        for (size_t k = 0; k < ELEMENTSOF(cols); k++)
            free(cells[k]);
    }
    if (t)
        ctl_table_print(t, ctx->out, 2);
}

static int cmd_show(CtlContext *ctx, const CtlArgs *args)
{
    _cleanup_json_ json_object *o = NULL;
    _cleanup_free_ char *path = NULL;
    int r;

    r = job_path(ctx, args->pos[0], &path);
    if (r >= 0)
        r = ctl_call(ctx, "GET", path, NULL, &o);
    if (r < 0)
        return r;
    if (!ctl_emit_json(ctx, o))
        print_job(ctx, o);
    return 0;
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_s(double s)
{
    struct timespec ts;
    if (s <= 0)
        return;
    ts.tv_sec = (time_t)s;
    ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static int parse_seconds(CtlContext *ctx, const char *option, double min, double max, double def,
                         const CtlArgs *args, double *ret)
{
    const char *v = ctl_args_get(args, option);
    _cleanup_free_ char *name = cm_strdup_printf("--%s", option), *msg = NULL;
    int r;

    *ret = def;
    if (!v)
        return 0;
    r = ctl_parse_seconds(name ? name : option, v, min, max, ret, &msg);
    if (r == -ENOMEM)
        return ctl_fail(ctx, r, "out of memory");
    return r < 0 ? ctl_usage_error(ctx, "%s", msg) : 0;
}

/*
 * Follows a job: polls it, prints each step that changed and a progress line, until it is
 * done (0) or failed (-EBADMSG after printing the error). The broker going away for a while
 * (a restart mid-job) is waited out; an HTTP error is not.
 */
static int cmd_watch(CtlContext *ctx, const CtlArgs *args)
{
    _cleanup_json_ json_object *prev = NULL;
    _cleanup_free_ char *path = NULL;
    double interval, timeout, start = mono_s();
    bool unreachable = false, failed = false;
    CtlHttp *h;
    int r;

    r = job_path(ctx, args->pos[0], &path);
    if (r >= 0)
        r = parse_seconds(ctx, "interval", 0.1, 3600, WATCH_INTERVAL_DEFAULT, args, &interval);
    if (r >= 0)
        r = parse_seconds(ctx, "timeout", 0, 31536000, 0, args, &timeout);
    if (r >= 0)
        r = ctl_http(ctx, &h);
    if (r < 0)
        return r;

    for (;;) {
        json_object *cur = NULL;
        CtlHttpError e;

        r = ctl_http_json(h, "GET", path, NULL, &cur, &e);
        if (r < 0 && (!prev || r == -EPROTO || r == -EBADMSG || r == -EFBIG || r == -ENOMEM)) {
            ctl_print_api_error(ctx, &e);
            return r;
        }
        if (r < 0) {
            if (!unreachable) {
                _cleanup_free_ char *msg = ctl_text_sanitize(e.error.message, true);
                fprintf(ctx->err, "warning: %s; still trying\n", msg ? msg : "broker unreachable");
            }
            unreachable = true;
        } else {
            if (unreachable)
                fputs("the broker answers again\n", ctx->err);
            unreachable = false;
            if (!ctx->json) {
                _cleanup_free_ char *text = ctl_job_changes(prev, cur);
                if (!text) {
                    json_object_put(cur);
                    return ctl_fail(ctx, -ENOMEM, "out of memory");
                }
                fputs(text, ctx->out);
                fflush(ctx->out);
            }
            json_object_put(prev);
            prev = cur;
            if (ctl_job_finished(prev, &failed))
                break;
        }
        if (timeout > 0 && mono_s() - start >= timeout) {
            if (ctx->json)
                ctl_print_json(ctx->out, prev);
            return ctl_fail(ctx, -ETIME,
                            "job %s is still %s after %g s; run '%s job watch %s' to go on "
                            "following it",
                            args->pos[0], cm_json_get_str(prev, "state", "unfinished"), timeout,
                            CTL_PROGRAM, args->pos[0]);
        }
        double left = timeout > 0 ? timeout - (mono_s() - start) : interval;
        sleep_s(left < interval ? left : interval);
    }
    if (ctx->json)
        ctl_print_json(ctx->out, prev);
    if (failed) {
        _cleanup_free_ char *why =
            ctl_text_sanitize(cm_json_get_str(prev, "error", "no reason given"), true);
        return ctl_fail(ctx, -EBADMSG, "job %" PRId64 " (%s) failed: %s",
                        cm_json_get_int(prev, "id", 0), cm_json_get_str(prev, "kind", "?"),
                        why ? why : "?");
    }
    return 0;
}

/* A failed job queued again (vendor or reviewer), once what made it fail is mended. */
static int cmd_retry(CtlContext *ctx, const CtlArgs *args)
{
    _cleanup_json_ json_object *body = NULL, *o = NULL;
    _cleanup_free_ char *path = NULL, *retry = NULL;
    const char *comment = ctl_args_get(args, "comment");
    int64_t id;
    int r;

    r = job_path(ctx, args->pos[0], &path);
    if (r < 0)
        return r;
    retry = cm_strdup_printf("%s/retry", path);
    if (!retry)
        return ctl_fail(ctx, -ENOMEM, "out of memory");
    if (comment) {
        body = json_object_new_object();
        json_object_object_add(body, "comment", json_object_new_string(comment));
    }
    r = ctl_call(ctx, "POST", retry, body, &o);
    if (r < 0)
        return r;
    if (ctl_emit_json(ctx, o))
        return 0;
    id = cm_json_get_int(o, "id", 0);
    fprintf(ctx->out, "Job %" PRId64 " (%s) is queued again (retry %" PRId64 ").\n", id,
            cm_json_get_str(o, "kind", "?"), cm_json_get_int(o, "retries", 0));
    fprintf(ctx->out, "Follow it with: %s job watch %" PRId64 "\n", CTL_PROGRAM, id);
    return 0;
}

/* ---- events ---- */

static int cmd_events(CtlContext *ctx, const CtlArgs *args)
{
    static const CtlColumn cols[] = {
        {"ID", CTL_ALIGN_RIGHT},       {"KIND", CTL_ALIGN_LEFT},
        {"SEVERITY", CTL_ALIGN_LEFT},  {"HOST", CTL_ALIGN_LEFT},
        {"INSTANCE", CTL_ALIGN_LEFT},  {"ALLOCATION", CTL_ALIGN_RIGHT},
        {"DOMAIN", CTL_ALIGN_LEFT},    {"FIRST_SEEN", CTL_ALIGN_LEFT},
        {"LAST_SEEN", CTL_ALIGN_LEFT}, {"RESOLVED", CTL_ALIGN_LEFT},
        {"MESSAGE", CTL_ALIGN_LEFT},
    };
    static const char *const keys[] = {
        "id",
        "kind",
        "severity",
        "host_id+host_name",
        "instance_id+instance_name",
        "allocation_id",
        "domain_name",
        "first_seen",
        "last_seen",
        "resolved_at",
        "message",
    };
    static const CtlFilter filters[] = {
        {"open", .flag = true},
        {"kind", .choices = event_kinds},
        {"host", .id_of = "host"},
    };
    _cleanup_json_ json_object *doc = NULL;
    int r = ctl_fetch_filtered(ctx, "/v1/events", filters, ELEMENTSOF(filters), args, &doc);

    if (r < 0)
        return r;
    return ctl_print_list(ctx, doc, cols, keys, ELEMENTSOF(keys));
}

static const CtlOption list_options[] = {
    {"state", 0, "STATE", CTL_OPT_VALUE, "only jobs in this state (queued, running, done, error)"},
    {"request", 0, "ID", CTL_OPT_VALUE, "only the jobs of this request"},
    {"allocation", 0, "ID", CTL_OPT_VALUE, "only the jobs of this allocation"},
    CTL_LIST_OPTIONS,
    {NULL},
};

static const CtlOption watch_options[] = {
    {"interval", 0, "SECONDS", CTL_OPT_VALUE, "poll every SECONDS (0.1-3600, default 1)"},
    {"timeout", 0, "SECONDS", CTL_OPT_VALUE,
     "give up (exit 1) when the job has not ended after SECONDS (default: wait for the end)"},
    {NULL},
};

static const CtlOption retry_options[] = {
    {"comment", 0, "TEXT", CTL_OPT_VALUE, "what was mended (kept in the audit and the history)"},
    {NULL},
};

static const CtlOption event_options[] = {
    {"open", 0, NULL, 0, "only events whose condition still holds (not resolved)"},
    {"kind", 0, "KIND", CTL_OPT_VALUE, "instance_missing, instance_state or unowned_domain"},
    {"host", 0, "ID", CTL_OPT_VALUE, "only events on this host"},
    CTL_LIST_OPTIONS,
    {NULL},
};

const CtlCommand ctl_job_commands[] = {
    {
        .group = "job",
        .verb = "list",
        .handler = cmd_list,
        .help = "list jobs, oldest first (a department sees those of its allocations)",
        .options = list_options,
        .example = "  cloudbrokerctl job list --state running\n"
                   "  cloudbrokerctl job list --request 3",
    },
    {
        .group = "job",
        .verb = "show",
        .handler = cmd_show,
        .help = "show a job and its steps",
        .args = "ID",
        .min_args = 1,
        .max_args = 1,
        .example = "  cloudbrokerctl job show 5",
    },
    {
        .group = "job",
        .verb = "watch",
        .handler = cmd_watch,
        .help = "follow a job until it ends (exit 0 done, 1 failed or timed out)",
        .args = "ID",
        .min_args = 1,
        .max_args = 1,
        .options = watch_options,
        .description =
            "Prints each step as its state changes, and a progress line. A step that waits\n"
            "(no host has room yet, a host is disconnected) shows the reason and is retried\n"
            "by the broker with backoff. When the job fails its error is printed. With\n"
            "--json nothing is printed along the way, then the job's final document.",
        .example = "  cloudbrokerctl job watch 5\n"
                   "  cloudbrokerctl --json job watch 5 --timeout 600",
    },
    {
        .group = "job",
        .verb = "retry",
        .handler = cmd_retry,
        .help = "run a failed job again once its cause is mended (vendor, reviewer)",
        .args = "ID",
        .min_args = 1,
        .max_args = 1,
        .options = retry_options,
        .description =
            "The job resumes at the step that failed; steps already done stay done. Its\n"
            "allocation leaves error and its request goes back from failed to where the job\n"
            "failed (approved, trial_passed, applying or reclaiming). Instances placed on a\n"
            "host but not yet made there are placed again, so a host taken out of service\n"
            "meanwhile is avoided. Only the latest job of an allocation can be retried.",
        .example = "  cloudbrokerctl job retry 12 --comment 'base volume restored on trial-2'\n"
                   "  cloudbrokerctl job watch 12",
    },
    {NULL},
};

const CtlCommand ctl_event_commands[] = {
    {
        .group = "event",
        .verb = "list",
        .handler = cmd_events,
        .help = "list what the reconciler found on the hosts, oldest first",
        .options = event_options,
        .description =
            "An instance stopped, paused or missing out of band, and a domain that no\n"
            "allocation owns, each open an event; it is resolved when the condition ends.\n"
            "The broker never changes its own records to match what it found.",
        .example = "  cloudbrokerctl event list --open\n"
                   "  cloudbrokerctl event list --kind unowned_domain --host 2",
    },
    {NULL},
};
