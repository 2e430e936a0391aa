/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>

#include <json-c/json.h>

#include "br-policy.h"
#include "br-quota.h"

/* What the pre-review check looks at; filled by the caller, so the check itself is pure. */
typedef struct {
    BrRequestKind kind;
    const BrReviewPolicy *policy;
    const BrCatalogPolicy *catalog; /* NULL: images are not checked */
    json_object *instances;         /* the request's resources.instances array, or NULL */
    unsigned materials_present;     /* bit per BrMaterialKind */
    const BrQuotaUsage *usage;      /* the department's quota and usage without this request */
    BrResources requested;          /* what this request would add to the department's usage */
    json_object *findings; /* the department's live idle/over-provisioned findings, or NULL */
} BrReviewInput;

typedef enum {
    BR_REVIEW_RULE_MATERIALS,
    BR_REVIEW_RULE_LIMITS,
    BR_REVIEW_RULE_QUOTA,
    BR_REVIEW_RULE_CATALOG,  /* always enforced: an image outside the catalog cannot run */
    BR_REVIEW_RULE_FINDINGS, /* advisory: the department's idle and over-provisioned resources */
    BR_REVIEW_RULE_MAX,
} BrReviewRule;

CM_ENUM_DECL(br_review_rule, BrReviewRule)

typedef struct {
    bool ok[BR_REVIEW_RULE_MAX];
    bool enforced[BR_REVIEW_RULE_MAX];
    unsigned missing; /* BrMaterialKind bits */
} BrReviewOutcome;

/**
 * br_review_check:
 * Evaluates every rule of policies/review.json for @in: materials complete, per-instance
 * limits, the department's quota headroom.
 * Returns: the check as JSON ({"ok", "rules": [{"rule", "enforce", "ok", ...numbers}]}), with
 * the outcome per rule in @ret.
 */
json_object *br_review_check(const BrReviewInput *in, BrReviewOutcome *ret);

/**
 * br_review_first_failure:
 * Returns: the first enforced rule that failed, or -1 when all enforced rules pass. Only
 * rules in @mask (bits of BrReviewRule) are considered.
 */
int br_review_first_failure(const BrReviewOutcome *o, unsigned mask);

/**
 * br_review_request:
 * The pre-review check of request @row under @policies, its input read through the tables'
 * owners: the materials present, the department's quota and usage without this request, what
 * the request adds (a change: its growth over the allocation; a termination: nothing), the
 * department's idle and over-provisioned findings.
 * Returns: 0 with the check in @ret_check and the outcome in @ret_outcome (both optional), or
 * a negative errno with @err set.
 */
int br_review_request(CmDb *db, const BrPolicies *policies, const BrRequestRow *row,
                      json_object **ret_check, BrReviewOutcome *ret_outcome, CmError *err);
