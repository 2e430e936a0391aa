/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>

#include "cm-cleanup.h"

/*
 * The project's one error enum. Code on the API path fills a CmError next to returning a
 * negative errno; the HTTP layer maps the kind to a status with cm_error_http_status().
 */
typedef enum {
    CM_ERROR_NONE = 0,
    CM_ERROR_INVALID,           /* 400: malformed input (not JSON, bad UTF-8, bad parameter) */
    CM_ERROR_UNPROCESSABLE,     /* 422: well-formed input that breaks a rule (schema, policy) */
    CM_ERROR_UNAUTHENTICATED,   /* 401 */
    CM_ERROR_FORBIDDEN,         /* 403 */
    CM_ERROR_NOT_FOUND,         /* 404 */
    CM_ERROR_METHOD,            /* 405 */
    CM_ERROR_CONFLICT,          /* 409: refused state transition, duplicate */
    CM_ERROR_TOO_LARGE,         /* 413 */
    CM_ERROR_MEDIA_TYPE,        /* 415 */
    CM_ERROR_TOO_MANY,          /* 429 */
    CM_ERROR_INTERNAL,          /* 500 */
    CM_ERROR_UNAVAILABLE,       /* 503 */
    CM_ERROR_TIMEOUT,           /* 408: the request head or body did not arrive in time */
    CM_ERROR_URI_TOO_LONG,      /* 414: the request line or its query is too long */
    CM_ERROR_HEADERS_TOO_LARGE, /* 431 */
    CM_ERROR_NOT_IMPLEMENTED,   /* 501: a transfer coding the broker does not know */
    CM_ERROR_HTTP_VERSION,      /* 505 */
    CM_ERROR_KIND_MAX,
} CmErrorKind;

typedef struct {
    CmErrorKind kind;
    char code[48];     /* machine-readable code, e.g. "invalid_transition"; defaults per kind */
    char message[512]; /* for a person */
    char field[256];   /* JSON pointer or parameter name the error is about; may be empty */
} CmError;

/**
 * cm_error_set:
 * Fills @err (which may be NULL) with @kind, the default code for the kind, an optional
 * @field and a printf-style message. Returns: the negative errno that matches @kind, so that
 * callers can write `return cm_error_set(err, ...)`.
 */
int cm_error_set(CmError *err, CmErrorKind kind, const char *field, const char *fmt, ...)
    _printf_(4, 5);

/**
 * cm_error_set_code:
 * As cm_error_set() with an explicit machine-readable @code.
 * Returns: the negative errno that matches @kind.
 */
int cm_error_set_code(CmError *err, CmErrorKind kind, const char *code, const char *field,
                      const char *fmt, ...) _printf_(5, 6);

/** cm_error_clear: resets @err to CM_ERROR_NONE. */
void cm_error_clear(CmError *err);

/** cm_error_is_set: Returns: true when @err holds an error. */
static inline bool cm_error_is_set(const CmError *err)
{
    return err && err->kind != CM_ERROR_NONE;
}

/** cm_error_http_status: Returns: the HTTP status for @kind (500 for unknown kinds). */
unsigned cm_error_http_status(CmErrorKind kind);

/** cm_error_kind_code: Returns: the default machine-readable code for @kind. */
const char *cm_error_kind_code(CmErrorKind kind);

/** cm_error_kind_errno: Returns: the negative errno conventionally paired with @kind. */
int cm_error_kind_errno(CmErrorKind kind);

/**
 * cm_error_prefix_field:
 * Prepends @prefix (a JSON pointer such as "/records/3") to @err->field, so that an error found
 * inside a nested document names its place in the outer one.
 */
void cm_error_prefix_field(CmError *err, const char *prefix);

/**
 * cm_error_prefix_message:
 * Prepends "@prefix: " to @err->message (truncating the end if the result is too long), so
 * that an error found while reading a file names the file.
 */
void cm_error_prefix_message(CmError *err, const char *prefix);
