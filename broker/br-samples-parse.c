/* SPDX-License-Identifier: Apache-2.0 */
/*
 * POST /v1/samples in one pass: the strict syntax check of cm_json_parse(), the rules of
 * schemas/samples.json and the extraction of the values, straight into C structs. The
 * generic path (cm_json_parse(): a syntax pre-scan, a json-c tree, a walk for NUL
 * characters; cm_schema_validate(): a second walk; then a lookup by name per member) cost
 * about 70 % of the broker's CPU per window (tests/bench/README.md, "Metering: ingest").
 *
 * The answers are the generic path's, to the byte: the same syntax errors at the same byte
 * (the scanner below is cm-json.c's, extended), then the first string holding a NUL, then
 * the first rule broken in the order cm_schema_validate() walks (document order, but an
 * array's maxItems before its items, and a record's required members after its members).
 *
 * One kind of document is left to the generic path: one with a member name whose \u escape
 * json-c decodes to NUL (json-c cuts the name there) or to a non-ASCII character (json-c
 * then merges it with a raw spelling the syntax check took for another name, keeping the
 * later value in the earlier place). No agent writes such names; for them this file runs
 * cm_json_parse() and the schema, and parses json-c's serialization of the accepted tree.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "br-samples-parse.h"
#include "br-schemas.h"
#include "cm-json.h"
#include "cm-util.h"

/* ---- the rules of schemas/samples.json ---- */

typedef enum {
    RULE_INT,    /* "type": "integer", required */
    RULE_NINT,   /* "type": ["integer", "null"] */
    RULE_NNUM,   /* "type": ["number", "null"] */
    RULE_UUID,   /* "type": "string" with the UUID pattern */
    RULE_NAME,   /* "type": "string", "maxLength": 256 */
    RULE_SOURCE, /* "enum": ["balloon", "rss", null] */
} RuleType;

typedef struct {
    const char *key;
    uint8_t len;
    uint8_t field; /* BrSampleField */
    uint8_t type;  /* RuleType */
    int64_t min;
    int64_t max; /* NO_MAX: none */
} Rule;

#define NO_MAX INT64_MIN
#define RULE(k, f, t, lo, hi)                                                                      \
    {                                                                                              \
        k, sizeof(k) - 1, f, t, lo, hi                                                             \
    }

#define UUID_PATTERN "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
#define NAME_MAX_LENGTH 256

/* The maxima of schemas/samples.json, physically sensible (docs/metering.md, "Bounds"): no
 * sum of a year of windows can overflow, and no figure is absurd. */
#define ID_MAX (INT64_C(1) << 53)     /* the largest id a path takes */
#define START_MAX INT64_C(4102444800) /* 2100-01-01T00:00:00Z */
#define MEMORY_MIB_MAX INT64_C(134217728) /* 128 TiB */
#define BYTES_MAX (INT64_C(1) << 49)  /* 512 TiB in one window: 156 GB/s for an hour */
#define COUNT_MAX (INT64_C(1) << 40)  /* requests or packets in one window */
#define HOST_CPUS_MAX 65536
#define DOMAINS_MAX 65536

/* In the order of the schema's properties, which is the order the agent writes them in. */
static const Rule instance_rules[] = {
    RULE("instance", BR_SF_INSTANCE, RULE_INT, 1, ID_MAX),
    RULE("uuid", BR_SF_UUID, RULE_UUID, 0, NO_MAX),
    RULE("start", BR_SF_START, RULE_INT, 0, START_MAX),
    RULE("duration", BR_SF_DURATION, RULE_INT, 10, 3600),
    RULE("readings", BR_SF_READINGS, RULE_INT, 0, 3600),
    RULE("expected", BR_SF_EXPECTED, RULE_INT, 1, 3600),
    RULE("vcpus", BR_SF_VCPUS, RULE_NINT, 0, 4096),
    RULE("memory_mib", BR_SF_MEMORY_MIB, RULE_NINT, 0, MEMORY_MIB_MAX),
    RULE("cpu_cores_avg", BR_SF_CPU_CORES_AVG, RULE_NNUM, 0, 4096),
    RULE("cpu_cores_max", BR_SF_CPU_CORES_MAX, RULE_NNUM, 0, 4096),
    RULE("memory_used_mib_avg", BR_SF_MEMORY_USED_MIB_AVG, RULE_NNUM, 0, MEMORY_MIB_MAX),
    RULE("memory_used_mib_max", BR_SF_MEMORY_USED_MIB_MAX, RULE_NNUM, 0, MEMORY_MIB_MAX),
    RULE("memory_source", BR_SF_MEMORY_SOURCE, RULE_SOURCE, 0, NO_MAX),
    RULE("disk_read_bytes", BR_SF_DISK_READ_BYTES, RULE_NINT, 0, BYTES_MAX),
    RULE("disk_write_bytes", BR_SF_DISK_WRITE_BYTES, RULE_NINT, 0, BYTES_MAX),
    RULE("disk_read_requests", BR_SF_DISK_READ_REQUESTS, RULE_NINT, 0, COUNT_MAX),
    RULE("disk_write_requests", BR_SF_DISK_WRITE_REQUESTS, RULE_NINT, 0, COUNT_MAX),
    RULE("net_rx_bytes", BR_SF_NET_RX_BYTES, RULE_NINT, 0, BYTES_MAX),
    RULE("net_tx_bytes", BR_SF_NET_TX_BYTES, RULE_NINT, 0, BYTES_MAX),
    RULE("net_rx_packets", BR_SF_NET_RX_PACKETS, RULE_NINT, 0, COUNT_MAX),
    RULE("net_tx_packets", BR_SF_NET_TX_PACKETS, RULE_NINT, 0, COUNT_MAX),
    RULE("memory_readings", BR_SF_MEMORY_READINGS, RULE_NINT, 0, 3600),
    RULE("disk_readings", BR_SF_DISK_READINGS, RULE_NINT, 0, 3600),
    RULE("slow_expected", BR_SF_SLOW_EXPECTED, RULE_NINT, 1, 3600),
    RULE("shed", BR_SF_SHED, RULE_NINT, 0, 3600),
};

