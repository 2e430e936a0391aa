/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The request head (broker/br-http-parse.c): where it ends and what it holds. The first two
 * bytes choose the limits, the rest is what a client sent. Besides the sanitizers, every
 * property a smuggling attempt would break is checked: a head found by br_http_head_end()
 * ends at its first empty line and never past the limit; an accepted head has one Host (1.1),
 * never Content-Length beside Transfer-Encoding, a Content-Length of digits only, a path
 * beginning with '/' and no NUL cut into it, field names that are tokens and values without
 * control characters or surrounding blanks.
 */
#include <errno.h>
#include <string.h>
#include <strings.h>

#include "br-http-parse.h"
#include "fuzz.h"

static bool is_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* The reference: the end of the head by the plain rule (after CRLFs that precede it, the
 * first CRLF CRLF), or 0 when there is none in @len bytes. */
static size_t ref_head_end(const char *s, size_t len)
{
    size_t start = 0;
    while (start + 1 < len && s[start] == '\r' && s[start + 1] == '\n')
        start += 2;
    for (size_t i = start; i + 3 < len; i++)
        if (memcmp(s + i, "\r\n\r\n", 4) == 0)
            return i + 4;
    return 0;
}

static void check_head(const BrHttpHead *h, const BrHttpLimits *lim, size_t end)
{
    unsigned hosts = 0, cls = 0, tes = 0;
    const char *cl = NULL;

    FUZZ_CHECK(h->head_len <= end, "head_len %zu past the end %zu", h->head_len, end);
    FUZZ_CHECK(h->method && *h->method, "no method");
    for (const char *p = h->method; *p; p++)
        FUZZ_CHECK(is_tchar((unsigned char)*p), "method byte %02x", (unsigned char)*p);
    FUZZ_CHECK(h->target && (h->target[0] == '/' || strcmp(h->target, "*") == 0 ||
                             strncasecmp(h->target, "http", 4) == 0),
               "target '%s'", h->target);
    for (const char *p = h->target; *p; p++)
        FUZZ_CHECK((unsigned char)*p > 0x20 && (unsigned char)*p < 0x7f, "target byte %02x",
                   (unsigned char)*p);
    FUZZ_CHECK(h->path && (h->path[0] == '/' ||
                           (strcmp(h->path, "*") == 0 && strcmp(h->method, "OPTIONS") == 0)),
               "path '%s'", h->path);
    if (h->authority) {
        const char *host = br_http_head_field(h, "Host");
        FUZZ_CHECK(host && strcasecmp(host, h->authority) == 0, "target host %s, Host %s",
                   h->authority, host ? host : "(none)");
    }
    FUZZ_CHECK(!strchr(h->path, '?'), "the query left in the path");
    FUZZ_CHECK(h->minor <= 1, "HTTP/1.%u", h->minor);
    FUZZ_CHECK(h->n_headers <= BR_HTTP_MAX_HEADERS, "%u headers", h->n_headers);
    FUZZ_CHECK(h->n_query <= lim->max_query_params, "%u parameters", h->n_query);
    for (unsigned i = 0; i < h->n_query; i++) /* "&=x" has an empty name: looked up by none */
        FUZZ_CHECK(h->query[i].name && strlen(h->query[i].name) <= strlen(h->target),
                   "parameter %u", i);
    for (unsigned i = 0; i < h->n_headers; i++) {
        const char *n = h->headers[i].name, *v = h->headers[i].value;
        size_t vl = strlen(v);
        FUZZ_CHECK(*n, "empty field name");
        for (const char *p = n; *p; p++)
            FUZZ_CHECK(is_tchar((unsigned char)*p), "field name byte %02x", (unsigned char)*p);
        for (const char *p = v; *p; p++)
            FUZZ_CHECK((unsigned char)*p >= 0x20 || *p == '\t', "field value byte %02x",
                       (unsigned char)*p);
        FUZZ_CHECK(strchr(v, 0x7f) == NULL, "DEL in a field value");
        FUZZ_CHECK(vl == 0 ||
                       (v[0] != ' ' && v[0] != '\t' && v[vl - 1] != ' ' && v[vl - 1] != '\t'),
                   "blanks around a field value '%s'", v);
        if (strcasecmp(n, "Host") == 0)
            hosts++;
        if (strcasecmp(n, "Content-Length") == 0) {
            cls++;
            cl = v;
        }
        if (strcasecmp(n, "Transfer-Encoding") == 0)
            tes++;
    }
    if (h->minor == 1)
        FUZZ_CHECK(hosts == 1, "%u Host fields", hosts);
    FUZZ_CHECK(cls <= 1 && tes <= 1, "%u Content-Length, %u Transfer-Encoding", cls, tes);
    FUZZ_CHECK(!(cls && tes), "Content-Length beside Transfer-Encoding");
    FUZZ_CHECK(!(h->chunked && h->content_length >= 0), "chunked with a length");
    FUZZ_CHECK(h->chunked == (tes == 1), "chunked %d with %u Transfer-Encoding", h->chunked, tes);
    FUZZ_CHECK(!h->chunked || h->minor == 1, "chunked HTTP/1.0");
    if (cl) {
        FUZZ_CHECK(*cl && strspn(cl, "0123456789") == strlen(cl), "Content-Length '%s'", cl);
        FUZZ_CHECK(h->content_length >= 0, "Content-Length '%s' read as %lld", cl,
                   (long long)h->content_length);
    } else {
        FUZZ_CHECK(h->content_length == -1, "a length %lld without the field",
                   (long long)h->content_length);
    }
    FUZZ_CHECK(!h->keep_alive || h->minor == 1, "HTTP/1.0 kept alive");
    /* the look-ups the handlers make */
    (void)br_http_head_field(h, "Host");
    (void)br_http_head_field(h, "Cookie");
    (void)br_http_head_query(h, "limit");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    BrHttpLimits lim;
    BrHttpHead h = {0};
    CmError err = {0};
    const char *buf;
    size_t len;
    ssize_t end;

    if (size < 2)
        return 0;
    lim.max_head_bytes = 32 + (size_t)data[0] * 8;
    lim.max_query_params = 1 + data[1] % 64;
    buf = (const char *)data + 2;
    len = size - 2;

    end = br_http_head_end(buf, len, &lim, &err);
    if (end < 0) {
        unsigned status = cm_error_http_status(err.kind);
        FUZZ_CHECK(status == 400 || status == 414 || status == 431, "status %u", status);
        FUZZ_CHECK(err.message[0], "an error without a message");
        return 0;
    }
    if (end == 0) {
        /* More is needed: then no head is complete within the limit. */
        size_t ref = ref_head_end(buf, len < lim.max_head_bytes ? len : lim.max_head_bytes);
        FUZZ_CHECK(ref == 0, "a complete head of %zu bytes not found", ref);
        FUZZ_CHECK(len < lim.max_head_bytes + 1, "waits with %zu bytes over the limit %zu", len,
                   lim.max_head_bytes);
        return 0;
    }
    FUZZ_CHECK((size_t)end <= len && (size_t)end <= lim.max_head_bytes,
               "end %zd of %zu (limit %zu)", end, len, lim.max_head_bytes);
    FUZZ_CHECK((size_t)end == ref_head_end(buf, (size_t)end),
               "end %zd, the first empty line at %zu", end, ref_head_end(buf, (size_t)end));
    /* Every shorter prefix waits or is refused the same way: never a different head. */
    for (size_t cut = (size_t)end > 8 ? (size_t)end - 8 : 0; cut < (size_t)end; cut++) {
        CmError e2 = {0};
        FUZZ_CHECK(br_http_head_end(buf, cut, &lim, &e2) <= 0, "a head within %zu bytes", cut);
    }
    if (br_http_parse_head(buf, (size_t)end, &lim, &h, &err) < 0) {
        unsigned status = cm_error_http_status(err.kind);
        FUZZ_CHECK(status == 400 || status == 414 || status == 431 || status == 501 ||
                       status == 505,
                   "status %u (%s)", status, err.message);
        return 0;
    }
    check_head(&h, &lim, (size_t)end);
    br_http_head_clear(&h);
    return 0;
}
