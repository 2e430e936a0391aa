/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "br-daemon.h"
#include "br-hosts.h"
#include "br-instance.h"
#include "br-reconciler.h"
#include "cm-log.h"
#include "cm-time.h"
#include "cm-util.h"

CM_ENUM_IMPL(br_event_kind, BrEventKind, BR_EVENT_KIND_MAX, "instance_missing", "instance_state",
             "unowned_domain")

struct BrReconciler {
    BrDaemon *d;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stopping;
    atomic_uint_fast64_t opened[BR_EVENT_KIND_MAX];
};

static BrReconciler *the_reconciler;

typedef struct {
    BrEventKind kind;
    int64_t instance_id, allocation_id;
    char uuid[37], name[128], message[256];
} Condition;

typedef struct {
    int64_t id;
    BrInstanceState state;
    int64_t allocation_id;
    bool busy; /* its allocation is in the middle of a job */
    char uuid[37], name[64], observed[16];
    bool seen;
    /* its open stretch in observations (0: none) */
    int64_t obs_id, obs_last_seen;
    char obs_state[16];
} Expected;

static const char *observed_name(BrVirtState s)
{
    return br_virt_state_to_string(s);
}

static bool should_exist(BrInstanceState s)
{
    return s == BR_INSTANCE_DEFINED || s == BR_INSTANCE_RUNNING || s == BR_INSTANCE_SHUTOFF;
}

/*
 * The history of what each instance was seen doing (observations), for availability: the
 * open stretch is extended while the state stays the same, closed and followed by a new one
 * when it changes, and closed at its last pass when the passes stopped coming for longer than
 * @max_gap seconds (the broker was down): that time counts as not observed. @doms is NULL
 * when the host could not be reached: its instances are then 'unreachable'.
 */
static int record_observations(CmDb *db, int64_t host_id, const Expected *exp, size_t n_exp,
                               const BrVirtDomain *doms, size_t n_doms, int64_t now,
                               int64_t max_gap, CmError *err)
{
    int r = 0;

    for (size_t i = 0; r >= 0 && i < n_exp; i++) {
        const Expected *e = &exp[i];
        const char *obs = doms ? "absent" : "unreachable";
        sqlite3_stmt *stmt;

        if (!should_exist(e->state)) {
            /* Ended (or not made yet): its last stretch ends where it was last seen. */
            if (!e->obs_id)
                continue;
            stmt = cm_db_stmt(db, "UPDATE observations SET until = last_seen WHERE id = ?", err);
            if (!stmt)
                return -EIO;
            CM_DB_BIND(stmt, e->obs_id);
            r = cm_db_step_done(db, stmt, err);
            continue;
        }
        for (size_t k = 0; doms && k < n_doms; k++)
            if (strcmp(doms[k].uuid, e->uuid) == 0)
                obs = observed_name(doms[k].state);
        if (e->obs_id && now - e->obs_last_seen <= max_gap && strcmp(obs, e->obs_state) == 0) {
            stmt = cm_db_stmt(db, "UPDATE observations SET last_seen = ? WHERE id = ?", err);
            if (!stmt)
                return -EIO;
            CM_DB_BIND(stmt, now, e->obs_id);
            r = cm_db_step_done(db, stmt, err);
            continue;
        }
        if (e->obs_id) {
            /* Another state: the stretch ends now. No pass for too long: it ended at its
             * last pass, and the time between is not observed. */
            stmt = cm_db_stmt(
                db, "UPDATE observations SET until = max(last_seen, ?2) WHERE id = ?1", err);
            if (!stmt)
                return -EIO;
            CM_DB_BIND(stmt, e->obs_id, now - e->obs_last_seen <= max_gap ? now : 0);
            r = cm_db_step_done(db, stmt, err);
            if (r < 0)
                return r;
        }
        stmt = cm_db_stmt(db,
                          "INSERT INTO observations(instance_id, host_id, state, since, last_seen)"
                          " VALUES (?, ?, ?, ?, ?)",
                          err);
        if (!stmt)
            return -EIO;
        CM_DB_BIND(stmt, e->id, host_id, obs, now, now);
        r = cm_db_step_done(db, stmt, err);
    }
    return r;
}

