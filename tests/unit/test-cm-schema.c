/* SPDX-License-Identifier: Apache-2.0 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "cm-json.h"
#include "cm-schema.h"

#ifndef JSON_SCHEMA_TEST_SUITE_DIR
#define JSON_SCHEMA_TEST_SUITE_DIR "/usr/share/json-schema-test-suite"
#endif

#define SUITE_TESTS_DIR JSON_SCHEMA_TEST_SUITE_DIR "/tests/draft7"
#define SUITE_MAX_FILE_SIZE (16u * 1024u * 1024u)

/*
 * The draft-07 keywords that cm-schema.h does not implement, written down here independently of
 * the validator: a schema that uses one must be refused, never half-validated.
 */
static const char *const unsupported_keywords[] = {
    "$id",
    "$ref",
    "definitions",
    "else",
    "oneOf",
    "patternProperties",
    "propertyNames",
    "additionalItems",
    "contains",
    "multipleOf",
    "dependencies",
    "format",
    "default",
    "examples",
    "contentMediaType",
    "contentEncoding",
    "readOnly",
    "writeOnly",
};

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

/* The keywords cm-schema.h claims, the same way. */
static const char *const supported_keywords[] = {
    "type",
    "enum",
    "const",
    "properties",
    "additionalProperties",
    "required",
    "minProperties",
    "maxProperties",
    "items",
    "minItems",
    "maxItems",
    "uniqueItems",
    "minLength",
    "maxLength",
    "pattern",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "allOf",
    "anyOf",
    "not",
    "if",
    "then",
    "$schema",
    "$comment",
    "title",
    "description",
};

/* Whether @err refuses a member that is not a supported keyword (or the array form of
 * "items"), as cm_schema_compile() must. */
static bool refused_as_unsupported(const CmError *err)
{
    static const char prefix[] = "unsupported keyword \"";
    const char *key = err->message + strlen(prefix), *end;

    if (strcmp(err->code, "invalid_schema") != 0)
        return false;
    if (strstr(err->message, "unsupported form of \"items\": an array") == err->message)
        return true;
    if (strncmp(err->message, prefix, strlen(prefix)) != 0 || !(end = strstr(key, "\" at /")))
        return false;
    for (size_t i = 0; i < sizeof(supported_keywords) / sizeof(supported_keywords[0]); i++)
        if (strlen(supported_keywords[i]) == (size_t)(end - key) &&
            strncmp(key, supported_keywords[i], (size_t)(end - key)) == 0)
            return false;
    return true;
}

/*
 * Runs draft7/<file>.json: every case is either refused for a keyword that is not supported,
 * or compiled and then every one of its tests passes. @state names the file and says whether
 * it is the file of a supported keyword (then some of its cases must run) or of an unsupported
 * one (then some must be refused).
 */
typedef struct {
    const char *file;
    bool supported;
} SuiteFile;

static void test_suite_file(void **state)
{
    const SuiteFile *sf = *state;
    _cleanup_json_ json_object *cases = NULL;
    _cleanup_free_ char *path = NULL;
    CmError err = {0};
    unsigned n_cases = 0, n_refused = 0, n_tests = 0, n_passed = 0, n_bad = 0;

    assert_true(asprintf(&path, "%s/%s.json", SUITE_TESTS_DIR, sf->file) > 0);
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
        cm_error_clear(&err);
        if (cm_schema_compile(cm_json_get(c, "schema"), &s, &err) < 0) {
            if (refused_as_unsupported(&err)) {
                n_refused++;
                continue;
            }
            print_error("FAIL %s: \"%s\": schema refused: %s (at \"%s\")\n", sf->file, cdesc,
                        err.message, err.field);
            n_bad++;
            continue;
        }
        n_tests += n;
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
                print_error("FAIL %s: \"%s\" / \"%s\": expected %s, got %s (%s: %s)\n", sf->file,
                            cdesc, cm_json_get_str(t, "description", "?"),
                            expect ? "valid" : "invalid", r == 0 ? "valid" : "invalid", err.field,
                            err.message);
        }
    }
    print_message("draft7/%s.json: %u cases, %u refused as unsupported; %u tests, %u passed\n",
                  sf->file, n_cases, n_refused, n_tests, n_passed);
    assert_int_equal(n_bad, 0);
    assert_int_equal(n_passed, n_tests);
    if (sf->supported)
        assert_true(n_tests > 0);
    else
        assert_true(n_refused > 0);
}

