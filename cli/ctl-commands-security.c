/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A system's security status and backups, the inputs of the annual assessment and Art. 5:
 * /v1/systems/{id}/vulnerabilities, /v1/vulnerabilities/{id}, /v1/systems/{id}/incidents,
 * /v1/incidents/{id} and /v1/systems/{id}/backups.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ctl-commands.h"
#include "ctl-figures.h"
#include "ctl-file.h"
#include "ctl-output.h"
#include "ctl-time.h"
#include "ctl-values.h"
#include "cm-crypto.h"
#include "cm-json.h"
#include "cm-time.h"
#include "cm-util.h"

static const char *const severities[] = {"critical", "high", "medium", "low", NULL};
static const char *const vuln_states[] = {"open", "fixed", "accepted", NULL};

/* /v1/systems/ID/@what from --system. */
static int system_path(CtlContext *ctx, const CtlArgs *args, const char *what, char **ret)
{
    int64_t id;
    int r = ctl_parse_id(ctx, "system", ctl_args_get(args, "system"), &id);
    if (r < 0)
        return r;
    *ret = ctl_path("/v1/systems/%" PRId64 "/%s", id, what);
    return *ret ? 0 : ctl_fail(ctx, -ENOMEM, "out of memory");
}

/* Option @option, when given, as an ISO 8601 UTC time in @body's @key. */
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

static int add_choice(CtlContext *ctx, const CtlArgs *args, const char *option,
                      const char *const *choices, json_object *body)
{
    const char *v = ctl_args_get(args, option);
    _cleanup_free_ char *name = cm_strdup_printf("--%s", option);
    int r;

    if (!v)
        return 0;
    r = ctl_check_choice(ctx, name ? name : option, v, choices);
    if (r < 0)
        return r;
    json_object_object_add(body, option, json_object_new_string(v));
    return 0;
}

static int add_text(CtlContext *ctx, const CtlArgs *args, const char *option, bool may_be_empty,
                    json_object *body)
{
    const char *v = ctl_args_get(args, option);
    if (!v)
        return 0;
    /* The schema's maximum lengths are the broker's to check; it names the field. */
    if (!*v && !may_be_empty)
        return ctl_usage_error(ctx, "--%s must not be empty", option);
    json_object_object_add(body, option, json_object_new_string(v));
    return 0;
}

/* The common end of an add command: POST, then the record created. */
static int post_record(CtlContext *ctx, const char *path, json_object *body, const char *what)
{
    _cleanup_json_ json_object *o = NULL;
    int r = ctl_call(ctx, "POST", path, body, &o);
    if (r < 0)
        return r;
    if (ctl_emit_json(ctx, o))
        return 0;
    fprintf(ctx->out, "%s %" PRId64 " recorded for system %" PRId64 ".\n", what,
            cm_json_get_int(o, "id", 0), cm_json_get_int(o, "system_id", 0));
    return 0;
}

static int list_records(CtlContext *ctx, const CtlArgs *args, const char *what,
                        const CtlColumn *cols, const char *const *keys, size_t n)
{
    _cleanup_json_ json_object *doc = NULL;
    _cleanup_free_ char *path = NULL;
    CtlQuery q = {0};
    int r;

    /* Every page (or the one --limit/--after asks for), oldest record first. */
    r = system_path(ctx, args, what, &path);
    if (r >= 0)
        r = ctl_fetch_list(ctx, path, &q, args, &doc);
    if (r < 0)
        return r;
    return ctl_print_list(ctx, doc, cols, keys, n);
}

/* ---- vulnerabilities ---- */

