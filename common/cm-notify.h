/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdint.h>

/*
 * The systemd notification protocol (sd_notify(3)): one datagram to $NOTIFY_SOCKET. It is a
 * dozen lines, so we speak it ourselves rather than link libsystemd for it.
 */

/**
 * cm_notify:
 * Sends @state ("READY=1", "WATCHDOG=1", ...) when running under systemd; does nothing else.
 * Returns: 1 when sent, 0 when not under systemd, or a negative errno.
 */
int cm_notify(const char *state);

/**
 * cm_notify_watchdog_usec:
 * Returns: the watchdog interval systemd asked for ($WATCHDOG_USEC for this pid), or 0.
 */
uint64_t cm_notify_watchdog_usec(void);
