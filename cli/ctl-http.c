/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <curl/curl.h>

#include "ctl-http.h"
#include "cb-config.h"
#include "cm-json.h"
#include "cm-util.h"

/* An error body is a few hundred bytes; this leaves room for a proxy's HTML page. */
#define ERROR_BODY_MAX (64u * 1024u)

struct CtlHttp {
    CURL *curl;
    char *base;        /* the base URL without a trailing '/' */
    char *auth_header; /* "Authorization: Bearer ...", or NULL */
    char *cacert;
    long timeout_s;
    FILE *log;
    char errbuf[CURL_ERROR_SIZE];
};

/* One request and its answer. */
typedef struct {
    CtlHttp *h;
    char *buf; /* the answer's body when it is kept in memory */
    size_t len, cap, max;
    bool overflow;
    int fd;         /* for a download: where a 2xx body goes, else -1 */
    CmSha256 *hash; /* of the bytes sent (upload) or written (download) */
    uint64_t count;
    int io_errno;
    char request_id[64];
    char content_type[128];
    char content_sha256[CM_SHA256_HEX_LEN + 1];
} Exchange;

static void exchange_clear(Exchange *x)
{
    free(x->buf);
    cm_sha256_free(x->hash);
    x->buf = NULL;
    x->hash = NULL;
}

static bool unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

char *ctl_http_escape(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(s);
    char *out = malloc(3 * n + 1), *o = out;

    if (!out)
        return NULL;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (unreserved(*p)) {
            *o++ = (char)*p;
        } else {
            *o++ = '%';
            *o++ = hex[*p >> 4];
            *o++ = hex[*p & 15];
        }
    }
    *o = 0;
    return out;
}

static void curl_url_cleanupp(CURLU **u)
{
    if (*u)
        curl_url_cleanup(*u);
}

static void curl_freep(char **p)
{
    if (*p)
        curl_free(*p);
}

int ctl_http_check_url(const char *url, CmError *err)
{
    _cleanup_(curl_url_cleanupp) CURLU *u = curl_url();
    _cleanup_(curl_freep) char *scheme = NULL, *host = NULL, *user = NULL, *query = NULL,
                               *fragment = NULL;

    if (!u)
        return cm_error_set(err, CM_ERROR_INTERNAL, "url", "out of memory");
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !*host)
        return cm_error_set(err, CM_ERROR_INVALID, "url",
                            "'%s' is not a URL like http://HOST:PORT or https://HOST", url);
    if (strcasecmp(scheme, "http") != 0 && strcasecmp(scheme, "https") != 0)
        return cm_error_set(err, CM_ERROR_INVALID, "url", "'%s': only http and https are supported",
                            url);
    curl_url_get(u, CURLUPART_USER, &user, 0);
    curl_url_get(u, CURLUPART_QUERY, &query, 0);
    curl_url_get(u, CURLUPART_FRAGMENT, &fragment, 0);
    if (user)
        return cm_error_set(err, CM_ERROR_INVALID, "url",
                            "'%s' must not carry a user name; the token authenticates", url);
    if (query || fragment)
        return cm_error_set(err, CM_ERROR_INVALID, "url", "'%s' must not carry a query or fragment",
                            url);
    return 0;
}

bool ctl_http_url_is_cleartext_remote(const char *url)
{
    _cleanup_(curl_url_cleanupp) CURLU *u = curl_url();
    _cleanup_(curl_freep) char *scheme = NULL, *host = NULL;

    if (!u || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK)
        return false;
    if (strcasecmp(scheme, "http") != 0)
        return false;
    return !(strcasecmp(host, "localhost") == 0 || strncmp(host, "127.", 4) == 0 ||
             strcmp(host, "[::1]") == 0);
}

