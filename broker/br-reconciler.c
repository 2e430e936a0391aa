/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "br-daemon.h"
#include "br-host.h"
#include "br-hosts.h"
#include "br-observation.h"
#include "br-reconciler-priv.h"
#include "br-reconciler.h"
#include "cm-log.h"
#include "cm-time.h"
#include "cm-util.h"
#include "cm-worker.h"

struct BrReconciler {
    BrDaemon *d;
    CmWorker *worker;
    atomic_uint_fast64_t opened[BR_EVENT_KIND_MAX];
};

static bool should_exist(BrInstanceState s)
{
    return s == BR_INSTANCE_DEFINED || s == BR_INSTANCE_RUNNING || s == BR_INSTANCE_SHUTOFF;
}

static const BrVirtDomain *domain_of(const BrVirtDomain *doms, size_t n, const char *uuid)
{
    for (size_t k = 0; k < n; k++)
        if (strcmp(doms[k].uuid, uuid) == 0)
            return &doms[k];
    return NULL;
}

static int cmp_claim(const void *a, const void *b)
{
    const BrInstanceClaim *x = a, *y = b;
    return x->id < y->id ? -1 : x->id > y->id;
}

static const BrInstanceClaim *claim_of(const BrInstanceClaim *v, size_t n, int64_t id)
{
    BrInstanceClaim key = {.id = id};
    return n ? bsearch(&key, v, n, sizeof(*v), cmp_claim) : NULL;
}

static bool uuid_claimed(const BrInstanceClaim *v, size_t n, const char *uuid)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i].uuid, uuid) == 0)
            return true;
    return false;
}

/* No job of the broker had a hand in @a between the two reads. */
static bool undisturbed(const BrInstanceClaim *a, const BrInstanceClaim *b)
{
    return b && !a->busy && !b->busy && a->host_id == b->host_id && a->state == b->state &&
           a->jobs == b->jobs && strcmp(a->jobs_end, b->jobs_end) == 0;
}

void br_findings_free(BrFinding *f, size_t n)
{
    for (size_t i = 0; f && i < n; i++)
        json_object_put(f[i].detail);
    free(f);
}

/*
 * The facts of a finding, for GET /v1/events and the reports: the state seen on the host
 * and the state the broker's records call for (running, paused, shutoff, other, or absent),
 * the instance's recorded state (null for an unowned domain), the domain, and whether it
 * carries the project's metadata (null when no domain was seen).
 */
static json_object *detail_new(const char *seen, const char *expected, const char *recorded,
                               const BrVirtDomain *dom, const char *name, const char *uuid)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "seen", json_object_new_string(seen));
    json_object_object_add(o, "expected", json_object_new_string(expected));
    json_object_object_add(o, "instance_state", recorded ? json_object_new_string(recorded) : NULL);
    json_object_object_add(o, "domain_name", json_object_new_string(name));
    json_object_object_add(o, "domain_uuid", json_object_new_string(uuid));
    json_object_object_add(o, "metadata", dom ? json_object_new_boolean(dom->ours) : NULL);
    return o;
}

