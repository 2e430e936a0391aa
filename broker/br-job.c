/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "br-job.h"
#include "br-tx.h"
#include "cm-json.h"
#include "cm-log.h"
#include "cm-time.h"
#include "cm-util.h"

CM_ENUM_IMPL(br_job_kind, BrJobKind, BR_JOB_KIND_MAX, "provision", "resize", "reclaim",
             "trial_reclaim", "purge", "restore")

CM_ENUM_IMPL(br_step_action, BrStepAction, BR_STEP_MAX, "reserve", "create_volume", "define",
             "start", "set_vcpus", "set_memory", "grow_volume", "shutdown", "redefine", "undefine",
             "wipe", "delete_volume", "finish")

CM_ENUM_IMPL(br_job_state, BrJobState, BR_JOB_STATE_MAX, "queued", "running", "done", "error")

int br_step_list_add(BrStepList *l, BrStepAction action, int64_t instance_id, int64_t arg,
                     const char *spec)
{
    _cleanup_free_ char *copy = NULL;

    if (l->n == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 16;
        BrStepSpec *ns = reallocarray(l->steps, ncap, sizeof(*ns));
        if (!ns)
            return -ENOMEM;
        l->steps = ns;
        char **no = reallocarray(l->owned, ncap, sizeof(*no));
        if (!no)
            return -ENOMEM;
        l->owned = no;
        l->cap = ncap;
    }
    if (spec) {
        copy = strdup(spec);
        if (!copy)
            return -ENOMEM;
        l->owned[l->n_owned++] = copy;
    }
    l->steps[l->n++] = (BrStepSpec){action, instance_id, arg, TAKE_PTR(copy)};
    return 0;
}

void br_step_list_clear(BrStepList *l)
{
    for (size_t i = 0; i < l->n_owned; i++)
        free(l->owned[i]);
    free(l->owned);
    free(l->steps);
    memset(l, 0, sizeof(*l));
}

int br_job_create(BrStore *store, CmDb *db, const BrActor *actor, BrJobKind kind,
                  int64_t request_id, int64_t allocation_id, const BrStepList *steps,
                  int64_t *ret_id, CmError *err)
{
    char at[CM_TIME_ISO_LEN + 1], detail[128];
    _cleanup_stmt_ CmStmt *st = NULL;
    int64_t id;
    int r;

    cm_time_iso(cm_now_ms(), at);
    st = cm_db_prepare(db,
                       "INSERT INTO jobs(kind, state, request_id, allocation_id, created_at)"
                       " VALUES (?1, 'queued', nullif(?2, 0), nullif(?3, 0), ?4) RETURNING id",
                       err);
    if (!st)
        return -EIO;
    CM_DB_BIND(st, br_job_kind_to_string(kind), request_id, allocation_id, at);
    r = cm_stmt_step(st, err);
    if (r < 0)
        return r;
    id = cm_stmt_int(st, 0);
    cm_stmt_reset(st);
    st = cm_db_prepare(db,
                       "INSERT INTO job_steps(job_id, seq, action, instance_id, arg, spec, state)"
                       " VALUES (?1, ?2, ?3, nullif(?4, 0), ?5, ?6, 'pending')",
                       err);
    if (!st)
        return -EIO;
    for (size_t i = 0; i < steps->n; i++) {
        const BrStepSpec *s = &steps->steps[i];
        CM_DB_BIND(st, id, (int64_t)i, br_step_action_to_string(s->action), s->instance_id, s->arg,
                   s->spec);
        r = cm_stmt_exec(st, err);
        if (r < 0)
            return r;
    }
    snprintf(detail, sizeof(detail), "{\"kind\":\"%s\",\"steps\":%zu}", br_job_kind_to_string(kind),
             steps->n);
    r = br_store_audit(store, db, actor, "job.create", "job", id, "queued", detail, err);
    if (r < 0)
        return r;
    *ret_id = id;
    return 0;
}

#define JOB_ROW_COLUMNS                                                                            \
    "id, kind, state, coalesce(request_id, 0), coalesce(allocation_id, 0), attempts,"              \
    " created_at, coalesce(started_at, '')"

