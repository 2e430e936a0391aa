/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The records of the vendor's duties, which the service-quality scorecard judges
 * (docs/service-quality.md): /v1/security-bulletins, /v1/emergency-drills,
 * /v1/systems/{id}/restore-tests, /v1/restore-tests and /v1/operations-reports, each with its
 * document uploaded first to /v1/vendor-documents/{sha256}.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ctl-commands.h"
#include "ctl-file.h"
#include "ctl-material.h"
#include "ctl-output.h"
#include "ctl-time.h"
#include "cm-json.h"
#include "cm-time.h"
#include "cm-util.h"

/* Option @option (required by its table) as an ISO 8601 UTC time in @body's @key. */
static int add_time(CtlContext *ctx, const CtlArgs *args, const char *option, const char *key,
                    json_object *body)
{
    const char *v = ctl_args_get(args, option);
    _cleanup_free_ char *name = cm_strdup_printf("--%s", option), *msg = NULL;
    char iso[CM_TIME_ISO_LEN + 1];
    int64_t t;
    int r;

    if (!v)
        return 0;
    if (!name)
        return ctl_fail(ctx, -ENOMEM, "out of memory");
    r = ctl_time_parse_point(name, v, (int64_t)time(NULL), &t, &msg);
    if (r == -ENOMEM)
        return ctl_fail(ctx, r, "out of memory");
    if (r < 0)
        return ctl_usage_error(ctx, "%s", msg);
    cm_time_iso(t * 1000, iso);
    json_object_object_add(body, key, json_object_new_string(iso));
    return 0;
}

/* Option @option, when given, as text in @body's @key (the broker checks the lengths). */
static void add_text(const CtlArgs *args, const char *option, const char *key, json_object *body)
{
    const char *v = ctl_args_get(args, option);
    if (v)
        json_object_object_add(body, key, json_object_new_string(v));
}

/*
 * Uploads --document FILE (PUT /v1/vendor-documents/SHA256?filename=NAME): the broker hashes
 * what arrives and refuses it unless it is the SHA-256 computed here. Puts the SHA-256 in
 * @body's "document".
 * Returns: 0, or a negative errno after printing the problem.
 */
static int upload_document(CtlContext *ctx, const CtlArgs *args, json_object *body)
{
    const char *file = ctl_args_get(args, "document"), *type = ctl_args_get(args, "type");
    const char *slash = strrchr(file, '/'), *base = slash ? slash + 1 : file;
    _cleanup_json_ json_object *o = NULL;
    _cleanup_free_ char *name = NULL, *path = NULL;
    _cleanup_close_ int fd = -1;
    char sha[65];
    CtlTransfer sent = {0};
    CtlHttpError e;
    CtlHttp *h;
    int64_t size;
    struct stat st;
    int r;

    if (!type && !(type = ctl_material_guess_type(file)))
        return ctl_usage_error(ctx,
                               "cannot tell the document type of '%s' from its name; give "
                               "--type (e.g. application/pdf)",
                               file);
    r = ctl_file_sha256(file, &size, sha);
    if (r < 0)
        return ctl_fail(ctx, r, "cannot read %s: %s", file, strerror(-r));
    fd = open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return ctl_fail(ctx, -errno, "cannot open %s: %s", file, strerror(errno));
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size != size)
        return ctl_fail(ctx, -EINVAL, "%s is not a regular file, or changed while read", file);
    if (size == 0)
        return ctl_fail(ctx, -EINVAL, "%s is empty", file);
    name = ctl_http_escape(base);
    path = name ? ctl_path("/v1/vendor-documents/%s?filename=%s", sha, name) : NULL;
    if (!path)
        return ctl_fail(ctx, -ENOMEM, "out of memory");
    r = ctl_http(ctx, &h);
    if (r < 0)
        return r;
    r = ctl_http_upload(h, path, fd, (uint64_t)size, type, &o, &sent, &e);
    if (r < 0) {
        ctl_print_api_error(ctx, &e);
        return r;
    }
    if (strcmp(sent.sha256, sha) != 0)
        return ctl_fail(ctx, -EBADMSG, "%s changed while it was sent", file);
    json_object_object_add(body, "document", json_object_new_string(sha));
    return 0;
}

/* The common end of an add command: the document, then POST, then the record. */
static int post_record(CtlContext *ctx, const CtlArgs *args, const char *path, json_object *body,
                       const char *what)
{
    _cleanup_json_ json_object *o = NULL;
    int r = upload_document(ctx, args, body);

    if (r >= 0)
        r = ctl_call(ctx, "POST", path, body, &o);
    if (r < 0)
        return r;
    if (ctl_emit_json(ctx, o))
        return 0;
    fprintf(ctx->out, "%s %" PRId64 " recorded, document sha256 %s.\n", what,
            cm_json_get_int(o, "id", 0), cm_json_get_str(o, "document_sha256", "?"));
    return 0;
}

