/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The broker's HTTP/1.1 parsing (broker/br-http-parse.c): where a head ends, what a head
 * holds and every way it is refused (with the status, code and field the JSON error body
 * carries), chunked bodies fed whole and a byte at a time, and the trusted-proxy networks.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "br-http-parse.h"

static const BrHttpLimits lim = {.max_head_bytes = 1024, .max_query_params = 8};

static int parse(const char *text, BrHttpHead *h, CmError *err)
{
    ssize_t end;
    memset(h, 0, sizeof(*h));
    memset(err, 0, sizeof(*err));
    end = br_http_head_end(text, strlen(text), &lim, err);
    if (end <= 0)
        return end == 0 ? -EAGAIN : (int)end;
    return br_http_parse_head(text, (size_t)end, &lim, h, err);
}

/* A refusal: the status (through the error kind), code and field the client will see. */
static void refused(const char *text, unsigned status, const char *code, const char *field)
{
    BrHttpHead h;
    CmError err;
    int r = parse(text, &h, &err);
    if (r >= 0 || r == -EAGAIN)
        fail_msg("accepted or incomplete: %s", text);
    if (cm_error_http_status(err.kind) != status || strcmp(err.code, code) != 0 ||
        strcmp(err.field, field) != 0)
        fail_msg("%s\n  got %u %s '%s' (%s), want %u %s '%s'", text, cm_error_http_status(err.kind),
                 err.code, err.field, err.message, status, code, field);
}

static void test_head_end(void **state)
{
    CmError err = {0};
    char big[2048];

    assert_int_equal(br_http_head_end("GET / HTTP/1.1\r\nHost: x\r\n", 25, &lim, &err), 0);
    assert_int_equal(br_http_head_end("GET / HTTP/1.1\r\nHost: x\r\n\r", 26, &lim, &err), 0);
    assert_int_equal(br_http_head_end("GET / HTTP/1.1\r\nHost: x\r\n\r\nBODY", 31, &lim, &err), 27);
    /* empty lines before a request belong to its head */
    assert_int_equal(br_http_head_end("\r\n\r\nGET / HTTP/1.1\r\n\r\n", 22, &lim, &err), 22);
    assert_int_equal(br_http_head_end("\r\n\r\n", 4, &lim, &err), 0);
    assert_true(br_http_head_end("GET / HTTP/1.1\nHost: x\n\n", 24, &lim, &err) < 0);
    assert_string_equal(err.code, "malformed_request");
    assert_true(br_http_head_end("GET / HTTP/1.1\rHost: x\r\n\r\n", 26, &lim, &err) < 0);
    /* past the limit: a request line that never ended is 414, a head 431 */
    memset(big, 'a', sizeof(big));
    assert_true(br_http_head_end(big, sizeof(big), &lim, &err) < 0);
    assert_int_equal(cm_error_http_status(err.kind), 414);
    memcpy(big, "GET / HTTP/1.1\r\n", 16);
    assert_true(br_http_head_end(big, sizeof(big), &lim, &err) < 0);
    assert_int_equal(cm_error_http_status(err.kind), 431);
    assert_int_equal(br_http_head_end(big, 1000, &lim, &err), 0);
    /* A head of exactly the limit is read; one byte more (its final LF past the limit) is
     * refused however many bytes follow (tests/fuzz/fuzz-http-head: it was read whole). */
    memset(big, 'a', sizeof(big));
    memcpy(big, "GET / HTTP/1.1\r\nX: ", 19);
    memcpy(big + 1024 - 4, "\r\n\r\n", 4);
    assert_int_equal(br_http_head_end(big, 1024, &lim, &err), 1024);
    assert_int_equal(br_http_head_end(big, 1023, &lim, &err), 0);
    memcpy(big + 1024 - 4, "a\r\n\r\n", 5);
    assert_int_equal(br_http_head_end(big, 1024, &lim, &err), 0);
    assert_true(br_http_head_end(big, 1025, &lim, &err) < 0);
    assert_int_equal(cm_error_http_status(err.kind), 431);
    assert_true(br_http_head_end(big, sizeof(big), &lim, &err) < 0);
}

