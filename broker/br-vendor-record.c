/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>

#include "br-vendor-record.h"
#include "cm-time.h"
#include "cm-util.h"

static const char *const kind_names[BR_VENDOR_RECORD_KIND_MAX] = {
    "security bulletin",
    "emergency drill",
    "restore test",
    "operations report",
};

const char *br_vendor_record_kind_to_string(BrVendorRecordKind kind)
{
    return (unsigned)kind < BR_VENDOR_RECORD_KIND_MAX ? kind_names[kind] : NULL;
}

/* Each record with its document's facts, as the API shows it. */
#define DOCUMENT_COLUMNS                                                                           \
    " x.document_sha256, d.size AS document_size, d.media_type AS document_media_type,"            \
    " d.filename AS document_filename, x.recorded_by, x.created_at"
#define DOCUMENT_JOIN " JOIN vendor_documents d ON d.sha256 = x.document_sha256"
#define BULLETIN_SELECT                                                                            \
    "SELECT x.id, x.month, x.published_at, x.title," DOCUMENT_COLUMNS                              \
    " FROM security_bulletins x" DOCUMENT_JOIN
#define DRILL_SELECT                                                                               \
    "SELECT x.id, x.held_at, x.scenario, x.result," DOCUMENT_COLUMNS                               \
    " FROM emergency_drills x" DOCUMENT_JOIN
#define RESTORE_SELECT                                                                             \
    "SELECT x.id, x.system_id, (SELECT s.department_id FROM systems s WHERE s.id = x.system_id)"   \
    " AS department_id, x.tested_at, x.backup_id, x.result, x.duration_s," DOCUMENT_COLUMNS        \
    " FROM restore_tests x" DOCUMENT_JOIN
#define REPORT_SELECT                                                                              \
    "SELECT x.id, x.month, x.delivered_at," DOCUMENT_COLUMNS                                       \
    " FROM operations_reports x" DOCUMENT_JOIN

int br_vendor_record_create(BrTx *tx, BrVendorRecordKind kind, const BrVendorRecord *rec,
                            int64_t *ret_id)
{
    static const char *const sql[BR_VENDOR_RECORD_KIND_MAX] = {
        "INSERT INTO security_bulletins(month, published_at, title, document_sha256,"
        " recorded_by, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id",
        "INSERT INTO emergency_drills(held_at, scenario, result, document_sha256, recorded_by,"
        " created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id",
        "INSERT INTO restore_tests(system_id, tested_at, backup_id, result, duration_s,"
        " document_sha256, recorded_by, created_at) VALUES (?1, ?2, nullif(?3, 0), ?4, ?5, ?6,"
        " ?7, ?8) RETURNING id",
        "INSERT INTO operations_reports(month, delivered_at, document_sha256, recorded_by,"
        " created_at) VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
    };
    _cleanup_stmt_ CmStmt *st = cm_db_prepare(tx->db, sql[kind], tx->err);
    char now[CM_TIME_ISO_LEN + 1];
    int64_t who = tx->actor->account_id;
    int r;

    if (!st)
        return -EIO;
    cm_time_iso(cm_now_ms(), now);
    switch (kind) {
    case BR_VENDOR_RECORD_BULLETIN:
        r = CM_DB_BIND(st, rec->month, rec->at, rec->title, rec->document, who, now);
        break;
    case BR_VENDOR_RECORD_DRILL:
        r = CM_DB_BIND(st, rec->at, rec->scenario, rec->result, rec->document, who, now);
        break;
    case BR_VENDOR_RECORD_RESTORE_TEST:
        r = CM_DB_BIND(st, rec->system_id, rec->at, rec->backup_id, rec->result, rec->duration_s,
                       rec->document, who, now);
        break;
    default:
        r = CM_DB_BIND(st, rec->month, rec->at, rec->document, who, now);
        break;
    }
    if (r >= 0)
        r = cm_stmt_step(st, tx->err);
    if (r < 0)
        return r;
    *ret_id = cm_stmt_int(st, 0);
    return 0;
}

int br_vendor_record_get(CmDb *db, BrVendorRecordKind kind, int64_t id, json_object **ret,
                         CmError *err)
{
    static const char *const sql[BR_VENDOR_RECORD_KIND_MAX] = {
        BULLETIN_SELECT " WHERE x.id = ?1",
        DRILL_SELECT " WHERE x.id = ?1",
        RESTORE_SELECT " WHERE x.id = ?1",
        REPORT_SELECT " WHERE x.id = ?1",
    };

    return br_store_get_json(db, sql[kind], kind_names[kind], id, ret, err);
}

