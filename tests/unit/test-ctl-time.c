/* SPDX-License-Identifier: Apache-2.0 */
/* ctl-time: days, durations and moments of the usage and metering commands. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ctl-time.h"

/* 2026-11-28T01:02:03Z */
#define NOW INT64_C(1795827723)

static void want_message(char *msg, const char *want)
{
    assert_non_null(msg);
    if (!strstr(msg, want))
        fail_msg("message '%s' does not contain '%s'", msg, want);
    free(msg);
}

static void test_day(void **state)
{
    char day[CTL_DAY_LEN + 1];
    char *msg = NULL;

    assert_int_equal(ctl_time_parse_day("--day", "2026-11-27", NOW, day, &msg), 0);
    assert_string_equal(day, "2026-11-27");
    assert_int_equal(ctl_time_parse_day("--day", "2024-02-29", NOW, day, &msg), 0);
    assert_string_equal(day, "2024-02-29");
    assert_int_equal(ctl_time_parse_day("--day", "today", NOW, day, &msg), 0);
    assert_string_equal(day, "2026-11-28");
    assert_int_equal(ctl_time_parse_day("--day", "yesterday", NOW, day, &msg), 0);
    assert_string_equal(day, "2026-11-27");
    /* Across a month and a year. */
    assert_int_equal(ctl_time_parse_day("--day", "yesterday", INT64_C(1798761600), day, &msg), 0);
    assert_string_equal(day, "2026-12-31");
    assert_null(msg);

    /* What the schema's pattern refuses, and days the calendar does not have. */
    static const char *const bad[] = {
        "2026-02-29", "2026-02-30",  "2026-13-01", "2026-00-10", "2026-11-00",
        "2026-11-32", "2026-1-27",   "26-11-27",   "2026/11/27", "2026-11-27T00:00:00Z",
        "",           "tomorrow",    "Today",      "2026-11-2a", "20261127",
        "2026--1127", "2026-11-27 ",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memcpy(day, "unchanged!", CTL_DAY_LEN + 1);
        assert_int_equal(ctl_time_parse_day("--day", bad[i], NOW, day, &msg), -EINVAL);
        want_message(msg, "--day must be a UTC day YYYY-MM-DD, 'today' or 'yesterday', not '");
        msg = NULL;
        assert_string_equal(day, "unchanged!");
    }
}

static void test_duration(void **state)
{
    static const struct {
        const char *s;
        int64_t want;
    } good[] = {
        {"300", 300},  {"10", 10},         {"5m", 300}, {"1h", 3600},
        {"1d", 86400}, {"2w", 14 * 86400}, {"90s", 90}, {"366d", 366 * 86400},
    };
    char *msg = NULL;
    int64_t v;

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        v = -1;
        assert_int_equal(
            ctl_time_parse_duration("--step", good[i].s, CTL_STEP_MIN, CTL_STEP_MAX, &v, &msg), 0);
        assert_int_equal(v, good[i].want);
    }
    assert_null(msg);
    static const char *const bad[] = {
        "9",
        "5s",
        "367d",
        "53w",
        "",
        "h",
        "1H",
        "1.5h",
        "-1h",
        "+1h",
        "1 h",
        "1hh",
        "1y",
        "99999999999999999999",
        "9999999999999999999w",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        v = -1;
        assert_int_equal(
            ctl_time_parse_duration("--step", bad[i], CTL_STEP_MIN, CTL_STEP_MAX, &v, &msg),
            -EINVAL);
        want_message(msg, "--step must be a duration from 10 to 31622400 seconds");
        msg = NULL;
        assert_int_equal(v, -1);
    }
}

static void test_point(void **state)
{
    static const struct {
        const char *s;
        int64_t want;
    } good[] = {
        {"now", NOW},
        {"-2h", NOW - 7200},
        {"-7d", NOW - 7 * 86400},
        {"-90m", NOW - 5400},
        {"-30", NOW - 30},
        {"1795737600", INT64_C(1795737600)},
        {"0", 0},
        {"2026-11-27", INT64_C(1795737600)},
        {"2026-11-27T08:00:00Z", INT64_C(1795737600) + 8 * 3600},
        {"2026-11-27T08:00:00.999Z", INT64_C(1795737600) + 8 * 3600},
        /* The same moment in Beijing time. */
        {"2026-11-27T16:00:00+08:00", INT64_C(1795737600) + 8 * 3600},
        {"1970-01-01", 0},
    };
    char *msg = NULL;
    int64_t v;

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        v = -1;
        assert_int_equal(ctl_time_parse_point("--from", good[i].s, NOW, &v, &msg), 0);
        assert_int_equal(v, good[i].want);
    }
    assert_null(msg);
    static const char *const bad[] = {
        "",           "yesterday",
        "-",          "-2y",
        "+5",         "2026-11-27T08:00",
        "2026-02-30", "2026-11-27T08:00:00",
        "1e9",        "12345678901234567890",
        "-99999d",    "1099511627776",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        v = -1;
        assert_int_equal(ctl_time_parse_point("--from", bad[i], NOW, &v, &msg), -EINVAL);
        assert_non_null(msg);
        if (!strstr(msg, "--from must be an ISO 8601 date or time") &&
            !strstr(msg, "out of the range the broker takes"))
            fail_msg("unexpected message for '%s': %s", bad[i], msg);
        free(msg);
        msg = NULL;
        assert_int_equal(v, -1);
    }
    /* The largest moment the broker takes is below 2^40 s. */
    assert_int_equal(ctl_time_parse_point("--to", "1099511627775", NOW, &v, &msg), 0);
    assert_int_equal(ctl_time_parse_point("--to", "1099511627776", NOW, &v, &msg), -EINVAL);
    want_message(msg, "--to: '1099511627776' is out of the range the broker takes");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_day),
        cmocka_unit_test(test_duration),
        cmocka_unit_test(test_point),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
