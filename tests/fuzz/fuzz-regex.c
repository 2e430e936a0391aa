/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The schema pattern matcher (common/cm-schema-regex.c) against a reference written here
 * from the subset it documents (ECMA-262 on code points: literals, escaped punctuation, ".",
 * classes, groups, "|", "^", "$", greedy ? * + {n} {n,} {n,m}): the pattern, a NUL byte,
 * then the string. Both must agree on which patterns compile (but for the size limit of the
 * written-out program) and on whether the string holds a match. The reference computes the
 * set of positions where each part can end (memoized): slow but simple, and unlike a
 * backtracking reference never exponential.
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "cm-schema-priv.h"
#include "cm-util.h"
#include "fuzz.h"

#define MAX_CPS 256
#define WORDS ((MAX_CPS + 1 + 63) / 64)
#define MAX_NODES 512

typedef struct {
    uint64_t w[WORDS];
} Set;

typedef enum { N_CHAR, N_ANY, N_CLASS, N_BOL, N_EOL, N_ALT, N_SEQ, N_REP } Kind;

typedef struct {
    Kind kind;
    uint32_t cp;
    int min, max; /* N_REP; max -1: no limit */
    bool negated;
    int kids[64]; /* N_ALT, N_SEQ: the parts; N_REP: kids[0]; N_CLASS: pairs in ranges */
    int n_kids;
    uint32_t ranges[64][2];
    int n_ranges;
} RNode;

typedef struct {
    const char *p;
    RNode nodes[MAX_NODES];
    int n;
    bool too_big; /* beyond what the reference keeps: no comparison */
} RParser;

static int new_node(RParser *ps, Kind k)
{
    if (ps->n == MAX_NODES) {
        ps->too_big = true;
        return -1;
    }
    memset(&ps->nodes[ps->n], 0, sizeof(RNode));
    ps->nodes[ps->n].kind = k;
    return ps->n++;
}

static int add_kid(RParser *ps, int parent, int kid)
{
    RNode *n = &ps->nodes[parent];
    if (n->n_kids == 64) {
        ps->too_big = true;
        return -1;
    }
    n->kids[n->n_kids++] = kid;
    return 0;
}

static uint32_t next_cp(const char **p)
{
    const unsigned char *u = (const unsigned char *)*p;
    uint32_t cp;
    size_t n = u[0] >= 0xf0 ? 4 : u[0] >= 0xe0 ? 3 : u[0] >= 0xc0 ? 2 : 1;
    cp = n == 1 ? u[0] : u[0] & (0x3f >> (n - 1));
    for (size_t i = 1; i < n; i++)
        cp = cp << 6 | (u[i] & 0x3f);
    *p += n;
    return cp;
}

/* An escape or a plain character. Returns: 0, or -1 for an escape not in the subset. */
static int r_literal(RParser *ps, uint32_t *cp)
{
    if (*ps->p == '\\') {
        if (!ps->p[1] || !strchr("^$\\.*+?()[]{}|/-", ps->p[1]))
            return -1;
        *cp = (unsigned char)ps->p[1];
        ps->p += 2;
        return 0;
    }
    *cp = next_cp(&ps->p);
    return 0;
}

static int r_alt(RParser *ps);

static int r_class(RParser *ps)
{
    int id = new_node(ps, N_CLASS);
    if (id < 0)
        return -1;
    ps->p++;
    if (*ps->p == '^') {
        ps->nodes[id].negated = true;
        ps->p++;
    }
    if (*ps->p == ']')
        return -1;
    while (*ps->p != ']') {
        uint32_t lo, hi;
        if (!*ps->p || r_literal(ps, &lo) < 0)
            return -1;
        hi = lo;
        if (ps->p[0] == '-' && ps->p[1] && ps->p[1] != ']') {
            ps->p++;
            if (r_literal(ps, &hi) < 0 || hi < lo)
                return -1;
        }
        RNode *n = &ps->nodes[id];
        if (n->n_ranges == 64) {
            ps->too_big = true;
            return -1;
        }
        n->ranges[n->n_ranges][0] = lo;
        n->ranges[n->n_ranges][1] = hi;
        n->n_ranges++;
    }
    ps->p++;
    return id;
}

static int r_count(RParser *ps, int *ret)
{
    long v = 0;
    if (*ps->p < '0' || *ps->p > '9')
        return -1;
    while (*ps->p >= '0' && *ps->p <= '9') {
        v = v * 10 + (*ps->p++ - '0');
        if (v > 100000)
            v = 100000;
    }
    *ret = (int)v;
    return 0;
}

