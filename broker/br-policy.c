/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "br-policy.h"
#include "br-schemas.h"
#include "cm-json.h"
#include "cm-log.h"

CM_ENUM_IMPL(br_material_kind, BrMaterialKind, BR_MATERIAL_MAX, "construction_plan",
             "performance_self_test", "security_self_test", "backup_proof", "test_report", "other")

#define POLICY_MAX_BYTES (1024 * 1024)

static void review_policy_clear(BrReviewPolicy *p)
{
    if (p->media_types)
        for (char **t = p->media_types; *t; t++)
            free(*t);
    free(p->media_types);
    memset(p, 0, sizeof(*p));
}

static int review_policy_parse(json_object *doc, BrReviewPolicy *p, CmError *err)
{
    json_object *rules = cm_json_get(doc, "rules");
    json_object *mat = cm_json_get(rules, "materials_complete");
    json_object *lim = cm_json_get(rules, "instance_limits");
    json_object *quota = cm_json_get(rules, "quota_headroom");
    json_object *files = cm_json_get(doc, "materials");
    json_object *defq = cm_json_get(doc, "default_quota");
    json_object *required = cm_json_get(mat, "required");
    json_object *types = cm_json_get(files, "media_types");

    p->materials_enforce = cm_json_get_bool(mat, "enforce", true);
    for (int k = 0; k < BR_REQUEST_KIND_MAX; k++) {
        json_object *list = cm_json_get(required, br_request_kind_to_string((BrRequestKind)k));
        size_t n = list ? json_object_array_length(list) : 0;
        for (size_t i = 0; i < n; i++) {
            int m = br_material_kind_from_string(
                json_object_get_string(json_object_array_get_idx(list, i)));
            if (m < 0)
                return cm_error_set(err, CM_ERROR_UNPROCESSABLE, "/rules/materials_complete",
                                    "unknown material kind");
            p->required[k] |= 1u << m;
        }
    }
    p->limits_enforce = cm_json_get_bool(lim, "enforce", true);
    p->max_vcpus = cm_json_get_int(lim, "max_vcpus", 32);
    p->max_memory_mib = cm_json_get_int(lim, "max_memory_mib", 131072);
    p->max_disk_gib = cm_json_get_int(lim, "max_disk_gib", 2048);
    p->max_instances = cm_json_get_int(lim, "max_instances", 20);
    p->quota_enforce = cm_json_get_bool(quota, "enforce", true);
    p->material_max_bytes = cm_json_get_int(files, "max_bytes", 32 * 1024 * 1024);

    size_t n = types ? json_object_array_length(types) : 0;
    p->media_types = calloc(n + 1, sizeof(char *));
    if (!p->media_types)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    for (size_t i = 0; i < n; i++) {
        p->media_types[i] = strdup(json_object_get_string(json_object_array_get_idx(types, i)));
        if (!p->media_types[i])
            return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    }
    p->default_quota.vcpus = cm_json_get_int(defq, "vcpus", 0);
    p->default_quota.memory_mib = cm_json_get_int(defq, "memory_mib", 0);
    p->default_quota.disk_gib = cm_json_get_int(defq, "disk_gib", 0);
    p->default_quota.instances = cm_json_get_int(defq, "instances", 0);
    return 0;
}