static const Rule unowned_rules[] = {
    RULE("uuid", BR_SF_UUID, RULE_UUID, 0, NO_MAX),
    RULE("name", BR_SF_NAME, RULE_NAME, 0, NO_MAX),
    RULE("start", BR_SF_START, RULE_INT, 0, START_MAX),
    RULE("duration", BR_SF_DURATION, RULE_INT, 10, 3600),
    RULE("readings", BR_SF_READINGS, RULE_INT, 0, 3600),
    RULE("expected", BR_SF_EXPECTED, RULE_INT, 1, 3600),
    RULE("vcpus", BR_SF_VCPUS, RULE_NINT, 0, 4096),
    RULE("memory_mib", BR_SF_MEMORY_MIB, RULE_NINT, 0, MEMORY_MIB_MAX),
    RULE("cpu_cores_avg", BR_SF_CPU_CORES_AVG, RULE_NNUM, 0, 4096),
    RULE("cpu_cores_max", BR_SF_CPU_CORES_MAX, RULE_NNUM, 0, 4096),
    RULE("memory_used_mib_avg", BR_SF_MEMORY_USED_MIB_AVG, RULE_NNUM, 0, MEMORY_MIB_MAX),
    RULE("memory_used_mib_max", BR_SF_MEMORY_USED_MIB_MAX, RULE_NNUM, 0, MEMORY_MIB_MAX),
    RULE("net_rx_bytes", BR_SF_NET_RX_BYTES, RULE_NINT, 0, BYTES_MAX),
    RULE("net_tx_bytes", BR_SF_NET_TX_BYTES, RULE_NINT, 0, BYTES_MAX),
    RULE("memory_readings", BR_SF_MEMORY_READINGS, RULE_NINT, 0, 3600),
    RULE("slow_expected", BR_SF_SLOW_EXPECTED, RULE_NINT, 1, 3600),
    RULE("shed", BR_SF_SHED, RULE_NINT, 0, 3600),
};

static const Rule host_rules[] = {
    RULE("start", BR_SF_START, RULE_INT, 0, START_MAX),
    RULE("duration", BR_SF_DURATION, RULE_INT, 10, 3600),
    RULE("readings", BR_SF_READINGS, RULE_INT, 0, 3600),
    RULE("expected", BR_SF_EXPECTED, RULE_INT, 1, 3600),
    RULE("cpus", BR_SF_CPUS, RULE_NINT, 0, HOST_CPUS_MAX),
    RULE("memory_mib", BR_SF_MEMORY_MIB, RULE_NINT, 0, MEMORY_MIB_MAX),
    RULE("cpu_used_cores_avg", BR_SF_CPU_USED_CORES_AVG, RULE_NNUM, 0, HOST_CPUS_MAX),
    RULE("cpu_used_cores_max", BR_SF_CPU_USED_CORES_MAX, RULE_NNUM, 0, HOST_CPUS_MAX),
    RULE("memory_used_mib_avg", BR_SF_MEMORY_USED_MIB_AVG, RULE_NNUM, 0, MEMORY_MIB_MAX),
    RULE("domains_max", BR_SF_DOMAINS_MAX, RULE_NINT, 0, DOMAINS_MAX),
    RULE("cycle_seconds_avg", BR_SF_CYCLE_SECONDS_AVG, RULE_NNUM, 0, 3600),
    RULE("cycle_seconds_max", BR_SF_CYCLE_SECONDS_MAX, RULE_NNUM, 0, 3600),
};

/* "required", in the schema's order: the first one missing is the one reported. */
static const uint8_t instance_required[] = {BR_SF_INSTANCE, BR_SF_UUID,     BR_SF_START,
                                            BR_SF_DURATION, BR_SF_READINGS, BR_SF_EXPECTED};
static const uint8_t unowned_required[] = {BR_SF_UUID,     BR_SF_NAME,     BR_SF_START,
                                           BR_SF_DURATION, BR_SF_READINGS, BR_SF_EXPECTED};
static const uint8_t host_required[] = {BR_SF_START, BR_SF_DURATION, BR_SF_READINGS,
                                        BR_SF_EXPECTED};

typedef struct {
    const char *name;
    size_t name_len;
    const Rule *rules;
    size_t n_rules;
    const uint8_t *required;
    size_t n_required;
    size_t max_items;
} ListRules;

static const ListRules lists[BR_SAMPLES_LIST_MAX] = {
    [BR_SAMPLES_INSTANCES] = {"instances", 9, instance_rules, ELEMENTSOF(instance_rules),
                              instance_required, ELEMENTSOF(instance_required), 20000},
    [BR_SAMPLES_UNOWNED] = {"unowned", 7, unowned_rules, ELEMENTSOF(unowned_rules),
                            unowned_required, ELEMENTSOF(unowned_required), 20000},
    [BR_SAMPLES_HOST] = {"host", 4, host_rules, ELEMENTSOF(host_rules), host_required,
                         ELEMENTSOF(host_required), 1000},
};

static const char *const field_names[BR_SF_MAX] = {
    [BR_SF_INSTANCE] = "instance",
    [BR_SF_UUID] = "uuid",
    [BR_SF_NAME] = "name",
    [BR_SF_START] = "start",
    [BR_SF_DURATION] = "duration",
    [BR_SF_READINGS] = "readings",
    [BR_SF_EXPECTED] = "expected",
    [BR_SF_VCPUS] = "vcpus",
    [BR_SF_MEMORY_MIB] = "memory_mib",
    [BR_SF_CPU_CORES_AVG] = "cpu_cores_avg",
    [BR_SF_CPU_CORES_MAX] = "cpu_cores_max",
    [BR_SF_MEMORY_USED_MIB_AVG] = "memory_used_mib_avg",
    [BR_SF_MEMORY_USED_MIB_MAX] = "memory_used_mib_max",
    [BR_SF_MEMORY_SOURCE] = "memory_source",
    [BR_SF_DISK_READ_BYTES] = "disk_read_bytes",
    [BR_SF_DISK_WRITE_BYTES] = "disk_write_bytes",
    [BR_SF_DISK_READ_REQUESTS] = "disk_read_requests",
    [BR_SF_DISK_WRITE_REQUESTS] = "disk_write_requests",
    [BR_SF_NET_RX_BYTES] = "net_rx_bytes",
    [BR_SF_NET_TX_BYTES] = "net_tx_bytes",
    [BR_SF_NET_RX_PACKETS] = "net_rx_packets",
    [BR_SF_NET_TX_PACKETS] = "net_tx_packets",
    [BR_SF_CPUS] = "cpus",
    [BR_SF_CPU_USED_CORES_AVG] = "cpu_used_cores_avg",
    [BR_SF_CPU_USED_CORES_MAX] = "cpu_used_cores_max",
    [BR_SF_DOMAINS_MAX] = "domains_max",
    [BR_SF_CYCLE_SECONDS_AVG] = "cycle_seconds_avg",
    [BR_SF_CYCLE_SECONDS_MAX] = "cycle_seconds_max",
    [BR_SF_MEMORY_READINGS] = "memory_readings",
    [BR_SF_DISK_READINGS] = "disk_readings",
    [BR_SF_SLOW_EXPECTED] = "slow_expected",
    [BR_SF_SHED] = "shed",
};

