/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "br-cost.h"
#include "br-instance.h"
#include "cm-crypto.h"
#include "cm-json.h"
#include "cm-time.h"
#include "cm-util.h"

CM_ENUM_IMPL(br_instance_state, BrInstanceState, BR_INSTANCE_STATE_MAX, "pending", "placed",
             "created", "defined", "running", "shutoff", "undefined", "deleted")

/* Appends instance @id's state and sizes as they now stand, from @at, to its history (in the
 * caller's transaction): the cost statements and the availability read it (docs/costs.md). */
static int history_append(CmDb *db, int64_t id, const char *at, CmError *err)
{
    _cleanup_stmt_ CmStmt *st =
        cm_db_prepare(db,
                      "INSERT INTO instance_history(instance_id, at, state, vcpus, memory_mib,"
                      " disk_gib, host_id) SELECT id, ?2, state, vcpus, memory_mib, disk_gib,"
                      " host_id FROM instances WHERE id = ?1",
                      err);
    if (!st)
        return -EIO;
    CM_DB_BIND(st, id, at);
    return cm_stmt_exec(st, err);
}

int br_instance_load(CmDb *db, int64_t id, BrInstanceRow *ret, CmError *err)
{
    _cleanup_stmt_ CmStmt *st = cm_db_prepare(
        db,
        "SELECT i.id, i.allocation_id, coalesce(i.host_id, 0), a.department_id, a.system_id,"
        " a.request_id, i.idx, i.name, i.uuid, a.purpose, i.vcpus, i.memory_mib, i.disk_gib,"
        " i.max_vcpus, i.max_memory_mib, i.image, coalesce(i.pool, ''), i.volume, i.state,"
        " d.name, s.name FROM instances i JOIN allocations a ON a.id = i.allocation_id"
        " JOIN departments d ON d.id = a.department_id JOIN systems s ON s.id = a.system_id"
        " WHERE i.id = ?1",
        err);
    BrInstanceRow r = {0};
    int rc;

    if (!st)
        return -EIO;
    CM_DB_BIND(st, id);
    rc = cm_stmt_step(st, err);
    if (rc <= 0)
        return rc < 0 ? rc : -ENOENT;
    r.id = cm_stmt_int(st, 0);
    r.allocation_id = cm_stmt_int(st, 1);
    r.host_id = cm_stmt_int(st, 2);
    r.department_id = cm_stmt_int(st, 3);
    r.system_id = cm_stmt_int(st, 4);
    r.request_id = cm_stmt_int(st, 5);
    r.idx = (unsigned)cm_stmt_int(st, 6);
    snprintf(r.name, sizeof(r.name), "%s", cm_stmt_text(st, 7));
    snprintf(r.uuid, sizeof(r.uuid), "%s", cm_stmt_text(st, 8));
    snprintf(r.purpose, sizeof(r.purpose), "%s", cm_stmt_text(st, 9));
    r.vcpus = cm_stmt_int(st, 10);
    r.memory_mib = cm_stmt_int(st, 11);
    r.disk_gib = cm_stmt_int(st, 12);
    r.max_vcpus = cm_stmt_int(st, 13);
    r.max_memory_mib = cm_stmt_int(st, 14);
    snprintf(r.image, sizeof(r.image), "%s", cm_stmt_text(st, 15));
    snprintf(r.pool, sizeof(r.pool), "%s", cm_stmt_text(st, 16));
    snprintf(r.volume, sizeof(r.volume), "%s", cm_stmt_text(st, 17));
    r.state = (BrInstanceState)br_instance_state_from_string(cm_stmt_text(st, 18));
    r.department_name = cm_stmt_strdup(st, 19);
    r.system_name = cm_stmt_strdup(st, 20);
    *ret = r;
    return 0;
}

void br_instance_row_clear(BrInstanceRow *r)
{
    free(r->department_name);
    free(r->system_name);
    memset(r, 0, sizeof(*r));
}

