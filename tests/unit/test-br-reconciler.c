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
#include "br-observation.h"
#include "br-reconciler-priv.h"
#include "br-store.h"
#include "cbt-pg.h"
#include "cm-json.h"
#include "cm-util.h"

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

/* ---- the stores, on SQLite and (CB_TEST_PG_URL) PostgreSQL ---- */

typedef struct {
    bool pg, skip;
    char dir[64];
    char *pg_url, *pg_name;
    BrStore *store;
    int64_t host;
} Fixture;

static const bool SQLITE = false, POSTGRESQL = true;

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

    f->pg = *(const bool *)*state;
    *state = f;
    snprintf(f->dir, sizeof(f->dir), "/tmp/test-br-reconciler-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(db, sizeof(db), "%s/db", f->dir);
    snprintf(key, sizeof(key), "%s/audit.key", f->dir);
    if (f->pg) {
        if (!cbt_pg_url()) {
            f->skip = true;
            return 0;
        }
        assert_int_equal(cbt_pg_create_db("reconciler", &f->pg_url, &f->pg_name), 0);
    }
    if (br_store_open(f->pg ? f->pg_url : db, key, &f->store, &err) < 0)
        fail_msg("open: %s", err.message);
    f->host = br_tx_run(f->store, "test", NULL, add_host_tx, &h, &err);
    assert_true(f->host > 0);
    return 0;
}

static int teardown(void **state)
{
    Fixture *f = *state;
    char cmd[128];
    br_store_free(f->store);
    cbt_pg_drop_db(f->pg_name);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f->pg_url);
    free(f->pg_name);
    free(f);
    return 0;
}

#define FIXTURE(state)                                                                             \
    ({                                                                                             \
        Fixture *f_ = *(state);                                                                    \
        if (f_->skip)                                                                              \
            skip();                                                                                \
        f_;                                                                                        \
    })

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
    BrEventFilter filter = {.open = open, .kind = open < 0 ? "unowned_domain" : NULL};
    BrPage page = {.limit = 100, .after = 0};
    CmError err = {0};
    json_object *items = NULL;
    assert_int_equal(br_event_list(br_store_db(f->store, &err), &filter, &page, &items, &err), 0);
    return items;
}

