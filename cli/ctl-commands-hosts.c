/* SPDX-License-Identifier: Apache-2.0 */
/* Hypervisor hosts: /v1/hosts (the vendor registers and updates them; the bureau reads). */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "ctl-commands.h"
#include "ctl-output.h"
#include "ctl-values.h"
#include "cm-json.h"
#include "cm-util.h"

static const char *const pools[] = {"trial", "production", NULL};

static const struct {
    const char *option, *key;
    double max;
} ratio_options[] = {
    {"cpu-ratio", "cpu_ratio", CTL_CPU_RATIO_MAX},
    {"ram-ratio", "ram_ratio", CTL_RAM_RATIO_MAX},
    {"disk-ratio", "disk_ratio", CTL_DISK_RATIO_MAX},
};

/* The --*-ratio options into @body; with @allow_default, "default" sends null. */
static int add_ratios(CtlContext *ctx, const CtlArgs *args, bool allow_default, json_object *body)
{
    for (size_t i = 0; i < ELEMENTSOF(ratio_options); i++) {
        const char *v = ctl_args_get(args, ratio_options[i].option);
        _cleanup_free_ char *name = cm_strdup_printf("--%s", ratio_options[i].option);
        _cleanup_free_ char *msg = NULL;
        bool def = false;
        double ratio;
        int r;

        if (!v)
            continue;
        r = ctl_parse_ratio(name ? name : ratio_options[i].option, v, ratio_options[i].max,
                            allow_default, &ratio, &def, &msg);
        if (r == -ENOMEM)
            return ctl_fail(ctx, r, "out of memory");
        if (r < 0)
            return ctl_usage_error(ctx, "%s", msg);
        json_object_object_add(body, ratio_options[i].key,
                               def ? NULL : json_object_new_double(ratio));
    }
    return 0;
}

/* "8/16384/100": vCPUs (or CPUs), MiB, GiB of one resource object. */
static char *triple(json_object *o, const char *cpu_key)
{
    return cm_strdup_printf("%" PRId64 "/%" PRId64 "/%" PRId64, cm_json_get_int(o, cpu_key, 0),
                            cm_json_get_int(o, "memory_mib", 0), cm_json_get_int(o, "disk_gib", 0));
}

static bool capacity_known(json_object *h)
{
    return cm_json_get_bool(cm_json_get(h, "capacity"), "known", false);
}