static void job_row(CmStmt *st, BrJobRow *ret)
{
    *ret = (BrJobRow){
        .id = cm_stmt_int(st, 0),
        .kind = (BrJobKind)br_job_kind_from_string(cm_stmt_text(st, 1)),
        .state = (BrJobState)br_job_state_from_string(cm_stmt_text(st, 2)),
        .request_id = cm_stmt_int(st, 3),
        .allocation_id = cm_stmt_int(st, 4),
        .attempts = cm_stmt_int(st, 5),
    };
    snprintf(ret->created_at, sizeof(ret->created_at), "%s", cm_stmt_text(st, 6));
    snprintf(ret->started_at, sizeof(ret->started_at), "%s", cm_stmt_text(st, 7));
}

int br_job_load(CmDb *db, int64_t id, BrJobRow *ret, CmError *err)
{
    _cleanup_stmt_ CmStmt *st =
        cm_db_prepare(db, "SELECT " JOB_ROW_COLUMNS " FROM jobs WHERE id = ?1", err);
    int r;

    if (!st)
        return -EIO;
    CM_DB_BIND(st, id);
    r = cm_stmt_step(st, err);
    if (r < 0)
        return r;
    if (r == 0)
        return cm_error_set(err, CM_ERROR_NOT_FOUND, "", "no job %lld", (long long)id);
    job_row(st, ret);
    return 0;
}

int br_job_reopen(BrStore *store, CmDb *db, const BrActor *actor, int64_t id, bool reserve_again,
                  const char *comment, int64_t replaced, CmError *err)
{
    _cleanup_json_ json_object *detail = json_object_new_object();
    _cleanup_free_ char *previous = NULL;
    _cleanup_stmt_ CmStmt *st = NULL;
    int r;

    st = cm_db_prepare(db, "SELECT error FROM jobs WHERE id = ?1 AND state = 'error'", err);
    if (!st)
        return -EIO;
    CM_DB_BIND(st, id);
    r = cm_stmt_step(st, err);
    if (r < 0)
        return r;
    if (r == 0)
        return cm_error_set_code(err, CM_ERROR_CONFLICT, "invalid_state", "state",
                                 "job %lld has not failed; only a failed job is retried",
                                 (long long)id);
    if (cm_stmt_text(st, 0))
        previous = cm_stmt_strdup(st, 0);
    cm_stmt_reset(st);
    /* The failed step runs again; done steps stay done (they are idempotent and their effect
     * exists), and the reserve step places again what went back to placement. */
    st = cm_db_prepare(db,
                       "UPDATE job_steps SET state = 'pending', error = NULL, started_at = NULL,"
                       " finished_at = NULL WHERE job_id = ?1"
                       " AND (state = 'error' OR (?2 = 1 AND action = 'reserve'))",
                       err);
    if (!st)
        return -EIO;
    CM_DB_BIND(st, id, (int64_t)reserve_again);
    r = cm_stmt_exec(st, err);
    if (r < 0)
        return r;
    /* jobs.attempts counts the retries asked for (the column was unused before them). */
    st = cm_db_prepare(db,
                       "UPDATE jobs SET state = 'queued', error = NULL, started_at = NULL,"
                       " finished_at = NULL, not_before = NULL, attempts = attempts + 1"
                       " WHERE id = ?1 AND state = 'error'",
                       err);
    if (!st)
        return -EIO;
    CM_DB_BIND(st, id);
    r = cm_stmt_exec(st, err);
    if (r < 0)
        return r;
    json_object_object_add(detail, "previous_error",
                           previous ? json_object_new_string(previous) : NULL);
    if (comment && *comment)
        json_object_object_add(detail, "comment", json_object_new_string(comment));
    json_object_object_add(detail, "replaced_instances", json_object_new_int64(replaced));
    r = br_store_audit(store, db, actor, "job.retry", "job", id, "queued",
                       cm_json_to_string(detail, NULL), err);
    if (r < 0)
        return r;
    cm_log_notice("job %lld retried by %s (was: %s)", (long long)id, actor->name,
                  previous ? previous : "-");
    return 0;
}

