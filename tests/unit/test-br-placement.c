/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Placement as a pure function: each filter alone and at its exact boundary, the order in
 * which filters refuse, pack and spread, deterministic ties, several instances landing one
 * after the other, anti-affinity, and the refusal document that names, per host, the first
 * filter that said no with its numbers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "br-placement.h"
#include "cm-cleanup.h"
#include "cm-json.h"

static const BrPlacementPolicy production_spread = {
    .pool = "production", .anti_affinity = false, .weigher = BR_PLACEMENT_SPREAD};
static const BrPlacementPolicy production_pack = {
    .pool = "production", .anti_affinity = false, .weigher = BR_PLACEMENT_PACK};

/* 8 CPUs, 16 GiB, 100 GiB of disk, the default ratios (cpu 4.0, ram 1.0, disk 1.0), empty. */
static BrPlacementHost host(int64_t id, const char *pool)
{
    return (BrPlacementHost){
        .id = id,
        .name = "h",
        .pool = pool,
        .enabled = true,
        .maintenance = false,
        .connected = true,
        .cpus = 8,
        .memory_mib = 16384,
        .disk_gib = 100,
        .cpu_ratio = 4.0,
        .ram_ratio = 1.0,
        .disk_ratio = 1.0,
    };
}

static const BrPlacementDemand small = {.vcpus = 1, .memory_mib = 1024, .disk_gib = 10};

#define assert_refused(h, p, d, sib, want)                                                         \
    do {                                                                                           \
        BrPlacementRefusal got_ = br_placement_filter((h), (p), (d), (sib));                       \
        if (got_ != (want))                                                                        \
            fail_msg("refused by %s, want %s", br_placement_refusal_to_string(got_),               \
                     br_placement_refusal_to_string(want));                                        \
    } while (0)

/* ---- filters, one by one ---- */

static void test_refusal_names(void **state)
{
    static const char *const want[] = {"ok",  "pool", "disabled", "maintenance",  "disconnected",
                                       "cpu", "ram",  "disk",     "anti_affinity"};
    assert_int_equal(ELEMENTSOF(want), BR_PLACEMENT_REFUSED_MAX);
    for (unsigned r = 0; r < BR_PLACEMENT_REFUSED_MAX; r++)
        assert_string_equal(br_placement_refusal_to_string((BrPlacementRefusal)r), want[r]);
    assert_string_equal(br_placement_refusal_to_string(BR_PLACEMENT_REFUSED_MAX), "unknown");
    assert_string_equal(br_placement_refusal_to_string((BrPlacementRefusal)-1), "unknown");
}

static void test_filter_accepts_a_healthy_host(void **state)
{
    BrPlacementHost h = host(1, "production");
    assert_refused(&h, &production_spread, &small, false, BR_PLACEMENT_OK);
}

static void test_filter_pool(void **state)
{
    BrPlacementHost h = host(1, "trial");
    BrPlacementPolicy no_pool = production_spread;
    assert_refused(&h, &production_spread, &small, false, BR_PLACEMENT_REFUSED_POOL);
    h.pool = NULL;
    assert_refused(&h, &production_spread, &small, false, BR_PLACEMENT_REFUSED_POOL);
    h.pool = "production";
    no_pool.pool = NULL;
    assert_refused(&h, &no_pool, &small, false, BR_PLACEMENT_REFUSED_POOL);
    /* The pool is the first filter: a wrong-pool host is refused for its pool, whatever else. */
    h = host(1, "trial");
    h.enabled = false, h.maintenance = true, h.connected = false, h.cpus = 0;
    assert_refused(&h, &production_spread, &small, false, BR_PLACEMENT_REFUSED_POOL);
}

static void test_filter_disabled(void **state)
{
    BrPlacementHost h = host(1, "production");
    h.enabled = false;
    assert_refused(&h, &production_spread, &small, false, BR_PLACEMENT_REFUSED_DISABLED);
    h.maintenance = true, h.connected = false; /* disabled is checked before these */
    assert_refused(&h, &production_spread, &small, false, BR_PLACEMENT_REFUSED_DISABLED);
}

