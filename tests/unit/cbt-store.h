/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "br-store.h"

/*
 * A broker store for the unit tests of the store modules and what runs on them: migrated,
 * in a temporary folder (SQLite) or a fresh database on CB_TEST_PG_URL's cluster
 * (PostgreSQL), with one department ("d", id 1), its account (id 1), one of its systems (id 1) and two
 * hosts (1 "h1" production, 2 "h2" production).
 */
typedef struct {
    bool pg;
    char dir[64];  /* the temporary folder: the SQLite file, the audit key */
    char *pg_name; /* PostgreSQL: the fresh database, dropped after */
    BrStore *store;
} CbtStore;

/**
 * cbt_store_open:
 * Opens @s on SQLite, or on PostgreSQL with @pg. Returns: 1 when opened, 0 when PostgreSQL
 * was asked for and CB_TEST_PG_URL is not set (skip), -1 on failure (the reason on stderr).
 */
int cbt_store_open(CbtStore *s, bool pg, const char *hint);

/** cbt_store_close: closes and removes what cbt_store_open() made. */
void cbt_store_close(CbtStore *s);

/** cbt_store_exec: runs @sql (statements without parameters) in a write transaction. */
int cbt_store_exec(CbtStore *s, const char *sql);

/*
 * One value read: @sql (a string literal: statements are cached by address) with its @n
 * integer parameters ?1.. given after it.
 */

/** cbt_store_int: Returns: the first column of the first row, or -1 for none. */
int64_t cbt_store_int(CbtStore *s, const char *sql, int n, ...);

/** cbt_store_text: Returns: the first column of the first row (malloc), or NULL. */
char *cbt_store_text(CbtStore *s, const char *sql, int n, ...);
