/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdatomic.h>

#include "cm-error.h"

typedef struct BrDaemon BrDaemon;

typedef struct {
    atomic_uint_fast64_t requests;
    atomic_uint_fast64_t status_2xx;
    atomic_uint_fast64_t status_4xx;
    atomic_uint_fast64_t status_5xx;
    atomic_uint_fast64_t connections_accepted;
    atomic_uint_fast64_t connections_open; /* a gauge */
    atomic_uint_fast64_t connections_refused;
    atomic_uint_fast64_t connections_evicted;
    atomic_uint_fast64_t timeouts;
    atomic_uint_fast64_t bad_requests; /* a request head that broke the syntax or a limit */
    atomic_uint_fast64_t body_budget_refused;
    atomic_uint_fast64_t body_bytes_held; /* a gauge */
} BrHttpCounters;

/** br_http_counters: Returns: the running server's counters, or NULL when none runs. */
const BrHttpCounters *br_http_counters(void);

/**
 * br_http_start / br_http_stop:
 * Start and stop the HTTP(S) server for @d on its configured address.
 * Returns: 0, or a negative errno with @err set.
 */
int br_http_start(BrDaemon *d, CmError *err);
void br_http_stop(BrDaemon *d);
