/* SPDX-License-Identifier: Apache-2.0 */
/* cm_json_parse(): what the API accepts as a JSON body and what it refuses, with which error. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cm-json.h"
#include "cm-util.h"

static int parse(const char *text, size_t len, CmError *err)
{
    json_object *o = NULL;
    int r = cm_json_parse(text, len, &o, err);
    json_object_put(o);
    return r;
}

static void refused(const char *text, size_t len, const char *code)
{
    CmError err = {0};
    if (parse(text, len, &err) >= 0)
        fail_msg("accepted: %.*s", (int)(len > 60 ? 60 : len), text);
    assert_int_equal(err.kind, CM_ERROR_INVALID);
    assert_string_equal(err.code, code);
    assert_true(strlen(err.message) > 0);
}

static void refused_str(const char *text, const char *code)
{
    refused(text, strlen(text), code);
}

static void test_accepts_plain_documents(void **state)
{
    const char *ok[] = {"{}",
                        " [1, 2.5, \"x\", true, null] \n",
                        "{\"名\":\"民政局\"}",
                        "\"\\u00e9\"",
                        "{\"a\":{\"b\":[{}]}}",
                        "12",
                        "1.0",
                        "null",
                        "true",
                        "-0.5e3"};
    for (size_t i = 0; i < ELEMENTSOF(ok); i++)
        assert_int_equal(parse(ok[i], strlen(ok[i]), NULL), 0);
}

static void test_refuses_malformed(void **state)
{
    const char *bad[] = {"{",          "{\"a\":1} x", "{'a':1}",    "{\"a\":1,}",
                         "[1,]",       "{a:1}",       "/* c */ {}", "{\"a\":NaN}",
                         "[Infinity]", "[01]",        "{\"a\" 1}",  "tru"};
    for (size_t i = 0; i < ELEMENTSOF(bad); i++)
        refused(bad[i], strlen(bad[i]), "malformed_json");
    refused("", 0, "malformed_json");
}

static void test_refuses_deep_nesting(void **state)
{
    size_t depth = 10000;
    char *s = malloc(depth * 2 + 1);
    memset(s, '[', depth);
    memset(s + depth, ']', depth);
    s[depth * 2] = 0;
    refused(s, depth * 2, "malformed_json");
    free(s);

    /* At the limit it is fine; one more level is not. */
    char ok[2 * CM_JSON_MAX_DEPTH + 1], over[2 * CM_JSON_MAX_DEPTH + 3];
    memset(ok, '[', CM_JSON_MAX_DEPTH);
    memset(ok + CM_JSON_MAX_DEPTH, ']', CM_JSON_MAX_DEPTH);
    assert_int_equal(parse(ok, 2 * CM_JSON_MAX_DEPTH, NULL), 0);
    memset(over, '[', CM_JSON_MAX_DEPTH + 1);
    memset(over + CM_JSON_MAX_DEPTH + 1, ']', CM_JSON_MAX_DEPTH + 1);
    refused(over, 2 * CM_JSON_MAX_DEPTH + 2, "malformed_json");
}

static void test_refuses_invalid_utf8(void **state)
{
    refused("{\"a\":\"\xff\"}", 8, "malformed_json");
    refused("{\"a\":\"\xc0\xaf\"}", 9, "malformed_json");      /* overlong '/' */
    refused("{\"a\":\"\xed\xa0\x80\"}", 10, "malformed_json"); /* encoded surrogate */
    refused("{\"a\":\"\xe4\xb8\"}", 9, "malformed_json");      /* truncated */
}

static void test_refuses_nul(void **state)
{
    CmError err = {0};
    const char esc[] = "{\"x\":[\"ok\", {\"name\":\"a\\u0000b\"}]}";
    assert_true(parse(esc, strlen(esc), &err) < 0);
    assert_string_equal(err.code, "nul_byte");
    assert_string_equal(err.field, "/x/1/name");
    refused("{\"a\":\"b\0c\"}", 11, "malformed_json");
    refused("{}\0", 3, "malformed_json");
}

/* Found by tests/fuzz/fuzz-json against its reference reader: json-c cuts a member name at an
 * escaped NUL and merges names it decodes alike, so one member silently replaced another. */
