/* SPDX-License-Identifier: Apache-2.0 */
/* Requests for resources and their review: /v1/requests and its actions. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctl-commands.h"
#include "ctl-instance.h"
#include "ctl-material.h"
#include "ctl-output.h"
#include "ctl-values.h"
#include "cm-json.h"
#include "cm-util.h"

/* A request document from --file: the body of POST /v1/requests, never large. */
#define REQUEST_FILE_MAX (1024 * 1024)

static const char *const kinds[] = {"new", "change", "termination", NULL};
static const char *const states[] = {
    "draft",      "submitted",    "returned",     "withdrawn", "rejected", "approved",
    "in_trial",   "trial_passed", "trial_failed", "allocated", "applying", "applied",
    "reclaiming", "reclaimed",    "failed",       NULL,
};
static const char *const decisions[] = {"approve", "reject", "return", NULL};

static int request_path(CtlContext *ctx, const char *id_s, const char *suffix, char **ret)
{
    int64_t id;
    int r = ctl_parse_id(ctx, "request", id_s, &id);
    if (r < 0)
        return r;
    *ret = ctl_path("/v1/requests/%" PRId64 "%s", id, suffix);
    return *ret ? 0 : ctl_fail(ctx, -ENOMEM, "out of memory");
}

/* ---- reading a request ---- */

static void print_resources(CtlContext *ctx, json_object *req)
{
    static const CtlColumn cols[] = {
        {"#", CTL_ALIGN_RIGHT},        {"VCPUS", CTL_ALIGN_RIGHT}, {"MEMORY_MIB", CTL_ALIGN_RIGHT},
        {"DISK_GIB", CTL_ALIGN_RIGHT}, {"IMAGE", CTL_ALIGN_LEFT},
    };
    static const char *const keys[] = {"vcpus", "memory_mib", "disk_gib", "image"};
    json_object *list = ctl_json_path(req, "resources.instances");
    size_t n = json_object_is_type(list, json_type_array) ? json_object_array_length(list) : 0;
    _cleanup_(ctl_table_freep) CtlTable *t = NULL;

    fputs("\nInstances:\n", ctx->out);
    if (n == 0) {
        fputs("  (none)\n", ctx->out);
        return;
    }
    t = ctl_table_new(cols, ELEMENTSOF(cols));
    for (size_t i = 0; t && i < n; i++) {
        json_object *inst = json_object_array_get_idx(list, i);
        char *cells[5] = {cm_strdup_printf("%zu", i + 1)};
        for (size_t k = 0; k < 4; k++)
            cells[k + 1] = ctl_json_text(cm_json_get(inst, keys[k]));
        ctl_table_add_row(t, (const char *const *)cells, 5);
        for (size_t k = 0; k < 5; k++)
            free(cells[k]);
    }
    if (t)
        ctl_table_print(t, ctx->out, 2);
}

/* A titled table of @list's objects, or "(none)". */
static void print_section(CtlContext *ctx, const char *title, json_object *list,
                          const CtlColumn *cols, const char *const *keys, size_t n)
{
    size_t count = json_object_is_type(list, json_type_array) ? json_object_array_length(list) : 0;
    _cleanup_(ctl_table_freep) CtlTable *t = NULL;

    fprintf(ctx->out, "\n%s:\n", title);
    if (count == 0) {
        fputs("  (none)\n", ctx->out);
        return;
    }
    t = ctl_table_new(cols, n);
    for (size_t i = 0; t && i < count; i++)
        ctl_table_add_json_row(t, json_object_array_get_idx(list, i), keys, n);
    if (t)
        ctl_table_print(t, ctx->out, 2);
}

static bool is_resources(json_object *v)
{
    return json_object_is_type(v, json_type_object) && cm_json_get(v, "vcpus") &&
           cm_json_get(v, "memory_mib");
}

/*
 * One rule of the pre-review check: its verdict, then its numbers. Lists print on one line,
 * limit violations as "field: value > max", resource figures as one table, so a reviewer
 * sees at a glance why a rule fails.
 */
static void print_rule(CtlContext *ctx, json_object *rule)
{
    static const CtlColumn cols[] = {
        {"", CTL_ALIGN_LEFT},
        {"VCPUS", CTL_ALIGN_RIGHT},
        {"MEMORY_MIB", CTL_ALIGN_RIGHT},
        {"DISK_GIB", CTL_ALIGN_RIGHT},
        {"INSTANCES", CTL_ALIGN_RIGHT},
    };
    static const char *const res_keys[] = {"vcpus", "memory_mib", "disk_gib", "instances"};
    _cleanup_(ctl_table_freep) CtlTable *t = ctl_table_new(cols, ELEMENTSOF(cols));
    _cleanup_free_ char *name = ctl_text_sanitize(cm_json_get_str(rule, "rule", "?"), true);

    fprintf(ctx->out, "  %-20s %-4s  (%s)\n", name ? name : "?",
            cm_json_get_bool(rule, "ok", false) ? "ok" : "FAIL",
            cm_json_get_bool(rule, "enforce", false) ? "enforced" : "advisory only");
    json_object_object_foreach(rule, key, val)
    {
        if (strcmp(key, "rule") == 0 || strcmp(key, "ok") == 0 || strcmp(key, "enforce") == 0)
            continue;
        if (is_resources(val)) {
            char *cells[5] = {strdup(key)};
            for (size_t k = 0; k < 4; k++)
                cells[k + 1] = ctl_json_text(cm_json_get(val, res_keys[k]));
            if (t)
                ctl_table_add_row(t, (const char *const *)cells, 5);
            for (size_t k = 0; k < 5; k++)
                free(cells[k]);
            continue;
        }
        if (json_object_is_type(val, json_type_array) && json_object_array_length(val) > 0 &&
            json_object_is_type(json_object_array_get_idx(val, 0), json_type_object)) {
            fprintf(ctx->out, "      %s:\n", key);
            for (size_t i = 0; i < json_object_array_length(val); i++) {
                json_object *v = json_object_array_get_idx(val, i);
                _cleanup_free_ char *field = ctl_json_text(cm_json_get(v, "field"));
                _cleanup_free_ char *value = ctl_json_text(cm_json_get(v, "value"));
                _cleanup_free_ char *max = ctl_json_text(cm_json_get(v, "max"));
                _cleanup_free_ char *line = cm_strdup_printf("%s: %s > max %s", field, value, max);
                _cleanup_free_ char *clean = line ? ctl_text_sanitize(line, true) : NULL;
                fprintf(ctx->out, "        %s\n", clean ? clean : "?");
            }
            continue;
        }
        if (json_object_is_type(val, json_type_object)) {
            /* Limits and other groups of numbers: "max_vcpus 32, max_memory_mib ...". */
            _cleanup_free_ char *text = NULL;
            json_object_object_foreach(val, k2, v2)
            {
                _cleanup_free_ char *vt = ctl_json_text(v2);
                char *next = cm_strdup_printf("%s%s%s %s", text ? text : "", text ? ", " : "", k2,
                                              vt ? vt : "?");
                if (!next)
                    break;
                free(text);
                text = next;
            }
            ctl_print_field(ctx->out, 6, 10, key, text ? text : "-");
            continue;
        }
        if (json_object_is_type(val, json_type_array)) {
            _cleanup_free_ char *text = NULL;
            for (size_t i = 0; i < json_object_array_length(val); i++) {
                _cleanup_free_ char *vt = ctl_json_text(json_object_array_get_idx(val, i));
                char *next =
                    cm_strdup_printf("%s%s%s", text ? text : "", text ? ", " : "", vt ? vt : "?");
                if (!next)
                    break;
                free(text);
                text = next;
            }
            ctl_print_field(ctx->out, 6, 10, key, text ? text : "none");
            continue;
        }
        ctl_print_json_field(ctx->out, 6, 10, key, val);
    }
    if (t && ctl_table_rows(t) > 0)
        ctl_table_print(t, ctx->out, 6);
}