int br_reconcile_judge(int64_t host_id, const BrClaims *claims, const BrVirtDomain *doms,
                       size_t n_doms, BrFinding **ret, size_t *ret_n)
{
    BrFinding *out = calloc(claims->n_before + n_doms + 1, sizeof(*out));
    size_t n = 0;

    if (!out)
        return -ENOMEM;
    for (size_t i = 0; i < claims->n_before; i++) {
        const BrInstanceClaim *a = &claims->before[i];
        const BrVirtDomain *dom;
        const char *seen, *recorded = br_instance_state_to_string(a->state);
        BrFinding *f = &out[n];

        if (a->host_id != host_id || a->state == BR_INSTANCE_DELETED ||
            !undisturbed(a, claim_of(claims->after, claims->n_after, a->id)))
            continue; /* elsewhere, gone, or a job is (or was just) changing it */
        dom = domain_of(doms, n_doms, a->uuid);
        seen = dom ? br_virt_state_to_string(dom->state) : "absent";
        if (should_exist(a->state) && !dom) {
            f->kind = BR_EVENT_INSTANCE_MISSING;
            snprintf(f->message, sizeof(f->message),
                     "instance %lld (%s) should be on this host but its domain is missing",
                     (long long)a->id, a->name);
            f->detail = detail_new(seen, a->state == BR_INSTANCE_RUNNING ? "running" : "shutoff",
                                   recorded, NULL, a->name, a->uuid);
        } else if (dom && a->state == BR_INSTANCE_RUNNING && dom->state != BR_VIRT_STATE_RUNNING) {
            f->kind = BR_EVENT_INSTANCE_STATE;
            snprintf(f->message, sizeof(f->message),
                     "instance %lld (%s) should be running but is %s", (long long)a->id, a->name,
                     seen);
            f->detail = detail_new(seen, "running", recorded, dom, a->name, a->uuid);
        } else if (dom && a->state == BR_INSTANCE_UNDEFINED) {
            /* Reclaimed by the record, yet its domain is still there: a step that was
             * told it succeeded when it had not, or someone defined it again by hand. */
            f->kind = BR_EVENT_INSTANCE_STATE;
            snprintf(f->message, sizeof(f->message),
                     "instance %lld (%s) was reclaimed but its domain is still defined (%s)",
                     (long long)a->id, a->name, seen);
            f->detail = detail_new(seen, "absent", recorded, dom, a->name, a->uuid);
        } else {
            continue;
        }
        f->instance_id = a->id;
        f->allocation_id = a->allocation_id;
        cm_strscpy(f->uuid, sizeof(f->uuid), a->uuid);
        cm_strscpy(f->name, sizeof(f->name), a->name);
        n++;
    }

    /* Ours by UUID, on any host, before or after the listing: an instance a job was making
     * or removing meanwhile is one of them, so its domain is never taken for a stranger's. */
    for (size_t k = 0; k < n_doms; k++) {
        const BrVirtDomain *dom = &doms[k];
        BrFinding *f = &out[n];

        if (uuid_claimed(claims->before, claims->n_before, dom->uuid) ||
            uuid_claimed(claims->after, claims->n_after, dom->uuid))
            continue;
        f->kind = BR_EVENT_UNOWNED_DOMAIN;
        cm_strscpy(f->uuid, sizeof(f->uuid), dom->uuid);
        cm_strscpy(f->name, sizeof(f->name), dom->name);
        snprintf(f->message, sizeof(f->message),
                 "domain '%.100s' (%s, %s) is not owned by any allocation%s", dom->name, dom->uuid,
                 br_virt_state_to_string(dom->state),
                 dom->ours ? " though it carries our metadata" : "");
        f->detail = detail_new(br_virt_state_to_string(dom->state), "absent", NULL, dom, dom->name,
                               dom->uuid);
        n++;
    }
    *ret = out;
    *ret_n = n;
    return 0;
}

/* One host in a pass: its domains when it was reached and listed. */
typedef struct {
    int64_t id;
    bool reached, failed;
    BrVirtDomain *doms;
    size_t n_doms;
} HostPass;

typedef struct {
    BrReconciler *rc;
    HostPass *host;
    const BrClaims *claims;
    BrFinding *findings;
    size_t n_findings;
    BrEventSeen *seen;
    int64_t max_gap;
} HostRecord;

/* Writes what one host showed: the capacity last seen, new and resolved events, the
 * instances' observations and observed states. */
