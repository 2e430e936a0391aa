/* SPDX-License-Identifier: Apache-2.0 */
/* Allocations, their instances, restore and purge: /v1/allocations. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "ctl-commands.h"
#include "ctl-output.h"
#include "cm-json.h"
#include "cm-util.h"

static const char *const states[] = {
    "provisioning", "active", "resizing", "reclaiming", "retained", "purged", "error", NULL,
};
static const char *const purposes[] = {"trial", "production", NULL};

static int allocation_path(CtlContext *ctx, const char *id_s, const char *suffix, char **ret)
{
    int64_t id;
    int r = ctl_parse_id(ctx, "allocation", id_s, &id);
    if (r < 0)
        return r;
    *ret = ctl_path("/v1/allocations/%" PRId64 "%s", id, suffix);
    return *ret ? 0 : ctl_fail(ctx, -ENOMEM, "out of memory");
}

/* "2/4": the current value and the maximum it can grow to live. */
static char *cur_max(json_object *o, const char *cur, const char *max)
{
    return cm_strdup_printf("%" PRId64 "/%" PRId64, cm_json_get_int(o, cur, 0),
                            cm_json_get_int(o, max, 0));
}

static void print_instances(CtlContext *ctx, json_object *list)
{
    static const CtlColumn cols[] = {
        {"NAME", CTL_ALIGN_LEFT},        {"HOST", CTL_ALIGN_LEFT},
        {"UUID", CTL_ALIGN_LEFT},        {"VCPUS/MAX", CTL_ALIGN_RIGHT},
        {"MEMORY/MAX", CTL_ALIGN_RIGHT}, {"DISK_GIB", CTL_ALIGN_RIGHT},
        {"IMAGE", CTL_ALIGN_LEFT},       {"STATE", CTL_ALIGN_LEFT},
        {"LIVE", CTL_ALIGN_LEFT},
    };
    size_t n = json_object_is_type(list, json_type_array) ? json_object_array_length(list) : 0;
    _cleanup_(ctl_table_freep) CtlTable *t = NULL;

    fputs("\nInstances (MEMORY in MiB; LIVE: what the reconciler last saw on the host):\n",
          ctx->out);
    if (n == 0) {
        fputs("  (none)\n", ctx->out);
        return;
    }
    t = ctl_table_new(cols, ELEMENTSOF(cols));
    for (size_t i = 0; t && i < n; i++) {
        json_object *inst = json_object_array_get_idx(list, i);
        char *cells[ELEMENTSOF(cols)] = {
            ctl_json_text(cm_json_get(inst, "name")),
            ctl_json_text(ctl_json_path(inst, "host.name")),
            ctl_json_text(cm_json_get(inst, "uuid")),
            cur_max(inst, "vcpus", "max_vcpus"),
            cur_max(inst, "memory_mib", "max_memory_mib"),
            ctl_json_text(cm_json_get(inst, "disk_gib")),
            ctl_json_text(cm_json_get(inst, "image")),
            ctl_json_text(cm_json_get(inst, "state")),
            ctl_json_text(cm_json_get(inst, "live_state")),
        };
        ctl_table_add_row(t, (const char *const *)cells, ELEMENTSOF(cols));
        for (size_t k = 0; k < ELEMENTSOF(cols); k++)
            free(cells[k]);
    }
    if (t)
        ctl_table_print(t, ctx->out, 2);
}

static void print_allocation(CtlContext *ctx, json_object *a)
{
    const int w = 14;
    json_object *t = cm_json_get(a, "totals");
    _cleanup_free_ char *totals = cm_strdup_printf(
        "%" PRId64 " vCPU, %" PRId64 " MiB memory, %" PRId64 " GiB disk, %" PRId64 " instance%s",
        cm_json_get_int(t, "vcpus", 0), cm_json_get_int(t, "memory_mib", 0),
        cm_json_get_int(t, "disk_gib", 0), cm_json_get_int(t, "instances", 0),
        cm_json_get_int(t, "instances", 0) == 1 ? "" : "s");

    fprintf(ctx->out, "Allocation %" PRId64 " (%s): %s\n", cm_json_get_int(a, "id", 0),
            cm_json_get_str(a, "purpose", "?"), cm_json_get_str(a, "state", "?"));
    _cleanup_free_ char *dept = ctl_json_cell(a, "department_id+department_name");
    _cleanup_free_ char *system = ctl_json_cell(a, "system_id+system_name");
    ctl_print_field(ctx->out, 2, w, "Department", dept);
    ctl_print_field(ctx->out, 2, w, "System", system);
    ctl_print_json_field(ctx->out, 2, w, "Request", cm_json_get(a, "request_id"));
    ctl_print_field(ctx->out, 2, w, "Resources", totals);
    if (cm_json_get_str(a, "retained_until", NULL) &&
        strcmp(cm_json_get_str(a, "state", ""), "retained") == 0)
        ctl_print_json_field(ctx->out, 2, w, "Retained until", cm_json_get(a, "retained_until"));
    if (cm_json_get_str(a, "error", NULL))
        ctl_print_json_field(ctx->out, 2, w, "Error", cm_json_get(a, "error"));
    ctl_print_json_field(ctx->out, 2, w, "Created", cm_json_get(a, "created_at"));
    ctl_print_json_field(ctx->out, 2, w, "Updated", cm_json_get(a, "updated_at"));
    print_instances(ctx, cm_json_get(a, "instances"));
}

