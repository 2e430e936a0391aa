/* SPDX-License-Identifier: Apache-2.0 */
/*
 * br_samples_parse() against the generic path it replaces on POST /v1/samples
 * (cm_json_parse() + the schema schemas/samples.json): for every document of a corpus of
 * valid and broken ones, both must accept or both refuse, with the same kind, code, field and
 * message; what the parser accepts must hold the values the json-c tree holds, as
 * br_metering_ingest() used to read them (cm_json_get_int(), json_object_get_double()).
 *
 * The corpus is made from the schema file itself (every property of every record, its type,
 * bounds, required list and maxItems), so a schema change the parser does not follow fails
 * here: every member dropped, doubled, retyped and pushed past its bounds; strings with bad
 * UTF-8, escapes, surrogates and NUL; nesting; structure; every prefix of a document and
 * every byte replaced by awkward ones; and seeded random mutations.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "br-samples-parse.h"
#include "br-schemas.h"
#include "cm-json.h"
#include "cm-util.h"

/* ---- text building ---- */

typedef struct {
    char *s;
    size_t n, cap;
} Buf;

static void b_add(Buf *b, const char *s, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        size_t ncap = b->cap ? b->cap : 256;
        while (ncap < b->n + n + 1)
            ncap *= 2;
        b->s = realloc(b->s, ncap);
        assert_non_null(b->s);
        b->cap = ncap;
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = 0;
}

static void b_str(Buf *b, const char *s)
{
    b_add(b, s, strlen(s));
}

_printf_(2, 3) static void b_printf(Buf *b, const char *fmt, ...)
{
    char *tmp = NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&tmp, fmt, ap);
    va_end(ap);
    assert_true(n >= 0);
    b_add(b, tmp, (size_t)n);
    free(tmp);
}

static char *xstrdup(const char *s)
{
    char *d = strdup(s);
    assert_non_null(d);
    return d;
}

/* ---- the two paths ---- */

static struct {
    size_t docs, accepted, refused, generic, strict_again;
} stats;

static BrSamplesBatch batch;

static void show(const char *what, const char *text, size_t len)
{
    Buf b = {0};
    size_t n = len > 400 ? 400 : len;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c >= 0x20 && c < 0x7f)
            b_add(&b, (const char *)&c, 1);
        else
            b_printf(&b, "\\x%02x", c);
    }
    print_error("%s: %zu bytes: %s%s\n", what, len, b.s ? b.s : "", len > n ? "..." : "");
    free(b.s);
}

static void compare_values(json_object *doc, const char *text, size_t len)
{
    for (int l = 0; l < BR_SAMPLES_LIST_MAX; l++) {
        json_object *arr = cm_json_get(doc, br_samples_list_name((BrSamplesList)l));
        size_t n = arr ? json_object_array_length(arr) : 0;
        if (batch.n[l] != n) {
            show("record count differs", text, len);
            fail_msg("%s: %zu records, json-c has %zu", br_samples_list_name((BrSamplesList)l),
                     batch.n[l], n);
        }
        for (size_t i = 0; i < n; i++) {
            json_object *rec = json_object_array_get_idx(arr, i);
            const BrSample *s = &batch.items[l][i];
            for (int f = 0; f < BR_SF_MAX; f++) {
                const char *key = br_sample_field_name((BrSampleField)f);
                json_object *v = NULL;
                bool there = json_object_object_get_ex(rec, key, &v) && v;
                if (there != br_sample_has(s, (BrSampleField)f)) {
                    show("presence differs", text, len);
                    fail_msg("%s/%zu/%s: json-c %s it", br_samples_list_name((BrSamplesList)l), i,
                             key, there ? "has" : "has not");
                }
                if (!there)
                    continue;
                switch (br_sample_field_kind((BrSampleField)f)) {
                case BR_SAMPLE_VALUE_INT:
                    if (s->v[f].i != cm_json_get_int(rec, key, 0)) {
                        show("integer differs", text, len);
                        fail_msg("%s: %lld, json-c %lld", key, (long long)s->v[f].i,
                                 (long long)cm_json_get_int(rec, key, 0));
                    }
                    break;
                case BR_SAMPLE_VALUE_NUMBER: {
                    double d = json_object_get_double(v);
                    if (memcmp(&d, &s->v[f].d, sizeof(d)) != 0) {
                        show("number differs", text, len);
                        fail_msg("%s: %.17g, json-c %.17g", key, s->v[f].d, d);
                    }
                    break;
                }
                case BR_SAMPLE_VALUE_TEXT: {
                    const char *want = json_object_get_string(v);
                    size_t want_len = (size_t)json_object_get_string_len(v);
                    const char *got = f == BR_SF_UUID   ? s->uuid
                                      : f == BR_SF_NAME ? br_sample_name(&batch, s)
                                                        : s->memory_source;
                    size_t got_len = f == BR_SF_NAME ? s->name_len : strlen(got);
                    if (got_len != want_len || memcmp(got, want, want_len) != 0) {
                        show("text differs", text, len);
                        fail_msg("%s: '%s', json-c '%s'", key, got, want);
                    }
                    break;
                }
                }
            }
        }
    }
}

