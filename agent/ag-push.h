/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdint.h>

#include "ag-config.h"
#include "ag-spool.h"

/*
 * Delivery to the broker: the spool's oldest windows in batches, POST /v1/samples with
 * libcurl (http/https only, no redirects, connect and total timeouts, CA file or pinned key).
 * A 2xx deletes the batch (at least once; the broker stores each window once). Network errors,
 * 5xx, 429 and 401 are retried with jittered exponential backoff capped at 60 s. Any other 4xx
 * is split in halves until the refused window is alone, which is then set aside and counted.
 */
typedef struct AgPush AgPush;

typedef struct {
    uint64_t batches, windows, failures, rejected;
    int64_t last_status;
    double backoff_s;
} AgPushStats;

int ag_push_new(const AgConfig *c, const char *token, AgSpool *spool, AgPush **ret, CmError *err);
AgPush *ag_push_free(AgPush *p);

/** ag_push_start: runs delivery in its own thread. Returns: 0 or a negative errno. */
int ag_push_start(AgPush *p);
/** ag_push_stop: stops the thread after the current request. */
void ag_push_stop(AgPush *p);
/** ag_push_kick: new windows are in the spool. */
void ag_push_kick(AgPush *p);
void ag_push_stats(AgPush *p, AgPushStats *ret);
