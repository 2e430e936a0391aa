/* SPDX-License-Identifier: Apache-2.0 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cm-log.h"

static CmLogLevel log_level = CM_LOG_INFO;
static const char *log_ident = "cloudbroker";

void cm_log_set_level(CmLogLevel level)
{
    log_level = level;
}

void cm_log_set_ident(const char *ident)
{
    log_ident = ident;
}

void cm_log(CmLogLevel level, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;

    if (level > log_level)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    /* Under journald the stream is already tagged and timestamped; the <N> sets the priority. */
    if (getenv("JOURNAL_STREAM")) {
        fprintf(stderr, "<%d>%s\n", (int)level, msg);
    } else {
        struct timespec ts;
        struct tm tm;
        char when[32];
        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
        static const char *const names[] = {"emerg",   "alert",  "crit", "error",
                                            "warning", "notice", "info", "debug"};
        fprintf(stderr, "%s.%03ldZ %s[%ld] %s: %s\n", when, ts.tv_nsec / 1000000L, log_ident,
                (long)getpid(), names[level & 7], msg);
    }
}
