/* SPDX-License-Identifier: Apache-2.0 */
/* ctl-values: the option values of host add/update, request trial-result and job watch. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ctl-values.h"

static void want_message(char *msg, const char *want)
{
    assert_non_null(msg);
    if (!strstr(msg, want))
        fail_msg("message '%s' does not contain '%s'", msg, want);
    free(msg);
}

static void test_ratio(void **state)
{
    double v = -1;
    bool def = true;
    char *msg = NULL;

    assert_int_equal(ctl_parse_ratio("--cpu-ratio", "4", CTL_CPU_RATIO_MAX, false, &v, &def, &msg),
                     0);
    assert_null(msg);
    assert_true(v == 4.0);
    assert_false(def);
    assert_int_equal(ctl_parse_ratio("--ram-ratio", "1.5", CTL_RAM_RATIO_MAX, true, &v, &def, &msg),
                     0);
    assert_true(v == 1.5);
    assert_int_equal(
        ctl_parse_ratio("--disk-ratio", "64", CTL_DISK_RATIO_MAX, false, &v, &def, &msg), 0);
    assert_true(v == 64.0);
    assert_int_equal(
        ctl_parse_ratio("--cpu-ratio", "0.01", CTL_CPU_RATIO_MAX, false, &v, &def, &msg), 0);
    /* "default": back to the placement policy's ratio, only where the caller allows it. */
    assert_int_equal(
        ctl_parse_ratio("--cpu-ratio", "default", CTL_CPU_RATIO_MAX, true, &v, &def, &msg), 0);
    assert_true(def);
    assert_int_equal(
        ctl_parse_ratio("--cpu-ratio", "default", CTL_CPU_RATIO_MAX, false, &v, &def, &msg),
        -EINVAL);
    want_message(msg, "--cpu-ratio must be a number above 0 and at most 64, not 'default'");

    /* What the schema refuses: zero, negative, past the maximum; and what is not a number. */
    static const char *const bad[] = {"0",   "-1",  "16.5", "",   "x",  "nan",
                                      "inf", "1e1", "0x4",  " 2", "2 ", "1,5"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        msg = NULL;
        assert_int_equal(
            ctl_parse_ratio("--ram-ratio", bad[i], CTL_RAM_RATIO_MAX, true, &v, &def, &msg),
            -EINVAL);
        want_message(msg, "--ram-ratio must be a number above 0 and at most 16");
    }
}

static void test_switch(void **state)
{
    static const char *const on[] = {"on", "yes", "true", "ON", "Yes"};
    static const char *const off[] = {"off", "no", "false", "OFF", "No"};
    char *msg = NULL;
    bool v;

    for (size_t i = 0; i < 5; i++) {
        v = false;
        assert_int_equal(ctl_parse_switch("--maintenance", on[i], &v, &msg), 0);
        assert_true(v);
        v = true;
        assert_int_equal(ctl_parse_switch("--maintenance", off[i], &v, &msg), 0);
        assert_false(v);
    }
    assert_null(msg);
    assert_int_equal(ctl_parse_switch("--enabled", "1", &v, &msg), -EINVAL);
    want_message(msg, "--enabled must be on or off (yes or no), not '1'");
    assert_int_equal(ctl_parse_switch("--enabled", "", &v, &msg), -EINVAL);
    want_message(msg, "not ''");
}

static void test_sha256(void **state)
{
    static const char lower[] = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    char out[CM_SHA256_HEX_LEN + 1];
    char *msg = NULL;

    assert_int_equal(ctl_parse_sha256(lower, out, &msg), 0);
    assert_string_equal(out, lower);
    /* Upper case is the same digest; the broker's schema wants lower case. */
    assert_int_equal(
        ctl_parse_sha256("9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08", out,
                         &msg),
        0);
    assert_string_equal(out, lower);
    assert_null(msg);

    assert_int_equal(ctl_parse_sha256("9f86d0", out, &msg), -EINVAL);
    want_message(msg, "not a SHA-256 digest (64 hexadecimal digits)");
    assert_int_equal(
        ctl_parse_sha256("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a0g", out,
                         &msg),
        -EINVAL);
    want_message(msg, "not a SHA-256 digest");
    assert_int_equal(
        ctl_parse_sha256("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a080", out,
                         &msg),
        -EINVAL);
    want_message(msg, "not a SHA-256 digest");
    assert_int_equal(ctl_parse_sha256("", out, &msg), -EINVAL);
    want_message(msg, "not a SHA-256 digest");
}

static void test_seconds(void **state)
{
    char *msg = NULL;
    double v = 0;

    assert_int_equal(ctl_parse_seconds("--interval", "2", 0.1, 3600, &v, &msg), 0);
    assert_true(v == 2.0);
    assert_int_equal(ctl_parse_seconds("--interval", "0.5", 0.1, 3600, &v, &msg), 0);
    assert_true(v == 0.5);
    assert_int_equal(ctl_parse_seconds("--timeout", "0", 0, 86400, &v, &msg), 0);
    assert_true(v == 0.0);
    assert_null(msg);
    static const char *const bad[] = {"0.05", "3601", "-1", "", "1s", "1e3", "inf", "nan", "."};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        msg = NULL;
        assert_int_equal(ctl_parse_seconds("--interval", bad[i], 0.1, 3600, &v, &msg), -EINVAL);
        want_message(msg, "--interval must be a number of seconds from 0.1 to 3600");
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ratio),
        cmocka_unit_test(test_switch),
        cmocka_unit_test(test_sha256),
        cmocka_unit_test(test_seconds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
