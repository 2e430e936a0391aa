/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The arithmetic of a bill (br-pricing.c, br-cost.c) with bills worked out by hand
 * (docs/costs.md): a resize mid-month priced in two parts, a price change mid-month, a
 * termination whose volume is retained (disk only), trial against production and an image
 * priced otherwise, the month under way, the service fee shared by time, a finding's monthly
 * cost, and a statement whose departments add up to its total to the fen. On a store (SQLite,
 * and PostgreSQL when CB_TEST_PG_URL is set): br-instance.c writes a history row in the
 * transaction of each change, and the statement's read gives them back.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "br-cost.h"
#include "br-instance.h"
#include "br-schemas.h"
#include "br-tx.h"
#include "cbt-store.h"
#include "cm-json.h"
#include "cm-time.h"

#define H INT64_C(3600000)

/* Production 0.12 / 0.03 / 0.35 from 2026-01-01, the image "win" at 0.30 per vCPU-hour;
 * from 2026-11-16 production 0.10 (win 0.25); trial 0.05 / 0.01 / 0 all year. The fee 300,000
 * yuan a month, 330,000 from 2026-11-16. */
static const char *policy_text =
    "{\"currency\": \"CNY\", \"hours_per_month\": 730, \"prices\": ["
    " {\"from\": \"2026-01-01\", \"purpose\": \"production\", \"vcpu_hour\": 0.12,"
    "  \"memory_gib_hour\": 0.03, \"disk_gib_month\": 0.35,"
    "  \"images\": [{\"image\": \"win\", \"vcpu_hour\": 0.30}]},"
    " {\"from\": \"2026-11-16\", \"purpose\": \"production\", \"vcpu_hour\": 0.10,"
    "  \"memory_gib_hour\": 0.03, \"disk_gib_month\": 0.35,"
    "  \"images\": [{\"image\": \"win\", \"vcpu_hour\": 0.25}]},"
    " {\"from\": \"2026-01-01\", \"purpose\": \"trial\", \"vcpu_hour\": 0.05,"
    "  \"memory_gib_hour\": 0.01, \"disk_gib_month\": 0}],"
    " \"service_fee\": [{\"from\": \"2026-01-01\", \"monthly\": 300000},"
    "  {\"from\": \"2026-11-16T00:00:00Z\", \"monthly\": 330000}]}";

static BrPricingPolicy P;

static int64_t ms(const char *iso)
{
    int64_t t = 0;
    assert_int_equal(cm_time_parse_iso(iso, &t), 0);
    return t;
}

static int setup(void **state)
{
    json_object *doc = NULL;
    CmError err = {0};
    (void)state;
    assert_int_equal(cm_json_parse(policy_text, strlen(policy_text), &doc, &err), 0);
    assert_int_equal(br_pricing_parse(doc, &P, &err), 0);
    json_object_put(doc);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    br_pricing_clear(&P);
    return 0;
}

static BrCostEvent event(const char *at, const char *state, int64_t vcpus, int64_t mib, int64_t gib)
{
    BrCostEvent e = {.at_ms = ms(at), .vcpus = vcpus, .memory_mib = mib, .disk_gib = gib};
    br_cost_holds(state, &e.compute, &e.disk);
    return e;
}

static void assert_part(const BrCostPart *x, const char *from, const char *to, int64_t vcpus,
                        int64_t compute, int64_t memory, int64_t disk)
{
    assert_int_equal(x->from_ms, ms(from));
    assert_int_equal(x->to_ms, ms(to));
    assert_int_equal(x->vcpus, vcpus);
    assert_int_equal(x->compute_fen, compute);
    assert_int_equal(x->memory_fen, memory);
    assert_int_equal(x->disk_fen, disk);
}

static const char *DEC = "2026-12-01T00:00:00Z", *JAN = "2027-01-01T00:00:00Z";

/* December (744 h) at 0.10: 2 vCPUs, 4 GiB, 50 GiB until the 11th (240 h), then 4 vCPUs and
 * 8 GiB (504 h). 0.10 × 2 × 240 = 48.00; 0.03 × 4 × 240 = 28.80; 0.35 × 50 × 240 / 744 =
 * 5.645 → 5.65; then 0.10 × 4 × 504 = 201.60; 0.03 × 8 × 504 = 120.96; 17.50 × 504 / 744 =
 * 11.855 → 11.85 (the two disk parts: 17.50, the whole month). */
