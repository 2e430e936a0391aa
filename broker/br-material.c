/* SPDX-License-Identifier: Apache-2.0 */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "br-material.h"
#include "br-policy.h"
#include "cm-json.h"
#include "cm-time.h"
#include "cm-util.h"

int br_material_media_type(const char *content_type, char *out, size_t out_size)
{
    size_t n = 0;
    bool slash = false;

    if (!content_type)
        return -EINVAL;
    while (*content_type == ' ')
        content_type++;
    for (const char *p = content_type; *p && *p != ';' && *p != ' '; p++) {
        char ch = (char)tolower((unsigned char)*p);
        if (!(isalnum((unsigned char)ch) || strchr("/.+-_", ch)))
            return -EINVAL;
        if (ch == '/') {
            if (slash)
                return -EINVAL;
            slash = true;
        }
        if (n + 1 >= out_size)
            return -EINVAL;
        out[n++] = ch;
    }
    out[n] = 0;
    return slash && n > 2 ? 0 : -EINVAL;
}

static const char *describe(const uint8_t *b, size_t n)
{
    if (n >= 5 && memcmp(b, "%PDF-", 5) == 0)
        return "pdf";
    if (n >= 8 && memcmp(b, "\x89PNG\r\n\x1a\n", 8) == 0)
        return "png";
    if (n >= 3 && memcmp(b, "\xff\xd8\xff", 3) == 0)
        return "jpeg";
    if (n >= 4 && memcmp(b, "PK\x03\x04", 4) == 0)
        return "zip";
    if (n >= 8 && memcmp(b, "\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", 8) == 0)
        return "ole";
    return "unknown";
}

static const struct {
    const char *prefix; /* media type, or a prefix ending in '.' or '/' */
    const char *family;
} families[] = {
    {"application/pdf", "pdf"},
    {"image/png", "png"},
    {"image/jpeg", "jpeg"},
    {"application/vnd.openxmlformats-officedocument.", "zip"},
    {"application/vnd.oasis.opendocument.", "zip"},
    {"application/msword", "ole"},
    {"application/vnd.ms-excel", "ole"},
    {"application/vnd.ms-powerpoint", "ole"},
    {"text/", "text"},
};

/* Text: UTF-8 with no control characters other than tab, newline, carriage return, form feed. */
static int sniff_text(int fd, uint64_t size, CmError *err)
{
    _cleanup_free_ char *buf = NULL;
    size_t got = 0;

    buf = malloc(size ? size : 1);
    if (!buf)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    while (got < size) {
        ssize_t n = pread(fd, buf + got, size - got, (off_t)got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return cm_error_set(err, CM_ERROR_INTERNAL, "", "cannot read the upload");
        got += (size_t)n;
    }
    for (size_t i = 0; i < size; i++) {
        unsigned char ch = (unsigned char)buf[i];
        if ((ch < 0x20 && !strchr("\t\n\r\f", ch)) || ch == 0x7f)
            return cm_error_set_code(err, CM_ERROR_MEDIA_TYPE, "content_mismatch", "Content-Type",
                                     "declared as text but byte %zu is a control character", i);
    }
    if (!cm_utf8_valid(buf, size))
        return cm_error_set_code(err, CM_ERROR_MEDIA_TYPE, "content_mismatch", "Content-Type",
                                 "declared as text but the content is not valid UTF-8");
    return 0;
}

int br_material_sniff(int fd, uint64_t size, const char *media_type, CmError *err)
{
    uint8_t head[16];
    ssize_t n = pread(fd, head, sizeof(head), 0);
    const char *family = NULL, *seen;

    if (n < 0)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "cannot read the upload");
    for (size_t i = 0; i < ELEMENTSOF(families) && !family; i++) {
        size_t len = strlen(families[i].prefix);
        char last = families[i].prefix[len - 1];
        if ((last == '.' || last == '/') ? strncmp(media_type, families[i].prefix, len) == 0
                                         : strcmp(media_type, families[i].prefix) == 0)
            family = families[i].family;
    }
    if (!family)
        return cm_error_set_code(err, CM_ERROR_MEDIA_TYPE, "unsupported_media_type", "Content-Type",
                                 "no content check is known for %s", media_type);
    if (strcmp(family, "text") == 0)
        return sniff_text(fd, size, err);
    seen = describe(head, (size_t)n);
    if (strcmp(seen, family) != 0)
        return cm_error_set_code(err, CM_ERROR_MEDIA_TYPE, "content_mismatch", "Content-Type",
                                 "declared as %s but the content looks like %s", media_type,
                                 strcmp(seen, "unknown") == 0 ? "something else" : seen);
    return 0;
}

char *br_material_path(const char *dir, const char *sha256)
{
    return cm_strdup_printf("%s/%.2s/%s", dir, sha256, sha256);
}