static int cmd_bulletin_add(CtlContext *ctx, const CtlArgs *args)
{
    _cleanup_json_ json_object *body = json_object_new_object();
    int r = add_time(ctx, args, "published-at", "published_at", body);

    if (r < 0)
        return r;
    add_text(args, "month", "month", body);
    add_text(args, "title", "title", body);
    return post_record(ctx, args, "/v1/security-bulletins", body, "Security bulletin");
}

static int cmd_drill_add(CtlContext *ctx, const CtlArgs *args)
{
    _cleanup_json_ json_object *body = json_object_new_object();
    int r = add_time(ctx, args, "held-at", "held_at", body);

    if (r < 0)
        return r;
    add_text(args, "scenario", "scenario", body);
    add_text(args, "result", "result", body);
    return post_record(ctx, args, "/v1/emergency-drills", body, "Emergency drill");
}

static int cmd_restore_test_add(CtlContext *ctx, const CtlArgs *args)
{
    static const char *const results[] = {"ok", "failed", NULL};
    _cleanup_json_ json_object *body = json_object_new_object();
    _cleanup_free_ char *path = NULL;
    const char *backup = ctl_args_get(args, "backup");
    int64_t system, id, duration;
    int r = ctl_parse_id(ctx, "system", ctl_args_get(args, "system"), &system);

    if (r >= 0)
        r = ctl_check_choice(ctx, "--result", ctl_args_get(args, "result"), results);
    if (r >= 0)
        r = ctl_parse_count(ctx, "--duration", ctl_args_get(args, "duration"), 0, 31536000,
                            &duration);
    if (r >= 0 && backup)
        r = ctl_parse_id(ctx, "backup", backup, &id);
    if (r >= 0)
        r = add_time(ctx, args, "tested-at", "tested_at", body);
    if (r < 0)
        return r;
    add_text(args, "result", "result", body);
    json_object_object_add(body, "duration_s", json_object_new_int64(duration));
    if (backup)
        json_object_object_add(body, "backup", json_object_new_int64(id));
    path = ctl_path("/v1/systems/%" PRId64 "/restore-tests", system);
    if (!path)
        return ctl_fail(ctx, -ENOMEM, "out of memory");
    return post_record(ctx, args, path, body, "Restore test");
}

static int cmd_ops_report_add(CtlContext *ctx, const CtlArgs *args)
{
    _cleanup_json_ json_object *body = json_object_new_object();
    int r = add_time(ctx, args, "delivered-at", "delivered_at", body);

    if (r < 0)
        return r;
    add_text(args, "month", "month", body);
    return post_record(ctx, args, "/v1/operations-reports", body, "Operations report");
}

/* A list with the filters its table has: --month, --from, --to, --system. */
static int list_records(CtlContext *ctx, const CtlArgs *args, const char *path,
                        const CtlColumn *cols, const char *const *keys, size_t n)
{
    static const CtlFilter filters[] = {{"month"}, {"from"}, {"to"}, {"system"}};
    _cleanup_json_ json_object *doc = NULL;
    int r = ctl_fetch_filtered(ctx, path, filters, ELEMENTSOF(filters), args, &doc);

    if (r < 0)
        return r;
    return ctl_print_list(ctx, doc, cols, keys, n);
}

static int cmd_bulletin_list(CtlContext *ctx, const CtlArgs *args)
{
    static const CtlColumn cols[] = {
        {"ID", CTL_ALIGN_RIGHT},      {"MONTH", CTL_ALIGN_LEFT}, {"PUBLISHED", CTL_ALIGN_LEFT},
        {"RECORDED", CTL_ALIGN_LEFT}, {"TITLE", CTL_ALIGN_LEFT}, {"DOCUMENT", CTL_ALIGN_LEFT},
    };
    static const char *const keys[] = {
        "id", "month", "published_at", "created_at", "title", "document_sha256",
    };
    return list_records(ctx, args, "/v1/security-bulletins", cols, keys, ELEMENTSOF(keys));
}

