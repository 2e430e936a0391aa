/* SPDX-License-Identifier: Apache-2.0 */
/* The broker itself: health (GET /v1/health) and policies (GET /v1/policies). */
#include <errno.h>
#include <string.h>

#include "ctl-commands.h"
#include "ctl-output.h"
#include "cm-json.h"
#include "cm-util.h"

static int cmd_health(CtlContext *ctx, const CtlArgs *args)
{
    _cleanup_json_ json_object *o = NULL;
    const char *status;
    int r;

    r = ctl_call(ctx, "GET", "/v1/health", NULL, &o);
    if (r < 0)
        return r;
    status = cm_json_get_str(o, "status", "");
    if (!ctl_emit_json(ctx, o)) {
        _cleanup_free_ char *version = ctl_text_sanitize(cm_json_get_str(o, "version", "?"), true);
        _cleanup_free_ char *st = ctl_text_sanitize(status, true);
        fprintf(ctx->out, "%s: cloudbrokerd %s at %s\n", st ? st : "?", version ? version : "?",
                ctx->config.url);
    }
    return strcmp(status, "ok") == 0 ? 0 : -EIO;
}

/* Prints every leaf of @o as "path = value", arrays of scalars on one line. */
static void print_flat(FILE *f, json_object *o, const char *prefix)
{
    if (json_object_is_type(o, json_type_object)) {
        json_object_object_foreach(o, key, val)
        {
            _cleanup_free_ char *path = cm_strdup_printf("%s%s%s", prefix, *prefix ? "." : "", key);
            if (path)
                print_flat(f, val, path);
        }
        return;
    }
    if (json_object_is_type(o, json_type_array)) {
        bool scalars = true;
        size_t n = json_object_array_length(o);
        for (size_t i = 0; i < n; i++) {
            json_type t = json_object_get_type(json_object_array_get_idx(o, i));
            scalars = scalars && t != json_type_object && t != json_type_array;
        }
        if (!scalars) {
            for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *path = cm_strdup_printf("%s[%zu]", prefix, i);
                if (path)
                    print_flat(f, json_object_array_get_idx(o, i), path);
            }
            return;
        }
        fprintf(f, "%s =", prefix);
        for (size_t i = 0; i < n; i++) {
            _cleanup_free_ char *text = ctl_json_text(json_object_array_get_idx(o, i));
            _cleanup_free_ char *clean = text ? ctl_text_sanitize(text, true) : NULL;
            fprintf(f, "%s %s", i ? "," : "", clean ? clean : "?");
        }
        fputs(n ? "\n" : " (none)\n", f);
        return;
    }
    _cleanup_free_ char *text = ctl_json_text(o);
    _cleanup_free_ char *clean = text ? ctl_text_sanitize(text, true) : NULL;
    fprintf(f, "%s = %s\n", prefix, clean ? clean : "?");
}

static int cmd_policies_show(CtlContext *ctx, const CtlArgs *args)
{
    _cleanup_json_ json_object *o = NULL;
    int r;

    r = ctl_call(ctx, "GET", "/v1/policies", NULL, &o);
    if (r < 0)
        return r;
    if (!ctl_emit_json(ctx, o))
        print_flat(ctx->out, o, "");
    return 0;
}

const CtlCommand ctl_service_commands[] = {
    {
        .group = "health",
        .handler = cmd_health,
        .help = "check that the broker answers (needs no token)",
        .description = "Exits 0 when the broker reports status \"ok\", 1 otherwise.",
        .example = "  cloudbrokerctl --url http://127.0.0.1:8470 health",
        .flags = CTL_CMD_NO_AUTH,
    },
    {
        .group = "policies",
        .verb = "show",
        .handler = cmd_policies_show,
        .help = "show the policies the broker runs with (review rules, quotas, materials)",
        .description = "Each setting is printed as path = value; --json prints the documents.",
        .example = "  cloudbrokerctl policies show\n"
                   "  cloudbrokerctl --json policies show",
    },
    {NULL},
};