_Static_assert(BR_SF_MAX <= 32, "BrSample.present has 32 bits");

const char *br_sample_field_name(BrSampleField f)
{
    return f < BR_SF_MAX ? field_names[f] : NULL;
}

const char *br_samples_list_name(BrSamplesList l)
{
    return l < BR_SAMPLES_LIST_MAX ? lists[l].name : NULL;
}

BrSampleValueKind br_sample_field_kind(BrSampleField f)
{
    switch (f) {
    case BR_SF_UUID:
    case BR_SF_NAME:
    case BR_SF_MEMORY_SOURCE:
        return BR_SAMPLE_VALUE_TEXT;
    case BR_SF_CPU_CORES_AVG:
    case BR_SF_CPU_CORES_MAX:
    case BR_SF_MEMORY_USED_MIB_AVG:
    case BR_SF_MEMORY_USED_MIB_MAX:
    case BR_SF_CPU_USED_CORES_AVG:
    case BR_SF_CPU_USED_CORES_MAX:
    case BR_SF_CYCLE_SECONDS_AVG:
    case BR_SF_CYCLE_SECONDS_MAX:
        return BR_SAMPLE_VALUE_NUMBER;
    default:
        return BR_SAMPLE_VALUE_INT;
    }
}

/* ---- the batch ---- */

void br_samples_batch_clear(BrSamplesBatch *b)
{
    for (int l = 0; l < BR_SAMPLES_LIST_MAX; l++)
        b->n[l] = 0;
    b->text_len = 0;
    b->used_generic = false;
}

void br_samples_batch_free(BrSamplesBatch *b)
{
    for (int l = 0; l < BR_SAMPLES_LIST_MAX; l++)
        free(b->items[l]);
    free(b->text);
    memset(b, 0, sizeof(*b));
}

/* ---- the parser ---- */

/* Where the value being scanned is: a member name (raw, between the quotes) or an index. */
typedef struct {
    const unsigned char *key; /* NULL for an array element */
    size_t n;                 /* the raw name's length, or the index */
    bool escaped;
} Seg;

/* Member names of one object, to refuse duplicates as cm-json.c's scanner does. */
typedef struct {
    uint64_t hash;
    size_t start, len;
} Name;

typedef struct {
    const unsigned char *s;
    size_t len, pos;
    unsigned depth;
    const char *why; /* the syntax error */
    BrSamplesBatch *b;
    size_t len_hint; /* body bytes, to size the arrays */

    Seg path[CM_JSON_MAX_DEPTH + 2];
    unsigned n_path;
    Name *names; /* a stack: the open objects' names, innermost last */
    size_t n_names, cap_names;

    bool generic; /* a name json-c reads otherwise: the generic path answers */
    bool oom;
    bool nul; /* a string holds a NUL character: nul_where says which */
    char nul_where[256];
    bool failed; /* a rule of the schema is broken: schema_err says which */
    CmError schema_err;
} Parser;

/* Raw string content between the quotes, and what its escapes hold. */
typedef struct {
    size_t start, end;
    bool escaped; /* any backslash */
    bool nul;     /* an escaped NUL */
    bool odd;     /* a \u escape of NUL or of a non-ASCII character */
} Str;

static bool fail(Parser *p, const char *why)
{
    p->why = why;
    return false;
}

static inline void ws(Parser *p)
{
    while (p->pos < p->len) {
        unsigned char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\r' && c != '\n')
            break;
        p->pos++;
    }
}

static inline bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static int hex_digit(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int hex4(const unsigned char *s, size_t len, size_t at)
{
    int v = 0;
    for (size_t i = 0; i < 4; i++) {
        int h = at + i < len ? hex_digit(s[at + i]) : -1;
        if (h < 0)
            return -1;
        v = v * 16 + h;
    }
    return v;
}

/* Decodes the raw content of a string already checked by scan_string(), as json-c does.
 * @out needs @n + 1 bytes: no escape decodes longer than it is written. Returns: the length. */
static size_t decode(const unsigned char *s, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned cp;
        if (s[i] != '\\') {
            out[o++] = (char)s[i];
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
        default:
            out[o++] = (char)s[i];
            continue;
        }
        cp = (unsigned)hex4(s, n, i + 1);
        i += 4;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            cp = 0x10000 + ((cp - 0xD800) << 10) + ((unsigned)hex4(s, n, i + 3) - 0xDC00);
            i += 6;
        }
        if (cp < 0x80) {
            out[o++] = (char)cp;
        } else if (cp < 0x800) {
            out[o++] = (char)(0xC0 | (cp >> 6));
            out[o++] = (char)(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            out[o++] = (char)(0xE0 | (cp >> 12));
            out[o++] = (char)(0x80 | ((cp >> 6) & 0x3F));
            out[o++] = (char)(0x80 | (cp & 0x3F));
        } else {
            out[o++] = (char)(0xF0 | (cp >> 18));
            out[o++] = (char)(0x80 | ((cp >> 12) & 0x3F));
            out[o++] = (char)(0x80 | ((cp >> 6) & 0x3F));
            out[o++] = (char)(0x80 | (cp & 0x3F));
        }
    }
    out[o] = 0;
    return o;
}

/* A member name as json-c keeps it (a C string), newly allocated; NULL when out of memory. */
static char *seg_key(const Seg *g)
{
    char *k = malloc(g->n + 1);
    if (!k)
        return NULL;
    if (g->escaped)
        decode(g->key, g->n, k);
    else {
        memcpy(k, g->key, g->n);
        k[g->n] = 0;
    }
    return k;
}

/* cm-schema.c's rendering of a JSON pointer into the error's field, token by token. */
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