/* ---- strictness at compile time ---- */

static void test_unsupported_keywords(void **state)
{
    /* every draft-07 keyword that is not implemented, wherever it stands */
    for (size_t i = 0; i < sizeof(unsupported_keywords) / sizeof(unsupported_keywords[0]); i++) {
        _cleanup_free_ char *text = NULL, *field = NULL, *message = NULL;
        assert_true(asprintf(&text, "{\"properties\": {\"a/b\": {\"%s\": {}}}}",
                             unsupported_keywords[i]) > 0);
        assert_true(asprintf(&field, "/properties/a~1b/%s", unsupported_keywords[i]) > 0);
        assert_true(asprintf(&message, "unsupported keyword \"%s\" at %s", unsupported_keywords[i],
                             field) > 0);
        expect_refused(text, field, message);
    }
    expect_refused("{\"allOf\": [{\"type\": \"string\"}, {\"if\": true, \"then\": {\"else\": 1}}]}",
                   "/allOf/1/then/else", "unsupported keyword \"else\" at /allOf/1/then/else");
    expect_refused("{\"unevaluatedProperties\": false}", "/unevaluatedProperties",
                   "unsupported keyword");
    expect_refused("{\"$defs\": {\"a\": {}}}", "/$defs", "unsupported keyword");
    expect_refused("{\"properties\": {\"a\": {\"type\": \"string\", \"minLenght\": 1}}}",
                   "/properties/a/minLenght", "unsupported keyword \"minLenght\"");
    /* a member nothing refers to is a typo, even when it looks like a schema */
    expect_refused("{\"defs\": {\"a\": {\"type\": \"integer\"}}}", "/defs", "unsupported");
    /* "items" is one schema for every item; the array form is another keyword in disguise */
    expect_refused("{\"items\": [{\"type\": \"string\"}]}", "/items",
                   "unsupported form of \"items\"");
    expect_refused("{\"not\": {\"items\": {\"readOnly\": true}}}", "/not/items/readOnly",
                   "unsupported keyword");
}

/* The annotations our schemas use are accepted and validate nothing. */
static void test_annotations(void **state)
{
    _cleanup_(cm_schema_freep) CmSchema *s = compile_text(
        "{\"$schema\": \"http://json-schema.org/draft-07/schema#\", \"title\": \"contact\", "
        "\"description\": \"who to call\", \"$comment\": \"any text\", \"type\": \"string\"}");

    expect_valid(s, "\"ops@example.com\"");
    expect_invalid(s, "42", "", "wrong_type", "must be a string");
}

/* Every schema of the project compiles: they use only what the validator supports. */
static void test_project_schemas(void **state)
{
    DIR *d = opendir(SOURCE_DIR "/schemas");
    struct dirent *e;
    unsigned n = 0;

    assert_non_null(d);
    while ((e = readdir(d))) {
        _cleanup_free_ char *path = NULL;
        _cleanup_json_ json_object *doc = NULL;
        _cleanup_(cm_schema_freep) CmSchema *s = NULL;
        CmError err = {0};
        size_t len = strlen(e->d_name);

        if (len < 5 || strcmp(e->d_name + len - 5, ".json") != 0)
            continue;
        assert_true(asprintf(&path, "%s/schemas/%s", SOURCE_DIR, e->d_name) > 0);
        if (cm_json_load_file(path, 1 << 20, &doc, &err) < 0 ||
            cm_schema_compile(doc, &s, &err) < 0)
            fail_msg("%s: %s: %s", path, err.field, err.message);
        n++;
    }
    closedir(d);
    assert_true(n >= 30);
}