static void print_check(CtlContext *ctx, json_object *check)
{
    json_object *rules = cm_json_get(check, "rules");
    size_t n = json_object_is_type(rules, json_type_array) ? json_object_array_length(rules) : 0;

    if (!check)
        return;
    fprintf(ctx->out, "\nPre-review check: %s\n",
            cm_json_get_bool(check, "ok", false) ? "ok" : "FAIL");
    for (size_t i = 0; i < n; i++)
        print_rule(ctx, json_object_array_get_idx(rules, i));
}

/* "4 vCPU, 8192 MiB memory, 80 GiB disk, 2 instances" */
static char *totals_text(json_object *t)
{
    return cm_strdup_printf("%" PRId64 " vCPU, %" PRId64 " MiB memory, %" PRId64
                            " GiB disk, %" PRId64 " instance%s",
                            cm_json_get_int(t, "vcpus", 0), cm_json_get_int(t, "memory_mib", 0),
                            cm_json_get_int(t, "disk_gib", 0), cm_json_get_int(t, "instances", 0),
                            cm_json_get_int(t, "instances", 0) == 1 ? "" : "s");
}

static char *joined_strings(json_object *list)
{
    char *text = NULL;
    size_t n = json_object_is_type(list, json_type_array) ? json_object_array_length(list) : 0;
    for (size_t i = 0; i < n; i++) {
        char *next = cm_strdup_printf("%s%s%s", text ? text : "", text ? ", " : "",
                                      json_object_get_string(json_object_array_get_idx(list, i)));
        if (!next)
            break;
        free(text);
        text = next;
    }
    return text;
}

/* The vendor's trial of a new request: its environment, time limit and test results. */
static void print_trial(CtlContext *ctx, json_object *req)
{
    static const CtlColumn cols[] = {
        {"TEST", CTL_ALIGN_LEFT},    {"RESULT", CTL_ALIGN_LEFT}, {"AT", CTL_ALIGN_LEFT},
        {"ACCOUNT", CTL_ALIGN_LEFT}, {"REPORT", CTL_ALIGN_LEFT}, {"COMMENT", CTL_ALIGN_LEFT},
    };
    static const char *const keys[] = {"test",   "result", "at", "account_id+account",
                                       "report", "comment"};
    json_object *trial = cm_json_get(req, "trial"), *list;
    _cleanup_(ctl_table_freep) CtlTable *t = NULL;
    _cleanup_free_ char *env = NULL;
    size_t n;
    const int w = 14;

    if (strcmp(cm_json_get_str(req, "kind", ""), "new") != 0 || !trial)
        return;
    fputs("\nTrial:\n", ctx->out);
    if (!cm_json_get(trial, "allocation_id") ||
        json_object_is_type(cm_json_get(trial, "allocation_id"), json_type_null)) {
        fputs("  (not started: the trial environment is provisioned once the request is "
              "approved)\n",
              ctx->out);
        return;
    }
    env = cm_strdup_printf("allocation %" PRId64 " (%s allocation show %" PRId64 ")",
                           cm_json_get_int(trial, "allocation_id", 0), CTL_PROGRAM,
                           cm_json_get_int(trial, "allocation_id", 0));
    ctl_print_field(ctx->out, 2, w, "Environment", env);
    if (cm_json_get_str(trial, "deadline", NULL))
        ctl_print_json_field(ctx->out, 2, w, "Deadline", cm_json_get(trial, "deadline"));
    else
        ctl_print_field(ctx->out, 2, w, "Deadline", "set when the environment is running");
    list = cm_json_get(trial, "results");
    n = json_object_is_type(list, json_type_array) ? json_object_array_length(list) : 0;
    if (n == 0) {
        ctl_print_field(ctx->out, 2, w, "Results", "none yet (function, performance, security)");
        return;
    }
    fputs("  Results:\n", ctx->out);
    t = ctl_table_new(cols, ELEMENTSOF(cols));
    for (size_t i = 0; t && i < n; i++)
        ctl_table_add_json_row(t, json_object_array_get_idx(list, i), keys, ELEMENTSOF(keys));
    if (t)
        ctl_table_print(t, ctx->out, 4);
}

static void print_request(CtlContext *ctx, json_object *req)
{
    static const CtlColumn mat_cols[] = {
        {"KIND", CTL_ALIGN_LEFT},  {"FILENAME", CTL_ALIGN_LEFT}, {"TYPE", CTL_ALIGN_LEFT},
        {"SIZE", CTL_ALIGN_RIGHT}, {"SHA256", CTL_ALIGN_LEFT},   {"UPLOADED", CTL_ALIGN_LEFT},
    };
    static const char *const mat_keys[] = {
        "kind", "filename", "media_type", "size", "sha256", "uploaded_at",
    };
    static const CtlColumn hist_cols[] = {
        {"AT", CTL_ALIGN_LEFT},   {"FROM", CTL_ALIGN_LEFT},    {"TO", CTL_ALIGN_LEFT},
        {"ROLE", CTL_ALIGN_LEFT}, {"ACCOUNT", CTL_ALIGN_LEFT}, {"COMMENT", CTL_ALIGN_LEFT},
    };
    static const char *const hist_keys[] = {"at",     "from", "to", "role", "account_id+account",
                                            "comment"};
    static const CtlColumn op_cols[] = {
        {"AT", CTL_ALIGN_LEFT},         {"ACCOUNT", CTL_ALIGN_LEFT}, {"ROLE", CTL_ALIGN_LEFT},
        {"RECOMMENDS", CTL_ALIGN_LEFT}, {"COMMENT", CTL_ALIGN_LEFT},
    };
    static const char *const op_keys[] = {"at", "account", "role", "recommendation", "comment"};
    static const CtlColumn job_cols[] = {
        {"ID", CTL_ALIGN_RIGHT},
        {"KIND", CTL_ALIGN_LEFT},
        {"STATE", CTL_ALIGN_LEFT},
        {"ERROR", CTL_ALIGN_LEFT},
    };
    static const char *const job_keys[] = {"id", "kind", "state", "error"};
    const int w = 16;
    _cleanup_free_ char *system = NULL, *dept = NULL, *totals = NULL, *created = NULL,
                        *updated = NULL, *next = NULL;
    json_object *s = cm_json_get(req, "system"), *d = cm_json_get(req, "department");

    fprintf(ctx->out, "Request %" PRId64 " (%s): %s\n", cm_json_get_int(req, "id", 0),
            cm_json_get_str(req, "kind", "?"), cm_json_get_str(req, "state", "?"));
    system = s ? cm_strdup_printf("%" PRId64 " %s (%s, protection level %" PRId64 ")",
                                  cm_json_get_int(s, "id", 0), cm_json_get_str(s, "name", "?"),
                                  cm_json_get_str(s, "category", "?"),
                                  cm_json_get_int(s, "protection_level", 0))
               : cm_strdup_printf("%" PRId64, cm_json_get_int(req, "system_id", 0));
    dept = d ? cm_strdup_printf("%" PRId64 " %s (%s)", cm_json_get_int(d, "id", 0),
                                cm_json_get_str(d, "name", "?"), cm_json_get_str(d, "code", "?"))
             : cm_strdup_printf("%" PRId64, cm_json_get_int(req, "department_id", 0));
    totals = totals_text(cm_json_get(req, "totals"));
    created = cm_strdup_printf("%s by account %" PRId64, cm_json_get_str(req, "created_at", "?"),
                               cm_json_get_int(req, "created_by", 0));
    updated = cm_strdup_printf("%s (version %" PRId64 ")", cm_json_get_str(req, "updated_at", "?"),
                               cm_json_get_int(req, "version", 0));
    next = joined_strings(cm_json_get(req, "next_states"));

    ctl_print_field(ctx->out, 2, w, "System", system);
    ctl_print_field(ctx->out, 2, w, "Department", dept);
    ctl_print_json_field(ctx->out, 2, w, "Allocation", cm_json_get(req, "allocation_id"));
    ctl_print_field(ctx->out, 2, w, "Resources", totals);
    ctl_print_json_field(ctx->out, 2, w, "Restart allowed", cm_json_get(req, "restart_allowed"));
    ctl_print_json_field(ctx->out, 2, w, "Consultant", cm_json_get(req, "consultant_id"));
    ctl_print_field(ctx->out, 2, w, "Created", created);
    ctl_print_field(ctx->out, 2, w, "Updated", updated);
    ctl_print_field(ctx->out, 2, w, "Next states", next ? next : "none (final)");
    ctl_print_json_field(ctx->out, 2, w, "Justification", cm_json_get(req, "justification"));

    print_resources(ctx, req);
    print_section(ctx, "Materials", cm_json_get(req, "materials"), mat_cols, mat_keys,
                  ELEMENTSOF(mat_keys));
    print_section(ctx, "History", cm_json_get(req, "history"), hist_cols, hist_keys,
                  ELEMENTSOF(hist_keys));
    print_section(ctx, "Opinions", cm_json_get(req, "opinions"), op_cols, op_keys,
                  ELEMENTSOF(op_keys));
    print_trial(ctx, req);
    print_section(ctx, "Jobs", cm_json_get(req, "jobs"), job_cols, job_keys, ELEMENTSOF(job_keys));
    print_check(ctx, cm_json_get(req, "check"));
}