static void test_resize_mid_month(void **state)
{
    BrCostEvent ev[] = {event("2026-11-20T08:00:00Z", "running", 2, 4096, 50),
                        event("2026-12-11T00:00:00Z", "running", 4, 8192, 50)};
    BrCostPart *parts = NULL;
    size_t n = 0;
    (void)state;
    assert_int_equal(br_cost_parts(&P, false, "base", ev, 2, ms(DEC), ms(JAN), 744 * H, &parts, &n),
                     0);
    assert_int_equal(n, 2);
    assert_part(&parts[0], DEC, "2026-12-11T00:00:00Z", 2, 4800, 2880, 565);
    assert_part(&parts[1], "2026-12-11T00:00:00Z", JAN, 4, 20160, 12096, 1185);
    free(parts);
}

/* November (720 h), 1 vCPU, 2 GiB, 10 GiB all month; 0.12 until the 16th (360 h), then 0.10:
 * 43.20 + 21.60 + 1.75, then 36.00 + 21.60 + 1.75. */
static void test_price_change_mid_month(void **state)
{
    BrCostEvent ev[] = {event("2026-10-01T00:00:00Z", "running", 1, 2048, 10)};
    BrCostPart *parts = NULL;
    size_t n = 0;
    (void)state;
    assert_int_equal(br_cost_parts(&P, false, "base", ev, 1, ms("2026-11-01T00:00:00Z"), ms(DEC),
                                   720 * H, &parts, &n),
                     0);
    assert_int_equal(n, 2);
    assert_part(&parts[0], "2026-11-01T00:00:00Z", "2026-11-16T00:00:00Z", 1, 4320, 2160, 175);
    assert_part(&parts[1], "2026-11-16T00:00:00Z", DEC, 1, 3600, 2160, 175);
    assert_ptr_not_equal(parts[0].rate.entry, parts[1].rate.entry);
    free(parts);
}

/* Running then shut off (both hold the domain: one part of 228 h), the domain undefined with
 * its volume retained at 12:00 on the 10th (disk only, 228 h), deleted on the 20th (nothing).
 * 0.10 × 2 × 228 = 45.60; 0.03 × 2 × 228 = 13.68; 0.35 × 20 × 228 / 744 = 2.145 → 2.15. */
static void test_retained_volume(void **state)
{
    BrCostEvent ev[] = {event("2026-11-02T00:00:00Z", "running", 2, 2048, 20),
                        event("2026-12-10T00:00:00Z", "shutoff", 2, 2048, 20),
                        event("2026-12-10T12:00:00Z", "undefined", 2, 2048, 20),
                        event("2026-12-20T00:00:00Z", "deleted", 2, 2048, 20)};
    BrCostPart *parts = NULL;
    size_t n = 0;
    (void)state;
    assert_int_equal(br_cost_parts(&P, false, "base", ev, 4, ms(DEC), ms(JAN), 744 * H, &parts, &n),
                     0);
    assert_int_equal(n, 2);
    assert_part(&parts[0], DEC, "2026-12-10T12:00:00Z", 2, 4560, 1368, 215);
    assert_part(&parts[1], "2026-12-10T12:00:00Z", "2026-12-20T00:00:00Z", 0, 0, 0, 215);
    assert_int_equal(parts[1].disk_gib, 20);
    assert_int_equal(parts[1].memory_mib, 0);
    free(parts);
}

/* The same instance of image "win" (2 vCPUs, 4 GiB, 10 GiB) all December: as a trial, the
 * trial's rates (no image price): 0.05 × 2 × 744 = 74.40, 0.01 × 4 × 744 = 29.76, disk 0; in
 * production, win's 0.25: 372.00, 89.28, 3.50. */
