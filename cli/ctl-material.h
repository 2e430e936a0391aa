/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>

/* The kinds of material a request can carry, NULL-terminated, as the broker names them. */
extern const char *const ctl_material_kinds[];

/** ctl_material_kind_valid: Returns: true when @kind is one of ctl_material_kinds. */
bool ctl_material_kind_valid(const char *kind);

/**
 * ctl_material_guess_type:
 * Returns: the media type for @filename's extension (case-insensitive) among the document
 * types the broker accepts (.pdf .doc .docx .xls .xlsx .ppt .pptx .odt .ods .png .jpg .jpeg
 * .txt), or NULL when the extension is none of them (static strings).
 */
const char *ctl_material_guess_type(const char *filename);
