/* SPDX-License-Identifier: Apache-2.0 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cm-json.h"
#include "cm-log.h"
#include "cm-util.h"

/* json-c keeps embedded NUL bytes in strings; no document of ours may carry one. */
static int json_find_nul(json_object *o, char *path, size_t path_size, unsigned depth)
{
    switch (json_object_get_type(o)) {
    case json_type_string:
        return memchr(json_object_get_string(o), 0, (size_t)json_object_get_string_len(o)) ? 1 : 0;
    case json_type_object: {
        json_object_object_foreach(o, key, val)
        {
            if (json_find_nul(val, path, path_size, depth + 1)) {
                char tmp[256];
                snprintf(tmp, sizeof(tmp), "/%s%s", key, path);
                snprintf(path, path_size, "%s", tmp);
                return 1;
            }
        }
        return 0;
    }
    case json_type_array: {
        size_t n = json_object_array_length(o);
        for (size_t i = 0; i < n; i++) {
            if (json_find_nul(json_object_array_get_idx(o, i), path, path_size, depth + 1)) {
                char tmp[256];
                snprintf(tmp, sizeof(tmp), "/%zu%s", i, path);
                snprintf(path, path_size, "%s", tmp);
                return 1;
            }
        }
        return 0;
    }
    default:
        return 0;
    }
}

/*
 * A strict RFC 8259 syntax check run before json-c builds anything: json-c's strict mode
 * still takes single-quoted strings, and we also want one clear message for raw control
 * characters, NUL, bad UTF-8, leading zeros, and nesting beyond CM_JSON_MAX_DEPTH.
 */
typedef struct {
    const unsigned char *s;
    size_t len, pos;
    unsigned depth;
    bool name;        /* the string being scanned is a member name */
    const char *code; /* the error's code when not malformed_json */
    const char *why;
} Scan;

static void scan_ws(Scan *sc)
{
    while (sc->pos < sc->len && strchr(" \t\r\n", sc->s[sc->pos]) && sc->s[sc->pos])
        sc->pos++;
}

static bool scan_fail(Scan *sc, const char *why)
{
    sc->why = why;
    return false;
}

static bool scan_value(Scan *sc);

static int scan_hex4(Scan *sc, size_t at)
{
    int v = 0;
    for (size_t i = 0; i < 4; i++) {
        if (at + i >= sc->len || !isxdigit(sc->s[at + i]))
            return -1;
        unsigned char h = sc->s[at + i];
        v = v * 16 + (isdigit(h) ? h - '0' : (tolower(h) - 'a' + 10));
    }
    return v;
}

/* Member names of one object, to refuse duplicates (json-c would keep only the last). */
typedef struct {
    size_t start, len;   /* the raw name between the quotes */
    size_t dec, dec_len; /* the decoded name, in the object's buffer of names */
} ScanName;

/* Decoded names in order, compared as bytes: no hash, so no arranged collision either. */
static int name_cmp(const void *a, const void *b, void *buf)
{
    const ScanName *x = a, *y = b;
    const unsigned char *names = buf;
    int c =
        memcmp(names + x->dec, names + y->dec, x->dec_len < y->dec_len ? x->dec_len : y->dec_len);
    if (c)
        return c;
    return x->dec_len < y->dec_len ? -1 : x->dec_len > y->dec_len;
}

static uint32_t hex4(const unsigned char *s)
{
    uint32_t v = 0;
    for (int k = 0; k < 4; k++)
        v = v * 16 + (uint32_t)(isdigit(s[k]) ? s[k] - '0' : tolower(s[k]) - 'a' + 10);
    return v;
}

/*
 * A member name decoded as json-c decodes it (the syntax check has passed): escapes become
 * the UTF-8 of their character, a surrogate pair one character, so that "\u00e9" and a raw
 * "é", or "\n" and a raw line end, are the same name, and "n" and "\n" are not. At most
 * as long as the raw text.
 */