static void test_trial_production_image(void **state)
{
    BrCostEvent ev[] = {event("2026-11-30T00:00:00Z", "running", 2, 4096, 10)};
    BrCostPart *parts = NULL;
    size_t n = 0;
    (void)state;
    assert_int_equal(br_cost_parts(&P, true, "win", ev, 1, ms(DEC), ms(JAN), 744 * H, &parts, &n),
                     0);
    assert_int_equal(n, 1);
    assert_part(&parts[0], DEC, JAN, 2, 7440, 2976, 0);
    free(parts);
    assert_int_equal(br_cost_parts(&P, false, "win", ev, 1, ms(DEC), ms(JAN), 744 * H, &parts, &n),
                     0);
    assert_int_equal(n, 1);
    assert_part(&parts[0], DEC, JAN, 2, 37200, 8928, 350);
    free(parts);
}

/* Made and placed (nothing held), its volume made at 06:00 on the 1st, defined and running
 * at 06:30; the month under way up to 00:00 on the 2nd: half an hour of 10 GiB of disk alone
 * (0.35 × 10 × 0.5 / 744 = 0.24 fen → 0), then 17.5 h of 1 vCPU, 1 GiB and the disk (1.75,
 * 0.525 → 0.53, 0.0823 → 0.08). */
static void test_month_under_way(void **state)
{
    BrCostEvent ev[] = {event("2026-12-01T05:00:00Z", "pending", 1, 1024, 10),
                        event("2026-12-01T05:10:00Z", "placed", 1, 1024, 10),
                        event("2026-12-01T06:00:00Z", "created", 1, 1024, 10),
                        event("2026-12-01T06:30:00Z", "defined", 1, 1024, 10),
                        event("2026-12-01T06:30:00Z", "running", 1, 1024, 10)};
    BrCostPart *parts = NULL;
    size_t n = 0;
    (void)state;
    assert_int_equal(br_cost_parts(&P, false, "base", ev, 5, ms(DEC), ms("2026-12-02T00:00:00Z"),
                                   744 * H, &parts, &n),
                     0);
    assert_int_equal(n, 2);
    assert_part(&parts[0], "2026-12-01T06:00:00Z", "2026-12-01T06:30:00Z", 0, 0, 0, 0);
    assert_part(&parts[1], "2026-12-01T06:30:00Z", "2026-12-02T00:00:00Z", 1, 175, 53, 8);
    free(parts);
}

/* November: 300,000 for 15 days and 330,000 for 15: 315,000.00 yuan; December: 330,000. */
static void test_service_fee(void **state)
{
    (void)state;
    assert_int_equal(br_pricing_fee_fen(&P, ms("2026-11-01T00:00:00Z"), ms(DEC)), 31500000);
    assert_int_equal(br_pricing_fee_fen(&P, ms(DEC), ms(JAN)), 33000000);
    assert_int_equal(br_pricing_fee_fen(&P, ms("2025-12-01T00:00:00Z"), ms("2026-01-01T00:00:00Z")),
                     0);
}

/* A finding's month: 730 h of 2 vCPUs of win and 4 GiB: 365.00 + 87.60. */
static void test_monthly(void **state)
{
    (void)state;
    assert_int_equal(br_cost_monthly_fen(&P, false, "win", ms(DEC), 2, 4096), 45260);
    assert_int_equal(br_cost_monthly_fen(&P, false, "base", ms(DEC), 1, 0), 7300);
    assert_int_equal(br_cost_monthly_fen(&P, true, "base", ms("2025-06-01T00:00:00Z"), 1, 0), 0);
}

static void test_money(void **state)
{
    json_object *m = br_money_json(41686);
    (void)state;
    assert_string_equal(json_object_to_json_string(m), "416.86");
    json_object_put(m);
    m = br_money_json(5);
    assert_string_equal(json_object_to_json_string(m), "0.05");
    json_object_put(m);
    /* Half a fen rounds up: 0.5 × 1 × 1 h / 1 h in micro-yuan of 5000 = 0.5 fen. */
    assert_int_equal(br_money_fen(5000, 1, H, H), 1);
    assert_int_equal(br_money_fen(4999, 1, H, H), 0);
}

static BrCostInstance instance(int64_t id, int64_t alloc, int64_t dep, const char *code, bool trial,
                               const char *image, const BrCostEvent *ev, size_t n)
{
    BrCostInstance x = {.instance_id = id,
                        .allocation_id = alloc,
                        .system_id = dep * 10,
                        .department_id = dep,
                        .name = strdup("cb-x"),
                        .image = strdup(image),
                        .system = strdup("sys"),
                        .department_code = strdup(code),
                        .department = strdup(code),
                        .trial = trial,
                        .ev = malloc(n * sizeof(*ev)),
                        .n_ev = n};
    memcpy(x.ev, ev, n * sizeof(*ev));
    return x;
}