/* Both paths on one document; they must agree. Returns: whether it was accepted. */
static bool check_len(const char *text, size_t len)
{
    CmError ge = {0}, fe = {0}, se = {0};
    json_object *doc = NULL;
    int gr, fr, sr;

    stats.docs++;
    gr = cm_json_parse(text, len, &doc, &ge);
    if (gr >= 0)
        gr = br_schema_check("samples", doc, &ge);
    fr = br_samples_parse(text, len, &batch, &fe);
    if ((gr < 0) != (fr < 0)) {
        show(gr < 0 ? "generic refuses, parser accepts" : "generic accepts, parser refuses", text,
             len);
        fail_msg("generic: %s %s (%s); parser: %s %s (%s)", ge.code, ge.field, ge.message, fe.code,
                 fe.field, fe.message);
    }
    if (gr < 0) {
        if (ge.kind != fe.kind || strcmp(ge.code, fe.code) != 0 ||
            strcmp(ge.field, fe.field) != 0 || strcmp(ge.message, fe.message) != 0) {
            show("different answers", text, len);
            fail_msg("generic: %d %s '%s' (%s)\n  parser: %d %s '%s' (%s)", ge.kind, ge.code,
                     ge.field, ge.message, fe.kind, fe.code, fe.field, fe.message);
        }
        assert_int_equal(gr, fr);
        stats.refused++;
    } else {
        compare_values(doc, text, len);
        stats.accepted++;
    }
    if (batch.used_generic)
        stats.generic++;
    /* The one pass refuses nothing but for the generic path to answer, and accepts every
     * valid document but those with names json-c reads otherwise than their text. */
    sr = br_samples_parse_strict(text, len, &batch, &se);
    if (gr < 0) {
        assert_int_equal(sr, -EAGAIN);
    } else if (sr == -EAGAIN) {
        stats.strict_again++;
        if (!memmem(text, len, "\\u", 2))
            fail_msg("parse_strict gave up on a valid document without \\u escapes");
    } else {
        assert_int_equal(sr, 0);
        compare_values(doc, text, len);
    }
    json_object_put(doc);
    return gr >= 0;
}

static bool check(const char *text)
{
    return check_len(text, strlen(text));
}

static void accepted(const char *text)
{
    if (!check(text)) {
        show("expected to be accepted", text, strlen(text));
        fail();
    }
}

static void refused(const char *text)
{
    if (check(text)) {
        show("expected to be refused", text, strlen(text));
        fail();
    }
}

/* ---- documents from the schema ---- */

#define MAX_PROPS 40

typedef struct {
    char key[64];
    char *val; /* raw JSON */
} Member;

typedef struct {
    Member m[MAX_PROPS + 4];
    int n;
} Obj;

typedef struct {
    const char *name;
    size_t max_items;
    json_object *props; /* the item schema's properties */
    json_object *required;
    Obj full, minimal; /* every property / the required ones, valid */
} List;

static json_object *schema;
static List lists[BR_SAMPLES_LIST_MAX];
static size_t n_lists;

/* A valid value for @key, realistic where the key is known, else from its schema. */
static char *valid_value(const char *key, json_object *prop)
{
    static const struct {
        const char *key, *val;
    } known[] = {
        {"instance", "7"},
        {"uuid", "\"00000000-0000-4000-8000-000000000007\""},
        {"name", "\"cb-hand-made\""},
        {"start", "1795737600"},
        {"duration", "300"},
        {"readings", "29"},
        {"expected", "30"},
        {"vcpus", "2"},
        {"memory_mib", "2048"},
        {"cpu_cores_avg", "0.25"},
        {"cpu_cores_max", "1.5"},
        {"memory_used_mib_avg", "870.5"},
        {"memory_used_mib_max", "1457"},
        {"memory_source", "\"balloon\""},
        {"cpus", "8"},
        {"cpu_used_cores_avg", "1.25"},
        {"cpu_used_cores_max", "3.5"},
        {"domains_max", "12"},
        {"cycle_seconds_avg", "0.012"},
        {"cycle_seconds_max", "0.3"},
    };
    json_object *type = cm_json_get(prop, "type"), *en = cm_json_get(prop, "enum");
    const char *t = type && json_object_is_type(type, json_type_array)
                        ? json_object_get_string(json_object_array_get_idx(type, 0))
                        : json_object_get_string(type);
    char buf[64];

    for (size_t i = 0; i < ELEMENTSOF(known); i++)
        if (strcmp(known[i].key, key) == 0)
            return xstrdup(known[i].val);
    if (en)
        return xstrdup(json_object_to_json_string(json_object_array_get_idx(en, 0)));
    if (t && strcmp(t, "string") == 0)
        return xstrdup(cm_json_get(prop, "pattern") ? "\"00000000-0000-4000-8000-000000000001\""
                                                    : "\"s\"");
    snprintf(buf, sizeof(buf), "%lld", (long long)cm_json_get_int(prop, "minimum", 1));
    return xstrdup(buf);
}

static void obj_add(Obj *o, const char *key, const char *val)
{
    assert_true(o->n < (int)ELEMENTSOF(o->m));
    snprintf(o->m[o->n].key, sizeof(o->m[o->n].key), "%s", key);
    o->m[o->n].val = xstrdup(val);
    o->n++;
}

static void obj_copy(Obj *dst, const Obj *src)
{
    dst->n = 0;
    for (int i = 0; i < src->n; i++)
        obj_add(dst, src->m[i].key, src->m[i].val);
}

static void obj_free(Obj *o)
{
    for (int i = 0; i < o->n; i++)
        free(o->m[i].val);
    o->n = 0;
}

