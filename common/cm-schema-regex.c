/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cm-schema-priv.h"

/*
 * The patterns of our schemas, and no more, as ECMA-262 reads them on code points: literal
 * characters, escaped punctuation, ".", classes [a-z._-] and [^...], groups ( ) and (?: ),
 * "|", "^", "$", and the greedy quantifiers ? * + {n} {n,} {n,m}. Anything else (\d, \b,
 * lookarounds, backreferences, lazy quantifiers) is refused when the schema is compiled.
 *
 * A pattern becomes a small program that a Thompson NFA runs (every alternative at once, one
 * pass over the string): time linear in the string whatever the pattern, so no input can make
 * a schema's regex backtrack for long. Counted repetitions are written out, which is why the
 * program has a size limit.
 */

#define MAX_CODE 1024 /* instructions */

#define BAD_BRACE "{ must be escaped or start a quantifier {n}, {n,} or {n,m}"

typedef enum {
    OP_CHAR,  /* x: the code point */
    OP_ANY,   /* ".": any character but a line terminator */
    OP_CLASS, /* x: how many OP_RANGEs follow; y: whether the class is negated */
    OP_RANGE, /* x to y, part of the OP_CLASS before it */
    OP_BOL,
    OP_EOL,
    OP_SPLIT, /* go on at both pc + x and pc + y */
    OP_JMP,   /* go on at pc + x */
    OP_MATCH,
} Op;

/* Jumps are relative, so a block of code can be copied or moved as it is. */
typedef struct {
    Op op;
    int32_t x, y;
} Inst;

struct CmSchemaRegex {
    bool straight; /* "^", then characters only, then maybe "$": no thread to keep */
    size_t n;
    Inst code[];
};

typedef struct {
    const char *p;
    Inst code[MAX_CODE];
    size_t n;
    const char *why;
} Parser;

CmSchemaRegex *cm_schema_regex_free(CmSchemaRegex *re)
{
    free(re);
    return NULL;
}

/* Decodes the character at @s (valid UTF-8, as the JSON parser leaves it; a stray byte counts
 * as one character). Returns: its length in bytes, at least 1. */
static size_t utf8_next(const char *s, size_t len, uint32_t *ret)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t n = u[0] >= 0xf0 ? 4 : u[0] >= 0xe0 ? 3 : u[0] >= 0xc0 ? 2 : 1;
    uint32_t cp = n == 1 ? u[0] : u[0] & (0x3f >> (n - 1));

    for (size_t i = 1; i < n; i++) {
        if (i >= len || (u[i] & 0xc0) != 0x80) {
            *ret = u[0];
            return 1;
        }
        cp = cp << 6 | (u[i] & 0x3f);
    }
    *ret = cp;
    return n;
}

static int fail(Parser *ps, const char *why)
{
    ps->why = why;
    return -EINVAL;
}

/* Appends an instruction, or puts it before the block that starts at @at. */
static int insert(Parser *ps, size_t at, Op op, int32_t x, int32_t y)
{
    if (ps->n >= MAX_CODE)
        return fail(ps, "too long once its repetitions are written out");
    memmove(&ps->code[at + 1], &ps->code[at], (ps->n++ - at) * sizeof(Inst));
    ps->code[at] = (Inst){op, x, y};
    return 0;
}

static int emit(Parser *ps, Op op, int32_t x, int32_t y)
{
    return insert(ps, ps->n, op, x, y);
}

/* One literal character, escaped or not, of a pattern or a class. */
static int literal(Parser *ps, uint32_t *ret)
{
    if (*ps->p != '\\') {
        ps->p += utf8_next(ps->p, 4, ret); /* a NUL ends a sequence early */
        return 0;
    }
    if (!ps->p[1] || !strchr("^$\\.*+?()[]{}|/-", ps->p[1]))
        return fail(ps, "unsupported escape (only \\ before one of ^$\\.*+?()[]{}|/- is)");
    *ret = (unsigned char)ps->p[1];
    ps->p += 2;
    return 0;
}

static int parse_class(Parser *ps)
{
    size_t start = ps->n;
    int r = emit(ps, OP_CLASS, 0, ps->p[1] == '^');

    if (r < 0)
        return r;
    ps->p += ps->p[1] == '^' ? 2 : 1;
    if (*ps->p == ']')
        return fail(ps, "an empty character class is not supported");
    while (r == 0 && *ps->p != ']') {
        uint32_t lo, hi;
        if (!*ps->p)
            return fail(ps, "unterminated character class");
        r = literal(ps, &lo);
        hi = lo;
        if (r == 0 && ps->p[0] == '-' && ps->p[1] && ps->p[1] != ']') {
            ps->p++;
            r = literal(ps, &hi);
            if (r == 0 && hi < lo)
                return fail(ps, "a range in a class is out of order");
        }
        if (r == 0)
            r = emit(ps, OP_RANGE, (int32_t)lo, (int32_t)hi);
    }
    ps->p++;
    ps->code[start].x = (int32_t)(ps->n - start - 1);
    return r;
}

