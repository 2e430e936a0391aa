/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <json-c/json.h>

#include "cm-cleanup.h"

/*
 * What a person reads: aligned tables and "label: value" blocks, measured in terminal
 * columns (a Chinese character takes two), with every server-supplied string made safe
 * for a terminal first. --json output is the server's document, pretty-printed.
 */

/* Cells wider than this (a SHA-256 fits) are cut with an ellipsis: one long comment must not
 * make a table unreadable. */
#define CTL_TABLE_MAX_CELL_WIDTH 64

/**
 * ctl_text_width:
 * Returns: how many terminal columns the UTF-8 string @s takes: East Asian wide and fullwidth
 * characters count two, combining marks and zero-width characters none, others one. Bytes
 * that are not valid UTF-8 count one each (they are shown as '?').
 */
size_t ctl_text_width(const char *s);

/**
 * ctl_text_sanitize:
 * Copies @s, replacing what could move the cursor or change the terminal: C0 and C1 control
 * characters, DEL, invalid UTF-8 (each becomes '?'). With @single_line, tab, newline and
 * carriage return become a space; otherwise newline and tab are kept.
 * Returns: a newly allocated string, or NULL on allocation failure.
 */
char *ctl_text_sanitize(const char *s, bool single_line);

/**
 * ctl_text_truncate:
 * Returns: a newly allocated copy of @s that takes at most @max_width columns, ending in "…"
 * when it was cut (never cutting inside a character), or NULL on allocation failure.
 */
char *ctl_text_truncate(const char *s, size_t max_width);

/**
 * ctl_json_text:
 * Renders a JSON value for a person: "-" for null or absent, "yes"/"no" for booleans, the
 * number or string itself otherwise, compact JSON for objects and arrays.
 * Returns: a newly allocated string, or NULL on allocation failure.
 */
char *ctl_json_text(json_object *v);

/**
 * ctl_json_cell:
 * Renders the member of @row at @key as ctl_json_text() does, where @key is a dotted path
 * ("totals.vcpus") or "ID_KEY+NAME_KEY": the id and, when the name is a non-empty string, the
 * name beside it ("3 Civil Affairs"), so that output names what its ids stand for.
 * Returns: a newly allocated string, or NULL on allocation failure.
 */
char *ctl_json_cell(json_object *row, const char *key);

typedef enum {
    CTL_ALIGN_LEFT,
    CTL_ALIGN_RIGHT,
} CtlAlign;

typedef struct {
    const char *title;
    CtlAlign align;
} CtlColumn;

typedef struct CtlTable CtlTable;

/**
 * ctl_table_new:
 * Starts a table with @n_columns columns described by @columns (copied).
 * Returns: the table, or NULL on allocation failure.
 */
CtlTable *ctl_table_new(const CtlColumn *columns, size_t n_columns);

/** ctl_table_free: Returns: NULL. Accepts NULL. */
CtlTable *ctl_table_free(CtlTable *t);
CM_DEFINE_TRIVIAL_CLEANUP_FUNC(CtlTable *, ctl_table_free)

/**
 * ctl_table_add_row:
 * Appends a row of @n cells (the table's column count); NULL and empty cells show as "-". The cells
 * are sanitized to one line and cut to CTL_TABLE_MAX_CELL_WIDTH columns.
 * Returns: 0, or -ENOMEM, or -EINVAL when @n does not match the column count.
 */
int ctl_table_add_row(CtlTable *t, const char *const *cells, size_t n);

/**
 * ctl_table_add_json_row:
 * As ctl_table_add_row() with each cell taken from @row: the member named by @keys[i], where
 * a key is what ctl_json_cell() takes: a path "a.b" into nested objects, or
 * "ID_KEY+NAME_KEY" for an id with its name beside it.
 * Returns: 0, or a negative errno.
 */
int ctl_table_add_json_row(CtlTable *t, json_object *row, const char *const *keys, size_t n);

/** ctl_table_rows: Returns: how many rows were added. */
size_t ctl_table_rows(const CtlTable *t);

/**
 * ctl_table_print:
 * Prints the header and the rows to @f with every column padded to its widest cell, with
 * @indent spaces before each line and no trailing blanks.
 * Returns: 0, or -EIO when writing failed.
 */
int ctl_table_print(const CtlTable *t, FILE *f, size_t indent);

/**
 * ctl_print_field:
 * Prints "@label: value" with the value's start aligned at column @label_width + 2 (plus
 * @indent); further lines of a multi-line @value are aligned under the first. A NULL @value
 * prints "-".
 */
void ctl_print_field(FILE *f, size_t indent, size_t label_width, const char *label,
                     const char *value);

/** ctl_print_json_field: as ctl_print_field() with the value rendered by ctl_json_text(). */
void ctl_print_json_field(FILE *f, size_t indent, size_t label_width, const char *label,
                          json_object *value);

/**
 * ctl_print_json:
 * Prints @o pretty-printed (two-space indent, '/' unescaped, non-ASCII kept as UTF-8) and a
 * newline to @f.
 * Returns: 0, or -EIO when writing failed.
 */
int ctl_print_json(FILE *f, json_object *o);

/**
 * ctl_json_path:
 * Returns: the member of @o at the dotted @path ("usage.headroom.vcpus"), or NULL (borrowed).
 */
json_object *ctl_json_path(json_object *o, const char *path);
