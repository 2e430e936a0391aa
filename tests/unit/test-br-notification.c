/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Notifications as pure functions: which audited action tells whom, the e-mail's text, the
 * mailer's backoff and the message it hands the relay.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "br-mailer.h"
#include "br-notification.h"
#include "cm-json.h"

static void expect_kind(const char *action, const char *outcome, const char *kind, unsigned to)
{
    unsigned got_to = 0;
    int k = br_notify_for_audit(action, outcome, &got_to);
    if (k < 0)
        fail_msg("%s/%s raises nothing, want %s", action, outcome ? outcome : "-", kind);
    assert_string_equal(br_notify_kind_to_string((BrNotifyKind)k), kind);
    assert_int_equal(got_to, to);
}

static void expect_none(const char *action, const char *outcome)
{
    unsigned to = 0;
    if (br_notify_for_audit(action, outcome, &to) >= 0)
        fail_msg("%s/%s should raise nothing", action, outcome ? outcome : "-");
}

static void test_mapping_restated(void **state)
{
    /* The contract's list (docs/api.md), restated independently of the table. */
    expect_kind("request.submit", "submitted", "request_submitted", BR_TO_REVIEWERS);
    expect_kind("request.resubmit", "submitted", "request_submitted", BR_TO_REVIEWERS);
    expect_kind("request.assign", "ok", "consultant_assigned", BR_TO_CONSULTANT);
    expect_kind("request.opinion", "approve", "opinion_recorded",
                BR_TO_DEPARTMENT | BR_TO_REVIEWERS);
    expect_kind("request.decision", "returned", "request_returned", BR_TO_DEPARTMENT);
    expect_kind("request.decision", "approved", "request_approved", BR_TO_DEPARTMENT);
    expect_kind("request.decision", "rejected", "request_rejected", BR_TO_DEPARTMENT);
    expect_kind("request.trial_result", "pass", "trial_results_recorded",
                BR_TO_REVIEWERS | BR_TO_DEPARTMENT);
    expect_kind("request.trial_end", "trial_passed", "trial_passed",
                BR_TO_DEPARTMENT | BR_TO_REVIEWERS);
    expect_kind("request.trial_end", "trial_failed", "trial_failed",
                BR_TO_DEPARTMENT | BR_TO_REVIEWERS);
    expect_kind("request.trial_timeout", "trial_failed", "trial_failed",
                BR_TO_DEPARTMENT | BR_TO_REVIEWERS);
    expect_kind("job.error", "error", "job_failed", BR_TO_VENDORS);
}

static void test_mapping_silent(void **state)
{
    expect_none("request.create", "draft");
    expect_none("request.update", "ok");
    expect_none("request.withdraw", "withdrawn");
    expect_none("request.decision", NULL);
    expect_none("request.decision", "submitted");
    expect_none("session.create", "ok");
    expect_none("session.fail", "refused");
    expect_none("samples.ingest", "ok");
    expect_none("job.done", "done");
    expect_none("", NULL);
}

static void test_kind_strings(void **state)
{
    for (int k = 0; k < BR_NOTIFY_KIND_MAX; k++) {
        const char *s = br_notify_kind_to_string((BrNotifyKind)k);
        assert_non_null(s);
        assert_int_equal(br_notify_kind_from_string(s), k);
    }
    assert_null(br_notify_kind_to_string(BR_NOTIFY_KIND_MAX));
}

static void test_mail_text(void **state)
{
    _cleanup_json_ json_object *detail = json_object_new_object();
    char *subject = NULL, *body = NULL;

    json_object_object_add(detail, "comment", json_object_new_string("补充备份方案"));
    assert_int_equal(br_notification_mail_text(BR_NOTIFY_REQUEST_RETURNED, "request", 12,
                                               "婚姻登记\r\nBcc: x@evil", "reviewer-1", detail,
                                               "https://gov.example/cloud", &subject, &body),
                     0);
    /* A name with a line break cannot add a header. */
    assert_null(strchr(subject, '\n'));
    assert_null(strchr(subject, '\r'));
    assert_non_null(strstr(subject, "申请被退回修改"));
    assert_non_null(strstr(subject, "A request was returned for changes"));
    assert_non_null(strstr(body, "补充备份方案"));
    assert_non_null(strstr(body, "https://gov.example/cloud/#/requests/12"));
    assert_non_null(strstr(body, "reviewer-1"));
    free(subject);
    free(body);
    assert_int_equal(br_notification_mail_text(BR_NOTIFY_JOB_FAILED, "job", 7, NULL, "cloudbrokerd",
                                               NULL, NULL, &subject, &body),
                     0);
    assert_non_null(strstr(subject, "job 7"));
    assert_null(strstr(body, "http"));
    free(subject);
    free(body);
}

static void test_backoff(void **state)
{
    assert_int_equal(br_mailer_backoff_ms(30000, 1), 30000);
    assert_int_equal(br_mailer_backoff_ms(30000, 2), 60000);
    assert_int_equal(br_mailer_backoff_ms(30000, 3), 120000);
    assert_int_equal(br_mailer_backoff_ms(30000, 40), 3600000);
    assert_int_equal(br_mailer_backoff_ms(1000, 1), 1000);
}

static void test_message(void **state)
{
    char *m = br_mailer_message("cloud@gov.example", "r1@gov.example", "申请 / Request",
                                "正文 body\n", "1.1@gov.example", 0);
    assert_non_null(m);
    assert_non_null(strstr(m, "Subject: =?UTF-8?B?55Sz6K+3IC8gUmVxdWVzdA==?=\r\n"));
    assert_non_null(strstr(m, "From: <cloud@gov.example>\r\n"));
    assert_non_null(strstr(m, "To: <r1@gov.example>\r\n"));
    assert_non_null(strstr(m, "Content-Transfer-Encoding: base64\r\n"));
    assert_non_null(strstr(m, "Date: Thu, 01 Jan 1970 00:00:00 +0000\r\n"));
    /* The body: base64 of "正文 body\n". */
    assert_non_null(strstr(m, "\r\n\r\n5q2j5paHIGJvZHkK\r\n"));
    free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mapping_restated), cmocka_unit_test(test_mapping_silent),
        cmocka_unit_test(test_kind_strings),     cmocka_unit_test(test_mail_text),
        cmocka_unit_test(test_backoff),          cmocka_unit_test(test_message),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