static int parse_alternatives(Parser *ps);

/* One atom; *ret_assertion tells "^" and "$", which cannot be repeated. */
static int parse_atom(Parser *ps, bool *ret_assertion)
{
    char ch = *ps->p;
    uint32_t cp;
    int r;

    *ret_assertion = ch == '^' || ch == '$';
    if (ch == '(') {
        if (ps->p[1] == '?' && ps->p[2] != ':')
            return fail(ps, "lookarounds and named groups are not supported");
        ps->p += ps->p[1] == '?' ? 3 : 1;
        r = parse_alternatives(ps);
        if (r == 0 && *ps->p != ')')
            r = fail(ps, "missing )");
        ps->p += r == 0;
        return r;
    }
    if (ch == '[')
        return parse_class(ps);
    if (strchr("*+?{", ch))
        return fail(ps, "nothing to repeat");
    if (strchr("]}", ch))
        return fail(ps, "a lone ] or } must be escaped");
    if (ch == '.' || *ret_assertion) {
        ps->p++;
        return emit(ps, ch == '.' ? OP_ANY : ch == '^' ? OP_BOL : OP_EOL, 0, 0);
    }
    r = literal(ps, &cp);
    return r < 0 ? r : emit(ps, OP_CHAR, (int32_t)cp, 0);
}

static int parse_count(Parser *ps, int *ret)
{
    char *end;
    long v;

    if (*ps->p < '0' || *ps->p > '9')
        return fail(ps, BAD_BRACE);
    v = strtol(ps->p, &end, 10);
    if (v > MAX_CODE)
        return fail(ps, "too long once its repetitions are written out");
    ps->p = end;
    *ret = (int)v;
    return 0;
}

static int emit_block(Parser *ps, const Inst *block, int32_t len)
{
    int r = 0;
    for (int32_t k = 0; k < len && r == 0; k++)
        r = emit(ps, block[k].op, block[k].x, block[k].y);
    return r;
}

/* Writes out the block from @start as @min copies and then up to @max (-1: any number). */
static int repeat(Parser *ps, size_t start, int min, int max)
{
    int32_t len = (int32_t)(ps->n - start);
    Inst block[MAX_CODE];
    int r = 0;

    memcpy(block, &ps->code[start], (size_t)len * sizeof(Inst));
    ps->n = start;
    for (int i = 0; i < min && r == 0; i++)
        r = emit_block(ps, block, len);
    if (r == 0 && max < 0 && min > 0) /* the last copy once more, as often as it matches */
        return emit(ps, OP_SPLIT, -len, 1);
    if (r == 0 && max < 0) { /* SPLIT over the block, which jumps back to the SPLIT */
        r = emit(ps, OP_SPLIT, 1, len + 2);
        r = r < 0 ? r : emit_block(ps, block, len);
        return r < 0 ? r : emit(ps, OP_JMP, -(len + 1), 0);
    }
    for (int i = min; i < max && r == 0; i++) { /* each optional copy may end the repetition */
        r = emit(ps, OP_SPLIT, 1, (max - i) * (len + 1));
        r = r < 0 ? r : emit_block(ps, block, len);
    }
    return r;
}

static int parse_quantifier(Parser *ps, size_t start, bool assertion)
{
    char ch = *ps->p;
    int min = ch == '+', max = ch == '?' ? 1 : -1, r;

    if (ch == '{') {
        ps->p++;
        r = parse_count(ps, &min);
        max = min;
        if (r == 0 && *ps->p == ',') {
            ps->p++;
            max = -1;
            if (*ps->p != '}')
                r = parse_count(ps, &max);
        }
        if (r == 0 && *ps->p != '}')
            r = fail(ps, BAD_BRACE);
        if (r == 0 && max >= 0 && max < min)
            r = fail(ps, "a quantifier {n,m} has m < n");
        if (r < 0)
            return r;
    } else if (!ch || !strchr("?*+", ch))
        return 0;
    ps->p++;
    if (assertion)
        return fail(ps, "nothing to repeat");
    if (*ps->p && strchr("?*+{", *ps->p))
        return fail(ps, "lazy or repeated quantifiers are not supported");
    return repeat(ps, start, min, max);
}

/* A sequence of atoms, then "|" and the other alternatives. */
static int parse_alternatives(Parser *ps)
{
    size_t start = ps->n, jump;
    bool assertion;
    int r = 0;

    while (r == 0 && *ps->p && *ps->p != '|' && *ps->p != ')') {
        size_t atom = ps->n;
        r = parse_atom(ps, &assertion);
        if (r == 0)
            r = parse_quantifier(ps, atom, assertion);
    }
    if (r < 0 || *ps->p != '|')
        return r;
    ps->p++;
    /* SPLIT to this sequence or to the next one, which the JMP after this one skips */
    r = insert(ps, start, OP_SPLIT, 1, (int32_t)(ps->n - start) + 2);
    jump = ps->n;
    r = r < 0 ? r : emit(ps, OP_JMP, 0, 0);
    r = r < 0 ? r : parse_alternatives(ps);
    if (r == 0)
        ps->code[jump].x = (int32_t)(ps->n - jump);
    return r;
}

