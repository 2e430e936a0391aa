/* SPDX-License-Identifier: Apache-2.0 */
/* ctl-figures: the broker's figures as a person reads them in a table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ctl-figures.h"

/* Checks @got (consumed) against @want. */
static void check(char *got, const char *want)
{
    assert_non_null(got);
    assert_string_equal(got, want);
    free(got);
}

static void test_percent(void **state)
{
    json_object *v;

    check(ctl_figure_percent(v = json_object_new_double(0.425)), "42.5%");
    json_object_put(v);
    check(ctl_figure_percent(v = json_object_new_double(1.0)), "100.0%");
    json_object_put(v);
    check(ctl_figure_percent(v = json_object_new_int(1)), "100.0%");
    json_object_put(v);
    check(ctl_figure_percent(v = json_object_new_double(0.0025)), "0.2%");
    json_object_put(v);
    /* Absent, null, and what is not a number: nothing to show, never a made-up zero. */
    check(ctl_figure_percent(NULL), "-");
    check(ctl_figure_percent(v = json_object_new_string("0.5")), "-");
    json_object_put(v);
    check(ctl_figure_percent(v = json_object_new_boolean(1)), "-");
    json_object_put(v);
}

static void test_number(void **state)
{
    json_object *v;

    check(ctl_figure_number(v = json_object_new_double(0.94499999999999995), 3), "0.945");
    json_object_put(v);
    check(ctl_figure_number(v = json_object_new_double(60.75), 1), "60.8");
    json_object_put(v);
    check(ctl_figure_number(v = json_object_new_double(307.2), 0), "307");
    json_object_put(v);
    /* An integer stays one whatever the decimals. */
    check(ctl_figure_number(v = json_object_new_int64(4096), 2), "4096");
    json_object_put(v);
    check(ctl_figure_number(v = json_object_new_int64(-1), 2), "-1");
    json_object_put(v);
    check(ctl_figure_number(NULL, 2), "-");
    check(ctl_figure_number(v = json_object_new_string("12"), 2), "-");
    json_object_put(v);
}

static void test_bytes(void **state)
{
    static const struct {
        int64_t n;
        const char *want;
    } cases[] = {
        {0, "0 B"},
        {1023, "1023 B"},
        {1024, "1.0 KiB"},
        {1536, "1.5 KiB"},
        {360000, "351.6 KiB"},
        {1048576, "1.0 MiB"},
        {INT64_C(12960000000), "12.1 GiB"},
        {INT64_C(1099511627776), "1.0 TiB"},
        {INT64_C(1125899906842624) * 2048, "2048.0 PiB"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_object *v = json_object_new_int64(cases[i].n);
        check(ctl_figure_bytes(v), cases[i].want);
        json_object_put(v);
    }
    check(ctl_figure_bytes(NULL), "-");
}

static void test_size(void **state)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "vcpus", json_object_new_int(2));
    json_object_object_add(o, "memory_mib", json_object_new_int(2816));
    check(ctl_figure_size(o), "2/2816");
    json_object_object_add(o, "vcpus", json_object_new_int(-1));
    check(ctl_figure_size(o), "-1/2816");
    json_object_put(o);
    check(ctl_figure_size(NULL), "-");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_percent),
        cmocka_unit_test(test_number),
        cmocka_unit_test(test_bytes),
        cmocka_unit_test(test_size),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