static size_t name_decode(const unsigned char *s, size_t n, unsigned char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t cp;
        if (s[i] != '\\') {
            out[o++] = s[i];
            continue;
        }
        i++;
        switch (s[i]) {
        case 'b':
            out[o++] = '\b';
            continue;
        case 'f':
            out[o++] = '\f';
            continue;
        case 'n':
            out[o++] = '\n';
            continue;
        case 'r':
            out[o++] = '\r';
            continue;
        case 't':
            out[o++] = '\t';
            continue;
        case 'u':
            break;
        default: /* " \ / */
            out[o++] = s[i];
            continue;
        }
        cp = hex4(s + i + 1);
        i += 4;
        if (cp >= 0xD800 && cp <= 0xDBFF) { /* a low one follows: the check saw to it */
            cp = 0x10000 + ((cp - 0xD800) << 10) + (hex4(s + i + 3) - 0xDC00);
            i += 6;
        }
        if (cp < 0x80) {
            out[o++] = (unsigned char)cp;
        } else if (cp < 0x800) {
            out[o++] = (unsigned char)(0xC0 | cp >> 6);
            out[o++] = (unsigned char)(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            out[o++] = (unsigned char)(0xE0 | cp >> 12);
            out[o++] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
            out[o++] = (unsigned char)(0x80 | (cp & 0x3F));
        } else {
            out[o++] = (unsigned char)(0xF0 | cp >> 18);
            out[o++] = (unsigned char)(0x80 | (cp >> 12 & 0x3F));
            out[o++] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
            out[o++] = (unsigned char)(0x80 | (cp & 0x3F));
        }
    }
    return o;
}

static bool scan_string(Scan *sc)
{
    size_t start;
    sc->pos++; /* the opening quote */
    start = sc->pos;
    while (sc->pos < sc->len) {
        unsigned char c = sc->s[sc->pos];
        if (c == '"') {
            if (!cm_utf8_valid((const char *)sc->s + start, sc->pos - start)) {
                sc->pos = start;
                return scan_fail(sc, "string is not valid UTF-8");
            }
            sc->pos++;
            return true;
        }
        if (c < 0x20)
            return scan_fail(sc, c ? "control character in a string must be escaped"
                                   : "NUL byte in a string");
        if (c == '\\') {
            sc->pos++;
            if (sc->pos >= sc->len)
                break;
            c = sc->s[sc->pos];
            if (c == 'u') {
                /* A surrogate escape must be a high one followed by a low one. */
                int cp = scan_hex4(sc, sc->pos + 1);
                if (cp < 0)
                    return scan_fail(sc, "bad \\u escape");
                /* json-c would cut the name there ("a\u0000b" is "a"): a second name
                 * "a" would silently take its place. A value's NUL is refused later with
                 * its JSON pointer. */
                if (cp == 0 && sc->name) {
                    sc->code = "nul_byte";
                    return scan_fail(sc, "a member name holds the NUL character (\\u0000)");
                }
                sc->pos += 4;
                if (cp >= 0xDC00 && cp <= 0xDFFF)
                    return scan_fail(sc, "lone low surrogate in a \\u escape");
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    int lo = sc->pos + 2 < sc->len && sc->s[sc->pos + 1] == '\\' &&
                                     sc->s[sc->pos + 2] == 'u'
                                 ? scan_hex4(sc, sc->pos + 3)
                                 : -1;
                    if (lo < 0xDC00 || lo > 0xDFFF)
                        return scan_fail(sc, "lone high surrogate in a \\u escape");
                    sc->pos += 6;
                }
            } else if (!strchr("\"\\/bfnrt", c) || !c) {
                return scan_fail(sc, "bad escape in a string");
            }
        }
        sc->pos++;
    }
    return scan_fail(sc, "unterminated string");
}

static bool scan_number(Scan *sc)
{
    const unsigned char *s = sc->s;
    size_t p = sc->pos;
    if (p < sc->len && s[p] == '-')
        p++;
    if (p < sc->len && s[p] == '0') {
        p++;
        if (p < sc->len && isdigit(s[p]))
            return scan_fail(sc, "numbers must not have leading zeros");
    } else if (p < sc->len && isdigit(s[p])) {
        while (p < sc->len && isdigit(s[p]))
            p++;
    } else {
        return scan_fail(sc, "invalid number");
    }
    if (p < sc->len && s[p] == '.') {
        p++;
        if (p >= sc->len || !isdigit(s[p]))
            return scan_fail(sc, "invalid number");
        while (p < sc->len && isdigit(s[p]))
            p++;
    }
    if (p < sc->len && (s[p] == 'e' || s[p] == 'E')) {
        p++;
        if (p < sc->len && (s[p] == '+' || s[p] == '-'))
            p++;
        if (p >= sc->len || !isdigit(s[p]))
            return scan_fail(sc, "invalid number");
        while (p < sc->len && isdigit(s[p]))
            p++;
    }
    sc->pos = p;
    return true;
}

