/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "br-instance.h"
#include "cm-crypto.h"
#include "cm-time.h"
#include "cm-util.h"

CM_ENUM_IMPL(br_instance_state, BrInstanceState, BR_INSTANCE_STATE_MAX, "pending", "placed",
             "created", "defined", "running", "shutoff", "undefined", "deleted")

int br_instance_load(CmDb *db, int64_t id, BrInstanceRow *ret, CmError *err)
{
    sqlite3_stmt *stmt = cm_db_stmt(
        db,
        "SELECT i.id, i.allocation_id, coalesce(i.host_id, 0), a.department_id, a.system_id,"
        " a.request_id, i.idx, i.name, i.uuid, a.purpose, i.vcpus, i.memory_mib, i.disk_gib,"
        " i.max_vcpus, i.max_memory_mib, i.image, coalesce(i.pool, ''), i.volume, i.state,"
        " d.name, s.name FROM instances i JOIN allocations a ON a.id = i.allocation_id"
        " JOIN departments d ON d.id = a.department_id JOIN systems s ON s.id = a.system_id"
        " WHERE i.id = ?",
        err);
    BrInstanceRow r = {0};
    int rc;

    if (!stmt)
        return -EIO;
    CM_DB_BIND(stmt, id);
    rc = cm_db_step_row(db, stmt, err);
    if (rc <= 0) {
        sqlite3_reset(stmt);
        return rc < 0 ? rc : -ENOENT;
    }
    r.id = sqlite3_column_int64(stmt, 0);
    r.allocation_id = sqlite3_column_int64(stmt, 1);
    r.host_id = sqlite3_column_int64(stmt, 2);
    r.department_id = sqlite3_column_int64(stmt, 3);
    r.system_id = sqlite3_column_int64(stmt, 4);
    r.request_id = sqlite3_column_int64(stmt, 5);
    r.idx = (unsigned)sqlite3_column_int64(stmt, 6);
    snprintf(r.name, sizeof(r.name), "%s", cm_db_col_text(stmt, 7));
    snprintf(r.uuid, sizeof(r.uuid), "%s", cm_db_col_text(stmt, 8));
    snprintf(r.purpose, sizeof(r.purpose), "%s", cm_db_col_text(stmt, 9));
    r.vcpus = sqlite3_column_int64(stmt, 10);
    r.memory_mib = sqlite3_column_int64(stmt, 11);
    r.disk_gib = sqlite3_column_int64(stmt, 12);
    r.max_vcpus = sqlite3_column_int64(stmt, 13);
    r.max_memory_mib = sqlite3_column_int64(stmt, 14);
    snprintf(r.image, sizeof(r.image), "%s", cm_db_col_text(stmt, 15));
    snprintf(r.pool, sizeof(r.pool), "%s", cm_db_col_text(stmt, 16));
    snprintf(r.volume, sizeof(r.volume), "%s", cm_db_col_text(stmt, 17));
    r.state = (BrInstanceState)br_instance_state_from_string(cm_db_col_text(stmt, 18));
    r.department_name = strdup(cm_db_col_text(stmt, 19) ? cm_db_col_text(stmt, 19) : "");
    r.system_name = strdup(cm_db_col_text(stmt, 20) ? cm_db_col_text(stmt, 20) : "");
    sqlite3_reset(stmt);
    *ret = r;
    return 0;
}

void br_instance_row_clear(BrInstanceRow *r)
{
    free(r->department_name);
    free(r->system_name);
    memset(r, 0, sizeof(*r));
}

void br_instance_domain_spec(const BrInstanceRow *row, const char *domain_type,
                             const char *machine, const char *network, const char *disk_format,
                             BrDomainSpec *spec)
{
    (void)disk_format;
    *spec = (BrDomainSpec){
        .name = row->name,
        .uuid = row->uuid,
        .domain_type = domain_type,
        .arch = "x86_64",
        .machine = machine,
        .vcpus = (unsigned)row->vcpus,
        .max_vcpus = (unsigned)row->max_vcpus,
        .memory_mib = (uint64_t)row->memory_mib,
        .max_memory_mib = (uint64_t)row->max_memory_mib,
        .pool = row->pool,
        .volume = row->volume,
        .disk_format = "qcow2", /* instance disks are always qcow2 overlays */
        .network = network,
        .department_id = row->department_id,
        .system_id = row->system_id,
        .allocation_id = row->allocation_id,
        .instance_id = row->id,
        .request_id = row->request_id,
        .index = row->idx,
        .purpose = row->purpose,
        .department_name = row->department_name,
        .system_name = row->system_name,
    };
}

int br_instance_set_state(CmDb *db, int64_t id, BrInstanceState state, CmError *err)
{
    char at[CM_TIME_ISO_LEN + 1];
    /* A domain gone on purpose has no live state left to show. */
    sqlite3_stmt *stmt = cm_db_stmt(db,
                                    "UPDATE instances SET state = ?1, updated_at = ?2,"
                                    " observed_state = iif(?1 IN ('undefined','deleted'), NULL,"
                                    " observed_state), observed_at = iif(?1 IN ('undefined',"
                                    "'deleted'), NULL, observed_at) WHERE id = ?3",
                                    err);
    if (!stmt)
        return -EIO;
    cm_time_iso(cm_now_ms(), at);
    CM_DB_BIND(stmt, br_instance_state_to_string(state), at, id);
    return cm_db_step_done(db, stmt, err);
}

