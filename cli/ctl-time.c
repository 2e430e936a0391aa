/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl-time.h"
#include "cm-time.h"
#include "cm-util.h"

static int fail(char **ret_error, const char *fmt, ...) _printf_(2, 3);

static int fail(char **ret_error, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(ret_error, fmt, ap) < 0)
        *ret_error = NULL;
    va_end(ap);
    return *ret_error ? -EINVAL : -ENOMEM;
}

static void day_of(int64_t t, char ret[CTL_DAY_LEN + 1])
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    if (strftime(ret, CTL_DAY_LEN + 1, "%Y-%m-%d", &tm) != CTL_DAY_LEN)
        snprintf(ret, CTL_DAY_LEN + 1, "0000-00-00");
}

int ctl_time_parse_day(const char *name, const char *s, int64_t now, char ret[CTL_DAY_LEN + 1],
                       char **ret_error)
{
    int64_t ms;

    *ret_error = NULL;
    if (strcmp(s, "today") == 0) {
        day_of(now, ret);
        return 0;
    }
    if (strcmp(s, "yesterday") == 0) {
        day_of(now - 86400, ret);
        return 0;
    }
    /* The schema's pattern, and then a day the calendar has (not 2026-02-30). */
    if (strlen(s) != CTL_DAY_LEN || strspn(s, "0123456789-") != CTL_DAY_LEN || s[4] != '-' ||
        s[7] != '-' || strchr(s, '-') != s + 4 || strrchr(s, '-') != s + 7 ||
        cm_time_parse_iso(s, &ms) < 0)
        return fail(ret_error, "%s must be a UTC day YYYY-MM-DD, 'today' or 'yesterday', not '%s'",
                    name, s);
    memcpy(ret, s, CTL_DAY_LEN + 1);
    return 0;
}

/* "N" or "N" with a unit suffix; 0 with the seconds, or -EINVAL. */
static int parse_duration(const char *s, int64_t *ret)
{
    static const struct {
        char suffix;
        int64_t seconds;
    } units[] = {{'s', 1}, {'m', 60}, {'h', 3600}, {'d', 86400}, {'w', 7 * 86400}};
    size_t n = strlen(s), digits = strspn(s, "0123456789");
    int64_t unit = 1, v;
    char num[24];

    if (digits == 0 || digits >= sizeof(num) || (n != digits && n != digits + 1))
        return -EINVAL;
    if (n == digits + 1) {
        unit = 0;
        for (size_t i = 0; i < ELEMENTSOF(units); i++)
            if (s[digits] == units[i].suffix)
                unit = units[i].seconds;
        if (!unit)
            return -EINVAL;
    }
    memcpy(num, s, digits);
    num[digits] = 0;
    if (cm_parse_int64(num, 0, INT64_MAX / unit, &v) < 0)
        return -EINVAL;
    *ret = v * unit;
    return 0;
}

int ctl_time_parse_duration(const char *name, const char *s, int64_t min, int64_t max, int64_t *ret,
                            char **ret_error)
{
    int64_t v;

    *ret_error = NULL;
    if (parse_duration(s, &v) < 0 || v < min || v > max)
        return fail(ret_error,
                    "%s must be a duration from %" PRId64 " to %" PRId64
                    " seconds: N seconds, or Nm, Nh, Nd, Nw; not '%s'",
                    name, min, max, s);
    *ret = v;
    return 0;
}

int ctl_time_parse_point(const char *name, const char *s, int64_t now, int64_t *ret,
                         char **ret_error)
{
    int64_t v, ms;

    *ret_error = NULL;
    if (strcmp(s, "now") == 0) {
        v = now;
    } else if (s[0] == '-' && parse_duration(s + 1, &v) == 0 && v <= now) {
        v = now - v;
    } else if (s[0] != '-' && s[0] != '+' && cm_parse_int64(s, 0, INT64_MAX, &v) == 0) {
        /* Seconds since the epoch, as the broker takes them. */
    } else if (cm_time_parse_iso(s, &ms) == 0 && ms >= 0) {
        v = ms / 1000;
    } else {
        return fail(ret_error,
                    "%s must be an ISO 8601 date or time (2026-11-27, 2026-11-27T08:00:00Z), "
                    "seconds since the epoch, 'now' or a time before now such as -2h or -7d; "
                    "not '%s'",
                    name, s);
    }
    if (v < 0 || v >= CTL_TIME_MAX)
        return fail(ret_error, "%s: '%s' is out of the range the broker takes", name, s);
    *ret = v;
    return 0;
}