/* @key is written as is between quotes: it may hold escapes. */
static void obj_render(Buf *b, const Obj *o)
{
    b_str(b, "{");
    for (int i = 0; i < o->n; i++)
        b_printf(b, "%s\"%s\":%s", i ? "," : "", o->m[i].key, o->m[i].val);
    b_str(b, "}");
}

/* A document: list @l holds @rec at @index among valid records; the others their full one. */
static char *doc_with(size_t l, size_t index, const Obj *rec, size_t n_records)
{
    Buf b = {0};
    b_str(&b, "{");
    for (size_t k = 0; k < n_lists; k++) {
        b_printf(&b, "%s\"%s\":[", k ? "," : "", lists[k].name);
        size_t n = k == l ? n_records : 1;
        for (size_t i = 0; i < n; i++) {
            if (i)
                b_str(&b, ",");
            obj_render(&b, k == l && i == index ? rec : &lists[k].full);
        }
        b_str(&b, "]");
    }
    b_str(&b, "}");
    return b.s;
}

static int load_schema(void **state)
{
    CmError err = {0};
    json_object *props;

    assert_int_equal(br_schemas_init(&err), 0);
    if (cm_json_load_file(SOURCE_DIR "/schemas/samples.json", 1 << 20, &schema, &err) < 0)
        fail_msg("%s", err.message);
    props = cm_json_get(schema, "properties");
    assert_non_null(props);
    json_object_object_foreach(props, name, list)
    {
        List *L = &lists[n_lists++];
        json_object *items = cm_json_get(list, "items");
        L->name = name;
        L->max_items = (size_t)cm_json_get_int(list, "maxItems", 0);
        L->props = cm_json_get(items, "properties");
        L->required = cm_json_get(items, "required");
        assert_non_null(L->props);
        assert_non_null(L->required);
        json_object_object_foreach(L->props, key, prop)
        {
            char *v = valid_value(key, prop);
            obj_add(&L->full, key, v);
            for (size_t i = 0; i < json_object_array_length(L->required); i++)
                if (strcmp(json_object_get_string(json_object_array_get_idx(L->required, i)),
                           key) == 0)
                    obj_add(&L->minimal, key, v);
            free(v);
        }
    }
    assert_int_equal(n_lists, BR_SAMPLES_LIST_MAX);
    return 0;
}

static int free_schema(void **state)
{
    for (size_t l = 0; l < n_lists; l++) {
        obj_free(&lists[l].full);
        obj_free(&lists[l].minimal);
    }
    json_object_put(schema);
    br_samples_batch_free(&batch);
    br_schemas_free();
    print_message("%zu documents: %zu accepted, %zu refused; %zu answered by the generic path "
                  "(%zu given up by parse_strict)\n",
                  stats.docs, stats.accepted, stats.refused, stats.generic, stats.strict_again);
    return 0;
}

/* The whole valid document: every list with its full record twice. */
static char *full_doc(void)
{
    return doc_with(0, 0, &lists[0].full, 2);
}

/* ---- the tests ---- */

static void test_parser_lists_match_schema(void **state)
{
    /* The parser knows exactly the lists and members of the schema, in order. */
    for (size_t l = 0; l < n_lists; l++) {
        assert_string_equal(lists[l].name, br_samples_list_name((BrSamplesList)l));
        json_object_object_foreach(lists[l].props, key, prop)
        {
            bool known = false;
            for (int f = 0; f < BR_SF_MAX; f++)
                known = known || strcmp(br_sample_field_name((BrSampleField)f), key) == 0;
            if (!known)
                fail_msg("%s/%s: a member the parser does not know", lists[l].name, key);
            (void)prop;
        }
    }
}

static void test_valid_documents(void **state)
{
    _cleanup_free_ char *full = full_doc();
    accepted(full);
    accepted("{}");
    accepted(" \r\n\t{ \"instances\" : [ ] , \"unowned\":[],\"host\":[]}\n ");
    for (size_t l = 0; l < n_lists; l++) {
        _cleanup_free_ char *d = doc_with(l, 1, &lists[l].minimal, 3);
        accepted(d);
        Buf b = {0};
        b_printf(&b, "{\"%s\":[", lists[l].name);
        obj_render(&b, &lists[l].full);
        b_str(&b, "]}");
        accepted(b.s);
        free(b.s);
        /* every optional member null */
        Obj o = {0};
        obj_copy(&o, &lists[l].full);
        for (int i = 0; i < o.n; i++) {
            bool req = false;
            for (size_t k = 0; k < json_object_array_length(lists[l].required); k++)
                req =
                    req ||
                    strcmp(json_object_get_string(json_object_array_get_idx(lists[l].required, k)),
                           o.m[i].key) == 0;
            if (!req) {
                free(o.m[i].val);
                o.m[i].val = xstrdup("null");
            }
        }
        _cleanup_free_ char *nulls = doc_with(l, 0, &o, 1);
        accepted(nulls);
        obj_free(&o);
    }
    /* pretty-printed by json-c, members in reverse */
    json_object *tree = NULL;
    assert_int_equal(cm_json_parse(full, strlen(full), &tree, NULL), 0);
    accepted(json_object_to_json_string_ext(tree, JSON_C_TO_STRING_PRETTY));
    json_object_put(tree);
    Obj rev = {0};
    for (int i = lists[0].full.n - 1; i >= 0; i--)
        obj_add(&rev, lists[0].full.m[i].key, lists[0].full.m[i].val);
    _cleanup_free_ char *reversed = doc_with(0, 0, &rev, 2);
    accepted(reversed);
    obj_free(&rev);
}

