/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Placement glue and the reserve step: every host with its live status and what is placed on
 * it, fed to the pure placement (br-placement.c) under one process-wide lock, so two jobs
 * never count on the same room.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "br-daemon.h"
#include "br-host.h"
#include "br-hosts.h"
#include "br-workflow-priv.h"
#include "cm-json.h"
#include "cm-log.h"

static pthread_mutex_t placement_lock = PTHREAD_MUTEX_INITIALIZER;

typedef struct {
    BrPlacementHost *hosts;
    char (*names)[64];
    size_t n, cap;
    const BrPolicies *p;
    const BrHostStatus *status;
    size_t n_status;
} HostSet;

static void host_set_clear(HostSet *s)
{
    free(s->hosts);
    free(s->names);
}

static int host_set_add(void *ctx, const BrHostRow *row)
{
    HostSet *s = ctx;
    const BrHostStatus *st;
    BrPlacementHost *h;

    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        BrPlacementHost *nh = reallocarray(s->hosts, cap, sizeof(*nh));
        if (!nh)
            return -ENOMEM;
        s->hosts = nh;
        char(*nn)[64] = reallocarray(s->names, cap, sizeof(*nn));
        if (!nn)
            return -ENOMEM;
        s->names = nn;
        s->cap = cap;
    }
    snprintf(s->names[s->n], sizeof(s->names[s->n]), "%s", row->name);
    h = &s->hosts[s->n++];
    *h = (BrPlacementHost){
        .id = row->id,
        .pool = strcmp(row->pool, "trial") == 0 ? "trial" : "production",
        .enabled = row->enabled,
        .maintenance = row->maintenance,
        .cpus = row->cpus,
        .memory_mib = row->memory_mib,
        .disk_gib = row->disk_gib,
        .cpu_ratio = row->cpu_ratio > 0 ? row->cpu_ratio : s->p->placement.cpu_ratio,
        .ram_ratio = row->ram_ratio > 0 ? row->ram_ratio : s->p->placement.ram_ratio,
        .disk_ratio = row->disk_ratio > 0 ? row->disk_ratio : s->p->placement.disk_ratio,
        .used_vcpus = row->used_vcpus,
        .used_memory_mib = row->used_memory_mib,
        .used_disk_gib = row->used_disk_gib,
    };
    /* The live connection and capacity win over what the database last recorded. */
    st = br_hosts_snapshot_find(s->status, s->n_status, h->id);
    if (st) {
        h->connected = st->connected;
        if (st->capacity_known) {
            h->cpus = st->cpus;
            h->memory_mib = st->memory_mib;
            h->disk_gib = st->disk_gib;
        }
    }
    return 0;
}

