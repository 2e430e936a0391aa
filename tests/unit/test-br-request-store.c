/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The requests' store (br-request.c, br-material.c, br-trial.c, br-quota.c) on a real
 * database: SQLite always, PostgreSQL too when CB_TEST_PG_URL names a cluster (skipped, and
 * said so, otherwise). What the API shows is compared as text, key order included.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "br-finding.h"
#include "br-job.h"
#include "br-material.h"
#include "br-quota.h"
#include "br-request.h"
#include "br-trial.h"
#include "cbt-pg.h"
#include "cm-json.h"
#include "cm-util.h"

typedef struct {
    CmDbBackend backend;
    char dir[64];
    char *url, *pg_name;
    BrStore *store;
    bool skip;
} Fx;

static const CmDbBackend SQLITE = CM_DB_SQLITE, POSTGRESQL = CM_DB_POSTGRESQL;

/* Two departments with a system each; department A holds three production allocations. */
static const char SEED[] =
    "INSERT INTO departments(id, code, name, quota_vcpus, quota_memory_mib, quota_disk_gib,"
    " quota_instances, created_at, updated_at) VALUES (1, 'a', 'A', 16, 32768, 500, 8, 't', 't'),"
    " (2, 'b', 'B', 4, 4096, 100, 2, 't', 't');"
    "INSERT INTO accounts(id, name, role, department_id, token_hash, disabled, created_at,"
    " token_created_at) VALUES (1, 'da', 'department', 1, 'h1', 0, 't', 't'),"
    " (2, 'db', 'department', 2, 'h2', 0, 't', 't'), (3, 'rev', 'reviewer', NULL, 'h3', 0, 't', "
    "'t'),"
    " (4, 'con', 'consultant', NULL, 'h4', 0, 't', 't'), (5, 'ven', 'vendor', NULL, 'h5', 0, 't', "
    "'t'),"
    " (6, 'gone', 'consultant', NULL, 'h6', 1, 't', 't');"
    "INSERT INTO systems(id, department_id, name, category, protection_level, status, created_at,"
    " updated_at) VALUES (1, 1, 'oa', 'other', 2, 'in_service', 't', 't'),"
    " (2, 2, 'gis', 'other', 3, 'in_service', 't', 't');"
    "INSERT INTO allocations(id, department_id, system_id, request_id, state, vcpus, memory_mib,"
    " disk_gib, instances, created_at, updated_at) VALUES"
    " (1, 1, 1, 0, 'active', 4, 8192, 100, 2, 't', 't'),"
    " (2, 1, 1, 0, 'resizing', 2, 2048, 20, 1, 't', 't'),"
    " (3, 1, 1, 0, 'retained', 2, 2048, 30, 1, 't', 't');";

static BrActor actor(int64_t account, const char *name, BrRole role, int64_t department)
{
    BrActor a = {.account_id = account, .role = role, .department_id = department};
    snprintf(a.name, sizeof(a.name), "%s", name);
    snprintf(a.request_id, sizeof(a.request_id), "t-%lld", (long long)account);
    return a;
}

static int setup(void **state)
{
    Fx *f = calloc(1, sizeof(*f));
    CmError err = {0};
    char *key;
    CmDb *db;

    f->backend = *(const CmDbBackend *)*state;
    *state = f;
    snprintf(f->dir, sizeof(f->dir), "/tmp/test-br-request-store.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    if (f->backend == CM_DB_SQLITE) {
        f->url = cm_strdup_printf("sqlite:%s/db", f->dir);
    } else if (!cbt_pg_url()) {
        f->skip = true;
        return 0;
    } else {
        assert_int_equal(cbt_pg_create_db("req", &f->url, &f->pg_name), 0);
    }
    key = cm_strdup_printf("%s/key", f->dir);
    assert_int_equal(br_store_open(f->url, key, &f->store, &err), 0);
    free(key);
    assert_int_equal(br_store_write_begin(f->store, &db, &err), 0);
    assert_int_equal(cm_db_exec(db, SEED, &err), 0);
    assert_int_equal(br_store_write_commit(f->store, db, &err), 0);
    return 0;
}