static void test_bad_keyword_values(void **state)
{
    expect_refused("{\"minLength\": -1}", "/minLength", "non-negative integer");
    expect_refused("{\"maxItems\": 1.5}", "/maxItems", "non-negative integer");
    expect_refused("{\"maxProperties\": \"2\"}", "/maxProperties", "non-negative integer");
    expect_refused("{\"type\": \"strnig\"}", "/type", "unknown type \"strnig\"");
    expect_refused("{\"type\": []}", "/type", "non-empty array");
    expect_refused("{\"type\": [\"string\", \"string\"]}", "/type", "twice");
    expect_refused("{\"required\": \"a\"}", "/required", "array of strings");
    expect_refused("{\"required\": [\"a\", \"a\"]}", "/required", "twice");
    expect_refused("{\"enum\": []}", "/enum", "non-empty array");
    expect_refused("{\"minimum\": \"1\"}", "/minimum", "must be a number");
    expect_refused("{\"exclusiveMaximum\": null}", "/exclusiveMaximum", "must be a number");
    expect_refused("{\"uniqueItems\": 1}", "/uniqueItems", "boolean");
    expect_refused("{\"properties\": {\"a\": 1}}", "/properties/a", "object or a boolean");
    expect_refused("{\"properties\": []}", "/properties", "must be an object");
    expect_refused("{\"allOf\": []}", "/allOf", "non-empty array");
    expect_refused("{\"anyOf\": [{}, 2]}", "/anyOf/1", "object or a boolean");
    expect_refused("{\"title\": 1}", "/title", "string");
    expect_refused("{\"$schema\": \"https://json-schema.org/draft/2020-12/schema\"}", "/$schema",
                   "draft-07");
    expect_refused("[]", "", "object or a boolean");
}

/* Patterns outside the supported subset are refused, with the reason. */
static void test_regex_refused(void **state)
{
    expect_refused("{\"pattern\": \"(\"}", "/pattern", "regex \"(\": missing )");
    expect_refused("{\"pattern\": \"a)\"}", "/pattern", "unbalanced )");
    expect_refused("{\"pattern\": \"a(?=b)\"}", "/pattern", "lookarounds");
    expect_refused("{\"pattern\": \"\\\\bword\"}", "/pattern", "unsupported escape");
    expect_refused("{\"pattern\": \"^\\\\d+$\"}", "/pattern", "unsupported escape");
    expect_refused("{\"pattern\": \"[\\\\w]\"}", "/pattern", "unsupported escape");
    expect_refused("{\"pattern\": \"(a)\\\\1\"}", "/pattern", "unsupported escape");
    expect_refused("{\"pattern\": \"a+?\"}", "/pattern", "lazy or repeated quantifiers");
    expect_refused("{\"pattern\": \"a**\"}", "/pattern", "lazy or repeated quantifiers");
    expect_refused("{\"pattern\": \"*a\"}", "/pattern", "nothing to repeat");
    expect_refused("{\"pattern\": \"^*\"}", "/pattern", "nothing to repeat");
    expect_refused("{\"pattern\": \"a{2,1}\"}", "/pattern", "m < n");
    expect_refused("{\"pattern\": \"a{,1}\"}", "/pattern", "quantifier");
    expect_refused("{\"pattern\": \"a{1\"}", "/pattern", "quantifier");
    expect_refused("{\"pattern\": \"a]\"}", "/pattern", "escaped");
    expect_refused("{\"pattern\": \"[]\"}", "/pattern", "empty character class");
    expect_refused("{\"pattern\": \"[a\"}", "/pattern", "unterminated character class");
    expect_refused("{\"pattern\": \"[z-a]\"}", "/pattern", "out of order");
    expect_refused("{\"pattern\": \"^[a-z]{0,600}[0-9]{0,600}$\"}", "/pattern", "too long");
    expect_refused("{\"pattern\": \"a{99999999999999999999}\"}", "/pattern", "too long");
    expect_refused("{\"properties\": {\"p\": {\"pattern\": 5}}}", "/properties/p/pattern",
                   "must be a string");
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
    "                              \"maximum\": 262144}"
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
                   "[{\"name\": \"a\", \"vcpus\": 1, \"memory_mib\": 256}]}}",
                   "/resources/instances/0/memory_mib", "schema_violation",
                   "must be an integer >= 512 and <= 262144");
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

    /* bounds on both sides, exclusive or not, across int64, uint64 and double */
    s = compile_text("{\"exclusiveMinimum\": -1.5, \"exclusiveMaximum\": 18446744073709551615}");
    expect_valid(s, "-1.4999999");
    expect_valid(s, "18446744073709551614");
    expect_invalid(s, "-1.5", "", "schema_violation",
                   "must be a number > -1.5 and < 18446744073709551615");
    expect_invalid(s, "18446744073709551615", "", "schema_violation",
                   "must be a number > -1.5 and < 18446744073709551615");
    expect_invalid(s, "1.8446744073709552e19", "", "schema_violation",
                   "must be a number > -1.5 and < 18446744073709551615");
    s = cm_schema_free(s);
    s = compile_text("{\"type\": [\"integer\", \"null\"], \"minimum\": -9223372036854775808}");
    expect_valid(s, "-9223372036854775808");
    expect_valid(s, "null");
    expect_invalid(s, "-9.3e18", "", "schema_violation",
                   "must be an integer >= -9223372036854775808");
    expect_invalid(s, "\"1\"", "", "wrong_type", "must be an integer or null");
    s = cm_schema_free(s);

    /* enum and const compare numbers by value */
    s = compile_text("{\"enum\": [1, \"1\", [2.0], {\"a\": null}]}");
    expect_valid(s, "1.0");
    expect_valid(s, "[2]");
    expect_valid(s, "{\"a\": null}");
    expect_invalid(s, "true", "", "schema_violation", "must be one of: 1, 1, [2], {\"a\":null}");
}

