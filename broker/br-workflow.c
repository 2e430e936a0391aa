/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "br-assess.h"
#include "br-daemon.h"
#include "br-hosts.h"
#include "br-instance.h"
#include "br-notification.h"
#include "br-tx.h"
#include "br-review.h"
#include "br-steps.h"
#include "br-workflow.h"
#include "cm-json.h"
#include "cm-log.h"
#include "cm-time.h"
#include "cm-util.h"

/* Placement decisions are made one at a time, so two jobs never count on the same room. */
static pthread_mutex_t placement_lock = PTHREAD_MUTEX_INITIALIZER;

/* What the planners need of a request. */
typedef struct {
    int64_t id, department_id, system_id, allocation_id, trial_allocation_id;
    BrRequestKind kind;
    BrRequestState state;
    bool restart_allowed;
    json_object *resources; /* parsed; owned */
} ReqInfo;

static void req_info_clear(ReqInfo *r)
{
    json_object_put(r->resources);
    memset(r, 0, sizeof(*r));
}

static int req_info_load(CmDb *db, int64_t id, ReqInfo *ret, CmError *err)
{
    sqlite3_stmt *stmt = cm_db_stmt(db,
                                    "SELECT department_id, system_id, kind, state, resources,"
                                    " coalesce(allocation_id, 0), coalesce(trial_allocation_id, 0),"
                                    " restart_allowed FROM requests WHERE id = ?",
                                    err);
    int r;
    if (!stmt)
        return -EIO;
    CM_DB_BIND(stmt, id);
    r = cm_db_step_row(db, stmt, err);
    if (r > 0) {
        const char *res = cm_db_col_text(stmt, 4);
        memset(ret, 0, sizeof(*ret));
        ret->id = id;
        ret->department_id = sqlite3_column_int64(stmt, 0);
        ret->system_id = sqlite3_column_int64(stmt, 1);
        ret->kind = (BrRequestKind)br_request_kind_from_string(cm_db_col_text(stmt, 2));
        ret->state = (BrRequestState)br_request_state_from_string(cm_db_col_text(stmt, 3));
        if (res)
            cm_json_parse(res, strlen(res), &ret->resources, NULL);
        ret->allocation_id = sqlite3_column_int64(stmt, 5);
        ret->trial_allocation_id = sqlite3_column_int64(stmt, 6);
        ret->restart_allowed = sqlite3_column_int(stmt, 7) != 0;
    }
    sqlite3_reset(stmt);
    if (r == 0)
        return cm_error_set(err, CM_ERROR_NOT_FOUND, "", "no request %lld", (long long)id);
    return r < 0 ? r : 0;
}

/* A live instance of an allocation, as the planners compare it. */
typedef struct {
    int64_t id;
    unsigned idx;
    int64_t vcpus, memory_mib, disk_gib, max_vcpus, max_memory_mib;
    char image[72];
    BrInstanceState state;
} InstInfo;

static int instances_load(CmDb *db, int64_t allocation_id, InstInfo **ret, size_t *ret_n,
                          CmError *err)
{
    sqlite3_stmt *stmt = cm_db_stmt(db,
                                    "SELECT id, idx, vcpus, memory_mib, disk_gib, max_vcpus,"
                                    " max_memory_mib, image, state FROM instances"
                                    " WHERE allocation_id = ? AND state != 'deleted' ORDER BY idx",
                                    err);
    InstInfo *list = NULL;
    size_t n = 0, cap = 0;
    int r;

    if (!stmt)
        return -EIO;
    CM_DB_BIND(stmt, allocation_id);
    while ((r = cm_db_step_row(db, stmt, err)) > 0) {
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            InstInfo *nl = realloc(list, cap * sizeof(*nl));
            if (!nl) {
                r = cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
                break;
            }
            list = nl;
        }
        InstInfo *x = &list[n++];
        x->id = sqlite3_column_int64(stmt, 0);
        x->idx = (unsigned)sqlite3_column_int64(stmt, 1);
        x->vcpus = sqlite3_column_int64(stmt, 2);
        x->memory_mib = sqlite3_column_int64(stmt, 3);
        x->disk_gib = sqlite3_column_int64(stmt, 4);
        x->max_vcpus = sqlite3_column_int64(stmt, 5);
        x->max_memory_mib = sqlite3_column_int64(stmt, 6);
        snprintf(x->image, sizeof(x->image), "%s", cm_db_col_text(stmt, 7));
        x->state = (BrInstanceState)br_instance_state_from_string(cm_db_col_text(stmt, 8));
    }
    sqlite3_reset(stmt);
    if (r < 0) {
        free(list);
        return r;
    }
    *ret = list;
    *ret_n = n;
    return 0;
}

/*
 * A change's resources.remove (scale-in): the indexes of the instances it removes. Moves the
 * removed instances of @cur to the end, so that the first *ret_kept stay and are matched in
 * index order to resources.instances. Returns: 0, or the position in @remove of an index that
 * is no live instance of the allocation (+1), so the caller can name it.
 */
static size_t split_removed(InstInfo *cur, size_t n, json_object *remove, size_t *ret_kept)
{
    size_t kept = 0, n_rm = remove ? json_object_array_length(remove) : 0;
    for (size_t k = 0; k < n_rm; k++) {
        int64_t idx = json_object_get_int64(json_object_array_get_idx(remove, k));
        bool found = false;
        for (size_t i = 0; i < n && !found; i++)
            found = (int64_t)cur[i].idx == idx;
        if (!found)
            return k + 1;
    }
    for (size_t i = 0; i < n; i++) {
        bool gone = false;
        for (size_t k = 0; k < n_rm && !gone; k++)
            gone =
                json_object_get_int64(json_object_array_get_idx(remove, k)) == (int64_t)cur[i].idx;
        if (!gone) {
            InstInfo x = cur[i];
            memmove(&cur[kept + 1], &cur[kept], (i - kept) * sizeof(*cur));
            cur[kept++] = x;
        }
    }
    *ret_kept = kept;
    return 0;
}

static const char *pool_of_purpose(const char *purpose)
{
    return strcmp(purpose, "trial") == 0 ? "trial" : "production";
}

int br_allocation_set_state(BrStore *store, CmDb *db, const BrActor *actor, int64_t id,
                            BrAllocationState from, BrAllocationState to, const char *action,
                            const char *reason, CmError *err)
{
    const char *from_s = br_allocation_state_to_string(from);
    const char *to_s = br_allocation_state_to_string(to);
    char at[CM_TIME_ISO_LEN + 1];
    sqlite3_stmt *stmt;
    int r;

    if (!br_allocation_transition_allowed(from, to))
        return cm_error_set_code(err, CM_ERROR_CONFLICT, "invalid_transition", "state",
                                 "an allocation cannot go from '%s' to '%s'", from_s,
                                 to_s ? to_s : "?");
    cm_time_iso(cm_now_ms(), at);
    stmt = cm_db_stmt(db,
                      "UPDATE allocations SET state = ?, updated_at = ?,"
                      " error = CASE WHEN ? = 'error' THEN ? ELSE NULL END"
                      " WHERE id = ? AND state = ?",
                      err);
    if (!stmt)
        return -EIO;
    CM_DB_BIND(stmt, to_s, at, to_s, reason, id, from_s);
    r = cm_db_step_done(db, stmt, err);
    if (r < 0)
        return r;
    if (sqlite3_changes(cm_db_handle(db)) != 1)
        return cm_error_set_code(err, CM_ERROR_CONFLICT, "invalid_transition", "state",
                                 "allocation %lld is no longer '%s'", (long long)id, from_s);
    _cleanup_json_ json_object *detail = json_object_new_object();
    json_object_object_add(detail, "from", json_object_new_string(from_s));
    json_object_object_add(detail, "to", json_object_new_string(to_s));
    if (reason)
        json_object_object_add(detail, "reason", json_object_new_string(reason));
    r = br_store_audit(store, db, actor, action, "allocation", id, to_s,
                       cm_json_to_string(detail, NULL), err);
    if (r >= 0)
        cm_log_info("allocation %lld: %s → %s (%s)", (long long)id, from_s, to_s, action);
    return r;
}