int br_job_recover(CmDb *db, const char *node, int64_t now_ms, CmError *err)
{
    _cleanup_stmt_ CmStmt *st = NULL;
    int r;

    /* One broker on SQLite: every lease is its own from before the restart. On PostgreSQL
     * only the leases of this node name are (a restarted broker); the others' run on. */
    st = cm_db_prepare(db,
                       cm_db_sql(db,
                                 "UPDATE jobs SET lease_owner = NULL, lease_until = NULL"
                                 " WHERE lease_owner IS NOT NULL AND ?1 IS NOT NULL",
                                 "UPDATE jobs SET lease_owner = NULL, lease_until = NULL"
                                 " WHERE lease_owner = ?1"),
                       err);
    if (!st)
        return -EIO;
    CM_DB_BIND(st, node);
    r = cm_stmt_exec(st, err);
    if (r < 0)
        return r;
    /* A step left running by a broker whose lease is gone runs again (steps are idempotent);
     * the claims of hosts by jobs nobody runs are dropped. */
    st = cm_db_prepare(db,
                       "UPDATE job_steps SET state = 'pending' WHERE state = 'running'"
                       " AND job_id IN (SELECT id FROM jobs WHERE lease_owner IS NULL"
                       " OR lease_until < ?1)",
                       err);
    if (!st)
        return -EIO;
    CM_DB_BIND(st, now_ms);
    r = cm_stmt_exec(st, err);
    if (r < 0)
        return r;
    st = cm_db_prepare(db,
                       "DELETE FROM host_claims WHERE job_id IN (SELECT id FROM jobs"
                       " WHERE lease_owner IS NULL OR lease_until < ?1)",
                       err);
    if (!st)
        return -EIO;
    CM_DB_BIND(st, now_ms);
    r = cm_stmt_exec(st, err);
    if (r < 0)
        return r;
    st = cm_db_prepare(db,
                       "UPDATE jobs SET not_before = NULL WHERE state IN ('queued','running')"
                       " AND (lease_owner IS NULL OR lease_until < ?1)",
                       err);
    if (!st)
        return -EIO;
    CM_DB_BIND(st, now_ms);
    return cm_stmt_exec(st, err);
}

int br_job_runnable(CmDb *db, const char *now, int64_t now_ms, BrJobRow **ret, size_t *ret_n,
                    CmError *err)
{
    _cleanup_stmt_ CmStmt *st =
        cm_db_prepare(db,
                      "SELECT " JOB_ROW_COLUMNS " FROM jobs WHERE state IN ('queued','running')"
                      " AND (not_before IS NULL OR not_before <= ?1)"
                      " AND (lease_until IS NULL OR lease_until < ?2) ORDER BY id",
                      err);
    _cleanup_free_ BrJobRow *jobs = NULL;
    size_t n = 0, cap = 0;
    int r;

    if (!st)
        return -EIO;
    CM_DB_BIND(st, now, now_ms);
    while ((r = cm_stmt_step(st, err)) > 0) {
        if (n == cap) {
            BrJobRow *nj = reallocarray(jobs, cap ? cap * 2 : 16, sizeof(*nj));
            if (!nj)
                return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
            jobs = nj;
            cap = cap ? cap * 2 : 16;
        }
        job_row(st, &jobs[n++]);
    }
    if (r < 0)
        return r;
    *ret = TAKE_PTR(jobs);
    *ret_n = n;
    return 0;
}

#define CLAIM_CANDIDATES 32

int br_job_claim(CmDb *db, const BrJobLease *lease, const char *now,
                 bool (*skip)(void *ctx, int64_t job_id), void *skip_ctx, BrJobRow *ret,
                 char *ret_previous, size_t previous_size, CmError *err)
{
    /* The rows are locked as they are read, and rows another claim has locked are passed
     * over (PostgreSQL): no two brokers take one job, and none waits for another's claim. */
    _cleanup_stmt_ CmStmt *st = cm_db_prepare(
        db,
        cm_db_sql(
            db,
            "SELECT id, coalesce(lease_owner, '') FROM jobs"
            " WHERE state IN ('queued','running') AND (not_before IS NULL OR not_before <= ?1)"
            " AND (lease_until IS NULL OR lease_until < ?2) ORDER BY id LIMIT ?3",
            "SELECT id, coalesce(lease_owner, '') FROM jobs"
            " WHERE state IN ('queued','running') AND (not_before IS NULL OR not_before <= ?1)"
            " AND (lease_until IS NULL OR lease_until < ?2) ORDER BY id LIMIT ?3"
            " FOR UPDATE SKIP LOCKED"),
        err);
    char previous[BR_JOB_NODE_MAX] = "";
    int64_t id = 0;
    int r;

    if (!st)
        return -EIO;
    CM_DB_BIND(st, now, lease->now_ms, (int64_t)CLAIM_CANDIDATES);
    while (!id && (r = cm_stmt_step(st, err)) > 0)
        if (!skip || !skip(skip_ctx, cm_stmt_int(st, 0))) {
            id = cm_stmt_int(st, 0);
            cm_strscpy(previous, sizeof(previous), cm_stmt_text(st, 1));
        }
    if (!id && r < 0)
        return r;
    cm_stmt_reset(st);
    if (!id)
        return 0;
    st = cm_db_prepare(db, "UPDATE jobs SET lease_owner = ?2, lease_until = ?3 WHERE id = ?1", err);
    if (!st)
        return -EIO;
    CM_DB_BIND(st, id, lease->node, lease->now_ms + lease->lease_ms);
    r = cm_stmt_exec(st, err);
    if (r >= 0)
        r = br_job_load(db, id, ret, err);
    if (r < 0)
        return r;
    cm_strscpy(ret_previous, previous_size, previous);
    return 1;
}