static int64_t observation_gap(BrDaemon *d)
{
    _cleanup_(br_policies_unrefp) BrPolicies *p = br_daemon_policies(d);
    return 3 * p->lifecycle.reconcile_seconds + 5;
}

/* Writes what one host showed: new and resolved events, changed observed states. */
static int record_host(BrDaemon *d, int64_t host_id, const Condition *conds, size_t n_conds,
                       const Expected *exp, size_t n_exp, const BrVirtDomain *doms,
                       size_t n_doms, int *ret_opened, CmError *err)
{
    char now[CM_TIME_ISO_LEN + 1];
    sqlite3_stmt *stmt;
    CmDb *db;
    int r, opened = 0;

    cm_time_iso(cm_now_ms(), now);
    r = br_store_write_begin(d->store, &db, err);
    if (r < 0)
        return r;

    /* The capacity last seen, so a host shows its size while it is disconnected and after
     * a restart (only written when it changed). */
    BrHostStatus st;
    if (d->hosts && br_hosts_status(d->hosts, host_id, &st) && st.capacity_known) {
        stmt = cm_db_stmt(db,
                          "UPDATE hosts SET cpus = ?2, memory_mib = ?3, disk_gib = ?4"
                          " WHERE id = ?1 AND (cpus, memory_mib, disk_gib) IS NOT (?2, ?3, ?4)",
                          err);
        if (!stmt)
            r = -EIO;
        else {
            CM_DB_BIND(stmt, host_id, st.cpus, st.memory_mib, st.disk_gib);
            r = cm_db_step_done(db, stmt, err);
        }
    }

    for (size_t i = 0; r >= 0 && i < n_conds; i++) {
        const Condition *c = &conds[i];
        stmt = cm_db_stmt(db,
                          "UPDATE events SET last_seen = ?, message = ? WHERE kind = ?"
                          " AND host_id = ? AND domain_uuid = ? AND resolved_at IS NULL",
                          err);
        if (!stmt) {
            r = -EIO;
            break;
        }
        CM_DB_BIND(stmt, now, c->message, br_event_kind_to_string(c->kind), host_id, c->uuid);
        r = cm_db_step_done(db, stmt, err);
        if (r < 0 || sqlite3_changes(cm_db_handle(db)) > 0)
            continue;
        stmt = cm_db_stmt(db,
                          "INSERT INTO events(kind, severity, host_id, instance_id,"
                          " allocation_id, domain_uuid, domain_name, message, first_seen,"
                          " last_seen) VALUES (?, ?, ?, nullif(?, 0), nullif(?, 0), ?, ?, ?, ?, ?)",
                          err);
        if (!stmt) {
            r = -EIO;
            break;
        }
        CM_DB_BIND(stmt, br_event_kind_to_string(c->kind),
                   c->kind == BR_EVENT_UNOWNED_DOMAIN ? "security" : "warning", host_id,
                   c->instance_id, c->allocation_id, c->uuid, c->name, c->message, now, now);
        r = cm_db_step_done(db, stmt, err);
        if (r >= 0) {
            opened++;
            if (the_reconciler)
                atomic_fetch_add(&the_reconciler->opened[c->kind], 1);
            cm_log_warning("reconciler: host %lld: %s: %s", (long long)host_id,
                           br_event_kind_to_string(c->kind), c->message);
        }
    }

    /* Events of this host whose condition is gone are resolved. */
    if (r >= 0) {
        sqlite3_stmt *open = cm_db_stmt(db,
                                        "SELECT id, kind, domain_uuid FROM events"
                                        " WHERE host_id = ? AND resolved_at IS NULL",
                                        err);
        int64_t resolve[128];
        size_t n_resolve = 0;
        if (!open)
            r = -EIO;
        else {
            CM_DB_BIND(open, host_id);
            while (n_resolve < 128 && sqlite3_step(open) == SQLITE_ROW) {
                const char *kind = cm_db_col_text(open, 1), *uuid = cm_db_col_text(open, 2);
                bool still = false;
                for (size_t i = 0; i < n_conds && !still; i++)
                    still = strcmp(br_event_kind_to_string(conds[i].kind), kind) == 0 && uuid &&
                            strcmp(conds[i].uuid, uuid) == 0;
                if (!still)
                    resolve[n_resolve++] = sqlite3_column_int64(open, 0);
            }
            sqlite3_reset(open);
        }
        for (size_t i = 0; r >= 0 && i < n_resolve; i++) {
            stmt = cm_db_stmt(db, "UPDATE events SET resolved_at = ? WHERE id = ?", err);
            if (!stmt) {
                r = -EIO;
                break;
            }
            CM_DB_BIND(stmt, now, resolve[i]);
            r = cm_db_step_done(db, stmt, err);
        }
    }

    if (r >= 0)
        r = record_observations(db, host_id, exp, n_exp, doms, n_doms, cm_now_ms() / 1000,
                                observation_gap(d), err);

    /* What each instance was seen doing, when that changed. */
    for (size_t i = 0; r >= 0 && i < n_exp; i++) {
        const char *obs = "absent";
        for (size_t k = 0; k < n_doms; k++)
            if (strcmp(doms[k].uuid, exp[i].uuid) == 0)
                obs = observed_name(doms[k].state);
        if (strcmp(obs, exp[i].observed) == 0)
            continue;
        stmt = cm_db_stmt(db,
                          "UPDATE instances SET observed_state = ?, observed_at = ? WHERE id = ?",
                          err);
        if (!stmt) {
            r = -EIO;
            break;
        }
        CM_DB_BIND(stmt, obs, now, exp[i].id);
        r = cm_db_step_done(db, stmt, err);
    }

    if (r < 0) {
        br_store_write_abort(d->store, db);
        return r;
    }
    r = br_store_write_commit(d->store, db, err);
    if (r >= 0)
        *ret_opened = opened;
    return r;
}

