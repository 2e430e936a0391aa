/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * PostgreSQL for the unit tests: the throw-away cluster that tools/setup.sh test starts
 * (tools/pg-cluster.sh) is named by CB_TEST_PG_URL; each test makes its own fresh database
 * there, so tests running side by side never see each other's tables.
 */

/** cbt_pg_url: Returns: CB_TEST_PG_URL, or NULL when the PostgreSQL cases are to be skipped. */
const char *cbt_pg_url(void);

/**
 * cbt_pg_url_with_db:
 * Returns: @url (postgresql://[auth][/DB][?params]) naming the database @db instead (malloc).
 */
char *cbt_pg_url_with_db(const char *url, const char *db);

/**
 * cbt_pg_create_db:
 * Creates an empty database cbt_@hint_PID_N (UTF-8, C collation as the operator guide says)
 * on CB_TEST_PG_URL's cluster. Returns: 0, its URL and name in @ret_url and @ret_db (malloc),
 * or -1 with the reason on stderr.
 */
int cbt_pg_create_db(const char *hint, char **ret_url, char **ret_db);

/** cbt_pg_drop_db: drops the database @db (closing its connections). Accepts NULL. */
void cbt_pg_drop_db(const char *db);

/**
 * cbt_pg_query:
 * Runs @sql on the database @url with a connection of its own. Returns: 0, or -1 (the error
 * on stderr).
 */
int cbt_pg_query(const char *url, const char *sql);
