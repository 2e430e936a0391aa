/* SPDX-License-Identifier: Apache-2.0 */
/*
 * POST /v1/samples in one pass: the strict syntax of cm_json_parse() and every rule of
 * schemas/samples.json checked while the values go straight into C structs. The generic path
 * (cm_json_parse(): a syntax pre-scan, a json-c tree, a walk for NUL characters;
 * cm_schema_validate(): a second walk; then a lookup by name per member) cost about 70 % of
 * the broker's CPU per window (tests/bench/README.md, "Metering: ingest").
 *
 * This parser only accepts. At the first thing it would not accept — a syntax error, a rule
 * of the schema broken, a NUL character, a member name that json-c reads otherwise than its
 * text (a \u escape of NUL, which cuts the name, or of a non-ASCII character) — it gives up,
 * and the generic path answers: every error is the generic path's own, and a document the
 * generic path accepts after all is read from json-c's serialization of it.
 */
#include <errno.h>
#include <math.h>
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
#define ID_MAX (INT64_C(1) << 53)         /* the largest id a path takes */
#define START_MAX INT64_C(4102444800)     /* 2100-01-01T00:00:00Z */
#define MEMORY_MIB_MAX INT64_C(134217728) /* 128 TiB */
#define BYTES_MAX (INT64_C(1) << 49)      /* 512 TiB in one window: 156 GB/s for an hour */
#define COUNT_MAX (INT64_C(1) << 40)      /* requests or packets in one window */
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

/* "required" of each kind of record, as bits */
#define BIT(f) (UINT32_C(1) << (f))
#define TIMING (BIT(BR_SF_START) | BIT(BR_SF_DURATION) | BIT(BR_SF_READINGS) | BIT(BR_SF_EXPECTED))

typedef struct {
    const char *name;
    size_t name_len;
    const Rule *rules;
    size_t n_rules;
    uint32_t required; /* bit BR_SF_* */
    size_t max_items;
} ListRules;

static const ListRules lists[BR_SAMPLES_LIST_MAX] = {
    [BR_SAMPLES_INSTANCES] = {"instances", 9, instance_rules, ELEMENTSOF(instance_rules),
                              BIT(BR_SF_INSTANCE) | BIT(BR_SF_UUID) | TIMING, 20000},
    [BR_SAMPLES_UNOWNED] = {"unowned", 7, unowned_rules, ELEMENTSOF(unowned_rules),
                            BIT(BR_SF_UUID) | BIT(BR_SF_NAME) | TIMING, 20000},
    [BR_SAMPLES_HOST] = {"host", 4, host_rules, ELEMENTSOF(host_rules), TIMING, 1000},
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

/* ---- the parser: false means "not accepted here", whatever the reason ---- */

typedef struct {
    const unsigned char *s;
    size_t len, pos;
    BrSamplesBatch *b;
    bool oom;
} Parser;

/* A string's raw content between its quotes, and what its escapes hold. */
typedef struct {
    size_t start, end;
    bool escaped; /* any backslash */
    bool nul;     /* an escaped NUL */
    bool odd;     /* a \u escape of NUL or of a non-ASCII character */
} Str;

static inline void ws(Parser *p)
{
    while (p->pos < p->len) {
        unsigned char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\r' && c != '\n')
            break;
        p->pos++;
    }
}

/* The next byte after white space is @c, which is consumed. */
static inline bool expect(Parser *p, unsigned char c)
{
    ws(p);
    if (p->pos >= p->len || p->s[p->pos] != c)
        return false;
    p->pos++;
    return true;
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
    static const char simple[256] = {['b'] = '\b', ['f'] = '\f', ['n'] = '\n',  ['r'] = '\r',
                                     ['t'] = '\t', ['"'] = '"',  ['\\'] = '\\', ['/'] = '/'};
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned cp;
        if (s[i] != '\\') {
            out[o++] = (char)s[i];
            continue;
        }
        if (s[++i] != 'u') {
            out[o++] = simple[s[i]];
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

/* A string as cm-json.c's scanner accepts it: valid UTF-8, no raw control character, only
 * JSON's escapes, surrogates in pairs. */
static bool scan_string(Parser *p, Str *out)
{
    size_t start;
    bool high = false;

    *out = (Str){0};
    if (p->pos >= p->len || p->s[p->pos] != '"')
        return false;
    start = ++p->pos;
    while (p->pos < p->len) {
        unsigned char c = p->s[p->pos];
        if (c == '"') {
            /* Only bytes past ASCII can be invalid: the others were checked one by one. */
            if (high && !cm_utf8_valid((const char *)p->s + start, p->pos - start))
                return false;
            out->start = start;
            out->end = p->pos++;
            return true;
        }
        if (c < 0x20)
            return false;
        if (c >= 0x80) {
            high = true;
        } else if (c == '\\') {
            out->escaped = true;
            if (++p->pos >= p->len)
                return false;
            c = p->s[p->pos];
            if (c == 'u') {
                int cp = hex4(p->s, p->len, p->pos + 1);
                if (cp < 0 || (cp >= 0xDC00 && cp <= 0xDFFF))
                    return false;
                p->pos += 4;
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    int lo =
                        p->pos + 2 < p->len && p->s[p->pos + 1] == '\\' && p->s[p->pos + 2] == 'u'
                            ? hex4(p->s, p->len, p->pos + 3)
                            : -1;
                    if (lo < 0xDC00 || lo > 0xDFFF)
                        return false;
                    p->pos += 6;
                }
                out->nul = out->nul || cp == 0;
                out->odd = out->odd || cp == 0 || cp >= 0x80;
            } else if (!c || !strchr("\"\\/bfnrt", c)) {
                return false;
            }
        }
        p->pos++;
    }
    return false;
}

static bool scan_literal(Parser *p, const char *word, size_t n)
{
    if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n) != 0)
        return false;
    p->pos += n;
    return true;
}

