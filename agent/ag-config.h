/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "cm-error.h"

typedef struct {
    char *uri;             /* libvirt URI, default qemu:///system */
    char *broker;          /* https://broker:8470, or http:// on loopback */
    char *token_file;      /* the host's agent token (from POST /v1/hosts) */
    char *spool;           /* SQLite spool file */
    int64_t interval;      /* seconds between readings */
    int64_t window;        /* seconds per window (a multiple of interval) */
    int64_t slow_interval; /* seconds between the balloon and block readings; 0: the default */
    char *metrics_listen;  /* HOST:PORT for /metrics, or NULL for none */
    int64_t spool_max_bytes;
    char *ca_file;
    char *pinned_public_key; /* libcurl's "sha256//BASE64" form */
    int64_t batch_max;       /* windows per POST */
    bool verbose;
} AgConfig;

void ag_config_init_defaults(AgConfig *c);
void ag_config_clear(AgConfig *c);

/**
 * ag_config_load_file:
 * Reads a JSON config (checked against schemas/agent-config.json) into @c.
 * Returns: 0, or a negative errno with @err naming the field.
 */
int ag_config_load_file(AgConfig *c, const char *path, CmError *err);

/**
 * ag_config_check:
 * The rules across fields: the broker URL is https, or http on loopback; the window is a
 * multiple of the interval; the token file is readable.
 * Returns: 0, or a negative errno with @err naming the setting.
 */
int ag_config_check(const AgConfig *c, CmError *err);

/**
 * ag_config_slow_interval:
 * Returns: the slow interval in force: the configured one, or ag_tier_slow_default().
 */
int64_t ag_config_slow_interval(const AgConfig *c);

/** ag_config_read_token: Returns: 0 and the token (trimmed) in @ret, or a negative errno. */
int ag_config_read_token(const AgConfig *c, char **ret, CmError *err);