static int teardown(void **state)
{
    Fx *f = *state;
    char *cmd = cm_strdup_printf("rm -rf %s", f->dir);

    br_store_free(f->store);
    if (f->pg_name)
        cbt_pg_drop_db(f->pg_name);
    assert_int_equal(system(cmd), 0);
    free(cmd);
    free(f->url);
    free(f->pg_name);
    free(f);
    return 0;
}

#define FIXTURE(state)                                                                             \
    ({                                                                                             \
        Fx *f_ = *(state);                                                                         \
        if (f_->skip)                                                                              \
            skip();                                                                                \
        f_;                                                                                        \
    })

static int64_t count(Fx *f, const char *sql, int64_t arg)
{
    CmError err = {0};
    CmDb *db = br_store_db(f->store, &err);
    _cleanup_stmt_ CmStmt *st = cm_db_prepare(db, sql, &err);

    assert_non_null(st);
    CM_DB_BIND(st, arg);
    assert_int_equal(cm_stmt_step(st, &err), 1);
    return cm_stmt_int(st, 0);
}

static const char *text(json_object *o)
{
    return json_object_to_json_string_ext(o,
                                          JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
}

/* ---- drafting ---- */

typedef struct {
    BrRequestDraft d;
    int64_t id;
} Create;

static int create_tx(BrTx *tx, void *ctx)
{
    Create *c = ctx;
    return br_request_create(tx, &c->d, &c->id);
}

/* Drafts a request of @kind on department 1's system as "da"; returns its id, or the error. */
static int64_t draft(Fx *f, BrRequestKind kind, int64_t allocation, const char *resources,
                     CmError *err)
{
    BrActor da = actor(1, "da", BR_ROLE_DEPARTMENT, 1);
    _cleanup_json_ json_object *res = resources ? json_tokener_parse(resources) : NULL;
    Create c = {.d = {.department_id = 1,
                      .system_id = 1,
                      .allocation_id = allocation,
                      .kind = kind,
                      .resources = res,
                      .justification = "needed",
                      .detail = "{\"what\":1}"}};
    int r = br_tx_run(f->store, "test.create", &da, create_tx, &c, err);
    return r < 0 ? r : c.id;
}

#define TWO_INSTANCES                                                                              \
    "{\"instances\":[{\"vcpus\":2,\"memory_mib\":2048,\"disk_gib\":20,\"image\":\"x\"},"           \
    "{\"vcpus\":1,\"memory_mib\":1024,\"disk_gib\":10,\"image\":\"x\"}]}"

typedef struct {
    int64_t id;
    BrRequestKind kind;
    BrRequestState from, to;
} Move;

static int move_tx(BrTx *tx, void *ctx)
{
    const Move *m = ctx;
    return br_request_set_state(tx->store, tx->db, tx->actor, m->id, m->kind, m->from, m->to,
                                "test.move", NULL, tx->err);
}

static void approve(Fx *f, int64_t id, BrRequestKind kind)
{
    BrActor rev = actor(3, "rev", BR_ROLE_REVIEWER, 0);
    Move steps[] = {{id, kind, BR_REQUEST_STATE_DRAFT, BR_REQUEST_STATE_SUBMITTED},
                    {id, kind, BR_REQUEST_STATE_SUBMITTED, BR_REQUEST_STATE_APPROVED}};
    CmError err = {0};

    for (size_t i = 0; i < ELEMENTSOF(steps); i++)
        assert_int_equal(br_tx_run(f->store, "test.move", &rev, move_tx, &steps[i], &err), 0);
}

static void test_create_document(void **state)
{
    Fx *f = FIXTURE(state);
    CmError err = {0};
    CmDb *db = br_store_db(f->store, &err);
    _cleanup_json_ json_object *doc = NULL, *history = NULL;
    BrRequestRow row = {0};
    BrActor da = actor(1, "da", BR_ROLE_DEPARTMENT, 1);
    int64_t id = draft(f, BR_REQUEST_KIND_NEW, 0, TWO_INSTANCES, &err);
    char *want;

    assert_true(id > 0);
    /* The totals are the instances' sums, computed once for every way a request is made. */
    assert_int_equal(br_request_load(db, id, &da, &row, &err), 0);
    assert_int_equal(row.totals.vcpus, 3);
    assert_int_equal(row.totals.memory_mib, 3072);
    assert_int_equal(row.totals.disk_gib, 30);
    assert_int_equal(row.totals.instances, 2);
    assert_int_equal(row.state, BR_REQUEST_STATE_DRAFT);
    assert_string_equal(row.justification, "needed");
    br_request_row_clear(&row);

    assert_int_equal(br_request_get(db, id, &doc, &err), 0);
    json_object_object_del(doc, "created_at");
    json_object_object_del(doc, "updated_at");
    want = cm_strdup_printf(
        "{\"id\":%lld,\"department_id\":1,\"system_id\":1,\"kind\":\"new\",\"state\":\"draft\","
        "\"allocation_id\":null,\"resources\":" TWO_INSTANCES ",\"totals\":{\"vcpus\":3,"
        "\"memory_mib\":3072,\"disk_gib\":30,\"instances\":2},\"justification\":\"needed\","
        "\"restart_allowed\":false,\"consultant_id\":null,\"created_by\":1,\"version\":1,"
        "\"system\":{\"id\":1,\"name\":\"oa\",\"description\":\"\",\"category\":\"other\","
        "\"protection_level\":2},\"department\":{\"id\":1,\"code\":\"a\",\"name\":\"A\"},"
        "\"department_name\":\"A\",\"system_name\":\"oa\"}",
        (long long)id);
    assert_string_equal(text(doc), want);
    free(want);

    /* The history starts at draft; the creation is audited with the caller's detail. */
    assert_int_equal(br_request_history(db, id, &history, &err), 0);
    assert_int_equal(json_object_array_length(history), 1);
    json_object_object_del(json_object_array_get_idx(history, 0), "at");
    assert_string_equal(text(history), "[{\"from\":null,\"to\":\"draft\",\"account_id\":1,"
                                       "\"role\":\"department\",\"comment\":\"\","
                                       "\"account\":\"da\"}]");
    assert_int_equal(count(f,
                           "SELECT count(*) FROM audit WHERE action = 'request.create'"
                           " AND object_id = ? AND outcome = 'draft' AND detail = '{\"what\":1}'",
                           id),
                     1);
}

static void test_create_refusals(void **state)
{
    Fx *f = FIXTURE(state);
    BrActor da = actor(1, "da", BR_ROLE_DEPARTMENT, 1);
    CmError err = {0};
    Create other = {.d = {.department_id = 1,
                          .system_id = 2,
                          .kind = BR_REQUEST_KIND_NEW,
                          .justification = "x",
                          .detail = "{}"}};
    int64_t first;

    /* Another department's system is no system of ours. */
    assert_true(br_tx_run(f->store, "t", &da, create_tx, &other, &err) < 0);
    assert_int_equal(err.kind, CM_ERROR_UNPROCESSABLE);
    assert_string_equal(err.code, "unknown_reference");
    assert_string_equal(err.field, "/system");

    /* A change acts on a live, active allocation of the system, with no other request open. */
    cm_error_clear(&err);
    assert_true(draft(f, BR_REQUEST_KIND_CHANGE, 9, TWO_INSTANCES, &err) < 0);
    assert_string_equal(err.code, "unknown_reference");
    assert_string_equal(err.field, "/allocation");
    cm_error_clear(&err);
    assert_true(draft(f, BR_REQUEST_KIND_TERMINATION, 2, NULL, &err) < 0);
    assert_int_equal(err.kind, CM_ERROR_CONFLICT);
    assert_string_equal(err.code, "invalid_state");
    assert_non_null(strstr(err.message, "resizing"));
    cm_error_clear(&err);
    first = draft(f, BR_REQUEST_KIND_TERMINATION, 1, NULL, &err);
    assert_true(first > 0);
    assert_true(draft(f, BR_REQUEST_KIND_CHANGE, 1, TWO_INSTANCES, &err) < 0);
    assert_string_equal(err.code, "open_request");
    assert_non_null(strstr(err.message, "request"));

    /* Nothing of a refused draft was kept. */
    assert_int_equal(count(f, "SELECT count(*) FROM requests WHERE id != ?", first), 0);
    assert_int_equal(count(f, "SELECT count(*) FROM request_history WHERE request_id != ?", first),
                     0);
}

/* ---- who sees what ---- */

typedef struct {
    int64_t id, consultant;
} Assign;

static int assign_tx(BrTx *tx, void *ctx)
{
    const Assign *a = ctx;
    return br_request_assign(tx, a->id, a->consultant);
}

/* The ids of the page @viewer gets, as "1,2". */
static char *list_ids(Fx *f, const BrActor *viewer, const BrRequestFilter *filter, int64_t limit)
{
    CmError err = {0};
    BrPage page = {.limit = limit, .after = 0};
    _cleanup_json_ json_object *items = NULL;
    char buf[256] = "";

    assert_int_equal(
        br_request_list(br_store_db(f->store, &err), viewer, filter, &page, &items, &err), 0);
    for (size_t i = 0; i < json_object_array_length(items); i++) {
        json_object *o = json_object_array_get_idx(items, i);
        size_t n = strlen(buf);
        snprintf(buf + n, sizeof(buf) - n, "%s%lld", n ? "," : "",
                 (long long)cm_json_get_int(o, "id", 0));
        /* A list item names its department and system beside their ids. */
        assert_non_null(cm_json_get_str(o, "department_name", NULL));
        assert_non_null(cm_json_get_str(o, "system_name", NULL));
    }
    return strdup(buf);
}

static void test_scoping(void **state)
{
    Fx *f = FIXTURE(state);
    BrActor da = actor(1, "da", BR_ROLE_DEPARTMENT, 1), dbb = actor(2, "db", BR_ROLE_DEPARTMENT, 2);
    BrActor rev = actor(3, "rev", BR_ROLE_REVIEWER, 0),
            con = actor(4, "con", BR_ROLE_CONSULTANT, 0);
    BrActor ven = actor(5, "ven", BR_ROLE_VENDOR, 0);
    BrRequestFilter all = {0}, approved = {.state = "approved"}, dept2 = {.department_id = 2};
    CmError err = {0};
    Create b = {.d = {.department_id = 2,
                      .system_id = 2,
                      .kind = BR_REQUEST_KIND_NEW,
                      .justification = "b",
                      .detail = "{}"}};
    BrRequestRow row = {0};
    int64_t a_id = draft(f, BR_REQUEST_KIND_NEW, 0, TWO_INSTANCES, &err);
    Assign to_con = {a_id, 4}, to_gone = {a_id, 6};
    char *ids, *want;

    assert_int_equal(br_tx_run(f->store, "t", &dbb, create_tx, &b, &err), 0);
    approve(f, b.id, BR_REQUEST_KIND_NEW);
    /* Only an enabled consultant is assigned. */
    assert_true(br_tx_run(f->store, "t", &rev, assign_tx, &to_gone, &err) < 0);
    assert_string_equal(err.code, "unknown_reference");
    assert_string_equal(err.field, "/consultant");
    assert_int_equal(br_tx_run(f->store, "t", &rev, assign_tx, &to_con, &err), 0);

    struct {
        const BrActor *viewer;
        const BrRequestFilter *filter;
        int64_t limit;
        int64_t first, second; /* 0: none */
    } cases[] = {
        {&da, &all, 100, a_id, 0},     {&dbb, &all, 100, b.id, 0},
        {&da, &dept2, 100, a_id, 0}, /* a department sees its own, whatever it asks */
        {&con, &all, 100, a_id, 0},    {&ven, &all, 100, b.id, 0},
        {&rev, &all, 100, a_id, b.id}, {&rev, &approved, 100, b.id, 0},
        {&rev, &dept2, 100, b.id, 0},  {&rev, &all, 1, a_id, 0},
    };
    for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
        ids = list_ids(f, cases[i].viewer, cases[i].filter, cases[i].limit);
        want = cases[i].second ? cm_strdup_printf("%lld,%lld", (long long)cases[i].first,
                                                  (long long)cases[i].second)
                               : cm_strdup_printf("%lld", (long long)cases[i].first);
        assert_string_equal(ids, want);
        free(ids);
        free(want);
    }

    /* One request alone answers as a list does: whoever may not see it is told it is not there. */
    assert_true(br_request_load(br_store_db(f->store, &err), a_id, &ven, &row, &err) < 0);
    assert_int_equal(err.kind, CM_ERROR_NOT_FOUND);
    assert_true(br_request_load(br_store_db(f->store, &err), b.id, &da, &row, &err) < 0);
    assert_int_equal(br_request_load(br_store_db(f->store, &err), a_id, &con, &row, &err), 0);
    assert_int_equal(row.consultant_id, 4);
    br_request_row_clear(&row);
}

