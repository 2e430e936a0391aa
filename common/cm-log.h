/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include "cm-cleanup.h"

/* syslog priorities; lines on stderr carry a "<N>" prefix that journald understands. */
typedef enum {
    CM_LOG_ERR = 3,
    CM_LOG_WARNING = 4,
    CM_LOG_NOTICE = 5,
    CM_LOG_INFO = 6,
    CM_LOG_DEBUG = 7,
} CmLogLevel;

/** cm_log_set_level: messages above @level are dropped. */
void cm_log_set_level(CmLogLevel level);

/** cm_log_set_ident: names the program in each line (when not under journald). */
void cm_log_set_ident(const char *ident);

void cm_log(CmLogLevel level, const char *fmt, ...) _printf_(2, 3);

#define cm_log_error(...) cm_log(CM_LOG_ERR, __VA_ARGS__)
#define cm_log_warning(...) cm_log(CM_LOG_WARNING, __VA_ARGS__)
#define cm_log_notice(...) cm_log(CM_LOG_NOTICE, __VA_ARGS__)
#define cm_log_info(...) cm_log(CM_LOG_INFO, __VA_ARGS__)
#define cm_log_debug(...) cm_log(CM_LOG_DEBUG, __VA_ARGS__)