static void print_host(CtlContext *ctx, json_object *h)
{
    static const CtlColumn cols[] = {
        {"", CTL_ALIGN_LEFT},
        {"VCPUS", CTL_ALIGN_RIGHT},
        {"MEMORY_MIB", CTL_ALIGN_RIGHT},
        {"DISK_GIB", CTL_ALIGN_RIGHT},
        {"INSTANCES", CTL_ALIGN_RIGHT},
    };
    static const struct {
        const char *label, *member, *cpu_key;
    } rows[] = {
        {"capacity", "capacity", "cpus"},
        {"allocated", "allocated", "vcpus"},
        {"free", "free_after_overcommit", "vcpus"},
    };
    const int w = 14;
    json_object *conn = cm_json_get(h, "connection"), *ratios = cm_json_get(h, "overcommit");
    json_object *cap = cm_json_get(h, "capacity");
    _cleanup_(ctl_table_freep) CtlTable *t = ctl_table_new(cols, ELEMENTSOF(cols));
    _cleanup_free_ char *state = NULL, *over = NULL, *avail = NULL;

    state = cm_strdup_printf(
        "%s since %s (%" PRId64 " connection%s made)", cm_json_get_str(conn, "state", "?"),
        cm_json_get_str(conn, "since", "?"), cm_json_get_int(conn, "connects", 0),
        cm_json_get_int(conn, "connects", 0) == 1 ? "" : "s");
    over = cm_strdup_printf("cpu %g, ram %g, disk %g (%s)", cm_json_get_double(ratios, "cpu", 0),
                            cm_json_get_double(ratios, "ram", 0),
                            cm_json_get_double(ratios, "disk", 0),
                            cm_json_get_bool(ratios, "from_policy", false)
                                ? "the placement policy's"
                                : "set for this host; any not set follow the policy");
    if (cm_json_get(cap, "disk_available_gib") &&
        json_object_is_type(cm_json_get(cap, "disk_available_gib"), json_type_int))
        avail = cm_strdup_printf("%" PRId64 " GiB", cm_json_get_int(cap, "disk_available_gib", 0));

    ctl_print_json_field(ctx->out, 0, w, "Host", cm_json_get(h, "id"));
    ctl_print_json_field(ctx->out, 0, w, "Name", cm_json_get(h, "name"));
    ctl_print_json_field(ctx->out, 0, w, "URI", cm_json_get(h, "uri"));
    ctl_print_json_field(ctx->out, 0, w, "Pool", cm_json_get(h, "pool"));
    ctl_print_json_field(ctx->out, 0, w, "Storage pool", cm_json_get(h, "storage_pool"));
    if (cm_json_get_str(h, "storage_error", NULL))
        ctl_print_json_field(ctx->out, 0, w, "Storage error", cm_json_get(h, "storage_error"));
    ctl_print_json_field(ctx->out, 0, w, "Enabled", cm_json_get(h, "enabled"));
    ctl_print_json_field(ctx->out, 0, w, "Maintenance", cm_json_get(h, "maintenance"));
    ctl_print_field(ctx->out, 0, w, "Connection", state);
    if (cm_json_get_str(conn, "error", NULL))
        ctl_print_json_field(ctx->out, 0, w, "Last error", cm_json_get(conn, "error"));
    ctl_print_json_field(ctx->out, 0, w, "Hypervisor", cm_json_get(conn, "hypervisor"));
    ctl_print_json_field(ctx->out, 0, w, "Domain type", cm_json_get(h, "domain_type"));
    if (cm_json_get_str(h, "domain_type_note", NULL))
        ctl_print_json_field(ctx->out, 0, w, "KVM not used", cm_json_get(h, "domain_type_note"));
    ctl_print_field(ctx->out, 0, w, "Overcommit", over);
    if (avail)
        ctl_print_field(ctx->out, 0, w, "Disk free now", avail);
    ctl_print_json_field(ctx->out, 0, w, "Created", cm_json_get(h, "created_at"));
    ctl_print_json_field(ctx->out, 0, w, "Updated", cm_json_get(h, "updated_at"));
    if (!t)
        return;
    for (size_t i = 0; i < ELEMENTSOF(rows); i++) {
        json_object *o = cm_json_get(h, rows[i].member);
        char *cells[5] = {strdup(rows[i].label)};
        bool unknown = i != 1 && !capacity_known(h);
        cells[1] = unknown ? strdup("?") : ctl_json_text(cm_json_get(o, rows[i].cpu_key));
        cells[2] = unknown ? strdup("?") : ctl_json_text(cm_json_get(o, "memory_mib"));
        cells[3] = unknown ? strdup("?") : ctl_json_text(cm_json_get(o, "disk_gib"));
        cells[4] = ctl_json_text(cm_json_get(o, "instances"));
        ctl_table_add_row(t, (const char *const *)cells, 5);
        for (size_t k = 0; k < 5; k++)
            free(cells[k]);
    }
    fputs("\nResources (capacity is physical; free is after overcommit):\n", ctx->out);
    ctl_table_print(t, ctx->out, 2);
    if (!capacity_known(h))
        fputs("  (capacity unknown until the broker has connected to the host)\n", ctx->out);
}