int br_job_lease_hold(CmDb *db, int64_t job_id, const BrJobLease *lease, CmError *err)
{
    _cleanup_stmt_ CmStmt *st = cm_db_prepare(
        db, "UPDATE jobs SET lease_until = ?3 WHERE id = ?1 AND lease_owner = ?2", err);
    int r;

    if (!st)
        return -EIO;
    CM_DB_BIND(st, job_id, lease->node, lease->now_ms + lease->lease_ms);
    r = cm_stmt_exec(st, err);
    if (r < 0)
        return r;
    return cm_stmt_changes(st) > 0;
}

int br_job_lease_renew(CmDb *db, const BrJobLease *lease, CmError *err)
{
    _cleanup_stmt_ CmStmt *st = cm_db_prepare(
        db, "UPDATE jobs SET lease_until = ?2 WHERE lease_owner = ?1 AND lease_until >= ?3", err);

    if (!st)
        return -EIO;
    CM_DB_BIND(st, lease->node, lease->now_ms + lease->lease_ms, lease->now_ms);
    return cm_stmt_exec(st, err);
}

int br_job_lease_release(CmDb *db, int64_t job_id, const char *node, const char *not_before,
                         CmError *err)
{
    _cleanup_stmt_ CmStmt *st =
        cm_db_prepare(db, "DELETE FROM host_claims WHERE job_id = ?1 AND node = ?2", err);
    int r;

    if (!st)
        return -EIO;
    CM_DB_BIND(st, job_id, node);
    r = cm_stmt_exec(st, err);
    if (r < 0)
        return r;
    st = cm_db_prepare(db,
                       "UPDATE jobs SET lease_owner = NULL, lease_until = NULL,"
                       " not_before = coalesce(?3, not_before) WHERE id = ?1 AND lease_owner = ?2",
                       err);
    if (!st)
        return -EIO;
    CM_DB_BIND(st, job_id, node, not_before);
    return cm_stmt_exec(st, err);
}

/* The claim that keeps @host_id from the caller, named in @err. Returns: -EBUSY. */
static int host_claimed(CmDb *db, int64_t host_id, CmError *err)
{
    _cleanup_stmt_ CmStmt *st =
        cm_db_prepare(db, "SELECT job_id, node FROM host_claims WHERE host_id = ?1", err);
    int r;

    if (!st)
        return -EIO;
    CM_DB_BIND(st, host_id);
    r = cm_stmt_step(st, err);
    if (r < 0)
        return r;
    if (r == 0)
        cm_error_set(err, CM_ERROR_CONFLICT, "", "host %lld is claimed", (long long)host_id);
    else
        cm_error_set(err, CM_ERROR_CONFLICT, "", "host %lld is claimed by job %lld on %s",
                     (long long)host_id, (long long)cm_stmt_int(st, 0), cm_stmt_text(st, 1));
    return -EBUSY;
}

int br_job_hosts_claim(CmDb *db, int64_t job_id, const BrJobLease *lease, const int64_t *hosts,
                       size_t n, CmError *err)
{
    char at[CM_TIME_ISO_LEN + 1];
    _cleanup_stmt_ CmStmt *st = NULL;
    int r;

    cm_time_iso(lease->now_ms, at);
    /* A claim counts while its job's lease lives; one whose job is no longer leased by the
     * claimant is free for the taking. */
    st = cm_db_prepare(
        db,
        "INSERT INTO host_claims(host_id, job_id, node, claimed_at) VALUES (?1, ?2, ?3, ?4)"
        " ON CONFLICT (host_id) DO UPDATE SET job_id = excluded.job_id, node = excluded.node,"
        " claimed_at = excluded.claimed_at WHERE host_claims.job_id = excluded.job_id"
        " OR NOT EXISTS (SELECT 1 FROM jobs j WHERE j.id = host_claims.job_id"
        " AND j.lease_owner = host_claims.node AND j.lease_until >= ?5)",
        err);
    if (!st)
        return -EIO;
    for (size_t i = 0; i < n; i++) {
        CM_DB_BIND(st, hosts[i], job_id, lease->node, at, lease->now_ms);
        r = cm_stmt_exec(st, err);
        if (r < 0)
            return r;
        if (cm_stmt_changes(st) == 0)
            return host_claimed(db, hosts[i], err);
    }
    return 0;
}

