/* SPDX-License-Identifier: Apache-2.0 */
/* --help texts, generated from the command table and the option tables. */
#include <stdlib.h>
#include <string.h>

#include "ctl-commands.h"
#include "ctl-output.h"
#include "cm-util.h"

/* "--name VALUE" or "-o, --output FILE", as shown in an option list. */
static char *option_label(const CtlOption *o)
{
    bool value = (o->flags & CTL_OPT_VALUE) != 0;
    if (o->short_name)
        return cm_strdup_printf("-%c, --%s%s%s", o->short_name, o->name, value ? " " : "",
                                value ? o->metavar : "");
    return cm_strdup_printf("    --%s%s%s", o->name, value ? " " : "", value ? o->metavar : "");
}

static void print_options(FILE *f, const CtlOption *opts, bool with_help)
{
    size_t width = strlen("-h, --help");

    for (const CtlOption *o = opts; o && o->name; o++) {
        _cleanup_free_ char *label = option_label(o);
        if (label && strlen(label) > width)
            width = strlen(label);
    }
    for (const CtlOption *o = opts; o && o->name; o++) {
        _cleanup_free_ char *label = option_label(o);
        fprintf(f, "  %-*s  %s%s%s\n", (int)width, label ? label : o->name, o->help,
                (o->flags & CTL_OPT_REQUIRED) ? " (required)" : "",
                (o->flags & CTL_OPT_REPEAT) ? " (repeatable)" : "");
    }
    if (with_help)
        fprintf(f, "  %-*s  %s\n", (int)width, "-h, --help", "show this help");
}

/* Prints the usage line: required options plainly, optional ones in brackets. */
static void print_usage_line(FILE *f, const CtlCommand *cmd)
{
    fprintf(f, "Usage: %s [GLOBAL OPTIONS] %s", CTL_PROGRAM, cmd->group);
    if (cmd->verb)
        fprintf(f, " %s", cmd->verb);
    if (cmd->args)
        fprintf(f, " %s", cmd->args);
    for (const CtlOption *o = cmd->options; o && o->name; o++) {
        bool req = (o->flags & CTL_OPT_REQUIRED) != 0, value = (o->flags & CTL_OPT_VALUE) != 0;
        fprintf(f, " %s--%s%s%s%s%s", req ? "" : "[", o->name, value ? " " : "",
                value ? o->metavar : "", req ? "" : "]", (o->flags & CTL_OPT_REPEAT) ? "..." : "");
    }
    fputc('\n', f);
}

void ctl_help_command(FILE *f, const CtlCommand *cmd)
{
    print_usage_line(f, cmd);
    fprintf(f, "\n%s.\n", cmd->help);
    if (cmd->description)
        fprintf(f, "\n%s\n", cmd->description);
    fputs("\nOptions:\n", f);
    print_options(f, cmd->options, true);
    fprintf(f, "\nGlobal options (before the command) are listed by '%s --help'.\n", CTL_PROGRAM);
    if (cmd->example)
        fprintf(f, "\nExample:\n%s\n", cmd->example);
}

static void print_commands(FILE *f, const char *group)
{
    size_t n_groups, width = 0;
    const CtlGroup *groups = ctl_groups(&n_groups);
    const CtlCommand *c;

    for (size_t i = 0; (c = ctl_command_at(i)); i++) {
        _cleanup_free_ char *name = ctl_command_name(c);
        if ((!group || strcmp(group, c->group) == 0) && name && strlen(name) > width)
            width = strlen(name);
    }
    /* In the groups' order, which follows the workflow, whatever file a command is in. */
    for (size_t g = 0; g < n_groups; g++) {
        if (group && strcmp(group, groups[g].name) != 0)
            continue;
        for (size_t i = 0; (c = ctl_command_at(i)); i++) {
            _cleanup_free_ char *name = ctl_command_name(c);
            if (strcmp(groups[g].name, c->group) != 0)
                continue;
            fprintf(f, "  %-*s  %s\n", (int)width, name ? name : c->group, c->help);
        }
    }
}

void ctl_help_group(FILE *f, const CtlGroup *g)
{
    fprintf(f, "Usage: %s [GLOBAL OPTIONS] %s COMMAND [OPTIONS]\n\n", CTL_PROGRAM, g->name);
    fprintf(f, "%s: %s.\n\nCommands:\n", g->name, g->help);
    print_commands(f, g->name);
    fprintf(f, "\nRun '%s %s COMMAND --help' for a command's options and an example.\n",
            CTL_PROGRAM, g->name);
}

void ctl_help_program(FILE *f)
{
    fprintf(f,
            "Usage: %s [GLOBAL OPTIONS] COMMAND [ARGUMENTS] [OPTIONS]\n"
            "\n"
            "Works with cloudbrokerd, the government-cloud resource broker: departments,\n"
            "accounts, application systems, requests for resources and their review, the\n"
            "vendor's trial, hypervisor hosts, allocations and the jobs that make them, the\n"
            "reconciler's events, measured usage, findings on idle and mis-sized instances,\n"
            "security and backup records, the annual assessment and operations reports, the\n"
            "monthly cost statement, and the audit trail.\n"
            "\n"
            "Commands:\n",
            CTL_PROGRAM);
    print_commands(f, NULL);
    fputs("\nGlobal options:\n", f);
    print_options(f, ctl_global_options, true);
    fprintf(f,
            "\n"
            "Settings come from the flags, else the environment (CLOUDBROKER_URL,\n"
            "CLOUDBROKER_TOKEN, CLOUDBROKER_TOKEN_FILE), else the config file\n"
            "~/.config/cloudbroker/ctl.json: {\"url\": \"https://...\", \"token_file\": "
            "\"...\", \"cacert\": \"...\"}.\n"
            "\n"
            "Exit status: 0 done; 1 the broker refused or could not be reached, or a file\n"
            "could not be used; 2 a usage error (unknown command or option, bad argument).\n"
            "\n"
            "Run '%s COMMAND --help' (or '%s help COMMAND') for a command's options.\n"
            "\n"
            "Example:\n"
            "  %s --url http://127.0.0.1:8470 --token-file ~/.cloudbroker/token \\\n"
            "      request list --state submitted\n",
            CTL_PROGRAM, CTL_PROGRAM, CTL_PROGRAM);
}
