/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "br-finding.h"
#include "cm-json.h"
#include "cm-log.h"
#include "cm-time.h"
#include "cm-util.h"

/* The API document, in its order; "frees" is made an object of the two columns by C. */
#define FINDING_SELECT                                                                             \
    "SELECT f.id, f.instance_id, i.name AS instance, f.allocation_id, f.department_id,"            \
    " (SELECT d.name FROM departments d WHERE d.id = f.department_id) AS department_name,"         \
    " f.system_id, (SELECT s.name FROM systems s WHERE s.id = f.system_id) AS system_name,"        \
    " f.kind, f.state, f.rule, f.evidence AS \"evidence:json\","                                   \
    " f.recommendation AS \"recommendation:json\", f.frees_vcpus AS frees, f.first_found,"         \
    " f.last_found, f.state_changed_at, f.reason,"                                                 \
    " nullif(f.change_request_id, 0) AS change_request_id, f.frees_memory_mib, i.image,"           \
    " (SELECT a.purpose FROM allocations a WHERE a.id = f.allocation_id) AS purpose,"              \
    " f.current_vcpus, f.current_memory_mib"                                                       \
    " FROM findings f JOIN instances i ON i.id = f.instance_id"

/* What the finding's instance costs a month at its current size and what the recommendation
 * would save (the vCPUs and memory it frees; a dimension that grows saves nothing), at the
 * prices in force now (docs/costs.md "Waste in money"). */
static json_object *money_json(json_object *o, const BrPricingPolicy *pricing)
{
    json_object *m = json_object_new_object(), *frees = cm_json_get(o, "frees");
    bool trial = strcmp(cm_json_get_str(o, "purpose", ""), "trial") == 0;
    const char *image = cm_json_get_str(o, "image", "");
    int64_t now = cm_now_ms(), fv = cm_json_get_int(frees, "vcpus", 0);
    int64_t fm = cm_json_get_int(frees, "memory_mib", 0);
    int64_t cost =
        br_cost_monthly_fen(pricing, trial, image, now, cm_json_get_int(o, "current_vcpus", 0),
                            cm_json_get_int(o, "current_memory_mib", 0));
    int64_t saving =
        br_cost_monthly_fen(pricing, trial, image, now, fv > 0 ? fv : 0, fm > 0 ? fm : 0);

    json_object_object_add(m, "currency", json_object_new_string(pricing->currency));
    json_object_object_add(m, "hours_per_month", json_object_new_int64(pricing->hours_per_month));
    json_object_object_add(m, "monthly_cost_fen", json_object_new_int64(cost));
    json_object_object_add(m, "monthly_cost", br_money_json(cost));
    json_object_object_add(m, "monthly_saving_fen", json_object_new_int64(saving));
    json_object_object_add(m, "monthly_saving", br_money_json(saving));
    return m;
}

static json_object *finding_json(CmStmt *st, const BrPricingPolicy *pricing)
{
    static const char *const helpers[] = {"frees_memory_mib", "image", "purpose", "current_vcpus",
                                          "current_memory_mib"};
    json_object *o = cm_stmt_row_json(st), *frees = json_object_new_object();

    json_object_object_add(frees, "vcpus", json_object_get(cm_json_get(o, "frees")));
    json_object_object_add(frees, "memory_mib",
                           json_object_get(cm_json_get(o, "frees_memory_mib")));
    json_object_object_add(o, "frees", frees); /* replaced in place: the order stays */
    json_object *money = pricing ? money_json(o, pricing) : NULL;
    for (size_t k = 0; k < ELEMENTSOF(helpers); k++)
        json_object_object_del(o, helpers[k]);
    if (money)
        json_object_object_add(o, "money", money);
    return o;
}

static int not_found(CmError *err, int64_t id)
{
    return cm_error_set(err, CM_ERROR_NOT_FOUND, "", "no finding with id %lld", (long long)id);
}

int br_finding_get(CmDb *db, int64_t id, int64_t department, const BrPricingPolicy *pricing,
                   json_object **ret, CmError *err)
{
    _cleanup_stmt_ CmStmt *st = cm_db_prepare(
        db, FINDING_SELECT " WHERE f.id = ?1 AND (?2 = 0 OR f.department_id = ?2)", err);
    int r;

    if (!st)
        return -EIO;
    CM_DB_BIND(st, id, department);
    r = cm_stmt_step(st, err);
    if (r < 0)
        return r;
    if (r == 0)
        return not_found(err, id);
    *ret = finding_json(st, pricing);
    return 0;
}

