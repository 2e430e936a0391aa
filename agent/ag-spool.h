/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "cm-error.h"

/*
 * The agent's durable queue: finished windows wait here (SQLite, WAL) until the broker
 * acknowledged them with 2xx, in the order they were made. It is bounded in bytes: when full,
 * the oldest windows are dropped and counted (dropped_total), never silently. A batch the
 * broker refused with a 4xx is set aside (rejected) and counted, not retried for ever.
 */
typedef struct AgSpool AgSpool;

typedef enum {
    AG_RECORD_INSTANCE,
    AG_RECORD_UNOWNED,
    AG_RECORD_HOST,
    AG_RECORD_KIND_MAX,
} AgRecordKind;

typedef struct {
    AgRecordKind kind;
    char *payload; /* one JSON object */
} AgRecord;

typedef struct {
    int64_t rows, bytes, oldest_created; /* oldest_created: seconds since the epoch, 0: none */
    int64_t dropped_total, rejected_total, pushed_total;
} AgSpoolStats;

/**
 * ag_spool_open: opens (creating) the spool at @path bounded to @max_bytes.
 * Returns: 0, or a negative errno with @err set.
 */
int ag_spool_open(const char *path, int64_t max_bytes, AgSpool **ret, CmError *err);
AgSpool *ag_spool_close(AgSpool *s);

/* A meter's saved state: opaque bytes under a name (a domain's UUID, or "host"). */
typedef struct {
    const char *name;
    const void *data;
    size_t len;
} AgState;

/**
 * ag_spool_append:
 * Adds @n records and replaces the saved meter states with @states, in one transaction, then
 * drops the oldest rows while the spool is over its bound (counting them).
 * Returns: 0, or a negative errno with @err set.
 */
int ag_spool_append(AgSpool *s, const AgRecord *records, size_t n, const AgState *states,
                    size_t n_states, CmError *err);

/**
 * ag_spool_load_states:
 * Calls @fn for every saved state. Returns: the number of states, or a negative errno.
 */
int ag_spool_load_states(AgSpool *s,
                         void (*fn)(void *userdata, const char *name, const void *data, size_t len),
                         void *userdata, CmError *err);

/**
 * ag_spool_peek:
 * The oldest @max rows (up to @max_bytes of payload), in order. Returns: the number of rows,
 * with their sequence numbers in @seqs and records in @ret (free with ag_spool_records_free),
 * or a negative errno.
 */
int ag_spool_peek(AgSpool *s, size_t max, int64_t max_bytes, int64_t *seqs, AgRecord *ret,
                  CmError *err);
void ag_spool_records_free(AgRecord *r, size_t n);

/** ag_spool_ack: deletes rows @seqs[0..n-1] (acknowledged) and counts them pushed. */
int ag_spool_ack(AgSpool *s, const int64_t *seqs, size_t n, CmError *err);

/** ag_spool_reject: moves rows @seqs aside with the broker's @status and @reason. */
int ag_spool_reject(AgSpool *s, const int64_t *seqs, size_t n, long status, const char *reason,
                    CmError *err);

/** ag_spool_stats: Returns: 0 with the counts in @ret, or a negative errno. */
int ag_spool_stats(AgSpool *s, AgSpoolStats *ret, CmError *err);
