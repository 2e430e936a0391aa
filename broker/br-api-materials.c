/* SPDX-License-Identifier: Apache-2.0 */
/* PUT/GET /v1/requests/{id}/materials/{name}: documents attached to a request. */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "br-api-requests.h"
#include "br-daemon.h"
#include "br-material.h"
#include "cm-util.h"

static int material_kind(BrCall *c, BrMaterialKind *ret)
{
    int k = br_material_kind_from_string(c->name);
    if (k < 0)
        return cm_error_set_code(&c->err, CM_ERROR_NOT_FOUND, "unknown_material_kind", "kind",
                                 "'%s' is not a material kind (construction_plan, "
                                 "performance_self_test, security_self_test, backup_proof, "
                                 "test_report, other)",
                                 c->name);
    *ret = (BrMaterialKind)k;
    return 0;
}

/* Who may attach what, and when. */
static int may_upload(BrCall *c, const BrRequestRow *row, BrMaterialKind kind)
{
    if (c->actor.role == BR_ROLE_VENDOR) {
        if (kind != BR_MATERIAL_TEST_REPORT)
            return cm_error_set(&c->err, CM_ERROR_FORBIDDEN, "kind",
                                "the vendor attaches test reports only");
        if (row->state != BR_REQUEST_STATE_IN_TRIAL)
            return cm_error_set_code(&c->err, CM_ERROR_CONFLICT, "invalid_state", "state",
                                     "request %lld is '%s'; test reports are attached during "
                                     "the trial",
                                     (long long)row->id, br_request_state_to_string(row->state));
        return 0;
    }
    if (kind == BR_MATERIAL_TEST_REPORT)
        return cm_error_set(&c->err, CM_ERROR_FORBIDDEN, "kind",
                            "test reports are attached by the vendor");
    if (!br_request_state_is_editable(row->state))
        return cm_error_set_code(&c->err, CM_ERROR_CONFLICT, "invalid_state", "state",
                                 "request %lld is '%s'; materials can be changed only while "
                                 "draft or returned",
                                 (long long)row->id, br_request_state_to_string(row->state));
    return 0;
}

static int filename_param(BrCall *c, const char **ret)
{
    const char *f = br_call_query(c, "filename");
    if (!f) {
        *ret = "";
        return 0;
    }
    size_t n = strlen(f);
    if (n > 255 || !cm_utf8_valid(f, n))
        return cm_error_set(&c->err, CM_ERROR_INVALID, "filename",
                            "filename must be at most 255 bytes of UTF-8");
    for (const char *p = f; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f || *p == '/' || *p == '\\')
            return cm_error_set(&c->err, CM_ERROR_INVALID, "filename",
                                "filename must not contain control characters or slashes");
    *ret = f;
    return 0;
}

/* The checks that need no body: kind, filename, declared type, and may this caller upload. */
static int upload_checks(BrCall *c, BrMaterialKind *ret_kind, const char **ret_filename,
                         char *media, size_t media_size)
{
    _cleanup_(br_policies_unrefp) BrPolicies *p = br_call_policies(c);
    _cleanup_(br_request_row_clear) BrRequestRow row = {0};
    int r;

    r = material_kind(c, ret_kind);
    if (r >= 0)
        r = filename_param(c, ret_filename);
    if (r < 0)
        return r;
    if (br_material_media_type(br_call_header(c, "Content-Type"), media, media_size) < 0)
        return cm_error_set(&c->err, CM_ERROR_MEDIA_TYPE, "Content-Type",
                            "a Content-Type header naming the document's type is required");
    if (!br_policy_media_type_allowed(&p->review, media))
        return cm_error_set(&c->err, CM_ERROR_MEDIA_TYPE, "Content-Type",
                            "%s is not an accepted document type (PDF, office documents, "
                            "images, plain text; see the review policy)",
                            media);
    r = br_request_load(br_call_db(c), c->ids[0], &c->actor, &row, &c->err);
    if (r < 0)
        return r;
    return may_upload(c, &row, *ret_kind);
}

static int br_api_materials_precheck(BrCall *c)
{
    BrMaterialKind kind;
    const char *filename;
    char media[128];
    return upload_checks(c, &kind, &filename, media, sizeof(media));
}

typedef struct {
    BrCall *c;
    BrMaterialKind kind;
    BrMaterialUpload upload;
    json_object *out;
} MaterialPut;

static int material_put_tx(BrTx *tx, void *ctx)
{
    MaterialPut *w = ctx;
    _cleanup_(br_request_row_clear) BrRequestRow row = {0};
    /* Again in the transaction: the request may have moved on meanwhile. */
    int r = br_request_load(tx->db, w->c->ids[0], tx->actor, &row, tx->err);

    if (r >= 0)
        r = may_upload(w->c, &row, w->kind);
    if (r < 0)
        return r;
    return br_material_add(tx, row.id, &w->upload, &w->out);
}

