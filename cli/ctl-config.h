/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>

#include "cm-error.h"

#define CTL_DEFAULT_URL "http://127.0.0.1:8470"
#define CTL_DEFAULT_TIMEOUT_S 30
/* A token file holds one token; anything much longer is not one. */
#define CTL_TOKEN_FILE_MAX 4096
#define CTL_CONFIG_FILE_MAX (64 * 1024)

/*
 * Where cloudbrokerctl finds the broker and its token. Each setting is taken from the first
 * source that has it: command-line flags, then the environment (CLOUDBROKER_URL,
 * CLOUDBROKER_TOKEN, CLOUDBROKER_TOKEN_FILE), then the config file (--config F, else
 * $XDG_CONFIG_HOME/cloudbroker/ctl.json or ~/.config/cloudbroker/ctl.json when it exists).
 */
typedef struct {
    /* Flags, NULL when not given. */
    const char *url, *token, *token_file, *config_file, *cacert, *timeout;
    /* The environment, NULL when unset (an empty variable counts as unset). */
    const char *env_url, *env_token, *env_token_file;
    const char *home, *xdg_config_home;
} CtlConfigSources;

typedef struct {
    char *url;          /* the broker's base URL */
    char *token;        /* the bearer token, or NULL when none is configured */
    char *token_origin; /* where the token came from, for messages ("F (--token-file)") */
    char *cacert;       /* CA bundle for https, or NULL for the system's */
    char *config_path;  /* the config file that was read, or NULL */
    long timeout_s;
    bool token_file_exposed; /* the token file can be read by group or others */
} CtlConfig;

/**
 * ctl_config_resolve:
 * Fills @ret from @src with the precedence above. A config file named by --config must exist;
 * the default one is read only when present. A relative token_file in a config file is taken
 * relative to the config file's folder.
 * Returns: 0, or a negative errno with @err set: CM_ERROR_INVALID when a flag is wrong (a
 * usage error), CM_ERROR_UNPROCESSABLE when the environment or a file is.
 */
int ctl_config_resolve(const CtlConfigSources *src, CtlConfig *ret, CmError *err);

/** ctl_config_clear: releases @c's strings (wiping the token) and zeroes it. */
void ctl_config_clear(CtlConfig *c);

/**
 * ctl_config_read_token_file:
 * Reads a token from @path: one line of printable ASCII, surrounding whitespace dropped.
 * Returns: 0 with the token in @ret (allocated) and whether group or others may read the file
 * in @ret_exposed (optional), or a negative errno with @err set.
 */
int ctl_config_read_token_file(const char *path, char **ret, bool *ret_exposed, CmError *err);

/**
 * ctl_config_check_token:
 * Returns: true when @token is non-empty printable ASCII without spaces, so that it can go
 * into an HTTP header unchanged.
 */
bool ctl_config_check_token(const char *token);
