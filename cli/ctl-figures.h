/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <json-c/json.h>

/*
 * Figures of the broker's documents (usage, findings, reports) as a person reads them in a
 * table: shares as percentages, fractional figures with a few decimals, byte counts in binary
 * units. A figure the broker left out or sent as null shows as "-" (the broker never fills
 * gaps, and neither do we). Each returns a newly allocated string, or NULL on allocation
 * failure.
 */

/** ctl_figure_percent: a share (0.425) as "42.5%". */
char *ctl_figure_percent(json_object *v);

/**
 * ctl_figure_number: a number with @decimals decimals ("1.25"); an integer as it is ("12").
 */
char *ctl_figure_number(json_object *v, int decimals);

/** ctl_figure_bytes: a byte count as "512 B", "1.5 KiB", "20.0 MiB", "3.2 GiB", "1.1 TiB". */
char *ctl_figure_bytes(json_object *v);

/** ctl_figure_size: "2/2048": the vCPUs and memory MiB of a {"vcpus", "memory_mib"} object. */
char *ctl_figure_size(json_object *size);