/* ---- the quota ---- */

static void test_quota_usage(void **state)
{
    Fx *f = FIXTURE(state);
    CmError err = {0};
    CmDb *db = br_store_db(f->store, &err);
    BrQuotaUsage u;
    int64_t granted, change;

    /* An approved new request holds what it asks; an approved change what it adds. */
    granted = draft(f, BR_REQUEST_KIND_NEW, 0, TWO_INSTANCES, &err);
    approve(f, granted, BR_REQUEST_KIND_NEW);
    change = draft(f, BR_REQUEST_KIND_CHANGE, 1,
                   "{\"instances\":[{\"vcpus\":2,\"memory_mib\":4096,\"disk_gib\":50,\"image\":"
                   "\"x\"},{\"vcpus\":2,\"memory_mib\":4096,\"disk_gib\":50,\"image\":\"x\"},"
                   "{\"vcpus\":2,\"memory_mib\":4096,\"disk_gib\":50,\"image\":\"x\"}]}",
                   &err);
    assert_true(change > 0);
    approve(f, change, BR_REQUEST_KIND_CHANGE);

    assert_int_equal(br_quota_usage(db, 1, 0, &u, &err), 0);
    assert_int_equal(u.quota.vcpus, 16);
    assert_int_equal(u.quota.instances, 8);
    /* Live allocations all they hold, the retained one its disk only. */
    assert_int_equal(u.allocated.vcpus, 6);
    assert_int_equal(u.allocated.memory_mib, 10240);
    assert_int_equal(u.allocated.disk_gib, 150);
    assert_int_equal(u.allocated.instances, 3);
    assert_int_equal(u.approved.vcpus, 3 + 2);
    assert_int_equal(u.approved.memory_mib, 3072 + 4096);
    assert_int_equal(u.approved.disk_gib, 30 + 50);
    assert_int_equal(u.approved.instances, 2 + 1);

    /* The request being checked does not count against itself. */
    assert_int_equal(br_quota_usage(db, 1, granted, &u, &err), 0);
    assert_int_equal(u.approved.vcpus, 2);
    assert_int_equal(u.approved.instances, 1);
    assert_int_equal(br_quota_usage(db, 2, 0, &u, &err), 0);
    assert_int_equal(u.allocated.vcpus + u.approved.vcpus, 0);
    assert_int_equal(br_quota_usage(db, 9, 0, &u, &err), -ENOENT);
}

