/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdint.h>
#include <time.h>

#define CM_TIME_ISO_LEN 24 /* "2026-11-27T23:32:31.123Z" */

/** cm_now_ms: Returns: wall-clock milliseconds since the epoch. */
int64_t cm_now_ms(void);

/** cm_mono_ns: Returns: CLOCK_MONOTONIC nanoseconds. */
int64_t cm_mono_ns(void);

/** cm_time_iso: formats @ms as UTC "YYYY-MM-DDTHH:MM:SS.mmmZ" into @out. */
void cm_time_iso(int64_t ms, char out[CM_TIME_ISO_LEN + 1]);

/**
 * cm_time_parse_iso:
 * Parses "YYYY-MM-DD", "YYYY-MM-DDTHH:MM:SS[.fff]Z" or with a "+HH:MM" offset.
 * Returns: 0 and milliseconds since the epoch in @ret, or -EINVAL.
 */
int cm_time_parse_iso(const char *s, int64_t *ret);
