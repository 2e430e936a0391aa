/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm-json.h"
#include "cm-schema-priv.h"
#include "cm-schema.h"

/*
 * Compilation checks every keyword and turns the schema document into a tree of Nodes with
 * everything pre-digested (patterns compiled, limits parsed, message texts written), so that
 * validation does no lookup, no parsing and no allocation.
 */

/* Deeper schema documents are refused; the JSON parser already stops at CM_JSON_MAX_DEPTH. */
#define COMPILE_MAX_DEPTH 64

#define streq(a, b) (strcmp((a), (b)) == 0)

const Node cm_schema_node_true, cm_schema_node_false;

typedef struct {
    CmSchema *s;
    CmError *err;
} Compiler;

#define compile_error(c, ptr, ...)                                                                 \
    cm_error_set_code((c)->err, CM_ERROR_INVALID, "invalid_schema", (ptr), __VA_ARGS__)

static int oom(Compiler *c)
{
    cm_error_set(c->err, CM_ERROR_INTERNAL, "", "out of memory");
    return -ENOMEM;
}

static void node_free(Node *n)
{
    free(n->enum_text);
    free(n->const_text);
    free(n->number_text);
    free(n->type_text);
    cm_schema_regex_free(n->pattern);
    free(n->props);
    free(n->prop_slots);
    free(n->required);
    free(n->all_of.v);
    free(n->any_of.v);
    free(n);
}

CmSchema *cm_schema_free(CmSchema *s)
{
    if (!s)
        return NULL;
    for (size_t i = 0; i < s->n_nodes; i++)
        node_free(s->nodes[i]);
    free(s->nodes);
    json_object_put(s->doc);
    free(s);
    return NULL;
}

static Node *node_new(Compiler *c)
{
    Node **arr = reallocarray(c->s->nodes, c->s->n_nodes + 1, sizeof(*arr));
    Node *n;

    if (!arr)
        return NULL;
    c->s->nodes = arr;
    n = calloc(1, sizeof(*n));
    if (!n)
        return NULL;
    n->max_length = n->max_items = n->max_props = UINT64_MAX;
    c->s->nodes[c->s->n_nodes++] = n;
    return n;
}

static int compile_node(Compiler *c, json_object *o, const char *ptr, unsigned depth,
                        const Node **ret);

static int compile_child(Compiler *c, json_object *o, const char *ptr, const char *token,
                         unsigned depth, const Node **ret)
{
    _cleanup_free_ char *child = cm_json_pointer_append(ptr, token);
    if (!child)
        return oom(c);
    return compile_node(c, o, child, depth + 1, ret);
}

/* ---- keywords ---- */

typedef int (*KeywordFunc)(Compiler *c, Node *n, json_object *v, const char *ptr, unsigned depth);

static int kw_schema_uri(Compiler *c, Node *n, json_object *v, const char *ptr, unsigned depth)
{
    static const char draft[] = "http://json-schema.org/draft-07/schema#";

    if (!streq(json_object_get_string(v), draft))
        return compile_error(c, ptr, "only draft-07 schemas (\"%s\") are supported", draft);
    return 0;
}

static int kw_type(Compiler *c, Node *n, json_object *v, const char *ptr, unsigned depth)
{
    static const char *const names[] = {"null",   "boolean", "object", "array",
                                        "number", "string",  "integer"}; /* as the TYPE_ bits */
    bool list = json_object_is_type(v, json_type_array);
    size_t count = list ? json_object_array_length(v) : 1;

    if ((!list && !json_object_is_type(v, json_type_string)) || count == 0)
        return compile_error(c, ptr, "must be a type name or a non-empty array of type names");
    for (size_t i = 0; i < count; i++) {
        json_object *t = list ? json_object_array_get_idx(v, i) : v;
        const char *name =
            json_object_is_type(t, json_type_string) ? json_object_get_string(t) : "(not a string)";
        unsigned bit = 0;

        for (size_t k = 0; k < ELEMENTSOF(names); k++)
            if (streq(name, names[k]))
                bit = 1u << k;
        if (!bit)
            return compile_error(c, ptr, "unknown type \"%s\"", name);
        if (n->types & bit)
            return compile_error(c, ptr, "type \"%s\" is listed twice", name);
        n->types |= bit;
    }
    return 0;
}

static int kw_enum(Compiler *c, Node *n, json_object *v, const char *ptr, unsigned depth)
{
    if (json_object_array_length(v) == 0)
        return compile_error(c, ptr, "must be a non-empty array");
    n->enum_value = v;
    return 0;
}

static int kw_const(Compiler *c, Node *n, json_object *v, const char *ptr, unsigned depth)
{
    n->has_const = true;
    n->const_value = v;
    return 0;
}