static void test_filter_maintenance(void **state)
{
    BrPlacementHost h = host(1, "production");
    h.maintenance = true;
    assert_refused(&h, &production_spread, &small, false, BR_PLACEMENT_REFUSED_MAINTENANCE);
    h.connected = false;
    assert_refused(&h, &production_spread, &small, false, BR_PLACEMENT_REFUSED_MAINTENANCE);
}

static void test_filter_disconnected(void **state)
{
    BrPlacementHost h = host(1, "production");
    h.connected = false;
    assert_refused(&h, &production_spread, &small, false, BR_PLACEMENT_REFUSED_DISCONNECTED);
    h.used_vcpus = 1000; /* connection is checked before capacity */
    assert_refused(&h, &production_spread, &small, false, BR_PLACEMENT_REFUSED_DISCONNECTED);
}

static void test_filter_cpu_boundary(void **state)
{
    BrPlacementHost h = host(1, "production"); /* 8 CPUs x 4.0 = 32 vCPUs */
    BrPlacementDemand d = {.vcpus = 2, .memory_mib = 1, .disk_gib = 1};

    h.used_vcpus = 30; /* 30 + 2 = 32: exactly the limit */
    assert_refused(&h, &production_spread, &d, false, BR_PLACEMENT_OK);
    h.used_vcpus = 31; /* 33 */
    assert_refused(&h, &production_spread, &d, false, BR_PLACEMENT_REFUSED_CPU);
    /* A fractional product is rounded down: 3 x 1.5 = 4.5 -> 4. */
    h = host(1, "production"), h.cpus = 3, h.cpu_ratio = 1.5;
    d.vcpus = 4;
    assert_refused(&h, &production_spread, &d, false, BR_PLACEMENT_OK);
    d.vcpus = 5;
    assert_refused(&h, &production_spread, &d, false, BR_PLACEMENT_REFUSED_CPU);
    /* No overcommit below 1: 8 x 0.5 = 4. */
    h = host(1, "production"), h.cpu_ratio = 0.5, d.vcpus = 4;
    assert_refused(&h, &production_spread, &d, false, BR_PLACEMENT_OK);
    d.vcpus = 5;
    assert_refused(&h, &production_spread, &d, false, BR_PLACEMENT_REFUSED_CPU);
    /* Nothing fits a host whose capacity is not known yet (0). */
    h = host(1, "production"), h.cpus = 0, d.vcpus = 1;
    assert_refused(&h, &production_spread, &d, false, BR_PLACEMENT_REFUSED_CPU);
}

static void test_filter_ram_boundary(void **state)
{
    BrPlacementHost h = host(1, "production"); /* 16384 MiB x 1.0 */
    BrPlacementDemand d = {.vcpus = 1, .memory_mib = 1024, .disk_gib = 1};

    h.used_memory_mib = 15360; /* 15360 + 1024 = 16384 */
    assert_refused(&h, &production_spread, &d, false, BR_PLACEMENT_OK);
    d.memory_mib = 1025;
    assert_refused(&h, &production_spread, &d, false, BR_PLACEMENT_REFUSED_RAM);
    /* 1.5 overcommit: 24576 MiB. */
    h = host(1, "production"), h.ram_ratio = 1.5, h.used_memory_mib = 24576 - 4096;
    d.memory_mib = 4096;
    assert_refused(&h, &production_spread, &d, false, BR_PLACEMENT_OK);
    d.memory_mib = 4097;
    assert_refused(&h, &production_spread, &d, false, BR_PLACEMENT_REFUSED_RAM);
}

static void test_filter_disk_boundary(void **state)
{
    BrPlacementHost h = host(1, "production"); /* 100 GiB x 1.0 */
    BrPlacementDemand d = {.vcpus = 1, .memory_mib = 1, .disk_gib = 10};

    h.used_disk_gib = 90;
    assert_refused(&h, &production_spread, &d, false, BR_PLACEMENT_OK);
    d.disk_gib = 11;
    assert_refused(&h, &production_spread, &d, false, BR_PLACEMENT_REFUSED_DISK);
    h.disk_ratio = 2.0; /* thin overlays: 200 GiB */
    h.used_disk_gib = 189;
    assert_refused(&h, &production_spread, &d, false, BR_PLACEMENT_OK);
    h.used_disk_gib = 190;
    assert_refused(&h, &production_spread, &d, false, BR_PLACEMENT_REFUSED_DISK);
}