static int cmd_list(CtlContext *ctx, const CtlArgs *args)
{
    static const CtlColumn cols[] = {
        {"ID", CTL_ALIGN_RIGHT},       {"DEPARTMENT", CTL_ALIGN_LEFT},
        {"SYSTEM", CTL_ALIGN_LEFT},    {"REQUEST", CTL_ALIGN_RIGHT},
        {"PURPOSE", CTL_ALIGN_LEFT},   {"STATE", CTL_ALIGN_LEFT},
        {"VCPUS", CTL_ALIGN_RIGHT},    {"MEMORY_MIB", CTL_ALIGN_RIGHT},
        {"DISK_GIB", CTL_ALIGN_RIGHT}, {"INSTANCES", CTL_ALIGN_RIGHT},
        {"UPDATED", CTL_ALIGN_LEFT},
    };
    static const char *const keys[] = {
        "id",
        "department_id+department_name",
        "system_id+system_name",
        "request_id",
        "purpose",
        "state",
        "totals.vcpus",
        "totals.memory_mib",
        "totals.disk_gib",
        "totals.instances",
        "updated_at",
    };
    static const CtlFilter filters[] = {
        {"state", .choices = states},
        {"purpose", .choices = purposes},
        {"department", .id_of = "department"},
        {"system", .id_of = "system"},
    };
    _cleanup_json_ json_object *doc = NULL;
    int r = ctl_fetch_filtered(ctx, "/v1/allocations", filters, ELEMENTSOF(filters), args, &doc);

    if (r < 0)
        return r;
    return ctl_print_list(ctx, doc, cols, keys, ELEMENTSOF(keys));
}

static int cmd_show(CtlContext *ctx, const CtlArgs *args)
{
    _cleanup_json_ json_object *o = NULL;
    _cleanup_free_ char *path = NULL;
    int r;

    r = allocation_path(ctx, args->pos[0], "", &path);
    if (r >= 0)
        r = ctl_call(ctx, "GET", path, NULL, &o);
    if (r < 0)
        return r;
    if (!ctl_emit_json(ctx, o))
        print_allocation(ctx, o);
    return 0;
}

/* restore and purge: 202 with the allocation and the job that does the work. */
static int action(CtlContext *ctx, const CtlArgs *args, const char *verb, const char *what)
{
    _cleanup_json_ json_object *o = NULL;
    _cleanup_free_ char *path = NULL, *suffix = ctl_path("/%s", verb);
    int64_t job;
    int r;

    if (!suffix)
        return ctl_fail(ctx, -ENOMEM, "out of memory");
    r = allocation_path(ctx, args->pos[0], suffix, &path);
    if (r < 0)
        return r;
    r = ctl_call(ctx, "POST", path, NULL, &o);
    if (r < 0)
        return r;
    if (ctl_emit_json(ctx, o))
        return 0;
    job = cm_json_get_int(o, "job_id", 0);
    fprintf(ctx->out,
            "Allocation %" PRId64 " (now %s) is being %s by job %" PRId64 ".\n"
            "Follow it with: %s job watch %" PRId64 "\n",
            cm_json_get_int(o, "id", 0), cm_json_get_str(o, "state", "?"), what, job, CTL_PROGRAM,
            job);
    return 0;
}

static int cmd_restore(CtlContext *ctx, const CtlArgs *args)
{
    return action(ctx, args, "restore", "restored");
}

static int cmd_purge(CtlContext *ctx, const CtlArgs *args)
{
    return action(ctx, args, "purge", "purged");
}

static const CtlOption list_options[] = {
    {"state", 0, "STATE", CTL_OPT_VALUE,
     "only allocations in this state (provisioning, active, resizing, reclaiming, retained, "
     "purged, error)"},
    {"purpose", 0, "PURPOSE", CTL_OPT_VALUE, "only trial or production allocations"},
    {"department", 0, "ID", CTL_OPT_VALUE, "only this department's allocations"},
    {"system", 0, "ID", CTL_OPT_VALUE, "only allocations of this system"},
    CTL_LIST_OPTIONS,
    {NULL},
};

#define ALLOCATION_ID .args = "ID", .min_args = 1, .max_args = 1

const CtlCommand ctl_allocation_commands[] = {
    {
        .group = "allocation",
        .verb = "list",
        .handler = cmd_list,
        .help = "list allocations (a department sees its own)",
        .options = list_options,
        .example = "  cloudbrokerctl allocation list --state active --purpose production",
    },
    {
        .group = "allocation",
        .verb = "show",
        .handler = cmd_show,
        .help = "show an allocation and its instances: host, UUID, sizes, live state",
        ALLOCATION_ID,
        .example = "  cloudbrokerctl allocation show 2",
    },
    {
        .group = "allocation",
        .verb = "restore",
        .handler = cmd_restore,
        .help = "bring a retained allocation back on its kept volumes (reviewer)",
        ALLOCATION_ID,
        .description =
            "A terminated allocation keeps its volumes for the lifecycle policy's retention\n"
            "period (state retained). Restoring defines and starts its instances again on\n"
            "those volumes; the department's quota is checked as for a new allocation.",
        .example = "  cloudbrokerctl allocation restore 2\n"
                   "  cloudbrokerctl job watch 9",
    },
    {
        .group = "allocation",
        .verb = "purge",
        .handler = cmd_purge,
        .help = "wipe and delete a retained allocation's volumes now (reviewer)",
        ALLOCATION_ID,
        .description = "What the retention sweeper does at the end of the retention period, at\n"
                       "once. The volumes are wiped before they are deleted; nothing can be\n"
                       "restored afterwards.",
        .example = "  cloudbrokerctl allocation purge 2",
    },
    {NULL},
};
