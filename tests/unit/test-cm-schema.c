/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cm-json.h"
#include "cm-schema.h"

#ifndef JSON_SCHEMA_TEST_SUITE_DIR
#define JSON_SCHEMA_TEST_SUITE_DIR "/usr/share/json-schema-test-suite"
#endif

#define SUITE_TESTS_DIR JSON_SCHEMA_TEST_SUITE_DIR "/tests/draft7"
#define SUITE_REMOTES_DIR JSON_SCHEMA_TEST_SUITE_DIR "/remotes"
/* The suite's refRemote.json expects its remotes folder served at this URL. */
#define SUITE_REMOTES_URL "http://localhost:1234"
#define SUITE_MAX_FILE_SIZE (16u * 1024u * 1024u)

/* json-c's own parser: test values include top-level scalars such as 1.0 or null. */
static json_object *parse(const char *text)
{
    enum json_tokener_error jerr = json_tokener_success;
    json_object *o = json_tokener_parse_verbose(text, &jerr);

    if (jerr != json_tokener_success)
        fail_msg("test JSON does not parse: %s: %s", json_tokener_error_desc(jerr), text);
    return o;
}

static CmSchema *compile_text(const char *text)
{
    _cleanup_json_ json_object *doc = parse(text);
    CmSchema *s = NULL;
    CmError err = {0};

    if (cm_schema_compile(doc, &s, &err) < 0)
        fail_msg("schema refused: %s (at \"%s\"): %s", err.message, err.field, text);
    return s;
}

/* Compiling @text must fail with the keyword at @field and @message_part in the message. */
static void expect_refused(const char *text, const char *field, const char *message_part)
{
    _cleanup_json_ json_object *doc = parse(text);
    CmSchema *s = NULL;
    CmError err = {0};
    int r;

    r = cm_schema_compile(doc, &s, &err);
    if (r >= 0) {
        cm_schema_free(s);
        fail_msg("schema accepted but should not be: %s", text);
    }
    assert_int_equal(r, -EINVAL);
    assert_null(s);
    assert_int_equal(err.kind, CM_ERROR_INVALID);
    assert_string_equal(err.code, "invalid_schema");
    assert_string_equal(err.field, field);
    if (!strstr(err.message, message_part))
        fail_msg("message \"%s\" lacks \"%s\"", err.message, message_part);
}

static void expect_valid(const CmSchema *s, const char *instance)
{
    _cleanup_json_ json_object *o = parse(instance);
    CmError err = {0};

    if (cm_schema_validate(s, o, &err) != 0)
        fail_msg("%s: refused: %s: %s", instance, err.field, err.message);
    assert_int_equal(err.kind, CM_ERROR_NONE);
}

static void expect_invalid(const CmSchema *s, const char *instance, const char *field,
                           const char *code, const char *message)
{
    _cleanup_json_ json_object *o = parse(instance);
    CmError err = {0};

    assert_int_equal(cm_schema_validate(s, o, &err), -EINVAL);
    assert_int_equal(err.kind, CM_ERROR_UNPROCESSABLE);
    assert_string_equal(err.field, field);
    assert_string_equal(err.code, code);
    assert_string_equal(err.message, message);
}

/* ---- the official JSON-Schema-Test-Suite ---- */

static int add_remote_file(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    static const char prefix[] = SUITE_REMOTES_DIR;
    _cleanup_json_ json_object *doc = NULL;
    _cleanup_free_ char *uri = NULL;
    CmError err = {0};
    size_t len = strlen(path);

    if (type != FTW_F || len < 5 || strcmp(path + len - 5, ".json") != 0)
        return 0;
    if (cm_json_load_file(path, SUITE_MAX_FILE_SIZE, &doc, &err) < 0) {
        print_error("%s\n", err.message);
        return -1;
    }
    /* path is below the remotes folder: the rest of it is the path in the URL */
    if (asprintf(&uri, "%s%s", SUITE_REMOTES_URL, path + strlen(prefix)) < 0)
        return -1;
    if (cm_schema_add_remote(uri, doc, &err) < 0) {
        print_error("%s: %s\n", uri, err.message);
        return -1;
    }
    return 0;
}

static int setup_remotes(void **state)
{
    return nftw(SUITE_REMOTES_DIR, add_remote_file, 8, FTW_PHYS) == 0 ? 0 : -1;
}