static void test_valid_heads(void **state)
{
    BrHttpHead h;
    CmError err;

    assert_int_equal(parse("GET /v1/a%2Fb%00c?x=1&y=a+b%21&z&x=2&&%41=%00 HTTP/1.1\r\n"
                           "Host: broker\r\nX-Pad:  \t spaced \t \r\n\r\n",
                           &h, &err),
                     0);
    assert_string_equal(h.method, "GET");
    assert_string_equal(h.path, "/v1/a/b%00c");
    assert_int_equal(h.minor, 1);
    assert_true(h.keep_alive);
    assert_int_equal(h.content_length, -1);
    assert_string_equal(br_http_head_field(&h, "x-pad"), "spaced");
    assert_string_equal(br_http_head_query(&h, "x"), "1");
    assert_string_equal(br_http_head_query(&h, "y"), "a b!");
    assert_string_equal(br_http_head_query(&h, "z"), "");
    assert_string_equal(br_http_head_query(&h, "A"), "%00");
    assert_null(br_http_head_query(&h, "w"));
    assert_int_equal(h.n_query, 5);
    br_http_head_clear(&h);

    assert_int_equal(parse("POST /x HTTP/1.1\r\nHost: x\r\ncontent-length: 0012\r\n"
                           "Connection: keep-alive, Close\r\nExpect: 100-continue\r\n\r\n",
                           &h, &err),
                     0);
    assert_int_equal(h.content_length, 12);
    assert_false(h.keep_alive);
    assert_true(h.expect_continue);
    br_http_head_clear(&h);

    assert_int_equal(
        parse("PUT /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n", &h, &err), 0);
    assert_true(h.chunked);
    br_http_head_clear(&h);

    /* absolute-form: the path after the authority; asterisk-form for OPTIONS */
    assert_int_equal(
        parse("GET HTTP://Broker:8470/v1/x?a=1 HTTP/1.1\r\nHost: broker:8470\r\n\r\n", &h, &err),
        0);
    assert_string_equal(h.path, "/v1/x");
    assert_string_equal(h.authority, "Broker:8470");
    assert_string_equal(br_http_head_query(&h, "a"), "1");
    br_http_head_clear(&h);
    assert_int_equal(parse("GET https://b?q HTTP/1.1\r\nHost: b\r\n\r\n", &h, &err), 0);
    assert_string_equal(h.path, "/");
    br_http_head_clear(&h);
    assert_int_equal(parse("OPTIONS * HTTP/1.1\r\nHost: b\r\n\r\n", &h, &err), 0);
    assert_string_equal(h.path, "*");
    br_http_head_clear(&h);

    /* a later HTTP/1.x is HTTP/1.1 (RFC 9110, 2.5), with its Host rule and keep-alive */
    assert_int_equal(parse("GET /x HTTP/1.3\r\nHost: x\r\n\r\n", &h, &err), 0);
    assert_int_equal(h.minor, 1);
    assert_true(h.keep_alive);
    br_http_head_clear(&h);

    /* HTTP/1.0: no Host needed, never kept alive */
    assert_int_equal(parse("GET /x HTTP/1.0\r\n\r\n", &h, &err), 0);
    assert_int_equal(h.minor, 0);
    assert_false(h.keep_alive);
    br_http_head_clear(&h);

    /* exactly the limit of query parameters */
    assert_int_equal(
        parse("GET /x?a=1&b=2&c=3&d=4&e=5&f=6&g=7&h=8 HTTP/1.1\r\nHost: x\r\n\r\n", &h, &err), 0);
    assert_int_equal(h.n_query, 8);
    br_http_head_clear(&h);
}

