/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <json-c/json.h>

#include "cm-crypto.h"
#include "cm-error.h"

/*
 * The broker's REST API over libcurl: a bearer token, JSON in and out, streamed uploads and
 * downloads. Only http and https are spoken, redirects are never followed (a redirect would
 * carry the token elsewhere), and TLS peers are always verified.
 */

/* The largest JSON answer accepted; a page of 1000 audit records is far below it. */
#define CTL_HTTP_MAX_JSON (64u * 1024u * 1024u)

typedef struct CtlHttp CtlHttp;

typedef struct {
    const char *url;    /* base URL: http(s)://HOST[:PORT][/PREFIX] */
    const char *token;  /* bearer token, or NULL */
    const char *cacert; /* CA bundle for https, or NULL for the system's */
    long timeout_s;     /* whole exchange for JSON; no progress for this long for files */
    FILE *log;          /* where verbose lines go, or NULL for none */
} CtlHttpOptions;

typedef struct {
    long status;         /* the HTTP status, or 0 when no answer came */
    CmError error;       /* code, message and field from the error body, or the failure */
    char request_id[64]; /* the broker's X-Request-Id, when there was an answer */
} CtlHttpError;

typedef struct {
    uint64_t size;                      /* bytes sent or received */
    char sha256[CM_SHA256_HEX_LEN + 1]; /* of those bytes */
} CtlTransfer;

/**
 * ctl_http_check_url:
 * Returns: 0 when @url is an http or https URL with a host and no user, query or fragment,
 * else -EINVAL with @err (CM_ERROR_INVALID) saying what is wrong.
 */
int ctl_http_check_url(const char *url, CmError *err);

/**
 * ctl_http_url_is_cleartext_remote:
 * Returns: true when @url is plain http to a host other than the loopback, where a token
 * would cross the network readable by anyone on the path.
 */
bool ctl_http_url_is_cleartext_remote(const char *url);

/**
 * ctl_http_new:
 * Makes a client for @opts (copied).
 * Returns: 0 and the client in @ret, or a negative errno with @err set.
 */
int ctl_http_new(const CtlHttpOptions *opts, CtlHttp **ret, CmError *err);

/** ctl_http_free: wipes the token and releases @h. Returns: NULL. Accepts NULL. */
CtlHttp *ctl_http_free(CtlHttp *h);
CM_DEFINE_TRIVIAL_CLEANUP_FUNC(CtlHttp *, ctl_http_free)

/**
 * ctl_http_json:
 * Sends @method @path (appended to the base URL; already escaped) with @body as JSON (or no
 * body when NULL) and parses the JSON answer.
 * Returns: 0 with the answer in @ret (a new reference; NULL when the answer was empty), or a
 * negative errno with @err filled: -EPROTO for an HTTP error status (the broker's error body
 * in @err->error), -EHOSTUNREACH/-ETIMEDOUT/-EIO for transport failures, -EBADMSG for an
 * answer that is not the expected JSON, -EFBIG for one over CTL_HTTP_MAX_JSON.
 */
int ctl_http_json(CtlHttp *h, const char *method, const char *path, json_object *body,
                  json_object **ret, CtlHttpError *err);

/**
 * ctl_http_upload:
 * PUTs @size bytes read from @fd (from its current offset) to @path with Content-Type
 * @media_type, hashing what is sent.
 * Returns: 0 with the JSON answer in @ret and what was sent in @ret_sent, or a negative errno
 * with @err filled as for ctl_http_json().
 */
int ctl_http_upload(CtlHttp *h, const char *path, int fd, uint64_t size, const char *media_type,
                    json_object **ret, CtlTransfer *ret_sent, CtlHttpError *err);

/**
 * ctl_http_download:
 * GETs @path and writes a successful answer's body to @fd, hashing it. When the broker sends
 * X-Content-SHA256, the bytes received must match it.
 * Returns: 0 with what was received in @ret, or a negative errno with @err filled as for
 * ctl_http_json() (-EBADMSG when the content does not match its hash; -EIO when @fd cannot be
 * written). On failure some bytes may already be in @fd.
 */
int ctl_http_download(CtlHttp *h, const char *path, int fd, CtlTransfer *ret, CtlHttpError *err);

/**
 * ctl_http_escape:
 * Percent-encodes every byte of @s except the URL's unreserved characters (RFC 3986), for
 * use as a path segment or a query value.
 * Returns: a newly allocated string, or NULL on allocation failure.
 */
char *ctl_http_escape(const char *s);