static int64_t get_fen(json_object *o, const char *key)
{
    return cm_json_get_int(o, key, -1);
}

/* The three bills above in one statement: department a (one allocation with the resized and
 * the retained instance) and b (the trial of win): a = 41686 + 6358, b = 10416, total 58460;
 * every level the exact sum of the one below. */
static void test_statement(void **state)
{
    BrCostEvent e1[] = {event("2026-11-20T08:00:00Z", "running", 2, 4096, 50),
                        event("2026-12-11T00:00:00Z", "running", 4, 8192, 50)};
    BrCostEvent e2[] = {event("2026-11-02T00:00:00Z", "running", 2, 2048, 20),
                        event("2026-12-10T12:00:00Z", "undefined", 2, 2048, 20),
                        event("2026-12-20T00:00:00Z", "deleted", 2, 2048, 20)};
    BrCostEvent e3[] = {event("2026-11-30T00:00:00Z", "running", 2, 4096, 10)};
    BrCostEvent e4[] = {event("2026-12-31T00:00:00Z", "pending", 2, 4096, 10)};
    BrCostInstance *v = calloc(4, sizeof(*v));
    json_object *doc = NULL;
    (void)state;
    v[0] = instance(1, 1, 1, "a", false, "base", e1, 2);
    v[1] = instance(2, 1, 1, "a", false, "base", e2, 3);
    v[2] = instance(3, 2, 2, "b", true, "win", e3, 1);
    v[3] = instance(4, 3, 2, "b", false, "win", e4, 1); /* holds nothing: no line */
    assert_int_equal(br_cost_statement(&P, v, 4, ms(DEC), ms(JAN), ms(JAN), &doc), 0);
    br_cost_instances_free(v, 4);

    json_object *deps = cm_json_get(doc, "departments");
    assert_int_equal(json_object_array_length(deps), 2);
    json_object *a = json_object_array_get_idx(deps, 0), *b = json_object_array_get_idx(deps, 1);
    assert_int_equal(get_fen(a, "total_fen"), 41686 + 6358);
    assert_int_equal(get_fen(b, "total_fen"), 7440 + 2976);
    json_object *total = cm_json_get(doc, "total");
    assert_int_equal(get_fen(total, "total_fen"), 41686 + 6358 + 10416);
    assert_int_equal(get_fen(total, "compute_fen"), 4800 + 20160 + 4560 + 7440);
    assert_string_equal(json_object_to_json_string(cm_json_get(total, "total")), "584.60");
    /* By purpose: instance 3 is a trial's, the others production's; together the total. */
    json_object *purposes = cm_json_get(doc, "purposes");
    assert_int_equal(get_fen(cm_json_get(purposes, "production"), "total_fen"), 41686 + 6358);
    assert_int_equal(get_fen(cm_json_get(purposes, "trial"), "total_fen"), 10416);
    assert_int_equal(get_fen(cm_json_get(purposes, "trial"), "compute_fen"), 7440);
    assert_string_equal(cm_json_get_str(doc, "month", ""), "2026-12");
    assert_true(cm_json_get_bool(doc, "complete", false));

    json_object *allocs =
        cm_json_get(json_object_array_get_idx(cm_json_get(a, "systems"), 0), "allocations");
    assert_int_equal(json_object_array_length(allocs), 1);
    json_object *insts = cm_json_get(json_object_array_get_idx(allocs, 0), "instances");
    assert_int_equal(json_object_array_length(insts), 2);
    json_object *i0 = json_object_array_get_idx(insts, 0);
    assert_int_equal(json_object_array_length(cm_json_get(i0, "parts")), 2);
    assert_int_equal(get_fen(i0, "total_fen"), 41686);
    json_object *p0 = json_object_array_get_idx(cm_json_get(i0, "parts"), 0);
    assert_string_equal(
        json_object_to_json_string(cm_json_get(cm_json_get(p0, "rates"), "vcpu_hour")), "0.1");
    assert_string_equal(cm_json_get_str(p0, "price_from", ""), "2026-11-16");
    /* b's second allocation held nothing in December: not listed. */
    json_object *ballocs =
        cm_json_get(json_object_array_get_idx(cm_json_get(b, "systems"), 0), "allocations");
    assert_int_equal(json_object_array_length(ballocs), 1);
    json_object_put(doc);
}

