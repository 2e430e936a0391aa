/* SPDX-License-Identifier: Apache-2.0 */
/* The records of the vendor's duties and their documents: parse, call the tables' owner,
 * answer (docs/service-quality.md, docs/api.md#the-vendors-duties). */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "br-api.h"
#include "br-daemon.h"
#include "br-material.h"
#include "br-security.h"
#include "br-system.h"
#include "br-vendor-record.h"
#include "cm-time.h"
#include "cm-util.h"

/* What the API calls each kind in its audit trail and its objects. */
static const char *const object_types[BR_VENDOR_RECORD_KIND_MAX] = {
    "security_bulletin",
    "emergency_drill",
    "restore_test",
    "operations_report",
};

/* The time field each kind records. */
static const char *const time_keys[BR_VENDOR_RECORD_KIND_MAX] = {
    "published_at",
    "held_at",
    "tested_at",
    "delivered_at",
};

static bool is_sha256(const char *s)
{
    size_t n = 0;
    for (; s && s[n]; n++)
        if (!isdigit((unsigned char)s[n]) && !(s[n] >= 'a' && s[n] <= 'f'))
            return false;
    return n == 64;
}

/* ---- documents ---- */

/* The checks that need no body: the SHA-256 the client states (the path's {name}), the
 * filename, the type. */
static int document_checks(BrCall *c, const char **ret_filename, char *media, size_t media_size)
{
    _cleanup_(br_policies_unrefp) BrPolicies *p = br_call_policies(c);
    const char *f = br_call_query(c, "filename");

    if (!is_sha256(c->name))
        return cm_error_set(&c->err, CM_ERROR_INVALID, "sha256",
                            "the path names the document by its SHA-256: 64 lowercase hex "
                            "digits");
    if (f && (strlen(f) > 255 || !cm_utf8_valid(f, strlen(f))))
        return cm_error_set(&c->err, CM_ERROR_INVALID, "filename",
                            "filename must be at most 255 bytes of UTF-8");
    for (const char *q = f; q && *q; q++)
        if ((unsigned char)*q < 0x20 || *q == 0x7f || *q == '/' || *q == '\\')
            return cm_error_set(&c->err, CM_ERROR_INVALID, "filename",
                                "filename must not contain control characters or slashes");
    *ret_filename = f ? f : "";
    if (br_material_media_type(br_call_header(c, "Content-Type"), media, media_size) < 0)
        return cm_error_set(&c->err, CM_ERROR_MEDIA_TYPE, "Content-Type",
                            "a Content-Type header naming the document's type is required");
    if (!br_policy_media_type_allowed(&p->review, media))
        return cm_error_set(&c->err, CM_ERROR_MEDIA_TYPE, "Content-Type",
                            "%s is not an accepted document type (PDF, office documents, "
                            "images, plain text; see the review policy)",
                            media);
    return 0;
}

static int br_api_vendor_documents_precheck(BrCall *c)
{
    const char *filename;
    char media[128];
    return document_checks(c, &filename, media, sizeof(media));
}

typedef struct {
    const char *sha256, *media, *filename;
    int64_t size;
    json_object *out;
} DocumentPut;

static int document_put_tx(BrTx *tx, void *ctx)
{
    DocumentPut *w = ctx;
    _cleanup_json_ json_object *detail = json_object_new_object();
    int r = br_vendor_record_document_add(tx, w->sha256, w->size, w->media, w->filename, &w->out);

    if (r < 0)
        return r;
    json_object_object_add(detail, "sha256", json_object_new_string(w->sha256));
    json_object_object_add(detail, "size", json_object_new_int64(w->size));
    json_object_object_add(detail, "media_type", json_object_new_string(w->media));
    json_object_object_add(detail, "filename", json_object_new_string(w->filename));
    br_tx_audit_set(tx, "vendor_document.upload", "vendor_document", 0,
                    cm_json_to_string(detail, NULL));
    return 0;
}

static int br_api_vendor_documents_upload(BrCall *c)
{
    DocumentPut w = {.sha256 = c->upload.sha256, .size = (int64_t)c->upload.size};
    char media[128];
    int r = document_checks(c, &w.filename, media, sizeof(media));

    if (r < 0)
        return r;
    w.media = media;
    if (c->upload.size == 0)
        return cm_error_set_code(&c->err, CM_ERROR_UNPROCESSABLE, "empty", "body",
                                 "the document is empty");
    /* The broker's own hash of what arrived against the one the client stated: a document
     * changed or cut on its way is refused, and nothing is kept. */
    if (strcmp(c->name, c->upload.sha256) != 0)
        return cm_error_set_code(&c->err, CM_ERROR_UNPROCESSABLE, "sha256_mismatch", "sha256",
                                 "the document's SHA-256 is %s, not the %s stated",
                                 c->upload.sha256, c->name);
    r = br_material_sniff(c->upload.fd, c->upload.size, media, &c->err);
    if (r >= 0)
        r = br_material_store(c->d->material_dir, c->upload.tmp_path, c->upload.sha256, &c->err);
    if (r >= 0)
        r = br_call_tx(c, "vendor_document.upload", document_put_tx, &w);
    if (r < 0)
        return r;
    return br_reply(c, BR_HTTP_CREATED, w.out);
}