/* The first broken rule of the schema, with the current location (plus @extra, a member). */
_printf_(4, 5) static void schema_fail(Parser *p, const char *extra, const char *code,
                                       const char *fmt, ...)
{
    char field[sizeof(p->schema_err.field)] = "", msg[sizeof(p->schema_err.message)];
    size_t off = 0;
    va_list ap;

    if (p->failed)
        return;
    p->failed = true;
    for (unsigned i = 0; i < p->n_path; i++) {
        const Seg *g = &p->path[i];
        if (g->key) {
            _cleanup_free_ char *k = seg_key(g);
            path_add(field, sizeof(field), &off, k ? k : "");
        } else {
            char idx[24];
            snprintf(idx, sizeof(idx), "%zu", g->n);
            path_add(field, sizeof(field), &off, idx);
        }
    }
    if (extra)
        path_add(field, sizeof(field), &off, extra);
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    cm_error_set_code(&p->schema_err, CM_ERROR_UNPROCESSABLE, code, field, "%s", msg);
}

/* cm-json.c's json_find_nul(): the first string with a NUL, its pointer written plainly
 * ("/%s" per member, "/%zu" per index, not escaped) and cut at 255 bytes. */
static void note_nul(Parser *p)
{
    const size_t cap = sizeof(p->nul_where) - 1;
    size_t off = 0;

    if (p->nul)
        return;
    p->nul = true;
    for (unsigned i = 0; i < p->n_path && off < cap; i++) {
        const Seg *g = &p->path[i];
        char idx[24];
        _cleanup_free_ char *k = NULL;
        const char *tok = idx;
        size_t n;

        if (g->key) {
            k = seg_key(g);
            tok = k ? k : "";
        } else
            snprintf(idx, sizeof(idx), "%zu", g->n);
        p->nul_where[off++] = '/';
        n = strlen(tok);
        if (n > cap - off)
            n = cap - off;
        memcpy(p->nul_where + off, tok, n);
        off += n;
    }
    p->nul_where[off] = 0;
}

static inline void push_key(Parser *p, const Str *st)
{
    p->path[p->n_path++] = (Seg){p->s + st->start, st->end - st->start, st->escaped};
}

static inline void push_index(Parser *p, size_t i)
{
    p->path[p->n_path++] = (Seg){NULL, i, false};
}

static bool scan_string(Parser *p, Str *out)
{
    size_t start;
    bool high = false;

    out->escaped = out->nul = out->odd = false;
    p->pos++; /* the opening quote */
    start = p->pos;
    while (p->pos < p->len) {
        unsigned char c = p->s[p->pos];
        if (c == '"') {
            /* Only bytes past ASCII can be invalid: the others were checked one by one. */
            if (high && !cm_utf8_valid((const char *)p->s + start, p->pos - start)) {
                p->pos = start;
                return fail(p, "string is not valid UTF-8");
            }
            out->start = start;
            out->end = p->pos;
            p->pos++;
            return true;
        }
        if (c < 0x20)
            return fail(p, c ? "control character in a string must be escaped"
                             : "NUL byte in a string");
        if (c >= 0x80) {
            high = true;
        } else if (c == '\\') {
            out->escaped = true;
            p->pos++;
            if (p->pos >= p->len)
                break;
            c = p->s[p->pos];
            if (c == 'u') {
                /* A surrogate escape must be a high one followed by a low one. */
                int cp = hex4(p->s, p->len, p->pos + 1);
                if (cp < 0)
                    return fail(p, "bad \\u escape");
                p->pos += 4;
                if (cp >= 0xDC00 && cp <= 0xDFFF)
                    return fail(p, "lone low surrogate in a \\u escape");
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    int lo =
                        p->pos + 2 < p->len && p->s[p->pos + 1] == '\\' && p->s[p->pos + 2] == 'u'
                            ? hex4(p->s, p->len, p->pos + 3)
                            : -1;
                    if (lo < 0xDC00 || lo > 0xDFFF)
                        return fail(p, "lone high surrogate in a \\u escape");
                    p->pos += 6;
                }
                if (cp == 0)
                    out->nul = true;
                if (cp == 0 || cp >= 0x80)
                    out->odd = true;
            } else if (!c || !strchr("\"\\/bfnrt", c)) {
                return fail(p, "bad escape in a string");
            }
        }
        p->pos++;
    }
    return fail(p, "unterminated string");
}

static bool scan_literal(Parser *p, const char *word, size_t n)
{
    if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n) != 0)
        return fail(p, "unexpected character");
    p->pos += n;
    return true;
}

/* A number as json-c holds it: int64, uint64 above INT64_MAX, or a double. */
typedef enum { NUM_INT, NUM_UINT, NUM_DOUBLE } NumKind;

typedef struct {
    NumKind kind;
    int64_t i;
    uint64_t u;
    double d;
} Num;

