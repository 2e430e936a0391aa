/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <string.h>

#include "br-allocation.h"
#include "br-instance.h"
#include "br-tx.h"
#include "cm-json.h"
#include "cm-log.h"
#include "cm-time.h"

CM_ENUM_IMPL(br_allocation_state, BrAllocationState, BR_ALLOCATION_STATE_MAX, "provisioning",
             "active", "resizing", "reclaiming", "retained", "purged", "error")

#define A(x) BR_ALLOCATION_STATE_##x
static const bool allowed[BR_ALLOCATION_STATE_MAX][BR_ALLOCATION_STATE_MAX] = {
    [A(PROVISIONING)] = {[A(ACTIVE)] = true, [A(ERROR)] = true},
    [A(ACTIVE)] = {[A(RESIZING)] = true, [A(RECLAIMING)] = true, [A(ERROR)] = true},
    [A(RESIZING)] = {[A(ACTIVE)] = true, [A(ERROR)] = true},
    [A(RECLAIMING)] = {[A(RETAINED)] = true, [A(ERROR)] = true},
    [A(RETAINED)] = {[A(PROVISIONING)] = true, [A(PURGED)] = true, [A(ERROR)] = true},
    /* Out of error: a retried job takes it back to the state its kind works in
     * (provisioning, resizing, reclaiming); a purge ends it; the end of a trial reclaims it. */
    [A(ERROR)] = {[A(PROVISIONING)] = true,
                  [A(ACTIVE)] = true,
                  [A(RESIZING)] = true,
                  [A(RETAINED)] = true,
                  [A(RECLAIMING)] = true,
                  [A(PURGED)] = true},
};
#undef A

bool br_allocation_transition_allowed(BrAllocationState from, BrAllocationState to)
{
    if ((unsigned)from >= BR_ALLOCATION_STATE_MAX || (unsigned)to >= BR_ALLOCATION_STATE_MAX)
        return false;
    return allowed[from][to];
}

int br_allocation_set_state(BrStore *store, CmDb *db, const BrActor *actor, int64_t id,
                            BrAllocationState from, BrAllocationState to, const char *action,
                            const char *reason, CmError *err)
{
    const char *from_s = br_allocation_state_to_string(from);
    const char *to_s = br_allocation_state_to_string(to);
    _cleanup_json_ json_object *detail = NULL;
    char at[CM_TIME_ISO_LEN + 1];
    _cleanup_stmt_ CmStmt *st = NULL;
    int r;

    if (!br_allocation_transition_allowed(from, to))
        return cm_error_set_code(err, CM_ERROR_CONFLICT, "invalid_transition", "state",
                                 "an allocation cannot go from '%s' to '%s'", from_s,
                                 to_s ? to_s : "?");
    cm_time_iso(cm_now_ms(), at);
    /* Compare-and-set on the state: a concurrent move makes this a conflict. */
    st = cm_db_prepare(db,
                       "UPDATE allocations SET state = ?1, updated_at = ?2,"
                       " error = CASE WHEN ?1 = 'error' THEN ?3 ELSE NULL END"
                       " WHERE id = ?4 AND state = ?5",
                       err);
    if (!st)
        return -EIO;
    CM_DB_BIND(st, to_s, at, reason, id, from_s);
    r = cm_stmt_exec(st, err);
    if (r < 0)
        return r;
    if (cm_stmt_changes(st) != 1)
        return cm_error_set_code(err, CM_ERROR_CONFLICT, "invalid_transition", "state",
                                 "allocation %lld is no longer '%s'", (long long)id, from_s);
    detail = json_object_new_object();
    json_object_object_add(detail, "from", json_object_new_string(from_s));
    json_object_object_add(detail, "to", json_object_new_string(to_s));
    if (reason)
        json_object_object_add(detail, "reason", json_object_new_string(reason));
    r = br_store_audit(store, db, actor, action, "allocation", id, to_s,
                       cm_json_to_string(detail, NULL), err);
    if (r < 0)
        return r;
    cm_log_info("allocation %lld: %s → %s (%s)", (long long)id, from_s, to_s, action);
    return 0;
}

#define ROW_COLUMNS                                                                                \
    "id, department_id, system_id, request_id, state, purpose, vcpus, memory_mib, disk_gib,"       \
    " instances"

static void allocation_row(CmStmt *st, BrAllocationRow *ret)
{
    *ret = (BrAllocationRow){
        .id = cm_stmt_int(st, 0),
        .department_id = cm_stmt_int(st, 1),
        .system_id = cm_stmt_int(st, 2),
        .request_id = cm_stmt_int(st, 3),
        .state = (BrAllocationState)br_allocation_state_from_string(cm_stmt_text(st, 4)),
        .trial = strcmp(cm_stmt_text(st, 5), "trial") == 0,
        .totals = {cm_stmt_int(st, 6), cm_stmt_int(st, 7), cm_stmt_int(st, 8), cm_stmt_int(st, 9)},
    };
}