static int kw_properties(Compiler *c, Node *n, json_object *v, const char *ptr, unsigned depth)
{
    size_t count = (size_t)json_object_object_length(v);

    /* at most half full, so that a lookup rarely compares more than one key */
    for (n->prop_mask = 1; n->prop_mask < 2 * count; n->prop_mask *= 2)
        ;
    n->props = calloc(count + 1, sizeof(*n->props));
    n->prop_slots = calloc(n->prop_mask--, sizeof(*n->prop_slots));
    if (!n->props || !n->prop_slots)
        return oom(c);
    json_object_object_foreach(v, key, val)
    {
        Prop *p = &n->props[n->n_props++];
        uint32_t h = cm_schema_key_hash(key);
        int r = compile_child(c, val, ptr, key, depth, &p->node);

        if (r < 0)
            return r;
        p->key = key;
        while (n->prop_slots[h & n->prop_mask])
            h++;
        n->prop_slots[h & n->prop_mask] = (uint32_t)n->n_props;
    }
    return 0;
}

static int kw_required(Compiler *c, Node *n, json_object *v, const char *ptr, unsigned depth)
{
    size_t count;

    if (!json_object_is_type(v, json_type_array))
        return compile_error(c, ptr, "must be an array of strings");
    count = json_object_array_length(v);
    n->required = calloc(count + 1, sizeof(*n->required));
    if (!n->required)
        return oom(c);
    for (size_t i = 0; i < count; i++) {
        json_object *e = json_object_array_get_idx(v, i);
        if (!json_object_is_type(e, json_type_string))
            return compile_error(c, ptr, "must be an array of strings");
        for (size_t j = 0; j < i; j++)
            if (streq(n->required[j], json_object_get_string(e)))
                return compile_error(c, ptr, "\"%s\" is listed twice", n->required[j]);
        n->required[n->n_required++] = json_object_get_string(e);
    }
    return 0;
}

static int kw_items(Compiler *c, Node *n, json_object *v, const char *ptr, unsigned depth)
{
    if (json_object_is_type(v, json_type_array))
        return compile_error(c, ptr,
                             "unsupported form of \"items\": an array (only one schema "
                             "for every item is supported)");
    return compile_node(c, v, ptr, depth + 1, &n->items);
}

static int kw_unique_items(Compiler *c, Node *n, json_object *v, const char *ptr, unsigned depth)
{
    n->unique_items = json_object_get_boolean(v);
    return 0;
}

static int kw_pattern(Compiler *c, Node *n, json_object *v, const char *ptr, unsigned depth)
{
    const char *why = NULL;
    int r;

    n->pattern_text = json_object_get_string(v);
    r = cm_schema_regex_compile(n->pattern_text, &n->pattern, &why);
    if (r == -ENOMEM)
        return oom(c);
    if (r < 0)
        return compile_error(c, ptr, "regex \"%s\": %s", n->pattern_text, why);
    return 0;
}

/* How a keyword's value is read: a kind of value, then where it goes in the Node. */
typedef enum {
    KW_ANNOTATION, /* a string that validates nothing */
    KW_SCHEMA,     /* one schema, a const Node * at .offset */
    KW_SCHEMAS,    /* a non-empty array of schemas, a NodeList at .offset */
    KW_COUNT,      /* a non-negative integer, a uint64_t at .offset */
    KW_BOUND,      /* a number, a Bound at .offset */
    KW_OTHER,      /* .func, once the value has the JSON type .type (null: any) */
} KeywordKind;

/* Every keyword the validator knows. Anything else is refused: see cm-schema.h. */
static const struct {
    const char *name;
    KeywordKind kind;
    size_t offset;
    KeywordFunc func;
    json_type type;
} keywords[] = {
    {"$comment", KW_ANNOTATION},
    {"title", KW_ANNOTATION},
    {"description", KW_ANNOTATION},
    {"$schema", KW_OTHER, 0, kw_schema_uri, json_type_string},
    {"type", KW_OTHER, 0, kw_type, json_type_null},
    {"enum", KW_OTHER, 0, kw_enum, json_type_array},
    {"const", KW_OTHER, 0, kw_const, json_type_null},
    {"properties", KW_OTHER, 0, kw_properties, json_type_object},
    {"additionalProperties", KW_SCHEMA, offsetof(Node, additional_props)},
    {"required", KW_OTHER, 0, kw_required, json_type_null},
    {"minProperties", KW_COUNT, offsetof(Node, min_props)},
    {"maxProperties", KW_COUNT, offsetof(Node, max_props)},
    {"items", KW_OTHER, 0, kw_items, json_type_null},
    {"minItems", KW_COUNT, offsetof(Node, min_items)},
    {"maxItems", KW_COUNT, offsetof(Node, max_items)},
    {"uniqueItems", KW_OTHER, 0, kw_unique_items, json_type_boolean},
    {"minLength", KW_COUNT, offsetof(Node, min_length)},
    {"maxLength", KW_COUNT, offsetof(Node, max_length)},
    {"pattern", KW_OTHER, 0, kw_pattern, json_type_string},
    {"minimum", KW_BOUND, offsetof(Node, minimum)},
    {"maximum", KW_BOUND, offsetof(Node, maximum)},
    {"exclusiveMinimum", KW_BOUND, offsetof(Node, exclusive_minimum)},
    {"exclusiveMaximum", KW_BOUND, offsetof(Node, exclusive_maximum)},
    {"allOf", KW_SCHEMAS, offsetof(Node, all_of)},
    {"anyOf", KW_SCHEMAS, offsetof(Node, any_of)},
    {"not", KW_SCHEMA, offsetof(Node, not_node)},
    {"if", KW_SCHEMA, offsetof(Node, if_node)},
    {"then", KW_SCHEMA, offsetof(Node, then_node)},
};