static int teardown_remotes(void **state)
{
    cm_schema_clear_remotes();
    return 0;
}

/* Runs every case and test of draft7/<keyword>.json; any mismatch fails the keyword. */
static void test_suite_file(void **state)
{
    const char *keyword = *state;
    _cleanup_json_ json_object *cases = NULL;
    _cleanup_free_ char *path = NULL;
    CmError err = {0};
    unsigned n_cases = 0, n_tests = 0, n_passed = 0;

    assert_true(asprintf(&path, "%s/%s.json", SUITE_TESTS_DIR, keyword) > 0);
    if (cm_json_load_file(path, SUITE_MAX_FILE_SIZE, &cases, &err) < 0)
        fail_msg("%s", err.message);
    assert_true(json_object_is_type(cases, json_type_array));

    for (size_t i = 0; i < json_object_array_length(cases); i++) {
        json_object *c = json_object_array_get_idx(cases, i);
        json_object *tests = cm_json_get(c, "tests");
        const char *cdesc = cm_json_get_str(c, "description", "?");
        _cleanup_(cm_schema_freep) CmSchema *s = NULL;
        size_t n = json_object_array_length(tests);

        assert_true(json_object_is_type(tests, json_type_array));
        n_cases++;
        n_tests += n;
        cm_error_clear(&err);
        if (cm_schema_compile(cm_json_get(c, "schema"), &s, &err) < 0) {
            print_error("FAIL %s: \"%s\": schema refused: %s (at \"%s\")\n", keyword, cdesc,
                        err.message, err.field);
            continue;
        }
        for (size_t j = 0; j < n; j++) {
            json_object *t = json_object_array_get_idx(tests, j);
            bool expect = cm_json_get_bool(t, "valid", false);
            bool ok;
            int r;

            cm_error_clear(&err);
            r = cm_schema_validate(s, cm_json_get(t, "data"), &err);
            /* an invalid result must come with a complete error, a valid one with none */
            if (r == 0)
                ok = expect && err.kind == CM_ERROR_NONE;
            else
                ok = !expect && r == -EINVAL && err.kind == CM_ERROR_UNPROCESSABLE && err.code[0] &&
                     err.message[0];
            if (ok)
                n_passed++;
            else
                print_error("FAIL %s: \"%s\" / \"%s\": expected %s, got %s (%s: %s)\n", keyword,
                            cdesc, cm_json_get_str(t, "description", "?"),
                            expect ? "valid" : "invalid", r == 0 ? "valid" : "invalid", err.field,
                            err.message);
        }
    }
    print_message("draft7/%s.json: %u cases, %u tests, %u passed\n", keyword, n_cases, n_tests,
                  n_passed);
    assert_true(n_tests > 0);
    assert_int_equal(n_passed, n_tests);
}

/* ---- strictness at compile time ---- */

static void test_unsupported_keywords(void **state)
{
    expect_refused("{\"dependencies\": {\"a\": [\"b\"]}}", "/dependencies",
                   "unsupported keyword \"dependencies\"");
    expect_refused("{\"type\": \"string\", \"contentMediaType\": \"text/plain\"}",
                   "/contentMediaType", "unsupported keyword");
    expect_refused("{\"unevaluatedProperties\": false}", "/unevaluatedProperties",
                   "unsupported keyword");
    expect_refused("{\"$defs\": {\"a\": {}}}", "/$defs", "unsupported keyword");
    expect_refused("{\"properties\": {\"a\": {\"type\": \"string\", \"minLenght\": 1}}}",
                   "/properties/a/minLenght", "unsupported keyword \"minLenght\"");
    expect_refused("{\"items\": [{\"readOnly\": true}]}", "/items/0/readOnly",
                   "unsupported keyword");
    expect_refused("{\"definitions\": {\"x/y\": {\"if\": true, \"then\": {\"nope\": 1}}}}",
                   "/definitions/x~1y/then/nope", "unsupported keyword");
    /* a member nothing refers to is a typo, even when it looks like a schema */
    expect_refused("{\"defs\": {\"a\": {\"type\": \"integer\"}}}", "/defs", "unsupported");
}