int br_job_next_step(CmDb *db, int64_t job_id, BrStepRow *ret, CmError *err)
{
    _cleanup_stmt_ CmStmt *st =
        cm_db_prepare(db,
                      "SELECT s.seq, s.action, coalesce(s.instance_id, 0), s.arg, s.spec,"
                      " s.attempts, coalesce(i.host_id, 0) FROM job_steps s"
                      " LEFT JOIN instances i ON i.id = s.instance_id WHERE s.job_id = ?1"
                      " AND s.state != 'done' ORDER BY s.seq LIMIT 1",
                      err);
    int r;

    if (!st)
        return -EIO;
    CM_DB_BIND(st, job_id);
    r = cm_stmt_step(st, err);
    if (r <= 0)
        return r;
    *ret = (BrStepRow){
        .seq = (int)cm_stmt_int(st, 0),
        .action = (BrStepAction)br_step_action_from_string(cm_stmt_text(st, 1)),
        .instance_id = cm_stmt_int(st, 2),
        .arg = cm_stmt_int(st, 3),
        .attempts = cm_stmt_int(st, 5),
        .host_id = cm_stmt_int(st, 6),
    };
    snprintf(ret->spec, sizeof(ret->spec), "%s", cm_stmt_text(st, 4) ? cm_stmt_text(st, 4) : "");
    return 1;
}

int br_job_hosts(CmDb *db, int64_t job_id, int64_t **ret, size_t *ret_n, CmError *err)
{
    _cleanup_stmt_ CmStmt *st = cm_db_prepare(db,
                                              "SELECT DISTINCT i.host_id FROM job_steps s"
                                              " JOIN instances i ON i.id = s.instance_id"
                                              " WHERE s.job_id = ?1 AND s.state != 'done'"
                                              " AND i.host_id IS NOT NULL ORDER BY i.host_id",
                                              err);

    if (!st)
        return -EIO;
    CM_DB_BIND(st, job_id);
    return cm_stmt_ints(st, ret, ret_n, err);
}

/* Runs @sql with the job ?1, the time now ?2, and @seq ?3 when it is >= 0. */
static int job_exec(CmDb *db, const char *sql, int64_t job_id, int64_t seq, CmError *err)
{
    char at[CM_TIME_ISO_LEN + 1];
    _cleanup_stmt_ CmStmt *st = cm_db_prepare(db, sql, err);

    if (!st)
        return -EIO;
    cm_time_iso(cm_now_ms(), at);
    CM_DB_BIND(st, job_id, at);
    if (seq >= 0)
        cm_stmt_bind_i64(st, 3, seq);
    return cm_stmt_exec(st, err);
}

int br_job_set_running(CmDb *db, int64_t job_id, CmError *err)
{
    return job_exec(db, "UPDATE jobs SET state = 'running', started_at = ?2 WHERE id = ?1", job_id,
                    -1, err);
}

int br_job_set_done(CmDb *db, int64_t job_id, CmError *err)
{
    return job_exec(db,
                    "UPDATE jobs SET state = 'done', finished_at = ?2, error = NULL"
                    " WHERE id = ?1 AND state = 'running'",
                    job_id, -1, err);
}

int br_job_fail(CmDb *db, int64_t job_id, int seq, const char *why, CmError *err)
{
    char at[CM_TIME_ISO_LEN + 1];
    _cleanup_stmt_ CmStmt *st = NULL;
    int r;

    cm_time_iso(cm_now_ms(), at);
    if (seq >= 0) {
        st = cm_db_prepare(db,
                           "UPDATE job_steps SET state = 'error', error = ?3, finished_at = ?2"
                           " WHERE job_id = ?1 AND seq = ?4",
                           err);
        if (!st)
            return -EIO;
        CM_DB_BIND(st, job_id, at, why, (int64_t)seq);
        r = cm_stmt_exec(st, err);
        if (r < 0)
            return r;
    }
    st = cm_db_prepare(
        db, "UPDATE jobs SET state = 'error', error = ?3, finished_at = ?2 WHERE id = ?1", err);
    if (!st)
        return -EIO;
    CM_DB_BIND(st, job_id, at, why);
    return cm_stmt_exec(st, err);
}

