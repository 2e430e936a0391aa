/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>

#include "br-pricing.h"
#include "br-request.h"
#include "br-sla.h"
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

/* policies/catalog.json: one image a request may name. @pool is "" when the catalog names
 * none: the base volume is then in, and the disks go to, the storage pool of the host. */
typedef struct {
    char *name, *pool, *volume, *format;
} BrCatalogImage;

typedef struct {
    BrCatalogImage *images;
    size_t n_images;
    char *network; /* NULL: no NIC */
} BrCatalogPolicy;

/* policies/placement.json */
typedef struct {
    double cpu_ratio, ram_ratio, disk_ratio;
    bool spread; /* else pack */
    bool anti_affinity;
} BrPlacementPolicyConf;

/* policies/lifecycle.json */
typedef struct {
    int64_t trial_seconds, retention_seconds, shutdown_timeout_seconds;
    double vcpus_factor, memory_factor;
    int64_t max_vcpus, max_memory_mib;
    char *machine;
    char *domain_type; /* "auto", "kvm" or "qemu" */
    int64_t reconcile_seconds, job_retry_seconds;
} BrLifecyclePolicy;

/* policies/metering.json */
typedef struct {
    int64_t sample_retention_days, max_clock_skew_seconds, rollup_interval_seconds;
    int64_t max_unowned_per_window; /* unowned-domain windows kept per host and 5 minutes */
} BrMeteringPolicy;

/* policies/assessment.json */
typedef enum {
    BR_RIGHTSIZE_CONSERVATIVE, /* the maximum */
    BR_RIGHTSIZE_MODERATE,     /* the 95th percentile */
    BR_RIGHTSIZE_AGGRESSIVE,   /* the average of daily maxima */
} BrRightsizeMode;

typedef struct {
    int64_t idle_window, over_window, under_window;
    double idle_share, idle_cpu_cores, idle_net_in_bps, idle_net_out_bps;
    double over_cpu_p95, over_mem_p95, under_cpu_p95, under_mem_p95;
    BrRightsizeMode mode;
    double headroom;
    int64_t min_vcpus, min_memory_mib, memory_step_mib;
    double min_coverage;
    int64_t min_age_seconds, run_interval_seconds;
    double w_cloud, w_efficiency, w_security;
    double w_test, w_backup, w_vulns, w_incidents;
    int64_t backup_max_age_days;
} BrAssessmentPolicy;

/*
 * The loaded policy files, immutable once loaded: readers hold a reference, a reload (SIGHUP)
 * builds a new set and swaps it in, and the old one goes when its last reader lets go.
 */
typedef struct BrPolicies BrPolicies;

struct BrPolicies {
    int refs;
    char *dir;
    BrReviewPolicy review;
    BrCatalogPolicy catalog;
    BrPlacementPolicyConf placement;
    BrLifecyclePolicy lifecycle;
    BrMeteringPolicy metering;
    BrAssessmentPolicy assessment;
    BrPricingPolicy pricing;
    BrSlaPolicy service_quality;
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

/** br_policy_image: Returns: the catalog image named @name, or NULL. */
const BrCatalogImage *br_policy_image(const BrPolicies *p, const char *name);

/**
 * br_policy_max_vcpus / br_policy_max_memory_mib:
 * Returns: the maximum set at define time for an instance of @vcpus / @memory_mib: the
 * growth factor times the size, capped by the policy, and never below the size itself.
 */
int64_t br_policy_max_vcpus(const BrLifecyclePolicy *l, int64_t vcpus);
int64_t br_policy_max_memory_mib(const BrLifecyclePolicy *l, int64_t memory_mib);

/** br_policy_media_type_allowed: Returns: true when @media_type is in the policy's list. */
bool br_policy_media_type_allowed(const BrReviewPolicy *p, const char *media_type);