static const double pow10_exact[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                     1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                     1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* strtod() of a token that may lie at the very end of a buffer without a terminator. */
static double token_strtod(Parser *p, size_t start, size_t end)
{
    char small[128], *buf = small;
    size_t n = end - start;
    double d;

    if (n >= sizeof(small)) {
        buf = malloc(n + 1);
        if (!buf) {
            p->oom = true;
            return 0;
        }
    }
    memcpy(buf, p->s + start, n);
    buf[n] = 0;
    d = strtod(buf, NULL);
    if (buf != small)
        free(buf);
    return d;
}

/* cm-json.c's scan_number(), every error at the number's first byte; with @out, the value
 * json-c makes of it: strtoll()/strtoull() saturating for integers, strtod() otherwise. */
static bool scan_number(Parser *p, Num *out)
{
    const unsigned char *s = p->s;
    size_t q = p->pos, len = p->len;
    bool neg = false, is_double = false, overflow = false;
    uint64_t mant = 0;
    unsigned sig = 0; /* significant digits in mant */
    int frac = 0;     /* digits after the point */
    int64_t exp10 = 0;

    if (q < len && s[q] == '-') {
        neg = true;
        q++;
    }
    if (q < len && s[q] == '0') {
        q++;
        if (q < len && is_digit(s[q]))
            return fail(p, "numbers must not have leading zeros");
    } else if (q < len && is_digit(s[q])) {
        while (q < len && is_digit(s[q])) {
            unsigned d = (unsigned)(s[q] - '0');
            if (mant > (UINT64_MAX - d) / 10)
                overflow = true;
            else
                mant = mant * 10 + d;
            if (mant)
                sig++;
            q++;
        }
    } else {
        return fail(p, "invalid number");
    }
    if (q < len && s[q] == '.') {
        is_double = true;
        q++;
        if (q >= len || !is_digit(s[q]))
            return fail(p, "invalid number");
        while (q < len && is_digit(s[q])) {
            if (sig < 19) {
                mant = mant * 10 + (unsigned)(s[q] - '0');
                frac++;
                if (mant)
                    sig++;
            } else
                sig = 99;
            q++;
        }
    }
    if (q < len && (s[q] == 'e' || s[q] == 'E')) {
        bool eneg = false;
        is_double = true;
        q++;
        if (q < len && (s[q] == '+' || s[q] == '-'))
            eneg = s[q++] == '-';
        if (q >= len || !is_digit(s[q]))
            return fail(p, "invalid number");
        while (q < len && is_digit(s[q])) {
            if (exp10 < 100000)
                exp10 = exp10 * 10 + (s[q] - '0');
            q++;
        }
        if (eneg)
            exp10 = -exp10;
    }
    if (out) {
        if (!is_double && neg) {
            /* strtoll() saturates at INT64_MIN */
            out->kind = NUM_INT;
            out->i = overflow || mant > (uint64_t)INT64_MAX ? INT64_MIN : -(int64_t)mant;
        } else if (!is_double) {
            /* strtoull() saturates at UINT64_MAX; json-c keeps more than INT64_MAX as uint64 */
            out->u = overflow ? UINT64_MAX : mant;
            out->kind = out->u > (uint64_t)INT64_MAX ? NUM_UINT : NUM_INT;
            out->i = (int64_t)out->u;
        } else {
            int64_t e = exp10 - frac;
            out->kind = NUM_DOUBLE;
            /* Exact operands, one correctly rounded operation: strtod()'s result, faster. */
            if (!overflow && sig <= 15 && e >= -22 && e <= 22) {
                double m = (double)mant;
                out->d = e >= 0 ? m * pow10_exact[e] : m / pow10_exact[-e];
                if (neg)
                    out->d = -out->d;
            } else {
                out->d = token_strtod(p, p->pos, q);
            }
        }
    }
    p->pos = q;
    return true;
}

static bool any_value(Parser *p);

static bool names_push(Parser *p, size_t start, size_t len)
{
    if (p->n_names == p->cap_names) {
        size_t ncap = p->cap_names ? p->cap_names * 2 : 64;
        Name *nn = realloc(p->names, ncap * sizeof(*nn));
        if (!nn) {
            p->oom = true;
            return fail(p, "out of memory");
        }
        p->names = nn;
        p->cap_names = ncap;
    }
    p->names[p->n_names++] = (Name){.start = start, .len = len};
    return true;
}

/* cm-json.c's name_decode(): names compared as written, an escaped unit marked. */
static size_t name_decode(const unsigned char *s, size_t n, unsigned char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '\\') {
            out[o++] = s[i];
            continue;
        }
        i++;
        if (s[i] != 'u') {
            out[o++] = s[i];
            continue;
        }
        unsigned v = (unsigned)hex4(s, n, i + 1);
        i += 4;
        if (v < 0x80) {
            out[o++] = (unsigned char)v;
        } else {
            out[o++] = 0xff;
            out[o++] = (unsigned char)(v >> 8);
            out[o++] = (unsigned char)v;
        }
    }
    return o;
}

static uint64_t name_hash(const unsigned char *s, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ s[i]) * 1099511628211ULL;
    return h;
}

static int name_cmp(const void *a, const void *b)
{
    const Name *x = a, *y = b;
    return x->hash < y->hash ? -1 : x->hash > y->hash;
}

/* cm-json.c's scan_unique_names() on the names of the object that just closed: the same
 * sort, so that of several duplicates the same one is named. */