static int br_api_vendor_documents_get(BrCall *c)
{
    _cleanup_json_ json_object *m = NULL;
    _cleanup_free_ char *path = NULL;
    CmDb *db = br_call_db(c);
    struct stat st;
    int fd, r;

    if (!is_sha256(c->name))
        return cm_error_set(&c->err, CM_ERROR_NOT_FOUND, "sha256",
                            "no vendor document with SHA-256 %s", c->name);
    r = br_vendor_record_document_get(db, c->name, &m, &c->err);
    /* A department reads the documents of its own systems' restore tests only. */
    if (r >= 0 && br_call_is_department(c)) {
        r = br_vendor_record_document_system_ok(db, c->name, br_call_scope(c), &c->err);
        if (r == 0)
            r = cm_error_set(&c->err, CM_ERROR_NOT_FOUND, "sha256",
                             "no vendor document with SHA-256 %s", c->name);
    }
    if (r < 0)
        return r;
    path = br_material_path(c->d->material_dir, c->name);
    if (!path)
        return cm_error_set(&c->err, CM_ERROR_INTERNAL, "", "out of memory");
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) < 0) {
        if (fd >= 0)
            close(fd);
        return cm_error_set(&c->err, CM_ERROR_INTERNAL, "", "document %s is missing from the store",
                            c->name);
    }
    br_reply_header(c, "X-Content-SHA256", c->name);
    br_reply_header(c, "Content-Disposition", "attachment");
    return br_reply_fd(c, fd, (uint64_t)st.st_size, cm_json_get_str(m, "media_type", ""));
}

/* ---- the records ---- */

typedef struct {
    BrVendorRecordKind kind;
    int64_t id;
    char at[CM_TIME_ISO_LEN + 1];
    BrVendorRecord rec;
    json_object *body, *out;
} RecordWrite;

static void record_write_done(RecordWrite *w)
{
    json_object_put(w->out);
}

static int record_create_tx(BrTx *tx, void *ctx)
{
    static const char *const actions[BR_VENDOR_RECORD_KIND_MAX] = {
        "security_bulletin.record",
        "emergency_drill.record",
        "restore_test.record",
        "operations_report.record",
    };
    RecordWrite *w = ctx;
    _cleanup_json_ json_object *doc = NULL;
    int r;

    if (w->kind == BR_VENDOR_RECORD_RESTORE_TEST) {
        _cleanup_json_ json_object *system = NULL;
        r = br_system_get(tx->db, w->rec.system_id, 0, &system, tx->err);
        if (r < 0)
            return r;
    }
    if (w->rec.backup_id > 0) {
        BrSecurityState b;
        r = br_security_load(tx->db, BR_SECURITY_BACKUP, w->rec.backup_id, &b, tx->err);
        if (r == -ENOENT || (r >= 0 && b.system_id != w->rec.system_id)) {
            cm_error_clear(tx->err);
            return cm_error_set_code(tx->err, CM_ERROR_UNPROCESSABLE, "unknown_reference",
                                     "/backup", "system %lld has no backup with id %lld",
                                     (long long)w->rec.system_id, (long long)w->rec.backup_id);
        }
        if (r < 0)
            return r;
    }
    r = br_vendor_record_document_get(tx->db, w->rec.document, &doc, tx->err);
    if (r == -ENOENT) {
        cm_error_clear(tx->err);
        return cm_error_set_code(tx->err, CM_ERROR_UNPROCESSABLE, "unknown_reference", "/document",
                                 "no document with SHA-256 %s was uploaded; upload it first "
                                 "(PUT /v1/vendor-documents/SHA256)",
                                 w->rec.document);
    }
    if (r >= 0)
        r = br_vendor_record_create(tx, w->kind, &w->rec, &w->id);
    if (r < 0)
        return r;
    br_tx_audit_set(tx, actions[w->kind], object_types[w->kind], w->id,
                    cm_json_to_string(w->body, NULL));
    return br_vendor_record_get(tx->db, w->kind, w->id, &w->out, tx->err);
}

