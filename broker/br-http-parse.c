/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The request head and chunked bodies, parsed strictly: CRLF line ends only, no obsolete line
 * folding, no whitespace before a field's colon, one Host, one Content-Length of digits, never
 * Content-Length beside Transfer-Encoding, and "chunked" as the only transfer coding. What a
 * lenient reading and a strict one would take differently (request smuggling) is refused.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "br-http-parse.h"
#include "cm-util.h"

static const struct {
    unsigned status;
    const char *reason;
} reasons[] = {
    {100, "Continue"},
    {200, "OK"},
    {201, "Created"},
    {202, "Accepted"},
    {204, "No Content"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {408, "Request Timeout"},
    {409, "Conflict"},
    {411, "Length Required"},
    {413, "Content Too Large"},
    {414, "URI Too Long"},
    {415, "Unsupported Media Type"},
    {422, "Unprocessable Content"},
    {429, "Too Many Requests"},
    {431, "Request Header Fields Too Large"},
    {500, "Internal Server Error"},
    {501, "Not Implemented"},
    {503, "Service Unavailable"},
    {505, "HTTP Version Not Supported"},
};

const char *br_http_reason(unsigned status)
{
    for (size_t i = 0; i < ELEMENTSOF(reasons); i++)
        if (reasons[i].status == status)
            return reasons[i].reason;
    return status < 500 ? "Client Error" : "Server Error";
}

/* RFC 9110 tchar: the characters of a method and of a field name. */
static bool is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return c && strchr("!#$%&'*+-.^_`|~", c);
}