void br_instance_domain_spec(const BrInstanceRow *row, const char *domain_type, const char *machine,
                             const char *network, const char *disk_format, BrDomainSpec *spec)
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
    _cleanup_stmt_ CmStmt *st = cm_db_prepare(db,
                                              "UPDATE instances SET state = ?1, updated_at = ?2,"
                                              " observed_state = iif(?1 IN ('undefined','deleted'),"
                                              " NULL, observed_state), observed_at = iif(?1 IN"
                                              " ('undefined','deleted'), NULL, observed_at)"
                                              " WHERE id = ?3",
                                              err);

    int r;

    if (!st)
        return -EIO;
    cm_time_iso(cm_now_ms(), at);
    CM_DB_BIND(st, br_instance_state_to_string(state), at, id);
    r = cm_stmt_exec(st, err);
    return r < 0 ? r : history_append(db, id, at, err);
}

int br_instance_create(CmDb *db, int64_t allocation_id, unsigned idx, const BrInstanceSizes *sizes,
                       const char *image, int64_t *ret_id, CmError *err)
{
    char name[64], volume[96], uuid[37], at[CM_TIME_ISO_LEN + 1];
    _cleanup_stmt_ CmStmt *st = NULL;
    int r;

    snprintf(name, sizeof(name), "cb-%" PRId64 "-%u", allocation_id, idx);
    snprintf(volume, sizeof(volume), "%s.qcow2", name);
    if (br_uuid_new(uuid) < 0)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "no randomness for a UUID");
    cm_time_iso(cm_now_ms(), at);
    st = cm_db_prepare(db,
                       "INSERT INTO instances(allocation_id, idx, name, uuid, vcpus, memory_mib,"
                       " disk_gib, max_vcpus, max_memory_mib, image, volume, state, created_at,"
                       " updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11,"
                       " 'pending', ?12, ?12) RETURNING id",
                       err);
    if (!st)
        return -EIO;
    CM_DB_BIND(st, allocation_id, (int64_t)idx, name, uuid, sizes->vcpus, sizes->memory_mib,
               sizes->disk_gib, sizes->max_vcpus, sizes->max_memory_mib, image, volume, at);
    r = cm_stmt_step(st, err);
    if (r < 0)
        return r;
    *ret_id = cm_stmt_int(st, 0);
    return history_append(db, *ret_id, at, err);
}

int br_instance_resize(CmDb *db, int64_t id, const BrInstanceSizes *sizes, CmError *err)
{
    _cleanup_stmt_ CmStmt *st = cm_db_prepare(
        db,
        "UPDATE instances SET vcpus = iif(?2 < 0, vcpus, ?2),"
        " memory_mib = iif(?3 < 0, memory_mib, ?3), disk_gib = iif(?4 < 0, disk_gib, ?4),"
        " max_vcpus = iif(?5 < 0, max_vcpus, ?5),"
        " max_memory_mib = iif(?6 < 0, max_memory_mib, ?6) WHERE id = ?1",
        err);
    char at[CM_TIME_ISO_LEN + 1];
    int r;

    if (!st)
        return -EIO;
    CM_DB_BIND(st, id, sizes->vcpus, sizes->memory_mib, sizes->disk_gib, sizes->max_vcpus,
               sizes->max_memory_mib);
    r = cm_stmt_exec(st, err);
    if (r < 0 || (sizes->vcpus < 0 && sizes->memory_mib < 0 && sizes->disk_gib < 0))
        return r;
    cm_time_iso(cm_now_ms(), at);
    return history_append(db, id, at, err);
}