int ctl_http_new(const CtlHttpOptions *opts, CtlHttp **ret, CmError *err)
{
    CtlHttp *h;
    size_t n;

    if (ctl_http_check_url(opts->url, err) < 0)
        return -EINVAL;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "cannot initialise libcurl");
    h = calloc(1, sizeof(*h));
    if (!h) {
        curl_global_cleanup();
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    }
    h->curl = curl_easy_init();
    h->base = strdup(opts->url);
    if (opts->token)
        h->auth_header = cm_strdup_printf("Authorization: Bearer %s", opts->token);
    if (opts->cacert)
        h->cacert = strdup(opts->cacert);
    if (!h->curl || !h->base || (opts->token && !h->auth_header) || (opts->cacert && !h->cacert)) {
        ctl_http_free(h);
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    }
    n = strlen(h->base);
    while (n > 0 && h->base[n - 1] == '/')
        h->base[--n] = 0;
    h->timeout_s = opts->timeout_s > 0 ? opts->timeout_s : 30;
    h->log = opts->log;
    *ret = h;
    return 0;
}

CtlHttp *ctl_http_free(CtlHttp *h)
{
    if (!h)
        return NULL;
    if (h->curl)
        curl_easy_cleanup(h->curl);
    if (h->auth_header) {
        explicit_bzero(h->auth_header, strlen(h->auth_header));
        free(h->auth_header);
    }
    free(h->base);
    free(h->cacert);
    free(h);
    curl_global_cleanup();
    return NULL;
}

/* Keeps up to x->max bytes of the answer in memory; more makes the transfer fail. */
static size_t keep(Exchange *x, const char *data, size_t n)
{
    if (x->len + n > x->max) {
        x->overflow = true;
        return 0;
    }
    if (x->len + n + 1 > x->cap) {
        size_t cap = x->cap ? x->cap : 4096;
        while (cap < x->len + n + 1)
            cap *= 2;
        char *nb = realloc(x->buf, cap);
        if (!nb) {
            x->io_errno = ENOMEM;
            return 0;
        }
        x->buf = nb;
        x->cap = cap;
    }
    memcpy(x->buf + x->len, data, n);
    x->len += n;
    x->buf[x->len] = 0;
    return n;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *userdata)
{
    Exchange *x = userdata;
    size_t n = size * nmemb, off = 0;
    long status = 0;

    if (x->fd < 0)
        return keep(x, data, n);
    curl_easy_getinfo(x->h->curl, CURLINFO_RESPONSE_CODE, &status);
    /* Only a successful answer is the document; an error body is kept to be read. */
    if (status < 200 || status >= 300)
        return keep(x, data, n);
    while (off < n) {
        ssize_t w = write(x->fd, data + off, n - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            x->io_errno = errno;
            return 0;
        }
        off += (size_t)w;
    }
    cm_sha256_update(x->hash, data, n);
    x->count += n;
    return n;
}

/* Copies a header's value (without surrounding blanks) when its name matches. */
static void header_value(const char *line, size_t len, const char *name, char *out, size_t out_size)
{
    size_t nl = strlen(name), start, end;

    if (len <= nl || strncasecmp(line, name, nl) != 0 || line[nl] != ':')
        return;
    start = nl + 1;
    while (start < len && (line[start] == ' ' || line[start] == '\t'))
        start++;
    end = len;
    while (end > start && (line[end - 1] == '\r' || line[end - 1] == '\n' || line[end - 1] == ' ' ||
                           line[end - 1] == '\t'))
        end--;
    snprintf(out, out_size, "%.*s", (int)(end - start), line + start);
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *userdata)
{
    Exchange *x = userdata;
    size_t n = size * nmemb;

    /* A new status line (after "100 Continue") starts a new set of headers. */
    if (n >= 5 && strncmp(data, "HTTP/", 5) == 0) {
        x->request_id[0] = x->content_type[0] = x->content_sha256[0] = 0;
        return n;
    }
    header_value(data, n, "X-Request-Id", x->request_id, sizeof(x->request_id));
    header_value(data, n, "Content-Type", x->content_type, sizeof(x->content_type));
    header_value(data, n, "X-Content-SHA256", x->content_sha256, sizeof(x->content_sha256));
    return n;
}

static int setup(CtlHttp *h, Exchange *x, const char *method, const char *path,
                 struct curl_slist **headers)
{
    _cleanup_free_ char *url = cm_strdup_printf("%s%s", h->base, path);
    CURL *c = h->curl;

