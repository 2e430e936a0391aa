/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <json-c/json.h>

#include "cm-cleanup.h"
#include "cm-error.h"

/*
 * A JSON Schema (draft-07) validator that supports exactly the keywords our schemas use:
 *
 *   type enum const
 *   properties required additionalProperties patternProperties propertyNames
 *   minProperties maxProperties
 *   items additionalItems minItems maxItems uniqueItems contains
 *   minLength maxLength pattern
 *   minimum maximum exclusiveMinimum exclusiveMaximum multipleOf
 *   allOf anyOf oneOf not if then else
 *   $ref $id definitions
 *   and the annotations $schema title description $comment examples default format
 *   ("format" validates nothing).
 *
 * Any other keyword makes compilation fail, so a typo or a keyword from a later draft can never be
 * silently ignored. The one exception is a member that a "$ref" points into (e.g. a private
 * definitions container named otherwise): it is compiled as the schema it is used as.
 * As draft-07 says, the keywords next to a "$ref" are checked at compile time but ignored when
 * validating.
 *
 * Patterns are ECMA-262 regexes limited to what POSIX extended regexes can express (classes,
 * \d \w \s and their negations, (?: ), lazy quantifiers); anything else is refused at compile
 * time. They match on code points, not bytes.
 *
 * Numbers compare exactly across json-c's int64, uint64 and double; multipleOf works on the
 * decimal digits (19.99 is a multiple of 0.01, although 19.99 / 0.01 is not an integer in binary
 * floating point).
 */

/* Nested schema evaluations for one value before validation gives up (recursive $ref). */
#define CM_SCHEMA_MAX_DEPTH 256

/* Largest schema file that cm_schema_load_file() reads. */
#define CM_SCHEMA_MAX_FILE_SIZE (4u * 1024u * 1024u)

typedef struct CmSchema CmSchema;

/**
 * cm_schema_compile:
 * Compiles the schema document @doc, taking its own reference to it; @doc must not be modified
 * afterwards. Every "$ref" is resolved now: inside @doc (JSON pointers, "$id" base URIs and
 * plain-name fragments), against documents registered with cm_schema_add_remote(), or against
 * the built-in draft-07 metaschema (http://json-schema.org/draft-07/schema#).
 * Returns: 0 and a new schema in @ret, or a negative errno with @err (CM_ERROR_INVALID, code
 * "invalid_schema") whose field is the JSON pointer of the offending keyword in the schema
 * (prefixed by "<uri>#" when it lies in a remote document).
 */
int cm_schema_compile(json_object *doc, CmSchema **ret, CmError *err);

/**
 * cm_schema_load_file:
 * Reads the schema at @path (at most CM_SCHEMA_MAX_FILE_SIZE bytes) and compiles it.
 * Returns: 0 and a new schema in @ret, or a negative errno with @err set; the message names
 * @path.
 */
int cm_schema_load_file(const char *path, CmSchema **ret, CmError *err);

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
 * rule. Returns -ELOOP with @err (CM_ERROR_INTERNAL, code "schema_recursion") when the schema
 * recursed more than CM_SCHEMA_MAX_DEPTH times, which is a bug in the schema.
 */
int cm_schema_validate(const CmSchema *s, json_object *instance, CmError *err);

/**
 * cm_schema_add_remote:
 * Makes a private copy of @doc available to later compilations as the document at the
 * absolute URI @uri (any fragment is ignored); replaces an earlier document with that URI.
 * Compiled schemas keep their own copies, so the registry may change at any time.
 * Returns: 0, or a negative errno with @err (CM_ERROR_INVALID for a relative URI,
 * CM_ERROR_INTERNAL when out of memory).
 */
int cm_schema_add_remote(const char *uri, json_object *doc, CmError *err);

/**
 * cm_schema_clear_remotes:
 * Forgets every document registered with cm_schema_add_remote().
 */
void cm_schema_clear_remotes(void);