int br_instance_load_live(CmDb *db, int64_t allocation_id, BrInstanceLive **ret, size_t *ret_n,
                          CmError *err)
{
    _cleanup_stmt_ CmStmt *st =
        cm_db_prepare(db,
                      "SELECT id, idx, vcpus, memory_mib, disk_gib, max_vcpus, max_memory_mib,"
                      " image, state FROM instances WHERE allocation_id = ?1"
                      " AND state != 'deleted' ORDER BY idx",
                      err);
    _cleanup_free_ BrInstanceLive *list = NULL;
    size_t n = 0, cap = 0;
    int r;

    if (!st)
        return -EIO;
    CM_DB_BIND(st, allocation_id);
    while ((r = cm_stmt_step(st, err)) > 0) {
        if (n == cap) {
            BrInstanceLive *nl = reallocarray(list, cap ? cap * 2 : 8, sizeof(*nl));
            if (!nl)
                return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
            list = nl;
            cap = cap ? cap * 2 : 8;
        }
        BrInstanceLive *x = &list[n++];
        *x = (BrInstanceLive){
            .id = cm_stmt_int(st, 0),
            .idx = (unsigned)cm_stmt_int(st, 1),
            .sizes = {cm_stmt_int(st, 2), cm_stmt_int(st, 3), cm_stmt_int(st, 4),
                      cm_stmt_int(st, 5), cm_stmt_int(st, 6)},
            .state = (BrInstanceState)br_instance_state_from_string(cm_stmt_text(st, 8)),
        };
        snprintf(x->image, sizeof(x->image), "%s", cm_stmt_text(st, 7));
    }
    if (r < 0)
        return r;
    *ret = TAKE_PTR(list);
    *ret_n = n;
    return 0;
}

int br_instance_place(CmDb *db, int64_t id, int64_t host_id, const char *pool, CmError *err)
{
    _cleanup_stmt_ CmStmt *st =
        cm_db_prepare(db,
                      "UPDATE instances SET host_id = ?1, pool = coalesce(?2, (SELECT"
                      " h.storage_pool FROM hosts h WHERE h.id = ?1)), state = 'placed'"
                      " WHERE id = ?3 AND state = 'pending'",
                      err);
    char at[CM_TIME_ISO_LEN + 1];
    int r;

    if (!st)
        return -EIO;
    CM_DB_BIND(st, host_id, pool, id);
    r = cm_stmt_exec(st, err);
    if (r < 0 || cm_stmt_changes(st) == 0)
        return r;
    cm_time_iso(cm_now_ms(), at);
    return history_append(db, id, at, err);
}

int br_instance_unplace_job(CmDb *db, int64_t job_id, CmError *err)
{
    char at[CM_TIME_ISO_LEN + 1];
    _cleanup_stmt_ CmStmt *hist = cm_db_prepare(
        db,
        "INSERT INTO instance_history(instance_id, at, state, vcpus, memory_mib, disk_gib)"
        " SELECT id, ?2, 'pending', vcpus, memory_mib, disk_gib FROM instances"
        " WHERE state = 'placed' AND id IN (SELECT s.instance_id FROM job_steps s"
        " WHERE s.job_id = ?1) ORDER BY id",
        err);
    _cleanup_stmt_ CmStmt *st =
        cm_db_prepare(db,
                      "UPDATE instances SET state = 'pending', host_id = NULL, pool = NULL,"
                      " updated_at = ?2 WHERE state = 'placed' AND id IN"
                      " (SELECT s.instance_id FROM job_steps s WHERE s.job_id = ?1)",
                      err);
    int r;

    if (!st || !hist)
        return -EIO;
    cm_time_iso(cm_now_ms(), at);
    CM_DB_BIND(hist, job_id, at);
    r = cm_stmt_exec(hist, err);
    if (r < 0)
        return r;
    CM_DB_BIND(st, job_id, at);
    r = cm_stmt_exec(st, err);
    return r < 0 ? r : (int)cm_stmt_changes(st);
}

int br_instance_allocation_hosts(CmDb *db, int64_t allocation_id, int64_t **ret, size_t *ret_n,
                                 CmError *err)
{
    _cleanup_stmt_ CmStmt *st = cm_db_prepare(db,
                                              "SELECT DISTINCT host_id FROM instances"
                                              " WHERE allocation_id = ?1 AND host_id IS NOT NULL"
                                              " AND state != 'deleted' ORDER BY host_id",
                                              err);

    if (!st)
        return -EIO;
    CM_DB_BIND(st, allocation_id);
    return cm_stmt_ints(st, ret, ret_n, err);
}

