/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <json-c/json.h>

#include "br-samples-parse.h"
#include "br-tx.h"

typedef struct BrDaemon BrDaemon;

typedef struct BrMetering BrMetering;

/* The first instance windows of a batch refused for overlapping a stored one. */
#define BR_INGEST_MAX_REJECTIONS 100

typedef struct {
    size_t index;                        /* in the batch's instances */
    int64_t instance, start, duration;   /* the refused window */
    int64_t other_start, other_duration; /* the stored window it overlaps */
} BrIngestRejection;

typedef struct {
    int64_t stored, duplicates, unowned, host;
    int64_t overlapping;     /* instance windows refused: they overlap a stored window */
    int64_t unowned_dropped; /* unowned windows past the policy's max_unowned_per_window */
    BrIngestRejection rejected[BR_INGEST_MAX_REJECTIONS];
    size_t n_rejected;
} BrIngestResult;

/**
 * br_metering_ingest_key:
 * The lock key of host @host_id's ingest on PostgreSQL: "cbin" << 32 | @host_id (an advisory
 * lock of its own per host, over every broker).
 */
static inline int64_t br_metering_ingest_key(int64_t host_id)
{
    return (int64_t)(((uint64_t)0x6362696e << 32) | ((uint64_t)host_id & 0xffffffffu));
}

/**
 * br_metering_ingest:
 * Stores a batch from the agent of host @host_id, parsed and checked against the schema by
 * br_samples_parse(), in the transaction @tx: windows keyed by (instance, start) are stored
 * once, a repeat (same start and duration) is counted as a duplicate, and a window that
 * overlaps a stored one of the same instance otherwise, whatever the durations, is refused
 * alone and listed in @ret (it would count the same seconds twice). Unowned windows past the
 * policy's max_unowned_per_window for the host and 5-minute slot are dropped and counted. Any
 * record that breaks a rule refuses the whole batch.
 * @tx may be a shared transaction under br_metering_ingest_key(@host_id) (br_tx_run_shared()):
 * everything it reads and writes belongs to the host (its instances' windows, its unowned and
 * host windows), and an instance changes host only under the exclusive writer lock.
 * Returns: 0 with the counts in @ret, or a negative errno with tx->err naming the record's
 * index and field (CM_ERROR_UNPROCESSABLE, or CM_ERROR_FORBIDDEN for another host's instance).
 */
int br_metering_ingest(BrTx *tx, const BrMeteringPolicy *p, int64_t host_id,
                       const BrSamplesBatch *batch, BrIngestResult *ret);

/**
 * br_metering_rollup_day:
 * Recomputes the daily rollups of the UTC day starting at @day_start (epoch seconds) from the
 * 5-minute samples, replacing any earlier rollup of that day. Rerunnable for any day.
 * Returns: the number of instances rolled up, or a negative errno with @err set.
 */
int br_metering_rollup_day(BrDaemon *d, int64_t day_start, CmError *err);

/**
 * br_metering_rollup_if_stale:
 * Rolls up the UTC day starting at @day_start again when its samples differ from what its
 * rollups counted (windows arrived since the last rollup), so a report built next reads
 * every window that has arrived.
 * Returns: 1 when it rolled the day up, 0 when it was up to date, or a negative errno.
 */
int br_metering_rollup_if_stale(BrDaemon *d, int64_t day_start, CmError *err);

/**
 * br_metering_partitions:
 * On PostgreSQL, makes the samples' day partitions (migration 16) that are missing: of
 * yesterday, today and tomorrow, and of the four latest days the retention keeps whose windows
 * wait in the default partition; nothing on SQLite. The metering loop calls it every pass.
 * Returns: 0, or a negative errno with @err set.
 */
int br_metering_partitions(BrDaemon *d, CmError *err);

/** br_metering_retention: deletes samples older than the policy's retention. Returns: rows. */
int64_t br_metering_retention(BrDaemon *d, CmError *err);

/**
 * br_metering_start / br_metering_stop:
 * The periodic rollup (yesterday and today) and retention, every rollup_interval_seconds of
 * the policy (a CmWorker). Returns: 0, or a negative errno with @err set; stop returns NULL.
 */
int br_metering_start(BrDaemon *d, BrMetering **ret, CmError *err);
BrMetering *br_metering_stop(BrMetering *m);

/** br_metering_counts: samples stored and duplicates since start, for /metrics. */
void br_metering_counts(uint64_t *ret_stored, uint64_t *ret_duplicates);

/**
 * br_metering_refusals: instance windows refused for overlapping and unowned windows dropped
 * over the cap since start, for /metrics.
 */
void br_metering_refusals(uint64_t *ret_overlapping, uint64_t *ret_unowned_dropped);
