/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The strict JSON reader (common/cm-json.c) against a reference written here from RFC 8259
 * with the project's own rules added: no NUL character in any string (member names too,
 * escaped or not), no two members of one object with the same name once decoded, nesting at
 * most CM_JSON_MAX_DEPTH, valid UTF-8 and paired surrogate escapes. Both must accept the same
 * documents; an accepted one written by cm_json_write() reads back equal.
 */
#include <errno.h>
#include <string.h>

#include "cm-json.h"
#include "fuzz.h"

typedef struct {
    const uint8_t *s;
    size_t len, pos;
    unsigned depth;
} Ref;

static bool ref_value(Ref *r);

static void ref_ws(Ref *r)
{
    while (r->pos < r->len && (r->s[r->pos] == ' ' || r->s[r->pos] == '\t' ||
                               r->s[r->pos] == '\r' || r->s[r->pos] == '\n'))
        r->pos++;
}

static int hex(uint8_t c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

static int ref_u4(Ref *r)
{
    int v = 0;
    if (r->len - r->pos < 4)
        return -1;
    for (int i = 0; i < 4; i++) {
        int h = hex(r->s[r->pos + (size_t)i]);
        if (h < 0)
            return -1;
        v = v * 16 + h;
    }
    r->pos += 4;
    return v;
}

/* Appends code point @cp as UTF-8. */
static void put_cp(uint8_t *out, size_t *n, uint32_t cp)
{
    if (cp < 0x80) {
        out[(*n)++] = (uint8_t)cp;
    } else if (cp < 0x800) {
        out[(*n)++] = (uint8_t)(0xc0 | cp >> 6);
        out[(*n)++] = (uint8_t)(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
        out[(*n)++] = (uint8_t)(0xe0 | cp >> 12);
        out[(*n)++] = (uint8_t)(0x80 | (cp >> 6 & 0x3f));
        out[(*n)++] = (uint8_t)(0x80 | (cp & 0x3f));
    } else {
        out[(*n)++] = (uint8_t)(0xf0 | cp >> 18);
        out[(*n)++] = (uint8_t)(0x80 | (cp >> 12 & 0x3f));
        out[(*n)++] = (uint8_t)(0x80 | (cp >> 6 & 0x3f));
        out[(*n)++] = (uint8_t)(0x80 | (cp & 0x3f));
    }
}

/* One UTF-8 character at s (Unicode's well-formed table). Returns: its length or 0. */
static size_t utf8_char(const uint8_t *s, size_t len, uint32_t *cp)
{
    uint8_t c = s[0];
    size_t n;
    uint32_t v, min;

    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xc2 && c <= 0xdf)
        n = 2, v = c & 0x1f, min = 0x80;
    else if (c >= 0xe0 && c <= 0xef)
        n = 3, v = c & 0x0f, min = 0x800;
    else if (c >= 0xf0 && c <= 0xf4)
        n = 4, v = c & 0x07, min = 0x10000;
    else
        return 0;
    if (len < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        v = v << 6 | (s[i] & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        return 0;
    *cp = v;
    return n;
}

/* A string, decoded into @out (at least as long as the input) when not NULL. */
static bool ref_string(Ref *r, uint8_t *out, size_t *out_len)
{
    size_t n = 0;
    r->pos++;
    while (r->pos < r->len) {
        uint8_t c = r->s[r->pos];
        uint32_t cp;
        if (c == '"') {
            r->pos++;
            if (out_len)
                *out_len = n;
            return true;
        }
        if (c < 0x20)
            return false;
        if (c == '\\') {
            if (++r->pos >= r->len)
                return false;
            c = r->s[r->pos++];
            switch (c) {
            case '"':
            case '\\':
            case '/':
                cp = c;
                break;
            case 'b':
                cp = 8;
                break;
            case 'f':
                cp = 12;
                break;
            case 'n':
                cp = 10;
                break;
            case 'r':
                cp = 13;
                break;
            case 't':
                cp = 9;
                break;
            case 'u': {
                int u = ref_u4(r);
                if (u < 0 || (u >= 0xdc00 && u <= 0xdfff))
                    return false;
                if (u >= 0xd800 && u <= 0xdbff) {
                    int lo;
                    if (r->len - r->pos < 2 || r->s[r->pos] != '\\' || r->s[r->pos + 1] != 'u')
                        return false;
                    r->pos += 2;
                    lo = ref_u4(r);
                    if (lo < 0xdc00 || lo > 0xdfff)
                        return false;
                    u = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
                }
                cp = (uint32_t)u;
                break;
            }
            default:
                return false;
            }
        } else {
            size_t k = utf8_char(r->s + r->pos, r->len - r->pos, &cp);
            if (!k)
                return false;
            r->pos += k;
        }
        if (cp == 0)
            return false; /* the project's rule: no NUL character in any string */
        if (out)
            put_cp(out, &n, cp);
    }
    return false;
}

static bool digit(Ref *r)
{
    return r->pos < r->len && r->s[r->pos] >= '0' && r->s[r->pos] <= '9';
}

static bool ref_number(Ref *r)
{
    if (r->pos < r->len && r->s[r->pos] == '-')
        r->pos++;
    if (!digit(r))
        return false;
    if (r->s[r->pos] == '0')
        r->pos++;
    else
        while (digit(r))
            r->pos++;
    if (r->pos < r->len && r->s[r->pos] == '.') {
        r->pos++;
        if (!digit(r))
            return false;
        while (digit(r))
            r->pos++;
    }
    if (r->pos < r->len && (r->s[r->pos] == 'e' || r->s[r->pos] == 'E')) {
        r->pos++;
        if (r->pos < r->len && (r->s[r->pos] == '+' || r->s[r->pos] == '-'))
            r->pos++;
        if (!digit(r))
            return false;
        while (digit(r))
            r->pos++;
    }
    return true;
}

typedef struct {
    uint8_t *s;
    size_t len;
} Name;

static bool ref_object(Ref *r)
{
    Name *names = NULL;
    size_t n = 0;
    bool ok = false;

    r->pos++;
    ref_ws(r);
    if (r->pos < r->len && r->s[r->pos] == '}') {
        r->pos++;
        return true;
    }
    for (;;) {
        ref_ws(r);
        if (r->pos >= r->len || r->s[r->pos] != '"')
            goto out;
        names = realloc(names, (n + 1) * sizeof(*names));
        names[n].s = malloc(r->len - r->pos + 4);
        if (!names || !names[n].s)
            abort();
        if (!ref_string(r, names[n].s, &names[n].len)) {
            free(names[n].s);
            goto out;
        }
        for (size_t i = 0; i < n; i++)
            if (names[i].len == names[n].len && memcmp(names[i].s, names[n].s, names[n].len) == 0) {
                free(names[n].s);
                goto out;
            }
        n++;
        ref_ws(r);
        if (r->pos >= r->len || r->s[r->pos] != ':')
            goto out;
        r->pos++;
        if (!ref_value(r))
            goto out;
        ref_ws(r);
        if (r->pos < r->len && r->s[r->pos] == ',') {
            r->pos++;
            continue;
        }
        if (r->pos < r->len && r->s[r->pos] == '}') {
            r->pos++;
            ok = true;
        }
        goto out;
    }
out:
    for (size_t i = 0; i < n; i++)
        free(names[i].s);
    free(names);
    return ok;
}

static bool ref_array(Ref *r)
{
    r->pos++;
    ref_ws(r);
    if (r->pos < r->len && r->s[r->pos] == ']') {
        r->pos++;
        return true;
    }
    for (;;) {
        if (!ref_value(r))
            return false;
        ref_ws(r);
        if (r->pos < r->len && r->s[r->pos] == ',') {
            r->pos++;
            continue;
        }
        if (r->pos < r->len && r->s[r->pos] == ']') {
            r->pos++;
            return true;
        }
        return false;
    }
}

static bool literal(Ref *r, const char *w)
{
    size_t n = strlen(w);
    if (r->len - r->pos < n || memcmp(r->s + r->pos, w, n) != 0)
        return false;
    r->pos += n;
    return true;
}

static bool ref_value(Ref *r)
{
    bool ok;
    ref_ws(r);
    if (r->pos >= r->len)
        return false;
    switch (r->s[r->pos]) {
    case '{':
    case '[':
        if (++r->depth > CM_JSON_MAX_DEPTH)
            return false;
        ok = r->s[r->pos] == '{' ? ref_object(r) : ref_array(r);
        r->depth--;
        return ok;
    case '"':
        return ref_string(r, NULL, NULL);
    case 't':
        return literal(r, "true");
    case 'f':
        return literal(r, "false");
    case 'n':
        return literal(r, "null");
    default:
        return ref_number(r);
    }
}

static bool reference(const uint8_t *s, size_t len)
{
    Ref r = {.s = s, .len = len};
    if (!ref_value(&r))
        return false;
    ref_ws(&r);
    return r.pos == r.len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_object *doc = NULL, *again = NULL;
    CmError err = {0};
    const char *text;
    size_t len;
    bool want = size > 0 && reference(data, size);
    int r = cm_json_parse((const char *)data, size, &doc, &err);

    if (r < 0) {
        FUZZ_CHECK(err.kind == CM_ERROR_INVALID || err.kind == CM_ERROR_TOO_LARGE, "kind %d",
                   err.kind);
        FUZZ_CHECK(!want, "refused (%s: %s) what the reference accepts", err.code, err.message);
        return 0;
    }
    FUZZ_CHECK(want, "accepted what the reference refuses");
    /* Written out (when every number is finite) and read again: the same document. */
    if (cm_json_write(doc, &text, &len, &err) == 0) {
        char *copy = fuzz_strndup((const uint8_t *)text, len);
        FUZZ_CHECK(cm_json_parse(copy, len, &again, &err) == 0, "its own text refused: %s (%s)",
                   err.message, copy);
        FUZZ_CHECK(json_object_equal(doc, again), "read back differently: %s", copy);
        json_object_put(again);
        free(copy);
    } else {
        FUZZ_CHECK(strcmp(err.code, "non_finite_number") == 0, "write failed: %s", err.code);
    }
    json_object_put(doc);
    return 0;
}
