/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdint.h>

#include "br-domain-xml.h"
#include "cm-db.h"
#include "cm-enum.h"
#include "cm-error.h"

/*
 * An instance's life as the broker records it. Expected on its host: a domain for
 * defined/running/shutoff, a volume for created..undefined.
 */
typedef enum {
    BR_INSTANCE_PENDING,   /* planned, no host yet */
    BR_INSTANCE_PLACED,    /* host chosen (reserve step) */
    BR_INSTANCE_CREATED,   /* volume made */
    BR_INSTANCE_DEFINED,   /* domain defined */
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
 * Returns: 0, -ENOENT, or a negative errno with @err set.
 */
int br_instance_load(CmDb *db, int64_t id, BrInstanceRow *ret, CmError *err);

void br_instance_row_clear(BrInstanceRow *r);

/**
 * br_instance_domain_spec:
 * Fills @spec for @row; the strings point into @row. @domain_type and @machine come from the
 * host and the lifecycle policy.
 */
void br_instance_domain_spec(const BrInstanceRow *row, const char *domain_type,
                             const char *machine, const char *network, const char *disk_format,
                             BrDomainSpec *spec);

/** br_instance_set_state: records @state for instance @id. Returns: 0 or a negative errno. */
int br_instance_set_state(CmDb *db, int64_t id, BrInstanceState state, CmError *err);

/** br_uuid_new: a random (version 4) UUID as 36 characters + NUL. Returns: 0 or -EIO. */
int br_uuid_new(char out[37]);

/* -- added by metering -- */

#include <json-c/json.h>

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

/* -- added by hosts -- */

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
