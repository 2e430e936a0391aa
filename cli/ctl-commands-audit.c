/* SPDX-License-Identifier: Apache-2.0 */
/* The audit trail: GET /v1/audit and GET /v1/audit/verify (reviewer, auditor). */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "ctl-commands.h"
#include "ctl-output.h"
#include "cm-json.h"
#include "cm-util.h"

static int cmd_list(CtlContext *ctx, const CtlArgs *args)
{
    static const CtlColumn cols[] = {
        {"SEQ", CTL_ALIGN_RIGHT}, {"AT", CTL_ALIGN_LEFT},      {"ACCOUNT", CTL_ALIGN_LEFT},
        {"ROLE", CTL_ALIGN_LEFT}, {"ACTION", CTL_ALIGN_LEFT},  {"OBJECT", CTL_ALIGN_LEFT},
        {"ID", CTL_ALIGN_RIGHT},  {"OUTCOME", CTL_ALIGN_LEFT}, {"DETAIL", CTL_ALIGN_LEFT},
    };
    static const char *const keys[] = {
        "seq", "at", "account", "role", "action", "object_type", "object_id", "outcome", "detail",
    };
    static const CtlFilter filters[] = {
        {"object-type", "object_type"},
        {"object-id", "object_id", .id_of = "object"},
        {"action"},
    };
    _cleanup_json_ json_object *doc = NULL;
    int r = ctl_fetch_filtered(ctx, "/v1/audit", filters, ELEMENTSOF(filters), args, &doc);

    if (r < 0)
        return r;
    return ctl_print_list(ctx, doc, cols, keys, ELEMENTSOF(keys));
}

/* Prints audit record @seq, so the reader of a broken chain sees what was touched. */
static void print_record(CtlContext *ctx, int64_t seq)
{
    _cleanup_json_ json_object *page = NULL;
    _cleanup_free_ char *path = ctl_path("/v1/audit?after=%" PRId64 "&limit=1", seq - 1);
    json_object *rec;
    static const char *const fields[] = {
        "seq",     "at",         "account", "role",   "action",    "object_type", "object_id",
        "outcome", "request_id", "client",  "detail", "prev_hash", "hash",
    };

    if (!path || ctl_call(ctx, "GET", path, NULL, &page) < 0)
        return;
    rec = json_object_array_get_idx(cm_json_get(page, "items"), 0);
    if (!rec || cm_json_get_int(rec, "seq", 0) != seq) {
        fprintf(ctx->out, "  (record %" PRId64 " is missing from the trail)\n", seq);
        return;
    }
    for (size_t i = 0; i < ELEMENTSOF(fields); i++)
        ctl_print_json_field(ctx->out, 2, 11, fields[i], cm_json_get(rec, fields[i]));
}

static int cmd_verify(CtlContext *ctx, const CtlArgs *args)
{
    _cleanup_json_ json_object *o = NULL;
    bool ok;
    int r;

    r = ctl_call(ctx, "GET", "/v1/audit/verify", NULL, &o);
    if (r < 0)
        return r;
    ok = cm_json_get_bool(o, "ok", false);
    if (ctl_emit_json(ctx, o))
        return ok ? 0 : -EBADMSG;
    if (ok) {
        fprintf(ctx->out, "Audit trail intact: %" PRId64 " records, head %s\n",
                cm_json_get_int(o, "records", 0), cm_json_get_str(o, "head_hash", "-"));
        return 0;
    }
    _cleanup_free_ char *reason = ctl_text_sanitize(cm_json_get_str(o, "reason", "?"), true);
    int64_t bad = cm_json_get_int(o, "first_bad", 0);
    fprintf(ctx->out, "Audit trail BROKEN at record %" PRId64 " of %" PRId64 ": %s\n", bad,
            cm_json_get_int(o, "records", 0), reason ? reason : "?");
    if (bad > 0) {
        fputs("First bad record:\n", ctx->out);
        print_record(ctx, bad);
    }
    return -EBADMSG;
}

static const CtlOption list_options[] = {
    {"object-type", 0, "TYPE", CTL_OPT_VALUE, "only records about this kind of object (request)"},
    {"object-id", 0, "ID", CTL_OPT_VALUE, "only records about the object with this id"},
    {"action", 0, "ACTION", CTL_OPT_VALUE, "only this action (request.submit, ...)"},
    {"limit", 0, "N", CTL_OPT_VALUE, "fetch only one page of at most N (1-1000) records"},
    {"after", 0, "SEQ", CTL_OPT_VALUE, "start after this sequence number"},
    {NULL},
};

const CtlCommand ctl_audit_commands[] = {
    {
        .group = "audit",
        .verb = "list",
        .handler = cmd_list,
        .help = "list audit records, oldest first",
        .options = list_options,
        .example = "  cloudbrokerctl audit list --object-type request --object-id 3\n"
                   "  cloudbrokerctl audit list --after 120 --limit 50",
    },
    {
        .group = "audit",
        .verb = "verify",
        .handler = cmd_verify,
        .help = "check the audit trail's hash chain (exit 0 intact, 1 broken)",
        .description = "The broker recomputes every record's keyed hash and link. When the chain\n"
                       "is broken the first bad record and the reason are printed.",
        .example = "  cloudbrokerctl audit verify",
    },
    {NULL},
};
