/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cm-cleanup.h"
#include "cm-db-dialect.h"
#include "cm-util.h"

#define PG_MAX_PARAMS 65535

typedef enum {
    TOK_SPACE, /* blanks and comments */
    TOK_STRING,
    TOK_QUOTED, /* "identifier" or `identifier` */
    TOK_WORD,
    TOK_PARAM, /* ?, ?N or $N */
    TOK_NUMBER,
    TOK_PUNCT,
} TokKind;

typedef struct {
    TokKind kind;
    const char *p;
    size_t len;
} Tok;

typedef struct {
    Tok *v;
    size_t n;
} Toks;

static void toks_free(Toks *t)
{
    free(t->v);
}

static bool is_word_start(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80;
}

static bool is_word_char(unsigned char c)
{
    return is_word_start(c) || (c >= '0' && c <= '9') || c == '$';
}

static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

/* The end of a literal quoted by @q that starts at @s (on the quote), a doubled quote being
 * one quote character; NULL when it is not terminated. */
static const char *quoted_end(const char *s, char q)
{
    for (s++; *s; s++)
        if (*s == q) {
            if (s[1] != q)
                return s + 1;
            s++;
        }
    return NULL;
}

/* A PostgreSQL dollar-quoted body ($$...$$ or $tag$...$tag$) at @s: its end, or NULL when
 * @s does not open one or it is not terminated. */
static const char *dollar_end(const char *s)
{
    const char *t = s + 1, *close;
    size_t taglen;

    while (*t && *t != '$') {
        if (!(t == s + 1 ? is_word_start((unsigned char)*t) : is_word_char((unsigned char)*t)))
            return NULL;
        t++;
    }
    if (*t != '$')
        return NULL;
    taglen = (size_t)(t - s) + 1;
    for (close = t + 1; (close = strchr(close, '$')); close++)
        if (strncmp(close, s, taglen) == 0)
            return close + taglen;
    return NULL;
}

static int lex(const char *sql, Toks *ret)
{
    size_t cap = 64;
    Toks t = {.v = malloc(cap * sizeof(Tok))};
    const char *s = sql;

    if (!t.v)
        return -ENOMEM;
    while (*s) {
        Tok k = {.p = s};
        const char *e = s + 1;
        unsigned char c = (unsigned char)*s;

        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f') {
            k.kind = TOK_SPACE;
            while (*e == ' ' || *e == '\t' || *e == '\n' || *e == '\r' || *e == '\f')
                e++;
        } else if (c == '-' && s[1] == '-') {
            k.kind = TOK_SPACE;
            e = s + strcspn(s, "\n");
        } else if (c == '/' && s[1] == '*') {
            const char *end = strstr(s + 2, "*/");
            k.kind = TOK_SPACE;
            e = end ? end + 2 : s + strlen(s);
        } else if (c == '\'') {
            k.kind = TOK_STRING;
            e = quoted_end(s, '\'');
        } else if (c == '"' || c == '`') {
            k.kind = TOK_QUOTED;
            e = quoted_end(s, (char)c);
        } else if (c == '$' && is_digit((unsigned char)s[1])) {
            k.kind = TOK_PARAM;
            while (is_digit((unsigned char)*e))
                e++;
        } else if (c == '$' && (s[1] == '$' || is_word_start((unsigned char)s[1])) &&
                   dollar_end(s)) {
            k.kind = TOK_STRING;
            e = dollar_end(s);
        } else if (c == '?') {
            k.kind = TOK_PARAM;
            while (is_digit((unsigned char)*e))
                e++;
        } else if (is_word_start(c)) {
            k.kind = TOK_WORD;
            while (is_word_char((unsigned char)*e))
                e++;
        } else if (is_digit(c) || (c == '.' && is_digit((unsigned char)s[1]))) {
            k.kind = TOK_NUMBER;
            while (is_digit((unsigned char)*e) || *e == '.' ||
                   ((*e == 'e' || *e == 'E') &&
                    (is_digit((unsigned char)e[1]) ||
                     ((e[1] == '+' || e[1] == '-') && is_digit((unsigned char)e[2])))))
                e += (*e == 'e' || *e == 'E') ? 2 : 1;
        } else if (c == ':' && s[1] == ':') {
            k.kind = TOK_PUNCT;
            e = s + 2;
        } else
            k.kind = TOK_PUNCT;
        if (!e) {
            free(t.v);
            return -EINVAL;
        }
        k.len = (size_t)(e - s);
        if (t.n == cap) {
            Tok *v = realloc(t.v, (cap *= 2) * sizeof(Tok));
            if (!v) {
                free(t.v);
                return -ENOMEM;
            }
            t.v = v;
        }
        t.v[t.n++] = k;
        s = e;
    }
    *ret = t;
    return 0;
}