/* Each filter's first use tells PostgreSQL its type (text), hence "x = ?3 OR ?3 IS NULL". */
int br_finding_list(CmDb *db, const BrFindingFilter *filter, const BrPricingPolicy *pricing,
                    const BrPage *page, json_object **ret, CmError *err)
{
    _cleanup_stmt_ CmStmt *st =
        cm_db_prepare(db,
                      FINDING_SELECT " WHERE f.id > ?1 AND (?2 = 0 OR f.department_id = ?2)"
                                     " AND (f.state = ?3 OR ?3 IS NULL OR (?3 = 'live' AND"
                                     " f.state IN ('open','acknowledged')))"
                                     " AND (f.kind = ?4 OR ?4 IS NULL)"
                                     " AND (?5 = 0 OR f.allocation_id = ?5) ORDER BY f.id LIMIT ?6",
                      err);
    json_object *items;
    int r;

    if (!st)
        return -EIO;
    CM_DB_BIND(st, page->after, filter->department, filter->state, filter->kind, filter->allocation,
               page->limit);
    items = json_object_new_array();
    while ((r = cm_stmt_step(st, err)) > 0)
        json_object_array_add(items, finding_json(st, pricing));
    if (r < 0) {
        json_object_put(items);
        return r;
    }
    *ret = items;
    return 0;
}

int br_finding_load(CmDb *db, int64_t id, int64_t department, BrFinding *ret, CmError *err)
{
    _cleanup_stmt_ CmStmt *st = cm_db_prepare(
        db,
        "SELECT id, instance_id, allocation_id, department_id, system_id,"
        " coalesce(change_request_id, 0) AS change_request_id, kind, state, current_vcpus,"
        " current_memory_mib, recommended_vcpus, recommended_memory_mib FROM findings"
        " WHERE id = ?1 AND (?2 = 0 OR department_id = ?2)",
        err);
    BrFinding f = {0};
    int r;

    if (!st)
        return -EIO;
    CM_DB_BIND(st, id, department);
    r = cm_stmt_step(st, err);
    if (r < 0)
        return r;
    if (r == 0)
        return not_found(err, id);
    f.id = cm_stmt_int(st, 0);
    f.instance_id = cm_stmt_int(st, 1);
    f.allocation_id = cm_stmt_int(st, 2);
    f.department_id = cm_stmt_int(st, 3);
    f.system_id = cm_stmt_int(st, 4);
    f.change_request_id = cm_stmt_int(st, 5);
    cm_strscpy(f.kind, sizeof(f.kind), cm_stmt_text(st, 6));
    cm_strscpy(f.state, sizeof(f.state), cm_stmt_text(st, 7));
    f.current = (BrSize){cm_stmt_int(st, 8), cm_stmt_int(st, 9)};
    f.recommended = (BrSize){cm_stmt_int(st, 10), cm_stmt_int(st, 11)};
    *ret = f;
    return 0;
}

static bool live(const char *state)
{
    return strcmp(state, "open") == 0 || strcmp(state, "acknowledged") == 0;
}

int br_finding_move(BrTx *tx, int64_t id, int64_t department, const char *to, const char *reason)
{
    char at[CM_TIME_ISO_LEN + 1];
    _cleanup_stmt_ CmStmt *st = NULL;
    BrFinding f;
    int r = br_finding_load(tx->db, id, department, &f, tx->err);

    if (r < 0)
        return r;
    if (strcmp(to, "acknowledged") == 0 ? strcmp(f.state, "open") != 0 : !live(f.state))
        return cm_error_set_code(tx->err, CM_ERROR_CONFLICT, "invalid_transition", "state",
                                 "finding %lld is '%s' and cannot become '%s'", (long long)id,
                                 f.state, to);
    st = cm_db_prepare(tx->db,
                       "UPDATE findings SET state = ?1, state_changed_at = ?2,"
                       " reason = coalesce(?3, reason) WHERE id = ?4",
                       tx->err);
    if (!st)
        return -EIO;
    cm_time_iso(cm_now_ms(), at);
    CM_DB_BIND(st, to, at, reason, id);
    return cm_stmt_exec(st, tx->err);
}