    if (!url)
        return -ENOMEM;
    /* Reset, so nothing of the previous request (an upload's options) carries over. */
    curl_easy_reset(c);
    h->errbuf[0] = 0;
    if (h->auth_header && !(*headers = curl_slist_append(*headers, h->auth_header)))
        return -ENOMEM;
    if (!(*headers = curl_slist_append(*headers, "Accept: application/json")))
        return -ENOMEM;
    curl_easy_setopt(c, CURLOPT_URL, url);
#if LIBCURL_VERSION_NUM >= 0x075500 /* 7.85 replaced the bit masks with strings */
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(c, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, h->errbuf);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "cloudbrokerctl/" CB_VERSION);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, h->timeout_s);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    if (h->cacert)
        curl_easy_setopt(c, CURLOPT_CAINFO, h->cacert);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, x);
    if (h->log)
        fprintf(h->log, "> %s %s\n", method, url);
    return 0;
}

static void set_error(CtlHttpError *err, long status, CmErrorKind kind, const char *code,
                      const char *message)
{
    err->status = status;
    cm_error_set_code(&err->error, kind, code, "", "%s", message);
}

/* Turns an error answer into @err: the broker's {"error": {...}} when it is one. */
static int http_error(Exchange *x, long status, CtlHttpError *err)
{
    _cleanup_json_ json_object *doc = NULL;
    json_object *e;

    err->status = status;
    snprintf(err->request_id, sizeof(err->request_id), "%s", x->request_id);
    if (x->len && cm_json_parse(x->buf, x->len, &doc, NULL) == 0 &&
        (e = cm_json_get(doc, "error")) && json_object_is_type(e, json_type_object)) {
        cm_error_set_code(&err->error, CM_ERROR_INVALID, cm_json_get_str(e, "code", "error"),
                          cm_json_get_str(e, "field", ""), "%s",
                          cm_json_get_str(e, "message", "(no message)"));
        if (!err->request_id[0])
            snprintf(err->request_id, sizeof(err->request_id), "%s",
                     cm_json_get_str(e, "request_id", ""));
    } else {
        cm_error_set_code(&err->error, CM_ERROR_INVALID, "http_error", "",
                          "the server answered HTTP %ld without an error document", status);
    }
    return -EPROTO;
}

static int transport_error(CtlHttp *h, Exchange *x, CURLcode rc, CtlHttpError *err)
{
    const char *why = h->errbuf[0] ? h->errbuf : curl_easy_strerror(rc);
    _cleanup_free_ char *msg = NULL;

    if (x->overflow) {
        set_error(err, 0, CM_ERROR_TOO_LARGE, "too_large", "the answer is too large");
        return -EFBIG;
    }
    if (x->io_errno) {
        msg = cm_strdup_printf("cannot write the answer: %s", strerror(x->io_errno));
        set_error(err, 0, CM_ERROR_INTERNAL, "write_failed", msg ? msg : "write failed");
        return -EIO;
    }
    switch (rc) {
    case CURLE_OPERATION_TIMEDOUT:
        msg = cm_strdup_printf("no answer from %s within %ld s (see --timeout): %s", h->base,
                               h->timeout_s, why);
        set_error(err, 0, CM_ERROR_UNAVAILABLE, "timeout", msg ? msg : why);
        return -ETIMEDOUT;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_PROXY:
        msg = cm_strdup_printf("cannot reach %s: %s", h->base, why);
        set_error(err, 0, CM_ERROR_UNAVAILABLE, "unreachable", msg ? msg : why);
        return -EHOSTUNREACH;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CONNECT_ERROR:
        msg = cm_strdup_printf("TLS with %s failed (see --cacert): %s", h->base, why);
        set_error(err, 0, CM_ERROR_UNAVAILABLE, "tls", msg ? msg : why);
        return -EIO;
    default:
        msg = cm_strdup_printf("request to %s failed: %s", h->base, why);
        set_error(err, 0, CM_ERROR_UNAVAILABLE, "transport", msg ? msg : why);
        return -EIO;
    }
}

