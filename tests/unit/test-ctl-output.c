/* SPDX-License-Identifier: Apache-2.0 */
/* ctl-output: widths in terminal columns, terminal-safe text, aligned tables. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ctl-output.h"
#include "cm-json.h"
#include "cm-util.h"

static void test_width(void **state)
{
    assert_int_equal(ctl_text_width(""), 0);
    assert_int_equal(ctl_text_width("civil-affairs"), 13);
    assert_int_equal(ctl_text_width("民政局"), 6);
    assert_int_equal(ctl_text_width("网上办事大厅 v2"), 15);
    assert_int_equal(ctl_text_width("ＡＢ"), 4);      /* fullwidth forms */
    assert_int_equal(ctl_text_width("한국"), 4);      /* Hangul */
    assert_int_equal(ctl_text_width("e\xcc\x81"), 1); /* e + combining acute */
    assert_int_equal(ctl_text_width("a\xe2\x80\x8b"
                                    "b"),
                     2);                             /* zero-width space */
    assert_int_equal(ctl_text_width("\xff\xfe"), 2); /* invalid bytes: one column each */
    assert_int_equal(ctl_text_width("\xe6\xb0"), 2); /* truncated character */
    assert_int_equal(ctl_text_width("\xc0\xaf"), 2); /* overlong '/' */
}

static void check_sanitized(const char *in, bool single_line, const char *want)
{
    char *got = ctl_text_sanitize(in, single_line);
    assert_non_null(got);
    assert_string_equal(got, want);
    free(got);
}

static void test_sanitize(void **state)
{
    check_sanitized("民政局 ok", true, "民政局 ok");
    check_sanitized("red\x1b[31mtext", true, "red?[31mtext");
    check_sanitized("a\tb\nc\r\n", true, "a b c  ");
    check_sanitized("a\tb\nc\r\n", false, "a\tb\nc\n");
    check_sanitized("bell\x07 del\x7f c1\xc2\x9b", true, "bell? del? c1?");
    /* Bidirectional overrides could make a comment read differently from what it says. */
    check_sanitized("x\xe2\x80\xaey", true, "x?y");
    check_sanitized("bad\xff"
                    "byte",
                    true, "bad?byte");
    check_sanitized(NULL, true, "");
}

static void check_truncated(const char *in, size_t width, const char *want)
{
    char *got = ctl_text_truncate(in, width);
    assert_non_null(got);
    assert_string_equal(got, want);
    assert_true(ctl_text_width(got) <= width);
    free(got);
}

static void test_truncate(void **state)
{
    check_truncated("short", 10, "short");
    check_truncated("exactly10!", 10, "exactly10!");
    check_truncated("a longer text", 8, "a longe\xe2\x80\xa6");
    /* A wide character that does not fit is left out whole, never cut in half. */
    check_truncated("民政局信息中心", 6, "民政\xe2\x80\xa6");
    check_truncated("民政局信息中心", 7, "民政局\xe2\x80\xa6");
}

static void test_json_text(void **state)
{
    json_object *o = json_tokener_parse("{\"n\":null,\"t\":true,\"f\":false,\"i\":-42,"
                                        "\"s\":\"民\",\"a\":[1,\"x/y\"],\"o\":{\"k\":{\"v\":7}}}");
    const char *cases[][2] = {
        {"n", "-"},           {"t", "yes"},     {"f", "no"},    {"i", "-42"},      {"s", "民"},
        {"a", "[1,\"x/y\"]"}, {"missing", "-"}, {"o.k.v", "7"}, {"o.k.none", "-"}, {"s.x", "-"},
    };
    for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
        char *t = ctl_json_text(ctl_json_path(o, cases[i][0]));
        assert_string_equal(t, cases[i][1]);
        free(t);
    }
    json_object_put(o);
}

static char *render(CtlTable *t, size_t indent)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    assert_int_equal(ctl_table_print(t, f, indent), 0);
    fclose(f);
    return buf;
}

