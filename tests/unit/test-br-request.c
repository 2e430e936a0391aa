/* SPDX-License-Identifier: Apache-2.0 */
/* The request state machine: the transition table, and br_request_set_state() on a real DB. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "br-request.h"
#include "br-store.h"
#include "cm-util.h"

#define S(x) BR_REQUEST_STATE_##x
#define NEW BR_REQUEST_KIND_NEW
#define CHG BR_REQUEST_KIND_CHANGE
#define TRM BR_REQUEST_KIND_TERMINATION

/* The workflow of DESIGN.md written out move by move, independently of the table; a failed
 * request goes back to where its job failed when the vendor or the bureau retries the job. */
static const struct {
    BrRequestKind kind;
    BrRequestState from, to;
} expected[] = {
    {NEW, S(DRAFT), S(SUBMITTED)},       {NEW, S(DRAFT), S(WITHDRAWN)},
    {NEW, S(SUBMITTED), S(RETURNED)},    {NEW, S(SUBMITTED), S(REJECTED)},
    {NEW, S(SUBMITTED), S(APPROVED)},    {NEW, S(SUBMITTED), S(WITHDRAWN)},
    {NEW, S(RETURNED), S(SUBMITTED)},    {NEW, S(RETURNED), S(WITHDRAWN)},
    {NEW, S(APPROVED), S(IN_TRIAL)},     {NEW, S(APPROVED), S(FAILED)},
    {NEW, S(IN_TRIAL), S(TRIAL_PASSED)}, {NEW, S(IN_TRIAL), S(TRIAL_FAILED)},
    {NEW, S(IN_TRIAL), S(FAILED)},       {NEW, S(TRIAL_PASSED), S(ALLOCATED)},
    {NEW, S(TRIAL_PASSED), S(FAILED)},   {NEW, S(FAILED), S(APPROVED)},
    {NEW, S(FAILED), S(TRIAL_PASSED)},

    {CHG, S(DRAFT), S(SUBMITTED)},       {CHG, S(DRAFT), S(WITHDRAWN)},
    {CHG, S(SUBMITTED), S(RETURNED)},    {CHG, S(SUBMITTED), S(REJECTED)},
    {CHG, S(SUBMITTED), S(APPROVED)},    {CHG, S(SUBMITTED), S(WITHDRAWN)},
    {CHG, S(RETURNED), S(SUBMITTED)},    {CHG, S(RETURNED), S(WITHDRAWN)},
    {CHG, S(APPROVED), S(APPLYING)},     {CHG, S(APPROVED), S(FAILED)},
    {CHG, S(APPLYING), S(APPLIED)},      {CHG, S(APPLYING), S(FAILED)},
    {CHG, S(FAILED), S(APPLYING)},

    {TRM, S(DRAFT), S(SUBMITTED)},       {TRM, S(DRAFT), S(WITHDRAWN)},
    {TRM, S(SUBMITTED), S(RETURNED)},    {TRM, S(SUBMITTED), S(REJECTED)},
    {TRM, S(SUBMITTED), S(APPROVED)},    {TRM, S(SUBMITTED), S(WITHDRAWN)},
    {TRM, S(RETURNED), S(SUBMITTED)},    {TRM, S(RETURNED), S(WITHDRAWN)},
    {TRM, S(APPROVED), S(RECLAIMING)},   {TRM, S(APPROVED), S(FAILED)},
    {TRM, S(RECLAIMING), S(RECLAIMED)},  {TRM, S(RECLAIMING), S(FAILED)},
    {TRM, S(FAILED), S(RECLAIMING)},
};

static bool is_expected(BrRequestKind k, BrRequestState from, BrRequestState to)
{
    for (size_t i = 0; i < ELEMENTSOF(expected); i++)
        if (expected[i].kind == k && expected[i].from == from && expected[i].to == to)
            return true;
    return false;
}

/* Every (kind, from, to) triple: allowed exactly when the workflow above has it. */
static void test_table_matches_workflow(void **state)
{
    unsigned allowed = 0;
    for (int k = 0; k < BR_REQUEST_KIND_MAX; k++)
        for (int f = 0; f < BR_REQUEST_STATE_MAX; f++)
            for (int t = 0; t < BR_REQUEST_STATE_MAX; t++) {
                bool got = br_request_transition_allowed(k, f, t);
                bool want = is_expected(k, f, t);
                if (got != want)
                    print_error("%s: %s -> %s: table says %d, workflow says %d\n",
                                br_request_kind_to_string(k), br_request_state_to_string(f),
                                br_request_state_to_string(t), got, want);
                assert_int_equal(got, want);
                allowed += got;
            }
    assert_int_equal(allowed, ELEMENTSOF(expected));
}

