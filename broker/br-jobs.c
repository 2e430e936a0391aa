/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "br-daemon.h"
#include "br-hostlock.h"
#include "br-instance.h"
#include "br-jobs.h"
#include "br-steps.h"
#include "br-workflow.h"
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

#define MAX_WORKERS 32
#define MAX_EXECUTING 256
#define SWEEP_INTERVAL_MS 2000

struct BrJobs {
    BrDaemon *d;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stopping;
    bool kicked;
    pthread_t workers[MAX_WORKERS];
    unsigned n_workers;
    pthread_t sweeper;
    int64_t executing[MAX_EXECUTING];
    size_t n_executing;
    BrHostLocks host_locks; /* under lock */
    atomic_uint_fast64_t done, failed;
};

int br_step_list_add(BrStepList *l, BrStepAction action, int64_t instance_id, int64_t arg,
                     const char *spec)
{
    if (l->n == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 16;
        BrStepSpec *ns = realloc(l->steps, ncap * sizeof(*ns));
        char **no = realloc(l->owned, ncap * sizeof(*no));
        if (!ns || !no) {
            free(ns == l->steps ? NULL : ns);
            return -ENOMEM;
        }
        l->steps = ns;
        l->owned = no;
        l->cap = ncap;
    }
    char *copy = spec ? strdup(spec) : NULL;
    if (spec && !copy)
        return -ENOMEM;
    if (copy)
        l->owned[l->n_owned++] = copy;
    l->steps[l->n++] = (BrStepSpec){action, instance_id, arg, copy};
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
    sqlite3_stmt *stmt;
    int64_t id;
    int r;

    cm_time_iso(cm_now_ms(), at);
    stmt = cm_db_stmt(db,
                      "INSERT INTO jobs(kind, state, request_id, allocation_id, created_at)"
                      " VALUES (?, 'queued', nullif(?, 0), nullif(?, 0), ?)",
                      err);
    if (!stmt)
        return -EIO;
    CM_DB_BIND(stmt, br_job_kind_to_string(kind), request_id, allocation_id, at);
    r = cm_db_step_done(db, stmt, err);
    if (r < 0)
        return r;
    id = cm_db_last_insert_id(db);
    stmt = cm_db_stmt(db,
                      "INSERT INTO job_steps(job_id, seq, action, instance_id, arg, spec, state)"
                      " VALUES (?, ?, ?, nullif(?, 0), ?, ?, 'pending')",
                      err);
    if (!stmt)
        return -EIO;
    for (size_t i = 0; i < steps->n; i++) {
        const BrStepSpec *s = &steps->steps[i];
        CM_DB_BIND(stmt, id, (int64_t)i, br_step_action_to_string(s->action), s->instance_id,
                   s->arg, s->spec);
        r = cm_db_step_done(db, stmt, err);
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

int br_job_load(CmDb *db, int64_t id, BrJobRow *ret, CmError *err)
{
    sqlite3_stmt *stmt = cm_db_stmt(db,
                                    "SELECT kind, state, coalesce(request_id, 0),"
                                    " coalesce(allocation_id, 0), attempts, created_at,"
                                    " coalesce(started_at, '') FROM jobs WHERE id = ?",
                                    err);
    int r;
    if (!stmt)
        return -EIO;
    CM_DB_BIND(stmt, id);
    r = cm_db_step_row(db, stmt, err);
    if (r > 0) {
        memset(ret, 0, sizeof(*ret));
        ret->id = id;
        ret->kind = (BrJobKind)br_job_kind_from_string(cm_db_col_text(stmt, 0));
        ret->state = (BrJobState)br_job_state_from_string(cm_db_col_text(stmt, 1));
        ret->request_id = sqlite3_column_int64(stmt, 2);
        ret->allocation_id = sqlite3_column_int64(stmt, 3);
        ret->attempts = sqlite3_column_int64(stmt, 4);
        snprintf(ret->created_at, sizeof(ret->created_at), "%s", cm_db_col_text(stmt, 5));
        snprintf(ret->started_at, sizeof(ret->started_at), "%s", cm_db_col_text(stmt, 6));
    }
    sqlite3_reset(stmt);
    if (r == 0) {
        cm_error_set(err, CM_ERROR_NOT_FOUND, "", "no job %lld", (long long)id);
        return -ENOENT;
    }
    return r < 0 ? r : 0;
}

int br_job_reopen(BrStore *store, CmDb *db, const BrActor *actor, int64_t id, bool reserve_again,
                  const char *comment, int64_t replaced, CmError *err)
{
    _cleanup_json_ json_object *detail = json_object_new_object();
    _cleanup_free_ char *previous = NULL;
    sqlite3_stmt *stmt;
    int r;

    stmt = cm_db_stmt(db, "SELECT error FROM jobs WHERE id = ? AND state = 'error'", err);
    if (!stmt)
        return -EIO;
    CM_DB_BIND(stmt, id);
    r = cm_db_step_row(db, stmt, err);
    if (r > 0 && cm_db_col_text(stmt, 0))
        previous = strdup(cm_db_col_text(stmt, 0));
    sqlite3_reset(stmt);
    if (r == 0)
        return cm_error_set_code(err, CM_ERROR_CONFLICT, "invalid_state", "state",
                                 "job %lld has not failed; only a failed job is retried",
                                 (long long)id);
    if (r < 0)
        return r;
    /* The failed step runs again; done steps stay done (they are idempotent and their effect
     * exists), and the reserve step places again what went back to placement. */
    stmt = cm_db_stmt(db,
                      "UPDATE job_steps SET state = 'pending', error = NULL, started_at = NULL,"
                      " finished_at = NULL"
                      " WHERE job_id = ?1 AND (state = 'error' OR (?2 AND action = 'reserve'))",
                      err);
    if (!stmt)
        return -EIO;
    CM_DB_BIND(stmt, id, (int64_t)reserve_again);
    r = cm_db_step_done(db, stmt, err);
    if (r < 0)
        return r;
    /* jobs.attempts counts the retries asked for (the column was unused before them). */
    stmt = cm_db_stmt(db,
                      "UPDATE jobs SET state = 'queued', error = NULL, started_at = NULL,"
                      " finished_at = NULL, not_before = NULL, attempts = attempts + 1"
                      " WHERE id = ? AND state = 'error'",
                      err);
    if (!stmt)
        return -EIO;
    CM_DB_BIND(stmt, id);
    r = cm_db_step_done(db, stmt, err);
    if (r < 0)
        return r;
    json_object_object_add(detail, "previous_error",
                           previous ? json_object_new_string(previous) : NULL);
    if (comment && *comment)
        json_object_object_add(detail, "comment", json_object_new_string(comment));
    json_object_object_add(detail, "replaced_instances", json_object_new_int64(replaced));
    r = br_store_audit(store, db, actor, "job.retry", "job", id, "queued",
                       cm_json_to_string(detail, NULL), err);
    if (r >= 0)
        cm_log_notice("job %lld retried by %s (was: %s)", (long long)id, actor->name,
                      previous ? previous : "-");
    return r;
}

/* ---- host locks: one job at a time per host, all of a job's hosts at once ---- */

static bool host_held(BrJobs *j, int64_t host_id, int64_t job_id)
{
    pthread_mutex_lock(&j->lock);
    bool held = br_host_locks_holds(&j->host_locks, job_id, host_id);
    pthread_mutex_unlock(&j->lock);
    return held;
}

/*
 * Takes every host that the job's remaining steps act on, or none (br-hostlock.h says why:
 * no job holds a host while it waits for another, and the oldest waiting job goes first).
 * The set is read afresh each time: it is known once the reserve step has placed the
 * instances, and only shrinks as steps are done.
 * Returns: 1 when the job holds them all, 0 when it must wait, or a negative errno.
 */
static int hosts_take(BrJobs *j, CmDb *db, const BrJobRow *job, CmError *err)
{
    _cleanup_free_ int64_t *hosts = NULL;
    size_t n = 0, cap = 0;
    int64_t blocker = 0;
    sqlite3_stmt *stmt = cm_db_stmt(db,
                                    "SELECT DISTINCT i.host_id FROM job_steps s"
                                    " JOIN instances i ON i.id = s.instance_id"
                                    " WHERE s.job_id = ? AND s.state != 'done'"
                                    " AND i.host_id IS NOT NULL ORDER BY i.host_id",
                                    err);
    int r;

    if (!stmt)
        return -EIO;
    CM_DB_BIND(stmt, job->id);
    while ((r = cm_db_step_row(db, stmt, err)) > 0) {
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 8;
            int64_t *nh = realloc(hosts, ncap * sizeof(*nh));
            if (!nh) {
                r = cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
                break;
            }
            hosts = nh;
            cap = ncap;
        }
        hosts[n++] = sqlite3_column_int64(stmt, 0);
    }
    sqlite3_reset(stmt);
    if (r < 0)
        return r;
    pthread_mutex_lock(&j->lock);
    r = br_host_locks_acquire(&j->host_locks, job->id, hosts, n, cm_now_ms());
    for (size_t i = 0; r == 0 && i < n && !blocker; i++)
        blocker = br_host_locks_holder(&j->host_locks, hosts[i]);
    pthread_mutex_unlock(&j->lock);
    if (r == 0 && blocker)
        cm_log_debug("job %lld waits for its %zu hosts: job %lld holds one", (long long)job->id, n,
                     (long long)blocker);
    else if (r == 0)
        cm_log_debug("job %lld waits for its %zu hosts: an older job waits for one",
                     (long long)job->id, n);
    if (r == -ENOMEM)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    return r;
}

static void host_unlock_all(BrJobs *j, int64_t job_id)
{
    pthread_mutex_lock(&j->lock);
    br_host_locks_release(&j->host_locks, job_id);
    pthread_cond_broadcast(&j->wake);
    pthread_mutex_unlock(&j->lock);
}

/* ---- recording ---- */

static int job_write(BrJobs *j, const char *sql, int64_t job_id, const char *text, CmError *err)
{
    CmDb *db;
    int r = br_store_write_begin(j->d->store, &db, err);
    if (r < 0)
        return r;
    sqlite3_stmt *stmt = cm_db_stmt(db, sql, err);
    r = stmt ? 0 : -EIO;
    if (r >= 0) {
        char at[CM_TIME_ISO_LEN + 1];
        cm_time_iso(cm_now_ms(), at);
        CM_DB_BIND(stmt, job_id, text, at);
        r = cm_db_step_done(db, stmt, err);
    }
    if (r < 0) {
        br_store_write_abort(j->d->store, db);
        return r;
    }
    return br_store_write_commit(j->d->store, db, err);
}

static int step_mark_done(BrJobs *j, const BrJobRow *job, const BrStepRow *step,
                          int new_instance_state, CmError *err)
{
    char at[CM_TIME_ISO_LEN + 1];
    CmDb *db;
    int r = br_store_write_begin(j->d->store, &db, err);
    if (r < 0)
        return r;
    cm_time_iso(cm_now_ms(), at);
    sqlite3_stmt *stmt = cm_db_stmt(db,
                                    "UPDATE job_steps SET state = 'done', error = NULL,"
                                    " finished_at = ? WHERE job_id = ? AND seq = ?",
                                    err);
    r = stmt ? 0 : -EIO;
    if (r >= 0) {
        CM_DB_BIND(stmt, at, job->id, step->seq);
        r = cm_db_step_done(db, stmt, err);
    }
    if (r >= 0 && new_instance_state >= 0 && step->instance_id)
        r = br_instance_set_state(db, step->instance_id, (BrInstanceState)new_instance_state, err);
    if (r >= 0)
        r = br_steps_record(db, step, err);
    if (r < 0) {
        br_store_write_abort(j->d->store, db);
        return r;
    }
    return br_store_write_commit(j->d->store, db, err);
}

/* A permanent failure: the step, the job, and the workflow's objects, in one transaction. */
static void job_fail(BrJobs *j, const BrJobRow *job, const BrStepRow *step, const char *why)
{
    CmError err = {0};
    char at[CM_TIME_ISO_LEN + 1];
    CmDb *db;

    cm_log_error("job %lld (%s): step %d %s failed: %s", (long long)job->id,
                 br_job_kind_to_string(job->kind), step ? step->seq : -1,
                 step ? br_step_action_to_string(step->action) : "-", why);
    if (br_store_write_begin(j->d->store, &db, &err) < 0)
        return;
    cm_time_iso(cm_now_ms(), at);
    int r = 0;
    sqlite3_stmt *stmt;
    if (step) {
        stmt = cm_db_stmt(db,
                          "UPDATE job_steps SET state = 'error', error = ?, finished_at = ?"
                          " WHERE job_id = ? AND seq = ?",
                          &err);
        r = stmt ? 0 : -EIO;
        if (r >= 0) {
            CM_DB_BIND(stmt, why, at, job->id, step->seq);
            r = cm_db_step_done(db, stmt, &err);
        }
    }
    stmt = cm_db_stmt(
        db, "UPDATE jobs SET state = 'error', error = ?, finished_at = ? WHERE id = ?", &err);
    if (r >= 0 && stmt) {
        CM_DB_BIND(stmt, why, at, job->id);
        r = cm_db_step_done(db, stmt, &err);
    }
    if (r >= 0)
        r = br_workflow_fail(j->d, db, job, why, &err);
    if (r >= 0) {
        _cleanup_json_ json_object *detail = json_object_new_object();
        json_object_object_add(detail, "error", json_object_new_string(why));
        r = br_store_audit(j->d->store, db, br_actor_system(), "job.error", "job", job->id, "error",
                           cm_json_to_string(detail, NULL), &err);
    }
    if (r < 0) {
        cm_log_error("job %lld: cannot record the failure: %s", (long long)job->id, err.message);
        br_store_write_abort(j->d->store, db);
        return;
    }
    if (br_store_write_commit(j->d->store, db, &err) >= 0)
        atomic_fetch_add(&j->failed, 1);
}

static int load_next_step(CmDb *db, const BrJobRow *job, BrStepRow *ret, CmError *err)
{
    sqlite3_stmt *stmt = cm_db_stmt(db,
                                    "SELECT s.seq, s.action, coalesce(s.instance_id, 0), s.arg,"
                                    " s.spec, s.attempts, coalesce(i.host_id, 0)"
                                    " FROM job_steps s LEFT JOIN instances i"
                                    " ON i.id = s.instance_id WHERE s.job_id = ?"
                                    " AND s.state != 'done' ORDER BY s.seq LIMIT 1",
                                    err);
    int r;
    if (!stmt)
        return -EIO;
    CM_DB_BIND(stmt, job->id);
    r = cm_db_step_row(db, stmt, err);
    if (r > 0) {
        memset(ret, 0, sizeof(*ret));
        ret->seq = sqlite3_column_int(stmt, 0);
        ret->action = (BrStepAction)br_step_action_from_string(cm_db_col_text(stmt, 1));
        ret->instance_id = sqlite3_column_int64(stmt, 2);
        ret->arg = sqlite3_column_int64(stmt, 3);
        snprintf(ret->spec, sizeof(ret->spec), "%s",
                 cm_db_col_text(stmt, 4) ? cm_db_col_text(stmt, 4) : "");
        ret->attempts = sqlite3_column_int64(stmt, 5);
        ret->host_id = sqlite3_column_int64(stmt, 6);
    }
    sqlite3_reset(stmt);
    return r;
}

static int64_t seconds_since(const char *iso)
{
    int64_t t;
    if (!iso || !*iso || cm_time_parse_iso(iso, &t) < 0)
        return 0;
    return (cm_now_ms() - t) / 1000;
}

/* Runs @job's steps until it ends, waits for a host, or must be retried later. */
static void run_job(BrJobs *j, BrJobRow *job)
{
    CmError err = {0};
    CmDb *db = br_store_db(j->d->store, &err);

    if (!db)
        return;
    if (job->state == BR_JOB_QUEUED) {
        if (job_write(j,
                      "UPDATE jobs SET state = 'running', started_at = ?3 WHERE id = ?1"
                      " AND ?2 IS NULL",
                      job->id, NULL, &err) < 0)
            return;
        job->state = BR_JOB_RUNNING;
        cm_time_iso(cm_now_ms(), job->started_at);
        cm_log_info("job %lld (%s) started", (long long)job->id, br_job_kind_to_string(job->kind));
    }

    for (;;) {
        BrStepRow step;
        int r;

        pthread_mutex_lock(&j->lock);
        bool stopping = j->stopping;
        pthread_mutex_unlock(&j->lock);
        if (stopping)
            return;

        cm_error_clear(&err);
        r = load_next_step(db, job, &step, &err);
        if (r < 0)
            return;
        if (r == 0) {
            /* Every step is done (the finish step ends the job in its transaction). */
            job_write(j,
                      "UPDATE jobs SET state = 'done', finished_at = ?3 WHERE id = ?1"
                      " AND state = 'running' AND ?2 IS NULL",
                      job->id, NULL, &err);
            host_unlock_all(j, job->id);
            return;
        }
        if (step.host_id && !host_held(j, step.host_id, job->id)) {
            r = hosts_take(j, db, job, &err);
            if (r < 0) {
                cm_log_error("job %lld: cannot take its hosts: %s", (long long)job->id,
                             err.message);
                return;
            }
            if (r == 0) {
                /* Another job works on one of its hosts: the job waits, holding none, and is
                 * run again as soon as its hosts are free (claim_next asks the table). */
                return;
            }
        }
        {
            char seq[16];
            snprintf(seq, sizeof(seq), "%d", step.seq);
            job_write(j,
                      "UPDATE job_steps SET state = 'running', attempts = attempts + 1,"
                      " started_at = ?3 WHERE job_id = ?1 AND seq = CAST(?2 AS INTEGER)",
                      job->id, seq, &err);
        }

        cm_error_clear(&err);
        int new_state = -1;
        r = br_steps_run(j->d, job, &step, &new_state, &err);
        if (r == BR_STEP_RESULT_RECORDED) {
            if (step.action == BR_STEP_FINISH) {
                atomic_fetch_add(&j->done, 1);
                host_unlock_all(j, job->id);
                cm_log_info("job %lld (%s) done", (long long)job->id,
                            br_job_kind_to_string(job->kind));
                return;
            }
            continue;
        }
        if (r >= 0) {
            CmError werr = {0};
            if (step_mark_done(j, job, &step, new_state, &werr) < 0) {
                cm_log_error("job %lld: cannot record step %d: %s", (long long)job->id, step.seq,
                             werr.message);
                return;
            }
            continue;
        }
        host_unlock_all(j, job->id);
        if (r == -EAGAIN && seconds_since(job->started_at) < br_workflow_retry_seconds(j->d)) {
            /* The host is away: keep the job, try again with backoff. */
            int64_t delay = 1LL << (step.attempts < 6 ? step.attempts : 6);
            char when[CM_TIME_ISO_LEN + 1], why[sizeof(err.message)];
            cm_time_iso(cm_now_ms() + delay * 1000, when);
            cm_strscpy(why, sizeof(why), err.message);
            cm_log_warning("job %lld: step %s will be retried in %llds: %s", (long long)job->id,
                           br_step_action_to_string(step.action), (long long)delay, why);
            /* ?3 (the time) is bound by job_write; these statements do not need it. */
            job_write(j,
                      "UPDATE job_steps SET state = 'pending', error = ?2 WHERE job_id = ?1"
                      " AND state = 'running' AND ?3 IS NOT NULL",
                      job->id, why, &err);
            job_write(j, "UPDATE jobs SET not_before = ?2 WHERE id = ?1 AND ?3 IS NOT NULL",
                      job->id, when, &err);
            return;
        }
        job_fail(j, job, &step, cm_error_is_set(&err) ? err.message : "step failed");
        return;
    }
}

static bool executing(BrJobs *j, int64_t id)
{
    for (size_t i = 0; i < j->n_executing; i++)
        if (j->executing[i] == id)
            return true;
    return false;
}

static void unclaim(BrJobs *j, int64_t id)
{
    pthread_mutex_lock(&j->lock);
    for (size_t i = 0; i < j->n_executing; i++)
        if (j->executing[i] == id) {
            j->executing[i] = j->executing[--j->n_executing];
            break;
        }
    pthread_cond_broadcast(&j->wake);
    pthread_mutex_unlock(&j->lock);
}

/* Picks the oldest runnable job nobody is running and claims it. A job waiting for its hosts
 * is runnable once the host table could give them all to it; the release of hosts wakes the
 * workers, so it runs at once, without polling the database. */
static bool claim_next(BrJobs *j, CmDb *db, BrJobRow *ret)
{
    char now[CM_TIME_ISO_LEN + 1];
    CmError err = {0};
    sqlite3_stmt *stmt = cm_db_stmt(db,
                                    "SELECT id, kind, state, coalesce(request_id, 0),"
                                    " coalesce(allocation_id, 0), attempts, created_at,"
                                    " coalesce(started_at, '') FROM jobs"
                                    " WHERE state IN ('queued','running')"
                                    " AND (not_before IS NULL OR not_before <= ?) ORDER BY id",
                                    &err);
    bool found = false;
    if (!stmt)
        return false;
    cm_time_iso(cm_now_ms(), now);
    CM_DB_BIND(stmt, now);
    pthread_mutex_lock(&j->lock);
    while (!found && cm_db_step_row(db, stmt, &err) > 0) {
        int64_t id = sqlite3_column_int64(stmt, 0);
        if (executing(j, id) || j->n_executing == MAX_EXECUTING)
            continue;
        /* Waiting for hosts another job holds (or an older one waits for): not yet. */
        if (br_host_locks_must_wait(&j->host_locks, id, cm_now_ms()))
            continue;
        memset(ret, 0, sizeof(*ret));
        ret->id = id;
        ret->kind = (BrJobKind)br_job_kind_from_string(cm_db_col_text(stmt, 1));
        ret->state = (BrJobState)br_job_state_from_string(cm_db_col_text(stmt, 2));
        ret->request_id = sqlite3_column_int64(stmt, 3);
        ret->allocation_id = sqlite3_column_int64(stmt, 4);
        ret->attempts = sqlite3_column_int64(stmt, 5);
        snprintf(ret->created_at, sizeof(ret->created_at), "%s", cm_db_col_text(stmt, 6));
        snprintf(ret->started_at, sizeof(ret->started_at), "%s", cm_db_col_text(stmt, 7));
        j->executing[j->n_executing++] = id;
        found = true;
    }
    pthread_mutex_unlock(&j->lock);
    sqlite3_reset(stmt);
    return found;
}

static void wait_for_work(BrJobs *j, unsigned ms)
{
    struct timespec ts;
    pthread_mutex_lock(&j->lock);
    if (!j->stopping && !j->kicked) {
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += ms / 1000;
        ts.tv_nsec += (long)(ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&j->wake, &j->lock, &ts);
    }
    j->kicked = false;
    pthread_mutex_unlock(&j->lock);
}

static void *worker(void *arg)
{
    BrJobs *j = arg;
    CmError err = {0};
    CmDb *db = br_store_db(j->d->store, &err);

    if (!db) {
        cm_log_error("job worker: %s", err.message);
        return NULL;
    }
    for (;;) {
        BrJobRow job;
        pthread_mutex_lock(&j->lock);
        bool stopping = j->stopping;
        pthread_mutex_unlock(&j->lock);
        if (stopping)
            break;
        if (!claim_next(j, db, &job)) {
            wait_for_work(j, 1000);
            continue;
        }
        run_job(j, &job);
        unclaim(j, job.id);
    }
    return NULL;
}

static void *sweeper(void *arg)
{
    BrJobs *j = arg;
    for (;;) {
        pthread_mutex_lock(&j->lock);
        bool stopping = j->stopping;
        pthread_mutex_unlock(&j->lock);
        if (stopping)
            break;
        if (br_workflow_sweep(j->d) > 0)
            br_jobs_kick(j);
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += SWEEP_INTERVAL_MS / 1000;
        pthread_mutex_lock(&j->lock);
        if (!j->stopping)
            pthread_cond_timedwait(&j->wake, &j->lock, &ts);
        pthread_mutex_unlock(&j->lock);
    }
    return NULL;
}

int br_jobs_start(BrDaemon *d, unsigned workers, BrJobs **ret, CmError *err)
{
    BrJobs *j;
    CmDb *db;
    int r;

    /* Recovery: a step that was running when we stopped runs again (steps are idempotent). */
    r = br_store_write_begin(d->store, &db, err);
    if (r < 0)
        return r;
    r = cm_db_exec(db,
                   "UPDATE job_steps SET state = 'pending' WHERE state = 'running';"
                   "UPDATE jobs SET not_before = NULL WHERE state IN ('queued','running');",
                   err);
    if (r < 0) {
        br_store_write_abort(d->store, db);
        return r;
    }
    r = br_store_write_commit(d->store, db, err);
    if (r < 0)
        return r;

    j = calloc(1, sizeof(*j));
    if (!j)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    j->d = d;
    pthread_mutex_init(&j->lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&j->wake, &attr);
    pthread_condattr_destroy(&attr);
    if (workers > MAX_WORKERS)
        workers = MAX_WORKERS;
    for (unsigned i = 0; i < workers; i++)
        if (pthread_create(&j->workers[j->n_workers], NULL, worker, j) == 0)
            j->n_workers++;
    if (pthread_create(&j->sweeper, NULL, sweeper, j) != 0) {
        *ret = j;
        br_jobs_stop(j);
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "cannot start the job sweeper");
    }
    *ret = j;
    return 0;
}

BrJobs *br_jobs_stop(BrJobs *j)
{
    if (!j)
        return NULL;
    pthread_mutex_lock(&j->lock);
    j->stopping = true;
    pthread_cond_broadcast(&j->wake);
    pthread_mutex_unlock(&j->lock);
    for (unsigned i = 0; i < j->n_workers; i++)
        pthread_join(j->workers[i], NULL);
    pthread_join(j->sweeper, NULL);
    pthread_mutex_destroy(&j->lock);
    pthread_cond_destroy(&j->wake);
    br_host_locks_clear(&j->host_locks);
    free(j);
    return NULL;
}

void br_jobs_kick(BrJobs *j)
{
    if (!j)
        return;
    pthread_mutex_lock(&j->lock);
    j->kicked = true;
    pthread_cond_broadcast(&j->wake);
    pthread_mutex_unlock(&j->lock);
}

void br_jobs_counts(BrJobs *j, uint64_t *ret_done, uint64_t *ret_failed)
{
    *ret_done = j ? atomic_load(&j->done) : 0;
    *ret_failed = j ? atomic_load(&j->failed) : 0;
}