static void test_event_store(void **state)
{
    Fixture *f = FIXTURE(state);
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

static int set_token_tx(BrTx *tx, void *ctx)
{
    return br_host_set_agent_token(tx, *(int64_t *)ctx, "hash-3");
}

static int set_maintenance_tx(BrTx *tx, void *ctx)
{
    BrHostFields h = {.enabled = -1, .maintenance = 1, .ratio = {2.5}, .ratio_set = {true}};
    return br_host_update(tx, *(int64_t *)ctx, &h);
}

static int capacity_row(void *ctx, const BrHostRow *h)
{
    assert_int_equal(h->cpus, 8);
    assert_int_equal(h->memory_mib, 16384);
    assert_int_equal(h->disk_gib, 100);
    return 0;
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
    Fixture *f = FIXTURE(state);
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
    cm_error_clear(&err);
    /* Lists: every pool, or one. */
    rows = 0;
    assert_int_equal(br_host_list(br_store_db(f->store, &err), NULL, NULL, check_row, &rows, &err),
                     0);
    assert_int_equal(br_host_list(br_store_db(f->store, &err), "production", &(BrPage){.limit = 10},
                                  check_row, &rows, &err),
                     0);
    assert_int_equal(
        br_host_list(br_store_db(f->store, &err), "trial", NULL, check_row, &rows, &err), 0);
    assert_int_equal(rows, 2);
    assert_int_equal(br_tx_run(f->store, "token", NULL, set_token_tx, &f->host, &err), 0);
    assert_int_equal(br_tx_run(f->store, "token", NULL, set_token_tx, &missing, &err), -ENOENT);
    cm_error_clear(&err);
    assert_int_equal(
        br_host_set_capacity(br_store_db(f->store, &err), f->host, 8, 16384, 100, &err), 0);
    assert_int_equal(br_host_get(br_store_db(f->store, &err), f->host, capacity_row, NULL, &err),
                     0);
}

/* An active allocation with two jobs done, one reclaiming, a purged one, and a retained one
 * whose purge job is queued, each with one instance on host 1. */
static const char WORLD[] =
    "INSERT INTO departments(code, name, quota_vcpus, quota_memory_mib, quota_disk_gib,"
    " quota_instances, created_at, updated_at) VALUES ('d1', 'D', 0, 0, 0, 0, 't', 't');"
    "INSERT INTO systems(department_id, name, category, protection_level, status, created_at,"
    " updated_at) VALUES (1, 's', 'other', 2, 'in_service', 't', 't');"
    "INSERT INTO allocations(department_id, system_id, request_id, state, created_at, updated_at)"
    " VALUES (1, 1, 1, 'active', 't', 't'), (1, 1, 2, 'reclaiming', 't', 't'),"
    " (1, 1, 3, 'purged', 't', 't'), (1, 1, 4, 'retained', 't', 't');"
    "INSERT INTO instances(allocation_id, idx, name, uuid, host_id, vcpus, memory_mib, disk_gib,"
    " max_vcpus, max_memory_mib, image, volume, state, created_at, updated_at) VALUES"
    " (1, 0, 'cb-1-0', 'u1', 1, 1, 512, 1, 1, 512, 'img', 'v1', 'running', 't', 't'),"
    " (2, 0, 'cb-2-0', 'u2', 1, 1, 512, 1, 1, 512, 'img', 'v2', 'running', 't', 't'),"
    " (3, 0, 'cb-3-0', 'u3', 1, 1, 512, 1, 1, 512, 'img', 'v3', 'deleted', 't', 't'),"
    " (4, 0, 'cb-4-0', 'u4', 1, 1, 512, 1, 1, 512, 'img', 'v4', 'deleted', 't', 't');"
    "INSERT INTO jobs(kind, state, allocation_id, created_at, finished_at) VALUES"
    " ('provision', 'done', 1, 't', '2026-01-01T00:00:00.000Z'),"
    " ('resize', 'done', 1, 't', '2026-01-02T00:00:00.000Z'),"
    " ('purge', 'done', 3, 't', '2026-01-03T00:00:00.000Z'), ('purge', 'queued', 4, 't', NULL);";

static void make_world(Fixture *f)
{
    CmError err = {0};
    assert_int_equal(f->host, 1);
    if (cm_db_exec(br_store_db(f->store, &err), WORLD, &err) < 0)
        fail_msg("world: %s", err.message);
}

static void test_instance_claims(void **state)
{
    Fixture *f = FIXTURE(state);
    _cleanup_free_ BrInstanceClaim *c = NULL;
    CmError err = {0};
    size_t n = 0;

    make_world(f);
    if (br_instance_list_claims(br_store_db(f->store, &err), &c, &n, &err) < 0)
        fail_msg("claims: %s", err.message);
    /* The purged instance with no job is nobody's; the deleted one being purged still is. */
    assert_int_equal(n, 3);
    assert_int_equal(c[0].id, 1);
    assert_int_equal(c[0].host_id, 1);
    assert_int_equal(c[0].state, BR_INSTANCE_RUNNING);
    assert_string_equal(c[0].uuid, "u1");
    assert_string_equal(c[0].name, "cb-1-0");
    assert_string_equal(c[0].observed, "");
    assert_false(c[0].busy);
    assert_int_equal(c[0].jobs, 2);
    assert_string_equal(c[0].jobs_end, "2026-01-02T00:00:00.000Z");
    assert_int_equal(c[1].id, 2);
    assert_true(c[1].busy); /* reclaiming */
    assert_int_equal(c[1].jobs, 0);
    assert_string_equal(c[1].jobs_end, "");
    assert_int_equal(c[2].id, 4);
    assert_int_equal(c[2].state, BR_INSTANCE_DELETED);
    assert_true(c[2].busy); /* its purge is queued */
    assert_int_equal(c[2].jobs, 1);
    free(c);

    /* What the reconciler saw is kept. */
    assert_int_equal(br_instance_set_observed(br_store_db(f->store, &err), 1, "paused",
                                              "2026-01-04T00:00:00.000Z", &err),
                     0);
    assert_int_equal(br_instance_list_claims(br_store_db(f->store, &err), &c, &n, &err), 0);
    assert_string_equal(c[0].observed, "paused");
}

typedef struct {
    const char *state;
    int64_t now;
} Obs;

static int observe_tx(BrTx *tx, void *ctx)
{
    const Obs *o = ctx;
    BrObservationSeen seen = {.instance_id = 1, .state = o->state};
    return br_observation_record(tx->db, 1, &seen, 1, o->now, 10, tx->err);
}

static void assert_stretches(Fixture *f, const char *expected)
{
    CmError err = {0};
    _cleanup_stmt_ CmStmt *st = cm_db_prepare(
        br_store_db(f->store, &err),
        "SELECT state, since, last_seen, coalesce(until, -1) AS until FROM observations"
        " WHERE instance_id = 1 ORDER BY id",
        &err);
    char got[256] = "";
    size_t len = 0;

    assert_non_null(st);
    while (cm_stmt_step(st, &err) > 0)
        len += (size_t)snprintf(got + len, sizeof(got) - len, "%s%s %lld %lld %lld", len ? ";" : "",
                                cm_stmt_text(st, 0), (long long)cm_stmt_int(st, 1),
                                (long long)cm_stmt_int(st, 2), (long long)cm_stmt_int(st, 3));
    assert_string_equal(got, expected);
}

static void test_observations(void **state)
{
    Fixture *f = FIXTURE(state);
    const Obs passes[] = {
        {"running", 1000}, {"running", 1005}, {"paused", 1010}, {"paused", 1030}, {NULL, 1040}};
    CmError err = {0};

    make_world(f);
    for (size_t i = 0; i < ELEMENTSOF(passes); i++)
        if (br_tx_run(f->store, "observe", NULL, observe_tx, (void *)&passes[i], &err) < 0)
            fail_msg("pass %zu: %s", i, err.message);
    /* Extended while the same; ended at the change; ended at its last pass after a gap of
     * more than 10 s; ended where last seen once the instance should have no domain. */
    assert_stretches(f, "running 1000 1005 1010;paused 1010 1010 1010;paused 1030 1030 1030");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_domain_removed_meanwhile_is_not_unowned),
        cmocka_unit_test(test_domain_made_meanwhile_is_not_unowned),
        cmocka_unit_test(test_foreign_domain),
        cmocka_unit_test(test_missing),
        cmocka_unit_test(test_state),
#define BOTH(fn)                                                                                   \
    {#fn " (SQLite)", fn, setup, teardown, (void *)&SQLITE},                                       \
        {#fn " (PostgreSQL)", fn, setup, teardown, (void *)&POSTGRESQL}
        BOTH(test_event_store),
        BOTH(test_host_store),
        BOTH(test_instance_claims),
        BOTH(test_observations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