/* Values tried in place of every member's. */
static const char *const awkward_values[] = {
    "null",
    "true",
    "false",
    "\"\"",
    "\"x\"",
    "\"5\"",
    "{}",
    "[]",
    "[1]",
    "{\"a\":1}",
    "[[[[[[[[[[]]]]]]]]]]",
    "\"\\u0000\"",
    "\"a\\u0000b\"",
    "0",
    "-0",
    "-0.0",
    "0.0",
    "1",
    "-1",
    "2",
    "9",
    "10",
    "11",
    "29",
    "30",
    "31",
    "299",
    "300",
    "301",
    "1.5",
    "-1.5",
    "0.5",
    "3599",
    "3600",
    "3601",
    "3600.0",
    "3600.0000001",
    "3599.9999999",
    "4095",
    "4096",
    "4097",
    "4096.0",
    "4096.5",
    "4096.000000000001",
    "1e2",
    "1E2",
    "1e+2",
    "1e-2",
    "3e2",
    "3.0e2",
    "1e400",
    "-1e400",
    "1e-400",
    "1e99999",
    "4.9e-324",
    "2.2250738585072014e-308",
    "1.7976931348623157e308",
    "1e19",
    "1e18",
    "-1e19",
    "9.2e18",
    "9.3e18",
    "-9.2e18",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "-9223372036854775809",
    "18446744073709551615",
    "18446744073709551616",
    "99999999999999999999",
    "-99999999999999999999",
    "123456789012345678",
    "12345678901234567890.5",
    "0.1",
    "0.30000000000000004",
    "1234567.8901234567890123",
    "0.000000000000000000000000001",
    "1795737600",
    "1795737600.0",
    "1795737607",
    "1795737600e0",
    "17957376e2",
    "01",
    "-01",
    "1.",
    ".5",
    "+1",
    "1e",
    "1e+",
    "-",
    "--1",
    "NaN",
    "Infinity",
    "-Infinity",
    "0x10",
    "1_000",
    "tru",
    "nul",
    "True",
    "'x'",
    "\"00000000-0000-4000-8000-000000000007\"",
    "\"00000000-0000-4000-8000-00000000000A\"",
    "\"00000000-0000-4000-8000-00000000000a\"",
    "\"00000000-0000-4000-8000-0000000000007\"",
    "\"00000000-0000-4000-8000-00000000007\"",
    "\"000000000000-4000-8000-0000-00000007\"",
    "\"00000000-0000-4000-8000-00000000000g\"",
    "\"00000000\\u002d0000-4000-8000-000000000007\"",
    "\"\\u0030\\u0030000000-0000-4000-8000-000000000007\"",
    "\"00000000-0000-4000-8000-000000000007\\n\"",
    "\"00000000-0000-4000-8000-00000000000é\"",
    "\"00000000-0000-4000-8000-000000000007\\u0000\"",
    "\"balloon\"",
    "\"rss\"",
    "\"Balloon\"",
    "\"balloon \"",
    "\"\\u0062alloon\"",
    "\"\\u0062\\u0061\\u006c\\u006c\\u006f\\u006f\\u006e\"",
    "\"r\\u0073s\"",
    "\"rss\\u0000\"",
    "\"ballo\"",
    "\"\\ud83d\\ude00\"",
    "\"\\ud83d\"",
    "\"\\ude00\"",
    "\"\\ud83dx\"",
    "\"\\u12\"",
    "\"\\x41\"",
    "\"\\'\"",
    "\"a\\/b\\\\c\\\"d\"",
    "\"\\b\\f\\n\\r\\t\"",
    "\"\xc3\xa9\"",
    "\"\xff\"",
    "\"\xc0\xaf\"",
    "\"\xed\xa0\x80\"",
    "\"\xe4\xb8\"",
    "\"\xf4\x90\x80\x80\"",
    "\"\x01\"",
    "\"\x7f\"",
    "\"unterminated",
};

static char *repeat(const char *unit, size_t n, const char *before, const char *after)
{
    Buf b = {0};
    b_str(&b, before);
    for (size_t i = 0; i < n; i++)
        b_str(&b, unit);
    b_str(&b, after);
    return b.s;
}

static void test_members_retyped(void **state)
{
    char *longs[] = {
        repeat("n", 256, "\"", "\""),
        repeat("n", 257, "\"", "\""),
        repeat("中", 256, "\"", "\""),
        repeat("中", 257, "\"", "\""),
        repeat("\\u00e9", 256, "\"", "\""),
        repeat("\\u00e9", 257, "\"", "\""),
        repeat("\\ud83d\\ude00", 257, "\"", "\""),
        repeat("\\u0061", 36, "\"", "\""),
        repeat("0", 10000, "", ""),
        repeat("0", 400, "1", ".5"),
        repeat("[", 29, "", "1") /* unterminated */,
    };
    /* every member of record 0 and 1 of every list */
    for (size_t l = 0; l < n_lists; l++) {
        for (int m = 0; m < lists[l].full.n; m++) {
            for (size_t v = 0; v < ELEMENTSOF(awkward_values) + ELEMENTSOF(longs); v++) {
                const char *val = v < ELEMENTSOF(awkward_values)
                                      ? awkward_values[v]
                                      : longs[v - ELEMENTSOF(awkward_values)];
                for (size_t index = 0; index < 2; index++) {
                    Obj o = {0};
                    obj_copy(&o, &lists[l].full);
                    free(o.m[m].val);
                    o.m[m].val = xstrdup(val);
                    _cleanup_free_ char *d = doc_with(l, index, &o, 2);
                    check(d);
                    obj_free(&o);
                }
            }
        }
    }
    /* nesting at the limit and past it, in a member's value */
    for (int depth = 27; depth <= 31; depth++) {
        Obj o = {0};
        obj_copy(&o, &lists[0].full);
        free(o.m[2].val);
        o.m[2].val = repeat("[", (size_t)depth, "", "");
        char *closing = repeat("]", (size_t)depth, o.m[2].val, "");
        free(o.m[2].val);
        o.m[2].val = closing;
        _cleanup_free_ char *d = doc_with(0, 0, &o, 1);
        check(d);
        obj_free(&o);
    }
    for (size_t i = 0; i < ELEMENTSOF(longs); i++)
        free(longs[i]);
}