/* Annotations are accepted and validate nothing; "format" included. */
static void test_annotations(void **state)
{
    _cleanup_(cm_schema_freep) CmSchema *s = compile_text(
        "{\"$schema\": \"http://json-schema.org/draft-07/schema#\", "
        "\"$id\": \"https://cloudbroker.example/schemas/contact.json\", \"title\": \"contact\", "
        "\"description\": \"who to call\", \"$comment\": \"format is not checked\", "
        "\"examples\": [\"ops@example.com\"], \"default\": \"ops@example.com\", "
        "\"type\": \"string\", \"format\": \"email\"}");

    expect_valid(s, "\"ops@example.com\"");
    expect_valid(s, "\"not an e-mail address\"");
    expect_invalid(s, "42", "", "wrong_type", "must be a string");
}

static void test_bad_keyword_values(void **state)
{
    expect_refused("{\"minLength\": -1}", "/minLength", "non-negative integer");
    expect_refused("{\"maxItems\": 1.5}", "/maxItems", "non-negative integer");
    expect_refused("{\"type\": \"strnig\"}", "/type", "unknown type \"strnig\"");
    expect_refused("{\"type\": []}", "/type", "non-empty array");
    expect_refused("{\"type\": [\"string\", \"string\"]}", "/type", "twice");
    expect_refused("{\"required\": \"a\"}", "/required", "array of strings");
    expect_refused("{\"required\": [\"a\", \"a\"]}", "/required", "twice");
    expect_refused("{\"enum\": []}", "/enum", "non-empty array");
    expect_refused("{\"multipleOf\": 0}", "/multipleOf", "greater than 0");
    expect_refused("{\"minimum\": \"1\"}", "/minimum", "must be a number");
    expect_refused("{\"uniqueItems\": 1}", "/uniqueItems", "boolean");
    expect_refused("{\"properties\": {\"a\": 1}}", "/properties/a", "object or a boolean");
    expect_refused("{\"allOf\": []}", "/allOf", "non-empty array");
    expect_refused("{\"title\": 1}", "/title", "string");
    expect_refused("{\"examples\": {}}", "/examples", "array");
    expect_refused("{\"pattern\": \"(\"}", "/pattern", "regex");
    expect_refused("{\"pattern\": \"a(?=b)\"}", "/pattern", "lookarounds");
    expect_refused("{\"pattern\": \"\\\\bword\"}", "/pattern", "unsupported escape");
    expect_refused("{\"patternProperties\": {\"[\": {}}}", "/patternProperties/[", "regex");
    expect_refused("{\"$schema\": \"https://json-schema.org/draft/2020-12/schema\"}", "/$schema",
                   "draft-07");
    expect_refused("{\"$ref\": 1}", "/$ref", "string");
}

static void test_ref_compile(void **state)
{
    _cleanup_(cm_schema_freep) CmSchema *s = NULL;

    expect_refused("{\"properties\": {\"a\": {\"$ref\": \"#/definitions/nope\"}}}",
                   "/properties/a/$ref", "points to nothing");
    expect_refused("{\"$ref\": \"other.json\"}", "/$ref", "cannot resolve $ref \"other.json\"");
    expect_refused("{\"$ref\": \"http://example.com/nowhere.json#/x\"}", "/$ref", "cannot resolve");
    expect_refused("{\"$ref\": \"#\"}", "/$ref", "refers to itself");
    expect_refused("{\"definitions\": {\"a\": {\"$ref\": \"#/definitions/b\"}, "
                   "\"b\": {\"$ref\": \"#/definitions/a\"}}, \"$ref\": \"#/definitions/a\"}",
                   "/definitions/a/$ref", "refers to itself");
    /* the target of a $ref is compiled as strictly as the rest */
    expect_refused("{\"stash\": {\"a\": {\"minLenght\": 1}}, \"$ref\": \"#/stash/a\"}",
                   "/stash/a/minLenght", "unsupported keyword");

    /* a member that a $ref points into is a container of schemas, not an unknown keyword */
    s = compile_text("{\"stash\": {\"a\": {\"type\": \"integer\"}}, "
                     "\"properties\": {\"n\": {\"$ref\": \"#/stash/a\"}}}");
    expect_valid(s, "{\"n\": 1}");
    expect_invalid(s, "{\"n\": \"1\"}", "/n", "wrong_type", "must be an integer");
    s = cm_schema_free(s);

    /* plain-name fragments declared by "$id" */
    s = compile_text("{\"definitions\": {\"id\": {\"$id\": \"#uuid\", \"type\": \"string\", "
                     "\"pattern\": \"^[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}$\"}}, "
                     "\"items\": {\"$ref\": \"#uuid\"}}");
    expect_valid(s, "[\"0f8fad5b-d9cb-469f-a165-70867728950e\"]");
    expect_invalid(s, "[\"0f8fad5b-d9cb-469f-a165-70867728950e\", \"x\"]", "/1", "schema_violation",
                   "must match the pattern ^[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}$");
}