static int allocation_state(CmDb *db, int64_t id, BrAllocationState *ret, char *purpose,
                            size_t purpose_size, CmError *err)
{
    sqlite3_stmt *stmt =
        cm_db_stmt(db, "SELECT state, purpose FROM allocations WHERE id = ?", err);
    int r;
    if (!stmt)
        return -EIO;
    CM_DB_BIND(stmt, id);
    r = cm_db_step_row(db, stmt, err);
    if (r > 0) {
        *ret = (BrAllocationState)br_allocation_state_from_string(cm_db_col_text(stmt, 0));
        if (purpose)
            snprintf(purpose, purpose_size, "%s", cm_db_col_text(stmt, 1));
    }
    sqlite3_reset(stmt);
    if (r == 0)
        return cm_error_set(err, CM_ERROR_NOT_FOUND, "", "no allocation %lld", (long long)id);
    return r < 0 ? r : 0;
}

/* Recomputes an allocation's totals from its live instances. */
static int allocation_totals(CmDb *db, int64_t id, CmError *err)
{
    sqlite3_stmt *stmt = cm_db_stmt(
        db,
        "UPDATE allocations SET (vcpus, memory_mib, disk_gib, instances) = (SELECT"
        " coalesce(sum(vcpus), 0), coalesce(sum(memory_mib), 0), coalesce(sum(disk_gib), 0),"
        " count(*) FROM instances WHERE allocation_id = ?1 AND state != 'deleted')"
        " WHERE id = ?1",
        err);
    if (!stmt)
        return -EIO;
    CM_DB_BIND(stmt, id);
    return cm_db_step_done(db, stmt, err);
}

static int create_allocation(CmDb *db, const ReqInfo *req, const char *purpose,
                             int64_t *ret, CmError *err)
{
    char at[CM_TIME_ISO_LEN + 1];
    sqlite3_stmt *stmt =
        cm_db_stmt(db,
                   "INSERT INTO allocations(department_id, system_id, request_id, state,"
                   " purpose, created_at, updated_at) VALUES (?, ?, ?, 'provisioning', ?, ?, ?)",
                   err);
    int r;
    if (!stmt)
        return -EIO;
    cm_time_iso(cm_now_ms(), at);
    CM_DB_BIND(stmt, req->department_id, req->system_id, req->id, purpose, at, at);
    r = cm_db_step_done(db, stmt, err);
    if (r < 0)
        return r;
    *ret = cm_db_last_insert_id(db);
    return 0;
}

/* One instance row for @spec ({vcpus, memory_mib, disk_gib, image}) of allocation @alloc. */
static int create_instance(CmDb *db, const BrPolicies *p, int64_t alloc, unsigned idx,
                           json_object *spec, int64_t *ret, CmError *err)
{
    const char *image = cm_json_get_str(spec, "image", "");
    int64_t vcpus = cm_json_get_int(spec, "vcpus", 1);
    int64_t mem = cm_json_get_int(spec, "memory_mib", 512);
    int64_t disk = cm_json_get_int(spec, "disk_gib", 1);
    char name[64], volume[96], uuid[37], at[CM_TIME_ISO_LEN + 1];
    sqlite3_stmt *stmt;
    int r;

    if (!br_policy_image(p, image))
        return cm_error_set_code(err, CM_ERROR_UNPROCESSABLE, "unknown_image", "image",
                                 "image '%s' is not in the catalog", image);
    /* Names and UUIDs come from the broker only, and the UUID is stored before the domain
     * exists: a retried define finds the domain instead of making a second one. */
    snprintf(name, sizeof(name), "cb-%" PRId64 "-%u", alloc, idx);
    snprintf(volume, sizeof(volume), "%s.qcow2", name);
    if (br_uuid_new(uuid) < 0)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "no randomness for a UUID");
    cm_time_iso(cm_now_ms(), at);
    stmt = cm_db_stmt(db,
                      "INSERT INTO instances(allocation_id, idx, name, uuid, vcpus, memory_mib,"
                      " disk_gib, max_vcpus, max_memory_mib, image, volume, state, created_at,"
                      " updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,'pending',?,?)",
                      err);
    if (!stmt)
        return -EIO;
    CM_DB_BIND(stmt, alloc, (int64_t)idx, name, uuid, vcpus, mem, disk,
               br_policy_max_vcpus(&p->lifecycle, vcpus),
               br_policy_max_memory_mib(&p->lifecycle, mem), image, volume, at, at);
    r = cm_db_step_done(db, stmt, err);
    if (r < 0)
        return r;
    *ret = cm_db_last_insert_id(db);
    return 0;
}

/* Instances for every entry of @specs, numbered from @first_idx, with provisioning steps. */
static int add_provision(CmDb *db, const BrPolicies *p, int64_t alloc, unsigned first_idx,
                         json_object *specs, size_t from, BrStepList *steps, CmError *err)
{
    size_t n = specs ? json_object_array_length(specs) : 0;
    for (size_t i = from; i < n; i++) {
        int64_t id = 0;
        int r = create_instance(db, p, alloc, first_idx + (unsigned)(i - from),
                                json_object_array_get_idx(specs, i), &id, err);
        if (r < 0)
            return r;
        if (br_step_list_add(steps, BR_STEP_CREATE_VOLUME, id, 0, NULL) < 0 ||
            br_step_list_add(steps, BR_STEP_DEFINE, id, 0, NULL) < 0 ||
            br_step_list_add(steps, BR_STEP_START, id, 0, NULL) < 0)
            return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    }
    return 0;
}

static int set_allocation_totals_and_job(BrDaemon *d, CmDb *db, const BrActor *actor,
                                         BrJobKind kind, int64_t request_id, int64_t alloc,
                                         BrStepList *steps, int64_t *ret_job, CmError *err)
{
    int r = allocation_totals(db, alloc, err);
    if (r >= 0 && br_step_list_add(steps, BR_STEP_FINISH, 0, 0, NULL) < 0)
        r = cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    if (r >= 0)
        r = br_job_create(d->store, db, actor, kind, request_id, alloc, steps, ret_job, err);
    return r;
}

static int plan_provision(BrDaemon *d, CmDb *db, const BrActor *actor, const ReqInfo *req,
                          const char *purpose, int64_t *ret_alloc, int64_t *ret_job,
                          CmError *err)
{
    _cleanup_(br_policies_unrefp) BrPolicies *p = br_daemon_policies(d);
    BrStepList steps = {0};
    int64_t alloc = 0;
    int r;

    r = create_allocation(db, req, purpose, &alloc, err);
    if (r >= 0)
        r = br_step_list_add(&steps, BR_STEP_RESERVE, 0, 0, NULL) < 0
                ? cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory")
                : 0;
    if (r >= 0)
        r = add_provision(db, p, alloc, 0, cm_json_get(req->resources, "instances"), 0, &steps,
                          err);
    if (r >= 0) {
        sqlite3_stmt *stmt = cm_db_stmt(db,
                                        strcmp(purpose, "trial") == 0
                                            ? "UPDATE requests SET trial_allocation_id = ?"
                                              " WHERE id = ?"
                                            : "UPDATE requests SET allocation_id = ? WHERE id = ?",
                                        err);
        r = stmt ? 0 : -EIO;
        if (r >= 0) {
            CM_DB_BIND(stmt, alloc, req->id);
            r = cm_db_step_done(db, stmt, err);
        }
    }
    if (r >= 0)
        r = set_allocation_totals_and_job(d, db, actor, BR_JOB_PROVISION, req->id, alloc,
                                          &steps, ret_job, err);
    br_step_list_clear(&steps);
    if (r >= 0 && ret_alloc)
        *ret_alloc = alloc;
    return r;
}

int br_workflow_plan_trial(BrDaemon *d, CmDb *db, const BrActor *actor, int64_t request_id,
                           int64_t *ret_job, CmError *err)
{
    ReqInfo req;
    int r = req_info_load(db, request_id, &req, err);
    if (r < 0)
        return r;
    r = plan_provision(d, db, actor, &req, "trial", NULL, ret_job, err);
    req_info_clear(&req);
    return r;
}

int br_workflow_plan_allocate(BrDaemon *d, CmDb *db, const BrActor *actor, int64_t request_id,
                              int64_t *ret_allocation, int64_t *ret_job, CmError *err)
{
    ReqInfo req;
    int r = req_info_load(db, request_id, &req, err);
    if (r < 0)
        return r;
    if (req.state != BR_REQUEST_STATE_TRIAL_PASSED)
        r = cm_error_set_code(err, CM_ERROR_CONFLICT, "invalid_state", "state",
                              "request %lld is '%s'; resources are allocated after the trial "
                              "passed",
                              (long long)request_id, br_request_state_to_string(req.state));
    else if (req.allocation_id)
        r = cm_error_set_code(err, CM_ERROR_CONFLICT, "already_allocated", "state",
                              "request %lld already has allocation %lld", (long long)request_id,
                              (long long)req.allocation_id);
    if (r >= 0)
        r = plan_provision(d, db, actor, &req, "production", ret_allocation, ret_job, err);
    req_info_clear(&req);
    return r;
}

