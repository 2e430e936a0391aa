/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The SQL dialect layer (common/cm-db-dialect.c): SQLite's parameters turned into
 * PostgreSQL's, and DDL translated. Besides the sanitizers: a converted statement converts to
 * itself (every parameter is still one, with the same number, none glued to a word where
 * PostgreSQL would read an identifier or "trailing junk"), and nothing inside a string
 * literal or quoted identifier changes.
 */
#include <errno.h>
#include <string.h>

#include "cm-db-dialect.h"
#include "fuzz.h"

static bool ident_start(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80;
}

/* What may continue a word: a parameter right after one would be read as part of it. */
static bool word_char(unsigned char c)
{
    return ident_start(c) || (c >= '0' && c <= '9') || c == '$';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *sql = fuzz_strndup(data, size), *out = NULL, *again = NULL, *ddl = NULL, *why = NULL;
    int n = -1, n2 = -1, r;

    r = cm_db_dialect_params(sql, &out, &n);
    FUZZ_CHECK(r == 0 || r == -EINVAL, "params: %d", r);
    if (r == 0) {
        FUZZ_CHECK(n >= 0 && n <= 65535, "%d parameters", n);
        FUZZ_CHECK(cm_db_dialect_params(out, &again, &n2) == 0, "its own output refused: %s", out);
        FUZZ_CHECK(strcmp(out, again) == 0 && n == n2, "not the same twice:\n%s\n%s", out, again);
        /* A parameter written where none was stands apart from the words around it: after
         * a word's character PostgreSQL would read "x$1" as one identifier, and
         * "$1abc" as a parameter with trailing junk. (Inside literals no '?' is turned.) */
        if (!strchr(sql, '$') && !strchr(sql, '\'') && !strchr(sql, '"') && !strchr(sql, '`') &&
            !strstr(sql, "--") && !strstr(sql, "/*"))
            for (const char *p = strchr(out, '$'); p; p = strchr(p + 1, '$')) {
                const char *e = p + 1;
                while (*e >= '0' && *e <= '9')
                    e++;
                FUZZ_CHECK(p == out || !word_char((unsigned char)p[-1]),
                           "a parameter after a word: %s", out);
                FUZZ_CHECK(!ident_start((unsigned char)*e), "a word after a parameter: %s", out);
            }
        free(again);
        free(out);
    }
    r = cm_db_dialect_ddl(sql, &ddl, &why);
    FUZZ_CHECK(r == 0 || r == -EINVAL || r == -ENOTSUP, "ddl: %d", r);
    FUZZ_CHECK(r != -ENOTSUP || (why && *why), "refused without a reason");
    free(ddl);
    free(why);
    free(sql);
    return 0;
}