static int record_create(BrCall *c, BrVendorRecordKind kind, int64_t system_id)
{
    _cleanup_(record_write_done) RecordWrite w = {.kind = kind, .body = c->body};
    const char *key = time_keys[kind], *month = cm_json_get_str(c->body, "month", NULL);
    char field[32], now[CM_TIME_ISO_LEN + 1];
    int64_t ms;
    int r;

    snprintf(field, sizeof(field), "/%s", key);
    if (cm_time_parse_iso(cm_json_get_str(c->body, key, ""), &ms) < 0)
        return cm_error_set_code(&c->err, CM_ERROR_UNPROCESSABLE, "schema_violation", field,
                                 "not a valid date or time");
    /* A record says what was done: nothing of it lies ahead (a day's grace for a date typed in
     * another time zone). */
    if (ms > cm_now_ms() + 86400000)
        return cm_error_set_code(&c->err, CM_ERROR_UNPROCESSABLE, "schema_violation", field,
                                 "lies in the future");
    cm_time_iso(ms, w.at);
    cm_time_iso(cm_now_ms(), now);
    if (month) {
        /* The schema checked the form; "YYYY-MM" compares as text. */
        if (strncmp(month, now, 7) > 0)
            return cm_error_set_code(&c->err, CM_ERROR_UNPROCESSABLE, "schema_violation", "/month",
                                     "month %s has not begun", month);
        if (strncmp(w.at, month, 7) < 0)
            return cm_error_set_code(&c->err, CM_ERROR_UNPROCESSABLE, "schema_violation", field,
                                     "%s lies before the month %s it is for", key, month);
    }
    w.rec = (BrVendorRecord){
        .month = month,
        .at = w.at,
        .title = cm_json_get_str(c->body, "title", NULL),
        .scenario = cm_json_get_str(c->body, "scenario", NULL),
        .result = cm_json_get_str(c->body, "result", NULL),
        .document = cm_json_get_str(c->body, "document", ""),
        .system_id = system_id,
        .backup_id = cm_json_get_int(c->body, "backup", 0),
        .duration_s = cm_json_get_int(c->body, "duration_s", 0),
    };
    r = br_call_tx(c, object_types[kind], record_create_tx, &w);
    if (r < 0)
        return r;
    return br_reply(c, BR_HTTP_CREATED, TAKE_PTR(w.out));
}

static int br_api_bulletins_create(BrCall *c)
{
    return record_create(c, BR_VENDOR_RECORD_BULLETIN, 0);
}

static int br_api_drills_create(BrCall *c)
{
    return record_create(c, BR_VENDOR_RECORD_DRILL, 0);
}

static int br_api_restore_tests_create(BrCall *c)
{
    return record_create(c, BR_VENDOR_RECORD_RESTORE_TEST, c->ids[0]);
}

static int br_api_reports_create(BrCall *c)
{
    return record_create(c, BR_VENDOR_RECORD_REPORT, 0);
}

/* ?from= / ?to=: a date or time, as cm_time_iso() writes it in @out. */
static int time_param(BrCall *c, const char *key, char out[CM_TIME_ISO_LEN + 1], bool *ret_set)
{
    const char *v = br_call_query(c, key);
    int64_t ms;

    *ret_set = v != NULL;
    if (!v)
        return 0;
    if (cm_time_parse_iso(v, &ms) < 0)
        return cm_error_set(&c->err, CM_ERROR_INVALID, key,
                            "%s must be a date (YYYY-MM-DD) or a time (ISO 8601)", key);
    cm_time_iso(ms, out);
    return 0;
}

static int record_list(BrCall *c, BrVendorRecordKind kind)
{
    char from[CM_TIME_ISO_LEN + 1], to[CM_TIME_ISO_LEN + 1];
    BrVendorRecordFilter f = {.month = br_call_query(c, "month"), .department = br_call_scope(c)};
    const char *m = f.month;
    bool has_from, has_to;
    json_object *items;
    BrPage page;
    int r = br_call_page(c, &page);

    if (r >= 0 && m &&
        (strlen(m) != 7 || !isdigit((unsigned char)m[0]) || !isdigit((unsigned char)m[1]) ||
         !isdigit((unsigned char)m[2]) || !isdigit((unsigned char)m[3]) || m[4] != '-' ||
         !isdigit((unsigned char)m[5]) || !isdigit((unsigned char)m[6])))
        r = cm_error_set(&c->err, CM_ERROR_INVALID, "month", "month must be YYYY-MM");
    if (r >= 0)
        r = time_param(c, "from", from, &has_from);
    if (r >= 0)
        r = time_param(c, "to", to, &has_to);
    if (r >= 0 && kind == BR_VENDOR_RECORD_RESTORE_TEST)
        r = br_call_query_int(c, "system", 1, INT64_MAX, &f.system_id);
    if (r < 0)
        return r;
    f.from = has_from ? from : NULL;
    f.to = has_to ? to : NULL;
    r = br_vendor_record_list(br_call_db(c), kind, &f, &page, &items, &c->err);
    if (r < 0)
        return r;
    return br_reply_list(c, items, &page);
}