static void test_members_dropped_doubled_added(void **state)
{
    static const char *const extra_keys[] = {
        "x",          "x/y~z",
        "",           "Instance",
        "instance ",  "\\u0069nstance",
        "\\u0075uid", "st\\u0061rt",
        "\\u00e9",    "é",
        "a\\u0000b",  "instance\\u0000",
        "\\u0000",    "\\ud83d\\ude00",
        "😀",          "\\n",
        "n",          "\\/",
        "a\\\\b",     "memory_mib\\u0000x",
    };
    for (size_t l = 0; l < n_lists; l++) {
        for (int m = 0; m < lists[l].full.n; m++) {
            for (size_t index = 0; index < 2; index++) {
                /* dropped */
                Obj o = {0};
                for (int k = 0; k < lists[l].full.n; k++)
                    if (k != m)
                        obj_add(&o, lists[l].full.m[k].key, lists[l].full.m[k].val);
                _cleanup_free_ char *d1 = doc_with(l, index, &o, 2);
                check(d1);
                /* dropped together with the next one: the first missing required counts */
                if (m + 1 < o.n) {
                    free(o.m[m].val);
                    memmove(&o.m[m], &o.m[m + 1], sizeof(o.m[0]) * (size_t)(o.n - m - 1));
                    o.n--;
                    _cleanup_free_ char *d2 = doc_with(l, index, &o, 2);
                    check(d2);
                }
                obj_free(&o);
                /* doubled, right after and at the end; with another value; escaped */
                for (int where = 0; where < 2; where++) {
                    const char *vals[] = {lists[l].full.m[m].val, "\"x\"", "null"};
                    for (size_t v = 0; v < ELEMENTSOF(vals); v++) {
                        obj_copy(&o, &lists[l].full);
                        int at = where ? o.n : m + 1;
                        memmove(&o.m[at + 1], &o.m[at], sizeof(o.m[0]) * (size_t)(o.n - at));
                        o.n++;
                        snprintf(o.m[at].key, sizeof(o.m[at].key), "%s", lists[l].full.m[m].key);
                        o.m[at].val = xstrdup(vals[v]);
                        _cleanup_free_ char *d3 = doc_with(l, index, &o, 2);
                        check(d3);
                        if (v == 0) {
                            /* the same name with its first letter escaped */
                            snprintf(o.m[at].key, sizeof(o.m[at].key), "\\u%04x%s",
                                     lists[l].full.m[m].key[0], lists[l].full.m[m].key + 1);
                            _cleanup_free_ char *d4 = doc_with(l, index, &o, 2);
                            check(d4);
                        }
                        obj_free(&o);
                    }
                }
            }
        }
        /* members the schema does not have, at the front, middle and end, with bad values */
        for (size_t k = 0; k < ELEMENTSOF(extra_keys); k++) {
            for (int at = 0; at <= lists[l].full.n; at += lists[l].full.n / 2 + 1) {
                const char *vals[] = {"1", "\"\\u0000\"", "[1,{\"k\":\"\\u0000\"}]",
                                      "{\"a\":1,\"a\":2}"};
                for (size_t v = 0; v < ELEMENTSOF(vals); v++) {
                    Obj o = {0};
                    obj_copy(&o, &lists[l].full);
                    memmove(&o.m[at + 1], &o.m[at], sizeof(o.m[0]) * (size_t)(o.n - at));
                    o.n++;
                    snprintf(o.m[at].key, sizeof(o.m[at].key), "%s", extra_keys[k]);
                    o.m[at].val = xstrdup(vals[v]);
                    _cleanup_free_ char *d = doc_with(l, 1, &o, 2);
                    check(d);
                    obj_free(&o);
                }
            }
        }
    }
}