static void test_refuses_names_json_c_would_merge(void **state)
{
    CmError err = {0};
    const char nul[] = "{\"role\":\"department\",\"role\\u0000x\":\"admin\"}";
    assert_true(parse(nul, strlen(nul), &err) < 0);
    assert_string_equal(err.code, "nul_byte");
    refused_str("{\"a\\u0000\":1}", "nul_byte");
    /* an escape and the raw character, or a surrogate pair and the raw emoji: one name */
    refused_str("{\"\\u00e9\":1,\"\xc3\xa9\":2}", "malformed_json");
    refused_str("{\"\\ud83d\\ude00\":1,\"\xf0\x9f\x98\x80\":2}", "malformed_json");
    refused_str("{\"a\\nb\":1,\"a\\u000ab\":2}", "malformed_json");
    refused_str("{\"x\":1,\"y\":2,\"\\u0078\":3}", "malformed_json");
    /* and names that differ stay apart: "\n" is not "n", "\/" is "/" */
    const char ok[] = "{\"anb\":1,\"a\\nb\":2,\"\\/\":3,\"\\\\\":4}";
    assert_int_equal(parse(ok, strlen(ok), NULL), 0);
    refused_str("{\"/\":1,\"\\/\":2}", "malformed_json");
}

static void test_utf8_validator(void **state)
{
    assert_true(cm_utf8_valid("abc 民政局 €", strlen("abc 民政局 €")));
    assert_true(cm_utf8_valid("\xf0\x9f\x98\x80", 4));
    assert_false(cm_utf8_valid("\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
    assert_false(cm_utf8_valid("\xe0\x80\xaf", 3));     /* overlong */
    assert_false(cm_utf8_valid("a\0b", 3));
    assert_false(cm_utf8_valid("\xe4\xb8", 2));
}

/* cm_json_get_int(): an integer, or a whole double as the int64 it is, across the whole
 * int64 range (9.21e18 was read as the default); anything else is the default. */
static void test_get_int(void **state)
{
    static const struct {
        const char *doc;
        int64_t want;
    } cases[] = {
        {"{\"n\":42}", 42},
        {"{\"n\":3.0}", 3},
        {"{\"n\":-7e2}", -700},
        {"{\"n\":9.21e18}", INT64_C(9210000000000000000)},
        {"{\"n\":-9.223372036854775808e18}", INT64_MIN},
        {"{\"n\":9.223372036854775808e18}", -1}, /* 2^63: out of range */
        {"{\"n\":2.5}", -1},
        {"{\"n\":\"4\"}", -1},
        {"{}", -1},
    };
    for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
        json_object *o = NULL;
        assert_int_equal(cm_json_parse(cases[i].doc, strlen(cases[i].doc), &o, NULL), 0);
        int64_t got = cm_json_get_int(o, "n", -1);
        if (got != cases[i].want)
            fail_msg("%s: got %lld, want %lld", cases[i].doc, (long long)got,
                     (long long)cases[i].want);
        json_object_put(o);
    }
}

/* The writer: no NaN or Infinity ever leaves as text; the refusal names the member. */
static void test_writer_refuses_non_finite(void **state)
{
    const double bad[] = {INFINITY, -INFINITY, NAN};
    for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
        json_object *o = json_object_new_object(), *arr = json_object_new_array();
        const char *text = NULL;
        size_t len = 0;
        CmError err = {0};

        json_object_array_add(arr, json_object_new_double(1.5));
        json_object_array_add(arr, json_object_new_int64(INT64_MAX));
        json_object_array_add(arr, json_object_new_double(bad[i]));
        json_object_object_add(o, "ok", json_object_new_double(0.25));
        json_object_object_add(o, "a/b~c", arr);
        assert_int_equal(cm_json_write(o, &text, &len, &err), -ERANGE);
        assert_null(text);
        assert_string_equal(err.code, "non_finite_number");
        assert_string_equal(err.field, "/a~1b~0c/2");
        assert_null(cm_json_to_string(o, NULL));
        /* once the number is finite again, the same tree is written */
        json_object_array_put_idx(arr, 2, json_object_new_double(-0.5));
        assert_int_equal(cm_json_write(o, &text, &len, &err), 0);
        assert_string_equal(text, "{\"ok\":0.25,\"a/b~c\":[1.5,9223372036854775807,-0.5]}");
        assert_int_equal(len, strlen(text));
        assert_non_null(cm_json_to_string(o, NULL));
        json_object_put(o);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepts_plain_documents),
        cmocka_unit_test(test_refuses_malformed),
        cmocka_unit_test(test_refuses_deep_nesting),
        cmocka_unit_test(test_refuses_invalid_utf8),
        cmocka_unit_test(test_refuses_nul),
        cmocka_unit_test(test_refuses_names_json_c_would_merge),
        cmocka_unit_test(test_utf8_validator),
        cmocka_unit_test(test_get_int),
        cmocka_unit_test(test_writer_refuses_non_finite),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
