/* SPDX-License-Identifier: Apache-2.0 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <regex.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm-json.h"
#include "cm-schema.h"

/*
 * Compilation turns the schema document into a graph of Nodes: every keyword is checked and
 * pre-digested (regexes compiled, limits parsed, message texts rendered), and every $ref becomes
 * a pointer to the Node it names, so validation does no lookup, no parsing, no allocation (but
 * for propertyNames and long uniqueItems arrays) and never writes to shared state.
 */

/* Deeper schema documents are refused; the JSON parser already stops at CM_JSON_MAX_DEPTH. */
#define COMPILE_MAX_DEPTH 64

/* Arrays up to this length are checked for uniqueness pairwise, longer ones through hashes. */
#define UNIQUE_PAIRWISE_MAX 32

#define streq(a, b) (strcmp((a), (b)) == 0)

#define METASCHEMA_URI "http://json-schema.org/draft-07/schema"

enum {
    TYPE_NULL = 1u << 0,
    TYPE_BOOLEAN = 1u << 1,
    TYPE_OBJECT = 1u << 2,
    TYPE_ARRAY = 1u << 3,
    TYPE_NUMBER = 1u << 4,
    TYPE_STRING = 1u << 5,
    TYPE_INTEGER = 1u << 6,
};

static const struct {
    const char *name;
    unsigned bit;
    const char *phrase; /* completes "must be ..." */
} type_names[] = {
    /* in the order messages list them: "must be a string or null" */
    {"string", TYPE_STRING, "a string"},  {"integer", TYPE_INTEGER, "an integer"},
    {"number", TYPE_NUMBER, "a number"},  {"boolean", TYPE_BOOLEAN, "a boolean"},
    {"object", TYPE_OBJECT, "an object"}, {"array", TYPE_ARRAY, "an array"},
    {"null", TYPE_NULL, "null"},
};

/* ---- growable strings (compile time only) ---- */

typedef struct {
    char *s;
    size_t len, cap;
    bool oom;
} Buf;

static void buf_add(Buf *b, const char *s, size_t n)
{
    size_t need;

    /* the bound also tells the compiler that the sums below cannot wrap */
    if (b->oom || n > SIZE_MAX / 4 || b->len > SIZE_MAX / 4) {
        b->oom = true;
        return;
    }
    need = b->len + n + 1;
    if (need > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        char *p;
        while (cap < need)
            cap *= 2;
        p = realloc(b->s, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->s = p;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = 0;
}

static void buf_adds(Buf *b, const char *s)
{
    buf_add(b, s, strlen(s));
}

static void buf_addc(Buf *b, char ch)
{
    buf_add(b, &ch, 1);
}

_printf_(2, 3) static void buf_addf(Buf *b, const char *fmt, ...)
{
    char tmp[64];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(tmp)) {
        b->oom = true;
        return;
    }
    buf_add(b, tmp, (size_t)n);
}

/* Returns: the string (an empty one if nothing was added), or NULL when an append failed. */
static char *buf_steal(Buf *b)
{
    if (!b->oom && !b->s)
        buf_add(b, "", 0);
    if (b->oom) {
        free(b->s);
        b->s = NULL;
    }
    return TAKE_PTR(b->s);
}

static void buf_done(Buf *b)
{
    free(b->s);
    b->s = NULL;
}

static void *grow(void *arr, size_t *cap, size_t need, size_t elem)
{
    size_t ncap;
    void *p;

    if (need <= *cap)
        return arr;
    ncap = *cap ? *cap * 2 : 8;
    while (ncap < need)
        ncap *= 2;
    p = reallocarray(arr, ncap, elem);
    if (!p)
        return NULL;
    *cap = ncap;
    return p;
}

/* ---- numbers ---- */

/* json-c keeps integers as int64 (or uint64 above INT64_MAX) and everything else as double. */
typedef enum { NUM_INT, NUM_UINT, NUM_DOUBLE } NumKind;

typedef struct {
    NumKind kind;
    int64_t i;
    uint64_t u;
    double d;
} Num;

static bool json_is_number(json_object *o)
{
    return json_object_is_type(o, json_type_int) || json_object_is_type(o, json_type_double);
}

static Num num_from_json(json_object *o)
{
    Num n = {.kind = NUM_INT};

    if (json_object_is_type(o, json_type_int)) {
        n.i = json_object_get_int64(o);
        /* get_int64() clamps a uint64 value, so only then is get_uint64() worth asking. */
        if (n.i == INT64_MAX) {
            n.u = json_object_get_uint64(o);
            if (n.u > (uint64_t)INT64_MAX)
                n.kind = NUM_UINT;
        }
    } else {
        n.kind = NUM_DOUBLE;
        n.d = json_object_get_double(o);
    }
    return n;
}

static double num_to_double(Num a)
{
    switch (a.kind) {
    case NUM_INT:
        return (double)a.i;
    case NUM_UINT:
        return (double)a.u;
    default:
        return a.d;
    }
}

static bool double_is_integral(double d)
{
    return isfinite(d) && d == trunc(d);
}

static bool num_is_integer(Num a)
{
    return a.kind != NUM_DOUBLE || double_is_integral(a.d);
}

/* Exact comparisons: converting the integer to double would round above 2^53. */
static int cmp_int_double(int64_t i, double d)
{
    double t;
    int64_t ti;

    if (isnan(d))
        return 1;
    if (d >= 9223372036854775808.0)
        return -1;
    if (d < -9223372036854775808.0)
        return 1;
    t = trunc(d);
    ti = (int64_t)t;
    if (i != ti)
        return i < ti ? -1 : 1;
    return d > t ? -1 : d < t ? 1 : 0;
}

static int cmp_uint_double(uint64_t u, double d)
{
    double t;
    uint64_t tu;

    if (isnan(d))
        return 1;
    if (d >= 18446744073709551616.0)
        return -1;
    if (d < 0)
        return 1;
    t = trunc(d);
    tu = (uint64_t)t;
    if (u != tu)
        return u < tu ? -1 : 1;
    return d > t ? -1 : 0;
}

static int num_cmp(Num a, Num b)
{
    if (a.kind == NUM_DOUBLE && b.kind == NUM_DOUBLE)
        return (a.d > b.d) - (a.d < b.d);
    if (a.kind == NUM_DOUBLE)
        return -num_cmp(b, a);
    if (b.kind == NUM_DOUBLE)
        return a.kind == NUM_INT ? cmp_int_double(a.i, b.d) : cmp_uint_double(a.u, b.d);
    if (a.kind == NUM_INT && b.kind == NUM_INT)
        return (a.i > b.i) - (a.i < b.i);
    if (a.kind == NUM_UINT && b.kind == NUM_UINT)
        return (a.u > b.u) - (a.u < b.u);
    return a.kind == NUM_UINT ? 1 : -1;
}

/*
 * A number as mant * 10^exp: exact for integers; for a double, the digits of its shortest
 * decimal form that reads back as the same double, which are the digits of the JSON text
 * whenever it had at most 17 significant ones.
 */
typedef struct {
    uint64_t mant;
    int exp;
} Decimal;

static bool num_decimal(Num a, Decimal *ret)
{
    char buf[48];
    const char *p;
    uint64_t mant = 0;
    int after_point = 0, exp;
    bool in_fraction = false;
    double d;

    switch (a.kind) {
    case NUM_INT:
        *ret = (Decimal){a.i < 0 ? (uint64_t)(-(a.i + 1)) + 1 : (uint64_t)a.i, 0};
        return true;
    case NUM_UINT:
        *ret = (Decimal){a.u, 0};
        return true;
    default:
        break;
    }
    d = fabs(a.d);
    if (!isfinite(d))
        return false;
    for (int prec = 0; prec <= 16; prec++) {
        snprintf(buf, sizeof(buf), "%.*e", prec, d);
        if (strtod(buf, NULL) == d)
            break;
    }
    /* "D.DDDDe+XX", at most 17 digits, so mant fits in 64 bits */
    for (p = buf; *p && *p != 'e'; p++) {
        if (*p < '0' || *p > '9') {
            in_fraction = true;
            continue;
        }
        mant = mant * 10 + (uint64_t)(*p - '0');
        after_point += in_fraction;
    }
    exp = *p ? (int)strtol(p + 1, NULL, 10) - after_point : 0;
    while (mant && mant % 10 == 0) {
        mant /= 10;
        exp++;
    }
    *ret = (Decimal){mant, mant ? exp : 0};
    return true;
}

static uint64_t pow10_mod(unsigned e, uint64_t m)
{
    unsigned __int128 result = 1 % m, base = 10 % m;

    for (; e; e >>= 1) {
        if (e & 1)
            result = result * base % m;
        base = base * base % m;
    }
    return (uint64_t)result;
}

/*
 * Exact decimal arithmetic, no tolerance: 19.99 is a multiple of 0.01 and 0.00751 is not one
 * of 0.0001, although neither quotient is an integer in binary floating point.
 */
static bool num_is_multiple(Num x, const Decimal *m)
{
    unsigned __int128 div;
    Decimal dx;
    unsigned e;

    if (!num_decimal(x, &dx))
        return false;
    if (dx.mant == 0)
        return true;
    if (dx.exp >= m->exp) {
        /* x.mant * 10^(x.exp - m.exp) mod m.mant, without computing the power */
        unsigned __int128 r = (unsigned __int128)(dx.mant % m->mant) *
                              pow10_mod((unsigned)(dx.exp - m->exp), m->mant) % m->mant;
        return r == 0;
    }
    e = (unsigned)(m->exp - dx.exp);
    if (e > 19) /* m.mant * 10^e exceeds any x.mant */
        return false;
    div = m->mant;
    while (e--)
        div *= 10;
    return div <= dx.mant && dx.mant % div == 0;
}

/* The shortest text that reads back as the same double: 0.1 rather than 0.10000000000000001. */
static void format_double(double d, char *buf, size_t size)
{
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, size, "%.*g", prec, d);
        if (strtod(buf, NULL) == d)
            return;
    }
}

static void num_format(Num a, char *buf, size_t size)
{
    switch (a.kind) {
    case NUM_INT:
        snprintf(buf, size, "%" PRId64, a.i);
        break;
    case NUM_UINT:
        snprintf(buf, size, "%" PRIu64, a.u);
        break;
    default:
        format_double(a.d, buf, size);
        break;
    }
}

/* ---- JSON values ---- */

/* Equality as JSON Schema defines it: numbers by value (1 == 1.0), objects regardless of order. */
static bool json_equal(json_object *a, json_object *b)
{
    json_type ta = json_object_get_type(a), tb = json_object_get_type(b);

    if (json_is_number(a) && json_is_number(b))
        return num_cmp(num_from_json(a), num_from_json(b)) == 0;
    if (ta != tb)
        return false;
    switch (ta) {
    case json_type_null:
        return true;
    case json_type_boolean:
        return !json_object_get_boolean(a) == !json_object_get_boolean(b);
    case json_type_string: {
        int la = json_object_get_string_len(a);
        return la == json_object_get_string_len(b) &&
               memcmp(json_object_get_string(a), json_object_get_string(b), (size_t)la) == 0;
    }
    case json_type_array: {
        size_t n = json_object_array_length(a);
        if (n != json_object_array_length(b))
            return false;
        for (size_t i = 0; i < n; i++)
            if (!json_equal(json_object_array_get_idx(a, i), json_object_array_get_idx(b, i)))
                return false;
        return true;
    }
    case json_type_object: {
        if (json_object_object_length(a) != json_object_object_length(b))
            return false;
        json_object_object_foreach(a, key, va)
        {
            json_object *vb;
            if (!json_object_object_get_ex(b, key, &vb) || !json_equal(va, vb))
                return false;
        }
        return true;
    }
    default:
        return false;
    }
}

