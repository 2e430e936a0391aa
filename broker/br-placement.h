/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

/* One host as placement sees it: capacity, overcommit, what is already placed on it. */
typedef struct {
    int64_t id;
    const char *name;
    const char *pool; /* "trial" or "production" */
    bool enabled, maintenance, connected;
    int64_t cpus, memory_mib, disk_gib; /* physical capacity */
    double cpu_ratio, ram_ratio, disk_ratio;
    int64_t used_vcpus, used_memory_mib, used_disk_gib;
} BrPlacementHost;

typedef enum {
    BR_PLACEMENT_PACK,   /* fill the fullest host that fits: fewer hosts in use */
    BR_PLACEMENT_SPREAD, /* the emptiest host: spread load and failure */
} BrPlacementWeigher;

typedef struct {
    const char *pool;
    bool anti_affinity; /* no two instances of one allocation on one host */
    BrPlacementWeigher weigher;
} BrPlacementPolicy;

typedef struct {
    int64_t vcpus, memory_mib, disk_gib;
} BrPlacementDemand;

/* Why a host was refused, the first filter that said no. */
typedef enum {
    BR_PLACEMENT_OK = 0,
    BR_PLACEMENT_REFUSED_POOL,
    BR_PLACEMENT_REFUSED_DISABLED,
    BR_PLACEMENT_REFUSED_MAINTENANCE,
    BR_PLACEMENT_REFUSED_DISCONNECTED,
    BR_PLACEMENT_REFUSED_CPU,
    BR_PLACEMENT_REFUSED_RAM,
    BR_PLACEMENT_REFUSED_DISK,
    BR_PLACEMENT_REFUSED_ANTI_AFFINITY,
    BR_PLACEMENT_REFUSED_MAX,
} BrPlacementRefusal;

const char *br_placement_refusal_to_string(BrPlacementRefusal r);

/**
 * br_placement_filter:
 * Returns: BR_PLACEMENT_OK when @h can take @d under @p (with @holds_sibling true when @h
 * already runs an instance of the same allocation), else the first filter that refuses.
 */
BrPlacementRefusal br_placement_filter(const BrPlacementHost *h, const BrPlacementPolicy *p,
                                       const BrPlacementDemand *d, bool holds_sibling);

/**
 * br_placement_choose:
 * Places @n_demands instances of one allocation on @hosts (whose used_* are updated as each
 * instance lands). @siblings lists, per host index, whether the allocation already has an
 * instance there (may be NULL); it is updated too. Deterministic: ties go to the lower id.
 * Returns: 0 with the chosen host index of each demand in @ret_choice, or -ENOSPC with
 * @ret_refusals (when not NULL) set to {"instance": i, "hosts": [{"host", "refused_by",
 * ...numbers}]} for the first demand that fits nowhere.
 */
int br_placement_choose(BrPlacementHost *hosts, size_t n_hosts, const BrPlacementPolicy *p,
                        const BrPlacementDemand *demands, size_t n_demands, bool *siblings,
                        size_t *ret_choice, json_object **ret_refusals);