/*
 * The limit is capacity x ratio; where that product is a whole number the boundary must be
 * that number. 100 CPUs at 4.1 are 410 vCPUs; a double product floors to 409.
 */
static void test_filter_ratio_product_is_exact(void **state)
{
    BrPlacementHost h = host(1, "production");
    BrPlacementDemand d = {.vcpus = 10, .memory_mib = 1, .disk_gib = 1};

    h.cpus = 100, h.cpu_ratio = 4.1, h.used_vcpus = 400;
    assert_refused(&h, &production_spread, &d, false, BR_PLACEMENT_OK);
    h = host(1, "production"), h.disk_gib = 100, h.disk_ratio = 1.15, h.used_disk_gib = 105;
    assert_refused(&h, &production_spread, &d, false, BR_PLACEMENT_OK); /* 115 of 115 */
}

static void test_filter_order_of_capacity(void **state)
{
    BrPlacementHost h = host(1, "production");
    BrPlacementDemand d = {.vcpus = 64, .memory_mib = 65536, .disk_gib = 1000};
    assert_refused(&h, &production_spread, &d, false, BR_PLACEMENT_REFUSED_CPU);
    d.vcpus = 1;
    assert_refused(&h, &production_spread, &d, false, BR_PLACEMENT_REFUSED_RAM);
    d.memory_mib = 1;
    assert_refused(&h, &production_spread, &d, false, BR_PLACEMENT_REFUSED_DISK);
}

static void test_filter_anti_affinity(void **state)
{
    BrPlacementHost h = host(1, "production");
    BrPlacementPolicy p = production_spread;
    BrPlacementDemand big = {.vcpus = 100, .memory_mib = 1, .disk_gib = 1};

    /* A sibling on the host only matters when the policy asks. */
    assert_refused(&h, &p, &small, true, BR_PLACEMENT_OK);
    p.anti_affinity = true;
    assert_refused(&h, &p, &small, false, BR_PLACEMENT_OK);
    assert_refused(&h, &p, &small, true, BR_PLACEMENT_REFUSED_ANTI_AFFINITY);
    /* Capacity is named first when both refuse. */
    assert_refused(&h, &p, &big, true, BR_PLACEMENT_REFUSED_CPU);
}

/* ---- weighers ---- */

static void test_spread_takes_the_emptiest(void **state)
{
    BrPlacementHost hosts[3] = {host(1, "production"), host(2, "production"),
                                host(3, "production")};
    size_t choice = 99;
    hosts[0].used_vcpus = 16, hosts[0].used_memory_mib = 8192; /* half full */
    hosts[1].used_vcpus = 4, hosts[1].used_memory_mib = 2048;  /* an eighth */
    hosts[2].used_vcpus = 24, hosts[2].used_memory_mib = 12288;

    assert_int_equal(
        br_placement_choose(hosts, 3, &production_spread, &small, 1, NULL, &choice, NULL), 0);
    assert_int_equal(choice, 1);
    /* The host that took it carries the instance now. */
    assert_int_equal(hosts[1].used_vcpus, 5);
    assert_int_equal(hosts[1].used_memory_mib, 3072);
    assert_int_equal(hosts[1].used_disk_gib, 10);
    assert_int_equal(hosts[0].used_vcpus, 16);
}

static void test_pack_takes_the_fullest_that_fits(void **state)
{
    BrPlacementHost hosts[3] = {host(1, "production"), host(2, "production"),
                                host(3, "production")};
    BrPlacementDemand d = {.vcpus = 2, .memory_mib = 2048, .disk_gib = 10};
    size_t choice = 99;
    hosts[0].used_vcpus = 16, hosts[0].used_memory_mib = 8192;
    hosts[1].used_vcpus = 4, hosts[1].used_memory_mib = 2048;
    hosts[2].used_vcpus = 24, hosts[2].used_memory_mib = 15360; /* fullest, but RAM won't fit */

    assert_int_equal(br_placement_choose(hosts, 3, &production_pack, &d, 1, NULL, &choice, NULL),
                     0);
    assert_int_equal(choice, 0);
    hosts[2].used_memory_mib = 12288; /* now it fits and is the fullest */
    assert_int_equal(br_placement_choose(hosts, 3, &production_pack, &d, 1, NULL, &choice, NULL),
                     0);
    assert_int_equal(choice, 2);
}