static const char *const type_words[] = {
    [json_type_boolean] = "a boolean",
    [json_type_array] = "an array",
    [json_type_object] = "an object",
    [json_type_string] = "a string",
};

static int compile_count(Compiler *c, json_object *v, const char *ptr, uint64_t *ret)
{
    long double x = cm_schema_number(v);

    if ((!json_object_is_type(v, json_type_int) && !json_object_is_type(v, json_type_double)) ||
        x < 0 || x != truncl(x))
        return compile_error(c, ptr, "must be a non-negative integer");
    /* a limit above INT64_MAX can never be reached; INT64_MAX says the same */
    *ret = x > INT64_MAX ? INT64_MAX : (uint64_t)x;
    return 0;
}

static int compile_schemas(Compiler *c, json_object *v, const char *ptr, unsigned depth,
                           NodeList *ret)
{
    size_t n = json_object_is_type(v, json_type_array) ? json_object_array_length(v) : 0;

    if (n == 0)
        return compile_error(c, ptr, "must be a non-empty array of schemas");
    ret->v = calloc(n, sizeof(*ret->v)); /* owned by the node from here on */
    if (!ret->v)
        return oom(c);
    for (; ret->n < n; ret->n++) {
        char idx[24];
        snprintf(idx, sizeof(idx), "%zu", ret->n);
        int r = compile_child(c, json_object_array_get_idx(v, ret->n), ptr, idx, depth,
                              &ret->v[ret->n]);
        if (r < 0)
            return r;
    }
    return 0;
}

static int compile_keyword(Compiler *c, Node *n, const char *key, json_object *v, const char *ptr,
                           unsigned depth)
{
    char *field = (char *)n;
    size_t k = 0;

    while (k < ELEMENTSOF(keywords) && !streq(keywords[k].name, key))
        k++;
    if (k == ELEMENTSOF(keywords))
        return compile_error(c, ptr, "unsupported keyword \"%s\" at %s", key, ptr);
    switch (keywords[k].kind) {
    case KW_ANNOTATION:
        if (!json_object_is_type(v, json_type_string))
            return compile_error(c, ptr, "must be a string");
        return 0;
    case KW_SCHEMA:
        return compile_node(c, v, ptr, depth + 1, (const Node **)(field + keywords[k].offset));
    case KW_SCHEMAS:
        return compile_schemas(c, v, ptr, depth, (NodeList *)(field + keywords[k].offset));
    case KW_COUNT:
        return compile_count(c, v, ptr, (uint64_t *)(field + keywords[k].offset));
    case KW_BOUND:
        n->has_bounds = true;
        if (cm_schema_bound_set((Bound *)(field + keywords[k].offset), v) < 0)
            return compile_error(c, ptr, "must be a number");
        return 0;
    case KW_OTHER:
        if (keywords[k].type != json_type_null && !json_object_is_type(v, keywords[k].type))
            return compile_error(c, ptr, "must be %s", type_words[keywords[k].type]);
        return keywords[k].func(c, n, v, ptr, depth);
    }
    return 0;
}

static int compile_node(Compiler *c, json_object *o, const char *ptr, unsigned depth,
                        const Node **ret)
{
    Node *n;

    if (depth > COMPILE_MAX_DEPTH)
        return compile_error(c, ptr, "schema is nested more than %d levels deep",
                             COMPILE_MAX_DEPTH);
    if (json_object_is_type(o, json_type_boolean)) {
        *ret = json_object_get_boolean(o) ? &cm_schema_node_true : &cm_schema_node_false;
        return 0;
    }
    if (!json_object_is_type(o, json_type_object))
        return compile_error(c, ptr, "a schema must be an object or a boolean");
    n = node_new(c);
    if (!n)
        return oom(c);
    *ret = n;
    json_object_object_foreach(o, key, val)
    {
        _cleanup_free_ char *kptr = cm_json_pointer_append(ptr, key);
        int r;

        if (!kptr)
            return oom(c);
        r = compile_keyword(c, n, key, val, kptr, depth);
        if (r < 0)
            return r;
    }
    for (size_t i = 0; i < n->n_required; i++)
        for (size_t k = 0; k < n->n_props; k++)
            n->props[k].required |= streq(n->props[k].key, n->required[i]);
    return cm_schema_node_texts(n) < 0 ? oom(c) : 0;
}

int cm_schema_compile(json_object *doc, CmSchema **ret, CmError *err)
{
    _cleanup_(cm_schema_freep) CmSchema *s = calloc(1, sizeof(*s));
    Compiler c = {.s = s, .err = err};
    int r;

    if (!s)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    s->doc = json_object_get(doc);
    r = compile_node(&c, doc, "", 0, &s->root);
    if (r < 0)
        return r;
    *ret = TAKE_PTR(s);
    return 0;
}