/* Whether @pattern finds a match in the JSON string @instance. */
static bool regex_matches(const char *pattern, const char *instance)
{
    _cleanup_free_ char *text = NULL;
    _cleanup_(cm_schema_freep) CmSchema *s = NULL;
    _cleanup_json_ json_object *o = parse(instance);
    _cleanup_json_ json_object *doc = NULL;
    CmError err = {0};

    doc = json_object_new_object();
    assert_non_null(doc);
    assert_int_equal(json_object_object_add(doc, "pattern", json_object_new_string(pattern)), 0);
    if (cm_schema_compile(doc, &s, &err) < 0)
        fail_msg("pattern %s refused: %s", pattern, err.message);
    return cm_schema_validate(s, o, NULL) == 0;
}

static void test_regex(void **state)
{
    _cleanup_(cm_schema_freep) CmSchema *s = NULL;
    _cleanup_free_ char *long_a = NULL;

    s = compile_text("{\"pattern\": \"^[0-9]{3}-[a-z_.]+\\\\.(com|org)$\"}");
    expect_valid(s, "\"123-my_site.example.com\"");
    expect_invalid(s, "\"12-x.com\"", "", "schema_violation",
                   "must match the pattern ^[0-9]{3}-[a-z_.]+\\.(com|org)$");
    s = cm_schema_free(s);
    /* characters that are special elsewhere, as literals in a class */
    s = compile_text("{\"pattern\": \"^[\\\\]\\\\[^-]+$\"}");
    expect_valid(s, "\"]-[^\"");
    expect_invalid(s, "\"a\"", "", "schema_violation", "must match the pattern ^[\\]\\[^-]+$");
    s = cm_schema_free(s);
    /* "." is one character and no line terminator */
    s = compile_text("{\"pattern\": \"^.+$\", \"maxLength\": 2}");
    expect_valid(s, "\"\xe2\x82\xac\xe2\x82\xac\"");
    expect_invalid(s, "\"a\\nb\"", "", "schema_violation", "must be at most 2 characters");
    expect_invalid(s, "\"\\n\"", "", "schema_violation", "must match the pattern ^.+$");
    expect_invalid(s, "\"\\u2028\"", "", "schema_violation", "must match the pattern ^.+$");
    s = cm_schema_free(s);
    /* classes and counts are by character, not by byte */
    s = compile_text("{\"pattern\": \"^[a-c]{1,3}x?$\"}");
    expect_valid(s, "\"abc\"");
    expect_invalid(s, "\"a\xc3\xa9\"", "", "schema_violation",
                   "must match the pattern ^[a-c]{1,3}x?$");
    s = cm_schema_free(s);
    s = compile_text("{\"pattern\": \"^[^x]{2}$\"}");
    expect_valid(s, "\"\xc3\xa9\xf0\x9f\x92\xa9\"");
    expect_invalid(s, "\"abc\"", "", "schema_violation", "must match the pattern ^[^x]{2}$");

    /* a search, not a whole-string match, unless anchored */
    assert_true(regex_matches("b+", "\"abbc\""));
    assert_false(regex_matches("b+", "\"ac\""));
    assert_true(regex_matches("c$", "\"abc\""));
    assert_false(regex_matches("^b", "\"abc\""));
    assert_true(regex_matches("^ab", "\"abc\""));
    assert_false(regex_matches("^abcd", "\"abc\""));
    assert_true(regex_matches("", "\"\""));
    /* alternatives, groups, counts */
    assert_true(regex_matches("^(ab|cd)*e$", "\"abcdabe\""));
    assert_false(regex_matches("^(ab|cd)*e$", "\"abce\""));
    assert_true(regex_matches("^(?:x|y|z)+$", "\"zyx\""));
    assert_true(regex_matches("(^|,)b(,|$)", "\"a,b\""));
    assert_false(regex_matches("(^|,)b(,|$)", "\"ab\""));
    assert_true(regex_matches("^a{2,}$", "\"aaaaa\""));
    assert_false(regex_matches("^a{2,}$", "\"a\""));
    assert_true(regex_matches("^a{2}b{0,2}$", "\"aabb\""));
    assert_false(regex_matches("^a{2}b{0,2}$", "\"aabbb\""));
    assert_true(regex_matches("^(a|)+$", "\"aa\""));
    assert_true(regex_matches("^()*$", "\"\""));
    assert_true(regex_matches("^\\.\\+\\?\\(\\)\\{\\}\\|\\/\\-\\\\$", "\".+?(){}|/-\\\\\""));
    assert_true(regex_matches("^[a\\-z]+$", "\"-az\""));
    assert_false(regex_matches("^[a\\-z]+$", "\"b\""));
    assert_true(regex_matches("^\xc3\xa9+[\xc3\xa0-\xc3\xbf]$", "\"\xc3\xa9\xc3\xa9\xc3\xbf\""));
    /* the project's own patterns */
    assert_true(regex_matches("^sha256//[A-Za-z0-9+/=]{44}(;sha256//[A-Za-z0-9+/=]{44})*$",
                              "\"sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=;"
                              "sha256//BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB=\""));
    assert_false(regex_matches("^sha256//[A-Za-z0-9+/=]{44}(;sha256//[A-Za-z0-9+/=]{44})*$",
                               "\"sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=;\""));
    assert_true(regex_matches("^https?://[A-Za-z0-9.:\\[\\]-]+(/.*)?$",
                              "\"https://[::1]:8443/v1/\xc3\xa9\""));
    assert_false(regex_matches("^https?://[A-Za-z0-9.:\\[\\]-]+(/.*)?$", "\"https://host/a\\nb\""));

    /* no pattern backtracks: nested quantifiers on a long string take linear time */
    long_a = malloc(100003);
    assert_non_null(long_a);
    memset(long_a, 'a', 100002);
    long_a[0] = '"';
    memcpy(long_a + 100000, "b\"", 3);
    assert_false(regex_matches("^(a+)+$", long_a));
    assert_false(regex_matches("^(a|a)*$", long_a));
    assert_true(regex_matches("(a*)*b", long_a));
}