int br_finding_set_change_request(BrTx *tx, int64_t id, int64_t request_id)
{
    _cleanup_stmt_ CmStmt *st =
        cm_db_prepare(tx->db, "UPDATE findings SET change_request_id = ?1 WHERE id = ?2", tx->err);

    if (!st)
        return -EIO;
    CM_DB_BIND(st, request_id, id);
    return cm_stmt_exec(st, tx->err);
}

int br_finding_others_busy(CmDb *db, int64_t allocation_id, int64_t instance_id, bool *ret,
                           CmError *err)
{
    _cleanup_stmt_ CmStmt *st =
        cm_db_prepare(db,
                      "SELECT EXISTS (SELECT 1 FROM instances i WHERE i.allocation_id = ?1"
                      " AND i.id != ?2 AND i.state != 'deleted' AND NOT EXISTS (SELECT 1"
                      " FROM findings f WHERE f.instance_id = i.id AND f.kind = 'idle'"
                      " AND f.state IN ('open','acknowledged'))) AS busy",
                      err);
    int r;

    if (!st)
        return -EIO;
    CM_DB_BIND(st, allocation_id, instance_id);
    r = cm_stmt_step(st, err);
    if (r < 0)
        return r;
    *ret = r > 0 && cm_stmt_int(st, 0) != 0;
    return 0;
}

/* A list of ids as one text parameter: a JSON array for SQLite's json_each(), an array literal
 * for PostgreSQL's ANY (CAST(? AS BIGINT[])). Returns: the text (free it), or NULL. */
static char *id_list(bool pg, const int64_t *ids, size_t n)
{
    size_t cap = n * 21 + 3, len = 0;
    char *list = malloc(cap);

    if (!list)
        return NULL;
    list[len++] = pg ? '{' : '[';
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(list + len, cap - len, "%s%lld", i ? "," : "", (long long)ids[i]);
    list[len++] = pg ? '}' : ']';
    list[len] = '\0';
    return list;
}

int br_finding_live_load(BrTx *tx, const int64_t *instance_ids, size_t n, BrFindingLive **live,
                         size_t *n_live)
{
    /* One statement for a list of instances, not one per raise: on PostgreSQL a raise's own
     * look-up, its plan cached while the table looked empty in the run's transaction, read
     * every finding raised so far each time (the first run over 100,000 instances: 598 s). */
    bool pg = cm_db_backend(tx->db) == CM_DB_POSTGRESQL;
    _cleanup_free_ char *list = id_list(pg, instance_ids, n);
    _cleanup_stmt_ CmStmt *st = NULL;
    size_t cap = *n_live;
    int r;

    if (!list)
        return cm_error_set(tx->err, CM_ERROR_INTERNAL, "", "out of memory");
    st = cm_db_prepare(tx->db,
                       cm_db_sql(tx->db,
                                 "SELECT instance_id, kind, id, state = 'dismissed' FROM findings"
                                 " WHERE state IN ('open','acknowledged','dismissed')"
                                 " AND instance_id IN (SELECT value FROM json_each(?1))",
                                 "SELECT instance_id, kind, id, state = 'dismissed' FROM findings"
                                 " WHERE state IN ('open','acknowledged','dismissed')"
                                 " AND instance_id = ANY (CAST(?1 AS BIGINT[]))"),
                       tx->err);
    if (!st)
        return -EIO;
    CM_DB_BIND(st, (const char *)list);
    while ((r = cm_stmt_step(st, tx->err)) > 0) {
        BrFindingLive *x;
        if (*n_live == cap) {
            cap = cap ? cap * 2 : 256;
            x = reallocarray(*live, cap, sizeof(**live));
            if (!x)
                return cm_error_set(tx->err, CM_ERROR_INTERNAL, "", "out of memory");
            *live = x;
        }
        x = &(*live)[(*n_live)++];
        *x = (BrFindingLive){.instance_id = cm_stmt_int(st, 0),
                             .id = cm_stmt_int(st, 2),
                             .dismissed = cm_stmt_int(st, 3) != 0};
        cm_strscpy(x->kind, sizeof(x->kind), cm_stmt_text(st, 1));
    }
    return r < 0 ? r : 0;
}

static int live_cmp(const void *a, const void *b)
{
    const BrFindingLive *x = a, *y = b;
    int c = strcmp(x->kind, y->kind);

    if (x->instance_id != y->instance_id)
        return x->instance_id < y->instance_id ? -1 : 1;
    if (c)
        return c;
    return x->id < y->id ? -1 : x->id > y->id;
}