int br_material_store(const char *dir, const char *tmp_path, const char *sha256, CmError *err)
{
    _cleanup_free_ char *sub = cm_strdup_printf("%s/%.2s", dir, sha256);
    _cleanup_free_ char *path = br_material_path(dir, sha256);
    struct stat st;
    int r;

    if (!sub || !path)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    if (mkdir(sub, 0700) < 0 && errno != EEXIST)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "cannot store the material");
    if (stat(path, &st) == 0) {
        /* Content-addressed: the same bytes are already here. */
        unlink(tmp_path);
        return 0;
    }
    if (rename(tmp_path, path) < 0)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "cannot store the material: %s",
                            strerror(errno));
    r = cm_fsync_dir(sub);
    if (r >= 0)
        r = cm_fsync_dir(dir);
    if (r < 0)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "cannot sync the material store");
    return 0;
}

int br_material_list(CmDb *db, int64_t request, json_object **ret, unsigned *ret_present,
                     CmError *err)
{
    _cleanup_stmt_ CmStmt *st = cm_db_prepare(db,
                                              "SELECT kind, sha256, size, media_type, filename,"
                                              " uploaded_by, uploaded_at FROM materials"
                                              " WHERE request_id = ? AND current = 1 ORDER BY kind",
                                              err);
    _cleanup_json_ json_object *list = NULL;
    unsigned present = 0;
    int r;

    if (!st)
        return -EIO;
    CM_DB_BIND(st, request);
    r = cm_stmt_rows_json(st, &list, err);
    if (r < 0)
        return r;
    for (size_t i = 0; i < json_object_array_length(list); i++) {
        int k = br_material_kind_from_string(
            cm_json_get_str(json_object_array_get_idx(list, i), "kind", ""));
        if (k >= 0)
            present |= 1u << k;
    }
    if (ret)
        *ret = TAKE_PTR(list);
    if (ret_present)
        *ret_present = present;
    return 0;
}

int br_material_current(CmDb *db, int64_t request, const char *kind, json_object **ret,
                        CmError *err)
{
    _cleanup_stmt_ CmStmt *st =
        cm_db_prepare(db,
                      "SELECT sha256, media_type, filename FROM materials WHERE request_id = ?"
                      " AND kind = ? AND current = 1",
                      err);
    int r;

    if (!st)
        return -EIO;
    CM_DB_BIND(st, request, kind);
    r = cm_stmt_step(st, err);
    if (r < 0)
        return r;
    if (r == 0)
        return cm_error_set(err, CM_ERROR_NOT_FOUND, "kind", "request %lld has no %s material",
                            (long long)request, kind);
    *ret = cm_stmt_row_json(st);
    return 0;
}

int br_material_has(CmDb *db, int64_t request, const char *kind, const char *sha256, CmError *err)
{
    _cleanup_stmt_ CmStmt *st = cm_db_prepare(
        db, "SELECT 1 FROM materials WHERE request_id = ? AND kind = ? AND sha256 = ?", err);
    if (!st)
        return -EIO;
    CM_DB_BIND(st, request, kind, sha256);
    return cm_stmt_step(st, err);
}

int br_material_add(BrTx *tx, int64_t request, const BrMaterialUpload *m, json_object **ret)
{
    char at[CM_TIME_ISO_LEN + 1];
    _cleanup_stmt_ CmStmt *st = cm_db_prepare(tx->db,
                                              "UPDATE materials SET current = 0"
                                              " WHERE request_id = ? AND kind = ? AND current = 1",
                                              tx->err);
    _cleanup_json_ json_object *detail = NULL, *o = NULL;
    int r;

    if (!st)
        return -EIO;
    CM_DB_BIND(st, request, m->kind);
    r = cm_stmt_exec(st, tx->err);
    if (r < 0)
        return r;

    cm_time_iso(cm_now_ms(), at);
    st = cm_db_prepare(tx->db,
                       "INSERT INTO materials(request_id, kind, sha256, size, media_type,"
                       " filename, uploaded_by, uploaded_at) VALUES (?,?,?,?,?,?,?,?)"
                       " RETURNING request_id, kind, sha256, size, media_type, filename,"
                       " uploaded_at",
                       tx->err);
    if (!st)
        return -EIO;
    CM_DB_BIND(st, request, m->kind, m->sha256, m->size, m->media_type, m->filename,
               tx->actor->account_id, at);
    r = cm_stmt_step(st, tx->err);
    if (r < 0)
        return r;
    o = cm_stmt_row_json(st);
    cm_stmt_reset(st);

    detail = json_object_new_object();
    json_object_object_add(detail, "kind", json_object_new_string(m->kind));
    json_object_object_add(detail, "sha256", json_object_new_string(m->sha256));
    json_object_object_add(detail, "size", json_object_new_int64(m->size));
    json_object_object_add(detail, "media_type", json_object_new_string(m->media_type));
    r = br_tx_audit(tx, "material.upload", "request", request, "ok",
                    cm_json_to_string(detail, NULL));
    if (r < 0)
        return r;
    *ret = TAKE_PTR(o);
    return 0;
}
