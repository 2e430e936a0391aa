/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "br-finding.h"
#include "br-material.h"
#include "br-review.h"
#include "cm-json.h"

CM_ENUM_IMPL(br_review_rule, BrReviewRule, BR_REVIEW_RULE_MAX, "materials_complete",
             "instance_limits", "quota_headroom", "images_in_catalog", "open_findings")

static json_object *materials_rule(const BrReviewInput *in, BrReviewOutcome *o)
{
    json_object *rule = json_object_new_object();
    json_object *required = json_object_new_array(), *present = json_object_new_array(),
                *missing = json_object_new_array();
    unsigned need = in->policy->required[in->kind];

    o->missing = need & ~in->materials_present;
    for (int m = 0; m < BR_MATERIAL_MAX; m++) {
        json_object *name = json_object_new_string(br_material_kind_to_string((BrMaterialKind)m));
        if (need & (1u << m))
            json_object_array_add(required, json_object_get(name));
        if (in->materials_present & (1u << m))
            json_object_array_add(present, json_object_get(name));
        if (o->missing & (1u << m))
            json_object_array_add(missing, json_object_get(name));
        json_object_put(name);
    }
    o->ok[BR_REVIEW_RULE_MATERIALS] = o->missing == 0;
    o->enforced[BR_REVIEW_RULE_MATERIALS] = in->policy->materials_enforce;
    json_object_object_add(rule, "required", required);
    json_object_object_add(rule, "present", present);
    json_object_object_add(rule, "missing", missing);
    return rule;
}

static void limit_violation(json_object *list, size_t idx, const char *field, int64_t value,
                            int64_t max)
{
    json_object *v = json_object_new_object();
    char ptr[96];
    snprintf(ptr, sizeof(ptr), "/resources/instances/%zu/%s", idx, field);
    json_object_object_add(v, "field", json_object_new_string(ptr));
    json_object_object_add(v, "value", json_object_new_int64(value));
    json_object_object_add(v, "max", json_object_new_int64(max));
    json_object_array_add(list, v);
}

static json_object *limits_rule(const BrReviewInput *in, BrReviewOutcome *o)
{
    const BrReviewPolicy *p = in->policy;
    json_object *rule = json_object_new_object(), *limits = json_object_new_object();
    json_object *violations = json_object_new_array();
    size_t n = in->instances ? json_object_array_length(in->instances) : 0;

    json_object_object_add(limits, "max_vcpus", json_object_new_int64(p->max_vcpus));
    json_object_object_add(limits, "max_memory_mib", json_object_new_int64(p->max_memory_mib));
    json_object_object_add(limits, "max_disk_gib", json_object_new_int64(p->max_disk_gib));
    json_object_object_add(limits, "max_instances", json_object_new_int64(p->max_instances));
    for (size_t i = 0; i < n; i++) {
        json_object *inst = json_object_array_get_idx(in->instances, i);
        int64_t v;
        if ((v = cm_json_get_int(inst, "vcpus", 0)) > p->max_vcpus)
            limit_violation(violations, i, "vcpus", v, p->max_vcpus);
        if ((v = cm_json_get_int(inst, "memory_mib", 0)) > p->max_memory_mib)
            limit_violation(violations, i, "memory_mib", v, p->max_memory_mib);
        if ((v = cm_json_get_int(inst, "disk_gib", 0)) > p->max_disk_gib)
            limit_violation(violations, i, "disk_gib", v, p->max_disk_gib);
    }
    if ((int64_t)n > p->max_instances) {
        json_object *v = json_object_new_object();
        json_object_object_add(v, "field", json_object_new_string("/resources/instances"));
        json_object_object_add(v, "value", json_object_new_int64((int64_t)n));
        json_object_object_add(v, "max", json_object_new_int64(p->max_instances));
        json_object_array_add(violations, v);
    }
    o->ok[BR_REVIEW_RULE_LIMITS] = json_object_array_length(violations) == 0;
    o->enforced[BR_REVIEW_RULE_LIMITS] = p->limits_enforce;
    json_object_object_add(rule, "limits", limits);
    json_object_object_add(rule, "instances", json_object_new_int64((int64_t)n));
    json_object_object_add(rule, "violations", violations);
    return rule;
}

