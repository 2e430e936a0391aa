/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The schema validator (common/cm-schema-*.c). The first byte chooses: one of the project's
 * schemas (the files in schemas/, as the broker compiles them) for the document that follows, or,
 * past their number, a schema made of the input itself up to a NUL byte and an instance
 * after it (the compiler must refuse or compile whatever it is given, never crash or hang).
 * An answer is the same twice; a refusal is a 422 with a code, a message and a field that is
 * a JSON pointer into the document (its parent there, for a member that is missing).
 */
#include <errno.h>
#include <string.h>

#include "br-schemas.h"
#include "cm-embedded.h"
#include "cm-json.h"
#include "cm-schema.h"
#include "cm-util.h"
#include "fuzz.h"

extern const CmEmbedded br_schema_files[];
extern const size_t br_schema_files_count;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    CmError err = {0};
    if (br_schemas_init(&err) < 0) {
        fprintf(stderr, "schemas: %s\n", err.message);
        abort();
    }
    return 0;
}

/* The value at JSON pointer @ptr in @doc (RFC 6901), or NULL. */
static json_object *resolve(json_object *doc, const char *ptr)
{
    char tok[256];

    while (*ptr) {
        size_t n = 0;
        if (*ptr++ != '/')
            return NULL;
        while (*ptr && *ptr != '/' && n + 1 < sizeof(tok)) {
            if (ptr[0] == '~' && (ptr[1] == '0' || ptr[1] == '1')) {
                tok[n++] = ptr[1] == '0' ? '~' : '/';
                ptr += 2;
            } else {
                tok[n++] = *ptr++;
            }
        }
        tok[n] = 0;
        if (json_object_is_type(doc, json_type_object)) {
            if (!json_object_object_get_ex(doc, tok, &doc))
                return NULL;
        } else if (json_object_is_type(doc, json_type_array)) {
            char *end;
            unsigned long i = strtoul(tok, &end, 10);
            if (!*tok || *end || i >= json_object_array_length(doc))
                return NULL;
            doc = json_object_array_get_idx(doc, i);
        } else {
            return NULL;
        }
    }
    return doc ? doc : (json_object *)1; /* JSON null is there too */
}

static void check_answer(const CmSchema *s, json_object *doc)
{
    CmError e1 = {0}, e2 = {0};
    int r1 = cm_schema_validate(s, doc, &e1);
    int r2 = cm_schema_validate(s, doc, &e2);

    FUZZ_CHECK(r1 == r2 && strcmp(e1.message, e2.message) == 0 && strcmp(e1.field, e2.field) == 0,
               "two answers: %d %s (%s), %d %s (%s)", r1, e1.field, e1.message, r2, e2.field,
               e2.message);
    FUZZ_CHECK(r1 == 0 || r1 == -EINVAL, "errno %d", r1);
    if (r1 == 0)
        return;
    FUZZ_CHECK(e1.kind == CM_ERROR_UNPROCESSABLE, "kind %d", e1.kind);
    FUZZ_CHECK(e1.code[0] && e1.message[0], "an answer without a code or message");
    FUZZ_CHECK(e1.field[0] == 0 || e1.field[0] == '/', "field '%s'", e1.field);
    /* A pointer that filled its buffer may be cut: only whole ones are looked up. */
    if (strlen(e1.field) + 1 < sizeof(e1.field)) {
        char parent[256];
        snprintf(parent, sizeof(parent), "%s", e1.field);
        if (!resolve(doc, parent)) {
            char *slash = strrchr(parent, '/');
            if (slash)
                *slash = 0;
            FUZZ_CHECK(resolve(doc, parent), "field '%s' is not in the document", e1.field);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_object *doc = NULL, *sdoc = NULL;
    CmSchema *schema = NULL;
    CmError err = {0};
    const char *text;
    size_t len;

    if (size < 1)
        return 0;
    text = (const char *)data + 1;
    len = size - 1;
    if (data[0] < br_schema_files_count) {
        const CmSchema *s = br_schema_get(br_schema_files[data[0]].name);
        FUZZ_CHECK(s, "schema %s", br_schema_files[data[0]].name);
        if (cm_json_parse(text, len, &doc, &err) == 0)
            check_answer(s, doc);
        json_object_put(doc);
        return 0;
    }
    const char *nul = memchr(text, 0, len);
    size_t slen = nul ? (size_t)(nul - text) : len;
    if (cm_json_parse(text, slen, &sdoc, &err) < 0)
        return 0;
    if (cm_schema_compile(sdoc, &schema, &err) == 0) {
        if (nul && cm_json_parse(nul + 1, len - slen - 1, &doc, &err) == 0)
            check_answer(schema, doc);
        else
            check_answer(schema, sdoc); /* the schema as its own instance */
        json_object_put(doc);
        cm_schema_free(schema);
    }
    json_object_put(sdoc);
    return 0;
}