static int show_answer(CtlContext *ctx, json_object *h, const char *done)
{
    if (ctl_emit_json(ctx, h))
        return 0;
    if (done) {
        _cleanup_free_ char *name = ctl_text_sanitize(cm_json_get_str(h, "name", "?"), true);
        fprintf(ctx->out, "Host %" PRId64 " '%s' %s.\n\n", cm_json_get_int(h, "id", 0),
                name ? name : "?", done);
    }
    print_host(ctx, h);
    return 0;
}

/*
 * A host's new agent token (from host add or agent-token): into @out (mode 0600) when given,
 * else on stdout once, with how to install it for cloudbroker-agent. With --json the document
 * says where the token went instead of carrying it, when it went to a file.
 */
static int show_agent_token(CtlContext *ctx, json_object *doc, const char *out, const char *option)
{
    const char *token = cm_json_get_str(doc, "agent_token", NULL);
    _cleanup_free_ char *copy = NULL;
    int r = 0;

    if (!token)
        return ctl_fail(ctx, -EBADMSG, "the server's answer holds no agent token");
    copy = strdup(token);
    if (!copy)
        return ctl_fail(ctx, -ENOMEM, "out of memory");
    if (out)
        r = ctl_write_secret(ctx, out, copy);
    if (ctx->json) {
        if (out && r >= 0) {
            json_object_object_del(doc, "agent_token");
            json_object_object_add(doc, "agent_token_file", json_object_new_string(out));
        }
        ctl_print_json(ctx->out, doc);
    } else if (out && r >= 0) {
        fprintf(ctx->out,
                "The agent token was written to %s (mode 0600).\n"
                "Install it on the host, as root, where the agent's unit reads it, and restart "
                "the agent:\n"
                "    install -D -m 0600 %s /etc/cloudbroker/agent.token\n"
                "    systemctl restart cloudbroker-agent\n",
                out, out);
    } else {
        /* The broker keeps only a hash: a token not shown now is lost for good. */
        fprintf(ctx->out,
                "Agent token (shown only this once; %s%s):\n"
                "    %s\n"
                "Store it on the host, as root, readable by root only, and restart the agent:\n"
                "    umask 077; cat > /etc/cloudbroker/agent.token    (paste it, then Ctrl-D)\n"
                "    systemctl restart cloudbroker-agent\n",
                out ? "it could not be saved" : option,
                out ? "" : " FILE writes it to a file instead", copy);
    }
    explicit_bzero(copy, strlen(copy));
    return r;
}

static int cmd_add(CtlContext *ctx, const CtlArgs *args)
{
    _cleanup_json_ json_object *body = json_object_new_object(), *o = NULL;
    const char *pool = ctl_args_get(args, "pool"), *v;
    int r;

    r = ctl_check_choice(ctx, "--pool", pool, pools);
    if (r < 0)
        return r;
    json_object_object_add(body, "name", json_object_new_string(ctl_args_get(args, "name")));
    json_object_object_add(body, "uri", json_object_new_string(ctl_args_get(args, "uri")));
    json_object_object_add(body, "pool", json_object_new_string(pool));
    if ((v = ctl_args_get(args, "storage-pool")))
        json_object_object_add(body, "storage_pool", json_object_new_string(v));
    r = add_ratios(ctx, args, false, body);
    if (r >= 0)
        r = ctl_call(ctx, "POST", "/v1/hosts", body, &o);
    if (r < 0)
        return r;
    /* The answer carries the host's agent token, shown once; with --json it is printed there. */
    if (ctx->json)
        return show_agent_token(ctx, o, ctl_args_get(args, "agent-token-out"), "--agent-token-out");
    /* The broker connects from the host's own thread: the answer does not wait for it. */
    show_answer(ctx, o, "registered; the broker connects to it in the background");
    if (!cm_json_get_str(o, "agent_token", NULL))
        return 0;
    fputc('\n', ctx->out);
    return show_agent_token(ctx, o, ctl_args_get(args, "agent-token-out"), "--agent-token-out");
}

