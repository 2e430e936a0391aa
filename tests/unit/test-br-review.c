/* SPDX-License-Identifier: Apache-2.0 */
/* The pre-review check (policies/review.json), as a pure function of its inputs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "br-policy.h"
#include "br-review.h"
#include "br-schemas.h"
#include "cm-json.h"

#define M(x) (1u << BR_MATERIAL_##x)

static BrPolicies *policies;

static int load_policies(void **state)
{
    CmError err = {0};
    assert_int_equal(br_schemas_init(&err), 0);
    if (br_policies_load(SOURCE_DIR "/policies", &policies, &err) < 0)
        fail_msg("policies: %s at %s", err.message, err.field);
    return 0;
}

static int free_policies(void **state)
{
    br_policies_unref(policies);
    br_schemas_free();
    return 0;
}

static json_object *instances(const char *json)
{
    json_object *o = NULL;
    assert_int_equal(cm_json_parse(json, strlen(json), &o, NULL), 0);
    return o;
}

static json_object *rule(json_object *check, const char *name)
{
    json_object *rules = cm_json_get(check, "rules");
    for (size_t i = 0; i < json_object_array_length(rules); i++) {
        json_object *r = json_object_array_get_idx(rules, i);
        if (strcmp(cm_json_get_str(r, "rule", ""), name) == 0)
            return r;
    }
    fail_msg("no rule %s", name);
    return NULL;
}

static const BrQuotaUsage roomy = {
    .quota = {.vcpus = 64, .memory_mib = 262144, .disk_gib = 4096, .instances = 32},
};

static void test_default_policy_loaded(void **state)
{
    const BrReviewPolicy *p = &policies->review;
    assert_int_equal(p->required[BR_REQUEST_KIND_NEW],
                     M(CONSTRUCTION_PLAN) | M(PERFORMANCE_SELF_TEST) | M(SECURITY_SELF_TEST));
    assert_int_equal(p->required[BR_REQUEST_KIND_TERMINATION], M(BACKUP_PROOF));
    assert_int_equal(p->required[BR_REQUEST_KIND_CHANGE], 0);
    assert_int_equal(p->max_vcpus, 32);
    assert_true(br_policy_media_type_allowed(p, "application/pdf"));
    assert_false(br_policy_media_type_allowed(p, "application/x-msdownload"));
}

static void test_materials_missing_named(void **state)
{
    _cleanup_json_ json_object *inst =
        instances("[{\"vcpus\":2,\"memory_mib\":4096,\"disk_gib\":40,\"image\":\"debian-12\"}]");
    BrReviewInput in = {.kind = BR_REQUEST_KIND_NEW,
                        .policy = &policies->review,
                        .instances = inst,
                        .materials_present = M(CONSTRUCTION_PLAN) | M(OTHER),
                        .usage = &roomy,
                        .requested = br_resources_of_instances(inst)};
    BrReviewOutcome o;
    _cleanup_json_ json_object *check = br_review_check(&in, &o);

    assert_false(o.ok[BR_REVIEW_RULE_MATERIALS]);
    assert_int_equal(o.missing, M(PERFORMANCE_SELF_TEST) | M(SECURITY_SELF_TEST));
    json_object *missing = cm_json_get(rule(check, "materials_complete"), "missing");
    assert_int_equal(json_object_array_length(missing), 2);
    assert_string_equal(json_object_get_string(json_object_array_get_idx(missing, 0)),
                        "performance_self_test");
    assert_true(o.ok[BR_REVIEW_RULE_LIMITS]);
    assert_true(o.ok[BR_REVIEW_RULE_QUOTA]);
    assert_false(cm_json_get_bool(check, "ok", true));
    assert_int_equal(br_review_first_failure(&o, ~0u), BR_REVIEW_RULE_MATERIALS);
    assert_int_equal(br_review_first_failure(&o, 1u << BR_REVIEW_RULE_QUOTA), -1);
}

static void test_instance_limits_name_the_field(void **state)
{
    _cleanup_json_ json_object *inst =
        instances("[{\"vcpus\":2,\"memory_mib\":4096,\"disk_gib\":40,\"image\":\"a\"},"
                  " {\"vcpus\":64,\"memory_mib\":4096,\"disk_gib\":4000,\"image\":\"a\"}]");
    BrReviewInput in = {.kind = BR_REQUEST_KIND_NEW,
                        .policy = &policies->review,
                        .instances = inst,
                        .materials_present = ~0u,
                        .usage = &roomy,
                        .requested = br_resources_of_instances(inst)};
    BrReviewOutcome o;
    _cleanup_json_ json_object *check = br_review_check(&in, &o);
    json_object *v = cm_json_get(rule(check, "instance_limits"), "violations");

    assert_false(o.ok[BR_REVIEW_RULE_LIMITS]);
    assert_int_equal(json_object_array_length(v), 2);
    assert_string_equal(cm_json_get_str(json_object_array_get_idx(v, 0), "field", ""),
                        "/resources/instances/1/vcpus");
    assert_int_equal(cm_json_get_int(json_object_array_get_idx(v, 0), "value", 0), 64);
    assert_int_equal(cm_json_get_int(json_object_array_get_idx(v, 0), "max", 0), 32);
    assert_string_equal(cm_json_get_str(json_object_array_get_idx(v, 1), "field", ""),
                        "/resources/instances/1/disk_gib");
}

static void test_quota_headroom_counts_allocated_and_approved(void **state)
{
    _cleanup_json_ json_object *inst =
        instances("[{\"vcpus\":8,\"memory_mib\":16384,\"disk_gib\":100,\"image\":\"a\"}]");
    BrQuotaUsage u = {
        .quota = {.vcpus = 20, .memory_mib = 65536, .disk_gib = 1000, .instances = 10},
        .allocated = {.vcpus = 8, .memory_mib = 16384, .disk_gib = 200, .instances = 2},
        .approved = {.vcpus = 6, .memory_mib = 8192, .disk_gib = 100, .instances = 1},
    };
    BrReviewInput in = {.kind = BR_REQUEST_KIND_NEW,
                        .policy = &policies->review,
                        .instances = inst,
                        .materials_present = ~0u,
                        .usage = &u,
                        .requested = br_resources_of_instances(inst)};
    BrReviewOutcome o;
    _cleanup_json_ json_object *check = br_review_check(&in, &o);
    json_object *q = rule(check, "quota_headroom");

    /* 8 + 6 + 8 = 22 vCPUs > 20; memory 40960 <= 65536; disk 400 <= 1000; 4 <= 10. */
    assert_false(o.ok[BR_REVIEW_RULE_QUOTA]);
    json_object *exceeded = cm_json_get(q, "exceeded");
    assert_int_equal(json_object_array_length(exceeded), 1);
    assert_string_equal(json_object_get_string(json_object_array_get_idx(exceeded, 0)), "vcpus");
    assert_int_equal(cm_json_get_int(cm_json_get(q, "headroom_after"), "vcpus", 0), -2);
    assert_int_equal(cm_json_get_int(cm_json_get(q, "headroom_after"), "memory_mib", 0),
                     65536 - 40960);
    assert_int_equal(cm_json_get_int(cm_json_get(q, "requested"), "vcpus", 0), 8);
    assert_int_equal(br_review_first_failure(&o, ~0u), BR_REVIEW_RULE_QUOTA);

    /* With 2 vCPUs less requested it fits exactly. */
    in.requested.vcpus = 6;
    json_object_put(br_review_check(&in, &o));
    assert_true(o.ok[BR_REVIEW_RULE_QUOTA]);
}

