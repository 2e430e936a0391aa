/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The reconciler's judgement (pure: the instances read before and after the hosts were
 * listed, and the domains listed) and the stores it writes through: hosts and events on a
 * real SQLite database.
 *
 * The races: test-crash-jobs registers one libvirtd as a trial and a production host, so a
 * trial domain shows in the production host's list; a trial reclaim job that removed it
 * between the listing and the reconciler's look at the database made it "unowned". Likewise
 * an instance whose job removed its domain, or stopped it for a resize, just before the
 * listing was reported missing or stopped. Each case below fails on the old judgement.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "br-event.h"
#include "br-host.h"
#include "br-reconciler-priv.h"
#include "br-store.h"
#include "cm-json.h"

#define TRIAL 1
#define PROD 2
#define U_TRIAL "11111111-1111-4111-8111-111111111111"
#define U_PROD "22222222-2222-4222-8222-222222222222"
#define U_FOREIGN "33333333-3333-4333-8333-333333333333"

static BrInstanceClaim claim(int64_t id, int64_t host, BrInstanceState state, const char *uuid,
                             bool busy, int64_t jobs, const char *jobs_end)
{
    BrInstanceClaim c = {.id = id,
                         .host_id = host,
                         .allocation_id = 100 + id,
                         .state = state,
                         .busy = busy,
                         .jobs = jobs};
    snprintf(c.uuid, sizeof(c.uuid), "%s", uuid);
    snprintf(c.name, sizeof(c.name), "cb-%lld-1", (long long)(100 + id));
    snprintf(c.jobs_end, sizeof(c.jobs_end), "%s", jobs_end);
    return c;
}

static BrVirtDomain domain(const char *uuid, const char *name, BrVirtState state, bool ours)
{
    BrVirtDomain d = {.state = state, .ours = ours};
    snprintf(d.uuid, sizeof(d.uuid), "%s", uuid);
    snprintf(d.name, sizeof(d.name), "%s", name);
    return d;
}

typedef struct {
    BrFinding *f;
    size_t n;
} Findings;

static Findings judge(int64_t host, const BrInstanceClaim *before, size_t n_before,
                      const BrInstanceClaim *after, size_t n_after, const BrVirtDomain *doms,
                      size_t n_doms)
{
    BrClaims claims = {before, after, n_before, n_after};
    Findings out;
    assert_int_equal(br_reconcile_judge(host, &claims, doms, n_doms, &out.f, &out.n), 0);
    return out;
}

static void assert_detail(const BrFinding *f, const char *json)
{
    const char *got = json_object_to_json_string_ext(f->detail, JSON_C_TO_STRING_PLAIN);
    if (strcmp(got, json) != 0)
        fail_msg("detail %s, expected %s", got, json);
}

/* The trial domain seen from the production host while its reclaim job removes it: the
 * instance was live before the listing and is deleted after it. */
static void test_domain_removed_meanwhile_is_not_unowned(void **state)
{
    BrInstanceClaim before[] = {claim(1, TRIAL, BR_INSTANCE_RUNNING, U_TRIAL, false, 1, "t1")};
    BrVirtDomain doms[] = {domain(U_TRIAL, "cb-101-1", BR_VIRT_STATE_RUNNING, true)};
    Findings r = judge(PROD, before, 1, NULL, 0, doms, 1);
    assert_int_equal(r.n, 0);
    br_findings_free(r.f, r.n);

    /* Nobody's before or after: unowned, though it carries our metadata. */
    r = judge(PROD, NULL, 0, NULL, 0, doms, 1);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.f[0].kind, BR_EVENT_UNOWNED_DOMAIN);
    assert_string_equal(r.f[0].message, "domain 'cb-101-1' (" U_TRIAL ", running) is not owned by"
                                        " any allocation though it carries our metadata");
    assert_detail(&r.f[0], "{\"seen\":\"running\",\"expected\":\"absent\",\"instance_state\":null,"
                           "\"domain_name\":\"cb-101-1\",\"domain_uuid\":\"" U_TRIAL "\","
                           "\"metadata\":true}");
    br_findings_free(r.f, r.n);
}

/* A domain a provision job defined after the first read: its instance is known after. */
static void test_domain_made_meanwhile_is_not_unowned(void **state)
{
    BrInstanceClaim after[] = {claim(2, PROD, BR_INSTANCE_DEFINED, U_PROD, true, 1, "")};
    BrVirtDomain doms[] = {domain(U_PROD, "cb-102-1", BR_VIRT_STATE_SHUTOFF, true)};
    Findings r = judge(PROD, NULL, 0, after, 1, doms, 1);
    assert_int_equal(r.n, 0);
    br_findings_free(r.f, r.n);
}

