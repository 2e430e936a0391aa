/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "cm-error.h"

/*
 * `cloudbrokerd migrate-store`: copies the broker's state from an SQLite database to an empty
 * PostgreSQL one (docs/operator-guide.md, Moving an SQLite state to PostgreSQL), then compares
 * every table of the two.
 */

/* One table as copied and compared. */
typedef struct {
    char *name;
    int64_t rows;   /* in the source */
    bool compared;  /* the comparison ran */
    bool identical; /* the target holds the same rows (as a multiset) */
} BrMigrateTable;

/* What a run did, filled as it goes: on failure it holds the tables done before it. */
typedef struct {
    BrMigrateTable *tables;
    size_t n_tables;
    unsigned version;        /* the schema version copied */
    unsigned source_version; /* the source's version before the run */
} BrMigrateReport;

/** br_migrate_report_clear: frees what @r holds and zeroes it. Accepts NULL. */
void br_migrate_report_clear(BrMigrateReport *r);

/**
 * br_migrate_store:
 * Copies the SQLite database @from ("sqlite:PATH" or a path; it must exist and be a broker
 * database; an older schema is migrated first, a newer one refused) to the PostgreSQL
 * database @to ("postgresql://..."), which must hold no broker rows: the schema is made by the
 * broker's migrations, every table is copied in foreign-key order in one transaction of the
 * target (user triggers off, since the copied rows already hold what they maintain), the
 * identity sequences are set past each table's highest id (and SQLite's AUTOINCREMENT mark),
 * and every table is compared, row by row, before the commit. A mismatch rolls everything
 * back. When @progress is not NULL, tables of many rows report their progress there.
 * Returns: 0 with @report filled, or a negative errno with @err set naming the problem:
 * -ENOENT (no source file), -EINVAL (wrong kind of URL, not a broker database, a newer
 * schema), -EIO (a database cannot be reached), -ENOTEMPTY (the target holds broker rows),
 * -EBADMSG (a table differs after the copy; @report says which).
 */
int br_migrate_store(const char *from, const char *to, FILE *progress, BrMigrateReport *report,
                     CmError *err);

/**
 * br_migrate_report_print:
 * Writes @r to @f: per table "NAME N rows copied, identical" and a summary line, or with
 * @json one JSON object ({"ok", "schema_version", "tables": [{"name", "rows", "identical"}],
 * and "error" when @error is not NULL}).
 */
void br_migrate_report_print(const BrMigrateReport *r, bool json, const char *error, FILE *f);