/* CPU seconds @s takes to match the string of @n copies of @unit and a last "!", at best of 3. */
static double match_seconds(const CmSchema *s, const char *unit, size_t n)
{
    size_t ul = strlen(unit);
    _cleanup_free_ char *text = malloc(n * ul + 2);
    _cleanup_json_ json_object *o = NULL;
    double best = 1e9;

    assert_non_null(text);
    for (size_t i = 0; i < n; i++)
        memcpy(text + i * ul, unit, ul);
    memcpy(text + n * ul, "!", 2);
    o = json_object_new_string(text);
    for (int run = 0; run < 3; run++) {
        struct timespec a, b;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a);
        (void)cm_schema_validate(s, o, NULL);
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &b);
        double t = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
        best = t < best ? t : best;
    }
    return best;
}

/* The matcher's claim (common/cm-schema-regex.c): time linear in the string whatever the
 * pattern. Four times the string takes about four times as long (a backtracking matcher
 * takes exponential time on the first patterns, a quadratic one sixteen times as long). */
static void test_regex_linear_time(void **state)
{
    static const struct {
        const char *pattern, *unit;
    } cases[] = {
        {"^(a+)+$", "a"},
        {"^(a|a)*$", "a"},
        {"(a*)*b", "a"},
        {"^(a|aa|aaa)*c$", "a"},
        {"^(x+x+)+y$", "x"},
        {"([a-z]{1,8}){1,8}$", "ab"},
        {"^(.*,)*z$", "ab,"},
        /* schemas/account-create.json's e-mail address, unanchored: a thread at each byte */
        {"[^@ \t\r\n<>\"(),;:]+@[^@ \t\r\n<>\"(),;:]+\\.[^@ \t\r\n<>\"(),;:]+$", "a.@"},
        {"^(\\[[0-9a-fA-F:.]+\\]|[0-9.]+):[0-9]{1,5}$", "1."},
    };

    for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
        _cleanup_(cm_schema_freep) CmSchema *s = NULL;
        json_object *doc = json_object_new_object();
        CmError err = {0};
        double t1, t4;

        json_object_object_add(doc, "pattern", json_object_new_string(cases[i].pattern));
        if (cm_schema_compile(doc, &s, &err) < 0)
            fail_msg("pattern %s refused: %s", cases[i].pattern, err.message);
        json_object_put(doc);
        t1 = match_seconds(s, cases[i].unit, 20000);
        t4 = match_seconds(s, cases[i].unit, 80000);
        print_message("pattern %zu: 20k: %.4f s, 80k: %.4f s\n", i, t1, t4);
        if (t4 > 2.0 || t4 > 8 * t1 + 0.01)
            fail_msg("%s: %.4f s for 20k, %.4f s for 80k: not linear", cases[i].pattern, t1, t4);
    }
}