static void test_termination_needs_backup_proof_only(void **state)
{
    BrReviewInput in = {.kind = BR_REQUEST_KIND_TERMINATION,
                        .policy = &policies->review,
                        .materials_present = 0,
                        .usage = &roomy};
    BrReviewOutcome o;
    json_object_put(br_review_check(&in, &o));
    assert_int_equal(o.missing, M(BACKUP_PROOF));
    in.materials_present = M(BACKUP_PROOF);
    json_object_put(br_review_check(&in, &o));
    assert_int_equal(br_review_first_failure(&o, ~0u), -1);
}

static void test_unenforced_rule_is_shown_but_not_blocking(void **state)
{
    BrReviewPolicy p = policies->review;
    BrQuotaUsage u = {.quota = {.vcpus = 1}};
    BrReviewInput in = {
        .kind = BR_REQUEST_KIND_CHANGE, .policy = &p, .usage = &u, .requested = {.vcpus = 4}};
    BrReviewOutcome o;
    p.quota_enforce = false;
    _cleanup_json_ json_object *check = br_review_check(&in, &o);
    assert_false(o.ok[BR_REVIEW_RULE_QUOTA]);
    assert_false(cm_json_get_bool(rule(check, "quota_headroom"), "enforce", true));
    assert_int_equal(br_review_first_failure(&o, ~0u), -1);
}

static void test_quota_only_blocks_growth(void **state)
{
    /* Usage above a lowered quota must not block a termination or a shrinking change. */
    BrQuotaUsage u = {
        .quota = {.vcpus = 4, .memory_mib = 4096, .disk_gib = 10, .instances = 1},
        .allocated = {.vcpus = 8, .memory_mib = 8192, .disk_gib = 100, .instances = 2},
    };
    BrReviewInput in = {.kind = BR_REQUEST_KIND_TERMINATION,
                        .policy = &policies->review,
                        .materials_present = ~0u,
                        .usage = &u};
    BrReviewOutcome o;
    json_object_put(br_review_check(&in, &o));
    assert_true(o.ok[BR_REVIEW_RULE_QUOTA]);
    in.kind = BR_REQUEST_KIND_CHANGE;
    json_object_put(br_review_check(&in, &o));
    assert_true(o.ok[BR_REVIEW_RULE_QUOTA]);
    in.requested.memory_mib = 1024; /* grows memory only: memory is what exceeds */
    _cleanup_json_ json_object *check = br_review_check(&in, &o);
    assert_false(o.ok[BR_REVIEW_RULE_QUOTA]);
    json_object *exceeded = cm_json_get(rule(check, "quota_headroom"), "exceeded");
    assert_int_equal(json_object_array_length(exceeded), 1);
    assert_string_equal(json_object_get_string(json_object_array_get_idx(exceeded, 0)),
                        "memory_mib");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_policy_loaded),
        cmocka_unit_test(test_materials_missing_named),
        cmocka_unit_test(test_instance_limits_name_the_field),
        cmocka_unit_test(test_quota_headroom_counts_allocated_and_approved),
        cmocka_unit_test(test_termination_needs_backup_proof_only),
        cmocka_unit_test(test_unenforced_rule_is_shown_but_not_blocking),
        cmocka_unit_test(test_quota_only_blocks_growth),
    };
    return cmocka_run_group_tests(tests, load_policies, free_policies);
}