int br_uuid_new(char out[37])
{
    uint8_t b[16];
    if (cm_random(b, sizeof(b)) < 0)
        return -EIO;
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
    snprintf(out, 37,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
             b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
             b[15]);
    return 0;
}

/* -- added by metering -- */

int br_instance_list_live(CmDb *db, int64_t allocation_id, json_object **ret, CmError *err)
{
    _cleanup_stmt_ CmStmt *st =
        cm_db_prepare(db,
                      "SELECT id, idx, vcpus, memory_mib, disk_gib, image FROM instances"
                      " WHERE allocation_id = ?1 AND state != 'deleted' ORDER BY idx",
                      err);

    if (!st)
        return -EIO;
    CM_DB_BIND(st, allocation_id);
    return cm_stmt_rows_json(st, ret, err);
}

int br_instance_host(CmDb *db, int64_t id, BrInstanceHost *ret, CmError *err)
{
    _cleanup_stmt_ CmStmt *st =
        cm_db_prepare(db,
                      "SELECT coalesce(host_id, 0) AS host_id, uuid, memory_mib, max_vcpus"
                      " FROM instances WHERE id = ?1",
                      err);
    BrInstanceHost h = {0};
    int r;

    if (!st)
        return -EIO;
    CM_DB_BIND(st, id);
    r = cm_stmt_step(st, err);
    if (r <= 0)
        return r < 0 ? r : -ENOENT;
    h.host_id = cm_stmt_int(st, 0);
    snprintf(h.uuid, sizeof(h.uuid), "%s", cm_stmt_text(st, 1));
    h.memory_mib = cm_stmt_int(st, 2);
    h.max_vcpus = cm_stmt_int(st, 3);
    *ret = h;
    return 0;
}

/* -- added by hosts -- */

int br_instance_list_claims(CmDb *db, BrInstanceClaim **ret, size_t *ret_n, CmError *err)
{
    _cleanup_stmt_ CmStmt *st = cm_db_prepare(
        db,
        "SELECT i.id, coalesce(i.host_id, 0) AS host_id, i.allocation_id, i.state, i.uuid,"
        " i.name, coalesce(i.observed_state, '') AS observed,"
        " a.state IN ('provisioning','resizing','reclaiming') OR coalesce(j.open, 0) > 0"
        " AS busy, coalesce(j.n, 0) AS jobs, coalesce(j.ended, '') AS jobs_end"
        " FROM instances i JOIN allocations a ON a.id = i.allocation_id"
        " LEFT JOIN (SELECT allocation_id, count(*) AS n,"
        "  sum(state IN ('queued','running')) AS open, max(finished_at) AS ended"
        "  FROM jobs GROUP BY allocation_id) AS j ON j.allocation_id = a.id"
        " WHERE i.state != 'deleted' OR a.state IN ('provisioning','resizing','reclaiming')"
        " OR coalesce(j.open, 0) > 0 ORDER BY i.id",
        err);
    _cleanup_free_ BrInstanceClaim *v = NULL;
    size_t n = 0, cap = 0;
    int r;

    if (!st)
        return -EIO;
    while ((r = cm_stmt_step(st, err)) > 0) {
        if (n == cap) {
            BrInstanceClaim *nv = reallocarray(v, cap = cap ? cap * 2 : 64, sizeof(*v));
            if (!nv)
                return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
            v = nv;
        }
        BrInstanceClaim *x = &v[n++];
        *x = (BrInstanceClaim){
            .id = cm_stmt_int(st, 0),
            .host_id = cm_stmt_int(st, 1),
            .allocation_id = cm_stmt_int(st, 2),
            .state = (BrInstanceState)br_instance_state_from_string(cm_stmt_text(st, 3)),
            .busy = cm_stmt_int(st, 7) != 0,
            .jobs = cm_stmt_int(st, 8),
        };
        cm_strscpy(x->uuid, sizeof(x->uuid), cm_stmt_text(st, 4));
        cm_strscpy(x->name, sizeof(x->name), cm_stmt_text(st, 5));
        cm_strscpy(x->observed, sizeof(x->observed), cm_stmt_text(st, 6));
        cm_strscpy(x->jobs_end, sizeof(x->jobs_end), cm_stmt_text(st, 9));
    }
    if (r < 0)
        return r;
    *ret = TAKE_PTR(v);
    *ret_n = n;
    return 0;
}

int br_instance_set_observed(CmDb *db, int64_t id, const char *observed, const char *at,
                             CmError *err)
{
    _cleanup_stmt_ CmStmt *st = cm_db_prepare(
        db, "UPDATE instances SET observed_state = ?1, observed_at = ?2 WHERE id = ?3", err);
    if (!st)
        return -EIO;
    CM_DB_BIND(st, observed, at, id);
    return cm_stmt_exec(st, err);
}