/* ---- writing a request ---- */

/* The --instance options as resources {"instances": [...]}; NULL when none is given. */
static int instances_from_args(CtlContext *ctx, const CtlArgs *args, json_object **ret)
{
    size_t n = ctl_args_count(args, "instance");
    _cleanup_json_ json_object *list = NULL;
    json_object *resources;

    *ret = NULL;
    if (n == 0)
        return 0;
    list = json_object_new_array();
    for (size_t i = 0; i < n; i++) {
        _cleanup_free_ char *msg = NULL;
        json_object *inst = NULL;
        int64_t count;
        int r = ctl_instance_parse(ctl_args_get_nth(args, "instance", i), &inst, &count, &msg);
        if (r == -ENOMEM)
            return ctl_fail(ctx, r, "out of memory");
        if (r < 0)
            return ctl_usage_error(ctx, "%s", msg);
        if (json_object_array_length(list) + (size_t)count > CTL_INSTANCE_MAX_COUNT) {
            json_object_put(inst);
            return ctl_usage_error(ctx, "at most %d instances per request", CTL_INSTANCE_MAX_COUNT);
        }
        for (int64_t k = 1; k < count; k++) {
            json_object *copy = NULL;
            json_object_deep_copy(inst, &copy, NULL);
            json_object_array_add(list, copy);
        }
        json_object_array_add(list, inst);
    }
    resources = json_object_new_object();
    json_object_object_add(resources, "instances", TAKE_PTR(list));
    *ret = resources;
    return 0;
}

static int body_from_file(CtlContext *ctx, const char *file, json_object **ret)
{
    _cleanup_free_ char *text = NULL;
    size_t len = 0;
    CmError err = {0};
    const char *path = strcmp(file, "-") == 0 ? "/dev/stdin" : file;
    int r;

    r = cm_read_file(path, REQUEST_FILE_MAX, &text, &len);
    if (r == -EFBIG)
        return ctl_fail(ctx, r, "%s is larger than %d bytes", file, REQUEST_FILE_MAX);
    if (r < 0)
        return ctl_fail(ctx, r, "cannot read %s: %s", file, strerror(-r));
    r = cm_json_parse(text, len, ret, &err);
    if (r < 0)
        return ctl_fail(ctx, r, "%s: %s", file, err.message);
    if (!json_object_is_type(*ret, json_type_object)) {
        json_object_put(*ret);
        *ret = NULL;
        return ctl_fail(ctx, -EINVAL,
                        "%s: a JSON object (the body of POST /v1/requests) is "
                        "expected",
                        file);
    }
    return 0;
}

/* After a change, what the pre-review check still misses, so the next step is clear. */
static void print_missing(CtlContext *ctx, json_object *req)
{
    json_object *rules = ctl_json_path(req, "check.rules");
    size_t n = json_object_is_type(rules, json_type_array) ? json_object_array_length(rules) : 0;

    for (size_t i = 0; i < n; i++) {
        json_object *rule = json_object_array_get_idx(rules, i);
        _cleanup_free_ char *missing = NULL;
        if (cm_json_get_bool(rule, "ok", true))
            continue;
        if (strcmp(cm_json_get_str(rule, "rule", ""), "materials_complete") == 0 &&
            (missing = joined_strings(cm_json_get(rule, "missing"))))
            fprintf(ctx->out, "Still missing materials: %s (request upload ID KIND FILE)\n",
                    missing);
        else
            fprintf(ctx->out, "The pre-review rule %s fails (see request show)\n",
                    cm_json_get_str(rule, "rule", "?"));
    }
}

static int cmd_create(CtlContext *ctx, const CtlArgs *args)
{
    static const char *const direct[] = {
        "system", "kind", "allocation", "instance", "justification", "restart-allowed",
    };
    _cleanup_json_ json_object *body = NULL, *o = NULL;
    const char *file = ctl_args_get(args, "file"), *v;
    json_object *resources = NULL;
    int64_t id;
    int r;

    if (file) {
        for (size_t i = 0; i < ELEMENTSOF(direct); i++)
            if (ctl_args_has(args, direct[i]))
                return ctl_usage_error(ctx, "--file and --%s cannot be combined", direct[i]);
        r = body_from_file(ctx, file, &body);
        if (r < 0)
            return r;
    } else {
        if (!ctl_args_has(args, "system") || !ctl_args_has(args, "justification"))
            return ctl_usage_error(ctx, "give --system and --justification (or --file)");
        body = json_object_new_object();
        r = ctl_parse_id(ctx, "system", ctl_args_get(args, "system"), &id);
        if (r < 0)
            return r;
        json_object_object_add(body, "system", json_object_new_int64(id));
        v = ctl_args_get(args, "kind") ? ctl_args_get(args, "kind") : "new";
        if ((r = ctl_check_choice(ctx, "--kind", v, kinds)) < 0)
            return r;
        json_object_object_add(body, "kind", json_object_new_string(v));
        if ((v = ctl_args_get(args, "allocation"))) {
            if ((r = ctl_parse_id(ctx, "allocation", v, &id)) < 0)
                return r;
            json_object_object_add(body, "allocation", json_object_new_int64(id));
        }
        r = instances_from_args(ctx, args, &resources);
        if (r < 0)
            return r;
        if (resources)
            json_object_object_add(body, "resources", resources);
        json_object_object_add(body, "justification",
                               json_object_new_string(ctl_args_get(args, "justification")));
        if (ctl_args_has(args, "restart-allowed"))
            json_object_object_add(body, "restart_allowed", json_object_new_boolean(true));
    }
    r = ctl_call(ctx, "POST", "/v1/requests", body, &o);
    if (r < 0)
        return r;
    if (ctl_emit_json(ctx, o))
        return 0;
    fprintf(ctx->out, "Request %" PRId64 " (%s) created as %s.\n", cm_json_get_int(o, "id", 0),
            cm_json_get_str(o, "kind", "?"), cm_json_get_str(o, "state", "?"));
    print_missing(ctx, o);
    return 0;
}