static bool scan_literal(Scan *sc, const char *word)
{
    size_t n = strlen(word);
    if (sc->len - sc->pos < n || memcmp(sc->s + sc->pos, word, n) != 0)
        return scan_fail(sc, "unexpected character");
    sc->pos += n;
    return true;
}

static bool scan_unique_names(Scan *sc, ScanName *names, size_t n)
{
    _cleanup_free_ unsigned char *buf = NULL;
    size_t total = 0, off = 0;

    if (n < 2)
        return true;
    for (size_t i = 0; i < n; i++)
        total += names[i].len;
    buf = malloc(total + 1);
    if (!buf)
        return scan_fail(sc, "out of memory");
    for (size_t i = 0; i < n; i++) {
        names[i].dec = off;
        names[i].dec_len = name_decode(sc->s + names[i].start, names[i].len, buf + off);
        off += names[i].dec_len;
    }
    qsort_r(names, n, sizeof(*names), name_cmp, buf);
    for (size_t i = 1; i < n; i++) {
        if (name_cmp(&names[i - 1], &names[i], buf) == 0) {
            sc->pos = names[i].start > names[i - 1].start ? names[i].start : names[i - 1].start;
            return scan_fail(sc, "duplicate member name in an object");
        }
    }
    return true;
}

static bool scan_container(Scan *sc, bool object)
{
    unsigned char close = object ? '}' : ']';
    if (++sc->depth > CM_JSON_MAX_DEPTH)
        return scan_fail(sc, "nesting is too deep");
    sc->pos++;
    scan_ws(sc);
    if (sc->pos < sc->len && sc->s[sc->pos] == close) {
        sc->pos++;
        sc->depth--;
        return true;
    }
    _cleanup_free_ ScanName *names = NULL;
    size_t n_names = 0, cap_names = 0;
    for (;;) {
        scan_ws(sc);
        if (object) {
            size_t name_start = sc->pos + 1;
            if (sc->pos >= sc->len || sc->s[sc->pos] != '"')
                return scan_fail(sc, "expected a quoted member name");
            sc->name = true;
            if (!scan_string(sc))
                return false;
            sc->name = false;
            if (n_names == cap_names) {
                size_t ncap = cap_names ? cap_names * 2 : 8;
                ScanName *nn = realloc(names, ncap * sizeof(*nn));
                if (!nn)
                    return scan_fail(sc, "out of memory");
                names = nn;
                cap_names = ncap;
            }
            names[n_names++] = (ScanName){.start = name_start, .len = sc->pos - 1 - name_start};
            scan_ws(sc);
            if (sc->pos >= sc->len || sc->s[sc->pos] != ':')
                return scan_fail(sc, "expected ':'");
            sc->pos++;
        }
        if (!scan_value(sc))
            return false;
        scan_ws(sc);
        if (sc->pos < sc->len && sc->s[sc->pos] == ',') {
            sc->pos++;
            continue;
        }
        if (sc->pos < sc->len && sc->s[sc->pos] == close) {
            sc->pos++;
            sc->depth--;
            return !object || scan_unique_names(sc, names, n_names);
        }
        return scan_fail(sc, object ? "expected ',' or '}'" : "expected ',' or ']'");
    }
}

static bool scan_value(Scan *sc)
{
    scan_ws(sc);
    if (sc->pos >= sc->len)
        return scan_fail(sc, "document is incomplete");
    switch (sc->s[sc->pos]) {
    case '{':
        return scan_container(sc, true);
    case '[':
        return scan_container(sc, false);
    case '"':
        return scan_string(sc);
    case 't':
        return scan_literal(sc, "true");
    case 'f':
        return scan_literal(sc, "false");
    case 'n':
        return scan_literal(sc, "null");
    default:
        return scan_number(sc);
    }
}