static int reconcile_host(BrDaemon *d, CmDb *db, int64_t host_id, CmError *err)
{
    _cleanup_free_ BrVirtDomain *doms = NULL;
    _cleanup_free_ Expected *exp = NULL;
    _cleanup_free_ Condition *conds = NULL;
    size_t n_doms = 0, n_exp = 0, cap = 0, n_conds = 0;
    sqlite3_stmt *stmt;
    BrVirtConn *c;
    int r, opened = 0;

    /* The database first, then the host: a domain our own job removes in between is then
     * an instance we still expect (and skip as busy), never an unowned domain. */
    stmt = cm_db_stmt(db,
                      "SELECT i.id, i.state, i.allocation_id, i.uuid, i.name,"
                      " coalesce(i.observed_state, ''),"
                      " a.state IN ('provisioning','resizing','reclaiming') OR EXISTS (SELECT 1"
                      " FROM jobs j WHERE j.allocation_id = a.id"
                      " AND j.state IN ('queued','running')),"
                      " coalesce(o.id, 0), coalesce(o.state, ''), coalesce(o.last_seen, 0)"
                      " FROM instances i JOIN allocations a ON a.id = i.allocation_id"
                      " LEFT JOIN observations o ON o.instance_id = i.id AND o.until IS NULL"
                      " WHERE i.host_id = ? AND i.state != 'deleted'",
                      err);
    if (!stmt)
        return -EIO;
    CM_DB_BIND(stmt, host_id);
    while ((r = cm_db_step_row(db, stmt, err)) > 0) {
        if (n_exp == cap) {
            cap = cap ? cap * 2 : 32;
            Expected *ne = realloc(exp, cap * sizeof(*ne));
            if (!ne) {
                r = cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
                break;
            }
            exp = ne;
        }
        Expected *e = &exp[n_exp++];
        memset(e, 0, sizeof(*e));
        e->id = sqlite3_column_int64(stmt, 0);
        e->state = (BrInstanceState)br_instance_state_from_string(cm_db_col_text(stmt, 1));
        e->allocation_id = sqlite3_column_int64(stmt, 2);
        cm_strscpy(e->uuid, sizeof(e->uuid), cm_db_col_text(stmt, 3));
        cm_strscpy(e->name, sizeof(e->name), cm_db_col_text(stmt, 4));
        cm_strscpy(e->observed, sizeof(e->observed), cm_db_col_text(stmt, 5));
        e->busy = sqlite3_column_int(stmt, 6) != 0;
        e->obs_id = sqlite3_column_int64(stmt, 7);
        cm_strscpy(e->obs_state, sizeof(e->obs_state), cm_db_col_text(stmt, 8));
        e->obs_last_seen = sqlite3_column_int64(stmt, 9);
    }
    sqlite3_reset(stmt);
    if (r < 0)
        return r;

    c = br_hosts_get(d->hosts, host_id, err);
    if (!c) {
        /* A disconnected host shows as such in GET /v1/hosts; its instances were not seen
         * running (availability), whatever they did. */
        CmDb *w;
        cm_error_clear(err);
        r = br_store_write_begin(d->store, &w, err);
        if (r < 0)
            return r;
        r = record_observations(w, host_id, exp, n_exp, NULL, 0, cm_now_ms() / 1000,
                                observation_gap(d), err);
        if (r < 0) {
            br_store_write_abort(d->store, w);
            return r;
        }
        r = br_store_write_commit(d->store, w, err);
        return r < 0 ? r : 0;
    }
    r = br_virt_list_domains(c, &doms, &n_doms, err);
    br_hosts_put(d->hosts, host_id, c);
    if (r < 0)
        return r;

    conds = calloc(n_exp + n_doms + 1, sizeof(*conds));
    if (!conds)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");

    for (size_t i = 0; i < n_exp; i++) {
        Expected *e = &exp[i];
        const BrVirtDomain *dom = NULL;
        for (size_t k = 0; k < n_doms && !dom; k++)
            if (strcmp(doms[k].uuid, e->uuid) == 0)
                dom = &doms[k];
        if (dom)
            e->seen = true;
        if (e->busy)
            continue; /* its job is changing it right now */
        bool should_exist = e->state == BR_INSTANCE_DEFINED || e->state == BR_INSTANCE_RUNNING ||
                            e->state == BR_INSTANCE_SHUTOFF;
        Condition *cd = &conds[n_conds];
        if (should_exist && !dom) {
            cd->kind = BR_EVENT_INSTANCE_MISSING;
            snprintf(cd->message, sizeof(cd->message),
                     "instance %lld (%s) should be on this host but its domain is missing",
                     (long long)e->id, e->name);
        } else if (dom && e->state == BR_INSTANCE_RUNNING &&
                   dom->state != BR_VIRT_STATE_RUNNING) {
            cd->kind = BR_EVENT_INSTANCE_STATE;
            snprintf(cd->message, sizeof(cd->message),
                     "instance %lld (%s) should be running but is %s", (long long)e->id, e->name,
                     br_virt_state_to_string(dom->state));
        } else if (dom && e->state == BR_INSTANCE_UNDEFINED) {
            /* Reclaimed by the record, yet its domain is still there: a step that was
             * told it succeeded when it had not, or someone defined it again by hand. */
            cd->kind = BR_EVENT_INSTANCE_STATE;
            snprintf(cd->message, sizeof(cd->message),
                     "instance %lld (%s) was reclaimed but its domain is still defined (%s)",
                     (long long)e->id, e->name, br_virt_state_to_string(dom->state));
        } else {
            continue;
        }
        cd->instance_id = e->id;
        cd->allocation_id = e->allocation_id;
        cm_strscpy(cd->uuid, sizeof(cd->uuid), e->uuid);
        cm_strscpy(cd->name, sizeof(cd->name), e->name);
        n_conds++;
    }

    for (size_t k = 0; k < n_doms; k++) {
        bool known = false;
        for (size_t i = 0; i < n_exp && !known; i++)
            known = strcmp(exp[i].uuid, doms[k].uuid) == 0;
        if (known)
            continue;
        /* Ours by UUID elsewhere (being moved)? Then not unowned. */
        sqlite3_stmt *any = cm_db_stmt(db,
                                       "SELECT 1 FROM instances WHERE uuid = ?"
                                       " AND state != 'deleted'",
                                       err);
        if (any) {
            CM_DB_BIND(any, doms[k].uuid);
            known = sqlite3_step(any) == SQLITE_ROW;
            sqlite3_reset(any);
        }
        if (known)
            continue;
        Condition *cd = &conds[n_conds++];
        cd->kind = BR_EVENT_UNOWNED_DOMAIN;
        cm_strscpy(cd->uuid, sizeof(cd->uuid), doms[k].uuid);
        cm_strscpy(cd->name, sizeof(cd->name), doms[k].name);
        snprintf(cd->message, sizeof(cd->message),
                 "domain '%.100s' (%s, %s) is not owned by any allocation%s", doms[k].name,
                 doms[k].uuid, br_virt_state_to_string(doms[k].state),
                 doms[k].ours ? " though it carries our metadata" : "");
    }

    r = record_host(d, host_id, conds, n_conds, exp, n_exp, doms, n_doms, &opened, err);
    return r < 0 ? r : opened;
}

