/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdatomic.h>

typedef struct {
    atomic_uint_fast64_t requests;
    atomic_uint_fast64_t status_2xx;
    atomic_uint_fast64_t status_4xx;
    atomic_uint_fast64_t status_5xx;
} BrHttpCounters;

/** br_http_counters: Returns: the running server's counters, or NULL when none runs. */
const BrHttpCounters *br_http_counters(void);
