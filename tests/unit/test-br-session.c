/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The pure parts of the console's sign-in: password strength, the sign-in limit arithmetic,
 * the cookie, Origin and CSRF checks, and the password hash round trip.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "br-password.h"
#include "br-ratelimit.h"
#include "br-session.h"

static void assert_weak(const char *name, const char *pw)
{
    CmError err = {0};
    if (br_password_check_strength(name, pw, "/new_password", &err) >= 0)
        fail_msg("'%s' should be refused", pw);
    assert_string_equal(err.code, "weak_password");
    assert_string_equal(err.field, "/new_password");
    assert_int_equal(err.kind, CM_ERROR_UNPROCESSABLE);
}

static void assert_strong(const char *name, const char *pw)
{
    CmError err = {0};
    if (br_password_check_strength(name, pw, "/new_password", &err) < 0)
        fail_msg("'%s' should pass: %s", pw, err.message);
}

static void test_password_strength(void **state)
{
    assert_weak("clerk", "");
    assert_weak("clerk", "Ab1!Ab1!A");               /* 9 characters */
    assert_strong("clerk", "Ab1!Ab1!Ab");            /* 10, four classes */
    assert_strong("clerk", "abcdefgh12AB");          /* three classes */
    assert_weak("clerk", "abcdefgh1234");            /* two classes, 12 characters */
    assert_weak("clerk", "abcdefghijklmno");         /* one class, 15 */
    assert_strong("clerk", "abcdefghijklmnop");      /* one class, 16: long enough */
    assert_weak("Registrar-2026", "registrar-2026"); /* the name, in another case */
    assert_strong("registrar-2026", "registrar-2027");
    /* Characters, not bytes: ten Chinese characters are ten, one class ("other"). */
    assert_weak("clerk", "民政局婚姻登记处的密");
    assert_strong("clerk", "民政局婚姻登记处的密码是Ab1");
    assert_strong("clerk", "民政局婚姻登记处的密码长度足够十六个");
    char *huge = malloc(BR_PASSWORD_MAX_BYTES + 2);
    memset(huge, 'a', BR_PASSWORD_MAX_BYTES + 1);
    huge[BR_PASSWORD_MAX_BYTES + 1] = 0;
    assert_weak("clerk", huge);
    free(huge);
}

static void test_password_hash_round_trip(void **state)
{
    char hash[BR_PASSWORD_HASH_LEN];
    assert_int_equal(br_password_init(), 0);
    assert_int_equal(br_password_hash("Correct-Horse-9", hash), 0);
    assert_true(strncmp(hash, "$argon2id$", 10) == 0);
    assert_true(br_password_verify(hash, "Correct-Horse-9"));
    assert_false(br_password_verify(hash, "Correct-Horse-8"));
    assert_false(br_password_verify(NULL, "Correct-Horse-9"));
    assert_false(br_password_verify("", ""));
    assert_false(br_password_needs_rehash(hash));
    /* A hash made with weaker limits is upgraded at the next sign-in. */
    assert_true(br_password_needs_rehash(
        "$argon2id$v=19$m=8192,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaA"));
}

static const BrLimitRule rule = {.max_failures = 3, .window_ms = 60000, .lockout_ms = 10000};

static void test_limit_locks_at_the_limit(void **state)
{
    BrLimitState s = {0};
    assert_int_equal(br_limit_fail(&s, &rule, 1000), 0);
    assert_int_equal(br_limit_fail(&s, &rule, 2000), 0);
    assert_int_equal(br_limit_remaining(&s, 2000), 0);
    assert_int_equal(br_limit_fail(&s, &rule, 3000), 10000); /* the third locks */
    assert_int_equal(br_limit_remaining(&s, 3000), 10000);
    assert_int_equal(br_limit_remaining(&s, 12999), 1);
    assert_int_equal(br_limit_remaining(&s, 13000), 0); /* and expires */
}

static void test_limit_does_not_lengthen_while_locked(void **state)
{
    BrLimitState s = {0};
    for (int i = 0; i < 3; i++)
        br_limit_fail(&s, &rule, 1000);
    assert_int_equal(br_limit_fail(&s, &rule, 5000), 0);
    assert_int_equal(br_limit_fail(&s, &rule, 6000), 0);
    assert_int_equal(br_limit_remaining(&s, 6000), 5000); /* still ends at 11000 */
}

static void test_limit_counts_anew_after_a_lock(void **state)
{
    BrLimitState s = {0};
    for (int i = 0; i < 3; i++)
        br_limit_fail(&s, &rule, 1000);
    /* After the lock: one failure is one, not the fourth. */
    assert_int_equal(br_limit_fail(&s, &rule, 11000), 0);
    assert_int_equal(s.failures, 1);
    assert_int_equal(br_limit_remaining(&s, 11000), 0);
}