static bool tok_is(const Tok *k, const char *word)
{
    return k->kind == TOK_WORD && strlen(word) == k->len && strncasecmp(k->p, word, k->len) == 0;
}

/* The next token after @i that is not blank, or @n. */
static size_t next_sig(const Toks *t, size_t i)
{
    for (i++; i < t->n && t->v[i].kind == TOK_SPACE; i++)
        ;
    return i;
}

/* PostgreSQL's spelling of a SQLite column or cast type, or NULL when it is the same. */
static const char *pg_type(const Tok *k)
{
    if (tok_is(k, "INTEGER") || tok_is(k, "INT"))
        return "BIGINT";
    if (tok_is(k, "REAL") || tok_is(k, "FLOAT") || tok_is(k, "DOUBLE"))
        return "DOUBLE PRECISION";
    if (tok_is(k, "BLOB"))
        return "BYTEA";
    return NULL;
}

int cm_db_dialect_params(const char *sql, char **ret, int *ret_n)
{
    _cleanup_(toks_free) Toks t = {0};
    _cleanup_free_ char *out = NULL;
    size_t outlen = 0;
    FILE *f;
    long max = 0;
    const Tok *prev = NULL;
    unsigned char last = 0; /* the last character written */
    int r;

    r = lex(sql, &t);
    if (r < 0)
        return r;
    f = open_memstream(&out, &outlen);
    if (!f)
        return -ENOMEM;
    for (size_t i = 0; i < t.n; i++) {
        const Tok *k = &t.v[i];
        const char *type;

        if (k->kind == TOK_PARAM) {
            long idx = max + 1;
            if (k->len > 1) {
                char num[8];
                if (k->len - 1 >= sizeof(num)) {
                    fclose(f);
                    return -EINVAL;
                }
                memcpy(num, k->p + 1, k->len - 1);
                num[k->len - 1] = '\0';
                idx = strtol(num, NULL, 10);
            }
            if (idx < 1 || idx > PG_MAX_PARAMS) {
                fclose(f);
                return -EINVAL;
            }
            if (idx > max)
                max = idx;
            /* "a=?AND" is fine for SQLite; PostgreSQL would read "a=$1AND" as a parameter
             * with trailing junk, and "x$1" as one identifier: keep the parameter apart. */
            if (k->p[0] == '?' && is_word_char(last))
                fputc(' ', f);
            fprintf(f, "$%ld", idx);
            last = '0';
            if (k->p[0] == '?' && is_word_char((unsigned char)k->p[k->len])) {
                fputc(' ', f);
                last = ' ';
            }
        } else if (prev && tok_is(prev, "AS") && !tok_is(k, "DOUBLE") && !tok_is(k, "FLOAT") &&
                   (type = pg_type(k))) {
            fputs(type, f);
            last = 'A';
        } else {
            fwrite(k->p, 1, k->len, f);
            last = (unsigned char)k->p[k->len - 1];
        }
        if (k->kind != TOK_SPACE)
            prev = k;
    }
    if (fclose(f) != 0 || !out)
        return -ENOMEM;
    *ret = TAKE_PTR(out);
    *ret_n = (int)max;
    return 0;
}

/* Statements that have no PostgreSQL translation, by their first words. */
static const char *untranslatable(const Toks *t, size_t first)
{
    size_t second = next_sig(t, first), third = second < t->n ? next_sig(t, second) : t->n;
    const Tok *a = &t->v[first], *b = second < t->n ? &t->v[second] : NULL;
    const Tok *c = third < t->n ? &t->v[third] : NULL;

    if (tok_is(a, "PRAGMA"))
        return "PRAGMA is SQLite's own";
    if (tok_is(a, "ATTACH") || tok_is(a, "DETACH") || tok_is(a, "VACUUM"))
        return "a SQLite file operation";
    if (tok_is(a, "CREATE") && b &&
        (tok_is(b, "TRIGGER") ||
         ((tok_is(b, "TEMP") || tok_is(b, "TEMPORARY")) && c && tok_is(c, "TRIGGER"))))
        return "SQLite triggers are written differently in PostgreSQL (plpgsql functions)";
    if (tok_is(a, "CREATE") && b && tok_is(b, "VIRTUAL"))
        return "virtual tables are SQLite's own";
    return NULL;
}