/* Runs the prepared request; on an answer, 0 with its status in @ret_status. */
static int perform(CtlHttp *h, Exchange *x, CtlHttpError *err, long *ret_status)
{
    CURLcode rc = curl_easy_perform(h->curl);
    long status = 0;

    *err = (CtlHttpError){0};
    if (rc != CURLE_OK)
        return transport_error(h, x, rc, err);
    curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &status);
    if (h->log)
        fprintf(h->log, "< %ld (request id %s)\n", status, x->request_id[0] ? x->request_id : "-");
    *ret_status = status;
    return 0;
}

/* Parses a successful answer as JSON (an empty one gives NULL). */
static int json_answer(Exchange *x, long status, json_object **ret, CtlHttpError *err)
{
    CmError perr = {0};

    if (x->len == 0) {
        *ret = NULL;
        return 0;
    }
    if (strncasecmp(x->content_type, "application/json", 16) != 0) {
        set_error(err, status, CM_ERROR_INVALID, "bad_answer",
                  "the server's answer is not JSON; is the URL the broker's?");
        return -EBADMSG;
    }
    if (cm_json_parse(x->buf, x->len, ret, &perr) < 0) {
        set_error(err, status, CM_ERROR_INVALID, "bad_answer", perr.message);
        return -EBADMSG;
    }
    return 0;
}

int ctl_http_json(CtlHttp *h, const char *method, const char *path, json_object *body,
                  json_object **ret, CtlHttpError *err)
{
    Exchange x = {.h = h, .fd = -1, .max = CTL_HTTP_MAX_JSON};
    struct curl_slist *headers = NULL;
    const char *text = NULL;
    size_t text_len = 0;
    long status = 0;
    int r;

    *err = (CtlHttpError){0};
    r = setup(h, &x, method, path, &headers);
    if (r >= 0 && body) {
        text = json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN);
        text_len = strlen(text);
        if (!(headers = curl_slist_append(headers, "Content-Type: application/json")))
            r = -ENOMEM;
    } else if (r >= 0 && strcmp(method, "GET") != 0) {
        /* An empty body, without curl's default form Content-Type. */
        text = "";
        if (!(headers = curl_slist_append(headers, "Content-Type:")))
            r = -ENOMEM;
    }
    if (r < 0) {
        curl_slist_free_all(headers);
        set_error(err, 0, CM_ERROR_INTERNAL, "oom", "out of memory");
        return r;
    }
    curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h->curl, CURLOPT_TIMEOUT, h->timeout_s);
    if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(h->curl, CURLOPT_HTTPGET, 1L);
    } else {
        if (strcmp(method, "POST") != 0)
            curl_easy_setopt(h->curl, CURLOPT_CUSTOMREQUEST, method);
        curl_easy_setopt(h->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)text_len);
        curl_easy_setopt(h->curl, CURLOPT_COPYPOSTFIELDS, text);
    }
    r = perform(h, &x, err, &status);
    curl_slist_free_all(headers);
    if (r >= 0)
        r = status >= 200 && status < 300 ? json_answer(&x, status, ret, err)
                                          : http_error(&x, status, err);
    exchange_clear(&x);
    return r;
}

typedef struct {
    Exchange *x;
    int fd;
    off_t start;
} Source;

static size_t on_read(char *buffer, size_t size, size_t nitems, void *userdata)
{
    Source *s = userdata;
    for (;;) {
        ssize_t n = read(s->fd, buffer, size * nitems);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            s->x->io_errno = errno;
            return CURL_READFUNC_ABORT;
        }
        cm_sha256_update(s->x->hash, buffer, (size_t)n);
        s->x->count += (size_t)n;
        return (size_t)n;
    }
}

/* curl rewinds when it must send the body again; the hash starts over with it. */
static int on_seek(void *userdata, curl_off_t offset, int origin)
{
    Source *s = userdata;
    if (offset != 0 || origin != SEEK_SET || lseek(s->fd, s->start, SEEK_SET) < 0)
        return CURL_SEEKFUNC_CANTSEEK;
    cm_sha256_free(s->x->hash);
    s->x->hash = cm_sha256_new();
    s->x->count = 0;
    return s->x->hash ? CURL_SEEKFUNC_OK : CURL_SEEKFUNC_FAIL;
}