int br_reconciler_run_once(BrDaemon *d, CmError *err)
{
    CmDb *db = br_store_db(d->store, err);
    int64_t ids[1024];
    size_t n = 0;
    int total = 0;
    sqlite3_stmt *stmt;

    if (!db)
        return -EIO;
    stmt = cm_db_stmt(db, "SELECT id FROM hosts ORDER BY id LIMIT 1024", err);
    if (!stmt)
        return -EIO;
    while (n < 1024 && sqlite3_step(stmt) == SQLITE_ROW)
        ids[n++] = sqlite3_column_int64(stmt, 0);
    sqlite3_reset(stmt);
    for (size_t i = 0; i < n; i++) {
        CmError herr = {0};
        int r = reconcile_host(d, db, ids[i], &herr);
        if (r < 0)
            cm_log_warning("reconciler: host %lld: %s", (long long)ids[i], herr.message);
        else
            total += r;
    }
    return total;
}

static void *reconciler_thread(void *arg)
{
    BrReconciler *rc = arg;
    pthread_mutex_lock(&rc->lock);
    while (!rc->stopping) {
        BrPolicies *p = br_daemon_policies(rc->d);
        int64_t interval = p->lifecycle.reconcile_seconds;
        br_policies_unref(p);
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += interval;
        pthread_cond_timedwait(&rc->wake, &rc->lock, &ts);
        if (rc->stopping)
            break;
        pthread_mutex_unlock(&rc->lock);
        CmError err = {0};
        br_reconciler_run_once(rc->d, &err);
        pthread_mutex_lock(&rc->lock);
    }
    pthread_mutex_unlock(&rc->lock);
    return NULL;
}

