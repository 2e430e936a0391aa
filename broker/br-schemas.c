/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "br-schemas.h"
#include "cm-embedded.h"
#include "cm-json.h"
#include "cm-schema.h"

extern const CmEmbedded br_schema_files[];
extern const size_t br_schema_files_count;

static CmSchema **compiled;

int br_schemas_init(CmError *err)
{
    if (compiled)
        return 0;
    compiled = calloc(br_schema_files_count, sizeof(*compiled));
    if (!compiled)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    for (size_t i = 0; i < br_schema_files_count; i++) {
        _cleanup_json_ json_object *doc = NULL;
        int r = cm_json_parse(br_schema_files[i].text, br_schema_files[i].len, &doc, err);
        if (r >= 0)
            r = cm_schema_compile(doc, &compiled[i], err);
        if (r < 0) {
            char prefix[128];
            snprintf(prefix, sizeof(prefix), "schema %s", br_schema_files[i].name);
            cm_error_prefix_message(err, prefix);
            br_schemas_free();
            return r;
        }
    }
    return 0;
}

void br_schemas_free(void)
{
    if (!compiled)
        return;
    for (size_t i = 0; i < br_schema_files_count; i++)
        cm_schema_free(compiled[i]);
    free(compiled);
    compiled = NULL;
}

const CmSchema *br_schema_get(const char *name)
{
    if (!compiled)
        return NULL;
    for (size_t i = 0; i < br_schema_files_count; i++)
        if (strcmp(br_schema_files[i].name, name) == 0)
            return compiled[i];
    return NULL;
}

int br_schema_check(const char *name, json_object *doc, CmError *err)
{
    const CmSchema *s = br_schema_get(name);
    if (!s)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "no schema named %s", name);
    return cm_schema_validate(s, doc, err);
}