/* Does instance @cur need a restart to become @spec? Sets @field to what forces it. */
static bool needs_restart(const InstInfo *cur, json_object *spec, const char **field)
{
    int64_t vcpus = cm_json_get_int(spec, "vcpus", cur->vcpus);
    int64_t mem = cm_json_get_int(spec, "memory_mib", cur->memory_mib);
    if (vcpus > cur->max_vcpus || vcpus < cur->vcpus) {
        /* Growing past the maximum needs a new definition; removing vCPUs from a running
         * guest needs its cooperation, which we do not count on. */
        *field = "vcpus";
        return true;
    }
    if (mem > cur->max_memory_mib) {
        *field = "memory_mib";
        return true;
    }
    return false;
}

int br_workflow_check_change(BrDaemon *d, CmDb *db, int64_t request_id, CmError *err)
{
    ReqInfo req;
    _cleanup_free_ InstInfo *cur = NULL;
    size_t n = 0;
    int r;

    (void)d;
    r = req_info_load(db, request_id, &req, err);
    if (r < 0)
        return r;
    r = instances_load(db, req.allocation_id, &cur, &n, err);
    json_object *specs = cm_json_get(req.resources, "instances");
    size_t m = specs ? json_object_array_length(specs) : 0, bad;
    if (r >= 0 && (bad = split_removed(cur, n, cm_json_get(req.resources, "remove"), &n))) {
        char field[64];
        snprintf(field, sizeof(field), "/resources/remove/%zu", bad - 1);
        r = cm_error_set_code(err, CM_ERROR_UNPROCESSABLE, "unknown_instance", field,
                              "the allocation has no live instance with index %lld",
                              (long long)json_object_get_int64(json_object_array_get_idx(
                                  cm_json_get(req.resources, "remove"), bad - 1)));
    }
    for (size_t i = 0; r >= 0 && i < n && i < m; i++) {
        json_object *spec = json_object_array_get_idx(specs, i);
        char field[96];
        const char *why = NULL;
        if (strcmp(cm_json_get_str(spec, "image", ""), cur[i].image) != 0) {
            snprintf(field, sizeof(field), "/resources/instances/%zu/image", i);
            r = cm_error_set_code(err, CM_ERROR_UNPROCESSABLE, "image_change", field,
                                  "instance %zu runs image '%s'; a change cannot replace it",
                                  i, cur[i].image);
        } else if (cm_json_get_int(spec, "disk_gib", 0) < cur[i].disk_gib) {
            snprintf(field, sizeof(field), "/resources/instances/%zu/disk_gib", i);
            r = cm_error_set_code(err, CM_ERROR_UNPROCESSABLE, "disk_shrink", field,
                                  "disks only grow: instance %zu has %lld GiB", i,
                                  (long long)cur[i].disk_gib);
        } else if (needs_restart(&cur[i], spec, &why) && !req.restart_allowed) {
            snprintf(field, sizeof(field), "/resources/instances/%zu/%s", i, why);
            r = cm_error_set_code(err, CM_ERROR_UNPROCESSABLE, "restart_required", field,
                                  "instance %zu: this %s change goes beyond what can be done "
                                  "live (maximums %lld vCPUs, %lld MiB); set restart_allowed",
                                  i, why, (long long)cur[i].max_vcpus,
                                  (long long)cur[i].max_memory_mib);
        }
    }
    req_info_clear(&req);
    return r;
}

int br_workflow_plan_change(BrDaemon *d, CmDb *db, const BrActor *actor, int64_t request_id,
                            int64_t *ret_job, CmError *err)
{
    _cleanup_(br_policies_unrefp) BrPolicies *p = br_daemon_policies(d);
    _cleanup_free_ InstInfo *cur = NULL;
    BrStepList steps = {0};
    ReqInfo req;
    size_t n = 0, m, n_all = 0;
    unsigned next_idx = 0;
    int r;

    r = req_info_load(db, request_id, &req, err);
    if (r < 0)
        return r;
    r = br_workflow_check_change(d, db, request_id, err);
    if (r >= 0)
        r = instances_load(db, req.allocation_id, &cur, &n_all, err);
    /* Scale-in: the instances named in resources.remove go first; the others keep their
     * order. check_change() has refused an index that is not there. */
    if (r >= 0 && split_removed(cur, n_all, cm_json_get(req.resources, "remove"), &n))
        r = cm_error_set(err, CM_ERROR_INTERNAL, "", "resources.remove changed under the job");
    if (r >= 0)
        r = br_allocation_set_state(d->store, db, actor, req.allocation_id,
                                    BR_ALLOCATION_STATE_ACTIVE, BR_ALLOCATION_STATE_RESIZING,
                                    "allocation.resize", NULL, err);
    json_object *specs = cm_json_get(req.resources, "instances");
    m = specs ? json_object_array_length(specs) : 0;
    for (size_t i = 0; i < n_all; i++)
        if (cur[i].idx + 1 > next_idx)
            next_idx = cur[i].idx + 1;
    for (size_t i = n; r >= 0 && i < n_all; i++) {
        /* Removed by name: shut down, undefined, disk wiped: the department asked. */
        if (br_step_list_add(&steps, BR_STEP_SHUTDOWN, cur[i].id, 0, NULL) < 0 ||
            br_step_list_add(&steps, BR_STEP_UNDEFINE, cur[i].id, 0, NULL) < 0 ||
            br_step_list_add(&steps, BR_STEP_WIPE, cur[i].id, 0, NULL) < 0 ||
            br_step_list_add(&steps, BR_STEP_DELETE_VOLUME, cur[i].id, 0, NULL) < 0)
            r = cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    }
    if (r >= 0 && m > n && br_step_list_add(&steps, BR_STEP_RESERVE, 0, 0, NULL) < 0)
        r = cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    for (size_t i = 0; r >= 0 && i < n && i < m; i++) {
        json_object *spec = json_object_array_get_idx(specs, i);
        int64_t vcpus = cm_json_get_int(spec, "vcpus", cur[i].vcpus);
        int64_t mem = cm_json_get_int(spec, "memory_mib", cur[i].memory_mib);
        int64_t disk = cm_json_get_int(spec, "disk_gib", cur[i].disk_gib);
        const char *why;
        int k = 0;

        if (!needs_restart(&cur[i], spec, &why)) {
            if (vcpus != cur[i].vcpus)
                k |= br_step_list_add(&steps, BR_STEP_SET_VCPUS, cur[i].id, vcpus, NULL);
            if (mem != cur[i].memory_mib)
                k |= br_step_list_add(&steps, BR_STEP_SET_MEMORY, cur[i].id, mem, NULL);
            if (disk > cur[i].disk_gib)
                k |= br_step_list_add(&steps, BR_STEP_GROW_VOLUME, cur[i].id, disk, NULL);
        } else {
            char spec_text[256];
            snprintf(spec_text, sizeof(spec_text),
                     "{\"vcpus\":%lld,\"memory_mib\":%lld,\"max_vcpus\":%lld,"
                     "\"max_memory_mib\":%lld}",
                     (long long)vcpus, (long long)mem,
                     (long long)br_policy_max_vcpus(&p->lifecycle, vcpus),
                     (long long)br_policy_max_memory_mib(&p->lifecycle, mem));
            k |= br_step_list_add(&steps, BR_STEP_SHUTDOWN, cur[i].id, 0, NULL);
            if (disk > cur[i].disk_gib)
                k |= br_step_list_add(&steps, BR_STEP_GROW_VOLUME, cur[i].id, disk, NULL);
            k |= br_step_list_add(&steps, BR_STEP_REDEFINE, cur[i].id, 0, spec_text);
            k |= br_step_list_add(&steps, BR_STEP_START, cur[i].id, 0, NULL);
        }
        if (k)
            r = cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    }
    if (r >= 0 && m > n)
        r = add_provision(db, p, req.allocation_id, next_idx, specs, n, &steps, err);
    for (size_t i = m; r >= 0 && i < n; i++) {
        /* Fewer instances: the ones at the end go, disks wiped: the department asked. */
        if (br_step_list_add(&steps, BR_STEP_SHUTDOWN, cur[i].id, 0, NULL) < 0 ||
            br_step_list_add(&steps, BR_STEP_UNDEFINE, cur[i].id, 0, NULL) < 0 ||
            br_step_list_add(&steps, BR_STEP_WIPE, cur[i].id, 0, NULL) < 0 ||
            br_step_list_add(&steps, BR_STEP_DELETE_VOLUME, cur[i].id, 0, NULL) < 0)
            r = cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    }
    if (r >= 0 && br_step_list_add(&steps, BR_STEP_FINISH, 0, 0, NULL) < 0)
        r = cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    if (r >= 0)
        r = br_job_create(d->store, db, actor, BR_JOB_RESIZE, request_id, req.allocation_id,
                          &steps, ret_job, err);
    br_step_list_clear(&steps);
    req_info_clear(&req);
    return r;
}

