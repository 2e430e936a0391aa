/* SPDX-License-Identifier: Apache-2.0 */
/* Accounts and their tokens: /v1/accounts (admin; reviewers and auditors read). */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "ctl-commands.h"
#include "ctl-output.h"
#include "cm-json.h"
#include "cm-util.h"

static const char *const roles[] = {
    "admin", "reviewer", "consultant", "vendor", "auditor", "department", NULL,
};

static void print_account(CtlContext *ctx, json_object *a)
{
    ctl_print_json_field(ctx->out, 0, 13, "Account", cm_json_get(a, "id"));
    ctl_print_json_field(ctx->out, 0, 13, "Name", cm_json_get(a, "name"));
    ctl_print_json_field(ctx->out, 0, 13, "Role", cm_json_get(a, "role"));
    _cleanup_free_ char *dept = ctl_json_cell(a, "department_id+department_name");
    ctl_print_field(ctx->out, 0, 13, "Department", dept);
    ctl_print_json_field(ctx->out, 0, 13, "Disabled", cm_json_get(a, "disabled"));
    ctl_print_json_field(ctx->out, 0, 13, "Created", cm_json_get(a, "created_at"));
    ctl_print_json_field(ctx->out, 0, 13, "Token issued", cm_json_get(a, "token_created_at"));
}

/* "Account 4 'name' (role department, department 1)" */
static void print_headline(CtlContext *ctx, json_object *a, const char *done)
{
    _cleanup_free_ char *name = ctl_text_sanitize(cm_json_get_str(a, "name", "?"), true);
    fprintf(ctx->out, "Account %" PRId64 " '%s' %s (role %s", cm_json_get_int(a, "id", 0),
            name ? name : "?", done, cm_json_get_str(a, "role", "?"));
    if (cm_json_get_int(a, "department_id", 0))
        fprintf(ctx->out, ", department %" PRId64, cm_json_get_int(a, "department_id", 0));
    fputs(").\n", ctx->out);
}

/*
 * A new token goes to --token-out when given; then the JSON document says where it went
 * instead of carrying it, so that --json output can be logged without leaking it.
 */
static int issue_token(CtlContext *ctx, json_object *doc, const char *token_out)
{
    const char *token = cm_json_get_str(doc, "token", NULL);
    _cleanup_free_ char *copy = NULL;
    int r;

    if (!token)
        return ctl_fail(ctx, -EBADMSG, "the server's answer holds no token");
    if (!ctx->json)
        return ctl_show_token(ctx, token, token_out);
    if (!token_out) {
        ctl_print_json(ctx->out, doc);
        return 0;
    }
    copy = strdup(token);
    if (!copy)
        return ctl_fail(ctx, -ENOMEM, "out of memory");
    r = ctl_write_secret(ctx, token_out, copy);
    if (r >= 0) {
        json_object_object_del(doc, "token");
        json_object_object_add(doc, "token_file", json_object_new_string(token_out));
    }
    ctl_print_json(ctx->out, doc);
    explicit_bzero(copy, strlen(copy));
    return r;
}

static int cmd_create(CtlContext *ctx, const CtlArgs *args)
{
    _cleanup_json_ json_object *body = json_object_new_object(), *o = NULL;
    const char *role = ctl_args_get(args, "role"), *dept_s = ctl_args_get(args, "department");
    int64_t dept = 0;
    int r;

    r = ctl_check_choice(ctx, "--role", role, roles);
    if (r < 0)
        return r;
    if (dept_s && (r = ctl_parse_id(ctx, "department", dept_s, &dept)) < 0)
        return r;
    if (strcmp(role, "department") == 0 && !dept_s)
        return ctl_usage_error(ctx, "an account of role department needs --department ID");
    if (strcmp(role, "department") != 0 && dept_s)
        return ctl_usage_error(ctx, "--department is only for accounts of role department");
    json_object_object_add(body, "name", json_object_new_string(ctl_args_get(args, "name")));
    json_object_object_add(body, "role", json_object_new_string(role));
    if (dept)
        json_object_object_add(body, "department_id", json_object_new_int64(dept));
    r = ctl_call(ctx, "POST", "/v1/accounts", body, &o);
    if (r < 0)
        return r;
    if (!ctx->json)
        print_headline(ctx, cm_json_get(o, "account"), "created");
    return issue_token(ctx, o, ctl_args_get(args, "token-out"));
}