static int cmd_list(CtlContext *ctx, const CtlArgs *args)
{
    static const CtlColumn cols[] = {
        {"ID", CTL_ALIGN_RIGHT},         {"KIND", CTL_ALIGN_LEFT},
        {"STATE", CTL_ALIGN_LEFT},       {"DEPARTMENT", CTL_ALIGN_LEFT},
        {"SYSTEM", CTL_ALIGN_LEFT},      {"VCPUS", CTL_ALIGN_RIGHT},
        {"MEMORY_MIB", CTL_ALIGN_RIGHT}, {"DISK_GIB", CTL_ALIGN_RIGHT},
        {"INSTANCES", CTL_ALIGN_RIGHT},  {"UPDATED", CTL_ALIGN_LEFT},
    };
    static const char *const keys[] = {
        "id",
        "kind",
        "state",
        "department_id+department_name",
        "system_id+system_name",
        "totals.vcpus",
        "totals.memory_mib",
        "totals.disk_gib",
        "totals.instances",
        "updated_at",
    };
    static const CtlFilter filters[] = {
        {"state", .choices = states},
        {"kind", .choices = kinds},
        {"department", .id_of = "department"},
        {"system", .id_of = "system"},
    };
    _cleanup_json_ json_object *doc = NULL;
    int r = ctl_fetch_filtered(ctx, "/v1/requests", filters, ELEMENTSOF(filters), args, &doc);

    if (r < 0)
        return r;
    return ctl_print_list(ctx, doc, cols, keys, ELEMENTSOF(keys));
}

static int cmd_show(CtlContext *ctx, const CtlArgs *args)
{
    _cleanup_json_ json_object *o = NULL;
    _cleanup_free_ char *path = NULL;
    int r;

    r = request_path(ctx, args->pos[0], "", &path);
    if (r >= 0)
        r = ctl_call(ctx, "GET", path, NULL, &o);
    if (r < 0)
        return r;
    if (!ctl_emit_json(ctx, o))
        print_request(ctx, o);
    return 0;
}

static int cmd_update(CtlContext *ctx, const CtlArgs *args)
{
    _cleanup_json_ json_object *body = json_object_new_object(), *o = NULL;
    _cleanup_free_ char *path = NULL;
    const char *v;
    json_object *resources = NULL;
    int r;

    r = request_path(ctx, args->pos[0], "", &path);
    if (r >= 0)
        r = instances_from_args(ctx, args, &resources);
    if (r < 0)
        return r;
    if (resources)
        json_object_object_add(body, "resources", resources);
    if ((v = ctl_args_get(args, "justification")))
        json_object_object_add(body, "justification", json_object_new_string(v));
    if ((v = ctl_args_get(args, "restart-allowed"))) {
        bool yes = strcmp(v, "yes") == 0 || strcmp(v, "true") == 0;
        if (!yes && strcmp(v, "no") != 0 && strcmp(v, "false") != 0)
            return ctl_usage_error(ctx, "--restart-allowed must be yes or no, not '%s'", v);
        json_object_object_add(body, "restart_allowed", json_object_new_boolean(yes));
    }
    if (json_object_object_length(body) == 0)
        return ctl_usage_error(ctx, "nothing to change: give --instance, --justification or "
                                    "--restart-allowed");
    r = ctl_call(ctx, "PATCH", path, body, &o);
    if (r < 0)
        return r;
    if (ctl_emit_json(ctx, o))
        return 0;
    fprintf(ctx->out, "Request %" PRId64 " updated (version %" PRId64 ", state %s).\n",
            cm_json_get_int(o, "id", 0), cm_json_get_int(o, "version", 0),
            cm_json_get_str(o, "state", "?"));
    print_missing(ctx, o);
    return 0;
}

/* ---- materials ---- */

static int check_kind(CtlContext *ctx, const char *kind)
{
    if (ctl_material_kind_valid(kind))
        return 0;
    return ctl_check_choice(ctx, "KIND", kind, ctl_material_kinds);
}

/*
 * Uploads @file as material @kind of request @id_s (PUT .../materials/KIND?filename=NAME) with
 * media type @type, and checks that the broker stored exactly the bytes sent.
 * Returns: 0 with the broker's answer in @ret and what was sent in @sent, or a negative errno
 * after printing the problem.
 */
static int upload_file(CtlContext *ctx, const char *id_s, const char *kind, const char *file,
                       const char *type, json_object **ret, CtlTransfer *sent)
{
    const char *slash = strrchr(file, '/'), *base = slash ? slash + 1 : file;
    _cleanup_free_ char *prefix = NULL, *path = NULL, *name = NULL;
    _cleanup_json_ json_object *o = NULL;
    _cleanup_close_ int fd = -1;
    CtlHttpError e;
    CtlHttp *h;
    struct stat st;
    int r;

    prefix = ctl_path("/%s", kind);
    if (!prefix)
        return ctl_fail(ctx, -ENOMEM, "out of memory");
    r = request_path(ctx, id_s, "/materials", &path);
    if (r < 0)
        return r;

    fd = open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return ctl_fail(ctx, -errno, "cannot open %s: %s", file, strerror(errno));
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
        return ctl_fail(ctx, -EINVAL, "%s is not a regular file", file);
    if (st.st_size == 0)
        return ctl_fail(ctx, -EINVAL, "%s is empty", file);

    name = ctl_http_escape(base);
    char *full = name ? ctl_path("%s%s?filename=%s", path, prefix, name) : NULL;
    if (!full)
        return ctl_fail(ctx, -ENOMEM, "out of memory");
    free(path);
    path = full;

    r = ctl_http(ctx, &h);
    if (r < 0)
        return r;
    r = ctl_http_upload(h, path, fd, (uint64_t)st.st_size, type, &o, sent, &e);
    if (r < 0) {
        ctl_print_api_error(ctx, &e);
        return r;
    }
    /* The broker hashed what it stored; it must be what we read. */
    if (strcmp(cm_json_get_str(o, "sha256", ""), sent->sha256) != 0)
        return ctl_fail(ctx, -EBADMSG, "the broker stored %s with SHA-256 %s, but %s was sent",
                        file, cm_json_get_str(o, "sha256", "?"), sent->sha256);
    *ret = TAKE_PTR(o);
    return 0;
}