/* Steps that take every live instance of @alloc down; @remove_volumes wipes and deletes. */
static int plan_takedown(CmDb *db, int64_t alloc, bool undefine, bool wipe, bool delete_volume,
                         BrStepList *steps, CmError *err)
{
    _cleanup_free_ InstInfo *cur = NULL;
    size_t n = 0;
    int r = instances_load(db, alloc, &cur, &n, err);
    for (size_t i = 0; r >= 0 && i < n; i++) {
        int k = 0;
        if (cur[i].state == BR_INSTANCE_PENDING) {
            /* Never placed: nothing exists on any host. */
            continue;
        }
        k |= br_step_list_add(steps, BR_STEP_SHUTDOWN, cur[i].id, 0, NULL);
        if (undefine)
            k |= br_step_list_add(steps, BR_STEP_UNDEFINE, cur[i].id, 0, NULL);
        if (wipe)
            k |= br_step_list_add(steps, BR_STEP_WIPE, cur[i].id, 0, NULL);
        if (delete_volume)
            k |= br_step_list_add(steps, BR_STEP_DELETE_VOLUME, cur[i].id, 0, NULL);
        if (k)
            r = cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    }
    if (r >= 0 && br_step_list_add(steps, BR_STEP_FINISH, 0, 0, NULL) < 0)
        r = cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    return r;
}

int br_workflow_plan_reclaim(BrDaemon *d, CmDb *db, const BrActor *actor, int64_t request_id,
                             int64_t *ret_job, CmError *err)
{
    BrStepList steps = {0};
    ReqInfo req;
    int r = req_info_load(db, request_id, &req, err);
    if (r < 0)
        return r;
    r = br_allocation_set_state(d->store, db, actor, req.allocation_id,
                                BR_ALLOCATION_STATE_ACTIVE, BR_ALLOCATION_STATE_RECLAIMING,
                                "allocation.reclaim", NULL, err);
    /* Termination keeps the volumes: the allocation is retained, and can be restored. */
    if (r >= 0)
        r = plan_takedown(db, req.allocation_id, true, false, false, &steps, err);
    if (r >= 0)
        r = br_job_create(d->store, db, actor, BR_JOB_RECLAIM, request_id, req.allocation_id,
                          &steps, ret_job, err);
    br_step_list_clear(&steps);
    req_info_clear(&req);
    return r;
}

int br_workflow_plan_trial_reclaim(BrDaemon *d, CmDb *db, const BrActor *actor,
                                   int64_t request_id, int64_t *ret_job, CmError *err)
{
    BrStepList steps = {0};
    BrAllocationState st;
    ReqInfo req;
    int r = req_info_load(db, request_id, &req, err);
    if (r < 0)
        return r;
    if (!req.trial_allocation_id) {
        req_info_clear(&req);
        *ret_job = 0;
        return 0;
    }
    r = allocation_state(db, req.trial_allocation_id, &st, NULL, 0, err);
    if (r >= 0 && st != BR_ALLOCATION_STATE_ACTIVE && st != BR_ALLOCATION_STATE_ERROR) {
        /* Already reclaimed, or still provisioning (its job's failure reclaims nothing). */
        *ret_job = 0;
        req_info_clear(&req);
        return 0;
    }
    if (r >= 0)
        r = br_allocation_set_state(d->store, db, actor, req.trial_allocation_id, st,
                                    BR_ALLOCATION_STATE_RECLAIMING, "allocation.reclaim_trial",
                                    NULL, err);
    if (r >= 0)
        r = plan_takedown(db, req.trial_allocation_id, true, false, true, &steps, err);
    if (r >= 0)
        r = br_job_create(d->store, db, actor, BR_JOB_TRIAL_RECLAIM, request_id,
                          req.trial_allocation_id, &steps, ret_job, err);
    br_step_list_clear(&steps);
    req_info_clear(&req);
    return r;
}

int br_workflow_plan_restore(BrDaemon *d, CmDb *db, const BrActor *actor, int64_t allocation_id,
                             int64_t *ret_job, CmError *err)
{
    _cleanup_free_ InstInfo *cur = NULL;
    BrStepList steps = {0};
    BrAllocationState st;
    size_t n = 0;
    int r = allocation_state(db, allocation_id, &st, NULL, 0, err);
    if (r >= 0 && st != BR_ALLOCATION_STATE_RETAINED)
        r = cm_error_set_code(err, CM_ERROR_CONFLICT, "invalid_state", "state",
                              "allocation %lld is '%s'; only a retained allocation is restored",
                              (long long)allocation_id, br_allocation_state_to_string(st));
    if (r >= 0)
        r = br_allocation_set_state(d->store, db, actor, allocation_id,
                                    BR_ALLOCATION_STATE_RETAINED,
                                    BR_ALLOCATION_STATE_PROVISIONING, "allocation.restore", NULL,
                                    err);
    if (r >= 0)
        r = instances_load(db, allocation_id, &cur, &n, err);
    for (size_t i = 0; r >= 0 && i < n; i++) {
        if (cur[i].state == BR_INSTANCE_PENDING)
            continue;
        if (br_step_list_add(&steps, BR_STEP_DEFINE, cur[i].id, 0, NULL) < 0 ||
            br_step_list_add(&steps, BR_STEP_START, cur[i].id, 0, NULL) < 0)
            r = cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    }
    if (r >= 0 && br_step_list_add(&steps, BR_STEP_FINISH, 0, 0, NULL) < 0)
        r = cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    if (r >= 0)
        r = br_job_create(d->store, db, actor, BR_JOB_RESTORE, 0, allocation_id, &steps, ret_job,
                          err);
    br_step_list_clear(&steps);
    return r;
}

static bool job_open_for(CmDb *db, int64_t allocation_id, const char *kind)
{
    sqlite3_stmt *stmt = cm_db_stmt(db,
                                    "SELECT 1 FROM jobs WHERE allocation_id = ? AND kind = ?"
                                    " AND state IN ('queued','running')",
                                    NULL);
    bool open;
    if (!stmt)
        return false;
    CM_DB_BIND(stmt, allocation_id, kind);
    open = sqlite3_step(stmt) == SQLITE_ROW;
    sqlite3_reset(stmt);
    return open;
}

int br_workflow_plan_purge(BrDaemon *d, CmDb *db, const BrActor *actor, int64_t allocation_id,
                           int64_t *ret_job, CmError *err)
{
    BrStepList steps = {0};
    BrAllocationState st;
    int r = allocation_state(db, allocation_id, &st, NULL, 0, err);
    if (r >= 0 && st != BR_ALLOCATION_STATE_RETAINED && st != BR_ALLOCATION_STATE_ERROR)
        r = cm_error_set_code(err, CM_ERROR_CONFLICT, "invalid_state", "state",
                              "allocation %lld is '%s'; only a retained (or failed) allocation "
                              "is purged",
                              (long long)allocation_id, br_allocation_state_to_string(st));
    if (r >= 0 && job_open_for(db, allocation_id, "purge"))
        r = cm_error_set_code(err, CM_ERROR_CONFLICT, "job_open", "state",
                              "allocation %lld is already being purged",
                              (long long)allocation_id);
    if (r >= 0)
        r = plan_takedown(db, allocation_id, true, true, true, &steps, err);
    if (r >= 0)
        r = br_job_create(d->store, db, actor, BR_JOB_PURGE, 0, allocation_id, &steps, ret_job,
                          err);
    br_step_list_clear(&steps);
    return r;
}

/* ---- retrying a failed job ---- */

