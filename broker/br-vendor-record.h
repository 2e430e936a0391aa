/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdint.h>

#include <json-c/json.h>

#include "br-store.h"
#include "br-tx.h"

/*
 * The records of the vendor's duties (Art. 8 and 34; docs/service-quality.md): the monthly
 * security bulletin, the emergency drill, a system's backup restore test and the monthly
 * operations report, each with its document (vendor_documents: uploaded to the broker, which
 * computed its SHA-256). The only file with SQL on those five tables.
 */
typedef enum {
    BR_VENDOR_RECORD_BULLETIN,
    BR_VENDOR_RECORD_DRILL,
    BR_VENDOR_RECORD_RESTORE_TEST,
    BR_VENDOR_RECORD_REPORT,
    BR_VENDOR_RECORD_KIND_MAX,
} BrVendorRecordKind;

/** br_vendor_record_kind_to_string: Returns: "security bulletin", "emergency drill", ... */
const char *br_vendor_record_kind_to_string(BrVendorRecordKind kind);

/* A record as given; times in cm_time_iso() form. What a kind does not have is NULL / 0. */
typedef struct {
    const char *month;    /* bulletins, reports: YYYY-MM */
    const char *at;       /* published_at, held_at, tested_at, delivered_at */
    const char *title;    /* bulletins */
    const char *scenario; /* drills */
    const char *result;   /* drills: free text; restore tests: ok or failed */
    const char *document; /* the SHA-256 of a vendor document */
    int64_t system_id;    /* restore tests */
    int64_t backup_id;    /* restore tests: 0 when not known */
    int64_t duration_s;   /* restore tests */
} BrVendorRecord;

/**
 * br_vendor_record_create:
 * Records @rec of @kind, recorded by the transaction's actor now.
 * Returns: 0 and the new id in @ret_id, or a negative errno with tx->err set.
 */
int br_vendor_record_create(BrTx *tx, BrVendorRecordKind kind, const BrVendorRecord *rec,
                            int64_t *ret_id);

/**
 * br_vendor_record_get:
 * Returns: 0 and record @id of @kind as its API document in @ret (with "document": the
 * document's sha256, size, media_type and filename), or a negative errno with @err set
 * (-ENOENT: 404 "no restore test with id N").
 */
int br_vendor_record_get(CmDb *db, BrVendorRecordKind kind, int64_t id, json_object **ret,
                         CmError *err);

/* What a list is narrowed to; NULL / 0 for no narrowing. */
typedef struct {
    const char *month;     /* bulletins, reports: that month */
    const char *from, *to; /* the record's time (published_at ... delivered_at) in [from, to) */
    int64_t system_id;     /* restore tests of that system */
    int64_t department;    /* restore tests of that department's systems */
} BrVendorRecordFilter;

/**
 * br_vendor_record_list:
 * Returns: 0 and one page of the records of @kind that pass @f, by id, in @ret, or a negative
 * errno with @err set.
 */
int br_vendor_record_list(CmDb *db, BrVendorRecordKind kind, const BrVendorRecordFilter *f,
                          const BrPage *page, json_object **ret, CmError *err);

/**
 * br_vendor_record_document_add:
 * Records the upload of document @sha256 (already stored, br_material_store()) of @size bytes
 * by the transaction's actor. The same content uploaded again keeps its first row.
 * Returns: 0 and the document's row in @ret, or a negative errno with tx->err set.
 */
int br_vendor_record_document_add(BrTx *tx, const char *sha256, int64_t size,
                                  const char *media_type, const char *filename, json_object **ret);

/**
 * br_vendor_record_document_get:
 * Returns: 0 and document @sha256's row {sha256, size, media_type, filename, uploaded_at} in
 * @ret, or a negative errno with @err set (-ENOENT: 404 naming "sha256").
 */
int br_vendor_record_document_get(CmDb *db, const char *sha256, json_object **ret, CmError *err);

/**
 * br_vendor_record_document_system_ok:
 * Returns: 1 when document @sha256 is attached to a restore test of a system of department
 * @department, 0 when not, or a negative errno with @err set.
 */
int br_vendor_record_document_system_ok(CmDb *db, const char *sha256, int64_t department,
                                        CmError *err);
