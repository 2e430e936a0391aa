/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <json-c/json.h>

#include "ctl-args.h"
#include "ctl-config.h"
#include "ctl-http.h"
#include "ctl-output.h"

/*
 * The command table and what every command handler shares: the resolved configuration, the
 * HTTP client, output mode, and helpers that print errors the same way everywhere.
 */

#define CTL_PROGRAM "cloudbrokerctl"

/* Exit statuses. */
#define CTL_EXIT_OK 0
#define CTL_EXIT_FAILURE 1 /* the API refused, the server is unreachable, a file is unusable */
#define CTL_EXIT_USAGE 2   /* unknown command or option, missing or malformed argument */

struct CtlCommand;

typedef struct {
    CtlConfig config;
    CtlHttp *http; /* made on first use */
    bool json;     /* --json: print the server's documents */
    bool verbose;  /* -v: log each HTTP exchange on stderr */
    bool usage_failed;
    const struct CtlCommand *command;
    FILE *out; /* stdout */
    FILE *err; /* stderr */
} CtlContext;

/*
 * A command's handler. Returns: 0, or a negative errno after the problem was printed
 * (ctl_usage_error() marks usage errors, which exit with CTL_EXIT_USAGE).
 */
typedef int (*CtlHandler)(CtlContext *ctx, const CtlArgs *args);

typedef enum {
    CTL_CMD_NO_AUTH = 1u << 0, /* the endpoint needs no token */
} CtlCommandFlags;

typedef struct CtlCommand {
    const char *group; /* "request"; NULL ends a table */
    const char *verb;  /* "create"; NULL for a one-word command such as "health" */
    CtlHandler handler;
    const char *help; /* one line for listings */
    const char *args; /* positional arguments for the usage line: "ID KIND FILE" */
    unsigned min_args, max_args;
    const CtlOption *options; /* NULL-terminated, or NULL */
    const char *description;  /* further paragraphs for --help, or NULL */
    const char *example;      /* one or more lines of example commands */
    unsigned flags;           /* CtlCommandFlags */
} CtlCommand;

/* Each resource's commands, NULL-terminated; the groups' order is in ctl-commands.c. */
extern const CtlCommand ctl_service_commands[];
extern const CtlCommand ctl_whoami_commands[];
extern const CtlCommand ctl_department_commands[];
extern const CtlCommand ctl_account_commands[];
extern const CtlCommand ctl_system_commands[];
extern const CtlCommand ctl_request_commands[];
extern const CtlCommand ctl_host_commands[];
extern const CtlCommand ctl_allocation_commands[];
extern const CtlCommand ctl_job_commands[];
extern const CtlCommand ctl_event_commands[];
extern const CtlCommand ctl_audit_commands[];
extern const CtlCommand ctl_usage_commands[];
extern const CtlCommand ctl_metering_commands[];
extern const CtlCommand ctl_finding_commands[];
extern const CtlCommand ctl_assessment_commands[];
extern const CtlCommand ctl_vulnerability_commands[];
extern const CtlCommand ctl_incident_commands[];
extern const CtlCommand ctl_backup_commands[];
extern const CtlCommand ctl_duty_commands[];
extern const CtlCommand ctl_report_commands[];

typedef struct {
    const char *name;
    const char *help;
} CtlGroup;

/* The options that go before the command. */
extern const CtlOption ctl_global_options[];

/** ctl_command_at: Returns: the @i-th command of all tables (from 0), or NULL past the end. */
const CtlCommand *ctl_command_at(size_t i);

/** ctl_groups: Returns: the command groups in help order; @ret_n receives their number. */
const CtlGroup *ctl_groups(size_t *ret_n);

/** ctl_find_group: Returns: the group called @name, or NULL. */
const CtlGroup *ctl_find_group(const char *name);

/**
 * ctl_run:
 * The whole program: global options, the command, its options, the handler.
 * Returns: the exit status (CTL_EXIT_*).
 */
int ctl_run(int argc, char **argv);

/* ---- help (ctl-help.c) ---- */

/** ctl_help_program: prints the program's usage, commands and global options to @f. */
void ctl_help_program(FILE *f);

/** ctl_help_group: prints @g's usage and its commands to @f. */
void ctl_help_group(FILE *f, const CtlGroup *g);

/** ctl_help_command: prints @cmd's usage, options and example to @f. */
void ctl_help_command(FILE *f, const CtlCommand *cmd);

/**
 * ctl_command_name:
 * Returns: "group verb" (or "group") for @cmd, newly allocated, or NULL on allocation failure.
 */
char *ctl_command_name(const CtlCommand *cmd);

/* ---- shared by the handlers (ctl-context.c) ---- */

/**
 * ctl_usage_error:
 * Prints "cloudbrokerctl: MESSAGE" and where to find help on stderr, and marks the run as a
 * usage error. Returns: -EINVAL.
 */
int ctl_usage_error(CtlContext *ctx, const char *fmt, ...) _printf_(2, 3);

/** ctl_fail: prints "error: MESSAGE" on stderr. Returns: @r (a negative errno). */
int ctl_fail(CtlContext *ctx, int r, const char *fmt, ...) _printf_(3, 4);