static void test_structure(void **state)
{
    static const char *const docs[] = {
        "null",
        "true",
        "5",
        "\"x\"",
        "[]",
        "[{}]",
        "{\"instances\":null}",
        "{\"instances\":{}}",
        "{\"instances\":\"x\"}",
        "{\"instances\":5}",
        "{\"instances\":[null]}",
        "{\"instances\":[[]]}",
        "{\"instances\":[5,{}]}",
        "{\"instances\":[{}]}",
        "{\"unowned\":[{}]}",
        "{\"host\":[{}]}",
        "{\"host\":[{},5]}",
        "{\"x\":1}",
        "{\"x\":1,\"instances\":5}",
        "{\"instances\":5,\"x\":1}",
        "{\"instances\":[],\"instances\":[]}",
        "{\"host\":[],\"x\":[],\"host\":1}",
        "{\"\\u0068ost\":[]}",
        "{\"\\u0068ost\":[],\"host\":[]}",
        "{\"hos\\u0074\":5}",
        "{\"host\\u0000\":[]}",
        "{\"host\\u0000x\":[],\"host\":5}",
        "{\"host\":5,\"host\\u0000x\":[]}",
        "{\"\\u00e9\":1,\"é\":2}",
        "{\"é\":\"\\u0000\",\"\\u00e9\":1}",
        "{\"a\":\"\\u0000\",\"b\":\"\\u0000\"}",
        "{\"x\":{\"y\":[0,{\"z/~\":\"\\u0000\"}]}}",
        "{\"instances\":[{\"x\":[\"\\u0000\"]}]}",
        "{\"instances\":[{\"instance\":\"\\u0000\"}]}",
        "{\"instances\":[{}],\"host\":\"\\u0000\"}",
        "{\"a\":1,\"b\":2,\"a\":3,\"b\":4}",
        "{\"b\":1,\"a\":2,\"a\":3,\"b\":4,\"c\":1,\"c\":1}",
        "{\"anb\":1,\"a\\nb\":2}",
        "{\"a\":{\"a\":1},\"b\":{\"a\":1,\"a\":2}}",
        "{\"instances\":[{\"uuid\":1,\"uuid\":2}],\"x\":}",
        "",
        " ",
        "\n",
        "{",
        "}",
        "[",
        "{\"instances\"",
        "{\"instances\":",
        "{\"instances\":[",
        "{\"instances\":[{",
        "{\"instances\":[{\"instance\"",
        "{\"instances\":[{\"instance\":1",
        "{\"instances\":[{\"instance\":1,",
        "{\"instances\":[{\"instance\":1}",
        "{\"instances\":[{\"instance\":1}]",
        "{} {}",
        "{}x",
        "{}\f",
        "\f{}",
        "{}\x00",
        "\xef\xbb\xbf{}",
        "{'a':1}",
        "{a:1}",
        "{\"a\" 1}",
        "{\"a\":1,}",
        "{,}",
        "[1,]",
        "{\"instances\":[,]}",
        "{\"instances\":[{},]}",
        "{\"instances\":[{}}",
        "{\"instances\":[{]}",
        "/* c */ {}",
        "{\"x\":tru}",
        "{\"x\":nul}",
        "{\"x\":falsy}",
    };
    for (size_t i = 0; i < ELEMENTSOF(docs); i++)
        check(docs[i]);
    /* NUL bytes, raw */
    check_len("{\"x\":\"a\0b\"}", 11);
    check_len("{\"x\":1}\0", 8);
    check_len("\0", 1);
    check_len("{\"x\"\0:1}", 8);
    /* a NUL deep down, its pointer longer than the error's field */
    Buf b = {0};
    b_str(&b, "{\"instances\":[{\"q\":");
    for (int i = 0; i < 20; i++)
        b_printf(&b, "{\"%s/~%d\":", "a-rather-long-member-name", i);
    b_str(&b, "\"\\u0000\"");
    for (int i = 0; i < 20; i++)
        b_str(&b, "}");
    b_str(&b, "}]}");
    check(b.s);
    /* the same, an unknown member whose pointer is longer than the field */
    b.n = 0;
    b_str(&b, "{\"instances\":[{\"");
    for (int i = 0; i < 40; i++)
        b_str(&b, "~/x/~y");
    b_str(&b, "\":1}]}");
    check(b.s);
    free(b.s);
    /* nesting at the limit and one past it, and very deep */
    for (int depth = 30; depth <= 34; depth++) {
        char *d = repeat("[", (size_t)depth, "", "");
        char *dd = repeat("]", (size_t)depth, d, "");
        check(dd);
        char *inner = repeat("{\"a\":", (size_t)depth - 1, "", "1");
        char *obj = repeat("}", (size_t)depth - 1, inner, "");
        check(obj);
        free(d);
        free(dd);
        free(inner);
        free(obj);
    }
    char *deep = repeat("[", 100000, "{\"x\":", "");
    check(deep);
    free(deep);
}

static void test_max_items(void **state)
{
    for (size_t l = 0; l < n_lists; l++) {
        size_t max = lists[l].max_items;
        Buf item = {0}, bad = {0};
        obj_render(&item, &lists[l].minimal);
        /* an error in the first record: maxItems is checked before the items */
        b_str(&bad, "{\"x\":1}");
        for (size_t n = max - 1; n <= max + 1; n++) {
            for (int variant = 0; variant < 4; variant++) {
                Buf b = {0};
                if (variant == 3)
                    b_str(&b, "{\"zz\":1,");
                else
                    b_str(&b, "{");
                b_printf(&b, "\"%s\":[", lists[l].name);
                for (size_t i = 0; i < n; i++) {
                    if (i)
                        b_str(&b, ",");
                    if ((variant == 1 && i == 0) || (variant == 2 && i == n - 1))
                        b_add(&b, bad.s, bad.n);
                    else
                        b_add(&b, item.s, item.n);
                }
                b_str(&b, "]}");
                check_len(b.s, b.n);
                free(b.s);
            }
        }
        free(item.s);
        free(bad.s);
    }
}