int br_reconciler_start(BrDaemon *d, BrReconciler **ret, CmError *err)
{
    BrReconciler *rc = calloc(1, sizeof(*rc));
    pthread_condattr_t attr;

    if (!rc)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    rc->d = d;
    pthread_mutex_init(&rc->lock, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&rc->wake, &attr);
    pthread_condattr_destroy(&attr);
    if (pthread_create(&rc->thread, NULL, reconciler_thread, rc) != 0) {
        free(rc);
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "cannot start the reconciler");
    }
    the_reconciler = rc;
    *ret = rc;
    return 0;
}

BrReconciler *br_reconciler_stop(BrReconciler *rc)
{
    if (!rc)
        return NULL;
    pthread_mutex_lock(&rc->lock);
    rc->stopping = true;
    pthread_cond_broadcast(&rc->wake);
    pthread_mutex_unlock(&rc->lock);
    pthread_join(rc->thread, NULL);
    if (the_reconciler == rc)
        the_reconciler = NULL;
    pthread_mutex_destroy(&rc->lock);
    pthread_cond_destroy(&rc->wake);
    free(rc);
    return NULL;
}

void br_reconciler_counts(BrReconciler *rc, uint64_t ret[BR_EVENT_KIND_MAX])
{
    for (int i = 0; i < BR_EVENT_KIND_MAX; i++)
        ret[i] = rc ? atomic_load(&rc->opened[i]) : 0;
}
