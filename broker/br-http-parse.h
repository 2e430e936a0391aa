/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cm-error.h"

/*
 * HTTP/1.1 as the broker reads it (RFC 9112), strictly and without allocation per byte: the
 * request head (request line, header fields, the query string) and a chunked body. Pure
 * functions over buffers, so that every refusal is unit-tested and answered by br-http.c with
 * the broker's JSON error body, never by a library's HTML page.
 */

#define BR_HTTP_MAX_HEADERS 100
#define BR_HTTP_MAX_CHUNK_EXTENSION 256
#define BR_HTTP_MAX_TRAILERS 4096

typedef struct {
    const char *name;  /* NUL-terminated, as sent */
    const char *value; /* NUL-terminated, without surrounding whitespace */
} BrHttpField;

typedef struct {
    char *buf; /* the head's copy that every pointer below points into */
    const char *method;
    const char *target; /* the request-target as sent, before decoding */
    char *path;         /* decoded (%HH, except %00), without the query; "*" for OPTIONS * */
    char *authority;    /* of an absolute-form target ("http://host:port/path"), or NULL */
    unsigned minor;     /* HTTP/1.minor */
    BrHttpField headers[BR_HTTP_MAX_HEADERS];
    unsigned n_headers;
    BrHttpField *query; /* decoded ('+' is a space, %HH except %00); keys in order */
    unsigned n_query;
    int64_t content_length; /* -1 when absent */
    bool chunked;
    bool keep_alive; /* HTTP/1.1 without "Connection: close" */
    bool expect_continue;
    size_t head_len; /* bytes of the head, through its empty line */
} BrHttpHead;

typedef struct {
    size_t max_head_bytes; /* request line and header fields together */
    unsigned max_query_params;
} BrHttpLimits;

/**
 * br_http_head_end:
 * Looks for the empty line that ends a request head in the first @len bytes of @buf.
 * Returns: the head's length through that line, 0 when more bytes are needed, or a negative
 * errno with @err (431 or 414 for a head longer than @lim allows, 400 for a bare CR or LF).
 */
ssize_t br_http_head_end(const char *buf, size_t len, const BrHttpLimits *lim, CmError *err);

/**
 * br_http_parse_head:
 * Parses the complete head of @len bytes (as found by br_http_head_end()) into @ret, which
 * owns copies of what it points to afterwards (free with br_http_head_clear()).
 * Returns: 0, or a negative errno with @err naming the part that is wrong (the request line,
 * a header field, the query) with the status to answer: 400, 414, 431, 501 or 505.
 */
int br_http_parse_head(const char *buf, size_t len, const BrHttpLimits *lim, BrHttpHead *ret,
                       CmError *err);

/** br_http_head_clear: frees what br_http_parse_head() allocated; @h may be zeroed. */
void br_http_head_clear(BrHttpHead *h);

/** br_http_head_field: Returns: the first header field @name (any case), or NULL. */
const char *br_http_head_field(const BrHttpHead *h, const char *name);

/** br_http_head_query: Returns: the first query parameter @key, or NULL. */
const char *br_http_head_query(const BrHttpHead *h, const char *key);

/* A chunked body's decoder (RFC 9112, section 7.1). */
typedef struct {
    uint64_t limit; /* the body's largest size (0: none): a chunk announcing more is refused */
    uint64_t total; /* the body's bytes so far */
    int state;
    uint64_t size; /* what is left of the current chunk */
    unsigned digits;
    size_t ext_len, trailer_len;
    bool done; /* the last chunk and the trailer section were read */
} BrChunked;

/* Receives the body's bytes as they are decoded; returns 0, or a negative errno to stop. */
typedef int (*BrChunkSink)(void *ctx, const char *data, size_t len);

/**
 * br_http_chunked_feed:
 * Decodes up to @len bytes of @in, handing the data to @sink. Stops after the trailer section
 * (@ch->done): the bytes after it belong to the next request.
 * Returns: the bytes consumed, or a negative errno: the sink's, -EBADMSG with @err set (400
 * `malformed_chunk`) for a chunk that breaks the syntax or whose size or extension is too long,
 * or -EFBIG with @err set (413) as soon as a chunk's size takes the body past @ch->limit.
 */
ssize_t br_http_chunked_feed(BrChunked *ch, const char *in, size_t len, BrChunkSink sink, void *ctx,
                             CmError *err);

/** br_http_reason: Returns: the reason phrase of @status ("Not Found"). */
const char *br_http_reason(unsigned status);

/* An address or a network in CIDR notation (config `trusted_proxies`). */
typedef struct {
    int family; /* AF_INET or AF_INET6 */
    uint8_t addr[16];
    unsigned prefix; /* bits that must match */
} BrNet;

/**
 * br_net_parse:
 * Reads "192.0.2.7", "10.0.0.0/8", "2001:db8::1" or "2001:db8::/32" into @ret.
 * Returns: 0, or -EINVAL.
 */
int br_net_parse(const char *s, BrNet *ret);

/** br_net_is_address: Returns: whether @text is an IPv4 or IPv6 address. */
bool br_net_is_address(const char *text);

/**
 * br_net_match:
 * Whether the address @text (IPv4, IPv6, or IPv4-mapped IPv6) is in one of the @n networks.
 * Returns: true or false (false for text that is no address).
 */
bool br_net_match(const BrNet *nets, size_t n, const char *text);