int br_instance_slice_end(CmDb *db, int64_t after, int64_t count, int64_t *ret_last, CmError *err)
{
    _cleanup_stmt_ CmStmt *st =
        cm_db_prepare(db,
                      "SELECT max(id) AS last FROM (SELECT id FROM instances"
                      " WHERE id > ?1 ORDER BY id LIMIT ?2) AS slice",
                      err);
    int r;

    if (!st)
        return -EIO;
    CM_DB_BIND(st, after, count);
    r = cm_stmt_step(st, err);
    if (r < 0)
        return r;
    *ret_last = r > 0 && !cm_stmt_is_null(st, 0) ? cm_stmt_int(st, 0) : 0;
    return 0;
}

int br_instance_list_json(CmDb *db, int64_t allocation_id, json_object **ret, CmError *err)
{
    /* The live state is what the reconciler last saw: never a call to a hypervisor. */
    _cleanup_stmt_ CmStmt *st = cm_db_prepare(
        db,
        "SELECT i.id, i.idx AS \"index\", i.name, i.uuid, i.host_id AS \"host.id\","
        " h.name AS \"host.name\", i.vcpus, i.memory_mib, i.disk_gib, i.max_vcpus,"
        " i.max_memory_mib, i.image, i.pool, i.volume, i.state, i.observed_state AS live_state,"
        " i.observed_at AS live_state_at FROM instances i LEFT JOIN hosts h ON h.id = i.host_id"
        " WHERE i.allocation_id = ?1 ORDER BY i.idx",
        err);

    json_object *list;
    int r;

    if (!st)
        return -EIO;
    CM_DB_BIND(st, allocation_id);
    r = cm_stmt_rows_json(st, &list, err);
    if (r < 0)
        return r;
    /* An instance not placed has no host: null, not an object of nulls. */
    for (size_t i = 0; i < json_object_array_length(list); i++) {
        json_object *o = json_object_array_get_idx(list, i);
        if (!cm_json_get(cm_json_get(o, "host"), "id"))
            json_object_object_add(o, "host", NULL);
    }
    *ret = list;
    return 0;
}

int br_uuid_new(char out[37])
{
    uint8_t b[16];
    if (cm_random(b, sizeof(b)) < 0)
        return -EIO;
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
             b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
    return 0;
}

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

int br_instance_hosts(CmDb *db, const int64_t *ids, size_t n, BrInstanceHost *ret, CmError *err)
{
    _cleanup_stmt_ CmStmt *st = NULL;
    _cleanup_free_ char *array = NULL;
    size_t len = 0, cap = n * 21 + 3;
    int r;

    for (size_t k = 0; k < n; k++)
        ret[k] = (BrInstanceHost){.host_id = -1};
    if (cm_db_backend(db) == CM_DB_SQLITE) {
        /* in-process: a cached point lookup each is as fast as anything */
        for (size_t k = 0; k < n; k++) {
            r = br_instance_host(db, ids[k], &ret[k], err);
            if (r == -ENOENT)
                ret[k].host_id = -1;
            else if (r < 0)
                return r;
        }
        return 0;
    }
    if (!n)
        return 0;
    array = malloc(cap);
    if (!array)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    for (size_t k = 0; k < n; k++)
        len += (size_t)snprintf(array + len, cap - len, "%c%" PRId64, k ? ',' : '{', ids[k]);
    snprintf(array + len, cap - len, "}");
    st = cm_db_prepare(db,
                       "SELECT x.k, coalesce(i.host_id, 0) AS host_id, i.uuid, i.memory_mib,"
                       " i.max_vcpus FROM unnest(?1::bigint[]) WITH ORDINALITY AS x(id, k)"
                       " JOIN instances i ON i.id = x.id",
                       err);
    if (!st)
        return -EIO;
    CM_DB_BIND(st, (const char *)array);
    while ((r = cm_stmt_step(st, err)) > 0) {
        int64_t k = cm_stmt_int(st, 0) - 1;
        if (k < 0 || (size_t)k >= n)
            return cm_error_set(err, CM_ERROR_INTERNAL, "", "instance hosts: bad index");
        ret[k].host_id = cm_stmt_int(st, 1);
        snprintf(ret[k].uuid, sizeof(ret[k].uuid), "%s", cm_stmt_text(st, 2));
        ret[k].memory_mib = cm_stmt_int(st, 3);
        ret[k].max_vcpus = cm_stmt_int(st, 4);
    }
    return r;
}

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