static void test_parse_errors(void **state)
{
    static const char *const bad[][2] = {
        {"{\"currency\":\"CNY\",\"prices\":[{\"from\":\"2026-01-01\",\"purpose\":\"trial\","
         "\"vcpu_hour\":0,\"memory_gib_hour\":0,\"disk_gib_month\":0},{\"from\":\"2026-01-01\","
         "\"purpose\":\"trial\",\"vcpu_hour\":1,\"memory_gib_hour\":0,\"disk_gib_month\":0}]}",
         "/prices/1/from"},
        {"{\"currency\":\"CNY\",\"prices\":[{\"from\":\"2026-02-30\",\"purpose\":\"trial\","
         "\"vcpu_hour\":0,\"memory_gib_hour\":0,\"disk_gib_month\":0}]}",
         "/prices/0/from"},
        {"{\"currency\":\"CNY\",\"prices\":[{\"from\":\"2026-01-01\",\"purpose\":\"trial\","
         "\"vcpu_hour\":0,\"memory_gib_hour\":0,\"disk_gib_month\":0,\"images\":[{\"image\":"
         "\"w\"},{\"image\":\"w\"}]}]}",
         "/prices/0/images/1/image"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_object *doc = NULL;
        BrPricingPolicy q = {0};
        CmError err = {0};
        assert_int_equal(cm_json_parse(bad[i][0], strlen(bad[i][0]), &doc, &err), 0);
        assert_true(br_pricing_parse(doc, &q, &err) < 0);
        assert_string_equal(err.field, bad[i][1]);
        assert_null(q.prices);
        json_object_put(doc);
    }
}

static void test_holds(void **state)
{
    static const struct {
        const char *state;
        bool compute, disk;
    } want[] = {{"pending", false, false},  {"placed", false, false}, {"created", false, true},
                {"defined", true, true},    {"running", true, true},  {"shutoff", true, true},
                {"undefined", false, true}, {"deleted", false, false}};
    (void)state;
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        bool c, d;
        br_cost_holds(want[i].state, &c, &d);
        assert_int_equal(c, want[i].compute);
        assert_int_equal(d, want[i].disk);
    }
}

/* ---- the history on a store ---- */

static int store_setup(void **state)
{
    bool pg = *(const bool *)*state;
    CbtStore *s = calloc(1, sizeof(*s));
    int r;

    *state = s;
    r = cbt_store_open(s, pg, "cost");
    if (r <= 0)
        return r < 0 ? -1 : 0;
    return cbt_store_exec(s, "INSERT INTO allocations(department_id, system_id, request_id, state,"
                             " purpose, created_at, updated_at) VALUES (1, 1, 1, 'active',"
                             " 'production', 't', 't');");
}

static int store_teardown(void **state)
{
    CbtStore *s = *state;
    cbt_store_close(s);
    free(s);
    return 0;
}

typedef struct {
    int64_t id;
    int step;
} Life;

/* One change of the instance's life per transaction, as the job steps make them. */
static int life_tx(BrTx *tx, void *ctx)
{
    Life *l = ctx;
    const BrInstanceSizes made = {2, 2048, 10, 4, 4096}, grown = {4, 4096, -1, -1, -1};
    switch (l->step) {
    case 0:
        return br_instance_create(tx->db, 1, 0, &made, "debian-12", &l->id, tx->err);
    case 1:
        return br_instance_place(tx->db, l->id, 1, NULL, tx->err);
    case 2:
        return br_instance_set_state(tx->db, l->id, BR_INSTANCE_CREATED, tx->err);
    case 3:
        return br_instance_set_state(tx->db, l->id, BR_INSTANCE_DEFINED, tx->err);
    case 4:
        return br_instance_set_state(tx->db, l->id, BR_INSTANCE_RUNNING, tx->err);
    case 5:
        return br_instance_resize(tx->db, l->id, &grown, tx->err);
    case 6:
        return br_instance_resize(tx->db, l->id, &BR_INSTANCE_SIZES_KEEP, tx->err);
    case 7:
        return br_instance_set_state(tx->db, l->id, BR_INSTANCE_UNDEFINED, tx->err);
    default:
        return br_instance_set_state(tx->db, l->id, BR_INSTANCE_DELETED, tx->err);
    }
}