static void test_foreign_domain(void **state)
{
    BrInstanceClaim both[] = {claim(2, PROD, BR_INSTANCE_RUNNING, U_PROD, false, 1, "t1")};
    BrVirtDomain doms[] = {domain(U_PROD, "cb-102-1", BR_VIRT_STATE_RUNNING, true),
                           domain(U_FOREIGN, "probe", BR_VIRT_STATE_SHUTOFF, false)};
    Findings r = judge(PROD, both, 1, both, 1, doms, 2);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.f[0].kind, BR_EVENT_UNOWNED_DOMAIN);
    assert_int_equal(r.f[0].instance_id, 0);
    assert_string_equal(r.f[0].uuid, U_FOREIGN);
    assert_string_equal(r.f[0].message,
                        "domain 'probe' (" U_FOREIGN ", shutoff) is not owned by any allocation");
    assert_detail(&r.f[0], "{\"seen\":\"shutoff\",\"expected\":\"absent\",\"instance_state\":null,"
                           "\"domain_name\":\"probe\",\"domain_uuid\":\"" U_FOREIGN "\","
                           "\"metadata\":false}");
    br_findings_free(r.f, r.n);
}

static void test_missing(void **state)
{
    BrInstanceClaim a = claim(2, PROD, BR_INSTANCE_RUNNING, U_PROD, false, 1, "t1");
    /* Its reclaim job began after the first read and undefined it before the listing. */
    BrInstanceClaim b = claim(2, PROD, BR_INSTANCE_RUNNING, U_PROD, true, 2, "t1");
    Findings r = judge(PROD, &a, 1, &b, 1, NULL, 0);
    assert_int_equal(r.n, 0);
    br_findings_free(r.f, r.n);
    /* ... or had already recorded the instance undefined by the second read. */
    b = claim(2, PROD, BR_INSTANCE_UNDEFINED, U_PROD, false, 2, "t2");
    r = judge(PROD, &a, 1, &b, 1, NULL, 0);
    assert_int_equal(r.n, 0);
    br_findings_free(r.f, r.n);
    /* Nothing moved: the domain is missing. */
    r = judge(PROD, &a, 1, &a, 1, NULL, 0);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.f[0].kind, BR_EVENT_INSTANCE_MISSING);
    assert_int_equal(r.f[0].instance_id, 2);
    assert_int_equal(r.f[0].allocation_id, 102);
    assert_string_equal(r.f[0].message,
                        "instance 2 (cb-102-1) should be on this host but its domain is missing");
    assert_detail(&r.f[0], "{\"seen\":\"absent\",\"expected\":\"running\",\"instance_state\":"
                           "\"running\",\"domain_name\":\"cb-102-1\",\"domain_uuid\":\"" U_PROD
                           "\",\"metadata\":null}");
    br_findings_free(r.f, r.n);
    /* A shut-off instance expects a shut-off domain. */
    a = claim(2, PROD, BR_INSTANCE_SHUTOFF, U_PROD, false, 1, "t1");
    r = judge(PROD, &a, 1, &a, 1, NULL, 0);
    assert_int_equal(r.n, 1);
    assert_detail(&r.f[0], "{\"seen\":\"absent\",\"expected\":\"shutoff\",\"instance_state\":"
                           "\"shutoff\",\"domain_name\":\"cb-102-1\",\"domain_uuid\":\"" U_PROD
                           "\",\"metadata\":null}");
    br_findings_free(r.f, r.n);
    /* On another host, or busy: not judged here. */
    r = judge(TRIAL, &a, 1, &a, 1, NULL, 0);
    assert_int_equal(r.n, 0);
    br_findings_free(r.f, r.n);
}