static int record_tx(BrTx *tx, void *ctx)
{
    HostRecord *w = ctx;
    const HostPass *hp = w->host;
    const BrClaims *cl = w->claims;
    char now[CM_TIME_ISO_LEN + 1];
    _cleanup_free_ BrObservationSeen *obs = calloc(cl->n_before + 1, sizeof(*obs));
    BrHostStatus st;
    size_t n_obs = 0;
    int r;

    if (!obs)
        return cm_error_set(tx->err, CM_ERROR_INTERNAL, "", "out of memory");
    cm_time_iso(cm_now_ms(), now);
    if (hp->reached) {
        BrHosts *hosts = w->rc->d->hosts;
        if (hosts && br_hosts_status(hosts, hp->id, &st) && st.capacity_known) {
            r = br_host_set_capacity(tx->db, hp->id, st.cpus, st.memory_mib, st.disk_gib, tx->err);
            if (r < 0)
                return r;
        }
        for (size_t i = 0; i < w->n_findings; i++) {
            const BrFinding *f = &w->findings[i];
            w->seen[i] = (BrEventSeen){
                .kind = f->kind,
                .instance_id = f->instance_id,
                .allocation_id = f->allocation_id,
                .domain_uuid = f->uuid,
                .domain_name = f->name,
                .message = f->message,
                .detail = json_object_to_json_string_ext(f->detail, JSON_C_TO_STRING_PLAIN),
            };
        }
        r = br_event_record(tx, hp->id, w->seen, w->n_findings, now);
        if (r < 0)
            return r;
    }

    /* A host not reached: its instances were not seen running (availability), whatever
     * they did. */
    for (size_t i = 0; i < cl->n_before; i++) {
        const BrInstanceClaim *a = &cl->before[i];
        const BrVirtDomain *dom;
        if (a->host_id != hp->id || a->state == BR_INSTANCE_DELETED)
            continue;
        dom = hp->reached ? domain_of(hp->doms, hp->n_doms, a->uuid) : NULL;
        obs[n_obs++] = (BrObservationSeen){
            .instance_id = a->id,
            .state = !should_exist(a->state) ? NULL
                     : !hp->reached          ? "unreachable"
                     : dom                   ? br_virt_state_to_string(dom->state)
                                             : "absent",
        };
    }
    r = br_observation_record(tx->db, hp->id, obs, n_obs, cm_now_ms() / 1000, w->max_gap, tx->err);
    if (r < 0 || !hp->reached)
        return r;

    /* What each instance was seen doing, when that changed. */
    for (size_t i = 0; i < cl->n_before; i++) {
        const BrInstanceClaim *a = &cl->before[i];
        const BrVirtDomain *dom;
        const char *seen;
        if (a->host_id != hp->id || a->state == BR_INSTANCE_DELETED)
            continue;
        dom = domain_of(hp->doms, hp->n_doms, a->uuid);
        seen = dom ? br_virt_state_to_string(dom->state) : "absent";
        if (strcmp(seen, a->observed) == 0)
            continue;
        r = br_instance_set_observed(tx->db, a->id, seen, now, tx->err);
        if (r < 0)
            return r;
    }
    return 0;
}

static void record_host(BrReconciler *rc, HostPass *hp, const BrClaims *claims, int64_t max_gap)
{
    HostRecord w = {.rc = rc, .host = hp, .claims = claims, .max_gap = max_gap};
    CmError err = {0};
    int r = 0;

    if (hp->reached)
        r = br_reconcile_judge(hp->id, claims, hp->doms, hp->n_doms, &w.findings, &w.n_findings);
    if (r >= 0)
        w.seen = calloc(w.n_findings + 1, sizeof(*w.seen));
    if (r < 0 || !w.seen)
        r = cm_error_set(&err, CM_ERROR_INTERNAL, "", "out of memory");
    else
        r = br_tx_run(rc->d->store, "reconcile", NULL, record_tx, &w, &err);
    if (r < 0)
        cm_log_warning("reconciler: host %lld: %s", (long long)hp->id, err.message);
    for (size_t i = 0; r >= 0 && i < w.n_findings; i++)
        if (w.seen[i].opened)
            atomic_fetch_add(&rc->opened[w.findings[i].kind], 1);
    free(w.seen);
    br_findings_free(w.findings, w.n_findings);
}

