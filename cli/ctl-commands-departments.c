/* SPDX-License-Identifier: Apache-2.0 */
/* Departments (using units) and their quotas: /v1/departments. */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "ctl-commands.h"
#include "ctl-output.h"
#include "cm-json.h"
#include "cm-util.h"

static const struct {
    const char *option, *key;
    int64_t max;
} quota_options[] = {
    {"quota-vcpus", "vcpus", 1000000},
    {"quota-memory-mib", "memory_mib", 1000000000},
    {"quota-disk-gib", "disk_gib", 1000000000},
    {"quota-instances", "instances", 100000},
};

/* The --quota-* options as a "quota" object in @body (left out when none is given). */
static int add_quota(CtlContext *ctx, const CtlArgs *args, json_object *body)
{
    json_object *q = NULL;

    for (size_t i = 0; i < ELEMENTSOF(quota_options); i++) {
        const char *v = ctl_args_get(args, quota_options[i].option);
        _cleanup_free_ char *name = cm_strdup_printf("--%s", quota_options[i].option);
        int64_t n;
        if (!v)
            continue;
        if (ctl_parse_count(ctx, name ? name : quota_options[i].option, v, 0, quota_options[i].max,
                            &n) < 0) {
            json_object_put(q);
            return -EINVAL;
        }
        if (!q)
            q = json_object_new_object();
        json_object_object_add(q, quota_options[i].key, json_object_new_int64(n));
    }
    if (q)
        json_object_object_add(body, "quota", q);
    return 0;
}

static void print_resources_row(CtlTable *t, const char *label, json_object *res)
{
    const char *keys[] = {"vcpus", "memory_mib", "disk_gib", "instances"};
    char *cells[5] = {NULL};

    cells[0] = strdup(label);
    for (size_t i = 0; i < 4; i++)
        cells[i + 1] = ctl_json_text(cm_json_get(res, keys[i]));
    ctl_table_add_row(t, (const char *const *)cells, 5);
    for (size_t i = 0; i < 5; i++)
        free(cells[i]);
}

static void print_department(CtlContext *ctx, json_object *d)
{
    static const CtlColumn cols[] = {
        {"", CTL_ALIGN_LEFT},
        {"VCPUS", CTL_ALIGN_RIGHT},
        {"MEMORY_MIB", CTL_ALIGN_RIGHT},
        {"DISK_GIB", CTL_ALIGN_RIGHT},
        {"INSTANCES", CTL_ALIGN_RIGHT},
    };
    _cleanup_(ctl_table_freep) CtlTable *t = ctl_table_new(cols, ELEMENTSOF(cols));
    json_object *usage = cm_json_get(d, "usage");

    ctl_print_json_field(ctx->out, 0, 10, "Department", cm_json_get(d, "id"));
    ctl_print_json_field(ctx->out, 0, 10, "Code", cm_json_get(d, "code"));
    ctl_print_json_field(ctx->out, 0, 10, "Name", cm_json_get(d, "name"));
    ctl_print_json_field(ctx->out, 0, 10, "Created", cm_json_get(d, "created_at"));
    ctl_print_json_field(ctx->out, 0, 10, "Updated", cm_json_get(d, "updated_at"));
    if (!t)
        return;
    print_resources_row(t, "quota", cm_json_get(d, "quota"));
    if (usage) {
        print_resources_row(t, "allocated", cm_json_get(usage, "allocated"));
        print_resources_row(t, "approved", cm_json_get(usage, "approved"));
        print_resources_row(t, "headroom", cm_json_get(usage, "headroom"));
    }
    fputs("\nResources:\n", ctx->out);
    ctl_table_print(t, ctx->out, 2);
}

static int show_answer(CtlContext *ctx, json_object *d, const char *done)
{
    if (ctl_emit_json(ctx, d))
        return 0;
    if (done) {
        _cleanup_free_ char *code = ctl_text_sanitize(cm_json_get_str(d, "code", "?"), true);
        fprintf(ctx->out, "Department %" PRId64 " '%s' %s.\n\n", cm_json_get_int(d, "id", 0),
                code ? code : "?", done);
    }
    print_department(ctx, d);
    return 0;
}

static int cmd_create(CtlContext *ctx, const CtlArgs *args)
{
    _cleanup_json_ json_object *body = json_object_new_object(), *o = NULL;
    int r;

    json_object_object_add(body, "code", json_object_new_string(ctl_args_get(args, "code")));
    json_object_object_add(body, "name", json_object_new_string(ctl_args_get(args, "name")));
    r = add_quota(ctx, args, body);
    if (r >= 0)
        r = ctl_call(ctx, "POST", "/v1/departments", body, &o);
    if (r < 0)
        return r;
    return show_answer(ctx, o, "created");
}

