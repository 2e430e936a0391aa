/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <json-c/json.h>

/*
 * What `report assessment`, `report operations` and `report costs` print without --json: a summary of the
 * broker's JSON report as tables, a row per department, with Chinese or English labels. The
 * broker renders the full report as CSV and HTML itself; these summaries only lay out its
 * figures. Pure: no HTTP.
 */

typedef enum {
    CTL_LANG_ZH,
    CTL_LANG_EN,
} CtlLang;

/**
 * ctl_report_assessment_text:
 * The annual assessment @doc (GET /v1/reports/assessment) as text: the period, then tables of
 * the scores and ranks, the resource use and the security status per department (in the
 * order of their rank, the unranked last) and for the city, and Art. 5's systems without
 * budget. Server text is made safe for a terminal.
 * Returns: a newly allocated string, or NULL on allocation failure.
 */
char *ctl_report_assessment_text(json_object *doc, CtlLang lang);

/**
 * ctl_report_operations_text:
 * The operations report @doc (GET /v1/reports/operations) as text: a table of the
 * departments' totals, then per department with anything to show its instances, live
 * findings with their right-sizing, and the reconciler's events.
 * Returns: a newly allocated string, or NULL on allocation failure.
 */
char *ctl_report_operations_text(json_object *doc, CtlLang lang);

/**
 * ctl_report_costs_text:
 * The cost statement @doc (GET /v1/reports/costs) as text: its period, then a table of each
 * department's compute, memory, disk and total in yuan and the total of them all.
 * Returns: a newly allocated string, or NULL on allocation failure.
 */
char *ctl_report_costs_text(json_object *doc, CtlLang lang);

/**
 * ctl_report_service_quality_text:
 * The vendor's scorecard @doc (GET /v1/reports/service-quality) as text: its period, a line per
 * indicator (result, measured value, deduction) and the fee before and after the deductions.
 * Returns: a newly allocated string, or NULL on allocation failure.
 */
char *ctl_report_service_quality_text(json_object *doc, CtlLang lang);

/**
 * ctl_report_format_of_path:
 * Returns: the report format ("json", "csv" or "html") that the name of @path ends in
 * (.json, .csv, .html or .htm, in any case), or NULL.
 */
const char *ctl_report_format_of_path(const char *path);