void br_workflow_retry_states(BrJobKind kind, bool trial, BrAllocationState *ret_allocation,
                              BrRequestState *ret_request)
{
    /* The mirror of br_workflow_fail(): the request goes back to where the failure found it. */
    *ret_request = BR_REQUEST_STATE_MAX;
    switch (kind) {
    case BR_JOB_PROVISION:
        *ret_allocation = BR_ALLOCATION_STATE_PROVISIONING;
        *ret_request = trial ? BR_REQUEST_STATE_APPROVED : BR_REQUEST_STATE_TRIAL_PASSED;
        break;
    case BR_JOB_RESTORE:
        *ret_allocation = BR_ALLOCATION_STATE_PROVISIONING;
        break;
    case BR_JOB_RESIZE:
        *ret_allocation = BR_ALLOCATION_STATE_RESIZING;
        *ret_request = BR_REQUEST_STATE_APPLYING;
        break;
    case BR_JOB_RECLAIM:
        *ret_allocation = BR_ALLOCATION_STATE_RECLAIMING;
        *ret_request = BR_REQUEST_STATE_RECLAIMING;
        break;
    case BR_JOB_TRIAL_RECLAIM:
        *ret_allocation = BR_ALLOCATION_STATE_RECLAIMING;
        break;
    case BR_JOB_PURGE:
    default:
        /* A purge ends from error as well as from retained (error → purged is allowed). */
        *ret_allocation = BR_ALLOCATION_STATE_ERROR;
        break;
    }
}

/* The newest job of @allocation_id made after @job_id, or 0. */
static int later_job(CmDb *db, int64_t allocation_id, int64_t job_id, int64_t *ret_id, char *kind,
                     size_t kind_size, CmError *err)
{
    sqlite3_stmt *stmt = cm_db_stmt(db,
                                    "SELECT id, kind FROM jobs WHERE allocation_id = ? AND id > ?"
                                    " ORDER BY id DESC LIMIT 1",
                                    err);
    int r;
    if (!stmt)
        return -EIO;
    CM_DB_BIND(stmt, allocation_id, job_id);
    r = cm_db_step_row(db, stmt, err);
    *ret_id = 0;
    if (r > 0) {
        *ret_id = sqlite3_column_int64(stmt, 0);
        snprintf(kind, kind_size, "%s", cm_db_col_text(stmt, 1));
    }
    sqlite3_reset(stmt);
    return r < 0 ? r : 0;
}

/* Instances of @job_id still 'placed' go back to placement. Returns: how many, or -errno. */
static int replace_unmade(CmDb *db, int64_t job_id, CmError *err)
{
    char at[CM_TIME_ISO_LEN + 1];
    sqlite3_stmt *stmt;
    bool has_reserve;
    int r;

    stmt = cm_db_stmt(db, "SELECT 1 FROM job_steps WHERE job_id = ? AND action = 'reserve'", err);
    if (!stmt)
        return -EIO;
    CM_DB_BIND(stmt, job_id);
    r = cm_db_step_row(db, stmt, err);
    sqlite3_reset(stmt);
    if (r < 0)
        return r;
    has_reserve = r > 0;
    if (!has_reserve)
        return 0;
    /* An instance still 'placed' has nothing on its host: its create_volume step never ran, or
     * failed (a crash leaves a step running, then pending, never failed). It goes back to
     * placement, so that a host taken out of service since is avoided; what exists on a host
     * stays where it is. */
    cm_time_iso(cm_now_ms(), at);
    stmt = cm_db_stmt(db,
                      "UPDATE instances SET state = 'pending', host_id = NULL, pool = NULL,"
                      " updated_at = ?2 WHERE state = 'placed' AND id IN"
                      " (SELECT instance_id FROM job_steps WHERE job_id = ?1)",
                      err);
    if (!stmt)
        return -EIO;
    CM_DB_BIND(stmt, job_id, at);
    r = cm_db_step_done(db, stmt, err);
    return r < 0 ? r : sqlite3_changes(cm_db_handle(db));
}

int br_workflow_plan_retry(BrDaemon *d, CmDb *db, const BrActor *actor, int64_t job_id,
                           const char *comment, CmError *err)
{
    char purpose[16] = "", later_kind[32] = "";
    BrAllocationState st = BR_ALLOCATION_STATE_ERROR, alloc_to;
    BrRequestState req_to;
    int64_t later = 0;
    BrJobRow job;
    int r;

    r = br_job_load(db, job_id, &job, err);
    if (r < 0)
        return r;
    if (job.state != BR_JOB_ERROR)
        return cm_error_set_code(err, CM_ERROR_CONFLICT, "invalid_state", "state",
                                 "job %lld is '%s'; only a failed job is retried",
                                 (long long)job_id, br_job_state_to_string(job.state));
    if (job.allocation_id) {
        r = later_job(db, job.allocation_id, job_id, &later, later_kind, sizeof(later_kind), err);
        if (r >= 0 && later)
            r = cm_error_set_code(err, CM_ERROR_CONFLICT, "superseded", "state",
                                  "job %lld (%s) came after job %lld on allocation %lld; only "
                                  "the allocation's latest job can be retried",
                                  (long long)later, later_kind, (long long)job_id,
                                  (long long)job.allocation_id);
        if (r >= 0)
            r = allocation_state(db, job.allocation_id, &st, purpose, sizeof(purpose), err);
        if (r >= 0 && st != BR_ALLOCATION_STATE_ERROR)
            r = cm_error_set_code(err, CM_ERROR_CONFLICT, "invalid_state", "state",
                                  "allocation %lld is '%s', not error; its job %lld cannot be "
                                  "retried",
                                  (long long)job.allocation_id, br_allocation_state_to_string(st),
                                  (long long)job_id);
        if (r < 0)
            return r;
    }
    br_workflow_retry_states(job.kind, strcmp(purpose, "trial") == 0, &alloc_to, &req_to);
    if (job.allocation_id && alloc_to != st) {
        r = br_allocation_set_state(d->store, db, actor, job.allocation_id, st, alloc_to,
                                    "allocation.retry", comment, err);
        if (r < 0)
            return r;
    }
    if (job.request_id && req_to != BR_REQUEST_STATE_MAX) {
        ReqInfo req;
        r = req_info_load(db, job.request_id, &req, err);
        if (r < 0)
            return r;
        if (req.state != BR_REQUEST_STATE_FAILED)
            r = cm_error_set_code(err, CM_ERROR_CONFLICT, "invalid_state", "state",
                                  "request %lld is '%s', not failed; its job %lld cannot be "
                                  "retried",
                                  (long long)req.id, br_request_state_to_string(req.state),
                                  (long long)job_id);
        else
            r = br_request_set_state(d->store, db, actor, req.id, req.kind, BR_REQUEST_STATE_FAILED,
                                     req_to, "request.retry",
                                     comment && *comment ? comment : "its job is retried", err);
        req_info_clear(&req);
        if (r < 0)
            return r;
    }
    r = replace_unmade(db, job_id, err);
    if (r < 0)
        return r;
    return br_job_reopen(d->store, db, actor, job_id, r > 0, comment, r, err);
}

/* ---- placement ---- */

typedef struct {
    BrPlacementHost *hosts;
    char (*names)[64];
    size_t n;
} HostSet;

static void host_set_clear(HostSet *s)
{
    free(s->hosts);
    free(s->names);
    memset(s, 0, sizeof(*s));
}

