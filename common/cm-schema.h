/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <json-c/json.h>

#include "cm-cleanup.h"
#include "cm-error.h"

/*
 * A JSON Schema (draft-07) validator sized to the schemas of this project (those in schemas/): it
 * knows exactly the keywords they use, with the plain bounds next to them,
 *
 *   type enum const
 *   properties additionalProperties required minProperties maxProperties
 *   items (one schema for every item) minItems maxItems uniqueItems
 *   minLength maxLength pattern
 *   minimum maximum exclusiveMinimum exclusiveMaximum
 *   allOf anyOf not if then
 *   and the annotations $schema (draft-07 only) $comment title description,
 *
 * and refuses any other keyword when the schema is compiled (no $ref, $id, definitions, else,
 * oneOf, format, default, ...), so a typo or a keyword it does not implement can never be
 * silently ignored. To use another keyword, implement it in common/cm-schema-*.c and enable
 * its file of the JSON-Schema-Test-Suite in tests/unit/test-cm-schema.c.
 *
 * Patterns are ECMA-262 regexes limited to literal characters, escaped punctuation, ".",
 * classes, groups, "|", "^", "$" and greedy quantifiers (cm-schema-regex.c); anything else is
 * refused at compile time. They match on code points, in time linear in the string.
 *
 * Numbers compare exactly across json-c's int64, uint64 and double.
 */

typedef struct CmSchema CmSchema;

/**
 * cm_schema_compile:
 * Compiles the schema document @doc, taking its own reference to it; @doc must not be modified
 * afterwards.
 * Returns: 0 and a new schema in @ret, or a negative errno with @err (CM_ERROR_INVALID, code
 * "invalid_schema") whose field is the JSON pointer of the offending keyword in the schema; an
 * unknown keyword is named in the message with that pointer.
 */
int cm_schema_compile(json_object *doc, CmSchema **ret, CmError *err);

/**
 * cm_schema_free:
 * Frees @s, which may be NULL.
 * Returns: NULL.
 */
CmSchema *cm_schema_free(CmSchema *s);

CM_DEFINE_TRIVIAL_CLEANUP_FUNC(CmSchema *, cm_schema_free)

/**
 * cm_schema_validate:
 * Validates @instance (JSON null is NULL) against @s. Safe to call from several threads at once
 * on one schema; it changes neither @s nor @instance. The first violation found is reported,
 * walking arrays and objects in document order.
 * Returns: 0 when @instance is valid; -EINVAL with @err (CM_ERROR_UNPROCESSABLE) when it is not:
 * field is the JSON pointer of the offending location in @instance (for a missing required member
 * or a member that is not allowed, the pointer of that member), code is "wrong_type",
 * "missing_field", "unknown_field" or "schema_violation", message is a sentence naming the
 * rule.
 */
int cm_schema_validate(const CmSchema *s, json_object *instance, CmError *err);