/* A recursion that reads nothing (here through anyOf) ends with an error, not a crash. */
static void test_recursion_limit(void **state)
{
    _cleanup_(cm_schema_freep) CmSchema *s =
        compile_text("{\"definitions\": "
                     "{\"loop\": {\"anyOf\": [{\"$ref\": \"#/definitions/loop\"}]}}, "
                     "\"properties\": {\"a\": {\"$ref\": \"#/definitions/loop\"}}}");
    _cleanup_json_ json_object *o = parse("{\"a\": 1}");
    CmError err = {0};

    assert_int_equal(cm_schema_validate(s, o, &err), -ELOOP);
    assert_int_equal(err.kind, CM_ERROR_INTERNAL);
    assert_string_equal(err.code, "schema_recursion");
    assert_string_equal(err.field, "/a");
    /* not reached: nothing to recurse into */
    expect_valid(s, "{\"b\": 1}");
}

/* ---- errors as the API reports them ---- */

static const char request_schema[] =
    "{"
    "  \"$schema\": \"http://json-schema.org/draft-07/schema#\","
    "  \"title\": \"request\","
    "  \"type\": \"object\","
    "  \"additionalProperties\": false,"
    "  \"required\": [\"kind\", \"justification\", \"resources\"],"
    "  \"properties\": {"
    "    \"kind\": {\"enum\": [\"new\", \"change\", \"termination\"]},"
    "    \"justification\": {\"type\": \"string\", \"minLength\": 1, \"maxLength\": 4096},"
    "    \"tags\": {\"type\": \"array\", \"items\": {\"type\": \"string\"}, "
    "               \"uniqueItems\": true, \"maxItems\": 100},"
    "    \"note\": {\"type\": [\"string\", \"null\"], \"maxLength\": 3},"
    "    \"owner\": {\"anyOf\": [{\"type\": \"null\"}, "
    "                          {\"type\": \"string\", \"pattern\": \"^[a-z][a-z0-9_-]{0,31}$\"}]},"
    "    \"resources\": {"
    "      \"type\": \"object\","
    "      \"additionalProperties\": false,"
    "      \"properties\": {"
    "        \"instances\": {"
    "          \"type\": \"array\", \"minItems\": 1, \"maxItems\": 16,"
    "          \"items\": {"
    "            \"type\": \"object\","
    "            \"required\": [\"name\", \"vcpus\"],"
    "            \"additionalProperties\": false,"
    "            \"properties\": {"
    "              \"name\": {\"type\": \"string\", \"pattern\": \"^.{1,8}$\"},"
    "              \"vcpus\": {\"type\": \"integer\", \"minimum\": 1},"
    "              \"memory_mib\": {\"type\": \"integer\", \"minimum\": 512, "
    "                              \"maximum\": 262144, \"multipleOf\": 256}"
    "            }"
    "          }"
    "        }"
    "      }"
    "    }"
    "  }"
    "}";