static void test_final_states(void **state)
{
    const BrRequestState finals[] = {S(WITHDRAWN), S(REJECTED), S(TRIAL_FAILED),
                                     S(ALLOCATED), S(APPLIED),  S(RECLAIMED)};
    for (size_t i = 0; i < ELEMENTSOF(finals); i++)
        for (int k = 0; k < BR_REQUEST_KIND_MAX; k++)
            assert_true(br_request_state_is_final(k, finals[i]));
    /* failed is not final: its job can be retried. */
    for (int k = 0; k < BR_REQUEST_KIND_MAX; k++)
        assert_false(br_request_state_is_final(k, S(FAILED)));
    assert_false(br_request_state_is_final(NEW, S(DRAFT)));
    assert_false(br_request_state_is_final(NEW, S(IN_TRIAL)));
    assert_false(br_request_state_is_final(CHG, S(APPLYING)));
    /* Out-of-range values are refused, not read past the table. */
    assert_false(br_request_transition_allowed(BR_REQUEST_KIND_MAX, S(DRAFT), S(SUBMITTED)));
    assert_false(br_request_transition_allowed(NEW, BR_REQUEST_STATE_MAX, S(DRAFT)));
    assert_false(br_request_transition_allowed(NEW, S(DRAFT), (BrRequestState)-1));
}

static void test_strings_round_trip(void **state)
{
    for (int s = 0; s < BR_REQUEST_STATE_MAX; s++)
        assert_int_equal(br_request_state_from_string(br_request_state_to_string(s)), s);
    for (int k = 0; k < BR_REQUEST_KIND_MAX; k++)
        assert_int_equal(br_request_kind_from_string(br_request_kind_to_string(k)), k);
    assert_string_equal(br_request_state_to_string(S(TRIAL_PASSED)), "trial_passed");
    assert_int_equal(br_request_state_from_string("bogus"), -1);
    assert_null(br_request_state_to_string(BR_REQUEST_STATE_MAX));
}

static void test_allocation_table(void **state)
{
#define A(x) BR_ALLOCATION_STATE_##x
    assert_true(br_allocation_transition_allowed(A(PROVISIONING), A(ACTIVE)));
    assert_true(br_allocation_transition_allowed(A(ACTIVE), A(RESIZING)));
    assert_true(br_allocation_transition_allowed(A(RESIZING), A(ACTIVE)));
    assert_true(br_allocation_transition_allowed(A(RECLAIMING), A(RETAINED)));
    assert_true(br_allocation_transition_allowed(A(RETAINED), A(PURGED)));
    assert_true(br_allocation_transition_allowed(A(RETAINED), A(PROVISIONING)));
    assert_false(br_allocation_transition_allowed(A(ACTIVE), A(PURGED)));
    assert_false(br_allocation_transition_allowed(A(PURGED), A(ACTIVE)));
    assert_false(br_allocation_transition_allowed(A(PROVISIONING), A(RETAINED)));
    /* The ways out of error: a retried job, a purge, the end of a trial. */
    assert_true(br_allocation_transition_allowed(A(ERROR), A(PROVISIONING)));
    assert_true(br_allocation_transition_allowed(A(ERROR), A(RESIZING)));
    assert_true(br_allocation_transition_allowed(A(ERROR), A(RECLAIMING)));
    assert_true(br_allocation_transition_allowed(A(ERROR), A(PURGED)));
    assert_false(br_allocation_transition_allowed(A(PURGED), A(ERROR)));
#undef A
}

typedef struct {
    char dir[64];
    BrStore *store;
    CmDb *db;
} Fixture;

