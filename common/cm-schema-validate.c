/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "cm-schema-priv.h"
#include "cm-schema.h"

/*
 * The walk of an instance along the tree of Nodes. It reads the tree only, so many threads may
 * share a schema; it allocates nothing, and its depth is that of the schema, which compilation
 * bounds. With err NULL a check only answers whether the value is valid (anyOf, not, if).
 */

static int check(const Node *n, json_object *inst, const PathSeg *path, CmError *err);

static unsigned instance_types(json_object *o)
{
    static const unsigned bits[] = {
        [json_type_null] = TYPE_NULL,     [json_type_boolean] = TYPE_BOOLEAN,
        [json_type_double] = TYPE_NUMBER, [json_type_int] = TYPE_NUMBER | TYPE_INTEGER,
        [json_type_object] = TYPE_OBJECT, [json_type_array] = TYPE_ARRAY,
        [json_type_string] = TYPE_STRING,
    };
    json_type t = json_object_get_type(o);
    double d = t == json_type_double ? json_object_get_double(o) : 0.5;

    return bits[t] | (isfinite(d) && d == trunc(d) ? TYPE_INTEGER : 0);
}

/* "must have at least 2 items": a count against its limits. */
static int check_count(uint64_t count, uint64_t min, uint64_t max, const char *verb,
                       const char *what, const PathSeg *path, CmError *err)
{
    bool few = count < min;

    if (!few && count <= max)
        return 0;
    return cm_schema_fail(err, path, "schema_violation", "must %s %s %" PRIu64 " %s%s", verb,
                          few ? "at least" : "at most", few ? min : max, what,
                          (few ? min : max) == 1 ? "" : "s");
}

static int check_number(const Node *n, json_object *inst, const PathSeg *path, CmError *err)
{
    long double x;

    if (!n->has_bounds)
        return 0;
    x = cm_schema_number(inst);
    if ((n->minimum.set && x < n->minimum.v) ||
        (n->exclusive_minimum.set && x <= n->exclusive_minimum.v) ||
        (n->maximum.set && x > n->maximum.v) ||
        (n->exclusive_maximum.set && x >= n->exclusive_maximum.v))
        return cm_schema_fail(err, path, "schema_violation", "must be %s", n->number_text);
    return 0;
}

static int check_string(const Node *n, json_object *inst, const PathSeg *path, CmError *err)
{
    const char *s = json_object_get_string(inst);
    size_t len = (size_t)json_object_get_string_len(inst), chars = 0;

    int r = 0;

    if (n->min_length || n->max_length != UINT64_MAX) {
        /* code points, as JSON Schema counts: the parser has checked the UTF-8 */
        for (size_t i = 0; i < len; i++)
            chars += ((unsigned char)s[i] & 0xc0) != 0x80;
        r = check_count(chars, n->min_length, n->max_length, "be", "character", path, err);
    }
    if (r < 0)
        return r;
    if (n->pattern && !cm_schema_regex_search(n->pattern, s, len))
        return cm_schema_fail(err, path, "schema_violation", "must match the pattern %s",
                              n->pattern_text);
    return 0;
}

static int check_array(const Node *n, json_object *inst, const PathSeg *path, CmError *err)
{
    size_t len = json_object_array_length(inst);
    int r = check_count(len, n->min_items, n->max_items, "have", "item", path, err);

    for (size_t i = 0; r == 0 && n->items && i < len; i++) {
        PathSeg seg = {.up = path, .index = i};
        r = check(n->items, json_object_array_get_idx(inst, i), &seg, err);
    }
    if (r < 0)
        return r;
    /* pairwise: the arrays that ask for it are short (maxItems) */
    for (size_t j = 1; n->unique_items && j < len; j++)
        for (size_t i = 0; i < j; i++)
            if (cm_schema_json_equal(json_object_array_get_idx(inst, i),
                                     json_object_array_get_idx(inst, j))) {
                PathSeg seg = {.up = path, .index = j};
                return cm_schema_fail(err, &seg, "schema_violation",
                                      "must not repeat item %zu (items must be unique)", i);
            }
    return 0;
}

static const Prop *prop_find(const Node *n, const char *key)
{
    uint32_t h = cm_schema_key_hash(key), slot;

    if (!n->prop_slots)
        return NULL;
    for (; (slot = n->prop_slots[h & n->prop_mask]) != 0; h++)
        if (strcmp(n->props[slot - 1].key, key) == 0)
            return &n->props[slot - 1];
    return NULL;
}

