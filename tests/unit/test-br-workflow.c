/* SPDX-License-Identifier: Apache-2.0 */
/* Where a retried job takes its allocation and request (br_workflow_retry_states), against the
 * transition tables of br-request.c and the failures of docs/workflow.md. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "br-request.h"
#include "br-workflow.h"
#include "cm-util.h"

#define A(x) BR_ALLOCATION_STATE_##x
#define S(x) BR_REQUEST_STATE_##x

/* docs/workflow.md "Retrying a failed job", written out row by row. */
static const struct {
    BrJobKind job;
    bool trial;
    BrRequestKind request_kind; /* of the request the job works for */
    BrAllocationState allocation;
    BrRequestState request; /* BR_REQUEST_STATE_MAX: the request stays as it is */
} rows[] = {
    {BR_JOB_PROVISION, true, BR_REQUEST_KIND_NEW, A(PROVISIONING), S(APPROVED)},
    {BR_JOB_PROVISION, false, BR_REQUEST_KIND_NEW, A(PROVISIONING), S(TRIAL_PASSED)},
    {BR_JOB_RESIZE, false, BR_REQUEST_KIND_CHANGE, A(RESIZING), S(APPLYING)},
    {BR_JOB_RECLAIM, false, BR_REQUEST_KIND_TERMINATION, A(RECLAIMING), S(RECLAIMING)},
    {BR_JOB_TRIAL_RECLAIM, true, BR_REQUEST_KIND_NEW, A(RECLAIMING), BR_REQUEST_STATE_MAX},
    {BR_JOB_RESTORE, false, BR_REQUEST_KIND_NEW, A(PROVISIONING), BR_REQUEST_STATE_MAX},
    {BR_JOB_PURGE, false, BR_REQUEST_KIND_NEW, A(ERROR), BR_REQUEST_STATE_MAX},
};

static void test_retry_states(void **state)
{
    (void)state;
    for (size_t i = 0; i < ELEMENTSOF(rows); i++) {
        BrAllocationState a = BR_ALLOCATION_STATE_MAX;
        BrRequestState r = S(DRAFT);
        br_workflow_retry_states(rows[i].job, rows[i].trial, &a, &r);
        assert_int_equal(a, rows[i].allocation);
        assert_int_equal(r, rows[i].request);
        /* Every move a retry makes is in the tables, so br_*_set_state() accepts it. */
        if (a != A(ERROR))
            assert_true(br_allocation_transition_allowed(A(ERROR), a));
        if (r != BR_REQUEST_STATE_MAX)
            assert_true(br_request_transition_allowed(rows[i].request_kind, S(FAILED), r));
    }
    /* Every kind of job has its row. */
    assert_int_equal(ELEMENTSOF(rows), BR_JOB_KIND_MAX + 1);
}

/* A retry goes back to where the failure came from: the failure's move, reversed, is in the
 * table for each request the job works for. */
static void test_retry_reverses_the_failure(void **state)
{
    (void)state;
    for (size_t i = 0; i < ELEMENTSOF(rows); i++) {
        if (rows[i].request == BR_REQUEST_STATE_MAX)
            continue;
        assert_true(
            br_request_transition_allowed(rows[i].request_kind, rows[i].request, S(FAILED)));
        assert_true(br_allocation_transition_allowed(rows[i].allocation, A(ERROR)));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_retry_states),
        cmocka_unit_test(test_retry_reverses_the_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