void br_finding_live_sort(BrFindingLive *live, size_t n)
{
    if (n) /* NULL when there are none, and qsort() takes no NULL */
        qsort(live, n, sizeof(*live), live_cmp);
}

const BrFindingLive *br_finding_live_find(const BrFindingLive *live, size_t n, int64_t instance_id,
                                          const char *kind)
{
    /* The newest of the instance's findings of the kind: the last of its run (by id). */
    size_t lo = 0, hi = n;
    const BrFindingLive *found = NULL;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = live[mid].instance_id != instance_id
                    ? (live[mid].instance_id < instance_id ? -1 : 1)
                    : strcmp(live[mid].kind, kind);
        if (c <= 0)
            lo = mid + 1;
        else
            hi = mid;
        if (c == 0)
            found = &live[mid];
    }
    return found;
}

int br_finding_raise(BrTx *tx, const BrFindingFound *f, const BrFindingLive *live, const char *at,
                     int64_t *ret_id)
{
    _cleanup_stmt_ CmStmt *st = NULL;
    const char *evidence = cm_json_to_string(f->evidence, NULL);
    const char *rec = cm_json_to_string(f->recommendation, NULL);
    int64_t id = live ? live->id : 0;
    int r;

    if (live && live->dismissed)
        return 0; /* the bureau dismissed it with a reason: do not raise it again */
    if (id) {
        st = cm_db_prepare(tx->db,
                           "UPDATE findings SET rule = ?1, evidence = ?2, recommendation = ?3,"
                           " current_vcpus = ?4, current_memory_mib = ?5, recommended_vcpus = ?6,"
                           " recommended_memory_mib = ?7, frees_vcpus = ?8, frees_memory_mib = ?9,"
                           " last_found = ?10 WHERE id = ?11",
                           tx->err);
        if (!st)
            return -EIO;
        CM_DB_BIND(st, f->rule, evidence, rec, f->current.vcpus, f->current.memory_mib,
                   f->recommended.vcpus, f->recommended.memory_mib, f->frees.vcpus,
                   f->frees.memory_mib, at, id);
        r = cm_stmt_exec(st, tx->err);
        return r < 0 ? r : 1;
    }
    st = cm_db_prepare(tx->db,
                       "INSERT INTO findings(instance_id, allocation_id, department_id, system_id,"
                       " kind, state, rule, evidence, recommendation, current_vcpus,"
                       " current_memory_mib, recommended_vcpus, recommended_memory_mib,"
                       " frees_vcpus, frees_memory_mib, first_found, last_found, state_changed_at)"
                       " VALUES (?1, ?2, ?3, ?4, ?5, 'open', ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13,"
                       " ?14, ?15, ?15, ?15) RETURNING id",
                       tx->err);
    if (!st)
        return -EIO;
    CM_DB_BIND(st, f->instance_id, f->allocation_id, f->department_id, f->system_id, f->kind,
               f->rule, evidence, rec, f->current.vcpus, f->current.memory_mib,
               f->recommended.vcpus, f->recommended.memory_mib, f->frees.vcpus, f->frees.memory_mib,
               at);
    r = cm_stmt_step(st, tx->err);
    if (r < 0)
        return r;
    *ret_id = cm_stmt_int(st, 0);
    return 2;
}

int br_finding_resolve_stale(BrTx *tx, const int64_t *instance_ids, size_t n, const char *kind,
                             const char *at)
{
    /* One statement for a list of instances: one per instance was a round trip each on
     * PostgreSQL, and its plan, cached while the table looked empty in the run's transaction,
     * read every finding each time (the first run over 10,000 instances: 24,000 of them). */
    bool pg = cm_db_backend(tx->db) == CM_DB_POSTGRESQL;
    _cleanup_free_ char *list = NULL;
    _cleanup_stmt_ CmStmt *st = NULL;
    int r;

    if (n == 0)
        return 0;
    list = id_list(pg, instance_ids, n);
    if (!list)
        return cm_error_set(tx->err, CM_ERROR_INTERNAL, "", "out of memory");
    st = cm_db_prepare(tx->db,
                       cm_db_sql(tx->db,
                                 "UPDATE findings SET state = 'resolved', state_changed_at = ?1,"
                                 " reason = 'the condition no longer holds' WHERE kind = ?3"
                                 " AND state IN ('open','acknowledged')"
                                 " AND instance_id IN (SELECT value FROM json_each(?2))",
                                 "UPDATE findings SET state = 'resolved', state_changed_at = ?1,"
                                 " reason = 'the condition no longer holds' WHERE kind = ?3"
                                 " AND state IN ('open','acknowledged')"
                                 " AND instance_id = ANY (CAST(?2 AS BIGINT[]))"),
                       tx->err);
    if (!st)
        return -EIO;
    CM_DB_BIND(st, at, (const char *)list, kind);
    r = cm_stmt_exec(st, tx->err);
    return r < 0 ? r : (int)cm_stmt_changes(st);
}