static int json_check_syntax(const char *text, size_t len, CmError *err)
{
    Scan sc = {.s = (const unsigned char *)text, .len = len};
    if (scan_value(&sc)) {
        scan_ws(&sc);
        if (sc.pos == sc.len)
            return 0;
        sc.why = "unexpected data after the JSON document";
    }
    return cm_error_set_code(err, CM_ERROR_INVALID, sc.code ? sc.code : "malformed_json", "",
                             "JSON is malformed at byte %zu: %s", sc.pos, sc.why);
}

int cm_json_parse(const char *text, size_t len, json_object **ret, CmError *err)
{
    json_tokener *tok;
    json_object *o;
    enum json_tokener_error jerr;
    size_t consumed;
    int r;

    if (len > INT32_MAX)
        return cm_error_set(err, CM_ERROR_TOO_LARGE, "", "document too large");
    if (len == 0)
        return cm_error_set_code(err, CM_ERROR_INVALID, "malformed_json", "",
                                 "request body is empty; a JSON document is required");

    r = json_check_syntax(text, len, err);
    if (r < 0)
        return r;

    tok = json_tokener_new_ex(CM_JSON_MAX_DEPTH + 1);
    if (!tok)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);

    o = json_tokener_parse_ex(tok, text, (int)len);
    jerr = json_tokener_get_error(tok);
    consumed = json_tokener_get_parse_end(tok);
    if (jerr == json_tokener_continue && !o) {
        /* A bare number at the very end: json-c waits for a delimiter; give it one. */
        o = json_tokener_parse_ex(tok, " ", 1);
        jerr = json_tokener_get_error(tok);
        consumed = len;
    }
    if (jerr == json_tokener_continue) {
        /* The text ended inside a document. */
        json_tokener_free(tok);
        return cm_error_set_code(err, CM_ERROR_INVALID, "malformed_json", "",
                                 "JSON document is incomplete");
    }
    json_tokener_free(tok);
    if (jerr != json_tokener_success) {
        if (o)
            json_object_put(o);
        return cm_error_set_code(err, CM_ERROR_INVALID, "malformed_json", "",
                                 "JSON is malformed at byte %zu: %s", consumed,
                                 json_tokener_error_desc(jerr));
    }
    for (size_t i = consumed; i < len; i++) {
        if (!text[i] || !strchr(" \t\r\n", text[i])) {
            json_object_put(o);
            return cm_error_set_code(err, CM_ERROR_INVALID, "malformed_json", "",
                                     "unexpected data after the JSON document at byte %zu", i);
        }
    }

    char where[256] = "";
    if (json_find_nul(o, where, sizeof(where), 0)) {
        json_object_put(o);
        return cm_error_set_code(err, CM_ERROR_INVALID, "nul_byte", where,
                                 "strings must not contain the NUL character (\\u0000)");
    }

    *ret = o;
    return 0;
}

int cm_json_load_file(const char *path, size_t max_bytes, json_object **ret, CmError *err)
{
    _cleanup_close_ int fd = -1;
    _cleanup_free_ char *buf = NULL;
    struct stat st;
    size_t got = 0;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return cm_error_set(err, CM_ERROR_NOT_FOUND, "", "cannot open %s: %s", path,
                            strerror(errno));
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
        return cm_error_set(err, CM_ERROR_INVALID, "", "%s is not a regular file", path);
    if ((size_t)st.st_size > max_bytes)
        return cm_error_set(err, CM_ERROR_TOO_LARGE, "", "%s is larger than %zu bytes", path,
                            max_bytes);
    buf = malloc((size_t)st.st_size + 1);
    if (!buf)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return cm_error_set(err, CM_ERROR_INTERNAL, "", "cannot read %s", path);
        got += (size_t)n;
    }
    buf[got] = 0;

    int r = cm_json_parse(buf, got, ret, err);
    if (r < 0)
        cm_error_prefix_message(err, path);
    return r;
}

json_object *cm_json_get(json_object *o, const char *key)
{
    json_object *v = NULL;
    if (!o || !json_object_is_type(o, json_type_object))
        return NULL;
    if (!json_object_object_get_ex(o, key, &v))
        return NULL;
    return v;
}

const char *cm_json_get_str(json_object *o, const char *key, const char *def)
{
    json_object *v = cm_json_get(o, key);
    return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : def;
}

