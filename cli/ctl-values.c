/* SPDX-License-Identifier: Apache-2.0 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ctl-values.h"
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

int ctl_parse_ratio(const char *name, const char *s, double max, bool allow_default, double *ret,
                    bool *ret_default, char **ret_error)
{
    double v;

    *ret_error = NULL;
    if (allow_default && strcmp(s, "default") == 0) {
        *ret = 0;
        *ret_default = true;
        return 0;
    }
    if (strspn(s, "0123456789.") != strlen(s) || cm_parse_double(s, &v) < 0 || !(v > 0) || v > max)
        return fail(ret_error, "%s must be a number above 0 and at most %g%s, not '%s'", name, max,
                    allow_default ? " (or 'default': the placement policy's)" : "", s);
    *ret = v;
    *ret_default = false;
    return 0;
}

int ctl_parse_switch(const char *name, const char *s, bool *ret, char **ret_error)
{
    static const char *const yes[] = {"on", "yes", "true"}, *const no[] = {"off", "no", "false"};

    *ret_error = NULL;
    for (size_t i = 0; i < ELEMENTSOF(yes); i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *ret = true;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *ret = false;
            return 0;
        }
    }
    return fail(ret_error, "%s must be on or off (yes or no), not '%s'", name, s);
}

int ctl_parse_sha256(const char *s, char ret[CM_SHA256_HEX_LEN + 1], char **ret_error)
{
    size_t n = strlen(s);

    *ret_error = NULL;
    if (n != CM_SHA256_HEX_LEN || strspn(s, "0123456789abcdefABCDEF") != n)
        return fail(ret_error, "'%s' is not a SHA-256 digest (64 hexadecimal digits)", s);
    for (size_t i = 0; i < n; i++)
        ret[i] = (char)tolower((unsigned char)s[i]);
    ret[n] = 0;
    return 0;
}

int ctl_parse_seconds(const char *name, const char *s, double min, double max, double *ret,
                      char **ret_error)
{
    double v;

    *ret_error = NULL;
    /* Plain numbers only: strtod would also take "inf", "nan" and hexadecimal. */
    if (strspn(s, "0123456789.") != strlen(s) || cm_parse_double(s, &v) < 0 || v < min || v > max)
        return fail(ret_error, "%s must be a number of seconds from %g to %g, not '%s'", name, min,
                    max, s);
    *ret = v;
    return 0;
}