static int cmd_drill_list(CtlContext *ctx, const CtlArgs *args)
{
    static const CtlColumn cols[] = {
        {"ID", CTL_ALIGN_RIGHT},      {"HELD", CTL_ALIGN_LEFT},   {"RECORDED", CTL_ALIGN_LEFT},
        {"SCENARIO", CTL_ALIGN_LEFT}, {"RESULT", CTL_ALIGN_LEFT}, {"DOCUMENT", CTL_ALIGN_LEFT},
    };
    static const char *const keys[] = {
        "id", "held_at", "created_at", "scenario", "result", "document_sha256",
    };
    return list_records(ctx, args, "/v1/emergency-drills", cols, keys, ELEMENTSOF(keys));
}

static int cmd_restore_test_list(CtlContext *ctx, const CtlArgs *args)
{
    static const CtlColumn cols[] = {
        {"ID", CTL_ALIGN_RIGHT},      {"SYSTEM", CTL_ALIGN_RIGHT},     {"TESTED", CTL_ALIGN_LEFT},
        {"RESULT", CTL_ALIGN_LEFT},   {"DURATION_S", CTL_ALIGN_RIGHT}, {"BACKUP", CTL_ALIGN_RIGHT},
        {"RECORDED", CTL_ALIGN_LEFT}, {"DOCUMENT", CTL_ALIGN_LEFT},
    };
    static const char *const keys[] = {
        "id",         "system_id", "tested_at",  "result",
        "duration_s", "backup_id", "created_at", "document_sha256",
    };
    return list_records(ctx, args, "/v1/restore-tests", cols, keys, ELEMENTSOF(keys));
}

static int cmd_ops_report_list(CtlContext *ctx, const CtlArgs *args)
{
    static const CtlColumn cols[] = {
        {"ID", CTL_ALIGN_RIGHT},      {"MONTH", CTL_ALIGN_LEFT},    {"DELIVERED", CTL_ALIGN_LEFT},
        {"RECORDED", CTL_ALIGN_LEFT}, {"DOCUMENT", CTL_ALIGN_LEFT},
    };
    static const char *const keys[] = {
        "id", "month", "delivered_at", "created_at", "document_sha256",
    };
    return list_records(ctx, args, "/v1/operations-reports", cols, keys, ELEMENTSOF(keys));
}

#define TIME_FORMS "ISO 8601 (2026-11-27, 2026-11-27T08:00:00+08:00), epoch seconds, now, or -3d"
#define DOCUMENT_OPTIONS                                                                           \
    {"document", 0, "FILE", CTL_OPT_VALUE | CTL_OPT_REQUIRED,                                      \
     "the document (文档): uploaded first, checked by its SHA-256"},                               \
    {                                                                                              \
        "type", 0, "MEDIA", CTL_OPT_VALUE, "its media type (default: from the file's extension)"   \
    }

static const CtlOption bulletin_add_options[] = {
    {"month", 0, "YYYY-MM", CTL_OPT_VALUE | CTL_OPT_REQUIRED, "the month it is for (所属月份)"},
    {"published-at", 0, "TIME", CTL_OPT_VALUE | CTL_OPT_REQUIRED,
     "when it was published (发布时间): " TIME_FORMS},
    {"title", 0, "TEXT", CTL_OPT_VALUE | CTL_OPT_REQUIRED, "its title (标题, at most 500)"},
    DOCUMENT_OPTIONS,
    {NULL},
};

static const CtlOption drill_add_options[] = {
    {"held-at", 0, "TIME", CTL_OPT_VALUE | CTL_OPT_REQUIRED,
     "when it was held (演练时间): " TIME_FORMS},
    {"scenario", 0, "TEXT", CTL_OPT_VALUE | CTL_OPT_REQUIRED,
     "what was rehearsed (演练场景, at most 2000)"},
    {"result", 0, "TEXT", CTL_OPT_VALUE | CTL_OPT_REQUIRED,
     "the outcome in words (演练结果, at most 4000)"},
    DOCUMENT_OPTIONS,
    {NULL},
};

static const CtlOption restore_test_add_options[] = {
    {"system", 0, "ID", CTL_OPT_VALUE | CTL_OPT_REQUIRED, "the application system (应用系统)"},
    {"tested-at", 0, "TIME", CTL_OPT_VALUE | CTL_OPT_REQUIRED,
     "when the restore was tested (测试时间): " TIME_FORMS},
    {"result", 0, "RESULT", CTL_OPT_VALUE | CTL_OPT_REQUIRED, "ok or failed (恢复结果)"},
    {"duration", 0, "SECONDS", CTL_OPT_VALUE | CTL_OPT_REQUIRED,
     "how long the restore took (耗时, seconds)"},
    {"backup", 0, "ID", CTL_OPT_VALUE,
     "the backup attestation restored from, when known (backup list)"},
    DOCUMENT_OPTIONS,
    {NULL},
};