/* Every host with its live status and what is placed on it. */
static int host_set_load(BrDaemon *d, CmDb *db, const BrPolicies *p, HostSet *ret, CmError *err)
{
    static const char pools[2][16] = {"trial", "production"};
    /* Usage per host is kept by triggers (migration 5): one row per host, no aggregation. */
    sqlite3_stmt *stmt = cm_db_stmt(
        db,
        "SELECT h.id, h.name, h.pool, h.enabled, h.maintenance, h.cpu_ratio, h.ram_ratio,"
        " h.disk_ratio, h.cpus, h.memory_mib, h.disk_gib, h.used_vcpus, h.used_memory_mib,"
        " h.used_disk_gib FROM hosts h ORDER BY h.id",
        err);
    _cleanup_free_ BrHostStatus *status = NULL;
    size_t n_status = 0;
    HostSet s = {0};
    size_t cap = 0;
    int r;

    if (!stmt)
        return -EIO;
    /* Every host's live status in one snapshot, sorted by id. */
    if (d->hosts && br_hosts_snapshot(d->hosts, &status, &n_status) < 0)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    while ((r = cm_db_step_row(db, stmt, err)) > 0) {
        if (s.n == cap) {
            cap = cap ? cap * 2 : 16;
            BrPlacementHost *nh = realloc(s.hosts, cap * sizeof(*nh));
            char(*nn)[64] = realloc(s.names, cap * sizeof(*nn));
            if (nh)
                s.hosts = nh;
            if (nn)
                s.names = nn;
            if (!nh || !nn) {
                r = cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
                break;
            }
        }
        BrPlacementHost *h = &s.hosts[s.n];
        const BrHostStatus *st;
        memset(h, 0, sizeof(*h));
        h->id = sqlite3_column_int64(stmt, 0);
        snprintf(s.names[s.n], sizeof(s.names[s.n]), "%s", cm_db_col_text(stmt, 1));
        h->pool = strcmp(cm_db_col_text(stmt, 2), "trial") == 0 ? pools[0] : pools[1];
        h->enabled = sqlite3_column_int(stmt, 3) != 0;
        h->maintenance = sqlite3_column_int(stmt, 4) != 0;
        h->cpu_ratio = sqlite3_column_type(stmt, 5) == SQLITE_NULL
                           ? p->placement.cpu_ratio
                           : sqlite3_column_double(stmt, 5);
        h->ram_ratio = sqlite3_column_type(stmt, 6) == SQLITE_NULL
                           ? p->placement.ram_ratio
                           : sqlite3_column_double(stmt, 6);
        h->disk_ratio = sqlite3_column_type(stmt, 7) == SQLITE_NULL
                            ? p->placement.disk_ratio
                            : sqlite3_column_double(stmt, 7);
        h->cpus = sqlite3_column_int64(stmt, 8);
        h->memory_mib = sqlite3_column_int64(stmt, 9);
        h->disk_gib = sqlite3_column_int64(stmt, 10);
        h->used_vcpus = sqlite3_column_int64(stmt, 11);
        h->used_memory_mib = sqlite3_column_int64(stmt, 12);
        h->used_disk_gib = sqlite3_column_int64(stmt, 13);
        /* The live connection and capacity win over what the database last recorded. */
        st = br_hosts_snapshot_find(status, n_status, h->id);
        if (st) {
            h->connected = st->connected;
            if (st->capacity_known) {
                h->cpus = st->cpus;
                h->memory_mib = st->memory_mib;
                h->disk_gib = st->disk_gib;
            }
        }
        s.n++;
    }
    sqlite3_reset(stmt);
    if (r < 0) {
        host_set_clear(&s);
        return r;
    }
    for (size_t i = 0; i < s.n; i++)
        s.hosts[i].name = s.names[i];
    *ret = s;
    return 0;
}

static int no_capacity(CmError *err, json_object *refusals)
{
    char msg[480];
    size_t used;
    json_object *hosts = cm_json_get(refusals, "hosts");
    size_t n = hosts ? json_object_array_length(hosts) : 0;

    used = (size_t)snprintf(msg, sizeof(msg), "no host can take instance #%lld of the request:",
                            (long long)cm_json_get_int(refusals, "instance", 0));
    if (n == 0)
        snprintf(msg + used, sizeof(msg) - used, " no host is registered");
    for (size_t i = 0; i < n && used < sizeof(msg) - 1; i++) {
        json_object *h = json_object_array_get_idx(hosts, i);
        json_object *lim = cm_json_get(h, "limit");
        used += (size_t)snprintf(msg + used, sizeof(msg) - used, "%s %s refused by %s",
                                 i ? ";" : "", cm_json_get_str(h, "host", "?"),
                                 cm_json_get_str(h, "refused_by", "?"));
        if (lim && used < sizeof(msg) - 1)
            used += (size_t)snprintf(msg + used, sizeof(msg) - used,
                                     " (%lld used of %lld, %lld asked)",
                                     (long long)cm_json_get_int(h, "used", 0),
                                     (long long)json_object_get_int64(lim),
                                     (long long)cm_json_get_int(h, "asked", 0));
    }
    return cm_error_set_code(err, CM_ERROR_CONFLICT, "no_capacity", "", "%s", msg);
}

/* Places @demands; @siblings_of names the allocation whose instances count for affinity. */
static int place(BrDaemon *d, CmDb *db, const char *pool, int64_t siblings_of,
                 const BrPlacementDemand *demands, size_t n, size_t *choice, HostSet *hs,
                 CmError *err)
{
    _cleanup_(br_policies_unrefp) BrPolicies *p = br_daemon_policies(d);
    _cleanup_free_ bool *siblings = NULL;
    /* Anti-affinity guards production against a host's failure; a trial does not need it. */
    BrPlacementPolicy pp = {.pool = pool,
                            .anti_affinity = p->placement.anti_affinity &&
                                             strcmp(pool, "production") == 0,
                            .weigher = p->placement.spread ? BR_PLACEMENT_SPREAD
                                                           : BR_PLACEMENT_PACK};
    json_object *refusals = NULL;
    int r = host_set_load(d, db, p, hs, err);
    if (r < 0)
        return r;
    siblings = calloc(hs->n + 1, sizeof(bool));
    if (!siblings)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    if (siblings_of) {
        sqlite3_stmt *stmt = cm_db_stmt(db,
                                        "SELECT DISTINCT host_id FROM instances"
                                        " WHERE allocation_id = ? AND host_id IS NOT NULL"
                                        " AND state != 'deleted'",
                                        err);
        if (!stmt)
            return -EIO;
        CM_DB_BIND(stmt, siblings_of);
        while (sqlite3_step(stmt) == SQLITE_ROW)
            for (size_t i = 0; i < hs->n; i++)
                if (hs->hosts[i].id == sqlite3_column_int64(stmt, 0))
                    siblings[i] = true;
        sqlite3_reset(stmt);
    }
    r = br_placement_choose(hs->hosts, hs->n, &pp, demands, n, siblings, choice, &refusals);
    if (r < 0) {
        no_capacity(err, refusals);
        json_object_put(refusals);
        return -ENOSPC;
    }
    return 0;
}

int br_workflow_place_request(BrDaemon *d, CmDb *db, int64_t request_id, const char *pool,
                              CmError *err)
{
    ReqInfo req;
    HostSet hs = {0};
    _cleanup_free_ BrPlacementDemand *demands = NULL;
    _cleanup_free_ size_t *choice = NULL;
    int r = req_info_load(db, request_id, &req, err);
    if (r < 0)
        return r;
    json_object *specs = cm_json_get(req.resources, "instances");
    size_t n = specs ? json_object_array_length(specs) : 0;
    demands = calloc(n + 1, sizeof(*demands));
    choice = calloc(n + 1, sizeof(*choice));
    if (!demands || !choice) {
        req_info_clear(&req);
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        json_object *s = json_object_array_get_idx(specs, i);
        demands[i] = (BrPlacementDemand){cm_json_get_int(s, "vcpus", 1),
                                         cm_json_get_int(s, "memory_mib", 512),
                                         cm_json_get_int(s, "disk_gib", 1)};
    }
    r = place(d, db, pool, 0, demands, n, choice, &hs, err);
    host_set_clear(&hs);
    req_info_clear(&req);
    return r;
}

static int step_done_sql(CmDb *db, int64_t job_id, int seq, CmError *err)
{
    char at[CM_TIME_ISO_LEN + 1];
    sqlite3_stmt *stmt = cm_db_stmt(db,
                                    "UPDATE job_steps SET state = 'done', error = NULL,"
                                    " finished_at = ? WHERE job_id = ? AND seq = ?",
                                    err);
    if (!stmt)
        return -EIO;
    cm_time_iso(cm_now_ms(), at);
    CM_DB_BIND(stmt, at, job_id, (int64_t)seq);
    return cm_db_step_done(db, stmt, err);
}

