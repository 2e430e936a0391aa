/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "br-cost.h"
#include "br-domain-xml.h"
#include "cm-db.h"
#include "cm-enum.h"
#include "cm-error.h"

/*
 * The instances table: one row per domain the broker makes. The only file with SQL on
 * `instances`.
 *
 * An instance's life as the broker records it. Expected on its host: a domain for
 * defined/running/shutoff, a volume for created..undefined.
 */
typedef enum {
    BR_INSTANCE_PENDING, /* planned, no host yet */
    BR_INSTANCE_PLACED,  /* host chosen (reserve step) */
    BR_INSTANCE_CREATED, /* volume made */
    BR_INSTANCE_DEFINED, /* domain defined */
    BR_INSTANCE_RUNNING,
    BR_INSTANCE_SHUTOFF,   /* domain defined, stopped by us */
    BR_INSTANCE_UNDEFINED, /* domain gone, volume kept (retained) */
    BR_INSTANCE_DELETED,   /* volume gone too */
    BR_INSTANCE_STATE_MAX,
} BrInstanceState;

CM_ENUM_DECL(br_instance_state, BrInstanceState)

typedef struct {
    int64_t id, allocation_id, host_id, department_id, system_id, request_id;
    unsigned idx;
    char name[64], uuid[37], purpose[16];
    int64_t vcpus, memory_mib, disk_gib, max_vcpus, max_memory_mib;
    char image[72], pool[72], volume[160];
    BrInstanceState state;
    char *department_name, *system_name;
} BrInstanceRow;

/**
 * br_instance_load:
 * Reads instance @id with what its domain definition needs (department and system names).
 * Returns: 0, -ENOENT (@err not set), or another negative errno with @err set.
 */
int br_instance_load(CmDb *db, int64_t id, BrInstanceRow *ret, CmError *err);

void br_instance_row_clear(BrInstanceRow *r);

/**
 * br_instance_domain_spec:
 * Fills @spec for @row; the strings point into @row. @domain_type and @machine come from the
 * host and the lifecycle policy.
 */
void br_instance_domain_spec(const BrInstanceRow *row, const char *domain_type, const char *machine,
                             const char *network, const char *disk_format, BrDomainSpec *spec);

/** br_instance_set_state: records @state for instance @id. Returns: 0 or a negative errno. */
int br_instance_set_state(CmDb *db, int64_t id, BrInstanceState state, CmError *err);

/* An instance's sizes; in a change, a size below 0 is left as it is. */
typedef struct {
    int64_t vcpus, memory_mib, disk_gib, max_vcpus, max_memory_mib;
} BrInstanceSizes;

#define BR_INSTANCE_SIZES_KEEP ((BrInstanceSizes){-1, -1, -1, -1, -1})

/**
 * br_instance_create:
 * Inserts pending instance @idx of allocation @allocation_id with @sizes and @image; its name
 * (cb-ALLOCATION-IDX), volume and UUID come from the broker only, and the UUID is stored
 * before the domain exists, so a retried define finds the domain instead of making another.
 * Returns: 0 and the id in @ret_id, or a negative errno with @err set.
 */
int br_instance_create(CmDb *db, int64_t allocation_id, unsigned idx, const BrInstanceSizes *sizes,
                       const char *image, int64_t *ret_id, CmError *err);

/** br_instance_resize: records the sizes of @sizes that are >= 0. Returns: 0 or -errno. */
int br_instance_resize(CmDb *db, int64_t id, const BrInstanceSizes *sizes, CmError *err);

/* A live (not deleted) instance, as the planners compare it. */
typedef struct {
    int64_t id;
    unsigned idx;
    BrInstanceSizes sizes;
    char image[72];
    BrInstanceState state;
} BrInstanceLive;

/**
 * br_instance_load_live:
 * The instances of allocation @allocation_id not deleted, by index.
 * Returns: 0 with the array (to be freed) in @ret and its length in @ret_n, or a negative
 * errno with @err set.
 */
int br_instance_load_live(CmDb *db, int64_t allocation_id, BrInstanceLive **ret, size_t *ret_n,
                          CmError *err);

/**
 * br_instance_place:
 * Places pending instance @id on host @host_id, in storage pool @pool (NULL: the host's).
 * Returns: 0 or a negative errno with @err set.
 */
int br_instance_place(CmDb *db, int64_t id, int64_t host_id, const char *pool, CmError *err);

/**
 * br_instance_unplace_job:
 * Sends the instances that job @job_id acts on and that are still only placed (nothing of
 * them exists on their host) back to placement.
 * Returns: how many, or a negative errno with @err set.
 */
