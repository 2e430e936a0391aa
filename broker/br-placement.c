/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Placement in the manner of OpenStack's filter scheduler: filters drop the hosts that cannot
 * take an instance, a weigher orders the rest. Pure: no database, no libvirt, so it is tested
 * and measured alone.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "br-placement.h"
#include "cm-cleanup.h"

const char *br_placement_refusal_to_string(BrPlacementRefusal r)
{
    static const char *const names[BR_PLACEMENT_REFUSED_MAX] = {
        "ok",  "pool", "disabled", "maintenance",   "disconnected",
        "cpu", "ram",  "disk",     "anti_affinity",
    };
    return (unsigned)r < BR_PLACEMENT_REFUSED_MAX ? names[r] : "unknown";
}

static int64_t limit(int64_t capacity, double ratio)
{
    /* 10 x 0.7 is 6.999... in binary: a hair of slack keeps the product exact. */
    return (int64_t)floor((double)capacity * ratio + 1e-9);
}

BrPlacementRefusal br_placement_filter(const BrPlacementHost *h, const BrPlacementPolicy *p,
                                       const BrPlacementDemand *d, bool holds_sibling)
{
    if (!h->pool || !p->pool || strcmp(h->pool, p->pool) != 0)
        return BR_PLACEMENT_REFUSED_POOL;
    if (!h->enabled)
        return BR_PLACEMENT_REFUSED_DISABLED;
    if (h->maintenance)
        return BR_PLACEMENT_REFUSED_MAINTENANCE;
    if (!h->connected)
        return BR_PLACEMENT_REFUSED_DISCONNECTED;
    if (h->used_vcpus + d->vcpus > limit(h->cpus, h->cpu_ratio))
        return BR_PLACEMENT_REFUSED_CPU;
    if (h->used_memory_mib + d->memory_mib > limit(h->memory_mib, h->ram_ratio))
        return BR_PLACEMENT_REFUSED_RAM;
    if (h->used_disk_gib + d->disk_gib > limit(h->disk_gib, h->disk_ratio))
        return BR_PLACEMENT_REFUSED_DISK;
    if (p->anti_affinity && holds_sibling)
        return BR_PLACEMENT_REFUSED_ANTI_AFFINITY;
    return BR_PLACEMENT_OK;
}

/* The share of the host's (overcommitted) CPU and RAM left after placing @d, 0..1. */
static double free_share(const BrPlacementHost *h, const BrPlacementDemand *d)
{
    double cpu_cap = (double)limit(h->cpus, h->cpu_ratio);
    double ram_cap = (double)limit(h->memory_mib, h->ram_ratio);
    double cpu = cpu_cap > 0 ? (cpu_cap - (double)(h->used_vcpus + d->vcpus)) / cpu_cap : 0;
    double ram =
        ram_cap > 0 ? (ram_cap - (double)(h->used_memory_mib + d->memory_mib)) / ram_cap : 0;
    return (cpu + ram) / 2;
}

static json_object *refusal_json(const BrPlacementHost *h, const BrPlacementDemand *d,
                                 BrPlacementRefusal why)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "host", json_object_new_string(h->name ? h->name : ""));
    json_object_object_add(o, "host_id", json_object_new_int64(h->id));
    json_object_object_add(o, "refused_by",
                           json_object_new_string(br_placement_refusal_to_string(why)));
    switch (why) {
    case BR_PLACEMENT_REFUSED_CPU:
        json_object_object_add(o, "asked", json_object_new_int64(d->vcpus));
        json_object_object_add(o, "used", json_object_new_int64(h->used_vcpus));
        json_object_object_add(o, "limit", json_object_new_int64(limit(h->cpus, h->cpu_ratio)));
        break;
    case BR_PLACEMENT_REFUSED_RAM:
        json_object_object_add(o, "asked", json_object_new_int64(d->memory_mib));
        json_object_object_add(o, "used", json_object_new_int64(h->used_memory_mib));
        json_object_object_add(o, "limit",
                               json_object_new_int64(limit(h->memory_mib, h->ram_ratio)));
        break;
    case BR_PLACEMENT_REFUSED_DISK:
        json_object_object_add(o, "asked", json_object_new_int64(d->disk_gib));
        json_object_object_add(o, "used", json_object_new_int64(h->used_disk_gib));
        json_object_object_add(o, "limit",
                               json_object_new_int64(limit(h->disk_gib, h->disk_ratio)));
        break;
    case BR_PLACEMENT_REFUSED_POOL:
        json_object_object_add(o, "pool", json_object_new_string(h->pool ? h->pool : ""));
        break;
    default:
        break;
    }
    return o;
}

int br_placement_choose(BrPlacementHost *hosts, size_t n_hosts, const BrPlacementPolicy *p,
                        const BrPlacementDemand *demands, size_t n_demands, bool *siblings,
                        size_t *ret_choice, json_object **ret_refusals)
{
    for (size_t k = 0; k < n_demands; k++) {
        const BrPlacementDemand *d = &demands[k];
        size_t best = SIZE_MAX;
        double best_score = 0;

        for (size_t i = 0; i < n_hosts; i++) {
            if (br_placement_filter(&hosts[i], p, d, siblings && siblings[i]) != BR_PLACEMENT_OK)
                continue;
            double share = free_share(&hosts[i], d);
            double score = p->weigher == BR_PLACEMENT_SPREAD ? share : -share;
            if (best == SIZE_MAX || score > best_score ||
                (score == best_score && hosts[i].id < hosts[best].id)) {
                best = i;
                best_score = score;
            }
        }
        if (best == SIZE_MAX) {
            if (ret_refusals) {
                json_object *o = json_object_new_object(), *list = json_object_new_array();
                for (size_t i = 0; i < n_hosts; i++)
                    json_object_array_add(
                        list, refusal_json(
                                  &hosts[i], d,
                                  br_placement_filter(&hosts[i], p, d, siblings && siblings[i])));
                json_object_object_add(o, "instance", json_object_new_int64((int64_t)k));
                json_object_object_add(o, "hosts", list);
                *ret_refusals = o;
            }
            return -ENOSPC;
        }
        hosts[best].used_vcpus += d->vcpus;
        hosts[best].used_memory_mib += d->memory_mib;
        hosts[best].used_disk_gib += d->disk_gib;
        if (siblings)
            siblings[best] = true;
        ret_choice[k] = best;
    }
    return 0;
}
