/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>

#include "cm-crypto.h"

/*
 * Option values shared by the host, request and job commands: overcommit ratios, on/off
 * switches, SHA-256 digests and durations. Each parser checks what the broker's schema would
 * refuse, so a mistake is a usage error before any round trip. On failure each returns -EINVAL
 * with a message for the user in @ret_error (allocated), or -ENOMEM.
 */

/* The largest overcommit ratios schemas/host-create.json accepts. */
#define CTL_CPU_RATIO_MAX 64.0
#define CTL_RAM_RATIO_MAX 16.0
#define CTL_DISK_RATIO_MAX 64.0

/**
 * ctl_parse_ratio:
 * Parses option @name's value @s as an overcommit ratio: a number above 0 and at most @max.
 * With @allow_default, "default" is accepted too: the host goes back to the placement policy's
 * ratio (sent as JSON null).
 * Returns: 0 with the ratio in @ret and @ret_default false, or with @ret_default true for
 * "default".
 */
int ctl_parse_ratio(const char *name, const char *s, double max, bool allow_default, double *ret,
                    bool *ret_default, char **ret_error);

/**
 * ctl_parse_switch:
 * Parses option @name's value @s as a yes/no choice: "on", "yes", "true" or "off", "no",
 * "false" (in any case).
 * Returns: 0 with it in @ret.
 */
int ctl_parse_switch(const char *name, const char *s, bool *ret, char **ret_error);

/**
 * ctl_parse_sha256:
 * Parses @s as a SHA-256 digest: 64 hexadecimal digits, either case.
 * Returns: 0 with the lower-case digest in @ret.
 */
int ctl_parse_sha256(const char *s, char ret[CM_SHA256_HEX_LEN + 1], char **ret_error);

/**
 * ctl_parse_seconds:
 * Parses option @name's value @s as a number of seconds (decimals allowed) from @min to @max.
 * Returns: 0 with it in @ret.
 */
int ctl_parse_seconds(const char *name, const char *s, double min, double max, double *ret,
                      char **ret_error);