int br_job_step_start(CmDb *db, int64_t job_id, int seq, const char *node, CmError *err)
{
    char at[CM_TIME_ISO_LEN + 1];
    _cleanup_stmt_ CmStmt *st = cm_db_prepare(db,
                                              "UPDATE job_steps SET state = 'running',"
                                              " attempts = attempts + 1, started_at = ?2,"
                                              " node = ?4 WHERE job_id = ?1 AND seq = ?3",
                                              err);

    if (!st)
        return -EIO;
    cm_time_iso(cm_now_ms(), at);
    CM_DB_BIND(st, job_id, at, (int64_t)seq, node);
    return cm_stmt_exec(st, err);
}

int br_job_step_done(CmDb *db, int64_t job_id, int seq, CmError *err)
{
    return job_exec(db,
                    "UPDATE job_steps SET state = 'done', error = NULL, finished_at = ?2"
                    " WHERE job_id = ?1 AND seq = ?3",
                    job_id, seq, err);
}

int br_job_step_wait(CmDb *db, int64_t job_id, const char *why, const char *not_before,
                     CmError *err)
{
    _cleanup_stmt_ CmStmt *st = cm_db_prepare(db,
                                              "UPDATE job_steps SET state = 'pending', error = ?2"
                                              " WHERE job_id = ?1 AND state = 'running'",
                                              err);
    int r;

    if (!st)
        return -EIO;
    CM_DB_BIND(st, job_id, why);
    r = cm_stmt_exec(st, err);
    if (r < 0)
        return r;
    st = cm_db_prepare(db, "UPDATE jobs SET not_before = ?2 WHERE id = ?1", err);
    if (!st)
        return -EIO;
    CM_DB_BIND(st, job_id, not_before);
    return cm_stmt_exec(st, err);
}

int br_job_later(CmDb *db, int64_t allocation_id, int64_t job_id, int64_t *ret_id,
                 BrJobKind *ret_kind, CmError *err)
{
    _cleanup_stmt_ CmStmt *st = cm_db_prepare(db,
                                              "SELECT id, kind FROM jobs WHERE allocation_id = ?1"
                                              " AND id > ?2 ORDER BY id DESC LIMIT 1",
                                              err);
    int r;

    if (!st)
        return -EIO;
    CM_DB_BIND(st, allocation_id, job_id);
    r = cm_stmt_step(st, err);
    if (r < 0)
        return r;
    *ret_id = r ? cm_stmt_int(st, 0) : 0;
    if (r)
        *ret_kind = (BrJobKind)br_job_kind_from_string(cm_stmt_text(st, 1));
    return 0;
}

int br_job_open_for(CmDb *db, int64_t allocation_id, BrJobKind kind, CmError *err)
{
    _cleanup_stmt_ CmStmt *st = cm_db_prepare(db,
                                              "SELECT 1 FROM jobs WHERE allocation_id = ?1"
                                              " AND kind = ?2 AND state IN ('queued','running')",
                                              err);

    if (!st)
        return -EIO;
    CM_DB_BIND(st, allocation_id, br_job_kind_to_string(kind));
    return cm_stmt_step(st, err);
}

int br_job_has_step(CmDb *db, int64_t job_id, BrStepAction action, CmError *err)
{
    _cleanup_stmt_ CmStmt *st =
        cm_db_prepare(db, "SELECT 1 FROM job_steps WHERE job_id = ?1 AND action = ?2 LIMIT 1", err);

    if (!st)
        return -EIO;
    CM_DB_BIND(st, job_id, br_step_action_to_string(action));
    return cm_stmt_step(st, err);
}