static int br_api_materials_put(BrCall *c)
{
    char media[128];
    MaterialPut w = {.c = c,
                     .kind = BR_MATERIAL_OTHER,
                     .upload = {.kind = c->name,
                                .sha256 = c->upload.sha256,
                                .media_type = media,
                                .filename = "",
                                .size = (int64_t)c->upload.size}};
    int r;

    r = upload_checks(c, &w.kind, &w.upload.filename, media, sizeof(media));
    if (r < 0)
        return r;
    if (c->upload.size == 0)
        return cm_error_set_code(&c->err, CM_ERROR_UNPROCESSABLE, "empty", "body",
                                 "the document is empty");
    r = br_material_sniff(c->upload.fd, c->upload.size, media, &c->err);
    if (r >= 0)
        r = br_material_store(c->d->material_dir, c->upload.tmp_path, c->upload.sha256, &c->err);
    if (r >= 0)
        r = br_call_tx(c, "material.upload", material_put_tx, &w);
    if (r < 0)
        return r;
    return br_reply(c, BR_HTTP_CREATED, w.out);
}

static int br_api_materials_get(BrCall *c)
{
    int64_t id = c->ids[0];
    BrMaterialKind kind = BR_MATERIAL_OTHER;
    _cleanup_(br_request_row_clear) BrRequestRow row = {0};
    _cleanup_json_ json_object *m = NULL;
    _cleanup_free_ char *path = NULL;
    const char *sha, *media, *filename, *disposition;
    struct stat st;
    CmDb *db = br_call_db(c);
    bool inline_ok;
    int fd, r;

    r = material_kind(c, &kind);
    if (r < 0)
        return r;
    disposition = br_call_query(c, "disposition");
    if (disposition && strcmp(disposition, "inline") != 0 && strcmp(disposition, "attachment") != 0)
        return cm_error_set(&c->err, CM_ERROR_INVALID, "disposition",
                            "query parameter 'disposition' must be inline or attachment");
    r = br_request_load(db, id, &c->actor, &row, &c->err);
    if (r >= 0)
        r = br_material_current(db, id, c->name, &m, &c->err);
    if (r < 0)
        return r;
    sha = cm_json_get_str(m, "sha256", "");
    media = cm_json_get_str(m, "media_type", "");
    filename = cm_json_get_str(m, "filename", "");
    path = br_material_path(c->d->material_dir, sha);
    if (!path)
        return cm_error_set(&c->err, CM_ERROR_INTERNAL, "", "out of memory");
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) < 0) {
        if (fd >= 0)
            close(fd);
        return cm_error_set(&c->err, CM_ERROR_INTERNAL, "", "material %s is missing from the store",
                            sha);
    }
    br_reply_header(c, "X-Content-SHA256", sha);
    /* Shown in the console's page (its PDF preview) only for the kinds a browser renders
     * without running anything of the file; the type was checked by magic bytes at upload,
     * and nosniff keeps the browser to it. Anything else is always a download. */
    inline_ok = disposition && strcmp(disposition, "inline") == 0 &&
                (strcmp(media, "application/pdf") == 0 || strcmp(media, "image/png") == 0 ||
                 strcmp(media, "image/jpeg") == 0);
    if (inline_ok) {
        br_reply_header(c, "X-Frame-Options", "SAMEORIGIN");
        br_reply_header(c, "Content-Disposition", "inline");
    } else if (*filename) {
        /* RFC 6266/5987: the UTF-8 name percent-encoded, so no quoting can break out. */
        char disp[300];
        size_t n = (size_t)snprintf(disp, sizeof(disp), "attachment; filename*=UTF-8''");
        for (const unsigned char *p = (const unsigned char *)filename; *p && n + 4 < sizeof(disp);
             p++) {
            if (isalnum(*p) || strchr("-._~", *p))
                disp[n++] = (char)*p;
            else
                n += (size_t)snprintf(disp + n, sizeof(disp) - n, "%%%02X", *p);
        }
        disp[n] = 0;
        br_reply_header(c, "Content-Disposition", disp);
    }
    return br_reply_fd(c, fd, (uint64_t)st.st_size, media);
}

static const BrRoute routes[] = {
    {"PUT", "/v1/requests/{id}/materials/{name}", br_api_materials_put,
     BR_ROLES_DEPARTMENT | BR_ROLES_VENDOR, BR_BODY_UPLOAD, NULL, br_api_materials_precheck},
    {"GET", "/v1/requests/{id}/materials/{name}", br_api_materials_get,
     BR_ROLES_DEPARTMENT | BR_ROLES_READERS | BR_ROLES_CONSULTANT | BR_ROLES_VENDOR, BR_BODY_NONE,
     NULL},
};

const BrRouteTable br_api_materials_routes = {routes, ELEMENTSOF(routes)};