static uint64_t hash_mix(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* Equal values (in the sense of json_equal) hash alike: numbers through their double value. */
static uint64_t json_hash(json_object *o)
{
    switch (json_object_get_type(o)) {
    case json_type_null:
        return 1;
    case json_type_boolean:
        return json_object_get_boolean(o) ? 2 : 3;
    case json_type_int:
    case json_type_double: {
        double d = num_to_double(num_from_json(o));
        uint64_t bits;
        if (d == 0)
            d = 0; /* -0.0 == 0.0 */
        memcpy(&bits, &d, sizeof(bits));
        return hash_mix(bits ^ 4);
    }
    case json_type_string:
        return hash_bytes(json_object_get_string(o), (size_t)json_object_get_string_len(o));
    case json_type_array: {
        uint64_t h = 5;
        size_t n = json_object_array_length(o);
        for (size_t i = 0; i < n; i++)
            h = hash_mix(h * 31 + json_hash(json_object_array_get_idx(o, i)));
        return h;
    }
    case json_type_object: {
        /* A sum, so that member order does not matter. */
        uint64_t h = 6;
        json_object_object_foreach(o, key, val)
        {
            h += hash_mix(hash_bytes(key, strlen(key)) ^ json_hash(val));
        }
        return h;
    }
    default:
        return 0;
    }
}

static void render_string(Buf *b, const char *s, size_t n)
{
    buf_addc(b, '"');
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\') {
            buf_addc(b, '\\');
            buf_addc(b, (char)ch);
        } else if (ch < 0x20)
            buf_addf(b, "\\u%04x", ch);
        else
            buf_addc(b, (char)ch);
    }
    buf_addc(b, '"');
}

/* Compact JSON for messages. json-c's own serializer writes into the object, which may be
 * shared with other threads, so it is not used. */
static void render_json(Buf *b, json_object *o)
{
    char num[40];

    switch (json_object_get_type(o)) {
    case json_type_null:
        buf_adds(b, "null");
        break;
    case json_type_boolean:
        buf_adds(b, json_object_get_boolean(o) ? "true" : "false");
        break;
    case json_type_int:
    case json_type_double:
        num_format(num_from_json(o), num, sizeof(num));
        buf_adds(b, num);
        break;
    case json_type_string:
        render_string(b, json_object_get_string(o), (size_t)json_object_get_string_len(o));
        break;
    case json_type_array: {
        size_t n = json_object_array_length(o);
        buf_addc(b, '[');
        for (size_t i = 0; i < n; i++) {
            if (i)
                buf_addc(b, ',');
            render_json(b, json_object_array_get_idx(o, i));
        }
        buf_addc(b, ']');
        break;
    }
    case json_type_object: {
        bool first = true;
        buf_addc(b, '{');
        json_object_object_foreach(o, key, val)
        {
            if (!first)
                buf_addc(b, ',');
            first = false;
            render_string(b, key, strlen(key));
            buf_addc(b, ':');
            render_json(b, val);
        }
        buf_addc(b, '}');
        break;
    }
    default:
        break;
    }
}

/* A value as a person reads it in a list: strings bare, the rest as JSON. */
static void render_plain(Buf *b, json_object *o)
{
    if (json_object_is_type(o, json_type_string))
        buf_adds(b, json_object_get_string(o));
    else
        render_json(b, o);
}

/* ---- URI references (RFC 3986) ---- */

typedef struct {
    const char *scheme, *auth, *path, *query, *frag;
    size_t scheme_len, auth_len, path_len, query_len, frag_len;
} UriParts; /* a NULL pointer means that part is absent; path is always present */

static void uri_split(const char *s, UriParts *u)
{
    const char *p = s, *q = s;

    memset(u, 0, sizeof(*u));
    if (isalpha((unsigned char)*q)) {
        while (isalnum((unsigned char)*q) || *q == '+' || *q == '-' || *q == '.')
            q++;
        if (*q == ':') {
            u->scheme = p;
            u->scheme_len = (size_t)(q - p);
            p = q + 1;
        }
    }
    if (p[0] == '/' && p[1] == '/') {
        p += 2;
        u->auth = p;
        while (*p && *p != '/' && *p != '?' && *p != '#')
            p++;
        u->auth_len = (size_t)(p - u->auth);
    }
    u->path = p;
    while (*p && *p != '?' && *p != '#')
        p++;
    u->path_len = (size_t)(p - u->path);
    if (*p == '?') {
        u->query = ++p;
        while (*p && *p != '#')
            p++;
        u->query_len = (size_t)(p - u->query);
    }
    if (*p == '#') {
        u->frag = ++p;
        u->frag_len = strlen(p);
    }
}

/* RFC 3986 section 5.2.4, on a private copy of the input. */
static void remove_dot_segments(Buf *out, const char *path, size_t len)
{
    _cleanup_free_ char *in = strndup(path, len);
    size_t start = out->len;
    char *p, *end;

    if (!in) {
        out->oom = true;
        return;
    }
    p = in;
    end = in + len;
    while (p < end && !out->oom) {
        size_t rem = (size_t)(end - p);
        if (rem >= 3 && !memcmp(p, "../", 3))
            p += 3;
        else if (rem >= 2 && !memcmp(p, "./", 2))
            p += 2;
        else if (rem >= 3 && !memcmp(p, "/./", 3))
            p += 2;
        else if (rem == 2 && !memcmp(p, "/.", 2)) {
            p += 1;
            *p = '/';
        } else if ((rem >= 4 && !memcmp(p, "/../", 4)) || (rem == 3 && !memcmp(p, "/..", 3))) {
            p += rem == 3 ? 2 : 3;
            *p = '/';
            /* drop the last segment written, with its '/' */
            while (out->len > start && out->s[out->len - 1] != '/')
                out->len--;
            if (out->len > start)
                out->len--;
            if (out->s)
                out->s[out->len] = 0;
        } else if ((rem == 1 && *p == '.') || (rem == 2 && !memcmp(p, "..", 2)))
            p = end;
        else {
            char *seg = p + 1;
            while (seg < end && *seg != '/')
                seg++;
            buf_add(out, p, (size_t)(seg - p));
            p = seg;
        }
    }
}

/* Returns: @ref resolved against @base (without a fragment when @strip_fragment), or NULL. */
static char *uri_resolve(const char *base, const char *ref, bool strip_fragment)
{
    UriParts b, r;
    Buf out = {0};
    const char *query = NULL;
    size_t query_len = 0;

    uri_split(base, &b);
    uri_split(ref, &r);
    if (r.scheme) {
        buf_add(&out, r.scheme, r.scheme_len);
        buf_addc(&out, ':');
        if (r.auth) {
            buf_adds(&out, "//");
            buf_add(&out, r.auth, r.auth_len);
        }
        remove_dot_segments(&out, r.path, r.path_len);
        query = r.query;
        query_len = r.query_len;
    } else {
        if (b.scheme) {
            buf_add(&out, b.scheme, b.scheme_len);
            buf_addc(&out, ':');
        }
        if (r.auth) {
            buf_adds(&out, "//");
            buf_add(&out, r.auth, r.auth_len);
            remove_dot_segments(&out, r.path, r.path_len);
            query = r.query;
            query_len = r.query_len;
        } else {
            if (b.auth) {
                buf_adds(&out, "//");
                buf_add(&out, b.auth, b.auth_len);
            }
            if (r.path_len == 0) {
                buf_add(&out, b.path, b.path_len);
                query = r.query ? r.query : b.query;
                query_len = r.query ? r.query_len : b.query_len;
            } else {
                if (r.path[0] == '/')
                    remove_dot_segments(&out, r.path, r.path_len);
                else {
                    /* merge: the base path up to its last '/', then the reference */
                    Buf merged = {0};
                    const char *slash = memrchr(b.path, '/', b.path_len);
                    if (b.auth && b.path_len == 0)
                        buf_addc(&merged, '/');
                    else if (slash)
                        buf_add(&merged, b.path, (size_t)(slash - b.path) + 1);
                    buf_add(&merged, r.path, r.path_len);
                    if (merged.oom)
                        out.oom = true;
                    else
                        remove_dot_segments(&out, merged.s, merged.len);
                    buf_done(&merged);
                }
                query = r.query;
                query_len = r.query_len;
            }
        }
    }
    if (query) {
        buf_addc(&out, '?');
        buf_add(&out, query, query_len);
    }
    if (r.frag && !strip_fragment) {
        buf_addc(&out, '#');
        buf_add(&out, r.frag, r.frag_len);
    }
    return buf_steal(&out);
}

static int hex_value(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Returns: the fragment with %XX sequences decoded, or NULL when malformed or out of memory. */
static char *percent_decode(const char *s)
{
    Buf out = {0};

    for (const char *p = s; *p; p++) {
        if (*p != '%') {
            buf_addc(&out, *p);
            continue;
        }
        int hi = hex_value(p[1]), lo = hi < 0 ? -1 : hex_value(p[2]);
        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
            buf_done(&out);
            return NULL;
        }
        buf_addc(&out, (char)(hi * 16 + lo));
        p += 2;
    }
    return buf_steal(&out);
}

/* ---- regular expressions ---- */

/*
 * ECMA-262 regexes work on characters, POSIX ones on the bytes of the current locale; a UTF-8
 * LC_CTYPE makes "." and "[^a]" consume whole characters. Compilation and validation switch
 * their thread (uselocale) to this locale, whatever the process locale is: it also keeps
 * LC_NUMERIC at "C" for the number formatting they do.
 */
static pthread_once_t work_locale_once = PTHREAD_ONCE_INIT;
static locale_t work_locale, byte_locale;
static bool work_locale_utf8;

static void work_locale_init(void)
{
    byte_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
    work_locale = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
    work_locale_utf8 = work_locale != (locale_t)0;
    /* Without C.UTF-8, matching is by byte. */
    if (!work_locale)
        work_locale = byte_locale;
}

/* Returns: the previous locale of the thread, for work_locale_leave(). */
static locale_t work_locale_enter(void)
{
    pthread_once(&work_locale_once, work_locale_init);
    return work_locale ? uselocale(work_locale) : (locale_t)0;
}

static void work_locale_leave(locale_t old)
{
    if (old)
        uselocale(old);
}