static void test_refused_heads(void **state)
{
    char many[4096];
    size_t n;

    refused("GET /x?a=1&b=2&c=3&d=4&e=5&f=6&g=7&h=8&i=9 HTTP/1.1\r\nHost: x\r\n\r\n", 414,
            "too_many_parameters", "query");
    refused("GARBAGE\r\n\r\n", 400, "malformed_request", "request-line");
    refused("GET  /x HTTP/1.1\r\nHost: x\r\n\r\n", 400, "malformed_request", "request-line");
    refused("G(T /x HTTP/1.1\r\nHost: x\r\n\r\n", 400, "malformed_request", "method");
    refused("GET /x HTTP/1.1 \r\nHost: x\r\n\r\n", 400, "malformed_request", "request-line");
    refused("GET /x HTTP/2.0\r\nHost: x\r\n\r\n", 505, "http_version", "request-line");
    refused("GET /x HTTP/0.9\r\nHost: x\r\n\r\n", 505, "http_version", "request-line");
    refused("GET /x HTTP/1.3\r\n\r\n", 400, "malformed_request", "Host");
    refused("GET /x HTTP/1.9\r\nHost: a\r\nHost: b\r\n\r\n", 400, "malformed_request", "Host");
    refused("GET /x http/1.1\r\nHost: x\r\n\r\n", 400, "malformed_request", "request-line");
    refused("GET x HTTP/1.1\r\nHost: x\r\n\r\n", 400, "malformed_request", "request-target");
    /* absolute-form is read (RFC 9112, 3.2.2) when it names the Host; CONNECT's and other
     * schemes are not */
    refused("GET http://h/x HTTP/1.1\r\nHost: x\r\n\r\n", 400, "malformed_request", "Host");
    refused("GET http://h/x HTTP/1.1\r\nHost: h\r\nHost: h\r\n\r\n", 400, "malformed_request",
            "Host");
    refused("GET http://u@h/x HTTP/1.1\r\nHost: h\r\n\r\n", 400, "malformed_request",
            "request-target");
    refused("GET http:///x HTTP/1.1\r\nHost: h\r\n\r\n", 400, "malformed_request",
            "request-target");
    refused("GET ftp://h/x HTTP/1.1\r\nHost: h\r\n\r\n", 400, "malformed_request",
            "request-target");
    refused("CONNECT h:443 HTTP/1.1\r\nHost: h\r\n\r\n", 400, "malformed_request",
            "request-target");
    refused("GET * HTTP/1.1\r\nHost: h\r\n\r\n", 400, "malformed_request", "request-target");
    /* a control byte refuses the head at once (a TLS handshake on the plain port), before
     * any empty line */
    refused("\x16\x03\x01\x00\xa5\x01", 400, "malformed_request", "");
    refused("GET /\x1b[0m", 400, "malformed_request", "");
    refused("GET /\x7f HTTP/1.1\r\nHost: x\r\n\r\n", 400, "malformed_request", "request-target");
    refused("GET /\xc3\xa9 HTTP/1.1\r\nHost: x\r\n\r\n", 400, "malformed_request",
            "request-target");
    refused("GET /x HTTP/1.1\r\n\r\n", 400, "malformed_request", "Host");
    refused("GET /x HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", 400, "malformed_request", "Host");
    refused("GET /x HTTP/1.1\r\nHost : x\r\n\r\n", 400, "malformed_request", "");
    refused("GET /x HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n", 400, "malformed_request", "");
    refused("GET /x HTTP/1.1\r\nHost: x\r\n: v\r\n\r\n", 400, "malformed_request", "");
    refused("GET /x HTTP/1.1\r\nHost: x\r\nX-A: a\r\n folded\r\n\r\n", 400, "malformed_request",
            "");
    refused("GET /x HTTP/1.1\r\nHost: x\r\nX-A: a\x01z\r\n\r\n", 400, "malformed_request", "X-A");
    refused("POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n", 400,
            "malformed_request", "Content-Length");
    refused("POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400, "invalid",
            "Content-Length");
    refused("POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 1e3\r\n\r\n", 400, "invalid",
            "Content-Length");
    refused("POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n", 400,
            "invalid", "Content-Length");
    refused("POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: \r\n\r\n", 400, "invalid",
            "Content-Length");
    refused("POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n"
            "\r\n",
            400, "malformed_request", "Transfer-Encoding");
    refused("POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501,
            "not_implemented", "Transfer-Encoding");
    refused("POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: "
            "chunked\r\n\r\n",
            400, "malformed_request", "Transfer-Encoding");
    refused("POST /x HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "malformed_request",
            "Transfer-Encoding");
    refused("GET /x HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\n\r\n", 400, "malformed_request",
            "Expect");
    /* 100 fields fit; a 101st is 431 */
    n = (size_t)snprintf(many, sizeof(many), "GET / HTTP/1.1\r\nHost: x\r\n");
    for (int i = 0; i < 99; i++)
        n += (size_t)snprintf(many + n, sizeof(many) - n, "A%d:\r\n", i);
    snprintf(many + n, sizeof(many) - n, "\r\n");
    BrHttpLimits wide = {.max_head_bytes = sizeof(many), .max_query_params = 8};
    BrHttpHead h;
    CmError err = {0};
    assert_int_equal(br_http_parse_head(many, strlen(many), &wide, &h, &err), 0);
    assert_int_equal(h.n_headers, 100);
    assert_string_equal(br_http_head_field(&h, "a98"), "");
    br_http_head_clear(&h);
    snprintf(many + n, sizeof(many) - n, "B:\r\n\r\n");
    assert_true(br_http_parse_head(many, strlen(many), &wide, &h, &err) < 0);
    assert_int_equal(cm_error_http_status(err.kind), 431);
    /* a NUL anywhere in the head */
    assert_true(br_http_parse_head("GET / HTTP/1.1\r\nHost: x\0\r\n\r\n", 28, &lim, &h, &err) < 0);
    assert_string_equal(err.code, "malformed_request");
}

/* ---- chunked bodies ---- */