/* ---- materials and the trial ---- */

typedef struct {
    int64_t request;
    BrMaterialUpload m;
    BrTrialResult t;
    json_object *out;
} Attach;

static int attach_tx(BrTx *tx, void *ctx)
{
    Attach *a = ctx;
    return br_material_add(tx, a->request, &a->m, &a->out);
}

static int record_tx(BrTx *tx, void *ctx)
{
    Attach *a = ctx;
    return br_trial_record(tx, a->request, &a->t);
}

static void test_materials_and_trial(void **state)
{
    Fx *f = FIXTURE(state);
    BrActor da = actor(1, "da", BR_ROLE_DEPARTMENT, 1), ven = actor(5, "ven", BR_ROLE_VENDOR, 0);
    CmError err = {0};
    CmDb *db = br_store_db(f->store, &err);
    _cleanup_json_ json_object *list = NULL, *cur = NULL, *results = NULL, *jobs = NULL;
    int64_t id = draft(f, BR_REQUEST_KIND_NEW, 0, TWO_INSTANCES, &err), passed, failed;
    Attach a = {.request = id,
                .m = {.kind = "test_report",
                      .sha256 = "aa",
                      .media_type = "application/pdf",
                      .filename = "r.pdf",
                      .size = 10}};
    unsigned present = 0;
    char *want;

    /* The answer to an upload is the row as stored. */
    assert_int_equal(br_tx_run(f->store, "t", &da, attach_tx, &a, &err), 0);
    json_object_object_del(a.out, "uploaded_at");
    want =
        cm_strdup_printf("{\"request_id\":%lld,\"kind\":\"test_report\",\"sha256\":\"aa\","
                         "\"size\":10,\"media_type\":\"application/pdf\",\"filename\":\"r.pdf\"}",
                         (long long)id);
    assert_string_equal(text(a.out), want);
    free(want);
    json_object_put(a.out);
    a.m.sha256 = "bb";
    a.m.kind = "construction_plan";
    assert_int_equal(br_tx_run(f->store, "t", &da, attach_tx, &a, &err), 0);
    json_object_put(a.out);
    /* A replacement is current; the one before stays, no longer current. */
    a.m.sha256 = "cc";
    assert_int_equal(br_tx_run(f->store, "t", &da, attach_tx, &a, &err), 0);
    json_object_put(a.out);
    assert_int_equal(br_material_list(db, id, &list, &present, &err), 0);
    assert_int_equal(json_object_array_length(list), 2);
    assert_int_equal(present,
                     (1u << BR_MATERIAL_TEST_REPORT) | (1u << BR_MATERIAL_CONSTRUCTION_PLAN));
    assert_string_equal(cm_json_get_str(json_object_array_get_idx(list, 0), "sha256", ""), "cc");
    assert_int_equal(br_material_current(db, id, "construction_plan", &cur, &err), 0);
    assert_string_equal(text(cur), "{\"sha256\":\"cc\",\"media_type\":\"application/pdf\","
                                   "\"filename\":\"r.pdf\"}");
    assert_int_equal(br_material_has(db, id, "construction_plan", "bb", &err), 1);
    assert_int_equal(br_material_has(db, id, "test_report", "bb", &err), 0);
    assert_true(br_material_current(db, id, "other", &cur, &err) < 0);
    assert_int_equal(err.kind, CM_ERROR_NOT_FOUND);
    assert_int_equal(count(f,
                           "SELECT count(*) FROM audit WHERE action = 'material.upload'"
                           " AND object_id = ?",
                           id),
                     3);

    /* Each test once; the tally counts passes and failures. */
    a.t = (BrTrialResult){.test = "function", .result = "pass", .report = "aa"};
    assert_int_equal(br_tx_run(f->store, "t", &ven, record_tx, &a, &err), 0);
    assert_true(br_tx_run(f->store, "t", &ven, record_tx, &a, &err) < 0);
    assert_int_equal(err.kind, CM_ERROR_CONFLICT);
    assert_string_equal(err.code, "duplicate");
    assert_string_equal(err.field, "/test");
    a.t = (BrTrialResult){.test = "security", .result = "fail", .report = "aa", .comment = "weak"};
    assert_int_equal(br_tx_run(f->store, "t", &ven, record_tx, &a, &err), 0);
    assert_int_equal(br_trial_tally(db, id, &passed, &failed, &err), 0);
    assert_int_equal(passed, 1);
    assert_int_equal(failed, 1);
    assert_int_equal(br_trial_results(db, id, &results, &err), 0);
    json_object_object_del(json_object_array_get_idx(results, 0), "at");
    json_object_object_del(json_object_array_get_idx(results, 1), "at");
    assert_string_equal(text(results),
                        "[{\"test\":\"function\",\"result\":\"pass\",\"report\":\"aa\","
                        "\"comment\":\"\",\"account_id\":5,\"account\":\"ven\"},"
                        "{\"test\":\"security\",\"result\":\"fail\",\"report\":\"aa\","
                        "\"comment\":\"weak\",\"account_id\":5,\"account\":\"ven\"}]");

    /* The reads of other tables the requests need run on this backend too. */
    json_object_put(results);
    assert_int_equal(br_finding_list_reclaimable(db, 1, &(BrPricingPolicy){0}, &results, &err), 0);
    assert_int_equal(json_object_array_length(results), 0);
    assert_int_equal(br_job_list_for_request(db, id, &jobs, &err), 0);
    assert_int_equal(json_object_array_length(jobs), 0);
}