/**
 * ctl_print_api_error:
 * Prints @e as "error: MESSAGE (field F, HTTP S, code C)" on stderr (the message made safe
 * for a terminal; the field part left out when the broker named none).
 */
void ctl_print_api_error(CtlContext *ctx, const CtlHttpError *e);

/**
 * ctl_http:
 * Returns: 0 with the context's HTTP client in @ret (made on first use), or a negative errno
 * after printing why it cannot be made.
 */
int ctl_http(CtlContext *ctx, CtlHttp **ret);

/**
 * ctl_call:
 * Runs one JSON exchange with ctl_http_json() and prints any failure.
 * Returns: 0 with the answer in @ret (a new reference, possibly NULL; when @ret is NULL the
 * answer is dropped), or a negative errno after printing the error.
 */
int ctl_call(CtlContext *ctx, const char *method, const char *path, json_object *body,
             json_object **ret);

/**
 * ctl_emit_json:
 * With --json, prints @doc pretty on stdout. Returns: true when it did (the caller is done).
 */
bool ctl_emit_json(CtlContext *ctx, json_object *doc);

/**
 * ctl_parse_id:
 * Parses @s as the positive id of a @what ("request").
 * Returns: 0 with it in @ret, or -EINVAL after a usage error.
 */
int ctl_parse_id(CtlContext *ctx, const char *what, const char *s, int64_t *ret);

/**
 * ctl_parse_count:
 * Parses option @name's value @s as an integer from @min to @max.
 * Returns: 0 with it in @ret, or -EINVAL after a usage error.
 */
int ctl_parse_count(CtlContext *ctx, const char *name, const char *s, int64_t min, int64_t max,
                    int64_t *ret);

/**
 * ctl_check_choice:
 * Returns: 0 when @value is one of the NULL-terminated @choices, else -EINVAL after a usage
 * error naming option @what and listing the choices.
 */
int ctl_check_choice(CtlContext *ctx, const char *what, const char *value,
                     const char *const *choices);

/* A query string under construction: "?a=1&b=x%20y". */
typedef struct {
    char *text; /* NULL while empty */
    bool oom;
} CtlQuery;

/** ctl_query_add: appends @key=@value (escaped); a NULL @value adds nothing. */
void ctl_query_add(CtlQuery *q, const char *key, const char *value);

/** ctl_query_add_int: appends @key=@value. */
void ctl_query_add_int(CtlQuery *q, const char *key, int64_t value);

/** ctl_query_clear: releases @q. */
void ctl_query_clear(CtlQuery *q);

/**
 * ctl_fetch_list:
 * GETs the list at @path with @q, following the "next" cursor page by page, unless option
 * --limit is in @args (then one page of that size). Option --after, when in @args, starts
 * after that cursor.
 * Returns: 0 with {"items": [...], "next": cursor-or-null} in @ret, or a negative errno after
 * printing the error.
 */
int ctl_fetch_list(CtlContext *ctx, const char *path, const CtlQuery *q, const CtlArgs *args,
                   json_object **ret);

/* A list command's filter: option --OPTION passed on as the query's KEY. */
typedef struct {
    const char *option;         /* the option, without "--" */
    const char *key;            /* the query's key; NULL: the option's name */
    const char *const *choices; /* its values, NULL-terminated; NULL: any */
    const char *id_of;          /* an id of this ("department"); NULL: not an id */
    bool flag;                  /* an option without a value: KEY=true when given */
} CtlFilter;

/**
 * ctl_fetch_filtered:
 * Checks each of @filters given in @args (a choice, an id), then ctl_fetch_list() of @path
 * with them as its query.
 * Returns: 0 with the list in @ret, or a negative errno after printing the error.
 */
int ctl_fetch_filtered(CtlContext *ctx, const char *path, const CtlFilter *filters, size_t n,
                       const CtlArgs *args, json_object **ret);

/**
 * ctl_print_list:
 * The common end of a list command: --json prints @doc; otherwise a table of @doc's items
 * with @columns taken from @keys, or "(none)" when there are no items, and a hint when more
 * pages exist. Returns: 0, or a negative errno.
 */
int ctl_print_list(CtlContext *ctx, json_object *doc, const CtlColumn *columns,
                   const char *const *keys, size_t n);

/**
 * ctl_write_secret:
 * Writes @token and a newline to @path with mode 0600, replacing the file atomically.
 * Returns: 0, or a negative errno after printing the problem.
 */
int ctl_write_secret(CtlContext *ctx, const char *path, const char *token);

/**
 * ctl_show_token:
 * Shows a newly issued @token: into @token_out (mode 0600) when given, else on stdout with a
 * notice that it will not be shown again. When writing the file fails the token is printed
 * instead, so it is not lost.
 * Returns: 0, or a negative errno.
 */
int ctl_show_token(CtlContext *ctx, const char *token, const char *token_out);

/** ctl_path: Returns: a newly allocated path from @fmt (use with escaped parts), or NULL. */
char *ctl_path(const char *fmt, ...) _printf_(1, 2);

#define CTL_LIST_OPTIONS                                                                           \
    {"limit", 0, "N", CTL_OPT_VALUE, "fetch only one page of at most N (1-1000) entries"},         \
    {                                                                                              \
        "after", 0, "CURSOR", CTL_OPT_VALUE, "start after this id (a previous page's next)"        \
    }