static int cmd_list(CtlContext *ctx, const CtlArgs *args)
{
    static const CtlColumn cols[] = {
        {"ID", CTL_ALIGN_RIGHT},       {"NAME", CTL_ALIGN_LEFT},
        {"POOL", CTL_ALIGN_LEFT},      {"CONNECTION", CTL_ALIGN_LEFT},
        {"CAPACITY", CTL_ALIGN_RIGHT}, {"ALLOCATED", CTL_ALIGN_RIGHT},
        {"FREE", CTL_ALIGN_RIGHT},     {"INSTANCES", CTL_ALIGN_RIGHT},
        {"ENABLED", CTL_ALIGN_LEFT},   {"MAINTENANCE", CTL_ALIGN_LEFT},
    };
    _cleanup_(ctl_table_freep) CtlTable *t = NULL;
    _cleanup_json_ json_object *doc = NULL;
    static const CtlFilter filters[] = {{"pool", .choices = pools}};
    json_object *items, *next;
    size_t n;
    int r = ctl_fetch_filtered(ctx, "/v1/hosts", filters, ELEMENTSOF(filters), args, &doc);

    if (r < 0)
        return r;
    if (ctl_emit_json(ctx, doc))
        return 0;
    items = cm_json_get(doc, "items");
    next = cm_json_get(doc, "next");
    n = items ? json_object_array_length(items) : 0;
    if (n == 0) {
        fputs("(none)\n", ctx->out);
    } else {
        t = ctl_table_new(cols, ELEMENTSOF(cols));
        if (!t)
            return ctl_fail(ctx, -ENOMEM, "out of memory");
        for (size_t i = 0; i < n; i++) {
            json_object *h = json_object_array_get_idx(items, i);
            char *cells[ELEMENTSOF(cols)] = {
                ctl_json_text(cm_json_get(h, "id")),
                ctl_json_text(cm_json_get(h, "name")),
                ctl_json_text(cm_json_get(h, "pool")),
                ctl_json_text(ctl_json_path(h, "connection.state")),
                capacity_known(h) ? triple(cm_json_get(h, "capacity"), "cpus") : strdup("?"),
                triple(cm_json_get(h, "allocated"), "vcpus"),
                capacity_known(h) ? triple(cm_json_get(h, "free_after_overcommit"), "vcpus")
                                  : strdup("?"),
                ctl_json_text(ctl_json_path(h, "allocated.instances")),
                ctl_json_text(cm_json_get(h, "enabled")),
                ctl_json_text(cm_json_get(h, "maintenance")),
            };
            r = ctl_table_add_row(t, (const char *const *)cells, ELEMENTSOF(cols));
            for (size_t k = 0; k < ELEMENTSOF(cols); k++)
                free(cells[k]);
            if (r < 0)
                return ctl_fail(ctx, r, "out of memory");
        }
        ctl_table_print(t, ctx->out, 0);
        fputs("(CAPACITY, ALLOCATED, FREE: vCPUs/memory MiB/disk GiB; FREE is after "
              "overcommit)\n",
              ctx->out);
    }
    if (next)
        fprintf(ctx->out, "(more entries: add --after %" PRId64 ")\n", json_object_get_int64(next));
    return 0;
}

static int host_path(CtlContext *ctx, const CtlArgs *args, char **ret)
{
    int64_t id;
    int r = ctl_parse_id(ctx, "host", args->pos[0], &id);
    if (r < 0)
        return r;
    *ret = ctl_path("/v1/hosts/%" PRId64, id);
    return *ret ? 0 : ctl_fail(ctx, -ENOMEM, "out of memory");
}

static int cmd_show(CtlContext *ctx, const CtlArgs *args)
{
    _cleanup_json_ json_object *o = NULL;
    _cleanup_free_ char *path = NULL;
    int r;

    r = host_path(ctx, args, &path);
    if (r >= 0)
        r = ctl_call(ctx, "GET", path, NULL, &o);
    if (r < 0)
        return r;
    return show_answer(ctx, o, NULL);
}

