/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>

#include "br-request.h"
#include "cm-error.h"

typedef enum {
    BR_MATERIAL_CONSTRUCTION_PLAN,
    BR_MATERIAL_PERFORMANCE_SELF_TEST,
    BR_MATERIAL_SECURITY_SELF_TEST,
    BR_MATERIAL_BACKUP_PROOF,
    BR_MATERIAL_TEST_REPORT,
    BR_MATERIAL_OTHER,
    BR_MATERIAL_MAX,
} BrMaterialKind;

CM_ENUM_DECL(br_material_kind, BrMaterialKind)

typedef struct {
    int64_t vcpus;
    int64_t memory_mib;
    int64_t disk_gib;
    int64_t instances;
} BrResources;

/* policies/review.json, parsed. */
typedef struct {
    bool materials_enforce;
    unsigned required[BR_REQUEST_KIND_MAX]; /* bit per BrMaterialKind */
    bool limits_enforce;
    int64_t max_vcpus, max_memory_mib, max_disk_gib, max_instances;
    bool quota_enforce;
    int64_t material_max_bytes;
    char **media_types; /* NULL-terminated */
    BrResources default_quota;
} BrReviewPolicy;

/*
 * The loaded policy files, immutable once loaded: readers hold a reference, a reload (SIGHUP)
 * builds a new set and swaps it in, and the old one goes when its last reader lets go.
 */
typedef struct BrPolicies BrPolicies;

struct BrPolicies {
    int refs;
    char *dir;
    BrReviewPolicy review;
    json_object *documents; /* {"review": {...}, ...} as loaded, for GET /v1/policies */
};

/**
 * br_policies_load:
 * Loads and schema-checks every policy file in @dir.
 * Returns: 0 and a set with one reference in @ret, or a negative errno with @err naming the
 * file and the field.
 */
int br_policies_load(const char *dir, BrPolicies **ret, CmError *err);

BrPolicies *br_policies_ref(BrPolicies *p);
/** br_policies_unref: Accepts NULL. Returns: NULL. */
BrPolicies *br_policies_unref(BrPolicies *p);
CM_DEFINE_TRIVIAL_CLEANUP_FUNC(BrPolicies *, br_policies_unref)

/** br_policy_media_type_allowed: Returns: true when @media_type is in the policy's list. */
bool br_policy_media_type_allowed(const BrReviewPolicy *p, const char *media_type);