static int cmd_vuln_add(CtlContext *ctx, const CtlArgs *args)
{
    _cleanup_json_ json_object *body = json_object_new_object();
    _cleanup_free_ char *path = NULL;
    int r;

    r = system_path(ctx, args, "vulnerabilities", &path);
    if (r >= 0)
        r = add_choice(ctx, args, "severity", severities, body);
    if (r >= 0)
        r = add_text(ctx, args, "title", false, body);
    if (r >= 0)
        r = add_choice(ctx, args, "status", vuln_states, body);
    if (r >= 0)
        r = add_time(ctx, args, "found-at", "found_at", body);
    if (r >= 0)
        r = add_time(ctx, args, "fixed-at", "fixed_at", body);
    if (r < 0)
        return r;
    return post_record(ctx, path, body, "Vulnerability");
}

static int cmd_vuln_list(CtlContext *ctx, const CtlArgs *args)
{
    static const CtlColumn cols[] = {
        {"ID", CTL_ALIGN_RIGHT},   {"SEVERITY", CTL_ALIGN_LEFT}, {"STATUS", CTL_ALIGN_LEFT},
        {"FOUND", CTL_ALIGN_LEFT}, {"FIXED", CTL_ALIGN_LEFT},    {"RECORDED", CTL_ALIGN_LEFT},
        {"TITLE", CTL_ALIGN_LEFT},
    };
    static const char *const keys[] = {
        "id", "severity", "status", "found_at", "fixed_at", "created_at", "title",
    };
    return list_records(ctx, args, "vulnerabilities", cols, keys, ELEMENTSOF(keys));
}

static int cmd_vuln_update(CtlContext *ctx, const CtlArgs *args)
{
    _cleanup_json_ json_object *body = json_object_new_object(), *o = NULL;
    _cleanup_free_ char *path = NULL;
    int64_t id;
    int r;

    r = ctl_parse_id(ctx, "vulnerability", args->pos[0], &id);
    if (r >= 0)
        r = add_choice(ctx, args, "status", vuln_states, body);
    if (r >= 0)
        r = add_time(ctx, args, "fixed-at", "fixed_at", body);
    if (r < 0)
        return r;
    path = ctl_path("/v1/vulnerabilities/%" PRId64, id);
    if (!path)
        return ctl_fail(ctx, -ENOMEM, "out of memory");
    r = ctl_call(ctx, "PATCH", path, body, &o);
    if (r < 0)
        return r;
    if (ctl_emit_json(ctx, o))
        return 0;
    fprintf(ctx->out, "Vulnerability %" PRId64 " of system %" PRId64 " is now %s", id,
            cm_json_get_int(o, "system_id", 0), cm_json_get_str(o, "status", "?"));
    if (cm_json_get_str(o, "fixed_at", NULL))
        fprintf(ctx->out, " (fixed at %s)", cm_json_get_str(o, "fixed_at", "?"));
    fputs(".\n", ctx->out);
    return 0;
}

/* ---- incidents ---- */

static int cmd_incident_add(CtlContext *ctx, const CtlArgs *args)
{
    _cleanup_json_ json_object *body = json_object_new_object();
    _cleanup_free_ char *path = NULL;
    int r;

    r = system_path(ctx, args, "incidents", &path);
    if (r >= 0)
        r = add_choice(ctx, args, "severity", severities, body);
    if (r >= 0)
        r = add_text(ctx, args, "title", false, body);
    if (r >= 0)
        r = add_text(ctx, args, "description", true, body);
    if (r >= 0)
        r = add_time(ctx, args, "occurred-at", "occurred_at", body);
    if (r >= 0)
        r = add_time(ctx, args, "resolved-at", "resolved_at", body);
    if (r < 0)
        return r;
    return post_record(ctx, path, body, "Incident");
}

static int cmd_incident_list(CtlContext *ctx, const CtlArgs *args)
{
    static const CtlColumn cols[] = {
        {"ID", CTL_ALIGN_RIGHT},      {"SEVERITY", CTL_ALIGN_LEFT}, {"OCCURRED", CTL_ALIGN_LEFT},
        {"RESOLVED", CTL_ALIGN_LEFT}, {"TITLE", CTL_ALIGN_LEFT},    {"DESCRIPTION", CTL_ALIGN_LEFT},
    };
    static const char *const keys[] = {
        "id", "severity", "occurred_at", "resolved_at", "title", "description",
    };
    return list_records(ctx, args, "incidents", cols, keys, ELEMENTSOF(keys));
}