/* Every host with its live status and what is placed on it. */
static int host_set_load(BrDaemon *d, CmDb *db, const BrPolicies *p, HostSet *ret, CmError *err)
{
    _cleanup_free_ BrHostStatus *status = NULL;
    size_t n_status = 0;
    int r;

    /* Every host's live status in one snapshot, sorted by id. */
    if (d->hosts && br_hosts_snapshot(d->hosts, &status, &n_status) < 0)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    *ret = (HostSet){.p = p, .status = status, .n_status = n_status};
    r = br_host_list_placement(db, host_set_add, ret, err);
    if (r == -ENOMEM)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    if (r < 0)
        return r;
    for (size_t i = 0; i < ret->n; i++)
        ret->hosts[i].name = ret->names[i];
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
            used += (size_t)snprintf(
                msg + used, sizeof(msg) - used, " (%lld used of %lld, %lld asked)",
                (long long)cm_json_get_int(h, "used", 0), (long long)json_object_get_int64(lim),
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
    _cleanup_free_ int64_t *sibling_hosts = NULL;
    /* Anti-affinity guards production against a host's failure; a trial does not need it. */
    BrPlacementPolicy pp = {
        .pool = pool,
        .anti_affinity = p->placement.anti_affinity && strcmp(pool, "production") == 0,
        .weigher = p->placement.spread ? BR_PLACEMENT_SPREAD : BR_PLACEMENT_PACK};
    json_object *refusals = NULL;
    size_t n_sibling_hosts = 0;
    int r = host_set_load(d, db, p, hs, err);

    if (r < 0)
        return r;
    siblings = calloc(hs->n + 1, sizeof(bool));
    if (!siblings)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    if (siblings_of) {
        r = br_instance_allocation_hosts(db, siblings_of, &sibling_hosts, &n_sibling_hosts, err);
        if (r < 0)
            return r;
        for (size_t k = 0; k < n_sibling_hosts; k++)
            for (size_t i = 0; i < hs->n; i++)
                if (hs->hosts[i].id == sibling_hosts[k])
                    siblings[i] = true;
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
    _cleanup_(br_workflow_request_clear) BrWorkflowRequest req = {0};
    _cleanup_free_ BrPlacementDemand *demands = NULL;
    _cleanup_free_ size_t *choice = NULL;
    _cleanup_(host_set_clear) HostSet hs = {0};
    json_object *specs;
    size_t n;
    int r = br_workflow_request_load(db, request_id, &req, err);

    if (r < 0)
        return r;
    specs = cm_json_get(req.resources, "instances");
    n = specs ? json_object_array_length(specs) : 0;
    demands = calloc(n + 1, sizeof(*demands));
    choice = calloc(n + 1, sizeof(*choice));
    if (!demands || !choice)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    for (size_t i = 0; i < n; i++) {
        json_object *s = json_object_array_get_idx(specs, i);
        demands[i] = (BrPlacementDemand){cm_json_get_int(s, "vcpus", 1),
                                         cm_json_get_int(s, "memory_mib", 512),
                                         cm_json_get_int(s, "disk_gib", 1)};
    }
    return place(d, db, pool, 0, demands, n, choice, &hs, err);
}

typedef struct {
    BrDaemon *d;
    const BrJobRow *job;
    int seq;
} Reserve;

/* The instances of the job's allocation that have no host yet get one, and the step is done. */
static int reserve_tx(BrTx *tx, void *ctx)
{
    Reserve *w = ctx;
    _cleanup_(br_policies_unrefp) BrPolicies *p = br_daemon_policies(w->d);
    _cleanup_free_ BrInstanceLive *cur = NULL;
    _cleanup_free_ BrPlacementDemand *demands = NULL;
    _cleanup_free_ size_t *choice = NULL, *which = NULL;
    _cleanup_(host_set_clear) HostSet hs = {0};
    BrAllocationRow a;
    size_t n = 0, k = 0;
    int r;

    r = br_allocation_load(tx->db, w->job->allocation_id, &a, tx->err);
    if (r >= 0)
        r = br_instance_load_live(tx->db, a.id, &cur, &n, tx->err);
    if (r < 0)
        return r;
    demands = calloc(n + 1, sizeof(*demands));
    choice = calloc(n + 1, sizeof(*choice));
    which = calloc(n + 1, sizeof(*which));
    if (!demands || !choice || !which)
        return cm_error_set(tx->err, CM_ERROR_INTERNAL, "", "out of memory");
    for (size_t i = 0; i < n; i++)
        if (cur[i].state == BR_INSTANCE_PENDING) {
            demands[k] = (BrPlacementDemand){cur[i].sizes.vcpus, cur[i].sizes.memory_mib,
                                             cur[i].sizes.disk_gib};
            which[k++] = i;
        }
    if (k > 0) {
        r = place(w->d, tx->db, a.trial ? "trial" : "production", a.id, demands, k, choice, &hs,
                  tx->err);
        if (r < 0)
            return r;
    }
    for (size_t j = 0; j < k; j++) {
        const BrInstanceLive *x = &cur[which[j]];
        const BrCatalogImage *img = br_policy_image(p, x->image);
        if (!img)
            return cm_error_set_code(tx->err, CM_ERROR_UNPROCESSABLE, "unknown_image", "image",
                                     "image '%s' left the catalog", x->image);
        r = br_instance_place(tx->db, x->id, hs.hosts[choice[j]].id,
                              img->pool[0] ? img->pool : NULL, tx->err);
        if (r < 0)
            return r;
        cm_log_info("instance %lld placed on host %s", (long long)x->id, hs.hosts[choice[j]].name);
    }
    return br_job_step_done(tx->db, w->job->id, w->seq, tx->err);
}

int br_workflow_reserve(BrDaemon *d, const BrJobRow *job, int seq, CmError *err)
{
    Reserve w = {.d = d, .job = job, .seq = seq};
    int r;

    pthread_mutex_lock(&placement_lock);
    r = br_tx_run(d->store, "job.reserve", NULL, reserve_tx, &w, err);
    pthread_mutex_unlock(&placement_lock);
    /* Nothing fits now: the vendor may add or free a host; keep trying for a while. */
    return r == -ENOSPC ? -EAGAIN : r;
}