static void test_state(void **state)
{
    BrInstanceClaim a = claim(2, PROD, BR_INSTANCE_RUNNING, U_PROD, false, 1, "t1");
    BrVirtDomain paused[] = {domain(U_PROD, "cb-102-1", BR_VIRT_STATE_PAUSED, true)};
    BrVirtDomain off[] = {domain(U_PROD, "cb-102-1", BR_VIRT_STATE_SHUTOFF, true)};
    Findings r = judge(PROD, &a, 1, &a, 1, paused, 1);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.f[0].kind, BR_EVENT_INSTANCE_STATE);
    assert_string_equal(r.f[0].message, "instance 2 (cb-102-1) should be running but is paused");
    assert_detail(&r.f[0], "{\"seen\":\"paused\",\"expected\":\"running\",\"instance_state\":"
                           "\"running\",\"domain_name\":\"cb-102-1\",\"domain_uuid\":\"" U_PROD
                           "\",\"metadata\":true}");
    br_findings_free(r.f, r.n);

    /* A resize job (shut off, resized, started) ran whole between the two reads. */
    BrInstanceClaim b = claim(2, PROD, BR_INSTANCE_RUNNING, U_PROD, false, 2, "t2");
    r = judge(PROD, &a, 1, &b, 1, off, 1);
    assert_int_equal(r.n, 0);
    br_findings_free(r.f, r.n);
    /* A retried job (same count) that ended between them. */
    b = claim(2, PROD, BR_INSTANCE_RUNNING, U_PROD, false, 1, "t3");
    r = judge(PROD, &a, 1, &b, 1, off, 1);
    assert_int_equal(r.n, 0);
    br_findings_free(r.f, r.n);

    /* Reclaimed by the record, its domain still there. */
    a = claim(2, PROD, BR_INSTANCE_UNDEFINED, U_PROD, false, 2, "t2");
    r = judge(PROD, &a, 1, &a, 1, off, 1);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.f[0].kind, BR_EVENT_INSTANCE_STATE);
    assert_string_equal(r.f[0].message,
                        "instance 2 (cb-102-1) was reclaimed but its domain is still defined "
                        "(shutoff)");
    assert_detail(&r.f[0], "{\"seen\":\"shutoff\",\"expected\":\"absent\",\"instance_state\":"
                           "\"undefined\",\"domain_name\":\"cb-102-1\",\"domain_uuid\":\"" U_PROD
                           "\",\"metadata\":true}");
    br_findings_free(r.f, r.n);
    /* ... but not when its reclaim job recorded it just after the listing. */
    BrInstanceClaim before = claim(2, PROD, BR_INSTANCE_RUNNING, U_PROD, true, 2, "t1");
    r = judge(PROD, &before, 1, &a, 1, off, 1);
    assert_int_equal(r.n, 0);
    br_findings_free(r.f, r.n);
}

/* ---- the stores, on SQLite ---- */

typedef struct {
    char dir[64];
    BrStore *store;
    int64_t host;
} Fixture;

static int add_host_tx(BrTx *tx, void *ctx)
{
    const BrHostFields *f = ctx;
    int64_t id;
    int r = br_host_create(tx, f, f->name, &id);
    return r < 0 ? r : (int)id;
}

