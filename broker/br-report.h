/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdint.h>

#include <json-c/json.h>

#include "cm-db.h"
#include "cm-error.h"

typedef struct BrDaemon BrDaemon;

/*
 * The reports, built as one JSON document each; CSV and HTML are renderings of that document,
 * so the three formats always carry the same numbers.
 */

/**
 * br_report_assessment:
 * The annual assessment (Art. 9) for @year: per department (only @department when > 0) and
 * for the city, the share of systems on the cloud, resource-use efficiency and security
 * status, their scores and the ranking, and Art. 5's list of systems without budget. A read
 * model over every table it counts from (SELECT only); run it in one read transaction.
 * Returns: 0 and the document in @ret, or a negative errno with @err set (-ENOENT for a
 * @department that does not exist).
 */
int br_report_assessment(BrDaemon *d, CmDb *db, int year, int64_t department, json_object **ret,
                         CmError *err);

/**
 * br_report_operations:
 * The vendor's periodic report (Art. 8) for the month starting at @month_start (epoch s):
 * per department, instances and instance-hours, utilization and availability, daily series,
 * the reconciler's events and the open findings with their right-sizing. A read model as
 * br_report_assessment().
 * Returns: 0 and the document in @ret, or a negative errno with @err set (-ENOENT for a
 * @department that does not exist).
 */
int br_report_operations(BrDaemon *d, CmDb *db, int64_t month_start, int64_t department,
                         json_object **ret, CmError *err);

typedef enum { BR_LANG_ZH, BR_LANG_EN } BrLang;

/**
 * br_report_csv:
 * Returns: the report as CSV (UTF-8 with a BOM for spreadsheets), or NULL. The cost
 * statement's headers are in @lang; the other reports' are English field names.
 */
char *br_report_csv(json_object *report, BrLang lang);

/**
 * br_report_html:
 * Returns: the report as one self-contained HTML page (inline CSS and SVG charts, no script,
 * nothing fetched), printable, in @lang; or NULL.
 */
char *br_report_html(json_object *report, BrLang lang);
