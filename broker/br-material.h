/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdint.h>

#include "cm-error.h"

/**
 * br_material_media_type:
 * Normalises a Content-Type value ("Application/PDF; charset=x" → "application/pdf") into @out.
 * Returns: 0, or -EINVAL when it is not a plausible media type.
 */
int br_material_media_type(const char *content_type, char *out, size_t out_size);

/**
 * br_material_sniff:
 * Checks that the content of the open file @fd (@size bytes) is of @media_type, by its magic
 * bytes (PDF, PNG, JPEG, ZIP-based and OLE office documents) or, for text/ types, by being
 * UTF-8 text without control characters.
 * Returns: 0, or -EMEDIUMTYPE with @err saying what the content looks like.
 */
int br_material_sniff(int fd, uint64_t size, const char *media_type, CmError *err);

/**
 * br_material_store:
 * Moves the finished upload @tmp_path to its content address DIR/ab/<sha256> (durably: file
 * and folders fsync'ed). An identical existing file is kept and @tmp_path removed.
 * Returns: 0, or a negative errno with @err set.
 */
int br_material_store(const char *dir, const char *tmp_path, const char *sha256, CmError *err);

/** br_material_path: Returns: the allocated path of content @sha256 under @dir, or NULL. */
char *br_material_path(const char *dir, const char *sha256);
