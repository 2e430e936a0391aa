/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "cm-error.h"

/* Nesting deeper than this is refused while parsing, before any document is built. */
#define CM_JSON_MAX_DEPTH 32

static inline void cm_json_putp(json_object **o)
{
    if (*o)
        json_object_put(*o);
}
#define _cleanup_json_ _cleanup_(cm_json_putp)

/**
 * cm_json_parse:
 * Parses @len bytes of @text as exactly one JSON document: strict syntax, valid UTF-8, no NUL
 * byte inside any string, nesting at most CM_JSON_MAX_DEPTH, nothing but whitespace after it.
 * Returns: 0 and a new reference in @ret, or a negative errno with @err (CM_ERROR_INVALID)
 * naming where the text went wrong.
 */
int cm_json_parse(const char *text, size_t len, json_object **ret, CmError *err);

/**
 * cm_json_load_file:
 * Reads and parses the file at @path with cm_json_parse(), refusing files over @max_bytes.
 * Returns: 0 and a new reference in @ret, or a negative errno with @err set.
 */
int cm_json_load_file(const char *path, size_t max_bytes, json_object **ret, CmError *err);

/* Accessors that return a default when the member is absent or of another type. */
const char *cm_json_get_str(json_object *o, const char *key, const char *def);
int64_t cm_json_get_int(json_object *o, const char *key, int64_t def);
double cm_json_get_double(json_object *o, const char *key, double def);
bool cm_json_get_bool(json_object *o, const char *key, bool def);
json_object *cm_json_get(json_object *o, const char *key);

/**
 * cm_json_write:
 * Serializes @o compactly. A number that is not finite (NaN, Infinity) has no JSON spelling
 * (RFC 8259, section 6): it is refused, never written as `Infinity` or silently as null.
 * Returns: 0 with the text (owned by @o, valid until @o changes) in @ret_text and its length
 * in @ret_len, or -ERANGE with @err (CM_ERROR_INTERNAL, code `non_finite_number`) naming the
 * member's JSON pointer.
 */
int cm_json_write(json_object *o, const char **ret_text, size_t *ret_len, CmError *err);

/**
 * cm_json_to_string:
 * Returns: a compact serialization owned by @o (valid until @o changes), or NULL when @o holds
 * a number that is not finite (see cm_json_write(); the refusal is logged as an error).
 */
const char *cm_json_to_string(json_object *o, size_t *ret_len);

/** cm_json_new_string_or_null: Returns: a JSON string for @s, or JSON null when @s is NULL. */
json_object *cm_json_new_string_or_null(const char *s);

/**
 * cm_json_pointer_append:
 * Appends one reference token to the JSON pointer @base (escaping '~' and '/').
 * Returns: a newly allocated string, or NULL on allocation failure.
 */
char *cm_json_pointer_append(const char *base, const char *token);
