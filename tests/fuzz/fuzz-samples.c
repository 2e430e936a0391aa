/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The samples fast path (broker/br-samples-parse.c) against the generic path it stands in
 * for on POST /v1/samples: cm_json_parse() + schemas/samples.json. Both must accept the same
 * documents and refuse with the same answer; what is accepted must hold the values json-c's
 * tree holds; the one pass alone (br_samples_parse_strict()) refuses nothing the generic path
 * accepts but documents with \u escapes in member names.
 */
#include <errno.h>
#include <string.h>

#include "br-samples-parse.h"
#include "br-schemas.h"
#include "cm-json.h"
#include "fuzz.h"

static BrSamplesBatch batch;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    CmError err = {0};
    if (br_schemas_init(&err) < 0) {
        fprintf(stderr, "schemas: %s\n", err.message);
        abort();
    }
    return 0;
}

static void compare_values(json_object *doc)
{
    for (int l = 0; l < BR_SAMPLES_LIST_MAX; l++) {
        json_object *arr = cm_json_get(doc, br_samples_list_name((BrSamplesList)l));
        size_t n = arr ? json_object_array_length(arr) : 0;
        FUZZ_CHECK(batch.n[l] == n, "%s: %zu records, json-c %zu",
                   br_samples_list_name((BrSamplesList)l), batch.n[l], n);
        for (size_t i = 0; i < n; i++) {
            json_object *rec = json_object_array_get_idx(arr, i);
            const BrSample *s = &batch.items[l][i];
            for (int f = 0; f < BR_SF_MAX; f++) {
                const char *key = br_sample_field_name((BrSampleField)f);
                json_object *v = NULL;
                bool there = json_object_object_get_ex(rec, key, &v) && v;
                FUZZ_CHECK(there == br_sample_has(s, (BrSampleField)f), "%s: json-c %s it", key,
                           there ? "has" : "has not");
                if (!there)
                    continue;
                switch (br_sample_field_kind((BrSampleField)f)) {
                case BR_SAMPLE_VALUE_INT:
                    FUZZ_CHECK(s->v[f].i == cm_json_get_int(rec, key, 0), "%s: %lld, json-c %lld",
                               key, (long long)s->v[f].i, (long long)cm_json_get_int(rec, key, 0));
                    break;
                case BR_SAMPLE_VALUE_NUMBER: {
                    double d = json_object_get_double(v);
                    FUZZ_CHECK(memcmp(&d, &s->v[f].d, sizeof(d)) == 0, "%s: %.17g, json-c %.17g",
                               key, s->v[f].d, d);
                    break;
                }
                case BR_SAMPLE_VALUE_TEXT: {
                    const char *want = json_object_get_string(v);
                    size_t want_len = (size_t)json_object_get_string_len(v);
                    const char *got = f == BR_SF_UUID   ? s->uuid
                                      : f == BR_SF_NAME ? br_sample_name(&batch, s)
                                                        : s->memory_source;
                    size_t got_len = f == BR_SF_NAME ? s->name_len : strlen(got);
                    FUZZ_CHECK(got_len == want_len && memcmp(got, want, want_len) == 0,
                               "%s: '%s', json-c '%s'", key, got, want);
                    break;
                }
                }
            }
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    CmError ge = {0}, fe = {0}, se = {0};
    json_object *doc = NULL;
    int gr, fr, sr;

    gr = cm_json_parse(text, size, &doc, &ge);
    if (gr >= 0)
        gr = br_schema_check("samples", doc, &ge);
    fr = br_samples_parse(text, size, &batch, &fe);
    FUZZ_CHECK((gr < 0) == (fr < 0), "generic %s (%s %s: %s), fast path %s (%s %s: %s)",
               gr < 0 ? "refuses" : "accepts", ge.code, ge.field, ge.message,
               fr < 0 ? "refuses" : "accepts", fe.code, fe.field, fe.message);
    if (gr < 0) {
        FUZZ_CHECK(gr == fr && ge.kind == fe.kind && strcmp(ge.code, fe.code) == 0 &&
                       strcmp(ge.field, fe.field) == 0 && strcmp(ge.message, fe.message) == 0,
                   "answers differ: generic %d %s '%s' (%s), fast path %d %s '%s' (%s)", ge.kind,
                   ge.code, ge.field, ge.message, fe.kind, fe.code, fe.field, fe.message);
    } else {
        compare_values(doc);
    }
    sr = br_samples_parse_strict(text, size, &batch, &se);
    if (gr < 0) {
        FUZZ_CHECK(sr == -EAGAIN, "the one pass accepts what the generic path refuses");
    } else if (sr == -EAGAIN) {
        FUZZ_CHECK(memmem(text, size, "\\u", 2) != NULL,
                   "the one pass gives up on a valid document without \\u escapes");
    } else {
        FUZZ_CHECK(sr == 0, "the one pass failed: %d", sr);
        compare_values(doc);
    }
    json_object_put(doc);
    br_samples_batch_clear(&batch);
    return 0;
}