static int cmd_incident_resolve(CtlContext *ctx, const CtlArgs *args)
{
    _cleanup_json_ json_object *body = json_object_new_object(), *o = NULL;
    _cleanup_free_ char *path = NULL;
    int64_t id;
    int r;

    r = ctl_parse_id(ctx, "incident", args->pos[0], &id);
    if (r < 0)
        return r;
    if (ctl_args_has(args, "reopen")) {
        if (ctl_args_has(args, "at"))
            return ctl_usage_error(ctx, "--reopen and --at exclude each other");
        json_object_object_add(body, "resolved_at", NULL);
    } else {
        r = add_time(ctx, args, "at", "resolved_at", body);
        if (r < 0)
            return r;
        if (!cm_json_get(body, "resolved_at")) {
            char now[CM_TIME_ISO_LEN + 1];
            cm_time_iso((int64_t)time(NULL) * 1000, now);
            json_object_object_add(body, "resolved_at", json_object_new_string(now));
        }
    }
    path = ctl_path("/v1/incidents/%" PRId64, id);
    if (!path)
        return ctl_fail(ctx, -ENOMEM, "out of memory");
    r = ctl_call(ctx, "PATCH", path, body, &o);
    if (r < 0)
        return r;
    if (ctl_emit_json(ctx, o))
        return 0;
    if (cm_json_get_str(o, "resolved_at", NULL))
        fprintf(ctx->out, "Incident %" PRId64 " of system %" PRId64 " was resolved at %s.\n", id,
                cm_json_get_int(o, "system_id", 0), cm_json_get_str(o, "resolved_at", "?"));
    else
        fprintf(ctx->out, "Incident %" PRId64 " of system %" PRId64 " is open again.\n", id,
                cm_json_get_int(o, "system_id", 0));
    return 0;
}

/* ---- backups ---- */

/* The size and SHA-256 of the file at @path. */
static int hash_file(CtlContext *ctx, const char *path, int64_t *ret_size,
                     char ret_sha[CM_SHA256_HEX_LEN + 1])
{
    int r = ctl_file_sha256(path, ret_size, ret_sha);
    if (r == -ENOMEM)
        return ctl_fail(ctx, r, "out of memory");
    if (r < 0)
        return ctl_fail(ctx, r, "cannot read %s: %s", path, strerror(-r));
    return 0;
}

static int cmd_backup_add(CtlContext *ctx, const CtlArgs *args)
{
    _cleanup_json_ json_object *body = json_object_new_object();
    _cleanup_free_ char *path = NULL, *msg = NULL;
    const char *file = ctl_args_get(args, "file"), *size_s = ctl_args_get(args, "size");
    const char *sha_s = ctl_args_get(args, "sha256");
    char sha[CM_SHA256_HEX_LEN + 1];
    int64_t size = 0;
    int r;

    if (file && (size_s || sha_s))
        return ctl_usage_error(ctx, "give either --file or --size and --sha256");
    if (!file && (!size_s || !sha_s))
        return ctl_usage_error(ctx, "give --size and --sha256 of the backup, or --file to "
                                    "take them from a copy of it");
    r = system_path(ctx, args, "backups", &path);
    if (r >= 0)
        r = add_text(ctx, args, "location", false, body);
    if (r >= 0)
        r = add_time(ctx, args, "taken-at", "taken_at", body);
    if (r >= 0 && size_s)
        r = ctl_parse_count(ctx, "--size", size_s, 0, INT64_MAX, &size);
    if (r >= 0 && sha_s) {
        r = ctl_parse_sha256(sha_s, sha, &msg);
        if (r == -ENOMEM)
            return ctl_fail(ctx, r, "out of memory");
        if (r < 0)
            return ctl_usage_error(ctx, "--sha256: %s", msg);
    }
    if (r >= 0 && file)
        r = hash_file(ctx, file, &size, sha);
    if (r < 0)
        return r;
    json_object_object_add(body, "size_bytes", json_object_new_int64(size));
    json_object_object_add(body, "sha256", json_object_new_string(sha));
    return post_record(ctx, path, body, "Backup");
}