typedef struct {
    char data[4096];
    size_t len;
    int fail_after; /* the sink refuses past this many bytes; -1: never */
} Sink;

static int sink(void *ctx, const char *data, size_t len)
{
    Sink *s = ctx;
    if (s->fail_after >= 0 && s->len + len > (size_t)s->fail_after)
        return -EFBIG;
    assert_true(s->len + len <= sizeof(s->data));
    memcpy(s->data + s->len, data, len);
    s->len += len;
    return 0;
}

/* Feeds @body whole, then a byte at a time: the same bytes, the same end. Returns: the bytes
 * consumed (the rest is the next request), or the error. */
static ssize_t feed(const char *body, size_t len, Sink *whole, CmError *err)
{
    BrChunked a = {0}, b = {0};
    Sink bytewise = {.fail_after = whole->fail_after};
    ssize_t n = br_http_chunked_feed(&a, body, len, sink, whole, err);
    size_t used = 0;
    ssize_t r = 0;

    for (; used < len && !b.done; used++) {
        r = br_http_chunked_feed(&b, body + used, 1, sink, &bytewise, err);
        if (r < 0)
            break;
        assert_int_equal(r, 1);
    }
    if (n >= 0) {
        assert_true(r >= 0);
        assert_int_equal(used, (size_t)n);
        assert_int_equal(bytewise.len, whole->len);
        assert_memory_equal(bytewise.data, whole->data, whole->len);
        assert_int_equal(a.done, b.done);
    } else {
        assert_true(r < 0);
    }
    return n;
}

static void test_chunked(void **state)
{
    CmError err = {0};
    Sink s = {.fail_after = -1};
    const char *ok = "5\r\nhello\r\n1;name=value; x = \"y\"\r\n \r\nA\r\n0123456789\r\n"
                     "0\r\nTrailer: t\r\nOther: o\r\n\r\nGET / HTTP/1.1\r\n";

    assert_int_equal(feed(ok, strlen(ok), &s, &err), (ssize_t)(strlen(ok) - 16));
    assert_int_equal(s.len, 16);
    assert_memory_equal(s.data, "hello 0123456789", 16);

    s = (Sink){.fail_after = -1};
    assert_int_equal(feed("0\r\n\r\n", 5, &s, &err), 5);
    assert_int_equal(s.len, 0);

    /* an unfinished body: everything consumed, not done */
    BrChunked ch = {0};
    s = (Sink){.fail_after = -1};
    assert_int_equal(br_http_chunked_feed(&ch, "3\r\nab", 5, sink, &s, &err), 5);
    assert_false(ch.done);

    const char *bad[] = {
        "zz\r\n",                   /* no size */
        "\r\n",                     /* no size */
        "5x\r\nhello\r\n0\r\n\r\n", /* a stray character */
        "5\nhello\r\n0\r\n\r\n",    /* bare LF after the size */
        "5\r\nhello\n0\r\n\r\n",    /* bare LF after the data */
        "5\r\nhelloX\r\n",          /* longer than its size */
        "1;a\nb\r\nx\r\n",          /* LF in an extension */
        "1000000000000000\r\n",     /* 16 hex digits */
        "0\r\nTrailer: t\n\r\n",    /* bare LF in the trailers */
        /* control characters (tests/fuzz/fuzz-http-chunked: 0x0b to 0x1f were let through) */
        "1;\x0b\r\nx\r\n0\r\n\r\n",
        "1;a=\x1f\r\nx\r\n0\r\n\r\n",
        "0\r\nTrailer: \x01\r\n\r\n",
        "0\r\nTrailer: \x7f\r\n\r\n",
    };
    for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
        s = (Sink){.fail_after = -1};
        err = (CmError){0};
        if (feed(bad[i], strlen(bad[i]), &s, &err) != -EBADMSG)
            fail_msg("accepted: %s", bad[i]);
        assert_string_equal(err.code, "malformed_chunk");
        assert_string_equal(err.field, "Transfer-Encoding");
        assert_int_equal(cm_error_http_status(err.kind), 400);
    }

    /* a chunk announcing more than the body's limit is refused at its size line, before its
     * data comes (it waited for the data to pass the limit) */
    BrChunked lim_ch = {.limit = 10};
    s = (Sink){.fail_after = -1};
    assert_int_equal(br_http_chunked_feed(&lim_ch, "6\r\nabcdef\r\n", 11, sink, &s, &err), 11);
    assert_int_equal(br_http_chunked_feed(&lim_ch, "4\r\nabcd\r\n0\r\n\r\n", 14, sink, &s, &err),
                     14);
    assert_true(lim_ch.done);
    lim_ch = (BrChunked){.limit = 10};
    err = (CmError){0};
    assert_int_equal(br_http_chunked_feed(&lim_ch, "6\r\nabcdef\r\n5\r\n", 14, sink, &s, &err),
                     -EFBIG);
    assert_int_equal(cm_error_http_status(err.kind), 413);
    lim_ch = (BrChunked){.limit = 10};
    assert_int_equal(br_http_chunked_feed(&lim_ch, "fffffffffffffff\r\n", 17, sink, &s, &err),
                     -EFBIG);

    /* an extension of 256 bytes is read, one of 257 refused */
    char ext[400];
    for (int len = 256; len <= 257; len++) {
        int n = snprintf(
            ext, sizeof(ext), "1;%.*s\r\nx\r\n0\r\n\r\n", len - 1,
            "nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn"
            "nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn"
            "nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn"
            "nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn");
        s = (Sink){.fail_after = -1};
        assert_int_equal(feed(ext, (size_t)n, &s, &err), len == 256 ? n : -EBADMSG);
    }
    /* trailers past 4096 bytes */
    char trailers[5000] = "0\r\nT: ";
    memset(trailers + 6, 'a', 4200);
    memcpy(trailers + 4206, "\r\n\r\n", 5);
    s = (Sink){.fail_after = -1};
    assert_int_equal(feed(trailers, strlen(trailers), &s, &err), -EBADMSG);

    /* the sink's refusal (the body limit) stops the decoder with its error */
    s = (Sink){.fail_after = 3};
    assert_int_equal(feed("5\r\nhello\r\n0\r\n\r\n", 15, &s, &err), -EFBIG);
}