static int cmd_upload(CtlContext *ctx, const CtlArgs *args)
{
    const char *kind = args->pos[1], *file = args->pos[2], *type = ctl_args_get(args, "type");
    const char *slash = strrchr(file, '/'), *base = slash ? slash + 1 : file;
    _cleanup_json_ json_object *o = NULL;
    CtlTransfer sent = {0};
    int r;

    r = check_kind(ctx, kind);
    if (r < 0)
        return r;
    if (!type && !(type = ctl_material_guess_type(file)))
        return ctl_usage_error(ctx,
                               "cannot tell the document type of '%s' from its name; give "
                               "--type (e.g. application/pdf)",
                               file);
    r = upload_file(ctx, args->pos[0], kind, file, type, &o, &sent);
    if (r < 0)
        return r;
    if (ctl_emit_json(ctx, o))
        return 0;
    _cleanup_free_ char *clean = ctl_text_sanitize(base, true);
    fprintf(ctx->out, "Uploaded %s as %s of request %s: %" PRIu64 " bytes, %s, sha256 %s\n",
            clean ? clean : "?", kind, args->pos[0], sent.size, type, sent.sha256);
    return 0;
}

/* A temporary file next to @target, renamed over it only once the download is complete. */
static int open_target(CtlContext *ctx, const char *target, char **ret_tmp)
{
    _cleanup_free_ char *tmp = cm_strdup_printf("%s.part-XXXXXX", target);
    mode_t mask;
    int fd;

    if (!tmp)
        return ctl_fail(ctx, -ENOMEM, "out of memory");
    fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0)
        return ctl_fail(ctx, -errno, "cannot create %s: %s", tmp, strerror(errno));
    /* mkostemp makes 0600; the finished file gets what a plain create would. */
    mask = umask(0);
    umask(mask);
    if (fchmod(fd, 0666 & ~mask) < 0) {
        int r = -errno;
        close(fd);
        unlink(tmp);
        return ctl_fail(ctx, r, "cannot set the mode of %s: %s", tmp, strerror(-r));
    }
    *ret_tmp = TAKE_PTR(tmp);
    return fd;
}

static int cmd_download(CtlContext *ctx, const CtlArgs *args)
{
    const char *kind = args->pos[1], *out = ctl_args_get(args, "output");
    _cleanup_free_ char *path = NULL, *suffix = NULL, *tmp = NULL;
    bool to_stdout = !out || strcmp(out, "-") == 0;
    CtlTransfer got = {0};
    CtlHttpError e;
    CtlHttp *h;
    int fd, r;

    r = check_kind(ctx, kind);
    if (r < 0)
        return r;
    if (to_stdout && isatty(STDOUT_FILENO))
        return ctl_usage_error(ctx, "not writing a document to the terminal: give -o FILE or "
                                    "redirect the output");
    suffix = ctl_path("/materials/%s", kind);
    if (!suffix)
        return ctl_fail(ctx, -ENOMEM, "out of memory");
    r = request_path(ctx, args->pos[0], suffix, &path);
    if (r >= 0)
        r = ctl_http(ctx, &h);
    if (r < 0)
        return r;

    if (to_stdout) {
        fflush(ctx->out);
        fd = STDOUT_FILENO;
    } else {
        fd = open_target(ctx, out, &tmp);
        if (fd < 0)
            return fd;
    }
    r = ctl_http_download(h, path, fd, &got, &e);
    if (r < 0)
        ctl_print_api_error(ctx, &e);
    if (!to_stdout) {
        if (r >= 0 && fsync(fd) < 0)
            r = ctl_fail(ctx, -errno, "cannot write %s: %s", tmp, strerror(errno));
        if (close(fd) < 0 && r >= 0)
            r = ctl_fail(ctx, -errno, "cannot write %s: %s", tmp, strerror(errno));
        if (r >= 0 && rename(tmp, out) < 0)
            r = ctl_fail(ctx, -errno, "cannot rename %s to %s: %s", tmp, out, strerror(errno));
        if (r < 0)
            unlink(tmp);
    }
    if (r < 0)
        return r;
    if (to_stdout) {
        fprintf(ctx->err, "%" PRIu64 " bytes, sha256 %s\n", got.size, got.sha256);
        return 0;
    }
    if (ctx->json) {
        _cleanup_json_ json_object *o = json_object_new_object();
        json_object_object_add(o, "path", json_object_new_string(out));
        json_object_object_add(o, "size", json_object_new_int64((int64_t)got.size));
        json_object_object_add(o, "sha256", json_object_new_string(got.sha256));
        ctl_print_json(ctx->out, o);
        return 0;
    }
    fprintf(ctx->out, "Saved %s of request %s to %s: %" PRIu64 " bytes, sha256 %s\n", kind,
            args->pos[0], out, got.size, got.sha256);
    return 0;
}

/* ---- workflow ---- */

/* The newest job of @kind in the request document @req, or NULL. */
static json_object *last_job(json_object *req, const char *kind)
{
    json_object *jobs = cm_json_get(req, "jobs"), *found = NULL;
    size_t n = json_object_is_type(jobs, json_type_array) ? json_object_array_length(jobs) : 0;
    for (size_t i = 0; i < n; i++) {
        json_object *j = json_object_array_get_idx(jobs, i);
        if (strcmp(cm_json_get_str(j, "kind", ""), kind) == 0)
            found = j;
    }
    return found;
}

/* "Request 3: draft → submitted" from the last history entry of the answer. */
static void print_moved(CtlContext *ctx, json_object *req)
{
    json_object *hist = cm_json_get(req, "history");
    size_t n = json_object_is_type(hist, json_type_array) ? json_object_array_length(hist) : 0;
    json_object *last = n ? json_object_array_get_idx(hist, n - 1) : NULL;

    fprintf(ctx->out, "Request %" PRId64 ": %s \xe2\x86\x92 %s\n", cm_json_get_int(req, "id", 0),
            cm_json_get_str(last, "from", "?"), cm_json_get_str(req, "state", "?"));
}

/*
 * After a decision: "Request 3: submitted → approved → reclaiming", every move since the last
 * one out of "submitted" (approving a change or a termination also starts its job).
 */
static void print_decided(CtlContext *ctx, json_object *req)
{
    json_object *hist = cm_json_get(req, "history");
    size_t n = json_object_is_type(hist, json_type_array) ? json_object_array_length(hist) : 0;
    size_t from = n;

    while (from > 0 &&
           !cm_streq(cm_json_get_str(json_object_array_get_idx(hist, from - 1), "from", NULL),
                     "submitted"))
        from--;
    if (from == 0) {
        print_moved(ctx, req);
        return;
    }
    fprintf(ctx->out, "Request %" PRId64 ": submitted", cm_json_get_int(req, "id", 0));
    for (size_t i = from - 1; i < n; i++)
        fprintf(ctx->out, " \xe2\x86\x92 %s",
                cm_json_get_str(json_object_array_get_idx(hist, i), "to", "?"));
    fputc('\n', ctx->out);
}

static int department_move(CtlContext *ctx, const CtlArgs *args, const char *action)
{
    _cleanup_json_ json_object *body = NULL, *o = NULL;
    _cleanup_free_ char *path = NULL, *suffix = ctl_path("/%s", action);
    const char *comment = ctl_args_get(args, "comment");
    int r;

    if (!suffix)
        return ctl_fail(ctx, -ENOMEM, "out of memory");
    r = request_path(ctx, args->pos[0], suffix, &path);
    if (r < 0)
        return r;
    if (comment) {
        body = json_object_new_object();
        json_object_object_add(body, "comment", json_object_new_string(comment));
    }
    r = ctl_call(ctx, "POST", path, body, &o);
    if (r < 0)
        return r;
    if (!ctl_emit_json(ctx, o))
        print_moved(ctx, o);
    return 0;
}

