/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdint.h>

/*
 * Times and durations on the command line of the usage and metering commands, turned into
 * what the broker takes: a calendar day "YYYY-MM-DD" (POST /v1/metering/rollup) and seconds
 * since the epoch or a number of seconds (?from= ?to= ?step= of the usage endpoints). Pure:
 * the current time is a parameter. On failure each returns -EINVAL with a message for the
 * user in @ret_error (allocated), or -ENOMEM.
 */

#define CTL_DAY_LEN 10 /* "2026-11-27" */

/* The broker's bounds: ?from= and ?to= below 2^40 s; ?step= from 10 s to 366 days. */
#define CTL_TIME_MAX (INT64_C(1) << 40)
#define CTL_STEP_MIN 10
#define CTL_STEP_MAX (366 * 86400)

/**
 * ctl_time_parse_day:
 * Parses option @name's value @s as a UTC calendar day: "YYYY-MM-DD" (a day that exists),
 * "today" or "yesterday" (of @now, seconds since the epoch).
 * Returns: 0 with the day as "YYYY-MM-DD" in @ret.
 */
int ctl_time_parse_day(const char *name, const char *s, int64_t now, char ret[CTL_DAY_LEN + 1],
                       char **ret_error);

/**
 * ctl_time_parse_duration:
 * Parses option @name's value @s as a duration: a whole number of seconds, or of minutes,
 * hours, days or weeks with the suffix m, h, d or w ("300", "5m", "1h", "7d"), from @min to
 * @max seconds.
 * Returns: 0 with the seconds in @ret.
 */
int ctl_time_parse_duration(const char *name, const char *s, int64_t min, int64_t max, int64_t *ret,
                            char **ret_error);

/**
 * ctl_time_parse_point:
 * Parses option @name's value @s as a moment: an ISO 8601 date or time as the broker takes it
 * ("2026-11-27", "2026-11-27T08:00:00Z", "2026-11-27T16:00:00+08:00"), seconds since the
 * epoch, "now", or a duration before @now with a leading '-' ("-2h", "-7d", "-90m").
 * Returns: 0 with seconds since the epoch in @ret (from 0 to CTL_TIME_MAX).
 */
int ctl_time_parse_point(const char *name, const char *s, int64_t now, int64_t *ret,
                         char **ret_error);
