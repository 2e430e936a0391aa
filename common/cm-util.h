/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cm-cleanup.h"

/**
 * cm_parse_int64:
 * Parses all of @s as a base-10 integer within [@min, @max].
 * Returns: 0 and the value in @ret, or -EINVAL / -ERANGE (leaving @ret untouched).
 */
int cm_parse_int64(const char *s, int64_t min, int64_t max, int64_t *ret);

/** cm_parse_double: as cm_parse_int64() for a finite double. */
int cm_parse_double(const char *s, double *ret);

/**
 * cm_parse_listen:
 * Splits "HOST:PORT" or "[V6]:PORT" into @ret_host (allocated) and @ret_port.
 * Returns: 0, or -EINVAL.
 */
int cm_parse_listen(const char *s, char **ret_host, uint16_t *ret_port);

/**
 * cm_write_file_atomic:
 * Writes @len bytes to @path via a temporary file in the same folder, fsync()s it, renames it
 * into place and fsync()s the folder, so the file is either old or new after a crash.
 * Returns: 0, or a negative errno.
 */
int cm_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode);

/** cm_fsync_dir: fsync()s the folder holding @path (or @path itself if it is a folder). */
int cm_fsync_dir(const char *dir);

/** cm_mkdir_p: creates @path and its parents with @mode. Returns: 0 or a negative errno. */
int cm_mkdir_p(const char *path, mode_t mode);

/** cm_read_file: reads up to @max bytes of @path into a NUL-terminated buffer. */
int cm_read_file(const char *path, size_t max, char **ret, size_t *ret_len);

/** cm_strdup_printf: Returns: a newly allocated formatted string, or NULL. */
char *cm_strdup_printf(const char *fmt, ...) _printf_(1, 2);

/** cm_utf8_valid: Returns: true when @len bytes of @s are valid UTF-8 without NUL. */
bool cm_utf8_valid(const char *s, size_t len);

/**
 * cm_utf8_sanitize:
 * Replaces, in place, every byte of @s that is not part of valid UTF-8 with '?'.
 */
void cm_utf8_sanitize(char *s);

/**
 * cm_strscpy:
 * Copies @src into @dst of @size bytes, truncating at a character boundary if it must, and
 * always terminating. Returns: the length copied.
 */
size_t cm_strscpy(char *dst, size_t size, const char *src);

/** cm_streq: NULL-safe string equality. */
static inline bool cm_streq(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    while (*a && *a == *b)
        a++, b++;
    return *a == *b;
}