static void test_weighers_skip_refused_hosts(void **state)
{
    /* The emptiest host is in maintenance, the fullest is disconnected. */
    BrPlacementHost hosts[3] = {host(1, "production"), host(2, "production"),
                                host(3, "production")};
    size_t choice = 99;
    hosts[0].maintenance = true;
    hosts[1].used_vcpus = 8, hosts[1].used_memory_mib = 4096;
    hosts[2].used_vcpus = 30, hosts[2].used_memory_mib = 14336, hosts[2].connected = false;
    assert_int_equal(
        br_placement_choose(hosts, 3, &production_spread, &small, 1, NULL, &choice, NULL), 0);
    assert_int_equal(choice, 1);
    assert_int_equal(
        br_placement_choose(hosts, 3, &production_pack, &small, 1, NULL, &choice, NULL), 0);
    assert_int_equal(choice, 1);
}

static void test_ties_go_to_the_lower_id(void **state)
{
    /* Identical hosts, listed out of id order: the lowest id wins, not the first listed. */
    BrPlacementHost hosts[4] = {host(7, "production"), host(3, "production"), host(9, "production"),
                                host(5, "production")};
    size_t choice = 99;
    for (int w = 0; w < 2; w++) {
        BrPlacementHost copy[4];
        memcpy(copy, hosts, sizeof(copy));
        assert_int_equal(br_placement_choose(copy, 4, w ? &production_pack : &production_spread,
                                             &small, 1, NULL, &choice, NULL),
                         0);
        assert_int_equal(copy[choice].id, 3);
    }
    /* And the same answer every time. */
    for (int k = 0; k < 100; k++) {
        BrPlacementHost copy[4];
        memcpy(copy, hosts, sizeof(copy));
        br_placement_choose(copy, 4, &production_spread, &small, 1, NULL, &choice, NULL);
        assert_int_equal(choice, 1);
    }
}

/* ---- several instances ---- */

static void test_multi_spread_alternates(void **state)
{
    BrPlacementHost hosts[2] = {host(1, "production"), host(2, "production")};
    BrPlacementDemand d[4] = {small, small, small, small};
    size_t choice[4];

    assert_int_equal(br_placement_choose(hosts, 2, &production_spread, d, 4, NULL, choice, NULL),
                     0);
    /* Tie to id 1, then the other is emptier, then a tie again, ... */
    assert_int_equal(choice[0], 0);
    assert_int_equal(choice[1], 1);
    assert_int_equal(choice[2], 0);
    assert_int_equal(choice[3], 1);
    assert_int_equal(hosts[0].used_vcpus, 2);
    assert_int_equal(hosts[0].used_memory_mib, 2048);
    assert_int_equal(hosts[0].used_disk_gib, 20);
    assert_int_equal(hosts[1].used_vcpus, 2);
}

static void test_multi_pack_fills_then_moves_on(void **state)
{
    BrPlacementHost hosts[2] = {host(1, "production"), host(2, "production")};
    BrPlacementDemand d = {.vcpus = 2, .memory_mib = 6144, .disk_gib = 10};
    BrPlacementDemand ds[4] = {d, d, d, d};
    size_t choice[4];

    /* 16384 MiB per host: two instances of 6144 fit on one, the third does not. */
    assert_int_equal(br_placement_choose(hosts, 2, &production_pack, ds, 4, NULL, choice, NULL), 0);
    assert_int_equal(choice[0], 0);
    assert_int_equal(choice[1], 0);
    assert_int_equal(choice[2], 1);
    assert_int_equal(choice[3], 1);
    assert_int_equal(hosts[0].used_memory_mib, 12288);
    assert_int_equal(hosts[1].used_memory_mib, 12288);
}