static bool unique_names(Parser *p, size_t base)
{
    Name *names = p->names + base;
    size_t n = p->n_names - base, longest = 0;
    _cleanup_free_ unsigned char *a = NULL, *b = NULL;

    if (n < 2)
        return true;
    for (size_t i = 0; i < n; i++)
        longest = names[i].len > longest ? names[i].len : longest;
    a = malloc(longest * 3 / 2 + 4);
    b = malloc(longest * 3 / 2 + 4);
    if (!a || !b) {
        p->oom = true;
        return fail(p, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        size_t len = name_decode(p->s + names[i].start, names[i].len, a);
        names[i].hash = name_hash(a, len);
    }
    qsort(names, n, sizeof(*names), name_cmp);
    for (size_t i = 1; i < n; i++) {
        if (names[i].hash != names[i - 1].hash)
            continue;
        size_t la = name_decode(p->s + names[i].start, names[i].len, a);
        size_t lb = name_decode(p->s + names[i - 1].start, names[i - 1].len, b);
        if (la == lb && memcmp(a, b, la) == 0) {
            p->pos = names[i].start;
            return fail(p, "duplicate member name in an object");
        }
    }
    return true;
}

/* cm-json.c's scan_container(), for values no rule looks into. */
static bool any_container(Parser *p, bool object)
{
    unsigned char close = object ? '}' : ']';
    size_t base = p->n_names, index = 0;

    if (++p->depth > CM_JSON_MAX_DEPTH)
        return fail(p, "nesting is too deep");
    p->pos++;
    ws(p);
    if (p->pos < p->len && p->s[p->pos] == close) {
        p->pos++;
        p->depth--;
        return true;
    }
    for (;;) {
        ws(p);
        if (object) {
            size_t name_start = p->pos + 1;
            Str st;
            if (p->pos >= p->len || p->s[p->pos] != '"')
                return fail(p, "expected a quoted member name");
            if (!scan_string(p, &st) || !names_push(p, name_start, p->pos - 1 - name_start))
                return false;
            if (st.odd)
                p->generic = true;
            ws(p);
            if (p->pos >= p->len || p->s[p->pos] != ':')
                return fail(p, "expected ':'");
            p->pos++;
            push_key(p, &st);
        } else {
            push_index(p, index++);
        }
        if (!any_value(p))
            return false;
        p->n_path--;
        ws(p);
        if (p->pos < p->len && p->s[p->pos] == ',') {
            p->pos++;
            continue;
        }
        if (p->pos < p->len && p->s[p->pos] == close) {
            p->pos++;
            p->depth--;
            if (object && !unique_names(p, base))
                return false;
            p->n_names = base;
            return true;
        }
        return fail(p, object ? "expected ',' or '}'" : "expected ',' or ']'");
    }
}

static bool any_value(Parser *p)
{
    Str st;

    ws(p);
    if (p->pos >= p->len)
        return fail(p, "document is incomplete");
    switch (p->s[p->pos]) {
    case '{':
        return any_container(p, true);
    case '[':
        return any_container(p, false);
    case '"':
        if (!scan_string(p, &st))
            return false;
        if (st.nul)
            note_nul(p);
        return true;
    case 't':
        return scan_literal(p, "true", 4);
    case 'f':
        return scan_literal(p, "false", 5);
    case 'n':
        return scan_literal(p, "null", 4);
    default:
        return scan_number(p, NULL);
    }
}

/* ---- the records ---- */

/* "must be ...": the type error of cm-schema.c's fail_type() for @r. */
static void type_fail(Parser *p, const Rule *r)
{
    switch (r->type) {
    case RULE_INT:
        if (r->max != NO_MAX)
            schema_fail(p, NULL, "wrong_type", "must be an integer >= %" PRId64 " and <= %" PRId64,
                        r->min, r->max);
        else
            schema_fail(p, NULL, "wrong_type", "must be an integer >= %" PRId64, r->min);
        break;
    case RULE_NINT:
        schema_fail(p, NULL, "wrong_type", "must be an integer or null");
        break;
    case RULE_NNUM:
        schema_fail(p, NULL, "wrong_type", "must be a number or null");
        break;
    case RULE_UUID:
    case RULE_NAME:
        schema_fail(p, NULL, "wrong_type", "must be a string");
        break;
    case RULE_SOURCE:
        /* no "type": the enum says what is allowed */
        schema_fail(p, NULL, "schema_violation", "must be one of: balloon, rss, null");
        break;
    }
}

static void range_fail(Parser *p, const Rule *r)
{
    const char *what = r->type == RULE_NNUM ? "a number" : "an integer";
    if (r->max != NO_MAX)
        schema_fail(p, NULL, "schema_violation", "must be %s >= %" PRId64 " and <= %" PRId64, what,
                    r->min, r->max);
    else
        schema_fail(p, NULL, "schema_violation", "must be %s >= %" PRId64, what, r->min);
}

/* cm-schema.c's exact comparison of an integer bound with a double: <0, 0 or >0 as i - d. */
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

static bool num_below(const Num *n, int64_t v)
{
    switch (n->kind) {
    case NUM_INT:
        return n->i < v;
    case NUM_UINT:
        return false;
    default:
        return cmp_int_double(v, n->d) > 0;
    }
}

static bool num_above(const Num *n, int64_t v)
{
    switch (n->kind) {
    case NUM_INT:
        return n->i > v;
    case NUM_UINT:
        return true;
    default:
        return cmp_int_double(v, n->d) < 0;
    }
}

static bool out_of_range(const Num *n, const Rule *r)
{
    return num_below(n, r->min) || (r->max != NO_MAX && num_above(n, r->max));
}

static void field_number(Parser *p, const Rule *r, BrSample *rec, const Num *n)
{
    if (r->type == RULE_INT || r->type == RULE_NINT) {
        /* JSON Schema's integers include 3.0 */
        if (n->kind == NUM_DOUBLE && !(isfinite(n->d) && n->d == trunc(n->d))) {
            type_fail(p, r);
            return;
        }
        if (out_of_range(n, r)) {
            range_fail(p, r);
            return;
        }
        /* cm_json_get_int(): json-c's get_int64() saturates a uint64; a double out of
         * range is the default, 0 */
        rec->v[r->field].i = n->kind == NUM_INT                  ? n->i
                             : n->kind == NUM_UINT               ? INT64_MAX
                             : n->d >= -0x1p63 && n->d < 0x1p63 ? (int64_t)n->d
                                                                 : 0;
    } else {
        if (out_of_range(n, r)) {
            range_fail(p, r);
            return;
        }
        rec->v[r->field].d = n->kind == NUM_INT    ? (double)n->i
                             : n->kind == NUM_UINT ? (double)n->u
                                                   : n->d;
    }
    rec->present |= 1u << r->field;
}

static bool uuid_ok(const char *s, size_t n)
{
    if (n != 36)
        return false;
    for (size_t i = 0; i < 36; i++) {
        char c = s[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-')
                return false;
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            return false;
        }
    }
    return true;
}

static bool text_reserve(Parser *p, size_t n)
{
    BrSamplesBatch *b = p->b;
    if (b->text_len + n + 1 <= b->text_cap)
        return true;
    size_t ncap = b->text_cap ? b->text_cap : 4096;
    while (ncap < b->text_len + n + 1)
        ncap *= 2;
    char *nt = realloc(b->text, ncap);
    if (!nt) {
        p->oom = true;
        return fail(p, "out of memory");
    }
    b->text = nt;
    b->text_cap = ncap;
    return true;
}

static bool field_string(Parser *p, const Rule *r, BrSample *rec, const Str *st)
{
    const unsigned char *raw = p->s + st->start;
    size_t n = st->end - st->start;

    switch (r->type) {
    case RULE_UUID: {
        char buf[36 * 6 + 1];
        const char *v = (const char *)raw;
        if (st->escaped) {
            /* an escape decodes to a sixth of its length at least: longer is no UUID */
            if (n >= sizeof(buf)) {
                schema_fail(p, NULL, "schema_violation", "must match the pattern %s", UUID_PATTERN);
                return true;
            }
            n = decode(raw, n, buf);
            v = buf;
        }
        if (!uuid_ok(v, n)) {
            schema_fail(p, NULL, "schema_violation", "must match the pattern %s", UUID_PATTERN);
            return true;
        }
        memcpy(rec->uuid, v, 36);
        rec->uuid[36] = 0;
        break;
    }
    case RULE_NAME: {
        size_t chars = 0, off;
        if (!text_reserve(p, n))
            return false;
        off = p->b->text_len;
        if (st->escaped)
            n = decode(raw, n, p->b->text + off);
        else {
            memcpy(p->b->text + off, raw, n);
            p->b->text[off + n] = 0;
        }
        /* code points, as JSON Schema counts */
        for (size_t i = 0; i < n; i++)
            chars += ((unsigned char)p->b->text[off + i] & 0xc0) != 0x80;
        if (chars > NAME_MAX_LENGTH) {
            schema_fail(p, NULL, "schema_violation", "must be at most %d characters",
                        NAME_MAX_LENGTH);
            return true;
        }
        p->b->text_len += n + 1;
        rec->name_off = (uint32_t)off;
        rec->name_len = (uint32_t)n;
        break;
    }
    case RULE_SOURCE: {
        char buf[64]; /* "balloon" written in escapes is 42 bytes */
        const char *v = (const char *)raw;
        if (st->escaped && n < sizeof(buf)) {
            n = decode(raw, n, buf);
            v = buf;
        } else if (st->escaped) {
            n = SIZE_MAX; /* decodes to 11 bytes or more: neither value */
        }
        if (n == 7 && memcmp(v, "balloon", 7) == 0)
            rec->memory_source = "balloon";
        else if (n == 3 && memcmp(v, "rss", 3) == 0)
            rec->memory_source = "rss";
        else {
            type_fail(p, r);
            return true;
        }
        break;
    }
    default:
        type_fail(p, r);
        return true;
    }
    rec->present |= 1u << r->field;
    return true;
}

static bool parse_field(Parser *p, const Rule *r, BrSample *rec)
{
    Str st;
    Num n;
    unsigned char c;

    ws(p);
    if (p->pos >= p->len)
        return fail(p, "document is incomplete");
    c = p->s[p->pos];
    switch (c) {
    case '"':
        if (!scan_string(p, &st))
            return false;
        if (st.nul)
            note_nul(p);
        return field_string(p, r, rec, &st);
    case 'n':
        if (!scan_literal(p, "null", 4))
            return false;
        /* null is a missing value where the type allows it */
        if (r->type == RULE_INT || r->type == RULE_UUID || r->type == RULE_NAME)
            type_fail(p, r);
        return true;
    case 't':
    case 'f':
        if (!(c == 't' ? scan_literal(p, "true", 4) : scan_literal(p, "false", 5)))
            return false;
        type_fail(p, r);
        return true;
    case '{':
    case '[':
        type_fail(p, r);
        return any_container(p, c == '{');
    default:
        if (r->type != RULE_INT && r->type != RULE_NINT && r->type != RULE_NNUM) {
            if (!scan_number(p, NULL))
                return false;
            type_fail(p, r);
            return true;
        }
        if (!scan_number(p, &n))
            return false;
        field_number(p, r, rec, &n);
        return true;
    }
}

/* The member @s (raw, @n bytes) of a record of @lr, trying first the one after the last
 * found: the agent writes them in the schema's order. */
static const Rule *find_rule(const ListRules *lr, const unsigned char *s, size_t n, bool escaped,
                             size_t *hint)
{
    char buf[257];
    if (escaped) {
        /* a \u escape is 6 bytes for 1: longer names decode longer than any member */
        if (n >= sizeof(buf))
            return NULL;
        n = decode(s, n, buf);
        s = (const unsigned char *)buf;
    }
    for (size_t k = 0; k < lr->n_rules; k++) {
        size_t i = *hint + k < lr->n_rules ? *hint + k : *hint + k - lr->n_rules;
        const Rule *r = &lr->rules[i];
        if (r->len == n && memcmp(r->key, s, n) == 0) {
            *hint = i + 1 < lr->n_rules ? i + 1 : 0;
            return r;
        }
    }
    return NULL;
}

static void check_required(Parser *p, const ListRules *lr, uint32_t seen)
{
    for (size_t i = 0; i < lr->n_required; i++) {
        if (!((seen >> lr->required[i]) & 1u)) {
            schema_fail(p, field_names[lr->required[i]], "missing_field", "missing required field");
            return;
        }
    }
}

static bool parse_record(Parser *p, const ListRules *lr, BrSample *rec)
{
    size_t base = p->n_names, hint = 0;
    uint32_t seen = 0;
    bool simple = true; /* distinct known names written plainly: no duplicate possible */

    ws(p);
    if (p->pos >= p->len)
        return fail(p, "document is incomplete");
    if (p->s[p->pos] != '{') {
        schema_fail(p, NULL, "wrong_type", "must be an object");
        return any_value(p);
    }
    if (++p->depth > CM_JSON_MAX_DEPTH)
        return fail(p, "nesting is too deep");
    p->pos++;
    ws(p);
    if (p->pos < p->len && p->s[p->pos] == '}') {
        p->pos++;
        p->depth--;
        check_required(p, lr, seen);
        return true;
    }
    for (;;) {
        size_t name_start;
        const Rule *r;
        Str st;

        ws(p);
        name_start = p->pos + 1;
        if (p->pos >= p->len || p->s[p->pos] != '"')
            return fail(p, "expected a quoted member name");
        if (!scan_string(p, &st) || !names_push(p, name_start, p->pos - 1 - name_start))
            return false;
        if (st.odd)
            p->generic = true;
        r = find_rule(lr, p->s + st.start, st.end - st.start, st.escaped, &hint);
        if (!r || st.escaped || ((seen >> r->field) & 1u))
            simple = false;
        ws(p);
        if (p->pos >= p->len || p->s[p->pos] != ':')
            return fail(p, "expected ':'");
        p->pos++;
        push_key(p, &st);
        if (r) {
            seen |= 1u << r->field;
            if (!parse_field(p, r, rec))
                return false;
        } else {
            schema_fail(p, NULL, "unknown_field", "unknown field (additionalProperties is false)");
            if (!any_value(p))
                return false;
        }
        p->n_path--;
        ws(p);
        if (p->pos < p->len && p->s[p->pos] == ',') {
            p->pos++;
            continue;
        }
        if (p->pos < p->len && p->s[p->pos] == '}') {
            p->pos++;
            p->depth--;
            if (!simple && !unique_names(p, base))
                return false;
            p->n_names = base;
            check_required(p, lr, seen);
            return true;
        }
        return fail(p, "expected ',' or '}'");
    }
}

static BrSample *batch_add(Parser *p, BrSamplesList l)
{
    BrSamplesBatch *b = p->b;
    BrSample *rec;

    if (b->n[l] == b->cap[l]) {
        /* sized from the body at first: the agent's records are about 450 bytes */
        size_t ncap = b->cap[l] ? b->cap[l] * 2 : p->len_hint / 512 + 16;
        if (ncap > lists[l].max_items)
            ncap = lists[l].max_items;
        BrSample *ni = realloc(b->items[l], ncap * sizeof(*ni));
        if (!ni) {
            p->oom = true;
            fail(p, "out of memory");
            return NULL;
        }
        b->items[l] = ni;
        b->cap[l] = ncap;
    }
    rec = &b->items[l][b->n[l]++];
    rec->present = 0;
    rec->name_off = rec->name_len = 0;
    rec->memory_source = NULL;
    rec->uuid[0] = 0;
    return rec;
}

static bool parse_list(Parser *p, BrSamplesList l)
{
    const ListRules *lr = &lists[l];
    size_t count = 0;
    bool had_error = p->failed;

    ws(p);
    if (p->pos >= p->len)
        return fail(p, "document is incomplete");
    if (p->s[p->pos] != '[') {
        schema_fail(p, NULL, "wrong_type", "must be an array");
        return any_value(p);
    }
    if (++p->depth > CM_JSON_MAX_DEPTH)
        return fail(p, "nesting is too deep");
    p->pos++;
    ws(p);
    if (p->pos < p->len && p->s[p->pos] == ']') {
        p->pos++;
        p->depth--;
        return true;
    }
    for (;;) {
        BrSample scratch, *rec = &scratch;
        /* past maxItems the batch is refused: the records are checked, not kept */
        if (count < lr->max_items) {
            rec = batch_add(p, l);
            if (!rec)
                return false;
        } else {
            memset(&scratch, 0, sizeof(scratch));
        }
        push_index(p, count);
        if (!parse_record(p, lr, rec))
            return false;
        p->n_path--;
        count++;
        ws(p);
        if (p->pos < p->len && p->s[p->pos] == ',') {
            p->pos++;
            continue;
        }
        if (p->pos < p->len && p->s[p->pos] == ']') {
            p->pos++;
            p->depth--;
            break;
        }
        return fail(p, "expected ',' or ']'");
    }
    /* The schema checks maxItems before it looks at the items. */
    if (count > lr->max_items && !had_error) {
        p->failed = false;
        schema_fail(p, NULL, "schema_violation", "must have at most %zu items", lr->max_items);
    }
    return true;
}

static bool parse_root(Parser *p)
{
    size_t base = p->n_names;
    unsigned seen = 0;
    bool simple = true;

    ws(p);
    if (p->pos >= p->len)
        return fail(p, "document is incomplete");
    if (p->s[p->pos] != '{') {
        schema_fail(p, NULL, "wrong_type", "must be an object");
        return any_value(p);
    }
    if (++p->depth > CM_JSON_MAX_DEPTH)
        return fail(p, "nesting is too deep");
    p->pos++;
    ws(p);
    if (p->pos < p->len && p->s[p->pos] == '}') {
        p->pos++;
        p->depth--;
        return true;
    }
    for (;;) {
        size_t name_start, n;
        const unsigned char *name;
        char buf[64]; /* "instances" written in escapes is 54 bytes */
        int l = -1;
        Str st;

        ws(p);
        name_start = p->pos + 1;
        if (p->pos >= p->len || p->s[p->pos] != '"')
            return fail(p, "expected a quoted member name");
        if (!scan_string(p, &st) || !names_push(p, name_start, p->pos - 1 - name_start))
            return false;
        if (st.odd)
            p->generic = true;
        name = p->s + st.start;
        n = st.end - st.start;
        if (st.escaped) {
            n = n < sizeof(buf) ? decode(name, n, buf) : SIZE_MAX;
            name = (const unsigned char *)buf;
        }
        for (int k = 0; k < BR_SAMPLES_LIST_MAX; k++)
            if (n == lists[k].name_len && memcmp(name, lists[k].name, n) == 0)
                l = k;
        if (l < 0 || st.escaped || ((seen >> l) & 1u))
            simple = false;
        ws(p);
        if (p->pos >= p->len || p->s[p->pos] != ':')
            return fail(p, "expected ':'");
        p->pos++;
        push_key(p, &st);
        if (l >= 0) {
            seen |= 1u << l;
            if (!parse_list(p, (BrSamplesList)l))
                return false;
        } else {
            schema_fail(p, NULL, "unknown_field", "unknown field (additionalProperties is false)");
            if (!any_value(p))
                return false;
        }
        p->n_path--;
        ws(p);
        if (p->pos < p->len && p->s[p->pos] == ',') {
            p->pos++;
            continue;
        }
        if (p->pos < p->len && p->s[p->pos] == '}') {
            p->pos++;
            p->depth--;
            if (!simple && !unique_names(p, base))
                return false;
            p->n_names = base;
            return true;
        }
        return fail(p, "expected ',' or '}'");
    }
}

static int parse_fast(const char *text, size_t len, BrSamplesBatch *b, CmError *err)
{
    _cleanup_free_ Parser *p = NULL;
    bool ok;

    br_samples_batch_clear(b);
    /* cm_json_parse()'s first two answers */
    if (len > INT32_MAX)
        return cm_error_set(err, CM_ERROR_TOO_LARGE, "", "document too large");
    if (len == 0)
        return cm_error_set_code(err, CM_ERROR_INVALID, "malformed_json", "",
                                 "request body is empty; a JSON document is required");
    p = calloc(1, sizeof(*p));
    if (!p)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    p->s = (const unsigned char *)text;
    p->len = len;
    p->len_hint = len;
    p->b = b;

    ok = parse_root(p);
    if (ok) {
        ws(p);
        if (p->pos != p->len)
            ok = fail(p, "unexpected data after the JSON document");
    }
    free(p->names);
    if (p->oom)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    if (!ok)
        return cm_error_set_code(err, CM_ERROR_INVALID, "malformed_json", "",
                                 "JSON is malformed at byte %zu: %s", p->pos, p->why);
    if (p->generic)
        return -EAGAIN;
    if (p->nul)
        return cm_error_set_code(err, CM_ERROR_INVALID, "nul_byte", p->nul_where,
                                 "strings must not contain the NUL character (\\u0000)");
    if (p->failed) {
        if (err)
            *err = p->schema_err;
        return cm_error_kind_errno(CM_ERROR_UNPROCESSABLE);
    }
    return 0;
}

int br_samples_parse_strict(const char *text, size_t len, BrSamplesBatch *batch, CmError *err)
{
    return parse_fast(text, len, batch, err);
}

/* The rare document whose names json-c reads otherwise than their text: the generic path
 * decides, and json-c's serialization of what it accepted (plain names) is parsed. */
static int parse_generic(const char *text, size_t len, BrSamplesBatch *b, CmError *err)
{
    _cleanup_json_ json_object *doc = NULL;
    const char *canon;
    size_t n;
    int r;

    r = cm_json_parse(text, len, &doc, err);
    if (r >= 0)
        r = br_schema_check("samples", doc, err);
    if (r < 0)
        return r;
    canon = cm_json_to_string(doc, &n);
    if (!canon)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "cannot read the samples batch");
    r = parse_fast(canon, n, b, err);
    if (r == -EAGAIN)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "cannot read the samples batch");
    b->used_generic = true;
    return r;
}

int br_samples_parse(const char *text, size_t len, BrSamplesBatch *batch, CmError *err)
{
    int r = parse_fast(text, len, batch, err);
    if (r == -EAGAIN)
        r = parse_generic(text, len, batch, err);
    return r;
}