static void test_api_errors(void **state)
{
    _cleanup_(cm_schema_freep) CmSchema *s = compile_text(request_schema);
    _cleanup_free_ char *long_text = NULL, *doc = NULL;
    const char *e_acute = "\xc3\xa9"; /* two bytes, one character */
    const char *prefix = "{\"kind\": \"new\", \"resources\": {}, \"justification\": \"";

    expect_valid(s, "{\"kind\": \"change\", \"justification\": \"more RAM\", "
                    "\"resources\": {\"instances\": [{\"name\": \"web-1\", \"vcpus\": 2, "
                    "\"memory_mib\": 4096}]}, \"tags\": [\"a\", \"b\"], \"note\": null, "
                    "\"owner\": \"ops\"}");
    expect_invalid(s,
                   "{\"kind\": \"new\", \"justification\": \"x\", \"resources\": {\"instances\": "
                   "[{\"name\": \"a\", \"vcpus\": 2}, {\"name\": \"b\", \"vcpus\": \"4\"}]}}",
                   "/resources/instances/1/vcpus", "wrong_type", "must be an integer >= 1");
    expect_invalid(s,
                   "{\"kind\": \"new\", \"justification\": \"x\", \"resources\": {\"instances\": "
                   "[{\"name\": \"a\", \"vcpus\": 0}]}}",
                   "/resources/instances/0/vcpus", "schema_violation", "must be an integer >= 1");
    expect_invalid(s,
                   "{\"kind\": \"new\", \"justification\": \"x\", \"resources\": {\"instances\": "
                   "[{\"name\": \"a\", \"vcpus\": 1, \"memory_mib\": 1000}]}}",
                   "/resources/instances/0/memory_mib", "schema_violation",
                   "must be a multiple of 256");
    expect_invalid(s,
                   "{\"kind\": \"new\", \"justification\": \"x\", \"resources\": {\"instances\": "
                   "[{\"name\": \"a\", \"vcpus\": 1, \"memory_mib\": 256}]}}",
                   "/resources/instances/0/memory_mib", "schema_violation",
                   "must be an integer >= 512 and <= 262144 and a multiple of 256");
    expect_invalid(s,
                   "{\"kind\": \"new\", \"justification\": \"x\", \"resources\": {\"instances\": "
                   "[{\"vcpus\": 1}]}}",
                   "/resources/instances/0/name", "missing_field", "missing required field");
    expect_invalid(s, "{\"kind\": \"new\", \"resources\": {}}", "/justification", "missing_field",
                   "missing required field");
    expect_invalid(s,
                   "{\"kind\": \"new\", \"justification\": \"x\", \"resources\": {}, "
                   "\"priority\": 1}",
                   "/priority", "unknown_field", "unknown field (additionalProperties is false)");
    expect_invalid(s,
                   "{\"kind\": \"new\", \"justification\": \"x\", \"resources\": {}, "
                   "\"a/b~c\": 1}",
                   "/a~1b~0c", "unknown_field", "unknown field (additionalProperties is false)");
    expect_invalid(s, "{\"kind\": \"renew\", \"justification\": \"x\", \"resources\": {}}", "/kind",
                   "schema_violation", "must be one of: new, change, termination");
    expect_invalid(s, "{\"kind\": 3, \"justification\": \"x\", \"resources\": {}}", "/kind",
                   "schema_violation", "must be one of: new, change, termination");
    expect_invalid(s, "[]", "", "wrong_type", "must be an object");
    expect_invalid(s, "{\"kind\": \"new\", \"justification\": \"\", \"resources\": {}}",
                   "/justification", "schema_violation", "must be at least 1 character");
    expect_invalid(s,
                   "{\"kind\": \"new\", \"justification\": \"x\", \"resources\": {}, "
                   "\"tags\": [\"a\", \"b\", \"a\"]}",
                   "/tags/2", "schema_violation", "must not repeat item 0 (items must be unique)");
    expect_invalid(s,
                   "{\"kind\": \"new\", \"justification\": \"x\", \"resources\": {}, "
                   "\"note\": 1}",
                   "/note", "wrong_type", "must be a string or null");
    expect_invalid(s,
                   "{\"kind\": \"new\", \"justification\": \"x\", \"resources\": {}, "
                   "\"note\": \"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\"}",
                   "/note", "schema_violation", "must be at most 3 characters");
    /* anyOf: the only alternative that takes a string explains what is wrong */
    expect_invalid(s,
                   "{\"kind\": \"new\", \"justification\": \"x\", \"resources\": {}, "
                   "\"owner\": \"Ops\"}",
                   "/owner", "schema_violation", "must match the pattern ^[a-z][a-z0-9_-]{0,31}$");
    expect_invalid(s,
                   "{\"kind\": \"new\", \"justification\": \"x\", \"resources\": {}, "
                   "\"owner\": 1}",
                   "/owner", "schema_violation",
                   "must match at least one of the allowed schemas (anyOf)");
    /* patterns count characters too: 8 of them in 16 bytes */
    expect_valid(s, "{\"kind\": \"new\", \"justification\": \"x\", \"resources\": {\"instances\": "
                    "[{\"name\": \"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                    "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\", "
                    "\"vcpus\": 1}]}}");

    /* maxLength counts characters, not bytes: 4096 of them in 8192 bytes pass, 4097 do not */
    long_text = calloc(4097, 2 + 1);
    assert_non_null(long_text);
    for (int i = 0; i < 4096; i++)
        memcpy(long_text + 2 * i, e_acute, 2);
    assert_true(asprintf(&doc, "%s%s\"}", prefix, long_text) > 0);
    expect_valid(s, doc);
    free(doc);
    memcpy(long_text + 2 * 4096, e_acute, 2);
    assert_true(asprintf(&doc, "%s%s\"}", prefix, long_text) > 0);
    expect_invalid(s, doc, "/justification", "schema_violation", "must be at most 4096 characters");
    free(doc);
    /* a four-byte character counts once as well */
    memcpy(long_text + 2 * 4095, "\xf0\x9f\x92\xa9", 4);
    long_text[2 * 4095 + 4] = 0;
    assert_true(asprintf(&doc, "%s%s\"}", prefix, long_text) > 0);
    expect_valid(s, doc);
}