static int cmd_list(CtlContext *ctx, const CtlArgs *args)
{
    static const CtlColumn cols[] = {
        {"ID", CTL_ALIGN_RIGHT},          {"NAME", CTL_ALIGN_LEFT},     {"ROLE", CTL_ALIGN_LEFT},
        {"DEPARTMENT", CTL_ALIGN_LEFT},   {"DISABLED", CTL_ALIGN_LEFT}, {"CREATED", CTL_ALIGN_LEFT},
        {"TOKEN_ISSUED", CTL_ALIGN_LEFT},
    };
    static const char *const keys[] = {
        "id",
        "name",
        "role",
        "department_id+department_name",
        "disabled",
        "created_at",
        "token_created_at",
    };
    static const CtlFilter filters[] = {
        {"role", .choices = roles},
        {"department", .id_of = "department"},
    };
    _cleanup_json_ json_object *doc = NULL;
    int r = ctl_fetch_filtered(ctx, "/v1/accounts", filters, ELEMENTSOF(filters), args, &doc);

    if (r < 0)
        return r;
    return ctl_print_list(ctx, doc, cols, keys, ELEMENTSOF(keys));
}

static int account_path(CtlContext *ctx, const CtlArgs *args, const char *suffix, char **ret)
{
    int64_t id;
    int r = ctl_parse_id(ctx, "account", args->pos[0], &id);
    if (r < 0)
        return r;
    *ret = ctl_path("/v1/accounts/%" PRId64 "%s", id, suffix);
    return *ret ? 0 : ctl_fail(ctx, -ENOMEM, "out of memory");
}

static int cmd_show(CtlContext *ctx, const CtlArgs *args)
{
    _cleanup_json_ json_object *o = NULL;
    _cleanup_free_ char *path = NULL;
    int r;

    r = account_path(ctx, args, "", &path);
    if (r >= 0)
        r = ctl_call(ctx, "GET", path, NULL, &o);
    if (r < 0)
        return r;
    if (!ctl_emit_json(ctx, o))
        print_account(ctx, o);
    return 0;
}

static int set_disabled(CtlContext *ctx, const CtlArgs *args, bool disabled)
{
    _cleanup_json_ json_object *body = json_object_new_object(), *o = NULL;
    _cleanup_free_ char *path = NULL;
    int r;

    json_object_object_add(body, "disabled", json_object_new_boolean(disabled));
    r = account_path(ctx, args, "", &path);
    if (r >= 0)
        r = ctl_call(ctx, "PATCH", path, body, &o);
    if (r < 0)
        return r;
    if (!ctl_emit_json(ctx, o))
        print_headline(ctx, o, disabled ? "disabled" : "enabled");
    return 0;
}

static int cmd_disable(CtlContext *ctx, const CtlArgs *args)
{
    return set_disabled(ctx, args, true);
}

static int cmd_enable(CtlContext *ctx, const CtlArgs *args)
{
    return set_disabled(ctx, args, false);
}

static int cmd_rotate_token(CtlContext *ctx, const CtlArgs *args)
{
    _cleanup_json_ json_object *o = NULL;
    _cleanup_free_ char *path = NULL;
    int r;

    r = account_path(ctx, args, "/token", &path);
    if (r >= 0)
        r = ctl_call(ctx, "POST", path, NULL, &o);
    if (r < 0)
        return r;
    if (!ctx->json)
        fprintf(ctx->out,
                "Token of account %" PRId64 " replaced; the old token no longer "
                "works.\n",
                cm_json_get_int(o, "id", 0));
    return issue_token(ctx, o, ctl_args_get(args, "token-out"));
}