ssize_t br_http_head_end(const char *buf, size_t len, const BrHttpLimits *lim, CmError *err)
{
    size_t n = len < lim->max_head_bytes ? len : lim->max_head_bytes, start = 0;
    bool line_ended = false;

    /* A request may be preceded by empty lines (RFC 9112, section 2.2): they are read with the
     * head but are no head of their own. */
    while (start + 1 < n && buf[start] == '\r' && buf[start + 1] == '\n')
        start += 2;
    for (size_t i = start; i < n; i++) {
        char c = buf[i];
        if (c == '\n')
            return cm_error_set_code(err, CM_ERROR_INVALID, "malformed_request", "",
                                     "a line of the request head ends in a bare LF (send CRLF)");
        /* No request line holds a control byte (br_http_parse_head() would refuse it):
         * refused at once, not when an empty line that may never come has arrived. A TLS
         * handshake sent to the plain port is the common case. (In a header field, it is
         * refused with the field's name once the head is in.) */
        if (!line_ended && (unsigned char)c < 0x20 && c != '\r')
            return cm_error_set_code(err, CM_ERROR_INVALID, "malformed_request", "",
                                     i == start && c == 0x16
                                         ? "this port speaks plain HTTP, not TLS"
                                         : "the request head holds a control byte (0x%02x)",
                                     (unsigned char)c);
        if (c != '\r')
            continue;
        if (i + 1 >= n) {
            if (n == len)
                return 0; /* the LF may follow */
            break;        /* it would be past the limit */
        }
        if (buf[i + 1] != '\n')
            return cm_error_set_code(err, CM_ERROR_INVALID, "malformed_request", "",
                                     "a bare CR in the request head");
        line_ended = true;
        /* An empty line: the head ends. */
        if (i >= start + 2 && buf[i - 2] == '\r' && buf[i - 1] == '\n')
            return (ssize_t)(i + 2);
        i++;
    }
    if (len < lim->max_head_bytes)
        return 0;
    if (!line_ended)
        return cm_error_set(err, CM_ERROR_URI_TOO_LONG, "request-target",
                            "the request line is longer than %zu bytes", lim->max_head_bytes);
    return cm_error_set(err, CM_ERROR_HEADERS_TOO_LARGE, "",
                        "the request head is larger than %zu bytes (limits.header_bytes)",
                        lim->max_head_bytes);
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/*
 * Decodes %HH in place, except %00: a NUL would cut the C string short and make
 * "/v1/departments/1%00" read as "/v1/departments/1". Left encoded, it fails routing and
 * parameter checks like any other stray character. With @plus, '+' is a space (a query).
 */
static void unescape(char *s, bool plus)
{
    char *w = s;
    for (const char *r = s; *r; r++) {
        int hi, lo;
        if (r[0] == '%' && (hi = hex_value(r[1])) >= 0 && (lo = hex_value(r[2])) >= 0 &&
            (hi | lo) != 0) {
            *w++ = (char)(hi * 16 + lo);
            r += 2;
        } else if (plus && *r == '+') {
            *w++ = ' ';
        } else {
            *w++ = *r;
        }
    }
    *w = 0;
}

static int parse_query(char *q, const BrHttpLimits *lim, BrHttpHead *h, CmError *err)
{
    unsigned n = 1;

    for (const char *p = q; *p; p++)
        n += *p == '&';
    if (n > lim->max_query_params)
        return cm_error_set_code(err, CM_ERROR_URI_TOO_LONG, "too_many_parameters", "query",
                                 "the query has %u parameters; at most %u are read", n,
                                 lim->max_query_params);
    h->query = calloc(n, sizeof(*h->query));
    if (!h->query)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    for (char *p = q; p;) {
        char *amp = strchr(p, '&'), *eq;
        if (amp)
            *amp = 0;
        if (*p) {
            eq = strchr(p, '=');
            if (eq)
                *eq = 0;
            unescape(p, true);
            if (eq)
                unescape(eq + 1, true);
            h->query[h->n_query].name = p;
            h->query[h->n_query].value = eq ? eq + 1 : NULL;
            h->n_query++;
        }
        p = amp ? amp + 1 : NULL;
    }
    return 0;
}

/* The request line: METHOD SP request-target SP HTTP/1.x, in place in @line. */
static int parse_request_line(char *line, const BrHttpLimits *lim, BrHttpHead *h, CmError *err)
{
    char *sp1 = strchr(line, ' '), *sp2, *q;

    if (!sp1 || sp1 == line)
        return cm_error_set_code(err, CM_ERROR_INVALID, "malformed_request", "request-line",
                                 "the request line is not METHOD TARGET HTTP/1.1");
    *sp1 = 0;
    for (const char *p = line; *p; p++)
        if (!is_tchar((unsigned char)*p))
            return cm_error_set_code(err, CM_ERROR_INVALID, "malformed_request", "method",
                                     "the method is not a token");
    sp2 = strchr(sp1 + 1, ' ');
    if (!sp2 || sp2 == sp1 + 1)
        return cm_error_set_code(err, CM_ERROR_INVALID, "malformed_request", "request-line",
                                 "the request line is not METHOD TARGET HTTP/1.1");
    *sp2 = 0;
    h->method = line;
    h->target = sp1 + 1;
    if (strlen(sp2 + 1) != 8 || strncmp(sp2 + 1, "HTTP/", 5) != 0 || sp2[7] != '.' ||
        sp2[6] < '0' || sp2[6] > '9' || sp2[8] < '0' || sp2[8] > '9')
        return cm_error_set_code(err, CM_ERROR_INVALID, "malformed_request", "request-line",
                                 "the request line does not end in HTTP/1.1 or HTTP/1.0");
    if (sp2[6] != '1')
        return cm_error_set(err, CM_ERROR_HTTP_VERSION, "request-line",
                            "HTTP/%c.%c is not served: use HTTP/1.1", sp2[6], sp2[8]);
    /* A later 1.x is read as the highest we implement (RFC 9110, section 2.5): HTTP/1.3 is
     * 1.1, with its Host rule, not a third kind that no rule below names. */
    h->minor = sp2[8] == '0' ? 0 : 1;
    for (const char *p = h->target; *p; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
            return cm_error_set_code(err, CM_ERROR_INVALID, "malformed_request", "request-target",
                                     "the request target holds a byte that must be "
                                     "percent-encoded");
    if (strcmp(h->target, "*") == 0 && strcmp(h->method, "OPTIONS") == 0) {
        /* asterisk-form: the server as a whole (RFC 9112, section 3.2.4) */
        h->path = strdup("*");
        return h->path ? 0 : cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    }
    if (h->target[0] == '/') {
        h->path = strdup(h->target);
    } else {
        /* absolute-form, which a server must accept (RFC 9112, section 3.2.2): the path is
         * what follows the authority; the authority must name the Host (header_rules()). */
        size_t scheme = strncasecmp(h->target, "http://", 7) == 0    ? 7
                        : strncasecmp(h->target, "https://", 8) == 0 ? 8
                                                                     : 0;
        const char *auth = h->target + scheme, *rest;
        if (!scheme)
            return cm_error_set_code(err, CM_ERROR_INVALID, "malformed_request", "request-target",
                                     "the request target must be a path beginning with / "
                                     "(or an http:// URL)");
        rest = auth + strcspn(auth, "/?#");
        if (rest == auth || memchr(auth, '@', (size_t)(rest - auth)))
            return cm_error_set_code(err, CM_ERROR_INVALID, "malformed_request", "request-target",
                                     "the request target's URL has no host, or user info");
        h->authority = strndup(auth, (size_t)(rest - auth));
        h->path = cm_strdup_printf("%s%s", *rest == '/' ? "" : "/", rest);
        if (!h->authority)
            return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    }
    if (!h->path)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    q = strchr(h->path, '?');
    if (q)
        *q++ = 0;
    /* A fragment is never sent by a client; '#' is kept and fails routing. */
    unescape(h->path, false);
    return q ? parse_query(q, lim, h, err) : 0;
}

static char *trim(char *s)
{
    char *e;
    while (*s == ' ' || *s == '\t')
        s++;
    e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
        *--e = 0;
    return s;
}

/* Whether the comma-separated list @v holds the token @tok (any case). */
static bool list_has(const char *v, const char *tok)
{
    size_t n = strlen(tok);
    for (const char *p = v; *p;) {
        p += strspn(p, " \t,");
        size_t len = strcspn(p, ",");
        size_t t = len;
        while (t && (p[t - 1] == ' ' || p[t - 1] == '\t'))
            t--;
        if (t == n && strncasecmp(p, tok, n) == 0)
            return true;
        p += len;
    }
    return false;
}

static int header_rules(BrHttpHead *h, CmError *err)
{
    const char *te = NULL, *cl = NULL, *conn = NULL, *expect = NULL;
    unsigned hosts = 0;

    for (unsigned i = 0; i < h->n_headers; i++) {
        const BrHttpField *f = &h->headers[i];
        if (strcasecmp(f->name, "Host") == 0) {
            hosts++;
        } else if (strcasecmp(f->name, "Content-Length") == 0) {
            if (cl)
                return cm_error_set_code(err, CM_ERROR_INVALID, "malformed_request",
                                         "Content-Length", "Content-Length is sent twice");
            cl = f->value;
        } else if (strcasecmp(f->name, "Transfer-Encoding") == 0) {
            if (te)
                return cm_error_set_code(err, CM_ERROR_INVALID, "malformed_request",
                                         "Transfer-Encoding", "Transfer-Encoding is sent twice");
            te = f->value;
        } else if (strcasecmp(f->name, "Connection") == 0) {
            conn = f->value;
        } else if (strcasecmp(f->name, "Expect") == 0) {
            expect = f->value;
        }
    }
    if (h->minor == 1 && hosts != 1)
        return cm_error_set_code(err, CM_ERROR_INVALID, "malformed_request", "Host",
                                 hosts ? "Host is sent more than once"
                                       : "an HTTP/1.1 request needs a Host header");
    /* An absolute-form target overrides Host for a server that trusts it (RFC 9112, section
     * 3.2.2); ours reads Host (the Origin check): the two must agree. */
    if (h->authority) {
        const char *host = br_http_head_field(h, "Host");
        if (hosts > 1 || !host || strcasecmp(host, h->authority) != 0)
            return cm_error_set_code(err, CM_ERROR_INVALID, "malformed_request", "Host",
                                     "the request target's host is not the Host header's");
    }
    if (cl && te)
        return cm_error_set_code(err, CM_ERROR_INVALID, "malformed_request", "Transfer-Encoding",
                                 "Content-Length and Transfer-Encoding together are refused");
    h->content_length = -1;
    if (cl) {
        int64_t n;
        if (!*cl || strspn(cl, "0123456789") != strlen(cl) ||
            cm_parse_int64(cl, 0, INT64_MAX, &n) < 0)
            return cm_error_set(err, CM_ERROR_INVALID, "Content-Length",
                                "Content-Length is not a number");
        h->content_length = n;
    }
    if (te) {
        if (strcasecmp(te, "chunked") != 0)
            return cm_error_set(err, CM_ERROR_NOT_IMPLEMENTED, "Transfer-Encoding",
                                "the only transfer coding served is chunked");
        if (h->minor == 0)
            return cm_error_set_code(err, CM_ERROR_INVALID, "malformed_request",
                                     "Transfer-Encoding", "HTTP/1.0 has no chunked coding");
        h->chunked = true;
    }
    h->keep_alive = h->minor == 1 && !(conn && list_has(conn, "close"));
    if (expect) {
        if (strcasecmp(expect, "100-continue") != 0)
            return cm_error_set_code(err, CM_ERROR_INVALID, "malformed_request", "Expect",
                                     "the only expectation served is 100-continue");
        h->expect_continue = h->minor == 1;
    }
    return 0;
}

int br_http_parse_head(const char *buf, size_t len, const BrHttpLimits *lim, BrHttpHead *ret,
                       CmError *err)
{
    BrHttpHead h = {0};
    char *line, *next;
    int r;

    /* Empty lines before the request line are skipped (RFC 9112, section 2.2). */
    while (len >= 2 && buf[0] == '\r' && buf[1] == '\n') {
        buf += 2;
        len -= 2;
    }
    h.buf = malloc(len + 1);
    if (!h.buf)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    memcpy(h.buf, buf, len);
    h.buf[len] = 0;
    h.head_len = len;

    if (memchr(buf, 0, len)) {
        r = cm_error_set_code(err, CM_ERROR_INVALID, "malformed_request", "",
                              "the request head holds a NUL byte");
        goto error;
    }
    /* Every line ends in CRLF (br_http_head_end() checked): cut them into strings. */
    line = h.buf;
    next = strstr(line, "\r\n");
    if (!next || next == line) {
        r = cm_error_set_code(err, CM_ERROR_INVALID, "malformed_request", "request-line",
                              "the request head is incomplete");
        goto error;
    }
    *next = 0;
    r = parse_request_line(line, lim, &h, err);
    if (r < 0)
        goto error;
    for (line = next + 2;; line = next + 2) {
        char *colon;
        next = strstr(line, "\r\n");
        if (!next || next == line)
            break; /* the empty line that ends the head */
        *next = 0;
        if (*line == ' ' || *line == '\t') {
            r = cm_error_set_code(err, CM_ERROR_INVALID, "malformed_request", "",
                                  "obsolete line folding in a header field");
            goto error;
        }
        colon = strchr(line, ':');
        if (!colon || colon == line) {
            r = cm_error_set_code(err, CM_ERROR_INVALID, "malformed_request", "",
                                  "a header line without a field name and colon");
            goto error;
        }
        *colon = 0;
        for (const char *p = line; *p; p++) {
            if (!is_tchar((unsigned char)*p)) {
                r = cm_error_set_code(err, CM_ERROR_INVALID, "malformed_request", "",
                                      "a header field name holds a character that is not "
                                      "allowed (a space before the colon?)");
                goto error;
            }
        }
        for (const char *p = colon + 1; *p; p++) {
            unsigned char c = (unsigned char)*p;
            if ((c < 0x20 && c != '\t') || c == 0x7f) {
                r = cm_error_set_code(err, CM_ERROR_INVALID, "malformed_request", line,
                                      "a header field value holds a control character");
                goto error;
            }
        }
        if (h.n_headers == BR_HTTP_MAX_HEADERS) {
            r = cm_error_set(err, CM_ERROR_HEADERS_TOO_LARGE, "", "more than %d header fields",
                             BR_HTTP_MAX_HEADERS);
            goto error;
        }
        h.headers[h.n_headers].name = line;
        h.headers[h.n_headers].value = trim(colon + 1);
        h.n_headers++;
    }
    r = header_rules(&h, err);
    if (r < 0)
        goto error;
    *ret = h;
    return 0;
error:
    br_http_head_clear(&h);
    return r;
}

void br_http_head_clear(BrHttpHead *h)
{
    free(h->buf);
    free(h->path);
    free(h->authority);
    free(h->query);
    memset(h, 0, sizeof(*h));
}

const char *br_http_head_field(const BrHttpHead *h, const char *name)
{
    for (unsigned i = 0; i < h->n_headers; i++)
        if (strcasecmp(h->headers[i].name, name) == 0)
            return h->headers[i].value;
    return NULL;
}

const char *br_http_head_query(const BrHttpHead *h, const char *key)
{
    for (unsigned i = 0; i < h->n_query; i++)
        if (strcmp(h->query[i].name, key) == 0)
            return h->query[i].value ? h->query[i].value : "";
    return NULL;
}

/* ---- chunked bodies ---- */

enum {
    CH_SIZE,       /* hex digits of the chunk size */
    CH_EXT,        /* ;name=value after the size */
    CH_SIZE_LF,    /* the LF after the size line's CR */
    CH_DATA,       /* the chunk's bytes */
    CH_DATA_CR,    /* the CR after them */
    CH_DATA_LF,    /* the LF */
    CH_TRAILER,    /* a trailer field line (or the empty line that ends the body) */
    CH_TRAILER_LF, /* the LF after a trailer line's CR */
};

static ssize_t chunk_fail(CmError *err, const char *why)
{
    cm_error_set_code(err, CM_ERROR_INVALID, "malformed_chunk", "Transfer-Encoding",
                      "the chunked body is malformed: %s", why);
    return -EBADMSG;
}

ssize_t br_http_chunked_feed(BrChunked *ch, const char *in, size_t len, BrChunkSink sink, void *ctx,
                             CmError *err)
{
    size_t i = 0;

    while (i < len && !ch->done) {
        char c = in[i];
        int v;

        switch (ch->state) {
        case CH_SIZE:
            v = hex_value(c);
            if (v >= 0) {
                if (ch->digits == 15)
                    return chunk_fail(err, "a chunk size of more than 15 hex digits");
                ch->size = ch->size * 16 + (uint64_t)v;
                ch->digits++;
                i++;
                break;
            }
            if (ch->digits == 0)
                return chunk_fail(err, "a chunk does not begin with its size in hex");
            if (c == ';' || c == ' ' || c == '\t') {
                ch->state = CH_EXT;
                ch->ext_len = 0;
            } else if (c == '\r') {
                ch->state = CH_SIZE_LF;
                i++;
            } else {
                return chunk_fail(err, "a chunk size is followed by a stray character");
            }
            break;
        case CH_EXT:
            if (c == '\r') {
                ch->state = CH_SIZE_LF;
            } else if (((unsigned char)c < 0x20 && c != '\t') || c == 0x7f) {
                return chunk_fail(err, "a control character in a chunk extension");
            } else if (++ch->ext_len > BR_HTTP_MAX_CHUNK_EXTENSION) {
                return chunk_fail(err, "a chunk extension longer than 256 bytes");
            }
            i++;
            break;
        case CH_SIZE_LF:
            if (c != '\n')
                return chunk_fail(err, "a chunk size line does not end in CRLF");
            i++;
            ch->digits = 0;
            /* Refused now, not after the client has sent the limit's worth of it. */
            if (ch->limit && ch->size > ch->limit - ch->total) {
                cm_error_set(err, CM_ERROR_TOO_LARGE, "",
                             "request body is larger than the limit of %llu bytes",
                             (unsigned long long)ch->limit);
                return -EFBIG;
            }
            ch->total += ch->size;
            if (ch->size == 0) {
                ch->state = CH_TRAILER;
                ch->trailer_len = 0;
            } else {
                ch->state = CH_DATA;
            }
            break;
        case CH_DATA: {
            size_t n = len - i;
            if (n > ch->size)
                n = (size_t)ch->size;
            int r = sink(ctx, in + i, n);
            if (r < 0)
                return r;
            ch->size -= n;
            i += n;
            if (ch->size == 0)
                ch->state = CH_DATA_CR;
            break;
        }
        case CH_DATA_CR:
            if (c != '\r')
                return chunk_fail(err, "a chunk is longer than its size");
            ch->state = CH_DATA_LF;
            i++;
            break;
        case CH_DATA_LF:
            if (c != '\n')
                return chunk_fail(err, "a chunk does not end in CRLF");
            ch->state = CH_SIZE;
            i++;
            break;
        case CH_TRAILER:
            if (c == '\r') {
                ch->state = CH_TRAILER_LF;
            } else if (c == '\n') {
                return chunk_fail(err, "a trailer line does not end in CRLF");
            } else if (((unsigned char)c < 0x20 && c != '\t') || c == 0x7f) {
                return chunk_fail(err, "a control character in a trailer field");
            } else if (++ch->trailer_len > BR_HTTP_MAX_TRAILERS) {
                return chunk_fail(err, "the trailer section is longer than 4096 bytes");
            } else {
                ch->size = 1; /* this trailer line is not empty */
            }
            i++;
            break;
        case CH_TRAILER_LF:
            if (c != '\n')
                return chunk_fail(err, "a trailer line does not end in CRLF");
            i++;
            if (ch->size == 0)
                ch->done = true; /* the empty line */
            ch->size = 0;
            ch->state = CH_TRAILER;
            break;
        default:
            return chunk_fail(err, "internal state");
        }
    }
    return (ssize_t)i;
}

/* ---- networks ---- */

/* An IPv4-mapped IPv6 address (::ffff:192.0.2.7) is the IPv4 address it maps. */
static int addr_parse(const char *s, int *family, uint8_t out[16])
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (inet_pton(AF_INET, s, out) == 1) {
        *family = AF_INET;
        return 0;
    }
    if (inet_pton(AF_INET6, s, out) == 1) {
        *family = AF_INET6;
        if (memcmp(out, mapped, sizeof(mapped)) == 0) {
            memmove(out, out + 12, 4);
            *family = AF_INET;
        }
        return 0;
    }
    return -EINVAL;
}

int br_net_parse(const char *s, BrNet *ret)
{
    char buf[INET6_ADDRSTRLEN + 8];
    const char *slash;
    BrNet n = {0};
    unsigned bits;

    if (!s || strlen(s) >= sizeof(buf))
        return -EINVAL;
    snprintf(buf, sizeof(buf), "%s", s);
    slash = strchr(s, '/');
    if (slash)
        buf[slash - s] = 0;
    if (addr_parse(buf, &n.family, n.addr) < 0)
        return -EINVAL;
    bits = n.family == AF_INET ? 32 : 128;
    n.prefix = bits;
    if (slash) {
        int64_t p;
        if (!slash[1] || strspn(slash + 1, "0123456789") != strlen(slash + 1) ||
            cm_parse_int64(slash + 1, 0, bits, &p) < 0)
            return -EINVAL;
        n.prefix = (unsigned)p;
    }
    *ret = n;
    return 0;
}

bool br_net_is_address(const char *text)
{
    uint8_t a[16];
    int family;
    return text && addr_parse(text, &family, a) == 0;
}

bool br_net_match(const BrNet *nets, size_t n, const char *text)
{
    uint8_t a[16];
    int family;

    if (!text || addr_parse(text, &family, a) < 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        const BrNet *net = &nets[i];
        unsigned full = net->prefix / 8, rest = net->prefix % 8;
        if (net->family != family)
            continue;
        if (memcmp(a, net->addr, full) != 0)
            continue;
        if (rest && ((a[full] ^ net->addr[full]) & (uint8_t)(0xff00u >> rest)))
            continue;
        return true;
    }
    return false;
}