static void test_limit_window_expires(void **state)
{
    BrLimitState s = {0};
    br_limit_fail(&s, &rule, 1000);
    br_limit_fail(&s, &rule, 2000);
    /* The window of the first two is over: the third starts a new count. */
    assert_int_equal(br_limit_fail(&s, &rule, 61001), 0);
    assert_int_equal(s.failures, 1);
    assert_int_equal(s.window_start_ms, 61001);
    /* A clock that went back starts a new window too. */
    assert_int_equal(br_limit_fail(&s, &rule, 500), 0);
    assert_int_equal(s.failures, 1);
}

static void test_cookie_value(void **state)
{
    char v[64];
    assert_true(br_cookie_value("cb_session=cbs_abc", "cb_session", v, sizeof(v)));
    assert_string_equal(v, "cbs_abc");
    assert_true(br_cookie_value("lang=zh; cb_session=cbs_x ;other=1", "cb_session", v, sizeof(v)));
    assert_string_equal(v, "cbs_x");
    assert_false(br_cookie_value("xcb_session=cbs_x", "cb_session", v, sizeof(v)));
    assert_false(br_cookie_value("cb_sessionx=cbs_x", "cb_session", v, sizeof(v)));
    assert_false(br_cookie_value("lang=zh", "cb_session", v, sizeof(v)));
    assert_false(br_cookie_value("cb_session=0123456789", "cb_session", v, 4)); /* too long */
    assert_true(br_cookie_value("cb_session=", "cb_session", v, sizeof(v)) == false || v[0] == 0);
}

static void test_origin(void **state)
{
    char o[300];
    assert_int_equal(br_expected_origin(NULL, false, "127.0.0.1:8470", o, sizeof(o)), 0);
    assert_string_equal(o, "http://127.0.0.1:8470");
    assert_true(br_origin_matches("http://127.0.0.1:8470", o));
    assert_true(br_origin_matches("HTTP://127.0.0.1:8470", o));
    assert_false(br_origin_matches("https://127.0.0.1:8470", o));
    assert_false(br_origin_matches("http://127.0.0.1:8471", o));
    assert_false(br_origin_matches("http://evil.example", o));
    assert_false(br_origin_matches("null", o));
    assert_false(br_origin_matches("http://127.0.0.1:8470/path", o));
    /* Default ports are no part of an origin. */
    assert_int_equal(br_expected_origin(NULL, true, "Gov.Example:443", o, sizeof(o)), 0);
    assert_string_equal(o, "https://gov.example");
    assert_true(br_origin_matches("https://gov.example", o));
    assert_true(br_origin_matches("https://gov.example:443", o));
    /* Behind a proxy, public_url says who we are, whatever the Host. */
    assert_int_equal(
        br_expected_origin("https://gov.example/cloud/", false, "10.0.0.5:8470", o, sizeof(o)), 0);
    assert_string_equal(o, "https://gov.example");
    assert_int_equal(br_expected_origin(NULL, false, NULL, o, sizeof(o)), -EINVAL);
    assert_int_equal(br_expected_origin(NULL, false, "a b", o, sizeof(o)), -EINVAL);
}

static void test_csrf_and_path(void **state)
{
    char p[200];
    assert_true(br_csrf_matches("csrfABC", "csrfABC"));
    assert_false(br_csrf_matches("csrfABD", "csrfABC"));
    assert_false(br_csrf_matches("csrfAB", "csrfABC"));
    assert_false(br_csrf_matches(NULL, "csrfABC"));
    assert_false(br_csrf_matches("", ""));
    br_cookie_path(NULL, p, sizeof(p));
    assert_string_equal(p, "/");
    br_cookie_path("https://gov.example/cloud/", p, sizeof(p));
    assert_string_equal(p, "/cloud/");
    br_cookie_path("https://gov.example", p, sizeof(p));
    assert_string_equal(p, "/");
    br_cookie_path("https://gov.example/a;b/", p, sizeof(p));
    assert_string_equal(p, "/");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_password_strength),
        cmocka_unit_test(test_password_hash_round_trip),
        cmocka_unit_test(test_limit_locks_at_the_limit),
        cmocka_unit_test(test_limit_does_not_lengthen_while_locked),
        cmocka_unit_test(test_limit_counts_anew_after_a_lock),
        cmocka_unit_test(test_limit_window_expires),
        cmocka_unit_test(test_cookie_value),
        cmocka_unit_test(test_origin),
        cmocka_unit_test(test_csrf_and_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
