/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm-schema-priv.h"
#include "cm-schema.h"

/*
 * Numbers and messages. The API answers with these messages, and tests and the samples fast
 * path (broker/br-samples-parse.c) compare them byte for byte: change them together.
 */

/* json-c keeps integers as int64 (uint64 above INT64_MAX) and the rest as double; a long
 * double holds all of them exactly, so one comparison serves every pair. */
_Static_assert(LDBL_MANT_DIG >= 64, "long double must hold every int64 and uint64 exactly");

static bool is_number(json_object *o)
{
    return json_object_is_type(o, json_type_int) || json_object_is_type(o, json_type_double);
}

long double cm_schema_number(json_object *o)
{
    int64_t i;

    if (!json_object_is_type(o, json_type_int))
        return json_object_get_double(o);
    i = json_object_get_int64(o);
    /* get_int64() clamps a uint64 value, so only then is get_uint64() worth asking */
    return i == INT64_MAX ? (long double)json_object_get_uint64(o) : (long double)i;
}

/* The shortest text that reads back as the same number: 0.1 rather than 0.10000000000000001. */
static void number_text(json_object *o, char *buf, size_t size)
{
    double d = json_object_get_double(o);
    int64_t i = json_object_get_int64(o);

    if (json_object_is_type(o, json_type_int) && i == INT64_MAX)
        snprintf(buf, size, "%" PRIu64, json_object_get_uint64(o));
    else if (json_object_is_type(o, json_type_int))
        snprintf(buf, size, "%" PRId64, i);
    else
        for (int prec = 1; prec <= 17; prec++) {
            snprintf(buf, size, "%.*g", prec, d);
            if (strtod(buf, NULL) == d)
                break;
        }
}

int cm_schema_bound_set(Bound *b, json_object *o)
{
    if (!is_number(o))
        return -EINVAL;
    b->set = true;
    b->v = cm_schema_number(o);
    number_text(o, b->text, sizeof(b->text));
    return 0;
}

bool cm_schema_json_equal(json_object *a, json_object *b)
{
    json_type t = json_object_get_type(a);
    size_t n = t == json_type_array ? json_object_array_length(a) : 0;

    if (is_number(a) && is_number(b))
        return cm_schema_number(a) == cm_schema_number(b);
    if (t != json_object_get_type(b))
        return false;
    if (t == json_type_boolean)
        return json_object_get_boolean(a) == json_object_get_boolean(b);
    if (t == json_type_string)
        return json_object_get_string_len(a) == json_object_get_string_len(b) &&
               memcmp(json_object_get_string(a), json_object_get_string(b),
                      (size_t)json_object_get_string_len(a)) == 0;
    if (t == json_type_array && n != json_object_array_length(b))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!cm_schema_json_equal(json_object_array_get_idx(a, i), json_object_array_get_idx(b, i)))
            return false;
    if (t == json_type_object) {
        if (json_object_object_length(a) != json_object_object_length(b))
            return false;
        json_object_object_foreach(a, key, va)
        {
            json_object *vb;
            if (!json_object_object_get_ex(b, key, &vb) || !cm_schema_json_equal(va, vb))
                return false;
        }
    }
    return true; /* null, or arrays and objects equal member by member */
}

/* ---- the phrases of a Node's messages, written when it is compiled ---- */

static void put_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch < 0x20)
            fprintf(f, "\\u%04x", ch);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}

/* Compact JSON. json-c's own serializer writes into the object, so it is not used. */
static void put_json(FILE *f, json_object *o)
{
    const char *sep = "";
    char num[40];

    if (json_object_is_type(o, json_type_array)) {
        fputc('[', f);
        for (size_t i = 0; i < json_object_array_length(o); i++, sep = ",") {
            fputs(sep, f);
            put_json(f, json_object_array_get_idx(o, i));
        }
        fputc(']', f);
    } else if (json_object_is_type(o, json_type_object)) {
        fputc('{', f);
        json_object_object_foreach(o, key, val)
        {
            fputs(sep, f);
            put_string(f, key);
            fputc(':', f);
            put_json(f, val);
            sep = ",";
        }
        fputc('}', f);
    } else if (json_object_is_type(o, json_type_string))
        put_string(f, json_object_get_string(o));
    else if (is_number(o)) {
        number_text(o, num, sizeof(num));
        fputs(num, f);
    } else
        fputs(!o ? "null" : json_object_get_boolean(o) ? "true" : "false", f);
}

/* Closes the stream @f writes into @text. Returns: -ENOMEM (and frees @text) when it failed. */
static int text_close(FILE *f, char **text)
{
    bool failed = ferror(f);

    if (fclose(f) == 0 && !failed)
        return 0;
    free(*text);
    *text = NULL;
    return -ENOMEM;
}