static int setup(void **state)
{
    Fixture *f = calloc(1, sizeof(*f));
    char db[96], key[96];
    CmError err = {0};
    BrHostFields h = {
        .name = "hv-1", .uri = "test:///default", .pool = "production", .storage_pool = "default"};

    snprintf(f->dir, sizeof(f->dir), "/tmp/test-br-reconciler-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(db, sizeof(db), "%s/db", f->dir);
    snprintf(key, sizeof(key), "%s/audit.key", f->dir);
    assert_int_equal(br_store_open(db, key, &f->store, &err), 0);
    f->host = br_tx_run(f->store, "test", NULL, add_host_tx, &h, &err);
    assert_true(f->host > 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    Fixture *f = *state;
    char cmd[128];
    br_store_free(f->store);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

typedef struct {
    int64_t host;
    BrEventSeen *seen;
    size_t n;
    const char *now;
} Pass;

static int pass_tx(BrTx *tx, void *ctx)
{
    Pass *p = ctx;
    return br_event_record(tx, p->host, p->seen, p->n, p->now);
}

static json_object *events(Fixture *f, int open)
{
    BrEventFilter filter = {.open = open};
    BrPage page = {.limit = 100, .after = 0};
    CmError err = {0};
    json_object *items = NULL;
    assert_int_equal(br_event_list(br_store_db(f->store, &err), &filter, &page, &items, &err), 0);
    return items;
}

static void test_event_store(void **state)
{
    Fixture *f = *state;
    CmError err = {0};
    BrEventSeen seen[] = {
        {.kind = BR_EVENT_UNOWNED_DOMAIN,
         .domain_uuid = U_FOREIGN,
         .domain_name = "probe",
         .message = "m1",
         .detail = "{\"seen\":\"shutoff\",\"expected\":\"absent\"}"},
        {.kind = BR_EVENT_UNOWNED_DOMAIN,
         .domain_uuid = U_TRIAL,
         .domain_name = "other",
         .message = "m2",
         .detail = "{\"seen\":\"running\",\"expected\":\"absent\"}"},
    };
    Pass p = {f->host, seen, 2, "2026-01-01T00:00:00.000Z"};
    json_object *items, *e;
    struct json_object_iterator it, end;
    const char *last = NULL;

    assert_int_equal(br_tx_run(f->store, "pass", NULL, pass_tx, &p, &err), 2);
    assert_true(seen[0].opened && seen[1].opened);
    items = events(f, -1);
    assert_int_equal(json_object_array_length(items), 2);
    e = json_object_array_get_idx(items, 0);
    assert_string_equal(cm_json_get_str(e, "kind", ""), "unowned_domain");
    assert_string_equal(cm_json_get_str(e, "severity", ""), "security");
    assert_string_equal(cm_json_get_str(e, "host_name", ""), "hv-1");
    assert_true(json_object_is_type(cm_json_get(e, "instance_id"), json_type_null));
    assert_string_equal(cm_json_get_str(cm_json_get(e, "detail"), "seen", ""), "shutoff");
    /* detail is the last key: the documents before it are unchanged. */
    it = json_object_iter_begin(e);
    end = json_object_iter_end(e);
    for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it))
        last = json_object_iter_peek_name(&it);
    assert_string_equal(last, "detail");
    json_object_put(items);

    /* The next pass sees one of them, changed: kept open and brought up to date; the other
     * is resolved. */
    seen[0].opened = false;
    seen[0].detail = "{\"seen\":\"running\",\"expected\":\"absent\"}";
    p = (Pass){f->host, seen, 1, "2026-01-01T00:01:00.000Z"};
    assert_int_equal(br_tx_run(f->store, "pass", NULL, pass_tx, &p, &err), 0);
    assert_false(seen[0].opened);
    items = events(f, 1);
    assert_int_equal(json_object_array_length(items), 1);
    e = json_object_array_get_idx(items, 0);
    assert_string_equal(cm_json_get_str(e, "domain_uuid", ""), U_FOREIGN);
    assert_string_equal(cm_json_get_str(e, "last_seen", ""), "2026-01-01T00:01:00.000Z");
    assert_string_equal(cm_json_get_str(cm_json_get(e, "detail"), "seen", ""), "running");
    json_object_put(items);
    items = events(f, 0);
    assert_int_equal(json_object_array_length(items), 1);
    e = json_object_array_get_idx(items, 0);
    assert_string_equal(cm_json_get_str(e, "domain_uuid", ""), U_TRIAL);
    assert_string_equal(cm_json_get_str(e, "resolved_at", ""), "2026-01-01T00:01:00.000Z");
    json_object_put(items);
}

static int same_name_tx(BrTx *tx, void *ctx)
{
    const BrHostFields *h = ctx;
    int64_t id;
    return br_host_create(tx, h, "hash-2", &id);
}

static int set_maintenance_tx(BrTx *tx, void *ctx)
{
    BrHostFields h = {.enabled = -1, .maintenance = 1, .ratio = {2.5}, .ratio_set = {true}};
    return br_host_update(tx, *(int64_t *)ctx, &h);
}

static int check_row(void *ctx, const BrHostRow *h)
{
    assert_string_equal(h->name, "hv-1");
    assert_true(h->maintenance);
    assert_true(h->enabled);
    assert_true(h->cpu_ratio == 2.5 && h->ram_ratio == 0 && h->disk_ratio == 0);
    (*(int *)ctx)++;
    return 0;
}

static void test_host_store(void **state)
{
    Fixture *f = *state;
    CmError err = {0};
    BrHostFields h = {
        .name = "hv-1", .uri = "test:///other", .pool = "trial", .storage_pool = "default"};
    int64_t missing = f->host + 10;
    int rows = 0;

    assert_int_equal(br_tx_run(f->store, "dup", NULL, same_name_tx, &h, &err), -EBUSY);
    assert_int_equal(err.kind, CM_ERROR_CONFLICT);
    assert_string_equal(err.field, "/name");
    cm_error_clear(&err);
    h.name = "hv-2";
    h.uri = "test:///default";
    assert_int_equal(br_tx_run(f->store, "dup", NULL, same_name_tx, &h, &err), -EBUSY);
    assert_string_equal(err.field, "/uri");
    assert_string_equal(err.code, "duplicate");
    cm_error_clear(&err);

    assert_int_equal(br_tx_run(f->store, "patch", NULL, set_maintenance_tx, &f->host, &err), 0);
    assert_int_equal(br_tx_run(f->store, "patch", NULL, set_maintenance_tx, &missing, &err),
                     -ENOENT);
    cm_error_clear(&err);
    assert_int_equal(br_host_get(br_store_db(f->store, &err), f->host, check_row, &rows, &err), 0);
    assert_int_equal(rows, 1);
    assert_int_equal(br_host_get(br_store_db(f->store, &err), missing, check_row, &rows, &err),
                     -ENOENT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_domain_removed_meanwhile_is_not_unowned),
        cmocka_unit_test(test_domain_made_meanwhile_is_not_unowned),
        cmocka_unit_test(test_foreign_domain),
        cmocka_unit_test(test_missing),
        cmocka_unit_test(test_state),
        cmocka_unit_test_setup_teardown(test_event_store, setup, teardown),
        cmocka_unit_test_setup_teardown(test_host_store, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