static int setup_store(void **state)
{
    Fixture *f = calloc(1, sizeof(*f));
    char path[128], key[128];
    CmError err = {0};

    snprintf(f->dir, sizeof(f->dir), "/tmp/test-br-request-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(path, sizeof(path), "%s/db", f->dir);
    snprintf(key, sizeof(key), "%s/key", f->dir);
    assert_int_equal(br_store_open(path, key, &f->store, &err), 0);
    assert_int_equal(br_store_write_begin(f->store, &f->db, &err), 0);
    assert_int_equal(
        cm_db_exec(f->db,
                   "INSERT INTO departments VALUES (1,'d','D',1,1,1,1,'t','t');"
                   "INSERT INTO accounts(id, name, role, department_id, token_hash, disabled,"
                   " created_at, token_created_at) VALUES (1,'u','department',1,'h',0,'t','t');"
                   "INSERT INTO systems VALUES (1,1,'s','','other',2,'in_service','t','t');"
                   "INSERT INTO requests(id, department_id, system_id, kind, state,"
                   " justification, created_by, created_at, updated_at)"
                   " VALUES (7,1,1,'new','draft','j',1,'t','t');",
                   &err),
        0);
    assert_int_equal(br_store_write_commit(f->store, f->db, &err), 0);
    *state = f;
    return 0;
}

static int teardown_store(void **state)
{
    Fixture *f = *state;
    char cmd[160];
    br_store_free(f->store);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static const char *row_state(CmDb *db)
{
    static char buf[32];
    _cleanup_stmt_ CmStmt *s = cm_db_prepare(db, "SELECT state FROM requests WHERE id = 7", NULL);
    assert_int_equal(cm_stmt_step(s, NULL), 1);
    snprintf(buf, sizeof(buf), "%s", cm_stmt_text(s, 0));
    return buf;
}

static int64_t count(CmDb *db, const char *sql)
{
    _cleanup_stmt_ CmStmt *s = cm_db_prepare(db, sql, NULL);
    assert_int_equal(cm_stmt_step(s, NULL), 1);
    return cm_stmt_int(s, 0);
}

static void test_set_state_writes_row_history_audit(void **state)
{
    Fixture *f = *state;
    BrActor actor = {.account_id = 1,
                     .name = "u",
                     .role = BR_ROLE_DEPARTMENT,
                     .department_id = 1,
                     .request_id = "r1",
                     .client = "127.0.0.1"};
    CmError err = {0};
    CmDb *db;

    assert_int_equal(br_store_write_begin(f->store, &db, &err), 0);
    assert_int_equal(br_request_set_state(f->store, db, &actor, 7, NEW, S(DRAFT), S(SUBMITTED),
                                          "request.submit", "please", &err),
                     0);
    assert_int_equal(br_store_write_commit(f->store, db, &err), 0);
    assert_string_equal(row_state(db), "submitted");
    assert_int_equal(count(db, "SELECT count(*) FROM request_history WHERE request_id = 7"
                               " AND from_state = 'draft' AND to_state = 'submitted'"
                               " AND comment = 'please'"),
                     1);
    assert_int_equal(count(db, "SELECT count(*) FROM audit WHERE action = 'request.submit'"
                               " AND object_id = 7 AND outcome = 'submitted'"
                               " AND request_id = 'r1' AND client = '127.0.0.1'"),
                     1);
}

static void test_set_state_refuses_and_changes_nothing(void **state)
{
    Fixture *f = *state;
    BrActor actor = {.account_id = 1, .name = "u", .role = BR_ROLE_DEPARTMENT};
    CmError err = {0};
    CmDb *db;

    /* Not in the table: draft cannot jump to approved. */
    assert_int_equal(br_store_write_begin(f->store, &db, &err), 0);
    assert_true(br_request_set_state(f->store, db, &actor, 7, NEW, S(DRAFT), S(APPROVED), "x", NULL,
                                     &err) < 0);
    assert_int_equal(err.kind, CM_ERROR_CONFLICT);
    assert_string_equal(err.code, "invalid_transition");
    assert_non_null(strstr(err.message, "draft"));
    br_store_write_abort(f->store, db);

    /* In the table, but the row is no longer in the expected state (a concurrent move). */
    cm_error_clear(&err);
    assert_int_equal(br_store_write_begin(f->store, &db, &err), 0);
    assert_true(br_request_set_state(f->store, db, &actor, 7, NEW, S(SUBMITTED), S(APPROVED), "x",
                                     NULL, &err) < 0);
    assert_int_equal(err.kind, CM_ERROR_CONFLICT);
    assert_non_null(strstr(err.message, "submitted"));
    br_store_write_abort(f->store, db);

    assert_string_equal(row_state(db), "draft");
    assert_int_equal(count(db, "SELECT count(*) FROM request_history"), 0);
    assert_int_equal(count(db, "SELECT count(*) FROM audit"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_matches_workflow),
        cmocka_unit_test(test_final_states),
        cmocka_unit_test(test_strings_round_trip),
        cmocka_unit_test(test_allocation_table),
        cmocka_unit_test_setup_teardown(test_set_state_writes_row_history_audit, setup_store,
                                        teardown_store),
        cmocka_unit_test_setup_teardown(test_set_state_refuses_and_changes_nothing, setup_store,
                                        teardown_store),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