/* ---- the workflow's marks ---- */

typedef struct {
    int64_t id;
} Mark;

static int mark_tx(BrTx *tx, void *ctx)
{
    const Mark *m = ctx;
    int r = br_request_set_allocation(tx->db, m->id, 1, true, tx->err);
    if (r >= 0)
        r = br_request_set_allocation(tx->db, m->id, 3, false, tx->err);
    if (r >= 0)
        r = br_request_set_trial_deadline(tx->db, m->id, "2026-01-02T00:00:00.000Z", tx->err);
    return r;
}

static void test_workflow_marks(void **state)
{
    Fx *f = FIXTURE(state);
    BrActor rev = actor(3, "rev", BR_ROLE_REVIEWER, 0);
    CmError err = {0};
    CmDb *db = br_store_db(f->store, &err);
    BrRequestRow row = {0};
    int64_t ids[4];
    size_t n = 9;
    Mark m = {draft(f, BR_REQUEST_KIND_NEW, 0, TWO_INSTANCES, &err)};
    Move start = {m.id, BR_REQUEST_KIND_NEW, BR_REQUEST_STATE_APPROVED, BR_REQUEST_STATE_IN_TRIAL};

    approve(f, m.id, BR_REQUEST_KIND_NEW);
    assert_int_equal(br_tx_run(f->store, "t", &rev, mark_tx, &m, &err), 0);
    assert_int_equal(br_request_load(db, m.id, NULL, &row, &err), 0);
    assert_int_equal(row.trial_allocation_id, 1);
    assert_int_equal(row.allocation_id, 3);
    assert_string_equal(row.trial_deadline, "2026-01-02T00:00:00.000Z");
    br_request_row_clear(&row);

    /* Overdue: in trial, and the deadline at or before now. */
    assert_int_equal(br_request_overdue_trials(db, "2026-01-03T00:00:00.000Z", ids, 4, &n, &err),
                     0);
    assert_int_equal(n, 0); /* approved, not yet in trial */
    assert_int_equal(br_tx_run(f->store, "t", &rev, move_tx, &start, &err), 0);
    assert_int_equal(br_request_overdue_trials(db, "2026-01-01T00:00:00.000Z", ids, 4, &n, &err),
                     0);
    assert_int_equal(n, 0);
    assert_int_equal(br_request_overdue_trials(db, "2026-01-02T00:00:00.000Z", ids, 4, &n, &err),
                     0);
    assert_int_equal(n, 1);
    assert_int_equal(ids[0], m.id);
}

#define ON(t, backend, name)                                                                       \
    {                                                                                              \
#t " (" name ")", t, setup, teardown, (void *)&(backend)                                   \
    }
#define BOTH(t) ON(t, SQLITE, "sqlite"), ON(t, POSTGRESQL, "postgresql")

int main(void)
{
    const struct CMUnitTest tests[] = {
        BOTH(test_create_document), BOTH(test_create_refusals),     BOTH(test_scoping),
        BOTH(test_quota_usage),     BOTH(test_materials_and_trial), BOTH(test_workflow_marks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