int cm_schema_regex_compile(const char *src, CmSchemaRegex **ret, const char **why)
{
    _cleanup_free_ Parser *ps = calloc(1, sizeof(Parser));
    CmSchemaRegex *re;
    size_t pc = 1;
    int r;

    if (!ps)
        return -ENOMEM;
    ps->p = src;
    r = parse_alternatives(ps);
    if (r == 0 && *ps->p)
        r = fail(ps, "unbalanced )");
    r = r < 0 ? r : emit(ps, OP_MATCH, 0, 0);
    if (r < 0) {
        *why = ps->why;
        return r;
    }
    re = malloc(sizeof(*re) + ps->n * sizeof(Inst));
    if (!re)
        return -ENOMEM;
    re->n = ps->n;
    memcpy(re->code, ps->code, ps->n * sizeof(Inst));
    while (re->code[0].op == OP_BOL && re->code[pc].op <= OP_RANGE)
        pc++;
    re->straight = pc > 1 && (re->code[pc].op == OP_MATCH ||
                              (re->code[pc].op == OP_EOL && re->code[pc + 1].op == OP_MATCH));
    *ret = re;
    return 0;
}

/* ---- matching ---- */

typedef struct {
    uint16_t pc[MAX_CODE];
    size_t n;
} Threads;

/* Adds the thread at @pc for the character at @pos, following jumps and assertions; @seen[pc]
 * is pos + 1 once pc is on the list for @pos. Returns: whether the pattern matched. */
static bool add_thread(const CmSchemaRegex *re, Threads *t, uint32_t *seen, int32_t pc, size_t pos,
                       size_t len)
{
    for (;;) {
        const Inst *in = &re->code[pc];
        if (seen[pc] == (uint32_t)pos + 1)
            return false;
        seen[pc] = (uint32_t)pos + 1;
        if (in->op == OP_MATCH)
            return true;
        if (in->op <= OP_CLASS) { /* waits for the next character */
            t->pc[t->n++] = (uint16_t)pc;
            return false;
        }
        if ((in->op == OP_BOL && pos != 0) || (in->op == OP_EOL && pos != len))
            return false;
        if (in->op == OP_SPLIT && add_thread(re, t, seen, pc + in->x, pos, len))
            return true;
        pc += in->op == OP_JMP ? in->x : in->op == OP_SPLIT ? in->y : 1;
    }
}

/* Whether the instruction at @pc takes @cp. Returns: the pc after it, or -1. */
static int32_t step(const CmSchemaRegex *re, int32_t pc, uint32_t cp)
{
    const Inst *in = &re->code[pc];
    bool in_class = false;

    if (in->op == OP_CHAR)
        return cp == (uint32_t)in->x ? pc + 1 : -1;
    if (in->op == OP_ANY) /* ECMA's "." stops at line terminators */
        return cp != '\n' && cp != '\r' && cp != 0x2028 && cp != 0x2029 ? pc + 1 : -1;
    for (int32_t i = 1; i <= in->x && !in_class; i++)
        in_class = cp >= (uint32_t)in[i].x && cp <= (uint32_t)in[i].y;
    return in_class != (bool)in->y ? pc + 1 + in->x : -1;
}

bool cm_schema_regex_search(const CmSchemaRegex *re, const char *s, size_t len)
{
    Threads lists[2];
    Threads *cur = &lists[0], *next = &lists[1], *swap;
    uint32_t seen[MAX_CODE]; /* json-c's strings are shorter than 2 GiB */
    size_t pos = 0, n_bytes;
    bool anchored = re->code[0].op == OP_BOL;
    uint32_t cp;
    int32_t pc;

    if (re->straight) { /* the common "^[0-9a-f]{8}-...$": one character after the other */
        for (pc = 1; pc >= 0 && re->code[pc].op <= OP_CLASS; pos += n_bytes) {
            if (pos == len)
                return false;
            n_bytes = utf8_next(s + pos, len - pos, &cp);
            pc = step(re, pc, cp);
        }
        return pc >= 0 && (re->code[pc].op == OP_MATCH || pos == len);
    }
    memset(seen, 0, re->n * sizeof(*seen));
    for (cur->n = 0;; pos += n_bytes) {
        /* a match may start here too (not after the start, for "^...") */
        if ((pos == 0 || !anchored) && add_thread(re, cur, seen, 0, pos, len))
            return true;
        if (pos == len || (anchored && cur->n == 0))
            return false;
        n_bytes = utf8_next(s + pos, len - pos, &cp);
        next->n = 0;
        for (size_t i = 0; i < cur->n; i++)
            if ((pc = step(re, cur->pc[i], cp)) >= 0 &&
                add_thread(re, next, seen, pc, pos + n_bytes, len))
                return true;
        swap = cur, cur = next, next = swap;
    }
}