int br_finding_resolve_ended(BrTx *tx, int64_t allocation_id, const char *reason)
{
    char at[CM_TIME_ISO_LEN + 1];
    _cleanup_stmt_ CmStmt *st =
        cm_db_prepare(tx->db,
                      "SELECT f.id FROM findings f JOIN instances i ON i.id = f.instance_id"
                      " JOIN allocations a ON a.id = f.allocation_id WHERE f.allocation_id = ?1"
                      " AND f.state IN ('open','acknowledged') AND (i.state IN"
                      " ('undefined','deleted') OR a.state IN ('retained','purged')) ORDER BY f.id",
                      tx->err);
    _cleanup_json_ json_object *ids = NULL, *detail = json_object_new_object();
    size_t n;
    int r;

    if (!st)
        return -EIO;
    CM_DB_BIND(st, allocation_id);
    r = cm_stmt_rows_json(st, &ids, tx->err);
    if (r < 0)
        return r;
    n = json_object_array_length(ids);
    cm_time_iso(cm_now_ms(), at);
    json_object_object_add(detail, "reason", json_object_new_string(reason));
    for (size_t k = 0; k < n; k++) {
        int64_t id = cm_json_get_int(json_object_array_get_idx(ids, k), "id", 0);
        st = cm_db_prepare(tx->db,
                           "UPDATE findings SET state = 'resolved', state_changed_at = ?1,"
                           " reason = ?2 WHERE id = ?3",
                           tx->err);
        if (!st)
            return -EIO;
        CM_DB_BIND(st, at, reason, id);
        r = cm_stmt_exec(st, tx->err);
        if (r < 0)
            return r;
        r = br_store_audit(tx->store, tx->db, br_actor_system(), "finding.resolved", "finding", id,
                           "resolved", cm_json_to_string(detail, NULL), tx->err);
        if (r < 0)
            return r;
    }
    if (n)
        cm_log_info("allocation %lld: %zu finding(s) resolved: %s", (long long)allocation_id, n,
                    reason);
    return (int)n;
}

int br_finding_list_reclaimable(CmDb *db, int64_t department, const BrPricingPolicy *pricing,
                                json_object **ret, CmError *err)
{
    _cleanup_stmt_ CmStmt *st = cm_db_prepare(
        db,
        "SELECT f.id, f.kind, i.name AS instance, f.frees_vcpus, f.frees_memory_mib, f.rule,"
        " i.image, (SELECT a.purpose FROM allocations a WHERE a.id = f.allocation_id) AS purpose"
        " FROM findings f JOIN instances i ON i.id = f.instance_id WHERE f.department_id = ?1"
        " AND f.state IN ('open','acknowledged') AND f.kind IN ('idle','over_provisioned')"
        " ORDER BY f.id LIMIT 100",
        err);
    json_object *rows;
    int64_t now = cm_now_ms();
    int r;

    if (!st)
        return -EIO;
    CM_DB_BIND(st, department);
    r = cm_stmt_rows_json(st, &rows, err);
    if (r < 0)
        return r;
    /* What freeing each would save a month (docs/costs.md "Waste in money"). */
    for (size_t i = 0; i < json_object_array_length(rows); i++) {
        json_object *f = json_object_array_get_idx(rows, i);
        int64_t fv = cm_json_get_int(f, "frees_vcpus", 0),
                fm = cm_json_get_int(f, "frees_memory_mib", 0);
        int64_t fen = br_cost_monthly_fen(
            pricing, strcmp(cm_json_get_str(f, "purpose", ""), "trial") == 0,
            cm_json_get_str(f, "image", ""), now, fv > 0 ? fv : 0, fm > 0 ? fm : 0);
        json_object_object_del(f, "image");
        json_object_object_del(f, "purpose");
        json_object_object_add(f, "monthly_saving_fen", json_object_new_int64(fen));
    }
    *ret = rows;
    return 0;
}
