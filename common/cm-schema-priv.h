/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * What the three parts of the validator share: cm-schema-compile.c builds the tree of Nodes,
 * cm-schema-validate.c walks it, cm-schema-format.c writes its messages; cm-schema-regex.c
 * is the pattern matcher. Nothing outside common/cm-schema-*.c includes this header.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "cm-error.h"

enum {
    TYPE_NULL = 1u << 0,
    TYPE_BOOLEAN = 1u << 1,
    TYPE_OBJECT = 1u << 2,
    TYPE_ARRAY = 1u << 3,
    TYPE_NUMBER = 1u << 4,
    TYPE_STRING = 1u << 5,
    TYPE_INTEGER = 1u << 6,
};

/* A compiled "pattern": see cm-schema-regex.c. */
typedef struct CmSchemaRegex CmSchemaRegex;

typedef struct {
    bool set;
    long double v; /* exact for every int64, uint64 and double (checked in cm-schema-format.c) */
    char text[40]; /* its shortest text, for messages */
} Bound;

typedef struct Node Node;

typedef struct {
    const Node **v;
    size_t n;
} NodeList;

typedef struct {
    const char *key; /* borrowed from the schema document */
    const Node *node;
    bool required; /* listed in "required" too */
} Prop;

/* One schema object; the booleans true and false are the two static Nodes below. */
struct Node {
    unsigned types;          /* TYPE_* bits; 0 when there is no "type" */
    json_object *enum_value; /* borrowed array, or NULL */
    bool has_const;
    json_object *const_value; /* borrowed; NULL is JSON null */
    /* what completes "must be ..." in messages: "one of: a, b", "equal to ...", "an integer
     * >= 1", and the type error, "a string or null" (or one of the others) */
    char *enum_text, *const_text, *number_text, *type_text;

    Bound minimum, exclusive_minimum, maximum, exclusive_maximum;
    bool has_bounds;

    uint64_t min_length, max_length; /* 0 and UINT64_MAX when absent, as every count below */
    CmSchemaRegex *pattern;
    const char *pattern_text;

    const Node *items;
    uint64_t min_items, max_items;
    bool unique_items;

    Prop *props;
    size_t n_props;
    uint32_t *prop_slots; /* a hash table of props: index + 1, or 0 for a free slot */
    uint32_t prop_mask;
    const Node *additional_props;
    const char **required; /* borrowed */
    size_t n_required;
    uint64_t min_props, max_props;

    NodeList all_of, any_of;
    const Node *not_node, *if_node, *then_node;
};

extern const Node cm_schema_node_true, cm_schema_node_false;

/* The hash of a member name in Node.prop_slots. */
static inline uint32_t cm_schema_key_hash(const char *key)
{
    uint32_t h = 2166136261u;
    for (; *key; key++)
        h = (h ^ (unsigned char)*key) * 16777619u;
    return h;
}

struct CmSchema {
    const Node *root;
    Node **nodes;
    size_t n_nodes;
    json_object *doc; /* our reference: the Nodes borrow keys and values from it */
};

/* ---- cm-schema-format.c ---- */

/* A number of the document as a comparable value. */
long double cm_schema_number(json_object *o);

/* Sets @b from the number @o. Returns: 0, or -EINVAL when @o is not a number. */
int cm_schema_bound_set(Bound *b, json_object *o);

/* Equality as JSON Schema defines it: numbers by value (1 == 1.0), objects in any order. */
bool cm_schema_json_equal(json_object *a, json_object *b);

/* Writes the texts of @n once its keywords are read. Returns: 0 or -ENOMEM. */
int cm_schema_node_texts(Node *n);

/* A pointer to the instance location, as a chain of stack frames: nothing is allocated. */
typedef struct PathSeg {
    const struct PathSeg *up;
    const char *key; /* NULL for an array element */
    size_t index;
} PathSeg;

/* Fills @err (CM_ERROR_UNPROCESSABLE, @code, field from @path) unless it is NULL.
 * Returns: -EINVAL. */
int cm_schema_fail(CmError *err, const PathSeg *path, const char *code, const char *fmt, ...)
    _printf_(4, 5);

/* ---- cm-schema-regex.c ---- */

/* Returns: 0 and the program in @ret, -ENOMEM, or -EINVAL with a reason in @why. */
int cm_schema_regex_compile(const char *src, CmSchemaRegex **ret, const char **why);

/* Frees @re, which may be NULL. Returns: NULL. */
CmSchemaRegex *cm_schema_regex_free(CmSchemaRegex *re);

/* Whether the regex matches anywhere in the @len bytes of UTF-8 at @s (unanchored search). */
bool cm_schema_regex_search(const CmSchemaRegex *re, const char *s, size_t len);