static void catalog_policy_clear(BrCatalogPolicy *c)
{
    for (size_t i = 0; i < c->n_images; i++) {
        free(c->images[i].name);
        free(c->images[i].pool);
        free(c->images[i].volume);
        free(c->images[i].format);
    }
    free(c->images);
    free(c->network);
    memset(c, 0, sizeof(*c));
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static int catalog_policy_parse(json_object *doc, BrPolicies *p, CmError *err)
{
    BrCatalogPolicy *c = &p->catalog;
    json_object *images = cm_json_get(doc, "images");
    size_t n = json_object_array_length(images);

    c->images = calloc(n, sizeof(*c->images));
    if (!c->images)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    c->n_images = n;
    for (size_t i = 0; i < n; i++) {
        json_object *img = json_object_array_get_idx(images, i);
        for (size_t j = 0; j < i; j++)
            if (strcmp(c->images[j].name, cm_json_get_str(img, "name", "")) == 0)
                return cm_error_set(err, CM_ERROR_UNPROCESSABLE, "/images",
                                    "image '%s' is listed twice", c->images[j].name);
        c->images[i].name = strdup(cm_json_get_str(img, "name", ""));
        c->images[i].pool = strdup(cm_json_get_str(img, "pool", ""));
        c->images[i].volume = strdup(cm_json_get_str(img, "volume", ""));
        c->images[i].format = strdup(cm_json_get_str(img, "format", "qcow2"));
    }
    c->network = dup_or_null(cm_json_get_str(doc, "network", NULL));
    return 0;
}

static int placement_policy_parse(json_object *doc, BrPolicies *p, CmError *err)
{
    json_object *o = cm_json_get(doc, "overcommit");
    (void)err;
    p->placement.cpu_ratio = cm_json_get_double(o, "cpu", 4.0);
    p->placement.ram_ratio = cm_json_get_double(o, "ram", 1.0);
    p->placement.disk_ratio = cm_json_get_double(o, "disk", 1.0);
    p->placement.spread = strcmp(cm_json_get_str(doc, "weigher", "spread"), "spread") == 0;
    p->placement.anti_affinity = cm_json_get_bool(doc, "anti_affinity", true);
    return 0;
}

static int lifecycle_policy_parse(json_object *doc, BrPolicies *p, CmError *err)
{
    BrLifecyclePolicy *l = &p->lifecycle;
    json_object *g = cm_json_get(doc, "growth");
    (void)err;
    l->trial_seconds = cm_json_get_int(doc, "trial_seconds", 1209600);
    l->retention_seconds = cm_json_get_int(doc, "retention_seconds", 2592000);
    l->shutdown_timeout_seconds = cm_json_get_int(doc, "shutdown_timeout_seconds", 120);
    l->vcpus_factor = cm_json_get_double(g, "vcpus_factor", 2);
    l->memory_factor = cm_json_get_double(g, "memory_factor", 2);
    l->max_vcpus = cm_json_get_int(g, "max_vcpus", 64);
    l->max_memory_mib = cm_json_get_int(g, "max_memory_mib", 262144);
    l->machine = dup_or_null(cm_json_get_str(doc, "machine", NULL));
    l->domain_type = strdup(cm_json_get_str(doc, "domain_type", "auto"));
    l->reconcile_seconds = cm_json_get_int(doc, "reconcile_seconds", 60);
    l->job_retry_seconds = cm_json_get_int(doc, "job_retry_seconds", 900);
    return 0;
}

static int metering_policy_parse(json_object *doc, BrPolicies *p, CmError *err)
{
    (void)err;
    p->metering.sample_retention_days = cm_json_get_int(doc, "sample_retention_days", 35);
    p->metering.max_clock_skew_seconds = cm_json_get_int(doc, "max_clock_skew_seconds", 600);
    p->metering.rollup_interval_seconds = cm_json_get_int(doc, "rollup_interval_seconds", 3600);
    p->metering.max_unowned_per_window = cm_json_get_int(doc, "max_unowned_per_window", 64);
    return 0;
}

static int assessment_policy_parse(json_object *doc, BrPolicies *p, CmError *err)
{
    BrAssessmentPolicy *a = &p->assessment;
    json_object *idle = cm_json_get(doc, "idle"), *over = cm_json_get(doc, "over_provisioned");
    json_object *under = cm_json_get(doc, "under_provisioned");
    json_object *rec = cm_json_get(doc, "recommendation"), *ev = cm_json_get(doc, "evidence");
    json_object *sc = cm_json_get(doc, "scores"), *w = cm_json_get(sc, "weights");
    json_object *sw = cm_json_get(sc, "security_weights");
    const char *mode = cm_json_get_str(rec, "mode", "moderate");

    (void)err;
    a->idle_window = cm_json_get_int(idle, "window_seconds", 1209600);
    a->idle_share = cm_json_get_double(idle, "share", 0.95);
    a->idle_cpu_cores = cm_json_get_double(idle, "cpu_cores_below", 0.03);
    a->idle_net_in_bps = cm_json_get_double(idle, "net_in_bytes_per_second_below", 2000);
    a->idle_net_out_bps = cm_json_get_double(idle, "net_out_bytes_per_second_below", 1000);
    a->over_window = cm_json_get_int(over, "window_seconds", 2592000);
    a->over_cpu_p95 = cm_json_get_double(over, "cpu_p95_below", 0.40);
    a->over_mem_p95 = cm_json_get_double(over, "memory_p95_below", 0.60);
    a->under_window = cm_json_get_int(under, "window_seconds", 2592000);
    a->under_cpu_p95 = cm_json_get_double(under, "cpu_p95_above", 0.90);
    a->under_mem_p95 = cm_json_get_double(under, "memory_p95_above", 0.90);
    a->mode = strcmp(mode, "conservative") == 0 ? BR_RIGHTSIZE_CONSERVATIVE
              : strcmp(mode, "aggressive") == 0 ? BR_RIGHTSIZE_AGGRESSIVE
                                                : BR_RIGHTSIZE_MODERATE;
    a->headroom = cm_json_get_double(rec, "headroom", 0.20);
    a->min_vcpus = cm_json_get_int(rec, "min_vcpus", 1);
    a->min_memory_mib = cm_json_get_int(rec, "min_memory_mib", 512);
    a->memory_step_mib = cm_json_get_int(rec, "memory_step_mib", 256);
    a->min_coverage = cm_json_get_double(ev, "min_coverage", 0.80);
    a->min_age_seconds = cm_json_get_int(ev, "min_age_seconds", 432000);
    a->run_interval_seconds = cm_json_get_int(doc, "run_interval_seconds", 86400);
    a->w_cloud = cm_json_get_double(w, "cloud_share", 0.3);
    a->w_efficiency = cm_json_get_double(w, "efficiency", 0.4);
    a->w_security = cm_json_get_double(w, "security", 0.3);
    a->w_test = cm_json_get_double(sw, "security_test_passed", 0.4);
    a->w_backup = cm_json_get_double(sw, "backup_attested", 0.3);
    a->w_vulns = cm_json_get_double(sw, "no_open_severe_vulnerabilities", 0.2);
    a->w_incidents = cm_json_get_double(sw, "no_incidents", 0.1);
    a->backup_max_age_days = cm_json_get_int(sc, "backup_max_age_days", 31);
    return 0;
}

static int pricing_parse(json_object *doc, BrPolicies *p, CmError *err)
{
    return br_pricing_parse(doc, &p->pricing, err);
}

static int service_quality_parse(json_object *doc, BrPolicies *p, CmError *err)
{
    return br_sla_parse(doc, &p->service_quality, err);
}

static int review_parse(json_object *doc, BrPolicies *p, CmError *err)
{
    return review_policy_parse(doc, &p->review, err);
}

/* One entry per policy file: its schema and its parser. */
static const struct {
    const char *name;
    const char *schema;
    int (*parse)(json_object *doc, BrPolicies *p, CmError *err);
} policy_files[] = {
    {"review", "policy-review", review_parse},
    {"catalog", "policy-catalog", catalog_policy_parse},
    {"placement", "policy-placement", placement_policy_parse},
    {"lifecycle", "policy-lifecycle", lifecycle_policy_parse},
    {"metering", "policy-metering", metering_policy_parse},
    {"assessment", "policy-assessment", assessment_policy_parse},
    {"pricing", "policy-pricing", pricing_parse},
    {"service-quality", "policy-service-quality", service_quality_parse},
};

int br_policies_load(const char *dir, BrPolicies **ret, CmError *err)
{
    BrPolicies *p;
    int r = 0;

    p = calloc(1, sizeof(*p));
    if (!p)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    p->refs = 1;
    p->dir = strdup(dir);
    p->documents = json_object_new_object();

    for (size_t i = 0; i < ELEMENTSOF(policy_files) && r >= 0; i++) {
        _cleanup_free_ char *path = NULL;
        json_object *doc = NULL;

        if (asprintf(&path, "%s/%s.json", dir, policy_files[i].name) < 0) {
            path = NULL;
            r = cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
            break;
        }
        r = cm_json_load_file(path, POLICY_MAX_BYTES, &doc, err);
        if (r < 0)
            break;
        r = br_schema_check(policy_files[i].schema, doc, err);
        if (r < 0) {
            cm_error_prefix_message(err, path);
            json_object_put(doc);
            break;
        }
        json_object_object_add(p->documents, policy_files[i].name, doc);
        r = policy_files[i].parse(doc, p, err);
        if (r < 0)
            cm_error_prefix_message(err, path);
    }
    if (r < 0) {
        br_policies_unref(p);
        return r;
    }
    *ret = p;
    return 0;
}

BrPolicies *br_policies_ref(BrPolicies *p)
{
    if (p)
        __atomic_add_fetch(&p->refs, 1, __ATOMIC_RELAXED);
    return p;
}

BrPolicies *br_policies_unref(BrPolicies *p)
{
    if (!p)
        return NULL;
    if (__atomic_sub_fetch(&p->refs, 1, __ATOMIC_ACQ_REL) > 0)
        return NULL;
    review_policy_clear(&p->review);
    catalog_policy_clear(&p->catalog);
    br_pricing_clear(&p->pricing);
    free(p->lifecycle.machine);
    free(p->lifecycle.domain_type);
    json_object_put(p->documents);
    free(p->dir);
    free(p);
    return NULL;
}

bool br_policy_media_type_allowed(const BrReviewPolicy *p, const char *media_type)
{
    for (char **t = p->media_types; t && *t; t++)
        if (strcmp(*t, media_type) == 0)
            return true;
    return false;
}

const BrCatalogImage *br_policy_image(const BrPolicies *p, const char *name)
{
    for (size_t i = 0; name && i < p->catalog.n_images; i++)
        if (strcmp(p->catalog.images[i].name, name) == 0)
            return &p->catalog.images[i];
    return NULL;
}

int64_t br_policy_max_vcpus(const BrLifecyclePolicy *l, int64_t vcpus)
{
    int64_t m = (int64_t)((double)vcpus * l->vcpus_factor);
    if (m > l->max_vcpus)
        m = l->max_vcpus;
    return m < vcpus ? vcpus : m;
}

int64_t br_policy_max_memory_mib(const BrLifecyclePolicy *l, int64_t memory_mib)
{
    int64_t m = (int64_t)((double)memory_mib * l->memory_factor);
    if (m > l->max_memory_mib)
        m = l->max_memory_mib;
    return m < memory_mib ? memory_mib : m;
}