typedef struct {
    HostPass *v;
    size_t n;
} HostList;

static int add_host(void *ctx, const BrHostRow *h)
{
    HostList *l = ctx;
    HostPass *nv = reallocarray(l->v, l->n + 1, sizeof(*nv));
    if (!nv)
        return -ENOMEM;
    nv[l->n++] = (HostPass){.id = h->id};
    l->v = nv;
    return 0;
}

static void host_list_clear(HostList *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i].doms);
    free(l->v);
}

/*
 * One pass over every host: the instances are read, every host is listed, the instances are
 * read again, and then each host's findings are written. Whatever a job of the broker did
 * between the two reads is left for a later pass.
 */
static void reconcile(BrReconciler *rc)
{
    BrDaemon *d = rc->d;
    _cleanup_(br_policies_unrefp) BrPolicies *p = br_daemon_policies(d);
    _cleanup_free_ BrInstanceClaim *before = NULL, *after = NULL;
    _cleanup_(host_list_clear) HostList hosts = {0};
    BrClaims claims = {0};
    CmError err = {0};
    CmDb *db = br_store_db(d->store, &err);
    int r = br_host_list(db, NULL, NULL, add_host, &hosts, &err);

    if (r >= 0)
        r = br_instance_list_claims(db, &before, &claims.n_before, &err);
    for (size_t i = 0; r >= 0 && i < hosts.n; i++) {
        HostPass *hp = &hosts.v[i];
        CmError herr = {0};
        BrVirtConn *c = br_hosts_get(d->hosts, hp->id, &herr);
        if (!c)
            continue; /* shows as disconnected in GET /v1/hosts */
        hp->reached = true;
        hp->failed = br_virt_list_domains(c, &hp->doms, &hp->n_doms, &herr) < 0;
        br_hosts_put(d->hosts, hp->id, c);
        if (hp->failed)
            cm_log_warning("reconciler: host %lld: %s", (long long)hp->id, herr.message);
    }
    if (r >= 0)
        r = br_instance_list_claims(db, &after, &claims.n_after, &err);
    if (r < 0) {
        cm_log_warning("reconciler: %s", r == -ENOMEM ? "out of memory" : err.message);
        return;
    }
    claims.before = before;
    claims.after = after;
    for (size_t i = 0; i < hosts.n; i++)
        if (!hosts.v[i].failed)
            record_host(rc, &hosts.v[i], &claims, 3 * p->lifecycle.reconcile_seconds + 5);
}

static int64_t interval_ms(BrDaemon *d)
{
    _cleanup_(br_policies_unrefp) BrPolicies *p = br_daemon_policies(d);
    return p->lifecycle.reconcile_seconds * 1000;
}

static int64_t reconciler_run(void *ctx)
{
    BrReconciler *rc = ctx;
    reconcile(rc);
    return interval_ms(rc->d);
}

int br_reconciler_start(BrDaemon *d, BrReconciler **ret, CmError *err)
{
    BrReconciler *rc = calloc(1, sizeof(*rc));
    int r;

    if (!rc)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    rc->d = d;
    r = cm_worker_start(&(CmWorkerConfig){.name = "reconciler",
                                          .first_delay_ms = interval_ms(d),
                                          .run = reconciler_run,
                                          .ctx = rc},
                        &rc->worker, err);
    if (r < 0) {
        free(rc);
        return r;
    }
    *ret = rc;
    return 0;
}

BrReconciler *br_reconciler_stop(BrReconciler *rc)
{
    if (!rc)
        return NULL;
    cm_worker_stop(rc->worker);
    free(rc);
    return NULL;
}

void br_reconciler_counts(BrReconciler *rc, uint64_t ret[BR_EVENT_KIND_MAX])
{
    for (int i = 0; i < BR_EVENT_KIND_MAX; i++)
        ret[i] = rc ? atomic_load(&rc->opened[i]) : 0;
}