static json_object *quota_rule(const BrReviewInput *in, BrReviewOutcome *o)
{
    json_object *rule = json_object_new_object(), *exceeded = json_object_new_array();
    const BrQuotaUsage *u = in->usage;
    BrResources after;
    struct {
        const char *name;
        int64_t quota, after;
    } dims[4];

    after = u->allocated;
    br_resources_add(&after, &u->approved);
    br_resources_add(&after, &in->requested);
    dims[0] = (typeof(dims[0])){"vcpus", u->quota.vcpus, after.vcpus};
    dims[1] = (typeof(dims[0])){"memory_mib", u->quota.memory_mib, after.memory_mib};
    dims[2] = (typeof(dims[0])){"disk_gib", u->quota.disk_gib, after.disk_gib};
    dims[3] = (typeof(dims[0])){"instances", u->quota.instances, after.instances};

    BrResources headroom = {
        .vcpus = u->quota.vcpus - after.vcpus,
        .memory_mib = u->quota.memory_mib - after.memory_mib,
        .disk_gib = u->quota.disk_gib - after.disk_gib,
        .instances = u->quota.instances - after.instances,
    };
    /* Only what the request adds can exceed the quota: a termination, or a change that
     * shrinks, is never refused because usage already stands above a lowered quota. */
    const int64_t asked[4] = {in->requested.vcpus, in->requested.memory_mib, in->requested.disk_gib,
                              in->requested.instances};
    for (size_t i = 0; i < 4; i++)
        if (asked[i] > 0 && dims[i].after > dims[i].quota)
            json_object_array_add(exceeded, json_object_new_string(dims[i].name));

    o->ok[BR_REVIEW_RULE_QUOTA] = json_object_array_length(exceeded) == 0;
    o->enforced[BR_REVIEW_RULE_QUOTA] = in->policy->quota_enforce;
    json_object_object_add(rule, "quota", br_resources_to_json(&u->quota));
    json_object_object_add(rule, "allocated", br_resources_to_json(&u->allocated));
    json_object_object_add(rule, "approved", br_resources_to_json(&u->approved));
    json_object_object_add(rule, "requested", br_resources_to_json(&in->requested));
    json_object_object_add(rule, "headroom_after", br_resources_to_json(&headroom));
    json_object_object_add(rule, "exceeded", exceeded);
    return rule;
}

static json_object *catalog_rule(const BrReviewInput *in, BrReviewOutcome *o)
{
    json_object *rule = json_object_new_object(), *unknown = json_object_new_array();
    json_object *known = json_object_new_array();
    size_t n = in->instances ? json_object_array_length(in->instances) : 0;

    for (size_t k = 0; in->catalog && k < in->catalog->n_images; k++)
        json_object_array_add(known, json_object_new_string(in->catalog->images[k].name));
    for (size_t i = 0; in->catalog && i < n; i++) {
        const char *image =
            cm_json_get_str(json_object_array_get_idx(in->instances, i), "image", "");
        bool found = false;
        for (size_t k = 0; k < in->catalog->n_images && !found; k++)
            found = strcmp(in->catalog->images[k].name, image) == 0;
        if (!found) {
            json_object *v = json_object_new_object();
            char ptr[64];
            snprintf(ptr, sizeof(ptr), "/resources/instances/%zu/image", i);
            json_object_object_add(v, "field", json_object_new_string(ptr));
            json_object_object_add(v, "image", json_object_new_string(image));
            json_object_array_add(unknown, v);
        }
    }
    o->ok[BR_REVIEW_RULE_CATALOG] = json_object_array_length(unknown) == 0;
    o->enforced[BR_REVIEW_RULE_CATALOG] = true;
    json_object_object_add(rule, "catalog", known);
    json_object_object_add(rule, "violations", unknown);
    return rule;
}

/* 合理规划、按需分配: a department asking for more while its resources sit idle or
 * over-sized is shown so; the reviewer weighs it, the rule blocks nothing. */
static json_object *findings_rule(const BrReviewInput *in, BrReviewOutcome *o)
{
    json_object *rule = json_object_new_object(), *list = json_object_new_array();
    int64_t idle = 0, over = 0, vcpus = 0, mem = 0, fen = 0;
    size_t n = in->findings && in->kind != BR_REQUEST_KIND_TERMINATION
                   ? json_object_array_length(in->findings)
                   : 0;
    for (size_t i = 0; i < n; i++) {
        json_object *f = json_object_array_get_idx(in->findings, i);
        const char *kind = cm_json_get_str(f, "kind", "");
        idle += strcmp(kind, "idle") == 0;
        over += strcmp(kind, "over_provisioned") == 0;
        /* A finding that also grows one dimension frees nothing there. */
        int64_t fv = cm_json_get_int(f, "frees_vcpus", 0);
        int64_t fm = cm_json_get_int(f, "frees_memory_mib", 0);
        vcpus += fv > 0 ? fv : 0;
        mem += fm > 0 ? fm : 0;
        fen += cm_json_get_int(f, "monthly_saving_fen", 0);
        json_object_array_add(list, json_object_get(f));
    }
    o->ok[BR_REVIEW_RULE_FINDINGS] = n == 0;
    o->enforced[BR_REVIEW_RULE_FINDINGS] = false;
    json_object_object_add(rule, "idle", json_object_new_int64(idle));
    json_object_object_add(rule, "over_provisioned", json_object_new_int64(over));
    json_object_object_add(rule, "reclaimable_vcpus", json_object_new_int64(vcpus));
    json_object_object_add(rule, "reclaimable_memory_mib", json_object_new_int64(mem));
    /* What they would save a month, in fen (docs/costs.md "Waste in money"). */
    json_object_object_add(rule, "reclaimable_monthly_saving_fen", json_object_new_int64(fen));
    json_object_object_add(rule, "findings", list);
    return rule;
}