/* The first violation in document order is the one reported. */
static void test_error_order(void **state)
{
    _cleanup_(cm_schema_freep) CmSchema *s = compile_text(
        "{\"type\": \"object\", \"required\": [\"z\"], \"additionalProperties\": false, "
        "\"properties\": {\"a\": {\"type\": \"integer\"}, \"b\": {\"type\": \"integer\"}, "
        "\"z\": {}, \"list\": {\"items\": {\"maximum\": 3}}}}");

    expect_invalid(s, "{\"b\": \"x\", \"a\": \"y\"}", "/b", "wrong_type", "must be an integer");
    expect_invalid(s, "{\"a\": \"y\", \"b\": \"x\"}", "/a", "wrong_type", "must be an integer");
    expect_invalid(s, "{\"a\": 1, \"c\": 1}", "/c", "unknown_field",
                   "unknown field (additionalProperties is false)");
    expect_invalid(s, "{\"a\": 1}", "/z", "missing_field", "missing required field");
    expect_invalid(s, "{\"z\": 1, \"list\": [1, 5, 7]}", "/list/1", "schema_violation",
                   "must be a number <= 3");
}

static void test_numbers(void **state)
{
    _cleanup_(cm_schema_freep) CmSchema *s = NULL;

    s = compile_text("{\"type\": \"integer\"}");
    expect_valid(s, "1.0");
    expect_valid(s, "-0.0");
    expect_valid(s, "1e300");
    expect_valid(s, "18446744073709551615");
    expect_valid(s, "-9223372036854775808");
    expect_invalid(s, "1.5", "", "wrong_type", "must be an integer");
    s = cm_schema_free(s);

    /* exact comparisons across int64, uint64 and double */
    s = compile_text("{\"maximum\": 9007199254740993}");
    expect_valid(s, "9007199254740993");
    expect_valid(s, "9007199254740992.0");
    expect_invalid(s, "9007199254740994", "", "schema_violation",
                   "must be a number <= 9007199254740993");
    s = cm_schema_free(s);
    s = compile_text("{\"exclusiveMinimum\": 9223372036854775807}");
    expect_valid(s, "9223372036854775808");
    expect_valid(s, "1e19");
    expect_invalid(s, "9223372036854775807", "", "schema_violation",
                   "must be a number > 9223372036854775807");
    s = cm_schema_free(s);
    s = compile_text("{\"minimum\": 0.1}");
    expect_invalid(s, "0", "", "schema_violation", "must be a number >= 0.1");
    expect_valid(s, "1e308");
    s = cm_schema_free(s);

    /* multipleOf: exact for integers however large, x/m integral otherwise */
    s = compile_text("{\"multipleOf\": 3}");
    expect_valid(s, "9223372036854775806");
    expect_invalid(s, "9223372036854775807", "", "schema_violation", "must be a multiple of 3");
    expect_valid(s, "18446744073709551615");
    expect_valid(s, "-9223372036854775806");
    expect_invalid(s, "-9223372036854775808", "", "schema_violation", "must be a multiple of 3");
    expect_valid(s, "6.0");
    s = cm_schema_free(s);
    /* decimal, not binary: 19.99 / 0.01 is 1998.9999999999998 in floating point */
    s = compile_text("{\"multipleOf\": 0.01}");
    expect_valid(s, "19.99");
    expect_valid(s, "-0.07");
    expect_valid(s, "1e300");
    expect_invalid(s, "19.999", "", "schema_violation", "must be a multiple of 0.01");
    expect_invalid(s, "1e-300", "", "schema_violation", "must be a multiple of 0.01");
    s = cm_schema_free(s);
    s = compile_text("{\"multipleOf\": 0.1}");
    expect_valid(s, "0.3");
    expect_valid(s, "12345678901234567890");
    s = cm_schema_free(s);
    s = compile_text("{\"multipleOf\": 1.5e-5}");
    expect_valid(s, "4.5e-5");
    expect_valid(s, "3");
    expect_invalid(s, "1e-5", "", "schema_violation", "must be a multiple of 1.5e-05");
    s = cm_schema_free(s);
    s = compile_text("{\"type\": \"integer\", \"multipleOf\": 0.123456789}");
    expect_invalid(s, "1e308", "", "schema_violation", "must be a multiple of 0.123456789");
    s = cm_schema_free(s);

    /* enum and const compare numbers by value */
    s = compile_text("{\"enum\": [1, \"1\", [2.0], {\"a\": null}]}");
    expect_valid(s, "1.0");
    expect_valid(s, "[2]");
    expect_valid(s, "{\"a\": null}");
    expect_invalid(s, "true", "", "schema_violation", "must be one of: 1, 1, [2], {\"a\":null}");
}