int br_vendor_record_list(CmDb *db, BrVendorRecordKind kind, const BrVendorRecordFilter *f,
                          const BrPage *page, json_object **ret, CmError *err)
{
    /* ?1 after, ?2 month, ?3 from, ?4 to, ?5 limit; restore tests also ?6 system and
     * ?7 department. A drill's or a restore test's month is the month it was held in. */
    static const char *const sql[BR_VENDOR_RECORD_KIND_MAX] = {
        BULLETIN_SELECT " WHERE x.id > ?1 AND (x.month = ?2 OR ?2 IS NULL)"
                        " AND (x.published_at >= ?3 OR ?3 IS NULL)"
                        " AND (x.published_at < ?4 OR ?4 IS NULL) ORDER BY x.id LIMIT ?5",
        DRILL_SELECT " WHERE x.id > ?1 AND (substr(x.held_at, 1, 7) = ?2 OR ?2 IS NULL)"
                     " AND (x.held_at >= ?3 OR ?3 IS NULL) AND (x.held_at < ?4 OR ?4 IS NULL)"
                     " ORDER BY x.id LIMIT ?5",
        RESTORE_SELECT " WHERE x.id > ?1 AND (substr(x.tested_at, 1, 7) = ?2 OR ?2 IS NULL)"
                       " AND (x.tested_at >= ?3 OR ?3 IS NULL)"
                       " AND (x.tested_at < ?4 OR ?4 IS NULL) AND (?6 = 0 OR x.system_id = ?6)"
                       " AND (?7 = 0 OR x.system_id IN (SELECT s.id FROM systems s"
                       " WHERE s.department_id = ?7)) ORDER BY x.id LIMIT ?5",
        REPORT_SELECT " WHERE x.id > ?1 AND (x.month = ?2 OR ?2 IS NULL)"
                      " AND (x.delivered_at >= ?3 OR ?3 IS NULL)"
                      " AND (x.delivered_at < ?4 OR ?4 IS NULL) ORDER BY x.id LIMIT ?5",
    };
    _cleanup_stmt_ CmStmt *st = cm_db_prepare(db, sql[kind], err);
    int r;

    if (!st)
        return -EIO;
    if (kind == BR_VENDOR_RECORD_RESTORE_TEST)
        r = CM_DB_BIND(st, page->after, f->month, f->from, f->to, page->limit, f->system_id,
                       f->department);
    else
        r = CM_DB_BIND(st, page->after, f->month, f->from, f->to, page->limit);
    if (r < 0)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "cannot bind the list's filters");
    return cm_stmt_rows_json(st, ret, err);
}

int br_vendor_record_document_add(BrTx *tx, const char *sha256, int64_t size,
                                  const char *media_type, const char *filename, json_object **ret)
{
    _cleanup_stmt_ CmStmt *st = cm_db_prepare(
        tx->db,
        "INSERT INTO vendor_documents(sha256, size, media_type, filename, uploaded_by,"
        " uploaded_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (sha256) DO NOTHING",
        tx->err);
    char now[CM_TIME_ISO_LEN + 1];
    int r;

    if (!st)
        return -EIO;
    cm_time_iso(cm_now_ms(), now);
    r = CM_DB_BIND(st, sha256, size, media_type, filename, tx->actor->account_id, now);
    if (r >= 0)
        r = cm_stmt_exec(st, tx->err);
    if (r < 0)
        return r;
    return br_vendor_record_document_get(tx->db, sha256, ret, tx->err);
}

int br_vendor_record_document_get(CmDb *db, const char *sha256, json_object **ret, CmError *err)
{
    _cleanup_stmt_ CmStmt *st =
        cm_db_prepare(db,
                      "SELECT sha256, size, media_type, filename, uploaded_by, uploaded_at"
                      " FROM vendor_documents WHERE sha256 = ?1",
                      err);
    int r;

    if (!st)
        return -EIO;
    CM_DB_BIND(st, sha256);
    r = cm_stmt_step(st, err);
    if (r < 0)
        return r;
    if (r == 0)
        return cm_error_set(err, CM_ERROR_NOT_FOUND, "sha256", "no vendor document with SHA-256 %s",
                            sha256);
    *ret = cm_stmt_row_json(st);
    return 0;
}

int br_vendor_record_document_system_ok(CmDb *db, const char *sha256, int64_t department,
                                        CmError *err)
{
    _cleanup_stmt_ CmStmt *st =
        cm_db_prepare(db,
                      "SELECT 1 FROM restore_tests x JOIN systems s ON s.id = x.system_id"
                      " WHERE x.document_sha256 = ?1 AND s.department_id = ?2",
                      err);

    if (!st)
        return -EIO;
    CM_DB_BIND(st, sha256, department);
    return cm_stmt_step(st, err);
}
