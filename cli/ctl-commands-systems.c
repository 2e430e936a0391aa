/* SPDX-License-Identifier: Apache-2.0 */
/* Application systems, on the cloud or not: /v1/systems. */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "ctl-commands.h"
#include "ctl-output.h"
#include "cm-json.h"
#include "cm-util.h"

static const char *const categories[] = {
    "office_automation",
    "management_information",
    "integration",
    "website",
    "data_service",
    "other",
    NULL,
};
static const char *const statuses[] = {"planned", "in_service", "retired", NULL};

static void print_system(CtlContext *ctx, json_object *s)
{
    ctl_print_json_field(ctx->out, 0, 16, "System", cm_json_get(s, "id"));
    ctl_print_json_field(ctx->out, 0, 16, "Name", cm_json_get(s, "name"));
    _cleanup_free_ char *dept = ctl_json_cell(s, "department_id+department_name");
    ctl_print_field(ctx->out, 0, 16, "Department", dept);
    ctl_print_json_field(ctx->out, 0, 16, "Category", cm_json_get(s, "category"));
    ctl_print_json_field(ctx->out, 0, 16, "Protection level", cm_json_get(s, "protection_level"));
    ctl_print_json_field(ctx->out, 0, 16, "Status", cm_json_get(s, "status"));
    ctl_print_json_field(ctx->out, 0, 16, "On the cloud", cm_json_get(s, "on_cloud"));
    ctl_print_json_field(ctx->out, 0, 16, "Description", cm_json_get(s, "description"));
    ctl_print_json_field(ctx->out, 0, 16, "Created", cm_json_get(s, "created_at"));
    ctl_print_json_field(ctx->out, 0, 16, "Updated", cm_json_get(s, "updated_at"));
}

static int show_answer(CtlContext *ctx, json_object *s, const char *done)
{
    if (ctl_emit_json(ctx, s))
        return 0;
    if (done) {
        _cleanup_free_ char *name = ctl_text_sanitize(cm_json_get_str(s, "name", "?"), true);
        fprintf(ctx->out, "System %" PRId64 " '%s' %s.\n\n", cm_json_get_int(s, "id", 0),
                name ? name : "?", done);
    }
    print_system(ctx, s);
    return 0;
}

/* The settable fields shared by create and update, from the options into @body. */
static int add_fields(CtlContext *ctx, const CtlArgs *args, json_object *body)
{
    const char *v;
    int64_t level;
    int r;

    if ((v = ctl_args_get(args, "name")))
        json_object_object_add(body, "name", json_object_new_string(v));
    if ((v = ctl_args_get(args, "category"))) {
        if ((r = ctl_check_choice(ctx, "--category", v, categories)) < 0)
            return r;
        json_object_object_add(body, "category", json_object_new_string(v));
    }
    if ((v = ctl_args_get(args, "description")))
        json_object_object_add(body, "description", json_object_new_string(v));
    if ((v = ctl_args_get(args, "protection-level"))) {
        if ((r = ctl_parse_count(ctx, "--protection-level", v, 1, 5, &level)) < 0)
            return r;
        json_object_object_add(body, "protection_level", json_object_new_int64(level));
    }
    if ((v = ctl_args_get(args, "status"))) {
        if ((r = ctl_check_choice(ctx, "--status", v, statuses)) < 0)
            return r;
        json_object_object_add(body, "status", json_object_new_string(v));
    }
    return 0;
}

static int cmd_create(CtlContext *ctx, const CtlArgs *args)
{
    _cleanup_json_ json_object *body = json_object_new_object(), *o = NULL;
    const char *dept_s = ctl_args_get(args, "department");
    int64_t dept;
    int r;

    r = add_fields(ctx, args, body);
    if (r < 0)
        return r;
    if (dept_s) {
        if ((r = ctl_parse_id(ctx, "department", dept_s, &dept)) < 0)
            return r;
        json_object_object_add(body, "department_id", json_object_new_int64(dept));
    }
    r = ctl_call(ctx, "POST", "/v1/systems", body, &o);
    if (r < 0)
        return r;
    return show_answer(ctx, o, "registered");
}