/* The API document's columns, in its keys' order; the allocation names the department. */
#define JOB_COLUMNS                                                                                \
    "j.id, j.kind, j.state, j.request_id, j.allocation_id, a.department_id,"                       \
    " (SELECT d.name FROM departments d WHERE d.id = a.department_id) AS department_name,"         \
    " a.system_id, (SELECT s.name FROM systems s WHERE s.id = a.system_id) AS system_name,"        \
    " j.error, j.created_at, j.started_at, j.finished_at, j.not_before AS retry_at,"               \
    " j.attempts AS retries,"                                                                      \
    " (SELECT count(*) FROM job_steps s WHERE s.job_id = j.id AND s.state = 'done')"               \
    " AS \"progress.done\","                                                                       \
    " (SELECT count(*) FROM job_steps s WHERE s.job_id = j.id) AS \"progress.total\","             \
    " (SELECT CASE WHEN count(*) = 0 THEN 100 ELSE"                                                \
    " sum(CASE WHEN s.state = 'done' THEN 1 ELSE 0 END) * 100 / count(*) END"                      \
    " FROM job_steps s WHERE s.job_id = j.id) AS \"progress.percent\""                             \
    " FROM jobs j LEFT JOIN allocations a ON a.id = j.allocation_id"

int br_job_list(CmDb *db, const BrJobFilter *f, const BrPage *page, json_object **ret, CmError *err)
{
    _cleanup_stmt_ CmStmt *st =
        cm_db_prepare(db,
                      "SELECT " JOB_COLUMNS " WHERE j.id > ?1 AND (j.state = ?2 OR ?2 IS NULL)"
                      " AND (?3 = 0 OR j.request_id = ?3) AND (?4 = 0 OR j.allocation_id = ?4)"
                      " AND (?5 = 0 OR a.department_id = ?5) ORDER BY j.id LIMIT ?6",
                      err);

    if (!st)
        return -EIO;
    CM_DB_BIND(st, page->after, f->state, f->request, f->allocation, f->department, page->limit);
    return cm_stmt_rows_json(st, ret, err);
}

int br_job_list_for_request(CmDb *db, int64_t request_id, json_object **ret, CmError *err)
{
    _cleanup_stmt_ CmStmt *st = cm_db_prepare(
        db, "SELECT id, kind, state, error FROM jobs WHERE request_id = ?1 ORDER BY id", err);

    if (!st)
        return -EIO;
    CM_DB_BIND(st, request_id);
    return cm_stmt_rows_json(st, ret, err);
}

typedef struct {
    int64_t id, department;
    json_object *out;
} JobGet;

static int job_get_tx(BrTx *tx, void *ctx)
{
    JobGet *g = ctx;
    _cleanup_stmt_ CmStmt *st = cm_db_prepare(
        tx->db, "SELECT " JOB_COLUMNS " WHERE j.id = ?1 AND (?2 = 0 OR a.department_id = ?2)",
        tx->err);
    json_object *steps;
    int r;

    if (!st)
        return -EIO;
    CM_DB_BIND(st, g->id, g->department);
    r = cm_stmt_step(st, tx->err);
    if (r < 0)
        return r;
    if (r == 0)
        return cm_error_set(tx->err, CM_ERROR_NOT_FOUND, "", "no job with id %lld",
                            (long long)g->id);
    g->out = cm_stmt_row_json(st);
    cm_stmt_reset(st);
    st = cm_db_prepare(tx->db,
                       "SELECT st.seq, st.action, st.instance_id, i.name AS instance_name,"
                       " i.host_id, h.name AS host_name, st.arg, st.state, st.attempts,"
                       " st.error, st.started_at, st.finished_at FROM job_steps st"
                       " LEFT JOIN instances i ON i.id = st.instance_id"
                       " LEFT JOIN hosts h ON h.id = i.host_id WHERE st.job_id = ?1"
                       " ORDER BY st.seq",
                       tx->err);
    if (!st)
        return -EIO;
    CM_DB_BIND(st, g->id);
    r = cm_stmt_rows_json(st, &steps, tx->err);
    if (r < 0)
        return r;
    json_object_object_add(g->out, "steps", steps);
    return 0;
}

int br_job_get_tx(BrTx *tx, int64_t id, int64_t department, json_object **ret)
{
    JobGet g = {.id = id, .department = department};
    int r = job_get_tx(tx, &g);

    if (r < 0) {
        json_object_put(g.out);
        return r;
    }
    *ret = g.out;
    return 0;
}

int br_job_get(BrStore *s, int64_t id, int64_t department, json_object **ret, CmError *err)
{
    JobGet g = {.id = id, .department = department};
    int r = br_tx_read(s, "job.get", job_get_tx, &g, err);

    if (r < 0) {
        json_object_put(g.out);
        return r;
    }
    *ret = g.out;
    return 0;
}