/* Files may be large and links slow: give up when nothing moves for timeout_s instead. */
static void transfer_timeouts(CtlHttp *h)
{
    curl_easy_setopt(h->curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(h->curl, CURLOPT_LOW_SPEED_TIME, h->timeout_s);
}

int ctl_http_upload(CtlHttp *h, const char *path, int fd, uint64_t size, const char *media_type,
                    json_object **ret, CtlTransfer *ret_sent, CtlHttpError *err)
{
    Exchange x = {.h = h, .fd = -1, .max = CTL_HTTP_MAX_JSON};
    Source src = {.x = &x, .fd = fd, .start = lseek(fd, 0, SEEK_CUR)};
    struct curl_slist *headers = NULL;
    _cleanup_free_ char *ctype = cm_strdup_printf("Content-Type: %s", media_type);
    long status = 0;
    int r;

    *err = (CtlHttpError){0};
    x.hash = cm_sha256_new();
    r = ctype && x.hash ? setup(h, &x, "PUT", path, &headers) : -ENOMEM;
    if (r >= 0 && !(headers = curl_slist_append(headers, ctype)))
        r = -ENOMEM;
    if (r < 0) {
        curl_slist_free_all(headers);
        exchange_clear(&x);
        set_error(err, 0, CM_ERROR_INTERNAL, "oom", "out of memory");
        return r;
    }
    curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h->curl, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(h->curl, CURLOPT_INFILESIZE_LARGE, (curl_off_t)size);
    curl_easy_setopt(h->curl, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(h->curl, CURLOPT_READDATA, &src);
    curl_easy_setopt(h->curl, CURLOPT_SEEKFUNCTION, on_seek);
    curl_easy_setopt(h->curl, CURLOPT_SEEKDATA, &src);
    transfer_timeouts(h);
    r = perform(h, &x, err, &status);
    curl_slist_free_all(headers);
    if (r >= 0 && (status < 200 || status >= 300))
        r = http_error(&x, status, err);
    if (r >= 0 && x.count != size) {
        set_error(err, status, CM_ERROR_INTERNAL, "short_read",
                  "the file changed size while it was being sent");
        r = -EIO;
    }
    if (r >= 0)
        r = json_answer(&x, status, ret, err);
    if (r >= 0) {
        ret_sent->size = x.count;
        cm_sha256_finish(TAKE_PTR(x.hash), ret_sent->sha256);
    }
    exchange_clear(&x);
    return r;
}

int ctl_http_download(CtlHttp *h, const char *path, int fd, CtlTransfer *ret, CtlHttpError *err)
{
    Exchange x = {.h = h, .fd = fd, .max = ERROR_BODY_MAX};
    struct curl_slist *headers = NULL;
    CtlTransfer got = {0};
    long status = 0;
    int r;

    *err = (CtlHttpError){0};
    x.hash = cm_sha256_new();
    r = x.hash ? setup(h, &x, "GET", path, &headers) : -ENOMEM;
    if (r < 0) {
        curl_slist_free_all(headers);
        exchange_clear(&x);
        set_error(err, 0, CM_ERROR_INTERNAL, "oom", "out of memory");
        return r;
    }
    curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h->curl, CURLOPT_HTTPGET, 1L);
    transfer_timeouts(h);
    r = perform(h, &x, err, &status);
    curl_slist_free_all(headers);
    if (r >= 0 && (status < 200 || status >= 300))
        r = http_error(&x, status, err);
    if (r >= 0) {
        got.size = x.count;
        cm_sha256_finish(TAKE_PTR(x.hash), got.sha256);
        if (x.content_sha256[0] && strcasecmp(x.content_sha256, got.sha256) != 0) {
            set_error(err, status, CM_ERROR_INVALID, "hash_mismatch",
                      "the content received does not match the SHA-256 the server sent");
            r = -EBADMSG;
        }
    }
    if (r >= 0)
        *ret = got;
    exchange_clear(&x);
    return r;
}