static int cmd_list(CtlContext *ctx, const CtlArgs *args)
{
    static const CtlColumn cols[] = {
        {"ID", CTL_ALIGN_RIGHT},      {"DEPARTMENT", CTL_ALIGN_LEFT}, {"NAME", CTL_ALIGN_LEFT},
        {"CATEGORY", CTL_ALIGN_LEFT}, {"LEVEL", CTL_ALIGN_RIGHT},     {"STATUS", CTL_ALIGN_LEFT},
        {"ON_CLOUD", CTL_ALIGN_LEFT},
    };
    static const char *const keys[] = {
        "id",
        "department_id+department_name",
        "name",
        "category",
        "protection_level",
        "status",
        "on_cloud",
    };
    static const CtlFilter filters[] = {{"department", .id_of = "department"}};
    _cleanup_json_ json_object *doc = NULL;
    int r = ctl_fetch_filtered(ctx, "/v1/systems", filters, ELEMENTSOF(filters), args, &doc);

    if (r < 0)
        return r;
    return ctl_print_list(ctx, doc, cols, keys, ELEMENTSOF(keys));
}

static int system_path(CtlContext *ctx, const CtlArgs *args, char **ret)
{
    int64_t id;
    int r = ctl_parse_id(ctx, "system", args->pos[0], &id);
    if (r < 0)
        return r;
    *ret = ctl_path("/v1/systems/%" PRId64, id);
    return *ret ? 0 : ctl_fail(ctx, -ENOMEM, "out of memory");
}

static int cmd_show(CtlContext *ctx, const CtlArgs *args)
{
    _cleanup_json_ json_object *o = NULL;
    _cleanup_free_ char *path = NULL;
    int r;

    r = system_path(ctx, args, &path);
    if (r >= 0)
        r = ctl_call(ctx, "GET", path, NULL, &o);
    if (r < 0)
        return r;
    return show_answer(ctx, o, NULL);
}

static int cmd_update(CtlContext *ctx, const CtlArgs *args)
{
    _cleanup_json_ json_object *body = json_object_new_object(), *o = NULL;
    _cleanup_free_ char *path = NULL;
    int r;

    r = system_path(ctx, args, &path);
    if (r >= 0)
        r = add_fields(ctx, args, body);
    if (r < 0)
        return r;
    if (json_object_object_length(body) == 0)
        return ctl_usage_error(ctx, "nothing to change: give at least one option");
    r = ctl_call(ctx, "PATCH", path, body, &o);
    if (r < 0)
        return r;
    return show_answer(ctx, o, "updated");
}

#define SYSTEM_FIELD_OPTIONS(req)                                                                  \
    {"name", 0, "NAME", CTL_OPT_VALUE | (req), "the system's name (unique in the department)"},    \
        {"category", 0, "CATEGORY", CTL_OPT_VALUE | (req),                                         \
         "office_automation, management_information, integration, website, data_service, "         \
         "other"},                                                                                 \
        {"description", 0, "TEXT", CTL_OPT_VALUE, "what the system does"},                         \
        {"protection-level", 0, "L", CTL_OPT_VALUE, "graded protection level 1-5 (default 2)"},    \
    {                                                                                              \
        "status", 0, "STATUS", CTL_OPT_VALUE, "planned, in_service (default) or retired"           \
    }

static const CtlOption create_options[] = {
    SYSTEM_FIELD_OPTIONS(CTL_OPT_REQUIRED),
    {"department", 0, "ID", CTL_OPT_VALUE,
     "the department (required for the reviewer; a department registers its own)"},
    {NULL},
};

static const CtlOption update_options[] = {
    SYSTEM_FIELD_OPTIONS(0),
    {NULL},
};

static const CtlOption list_options[] = {
    {"department", 0, "ID", CTL_OPT_VALUE, "only this department's systems"},
    CTL_LIST_OPTIONS,
    {NULL},
};

const CtlCommand ctl_system_commands[] = {
    {
        .group = "system",
        .verb = "create",
        .handler = cmd_create,
        .help = "register an application system (department, reviewer)",
        .options = create_options,
        .description = "Register every system, on the cloud or not: the annual assessment\n"
                       "counts the share of systems on the cloud.",
        .example = "  cloudbrokerctl system create --name '网上办事大厅' --category website \\\n"
                   "      --protection-level 3 --description 'online service hall'",
    },
    {
        .group = "system",
        .verb = "list",
        .handler = cmd_list,
        .help = "list application systems",
        .options = list_options,
        .example = "  cloudbrokerctl system list --department 1",
    },
    {
        .group = "system",
        .verb = "show",
        .handler = cmd_show,
        .help = "show an application system",
        .args = "ID",
        .min_args = 1,
        .max_args = 1,
        .example = "  cloudbrokerctl system show 2",
    },
    {
        .group = "system",
        .verb = "update",
        .handler = cmd_update,
        .help = "change an application system's registration",
        .args = "ID",
        .min_args = 1,
        .max_args = 1,
        .options = update_options,
        .example = "  cloudbrokerctl system update 2 --status retired",
    },
    {NULL},
};