static int cmd_backup_list(CtlContext *ctx, const CtlArgs *args)
{
    static const CtlColumn cols[] = {
        {"ID", CTL_ALIGN_RIGHT},    {"TAKEN", CTL_ALIGN_LEFT},    {"SIZE_BYTES", CTL_ALIGN_RIGHT},
        {"SHA256", CTL_ALIGN_LEFT}, {"RECORDED", CTL_ALIGN_LEFT}, {"LOCATION", CTL_ALIGN_LEFT},
    };
    static const char *const keys[] = {
        "id", "taken_at", "size_bytes", "sha256", "created_at", "location",
    };
    return list_records(ctx, args, "backups", cols, keys, ELEMENTSOF(keys));
}

#define SYSTEM_OPTION                                                                              \
    {                                                                                              \
        "system", 0, "ID", CTL_OPT_VALUE | CTL_OPT_REQUIRED, "the application system"              \
    }
#define TIME_FORMS "ISO 8601 (2026-11-27, 2026-11-27T08:00:00+08:00), epoch seconds, now, or -3d"

static const CtlOption vuln_add_options[] = {
    SYSTEM_OPTION,
    {"severity", 0, "LEVEL", CTL_OPT_VALUE | CTL_OPT_REQUIRED, "critical, high, medium or low"},
    {"title", 0, "TEXT", CTL_OPT_VALUE | CTL_OPT_REQUIRED, "what it is (at most 500 characters)"},
    {"found-at", 0, "TIME", CTL_OPT_VALUE | CTL_OPT_REQUIRED, "when it was found: " TIME_FORMS},
    {"status", 0, "STATUS", CTL_OPT_VALUE, "open (default), fixed or accepted"},
    {"fixed-at", 0, "TIME", CTL_OPT_VALUE, "when it was fixed"},
    {NULL},
};

static const CtlOption incident_resolve_options[] = {
    {"at", 0, "TIME", CTL_OPT_VALUE, "when it was resolved (default: now): " TIME_FORMS},
    {"reopen", 0, NULL, 0, "it is not resolved after all (clears the time)"},
    {NULL},
};

static const CtlOption vuln_update_options[] = {
    {"status", 0, "STATUS", CTL_OPT_VALUE | CTL_OPT_REQUIRED, "open, fixed or accepted"},
    {"fixed-at", 0, "TIME", CTL_OPT_VALUE,
     "when it was fixed (default for --status fixed: now): " TIME_FORMS},
    {NULL},
};

static const CtlOption list_options[] = {
    SYSTEM_OPTION,
    CTL_LIST_OPTIONS,
    {NULL},
};

static const CtlOption incident_add_options[] = {
    SYSTEM_OPTION,
    {"severity", 0, "LEVEL", CTL_OPT_VALUE | CTL_OPT_REQUIRED, "critical, high, medium or low"},
    {"title", 0, "TEXT", CTL_OPT_VALUE | CTL_OPT_REQUIRED,
     "what happened (at most 500 characters)"},
    {"occurred-at", 0, "TIME", CTL_OPT_VALUE | CTL_OPT_REQUIRED, "when: " TIME_FORMS},
    {"description", 0, "TEXT", CTL_OPT_VALUE, "the details (at most 10000 characters)"},
    {"resolved-at", 0, "TIME", CTL_OPT_VALUE, "when it was resolved"},
    {NULL},
};