/* An atom and its quantifier. Returns: the node, or -1 when the pattern is refused. */
static int r_item(RParser *ps)
{
    char ch = *ps->p;
    int atom, min, max;
    bool assertion = ch == '^' || ch == '$';

    if (ch == '(') {
        if (ps->p[1] == '?' && ps->p[2] != ':')
            return -1;
        ps->p += ps->p[1] == '?' ? 3 : 1;
        atom = r_alt(ps);
        if (atom < 0 || *ps->p != ')')
            return -1;
        ps->p++;
    } else if (ch == '[') {
        atom = r_class(ps);
    } else if (strchr("*+?{]}", ch)) {
        return -1;
    } else if (ch == '.' || assertion) {
        atom = new_node(ps, ch == '.' ? N_ANY : ch == '^' ? N_BOL : N_EOL);
        ps->p++;
    } else {
        uint32_t cp;
        if (r_literal(ps, &cp) < 0)
            return -1;
        atom = new_node(ps, N_CHAR);
        if (atom >= 0)
            ps->nodes[atom].cp = cp;
    }
    if (atom < 0)
        return -1;
    ch = *ps->p;
    if (ch == '*' || ch == '+' || ch == '?') {
        min = ch == '+';
        max = ch == '?' ? 1 : -1;
        ps->p++;
    } else if (ch == '{') {
        ps->p++;
        if (r_count(ps, &min) < 0)
            return -1;
        max = min;
        if (*ps->p == ',') {
            ps->p++;
            max = -1;
            if (*ps->p != '}' && r_count(ps, &max) < 0)
                return -1;
        }
        if (*ps->p != '}' || (max >= 0 && max < min))
            return -1;
        ps->p++;
    } else {
        return atom;
    }
    if (assertion || (*ps->p && strchr("?*+{", *ps->p)))
        return -1;
    if (min > 1000 || max > 1000) {
        ps->too_big = true;
        return -1;
    }
    int rep = new_node(ps, N_REP);
    if (rep < 0 || add_kid(ps, rep, atom) < 0)
        return -1;
    ps->nodes[rep].min = min;
    ps->nodes[rep].max = max;
    return rep;
}

static int r_seq(RParser *ps)
{
    int seq = new_node(ps, N_SEQ);
    while (seq >= 0 && *ps->p && *ps->p != '|' && *ps->p != ')') {
        int item = r_item(ps);
        if (item < 0 || add_kid(ps, seq, item) < 0)
            return -1;
    }
    return seq;
}

static int r_alt(RParser *ps)
{
    int alt = new_node(ps, N_ALT);
    for (;;) {
        int seq = alt < 0 ? -1 : r_seq(ps);
        if (seq < 0 || add_kid(ps, alt, seq) < 0)
            return -1;
        if (*ps->p != '|')
            return alt;
        ps->p++;
    }
}

/* ---- matching: the set of end positions of a node from a start, memoized ---- */

typedef struct {
    const RParser *ps;
    const uint32_t *cps;
    int len;
    Set *memo; /* [node][pos] */
    bool *done;
} Match;

static bool set_has(const Set *s, int i)
{
    return s->w[i / 64] >> (i % 64) & 1;
}

static void set_add(Set *s, int i)
{
    s->w[i / 64] |= UINT64_C(1) << (i % 64);
}

static void set_or(Set *a, const Set *b)
{
    for (int i = 0; i < WORDS; i++)
        a->w[i] |= b->w[i];
}

static bool set_empty(const Set *s)
{
    for (int i = 0; i < WORDS; i++)
        if (s->w[i])
            return false;
    return true;
}

static bool takes(const RNode *n, uint32_t cp)
{
    bool in = false;
    if (n->kind == N_CHAR)
        return cp == n->cp;
    if (n->kind == N_ANY)
        return cp != '\n' && cp != '\r' && cp != 0x2028 && cp != 0x2029;
    for (int i = 0; i < n->n_ranges; i++)
        in = in || (cp >= n->ranges[i][0] && cp <= n->ranges[i][1]);
    return in != n->negated;
}

static Set ends(Match *m, int id, int pos);

/* Where @id can end after any of the positions in @from. */
static Set ends_from(Match *m, int id, const Set *from)
{
    Set out = {{0}};
    for (int p = 0; p <= m->len; p++)
        if (set_has(from, p)) {
            Set e = ends(m, id, p);
            set_or(&out, &e);
        }
    return out;
}