static int add_switch(CtlContext *ctx, const CtlArgs *args, const char *option, const char *key,
                      json_object *body)
{
    const char *v = ctl_args_get(args, option);
    _cleanup_free_ char *name = cm_strdup_printf("--%s", option), *msg = NULL;
    bool on;
    int r;

    if (!v)
        return 0;
    r = ctl_parse_switch(name ? name : option, v, &on, &msg);
    if (r == -ENOMEM)
        return ctl_fail(ctx, r, "out of memory");
    if (r < 0)
        return ctl_usage_error(ctx, "%s", msg);
    json_object_object_add(body, key, json_object_new_boolean(on));
    return 0;
}

static int cmd_update(CtlContext *ctx, const CtlArgs *args)
{
    _cleanup_json_ json_object *body = json_object_new_object(), *o = NULL;
    _cleanup_free_ char *path = NULL;
    int r;

    r = host_path(ctx, args, &path);
    if (r >= 0)
        r = add_switch(ctx, args, "maintenance", "maintenance", body);
    if (r >= 0)
        r = add_switch(ctx, args, "enabled", "enabled", body);
    if (r >= 0)
        r = add_ratios(ctx, args, true, body);
    if (r < 0)
        return r;
    if (ctl_args_get(args, "storage-pool"))
        json_object_object_add(body, "storage_pool",
                               json_object_new_string(ctl_args_get(args, "storage-pool")));
    if (json_object_object_length(body) == 0)
        return ctl_usage_error(ctx, "nothing to change: give --maintenance, --enabled, "
                                    "--storage-pool or a --*-ratio option");
    r = ctl_call(ctx, "PATCH", path, body, &o);
    if (r < 0)
        return r;
    return show_answer(ctx, o, "updated");
}

static int cmd_agent_token(CtlContext *ctx, const CtlArgs *args)
{
    _cleanup_json_ json_object *o = NULL;
    _cleanup_free_ char *path = NULL, *host = NULL;
    int r;

    r = host_path(ctx, args, &host);
    if (r < 0)
        return r;
    path = ctl_path("%s/agent-token", host);
    if (!path)
        return ctl_fail(ctx, -ENOMEM, "out of memory");
    r = ctl_call(ctx, "POST", path, NULL, &o);
    if (r < 0)
        return r;
    if (!ctx->json)
        fprintf(ctx->out,
                "New agent token for host %" PRId64 "; its previous agent token no longer works.\n"
                "Until the agent is restarted with the new one its pushes are refused (401) and\n"
                "wait in its spool: nothing is lost.\n",
                cm_json_get_int(o, "id", 0));
    return show_agent_token(ctx, o, ctl_args_get(args, "output"), "-o");
}

#define RATIO_OPTIONS(meta, what)                                                                  \
    {"cpu-ratio", 0, meta, CTL_OPT_VALUE, "vCPUs per physical CPU (0-64]" what},                   \
        {"ram-ratio", 0, meta, CTL_OPT_VALUE, "memory overcommit (0-16]" what},                    \
    {                                                                                              \
        "disk-ratio", 0, meta, CTL_OPT_VALUE, "disk overcommit (0-64]" what                        \
    }

static const CtlOption add_options[] = {
    {"name", 0, "NAME", CTL_OPT_VALUE | CTL_OPT_REQUIRED, "the host's name: a-z, 0-9, . _ -"},
    {"uri", 0, "URI", CTL_OPT_VALUE | CTL_OPT_REQUIRED,
     "libvirt URI: qemu+tls://HOST/system, qemu+ssh://USER@HOST/system, ..."},
    {"pool", 0, "POOL", CTL_OPT_VALUE | CTL_OPT_REQUIRED, "trial or production"},
    {"storage-pool", 0, "NAME", CTL_OPT_VALUE,
     "the libvirt storage pool whose size is the host's disk capacity (default: default)"},
    RATIO_OPTIONS("X", "; default: the placement policy's"),
    {"agent-token-out", 0, "FILE", CTL_OPT_VALUE,
     "write the host's agent token to FILE (mode 0600) instead of showing it"},
    {NULL},
};