static const CtlOption ops_report_add_options[] = {
    {"month", 0, "YYYY-MM", CTL_OPT_VALUE | CTL_OPT_REQUIRED, "the month it is for (所属月份)"},
    {"delivered-at", 0, "TIME", CTL_OPT_VALUE | CTL_OPT_REQUIRED,
     "when it was delivered (提交时间): " TIME_FORMS},
    DOCUMENT_OPTIONS,
    {NULL},
};

#define LIST_FILTERS                                                                               \
    {"month", 0, "YYYY-MM", CTL_OPT_VALUE, "only those of that month"},                            \
        {"from", 0, "TIME", CTL_OPT_VALUE, "only those at or after TIME (ISO 8601)"},              \
    {                                                                                              \
        "to", 0, "TIME", CTL_OPT_VALUE, "only those before TIME (ISO 8601)"                        \
    }

static const CtlOption list_options[] = {
    LIST_FILTERS,
    CTL_LIST_OPTIONS,
    {NULL},
};

static const CtlOption restore_list_options[] = {
    {"system", 0, "ID", CTL_OPT_VALUE, "only that system's"},
    LIST_FILTERS,
    CTL_LIST_OPTIONS,
    {NULL},
};

#define JUDGED "The service-quality scorecard judges it (docs/service-quality.md)."

const CtlCommand ctl_duty_commands[] = {
    {
        .group = "bulletin",
        .verb = "add",
        .handler = cmd_bulletin_add,
        .help = "record the month's security bulletin published (月度安全通报; vendor)",
        .options = bulletin_add_options,
        .description = "Due by the policy's due_day of the following month, counted from when the\n"
                       "broker records it, not the time typed in.\n" JUDGED,
        .example = "  cloudbrokerctl bulletin add --month 2026-11 --published-at 2026-12-03 \\\n"
                   "      --title '2026年11月安全通报' --document bulletin-2026-11.pdf",
    },
    {
        .group = "bulletin",
        .verb = "list",
        .handler = cmd_bulletin_list,
        .help = "list the security bulletins (reviewer, auditor, admin, vendor)",
        .options = list_options,
        .example = "  cloudbrokerctl bulletin list --month 2026-11",
    },
    {
        .group = "drill",
        .verb = "add",
        .handler = cmd_drill_add,
        .help = "record an emergency drill held (应急演练; vendor)",
        .options = drill_add_options,
        .description = "At least one a calendar year, recorded by the end of the policy's\n"
                       "due_month.\n" JUDGED,
        .example = "  cloudbrokerctl drill add --held-at 2026-11-20T14:00:00+08:00 \\\n"
                   "      --scenario '生产主机断电 / a production host loses power' \\\n"
                   "      --result 'failover in 12 min' --document drill-2026.pdf",
    },
    {
        .group = "drill",
        .verb = "list",
        .handler = cmd_drill_list,
        .help = "list the emergency drills (reviewer, auditor, admin, vendor)",
        .options = list_options,
        .example = "  cloudbrokerctl drill list --from 2026-01-01",
    },
    {
        .group = "restore-test",
        .verb = "add",
        .handler = cmd_restore_test_add,
        .help = "record a test restore of a system's backup (备份恢复测试; vendor)",
        .options = restore_test_add_options,
        .description =
            "Every system with a backup attested before the period began needs one with\n"
            "result ok each period_months.\n" JUDGED,
        .example = "  cloudbrokerctl restore-test add --system 3 --tested-at -2h --result ok \\\n"
                   "      --duration 1800 --backup 12 --document restore-oa.txt",
    },
    {
        .group = "restore-test",
        .verb = "list",
        .handler = cmd_restore_test_list,
        .help = "list the restore tests (a department: its own systems')",
        .options = restore_list_options,
        .example = "  cloudbrokerctl restore-test list --system 3",
    },
    {
        .group = "ops-report",
        .verb = "add",
        .handler = cmd_ops_report_add,
        .help = "record the month's operations report delivered (月度运维报告; vendor)",
        .options = ops_report_add_options,
        .description = "Due by the policy's due_day of the following month, counted from when the\n"
                       "broker records it.\n" JUDGED,
        .example = "  cloudbrokerctl ops-report add --month 2026-11 --delivered-at 2026-12-05 \\\n"
                   "      --document ops-2026-11.pdf",
    },
    {
        .group = "ops-report",
        .verb = "list",
        .handler = cmd_ops_report_list,
        .help = "list the operations reports delivered (reviewer, auditor, admin, vendor)",
        .options = list_options,
        .example = "  cloudbrokerctl ops-report list --month 2026-11",
    },
    {NULL},
};
