/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * An output file that appears complete or not at all: written as a temporary file next to
 * its target ("TARGET.part-XXXXXX"), then fsync()ed and renamed over the target. Until the
 * rename an existing target keeps its old content; an abandoned file leaves nothing behind.
 */

typedef struct {
    char *path; /* the target */
    char *tmp;  /* the temporary file, or NULL when none is open */
    int fd;     /* the temporary file's descriptor, or -1 */
} CtlAtomicFile;

#define CTL_ATOMIC_FILE_INIT                                                                       \
    {                                                                                              \
        .fd = -1                                                                                   \
    }

/**
 * ctl_atomic_open:
 * Creates the temporary file for @path with @mode (the umask applies, as it would to a plain
 * create).
 * Returns: 0 with @f ready for writing, or a negative errno (nothing is left behind).
 */
int ctl_atomic_open(CtlAtomicFile *f, const char *path, mode_t mode);

/**
 * ctl_atomic_write:
 * Writes @len bytes of @data to @f.
 * Returns: 0, or a negative errno.
 */
int ctl_atomic_write(CtlAtomicFile *f, const void *data, size_t len);

/**
 * ctl_atomic_commit:
 * fsync()s and closes the temporary file and renames it to the target; on failure the
 * temporary file is removed (as ctl_atomic_abort() does).
 * Returns: 0, or a negative errno.
 */
int ctl_atomic_commit(CtlAtomicFile *f);

/** ctl_atomic_abort: closes and removes the temporary file, if any, and releases @f. */
void ctl_atomic_abort(CtlAtomicFile *f);

/**
 * ctl_file_sha256:
 * Reads the file at @path to its end, hashing it.
 * Returns: 0 with its size in @ret_size and its SHA-256 in @ret_sha, or a negative errno
 * (-ENOMEM, the errno of open() or read(), -EIO when it cannot be hashed).
 */
int ctl_file_sha256(const char *path, int64_t *ret_size, char ret_sha[65]);