static void test_history_on_store(void **state)
{
    static const struct {
        bool compute, disk;
        int64_t vcpus, memory_mib, disk_gib;
    } want[] = {
        {false, false, 2, 2048, 10}, /* pending */
        {false, false, 2, 2048, 10}, /* placed */
        {false, true, 2, 2048, 10},  /* created */
        {true, true, 2, 2048, 10},   /* defined */
        {true, true, 2, 2048, 10},   /* running */
        {true, true, 4, 4096, 10},   /* resized; a resize that keeps every size adds nothing */
        {false, true, 4, 4096, 10},  /* undefined: the volume retained */
        {false, false, 4, 4096, 10}, /* deleted */
    };
    CbtStore *s = *state;
    Life l = {0};
    CmError err = {0};
    BrCostInstance *v = NULL;
    size_t n = 0;
    int64_t t0 = cm_now_ms();

    if (!s->store)
        skip();
    for (l.step = 0; l.step <= 8; l.step++)
        assert_int_equal(br_tx_run(s->store, "test.life", NULL, life_tx, &l, &err), 0);
    assert_int_equal(cbt_store_int(s, "SELECT count(*) FROM instance_history", 0), 8);

    CmDb *db = br_store_db(s->store, &err);
    assert_non_null(db);
    assert_int_equal(br_instance_cost_history(db, t0 - 1000, cm_now_ms() + 1000, 0, &v, &n, &err),
                     0);
    assert_int_equal(n, 1);
    assert_int_equal(v[0].instance_id, l.id);
    assert_int_equal(v[0].department_id, 1);
    assert_false(v[0].trial);
    assert_string_equal(v[0].image, "debian-12");
    assert_int_equal(v[0].n_ev, ELEMENTSOF(want));
    for (size_t i = 0; i < ELEMENTSOF(want); i++) {
        const BrCostEvent *e = &v[0].ev[i];
        assert_int_equal(e->compute, want[i].compute);
        assert_int_equal(e->disk, want[i].disk);
        assert_int_equal(e->vcpus, want[i].vcpus);
        assert_int_equal(e->memory_mib, want[i].memory_mib);
        assert_int_equal(e->disk_gib, want[i].disk_gib);
        assert_true(e->at_ms >= t0 - 1000 && (i == 0 || e->at_ms >= v[0].ev[i - 1].at_ms));
    }
    br_cost_instances_free(v, n);

    /* Another department's statement does not see it; nor does a month after its deletion. */
    assert_int_equal(br_instance_cost_history(db, t0 - 1000, cm_now_ms() + 1000, 2, &v, &n, &err),
                     0);
    assert_int_equal(n, 0);
    free(v);
    assert_int_equal(
        br_instance_cost_history(db, cm_now_ms() + 1000, cm_now_ms() + 2000, 0, &v, &n, &err), 0);
    assert_int_equal(n, 0);
    free(v);
}

static const bool SQLITE = false, POSTGRESQL = true;

int main(void)
{
    CmError err = {0};
    const struct CMUnitTest store_tests[] = {
        cmocka_unit_test_prestate_setup_teardown(test_history_on_store, store_setup, store_teardown,
                                                 (void *)&SQLITE),
        cmocka_unit_test_prestate_setup_teardown(test_history_on_store, store_setup, store_teardown,
                                                 (void *)&POSTGRESQL),
    };
    if (br_schemas_init(&err) < 0) {
        fprintf(stderr, "schemas: %s\n", err.message);
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resize_mid_month),
        cmocka_unit_test(test_price_change_mid_month),
        cmocka_unit_test(test_retained_volume),
        cmocka_unit_test(test_trial_production_image),
        cmocka_unit_test(test_month_under_way),
        cmocka_unit_test(test_service_fee),
        cmocka_unit_test(test_monthly),
        cmocka_unit_test(test_money),
        cmocka_unit_test(test_statement),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_holds),
    };
    int r = cmocka_run_group_tests(tests, setup, teardown);
    return r ? r : cmocka_run_group_tests(store_tests, NULL, NULL);
}
