/* SPDX-License-Identifier: Apache-2.0 */
/* The command table and the program's flow: global options, command, options, handler. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl-commands.h"
#include "cb-config.h"
#include "cm-util.h"

const CtlOption ctl_global_options[] = {
    {"url", 0, "URL", CTL_OPT_VALUE, "the broker (default " CTL_DEFAULT_URL ")"},
    {"token", 0, "TOKEN", CTL_OPT_VALUE, "bearer token (others can see it in ps: use a file)"},
    {"token-file", 0, "FILE", CTL_OPT_VALUE, "read the bearer token from FILE"},
    {"config", 0, "FILE", CTL_OPT_VALUE, "config file (default ~/.config/cloudbroker/ctl.json)"},
    {"json", 0, NULL, 0, "print the server's JSON document instead of text"},
    {"cacert", 0, "FILE", CTL_OPT_VALUE, "CA certificates (PEM) to verify an https broker with"},
    {"timeout", 0, "SECONDS", CTL_OPT_VALUE, "give up after SECONDS (default 30; files: stalled)"},
    {"verbose", 'v', NULL, 0, "show each HTTP exchange on stderr (never the token)"},
    {"version", 0, NULL, 0, "print the version and exit"},
    {NULL},
};

static const CtlGroup groups[] = {
    {"health", "is the broker up (needs no token)"},
    {"whoami", "the account your token belongs to"},
    {"token", "your own token"},
    {"policies", "the broker's policies"},
    {"department", "using units and their quotas (admin; reviewer may update)"},
    {"account", "accounts and their tokens (admin)"},
    {"system", "application systems (department; reviewer)"},
    {"request", "applications for resources, their review, trial and allocation"},
    {"host", "hypervisor hosts (vendor; reviewer and auditor read)"},
    {"allocation", "granted resources and their instances; restore and purge (reviewer)"},
    {"job", "hypervisor work: provisioning, resizing, reclaiming, purging"},
    {"event", "what the reconciler found on the hosts (reviewer, auditor, vendor)"},
    {"usage", "measured use of instances and allocations (department: its own)"},
    {"metering", "the daily rollups of the agents' samples (vendor, admin)"},
    {"assessment", "judge the instances' use and record findings (reviewer, vendor)"},
    {"finding", "idle and mis-sized instances, and what to do about them"},
    {"vulnerability", "security vulnerabilities of a system (vendor, department)"},
    {"incident", "security incidents of a system (vendor, department)"},
    {"backup", "backup attestations of a system (Art. 5; department, vendor)"},
    {"bulletin", "the vendor's monthly security bulletins (月度安全通报)"},
    {"drill", "the vendor's emergency drills (应急演练)"},
    {"restore-test", "the vendor's test restores of backups (备份恢复测试)"},
    {"ops-report", "the vendor's monthly operations reports (月度运维报告)"},
    {"report",
     "the annual assessment (Art. 9), the operations report (Art. 8), the cost statement"},
    {"audit", "the tamper-evident audit trail (reviewer, auditor)"},
};

static const CtlCommand *const tables[] = {
    ctl_service_commands,       ctl_whoami_commands,     ctl_department_commands,
    ctl_account_commands,       ctl_system_commands,     ctl_request_commands,
    ctl_host_commands,          ctl_allocation_commands, ctl_job_commands,
    ctl_event_commands,         ctl_audit_commands,      ctl_usage_commands,
    ctl_metering_commands,      ctl_assessment_commands, ctl_finding_commands,
    ctl_vulnerability_commands, ctl_incident_commands,   ctl_backup_commands,
    ctl_duty_commands,          ctl_report_commands,
};

const CtlGroup *ctl_groups(size_t *ret_n)
{
    *ret_n = ELEMENTSOF(groups);
    return groups;
}

const CtlGroup *ctl_find_group(const char *name)
{
    for (size_t i = 0; i < ELEMENTSOF(groups); i++)
        if (strcmp(groups[i].name, name) == 0)
            return &groups[i];
    return NULL;
}

const CtlCommand *ctl_command_at(size_t i)
{
    for (size_t t = 0; t < ELEMENTSOF(tables); t++) {
        for (const CtlCommand *c = tables[t]; c->group; c++)
            if (i-- == 0)
                return c;
    }
    return NULL;
}

/* The command @group @verb; @verb NULL finds a one-word command. */
static const CtlCommand *find_command(const char *group, const char *verb)
{
    const CtlCommand *c;
    for (size_t i = 0; (c = ctl_command_at(i)); i++)
        if (strcmp(c->group, group) == 0 && cm_streq(c->verb, verb))
            return c;
    return NULL;
}