/* The rules of a Node in the order they are checked, with their messages. */
static void test_keywords(void **state)
{
    _cleanup_(cm_schema_freep) CmSchema *s = NULL;

    s = compile_text("{\"type\": \"object\", \"minProperties\": 1, \"maxProperties\": 2, "
                     "\"properties\": {\"gone\": false, \"any\": true}, "
                     "\"additionalProperties\": {\"type\": \"integer\"}}");
    expect_invalid(s, "{}", "", "schema_violation", "must have at least 1 field");
    expect_invalid(s, "{\"a\": 1, \"b\": 2, \"c\": 3}", "", "schema_violation",
                   "must have at most 2 fields");
    expect_invalid(s, "{\"gone\": 1}", "/gone", "unknown_field", "field is not allowed");
    expect_invalid(s, "{\"a\": \"1\"}", "/a", "wrong_type", "must be an integer");
    expect_valid(s, "{\"any\": [null], \"a\": 1}");
    s = cm_schema_free(s);

    s = compile_text("{\"items\": {\"const\": {\"a\": [1, \"x\\\"\"]}}, \"minItems\": 2, "
                     "\"maxItems\": 3, \"uniqueItems\": true}");
    expect_invalid(s, "[]", "", "schema_violation", "must have at least 2 items");
    expect_invalid(s, "[1, 2, 3, 4]", "", "schema_violation", "must have at most 3 items");
    expect_invalid(s, "[{\"a\": [1, \"x\\\"\"]}, 2]", "/1", "schema_violation",
                   "must be equal to {\"a\":[1,\"x\\\"\"]}");
    expect_invalid(s, "[{\"a\": [1.0, \"x\\\"\"]}, {\"a\": [1, \"x\\\"\"]}]", "/1",
                   "schema_violation", "must not repeat item 0 (items must be unique)");
    s = cm_schema_free(s);

    /* required members with and without a schema of their own, in the order listed */
    s = compile_text(
        "{\"required\": [\"b\", \"a\", \"c\"], \"properties\": {\"a\": {}, \"c\": {}}}");
    expect_valid(s, "{\"c\": 1, \"a\": 2, \"b\": 3}");
    expect_invalid(s, "{\"a\": 1, \"c\": 2}", "/b", "missing_field", "missing required field");
    expect_invalid(s, "{\"b\": 1, \"c\": 2, \"d\": 3}", "/a", "missing_field",
                   "missing required field");
    expect_invalid(s, "{\"b\": 1, \"a\": 2}", "/c", "missing_field", "missing required field");
    s = cm_schema_free(s);

    /* what the request schemas do with if, then, not and allOf */
    s = compile_text("{\"type\": \"object\", \"allOf\": [{\"if\": {\"properties\": {\"kind\": "
                     "{\"const\": \"new\"}}}, \"then\": {\"required\": [\"resources\"], "
                     "\"not\": {\"required\": [\"allocation\"]}}}]}");
    expect_valid(s, "{\"kind\": \"change\", \"allocation\": 1}");
    expect_valid(s, "{\"kind\": \"new\", \"resources\": 1}");
    expect_invalid(s, "{\"kind\": \"new\"}", "/resources", "missing_field",
                   "missing required field");
    expect_invalid(s, "{\"kind\": \"new\", \"resources\": 1, \"allocation\": 2}", "",
                   "schema_violation", "must not match the excluded schema (not)");
    s = cm_schema_free(s);

    /* the const and the enum say more than the type */
    s = compile_text("{\"type\": \"string\", \"enum\": [\"a\", null, 2.5]}");
    expect_invalid(s, "1", "", "wrong_type", "must be one of: a, null, 2.5");
    s = cm_schema_free(s);
    s = compile_text("{\"type\": [\"number\", \"string\", \"array\", \"object\", \"boolean\"], "
                     "\"minLength\": 2}");
    expect_invalid(s, "null", "", "wrong_type",
                   "must be a string, a number, a boolean, an object or an array");
    expect_invalid(s, "\"a\"", "", "schema_violation", "must be at least 2 characters");
    s = cm_schema_free(s);
    s = compile_text("false");
    expect_invalid(s, "1", "", "schema_violation", "is not allowed here");
    s = cm_schema_free(s);
    s = compile_text("{\"anyOf\": [{\"type\": \"string\", \"maxLength\": 1}, {\"type\": \"null\"}, "
                     "{\"type\": \"integer\"}, {\"type\": \"integer\", \"minimum\": 5}]}");
    expect_invalid(s, "\"ab\"", "", "schema_violation", "must be at most 1 character");
    expect_invalid(s, "1.5", "", "schema_violation",
                   "must match at least one of the allowed schemas (anyOf)");
    expect_valid(s, "3");
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

/* Every draft-07 file of the suite: the supported keywords' run in full, the others refused. */
#define SUITE_TEST(keyword, supported)                                                             \
    {                                                                                              \
        "draft7/" keyword ".json", test_suite_file, NULL, NULL, &(SuiteFile)                       \
        {                                                                                          \
            keyword, supported                                                                     \
        }                                                                                          \
    }

int main(void)
{
    const struct CMUnitTest tests[] = {
        SUITE_TEST("type", true),
        SUITE_TEST("enum", true),
        SUITE_TEST("const", true),
        SUITE_TEST("properties", true),
        SUITE_TEST("required", true),
        SUITE_TEST("additionalProperties", true),
        SUITE_TEST("minProperties", true),
        SUITE_TEST("maxProperties", true),
        SUITE_TEST("items", true),
        SUITE_TEST("minItems", true),
        SUITE_TEST("maxItems", true),
        SUITE_TEST("uniqueItems", true),
        SUITE_TEST("minLength", true),
        SUITE_TEST("maxLength", true),
        SUITE_TEST("pattern", true),
        SUITE_TEST("minimum", true),
        SUITE_TEST("maximum", true),
        SUITE_TEST("exclusiveMinimum", true),
        SUITE_TEST("exclusiveMaximum", true),
        SUITE_TEST("allOf", true),
        SUITE_TEST("anyOf", true),
        SUITE_TEST("not", true),
        SUITE_TEST("if-then-else", true),
        SUITE_TEST("boolean_schema", true),
        SUITE_TEST("additionalItems", false),
        SUITE_TEST("contains", false),
        SUITE_TEST("default", false),
        SUITE_TEST("definitions", false),
        SUITE_TEST("dependencies", false),
        SUITE_TEST("multipleOf", false),
        SUITE_TEST("oneOf", false),
        SUITE_TEST("patternProperties", false),
        SUITE_TEST("propertyNames", false),
        SUITE_TEST("ref", false),
        SUITE_TEST("refRemote", false),
        cmocka_unit_test(test_unsupported_keywords),
        cmocka_unit_test(test_annotations),
        cmocka_unit_test(test_project_schemas),
        cmocka_unit_test(test_bad_keyword_values),
        cmocka_unit_test(test_regex_refused),
        cmocka_unit_test(test_api_errors),
        cmocka_unit_test(test_error_order),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_regex),
        cmocka_unit_test(test_regex_linear_time),
        cmocka_unit_test(test_keywords),
        cmocka_unit_test(test_threads),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
