/* SPDX-License-Identifier: Apache-2.0 */
/* ctl_args_parse(): the command line as cloudbrokerctl reads it, and what it refuses. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ctl-args.h"
#include "cm-util.h"

static const CtlOption spec[] = {
    {"code", 0, "C", CTL_OPT_VALUE | CTL_OPT_REQUIRED, "code"},
    {"instance", 0, "SPEC", CTL_OPT_VALUE | CTL_OPT_REPEAT, "instance"},
    {"flag", 0, NULL, 0, "a flag"},
    {"output", 'o', "FILE", CTL_OPT_VALUE, "output"},
    {NULL},
};

/* Parses the NULL-terminated @argv; returns ctl_args_parse()'s result and the message. */
static int parse(CtlArgs *a, unsigned flags, char **msg, ...)
{
    char *argv[32];
    int argc = 0;
    va_list ap;
    va_start(ap, msg);
    for (char *s; (s = va_arg(ap, char *)) && argc < 32;)
        argv[argc++] = s;
    va_end(ap);
    return ctl_args_parse(spec, argc, argv, flags, a, msg);
}

static void refused(const char *want, ...)
{
    CtlArgs a = {0};
    char *msg = NULL, *argv[32];
    int argc = 0;
    va_list ap;
    va_start(ap, want);
    for (char *s; (s = va_arg(ap, char *)) && argc < 32;)
        argv[argc++] = s;
    va_end(ap);
    assert_int_equal(ctl_args_parse(spec, argc, argv, 0, &a, &msg), -EINVAL);
    assert_non_null(msg);
    if (!strstr(msg, want))
        fail_msg("message '%s' does not contain '%s'", msg, want);
    free(msg);
}

static void test_values_flags_and_positionals(void **state)
{
    CtlArgs a = {0};
    char *msg = NULL;

    assert_int_equal(parse(&a, 0, &msg, "7", "--code", "x-1", "--instance=a=1,b=2", "--flag", "-o",
                           "out.bin", "--instance", "--looks-like-an-option", "KIND", (char *)NULL),
                     0);
    assert_null(msg);
    assert_string_equal(ctl_args_get(&a, "code"), "x-1");
    assert_int_equal(ctl_args_count(&a, "instance"), 2);
    assert_string_equal(ctl_args_get_nth(&a, "instance", 0), "a=1,b=2");
    assert_string_equal(ctl_args_get_nth(&a, "instance", 1), "--looks-like-an-option");
    assert_null(ctl_args_get_nth(&a, "instance", 2));
    assert_true(ctl_args_has(&a, "flag"));
    assert_null(ctl_args_get(&a, "flag"));
    assert_string_equal(ctl_args_get(&a, "output"), "out.bin");
    assert_int_equal(a.n_pos, 2);
    assert_string_equal(a.pos[0], "7");
    assert_string_equal(a.pos[1], "KIND");
    ctl_args_clear(&a);
}

static void test_short_glued_dash_and_double_dash(void **state)
{
    CtlArgs a = {0};
    char *msg = NULL;

    assert_int_equal(
        parse(&a, 0, &msg, "--code", "c", "-ofile", "-", "--", "--flag", "-o", (char *)NULL), 0);
    assert_string_equal(ctl_args_get(&a, "output"), "file");
    assert_false(ctl_args_has(&a, "flag"));
    assert_int_equal(a.n_pos, 3);
    assert_string_equal(a.pos[0], "-");
    assert_string_equal(a.pos[1], "--flag");
    assert_string_equal(a.pos[2], "-o");
    ctl_args_clear(&a);
}

static void test_refusals(void **state)
{
    refused("unknown option '--nope'", "--code", "c", "--nope", (char *)NULL);
    refused("unknown option '-x'", "--code", "c", "-x", (char *)NULL);
    refused("'--code' needs a value", "--code", (char *)NULL);
    refused("'--code' is given more than once", "--code", "a", "--code", "b", (char *)NULL);
    refused("'--flag' takes no value", "--code", "c", "--flag=yes", (char *)NULL);
    refused("missing required option '--code'", "--flag", (char *)NULL);
}

static void test_help_wins(void **state)
{
    CtlArgs a = {0};
    char *msg = NULL;

    /* Unknown options and missing required ones do not hide the help. */
    assert_int_equal(parse(&a, 0, &msg, "--nope", "-h", (char *)NULL), 0);
    assert_true(a.help);
    ctl_args_clear(&a);
    assert_int_equal(parse(&a, 0, &msg, "--help", (char *)NULL), 0);
    assert_true(a.help);
    ctl_args_clear(&a);
    /* After "--", --help is an argument like any other. */
    assert_int_equal(parse(&a, 0, &msg, "--code", "c", "--", "--help", (char *)NULL), 0);
    assert_false(a.help);
    assert_string_equal(a.pos[0], "--help");
    ctl_args_clear(&a);
}

static void test_stop_at_positional(void **state)
{
    CtlArgs a = {0};
    char *msg = NULL;
    unsigned f = CTL_ARGS_STOP_AT_POSITIONAL | CTL_ARGS_NO_REQUIRED_CHECK;

    assert_int_equal(
        parse(&a, f, &msg, "--flag", "-o", "x", "request", "--nope", "--help", (char *)NULL), 0);
    /* The command's own --help is not the program's. */
    assert_false(a.help);
    assert_int_equal(a.consumed, 3);
    assert_true(ctl_args_has(&a, "flag"));
    assert_int_equal(a.n_pos, 0);
    ctl_args_clear(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values_flags_and_positionals),
        cmocka_unit_test(test_short_glued_dash_and_double_dash),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_help_wins),
        cmocka_unit_test(test_stop_at_positional),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
