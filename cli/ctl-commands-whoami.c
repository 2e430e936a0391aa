/* SPDX-License-Identifier: Apache-2.0 */
/* The caller's own account: whoami (GET /v1/whoami), token rotate (POST /v1/whoami/token). */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "ctl-commands.h"
#include "ctl-output.h"
#include "cm-json.h"
#include "cm-util.h"

static int cmd_whoami(CtlContext *ctx, const CtlArgs *args)
{
    _cleanup_json_ json_object *o = NULL;
    int r;

    r = ctl_call(ctx, "GET", "/v1/whoami", NULL, &o);
    if (r < 0)
        return r;
    if (ctl_emit_json(ctx, o))
        return 0;
    ctl_print_json_field(ctx->out, 0, 12, "Account", cm_json_get(o, "id"));
    ctl_print_json_field(ctx->out, 0, 12, "Name", cm_json_get(o, "name"));
    ctl_print_json_field(ctx->out, 0, 12, "Role", cm_json_get(o, "role"));
    ctl_print_json_field(ctx->out, 0, 12, "Department", cm_json_get(o, "department_id"));
    ctl_print_field(ctx->out, 0, 12, "Broker", ctx->config.url);
    ctl_print_field(ctx->out, 0, 12, "Token from", ctx->config.token_origin);
    return 0;
}

static int cmd_token_rotate(CtlContext *ctx, const CtlArgs *args)
{
    _cleanup_json_ json_object *o = NULL;
    const char *out = ctl_args_get(args, "token-out");
    const char *token;
    int r;

    r = ctl_call(ctx, "POST", "/v1/whoami/token", NULL, &o);
    if (r < 0)
        return r;
    token = cm_json_get_str(o, "token", NULL);
    if (!token)
        return ctl_fail(ctx, -EBADMSG, "the server's answer holds no token");
    if (out) {
        r = ctl_write_secret(ctx, out, token);
        if (r < 0) {
            /* The old token is gone already: show the new one rather than lose it. */
            fprintf(ctx->out,
                    "New token (it could not be saved; shown only this once):\n"
                    "    %s\n",
                    token);
            return r;
        }
        /* The token went to the file; the JSON says where instead of repeating it. */
        json_object_object_del(o, "token");
        json_object_object_add(o, "token_file", json_object_new_string(out));
    }
    if (ctl_emit_json(ctx, o))
        return 0;
    fprintf(ctx->out, "Token of account %" PRId64 " replaced; the old token no longer works.\n",
            cm_json_get_int(o, "id", 0));
    if (out)
        fprintf(ctx->out, "The new token was written to %s (mode 0600).\n", out);
    else
        fprintf(ctx->out, "New token (shown only this once; store it now):\n    %s\n", token);
    return 0;
}

static const CtlOption rotate_options[] = {
    {"token-out", 0, "FILE", CTL_OPT_VALUE, "write the new token to FILE (mode 0600)"},
    {NULL},
};

const CtlCommand ctl_whoami_commands[] = {
    {
        .group = "whoami",
        .handler = cmd_whoami,
        .help = "show the account, role and department the token belongs to",
        .example = "  cloudbrokerctl --token-file ~/.cloudbroker/token whoami",
    },
    {
        .group = "token",
        .verb = "rotate",
        .handler = cmd_token_rotate,
        .help = "replace your own token with a new one (the old one stops working)",
        .options = rotate_options,
        .description = "Write the new token straight into your token file to keep working:\n"
                       "the old token is invalid as soon as the broker answers.",
        .example = "  cloudbrokerctl --token-file ~/.cloudbroker/token token rotate \\\n"
                   "      --token-out ~/.cloudbroker/token",
    },
    {NULL},
};