/* Every prefix of a document, and every byte of it replaced, deleted or doubled. */
static void test_syntax_mutations(void **state)
{
    static const char bytes[] = {'"',        ',', ':', '{',  '}', '[', ']', '\\', 0,   (char)0xff,
                                 (char)0xc3, 'x', ' ', '\f', '0', '-', '.', 'e',  'u', 'n'};
    Buf b = {0};
    b_printf(&b, "{\"%s\":[", lists[0].name);
    obj_render(&b, &lists[0].full);
    b_printf(&b, "],\"%s\":[", lists[1].name);
    obj_render(&b, &lists[1].full);
    b_str(&b, "]}");
    char *doc = b.s;
    size_t len = b.n;
    char *m = malloc(len + 2);
    assert_non_null(m);

    for (size_t n = 0; n <= len; n++)
        check_len(doc, n);
    for (size_t i = 0; i < len; i++) {
        for (size_t k = 0; k < sizeof(bytes); k++) {
            if (doc[i] == bytes[k])
                continue;
            memcpy(m, doc, len);
            m[i] = bytes[k];
            check_len(m, len);
        }
        memcpy(m, doc, i);
        memcpy(m + i, doc + i + 1, len - i - 1);
        check_len(m, len - 1);
        memcpy(m, doc, i + 1);
        memcpy(m + i + 1, doc + i, len - i);
        check_len(m, len + 1);
    }
    free(m);
    free(doc);
}

/* Seeded random mutations of whole documents: splices of tokens from the corpus. */
static void test_random_mutations(void **state)
{
    static const char *const tokens[] = {
        "\"",
        ",",
        ":",
        "{",
        "}",
        "[",
        "]",
        "null",
        "-1",
        "1e400",
        "0.5",
        "4097",
        "\"x\"",
        "\"\\u0000\"",
        "\"\\u00e9\"",
        "\xff",
        "\\",
        "\"instance\":1",
        "\"uuid\":\"x\"",
        "\"host\":[]",
        "{\"a\":1}",
        "\"start\":",
        "  ",
        "\"\\ud800\"",
        "\"é\"",
        "3600",
    };
    uint64_t seed = 0x9E3779B97F4A7C15ULL;
#define RND() (seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17, seed)
    _cleanup_free_ char *base = full_doc();
    size_t base_len = strlen(base);

    for (int iter = 0; iter < 6000; iter++) {
        Buf b = {0};
        b_add(&b, base, base_len);
        int edits = 1 + (int)(RND() % 3);
        for (int e = 0; e < edits && b.n > 2; e++) {
            size_t at = RND() % b.n, cut = RND() % 3 == 0 ? RND() % 8 : 0;
            const char *tok = tokens[RND() % ELEMENTSOF(tokens)];
            Buf nb = {0};
            if (cut > b.n - at)
                cut = b.n - at;
            b_add(&nb, b.s, at);
            if (RND() % 4)
                b_str(&nb, tok);
            b_add(&nb, b.s + at + cut, b.n - at - cut);
            free(b.s);
            b = nb;
        }
        check_len(b.s, b.n);
        free(b.s);
    }
#undef RND
}

/* Numbers of every shape, in a number member and an integer member without maximum: the
 * values must be json-c's to the bit (strtod()'s correct rounding, int64/uint64 saturation). */
static void test_numbers(void **state)
{
    uint64_t seed = 0x2545F4914F6CDD1DULL;
#define RND() (seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17, seed)
    for (int iter = 0; iter < 8000; iter++) {
        char num[160];
        size_t n = 0;
        unsigned int_digits = 1 + (unsigned)(RND() % 22), frac_digits = (unsigned)(RND() % 20);
        if (RND() % 8 == 0)
            num[n++] = '-';
        num[n++] = (char)('1' + RND() % 9);
        for (unsigned i = 1; i < int_digits; i++)
            num[n++] = (char)('0' + RND() % 10);
        if (RND() % 3 && frac_digits) {
            num[n++] = '.';
            for (unsigned i = 0; i < frac_digits; i++)
                num[n++] = (char)('0' + RND() % 10);
        }
        if (RND() % 3 == 0)
            n += (size_t)snprintf(num + n, sizeof(num) - n, "e%d", (int)(RND() % 700) - 350);
        num[n] = 0;
        if (iter % 4 == 0 && int_digits > 1)
            memmove(num, num + int_digits - 1, n - int_digits + 2); /* small ones too */
        const char *keys[] = {"memory_used_mib_avg", "memory_mib", "cycle_seconds_max"};
        for (size_t k = 0; k < ELEMENTSOF(keys); k++) {
            size_t l = k == 2 ? BR_SAMPLES_HOST : BR_SAMPLES_INSTANCES;
            Obj o = {0};
            obj_copy(&o, &lists[l].full);
            for (int m = 0; m < o.n; m++) {
                if (strcmp(o.m[m].key, keys[k]) == 0) {
                    free(o.m[m].val);
                    o.m[m].val = xstrdup(num);
                }
            }
            _cleanup_free_ char *d = doc_with(l, 0, &o, 1);
            check(d);
            obj_free(&o);
        }
    }
#undef RND
}

/* Every number of the schema at and around its bounds, as the schema states them: the maximum
 * is accepted, anything above it refused, Infinity (1e400) always refused; both paths alike. */