static void test_regex(void **state)
{
    _cleanup_(cm_schema_freep) CmSchema *s = NULL;

    s = compile_text("{\"pattern\": \"^\\\\d{3}-[\\\\w.]+\\\\.(?:com|org)$\"}");
    expect_valid(s, "\"123-my_site.example.com\"");
    expect_invalid(s, "\"12-x.com\"", "", "schema_violation",
                   "must match the pattern ^\\d{3}-[\\w.]+\\.(?:com|org)$");
    s = cm_schema_free(s);
    /* characters that are special inside POSIX brackets, as literals */
    s = compile_text("{\"pattern\": \"^[\\\\]\\\\[^-]+$\"}");
    expect_valid(s, "\"]-[^\"");
    expect_invalid(s, "\"a\"", "", "schema_violation", "must match the pattern ^[\\]\\[^-]+$");
    s = cm_schema_free(s);
    /* "." is one character and no line terminator; lazy quantifiers are accepted */
    s = compile_text("{\"pattern\": \"^.+?$\", \"maxLength\": 2}");
    expect_valid(s, "\"\xe2\x82\xac\xe2\x82\xac\"");
    expect_invalid(s, "\"a\\nb\"", "", "schema_violation", "must be at most 2 characters");
    expect_invalid(s, "\"\\n\"", "", "schema_violation", "must match the pattern ^.+?$");
    s = cm_schema_free(s);
    /* ASCII-only patterns are matched by byte: no multibyte character can slip through */
    s = compile_text("{\"pattern\": \"^[a-c]{1,3}x?$\"}");
    expect_valid(s, "\"abc\"");
    expect_invalid(s, "\"a\xc3\xa9\"", "", "schema_violation",
                   "must match the pattern ^[a-c]{1,3}x?$");
    s = cm_schema_free(s);
    s = compile_text("{\"pattern\": \"^[^x]{2}$\"}");
    expect_valid(s, "\"\xc3\xa9\xf0\x9f\x92\xa9\"");
    expect_invalid(s, "\"abc\"", "", "schema_violation", "must match the pattern ^[^x]{2}$");
    s = cm_schema_free(s);
    s = compile_text("{\"propertyNames\": {\"pattern\": \"^[a-z_]+$\"}}");
    expect_valid(s, "{\"ok_name\": 1}");
    expect_invalid(s, "{\"ok\": 1, \"Bad\": 2}", "/Bad", "schema_violation",
                   "invalid field name: must match the pattern ^[a-z_]+$");
}