static int cmd_submit(CtlContext *ctx, const CtlArgs *args)
{
    return department_move(ctx, args, "submit");
}

static int cmd_resubmit(CtlContext *ctx, const CtlArgs *args)
{
    return department_move(ctx, args, "resubmit");
}

static int cmd_withdraw(CtlContext *ctx, const CtlArgs *args)
{
    return department_move(ctx, args, "withdraw");
}

static int cmd_assign(CtlContext *ctx, const CtlArgs *args)
{
    _cleanup_json_ json_object *body = json_object_new_object(), *o = NULL;
    _cleanup_free_ char *path = NULL;
    int64_t consultant;
    int r;

    r = request_path(ctx, args->pos[0], "/assign", &path);
    if (r >= 0)
        r = ctl_parse_id(ctx, "consultant account", ctl_args_get(args, "consultant"), &consultant);
    if (r < 0)
        return r;
    json_object_object_add(body, "consultant", json_object_new_int64(consultant));
    r = ctl_call(ctx, "POST", path, body, &o);
    if (r < 0)
        return r;
    if (!ctl_emit_json(ctx, o))
        fprintf(ctx->out, "Request %" PRId64 " is assigned to consultant account %" PRId64 ".\n",
                cm_json_get_int(o, "id", 0), cm_json_get_int(o, "consultant_id", 0));
    return 0;
}

static int cmd_opinion(CtlContext *ctx, const CtlArgs *args)
{
    _cleanup_json_ json_object *body = json_object_new_object(), *o = NULL;
    _cleanup_free_ char *path = NULL;
    const char *rec = ctl_args_get(args, "recommend");
    json_object *ops;
    int r;

    r = ctl_check_choice(ctx, "--recommend", rec, decisions);
    if (r >= 0)
        r = request_path(ctx, args->pos[0], "/opinions", &path);
    if (r < 0)
        return r;
    json_object_object_add(body, "recommendation", json_object_new_string(rec));
    json_object_object_add(body, "comment", json_object_new_string(ctl_args_get(args, "comment")));
    r = ctl_call(ctx, "POST", path, body, &o);
    if (r < 0)
        return r;
    if (ctl_emit_json(ctx, o))
        return 0;
    ops = cm_json_get(o, "opinions");
    fprintf(ctx->out,
            "Opinion recorded on request %" PRId64 ": recommends %s (%zu opinion%s so "
            "far).\n",
            cm_json_get_int(o, "id", 0), rec, ops ? json_object_array_length(ops) : 0,
            ops && json_object_array_length(ops) == 1 ? "" : "s");
    return 0;
}

static int cmd_decide(CtlContext *ctx, const CtlArgs *args)
{
    _cleanup_json_ json_object *body = json_object_new_object(), *o = NULL;
    _cleanup_free_ char *path = NULL;
    const char *decision = args->pos[1], *comment = ctl_args_get(args, "comment");
    int r;

    r = ctl_check_choice(ctx, "the decision", decision, decisions);
    if (r < 0)
        return r;
    /* The broker wants a reason for every rejection and return; ask before the round trip. */
    if (strcmp(decision, "approve") != 0 && (!comment || !*comment))
        return ctl_usage_error(ctx, "to %s a request, say why with --comment", decision);
    r = request_path(ctx, args->pos[0], "/decision", &path);
    if (r < 0)
        return r;
    json_object_object_add(body, "decision", json_object_new_string(decision));
    if (comment)
        json_object_object_add(body, "comment", json_object_new_string(comment));
    r = ctl_call(ctx, "POST", path, body, &o);
    if (r < 0)
        return r;
    if (!ctl_emit_json(ctx, o)) {
        json_object *jobs = cm_json_get(o, "jobs");
        size_t n = json_object_is_type(jobs, json_type_array) ? json_object_array_length(jobs) : 0;
        print_decided(ctx, o);
        /* Approval starts the hypervisor work: the trial, the change or the reclaim. */
        if (strcmp(decision, "approve") == 0 && n > 0) {
            json_object *job = json_object_array_get_idx(jobs, n - 1);
            fprintf(ctx->out, "Job %" PRId64 " (%s) does the work: %s job watch %" PRId64 "\n",
                    cm_json_get_int(job, "id", 0), cm_json_get_str(job, "kind", "?"), CTL_PROGRAM,
                    cm_json_get_int(job, "id", 0));
        }
    }
    return 0;
}

/* ---- trial and allocation ---- */

static const char *const tests[] = {"function", "performance", "security", NULL};
static const char *const results[] = {"pass", "fail", NULL};

static int cmd_trial_result(CtlContext *ctx, const CtlArgs *args)
{
    _cleanup_json_ json_object *body = json_object_new_object(), *o = NULL, *up = NULL;
    _cleanup_free_ char *path = NULL, *msg = NULL;
    const char *test = ctl_args_get(args, "test"), *result = ctl_args_get(args, "result");
    const char *file = ctl_args_get(args, "report-file"), *report = ctl_args_get(args, "report");
    const char *type = ctl_args_get(args, "type"), *comment = ctl_args_get(args, "comment");
    char sha[CM_SHA256_HEX_LEN + 1];
    json_object *list;
    size_t n;
    int r;

    r = ctl_check_choice(ctx, "--test", test, tests);
    if (r >= 0)
        r = ctl_check_choice(ctx, "--result", result, results);
    if (r < 0)
        return r;
    if (!file == !report)
        return ctl_usage_error(ctx, "give the test report: --report-file FILE (uploaded first) "
                                    "or --report SHA256 (already uploaded), not both");
    if (type && !file)
        return ctl_usage_error(ctx, "--type describes --report-file; it needs one");
    if (report) {
        r = ctl_parse_sha256(report, sha, &msg);
        if (r == -ENOMEM)
            return ctl_fail(ctx, r, "out of memory");
        if (r < 0)
            return ctl_usage_error(ctx, "--report: %s", msg);
    }
    r = request_path(ctx, args->pos[0], "/trial-results", &path);
    if (r < 0)
        return r;
    if (file) {
        CtlTransfer sent = {0};
        /* By its name when it is a document type the broker knows, else plain text. */
        if (!type && !(type = ctl_material_guess_type(file)))
            type = "text/plain";
        r = upload_file(ctx, args->pos[0], "test_report", file, type, &up, &sent);
        if (r < 0)
            return r;
        cm_strscpy(sha, sizeof(sha), sent.sha256);
        if (!ctx->json) {
            _cleanup_free_ char *clean = ctl_text_sanitize(file, true);
            fprintf(ctx->out,
                    "Uploaded %s as test_report of request %s: %" PRIu64 " bytes, %s, sha256 %s\n",
                    clean ? clean : "?", args->pos[0], sent.size, type, sent.sha256);
        }
    }
    json_object_object_add(body, "test", json_object_new_string(test));
    json_object_object_add(body, "result", json_object_new_string(result));
    json_object_object_add(body, "report", json_object_new_string(sha));
    if (comment)
        json_object_object_add(body, "comment", json_object_new_string(comment));
    r = ctl_call(ctx, "POST", path, body, &o);
    if (r < 0)
        return r;
    if (ctl_emit_json(ctx, o))
        return 0;
    list = ctl_json_path(o, "trial.results");
    n = json_object_is_type(list, json_type_array) ? json_object_array_length(list) : 0;
    fprintf(ctx->out,
            "Trial result recorded on request %" PRId64 ": %s test %s (%zu of 3 tests "
            "recorded).\n",
            cm_json_get_int(o, "id", 0), test, result, n);
    if (strcmp(cm_json_get_str(o, "state", ""), "in_trial") != 0) {
        json_object *job = last_job(o, "trial_reclaim");
        print_moved(ctx, o);
        if (job)
            fprintf(ctx->out, "The trial environment is reclaimed by job %" PRId64 ".\n",
                    cm_json_get_int(job, "id", 0));
    }
    return 0;
}