static int br_api_bulletins_list(BrCall *c)
{
    return record_list(c, BR_VENDOR_RECORD_BULLETIN);
}

static int br_api_drills_list(BrCall *c)
{
    return record_list(c, BR_VENDOR_RECORD_DRILL);
}

static int br_api_restore_tests_list(BrCall *c)
{
    return record_list(c, BR_VENDOR_RECORD_RESTORE_TEST);
}

static int br_api_reports_list(BrCall *c)
{
    return record_list(c, BR_VENDOR_RECORD_REPORT);
}

static int record_get(BrCall *c, BrVendorRecordKind kind)
{
    json_object *o = NULL;
    int r = br_vendor_record_get(br_call_db(c), kind, c->ids[0], &o, &c->err);

    if (r < 0)
        return r;
    /* Another department's restore test is as missing as one that does not exist. */
    if (br_call_is_department(c) && cm_json_get_int(o, "department_id", 0) != br_call_scope(c)) {
        json_object_put(o);
        return cm_error_set(&c->err, CM_ERROR_NOT_FOUND, "", "no %s with id %lld",
                            br_vendor_record_kind_to_string(kind), (long long)c->ids[0]);
    }
    return br_reply(c, BR_HTTP_OK, o);
}

static int br_api_bulletins_get(BrCall *c)
{
    return record_get(c, BR_VENDOR_RECORD_BULLETIN);
}

static int br_api_drills_get(BrCall *c)
{
    return record_get(c, BR_VENDOR_RECORD_DRILL);
}

static int br_api_restore_tests_get(BrCall *c)
{
    return record_get(c, BR_VENDOR_RECORD_RESTORE_TEST);
}

static int br_api_reports_get(BrCall *c)
{
    return record_get(c, BR_VENDOR_RECORD_REPORT);
}

#define BUREAU (BR_ROLES_READERS | BR_ROLES_ADMIN | BR_ROLES_VENDOR)

static const BrRoute routes[] = {
    /* The vendor's documents: uploaded once, checked by the SHA-256 the client states. */
    {"PUT", "/v1/vendor-documents/{name}", br_api_vendor_documents_upload, BR_ROLES_VENDOR,
     BR_BODY_UPLOAD, NULL, br_api_vendor_documents_precheck},
    {"GET", "/v1/vendor-documents/{name}", br_api_vendor_documents_get,
     BUREAU | BR_ROLES_DEPARTMENT, BR_BODY_NONE, NULL},

    /* The vendor's duties (Art. 8 and 34). */
    {"POST", "/v1/security-bulletins", br_api_bulletins_create, BR_ROLES_VENDOR, BR_BODY_JSON,
     "security-bulletin-create"},
    {"GET", "/v1/security-bulletins", br_api_bulletins_list, BUREAU, BR_BODY_NONE, NULL},
    {"GET", "/v1/security-bulletins/{id}", br_api_bulletins_get, BUREAU, BR_BODY_NONE, NULL},
    {"POST", "/v1/emergency-drills", br_api_drills_create, BR_ROLES_VENDOR, BR_BODY_JSON,
     "emergency-drill-create"},
    {"GET", "/v1/emergency-drills", br_api_drills_list, BUREAU, BR_BODY_NONE, NULL},
    {"GET", "/v1/emergency-drills/{id}", br_api_drills_get, BUREAU, BR_BODY_NONE, NULL},
    {"POST", "/v1/systems/{id}/restore-tests", br_api_restore_tests_create, BR_ROLES_VENDOR,
     BR_BODY_JSON, "restore-test-create"},
    {"GET", "/v1/restore-tests", br_api_restore_tests_list, BUREAU | BR_ROLES_DEPARTMENT,
     BR_BODY_NONE, NULL},
    {"GET", "/v1/restore-tests/{id}", br_api_restore_tests_get, BUREAU | BR_ROLES_DEPARTMENT,
     BR_BODY_NONE, NULL},
    {"POST", "/v1/operations-reports", br_api_reports_create, BR_ROLES_VENDOR, BR_BODY_JSON,
     "operations-report-create"},
    {"GET", "/v1/operations-reports", br_api_reports_list, BUREAU, BR_BODY_NONE, NULL},
    {"GET", "/v1/operations-reports/{id}", br_api_reports_get, BUREAU, BR_BODY_NONE, NULL},
};

const BrRouteTable br_api_vendor_records_routes = {routes, ELEMENTSOF(routes)};
