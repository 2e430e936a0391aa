/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stddef.h>

/* A file carried inside the binary (tools/embed-files.py). */
typedef struct {
    const char *name; /* the file's name without folder and extension */
    const char *text;
    size_t len;
} CmEmbedded;
