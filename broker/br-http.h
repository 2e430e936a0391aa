/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdatomic.h>

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