int br_workflow_reserve(BrDaemon *d, const BrJobRow *job, int seq, CmError *err)
{
    _cleanup_(br_policies_unrefp) BrPolicies *p = br_daemon_policies(d);
    _cleanup_free_ InstInfo *cur = NULL;
    _cleanup_free_ BrPlacementDemand *demands = NULL;
    _cleanup_free_ size_t *choice = NULL, *which = NULL;
    char purpose[16] = "";
    BrAllocationState st;
    HostSet hs = {0};
    size_t n = 0, k = 0;
    CmDb *db;
    int r;

    pthread_mutex_lock(&placement_lock);
    r = br_store_write_begin(d->store, &db, err);
    if (r < 0) {
        pthread_mutex_unlock(&placement_lock);
        return r;
    }
    r = allocation_state(db, job->allocation_id, &st, purpose, sizeof(purpose), err);
    if (r >= 0)
        r = instances_load(db, job->allocation_id, &cur, &n, err);
    if (r >= 0) {
        demands = calloc(n + 1, sizeof(*demands));
        choice = calloc(n + 1, sizeof(*choice));
        which = calloc(n + 1, sizeof(*which));
        if (!demands || !choice || !which)
            r = cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    }
    for (size_t i = 0; r >= 0 && i < n; i++) {
        if (cur[i].state != BR_INSTANCE_PENDING)
            continue;
        demands[k] = (BrPlacementDemand){cur[i].vcpus, cur[i].memory_mib, cur[i].disk_gib};
        which[k++] = i;
    }
    if (r >= 0 && k > 0)
        r = place(d, db, pool_of_purpose(purpose), job->allocation_id, demands, k, choice, &hs,
                  err);
    for (size_t j = 0; r >= 0 && j < k; j++) {
        const BrCatalogImage *img = br_policy_image(p, cur[which[j]].image);
        sqlite3_stmt *stmt = cm_db_stmt(db,
                                        "UPDATE instances SET host_id = ?1, pool = coalesce("
                                        "?2, (SELECT storage_pool FROM hosts WHERE id = ?1)),"
                                        " state = 'placed' WHERE id = ?3 AND state = 'pending'",
                                        err);
        if (!img)
            r = cm_error_set_code(err, CM_ERROR_UNPROCESSABLE, "unknown_image", "image",
                                  "image '%s' left the catalog", cur[which[j]].image);
        else if (!stmt)
            r = -EIO;
        else {
            CM_DB_BIND(stmt, hs.hosts[choice[j]].id, img->pool[0] ? img->pool : NULL,
                       cur[which[j]].id);
            r = cm_db_step_done(db, stmt, err);
        }
        if (r >= 0)
            cm_log_info("instance %lld placed on host %s", (long long)cur[which[j]].id,
                        hs.hosts[choice[j]].name);
    }
    if (r >= 0)
        r = step_done_sql(db, job->id, seq, err);
    host_set_clear(&hs);
    if (r < 0) {
        br_store_write_abort(d->store, db);
        pthread_mutex_unlock(&placement_lock);
        /* Nothing fits now: the vendor may add or free a host; keep trying for a while. */
        return r == -ENOSPC ? -EAGAIN : r;
    }
    r = br_store_write_commit(d->store, db, err);
    pthread_mutex_unlock(&placement_lock);
    return r;
}

/* ---- ends of jobs ---- */

static int request_move(BrDaemon *d, CmDb *db, int64_t request_id, BrRequestState from,
                        BrRequestState to, const char *comment, CmError *err)
{
    ReqInfo req;
    int r;
    if (!request_id)
        return 0;
    r = req_info_load(db, request_id, &req, err);
    if (r < 0)
        return r;
    if (req.state == from)
        r = br_request_set_state(d->store, db, br_actor_system(), request_id, req.kind, from, to,
                                 "request.job", comment, err);
    else if (req.state != to)
        cm_log_warning("request %lld is '%s', expected '%s' at the end of its job",
                       (long long)request_id, br_request_state_to_string(req.state),
                       br_request_state_to_string(from));
    req_info_clear(&req);
    return r;
}

static int alloc_move(BrDaemon *d, CmDb *db, int64_t id, BrAllocationState to, const char *why,
                      CmError *err)
{
    BrAllocationState st;
    int r = allocation_state(db, id, &st, NULL, 0, err);
    if (r < 0 || st == to)
        return r;
    return br_allocation_set_state(d->store, db, br_actor_system(), id, st, to, "allocation.job",
                                   why, err);
}

static int exec_sql(CmDb *db, const char *sql, int64_t a, const char *b, CmError *err)
{
    sqlite3_stmt *stmt = cm_db_stmt(db, sql, err);
    if (!stmt)
        return -EIO;
    CM_DB_BIND(stmt, a, b);
    return cm_db_step_done(db, stmt, err);
}

int br_workflow_finish(BrDaemon *d, const BrJobRow *job, int seq, CmError *err)
{
    _cleanup_(br_policies_unrefp) BrPolicies *p = br_daemon_policies(d);
    char purpose[16] = "", at[CM_TIME_ISO_LEN + 1], when[CM_TIME_ISO_LEN + 1];
    BrAllocationState st;
    CmDb *db;
    int r;

    r = br_store_write_begin(d->store, &db, err);
    if (r < 0)
        return r;
    r = allocation_state(db, job->allocation_id, &st, purpose, sizeof(purpose), err);
    if (r >= 0)
        r = allocation_totals(db, job->allocation_id, err);
    switch (job->kind) {
    case BR_JOB_PROVISION:
        if (r >= 0)
            r = alloc_move(d, db, job->allocation_id, BR_ALLOCATION_STATE_ACTIVE, NULL, err);
        if (r >= 0 && strcmp(purpose, "trial") == 0) {
            cm_time_iso(cm_now_ms() + p->lifecycle.trial_seconds * 1000, when);
            r = exec_sql(db, "UPDATE requests SET trial_deadline = ?2 WHERE id = ?1",
                         job->request_id, when, err);
            if (r >= 0)
                r = request_move(d, db, job->request_id, BR_REQUEST_STATE_APPROVED,
                                 BR_REQUEST_STATE_IN_TRIAL, "trial environment running", err);
        } else if (r >= 0) {
            r = request_move(d, db, job->request_id, BR_REQUEST_STATE_TRIAL_PASSED,
                             BR_REQUEST_STATE_ALLOCATED, "production instances running", err);
        }
        break;
    case BR_JOB_RESTORE:
        if (r >= 0)
            r = exec_sql(db, "UPDATE allocations SET retained_until = ?2 WHERE id = ?1",
                         job->allocation_id, NULL, err);
        if (r >= 0)
            r = alloc_move(d, db, job->allocation_id, BR_ALLOCATION_STATE_ACTIVE, NULL, err);
        break;
    case BR_JOB_RESIZE:
        if (r >= 0)
            r = alloc_move(d, db, job->allocation_id, BR_ALLOCATION_STATE_ACTIVE, NULL, err);
        if (r >= 0)
            r = request_move(d, db, job->request_id, BR_REQUEST_STATE_APPLYING,
                             BR_REQUEST_STATE_APPLIED, "change applied", err);
        break;
    case BR_JOB_RECLAIM:
        cm_time_iso(cm_now_ms() + p->lifecycle.retention_seconds * 1000, when);
        if (r >= 0)
            r = exec_sql(db, "UPDATE allocations SET retained_until = ?2 WHERE id = ?1",
                         job->allocation_id, when, err);
        if (r >= 0)
            r = alloc_move(d, db, job->allocation_id, BR_ALLOCATION_STATE_RETAINED, NULL, err);
        if (r >= 0)
            r = request_move(d, db, job->request_id, BR_REQUEST_STATE_RECLAIMING,
                             BR_REQUEST_STATE_RECLAIMED,
                             "instances removed; volumes retained until the purge", err);
        break;
    case BR_JOB_TRIAL_RECLAIM:
        if (r >= 0)
            r = alloc_move(d, db, job->allocation_id, BR_ALLOCATION_STATE_RETAINED, NULL, err);
        if (r >= 0)
            r = alloc_move(d, db, job->allocation_id, BR_ALLOCATION_STATE_PURGED, NULL, err);
        break;
    case BR_JOB_PURGE:
        if (r >= 0)
            r = exec_sql(db, "UPDATE allocations SET retained_until = ?2 WHERE id = ?1",
                         job->allocation_id, NULL, err);
        if (r >= 0)
            r = alloc_move(d, db, job->allocation_id, BR_ALLOCATION_STATE_PURGED, NULL, err);
        break;
    default:
        break;
    }
    /* Findings follow their instance: those of what this job ended are resolved with it. */
    if (r >= 0 &&
        (job->kind == BR_JOB_RECLAIM || job->kind == BR_JOB_PURGE || job->kind == BR_JOB_RESIZE))
        r = br_assess_resolve_ended(d->store, db, job->allocation_id,
                                    job->kind == BR_JOB_RECLAIM ? "the allocation was reclaimed"
                                    : job->kind == BR_JOB_PURGE ? "the allocation was purged"
                                                                : "the instance was removed "
                                                                  "(scale-in)",
                                    err);
    if (r >= 0)
        r = step_done_sql(db, job->id, seq, err);
    cm_time_iso(cm_now_ms(), at);
    if (r >= 0)
        r = exec_sql(db,
                     "UPDATE jobs SET state = 'done', finished_at = ?2, error = NULL"
                     " WHERE id = ?1",
                     job->id, at, err);
    if (r >= 0)
        r = br_store_audit(d->store, db, br_actor_system(), "job.done", "job", job->id, "done",
                           NULL, err);
    if (r < 0) {
        br_store_write_abort(d->store, db);
        return r;
    }
    return br_store_write_commit(d->store, db, err);
}