static void test_multi_anti_affinity(void **state)
{
    BrPlacementHost hosts[3] = {host(1, "production"), host(2, "production"),
                                host(3, "production")};
    BrPlacementPolicy p = production_pack;
    BrPlacementDemand ds[3] = {small, small, small};
    bool siblings[3] = {false, true, false}; /* the allocation already has one on host 2 */
    size_t choice[3];
    _cleanup_json_ json_object *refusals = NULL;

    p.anti_affinity = true;
    /* Pack would put them all on one host; anti-affinity spreads them over the two free. */
    assert_int_equal(br_placement_choose(hosts, 3, &p, ds, 2, siblings, choice, NULL), 0);
    assert_int_equal(choice[0], 0);
    assert_int_equal(choice[1], 2);
    assert_true(siblings[0] && siblings[1] && siblings[2]);
    /* A third instance has nowhere to go: every host holds a sibling now. */
    assert_int_equal(br_placement_choose(hosts, 3, &p, ds, 1, siblings, choice, &refusals),
                     -ENOSPC);
    json_object *list = cm_json_get(refusals, "hosts");
    assert_int_equal(json_object_array_length(list), 3);
    for (size_t i = 0; i < 3; i++)
        assert_string_equal(cm_json_get_str(json_object_array_get_idx(list, i), "refused_by", ""),
                            "anti_affinity");
}

static void test_choose_with_no_host(void **state)
{
    size_t choice = 99;
    _cleanup_json_ json_object *refusals = NULL;
    assert_int_equal(
        br_placement_choose(NULL, 0, &production_spread, &small, 1, NULL, &choice, &refusals),
        -ENOSPC);
    assert_int_equal(cm_json_get_int(refusals, "instance", -1), 0);
    assert_int_equal(json_object_array_length(cm_json_get(refusals, "hosts")), 0);
    /* Nothing to place is not an error. */
    assert_int_equal(br_placement_choose(NULL, 0, &production_spread, NULL, 0, NULL, NULL, NULL),
                     0);
}

/* ---- the refusal document ---- */

static json_object *refusal_of(json_object *refusals, const char *name)
{
    json_object *list = cm_json_get(refusals, "hosts");
    for (size_t i = 0; i < json_object_array_length(list); i++) {
        json_object *h = json_object_array_get_idx(list, i);
        if (strcmp(cm_json_get_str(h, "host", ""), name) == 0)
            return h;
    }
    fail_msg("no refusal for host %s", name);
    return NULL;
}

static void expect_numbers(json_object *r, const char *by, int64_t used, int64_t limit)
{
    assert_string_equal(cm_json_get_str(r, "refused_by", ""), by);
    assert_non_null(cm_json_get(r, "used"));
    assert_non_null(cm_json_get(r, "limit"));
    assert_int_equal(cm_json_get_int(r, "used", -1), used);
    assert_int_equal(cm_json_get_int(r, "limit", -1), limit);
}