int br_instance_unplace_job(CmDb *db, int64_t job_id, CmError *err);

/**
 * br_instance_allocation_hosts:
 * The hosts that live instances of @allocation_id are placed on (for anti-affinity).
 * Returns: 0 with the array (to be freed) in @ret and its length in @ret_n, or a negative
 * errno with @err set.
 */
int br_instance_allocation_hosts(CmDb *db, int64_t allocation_id, int64_t **ret, size_t *ret_n,
                                 CmError *err);

/**
 * br_instance_slice_end:
 * The id of the @count-th instance after id @after (or of the last one, when fewer follow):
 * the end of the next slice of a read that goes through every instance a slice at a time
 * (PostgreSQL hands a statement's answer over whole: a slice keeps it small).
 * Returns: 0 with the id in @ret_last (0: no instance after @after), or a negative errno.
 */
int br_instance_slice_end(CmDb *db, int64_t after, int64_t count, int64_t *ret_last, CmError *err);

/**
 * br_instance_list_json:
 * The instances of @allocation_id as GET /v1/allocations/{id} shows them, with the live state
 * the reconciler last saw. Returns: 0 and the array in @ret, or a negative errno with @err.
 */
int br_instance_list_json(CmDb *db, int64_t allocation_id, json_object **ret, CmError *err);

/** br_uuid_new: a random (version 4) UUID as 36 characters + NUL. Returns: 0 or -EIO. */
int br_uuid_new(char out[37]);

/**
 * br_instance_list_live:
 * The instances of allocation @allocation_id that are not deleted, by index: each
 * {id, idx, vcpus, memory_mib, disk_gib, image}.
 * Returns: 0 and the array in @ret, or a negative errno with @err set.
 */
int br_instance_list_live(CmDb *db, int64_t allocation_id, json_object **ret, CmError *err);

/* Where an instance runs and what it may use, as its agent's windows are checked. */
typedef struct {
    int64_t host_id; /* 0: none yet */
    char uuid[37];
    int64_t memory_mib, max_vcpus;
} BrInstanceHost;

/**
 * br_instance_host:
 * Reads instance @id's host, UUID, memory and vCPU maximum (one lookup per instance and
 * batch of samples).
 * Returns: 0, -ENOENT (no error set), or a negative errno with @err set.
 */
int br_instance_host(CmDb *db, int64_t id, BrInstanceHost *ret, CmError *err);

/**
 * br_instance_hosts:
 * br_instance_host() for the @n instances @ids at once (one statement on PostgreSQL, where a
 * round trip per instance was a batch of samples' second cost): @ret[k] is instance @ids[k]'s,
 * with host_id -1 when there is no such instance.
 * Returns: 0, or a negative errno with @err set (@ret then undefined).
 */
int br_instance_hosts(CmDb *db, const int64_t *ids, size_t n, BrInstanceHost *ret, CmError *err);

/*
 * An instance as the reconciler sees it: one whose domain may exist on its host, or that a
 * job of the broker may be making or removing right now.
 */
typedef struct {
    int64_t id, host_id, allocation_id; /* host_id 0: not placed */
    BrInstanceState state;
    char uuid[37], name[64], observed[16]; /* observed: "" when never seen */
    bool busy;         /* its allocation is in a job's state, or has a job queued or running */
    int64_t jobs;      /* its allocation's jobs so far */
    char jobs_end[32]; /* when the last of them ended, "" when none did */
} BrInstanceClaim;

/**
 * br_instance_list_claims:
 * Every instance that is not deleted, or whose allocation is busy, by id (free the array).
 * Returns: 0, or a negative errno with @err set.
 */
int br_instance_list_claims(CmDb *db, BrInstanceClaim **ret, size_t *ret_n, CmError *err);

/**
 * br_instance_set_observed:
 * Records what the reconciler saw of instance @id's domain at @at.
 * Returns: 0, or a negative errno with @err set.
 */
int br_instance_set_observed(CmDb *db, int64_t id, const char *observed, const char *at,
                             CmError *err);

/**
 * br_instance_cost_history:
 * Every instance that existed in [@from_ms, @to_ms) (of @department only when > 0) with its
 * history up to @to_ms, by department code, system name, allocation and index, for the cost
 * statement (free with br_cost_instances_free()).
 * Returns: 0, or a negative errno with @err set.
 */
int br_instance_cost_history(CmDb *db, int64_t from_ms, int64_t to_ms, int64_t department,
                             BrCostInstance **ret, size_t *ret_n, CmError *err);