static void test_load_file(void **state)
{
    _cleanup_(cm_schema_freep) CmSchema *s = NULL;
    char path[] = "/tmp/test-cm-schema-XXXXXX";
    const char text[] = "{\"type\": \"object\", \"properties\": {\"a\": {\"maxLength\": 2}}, "
                        "\"bogus\": 1}";
    CmError err = {0};
    int fd;

    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, sizeof(text) - 1), (ssize_t)(sizeof(text) - 1));
    close(fd);
    assert_int_equal(cm_schema_load_file(path, &s, &err), -EINVAL);
    assert_null(s);
    assert_string_equal(err.field, "/bogus");
    assert_non_null(strstr(err.message, path));
    unlink(path);

    cm_error_clear(&err);
    assert_true(cm_schema_load_file("/nonexistent/schema.json", &s, &err) < 0);
    assert_int_equal(err.kind, CM_ERROR_NOT_FOUND);

    assert_int_equal(cm_schema_load_file(SUITE_REMOTES_DIR "/name.json", &s, &err), 0);
    expect_valid(s, "\"x\"");
    expect_invalid(s, "null", "", "wrong_type", "must be a string");
}

/* HTTP workers share one compiled schema. */
#define N_THREADS 8
#define N_ROUNDS 2000

static void *validate_many(void *arg)
{
    const CmSchema *s = arg;
    _cleanup_json_ json_object *good =
        parse("{\"kind\": \"new\", \"justification\": \"x\", \"owner\": \"ops\", \"resources\": "
              "{\"instances\": [{\"name\": \"\xc3\xa9t\xc3\xa9\", \"vcpus\": 2}]}}");
    _cleanup_json_ json_object *bad = parse(
        "{\"kind\": \"new\", \"justification\": \"x\", \"owner\": \"Ops\", \"resources\": {}}");
    intptr_t failures = 0;

    for (int i = 0; i < N_ROUNDS; i++) {
        CmError err = {0};
        if (cm_schema_validate(s, good, &err) != 0)
            failures++;
        if (cm_schema_validate(s, bad, &err) != -EINVAL || strcmp(err.field, "/owner") != 0)
            failures++;
    }
    return (void *)failures;
}

static void test_threads(void **state)
{
    _cleanup_(cm_schema_freep) CmSchema *s = compile_text(request_schema);
    pthread_t threads[N_THREADS];

    for (int i = 0; i < N_THREADS; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, validate_many, s), 0);
    for (int i = 0; i < N_THREADS; i++) {
        void *failures;
        assert_int_equal(pthread_join(threads[i], &failures), 0);
        assert_int_equal((intptr_t)failures, 0);
    }
}

/* The keywords cm-schema.h claims, each with its draft-07 test file run in full. */
#define SUITE_TEST(keyword)                                                                        \
    {                                                                                              \
        "draft7/" keyword ".json", test_suite_file, NULL, NULL, (void *)(keyword)                  \
    }

int main(void)
{
    const struct CMUnitTest tests[] = {
        SUITE_TEST("type"),
        SUITE_TEST("enum"),
        SUITE_TEST("const"),
        SUITE_TEST("properties"),
        SUITE_TEST("required"),
        SUITE_TEST("additionalProperties"),
        SUITE_TEST("patternProperties"),
        SUITE_TEST("propertyNames"),
        SUITE_TEST("minProperties"),
        SUITE_TEST("maxProperties"),
        SUITE_TEST("items"),
        SUITE_TEST("additionalItems"),
        SUITE_TEST("minItems"),
        SUITE_TEST("maxItems"),
        SUITE_TEST("uniqueItems"),
        SUITE_TEST("contains"),
        SUITE_TEST("minLength"),
        SUITE_TEST("maxLength"),
        SUITE_TEST("pattern"),
        SUITE_TEST("minimum"),
        SUITE_TEST("maximum"),
        SUITE_TEST("exclusiveMinimum"),
        SUITE_TEST("exclusiveMaximum"),
        SUITE_TEST("multipleOf"),
        SUITE_TEST("allOf"),
        SUITE_TEST("anyOf"),
        SUITE_TEST("oneOf"),
        SUITE_TEST("not"),
        SUITE_TEST("if-then-else"),
        SUITE_TEST("boolean_schema"),
        SUITE_TEST("default"),
        SUITE_TEST("definitions"),
        SUITE_TEST("ref"),
        SUITE_TEST("refRemote"),
        cmocka_unit_test(test_unsupported_keywords),
        cmocka_unit_test(test_annotations),
        cmocka_unit_test(test_bad_keyword_values),
        cmocka_unit_test(test_ref_compile),
        cmocka_unit_test(test_recursion_limit),
        cmocka_unit_test(test_api_errors),
        cmocka_unit_test(test_error_order),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_regex),
        cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_threads),
    };

    return cmocka_run_group_tests(tests, setup_remotes, teardown_remotes);
}