static const CtlOption list_options[] = {
    {"pool", 0, "POOL", CTL_OPT_VALUE, "only hosts of the trial or production pool"},
    CTL_LIST_OPTIONS,
    {NULL},
};

static const CtlOption agent_token_options[] = {
    {"output", 'o', "FILE", CTL_OPT_VALUE, "write the token to FILE (mode 0600) instead"},
    {NULL},
};

static const CtlOption update_options[] = {
    {"maintenance", 0, "on|off", CTL_OPT_VALUE,
     "in maintenance nothing new is placed on the host; what runs there stays"},
    {"enabled", 0, "yes|no", CTL_OPT_VALUE, "a disabled host takes no new instances"},
    RATIO_OPTIONS("X|default", "; 'default': the placement policy's"),
    {"storage-pool", 0, "NAME", CTL_OPT_VALUE,
     "the libvirt storage pool whose size is the host's disk capacity and where new disks go"},
    {NULL},
};

const CtlCommand ctl_host_commands[] = {
    {
        .group = "host",
        .verb = "add",
        .handler = cmd_add,
        .help = "register a hypervisor host (vendor)",
        .options = add_options,
        .description =
            "The broker keeps one libvirt connection to each host, opened from its own thread;\n"
            "the host shows as disconnected until that connection is made, and again while a\n"
            "lost connection is being reopened. The trial pool runs the vendor's trial\n"
            "environments, the production pool the allocations.",
        .example = "  cloudbrokerctl host add --name kvm-01 --pool production \\\n"
                   "      --uri 'qemu+tls://kvm-01.cloud.example/system' --cpu-ratio 2\n"
                   "  cloudbrokerctl host add --name trial-01 --pool trial \\\n"
                   "      --uri 'qemu+ssh://cloudbroker@trial-01.cloud.example/system'",
    },
    {
        .group = "host",
        .verb = "list",
        .handler = cmd_list,
        .help = "list hosts with their connection, capacity and free room",
        .options = list_options,
        .example = "  cloudbrokerctl host list --pool production",
    },
    {
        .group = "host",
        .verb = "show",
        .handler = cmd_show,
        .help = "show a host",
        .args = "ID",
        .min_args = 1,
        .max_args = 1,
        .example = "  cloudbrokerctl host show 2",
    },
    {
        .group = "host",
        .verb = "update",
        .handler = cmd_update,
        .help = "maintenance mode, enabling, overcommit and storage pool of a host (vendor)",
        .args = "ID",
        .min_args = 1,
        .max_args = 1,
        .options = update_options,
        .example = "  cloudbrokerctl host update 2 --maintenance on\n"
                   "  cloudbrokerctl host update 2 --cpu-ratio default --ram-ratio 1.5\n"
                   "  cloudbrokerctl host update 2 --storage-pool cloudbroker",
    },
    {
        .group = "host",
        .verb = "agent-token",
        .handler = cmd_agent_token,
        .help = "issue a new token for the host's cloudbroker-agent (vendor)",
        .args = "ID",
        .min_args = 1,
        .max_args = 1,
        .options = agent_token_options,
        .description =
            "The agent token lets the host's cloudbroker-agent post usage windows for the\n"
            "instances on this host and nothing else. A new one replaces the old at once; the\n"
            "broker keeps only its hash, so it is shown once. The agent reads it when it\n"
            "starts (the unit's credential /etc/cloudbroker/agent.token).",
        .example = "  cloudbrokerctl host agent-token 2 -o kvm-01.agent.token\n"
                   "  scp kvm-01.agent.token root@kvm-01:/etc/cloudbroker/agent.token",
    },
    {NULL},
};
