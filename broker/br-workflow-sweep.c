/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The sweeper (a pass every 2 s of the job engine's sweeper thread): trials past their
 * deadline become trial_failed with a trial_reclaim job, retained allocations whose purge is
 * near are told of once, and those past retained_until get a purge job.
 */
#include <errno.h>
#include <stdlib.h>

#include "br-daemon.h"
#include "br-notification.h"
#include "br-workflow.h"
#include "cm-json.h"
#include "cm-log.h"
#include "cm-time.h"
#include "cm-util.h"

/* How many of each the sweeper takes in one pass. */
#define SWEEP_BATCH 64

/* How long before a retained allocation is purged its department and the bureau are told. */
#define PURGE_NOTICE_MS (7 * 86400000LL)

typedef struct {
    BrDaemon *d;
    int64_t id, job;
    const BrAllocationPurgeSoon *soon;
    const char *dedup;
} Sweep;

static int trial_timeout_tx(BrTx *tx, void *ctx)
{
    Sweep *w = ctx;
    int r = br_request_set_state(tx->store, tx->db, tx->actor, w->id, BR_REQUEST_KIND_NEW,
                                 BR_REQUEST_STATE_IN_TRIAL, BR_REQUEST_STATE_TRIAL_FAILED,
                                 "request.trial_timeout",
                                 "the trial time ran out before all three tests passed", tx->err);
    if (r < 0)
        return r;
    return br_workflow_plan_trial_reclaim(w->d, tx->db, tx->actor, w->id, &w->job, tx->err);
}

static int purge_tx(BrTx *tx, void *ctx)
{
    Sweep *w = ctx;
    return br_workflow_plan_purge(w->d, tx->db, tx->actor, w->id, &w->job, tx->err);
}

static int purge_soon_tx(BrTx *tx, void *ctx)
{
    Sweep *w = ctx;
    _cleanup_json_ json_object *detail = json_object_new_object();
    json_object_object_add(detail, "retained_until",
                           json_object_new_string(w->soon->retained_until));
    BrNotice n = {.kind = BR_NOTIFY_PURGE_SOON,
                  .to = BR_TO_DEPARTMENT | BR_TO_REVIEWERS,
                  .object_type = "allocation",
                  .object_id = w->soon->id,
                  .object_name = w->soon->system_name,
                  .department_id = w->soon->department_id,
                  .detail = detail,
                  .dedup = w->dedup};
    int r = br_notification_raise(tx->db, &w->d->notify, tx->actor, &n, tx->err);
    return r < 0 ? r : 0;
}

/* Retained allocations whose purge is near: told once per retention. Returns: how many. */
static int notify_purge_soon(BrDaemon *d, CmDb *db, const char *now)
{
    BrAllocationPurgeSoon due[16];
    char soon[CM_TIME_ISO_LEN + 1];
    CmError err = {0};
    int n, told = 0;

    cm_time_iso(cm_now_ms() + PURGE_NOTICE_MS, soon);
    n = br_allocation_purge_soon(db, now, soon, due, ELEMENTSOF(due), &err);
    for (int i = 0; i < n; i++) {
        _cleanup_free_ char *dedup = NULL;
        Sweep w = {.d = d, .soon = &due[i]};

        if (due[i].system_name && due[i].retained_until)
            dedup =
                cm_strdup_printf("purge_soon:%lld:%s", (long long)due[i].id, due[i].retained_until);
        w.dedup = dedup;
        if (dedup && br_notification_seen(db, dedup, &err) == 0) {
            if (br_tx_run(d->store, "allocation.purge_soon", NULL, purge_soon_tx, &w, &err) >= 0)
                told++;
            else
                cm_log_error("allocation %lld: cannot tell of the purge: %s", (long long)due[i].id,
                             err.message);
        }
        free(due[i].system_name);
        free(due[i].retained_until);
    }
    return told;
}

int br_workflow_sweep(BrDaemon *d)
{
    char now[CM_TIME_ISO_LEN + 1];
    int64_t ids[SWEEP_BATCH];
    CmError err = {0};
    CmDb *db = br_store_db(d->store, &err);
    size_t n = 0;
    int r, made = 0;

    if (!db)
        return 0;
    cm_time_iso(cm_now_ms(), now);

    /* Trials whose time ran out before all three tests passed. */
    if (br_request_overdue_trials(db, now, ids, SWEEP_BATCH, &n, &err) < 0)
        n = 0;
    for (size_t i = 0; i < n; i++) {
        Sweep w = {.d = d, .id = ids[i]};
        if (br_tx_run(d->store, "request.trial_timeout", NULL, trial_timeout_tx, &w, &err) >= 0)
            made++;
        else
            cm_log_error("request %lld: cannot end the overdue trial: %s", (long long)ids[i],
                         err.message);
    }

    made += notify_purge_soon(d, db, now);

    /* Retention over: purge. */
    r = br_allocation_due_purge(db, now, ids, SWEEP_BATCH, &err);
    n = r < 0 ? 0 : (size_t)r;
    for (size_t i = 0; i < n; i++) {
        Sweep w = {.d = d, .id = ids[i]};
        if (br_tx_run(d->store, "allocation.purge", NULL, purge_tx, &w, &err) >= 0) {
            made++;
            cm_log_notice("allocation %lld: retention ended; purge job %lld", (long long)ids[i],
                          (long long)w.job);
        }
    }
    return made;
}
