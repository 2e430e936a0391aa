/* SPDX-License-Identifier: Apache-2.0 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "cbt-pg.h"
#include "cm-util.h"

const char *cbt_pg_url(void)
{
    const char *url = getenv("CB_TEST_PG_URL");
    return url && *url ? url : NULL;
}

char *cbt_pg_url_with_db(const char *url, const char *db)
{
    const char *auth = strstr(url, "://"), *end, *query;

    if (!auth)
        return NULL;
    auth += 3;
    /* The authority ends at the first '/' (a socket folder goes in ?host=, encoded). */
    end = auth + strcspn(auth, "/?");
    query = strchr(end, '?');
    return cm_strdup_printf("%.*s/%s%s", (int)(end - url), url, db, query ? query : "");
}

int cbt_pg_query(const char *url, const char *sql)
{
    PGconn *c = PQconnectdb(url);
    PGresult *res;
    int r = 0;

    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "cbt-pg: cannot connect: %s", PQerrorMessage(c));
        PQfinish(c);
        return -1;
    }
    res = PQexec(c, sql);
    if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK) {
        fprintf(stderr, "cbt-pg: %s: %s", sql, PQerrorMessage(c));
        r = -1;
    }
    PQclear(res);
    PQfinish(c);
    return r;
}

int cbt_pg_create_db(const char *hint, char **ret_url, char **ret_db)
{
    static unsigned counter;
    const char *url = cbt_pg_url();
    char *db, *sql;
    int r;

    if (!url)
        return -1;
    db = cm_strdup_printf("cbt_%s_%d_%u", hint, (int)getpid(),
                          __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED));
    sql = cm_strdup_printf("CREATE DATABASE %s TEMPLATE template0 ENCODING 'UTF8'"
                           " LC_COLLATE 'C' LC_CTYPE 'C'",
                           db);
    r = cbt_pg_query(url, sql);
    free(sql);
    if (r < 0) {
        free(db);
        return -1;
    }
    *ret_url = cbt_pg_url_with_db(url, db);
    *ret_db = db;
    return 0;
}

void cbt_pg_drop_db(const char *db)
{
    char *sql;

    if (!db || !cbt_pg_url())
        return;
    sql = cm_strdup_printf("DROP DATABASE IF EXISTS %s WITH (FORCE)", db);
    cbt_pg_query(cbt_pg_url(), sql);
    free(sql);
}
