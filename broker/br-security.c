/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>

#include "br-security.h"
#include "br-store.h"
#include "cm-util.h"

static const char *const kind_names[BR_SECURITY_KIND_MAX] = {"vulnerability", "incident", "backup"};

/* The columns of each kind, as the API shows them. */
#define VULNERABILITY_SELECT                                                                       \
    "SELECT id, system_id, severity, title, status, found_at, fixed_at, created_at"                \
    " FROM vulnerabilities"
#define INCIDENT_SELECT                                                                            \
    "SELECT id, system_id, severity, title, description, occurred_at, resolved_at, created_at"     \
    " FROM incidents"
#define BACKUP_SELECT                                                                              \
    "SELECT id, system_id, location, taken_at, size_bytes, sha256, created_at FROM backups"

int br_security_create(BrTx *tx, BrSecurityKind kind, int64_t system_id,
                       const BrSecurityRecord *rec, int64_t *ret_id)
{
    static const char *const sql[BR_SECURITY_KIND_MAX] = {
        "INSERT INTO vulnerabilities(system_id, severity, title, status, found_at, fixed_at,"
        " recorded_by, created_at, updated_at, fix_recorded_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6,"
        " ?7, ?8, ?8, CASE WHEN ?4 = 'fixed' THEN ?8 END) RETURNING id",
        "INSERT INTO incidents(system_id, severity, title, description, occurred_at,"
        " resolved_at, recorded_by, created_at, resolution_recorded_at) VALUES (?1, ?2, ?3, ?4,"
        " ?5, ?6, ?7, ?8, CASE WHEN ?6 IS NOT NULL THEN ?8 END) RETURNING id",
        "INSERT INTO backups(system_id, location, taken_at, size_bytes, sha256, recorded_by,"
        " created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) RETURNING id",
    };
    _cleanup_stmt_ CmStmt *st = cm_db_prepare(tx->db, sql[kind], tx->err);
    char now[CM_TIME_ISO_LEN + 1];
    int r;

    if (!st)
        return -EIO;
    cm_time_iso(cm_now_ms(), now);
    if (kind == BR_SECURITY_BACKUP)
        r = CM_DB_BIND(st, system_id, rec->location, rec->at, rec->size_bytes, rec->sha256,
                       tx->actor->account_id, now);
    else
        r = CM_DB_BIND(st, system_id, rec->severity, rec->title,
                       kind == BR_SECURITY_VULNERABILITY ? rec->status : rec->description, rec->at,
                       rec->end_at, tx->actor->account_id, now);
    if (r >= 0)
        r = cm_stmt_step(st, tx->err);
    if (r < 0)
        return r;
    *ret_id = cm_stmt_int(st, 0);
    return 0;
}

int br_security_get(CmDb *db, BrSecurityKind kind, int64_t id, json_object **ret, CmError *err)
{
    static const char *const sql[BR_SECURITY_KIND_MAX] = {
        VULNERABILITY_SELECT " WHERE id = ?",
        INCIDENT_SELECT " WHERE id = ?",
        BACKUP_SELECT " WHERE id = ?",
    };

    return br_store_get_json(db, sql[kind], kind_names[kind], id, ret, err);
}

int br_security_list(CmDb *db, BrSecurityKind kind, int64_t system_id, const BrPage *page,
                     json_object **ret, CmError *err)
{
    static const char *const sql[BR_SECURITY_KIND_MAX] = {
        VULNERABILITY_SELECT " WHERE system_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
        INCIDENT_SELECT " WHERE system_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
        BACKUP_SELECT " WHERE system_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
    };
    _cleanup_stmt_ CmStmt *st = cm_db_prepare(db, sql[kind], err);

    if (!st)
        return -EIO;
    CM_DB_BIND(st, system_id, page->after, page->limit);
    return cm_stmt_rows_json(st, ret, err);
}

int br_security_load(CmDb *db, BrSecurityKind kind, int64_t id, BrSecurityState *ret, CmError *err)
{
    static const char *const sql[BR_SECURITY_KIND_MAX] = {
        "SELECT system_id, found_at, status, fixed_at FROM vulnerabilities WHERE id = ?",
        "SELECT system_id, occurred_at, NULL AS status, resolved_at FROM incidents WHERE id = ?",
        "SELECT system_id, taken_at, NULL AS status, NULL AS end_at FROM backups WHERE id = ?",
    };
    _cleanup_stmt_ CmStmt *st = cm_db_prepare(db, sql[kind], err);
    BrSecurityState s = {0};
    int r;

    if (!st)
        return -EIO;
    CM_DB_BIND(st, id);
    r = cm_stmt_step(st, err);
    if (r < 0)
        return r;
    if (r == 0)
        return cm_error_set(err, CM_ERROR_NOT_FOUND, "", "no %s with id %lld", kind_names[kind],
                            (long long)id);
    s.system_id = cm_stmt_int(st, 0);
    cm_strscpy(s.at, sizeof(s.at), cm_stmt_text(st, 1));
    cm_strscpy(s.status, sizeof(s.status), cm_stmt_text(st, 2));
    cm_strscpy(s.end_at, sizeof(s.end_at), cm_stmt_text(st, 3));
    *ret = s;
    return 0;
}

int br_security_update(BrTx *tx, BrSecurityKind kind, int64_t id, const char *status,
                       const char *end_at)
{
    char now[CM_TIME_ISO_LEN + 1];
    _cleanup_stmt_ CmStmt *st = NULL;

    cm_time_iso(cm_now_ms(), now);
    if (kind == BR_SECURITY_VULNERABILITY) {
        st = cm_db_prepare(tx->db,
                           "UPDATE vulnerabilities SET status = ?1, fixed_at = nullif(?2, ''),"
                           " updated_at = ?3, fix_recorded_at = CASE WHEN ?1 = 'fixed'"
                           " THEN coalesce(fix_recorded_at, ?3) END WHERE id = ?4",
                           tx->err);
        if (st)
            CM_DB_BIND(st, status, end_at, now, id);
    } else if (kind == BR_SECURITY_INCIDENT) {
        /* When the broker was told, which the resolution time is measured to
         * (docs/service-quality.md); kept from the first report of it. */
        st = cm_db_prepare(tx->db,
                           "UPDATE incidents SET resolved_at = nullif(?1, ''),"
                           " resolution_recorded_at = CASE WHEN nullif(?1, '') IS NOT NULL"
                           " THEN coalesce(resolution_recorded_at, ?3) END WHERE id = ?2",
                           tx->err);
        if (st)
            CM_DB_BIND(st, end_at, id, now);
    } else {
        return cm_error_set(tx->err, CM_ERROR_INTERNAL, "",
                            "a backup's attestation is kept as made");
    }
    return st ? cm_stmt_exec(st, tx->err) : -EIO;
}