json_object *br_review_check(const BrReviewInput *in, BrReviewOutcome *ret)
{
    BrReviewOutcome o = {0};
    json_object *check = json_object_new_object(), *rules = json_object_new_array();
    json_object *parts[BR_REVIEW_RULE_MAX];
    bool all = true;

    parts[BR_REVIEW_RULE_MATERIALS] = materials_rule(in, &o);
    parts[BR_REVIEW_RULE_LIMITS] = limits_rule(in, &o);
    parts[BR_REVIEW_RULE_QUOTA] = quota_rule(in, &o);
    parts[BR_REVIEW_RULE_CATALOG] = catalog_rule(in, &o);
    parts[BR_REVIEW_RULE_FINDINGS] = findings_rule(in, &o);
    for (int i = 0; i < BR_REVIEW_RULE_MAX; i++) {
        json_object *r = json_object_new_object();
        json_object_object_add(r, "rule",
                               json_object_new_string(br_review_rule_to_string((BrReviewRule)i)));
        json_object_object_add(r, "enforce", json_object_new_boolean(o.enforced[i]));
        json_object_object_add(r, "ok", json_object_new_boolean(o.ok[i]));
        json_object_object_foreach(parts[i], key, val)
        {
            json_object_object_add(r, key, json_object_get(val));
        }
        json_object_put(parts[i]);
        json_object_array_add(rules, r);
        all = all && o.ok[i];
    }
    json_object_object_add(check, "ok", json_object_new_boolean(all));
    json_object_object_add(check, "rules", rules);
    if (ret)
        *ret = o;
    return check;
}

int br_review_first_failure(const BrReviewOutcome *o, unsigned mask)
{
    for (int i = 0; i < BR_REVIEW_RULE_MAX; i++)
        if ((mask & (1u << i)) && o->enforced[i] && !o->ok[i])
            return i;
    return -1;
}

static int64_t growth(int64_t asked, int64_t held)
{
    return asked > held ? asked - held : 0;
}

int br_review_request(CmDb *db, const BrPolicies *policies, const BrRequestRow *row,
                      json_object **ret_check, BrReviewOutcome *ret_outcome, CmError *err)
{
    _cleanup_json_ json_object *resources = NULL, *findings = NULL;
    BrReviewInput in = {.kind = row->kind,
                        .policy = &policies->review,
                        .catalog = &policies->catalog,
                        .requested = row->totals};
    BrQuotaUsage usage;
    json_object *check;
    int r;

    r = br_material_list(db, row->id, NULL, &in.materials_present, err);
    if (r < 0)
        return r;
    r = br_quota_usage(db, row->department_id, row->id, &usage, err);
    if (r == -ENOENT)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "department vanished");
    if (r < 0)
        return r;
    if (row->resources)
        cm_json_parse(row->resources, strlen(row->resources), &resources, NULL);
    in.instances = cm_json_get(resources, "instances");
    in.usage = &usage;
    if (row->kind == BR_REQUEST_KIND_TERMINATION) {
        in.requested = (BrResources){0};
    } else if (row->kind == BR_REQUEST_KIND_CHANGE && row->allocation_id) {
        /* A change asks for the difference between the new and the current size. */
        BrAllocationRow a;
        r = br_allocation_find(db, row->allocation_id, 0, 0, &a, err);
        if (r < 0)
            return r;
        if (r > 0) {
            in.requested.vcpus = growth(in.requested.vcpus, a.totals.vcpus);
            in.requested.memory_mib = growth(in.requested.memory_mib, a.totals.memory_mib);
            in.requested.disk_gib = growth(in.requested.disk_gib, a.totals.disk_gib);
            in.requested.instances = growth(in.requested.instances, a.totals.instances);
        }
    }
    /* The department's live idle and over-provisioned findings, for the reviewer. */
    r = br_finding_list_reclaimable(db, row->department_id, &policies->pricing, &findings, err);
    if (r < 0)
        return r;
    in.findings = findings;
    check = br_review_check(&in, ret_outcome);
    if (ret_check)
        *ret_check = check;
    else
        json_object_put(check);
    return 0;
}