static void test_refusal_names_each_host_and_filter(void **state)
{
    BrPlacementHost hosts[8];
    const char *names[8] = {"trial-1",  "off",      "maint",     "lost",
                            "cpu-full", "ram-full", "disk-full", "sibling"};
    BrPlacementPolicy p = production_spread;
    BrPlacementDemand d = {.vcpus = 4, .memory_mib = 4096, .disk_gib = 20};
    bool siblings[8] = {0};
    size_t choice = 99;
    _cleanup_json_ json_object *refusals = NULL;

    for (int i = 0; i < 8; i++) {
        hosts[i] = host(100 + i, "production");
        hosts[i].name = names[i];
    }
    hosts[0].pool = "trial";
    hosts[1].enabled = false;
    hosts[2].maintenance = true;
    hosts[3].connected = false;
    hosts[4].used_vcpus = 29;                               /* 29 + 4 > 32 */
    hosts[5].used_memory_mib = 12289;                       /* 12289 + 4096 > 16384 */
    hosts[6].used_disk_gib = 81, hosts[6].disk_ratio = 1.0; /* 81 + 20 > 100 */
    hosts[7].used_vcpus = 28;                               /* fits exactly, but holds a sibling */
    siblings[7] = true;
    p.anti_affinity = true;

    assert_int_equal(br_placement_choose(hosts, 8, &p, &d, 1, siblings, &choice, &refusals),
                     -ENOSPC);
    assert_non_null(refusals);
    assert_int_equal(cm_json_get_int(refusals, "instance", -1), 0);
    json_object *list = cm_json_get(refusals, "hosts");
    assert_int_equal(json_object_array_length(list), 8);
    /* In host order, each with its id. */
    for (size_t i = 0; i < 8; i++) {
        json_object *h = json_object_array_get_idx(list, i);
        assert_string_equal(cm_json_get_str(h, "host", ""), names[i]);
        assert_int_equal(cm_json_get_int(h, "host_id", -1), 100 + (int64_t)i);
    }
    assert_string_equal(cm_json_get_str(refusal_of(refusals, "trial-1"), "refused_by", ""), "pool");
    assert_string_equal(cm_json_get_str(refusal_of(refusals, "trial-1"), "pool", ""), "trial");
    assert_string_equal(cm_json_get_str(refusal_of(refusals, "off"), "refused_by", ""), "disabled");
    assert_string_equal(cm_json_get_str(refusal_of(refusals, "maint"), "refused_by", ""),
                        "maintenance");
    assert_string_equal(cm_json_get_str(refusal_of(refusals, "lost"), "refused_by", ""),
                        "disconnected");
    expect_numbers(refusal_of(refusals, "cpu-full"), "cpu", 29, 32);
    expect_numbers(refusal_of(refusals, "ram-full"), "ram", 12289, 16384);
    expect_numbers(refusal_of(refusals, "disk-full"), "disk", 81, 100);
    assert_string_equal(cm_json_get_str(refusal_of(refusals, "sibling"), "refused_by", ""),
                        "anti_affinity");
    /* Filters without numbers carry none. */
    assert_null(cm_json_get(refusal_of(refusals, "off"), "limit"));
    /* The hosts were not changed by a placement that failed on its only instance. */
    assert_int_equal(hosts[7].used_vcpus, 28);
}

static void test_refusal_of_a_later_instance(void **state)
{
    /* The first instance lands; the refusal names the second, with the first counted. */
    BrPlacementHost h = host(1, "production");
    BrPlacementDemand ds[2] = {{.vcpus = 20, .memory_mib = 1024, .disk_gib = 10},
                               {.vcpus = 20, .memory_mib = 1024, .disk_gib = 10}};
    size_t choice[2] = {99, 99};
    _cleanup_json_ json_object *refusals = NULL;

    h.name = "only";
    assert_int_equal(br_placement_choose(&h, 1, &production_spread, ds, 2, NULL, choice, &refusals),
                     -ENOSPC);
    assert_int_equal(choice[0], 0);
    assert_int_equal(cm_json_get_int(refusals, "instance", -1), 1);
    expect_numbers(refusal_of(refusals, "only"), "cpu", 20, 32);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refusal_names),
        cmocka_unit_test(test_filter_accepts_a_healthy_host),
        cmocka_unit_test(test_filter_pool),
        cmocka_unit_test(test_filter_disabled),
        cmocka_unit_test(test_filter_maintenance),
        cmocka_unit_test(test_filter_disconnected),
        cmocka_unit_test(test_filter_cpu_boundary),
        cmocka_unit_test(test_filter_ram_boundary),
        cmocka_unit_test(test_filter_disk_boundary),
        cmocka_unit_test(test_filter_ratio_product_is_exact),
        cmocka_unit_test(test_filter_order_of_capacity),
        cmocka_unit_test(test_filter_anti_affinity),
        cmocka_unit_test(test_spread_takes_the_emptiest),
        cmocka_unit_test(test_pack_takes_the_fullest_that_fits),
        cmocka_unit_test(test_weighers_skip_refused_hosts),
        cmocka_unit_test(test_ties_go_to_the_lower_id),
        cmocka_unit_test(test_multi_spread_alternates),
        cmocka_unit_test(test_multi_pack_fills_then_moves_on),
        cmocka_unit_test(test_multi_anti_affinity),
        cmocka_unit_test(test_choose_with_no_host),
        cmocka_unit_test(test_refusal_names_each_host_and_filter),
        cmocka_unit_test(test_refusal_of_a_later_instance),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
