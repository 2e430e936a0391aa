/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cm-error.h"

static const struct {
    unsigned status;
    const char *code;
    int err;
} kinds[CM_ERROR_KIND_MAX] = {
    [CM_ERROR_NONE] = {200, "ok", 0},
    [CM_ERROR_INVALID] = {400, "invalid", -EINVAL},
    [CM_ERROR_UNPROCESSABLE] = {422, "unprocessable", -EINVAL},
    [CM_ERROR_UNAUTHENTICATED] = {401, "unauthenticated", -EACCES},
    [CM_ERROR_FORBIDDEN] = {403, "forbidden", -EPERM},
    [CM_ERROR_NOT_FOUND] = {404, "not_found", -ENOENT},
    [CM_ERROR_METHOD] = {405, "method_not_allowed", -EOPNOTSUPP},
    [CM_ERROR_CONFLICT] = {409, "conflict", -EBUSY},
    [CM_ERROR_TOO_LARGE] = {413, "too_large", -EFBIG},
    [CM_ERROR_MEDIA_TYPE] = {415, "unsupported_media_type", -EMEDIUMTYPE},
    [CM_ERROR_TOO_MANY] = {429, "too_many_requests", -EAGAIN},
    [CM_ERROR_INTERNAL] = {500, "internal", -EIO},
    [CM_ERROR_UNAVAILABLE] = {503, "unavailable", -EAGAIN},
    [CM_ERROR_TIMEOUT] = {408, "timeout", -ETIMEDOUT},
    [CM_ERROR_URI_TOO_LONG] = {414, "uri_too_long", -E2BIG},
    [CM_ERROR_HEADERS_TOO_LARGE] = {431, "headers_too_large", -E2BIG},
    [CM_ERROR_NOT_IMPLEMENTED] = {501, "not_implemented", -EOPNOTSUPP},
    [CM_ERROR_HTTP_VERSION] = {505, "http_version", -EPROTONOSUPPORT},
};

_Static_assert(ELEMENTSOF(kinds) == CM_ERROR_KIND_MAX, "error kind table incomplete");

unsigned cm_error_http_status(CmErrorKind kind)
{
    if ((unsigned)kind >= CM_ERROR_KIND_MAX)
        return 500;
    return kinds[kind].status;
}

const char *cm_error_kind_code(CmErrorKind kind)
{
    if ((unsigned)kind >= CM_ERROR_KIND_MAX)
        return "internal";
    return kinds[kind].code;
}

int cm_error_kind_errno(CmErrorKind kind)
{
    if ((unsigned)kind >= CM_ERROR_KIND_MAX || kind == CM_ERROR_NONE)
        return -EIO;
    return kinds[kind].err;
}

static void error_fill(CmError *err, CmErrorKind kind, const char *code, const char *field,
                       const char *fmt, va_list ap) __attribute__((format(printf, 5, 0)));

static void error_fill(CmError *err, CmErrorKind kind, const char *code, const char *field,
                       const char *fmt, va_list ap)
{
    err->kind = kind;
    snprintf(err->code, sizeof(err->code), "%s", code ? code : cm_error_kind_code(kind));
    snprintf(err->field, sizeof(err->field), "%s", field ? field : "");
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
}

int cm_error_set(CmError *err, CmErrorKind kind, const char *field, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        error_fill(err, kind, NULL, field, fmt, ap);
        va_end(ap);
    }
    return cm_error_kind_errno(kind);
}

int cm_error_set_code(CmError *err, CmErrorKind kind, const char *code, const char *field,
                      const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        error_fill(err, kind, code, field, fmt, ap);
        va_end(ap);
    }
    return cm_error_kind_errno(kind);
}

void cm_error_clear(CmError *err)
{
    if (err)
        memset(err, 0, sizeof(*err));
}

/* Joins @a and @b into @dst of @size bytes, cutting the end off when it does not fit. */
static void join_truncating(char *dst, size_t size, const char *a, const char *sep, const char *b)
{
    size_t la = strlen(a), ls = strlen(sep), lb = strlen(b), n = 0;
    char tmp[1024];

    if (la + ls + lb + 1 > sizeof(tmp))
        lb = la + ls + 1 < sizeof(tmp) ? sizeof(tmp) - la - ls - 1 : 0;
    memcpy(tmp, a, la < sizeof(tmp) ? la : sizeof(tmp) - 1);
    n = la < sizeof(tmp) ? la : sizeof(tmp) - 1;
    if (n + ls < sizeof(tmp)) {
        memcpy(tmp + n, sep, ls);
        n += ls;
    }
    if (n + lb < sizeof(tmp)) {
        memmove(tmp + n, b, lb);
        n += lb;
    }
    if (n >= size)
        n = size - 1;
    memcpy(dst, tmp, n);
    dst[n] = 0;
}

void cm_error_prefix_field(CmError *err, const char *prefix)
{
    if (!err || !prefix || !*prefix)
        return;
    join_truncating(err->field, sizeof(err->field), prefix, "", err->field);
}

void cm_error_prefix_message(CmError *err, const char *prefix)
{
    if (!err || !prefix || !*prefix)
        return;
    join_truncating(err->message, sizeof(err->message), prefix, ": ", err->message);
}