int br_instance_cost_history(CmDb *db, int64_t from_ms, int64_t to_ms, int64_t department,
                             BrCostInstance **ret, size_t *ret_n, CmError *err)
{
    /* Every instance that existed in [from, to) with its history up to to: one row per
     * history row, by department, system, allocation and instance. */
    _cleanup_stmt_ CmStmt *st = cm_db_prepare(
        db,
        "SELECT i.id, i.allocation_id, a.system_id, a.department_id, i.name, i.image, s.name,"
        " d.code, d.name, a.purpose, h.at, h.state, h.vcpus, h.memory_mib, h.disk_gib"
        " FROM instances i JOIN allocations a ON a.id = i.allocation_id"
        " JOIN departments d ON d.id = a.department_id JOIN systems s ON s.id = a.system_id"
        " JOIN instance_history h ON h.instance_id = i.id"
        " WHERE (?3 = 0 OR a.department_id = ?3) AND i.created_at < ?2"
        " AND (i.state <> 'deleted' OR i.updated_at >= ?1) AND h.at < ?2"
        " ORDER BY d.code, d.id, s.name, s.id, a.id, i.idx, i.id, h.at, h.id",
        err);
    char from[CM_TIME_ISO_LEN + 1], to[CM_TIME_ISO_LEN + 1];
    BrCostInstance *v = NULL;
    size_t n = 0, cap = 0, cap_ev = 0;
    int r;

    if (!st)
        return -EIO;
    cm_time_iso(from_ms, from);
    cm_time_iso(to_ms, to);
    CM_DB_BIND(st, from, to, department);
    while ((r = cm_stmt_step(st, err)) > 0) {
        BrCostInstance *x = n ? &v[n - 1] : NULL;
        if (!x || x->instance_id != cm_stmt_int(st, 0)) {
            if (n == cap) {
                BrCostInstance *nv = reallocarray(v, cap ? cap * 2 : 64, sizeof(*nv));
                if (!nv)
                    break;
                v = nv;
                cap = cap ? cap * 2 : 64;
            }
            x = &v[n++];
            *x = (BrCostInstance){
                .instance_id = cm_stmt_int(st, 0),
                .allocation_id = cm_stmt_int(st, 1),
                .system_id = cm_stmt_int(st, 2),
                .department_id = cm_stmt_int(st, 3),
                .name = cm_stmt_strdup(st, 4),
                .image = cm_stmt_strdup(st, 5),
                .system = cm_stmt_strdup(st, 6),
                .department_code = cm_stmt_strdup(st, 7),
                .department = cm_stmt_strdup(st, 8),
                .trial = strcmp(cm_stmt_text(st, 9), "trial") == 0,
            };
            cap_ev = 0;
            if (!x->name || !x->image || !x->system || !x->department_code || !x->department)
                break;
        }
        if (x->n_ev == cap_ev) {
            BrCostEvent *ne = reallocarray(x->ev, cap_ev ? cap_ev * 2 : 4, sizeof(*ne));
            if (!ne)
                break;
            x->ev = ne;
            cap_ev = cap_ev ? cap_ev * 2 : 4;
        }
        BrCostEvent *e = &x->ev[x->n_ev];
        if (cm_time_parse_iso(cm_stmt_text(st, 10), &e->at_ms) < 0)
            continue; /* not a time: never written so, skipped rather than priced wrong */
        br_cost_holds(cm_stmt_text(st, 11), &e->compute, &e->disk);
        e->vcpus = cm_stmt_int(st, 12);
        e->memory_mib = cm_stmt_int(st, 13);
        e->disk_gib = cm_stmt_int(st, 14);
        x->n_ev++;
    }
    if (r > 0)
        r = cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    if (r < 0) {
        br_cost_instances_free(v, n);
        return r;
    }
    *ret = v;
    *ret_n = n;
    return 0;
}