int br_allocation_find(CmDb *db, int64_t id, int64_t department, int64_t system,
                       BrAllocationRow *ret, CmError *err)
{
    _cleanup_stmt_ CmStmt *st = cm_db_prepare(db,
                                              "SELECT " ROW_COLUMNS " FROM allocations"
                                              " WHERE id = ?1 AND (?2 = 0 OR department_id = ?2)"
                                              " AND (?3 = 0 OR system_id = ?3)",
                                              err);
    int r;

    if (!st)
        return -EIO;
    CM_DB_BIND(st, id, department, system);
    r = cm_stmt_step(st, err);
    if (r > 0)
        allocation_row(st, ret);
    return r;
}

int br_allocation_load(CmDb *db, int64_t id, BrAllocationRow *ret, CmError *err)
{
    int r = br_allocation_find(db, id, 0, 0, ret, err);

    if (r == 0)
        return cm_error_set(err, CM_ERROR_NOT_FOUND, "", "no allocation %lld", (long long)id);
    return r < 0 ? r : 0;
}

int br_allocation_usage(CmDb *db, int64_t department, BrResources *ret, CmError *err)
{
    /* Live allocations hold all they have; retained ones their disks only. */
    _cleanup_stmt_ CmStmt *st = cm_db_prepare(
        db,
        "SELECT total(iif(state = 'retained', 0, vcpus)), total(iif(state = 'retained', 0,"
        " memory_mib)), total(disk_gib), total(iif(state = 'retained', 0, instances))"
        " FROM allocations WHERE department_id = ?1 AND purpose = 'production'"
        " AND state IN ('provisioning','active','resizing','reclaiming','error','retained')",
        err);
    int r;

    if (!st)
        return -EIO;
    CM_DB_BIND(st, department);
    r = cm_stmt_step(st, err);
    if (r > 0) {
        ret->vcpus += cm_stmt_int(st, 0);
        ret->memory_mib += cm_stmt_int(st, 1);
        ret->disk_gib += cm_stmt_int(st, 2);
        ret->instances += cm_stmt_int(st, 3);
    }
    return r < 0 ? r : 0;
}

int br_allocation_create(CmDb *db, int64_t department, int64_t system, int64_t request_id,
                         bool trial, int64_t *ret_id, CmError *err)
{
    char at[CM_TIME_ISO_LEN + 1];
    _cleanup_stmt_ CmStmt *st =
        cm_db_prepare(db,
                      "INSERT INTO allocations(department_id, system_id, request_id, state,"
                      " purpose, created_at, updated_at)"
                      " VALUES (?1, ?2, ?3, 'provisioning', ?4, ?5, ?5) RETURNING id",
                      err);
    int r;

    if (!st)
        return -EIO;
    cm_time_iso(cm_now_ms(), at);
    CM_DB_BIND(st, department, system, request_id, trial ? "trial" : "production", at);
    r = cm_stmt_step(st, err);
    if (r < 0)
        return r;
    *ret_id = cm_stmt_int(st, 0);
    return 0;
}

int br_allocation_update_totals(CmDb *db, int64_t id, CmError *err)
{
    _cleanup_stmt_ CmStmt *st = cm_db_prepare(
        db,
        "UPDATE allocations SET (vcpus, memory_mib, disk_gib, instances) = (SELECT"
        " coalesce(sum(vcpus), 0), coalesce(sum(memory_mib), 0), coalesce(sum(disk_gib), 0),"
        " count(*) FROM instances WHERE allocation_id = ?1 AND state != 'deleted')"
        " WHERE id = ?1",
        err);

    if (!st)
        return -EIO;
    CM_DB_BIND(st, id);
    return cm_stmt_exec(st, err);
}

int br_allocation_set_retained_until(CmDb *db, int64_t id, const char *until, CmError *err)
{
    _cleanup_stmt_ CmStmt *st =
        cm_db_prepare(db, "UPDATE allocations SET retained_until = ?2 WHERE id = ?1", err);

    if (!st)
        return -EIO;
    CM_DB_BIND(st, id, until);
    return cm_stmt_exec(st, err);
}