static int cmd_allocate(CtlContext *ctx, const CtlArgs *args)
{
    _cleanup_json_ json_object *o = NULL;
    _cleanup_free_ char *path = NULL;
    json_object *job;
    int r;

    r = request_path(ctx, args->pos[0], "/allocate", &path);
    if (r >= 0)
        r = ctl_call(ctx, "POST", path, NULL, &o);
    if (r < 0)
        return r;
    if (ctl_emit_json(ctx, o))
        return 0;
    job = last_job(o, "provision");
    fprintf(ctx->out, "Request %" PRId64 ": allocation %" PRId64 " is being provisioned",
            cm_json_get_int(o, "id", 0), cm_json_get_int(o, "allocation_id", 0));
    if (job)
        fprintf(ctx->out, " by job %" PRId64 ".\nFollow it with: %s job watch %" PRId64 "\n",
                cm_json_get_int(job, "id", 0), CTL_PROGRAM, cm_json_get_int(job, "id", 0));
    else
        fputs(".\n", ctx->out);
    return 0;
}

/* The request's newest failed job, run again (POST /v1/jobs/{id}/retry). */
static int cmd_retry(CtlContext *ctx, const CtlArgs *args)
{
    _cleanup_json_ json_object *req = NULL, *body = NULL, *job = NULL, *after = NULL;
    _cleanup_free_ char *path = NULL, *retry = NULL;
    const char *comment = ctl_args_get(args, "comment");
    json_object *jobs, *failed = NULL;
    size_t n;
    int r;

    r = request_path(ctx, args->pos[0], "", &path);
    if (r >= 0)
        r = ctl_call(ctx, "GET", path, NULL, &req);
    if (r < 0)
        return r;
    jobs = cm_json_get(req, "jobs");
    n = json_object_is_type(jobs, json_type_array) ? json_object_array_length(jobs) : 0;
    for (size_t i = n; i > 0 && !failed; i--) {
        json_object *j = json_object_array_get_idx(jobs, i - 1);
        if (strcmp(cm_json_get_str(j, "state", ""), "error") == 0)
            failed = j;
    }
    if (!failed)
        return ctl_fail(ctx, -ENOENT, "request %s (%s) has no failed job to retry", args->pos[0],
                        cm_json_get_str(req, "state", "?"));
    retry = ctl_path("/v1/jobs/%" PRId64 "/retry", cm_json_get_int(failed, "id", 0));
    if (!retry)
        return ctl_fail(ctx, -ENOMEM, "out of memory");
    if (comment) {
        body = json_object_new_object();
        json_object_object_add(body, "comment", json_object_new_string(comment));
    }
    r = ctl_call(ctx, "POST", retry, body, &job);
    if (r >= 0)
        r = ctl_call(ctx, "GET", path, NULL, &after);
    if (r < 0)
        return r;
    if (ctl_emit_json(ctx, after))
        return 0;
    fprintf(ctx->out,
            "Request %" PRId64 ": %s \xe2\x86\x92 %s; job %" PRId64 " (%s) is queued again.\n",
            cm_json_get_int(after, "id", 0), cm_json_get_str(req, "state", "?"),
            /* as the retry left it: a quick job may have moved it on since */
            cm_json_get_str(job, "request_state", cm_json_get_str(after, "state", "?")),
            cm_json_get_int(job, "id", 0), cm_json_get_str(job, "kind", "?"));
    fprintf(ctx->out, "Follow it with: %s job watch %" PRId64 "\n", CTL_PROGRAM,
            cm_json_get_int(job, "id", 0));
    return 0;
}

/* ---- the table ---- */

#define INSTANCE_HELP "an instance: vcpus=N,memory=MiB,disk=GiB,image=NAME[,count=N]"

static const CtlOption create_options[] = {
    {"system", 0, "ID", CTL_OPT_VALUE, "the application system (required without --file)"},
    {"kind", 0, "KIND", CTL_OPT_VALUE, "new (default), change or termination"},
    {"allocation", 0, "ID", CTL_OPT_VALUE, "the allocation a change or termination acts on"},
    {"instance", 0, "SPEC", CTL_OPT_VALUE | CTL_OPT_REPEAT, INSTANCE_HELP},
    {"justification", 0, "TEXT", CTL_OPT_VALUE, "why (required without --file)"},
    {"restart-allowed", 0, NULL, 0, "a change may restart the instances"},
    {"file", 0, "FILE", CTL_OPT_VALUE, "take the whole request body from FILE ('-': stdin)"},
    {NULL},
};

static const CtlOption list_options[] = {
    {"state", 0, "STATE", CTL_OPT_VALUE, "only requests in this state (draft, submitted, ...)"},
    {"kind", 0, "KIND", CTL_OPT_VALUE, "only new, change or termination requests"},
    {"department", 0, "ID", CTL_OPT_VALUE, "only this department's requests"},
    {"system", 0, "ID", CTL_OPT_VALUE, "only requests for this system"},
    CTL_LIST_OPTIONS,
    {NULL},
};

static const CtlOption update_options[] = {
    {"instance", 0, "SPEC", CTL_OPT_VALUE | CTL_OPT_REPEAT,
     INSTANCE_HELP "; replaces all instances"},
    {"justification", 0, "TEXT", CTL_OPT_VALUE, "new justification"},
    {"restart-allowed", 0, "yes|no", CTL_OPT_VALUE, "whether a change may restart instances"},
    {NULL},
};

static const CtlOption upload_options[] = {
    {"type", 0, "MIME", CTL_OPT_VALUE, "the document's media type (default: from the name)"},
    {NULL},
};

static const CtlOption download_options[] = {
    {"output", 'o', "FILE", CTL_OPT_VALUE, "write to FILE (default: stdout, unless a terminal)"},
    {NULL},
};

static const CtlOption retry_comment_options[] = {
    {"comment", 0, "TEXT", CTL_OPT_VALUE, "what was mended (kept in the history and the audit)"},
    {NULL},
};

static const CtlOption comment_options[] = {
    {"comment", 0, "TEXT", CTL_OPT_VALUE, "a comment recorded in the history"},
    {NULL},
};

static const CtlOption assign_options[] = {
    {"consultant", 0, "ACCOUNT_ID", CTL_OPT_VALUE | CTL_OPT_REQUIRED,
     "the consultant's account id"},
    {NULL},
};

static const CtlOption opinion_options[] = {
    {"recommend", 0, "WHAT", CTL_OPT_VALUE | CTL_OPT_REQUIRED, "approve, reject or return"},
    {"comment", 0, "TEXT", CTL_OPT_VALUE | CTL_OPT_REQUIRED, "the opinion itself"},
    {NULL},
};

static const CtlOption decide_options[] = {
    {"comment", 0, "TEXT", CTL_OPT_VALUE, "the reason (required to reject or return)"},
    {NULL},
};