/* "a number >= 0 and < 1": the numeric rules of @n. */
static int number_phrase(Node *n, char **text)
{
    const Bound *bounds[] = {&n->minimum, &n->exclusive_minimum, &n->maximum,
                             &n->exclusive_maximum};
    const char *const ops[] = {">=", ">", "<=", "<"};
    const char *sep = " ";
    size_t size;
    FILE *f = open_memstream(text, &size);

    if (!f)
        return -ENOMEM;
    fputs((n->types & (TYPE_INTEGER | TYPE_NUMBER)) == TYPE_INTEGER ? "an integer" : "a number", f);
    for (size_t i = 0; i < ELEMENTSOF(bounds); i++)
        if (bounds[i]->set) {
            fprintf(f, "%s%s %s", sep, ops[i], bounds[i]->text);
            sep = " and ";
        }
    return text_close(f, text);
}

/* "one of: a, b" (strings bare, as a person reads a list) or "equal to {"a":1}". */
static int values_phrase(const char *prefix, json_object *values, bool list, char **text)
{
    size_t size;
    FILE *f = open_memstream(text, &size);

    if (!f)
        return -ENOMEM;
    fputs(prefix, f);
    if (!list)
        put_json(f, values);
    for (size_t i = 0; list && i < json_object_array_length(values); i++) {
        json_object *v = json_object_array_get_idx(values, i);
        fputs(i ? ", " : "", f);
        if (json_object_is_type(v, json_type_string))
            fputs(json_object_get_string(v), f);
        else
            put_json(f, v);
    }
    return text_close(f, text);
}

/* "a string or null": the types of @n; the allowed values, when there are, say more. */
static int type_phrase(Node *n, char **text)
{
    static const struct {
        unsigned bit;
        const char *phrase; /* in the order messages list them */
    } phrases[] = {
        {TYPE_STRING, "a string"},   {TYPE_INTEGER, "an integer"}, {TYPE_NUMBER, "a number"},
        {TYPE_BOOLEAN, "a boolean"}, {TYPE_OBJECT, "an object"},   {TYPE_ARRAY, "an array"},
        {TYPE_NULL, "null"},
    };
    unsigned types = n->types & TYPE_NUMBER ? n->types & ~TYPE_INTEGER : n->types;
    size_t size;
    FILE *f;

    if (n->enum_text || n->const_text || !(types & ~(TYPE_INTEGER | TYPE_NUMBER))) {
        *text = strdup(n->enum_text    ? n->enum_text
                       : n->const_text ? n->const_text
                                       : n->number_text);
        return *text ? 0 : -ENOMEM;
    }
    f = open_memstream(text, &size);
    if (!f)
        return -ENOMEM;
    for (size_t i = 0; i < ELEMENTSOF(phrases); i++) {
        if (!(types & phrases[i].bit))
            continue;
        types &= ~phrases[i].bit;
        fputs(ftell(f) == 0 ? "" : types ? ", " : " or ", f);
        fputs(phrases[i].phrase, f);
    }
    return text_close(f, text);
}

int cm_schema_node_texts(Node *n)
{
    int r = number_phrase(n, &n->number_text);

    if (r == 0 && n->enum_value)
        r = values_phrase("one of: ", n->enum_value, true, &n->enum_text);
    if (r == 0 && n->has_const)
        r = values_phrase("equal to ", n->const_value, false, &n->const_text);
    if (r == 0 && n->types)
        r = type_phrase(n, &n->type_text);
    return r;
}

/* ---- errors ---- */

static void path_add(char *out, size_t size, size_t *off, const char *token)
{
    if (*off + 1 < size)
        out[(*off)++] = '/';
    for (const char *t = token; *t && *off + 2 < size; t++) {
        if (*t == '~' || *t == '/') {
            out[(*off)++] = '~';
            out[(*off)++] = *t == '~' ? '0' : '1';
        } else
            out[(*off)++] = *t;
    }
    out[*off] = 0;
}

static void path_render(const PathSeg *p, char *out, size_t size, size_t *off)
{
    char idx[24];

    if (!p)
        return;
    path_render(p->up, out, size, off);
    if (!p->key)
        snprintf(idx, sizeof(idx), "%zu", p->index);
    path_add(out, size, off, p->key ? p->key : idx);
}

int cm_schema_fail(CmError *err, const PathSeg *path, const char *code, const char *fmt, ...)
{
    char field[sizeof(err->field)] = "", msg[sizeof(err->message)];
    size_t off = 0;
    va_list ap;

    /* Without err the caller only asks whether the value is valid: skip the formatting. */
    if (!err)
        return -EINVAL;
    path_render(path, field, sizeof(field), &off);
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return cm_error_set_code(err, CM_ERROR_UNPROCESSABLE, code, field, "%s", msg);
}