static int translate_error(FILE *f, char **ret_why, const Toks *t, size_t first, const char *why)
{
    size_t end = first, shown = 0;
    _cleanup_free_ char *text = NULL;
    size_t len = 0;
    FILE *w;

    fclose(f);
    w = open_memstream(&text, &len);
    if (!w)
        return -ENOMEM;
    /* The statement's first words name it in the message. */
    for (; end < t->n && shown < 6 && !(t->v[end].kind == TOK_PUNCT && *t->v[end].p == ';');
         end++) {
        const Tok *k = &t->v[end];
        fwrite(k->kind == TOK_SPACE ? " " : k->p, 1, k->kind == TOK_SPACE ? 1 : k->len, w);
        shown += k->kind != TOK_SPACE;
    }
    fclose(w);
    *ret_why = cm_strdup_printf("'%s ...' has no PostgreSQL translation (%s): give the migration"
                                " a PostgreSQL override",
                                text ? text : "", why);
    return *ret_why ? -ENOTSUP : -ENOMEM;
}

/* What follows a table's column list in SQLite and has no place in PostgreSQL. */
static bool dropped_option(const Tok *k)
{
    return tok_is(k, "STRICT") || tok_is(k, "WITHOUT") || tok_is(k, "ROWID") ||
           (k->kind == TOK_PUNCT && *k->p == ',');
}

int cm_db_dialect_ddl(const char *sql, char **ret, char **ret_why)
{
    _cleanup_(toks_free) Toks t = {0};
    _cleanup_free_ char *out = NULL;
    size_t outlen = 0, first = 0;
    bool at_start = true, create_table = false, table_done = false;
    int depth = 0;
    FILE *f;
    int r;

    r = lex(sql, &t);
    if (r < 0)
        return r;
    f = open_memstream(&out, &outlen);
    if (!f)
        return -ENOMEM;
    for (size_t i = 0; i < t.n; i++) {
        const Tok *k = &t.v[i];
        const char *type, *why;

        if (k->kind == TOK_SPACE) {
            size_t next = next_sig(&t, i);
            /* The blank before a table option that goes goes with it. */
            if (!(table_done && depth == 0 && next < t.n && dropped_option(&t.v[next])))
                fwrite(k->p, 1, k->len, f);
            continue;
        }
        if (at_start) {
            size_t second = next_sig(&t, i);
            first = i;
            at_start = false;
            why = untranslatable(&t, i);
            if (why)
                return translate_error(f, ret_why, &t, first, why);
            create_table = tok_is(k, "CREATE") && second < t.n && tok_is(&t.v[second], "TABLE");
            table_done = false;
            depth = 0;
        }
        if (k->kind == TOK_PUNCT && *k->p == ';') {
            at_start = true;
            fputc(';', f);
            continue;
        }
        /* CREATE TABLE ... AS SELECT has no column list to close. */
        if (create_table && !table_done && depth == 0 && tok_is(k, "AS"))
            create_table = false;
        if (k->kind == TOK_PUNCT && *k->p == '(')
            depth++;
        else if (k->kind == TOK_PUNCT && *k->p == ')' && --depth == 0 && create_table)
            table_done = true;

        /* After a table's column list: the table options SQLite has and PostgreSQL lacks. */
        if (table_done && depth == 0 && dropped_option(k))
            continue;

        if (tok_is(k, "INTEGER")) {
            size_t p = next_sig(&t, i), q = p < t.n ? next_sig(&t, p) : t.n;
            if (q < t.n && tok_is(&t.v[p], "PRIMARY") && tok_is(&t.v[q], "KEY")) {
                size_t a = next_sig(&t, q);
                fputs("BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY", f);
                i = (a < t.n && tok_is(&t.v[a], "AUTOINCREMENT")) ? a : q;
                continue;
            }
        }
        if (tok_is(k, "AUTOINCREMENT"))
            return translate_error(f, ret_why, &t, first,
                                   "AUTOINCREMENT only after INTEGER PRIMARY KEY");
        if (tok_is(k, "ANY") && create_table && depth == 1)
            return translate_error(f, ret_why, &t, first, "the ANY column type");
        if (tok_is(k, "DOUBLE")) {
            size_t p = next_sig(&t, i);
            if (p < t.n && tok_is(&t.v[p], "PRECISION"))
                i = p;
        }
        if ((type = pg_type(k)))
            fputs(type, f);
        else
            fwrite(k->p, 1, k->len, f);
    }
    if (fclose(f) != 0 || !out)
        return -ENOMEM;
    *ret = TAKE_PTR(out);
    return 0;
}
