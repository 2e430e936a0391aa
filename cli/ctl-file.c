/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctl-file.h"
#include "cm-crypto.h"
#include "cm-util.h"

int ctl_atomic_open(CtlAtomicFile *f, const char *path, mode_t mode)
{
    _cleanup_free_ char *target = strdup(path);
    _cleanup_free_ char *tmp = cm_strdup_printf("%s.part-XXXXXX", path);
    mode_t mask;
    int fd;

    *f = (CtlAtomicFile)CTL_ATOMIC_FILE_INIT;
    if (!target || !tmp)
        return -ENOMEM;
    fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0)
        return -errno;
    /* mkostemp makes 0600; the finished file gets what a plain create would. */
    mask = umask(0);
    umask(mask);
    if (fchmod(fd, mode & ~mask) < 0) {
        int r = -errno;
        close(fd);
        unlink(tmp);
        return r;
    }
    f->path = TAKE_PTR(target);
    f->tmp = TAKE_PTR(tmp);
    f->fd = fd;
    return 0;
}

int ctl_atomic_write(CtlAtomicFile *f, const void *data, size_t len)
{
    const char *p = data;

    if (f->fd < 0)
        return -EBADF;
    while (len > 0) {
        ssize_t n = write(f->fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

void ctl_atomic_abort(CtlAtomicFile *f)
{
    if (f->fd >= 0)
        close(f->fd);
    if (f->tmp)
        unlink(f->tmp);
    free(f->tmp);
    free(f->path);
    *f = (CtlAtomicFile)CTL_ATOMIC_FILE_INIT;
}

int ctl_atomic_commit(CtlAtomicFile *f)
{
    int r = 0, fd = f->fd;

    if (fd < 0 || !f->tmp)
        return -EBADF;
    if (fsync(fd) < 0)
        r = -errno;
    f->fd = -1;
    if (close(fd) < 0 && r == 0)
        r = -errno;
    if (r == 0 && rename(f->tmp, f->path) < 0)
        r = -errno;
    if (r < 0) {
        ctl_atomic_abort(f);
        return r;
    }
    /* Make the rename itself durable; the file is complete either way. */
    {
        const char *slash = strrchr(f->path, '/');
        _cleanup_free_ char *dir =
            slash ? strndup(f->path, (size_t)(slash - f->path) + 1) : strdup(".");
        if (dir)
            cm_fsync_dir(dir);
    }
    free(f->tmp);
    free(f->path);
    *f = (CtlAtomicFile)CTL_ATOMIC_FILE_INIT;
    return 0;
}

int ctl_file_sha256(const char *path, int64_t *ret_size, char ret_sha[65])
{
    _cleanup_(cm_sha256_freep) CmSha256 *h = cm_sha256_new();
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
    _cleanup_free_ char *buf = malloc(1 << 16);
    int64_t size = 0;

    if (fd < 0)
        return -errno;
    if (!h || !buf)
        return -ENOMEM;
    for (;;) {
        ssize_t n = read(fd, buf, 1 << 16);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            break;
        if (cm_sha256_update(h, buf, (size_t)n) < 0)
            return -EIO;
        size += n;
    }
    if (cm_sha256_finish(TAKE_PTR(h), ret_sha) < 0)
        return -EIO;
    *ret_size = size;
    return 0;
}
