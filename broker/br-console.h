/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>

#include "br-api.h"

typedef struct BrConsole BrConsole;

/*
 * The web console's files: read from the built console folder once at start (index.html,
 * assets/ with their precompressed .br and .gz siblings) and served from memory at `/` and
 * under `/assets/` with the console's security and caching headers. Everything else that no
 * API route takes stays a JSON 404.
 */

/**
 * br_console_open:
 * Reads every file under @dir (dot files and links left out). A folder without index.html is
 * "missing": -ENOENT, and the API serves on without a console.
 * Returns: 0 and the console in @ret, or a negative errno with @err set.
 */
int br_console_open(const char *dir, BrConsole **ret, CmError *err);

/** br_console_free: Accepts NULL. Returns: NULL. */
BrConsole *br_console_free(BrConsole *con);

/**
 * br_console_default_dir:
 * Returns: the build tree's console/ when this program runs from the build tree, else the
 * installed DATADIR/cloudbroker/console (static).
 */
const char *br_console_default_dir(void);

/**
 * br_console_route:
 * For a call no API route took: when @method is GET and @path is `/` or one of the console's
 * files, routes the call to the console (`/` answers 503 console_missing without a console).
 * Returns: true when it did (c->route set), false to leave the 404.
 */
bool br_console_route(BrCall *c, const char *method, const char *path);