static int check_object(const Node *n, json_object *inst, const PathSeg *path, CmError *err)
{
    uint64_t count = (uint64_t)json_object_object_length(inst);
    int r = check_count(count, n->min_props, n->max_props, "have", "field", path, err);

    size_t found = 0; /* members that are required: when all are there, none is missing */

    if (r < 0)
        return r;
    if (n->props || n->additional_props) {
        /* members in document order: the first one that is wrong is the one reported */
        json_object_object_foreach(inst, key, val)
        {
            PathSeg seg = {.up = path, .key = key};
            const Prop *prop = prop_find(n, key);
            const Node *sub = prop ? prop->node : NULL;

            if (sub == &cm_schema_node_false)
                return cm_schema_fail(err, &seg, "unknown_field", "field is not allowed");
            found += prop && prop->required;
            if (!sub && n->additional_props == &cm_schema_node_false)
                return cm_schema_fail(err, &seg, "unknown_field",
                                      "unknown field (additionalProperties is false)");
            sub = sub ? sub : n->additional_props;
            r = sub ? check(sub, val, &seg, err) : 0;
            if (r < 0)
                return r;
        }
    }
    for (size_t i = 0; found < n->n_required && i < n->n_required; i++) {
        if (!json_object_object_get_ex(inst, n->required[i], NULL)) {
            PathSeg seg = {.up = path, .key = n->required[i]};
            return cm_schema_fail(err, &seg, "missing_field", "missing required field");
        }
    }
    return 0;
}

/* Whether @n could accept a value of types @types at all: among the alternatives of an anyOf
 * that all failed, the only one that admits the type has the error worth reporting. */
static bool admits(const Node *n, unsigned types)
{
    if (n == &cm_schema_node_true || n == &cm_schema_node_false)
        return n == &cm_schema_node_true;
    return !n->types || (n->types & types);
}

static int check_any_of(const Node *n, json_object *inst, const PathSeg *path, CmError *err)
{
    const Node *only = NULL;
    size_t admitting = 0;
    unsigned types;

    for (size_t i = 0; i < n->any_of.n; i++)
        if (check(n->any_of.v[i], inst, path, NULL) == 0)
            return 0;
    if (!err)
        return -EINVAL;
    types = instance_types(inst);
    for (size_t i = 0; i < n->any_of.n; i++)
        if (admits(n->any_of.v[i], types)) {
            only = n->any_of.v[i];
            admitting++;
        }
    if (admitting == 1)
        return check(only, inst, path, err);
    return cm_schema_fail(err, path, "schema_violation",
                          "must match at least one of the allowed schemas (anyOf)");
}

static int check(const Node *n, json_object *inst, const PathSeg *path, CmError *err)
{
    int r = 0;

    if (n == &cm_schema_node_true)
        return 0;
    if (n == &cm_schema_node_false)
        return cm_schema_fail(err, path, "schema_violation", "is not allowed here");
    if (n->types && !(n->types & instance_types(inst)))
        return cm_schema_fail(err, path, "wrong_type", "must be %s", n->type_text);
    if (n->has_const && !cm_schema_json_equal(inst, n->const_value))
        return cm_schema_fail(err, path, "schema_violation", "must be %s", n->const_text);
    if (n->enum_value) {
        size_t count = json_object_array_length(n->enum_value), i = 0;
        while (i < count &&
               !cm_schema_json_equal(inst, json_object_array_get_idx(n->enum_value, i)))
            i++;
        if (i == count)
            return cm_schema_fail(err, path, "schema_violation", "must be %s", n->enum_text);
    }
    switch (json_object_get_type(inst)) {
    case json_type_int:
    case json_type_double:
        r = check_number(n, inst, path, err);
        break;
    case json_type_string:
        r = check_string(n, inst, path, err);
        break;
    case json_type_array:
        r = check_array(n, inst, path, err);
        break;
    case json_type_object:
        r = check_object(n, inst, path, err);
        break;
    default:
        break;
    }
    for (size_t i = 0; r == 0 && i < n->all_of.n; i++)
        r = check(n->all_of.v[i], inst, path, err);
    if (r == 0 && n->any_of.n)
        r = check_any_of(n, inst, path, err);
    if (r == 0 && n->not_node && check(n->not_node, inst, path, NULL) == 0)
        r = cm_schema_fail(err, path, "schema_violation",
                           "must not match the excluded schema (not)");
    if (r == 0 && n->if_node && n->then_node && check(n->if_node, inst, path, NULL) == 0)
        r = check(n->then_node, inst, path, err);
    return r;
}

int cm_schema_validate(const CmSchema *s, json_object *instance, CmError *err)
{
    return check(s->root, instance, NULL, err);
}