/* The API document's columns, in its keys' order. */
#define ALLOCATION_COLUMNS                                                                         \
    "a.id, a.department_id,"                                                                       \
    " (SELECT d.name FROM departments d WHERE d.id = a.department_id) AS department_name,"         \
    " a.system_id, (SELECT s.name FROM systems s WHERE s.id = a.system_id) AS system_name,"        \
    " a.request_id, a.purpose, a.state, a.vcpus AS \"totals.vcpus\","                              \
    " a.memory_mib AS \"totals.memory_mib\", a.disk_gib AS \"totals.disk_gib\","                   \
    " a.instances AS \"totals.instances\", a.retained_until, a.error, a.created_at,"               \
    " a.updated_at"

typedef struct {
    int64_t id, department;
    json_object *out;
} AllocationGet;

static int allocation_get_tx(BrTx *tx, void *ctx)
{
    AllocationGet *g = ctx;
    _cleanup_stmt_ CmStmt *st =
        cm_db_prepare(tx->db,
                      "SELECT " ALLOCATION_COLUMNS " FROM allocations a WHERE a.id = ?1"
                      " AND (?2 = 0 OR a.department_id = ?2)",
                      tx->err);
    json_object *instances;
    int r;

    if (!st)
        return -EIO;
    CM_DB_BIND(st, g->id, g->department);
    r = cm_stmt_step(st, tx->err);
    if (r < 0)
        return r;
    if (r == 0)
        return cm_error_set(tx->err, CM_ERROR_NOT_FOUND, "", "no allocation with id %lld",
                            (long long)g->id);
    g->out = cm_stmt_row_json(st);
    r = br_instance_list_json(tx->db, g->id, &instances, tx->err);
    if (r < 0)
        return r;
    json_object_object_add(g->out, "instances", instances);
    return 0;
}

int br_allocation_get(BrStore *s, int64_t id, int64_t department, json_object **ret, CmError *err)
{
    AllocationGet g = {.id = id, .department = department};
    int r = br_tx_read(s, "allocation.get", allocation_get_tx, &g, err);

    if (r < 0) {
        json_object_put(g.out);
        return r;
    }
    *ret = g.out;
    return 0;
}

int br_allocation_list(CmDb *db, const BrAllocationFilter *f, const BrPage *page, json_object **ret,
                       CmError *err)
{
    _cleanup_stmt_ CmStmt *st =
        cm_db_prepare(db,
                      "SELECT " ALLOCATION_COLUMNS " FROM allocations a WHERE a.id > ?1"
                      " AND (?2 = 0 OR a.department_id = ?2) AND (?3 = 0 OR a.system_id = ?3)"
                      " AND (?4 IS NULL OR a.state = ?4) AND (?5 IS NULL OR a.purpose = ?5)"
                      " ORDER BY a.id LIMIT ?6",
                      err);

    if (!st)
        return -EIO;
    CM_DB_BIND(st, page->after, f->department, f->system, f->state, f->purpose, page->limit);
    return cm_stmt_rows_json(st, ret, err);
}

int br_allocation_due_purge(CmDb *db, const char *now, int64_t *ids, size_t max, CmError *err)
{
    _cleanup_stmt_ CmStmt *st = cm_db_prepare(
        db,
        "SELECT a.id FROM allocations a WHERE a.state = 'retained'"
        " AND a.retained_until IS NOT NULL AND a.retained_until <= ?1"
        " AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.allocation_id = a.id"
        " AND j.kind = 'purge' AND j.state IN ('queued','running')) ORDER BY a.id LIMIT ?2",
        err);
    size_t n = 0;
    int r = 0;

    if (!st)
        return -EIO;
    CM_DB_BIND(st, now, (int64_t)max);
    while (n < max && (r = cm_stmt_step(st, err)) > 0)
        ids[n++] = cm_stmt_int(st, 0);
    return r < 0 ? r : (int)n;
}

int br_allocation_purge_soon(CmDb *db, const char *now, const char *soon,
                             BrAllocationPurgeSoon *ret, size_t max, CmError *err)
{
    _cleanup_stmt_ CmStmt *st = cm_db_prepare(
        db,
        "SELECT a.id, a.department_id, s.name, a.retained_until FROM allocations a"
        " JOIN systems s ON s.id = a.system_id WHERE a.state = 'retained'"
        " AND a.retained_until > ?1 AND a.retained_until <= ?2 ORDER BY a.id LIMIT ?3",
        err);
    size_t n = 0;
    int r = 0;

    if (!st)
        return -EIO;
    CM_DB_BIND(st, now, soon, (int64_t)max);
    while (n < max && (r = cm_stmt_step(st, err)) > 0) {
        ret[n] = (BrAllocationPurgeSoon){.id = cm_stmt_int(st, 0),
                                         .department_id = cm_stmt_int(st, 1),
                                         .system_name = cm_stmt_strdup(st, 2),
                                         .retained_until = cm_stmt_strdup(st, 3)};
        n++;
    }
    return r < 0 ? r : (int)n;
}