int64_t cm_json_get_int(json_object *o, const char *key, int64_t def)
{
    json_object *v = cm_json_get(o, key);
    if (v && json_object_is_type(v, json_type_int))
        return json_object_get_int64(v);
    /* JSON Schema's "integer" includes 3.0: take a whole double as the integer it is. */
    if (v && json_object_is_type(v, json_type_double)) {
        double d = json_object_get_double(v);
        /* [-2^63, 2^63): every whole double there is an int64 (2^63 is exact) */
        if (isfinite(d) && d == floor(d) && d >= -0x1p63 && d < 0x1p63)
            return (int64_t)d;
    }
    return def;
}

double cm_json_get_double(json_object *o, const char *key, double def)
{
    json_object *v = cm_json_get(o, key);
    if (v && (json_object_is_type(v, json_type_double) || json_object_is_type(v, json_type_int)))
        return json_object_get_double(v);
    return def;
}

bool cm_json_get_bool(json_object *o, const char *key, bool def)
{
    json_object *v = cm_json_get(o, key);
    return v && json_object_is_type(v, json_type_boolean) ? json_object_get_boolean(v) : def;
}

/* The first number in @o that is not finite: its pointer in @path. Returns: true if found. */
static bool find_non_finite(json_object *o, char *path, size_t size, size_t off, unsigned depth)
{
    switch (json_object_get_type(o)) {
    case json_type_double:
        return !isfinite(json_object_get_double(o));
    case json_type_object:
        if (depth > 2 * CM_JSON_MAX_DEPTH)
            return false;
        json_object_object_foreach(o, key, val)
        {
            /* the member's JSON pointer token: '~' and '/' escaped (RFC 6901) */
            size_t next = off;
            if (next + 1 < size)
                path[next++] = '/';
            for (const char *k = key; *k && next + 2 < size; k++) {
                if (*k == '~' || *k == '/') {
                    path[next++] = '~';
                    path[next++] = *k == '~' ? '0' : '1';
                } else {
                    path[next++] = *k;
                }
            }
            path[next] = 0;
            if (find_non_finite(val, path, size, next, depth + 1))
                return true;
        }
        path[off] = 0;
        return false;
    case json_type_array:
        if (depth > 2 * CM_JSON_MAX_DEPTH)
            return false;
        for (size_t i = 0; i < json_object_array_length(o); i++) {
            int n = snprintf(path + off, size - off, "/%zu", i);
            size_t next = off + (n > 0 ? (size_t)n : 0);
            if (next >= size)
                next = size - 1;
            if (find_non_finite(json_object_array_get_idx(o, i), path, size, next, depth + 1))
                return true;
        }
        path[off] = 0;
        return false;
    default:
        return false;
    }
}

int cm_json_write(json_object *o, const char **ret_text, size_t *ret_len, CmError *err)
{
    char where[256] = "";
    size_t len;
    const char *text;

    if (find_non_finite(o, where, sizeof(where), 0, 0)) {
        cm_error_set_code(err, CM_ERROR_INTERNAL, "non_finite_number", where,
                          "a number that is not finite has no JSON spelling");
        return -ERANGE;
    }
    text = json_object_to_json_string_length(
        o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
    if (!text)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    *ret_text = text;
    if (ret_len)
        *ret_len = len;
    return 0;
}

const char *cm_json_to_string(json_object *o, size_t *ret_len)
{
    CmError err = {0};
    const char *text;

    if (cm_json_write(o, &text, ret_len, &err) < 0) {
        cm_log_error("refusing to write JSON: %s at '%s'", err.message, err.field);
        return NULL;
    }
    return text;
}

json_object *cm_json_new_string_or_null(const char *s)
{
    return s ? json_object_new_string(s) : NULL;
}

char *cm_json_pointer_append(const char *base, const char *token)
{
    size_t blen = strlen(base), extra = 0;
    char *out, *p;

    for (const char *t = token; *t; t++)
        extra += (*t == '~' || *t == '/') ? 2 : 1;
    out = malloc(blen + 1 + extra + 1);
    if (!out)
        return NULL;
    memcpy(out, base, blen);
    p = out + blen;
    *p++ = '/';
    for (const char *t = token; *t; t++) {
        if (*t == '~') {
            *p++ = '~';
            *p++ = '0';
        } else if (*t == '/') {
            *p++ = '~';
            *p++ = '1';
        } else
            *p++ = *t;
    }
    *p = 0;
    return out;
}
