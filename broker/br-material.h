/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdint.h>

#include <json-c/json.h>

#include "br-tx.h"
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

/*
 * The table `materials` (this file holds all its SQL): one row per upload; `current` marks the
 * live version of each kind of a request.
 */

/**
 * br_material_list:
 * The current materials of request @request, by kind, as JSON in @ret (optional), and the
 * kinds present as a bit set of BrMaterialKind in @ret_present (optional).
 * Returns: 0, or a negative errno with @err set.
 */
int br_material_list(CmDb *db, int64_t request, json_object **ret, unsigned *ret_present,
                     CmError *err);

/**
 * br_material_current:
 * The current material of @kind of request @request: {sha256, media_type, filename}.
 * Returns: 0 and the object in @ret, or a negative errno with @err set (CM_ERROR_NOT_FOUND
 * naming "kind" when the request has none).
 */
int br_material_current(CmDb *db, int64_t request, const char *kind, json_object **ret,
                        CmError *err);

/**
 * br_material_has:
 * Returns: 1 when request @request has (had) a material of @kind with content @sha256, 0 when
 * not, or a negative errno with @err set.
 */
int br_material_has(CmDb *db, int64_t request, const char *kind, const char *sha256, CmError *err);

/* An upload, stored (br_material_store()) and about to be attached. */
typedef struct {
    const char *kind, *sha256, *media_type, *filename;
    int64_t size;
} BrMaterialUpload;

/**
 * br_material_add:
 * Attaches @m to request @request in @tx as the current material of its kind (the one before
 * stays, no longer current) and appends the audit record "material.upload".
 * Returns: 0 and the new row as the API answers it in @ret, or a negative errno with tx->err.
 */
int br_material_add(BrTx *tx, int64_t request, const BrMaterialUpload *m, json_object **ret);