int br_workflow_fail(BrDaemon *d, CmDb *db, const BrJobRow *job, const char *reason,
                     CmError *err)
{
    char purpose[16] = "";
    BrAllocationState st;
    int r = 0;

    if (job->allocation_id) {
        r = allocation_state(db, job->allocation_id, &st, purpose, sizeof(purpose), err);
        if (r >= 0 && st != BR_ALLOCATION_STATE_ERROR &&
            br_allocation_transition_allowed(st, BR_ALLOCATION_STATE_ERROR))
            r = br_allocation_set_state(d->store, db, br_actor_system(), job->allocation_id, st,
                                        BR_ALLOCATION_STATE_ERROR, "allocation.job", reason,
                                        err);
    }
    if (r < 0 || !job->request_id)
        return r;
    switch (job->kind) {
    case BR_JOB_PROVISION:
        return request_move(d, db, job->request_id,
                            strcmp(purpose, "trial") == 0 ? BR_REQUEST_STATE_APPROVED
                                                          : BR_REQUEST_STATE_TRIAL_PASSED,
                            BR_REQUEST_STATE_FAILED, reason, err);
    case BR_JOB_RESIZE:
        return request_move(d, db, job->request_id, BR_REQUEST_STATE_APPLYING,
                            BR_REQUEST_STATE_FAILED, reason, err);
    case BR_JOB_RECLAIM:
        return request_move(d, db, job->request_id, BR_REQUEST_STATE_RECLAIMING,
                            BR_REQUEST_STATE_FAILED, reason, err);
    default:
        return 0;
    }
}

int64_t br_workflow_retry_seconds(BrDaemon *d)
{
    _cleanup_(br_policies_unrefp) BrPolicies *p = br_daemon_policies(d);
    return p->lifecycle.job_retry_seconds;
}

/* How long before a retained allocation is purged its department and the bureau are told. */
#define PURGE_NOTICE_MS (7 * 86400000LL)

typedef struct {
    BrDaemon *d;
    int64_t id, department_id;
    const char *system_name, *retained_until, *dedup;
} PurgeSoon;

static int purge_soon_tx(BrTx *tx, void *ctx)
{
    PurgeSoon *w = ctx;
    _cleanup_json_ json_object *detail = json_object_new_object();
    json_object_object_add(detail, "retained_until", json_object_new_string(w->retained_until));
    BrNotice n = {.kind = BR_NOTIFY_PURGE_SOON,
                  .to = BR_TO_DEPARTMENT | BR_TO_REVIEWERS,
                  .object_type = "allocation",
                  .object_id = w->id,
                  .object_name = w->system_name,
                  .department_id = w->department_id,
                  .detail = detail,
                  .dedup = w->dedup};
    int r = br_notification_raise(tx->db, &w->d->notify, tx->actor, &n, tx->err);
    return r < 0 ? r : 0;
}

/* Retained allocations whose purge is near: told once per retention. Returns: how many. */
static int notify_purge_soon(BrDaemon *d, CmDb *db, const char *now)
{
    char soon[CM_TIME_ISO_LEN + 1];
    CmError err = {0};
    struct {
        int64_t id, department_id;
        char *name, *until;
    } due[16];
    size_t n = 0;
    int told = 0;

    cm_time_iso(cm_now_ms() + PURGE_NOTICE_MS, soon);
    {
        _cleanup_stmt_ CmStmt *st = cm_db_prepare(
            db,
            "SELECT a.id, a.department_id, s.name, a.retained_until FROM allocations a"
            " JOIN systems s ON s.id = a.system_id WHERE a.state = 'retained'"
            " AND a.retained_until > ?1 AND a.retained_until <= ?2 ORDER BY a.id LIMIT 16",
            &err);
        if (!st)
            return 0;
        CM_DB_BIND(st, now, soon);
        while (n < ELEMENTSOF(due) && cm_stmt_step(st, &err) > 0) {
            due[n].id = cm_stmt_int(st, 0);
            due[n].department_id = cm_stmt_int(st, 1);
            due[n].name = cm_stmt_strdup(st, 2);
            due[n].until = cm_stmt_strdup(st, 3);
            n++;
        }
    }
    for (size_t i = 0; i < n; i++) {
        _cleanup_free_ char *dedup = NULL;
        PurgeSoon w = {.d = d,
                       .id = due[i].id,
                       .department_id = due[i].department_id,
                       .system_name = due[i].name,
                       .retained_until = due[i].until};
        if (due[i].name && due[i].until)
            dedup = cm_strdup_printf("purge_soon:%lld:%s", (long long)w.id, due[i].until);
        w.dedup = dedup;
        if (dedup && br_notification_seen(db, dedup, &err) == 0) {
            if (br_tx_run(d->store, "allocation.purge_soon", NULL, purge_soon_tx, &w, &err) >= 0)
                told++;
            else
                cm_log_error("allocation %lld: cannot tell of the purge: %s", (long long)w.id,
                             err.message);
        }
        free(due[i].name);
        free(due[i].until);
    }
    return told;
}

int br_workflow_sweep(BrDaemon *d)
{
    char now[CM_TIME_ISO_LEN + 1];
    CmError err = {0};
    int64_t ids[64];
    size_t n = 0;
    int made = 0;
    CmDb *db = br_store_db(d->store, &err);
    sqlite3_stmt *stmt;

    if (!db)
        return 0;
    cm_time_iso(cm_now_ms(), now);

    /* Trials whose time ran out before all three tests passed. */
    stmt = cm_db_stmt(db,
                      "SELECT id FROM requests WHERE state = 'in_trial'"
                      " AND trial_deadline IS NOT NULL AND trial_deadline <= ? LIMIT 64",
                      &err);
    if (stmt) {
        CM_DB_BIND(stmt, now);
        while (n < 64 && sqlite3_step(stmt) == SQLITE_ROW)
            ids[n++] = sqlite3_column_int64(stmt, 0);
        sqlite3_reset(stmt);
    }
    for (size_t i = 0; i < n; i++) {
        int64_t job = 0;
        int r = br_store_write_begin(d->store, &db, &err);
        if (r < 0)
            break;
        r = br_request_set_state(d->store, db, br_actor_system(), ids[i],
                                 BR_REQUEST_KIND_NEW, BR_REQUEST_STATE_IN_TRIAL,
                                 BR_REQUEST_STATE_TRIAL_FAILED, "request.trial_timeout",
                                 "the trial time ran out before all three tests passed", &err);
        if (r >= 0)
            r = br_workflow_plan_trial_reclaim(d, db, br_actor_system(), ids[i], &job, &err);
        if (r < 0) {
            br_store_write_abort(d->store, db);
            cm_log_error("request %lld: cannot end the overdue trial: %s", (long long)ids[i],
                         err.message);
            continue;
        }
        if (br_store_write_commit(d->store, db, &err) >= 0)
            made++;
    }

    made += notify_purge_soon(d, db, now);

    /* Retention over: purge. */
    n = 0;
    stmt = cm_db_stmt(db,
                      "SELECT a.id FROM allocations a WHERE a.state = 'retained'"
                      " AND a.retained_until IS NOT NULL AND a.retained_until <= ?"
                      " AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.allocation_id = a.id"
                      " AND j.kind = 'purge' AND j.state IN ('queued','running')) LIMIT 64",
                      &err);
    if (stmt) {
        CM_DB_BIND(stmt, now);
        while (n < 64 && sqlite3_step(stmt) == SQLITE_ROW)
            ids[n++] = sqlite3_column_int64(stmt, 0);
        sqlite3_reset(stmt);
    }
    for (size_t i = 0; i < n; i++) {
        int64_t job = 0;
        int r = br_store_write_begin(d->store, &db, &err);
        if (r < 0)
            break;
        r = br_workflow_plan_purge(d, db, br_actor_system(), ids[i], &job, &err);
        if (r < 0) {
            br_store_write_abort(d->store, db);
            continue;
        }
        if (br_store_write_commit(d->store, db, &err) >= 0) {
            made++;
            cm_log_notice("allocation %lld: retention ended; purge job %lld",
                          (long long)ids[i], (long long)job);
        }
    }
    return made;
}