char *ctl_command_name(const CtlCommand *cmd)
{
    return cm_strdup_printf("%s%s%s", cmd->group, cmd->verb ? " " : "", cmd->verb ? cmd->verb : "");
}

static int usage_fail(const char *help_for, const char *fmt, ...) _printf_(2, 3);

static int usage_fail(const char *help_for, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "%s: ", CTL_PROGRAM);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry '%s%s%s --help'.\n", CTL_PROGRAM, help_for ? " " : "",
            help_for ? help_for : "");
    return CTL_EXIT_USAGE;
}

/* `cloudbrokerctl help [GROUP [VERB]]`, the same as --help in those places. */
static int run_help(int n, char **rest)
{
    const CtlGroup *g;
    const CtlCommand *c;

    if (n == 0) {
        ctl_help_program(stdout);
        return CTL_EXIT_OK;
    }
    g = ctl_find_group(rest[0]);
    if (!g)
        return usage_fail(NULL, "unknown command '%s'", rest[0]);
    c = find_command(g->name, NULL);
    if (!c && n > 1)
        c = find_command(g->name, rest[1]);
    if (c)
        ctl_help_command(stdout, c);
    else if (n > 1)
        return usage_fail(g->name, "unknown command '%s %s'", g->name, rest[1]);
    else
        ctl_help_group(stdout, g);
    return CTL_EXIT_OK;
}

static int check_positionals(CtlContext *ctx, const CtlCommand *cmd, const CtlArgs *a)
{
    if (a->n_pos < cmd->min_args) {
        _cleanup_free_ char *name = ctl_command_name(cmd);
        return ctl_usage_error(ctx, "missing argument: '%s' needs %s", name ? name : cmd->group,
                               cmd->args ? cmd->args : "arguments");
    }
    if (a->n_pos > cmd->max_args)
        return ctl_usage_error(ctx, "unexpected argument '%s'", a->pos[cmd->max_args]);
    return 0;
}

static int configure(CtlContext *ctx, const CtlArgs *g)
{
    CtlConfigSources src = {
        .url = ctl_args_get(g, "url"),
        .token = ctl_args_get(g, "token"),
        .token_file = ctl_args_get(g, "token-file"),
        .config_file = ctl_args_get(g, "config"),
        .cacert = ctl_args_get(g, "cacert"),
        .timeout = ctl_args_get(g, "timeout"),
        .env_url = getenv("CLOUDBROKER_URL"),
        .env_token = getenv("CLOUDBROKER_TOKEN"),
        .env_token_file = getenv("CLOUDBROKER_TOKEN_FILE"),
        .home = getenv("HOME"),
        .xdg_config_home = getenv("XDG_CONFIG_HOME"),
    };
    CmError err = {0};

    if (ctl_config_resolve(&src, &ctx->config, &err) < 0) {
        const CtlCommand *cmd = ctx->command;
        int r;
        if (err.kind != CM_ERROR_INVALID)
            return ctl_fail(ctx, -EINVAL, "%s", err.message);
        /* A bad global option: the program's help describes it, not the command's. */
        ctx->command = NULL;
        r = ctl_usage_error(ctx, "%s", err.message);
        ctx->command = cmd;
        return r;
    }
    if (ctx->config.token_file_exposed)
        fprintf(ctx->err,
                "warning: the token file (%s) can be read by other users; "
                "chmod 600 it\n",
                ctx->config.token_origin);
    return 0;
}

/* The first of @argv that is a global option the command does not know, or NULL. */
static const CtlOption *misplaced_global(const CtlCommand *cmd, int n, char **argv)
{
    for (int i = 0; i < n; i++) {
        const char *arg = argv[i];
        size_t len;
        if (strncmp(arg, "--", 2) != 0)
            continue;
        len = strcspn(arg + 2, "=");
        for (const CtlOption *o = ctl_global_options; o->name; o++) {
            bool known = false;
            if (strlen(o->name) != len || strncmp(o->name, arg + 2, len) != 0)
                continue;
            for (const CtlOption *c = cmd->options; c && c->name; c++)
                known = known || strcmp(c->name, o->name) == 0;
            if (!known)
                return o;
        }
    }
    return NULL;
}

