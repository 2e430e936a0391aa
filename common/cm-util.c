/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cm-util.h"

int cm_parse_int64(const char *s, int64_t min, int64_t max, int64_t *ret)
{
    char *end = NULL;
    long long v;

    if (!s || !*s || (*s != '-' && (*s < '0' || *s > '9')))
        return -EINVAL;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno == ERANGE)
        return -ERANGE;
    if (errno != 0 || !end || *end != 0)
        return -EINVAL;
    if (v < min || v > max)
        return -ERANGE;
    *ret = v;
    return 0;
}

int cm_parse_double(const char *s, double *ret)
{
    char *end = NULL;
    double v;

    if (!s || !*s)
        return -EINVAL;
    errno = 0;
    v = strtod(s, &end);
    if (errno != 0 || !end || *end != 0 || !isfinite(v))
        return -EINVAL;
    *ret = v;
    return 0;
}

int cm_parse_listen(const char *s, char **ret_host, uint16_t *ret_port)
{
    const char *colon;
    _cleanup_free_ char *host = NULL;
    int64_t port;

    if (!s)
        return -EINVAL;
    if (*s == '[') {
        const char *close_br = strchr(s, ']');
        if (!close_br || close_br[1] != ':')
            return -EINVAL;
        host = strndup(s + 1, (size_t)(close_br - s - 1));
        colon = close_br + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon)
            return -EINVAL;
        host = strndup(s, (size_t)(colon - s));
    }
    if (!host)
        return -ENOMEM;
    if (!*host)
        return -EINVAL;
    if (cm_parse_int64(colon + 1, 0, 65535, &port) < 0)
        return -EINVAL;
    *ret_host = TAKE_PTR(host);
    *ret_port = (uint16_t)port;
    return 0;
}

int cm_fsync_dir(const char *dir)
{
    _cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (fsync(fd) < 0)
        return -errno;
    return 0;
}

int cm_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
    _cleanup_free_ char *tmp = NULL, *dir = NULL;
    _cleanup_close_ int fd = -1;
    const char *slash;
    size_t off = 0;

    tmp = cm_strdup_printf("%s.tmp.%ld", path, (long)getpid());
    slash = strrchr(path, '/');
    dir = slash ? strndup(path, (size_t)(slash - path)) : strdup(".");
    if (!tmp || !dir)
        return -ENOMEM;
    if (!*dir) {
        free(dir);
        dir = strdup("/");
        if (!dir)
            return -ENOMEM;
    }

    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0)
        return -errno;
    if (fchmod(fd, mode) < 0)
        goto error;
    while (off < len) {
        ssize_t n = write(fd, (const char *)data + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            goto error;
        off += (size_t)n;
    }
    if (fsync(fd) < 0)
        goto error;
    if (rename(tmp, path) < 0)
        goto error;
    return cm_fsync_dir(dir);

error : {
    int r = -errno;
    unlink(tmp);
    return r;
}
}

int cm_mkdir_p(const char *path, mode_t mode)
{
    _cleanup_free_ char *p = strdup(path);
    if (!p)
        return -ENOMEM;
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = 0;
        if (mkdir(p, mode) < 0 && errno != EEXIST)
            return -errno;
        *s = '/';
    }
    if (mkdir(p, mode) < 0 && errno != EEXIST)
        return -errno;
    return 0;
}

int cm_read_file(const char *path, size_t max, char **ret, size_t *ret_len)
{
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
    _cleanup_free_ char *buf = NULL;
    size_t len = 0, cap = 4096;

    if (fd < 0)
        return -errno;
    buf = malloc(cap);
    if (!buf)
        return -ENOMEM;
    for (;;) {
        if (len + 1 >= cap) {
            if (cap > max + 1)
                return -EFBIG;
            char *nb = realloc(buf, cap * 2);
            if (!nb)
                return -ENOMEM;
            buf = nb;
            cap *= 2;
        }
        ssize_t n = read(fd, buf + len, cap - len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            break;
        len += (size_t)n;
        if (len > max)
            return -EFBIG;
    }
    buf[len] = 0;
    *ret = TAKE_PTR(buf);
    if (ret_len)
        *ret_len = len;
    return 0;
}

char *cm_strdup_printf(const char *fmt, ...)
{
    char *s = NULL;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&s, fmt, ap) < 0)
        s = NULL;
    va_end(ap);
    return s;
}

bool cm_utf8_valid(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;

    while (i < len) {
        unsigned char c = s[i];
        uint32_t cp;
        int n;

        if (c == 0)
            return false;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            n = 1;
            cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            n = 2;
            cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            n = 3;
            cp = c & 0x07;
        } else
            return false;
        if (i + (size_t)n >= len)
            return false;
        for (int k = 1; k <= n; k++) {
            if ((s[i + (size_t)k] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + (size_t)k] & 0x3F);
        }
        /* Overlong forms, surrogates and values past U+10FFFF. */
        if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
            (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
            return false;
        i += (size_t)n + 1;
    }
    return true;
}

void cm_utf8_sanitize(char *s)
{
    size_t n = strlen(s);
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        size_t len = c < 0x80             ? 1
                     : (c & 0xE0) == 0xC0 ? 2
                     : (c & 0xF0) == 0xE0 ? 3
                     : (c & 0xF8) == 0xF0 ? 4
                                          : 0;
        if (len == 0 || i + len > n || !cm_utf8_valid(s + i, len)) {
            s[i++] = '?';
            continue;
        }
        i += len;
    }
}

size_t cm_strscpy(char *dst, size_t size, const char *src)
{
    size_t n = src ? strlen(src) : 0;
    if (size == 0)
        return 0;
    if (n >= size) {
        n = size - 1;
        /* Do not cut a UTF-8 sequence in half. */
        while (n > 0 && ((unsigned char)src[n] & 0xC0) == 0x80)
            n--;
    }
    if (n)
        memcpy(dst, src, n);
    dst[n] = 0;
    return n;
}