static const CtlOption backup_add_options[] = {
    SYSTEM_OPTION,
    {"location", 0, "WHERE", CTL_OPT_VALUE | CTL_OPT_REQUIRED,
     "where the backup is kept, e.g. the disaster-recovery centre's store"},
    {"taken-at", 0, "TIME", CTL_OPT_VALUE | CTL_OPT_REQUIRED, "when it was taken: " TIME_FORMS},
    {"size", 0, "BYTES", CTL_OPT_VALUE, "its size in bytes"},
    {"sha256", 0, "HEX", CTL_OPT_VALUE, "its SHA-256 (64 hexadecimal digits)"},
    {"file", 0, "FILE", CTL_OPT_VALUE, "take --size and --sha256 from FILE (the backup or a copy)"},
    {NULL},
};

const CtlCommand ctl_vulnerability_commands[] = {
    {
        .group = "vulnerability",
        .verb = "add",
        .handler = cmd_vuln_add,
        .help = "record a security vulnerability of a system (vendor, department)",
        .options = vuln_add_options,
        .description = "Open critical and high vulnerabilities lower the security score of the\n"
                       "annual assessment.",
        .example = "  cloudbrokerctl vulnerability add --system 3 --severity high \\\n"
                   "      --title 'outdated TLS library' --found-at 2026-11-20",
    },
    {
        .group = "vulnerability",
        .verb = "list",
        .handler = cmd_vuln_list,
        .help = "list a system's vulnerabilities",
        .options = list_options,
        .example = "  cloudbrokerctl vulnerability list --system 3",
    },
    {
        .group = "vulnerability",
        .verb = "update",
        .handler = cmd_vuln_update,
        .help = "set a vulnerability's status: open, fixed or accepted (vendor, department)",
        .args = "ID",
        .min_args = 1,
        .max_args = 1,
        .options = vuln_update_options,
        .example = "  cloudbrokerctl vulnerability update 5 --status fixed\n"
                   "  cloudbrokerctl vulnerability update 5 --status accepted",
    },
    {NULL},
};

const CtlCommand ctl_incident_commands[] = {
    {
        .group = "incident",
        .verb = "add",
        .handler = cmd_incident_add,
        .help = "record a security incident of a system (vendor, department)",
        .options = incident_add_options,
        .example = "  cloudbrokerctl incident add --system 3 --severity medium \\\n"
                   "      --title 'brute-force logins' --occurred-at '2026-11-20T03:10:00+08:00'",
    },
    {
        .group = "incident",
        .verb = "list",
        .handler = cmd_incident_list,
        .help = "list a system's incidents",
        .options = list_options,
        .example = "  cloudbrokerctl incident list --system 3",
    },
    {
        .group = "incident",
        .verb = "resolve",
        .handler = cmd_incident_resolve,
        .help = "record when an incident was resolved, or reopen it (vendor, department)",
        .args = "ID",
        .min_args = 1,
        .max_args = 1,
        .options = incident_resolve_options,
        .example = "  cloudbrokerctl incident resolve 4 --at '2026-11-21T09:00:00+08:00'\n"
                   "  cloudbrokerctl incident resolve 4 --reopen",
    },
    {NULL},
};

const CtlCommand ctl_backup_commands[] = {
    {
        .group = "backup",
        .verb = "add",
        .handler = cmd_backup_add,
        .help = "attest a backup of a system's data (department, vendor)",
        .options = backup_add_options,
        .description =
            "Art. 5: a system without a backup taken in the assessment policy's last\n"
            "backup_max_age_days (31) gets no budget. Give the backup's size and SHA-256, or\n"
            "--file to compute them from a copy of it.",
        .example = "  cloudbrokerctl backup add --system 3 --location 'dr-centre://store/oa' \\\n"
                   "      --taken-at -1d --file oa-20261127.tar.zst",
    },
    {
        .group = "backup",
        .verb = "list",
        .handler = cmd_backup_list,
        .help = "list a system's backup attestations, in the order recorded",
        .options = list_options,
        .example = "  cloudbrokerctl backup list --system 3",
    },
    {NULL},
};