static int run_command(CtlContext *ctx, const CtlCommand *cmd, const CtlArgs *g, int n, char **rest)
{
    CtlArgs a = {0};
    _cleanup_free_ char *msg = NULL;
    int r;

    ctx->command = cmd;
    r = ctl_args_parse(cmd->options, n, rest, 0, &a, &msg);
    if (r == -ENOMEM) {
        fprintf(stderr, "%s: out of memory\n", CTL_PROGRAM);
        return CTL_EXIT_FAILURE;
    }
    if (r < 0) {
        const CtlOption *global = misplaced_global(cmd, n, rest);
        if (global)
            ctl_usage_error(ctx,
                            "--%s is a global option: put it before the command "
                            "(%s --%s %s ...)",
                            global->name, CTL_PROGRAM, global->name, cmd->group);
        else
            ctl_usage_error(ctx, "%s", msg);
        return CTL_EXIT_USAGE;
    }
    if (a.help) {
        ctl_help_command(stdout, cmd);
        return CTL_EXIT_OK;
    }
    r = check_positionals(ctx, cmd, &a);
    if (r >= 0)
        r = configure(ctx, g);
    if (r >= 0 && !(cmd->flags & CTL_CMD_NO_AUTH) && !ctx->config.token)
        r = ctl_usage_error(ctx, "no token: give --token-file FILE (or --token, "
                                 "CLOUDBROKER_TOKEN_FILE, CLOUDBROKER_TOKEN, or \"token_file\" "
                                 "in the config file)");
    if (r >= 0 && ctx->config.token && ctl_http_url_is_cleartext_remote(ctx->config.url))
        fprintf(ctx->err,
                "warning: %s is plain http; the token crosses the network "
                "unencrypted\n",
                ctx->config.url);
    if (r >= 0)
        r = cmd->handler(ctx, &a);
    ctl_args_clear(&a);
    if (r < 0)
        return ctx->usage_failed ? CTL_EXIT_USAGE : CTL_EXIT_FAILURE;
    return CTL_EXIT_OK;
}

int ctl_run(int argc, char **argv)
{
    CtlContext ctx = {.out = stdout, .err = stderr};
    CtlArgs g = {0};
    _cleanup_free_ char *msg = NULL;
    const CtlGroup *grp;
    const CtlCommand *cmd;
    char **rest;
    int n, r, status;

    r = ctl_args_parse(ctl_global_options, argc - 1, argv + 1, CTL_ARGS_STOP_AT_POSITIONAL, &g,
                       &msg);
    if (r == -ENOMEM) {
        fprintf(stderr, "%s: out of memory\n", CTL_PROGRAM);
        return CTL_EXIT_FAILURE;
    }
    if (r < 0)
        return usage_fail(NULL, "%s", msg);
    if (g.help) {
        ctl_help_program(stdout);
        return CTL_EXIT_OK;
    }
    if (ctl_args_has(&g, "version")) {
        printf("%s %s\n", CTL_PROGRAM, CB_VERSION);
        ctl_args_clear(&g);
        return CTL_EXIT_OK;
    }
    ctx.json = ctl_args_has(&g, "json");
    ctx.verbose = ctl_args_has(&g, "verbose");
    rest = argv + 1 + g.consumed;
    n = argc - 1 - g.consumed;

    if (n == 0) {
        ctl_help_program(stderr);
        status = CTL_EXIT_USAGE;
    } else if (strcmp(rest[0], "help") == 0) {
        status = run_help(n - 1, rest + 1);
    } else if (!(grp = ctl_find_group(rest[0]))) {
        status = usage_fail(NULL, "unknown command '%s'", rest[0]);
    } else if ((cmd = find_command(grp->name, NULL))) {
        status = run_command(&ctx, cmd, &g, n - 1, rest + 1);
    } else if (n == 1) {
        fprintf(stderr, "%s: '%s' needs a command\n\n", CTL_PROGRAM, grp->name);
        ctl_help_group(stderr, grp);
        status = CTL_EXIT_USAGE;
    } else if (strcmp(rest[1], "--help") == 0 || strcmp(rest[1], "-h") == 0) {
        ctl_help_group(stdout, grp);
        status = CTL_EXIT_OK;
    } else if (!(cmd = find_command(grp->name, rest[1]))) {
        status = usage_fail(grp->name, "unknown command '%s %s'", grp->name, rest[1]);
    } else {
        status = run_command(&ctx, cmd, &g, n - 2, rest + 2);
    }

    ctl_http_free(ctx.http);
    ctl_config_clear(&ctx.config);
    ctl_args_clear(&g);
    /* Output that never reached its file is a failure, not a success. */
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "%s: cannot write the output: %s\n", CTL_PROGRAM, strerror(errno));
        return status == CTL_EXIT_OK ? CTL_EXIT_FAILURE : status;
    }
    return status;
}