static const CtlOption trial_result_options[] = {
    {"test", 0, "TEST", CTL_OPT_VALUE | CTL_OPT_REQUIRED, "function, performance or security"},
    {"result", 0, "RESULT", CTL_OPT_VALUE | CTL_OPT_REQUIRED, "pass or fail"},
    {"report-file", 0, "FILE", CTL_OPT_VALUE,
     "the test report: uploaded as the request's test_report first"},
    {"report", 0, "SHA256", CTL_OPT_VALUE, "the SHA-256 of a test_report already uploaded"},
    {"type", 0, "MIME", CTL_OPT_VALUE,
     "the report's media type (default: from the file name, else text/plain)"},
    {"comment", 0, "TEXT", CTL_OPT_VALUE, "a comment kept with the result"},
    {NULL},
};

#define REQUEST_ID .args = "ID", .min_args = 1, .max_args = 1

const CtlCommand ctl_request_commands[] = {
    {
        .group = "request",
        .verb = "create",
        .handler = cmd_create,
        .help = "create a draft request for a system's resources (department)",
        .options = create_options,
        .description =
            "A new request carries its instances; a change names the allocation and its new\n"
            "instances; a termination names the allocation only. The draft is then completed\n"
            "with materials (request upload) and submitted (request submit).",
        .example = "  cloudbrokerctl request create --system 2 \\\n"
                   "      --instance vcpus=2,memory=4096,disk=40,image=debian-12 \\\n"
                   "      --instance vcpus=4,memory=8192,disk=100,image=debian-12 \\\n"
                   "      --justification 'online service hall, 2024 expansion'\n"
                   "  cloudbrokerctl request create --file request.json",
    },
    {
        .group = "request",
        .verb = "list",
        .handler = cmd_list,
        .help = "list requests",
        .options = list_options,
        .example = "  cloudbrokerctl request list --state submitted",
    },
    {
        .group = "request",
        .verb = "show",
        .handler = cmd_show,
        .help = "show a request: details, materials, history, opinions, trial, jobs, check",
        REQUEST_ID,
        .example = "  cloudbrokerctl request show 3",
    },
    {
        .group = "request",
        .verb = "update",
        .handler = cmd_update,
        .help = "change a draft or returned request (department)",
        REQUEST_ID,
        .options = update_options,
        .example = "  cloudbrokerctl request update 3 \\\n"
                   "      --instance vcpus=2,memory=8192,disk=40,image=debian-12 \\\n"
                   "      --justification 'memory doubled after the review'",
    },
    {
        .group = "request",
        .verb = "upload",
        .handler = cmd_upload,
        .help = "attach a document to a draft or returned request (department)",
        .args = "ID KIND FILE",
        .min_args = 3,
        .max_args = 3,
        .options = upload_options,
        .description = "KIND: construction_plan, performance_self_test, security_self_test,\n"
                       "backup_proof, test_report (vendor, during the trial) or other.\n"
                       "A new upload of the same KIND replaces the previous one.",
        .example = "  cloudbrokerctl request upload 3 construction_plan plan.pdf",
    },
    {
        .group = "request",
        .verb = "download",
        .handler = cmd_download,
        .help = "fetch a request's document, checked against its SHA-256",
        .args = "ID KIND",
        .min_args = 2,
        .max_args = 2,
        .options = download_options,
        .example = "  cloudbrokerctl request download 3 construction_plan -o plan.pdf",
    },
    {
        .group = "request",
        .verb = "submit",
        .handler = cmd_submit,
        .help = "submit a draft for review (department)",
        REQUEST_ID,
        .options = comment_options,
        .description = "Refused while required materials are missing or an enforced limit fails.",
        .example = "  cloudbrokerctl request submit 3",
    },
    {
        .group = "request",
        .verb = "resubmit",
        .handler = cmd_resubmit,
        .help = "submit a returned request again after changing it (department)",
        REQUEST_ID,
        .options = comment_options,
        .example = "  cloudbrokerctl request resubmit 3 --comment 'memory doubled as asked'",
    },
    {
        .group = "request",
        .verb = "withdraw",
        .handler = cmd_withdraw,
        .help = "withdraw a draft, submitted or returned request (department)",
        REQUEST_ID,
        .options = comment_options,
        .example = "  cloudbrokerctl request withdraw 3 --comment 'no longer needed'",
    },
    {
        .group = "request",
        .verb = "assign",
        .handler = cmd_assign,
        .help = "commission a consultant to review a submitted request (reviewer)",
        REQUEST_ID,
        .options = assign_options,
        .example = "  cloudbrokerctl request assign 3 --consultant 7",
    },
    {
        .group = "request",
        .verb = "opinion",
        .handler = cmd_opinion,
        .help = "record a review opinion on a submitted request (consultant, reviewer)",
        REQUEST_ID,
        .options = opinion_options,
        .example = "  cloudbrokerctl request opinion 3 --recommend approve \\\n"
                   "      --comment 'sizing matches the performance self-test'",
    },
    {
        .group = "request",
        .verb = "decide",
        .handler = cmd_decide,
        .help = "approve, reject or return a submitted request (reviewer)",
        .args = "ID approve|reject|return",
        .min_args = 2,
        .max_args = 2,
        .options = decide_options,
        .description =
            "Approval is refused while an enforced pre-review rule fails. It starts the\n"
            "hypervisor work as a job: the vendor's trial environment (a new request), the\n"
            "change (change), or the reclaim (termination); the job's id is printed.",
        .example = "  cloudbrokerctl request decide 3 return --comment 'justify the 8 vCPUs'\n"
                   "  cloudbrokerctl request decide 3 approve",
    },
    {
        .group = "request",
        .verb = "trial-result",
        .handler = cmd_trial_result,
        .help = "record one test of the trial: function, performance or security (vendor)",
        REQUEST_ID,
        .options = trial_result_options,
        .description =
            "The vendor tests the system in its trial environment and records each of the\n"
            "three tests with its report. All three passed: the request is trial_passed and\n"
            "waits for the bureau to allocate; one failed: trial_failed. Either way the trial\n"
            "environment is reclaimed. The report must be the request's test_report material:\n"
            "--report-file uploads it first (each upload replaces the previous one).",
        .example =
            "  cloudbrokerctl request trial-result 3 --test function --result pass \\\n"
            "      --report-file function-test.pdf\n"
            "  cloudbrokerctl request trial-result 3 --test security --result fail \\\n"
            "      --report 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 \\\n"
            "      --comment 'SQL injection in the search form'",
    },
    {
        .group = "request",
        .verb = "allocate",
        .handler = cmd_allocate,
        .help = "place and start the production instances of a trial_passed request (reviewer)",
        REQUEST_ID,
        .description =
            "The quota is checked again and placement must find room for every instance\n"
            "before anything is made; otherwise the refusal names, per host, the filter that\n"
            "refused. A job then creates the volumes, defines and starts the domains; the\n"
            "request is allocated and the allocation active when it is done.",
        .example = "  cloudbrokerctl request allocate 3\n"
                   "  cloudbrokerctl job watch 7",
    },
    {
        .group = "request",
        .verb = "retry",
        .handler = cmd_retry,
        .help = "retry the failed job of a request once its cause is mended",
        REQUEST_ID,
        .options = retry_comment_options,
        .description =
            "Runs the request's newest failed job again (as 'job retry'): the request goes\n"
            "back from failed to where its job failed, the job resumes at the failed step.\n"
            "A trial or a change takes its resources again, so the quota is checked first.",
        .example = "  cloudbrokerctl request retry 7 --comment 'trial-2 has its base volume now'\n"
                   "  cloudbrokerctl job watch 12",
    },
    {NULL},
};