static int cmd_list(CtlContext *ctx, const CtlArgs *args)
{
    static const CtlColumn cols[] = {
        {"ID", CTL_ALIGN_RIGHT},         {"CODE", CTL_ALIGN_LEFT},
        {"NAME", CTL_ALIGN_LEFT},        {"VCPUS", CTL_ALIGN_RIGHT},
        {"MEMORY_MIB", CTL_ALIGN_RIGHT}, {"DISK_GIB", CTL_ALIGN_RIGHT},
        {"INSTANCES", CTL_ALIGN_RIGHT},
    };
    static const char *const keys[] = {
        "id",
        "code",
        "name",
        "quota.vcpus",
        "quota.memory_mib",
        "quota.disk_gib",
        "quota.instances",
    };
    _cleanup_json_ json_object *doc = NULL;
    int r = ctl_fetch_filtered(ctx, "/v1/departments", NULL, 0, args, &doc);

    if (r < 0)
        return r;
    return ctl_print_list(ctx, doc, cols, keys, ELEMENTSOF(keys));
}

static int cmd_show(CtlContext *ctx, const CtlArgs *args)
{
    _cleanup_json_ json_object *o = NULL;
    _cleanup_free_ char *path = NULL;
    int64_t id;
    int r;

    r = ctl_parse_id(ctx, "department", args->pos[0], &id);
    if (r < 0)
        return r;
    path = ctl_path("/v1/departments/%" PRId64, id);
    if (!path)
        return ctl_fail(ctx, -ENOMEM, "out of memory");
    r = ctl_call(ctx, "GET", path, NULL, &o);
    if (r < 0)
        return r;
    return show_answer(ctx, o, NULL);
}

static int cmd_update(CtlContext *ctx, const CtlArgs *args)
{
    _cleanup_json_ json_object *body = json_object_new_object(), *o = NULL;
    _cleanup_free_ char *path = NULL;
    const char *name = ctl_args_get(args, "name");
    int64_t id;
    int r;

    r = ctl_parse_id(ctx, "department", args->pos[0], &id);
    if (r < 0)
        return r;
    if (name)
        json_object_object_add(body, "name", json_object_new_string(name));
    r = add_quota(ctx, args, body);
    if (r < 0)
        return r;
    if (json_object_object_length(body) == 0)
        return ctl_usage_error(ctx, "nothing to change: give --name or a --quota-* option");
    path = ctl_path("/v1/departments/%" PRId64, id);
    if (!path)
        return ctl_fail(ctx, -ENOMEM, "out of memory");
    r = ctl_call(ctx, "PATCH", path, body, &o);
    if (r < 0)
        return r;
    return show_answer(ctx, o, "updated");
}

#define QUOTA_OPTIONS                                                                              \
    {"quota-vcpus", 0, "N", CTL_OPT_VALUE, "vCPU quota"},                                          \
        {"quota-memory-mib", 0, "N", CTL_OPT_VALUE, "memory quota in MiB"},                        \
        {"quota-disk-gib", 0, "N", CTL_OPT_VALUE, "disk quota in GiB"},                            \
    {                                                                                              \
        "quota-instances", 0, "N", CTL_OPT_VALUE, "quota of instances (virtual machines)"          \
    }

static const CtlOption create_options[] = {
    {"code", 0, "CODE", CTL_OPT_VALUE | CTL_OPT_REQUIRED,
     "short unique code: lowercase letters, digits, '-'"},
    {"name", 0, "NAME", CTL_OPT_VALUE | CTL_OPT_REQUIRED, "the department's full name"},
    QUOTA_OPTIONS,
    {NULL},
};

static const CtlOption list_options[] = {
    CTL_LIST_OPTIONS,
    {NULL},
};

static const CtlOption update_options[] = {
    {"name", 0, "NAME", CTL_OPT_VALUE, "new full name"},
    QUOTA_OPTIONS,
    {NULL},
};

const CtlCommand ctl_department_commands[] = {
    {
        .group = "department",
        .verb = "create",
        .handler = cmd_create,
        .help = "create a department (admin)",
        .options = create_options,
        .description = "Quotas not given take the review policy's default_quota.",
        .example = "  cloudbrokerctl department create --code civil-affairs --name '民政局' \\\n"
                   "      --quota-vcpus 32 --quota-memory-mib 131072",
    },
    {
        .group = "department",
        .verb = "list",
        .handler = cmd_list,
        .help = "list departments with their quotas",
        .options = list_options,
        .example = "  cloudbrokerctl department list",
    },
    {
        .group = "department",
        .verb = "show",
        .handler = cmd_show,
        .help = "show a department, its quota, usage and headroom",
        .args = "ID",
        .min_args = 1,
        .max_args = 1,
        .example = "  cloudbrokerctl department show 1",
    },
    {
        .group = "department",
        .verb = "update",
        .handler = cmd_update,
        .help = "rename a department or change its quota (admin, reviewer)",
        .args = "ID",
        .min_args = 1,
        .max_args = 1,
        .options = update_options,
        .example = "  cloudbrokerctl department update 1 --quota-instances 40",
    },
    {NULL},
};
