/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cm-error.h"

/*
 * The body of POST /v1/samples, parsed and checked in one pass straight into C structs: the
 * strict RFC 8259 syntax of cm_json_parse() and every rule of schemas/samples.json. A document
 * it does not accept is answered by cm_json_parse() + cm_schema_validate() themselves, so the
 * answers are theirs; tests/unit/test-br-samples-parse.c compares both, document by document.
 */

/* The three kinds of record, as the batch's member names them. */
typedef enum {
    BR_SAMPLES_INSTANCES,
    BR_SAMPLES_UNOWNED,
    BR_SAMPLES_HOST,
    BR_SAMPLES_LIST_MAX,
} BrSamplesList;

/* The members of the records, one bit each in BrSample.present. */
typedef enum {
    BR_SF_INSTANCE,
    BR_SF_UUID,
    BR_SF_NAME,
    BR_SF_START,
    BR_SF_DURATION,
    BR_SF_READINGS,
    BR_SF_EXPECTED,
    BR_SF_VCPUS,
    BR_SF_MEMORY_MIB,
    BR_SF_CPU_CORES_AVG,
    BR_SF_CPU_CORES_MAX,
    BR_SF_MEMORY_USED_MIB_AVG,
    BR_SF_MEMORY_USED_MIB_MAX,
    BR_SF_MEMORY_SOURCE,
    BR_SF_DISK_READ_BYTES,
    BR_SF_DISK_WRITE_BYTES,
    BR_SF_DISK_READ_REQUESTS,
    BR_SF_DISK_WRITE_REQUESTS,
    BR_SF_NET_RX_BYTES,
    BR_SF_NET_TX_BYTES,
    BR_SF_NET_RX_PACKETS,
    BR_SF_NET_TX_PACKETS,
    BR_SF_CPUS,
    BR_SF_CPU_USED_CORES_AVG,
    BR_SF_CPU_USED_CORES_MAX,
    BR_SF_DOMAINS_MAX,
    BR_SF_CYCLE_SECONDS_AVG,
    BR_SF_CYCLE_SECONDS_MAX,
    BR_SF_MEMORY_READINGS, /* tiered agents: what the slow groups measured (not stored) */
    BR_SF_DISK_READINGS,
    BR_SF_SLOW_EXPECTED,
    BR_SF_SHED,
    BR_SF_MAX,
} BrSampleField;

typedef enum {
    BR_SAMPLE_VALUE_INT,    /* v.i */
    BR_SAMPLE_VALUE_NUMBER, /* v.d */
    BR_SAMPLE_VALUE_TEXT,   /* the record's uuid, name or memory_source */
} BrSampleValueKind;

typedef union {
    /* An integer member as cm_json_get_int(record, key, 0) reads it from json-c's tree: a
     * value above INT64_MAX is INT64_MAX, a whole double past ±9.2e18 is 0. */
    int64_t i;
    /* A number member as json_object_get_double() reads it. */
    double d;
} BrSampleValue;

typedef struct {
    uint32_t present;            /* bit BR_SF_*: the member is there and not null */
    uint32_t name_off, name_len; /* unowned: the name, in BrSamplesBatch.text */
    const char *memory_source;   /* "balloon", "rss" or NULL */
    char uuid[37];
    BrSampleValue v[BR_SF_MAX];
} BrSample;

typedef struct {
    BrSample *items[BR_SAMPLES_LIST_MAX];
    size_t n[BR_SAMPLES_LIST_MAX];
    size_t cap[BR_SAMPLES_LIST_MAX];
    char *text; /* decoded names, NUL-terminated each */
    size_t text_len, text_cap;
    bool used_generic; /* the generic path accepted what the one pass did not (see the .c) */
} BrSamplesBatch;

/* The record's name as a NUL-terminated string. */
static inline const char *br_sample_name(const BrSamplesBatch *b, const BrSample *s)
{
    return b->text ? b->text + s->name_off : "";
}

static inline bool br_sample_has(const BrSample *s, BrSampleField f)
{
    return (s->present >> f) & 1u;
}

/** br_sample_field_kind: Returns: how the value of member @f is kept. */
BrSampleValueKind br_sample_field_kind(BrSampleField f);

/** br_sample_field_name: Returns: the JSON name of member @f. */
const char *br_sample_field_name(BrSampleField f);

/** br_samples_list_name: Returns: the JSON name of list @l ("instances", ...). */
const char *br_samples_list_name(BrSamplesList l);

/**
 * br_samples_parse:
 * Parses and checks @len bytes of @text as a POST /v1/samples body into @batch (which must be
 * zeroed or previously cleared with br_samples_batch_clear(); its arrays are reused).
 * Returns: 0, or a negative errno with @err filled by cm_json_parse() or by
 * cm_schema_validate() against schemas/samples.json (CM_ERROR_INVALID for malformed JSON and
 * NUL characters, CM_ERROR_UNPROCESSABLE for a rule of the schema).
 */
int br_samples_parse(const char *text, size_t len, BrSamplesBatch *batch, CmError *err);

/**
 * br_samples_parse_strict:
 * The one pass alone, as br_samples_parse() tries it first. For tests.
 * Returns: 0 when it accepts the document, -EAGAIN when it leaves the document to the generic
 * path (an error, or a member name that json-c reads otherwise than its text: an escaped NUL
 * or non-ASCII character), -ENOMEM with @err set.
 */
int br_samples_parse_strict(const char *text, size_t len, BrSamplesBatch *batch, CmError *err);

/** br_samples_batch_clear: forgets the records of @batch, keeping its memory for reuse. */
void br_samples_batch_clear(BrSamplesBatch *batch);

/** br_samples_batch_free: frees the memory of @batch (not @batch itself). */
void br_samples_batch_free(BrSamplesBatch *batch);