static void test_networks(void **state)
{
    BrNet nets[4];

    assert_int_equal(br_net_parse("10.0.0.0/8", &nets[0]), 0);
    assert_int_equal(br_net_parse("192.0.2.7", &nets[1]), 0);
    assert_int_equal(br_net_parse("2001:db8::/32", &nets[2]), 0);
    assert_int_equal(br_net_parse("::ffff:198.51.100.0/120", &nets[3]), -EINVAL); /* /120 > 32 */
    assert_int_equal(br_net_parse("::ffff:198.51.100.0/24", &nets[3]), 0);
    assert_true(br_net_match(nets, 4, "10.255.1.2"));
    assert_false(br_net_match(nets, 4, "11.0.0.1"));
    assert_true(br_net_match(nets, 4, "192.0.2.7"));
    assert_false(br_net_match(nets, 4, "192.0.2.8"));
    assert_true(br_net_match(nets, 4, "2001:db8:1::5"));
    assert_false(br_net_match(nets, 4, "2001:db9::5"));
    assert_true(br_net_match(nets, 4, "198.51.100.77"));   /* the mapped network */
    assert_true(br_net_match(nets, 4, "::ffff:10.1.2.3")); /* a mapped address */
    assert_false(br_net_match(nets, 4, "not-an-address"));
    assert_false(br_net_match(nets, 4, ""));
    assert_true(br_net_is_address("::1"));
    assert_false(br_net_is_address("1.2.3.4 "));
    assert_int_equal(br_net_parse("10.0.0.0/", &nets[0]), -EINVAL);
    assert_int_equal(br_net_parse("10.0.0.0/33", &nets[0]), -EINVAL);
    assert_int_equal(br_net_parse("10.0.0.0/+8", &nets[0]), -EINVAL);
    assert_int_equal(br_net_parse("example.org", &nets[0]), -EINVAL);
    assert_int_equal(br_net_parse("0.0.0.0/0", &nets[0]), 0);
    assert_true(br_net_match(nets, 1, "203.0.113.1"));
    assert_false(br_net_match(nets, 1, "2001:db8::1"));
}

static void test_reasons(void **state)
{
    assert_string_equal(br_http_reason(431), "Request Header Fields Too Large");
    assert_string_equal(br_http_reason(503), "Service Unavailable");
    assert_string_equal(br_http_reason(299), "Client Error");
    /* every error kind has a status with a phrase of its own */
    for (int k = CM_ERROR_INVALID; k < CM_ERROR_KIND_MAX; k++) {
        const char *r = br_http_reason(cm_error_http_status((CmErrorKind)k));
        assert_true(strcmp(r, "Client Error") != 0 && strcmp(r, "Server Error") != 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_head_end),      cmocka_unit_test(test_valid_heads),
        cmocka_unit_test(test_refused_heads), cmocka_unit_test(test_chunked),
        cmocka_unit_test(test_networks),      cmocka_unit_test(test_reasons),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