/* A number as json-c holds it: an int64, or a double. */
typedef struct {
    bool is_double;
    int64_t i;
    double d;
} Num;

static const double pow10_exact[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                     1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                     1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* strtod() of a token that may lie at the very end of a buffer without a terminator. */
static double token_strtod(Parser *p, size_t start, size_t end)
{
    char small[128];
    size_t n = end - start;
    _cleanup_free_ char *big = n >= sizeof(small) ? malloc(n + 1) : NULL;
    char *buf = n >= sizeof(small) ? big : small;

    if (!buf) {
        p->oom = true;
        return NAN; /* out of every range: not accepted */
    }
    memcpy(buf, p->s + start, n);
    buf[n] = 0;
    return strtod(buf, NULL);
}

/* cm-json.c's scan_number() and the value json-c makes of the number: strtoll() for
 * integers (one past INT64 is past every maximum of the schema: not accepted), strtod()
 * otherwise. */
static bool scan_number(Parser *p, Num *out)
{
    const unsigned char *s = p->s;
    size_t q = p->pos, len = p->len;
    bool neg = false, overflow = false;
    uint64_t mant = 0;
    unsigned sig = 0; /* significant digits in mant */
    int frac = 0;     /* digits after the point */
    int64_t exp10 = 0;

    *out = (Num){0};
    if (q < len && s[q] == '-')
        neg = s[q++] == '-';
    if (q < len && s[q] == '0') {
        if (++q < len && is_digit(s[q]))
            return false; /* a leading zero */
    } else if (q < len && is_digit(s[q])) {
        while (q < len && is_digit(s[q])) {
            unsigned d = (unsigned)(s[q++] - '0');
            if (mant > (UINT64_MAX - d) / 10)
                overflow = true;
            else
                mant = mant * 10 + d;
            sig += mant != 0;
        }
    } else {
        return false;
    }
    if (q < len && s[q] == '.') {
        out->is_double = true;
        if (++q >= len || !is_digit(s[q]))
            return false;
        for (; q < len && is_digit(s[q]); q++) {
            if (sig < 19) {
                mant = mant * 10 + (unsigned)(s[q] - '0');
                frac++;
                sig += mant != 0;
            } else
                sig = 99;
        }
    }
    if (q < len && (s[q] == 'e' || s[q] == 'E')) {
        bool eneg = false;
        out->is_double = true;
        if (++q < len && (s[q] == '+' || s[q] == '-'))
            eneg = s[q++] == '-';
        if (q >= len || !is_digit(s[q]))
            return false;
        for (; q < len && is_digit(s[q]); q++)
            if (exp10 < 100000)
                exp10 = exp10 * 10 + (s[q] - '0');
        if (eneg)
            exp10 = -exp10;
    }
    if (!out->is_double) {
        if (overflow || mant > (uint64_t)INT64_MAX)
            return false;
        out->i = neg ? -(int64_t)mant : (int64_t)mant;
    } else {
        int64_t e = exp10 - frac;
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
    p->pos = q;
    return true;
}

/* ---- the records ---- */

/* A number within the rule's bounds (exact: every bound is a double), kept as json-c reads it:
 * an integer member by cm_json_get_int(), a number member by json_object_get_double(). */
static bool field_number(const Rule *r, BrSample *rec, const Num *n)
{
    bool integer = r->type == RULE_INT || r->type == RULE_NINT;

    if (!n->is_double) {
        if (n->i < r->min || n->i > r->max)
            return false;
        if (integer)
            rec->v[r->field].i = n->i;
        else
            rec->v[r->field].d = (double)n->i;
    } else {
        /* JSON Schema's integers include 3.0; NaN and infinities are out of every range */
        if (!(n->d >= (double)r->min && n->d <= (double)r->max) || (integer && n->d != trunc(n->d)))
            return false;
        if (integer)
            rec->v[r->field].i = (int64_t)n->d;
        else
            rec->v[r->field].d = n->d;
    }
    rec->present |= BIT(r->field);
    return true;
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
    size_t ncap = b->text_cap ? b->text_cap : 4096;
    char *nt;

    if (b->text_len + n + 1 <= b->text_cap)
        return true;
    while (ncap < b->text_len + n + 1)
        ncap *= 2;
    nt = realloc(b->text, ncap);
    if (!nt) {
        p->oom = true;
        return false;
    }
    b->text = nt;
    b->text_cap = ncap;
    return true;
}

static bool field_string(Parser *p, const Rule *r, BrSample *rec, const Str *st)
{
    const unsigned char *raw = p->s + st->start;
    size_t n = st->end - st->start;
    char buf[36 * 6 + 1]; /* a UUID in escapes; "balloon" in escapes is 42 bytes */
    const char *v = (const char *)raw;

    if (st->nul)
        return false; /* strings must not hold NUL */
    if (r->type == RULE_NAME) {
        size_t chars = 0, off;
        if (!text_reserve(p, n))
            return false;
        off = p->b->text_len;
        if (st->escaped) {
            n = decode(raw, n, p->b->text + off);
        } else {
            memcpy(p->b->text + off, raw, n);
            p->b->text[off + n] = 0;
        }
        /* code points, as JSON Schema counts */
        for (size_t i = 0; i < n; i++)
            chars += ((unsigned char)p->b->text[off + i] & 0xc0) != 0x80;
        if (chars > NAME_MAX_LENGTH)
            return false;
        p->b->text_len += n + 1;
        rec->name_off = (uint32_t)off;
        rec->name_len = (uint32_t)n;
    } else {
        if (st->escaped) {
            /* an escape decodes to a sixth of its length at least: longer is neither */
            if (n >= sizeof(buf))
                return false;
            n = decode(raw, n, buf);
            v = buf;
        }
        if (r->type == RULE_UUID && uuid_ok(v, n)) {
            memcpy(rec->uuid, v, 36);
            rec->uuid[36] = 0;
        } else if (r->type == RULE_SOURCE && n == 7 && memcmp(v, "balloon", 7) == 0) {
            rec->memory_source = "balloon";
        } else if (r->type == RULE_SOURCE && n == 3 && memcmp(v, "rss", 3) == 0) {
            rec->memory_source = "rss";
        } else {
            return false;
        }
    }
    rec->present |= BIT(r->field);
    return true;
}

static bool parse_field(Parser *p, const Rule *r, BrSample *rec)
{
    Str st;
    Num n;

    ws(p);
    if (p->pos >= p->len)
        return false;
    switch (p->s[p->pos]) {
    case '"':
        return scan_string(p, &st) && field_string(p, r, rec, &st);
    case 'n':
        /* null is a missing value where the type allows it */
        return scan_literal(p, "null", 4) && r->type != RULE_INT && r->type != RULE_UUID &&
               r->type != RULE_NAME;
    default:
        return (r->type == RULE_INT || r->type == RULE_NINT || r->type == RULE_NNUM) &&
               scan_number(p, &n) && field_number(r, rec, &n);
    }
}

/* The member name at the parser, in @buf when escaped; false for a name json-c reads
 * otherwise (it cuts at NUL, merges non-ASCII escapes) or one too long to be a member's. */
static bool member_name(Parser *p, char *buf, size_t size, const char **ret, size_t *ret_len)
{
    Str st;

    if (!scan_string(p, &st) || st.odd)
        return false;
    *ret = (const char *)p->s + st.start;
    *ret_len = st.end - st.start;
    if (st.escaped) {
        if (*ret_len >= size)
            return false;
        *ret_len = decode(p->s + st.start, *ret_len, buf);
        *ret = buf;
    }
    return expect(p, ':');
}

/* The member @s (@n bytes) of a record of @lr, trying first the one after the last found:
 * the agent writes them in the schema's order. */
static const Rule *find_rule(const ListRules *lr, const char *s, size_t n, size_t *hint)
{
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

/* An object of known members, each once: @member parses the value of the one it is given. */
typedef bool (*MemberFn)(Parser *p, const char *name, size_t len, void *ctx);

static bool parse_object(Parser *p, MemberFn member, void *ctx)
{
    if (!expect(p, '{'))
        return false;
    if (expect(p, '}'))
        return true;
    do {
        char buf[257]; /* a \u escape is 6 bytes for 1: no member decodes from longer names */
        const char *name;
        size_t len;
        ws(p);
        if (!member_name(p, buf, sizeof(buf), &name, &len) || !member(p, name, len, ctx))
            return false;
    } while (expect(p, ','));
    return expect(p, '}');
}

typedef struct {
    const ListRules *lr;
    BrSample *rec;
    size_t hint;
    uint32_t seen; /* the members there, null or not */
} Record;

static bool record_member(Parser *p, const char *name, size_t len, void *ctx)
{
    Record *x = ctx;
    const Rule *r = find_rule(x->lr, name, len, &x->hint);

    if (!r || (x->seen & BIT(r->field)) || !parse_field(p, r, x->rec))
        return false;
    x->seen |= BIT(r->field);
    return true;
}

static BrSample *batch_add(Parser *p, BrSamplesList l)
{
    BrSamplesBatch *b = p->b;
    BrSample *rec;

    if (b->n[l] == lists[l].max_items)
        return NULL; /* past maxItems */
    if (b->n[l] == b->cap[l]) {
        /* sized from the body at first: the agent's records are about 450 bytes */
        size_t ncap = b->cap[l] ? b->cap[l] * 2 : p->len / 512 + 16;
        if (ncap > lists[l].max_items)
            ncap = lists[l].max_items;
        BrSample *ni = realloc(b->items[l], ncap * sizeof(*ni));
        if (!ni) {
            p->oom = true;
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
    if (!expect(p, '['))
        return false;
    if (expect(p, ']'))
        return true;
    do {
        Record x = {&lists[l], batch_add(p, l), 0, 0};
        if (!x.rec || !parse_object(p, record_member, &x) ||
            (x.seen & x.lr->required) != x.lr->required)
            return false;
    } while (expect(p, ','));
    return expect(p, ']');
}

static bool root_member(Parser *p, const char *name, size_t len, void *ctx)
{
    uint32_t *seen = ctx;
    for (int l = 0; l < BR_SAMPLES_LIST_MAX; l++) {
        if (len != lists[l].name_len || memcmp(name, lists[l].name, len) != 0)
            continue;
        if (*seen & BIT(l))
            return false;
        *seen |= BIT(l);
        return parse_list(p, (BrSamplesList)l);
    }
    return false;
}

/* Returns: 0 when the document is accepted, -EAGAIN when the generic path answers, -ENOMEM. */
static int parse_fast(const char *text, size_t len, BrSamplesBatch *b)
{
    Parser p = {.s = (const unsigned char *)text, .len = len, .b = b};
    uint32_t seen = 0;
    bool ok;

    br_samples_batch_clear(b);
    ok = len <= INT32_MAX && parse_object(&p, root_member, &seen);
    ws(&p);
    if (p.oom)
        return -ENOMEM;
    return ok && p.pos == len ? 0 : -EAGAIN;
}

int br_samples_parse_strict(const char *text, size_t len, BrSamplesBatch *batch, CmError *err)
{
    int r = parse_fast(text, len, batch);
    if (r == -ENOMEM)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    return r;
}

int br_samples_parse(const char *text, size_t len, BrSamplesBatch *batch, CmError *err)
{
    _cleanup_json_ json_object *doc = NULL;
    const char *canon;
    size_t n;
    int r = br_samples_parse_strict(text, len, batch, err);

    if (r != -EAGAIN)
        return r;
    /* The generic path answers; what it accepts is read from json-c's serialization. */
    r = cm_json_parse(text, len, &doc, err);
    if (r >= 0)
        r = br_schema_check("samples", doc, err);
    if (r < 0)
        return r;
    canon = cm_json_to_string(doc, &n);
    if (!canon || parse_fast(canon, n, batch) < 0)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "cannot read the samples batch");
    batch->used_generic = true;
    return 0;
}