static void test_table_alignment(void **state)
{
    static const CtlColumn cols[] = {
        {"ID", CTL_ALIGN_RIGHT},
        {"NAME", CTL_ALIGN_LEFT},
        {"VCPUS", CTL_ALIGN_RIGHT},
        {"NOTE", CTL_ALIGN_LEFT},
    };
    CtlTable *t = ctl_table_new(cols, ELEMENTSOF(cols));
    const char *r1[] = {"1", "民政局", "32", "ok"};
    const char *r2[] = {"12", "civil", "4", ""};
    const char *r3[] = {"3", "x\ny", NULL, "\x1b]0;title\x07"};
    char *out;

    assert_int_equal(ctl_table_add_row(t, r1, 4), 0);
    assert_int_equal(ctl_table_add_row(t, r2, 4), 0);
    assert_int_equal(ctl_table_add_row(t, r3, 4), 0);
    assert_int_equal(ctl_table_add_row(t, r1, 3), -EINVAL);
    assert_int_equal(ctl_table_rows(t), 3);
    out = render(t, 2);
    /* Columns line up in terminal columns; empty and NULL cells show "-"; no trailing blanks. */
    assert_string_equal(out, "  ID  NAME    VCPUS  NOTE\n"
                             "   1  民政局     32  ok\n"
                             "  12  civil       4  -\n"
                             "   3  x y         -  ?]0;title?\n");
    free(out);
    ctl_table_free(t);
}

static void test_json_cell(void **state)
{
    json_object *o = json_tokener_parse(
        "{\"department_id\": 3, \"department_name\": \"民政局\", \"system_id\": 9,"
        " \"system_name\": null, \"host_id\": null, \"host_name\": \"hv\","
        " \"account_id\": 4, \"account\": \"\", \"totals\": {\"vcpus\": 2}}");
    static const CtlColumn cols[] = {{"DEPARTMENT", CTL_ALIGN_LEFT}, {"SYSTEM", CTL_ALIGN_LEFT}};
    static const char *const keys[] = {"department_id+department_name", "system_id+system_name"};
    CtlTable *t = ctl_table_new(cols, ELEMENTSOF(cols));
    char *cell, *out;

    assert_non_null(o);
    /* An id with its name beside it; only the id when there is no name; "-" without an id. */
    cell = ctl_json_cell(o, "department_id+department_name");
    assert_string_equal(cell, "3 民政局");
    free(cell);
    cell = ctl_json_cell(o, "system_id+system_name");
    assert_string_equal(cell, "9");
    free(cell);
    cell = ctl_json_cell(o, "account_id+account");
    assert_string_equal(cell, "4");
    free(cell);
    cell = ctl_json_cell(o, "host_id+host_name");
    assert_string_equal(cell, "-");
    free(cell);
    cell = ctl_json_cell(o, "totals.vcpus");
    assert_string_equal(cell, "2");
    free(cell);
    cell = ctl_json_cell(o, "missing+department_name");
    assert_string_equal(cell, "-");
    free(cell);
    assert_int_equal(ctl_table_add_json_row(t, o, keys, 2), 0);
    out = render(t, 0);
    assert_string_equal(out, "DEPARTMENT  SYSTEM\n"
                             "3 民政局    9\n");
    free(out);
    ctl_table_free(t);
    json_object_put(o);
}

static void test_table_cuts_long_cells(void **state)
{
    static const CtlColumn cols[] = {{"C", CTL_ALIGN_LEFT}};
    CtlTable *t = ctl_table_new(cols, 1);
    char long_cell[200];
    char *out, *second;

    memset(long_cell, 'x', sizeof(long_cell) - 1);
    long_cell[sizeof(long_cell) - 1] = 0;
    const char *row[] = {long_cell};
    assert_int_equal(ctl_table_add_row(t, row, 1), 0);
    out = render(t, 0);
    second = strchr(out, '\n') + 1;
    second[strlen(second) - 1] = 0;
    assert_int_equal(ctl_text_width(second), CTL_TABLE_MAX_CELL_WIDTH);
    assert_non_null(strstr(second, "\xe2\x80\xa6"));
    free(out);
    ctl_table_free(t);
}

static void test_field(void **state)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);

    ctl_print_field(f, 2, 8, "Name", "民政局");
    ctl_print_field(f, 2, 8, "Note", "line one\nline two");
    ctl_print_field(f, 0, 4, "Justification", NULL);
    fclose(f);
    assert_string_equal(buf, "  Name:     民政局\n"
                             "  Note:     line one\n"
                             "            line two\n"
                             "Justification: -\n");
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_width),           cmocka_unit_test(test_sanitize),
        cmocka_unit_test(test_truncate),        cmocka_unit_test(test_json_text),
        cmocka_unit_test(test_table_alignment), cmocka_unit_test(test_table_cuts_long_cells),
        cmocka_unit_test(test_field),           cmocka_unit_test(test_json_cell),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