static void buf_add_utf8(Buf *b, uint32_t cp)
{
    char s[4];

    if (cp < 0x80) {
        buf_addc(b, (char)cp);
        return;
    }
    if (cp < 0x800) {
        s[0] = (char)(0xc0 | (cp >> 6));
        s[1] = (char)(0x80 | (cp & 0x3f));
        buf_add(b, s, 2);
        return;
    }
    s[0] = (char)(0xe0 | (cp >> 12));
    s[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
    s[2] = (char)(0x80 | (cp & 0x3f));
    buf_add(b, s, 3);
}

static bool parse_hex4(const char *p, uint32_t *ret)
{
    uint32_t v = 0;

    for (int i = 0; i < 4; i++) {
        int h = hex_value(p[i]);
        if (h < 0)
            return false;
        v = v * 16 + (uint32_t)h;
    }
    if (v >= 0xd800 && v <= 0xdfff) /* surrogates: not supported */
        return false;
    *ret = v;
    return true;
}

static size_t utf8_seq_len(unsigned char lead)
{
    if (lead >= 0xf0)
        return 4;
    if (lead >= 0xe0)
        return 3;
    if (lead >= 0xc0)
        return 2;
    return 1;
}

/* A literal inside a POSIX bracket: the characters special there become collating symbols. */
static void class_add_literal(Buf *b, const Buf *lit)
{
    if (lit->len == 1 && strchr("]-^[", lit->s[0])) {
        buf_adds(b, "[.");
        buf_add(b, lit->s, 1);
        buf_adds(b, ".]");
    } else
        buf_add(b, lit->s, lit->len);
}

/*
 * Reads one atom of a character class at *pp: either a literal character (into @lit) or a
 * class escape (into *ret_cls, as POSIX bracket content).
 */
static int class_atom(const char **pp, Buf *lit, const char **ret_cls, const char **why)
{
    const char *p = *pp;
    uint32_t cp;

    lit->len = 0;
    *ret_cls = NULL;
    if (*p != '\\') {
        size_t n = utf8_seq_len((unsigned char)*p);
        if (strnlen(p, n) < n)
            n = 1;
        buf_add(lit, p, n);
        *pp = p + n;
        return 0;
    }
    p++;
    switch (*p) {
    case 'd':
        *ret_cls = "0-9";
        break;
    case 'w':
        *ret_cls = "A-Za-z0-9_";
        break;
    case 's':
        *ret_cls = "[:space:]";
        break;
    case 'n':
        buf_addc(lit, '\n');
        break;
    case 't':
        buf_addc(lit, '\t');
        break;
    case 'r':
        buf_addc(lit, '\r');
        break;
    case 'f':
        buf_addc(lit, '\f');
        break;
    case 'v':
        buf_addc(lit, '\v');
        break;
    case 'u':
        if (!parse_hex4(p + 1, &cp) || cp == 0) {
            *why = "unsupported \\u escape";
            return -EINVAL;
        }
        buf_add_utf8(lit, cp);
        p += 4;
        break;
    default:
        if (!*p || !ispunct((unsigned char)*p)) {
            *why = "unsupported escape in a character class";
            return -EINVAL;
        }
        buf_addc(lit, *p);
        break;
    }
    *pp = p + 1;
    return 0;
}

static int translate_class(const char **pp, Buf *out, const char **why)
{
    const char *p = *pp + 1, *cls1, *cls2;
    Buf lit1 = {0}, lit2 = {0};
    bool neg = false;
    int r = 0;

    if (*p == '^') {
        neg = true;
        p++;
    }
    if (*p == ']') {
        *why = "an empty character class is not supported";
        return -EINVAL;
    }
    buf_addc(out, '[');
    if (neg)
        buf_addc(out, '^');
    while (*p && *p != ']') {
        r = class_atom(&p, &lit1, &cls1, why);
        if (r < 0)
            break;
        if (!cls1 && p[0] == '-' && p[1] && p[1] != ']') {
            p++;
            r = class_atom(&p, &lit2, &cls2, why);
            if (r < 0)
                break;
            if (cls2) {
                *why = "a range cannot end with a class escape";
                r = -EINVAL;
                break;
            }
            class_add_literal(out, &lit1);
            buf_addc(out, '-');
            class_add_literal(out, &lit2);
        } else if (cls1)
            buf_adds(out, cls1);
        else
            class_add_literal(out, &lit1);
    }
    buf_done(&lit1);
    buf_done(&lit2);
    if (r < 0)
        return r;
    if (*p != ']') {
        *why = "unterminated character class";
        return -EINVAL;
    }
    buf_addc(out, ']');
    *pp = p + 1;
    return 0;
}

/*
 * Translates the ECMA-262 regex subset our schemas use into a POSIX extended regex. Lazy
 * quantifiers become greedy ones: only whether a match exists matters here, not what it spans.
 */
static int regex_translate(const char *src, bool utf8, char **ret, const char **why)
{
    Buf out = {0};
    const char *p = src;
    uint32_t cp;
    int r = 0;

    while (*p && r == 0) {
        char ch = *p;
        if (ch == '\\') {
            p++;
            switch (*p) {
            case 'd':
                buf_adds(&out, "[0-9]");
                break;
            case 'D':
                buf_adds(&out, "[^0-9]");
                break;
            case 'w':
                buf_adds(&out, "[A-Za-z0-9_]");
                break;
            case 'W':
                buf_adds(&out, "[^A-Za-z0-9_]");
                break;
            case 's':
                buf_adds(&out, "[[:space:]]");
                break;
            case 'S':
                buf_adds(&out, "[^[:space:]]");
                break;
            case 'n':
                buf_addc(&out, '\n');
                break;
            case 't':
                buf_addc(&out, '\t');
                break;
            case 'r':
                buf_addc(&out, '\r');
                break;
            case 'f':
                buf_addc(&out, '\f');
                break;
            case 'v':
                buf_addc(&out, '\v');
                break;
            case 'u':
                if (!parse_hex4(p + 1, &cp) || cp == 0) {
                    *why = "unsupported \\u escape";
                    r = -EINVAL;
                    break;
                }
                if (cp < 0x80 && strchr(".[]()*+?{}|^$\\", (int)cp))
                    buf_addc(&out, '\\');
                buf_add_utf8(&out, cp);
                p += 4;
                break;
            default:
                if (*p && strchr(".[]()*+?{}|^$\\", *p)) {
                    buf_addc(&out, '\\');
                    buf_addc(&out, *p);
                } else if (*p && ispunct((unsigned char)*p))
                    buf_addc(&out, *p);
                else {
                    *why = "unsupported escape (only \\d \\D \\w \\W \\s \\S, \\n \\t \\r "
                           "\\f \\v, \\uXXXX and escaped punctuation are)";
                    r = -EINVAL;
                }
                break;
            }
            if (r == 0)
                p++;
        } else if (ch == '[')
            r = translate_class(&p, &out, why);
        else if (ch == '(' && p[1] == '?') {
            if (p[2] != ':') {
                *why = "lookarounds and named groups are not supported";
                r = -EINVAL;
            } else {
                buf_addc(&out, '(');
                p += 3;
            }
        } else if (ch == '.') {
            /* ECMA's "." stops at line terminators; POSIX's does not. */
            buf_adds(&out, utf8 ? "[^\n\r\xe2\x80\xa8\xe2\x80\xa9]" : "[^\n\r]");
            p++;
        } else if ((ch == '*' || ch == '+' || ch == '?' || ch == '}') && p[1] == '?') {
            buf_addc(&out, ch);
            p += 2;
        } else {
            buf_addc(&out, ch);
            p++;
        }
    }
    if (r < 0) {
        buf_done(&out);
        return r;
    }
    *ret = buf_steal(&out);
    if (!*ret) {
        *why = "out of memory";
        return -ENOMEM;
    }
    return 0;
}

/* ---- compiled schema ---- */

typedef enum { NODE_TRUE, NODE_FALSE, NODE_SCHEMA } NodeKind;

typedef struct Node Node;

typedef struct {
    bool set;
    Num v;
    Decimal dec; /* multipleOf only */
    char text[40];
} Bound;

typedef struct {
    const char *key; /* borrowed from the schema document */
    const Node *node;
} PropEntry;

typedef struct {
    regex_t re;
    const Node *node;
} PatternEntry;

struct Node {
    NodeKind kind;
    const Node *ref; /* $ref: when set, nothing else of this node is validated */

    unsigned types; /* TYPE_* bits; 0 when there is no "type" */
    bool has_const;
    json_object *const_value; /* borrowed; NULL is JSON null */
    json_object *enum_values; /* borrowed array */
    char *enum_text;          /* "one of: a, b", for messages */
    char *const_text;         /* "equal to ...", for messages */

    Bound minimum, maximum, exclusive_minimum, exclusive_maximum, multiple_of;

    int64_t min_length, max_length; /* -1 when absent, as for every limit below */
    regex_t *pattern;
    const char *pattern_text;

    const Node *items;       /* "items" as one schema */
    const Node **items_list; /* "items" as an array */
    size_t n_items_list;
    const Node *additional_items;
    int64_t min_items, max_items;
    bool unique_items;
    const Node *contains;

    PropEntry *props; /* sorted by key */
    size_t n_props;
    PatternEntry *patterns;
    size_t n_patterns;
    const Node *additional_props;
    const Node *property_names;
    bool walk_members;
    const char **required; /* borrowed */
    size_t n_required;
    int64_t min_props, max_props;

    const Node **all_of, **any_of, **one_of;
    size_t n_all_of, n_any_of, n_one_of;
    const Node *not_node, *if_node, *then_node, *else_node;
};

static const Node node_true = {.kind = NODE_TRUE};
static const Node node_false = {.kind = NODE_FALSE};

struct CmSchema {
    const Node *root;
    Node **nodes;
    size_t n_nodes, cap_nodes;
    json_object **docs; /* owned: the caller's document, then private copies of remotes */
    size_t n_docs, cap_docs;
};

static void node_free(Node *n)
{
    if (!n)
        return;
    free(n->enum_text);
    free(n->const_text);
    if (n->pattern) {
        regfree(n->pattern);
        free(n->pattern);
    }
    free(n->items_list);
    free(n->props);
    for (size_t i = 0; i < n->n_patterns; i++)
        regfree(&n->patterns[i].re);
    free(n->patterns);
    free(n->required);
    free(n->all_of);
    free(n->any_of);
    free(n->one_of);
    free(n);
}

CmSchema *cm_schema_free(CmSchema *s)
{
    if (!s)
        return NULL;
    for (size_t i = 0; i < s->n_nodes; i++)
        node_free(s->nodes[i]);
    free(s->nodes);
    for (size_t i = 0; i < s->n_docs; i++)
        json_object_put(s->docs[i]);
    free(s->docs);
    free(s);
    return NULL;
}

/* ---- remote documents ---- */

typedef struct {
    char *uri;
    json_object *doc;
} Remote;

static pthread_mutex_t remotes_lock = PTHREAD_MUTEX_INITIALIZER;
static Remote *remotes;
static size_t n_remotes, cap_remotes;

/* The draft-07 metaschema, as published at http://json-schema.org/draft-07/schema. */
static const char metaschema_text[] =
    "{\"$schema\":\"http://json-schema.org/draft-07/schema#\","
    "\"$id\":\"http://json-schema.org/draft-07/schema#\","
    "\"title\":\"Core schema meta-schema\","
    "\"definitions\":{\"schemaArray\":{\"type\":\"array\",\"minItems\":1,"
    "\"items\":{\"$ref\":\"#\"}},\"nonNegativeInteger\":{\"type\":\"integer\",\"minimum\":0},"
    "\"nonNegativeIntegerDefault0\":{\"allOf\":[{\"$ref\":\"#/definitions/nonNegativeInteger\"},"
    "{\"default\":0}]},\"simpleTypes\":{\"enum\":[\"array\",\"boolean\",\"integer\",\"null\","
    "\"number\",\"object\",\"string\"]},\"stringArray\":{\"type\":\"array\","
    "\"items\":{\"type\":\"string\"},\"uniqueItems\":true,\"default\":[]}},"
    "\"type\":[\"object\",\"boolean\"],\"properties\":{\"$id\":{\"type\":\"string\","
    "\"format\":\"uri-reference\"},\"$schema\":{\"type\":\"string\",\"format\":\"uri\"},"
    "\"$ref\":{\"type\":\"string\",\"format\":\"uri-reference\"},"
    "\"$comment\":{\"type\":\"string\"},\"title\":{\"type\":\"string\"},"
    "\"description\":{\"type\":\"string\"},\"default\":true,\"readOnly\":{\"type\":\"boolean\","
    "\"default\":false},\"examples\":{\"type\":\"array\",\"items\":true},"
    "\"multipleOf\":{\"type\":\"number\",\"exclusiveMinimum\":0},"
    "\"maximum\":{\"type\":\"number\"},\"exclusiveMaximum\":{\"type\":\"number\"},"
    "\"minimum\":{\"type\":\"number\"},\"exclusiveMinimum\":{\"type\":\"number\"},"
    "\"maxLength\":{\"$ref\":\"#/definitions/nonNegativeInteger\"},"
    "\"minLength\":{\"$ref\":\"#/definitions/nonNegativeIntegerDefault0\"},"
    "\"pattern\":{\"type\":\"string\",\"format\":\"regex\"},\"additionalItems\":{\"$ref\":\"#\"},"
    "\"items\":{\"anyOf\":[{\"$ref\":\"#\"},{\"$ref\":\"#/definitions/schemaArray\"}],"
    "\"default\":true},\"maxItems\":{\"$ref\":\"#/definitions/nonNegativeInteger\"},"
    "\"minItems\":{\"$ref\":\"#/definitions/nonNegativeIntegerDefault0\"},"
    "\"uniqueItems\":{\"type\":\"boolean\",\"default\":false},\"contains\":{\"$ref\":\"#\"},"
    "\"maxProperties\":{\"$ref\":\"#/definitions/nonNegativeInteger\"},"
    "\"minProperties\":{\"$ref\":\"#/definitions/nonNegativeIntegerDefault0\"},"
    "\"required\":{\"$ref\":\"#/definitions/stringArray\"},"
    "\"additionalProperties\":{\"$ref\":\"#\"},\"definitions\":{\"type\":\"object\","
    "\"additionalProperties\":{\"$ref\":\"#\"},\"default\":{}},\"properties\":{\"type\":\"object\","
    "\"additionalProperties\":{\"$ref\":\"#\"},\"default\":{}},"
    "\"patternProperties\":{\"type\":\"object\",\"additionalProperties\":{\"$ref\":\"#\"},"
    "\"propertyNames\":{\"format\":\"regex\"},\"default\":{}},"
    "\"dependencies\":{\"type\":\"object\",\"additionalProperties\":{\"anyOf\":[{\"$ref\":\"#\"},"
    "{\"$ref\":\"#/definitions/stringArray\"}]}},\"propertyNames\":{\"$ref\":\"#\"},"
    "\"const\":true,\"enum\":{\"type\":\"array\",\"items\":true},"
    "\"type\":{\"anyOf\":[{\"$ref\":\"#/definitions/simpleTypes\"},{\"type\":\"array\","
    "\"items\":{\"$ref\":\"#/definitions/simpleTypes\"},\"minItems\":1,\"uniqueItems\":true}]},"
    "\"format\":{\"type\":\"string\"},\"contentMediaType\":{\"type\":\"string\"},"
    "\"contentEncoding\":{\"type\":\"string\"},\"if\":{\"$ref\":\"#\"},\"then\":{\"$ref\":\"#\"},"
    "\"else\":{\"$ref\":\"#\"},\"allOf\":{\"$ref\":\"#/definitions/schemaArray\"},"
    "\"anyOf\":{\"$ref\":\"#/definitions/schemaArray\"},"
    "\"oneOf\":{\"$ref\":\"#/definitions/schemaArray\"},\"not\":{\"$ref\":\"#\"}},"
    "\"default\":true}";

static bool is_schema_value(json_object *o)
{
    return json_object_is_type(o, json_type_object) || json_object_is_type(o, json_type_boolean);
}

int cm_schema_add_remote(const char *uri, json_object *doc, CmError *err)
{
    _cleanup_free_ char *key = NULL;
    json_object *copy = NULL;
    UriParts parts;
    Remote *arr;

    uri_split(uri, &parts);
    if (!parts.scheme)
        return cm_error_set_code(err, CM_ERROR_INVALID, "invalid_schema", "",
                                 "remote schema URI \"%s\" is not absolute", uri);
    if (!is_schema_value(doc))
        return cm_error_set_code(err, CM_ERROR_INVALID, "invalid_schema", "",
                                 "remote schema %s is neither an object nor a boolean", uri);
    key = uri_resolve(uri, "", true);
    if (!key || json_object_deep_copy(doc, &copy, NULL) < 0)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");

    pthread_mutex_lock(&remotes_lock);
    for (size_t i = 0; i < n_remotes; i++) {
        if (streq(remotes[i].uri, key)) {
            json_object_put(remotes[i].doc);
            remotes[i].doc = copy;
            pthread_mutex_unlock(&remotes_lock);
            return 0;
        }
    }
    arr = grow(remotes, &cap_remotes, n_remotes + 1, sizeof(*remotes));
    if (!arr) {
        pthread_mutex_unlock(&remotes_lock);
        json_object_put(copy);
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    }
    remotes = arr;
    remotes[n_remotes++] = (Remote){.uri = TAKE_PTR(key), .doc = copy};
    pthread_mutex_unlock(&remotes_lock);
    return 0;
}

void cm_schema_clear_remotes(void)
{
    pthread_mutex_lock(&remotes_lock);
    for (size_t i = 0; i < n_remotes; i++) {
        free(remotes[i].uri);
        json_object_put(remotes[i].doc);
    }
    free(remotes);
    remotes = NULL;
    n_remotes = cap_remotes = 0;
    pthread_mutex_unlock(&remotes_lock);
}

/* Returns: a private copy of the document registered for @uri, or NULL. */
static json_object *remote_copy(const char *uri)
{
    json_object *copy = NULL;

    pthread_mutex_lock(&remotes_lock);
    for (size_t i = 0; i < n_remotes; i++) {
        if (streq(remotes[i].uri, uri)) {
            if (json_object_deep_copy(remotes[i].doc, &copy, NULL) < 0)
                copy = NULL;
            break;
        }
    }
    pthread_mutex_unlock(&remotes_lock);
    return copy;
}

/* ---- compiler ---- */

/* An open-addressing map from document locations (json_object pointers) to anything. */
typedef struct {
    const void **keys;
    void **vals;
    size_t n, cap;
} PtrMap;

static size_t ptr_slot(const void *p, size_t cap)
{
    return (size_t)hash_mix((uint64_t)(uintptr_t)p) & (cap - 1);
}

static void *ptrmap_get(const PtrMap *m, const void *key)
{
    if (!m->cap)
        return NULL;
    for (size_t i = ptr_slot(key, m->cap);; i = (i + 1) & (m->cap - 1)) {
        if (!m->keys[i])
            return NULL;
        if (m->keys[i] == key)
            return m->vals[i];
    }
}

static int ptrmap_put(PtrMap *m, const void *key, void *val)
{
    if ((m->n + 1) * 2 > m->cap) {
        PtrMap bigger = {.cap = m->cap ? m->cap * 2 : 64};
        bigger.keys = calloc(bigger.cap, sizeof(*bigger.keys));
        bigger.vals = calloc(bigger.cap, sizeof(*bigger.vals));
        if (!bigger.keys || !bigger.vals) {
            free(bigger.keys);
            free(bigger.vals);
            return -ENOMEM;
        }
        for (size_t i = 0; i < m->cap; i++)
            if (m->keys[i])
                (void)ptrmap_put(&bigger, m->keys[i], m->vals[i]);
        free(m->keys);
        free(m->vals);
        *m = bigger;
    }
    for (size_t i = ptr_slot(key, m->cap);; i = (i + 1) & (m->cap - 1)) {
        if (!m->keys[i]) {
            m->keys[i] = key;
            m->vals[i] = val;
            m->n++;
            return 0;
        }
        if (m->keys[i] == key) {
            m->vals[i] = val;
            return 0;
        }
    }
}

static void ptrmap_done(PtrMap *m)
{
    free(m->keys);
    free(m->vals);
}

typedef struct {
    char *uri; /* absolute, or "" for the compiled document when it has no "$id" */
    json_object *obj;
    char *ptr; /* where obj lies, for messages */
} Resource;

typedef struct {
    Node *node;
    char *uri; /* resolved */
    char *ptr; /* of the "$ref" keyword */
} PendingRef;

typedef struct {
    const char *key;
    json_object *value;
    char *ptr;
} PendingUnknown;

typedef struct {
    CmSchema *s;
    CmError *err;
    PtrMap compiled;   /* schema object -> Node */
    PtrMap referenced; /* every value a $ref's JSON pointer walked through */
    Resource *res;
    size_t n_res, cap_res;
    PendingRef *refs;
    size_t n_refs, cap_refs;
    PendingUnknown *unknown;
    size_t n_unknown, cap_unknown;
} Compiler;

static void compiler_done(Compiler *c)
{
    ptrmap_done(&c->compiled);
    ptrmap_done(&c->referenced);
    for (size_t i = 0; i < c->n_res; i++) {
        free(c->res[i].uri);
        free(c->res[i].ptr);
    }
    free(c->res);
    for (size_t i = 0; i < c->n_refs; i++) {
        free(c->refs[i].uri);
        free(c->refs[i].ptr);
    }
    free(c->refs);
    for (size_t i = 0; i < c->n_unknown; i++)
        free(c->unknown[i].ptr);
    free(c->unknown);
}

_printf_(3, 4) static int compile_error(Compiler *c, const char *ptr, const char *fmt, ...)
{
    char msg[sizeof(c->err->message)];
    va_list ap;

    if (!c->err)
        return -EINVAL;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return cm_error_set_code(c->err, CM_ERROR_INVALID, "invalid_schema", ptr, "%s", msg);
}

static int oom(Compiler *c)
{
    cm_error_set(c->err, CM_ERROR_INTERNAL, "", "out of memory");
    return -ENOMEM;
}

static int add_doc(Compiler *c, json_object *doc)
{
    json_object **arr = grow(c->s->docs, &c->s->cap_docs, c->s->n_docs + 1, sizeof(*arr));
    if (!arr) {
        json_object_put(doc);
        return oom(c);
    }
    c->s->docs = arr;
    c->s->docs[c->s->n_docs++] = doc;
    return 0;
}

static Resource *find_resource(Compiler *c, const char *uri)
{
    for (size_t i = 0; i < c->n_res; i++)
        if (streq(c->res[i].uri, uri))
            return &c->res[i];
    return NULL;
}

static int add_resource(Compiler *c, const char *uri, json_object *obj, const char *ptr)
{
    Resource *old = find_resource(c, uri), *arr;

    if (old) {
        if (old->obj == obj)
            return 0;
        return compile_error(c, ptr, "\"$id\" %s is already used at %s", uri,
                             *old->ptr ? old->ptr : "the root");
    }
    arr = grow(c->res, &c->cap_res, c->n_res + 1, sizeof(*arr));
    if (!arr)
        return oom(c);
    c->res = arr;
    c->res[c->n_res] = (Resource){.uri = strdup(uri), .obj = obj, .ptr = strdup(ptr)};
    if (!c->res[c->n_res].uri || !c->res[c->n_res].ptr) {
        free(c->res[c->n_res].uri);
        free(c->res[c->n_res].ptr);
        return oom(c);
    }
    c->n_res++;
    return 0;
}

/* The string "$id" of a schema object, unless a "$ref" next to it makes it void (draft-07). */
static const char *schema_id(json_object *o)
{
    const char *id = cm_json_get_str(o, "$id", NULL);
    if (!id || json_object_object_get_ex(o, "$ref", NULL))
        return NULL;
    return id;
}

/* Which keywords hold subschemas, so that "$id"s can be found before any $ref is resolved. */
typedef enum { SUB_ONE, SUB_LIST, SUB_MAP, SUB_ONE_OR_LIST } SubShape;

static const struct {
    const char *name;
    SubShape shape;
} subschema_keywords[] = {
    {"properties", SUB_MAP},
    {"patternProperties", SUB_MAP},
    {"definitions", SUB_MAP},
    {"additionalProperties", SUB_ONE},
    {"propertyNames", SUB_ONE},
    {"items", SUB_ONE_OR_LIST},
    {"additionalItems", SUB_ONE},
    {"contains", SUB_ONE},
    {"allOf", SUB_LIST},
    {"anyOf", SUB_LIST},
    {"oneOf", SUB_LIST},
    {"not", SUB_ONE},
    {"if", SUB_ONE},
    {"then", SUB_ONE},
    {"else", SUB_ONE},
};

static int index_schema(Compiler *c, json_object *o, const char *base, const char *ptr,
                        unsigned depth);

static int index_child(Compiler *c, json_object *o, const char *base, const char *ptr,
                       const char *token, unsigned depth)
{
    _cleanup_free_ char *child = cm_json_pointer_append(ptr, token);
    if (!child)
        return oom(c);
    return index_schema(c, o, base, child, depth + 1);
}

/* Records every "$id" below @o, so that a $ref can name a subschema by its URI. */
static int index_schema(Compiler *c, json_object *o, const char *base, const char *ptr,
                        unsigned depth)
{
    _cleanup_free_ char *abs = NULL, *nbase = NULL;
    const char *id = schema_id(o);
    int r;

    /* Too deep or not a schema: compilation reports it. */
    if (!json_object_is_type(o, json_type_object) || depth > COMPILE_MAX_DEPTH)
        return 0;
    if (id) {
        abs = uri_resolve(base, id, false);
        nbase = uri_resolve(base, id, true);
        if (!abs || !nbase)
            return oom(c);
        if (id[0] != '#') {
            r = add_resource(c, nbase, o, ptr);
            if (r < 0)
                return r;
            base = nbase;
        }
        /* "#name" names the object; a bare "#" at the end of an "$id" adds nothing */
        if (strchr(id, '#') && strchr(id, '#')[1]) {
            r = add_resource(c, abs, o, ptr);
            if (r < 0)
                return r;
        }
    }
    for (size_t k = 0; k < ELEMENTSOF(subschema_keywords); k++) {
        json_object *v;
        _cleanup_free_ char *kptr = NULL;

        if (!json_object_object_get_ex(o, subschema_keywords[k].name, &v))
            continue;
        kptr = cm_json_pointer_append(ptr, subschema_keywords[k].name);
        if (!kptr)
            return oom(c);
        SubShape shape = subschema_keywords[k].shape;
        if (shape == SUB_ONE_OR_LIST)
            shape = json_object_is_type(v, json_type_array) ? SUB_LIST : SUB_ONE;
        if (shape == SUB_ONE)
            r = index_schema(c, v, base, kptr, depth + 1);
        else if (shape == SUB_MAP && json_object_is_type(v, json_type_object)) {
            r = 0;
            json_object_object_foreach(v, key, val)
            {
                r = index_child(c, val, base, kptr, key, depth + 1);
                if (r < 0)
                    break;
            }
        } else if (shape == SUB_LIST && json_object_is_type(v, json_type_array)) {
            r = 0;
            for (size_t i = 0; i < json_object_array_length(v) && r == 0; i++) {
                char idx[24];
                snprintf(idx, sizeof(idx), "%zu", i);
                r = index_child(c, json_object_array_get_idx(v, i), base, kptr, idx, depth + 1);
            }
        } else
            r = 0;
        if (r < 0)
            return r;
    }
    return 0;
}

/*
 * Adds @doc (a reference the schema now owns) as the document at @uri and indexes it. Locations
 * in a remote document are named "<uri>#<pointer>" in messages, in the compiled one "<pointer>".
 */
static int add_document(Compiler *c, json_object *doc, const char *uri, bool remote)
{
    _cleanup_free_ char *ptr = NULL;
    int r;

    r = add_doc(c, doc);
    if (r < 0)
        return r;
    if (remote && asprintf(&ptr, "%s#", uri) < 0)
        return oom(c);
    r = add_resource(c, uri, doc, ptr ? ptr : "");
    if (r < 0)
        return r;
    return index_schema(c, doc, uri, ptr ? ptr : "", 0);
}

static int load_remote(Compiler *c, const char *uri, const char *ref_ptr)
{
    json_object *doc = remote_copy(uri);

    if (!doc && streq(uri, METASCHEMA_URI)) {
        CmError perr = {0};
        if (cm_json_parse(metaschema_text, strlen(metaschema_text), &doc, &perr) < 0)
            return compile_error(c, ref_ptr, "built-in metaschema: %s", perr.message);
    }
    if (!doc)
        return 0;
    return add_document(c, doc, uri, true);
}

static Node *node_new(Compiler *c)
{
    Node **arr, *n;

    arr = grow(c->s->nodes, &c->s->cap_nodes, c->s->n_nodes + 1, sizeof(*arr));
    if (!arr)
        return NULL;
    c->s->nodes = arr;
    n = calloc(1, sizeof(*n));
    if (!n)
        return NULL;
    n->kind = NODE_SCHEMA;
    n->min_length = n->max_length = -1;
    n->min_items = n->max_items = -1;
    n->min_props = n->max_props = -1;
    c->s->nodes[c->s->n_nodes++] = n;
    return n;
}

static int compile_schema(Compiler *c, json_object *o, const char *base, const char *ptr,
                          unsigned depth, const Node **ret);

static int compile_child(Compiler *c, json_object *o, const char *base, const char *ptr,
                         const char *token, unsigned depth, const Node **ret)
{
    _cleanup_free_ char *child = cm_json_pointer_append(ptr, token);
    if (!child)
        return oom(c);
    return compile_schema(c, o, base, child, depth + 1, ret);
}

static int compile_list(Compiler *c, json_object *v, const char *base, const char *ptr,
                        unsigned depth, const Node ***ret, size_t *ret_n)
{
    size_t n;
    const Node **list;

    if (!json_object_is_type(v, json_type_array) || json_object_array_length(v) == 0)
        return compile_error(c, ptr, "must be a non-empty array of schemas");
    n = json_object_array_length(v);
    list = calloc(n, sizeof(*list));
    if (!list)
        return oom(c);
    *ret = list; /* owned by the node from here on */
    *ret_n = n;
    for (size_t i = 0; i < n; i++) {
        char idx[24];
        snprintf(idx, sizeof(idx), "%zu", i);
        int r = compile_child(c, json_object_array_get_idx(v, i), base, ptr, idx, depth, &list[i]);
        if (r < 0)
            return r;
    }
    return 0;
}

/*
 * Whether a pattern can consume a non-ASCII character: ".", a negated class, \D \W \S, \s
 * (Unicode spaces), \u escapes or non-ASCII text. Any other pattern matches alike byte by byte
 * and character by character on valid UTF-8, and glibc matches bytes several times faster.
 */
static bool regex_needs_characters(const char *src)
{
    bool in_class = false;

    for (const char *p = src; *p; p++) {
        if ((unsigned char)*p >= 0x80)
            return true;
        if (*p == '\\') {
            if (!p[1])
                break;
            if (strchr("DWSsu", p[1]))
                return true;
            p++;
        } else if (*p == '[' && !in_class) {
            in_class = true;
            if (p[1] == '^')
                return true;
        } else if (*p == ']' && in_class)
            in_class = false;
        else if (*p == '.' && !in_class)
            return true;
    }
    return false;
}

static int compile_regex(Compiler *c, const char *src, const char *ptr, regex_t *re)
{
    _cleanup_free_ char *posix = NULL;
    bool by_byte = !work_locale_utf8 || !regex_needs_characters(src);
    const char *why = NULL;
    locale_t old = (locale_t)0;
    int r;

    /* runs inside work_locale_enter(), from cm_schema_compile() */
    r = regex_translate(src, work_locale_utf8, &posix, &why);
    if (r == -ENOMEM)
        return oom(c);
    if (r < 0)
        return compile_error(c, ptr, "regex \"%s\": %s", src, why);
    /* glibc fixes byte or character matching at regcomp() time, whatever the locale of the
     * thread that calls regexec() later */
    if (by_byte && byte_locale)
        old = uselocale(byte_locale);
    r = regcomp(re, posix, REG_EXTENDED | REG_NOSUB);
    if (old)
        uselocale(old);
    if (r != 0) {
        char msg[128];
        regerror(r, re, msg, sizeof(msg));
        return compile_error(c, ptr, "regex \"%s\" is not supported: %s", src, msg);
    }
    return 0;
}

static int parse_limit(Compiler *c, json_object *v, const char *ptr, int64_t *ret)
{
    Num x;

    if (!json_is_number(v))
        return compile_error(c, ptr, "must be a non-negative integer");
    x = num_from_json(v);
    if (!num_is_integer(x) || num_cmp(x, (Num){.kind = NUM_INT}) < 0)
        return compile_error(c, ptr, "must be a non-negative integer");
    /* A limit above INT64_MAX can never be reached; INT64_MAX says the same. */
    if (x.kind == NUM_INT)
        *ret = x.i;
    else if (x.kind == NUM_DOUBLE && x.d < 9223372036854775808.0)
        *ret = (int64_t)x.d;
    else
        *ret = INT64_MAX;
    return 0;
}

static int parse_bound(Compiler *c, json_object *v, const char *ptr, Bound *ret)
{
    if (!json_is_number(v))
        return compile_error(c, ptr, "must be a number");
    ret->set = true;
    ret->v = num_from_json(v);
    num_format(ret->v, ret->text, sizeof(ret->text));
    return 0;
}

typedef int (*KeywordFunc)(Compiler *c, Node *n, json_object *v, const char *base, const char *ptr,
                           unsigned depth);

static int kw_string(Compiler *c, Node *n, json_object *v, const char *base, const char *ptr,
                     unsigned depth)
{
    if (!json_object_is_type(v, json_type_string))
        return compile_error(c, ptr, "must be a string");
    return 0;
}

static int kw_any(Compiler *c, Node *n, json_object *v, const char *base, const char *ptr,
                  unsigned depth)
{
    return 0;
}

static int kw_schema_uri(Compiler *c, Node *n, json_object *v, const char *base, const char *ptr,
                         unsigned depth)
{
    static const char *const drafts[] = {
        "http://json-schema.org/draft-07/schema#",
        "http://json-schema.org/draft-07/schema",
        "https://json-schema.org/draft-07/schema#",
        "https://json-schema.org/draft-07/schema",
    };

    if (json_object_is_type(v, json_type_string))
        for (size_t i = 0; i < ELEMENTSOF(drafts); i++)
            if (streq(json_object_get_string(v), drafts[i]))
                return 0;
    return compile_error(c, ptr, "only draft-07 schemas (\"%s\") are supported", drafts[0]);
}

static int kw_examples(Compiler *c, Node *n, json_object *v, const char *base, const char *ptr,
                       unsigned depth)
{
    if (!json_object_is_type(v, json_type_array))
        return compile_error(c, ptr, "must be an array");
    return 0;
}

static int kw_ref(Compiler *c, Node *n, json_object *v, const char *base, const char *ptr,
                  unsigned depth)
{
    PendingRef *arr;
    char *uri, *p;

    if (!json_object_is_type(v, json_type_string))
        return compile_error(c, ptr, "must be a string (a URI reference)");
    arr = grow(c->refs, &c->cap_refs, c->n_refs + 1, sizeof(*arr));
    if (!arr)
        return oom(c);
    c->refs = arr;
    uri = uri_resolve(base, json_object_get_string(v), false);
    p = strdup(ptr);
    if (!uri || !p) {
        free(uri);
        free(p);
        return oom(c);
    }
    c->refs[c->n_refs++] = (PendingRef){.node = n, .uri = uri, .ptr = p};
    return 0;
}

static int kw_definitions(Compiler *c, Node *n, json_object *v, const char *base, const char *ptr,
                          unsigned depth)
{
    const Node *unused;

    if (!json_object_is_type(v, json_type_object))
        return compile_error(c, ptr, "must be an object of schemas");
    /* Compiled for their checks and as $ref targets; nothing validates against them directly. */
    json_object_object_foreach(v, key, val)
    {
        int r = compile_child(c, val, base, ptr, key, depth, &unused);
        if (r < 0)
            return r;
    }
    return 0;
}

static int kw_type(Compiler *c, Node *n, json_object *v, const char *base, const char *ptr,
                   unsigned depth)
{
    size_t count = 1;
    bool list = json_object_is_type(v, json_type_array);

    if (list)
        count = json_object_array_length(v);
    if ((!list && !json_object_is_type(v, json_type_string)) || count == 0)
        return compile_error(c, ptr, "must be a type name or a non-empty array of type names");
    for (size_t i = 0; i < count; i++) {
        json_object *t = list ? json_object_array_get_idx(v, i) : v;
        const char *name = NULL;
        unsigned bit = 0;

        if (json_object_is_type(t, json_type_string))
            name = json_object_get_string(t);
        for (size_t k = 0; name && k < ELEMENTSOF(type_names); k++)
            if (streq(name, type_names[k].name))
                bit = type_names[k].bit;
        if (!bit)
            return compile_error(c, ptr, "unknown type %s%s%s", name ? "\"" : "",
                                 name ? name : "(not a string)", name ? "\"" : "");
        if (n->types & bit)
            return compile_error(c, ptr, "type \"%s\" is listed twice", name);
        n->types |= bit;
    }
    return 0;
}

static int kw_enum(Compiler *c, Node *n, json_object *v, const char *base, const char *ptr,
                   unsigned depth)
{
    Buf b = {0};
    size_t count;

    if (!json_object_is_type(v, json_type_array) || json_object_array_length(v) == 0)
        return compile_error(c, ptr, "must be a non-empty array");
    n->enum_values = v;
    count = json_object_array_length(v);
    buf_adds(&b, "one of: ");
    for (size_t i = 0; i < count; i++) {
        if (i)
            buf_adds(&b, ", ");
        render_plain(&b, json_object_array_get_idx(v, i));
    }
    n->enum_text = buf_steal(&b);
    return n->enum_text ? 0 : oom(c);
}

static int kw_const(Compiler *c, Node *n, json_object *v, const char *base, const char *ptr,
                    unsigned depth)
{
    Buf b = {0};

    n->has_const = true;
    n->const_value = v;
    buf_adds(&b, "equal to ");
    render_json(&b, v);
    n->const_text = buf_steal(&b);
    return n->const_text ? 0 : oom(c);
}

static int cmp_props(const void *a, const void *b)
{
    return strcmp(((const PropEntry *)a)->key, ((const PropEntry *)b)->key);
}

static int kw_properties(Compiler *c, Node *n, json_object *v, const char *base, const char *ptr,
                         unsigned depth)
{
    size_t count;

    if (!json_object_is_type(v, json_type_object))
        return compile_error(c, ptr, "must be an object of schemas");
    count = (size_t)json_object_object_length(v);
    n->props = calloc(count ? count : 1, sizeof(*n->props));
    if (!n->props)
        return oom(c);
    json_object_object_foreach(v, key, val)
    {
        PropEntry *e = &n->props[n->n_props++];
        e->key = key;
        int r = compile_child(c, val, base, ptr, key, depth, &e->node);
        if (r < 0)
            return r;
    }
    qsort(n->props, n->n_props, sizeof(*n->props), cmp_props);
    return 0;
}

static int kw_pattern_properties(Compiler *c, Node *n, json_object *v, const char *base,
                                 const char *ptr, unsigned depth)
{
    size_t count;

    if (!json_object_is_type(v, json_type_object))
        return compile_error(c, ptr, "must be an object of schemas");
    count = (size_t)json_object_object_length(v);
    /* Allocated once at full size: a compiled regex_t must not move. */
    n->patterns = calloc(count ? count : 1, sizeof(*n->patterns));
    if (!n->patterns)
        return oom(c);
    json_object_object_foreach(v, key, val)
    {
        PatternEntry *e = &n->patterns[n->n_patterns];
        _cleanup_free_ char *kptr = cm_json_pointer_append(ptr, key);
        int r;

        if (!kptr)
            return oom(c);
        r = compile_regex(c, key, kptr, &e->re);
        if (r < 0)
            return r;
        n->n_patterns++;
        r = compile_schema(c, val, base, kptr, depth + 1, &e->node);
        if (r < 0)
            return r;
    }
    return 0;
}

static int kw_required(Compiler *c, Node *n, json_object *v, const char *base, const char *ptr,
                       unsigned depth)
{
    size_t count;

    if (!json_object_is_type(v, json_type_array))
        return compile_error(c, ptr, "must be an array of strings");
    count = json_object_array_length(v);
    n->required = calloc(count ? count : 1, sizeof(*n->required));
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

#define KW_SCHEMA(fname, field)                                                                    \
    static int fname(Compiler *c, Node *n, json_object *v, const char *base, const char *ptr,      \
                     unsigned depth)                                                               \
    {                                                                                              \
        return compile_schema(c, v, base, ptr, depth + 1, &n->field);                              \
    }

KW_SCHEMA(kw_additional_properties, additional_props)
KW_SCHEMA(kw_property_names, property_names)
KW_SCHEMA(kw_additional_items, additional_items)
KW_SCHEMA(kw_contains, contains)
KW_SCHEMA(kw_not, not_node)
KW_SCHEMA(kw_if, if_node)
KW_SCHEMA(kw_then, then_node)
KW_SCHEMA(kw_else, else_node)

#define KW_LIMIT(fname, field)                                                                     \
    static int fname(Compiler *c, Node *n, json_object *v, const char *base, const char *ptr,      \
                     unsigned depth)                                                               \
    {                                                                                              \
        return parse_limit(c, v, ptr, &n->field);                                                  \
    }

KW_LIMIT(kw_min_length, min_length)
KW_LIMIT(kw_max_length, max_length)
KW_LIMIT(kw_min_items, min_items)
KW_LIMIT(kw_max_items, max_items)
KW_LIMIT(kw_min_properties, min_props)
KW_LIMIT(kw_max_properties, max_props)

#define KW_BOUND(fname, field)                                                                     \
    static int fname(Compiler *c, Node *n, json_object *v, const char *base, const char *ptr,      \
                     unsigned depth)                                                               \
    {                                                                                              \
        return parse_bound(c, v, ptr, &n->field);                                                  \
    }

KW_BOUND(kw_minimum, minimum)
KW_BOUND(kw_maximum, maximum)
KW_BOUND(kw_exclusive_minimum, exclusive_minimum)
KW_BOUND(kw_exclusive_maximum, exclusive_maximum)

#define KW_LIST(fname, field)                                                                      \
    static int fname(Compiler *c, Node *n, json_object *v, const char *base, const char *ptr,      \
                     unsigned depth)                                                               \
    {                                                                                              \
        return compile_list(c, v, base, ptr, depth, &n->field, &n->n_##field);                     \
    }

KW_LIST(kw_all_of, all_of)
KW_LIST(kw_any_of, any_of)
KW_LIST(kw_one_of, one_of)

static int kw_multiple_of(Compiler *c, Node *n, json_object *v, const char *base, const char *ptr,
                          unsigned depth)
{
    int r = parse_bound(c, v, ptr, &n->multiple_of);
    if (r < 0)
        return r;
    if (num_cmp(n->multiple_of.v, (Num){.kind = NUM_INT}) <= 0 ||
        !num_decimal(n->multiple_of.v, &n->multiple_of.dec) || n->multiple_of.dec.mant == 0)
        return compile_error(c, ptr, "must be a number greater than 0");
    return 0;
}

static int kw_unique_items(Compiler *c, Node *n, json_object *v, const char *base, const char *ptr,
                           unsigned depth)
{
    if (!json_object_is_type(v, json_type_boolean))
        return compile_error(c, ptr, "must be a boolean");
    n->unique_items = json_object_get_boolean(v);
    return 0;
}

static int kw_items(Compiler *c, Node *n, json_object *v, const char *base, const char *ptr,
                    unsigned depth)
{
    if (json_object_is_type(v, json_type_array))
        return compile_list(c, v, base, ptr, depth, &n->items_list, &n->n_items_list);
    return compile_schema(c, v, base, ptr, depth + 1, &n->items);
}

static int kw_pattern(Compiler *c, Node *n, json_object *v, const char *base, const char *ptr,
                      unsigned depth)
{
    if (!json_object_is_type(v, json_type_string))
        return compile_error(c, ptr, "must be a string (a regex)");
    n->pattern = calloc(1, sizeof(*n->pattern));
    if (!n->pattern)
        return oom(c);
    n->pattern_text = json_object_get_string(v);
    int r = compile_regex(c, n->pattern_text, ptr, n->pattern);
    if (r < 0) {
        free(n->pattern);
        n->pattern = NULL;
    }
    return r;
}

/* Every keyword the validator knows. Anything else is refused: see cm-schema.h. */
static const struct {
    const char *name;
    KeywordFunc func;
} keywords[] = {
    {"$schema", kw_schema_uri},
    {"$id", kw_string},
    {"$ref", kw_ref},
    {"$comment", kw_string},
    {"title", kw_string},
    {"description", kw_string},
    {"format", kw_string},
    {"examples", kw_examples},
    {"default", kw_any},
    {"definitions", kw_definitions},
    {"type", kw_type},
    {"enum", kw_enum},
    {"const", kw_const},
    {"properties", kw_properties},
    {"patternProperties", kw_pattern_properties},
    {"additionalProperties", kw_additional_properties},
    {"propertyNames", kw_property_names},
    {"required", kw_required},
    {"minProperties", kw_min_properties},
    {"maxProperties", kw_max_properties},
    {"items", kw_items},
    {"additionalItems", kw_additional_items},
    {"minItems", kw_min_items},
    {"maxItems", kw_max_items},
    {"uniqueItems", kw_unique_items},
    {"contains", kw_contains},
    {"minLength", kw_min_length},
    {"maxLength", kw_max_length},
    {"pattern", kw_pattern},
    {"minimum", kw_minimum},
    {"maximum", kw_maximum},
    {"exclusiveMinimum", kw_exclusive_minimum},
    {"exclusiveMaximum", kw_exclusive_maximum},
    {"multipleOf", kw_multiple_of},
    {"allOf", kw_all_of},
    {"anyOf", kw_any_of},
    {"oneOf", kw_one_of},
    {"not", kw_not},
    {"if", kw_if},
    {"then", kw_then},
    {"else", kw_else},
};

static KeywordFunc keyword_find(const char *name)
{
    for (size_t i = 0; i < ELEMENTSOF(keywords); i++)
        if (streq(keywords[i].name, name))
            return keywords[i].func;
    return NULL;
}

static int note_unknown(Compiler *c, const char *key, json_object *value, const char *ptr)
{
    PendingUnknown *arr = grow(c->unknown, &c->cap_unknown, c->n_unknown + 1, sizeof(*arr));
    char *p;

    if (!arr)
        return oom(c);
    c->unknown = arr;
    p = strdup(ptr);
    if (!p)
        return oom(c);
    c->unknown[c->n_unknown++] = (PendingUnknown){.key = key, .value = value, .ptr = p};
    return 0;
}

static int compile_schema(Compiler *c, json_object *o, const char *base, const char *ptr,
                          unsigned depth, const Node **ret)
{
    _cleanup_free_ char *id_base = NULL;
    const char *id;
    Node *n;
    int r;

    if (depth > COMPILE_MAX_DEPTH)
        return compile_error(c, ptr, "schema is nested more than %d levels deep",
                             COMPILE_MAX_DEPTH);
    if (json_object_is_type(o, json_type_boolean)) {
        *ret = json_object_get_boolean(o) ? &node_true : &node_false;
        return 0;
    }
    if (!json_object_is_type(o, json_type_object))
        return compile_error(c, ptr, "a schema must be an object or a boolean");
    n = ptrmap_get(&c->compiled, o);
    if (n) {
        *ret = n;
        return 0;
    }
    n = node_new(c);
    if (!n || ptrmap_put(&c->compiled, o, n) < 0)
        return oom(c);
    *ret = n; /* now, so that a cycle through $ref finds it */

    id = schema_id(o);
    if (id) {
        id_base = uri_resolve(base, id, true);
        if (!id_base)
            return oom(c);
        base = id_base;
    }
    json_object_object_foreach(o, key, val)
    {
        KeywordFunc func = keyword_find(key);
        _cleanup_free_ char *kptr = cm_json_pointer_append(ptr, key);

        if (!kptr)
            return oom(c);
        r = func ? func(c, n, val, base, kptr, depth) : note_unknown(c, key, val, kptr);
        if (r < 0)
            return r;
    }
    n->walk_members = n->n_props || n->n_patterns || n->additional_props || n->property_names;
    return 0;
}

/* Walks the JSON pointer @frag (percent-decoded already) from @start. */
static int walk_pointer(Compiler *c, json_object *start, const char *frag, const char *ref_ptr,
                        const char *ref_uri, char **base, json_object **ret)
{
    json_object *cur = start;
    const char *p = frag;

    while (*p == '/') {
        const char *end = strchr(p + 1, '/');
        size_t len = end ? (size_t)(end - p - 1) : strlen(p + 1);
        _cleanup_free_ char *tok = malloc(len + 1);
        size_t t = 0;
        json_object *next = NULL;

        if (!tok)
            return oom(c);
        for (size_t i = 0; i < len; i++) {
            char ch = p[1 + i];
            if (ch == '~') {
                char esc = i + 1 < len ? p[2 + i] : 0;
                if (esc != '0' && esc != '1')
                    return compile_error(c, ref_ptr, "$ref \"%s\": bad JSON pointer escape",
                                         ref_uri);
                ch = esc == '0' ? '~' : '/';
                i++;
            }
            tok[t++] = ch;
        }
        tok[t] = 0;

        /* The "$id"s of the objects passed on the way set the target's base URI. */
        const char *id = cur != start ? schema_id(cur) : NULL;
        if (id && id[0] != '#') {
            char *nb = uri_resolve(*base, id, true);
            if (!nb)
                return oom(c);
            free(*base);
            *base = nb;
        }

        if (json_object_is_type(cur, json_type_object)) {
            if (!json_object_object_get_ex(cur, tok, &next))
                return compile_error(c, ref_ptr, "$ref \"%s\" points to nothing", ref_uri);
        } else if (json_object_is_type(cur, json_type_array)) {
            char *e = NULL;
            unsigned long idx;
            errno = 0;
            idx = strtoul(tok, &e, 10);
            if (!*tok || *e || errno || !isdigit((unsigned char)tok[0]) ||
                (tok[0] == '0' && tok[1]) || idx >= json_object_array_length(cur))
                return compile_error(c, ref_ptr, "$ref \"%s\" points to nothing", ref_uri);
            next = json_object_array_get_idx(cur, idx);
        } else
            return compile_error(c, ref_ptr, "$ref \"%s\" points to nothing", ref_uri);
        cur = next;
        if (cur && ptrmap_put(&c->referenced, cur, cur) < 0)
            return oom(c);
        p = end ? end : p + 1 + len;
    }
    *ret = cur;
    return 0;
}

/* Finds the schema object that the absolute URI @uri names, with its base URI and location. */
static int resolve_ref(Compiler *c, const char *uri, const char *ref_ptr, json_object **ret,
                       char **ret_base, char **ret_ptr)
{
    const char *hash = strchr(uri, '#');
    _cleanup_free_ char *doc_uri = strndup(uri, hash ? (size_t)(hash - uri) : strlen(uri));
    _cleanup_free_ char *frag = NULL, *base = NULL;
    const char *fragment = hash ? hash + 1 : "";
    Resource *res;
    json_object *target = NULL;
    int r;

    if (!doc_uri)
        return oom(c);
    frag = percent_decode(fragment);
    if (!frag)
        return compile_error(c, ref_ptr, "$ref \"%s\" has a malformed fragment", uri);
    if (*frag && frag[0] != '/') {
        /* a plain name, declared by an "$id": "#name" */
        res = find_resource(c, uri);
        if (!res && !find_resource(c, doc_uri)) {
            r = load_remote(c, doc_uri, ref_ptr);
            if (r < 0)
                return r;
            res = find_resource(c, uri);
        }
        if (!res)
            return compile_error(c, ref_ptr, "cannot resolve $ref \"%s\"", uri);
        *ret = res->obj;
        *ret_base = TAKE_PTR(doc_uri);
        *ret_ptr = strdup(res->ptr);
        return *ret_ptr ? 0 : oom(c);
    }
    res = find_resource(c, doc_uri);
    if (!res) {
        r = load_remote(c, doc_uri, ref_ptr);
        if (r < 0)
            return r;
        res = find_resource(c, doc_uri);
    }
    if (!res)
        return compile_error(c, ref_ptr, "cannot resolve $ref \"%s\"", uri);
    base = TAKE_PTR(doc_uri);
    r = walk_pointer(c, res->obj, frag, ref_ptr, uri, &base, &target);
    if (r < 0)
        return r;
    if (asprintf(ret_ptr, "%s%s", res->ptr, frag) < 0)
        return oom(c);
    *ret = target;
    *ret_base = TAKE_PTR(base);
    return 0;
}

static int resolve_refs(Compiler *c)
{
    /* Compiling a target may add references: c->refs grows while this runs. */
    for (size_t i = 0; i < c->n_refs; i++) {
        _cleanup_free_ char *base = NULL, *ptr = NULL;
        json_object *target = NULL;
        const Node *node;
        int r;

        r = resolve_ref(c, c->refs[i].uri, c->refs[i].ptr, &target, &base, &ptr);
        if (r < 0)
            return r;
        r = compile_schema(c, target, base, ptr, 0, &node);
        if (r < 0)
            return r;
        c->refs[i].node->ref = node;
    }
    /* A chain of $refs that comes back to itself would validate forever without reading
     * anything; refuse it now rather than hitting the depth limit on every request. */
    for (size_t i = 0; i < c->n_refs; i++) {
        const Node *n = c->refs[i].node;
        size_t hops = 0;
        while (n->kind == NODE_SCHEMA && n->ref && hops <= c->n_refs) {
            n = n->ref;
            hops++;
        }
        if (hops > c->n_refs)
            return compile_error(c, c->refs[i].ptr, "$ref \"%s\" refers to itself", c->refs[i].uri);
    }
    return 0;
}

static int check_unknown(Compiler *c)
{
    for (size_t i = 0; i < c->n_unknown; i++) {
        /* A member that a $ref points into is a container of definitions, not a typo. */
        if (c->unknown[i].value && ptrmap_get(&c->referenced, c->unknown[i].value))
            continue;
        return compile_error(c, c->unknown[i].ptr, "unsupported keyword \"%s\"", c->unknown[i].key);
    }
    return 0;
}

int cm_schema_compile(json_object *doc, CmSchema **ret, CmError *err)
{
    _cleanup_(cm_schema_freep) CmSchema *s = NULL;
    _cleanup_free_ char *doc_uri = NULL;
    Compiler c = {.err = err};
    const Node *root;
    const char *id;
    locale_t old;
    int r;

    if (!is_schema_value(doc))
        return cm_error_set_code(err, CM_ERROR_INVALID, "invalid_schema", "",
                                 "a schema must be an object or a boolean");
    s = calloc(1, sizeof(*s));
    if (!s)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    c.s = s;
    old = work_locale_enter();

    id = json_object_is_type(doc, json_type_object) ? schema_id(doc) : NULL;
    doc_uri = id ? uri_resolve("", id, true) : strdup("");
    if (!doc_uri) {
        r = oom(&c);
        goto cleanup;
    }
    r = add_document(&c, json_object_get(doc), doc_uri, false);
    if (r < 0)
        goto cleanup;
    r = compile_schema(&c, doc, "", "", 0, &root);
    if (r < 0)
        goto cleanup;
    r = resolve_refs(&c);
    if (r < 0)
        goto cleanup;
    r = check_unknown(&c);
    if (r < 0)
        goto cleanup;
    s->root = root;
    *ret = TAKE_PTR(s);
cleanup:
    work_locale_leave(old);
    compiler_done(&c);
    return r;
}

int cm_schema_load_file(const char *path, CmSchema **ret, CmError *err)
{
    _cleanup_json_ json_object *doc = NULL;
    int r;

    r = cm_json_load_file(path, CM_SCHEMA_MAX_FILE_SIZE, &doc, err);
    if (r < 0)
        return r;
    r = cm_schema_compile(doc, ret, err);
    if (r < 0)
        cm_error_prefix_message(err, path);
    return r;
}

/* ---- validation ---- */

/* The instance location, as a chain of stack frames: nothing is allocated until an error. */
typedef struct PathSeg {
    const struct PathSeg *up;
    const char *key; /* NULL for an array element */
    size_t index;
} PathSeg;

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
    if (!p)
        return;
    path_render(p->up, out, size, off);
    if (p->key)
        path_add(out, size, off, p->key);
    else {
        char idx[24];
        snprintf(idx, sizeof(idx), "%zu", p->index);
        path_add(out, size, off, idx);
    }
}

_printf_(4, 5) static int fail(CmError *err, const PathSeg *path, const char *code, const char *fmt,
                               ...)
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

static int too_deep(CmError *err, const PathSeg *path)
{
    char field[sizeof(err->field)] = "";
    size_t off = 0;

    if (err) {
        path_render(path, field, sizeof(field), &off);
        cm_error_set_code(err, CM_ERROR_INTERNAL, "schema_recursion", field,
                          "schema recursion deeper than %d levels", CM_SCHEMA_MAX_DEPTH);
    }
    return -ELOOP;
}

static unsigned instance_types(json_object *o)
{
    switch (json_object_get_type(o)) {
    case json_type_null:
        return TYPE_NULL;
    case json_type_boolean:
        return TYPE_BOOLEAN;
    case json_type_object:
        return TYPE_OBJECT;
    case json_type_array:
        return TYPE_ARRAY;
    case json_type_string:
        return TYPE_STRING;
    case json_type_int:
        return TYPE_NUMBER | TYPE_INTEGER;
    case json_type_double:
        return TYPE_NUMBER | (double_is_integral(json_object_get_double(o)) ? TYPE_INTEGER : 0);
    default:
        return 0;
    }
}

static void str_append(char *buf, size_t size, size_t *off, const char *s)
{
    int n = snprintf(buf + *off, size - *off, "%s", s);
    if (n > 0)
        *off = *off + (size_t)n >= size ? size - 1 : *off + (size_t)n;
}

/* "an integer >= 1 and <= 64": the numeric rules of @n as one phrase. */
static void describe_number(const Node *n, char *buf, size_t size)
{
    const struct {
        const Bound *b;
        const char *op;
    } bounds[] = {
        {&n->minimum, " >= "},
        {&n->exclusive_minimum, " > "},
        {&n->maximum, " <= "},
        {&n->exclusive_maximum, " < "},
    };
    size_t off = 0;
    bool first = true;

    buf[0] = 0;
    str_append(buf, size, &off,
               (n->types & (TYPE_INTEGER | TYPE_NUMBER)) == TYPE_INTEGER ? "an integer"
                                                                         : "a number");
    for (size_t i = 0; i < ELEMENTSOF(bounds); i++) {
        if (!bounds[i].b->set)
            continue;
        if (!first)
            str_append(buf, size, &off, " and");
        str_append(buf, size, &off, bounds[i].op);
        str_append(buf, size, &off, bounds[i].b->text);
        first = false;
    }
    if (n->multiple_of.set) {
        str_append(buf, size, &off, first ? " that is a multiple of " : " and a multiple of ");
        str_append(buf, size, &off, n->multiple_of.text);
    }
}

static int fail_type(const Node *n, CmError *err, const PathSeg *path)
{
    char what[160];
    size_t off = 0;
    unsigned types = n->types;

    if (!err)
        return -EINVAL;
    /* The allowed values say more than their type. */
    if (n->enum_text || n->const_text)
        return fail(err, path, "wrong_type", "must be %s",
                    n->enum_text ? n->enum_text : n->const_text);
    if (!(types & ~(TYPE_INTEGER | TYPE_NUMBER))) {
        describe_number(n, what, sizeof(what));
        return fail(err, path, "wrong_type", "must be %s", what);
    }
    if (types & TYPE_NUMBER)
        types &= ~TYPE_INTEGER; /* every integer is a number */
    what[0] = 0;
    for (size_t i = 0; i < ELEMENTSOF(type_names); i++) {
        if (!(types & type_names[i].bit))
            continue;
        types &= ~type_names[i].bit;
        if (off)
            str_append(what, sizeof(what), &off, types ? ", " : " or ");
        str_append(what, sizeof(what), &off, type_names[i].phrase);
    }
    return fail(err, path, "wrong_type", "must be %s", what);
}

static int node_check(const Node *n, json_object *inst, const PathSeg *path, unsigned depth,
                      CmError *err);

static int check_number(const Node *n, json_object *inst, const PathSeg *path, CmError *err)
{
    Num x;
    char what[160];

    if (!n->minimum.set && !n->maximum.set && !n->exclusive_minimum.set &&
        !n->exclusive_maximum.set && !n->multiple_of.set)
        return 0;
    x = num_from_json(inst);
    if ((n->minimum.set && num_cmp(x, n->minimum.v) < 0) ||
        (n->exclusive_minimum.set && num_cmp(x, n->exclusive_minimum.v) <= 0) ||
        (n->maximum.set && num_cmp(x, n->maximum.v) > 0) ||
        (n->exclusive_maximum.set && num_cmp(x, n->exclusive_maximum.v) >= 0)) {
        if (!err)
            return -EINVAL;
        describe_number(n, what, sizeof(what));
        return fail(err, path, "schema_violation", "must be %s", what);
    }
    if (n->multiple_of.set && !num_is_multiple(x, &n->multiple_of.dec))
        return fail(err, path, "schema_violation", "must be a multiple of %s", n->multiple_of.text);
    return 0;
}

static size_t utf8_length(const char *s, size_t len)
{
    size_t count = 0;
    for (size_t i = 0; i < len; i++)
        count += ((unsigned char)s[i] & 0xc0) != 0x80;
    return count;
}

static int check_string(const Node *n, json_object *inst, const PathSeg *path, CmError *err)
{
    const char *str = json_object_get_string(inst);

    if (n->min_length >= 0 || n->max_length >= 0) {
        /* Code points, as JSON Schema counts: the parser has checked the UTF-8. */
        size_t len = utf8_length(str, (size_t)json_object_get_string_len(inst));
        if (n->min_length >= 0 && len < (uint64_t)n->min_length)
            return fail(err, path, "schema_violation", "must be at least %" PRId64 " character%s",
                        n->min_length, n->min_length == 1 ? "" : "s");
        if (n->max_length >= 0 && len > (uint64_t)n->max_length)
            return fail(err, path, "schema_violation", "must be at most %" PRId64 " character%s",
                        n->max_length, n->max_length == 1 ? "" : "s");
    }
    if (n->pattern && regexec(n->pattern, str, 0, NULL, 0) != 0)
        return fail(err, path, "schema_violation", "must match the pattern %s", n->pattern_text);
    return 0;
}

typedef struct {
    uint64_t h;
    size_t i;
} HashedItem;

static int cmp_hashed(const void *a, const void *b)
{
    const HashedItem *x = a, *y = b;
    if (x->h != y->h)
        return x->h < y->h ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i);
}

/* Finds the first item (lowest index) that equals an earlier one. */
static bool find_duplicate(json_object *inst, size_t len, size_t *ret_first, size_t *ret_dup)
{
    _cleanup_free_ HashedItem *e = NULL;
    size_t first = 0, dup = SIZE_MAX;

    /* Short arrays pairwise; long ones sorted by hash, so that only items with equal hashes
     * are compared. Without memory for the hashes, pairwise it is. */
    if (len > UNIQUE_PAIRWISE_MAX)
        e = calloc(len, sizeof(*e));
    if (!e) {
        for (size_t j = 1; j < len; j++)
            for (size_t i = 0; i < j; i++)
                if (json_equal(json_object_array_get_idx(inst, i),
                               json_object_array_get_idx(inst, j))) {
                    *ret_first = i;
                    *ret_dup = j;
                    return true;
                }
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        e[i].h = json_hash(json_object_array_get_idx(inst, i));
        e[i].i = i;
    }
    qsort(e, len, sizeof(*e), cmp_hashed);
    for (size_t a = 0, b; a < len; a = b) {
        for (b = a + 1; b < len && e[b].h == e[a].h; b++)
            ;
        for (size_t y = a + 1; y < b; y++) {
            if (e[y].i >= dup)
                continue;
            for (size_t x = a; x < y; x++)
                if (json_equal(json_object_array_get_idx(inst, e[x].i),
                               json_object_array_get_idx(inst, e[y].i))) {
                    first = e[x].i;
                    dup = e[y].i;
                    break;
                }
        }
    }
    if (dup == SIZE_MAX)
        return false;
    *ret_first = first;
    *ret_dup = dup;
    return true;
}

static int check_array(const Node *n, json_object *inst, const PathSeg *path, unsigned depth,
                       CmError *err)
{
    size_t len = json_object_array_length(inst), first, dup;
    int r;

    if (n->min_items >= 0 && len < (uint64_t)n->min_items)
        return fail(err, path, "schema_violation", "must have at least %" PRId64 " item%s",
                    n->min_items, n->min_items == 1 ? "" : "s");
    if (n->max_items >= 0 && len > (uint64_t)n->max_items)
        return fail(err, path, "schema_violation", "must have at most %" PRId64 " item%s",
                    n->max_items, n->max_items == 1 ? "" : "s");
    if (n->items || n->items_list) {
        for (size_t i = 0; i < len; i++) {
            PathSeg seg = {.up = path, .index = i};
            const Node *sub = n->items;
            if (n->items_list) {
                if (i >= n->n_items_list && n->additional_items == &node_false)
                    return fail(err, &seg, "schema_violation",
                                "unexpected item (at most %zu items are allowed)", n->n_items_list);
                sub = i < n->n_items_list ? n->items_list[i] : n->additional_items;
                if (!sub)
                    break;
            }
            r = node_check(sub, json_object_array_get_idx(inst, i), &seg, depth + 1, err);
            if (r < 0)
                return r;
        }
    }
    if (n->contains) {
        bool found = false;
        for (size_t i = 0; i < len && !found; i++) {
            PathSeg seg = {.up = path, .index = i};
            r = node_check(n->contains, json_object_array_get_idx(inst, i), &seg, depth + 1, NULL);
            if (r == -ELOOP)
                return too_deep(err, &seg);
            found = r == 0;
        }
        if (!found)
            return fail(err, path, "schema_violation",
                        "must contain at least one matching item (contains)");
    }
    if (n->unique_items && find_duplicate(inst, len, &first, &dup)) {
        PathSeg seg = {.up = path, .index = dup};
        return fail(err, &seg, "schema_violation",
                    "must not repeat item %zu (items must be unique)", first);
    }
    return 0;
}

static const Node *props_find(const Node *n, const char *key)
{
    size_t lo = 0, hi = n->n_props;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(key, n->props[mid].key);
        if (c == 0)
            return n->props[mid].node;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

static int check_property_name(const Node *n, const char *key, const PathSeg *seg, unsigned depth,
                               CmError *err)
{
    _cleanup_json_ json_object *name = NULL;
    int r;

    if (n->property_names == &node_true)
        return 0;
    if (n->property_names == &node_false)
        return fail(err, seg, "unknown_field", "unknown field (no field is allowed)");
    /* The one place validation allocates: the rules apply to a JSON string. */
    name = json_object_new_string(key);
    if (!name)
        return fail(err, seg, "schema_violation", "out of memory checking the field name");
    r = node_check(n->property_names, name, seg, depth + 1, err);
    if (r == -EINVAL)
        cm_error_prefix_message(err, "invalid field name");
    return r;
}

static int check_object(const Node *n, json_object *inst, const PathSeg *path, unsigned depth,
                        CmError *err)
{
    int r;

    if (n->min_props >= 0 || n->max_props >= 0) {
        uint64_t count = (uint64_t)json_object_object_length(inst);
        if (n->min_props >= 0 && count < (uint64_t)n->min_props)
            return fail(err, path, "schema_violation", "must have at least %" PRId64 " field%s",
                        n->min_props, n->min_props == 1 ? "" : "s");
        if (n->max_props >= 0 && count > (uint64_t)n->max_props)
            return fail(err, path, "schema_violation", "must have at most %" PRId64 " field%s",
                        n->max_props, n->max_props == 1 ? "" : "s");
    }
    if (n->walk_members) {
        json_object_object_foreach(inst, key, val)
        {
            PathSeg seg = {.up = path, .key = key};
            bool matched = false;
            const Node *sub;

            if (n->property_names) {
                r = check_property_name(n, key, &seg, depth, err);
                if (r < 0)
                    return r;
            }
            sub = props_find(n, key);
            if (sub) {
                matched = true;
                if (sub == &node_false)
                    return fail(err, &seg, "unknown_field", "field is not allowed");
                r = node_check(sub, val, &seg, depth + 1, err);
                if (r < 0)
                    return r;
            }
            for (size_t i = 0; i < n->n_patterns; i++) {
                if (regexec(&n->patterns[i].re, key, 0, NULL, 0) != 0)
                    continue;
                matched = true;
                r = node_check(n->patterns[i].node, val, &seg, depth + 1, err);
                if (r < 0)
                    return r;
            }
            if (!matched && n->additional_props) {
                if (n->additional_props == &node_false)
                    return fail(err, &seg, "unknown_field",
                                "unknown field (additionalProperties is false)");
                r = node_check(n->additional_props, val, &seg, depth + 1, err);
                if (r < 0)
                    return r;
            }
        }
    }
    for (size_t i = 0; i < n->n_required; i++) {
        if (!json_object_object_get_ex(inst, n->required[i], NULL)) {
            PathSeg seg = {.up = path, .key = n->required[i]};
            return fail(err, &seg, "missing_field", "missing required field");
        }
    }
    return 0;
}

/* Whether @n could accept a value of types @types at all: among the alternatives of an anyOf
 * that all failed, the only one that admits the type has the error worth reporting. */
static bool node_admits(const Node *n, unsigned types)
{
    for (unsigned hops = 0; n->kind == NODE_SCHEMA && n->ref && hops < 16; hops++)
        n = n->ref;
    if (n->kind != NODE_SCHEMA)
        return n->kind == NODE_TRUE;
    return n->ref || !n->types || (n->types & types);
}

/* Validates @inst against the alternatives without reporting. Returns: how many match (up to
 * @stop), or -ELOOP. */
static int count_matches(const Node *const *alts, size_t n_alts, json_object *inst,
                         const PathSeg *path, unsigned depth, int stop)
{
    int matches = 0;

    for (size_t i = 0; i < n_alts && matches < stop; i++) {
        int r = node_check(alts[i], inst, path, depth + 1, NULL);
        if (r == -ELOOP)
            return r;
        matches += r == 0;
    }
    return matches;
}

/* After every alternative failed: the one error of the only alternative that admits the
 * type, or the general rule. */
static int fail_alternatives(const Node *const *alts, size_t n_alts, json_object *inst,
                             const PathSeg *path, unsigned depth, CmError *err, const char *rule)
{
    unsigned types = instance_types(inst);
    const Node *only = NULL;
    size_t admitting = 0;

    if (!err)
        return -EINVAL;
    for (size_t i = 0; i < n_alts; i++)
        if (node_admits(alts[i], types)) {
            only = alts[i];
            admitting++;
        }
    if (admitting == 1) {
        int r = node_check(only, inst, path, depth + 1, err);
        if (r < 0)
            return r;
    }
    return fail(err, path, "schema_violation", "%s", rule);
}

static int check_combinators(const Node *n, json_object *inst, const PathSeg *path, unsigned depth,
                             CmError *err)
{
    int r;

    for (size_t i = 0; i < n->n_all_of; i++) {
        r = node_check(n->all_of[i], inst, path, depth + 1, err);
        if (r < 0)
            return r;
    }
    if (n->n_any_of) {
        r = count_matches(n->any_of, n->n_any_of, inst, path, depth, 1);
        if (r < 0)
            return too_deep(err, path);
        if (r == 0)
            return fail_alternatives(n->any_of, n->n_any_of, inst, path, depth, err,
                                     "must match at least one of the allowed schemas (anyOf)");
    }
    if (n->n_one_of) {
        r = count_matches(n->one_of, n->n_one_of, inst, path, depth, 2);
        if (r < 0)
            return too_deep(err, path);
        if (r == 0)
            return fail_alternatives(n->one_of, n->n_one_of, inst, path, depth, err,
                                     "must match exactly one of the allowed schemas (oneOf), "
                                     "but matches none");
        if (r > 1)
            return fail(err, path, "schema_violation",
                        "must match exactly one of the allowed schemas (oneOf), but matches "
                        "more than one");
    }
    if (n->not_node) {
        r = node_check(n->not_node, inst, path, depth + 1, NULL);
        if (r == -ELOOP)
            return too_deep(err, path);
        if (r == 0)
            return fail(err, path, "schema_violation", "must not match the excluded schema (not)");
    }
    if (n->if_node) {
        r = node_check(n->if_node, inst, path, depth + 1, NULL);
        if (r == -ELOOP)
            return too_deep(err, path);
        const Node *branch = r == 0 ? n->then_node : n->else_node;
        if (branch) {
            r = node_check(branch, inst, path, depth + 1, err);
            if (r < 0)
                return r;
        }
    }
    return 0;
}

static int node_check(const Node *n, json_object *inst, const PathSeg *path, unsigned depth,
                      CmError *err)
{
    int r = 0;

    if (depth >= CM_SCHEMA_MAX_DEPTH)
        return too_deep(err, path);
    if (n->kind == NODE_TRUE)
        return 0;
    if (n->kind == NODE_FALSE)
        return fail(err, path, "schema_violation", "is not allowed here");
    if (n->ref)
        return node_check(n->ref, inst, path, depth + 1, err);

    if (n->types && !(n->types & instance_types(inst)))
        return fail_type(n, err, path);
    if (n->has_const && !json_equal(inst, n->const_value))
        return fail(err, path, "schema_violation", "must be %s", n->const_text);
    if (n->enum_values) {
        size_t count = json_object_array_length(n->enum_values), i;
        for (i = 0; i < count; i++)
            if (json_equal(inst, json_object_array_get_idx(n->enum_values, i)))
                break;
        if (i == count)
            return fail(err, path, "schema_violation", "must be %s", n->enum_text);
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
        r = check_array(n, inst, path, depth, err);
        break;
    case json_type_object:
        r = check_object(n, inst, path, depth, err);
        break;
    default:
        break;
    }
    if (r < 0)
        return r;
    return check_combinators(n, inst, path, depth, err);
}

int cm_schema_validate(const CmSchema *s, json_object *instance, CmError *err)
{
    locale_t old = work_locale_enter();
    int r = node_check(s->root, instance, NULL, 0, err);

    work_locale_leave(old);
    return r;
}