/* POST /v1/accounts/{id}/sign-in-link: the link with which a person sets a password. */
static int cmd_sign_in_link(CtlContext *ctx, const CtlArgs *args)
{
    _cleanup_json_ json_object *o = NULL;
    _cleanup_free_ char *path = NULL;
    const char *base = ctx->config.url ? ctx->config.url : "";
    size_t n = strlen(base);
    int r;

    r = account_path(ctx, args, "/sign-in-link", &path);
    if (r >= 0)
        r = ctl_call(ctx, "POST", path, NULL, &o);
    if (r < 0)
        return r;
    if (ctx->json) {
        ctl_print_json(ctx->out, o);
        return 0;
    }
    fprintf(ctx->out, "One-time sign-in link (valid until %s; a new link replaces it):\n%s%s%s\n",
            cm_json_get_str(o, "expires_at", "?"), base, n && base[n - 1] == '/' ? "" : "/",
            cm_json_get_str(o, "path", ""));
    return 0;
}

static const CtlOption create_options[] = {
    {"name", 0, "NAME", CTL_OPT_VALUE | CTL_OPT_REQUIRED,
     "login name: lowercase letters, digits, '.', '_', '-'"},
    {"role", 0, "ROLE", CTL_OPT_VALUE | CTL_OPT_REQUIRED,
     "admin, reviewer, consultant, vendor, auditor or department"},
    {"department", 0, "ID", CTL_OPT_VALUE, "the department (required for role department)"},
    {"token-out", 0, "FILE", CTL_OPT_VALUE, "write the token to FILE (mode 0600) instead"},
    {NULL},
};

static const CtlOption list_options[] = {
    {"role", 0, "ROLE", CTL_OPT_VALUE, "only accounts of this role"},
    {"department", 0, "ID", CTL_OPT_VALUE, "only accounts of this department"},
    CTL_LIST_OPTIONS,
    {NULL},
};

static const CtlOption rotate_options[] = {
    {"token-out", 0, "FILE", CTL_OPT_VALUE, "write the new token to FILE (mode 0600) instead"},
    {NULL},
};

const CtlCommand ctl_account_commands[] = {
    {
        .group = "account",
        .verb = "create",
        .handler = cmd_create,
        .help = "create an account and issue its token (admin)",
        .options = create_options,
        .description = "The token is shown once: the broker keeps only its hash. Hand it over\n"
                       "with --token-out FILE rather than copying it from the terminal.",
        .example = "  cloudbrokerctl account create --name civil-affairs-ops --role department \\\n"
                   "      --department 1 --token-out civil-affairs.token",
    },
    {
        .group = "account",
        .verb = "list",
        .handler = cmd_list,
        .help = "list accounts (admin, reviewer, auditor)",
        .options = list_options,
        .example = "  cloudbrokerctl account list --role consultant",
    },
    {
        .group = "account",
        .verb = "show",
        .handler = cmd_show,
        .help = "show an account",
        .args = "ID",
        .min_args = 1,
        .max_args = 1,
        .example = "  cloudbrokerctl account show 4",
    },
    {
        .group = "account",
        .verb = "disable",
        .handler = cmd_disable,
        .help = "disable an account: its token stops working (admin)",
        .args = "ID",
        .min_args = 1,
        .max_args = 1,
        .example = "  cloudbrokerctl account disable 4",
    },
    {
        .group = "account",
        .verb = "enable",
        .handler = cmd_enable,
        .help = "enable a disabled account again (admin)",
        .args = "ID",
        .min_args = 1,
        .max_args = 1,
        .example = "  cloudbrokerctl account enable 4",
    },
    {
        .group = "account",
        .verb = "rotate-token",
        .handler = cmd_rotate_token,
        .help = "issue a new token for an account; the old one stops working (admin)",
        .args = "ID",
        .min_args = 1,
        .max_args = 1,
        .options = rotate_options,
        .example = "  cloudbrokerctl account rotate-token 4 --token-out civil-affairs.token",
    },
    {
        .group = "account",
        .verb = "sign-in-link",
        .handler = cmd_sign_in_link,
        .help = "issue a one-time link with which the account sets its console password (admin)",
        .args = "ID",
        .min_args = 1,
        .max_args = 1,
        .description = "The link is the console's address with the link's route; hand it to the\n"
                       "person. It works once, for a day by default; a new link replaces it.",
        .example = "  cloudbrokerctl account sign-in-link 4",
    },
    {NULL},
};