static Set ends(Match *m, int id, int pos)
{
    const RNode *n = &m->ps->nodes[id];
    Set *slot = &m->memo[(size_t)id * (size_t)(m->len + 1) + (size_t)pos];
    Set out = {{0}}, cur;

    if (m->done[(size_t)id * (size_t)(m->len + 1) + (size_t)pos])
        return *slot;
    switch (n->kind) {
    case N_CHAR:
    case N_ANY:
    case N_CLASS:
        if (pos < m->len && takes(n, m->cps[pos]))
            set_add(&out, pos + 1);
        break;
    case N_BOL:
        if (pos == 0)
            set_add(&out, pos);
        break;
    case N_EOL:
        if (pos == m->len)
            set_add(&out, pos);
        break;
    case N_ALT:
        for (int i = 0; i < n->n_kids; i++) {
            Set e = ends(m, n->kids[i], pos);
            set_or(&out, &e);
        }
        break;
    case N_SEQ:
        set_add(&out, pos);
        for (int i = 0; i < n->n_kids && !set_empty(&out); i++)
            out = ends_from(m, n->kids[i], &out);
        break;
    case N_REP: {
        cur = (Set){{0}};
        set_add(&cur, pos);
        for (int i = 0; i < n->min && !set_empty(&cur); i++)
            cur = ends_from(m, n->kids[0], &cur);
        out = cur;
        if (n->max < 0) {
            /* as often as it goes: until no new position is reached */
            for (;;) {
                Set next = ends_from(m, n->kids[0], &cur), fresh;
                bool any = false;
                for (int w = 0; w < WORDS; w++) {
                    fresh.w[w] = next.w[w] & ~out.w[w];
                    any = any || fresh.w[w];
                }
                if (!any)
                    break;
                set_or(&out, &fresh);
                cur = fresh;
            }
        } else {
            for (int i = n->min; i < n->max && !set_empty(&cur); i++) {
                cur = ends_from(m, n->kids[0], &cur);
                set_or(&out, &cur);
            }
        }
        break;
    }
    }
    *slot = out;
    m->done[(size_t)id * (size_t)(m->len + 1) + (size_t)pos] = true;
    return out;
}

static bool ref_search(const RParser *ps, int root, const uint32_t *cps, int len)
{
    Match m = {.ps = ps, .cps = cps, .len = len};
    bool found = false;

    m.memo = calloc((size_t)ps->n * (size_t)(len + 1), sizeof(Set));
    m.done = calloc((size_t)ps->n * (size_t)(len + 1), sizeof(bool));
    if (!m.memo || !m.done)
        abort();
    for (int s = 0; s <= len && !found; s++) {
        Set e = ends(&m, root, s);
        found = !set_empty(&e);
    }
    free(m.memo);
    free(m.done);
    return found;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    CmSchemaRegex *re = NULL;
    const char *why = NULL;
    char *pattern, *subject;
    size_t plen, slen;
    uint32_t cps[MAX_CPS];
    int n_cps = 0, r;
    RParser *ps;
    int root;

    if (!nul)
        return 0;
    plen = (size_t)(nul - data);
    pattern = fuzz_strndup(data, plen);
    subject = fuzz_strndup(nul + 1, size - plen - 1);
    slen = size - plen - 1;
    r = cm_schema_regex_compile(pattern, &re, &why);
    FUZZ_CHECK(r == 0 || r == -EINVAL, "compile: %d", r);
    FUZZ_CHECK(r == 0 || why, "refused without a reason");
    if (r == 0)
        (void)cm_schema_regex_search(re, subject, slen); /* any bytes: no crash */

    /* The comparison, on what a schema holds: valid UTF-8 patterns and strings. */
    ps = calloc(1, sizeof(*ps));
    if (!ps)
        abort();
    ps->p = pattern;
    if (!cm_utf8_valid(pattern, plen) || !cm_utf8_valid(subject, slen))
        goto out;
    root = r_alt(ps);
    if (root >= 0 && *ps->p)
        root = -1; /* a ) too many */
    if (ps->too_big)
        goto out;
    if (r < 0) {
        FUZZ_CHECK(root < 0 || strstr(why, "too long"), "refused (%s) what the reference takes",
                   why);
        goto out;
    }
    FUZZ_CHECK(root >= 0, "compiled what the reference refuses");
    for (const char *p = subject; *p && n_cps < MAX_CPS;)
        cps[n_cps++] = next_cp(&p);
    if (n_cps == MAX_CPS)
        goto out;
    bool want = ref_search(ps, root, cps, n_cps);
    bool got = cm_schema_regex_search(re, subject, slen);
    FUZZ_CHECK(got == want, "/%s/ on '%s': %s, reference %s", pattern, subject,
               got ? "match" : "no match", want ? "match" : "no match");
out:
    free(ps);
    cm_schema_regex_free(re);
    free(pattern);
    free(subject);
    return 0;
}
