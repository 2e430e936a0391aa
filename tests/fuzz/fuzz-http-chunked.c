/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The chunked body decoder (broker/br-http-parse.c) against a reference written from RFC 9112,
 * section 7.1, as the broker restricts it: a size of 1 to 15 hex digits, an extension of at
 * most 256 bytes without control characters (but HTAB), CRLF line ends only, a trailer
 * section of at most 4096 bytes of lines without control characters (but HTAB). The decoder
 * is fed the input whole, a byte at a time, and in pieces the input itself chooses: the three
 * must agree with each other and with the reference on what is accepted, how many bytes are
 * consumed (the rest belongs to the next request) and the body's bytes.
 */
#include <errno.h>
#include <string.h>

#include "br-http-parse.h"
#include "fuzz.h"

typedef struct {
    uint8_t *buf;
    size_t len, cap;
} Out;

static int sink(void *ctx, const char *data, size_t len)
{
    Out *o = ctx;
    if (o->len + len > o->cap) {
        o->cap = (o->len + len) * 2;
        o->buf = realloc(o->buf, o->cap);
        if (!o->buf)
            abort();
    }
    memcpy(o->buf + o->len, data, len);
    o->len += len;
    return 0;
}

typedef struct {
    int r;       /* 0 accepted (done), 1 needs more, -1 refused */
    size_t used; /* bytes consumed when done */
    Out out;
} Result;

static int hexval(uint8_t c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static bool ctl(uint8_t c)
{
    return (c < 0x20 && c != '\t') || c == 0x7f;
}

/* The reference: a straightforward reading of the grammar over the whole input. */
static Result reference(const uint8_t *s, size_t len)
{
    Result res = {0};
    size_t p = 0;

    for (;;) {
        uint64_t size = 0;
        unsigned digits = 0;
        size_t ext = 0;
        while (p < len && hexval(s[p]) >= 0) {
            if (++digits > 15) {
                res.r = -1;
                return res;
            }
            size = size * 16 + (uint64_t)hexval(s[p++]);
        }
        if (p == len) {
            res.r = 1;
            return res;
        }
        if (digits == 0) {
            res.r = -1;
            return res;
        }
        if (s[p] == ';' || s[p] == ' ' || s[p] == '\t') {
            while (p < len && s[p] != '\r') {
                if (ctl(s[p]) || ++ext > BR_HTTP_MAX_CHUNK_EXTENSION) {
                    res.r = -1;
                    return res;
                }
                p++;
            }
            if (p == len) {
                res.r = 1;
                return res;
            }
        }
        if (s[p] != '\r') {
            res.r = -1;
            return res;
        }
        if (++p == len) {
            res.r = 1;
            return res;
        }
        if (s[p++] != '\n') {
            res.r = -1;
            return res;
        }
        if (size == 0)
            break;
        if (len - p < size) {
            sink(&res.out, (const char *)s + p, len - p);
            res.r = 1;
            return res;
        }
        sink(&res.out, (const char *)s + p, (size_t)size);
        p += (size_t)size;
        if (p == len) {
            res.r = 1;
            return res;
        }
        if (s[p++] != '\r') {
            res.r = -1;
            return res;
        }
        if (p == len) {
            res.r = 1;
            return res;
        }
        if (s[p++] != '\n') {
            res.r = -1;
            return res;
        }
    }
    /* the trailer section: lines up to the empty one */
    size_t trailers = 0;
    for (;;) {
        size_t line = 0;
        while (p < len && s[p] != '\r') {
            if (ctl(s[p]) || ++trailers > BR_HTTP_MAX_TRAILERS) {
                res.r = -1;
                return res;
            }
            p++;
            line++;
        }
        if (p == len) {
            res.r = 1;
            return res;
        }
        if (++p == len) {
            res.r = 1;
            return res;
        }
        if (s[p++] != '\n') {
            res.r = -1;
            return res;
        }
        if (line == 0) {
            res.used = p;
            res.r = 0;
            return res;
        }
    }
}

/* The decoder, fed pieces of the sizes @next chooses. */
static Result decode(const uint8_t *s, size_t len, size_t (*next)(size_t at, void *), void *arg)
{
    Result res = {0};
    BrChunked ch = {0};
    size_t p = 0;

    while (p < len && !ch.done) {
        CmError err = {0};
        size_t n = next(p, arg);
        if (n > len - p)
            n = len - p;
        ssize_t used = br_http_chunked_feed(&ch, (const char *)s + p, n, sink, &res.out, &err);
        if (used < 0) {
            FUZZ_CHECK(used == -EBADMSG, "errno %zd", used);
            FUZZ_CHECK(strcmp(err.code, "malformed_chunk") == 0, "code %s", err.code);
            res.r = -1;
            return res;
        }
        FUZZ_CHECK((size_t)used <= n, "consumed %zd of %zu", used, n);
        FUZZ_CHECK((size_t)used == n || ch.done, "stopped at %zd of %zu before the end", used, n);
        p += (size_t)used;
    }
    res.r = ch.done ? 0 : 1;
    res.used = ch.done ? p : 0;
    return res;
}

static size_t whole(size_t at, void *arg)
{
    return SIZE_MAX;
}

static size_t bytewise(size_t at, void *arg)
{
    return 1;
}

static size_t chosen(size_t at, void *arg)
{
    const uint8_t *s = arg;
    return 1 + (size_t)(s[at] * 31u + (uint8_t)at) % 7;
}

static void same(const Result *a, const Result *b, const char *what)
{
    FUZZ_CHECK(a->r == b->r, "%s: %d, reference %d", what, a->r, b->r);
    if (a->r == 0)
        FUZZ_CHECK(a->used == b->used, "%s: used %zu, reference %zu", what, a->used, b->used);
    if (a->r >= 0)
        FUZZ_CHECK(a->out.len == b->out.len &&
                       (a->out.len == 0 || memcmp(a->out.buf, b->out.buf, a->out.len) == 0),
                   "%s: %zu body bytes, reference %zu", what, a->out.len, b->out.len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Result ref = reference(data, size);
    Result w = decode(data, size, whole, NULL);
    Result b = decode(data, size, bytewise, NULL);
    Result c = decode(data, size, chosen, (void *)data);

    same(&w, &ref, "whole");
    same(&b, &ref, "a byte at a time");
    same(&c, &ref, "in pieces");
    free(ref.out.buf);
    free(w.out.buf);
    free(b.out.buf);
    free(c.out.buf);
    return 0;
}