static void test_bounds(void **state)
{
    for (size_t l = 0; l < n_lists; l++) {
        for (int m = 0; m < lists[l].full.n; m++) {
            json_object *prop = cm_json_get(lists[l].props, lists[l].full.m[m].key), *max;
            char vals[24][64];
            size_t n = 0;
            int64_t hi, lo;

            if (!json_object_object_get_ex(prop, "maximum", &max))
                continue; /* a string or an enum */
            hi = json_object_get_int64(max);
            lo = cm_json_get_int(prop, "minimum", 0);
            /* a number member with no maximum could carry Infinity into every sum */
            assert_true(hi > lo);
            snprintf(vals[n++], 64, "%lld", (long long)hi);
            snprintf(vals[n++], 64, "%lld", (long long)hi - 1);
            snprintf(vals[n++], 64, "%lld.0", (long long)hi);
            snprintf(vals[n++], 64, "%lld", (long long)lo);
            snprintf(vals[n++], 64, "%lld.0e0", (long long)lo);
            /* refused */
            snprintf(vals[n++], 64, "%lld", (long long)hi + 1);
            /* (a half above 2^52 rounds to a whole double: no longer "above") */
            snprintf(vals[n++], 64, hi < (INT64_C(1) << 52) ? "%lld.5" : "%lld1", (long long)hi);
            snprintf(vals[n++], 64, "%lld0", (long long)hi);
            snprintf(vals[n++], 64, "%.17ge0", (double)hi * 2);
            snprintf(vals[n++], 64, "%lld", (long long)lo - 1);
            snprintf(vals[n++], 64, "%lld.5", (long long)lo - 1);
            snprintf(vals[n++], 64, "1e400");
            snprintf(vals[n++], 64, "-1e400");
            snprintf(vals[n++], 64, "1.7976931348623157e308");
            snprintf(vals[n++], 64, "9223372036854775807");
            snprintf(vals[n++], 64, "9223372036854775808");
            snprintf(vals[n++], 64, "18446744073709551616");
            snprintf(vals[n++], 64, "9007199254740993");
            for (size_t v = 0; v < n; v++) {
                for (size_t index = 0; index < 2; index++) {
                    Obj o = {0};
                    bool ok;
                    obj_copy(&o, &lists[l].full);
                    free(o.m[m].val);
                    o.m[m].val = xstrdup(vals[v]);
                    _cleanup_free_ char *d = doc_with(l, index, &o, 2);
                    ok = check(d);
                    if (ok != (v < 5)) {
                        show(v < 5 ? "the bound is refused" : "past the bound is accepted", d,
                             strlen(d));
                        fail_msg("%s/%s = %s", lists[l].name, lists[l].full.m[m].key, vals[v]);
                    }
                    obj_free(&o);
                }
            }
        }
    }
}

static void test_generic_path_only_for_odd_names(void **state)
{
    _cleanup_free_ char *full = full_doc();
    /* json-c would cut a name at an escaped NUL ("host\u0000x" read as "host"): refused as
     * the generic path refuses it, with the same answer */
    refused("{\"host\\u0000x\":[]}");
    refused("{\"host\":5,\"host\\u0000x\":[]}");
    refused("{\"instances\":[],\"instances\\u0000\":5}");
    /* an escaped ASCII name is read by the one pass itself, as json-c reads it; the generic
     * path would take a non-ASCII escape, which no valid document holds */
    const char *odd =
        "{\"\\u0068ost\":[{\"start\":1795737600,\"duration\":3e2,\"readings\":2.9e1,"
        "\"expected\":30,\"cpus\":65536,\"cpu_used_cores_avg\":0.1,"
        "\"cpu_used_cores_max\":35e-1,\"cycle_seconds_avg\":-0.0,\"domains_max\":null}]}";
    accepted(odd);
    assert_int_equal(br_samples_parse(odd, strlen(odd), &batch, NULL), 0);
    assert_false(batch.used_generic);
    assert_int_equal(batch.n[BR_SAMPLES_HOST], 1);
    assert_int_equal(batch.items[BR_SAMPLES_HOST][0].v[BR_SF_READINGS].i, 29);
    assert_int_equal(batch.items[BR_SAMPLES_HOST][0].v[BR_SF_CPUS].i, 65536);
    /* numbers past the schema's maxima (Infinity above all) are refused on that path too */
    refused("{\"\\u0068ost\":[{\"start\":1795737600,\"duration\":300,\"readings\":29,"
            "\"expected\":30,\"cpu_used_cores_max\":1e400}]}");
    refused("{\"\\u0068ost\":[{\"start\":1795737600,\"duration\":300,\"readings\":29,"
            "\"expected\":30,\"cpus\":9223372036854775807}]}");
    /* an escaped name and its raw spelling are one name twice: a duplicate */
    refused("{\"host\":[],\"\\u0068ost\":[]}");
    refused("{\"é\":1,\"\\u00e9\":1}");
    /* the common documents never take that path */
    size_t before = stats.strict_again;
    accepted(full);
    refused("{\"instances\":[{\"instance\":0}]}");
    refused("{\"instances\":[{\"\\u0069nstance\":0}]}");
    assert_int_equal(stats.strict_again, before);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parser_lists_match_schema),
        cmocka_unit_test(test_valid_documents),
        cmocka_unit_test(test_members_retyped),
        cmocka_unit_test(test_members_dropped_doubled_added),
        cmocka_unit_test(test_structure),
        cmocka_unit_test(test_max_items),
        cmocka_unit_test(test_syntax_mutations),
        cmocka_unit_test(test_random_mutations),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_generic_path_only_for_odd_names),
    };
    return cmocka_run_group_tests(tests, load_schema, free_schema);
}
