/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The HTTP(S) front: the broker's own HTTP/1.1 server, so that every answer it sends, down to
 * a malformed request line or a chunk extension, is the JSON error body, and so that hostile
 * clients cannot starve the others:
 *
 * - One event loop thread does every accept, read and timer, and every write a worker left
 *   (epoll, non-blocking sockets, GnuTLS for HTTPS). An idle or slow connection costs a small
 *   struct and never a thread.
 * - `threads` workers run what may wait on the database: routing, authentication and the
 *   route's precheck once the head is in (before a byte of the body is read), then the body's
 *   parse, its schema and the handler. The loop hands a connection to one worker at a time;
 *   the connection is that worker's until it hands it back. A request without a body is one
 *   job (head phase and handler), and its worker sends the answer as far as the socket takes
 *   it at once; on a kept-alive connection whose answer is out it gives the connection back
 *   to the loop's epoll itself, so a small GET costs the loop one read and one wake-up of a
 *   worker, and nothing more.
 * - The whole request head must arrive within `limits.head_timeout_seconds` however slowly
 *   its bytes come; a JSON body within `limits.body_timeout_seconds`; nothing moving for
 *   `limits.timeout_seconds` closes a connection.
 * - Connections: at most `limits.connections`, at most `limits.connections_per_ip` from one
 *   address (not for `trusted_proxies`). At the limit, an address below its fair share (the
 *   limit over the addresses connected) takes a connection from the address that holds the
 *   most, one that waits for a request head; an address at its share is refused.
 * - Request bodies held in memory, across every connection, stay within
 *   `limits.body_budget_bytes`, and within a quarter of it for one token (or one largest body
 *   of the route): past it a body is refused at once with 503 and Retry-After. Uploads stream
 *   to a file and hold none.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/param.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>

#include "br-account.h"
#include "br-api.h"
#include "br-console.h"
#include "br-daemon.h"
#include "br-host.h"
#include "br-http-parse.h"
#include "br-http.h"
#include "br-schemas.h"
#include "cm-crypto.h"
#include "cm-log.h"
#include "cm-time.h"
#include "cm-util.h"

#define READ_CHUNK (64u * 1024)
#define READ_PER_TURN (256u * 1024) /* then the next connection's turn */
#define SWEEP_MS 200
#define LINGER_MS 2000
#define LINGER_BYTES (16u * 1024 * 1024)
#define RETRY_AFTER "5"
#define ACCEPT_PAUSE_MS 100
#define LARGE_ANSWER (1024u * 1024)
#define ADDR_BUCKETS 1024
#define SHARE_BUCKETS 256

typedef enum {
    CS_TLS,    /* TLS handshake */
    CS_HEAD,   /* reading a request head, or idle between requests */
    CS_JOB,    /* a worker has the request */
    CS_BODY,   /* reading the body */
    CS_WRITE,  /* writing the answer */
    CS_LINGER, /* answered and closing: what the client still sends is read and dropped */
} ConnState;

typedef enum {
    JOB_HEAD,  /* route, authenticate, precheck: before the body */
    JOB_FINAL, /* the body's parse and schema, the handler */
} JobKind;

typedef struct Addr Addr;
typedef struct Share Share;
typedef struct Conn Conn;

/* The connections from one address. */
struct Addr {
    Addr *next;
    char text[INET6_ADDRSTRLEN];
    unsigned conns;
    Conn *first;  /* its connections */
    bool trusted; /* a trusted proxy: no per-address limit */
};

/* The body memory held for one token. */
/* What one token holds: body memory, and the workers' time (a fair share of them). */
struct Share {
    Share *next;
    int64_t key; /* account id, or minus the host id for an agent */
    size_t held;
    unsigned refs;                /* connections attached, calls running or waiting */
    unsigned running;             /* final jobs queued for or run by a worker */
    Conn *waiting, *waiting_tail; /* final jobs waiting for this token's turn */
};

struct Conn {
    BrHttp *http;
    Conn *prev, *next; /* every connection, oldest first */
    Conn *job_next;    /* in the work queue or the done list */
    Conn *pending_next;
    bool pending; /* TLS may hold decrypted bytes not read yet */
    bool closed;  /* closed; freed at the end of the loop's turn */
    Addr *addr;
    Conn *addr_prev, *addr_next; /* the connections of one address */
    int fd;
    gnutls_session_t tls;
    /* Atomic: a worker that ends a request hands its connection back by this store
     * (finish_in_worker()), while the loop may be looking at every connection's state. */
    _Atomic(ConnState) state;
    uint32_t events;    /* epoll interest; 0 when not registered */
    int64_t started_ms; /* accepted, or the first byte of the current request arrived */
    int64_t last_io_ms;
    int64_t body_deadline_ms; /* 0: none */
    int64_t linger_until_ms;
    bool head_started; /* a byte of the current request arrived */
    unsigned served;
    char *in; /* read and not consumed yet: a head, or bytes after the current request */
    size_t in_len, in_cap;
    BrHttpHead head;
    BrCall *call;
    JobKind job;
    bool job_failed;
    bool body_chunked;
    uint64_t body_left;
    BrChunked chunk;
    Share *share;
    size_t held; /* of the body budget */
    Share *runs; /* the token whose worker time this call's final job counts in */
    Conn *waiting_next;
    char *out;
    size_t out_len, out_off, out_cap;
    bool send_failed; /* the worker's send of the answer failed: the connection is closed */
    int out_fd;
    uint64_t out_fd_left, out_fd_off;
    bool interim; /* out holds "100 Continue": then the body */
    bool close_after;
    bool body_unread; /* the client may still be sending a body we did not read */
    size_t lingered;
};

struct BrHttp {
    BrDaemon *d;
    const BrRoute *routes;
    size_t n_routes;
    BrHttpLimits lim;
    int listen_fd, epoll_fd, wake_fd;
    bool accepting;
    int64_t accept_resume_ms;
    pthread_t loop;
    bool loop_started;
    atomic_bool stop;

    pthread_t *workers;
    unsigned n_workers;
    pthread_mutex_t q_lock;
    pthread_cond_t q_cond;
    Conn *q_head, *q_tail;
    bool q_stopping;
    pthread_mutex_t done_lock;
    Conn *done;
    /* The token shares and the body budget: the loop's, but a worker admits a request without
     * a body to its handler itself (share_run_now()). */
    pthread_mutex_t share_lock;

    Conn *first, *last; /* every connection */
    unsigned n_conns;
    Addr *addrs[ADDR_BUCKETS];
    unsigned n_addrs;
    Share *shares[SHARE_BUCKETS];
    size_t budget_used;
    Conn *pending;
    Conn *grave; /* closed this turn: freed when nothing can point to them any more */
    char *scratch;

    bool tls_on;
    gnutls_certificate_credentials_t cred;
    gnutls_priority_t prio;

    char id_prefix[16];
    atomic_uint_fast64_t next_id;
    BrHttpCounters counters;
};

static BrHttp *the_http; /* for br_http_counters(); one server per process */

static int64_t now_ms(void)
{
    return cm_mono_ns() / 1000000;
}

/* ---- routing and authentication (workers) ---- */

/* OPTIONS: the methods of the resource, in the Allow header set by head_phase(). */
static int options_reply(BrCall *c)
{
    return br_reply_no_content(c, 204);
}

static const BrRoute options_route = {"OPTIONS", "", options_reply, 0, BR_BODY_NONE, NULL};

static void allow_add(char *allow, size_t size, const char *method)
{
    size_t used = strlen(allow);
    snprintf(allow + used, size - used, "%s%s", used ? ", " : "", method);
}

/* HEAD is served as GET without the body (RFC 9110, section 9.3.2: every server does). */
static int find_route(BrHttp *h, BrCall *c, const char *method, const char *url, char *allow,
                      size_t allow_size)
{
    const char *segs[16];
    size_t seg_len[16];
    size_t n = 0;
    bool path_matched = false;

    if (url[0] != '/' || (url[1] && url[strlen(url) - 1] == '/'))
        return cm_error_set(&c->err, CM_ERROR_NOT_FOUND, "", "no such resource");
    for (const char *p = url + 1; *p;) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        if (n == ELEMENTSOF(segs) || len == 0)
            return cm_error_set(&c->err, CM_ERROR_NOT_FOUND, "", "no such resource");
        segs[n] = p;
        seg_len[n++] = len;
        p += len;
        if (*p == '/')
            p++;
    }
    allow[0] = 0;

    for (size_t i = 0; i < h->n_routes; i++) {
        const BrRoute *r = &h->routes[i];
        const char *p = r->path + 1;
        size_t k = 0;
        unsigned n_ids = 0;
        int64_t ids[BR_CALL_MAX_IDS];
        char name[sizeof(c->name)] = "";
        bool ok = true;

        while (ok && *p && k < n) {
            const char *slash = strchr(p, '/');
            size_t len = slash ? (size_t)(slash - p) : strlen(p);
            if (len == 4 && memcmp(p, "{id}", 4) == 0) {
                char num[24];
                int64_t v;
                if (seg_len[k] >= sizeof(num) || n_ids == BR_CALL_MAX_IDS) {
                    ok = false;
                    break;
                }
                memcpy(num, segs[k], seg_len[k]);
                num[seg_len[k]] = 0;
                if (cm_parse_int64(num, 1, (INT64_C(1) << 53), &v) < 0 || num[0] == '0')
                    ok = false;
                else
                    ids[n_ids++] = v;
            } else if (len == 6 && memcmp(p, "{name}", 6) == 0) {
                if (seg_len[k] >= sizeof(name)) {
                    ok = false;
                    break;
                }
                for (size_t j = 0; j < seg_len[k]; j++) {
                    char ch = segs[k][j];
                    if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_'))
                        ok = false;
                }
                memcpy(name, segs[k], seg_len[k]);
                name[seg_len[k]] = 0;
            } else if (len != seg_len[k] || memcmp(p, segs[k], len) != 0) {
                ok = false;
            }
            p += len;
            if (*p == '/')
                p++;
            k++;
        }
        if (!ok || *p || k != n)
            continue;
        path_matched = true;
        if (strcmp(r->method, strcmp(method, "HEAD") == 0 ? "GET" : method) != 0) {
            allow_add(allow, allow_size, r->method);
            if (strcmp(r->method, "GET") == 0)
                allow_add(allow, allow_size, "HEAD");
            continue;
        }
        c->route = r;
        memcpy(c->ids, ids, sizeof(ids));
        c->n_ids = n_ids;
        memcpy(c->name, name, sizeof(name));
        return 0;
    }
    if (path_matched) {
        allow_add(allow, allow_size, "OPTIONS");
        if (strcmp(method, "OPTIONS") == 0) {
            c->route = &options_route;
            return 0;
        }
        return cm_error_set(&c->err, CM_ERROR_METHOD, "", "method %s is not allowed here", method);
    }
    return cm_error_set(&c->err, CM_ERROR_NOT_FOUND, "", "no such resource");
}

static int authenticate(BrCall *c)
{
    const char *auth = br_call_header(c, "Authorization");
    char hash[CM_SHA256_HEX_LEN + 1];
    CmDb *db;
    int r;

    /* Without a token, the console's session cookie (br-api-session.c). */
    if (!auth && (r = br_api_session_authenticate(c)) != 0)
        return r < 0 ? r : 0;
    if (!auth || strncasecmp(auth, "Bearer ", 7) != 0)
        return cm_error_set(&c->err, CM_ERROR_UNAUTHENTICATED, "Authorization",
                            "a bearer token is required (Authorization: Bearer TOKEN)");
    auth += 7;
    while (*auth == ' ')
        auth++;
    if (strlen(auth) != CM_TOKEN_LEN ||
        (strncmp(auth, CM_TOKEN_PREFIX, 4) != 0 && strncmp(auth, CM_AGENT_TOKEN_PREFIX, 4) != 0))
        return cm_error_set(&c->err, CM_ERROR_UNAUTHENTICATED, "Authorization",
                            "the token is not valid");
    cm_token_hash(auth, hash);

    db = br_store_db(c->d->store, &c->err);
    if (!db)
        return -EIO;
    if (strncmp(auth, CM_AGENT_TOKEN_PREFIX, 4) == 0) {
        /* A host's agent: it acts for that host only. */
        char name[100];
        r = br_host_by_agent_token(db, hash, &c->actor.host_id, name, sizeof(name), &c->err);
        if (r > 0) {
            c->actor.account_id = 0;
            c->actor.role = BR_ROLE_AGENT;
            snprintf(c->actor.name, sizeof(c->actor.name), "agent:%s", name);
        }
    } else {
        BrAccountCreds creds;
        r = br_account_by_token(db, hash, &creds, &c->err);
        if (r > 0)
            br_account_creds_actor(&creds, &c->actor);
    }
    if (r == 0)
        return cm_error_set(&c->err, CM_ERROR_UNAUTHENTICATED, "Authorization",
                            "the token is not valid");
    return r < 0 ? r : 0;
}

/*
 * The client: the peer's address, or, when the peer is a trusted proxy, the address its
 * X-Forwarded-For names. That list is read from its right end (the hop nearest to us) and
 * the first address that is not itself a trusted proxy is the client; a list that holds
 * anything but addresses is not believed, and the proxy's own address stands.
 */
static void resolve_client(BrHttp *h, Conn *conn, char *out, size_t size)
{
    const BrConfig *cfg = &h->d->config;
    char cand[INET6_ADDRSTRLEN + 2] = "";
    bool found = false, bad = false;

    snprintf(out, size, "%s", conn->addr->text);
    if (!conn->addr->trusted)
        return;
    /* Every X-Forwarded-For field, the last one first, each from its end. */
    for (unsigned i = conn->head.n_headers; i-- > 0 && !found && !bad;) {
        const BrHttpField *f = &conn->head.headers[i];
        const char *v = f->value;
        size_t end;
        if (strcasecmp(f->name, "X-Forwarded-For") != 0)
            continue;
        end = strlen(v);
        while (end > 0 && !found && !bad) {
            size_t start = end, a, b;
            while (start > 0 && v[start - 1] != ',')
                start--;
            a = start;
            b = end;
            while (a < b && (v[a] == ' ' || v[a] == '\t'))
                a++;
            while (b > a && (v[b - 1] == ' ' || v[b - 1] == '\t'))
                b--;
            end = start ? start - 1 : 0;
            if (b == a)
                continue;
            if (b - a >= sizeof(cand)) {
                bad = true;
                break;
            }
            memcpy(cand, v + a, b - a);
            cand[b - a] = 0;
            if (!br_net_is_address(cand)) {
                bad = true;
                break;
            }
            if (!br_net_match(cfg->trusted_proxies, cfg->n_trusted_proxies, cand))
                found = true;
        }
    }
    if (found)
        snprintf(out, size, "%s", cand);
    else if (bad)
        cm_log_debug("X-Forwarded-For from %s holds something that is no address: ignored",
                     conn->addr->text);
}

static void set_client_and_id(BrHttp *h, Conn *conn, BrCall *c)
{
    const char *rid = br_http_head_field(&conn->head, "X-Request-Id");
    bool rid_ok = rid && *rid && strlen(rid) < sizeof(c->actor.request_id);

    resolve_client(h, conn, c->actor.client, sizeof(c->actor.client));
    /* A client's own request id is kept when it is short and plain; else we make one. */
    for (const char *p = rid; rid_ok && *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_' || *p == '.'))
            rid_ok = false;
    if (rid_ok)
        snprintf(c->actor.request_id, sizeof(c->actor.request_id), "%s", rid);
    else
        snprintf(c->actor.request_id, sizeof(c->actor.request_id), "%s-%06llx", h->id_prefix,
                 (unsigned long long)atomic_fetch_add(&h->next_id, 1));
}

/* ---- answers (workers and the loop) ---- */

static void count_status(BrHttp *h, unsigned status)
{
    if (status < 300)
        atomic_fetch_add(&h->counters.status_2xx, 1);
    else if (status < 500)
        atomic_fetch_add(&h->counters.status_4xx, 1);
    else
        atomic_fetch_add(&h->counters.status_5xx, 1);
}

/* Appends "Name: value\r\n", dropping CR and LF from a value a handler made. */
static void put_header(char **buf, size_t *len, size_t *cap, const char *name, const char *value)
{
    size_t need = strlen(name) + strlen(value) + 5;
    if (*len + need > *cap) {
        size_t ncap = (*cap + need) * 2;
        char *nb = realloc(*buf, ncap);
        if (!nb)
            return;
        *buf = nb;
        *cap = ncap;
    }
    *len += (size_t)snprintf(*buf + *len, *cap - *len, "%s: ", name);
    for (const char *p = value; *p; p++)
        if (*p != '\r' && *p != '\n')
            (*buf)[(*len)++] = *p;
    memcpy(*buf + *len, "\r\n", 3);
    *len += 2;
}

/*
 * Sets the connection's answer: the head, then @body_len bytes of @body (copied) or, with
 * @fd >= 0, @fd_size bytes of that file (ownership taken).
 * Returns: 0, or -ENOMEM.
 */
static int set_answer(Conn *conn, unsigned status, const char *type, const char *body,
                      size_t body_len, int fd, uint64_t fd_size)
{
    BrCall *c = conn->call;
    char line[160], date[64], num[24];
    size_t len = 0, cap = 512 + body_len;
    char *buf = malloc(cap);
    struct tm tm;
    time_t t = time(NULL);

    if (!buf) {
        if (fd >= 0)
            close(fd);
        return -ENOMEM;
    }
    gmtime_r(&t, &tm);
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    /* In the order the documentation shows (docs/api.md): the common headers, the handler's,
     * then the length. */
    len = (size_t)snprintf(buf, cap, "HTTP/1.1 %u %s\r\n", status, br_http_reason(status));
    put_header(&buf, &len, &cap, "Date", date);
    if (conn->close_after || !conn->head.keep_alive)
        put_header(&buf, &len, &cap, "Connection", "close");
    if (type)
        put_header(&buf, &len, &cap, "Content-Type", type);
    if (c)
        put_header(&buf, &len, &cap, "X-Request-Id", c->actor.request_id);
    put_header(&buf, &len, &cap, "Cache-Control",
               c && c->cache_control ? c->cache_control : "no-store");
    put_header(&buf, &len, &cap, "X-Content-Type-Options", "nosniff");
    for (unsigned i = 0; c && i < c->n_reply_headers; i++)
        put_header(&buf, &len, &cap, c->reply_headers[i].name, c->reply_headers[i].value);
    /* 204 and 304 have no content, and no length either (RFC 9110, sections 8.6, 15.4.5). */
    if (status == 204 || status == 304) {
        body_len = 0;
        if (fd >= 0)
            close(fd);
        fd = -1;
    } else {
        snprintf(num, sizeof(num), "%llu",
                 (unsigned long long)(fd >= 0 ? fd_size : (uint64_t)body_len));
        put_header(&buf, &len, &cap, "Content-Length", num);
    }
    snprintf(line, sizeof(line), "\r\n");
    if (len + 2 + body_len > cap) {
        char *nb = realloc(buf, len + 2 + body_len);
        if (!nb) {
            free(buf);
            if (fd >= 0)
                close(fd);
            return -ENOMEM;
        }
        buf = nb;
        cap = len + 2 + body_len;
    }
    memcpy(buf + len, line, 2);
    len += 2;
    /* An answer to HEAD has the head of the answer to GET, without its body. */
    if (conn->head.method && strcmp(conn->head.method, "HEAD") == 0) {
        if (fd >= 0)
            close(fd);
        fd = -1;
        fd_size = 0;
        body_len = 0;
    }
    if (fd < 0 && body_len) {
        memcpy(buf + len, body, body_len);
        len += body_len;
    }
    free(conn->out);
    conn->out = buf;
    conn->out_len = len;
    conn->out_cap = len > cap ? len : cap;
    conn->out_off = 0;
    conn->out_fd = fd;
    conn->out_fd_left = fd >= 0 ? fd_size : 0;
    conn->out_fd_off = 0;
    conn->interim = false;
    if (c)
        c->status = status;
    return 0;
}

static int set_json_answer(BrHttp *h, Conn *conn, unsigned status, json_object *body)
{
    CmError err = {0};
    const char *text;
    size_t len;
    _cleanup_free_ char *copy = NULL;

    if (cm_json_write(body, &text, &len, &err) < 0) {
        /* A figure with no JSON spelling (NaN, Infinity) is a bug upstream: answer 500
         * rather than a document that strict parsers refuse. */
        BrCall *c = conn->call;
        cm_log_error("%s %s: %s at %s [%s]", c && c->route ? c->route->method : "-",
                     c && c->route ? c->route->path : "-", err.message, err.field,
                     c ? c->actor.request_id : "-");
        _cleanup_json_ json_object *o = json_object_new_object();
        json_object *e = json_object_new_object();
        json_object_object_add(e, "code", json_object_new_string("non_finite_number"));
        json_object_object_add(e, "message",
                               json_object_new_string("the answer held a number that is not "
                                                      "finite; this is a bug, logged"));
        json_object_object_add(e, "field", json_object_new_string(err.field));
        json_object_object_add(e, "request_id",
                               json_object_new_string(c ? c->actor.request_id : ""));
        json_object_object_add(o, "error", e);
        if (cm_json_write(o, &text, &len, NULL) < 0)
            return -EIO;
        status = 500;
    }
    copy = malloc(len + 1);
    if (!copy)
        return -ENOMEM;
    memcpy(copy, text, len);
    copy[len++] = '\n';
    count_status(h, status);
    return set_answer(conn, status, "application/json", copy, len, -1, 0);
}

/* The one place an error becomes a status and the JSON error body. */
static int set_error_answer(BrHttp *h, Conn *conn)
{
    BrCall *c = conn->call;
    _cleanup_json_ json_object *body = json_object_new_object();
    json_object *e = json_object_new_object();
    unsigned status;

    if (!cm_error_is_set(&c->err))
        cm_error_set(&c->err, CM_ERROR_INTERNAL, "", "internal error");
    status = cm_error_http_status(c->err.kind);
    /* Messages may quote what the client sent: keep the body valid UTF-8 whatever it was. */
    cm_utf8_sanitize(c->err.message);
    cm_utf8_sanitize(c->err.field);
    json_object_object_add(e, "code", json_object_new_string(c->err.code));
    json_object_object_add(e, "message", json_object_new_string(c->err.message));
    json_object_object_add(e, "field", json_object_new_string(c->err.field));
    json_object_object_add(e, "request_id", json_object_new_string(c->actor.request_id));
    json_object_object_add(body, "error", e);
    if (c->err.kind == CM_ERROR_UNAUTHENTICATED)
        br_reply_header(c, "WWW-Authenticate", "Bearer realm=\"cloudbroker\"");
    if (status == 503)
        br_reply_header(c, "Retry-After", RETRY_AFTER);
    /* A 5xx the client caused (an HTTP version or coding we do not serve, the body budget
     * spent: counted in /metrics) is no fault of ours: not logged as one. */
    if (status >= 500 && status != 501 && status != 505 && strcmp(c->err.code, "body_budget"))
        cm_log_error("%s %s → %u: %s [%s]",
                     c->route            ? c->route->method
                     : conn->head.method ? conn->head.method
                                         : "-",
                     c->route ? c->route->path : "-", status, c->err.message, c->actor.request_id);
    else
        cm_log_debug("%s → %u %s: %s (field %s) [%s]",
                     c->route          ? c->route->path
                     : conn->head.path ? conn->head.path
                                       : "-",
                     status, c->err.code, c->err.message, c->err.field, c->actor.request_id);
    return set_json_answer(h, conn, status, body);
}

static int set_reply_answer(BrHttp *h, Conn *conn)
{
    BrCall *c = conn->call;
    int r;

    if (c->reply_fd >= 0) {
        count_status(h, c->status);
        r = set_answer(conn, c->status, c->reply_type, NULL, 0, c->reply_fd, c->reply_fd_size);
        c->reply_fd = -1; /* the connection has it now */
        return r;
    }
    if (c->reply_text) {
        count_status(h, c->status);
        return set_answer(conn, c->status, c->reply_type, c->reply_text, strlen(c->reply_text), -1,
                          0);
    }
    if (!c->reply)
        c->reply = json_object_new_object();
    return set_json_answer(h, conn, c->status, c->reply);
}

/* ---- bodies ---- */

static int upload_open(BrCall *c)
{
    char path[4096];
    int fd;

    snprintf(path, sizeof(path), "%s/tmp/upload-XXXXXX", c->d->material_dir);
    fd = mkostemp(path, O_CLOEXEC);
    if (fd < 0)
        return cm_error_set(&c->err, CM_ERROR_INTERNAL, "", "cannot store the upload");
    c->upload.fd = fd;
    c->upload.tmp_path = strdup(path);
    c->hash = cm_sha256_new();
    if (!c->upload.tmp_path || !c->hash)
        return cm_error_set(&c->err, CM_ERROR_INTERNAL, "", "out of memory");
    return 0;
}

static int upload_write(BrCall *c, const char *data, size_t len)
{
    size_t off = 0;
    while (off < len) {
        ssize_t n = write(c->upload.fd, data + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return cm_error_set(&c->err, errno == ENOSPC ? CM_ERROR_UNAVAILABLE : CM_ERROR_INTERNAL,
                                "", "cannot store the upload: %s", strerror(errno));
        off += (size_t)n;
    }
    cm_sha256_update(c->hash, data, len);
    c->upload.size += len;
    return 0;
}

static bool body_in_memory(const BrCall *c)
{
    return c->route->body == BR_BODY_JSON || c->route->body == BR_BODY_JSON_OPTIONAL ||
           c->route->body == BR_BODY_JSON_RAW;
}

static Share **share_slot(BrHttp *h, int64_t key)
{
    Share **s = &h->shares[(uint64_t)key * 0x9E3779B97F4A7C15ULL >> 56 & (SHARE_BUCKETS - 1)];
    while (*s && (*s)->key != key)
        s = &(*s)->next;
    return s;
}

static int64_t share_key(const BrCall *c)
{
    return c->actor.role == BR_ROLE_AGENT ? -c->actor.host_id : c->actor.account_id;
}

static size_t per_token(BrHttp *h, const BrCall *c)
{
    size_t budget = h->d->config.body_budget_bytes;
    return MAX(budget / 4, MIN(budget, c->limit + 1));
}

/* At most half the workers (at least one) run one token's handlers at a time. */
static unsigned token_workers(const BrHttp *h)
{
    return MAX(1u, h->n_workers / 2);
}

/* The share functions below expect the caller to hold h->share_lock. */
static int share_attach(BrHttp *h, Conn *conn)
{
    BrCall *c = conn->call;
    Share **slot;

    if (conn->share)
        return 0;
    slot = share_slot(h, share_key(c));
    if (!*slot) {
        *slot = calloc(1, sizeof(Share));
        if (!*slot)
            return cm_error_set(&c->err, CM_ERROR_INTERNAL, "", "out of memory");
        (*slot)->key = share_key(c);
    }
    conn->share = *slot;
    conn->share->refs++;
    return 0;
}

static void share_unref(BrHttp *h, Share *s)
{
    if (--s->refs > 0)
        return;
    Share **slot = share_slot(h, s->key); /* the slot that holds it */
    *slot = s->next;
    free(s);
}

/*
 * Takes @n more bytes of the body budget for @conn: within the whole budget, and within a
 * quarter of it for the token (so that one token cannot spend it all), or one largest body
 * of the route when that is more.
 * Returns: 0, or -EAGAIN with the call's error set (503).
 */
static int budget_take(BrHttp *h, Conn *conn, size_t n)
{
    BrCall *c = conn->call;
    size_t budget = h->d->config.body_budget_bytes;
    bool refused;

    pthread_mutex_lock(&h->share_lock);
    if (share_attach(h, conn) < 0) {
        pthread_mutex_unlock(&h->share_lock);
        return -ENOMEM;
    }
    refused = h->budget_used + n > budget || conn->share->held + n > per_token(h, c);
    if (!refused) {
        h->budget_used += n;
        conn->share->held += n;
        conn->held += n;
        atomic_store(&h->counters.body_bytes_held, h->budget_used);
    }
    pthread_mutex_unlock(&h->share_lock);
    if (refused) {
        atomic_fetch_add(&h->counters.body_budget_refused, 1);
        return cm_error_set_code(&c->err, CM_ERROR_UNAVAILABLE, "body_budget", "",
                                 "the broker holds as many request bodies as it may "
                                 "(limits.body_budget_bytes): send this one again later");
    }
    return 0;
}

/* An answer waiting to be read is held memory too: counted for its token, never refused
 * (the handler has run), and given back once written. */
static void budget_charge(BrHttp *h, Conn *conn, size_t n)
{
    pthread_mutex_lock(&h->share_lock);
    if (share_attach(h, conn) >= 0) {
        h->budget_used += n;
        conn->share->held += n;
        conn->held += n;
        atomic_store(&h->counters.body_bytes_held, h->budget_used);
    }
    pthread_mutex_unlock(&h->share_lock);
}

/* Whether the token of @conn's call holds its whole share already, besides what this call
 * holds itself (bodies, and answers its clients do not read): then it gets no more work until
 * they are read. */
static bool share_spent(BrHttp *h, Conn *conn)
{
    Share **slot = share_slot(h, share_key(conn->call));
    size_t own = *slot && conn->share == *slot ? conn->held : 0;
    return *slot && (*slot)->held - own >= per_token(h, conn->call);
}

static void answer_error(BrHttp *h, Conn *conn, bool body_unread);

static void refuse_spent(BrHttp *h, Conn *conn, bool body_unread)
{
    atomic_fetch_add(&h->counters.body_budget_refused, 1);
    cm_error_set_code(&conn->call->err, CM_ERROR_UNAVAILABLE, "body_budget", "",
                      "this token holds as much memory as it may (request bodies, and answers "
                      "its clients have not read; limits.body_budget_bytes): try again later");
    answer_error(h, conn, body_unread);
}

static void budget_release(BrHttp *h, Conn *conn)
{
    if (!conn->share)
        return;
    pthread_mutex_lock(&h->share_lock);
    h->budget_used -= conn->held;
    conn->share->held -= conn->held;
    conn->held = 0;
    share_unref(h, conn->share);
    conn->share = NULL;
    atomic_store(&h->counters.body_bytes_held, h->budget_used);
    pthread_mutex_unlock(&h->share_lock);
}

/*
 * The handler's turn for a request without a body, asked by the worker that ran its head
 * phase, so that the handler runs in the same job: by body_complete()'s rule. When the token
 * must wait for a worker or holds its whole share, the loop decides as for any request.
 * Returns: true when the request now counts as running for its token.
 */
static bool share_run_now(BrHttp *h, Conn *conn)
{
    Share *s;
    bool run = false;

    pthread_mutex_lock(&h->share_lock);
    s = *share_slot(h, share_key(conn->call));
    if (!s || (s->running < token_workers(h) && !share_spent(h, conn))) {
        if (share_attach(h, conn) >= 0) {
            conn->share->refs++;
            conn->share->running++;
            conn->runs = conn->share;
            run = true;
        } else {
            cm_error_clear(&conn->call->err); /* no memory: the loop tries again */
        }
    }
    pthread_mutex_unlock(&h->share_lock);
    return run;
}

/* The body's bytes as they come: counted against the limit, kept, streamed or dropped. */
static int body_sink(void *ctx, const char *data, size_t len)
{
    Conn *conn = ctx;
    BrCall *c = conn->call;
    BrHttp *h = conn->http;

    if (c->len + len > c->limit)
        return cm_error_set(&c->err, CM_ERROR_TOO_LARGE, "",
                            "request body is larger than the limit of %zu bytes", c->limit);
    if (c->route->body == BR_BODY_UPLOAD) {
        c->len += len;
        return upload_write(c, data, len);
    }
    if (!body_in_memory(c)) {
        c->len += len; /* counted against the limit, then dropped */
        return 0;
    }
    if (c->len + len + 1 > c->cap) {
        size_t ncap = c->cap ? c->cap : 4096;
        while (ncap < c->len + len + 1)
            ncap *= 2;
        if (ncap > c->limit + 1)
            ncap = c->limit + 1;
        if (ncap > conn->held) {
            int r = budget_take(h, conn, ncap - conn->held);
            if (r < 0)
                return r;
        }
        char *nb = realloc(c->buf, ncap);
        if (!nb)
            return cm_error_set(&c->err, CM_ERROR_INTERNAL, "", "out of memory");
        c->buf = nb;
        c->cap = ncap;
    }
    memcpy(c->buf + c->len, data, len);
    c->len += len;
    c->buf[c->len] = 0;
    return 0;
}

/* ---- the two phases of a request (workers) ---- */

static int check_query(BrCall *c, const BrHttpHead *head)
{
    for (unsigned i = 0; i < head->n_query; i++) {
        const char *key = head->query[i].name, *value = head->query[i].value;
        if (!cm_utf8_valid(key, strlen(key)) || (value && !cm_utf8_valid(value, strlen(value))) ||
            strstr(key, "%00") || (value && strstr(value, "%00"))) {
            char field[64];
            snprintf(field, sizeof(field), "%s", key);
            return cm_error_set(&c->err, CM_ERROR_INVALID, field,
                                "query parameter '%s' must be UTF-8 text without NUL", field);
        }
    }
    return 0;
}

/* application/json exactly (any case), with optional whitespace and parameters after it:
 * "application/json; charset=utf-8" is JSON, "application/json-seq" is not. */
static bool is_json_media_type(const char *ct)
{
    ct += strspn(ct, " \t");
    if (strncasecmp(ct, "application/json", 16) != 0)
        return false;
    ct += 16;
    ct += strspn(ct, " \t");
    return *ct == '\0' || *ct == ';';
}

/* Everything that can be refused before a byte of the body is read. */
static int head_phase(BrHttp *h, Conn *conn)
{
    BrCall *c = conn->call;
    const BrHttpHead *head = &conn->head;
    char allow[128];
    int r;

    if (strcmp(head->path, "*") == 0) { /* OPTIONS *: what the server as a whole takes */
        snprintf(allow, sizeof(allow), "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS");
        c->route = &options_route;
        r = 0;
    } else {
        r = find_route(h, c, head->method, head->path, allow, sizeof(allow));
    }
    /* What no API route takes may be a file of the web console (br-console.c). */
    if (r < 0 && c->err.kind == CM_ERROR_NOT_FOUND) {
        bool options = strcmp(head->method, "OPTIONS") == 0;
        if (br_console_route(c, options ? "GET" : head->method, head->path)) {
            cm_error_clear(&c->err);
            r = 0;
            snprintf(allow, sizeof(allow), "GET, HEAD, OPTIONS");
            if (options)
                c->route = &options_route;
        } else if (br_console_route(c, "GET", head->path)) {
            cm_error_clear(&c->err);
            snprintf(allow, sizeof(allow), "GET, HEAD, OPTIONS");
            r = cm_error_set(&c->err, CM_ERROR_METHOD, "", "method %s is not allowed here",
                             head->method);
        }
    }
    if (r < 0 || c->route == &options_route) {
        if (c->route == &options_route || c->err.kind == CM_ERROR_METHOD)
            br_reply_header(c, "Allow", allow);
        if (r < 0)
            return r;
    }
    if (c->route->roles) {
        r = authenticate(c);
        if (r < 0)
            return r;
        if (!(c->route->roles & BR_ROLE_BIT(c->actor.role)))
            return cm_error_set(&c->err, CM_ERROR_FORBIDDEN, "", "the %s role may not %s %s",
                                br_role_to_string(c->actor.role), c->route->method, c->route->path);
    }
    r = check_query(c, head);
    if (r < 0)
        return r;
    if (body_in_memory(c)) {
        const char *ct = br_http_head_field(head, "Content-Type");
        if (ct && !is_json_media_type(ct))
            return cm_error_set(&c->err, CM_ERROR_MEDIA_TYPE, "Content-Type",
                                "request bodies are JSON: send Content-Type: application/json");
    }
    if (c->route->body == BR_BODY_UPLOAD) {
        _cleanup_(br_policies_unrefp) BrPolicies *p = br_daemon_policies(c->d);
        c->limit = (size_t)p->review.material_max_bytes;
    } else {
        c->limit = c->route->max_body ? c->route->max_body : c->d->config.max_body_bytes;
    }
    if (head->content_length >= 0 && (uint64_t)head->content_length > c->limit)
        return cm_error_set(&c->err, CM_ERROR_TOO_LARGE, "",
                            "request body of %lld bytes is larger than the limit of %zu",
                            (long long)head->content_length, c->limit);
    /* Refuse what the handler would refuse anyway before a byte of the body is read. */
    if (c->route->precheck) {
        r = c->route->precheck(c);
        if (r < 0)
            return r;
    }
    if (c->route->body == BR_BODY_UPLOAD)
        return upload_open(c);
    return 0;
}

static int final_phase(BrCall *c)
{
    int r;

    if (c->route->body == BR_BODY_JSON || (c->route->body == BR_BODY_JSON_OPTIONAL && c->len > 0)) {
        r = cm_json_parse(c->buf ? c->buf : "", c->len, &c->body, &c->err);
        if (r < 0)
            return r;
    } else if (c->route->body == BR_BODY_JSON_OPTIONAL) {
        c->body = json_object_new_object();
    }
    if (c->route->body != BR_BODY_NONE && c->route->body != BR_BODY_UPLOAD &&
        c->route->body != BR_BODY_JSON_RAW) {
        /* A body of `null` parses to NULL; the schema refuses it like any non-object. */
        r = br_schema_check(c->route->schema, c->body, &c->err);
        if (r < 0)
            return r;
        if (!c->body)
            return cm_error_set(&c->err, CM_ERROR_UNPROCESSABLE, "", "a JSON object is required");
    }
    if (c->route->body == BR_BODY_UPLOAD) {
        if (fsync(c->upload.fd) < 0)
            return cm_error_set(&c->err, CM_ERROR_INTERNAL, "", "cannot store the upload");
        cm_sha256_finish(c->hash, c->upload.sha256);
        c->hash = NULL;
    }
    return c->route->handler(c);
}

static bool has_body(const Conn *conn)
{
    return conn->head.content_length > 0 || conn->head.chunked;
}

static void run_job(BrHttp *h, Conn *conn)
{
    BrCall *c = conn->call;
    int r;

    conn->job_failed = false;
    if (conn->job == JOB_HEAD && head_phase(h, conn) < 0) {
        conn->job_failed = true;
        /* The client may already be sending the body we will not read. */
        conn->body_unread = has_body(conn);
        conn->close_after = conn->close_after || conn->body_unread;
        r = set_error_answer(h, conn);
    } else if (conn->job == JOB_HEAD && (has_body(conn) || !share_run_now(h, conn))) {
        return; /* the loop reads the body, or the token waits for its turn */
    } else {
        conn->job = JOB_FINAL; /* a request without a body: its handler in the same job */
        r = final_phase(c) < 0 ? set_error_answer(h, conn) : set_reply_answer(h, conn);
        /* The answer is in conn->out: the documents it was made from (a usage series' tree
         * is ten times its text) and the request's body are not kept while a slow client
         * reads it. (The loop gives their budget back.) */
        json_object_put(c->reply);
        json_object_put(c->body);
        free(c->reply_text);
        free(c->buf);
        c->reply = c->body = NULL;
        c->reply_text = c->buf = NULL;
        c->len = c->cap = 0;
        /* A large answer's tree was a great many small blocks: give their pages back, or
         * the heap keeps them (measured: 4.5 MiB answers built in parallel left 120 MiB). */
        if (conn->out_len > LARGE_ANSWER)
            malloc_trim(0);
    }
    if (r < 0)
        conn->close_after = true; /* no memory for an answer: the connection is closed */
}

static ssize_t conn_send(Conn *conn, const char *buf, size_t size);
static void call_free(BrHttp *h, Conn *conn);

/*
 * The worker that made an answer sends what the socket takes at once, so that a small answer
 * goes out without a turn of the loop; the loop writes the rest, and a file. (The connection
 * is the worker's until it is on the done list: nobody else touches its socket or TLS.)
 */
static void send_now(Conn *conn)
{
    if (!conn->out || conn->out_fd >= 0)
        return;
    while (conn->out_off < conn->out_len) {
        ssize_t n = conn_send(conn, conn->out + conn->out_off, conn->out_len - conn->out_off);
        if (n == -EAGAIN)
            return;
        if (n <= 0) {
            conn->send_failed = true;
            return;
        }
        conn->out_off += (size_t)n;
    }
}

/* A request answered: its call, head and answer let go. */
static void request_clear(BrHttp *h, Conn *conn)
{
    conn->served++;
    call_free(h, conn);
    br_http_head_clear(&conn->head);
    free(conn->out);
    conn->out = NULL;
    conn->out_len = conn->out_off = conn->out_cap = 0;
}

/*
 * The common end of a request on a kept-alive connection: its answer is out whole and nothing
 * more of the client's is read yet. The worker ends the request itself and gives the
 * connection back to the loop's epoll, waiting for its next request, so the loop hears of it
 * only when that request comes (no wake-up, no turn). Whatever needs the loop goes back on the
 * done list instead: an answer not yet out or a file, a connection to close, bytes of a next
 * request already read, TLS (the loop keeps the list of sessions with decrypted bytes), or a
 * token's calls waiting for this one's turn.
 * Returns: true when the connection is the loop's again, waiting for a request.
 */
static bool finish_in_worker(BrHttp *h, Conn *conn)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = conn};
    Share *s = conn->runs;

    if (conn->job != JOB_FINAL || !s || conn->tls || !conn->out || conn->send_failed ||
        conn->out_fd >= 0 || conn->out_off < conn->out_len || conn->close_after || conn->in_len)
        return false;
    pthread_mutex_lock(&h->share_lock);
    if (s->waiting) {
        pthread_mutex_unlock(&h->share_lock);
        return false;
    }
    s->running--;
    share_unref(h, s);
    conn->runs = NULL;
    pthread_mutex_unlock(&h->share_lock);

    /* As finish_request() does for a connection kept alive. */
    request_clear(h, conn);
    if (conn->in_cap > 4096) {
        free(conn->in);
        conn->in = NULL;
        conn->in_cap = 0;
    }
    conn->head_started = false;
    conn->body_deadline_ms = 0;
    conn->last_io_ms = now_ms();
    if (epoll_ctl(h->epoll_fd, EPOLL_CTL_ADD, conn->fd, &ev) < 0) {
        cm_log_warning("httpd: epoll_ctl: %s", strerror(errno));
        conn->send_failed = true; /* the loop closes it */
        return false;
    }
    conn->events = EPOLLIN;
    /* The last store: from here on the connection is the loop's. (An event the loop got
     * before it is ignored there and comes again: the interest is level-triggered.) */
    conn->state = CS_HEAD;
    return true;
}

static void *worker_main(void *arg)
{
    BrHttp *h = arg;

    for (;;) {
        Conn *conn;
        uint64_t one = 1;
        bool wake;

        pthread_mutex_lock(&h->q_lock);
        while (!h->q_head && !h->q_stopping)
            pthread_cond_wait(&h->q_cond, &h->q_lock);
        /* Stopping: the loop is gone and could not send an answer; queued requests are
         * closed with their connections. */
        conn = h->q_stopping ? NULL : h->q_head;
        if (conn) {
            h->q_head = conn->job_next;
            if (!h->q_head)
                h->q_tail = NULL;
        }
        pthread_mutex_unlock(&h->q_lock);
        if (!conn)
            break;
        run_job(h, conn);
        if (conn->job == JOB_FINAL || conn->job_failed)
            send_now(conn);
        if (finish_in_worker(h, conn))
            continue;
        /* One wake-up per list: until the loop takes it (it reads the eventfd first), a list
         * that is not empty has a wake-up on its way. */
        pthread_mutex_lock(&h->done_lock);
        wake = !h->done;
        conn->job_next = h->done;
        h->done = conn;
        pthread_mutex_unlock(&h->done_lock);
        if (wake && write(h->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
            cm_log_warning("httpd: cannot wake the event loop: %s", strerror(errno));
    }
    return NULL;
}

/* ---- connections (the loop) ---- */

static void set_events(BrHttp *h, Conn *conn, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.ptr = conn};
    int op = conn->events ? (events ? EPOLL_CTL_MOD : EPOLL_CTL_DEL) : EPOLL_CTL_ADD;

    if (events == conn->events)
        return;
    if (!conn->events && !events)
        return;
    if (epoll_ctl(h->epoll_fd, op, conn->fd, &ev) < 0)
        cm_log_warning("httpd: epoll_ctl: %s", strerror(errno));
    conn->events = events;
    /* TLS may already hold decrypted bytes that no epoll event will announce: the loop
     * reads once more, and pending_set() drops the connection when there are none. */
    if (conn->tls && (events & EPOLLIN) && !conn->pending) {
        conn->pending_next = h->pending;
        h->pending = conn;
        conn->pending = true;
    }
}

static Addr **addr_slot(BrHttp *h, const char *text)
{
    uint64_t hash = 1469598103934665603ULL;
    for (const char *p = text; *p; p++)
        hash = (hash ^ (unsigned char)*p) * 1099511628211ULL;
    Addr **a = &h->addrs[hash & (ADDR_BUCKETS - 1)];
    while (*a && strcmp((*a)->text, text) != 0)
        a = &(*a)->next;
    return a;
}

static void call_free(BrHttp *h, Conn *conn)
{
    BrCall *c = conn->call;

    if (!c)
        return;
    budget_release(h, conn);
    if (c->upload.fd >= 0)
        close(c->upload.fd);
    if (c->upload.tmp_path) {
        unlink(c->upload.tmp_path);
        free(c->upload.tmp_path);
    }
    if (c->reply_fd >= 0)
        close(c->reply_fd);
    cm_sha256_free(c->hash);
    json_object_put(c->body);
    json_object_put(c->reply);
    free(c->reply_text);
    free(c->buf);
    free(c);
    conn->call = NULL;
}

static void conn_close(BrHttp *h, Conn *conn)
{
    Addr **slot;

    if (conn->closed)
        return;
    conn->closed = true;
    call_free(h, conn);
    br_http_head_clear(&conn->head);
    set_events(h, conn, 0);
    if (conn->tls)
        gnutls_deinit(conn->tls);
    close(conn->fd);
    if (conn->out_fd >= 0)
        close(conn->out_fd);
    free(conn->in);
    free(conn->out);
    conn->in = conn->out = NULL;
    if (conn->pending) {
        Conn **p = &h->pending;
        while (*p != conn)
            p = &(*p)->pending_next;
        *p = conn->pending_next;
    }
    if (conn->prev)
        conn->prev->next = conn->next;
    else
        h->first = conn->next;
    if (conn->next)
        conn->next->prev = conn->prev;
    else
        h->last = conn->prev;
    h->n_conns--;
    if (conn->addr_prev)
        conn->addr_prev->addr_next = conn->addr_next;
    else
        conn->addr->first = conn->addr_next;
    if (conn->addr_next)
        conn->addr_next->addr_prev = conn->addr_prev;
    slot = addr_slot(h, conn->addr->text); /* the slot that holds it */
    if (--conn->addr->conns == 0) {
        *slot = conn->addr->next;
        free(conn->addr);
        h->n_addrs--;
    }
    atomic_store(&h->counters.connections_open, h->n_conns);
    conn->addr = NULL;
    conn->next = h->grave;
    h->grave = conn;
}

static void bury(BrHttp *h)
{
    while (h->grave) {
        Conn *c = h->grave;
        h->grave = c->next;
        free(c);
    }
}

/* Reads what is there: >0 bytes, 0 at the end, -EAGAIN, or another negative errno. */
static ssize_t conn_recv(Conn *conn, char *buf, size_t size)
{
    if (conn->tls) {
        ssize_t n = gnutls_record_recv(conn->tls, buf, size);
        if (n >= 0)
            return n;
        if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
            return -EAGAIN;
        if (n == GNUTLS_E_PREMATURE_TERMINATION)
            return 0;
        return -EPROTO;
    }
    for (;;) {
        ssize_t n = recv(conn->fd, buf, size, 0);
        if (n >= 0)
            return n;
        if (errno == EINTR)
            continue;
        return errno == EAGAIN || errno == EWOULDBLOCK ? -EAGAIN : -errno;
    }
}

static ssize_t conn_send(Conn *conn, const char *buf, size_t size)
{
    if (conn->tls) {
        ssize_t n = gnutls_record_send(conn->tls, buf, size);
        if (n >= 0)
            return n;
        if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
            return -EAGAIN;
        return -EPROTO;
    }
    for (;;) {
        ssize_t n = send(conn->fd, buf, size, MSG_NOSIGNAL);
        if (n >= 0)
            return n;
        if (errno == EINTR)
            continue;
        return errno == EAGAIN || errno == EWOULDBLOCK ? -EAGAIN : -errno;
    }
}

static void conn_write(BrHttp *h, Conn *conn);
static void process_head(BrHttp *h, Conn *conn);
static void process_body(BrHttp *h, Conn *conn, const char *data, size_t len);

static void start_write(BrHttp *h, Conn *conn)
{
    conn->state = CS_WRITE;
    conn->last_io_ms = now_ms();
    set_events(h, conn, EPOLLOUT);
    conn_write(h, conn);
}

/* An answer made here, in the loop: an error before or while the body came. */
static void answer_error(BrHttp *h, Conn *conn, bool body_unread)
{
    conn->close_after = true;
    conn->body_unread = body_unread;
    if (set_error_answer(h, conn) < 0) {
        conn_close(h, conn);
        return;
    }
    start_write(h, conn);
}

/* A request that failed before it had a call (a bad head, a timeout): one is made for it. */
static void answer_early(BrHttp *h, Conn *conn, const CmError *err)
{
    if (!conn->call) {
        conn->call = calloc(1, sizeof(BrCall));
        if (!conn->call) {
            conn_close(h, conn);
            return;
        }
        conn->call->d = h->d;
        conn->call->conn = conn;
        conn->call->upload.fd = -1;
        conn->call->reply_fd = -1;
        atomic_fetch_add(&h->counters.requests, 1);
        set_client_and_id(h, conn, conn->call);
    }
    conn->call->err = *err;
    answer_error(h, conn, true);
}

static void dispatch(BrHttp *h, Conn *conn, JobKind kind)
{
    conn->job = kind;
    conn->state = CS_JOB;
    conn->job_next = NULL;
    set_events(h, conn, 0);
    pthread_mutex_lock(&h->q_lock);
    if (h->q_tail)
        h->q_tail->job_next = conn;
    else
        h->q_head = conn;
    h->q_tail = conn;
    pthread_cond_signal(&h->q_cond);
    pthread_mutex_unlock(&h->q_lock);
}

static int in_reserve(Conn *conn, size_t n)
{
    if (conn->in_len + n <= conn->in_cap)
        return 0;
    size_t ncap = conn->in_cap ? conn->in_cap : 4096;
    while (ncap < conn->in_len + n)
        ncap *= 2;
    char *nb = realloc(conn->in, ncap);
    if (!nb)
        return -ENOMEM;
    conn->in = nb;
    conn->in_cap = ncap;
    return 0;
}

static void in_consume(Conn *conn, size_t n)
{
    memmove(conn->in, conn->in + n, conn->in_len - n);
    conn->in_len -= n;
}

/* The answer is out: the next request, or the end of the connection. */
static void finish_request(BrHttp *h, Conn *conn)
{
    if (conn->interim) {
        /* "100 Continue" went out: now the body. */
        conn->interim = false;
        conn->state = CS_BODY;
        conn->last_io_ms = now_ms();
        set_events(h, conn, EPOLLIN);
        if (conn->in_len) {
            _cleanup_free_ char *copy = malloc(conn->in_len);
            size_t n = conn->in_len;
            if (!copy) {
                conn_close(h, conn);
                return;
            }
            memcpy(copy, conn->in, n);
            conn->in_len = 0;
            process_body(h, conn, copy, n);
        }
        return;
    }
    request_clear(h, conn);
    if (conn->close_after) {
        if (conn->body_unread && !conn->tls) {
            /* Closing with unread bytes would reset the connection and could destroy the
             * answer before the client reads it: read and drop for a while first. */
            shutdown(conn->fd, SHUT_WR);
            conn->state = CS_LINGER;
            conn->lingered = 0;
            conn->linger_until_ms = now_ms() + LINGER_MS;
            set_events(h, conn, EPOLLIN);
            return;
        }
        conn_close(h, conn);
        return;
    }
    conn->state = CS_HEAD;
    conn->head_started = false;
    conn->body_deadline_ms = 0;
    conn->last_io_ms = now_ms();
    set_events(h, conn, EPOLLIN);
    if (conn->in_len) {
        conn->head_started = true;
        conn->started_ms = conn->last_io_ms;
        process_head(h, conn);
    } else if (conn->in_cap > 4096) {
        /* An idle connection keeps no large buffer. */
        free(conn->in);
        conn->in = NULL;
        conn->in_cap = 0;
    }
}

static void conn_write(BrHttp *h, Conn *conn)
{
    for (;;) {
        ssize_t n;
        if (conn->out_off == conn->out_len && conn->out_fd >= 0 && conn->out_fd_left) {
            size_t want = conn->out_fd_left < READ_CHUNK ? (size_t)conn->out_fd_left : READ_CHUNK;
            if (conn->out_cap < want) {
                char *nb = realloc(conn->out, READ_CHUNK);
                if (!nb) {
                    conn_close(h, conn);
                    return;
                }
                conn->out = nb;
                conn->out_cap = READ_CHUNK;
            }
            n = pread(conn->out_fd, conn->out, want, (off_t)conn->out_fd_off);
            if (n <= 0) {
                cm_log_error("httpd: cannot read the file being sent: %s",
                             n < 0 ? strerror(errno) : "it is shorter than it was");
                conn_close(h, conn);
                return;
            }
            conn->out_len = (size_t)n;
            conn->out_off = 0;
            conn->out_fd_off += (uint64_t)n;
            conn->out_fd_left -= (uint64_t)n;
        }
        if (conn->out_off == conn->out_len) {
            if (conn->out_fd >= 0) {
                close(conn->out_fd);
                conn->out_fd = -1;
            }
            finish_request(h, conn);
            return;
        }
        n = conn_send(conn, conn->out + conn->out_off, conn->out_len - conn->out_off);
        if (n == -EAGAIN)
            return;
        if (n <= 0) {
            conn_close(h, conn);
            return;
        }
        conn->out_off += (size_t)n;
        conn->last_io_ms = now_ms();
    }
}

/* A new call for the head just parsed, handed to a worker. */
static void start_request(BrHttp *h, Conn *conn)
{
    BrCall *c = calloc(1, sizeof(*c));

    if (!c) {
        conn_close(h, conn);
        return;
    }
    c->d = h->d;
    c->conn = conn;
    c->upload.fd = -1;
    c->reply_fd = -1;
    conn->call = c;
    /* HTTP/1.0, or Connection: close: the answer says "Connection: close", and so it is. */
    conn->close_after = !conn->head.keep_alive;
    conn->body_unread = false;
    atomic_fetch_add(&h->counters.requests, 1);
    set_client_and_id(h, conn, c);
    dispatch(h, conn, JOB_HEAD);
}

static void process_head(BrHttp *h, Conn *conn)
{
    CmError err = {0};
    ssize_t end = br_http_head_end(conn->in, conn->in_len, &h->lim, &err);

    if (end == 0)
        return;
    if (end > 0 && br_http_parse_head(conn->in, (size_t)end, &h->lim, &conn->head, &err) >= 0) {
        in_consume(conn, (size_t)end);
        start_request(h, conn);
        return;
    }
    atomic_fetch_add(&h->counters.bad_requests, 1);
    answer_early(h, conn, &err);
}

/*
 * The handler's turn: at most half the workers (at least one) run one token's calls at a
 * time, the others wait in order, so that a token asking for costly answers in parallel
 * cannot keep every worker from everyone else.
 */
static void body_complete(BrHttp *h, Conn *conn)
{
    Share *s;
    bool spent = false, wait = false;
    int r;

    conn->body_deadline_ms = 0;
    pthread_mutex_lock(&h->share_lock);
    r = share_attach(h, conn);
    if (r >= 0)
        spent = share_spent(h, conn);
    if (r >= 0 && !spent) {
        s = conn->share;
        s->refs++;
        conn->runs = s;
        wait = s->running >= token_workers(h);
        if (wait) {
            conn->waiting_next = NULL;
            if (s->waiting_tail)
                s->waiting_tail->waiting_next = conn;
            else
                s->waiting = conn;
            s->waiting_tail = conn;
        } else {
            s->running++;
        }
    }
    pthread_mutex_unlock(&h->share_lock);
    if (r < 0) {
        conn_close(h, conn);
    } else if (spent) {
        refuse_spent(h, conn, false);
    } else if (wait) {
        conn->state = CS_JOB;
        set_events(h, conn, 0);
    } else {
        dispatch(h, conn, JOB_FINAL);
    }
}

/* A final job ended: the next call of its token, if one waits, takes its place. */
static void runs_done(BrHttp *h, Conn *conn)
{
    Share *s = conn->runs;
    Conn *next, *refused = NULL, **tail = &refused;

    if (!s)
        return;
    conn->runs = NULL;
    pthread_mutex_lock(&h->share_lock);
    /* (this call holds a reference: @s outlives this loop) */
    while ((next = s->waiting)) {
        s->waiting = next->waiting_next;
        if (!s->waiting)
            s->waiting_tail = NULL;
        if (!share_spent(h, next))
            break; /* it takes the place in `running` */
        /* its token's answers are still unread: refused at its turn */
        next->runs = NULL;
        share_unref(h, s);
        next->waiting_next = NULL;
        *tail = next;
        tail = &next->waiting_next;
    }
    if (!next)
        s->running--;
    share_unref(h, s);
    pthread_mutex_unlock(&h->share_lock);
    if (next)
        dispatch(h, next, JOB_FINAL);
    /* (outside the lock: an answer may end its connection, which gives its budget back) */
    while ((next = refused)) {
        refused = next->waiting_next;
        refuse_spent(h, next, false);
    }
}

/* Body bytes: to the call; what comes after the body is kept for the next request. */
static void process_body(BrHttp *h, Conn *conn, const char *data, size_t len)
{
    CmError err = {0};
    size_t used;
    bool done;

    if (conn->body_chunked) {
        ssize_t n = br_http_chunked_feed(&conn->chunk, data, len, body_sink, conn, &err);
        if (n < 0) {
            if (!cm_error_is_set(&conn->call->err))
                conn->call->err = err;
            answer_error(h, conn, true);
            return;
        }
        used = (size_t)n;
        done = conn->chunk.done;
    } else {
        used = len < conn->body_left ? len : (size_t)conn->body_left;
        if (used && body_sink(conn, data, used) < 0) {
            answer_error(h, conn, true);
            return;
        }
        conn->body_left -= used;
        done = conn->body_left == 0;
    }
    if (used < len) {
        if (in_reserve(conn, len - used) < 0) {
            conn_close(h, conn);
            return;
        }
        memcpy(conn->in + conn->in_len, data + used, len - used);
        conn->in_len += len - used;
    }
    if (done)
        body_complete(h, conn);
}

/* The head was accepted by a worker: reserve for the body and read it. */
static void begin_body(BrHttp *h, Conn *conn)
{
    BrCall *c = conn->call;
    const BrHttpHead *head = &conn->head;

    if (!head->chunked && head->content_length <= 0) {
        body_complete(h, conn);
        return;
    }
    conn->body_chunked = head->chunked;
    conn->body_left = head->chunked ? 0 : (uint64_t)head->content_length;
    memset(&conn->chunk, 0, sizeof(conn->chunk));
    conn->chunk.limit = c->limit;
    if (body_in_memory(c)) {
        /* Its length is known: the memory is taken from the budget at once, or refused. */
        if (!head->chunked) {
            size_t need = (size_t)head->content_length + 1;
            if (budget_take(h, conn, need) < 0) {
                answer_error(h, conn, true);
                return;
            }
            c->buf = malloc(need);
            if (!c->buf) {
                cm_error_set(&c->err, CM_ERROR_INTERNAL, "", "out of memory");
                answer_error(h, conn, true);
                return;
            }
            c->cap = need;
        }
        conn->body_deadline_ms = now_ms() + (int64_t)h->d->config.body_timeout_seconds * 1000;
    }
    conn->state = CS_BODY;
    conn->last_io_ms = now_ms();
    if (head->expect_continue && conn->in_len == 0) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        free(conn->out);
        conn->out = strdup(cont);
        if (!conn->out) {
            conn_close(h, conn);
            return;
        }
        conn->out_len = conn->out_cap = sizeof(cont) - 1;
        conn->out_off = 0;
        conn->interim = true;
        start_write(h, conn);
        return;
    }
    set_events(h, conn, EPOLLIN);
    if (conn->in_len) {
        _cleanup_free_ char *copy = malloc(conn->in_len);
        size_t n = conn->in_len;
        if (!copy) {
            conn_close(h, conn);
            return;
        }
        memcpy(copy, conn->in, n);
        conn->in_len = 0;
        process_body(h, conn, copy, n);
    }
}

static void job_done(BrHttp *h, Conn *conn)
{
    if (conn->job == JOB_HEAD && !conn->job_failed) {
        bool spent;
        pthread_mutex_lock(&h->share_lock);
        spent = share_spent(h, conn);
        pthread_mutex_unlock(&h->share_lock);
        if (spent) {
            refuse_spent(h, conn, has_body(conn));
            return;
        }
        begin_body(h, conn);
        return;
    }
    runs_done(h, conn);
    if (!conn->out || conn->send_failed) {
        conn_close(h, conn);
        return;
    }
    /* The request's body is gone (run_job); the answer is held until it is read. */
    budget_release(h, conn);
    if (conn->out_fd < 0 && conn->out_off == conn->out_len) {
        finish_request(h, conn); /* the worker sent it all */
        return;
    }
    /* The whole answer is held until it is out, whatever part of it the worker sent. */
    if (conn->out_fd < 0)
        budget_charge(h, conn, conn->out_len);
    start_write(h, conn);
}

static bool reading(const Conn *conn)
{
    return conn->state == CS_HEAD || conn->state == CS_BODY || conn->state == CS_LINGER;
}

static void pending_set(BrHttp *h, Conn *conn)
{
    bool want = conn->tls && reading(conn) && gnutls_record_check_pending(conn->tls) > 0;
    if (want == conn->pending)
        return;
    if (want) {
        conn->pending_next = h->pending;
        h->pending = conn;
    } else {
        Conn **p = &h->pending;
        while (*p != conn)
            p = &(*p)->pending_next;
        *p = conn->pending_next;
    }
    conn->pending = want;
}

static void conn_read(BrHttp *h, Conn *conn)
{
    size_t turn = 0;

    while (!conn->closed && turn < READ_PER_TURN && reading(conn)) {
        char *dst;
        size_t room;
        ssize_t n;

        if (conn->state == CS_HEAD) {
            /* A head never needs more than the limit (a longer one is refused once there),
             * and a slow one gets its buffer a page at a time. */
            size_t want = h->lim.max_head_bytes + 1;
            if (conn->in_len >= want || in_reserve(conn, MIN(want - conn->in_len, 4096)) < 0) {
                conn_close(h, conn);
                return;
            }
            dst = conn->in + conn->in_len;
            room = MIN(conn->in_cap - conn->in_len, want - conn->in_len);
        } else {
            dst = h->scratch;
            room = READ_CHUNK;
        }
        n = conn_recv(conn, dst, room);
        if (n == -EAGAIN)
            break;
        if (n <= 0) {
            /* The client went away (or broke TLS): nothing is answered to nobody. */
            conn_close(h, conn);
            return;
        }
        turn += (size_t)n;
        conn->last_io_ms = now_ms();
        switch (conn->state) {
        case CS_HEAD:
            if (!conn->head_started) {
                conn->head_started = true;
                conn->started_ms = conn->last_io_ms;
            }
            conn->in_len += (size_t)n;
            process_head(h, conn);
            break;
        case CS_BODY:
            process_body(h, conn, dst, (size_t)n);
            break;
        default: /* CS_LINGER */
            conn->lingered += (size_t)n;
            if (conn->lingered > LINGER_BYTES) {
                conn_close(h, conn);
                return;
            }
            break;
        }
    }
    if (!conn->closed)
        pending_set(h, conn);
}

static void conn_handshake(BrHttp *h, Conn *conn)
{
    int r = gnutls_handshake(conn->tls);

    if (r == GNUTLS_E_SUCCESS) {
        conn->state = CS_HEAD;
        conn->last_io_ms = now_ms();
        set_events(h, conn, EPOLLIN);
        conn_read(h, conn);
        return;
    }
    if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED) {
        set_events(h, conn, gnutls_record_get_direction(conn->tls) ? EPOLLOUT : EPOLLIN);
        return;
    }
    cm_log_debug("httpd: TLS handshake with %s failed: %s", conn->addr->text, gnutls_strerror(r));
    conn_close(h, conn);
}

static void conn_event(BrHttp *h, Conn *conn, uint32_t ev)
{
    if (conn->closed)
        return; /* closed earlier in this turn (evicted, say) */
    switch (conn->state) {
    case CS_TLS:
        conn_handshake(h, conn);
        break;
    case CS_HEAD:
    case CS_BODY:
    case CS_LINGER:
        conn_read(h, conn);
        break;
    case CS_WRITE:
        if (ev & (EPOLLERR | EPOLLHUP))
            conn_close(h, conn);
        else
            conn_write(h, conn);
        break;
    case CS_JOB:
        break; /* not registered while a worker has it */
    }
}

/* ---- admission: limits and fair shares ---- */

/* The connection to give up for a newcomer: from the address that holds the most, one that
 * waits for a request (never one with a request under way), the longest waiting. */
static Conn *pick_victim(BrHttp *h, const Addr *except)
{
    Conn *best = NULL;
    for (Conn *c = h->first; c; c = c->next) {
        if (c->addr == except || c->addr->trusted)
            continue;
        if (c->state != CS_HEAD && c->state != CS_TLS && c->state != CS_LINGER)
            continue;
        if (!best || c->addr->conns > best->addr->conns)
            best = c;
    }
    return best;
}

/* Best effort, before closing: a connection refused at once still gets the JSON error. */
static void refuse(BrHttp *h, int fd, const char *code, const char *message)
{
    char body[512], resp[1024];
    int blen, rlen;

    if (!h->tls_on) {
        blen = snprintf(body, sizeof(body),
                        "{\"error\":{\"code\":\"%s\",\"message\":\"%s\",\"field\":\"\","
                        "\"request_id\":\"%s-%06llx\"}}\n",
                        code, message, h->id_prefix,
                        (unsigned long long)atomic_fetch_add(&h->next_id, 1));
        rlen = snprintf(resp, sizeof(resp),
                        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                        "Content-Length: %d\r\nRetry-After: " RETRY_AFTER "\r\n"
                        "Cache-Control: no-store\r\nConnection: close\r\n\r\n%s",
                        blen, body);
        if (send(fd, resp, (size_t)rlen, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
            cm_log_debug("httpd: refusing a connection: %s", strerror(errno));
    }
    atomic_fetch_add(&h->counters.connections_refused, 1);
    close(fd);
}

/*
 * Closes the connections of @a whose client is gone but whose end the loop has not read yet
 * (it may come later in this turn's events, or the next turn's): a client that closed its
 * connections and opened another at once is not refused for connections it no longer has.
 * Only connections that wait for a request are looked at, with a peek that takes nothing.
 */
static void reap_gone(BrHttp *h, Addr *a)
{
    a->conns++; /* @a outlives the closes below */
    for (Conn *c = a->first, *next; c; c = next) {
        char byte;
        ssize_t n;
        next = c->addr_next;
        if (c->closed || !(c->state == CS_TLS || c->state == CS_LINGER ||
                           (c->state == CS_HEAD && c->in_len == 0)))
            continue;
        n = recv(c->fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
            conn_close(h, c);
    }
    a->conns--;
}

static void admit(BrHttp *h, int fd, const char *text)
{
    const BrConfig *cfg = &h->d->config;
    Addr **slot = addr_slot(h, text), *a = *slot;
    Conn *conn;
    int one = 1;

    if (!a) {
        a = calloc(1, sizeof(*a));
        if (!a) {
            close(fd);
            return;
        }
        snprintf(a->text, sizeof(a->text), "%s", text);
        a->trusted = br_net_match(cfg->trusted_proxies, cfg->n_trusted_proxies, text);
        *slot = a;
        h->n_addrs++;
    }
    if ((!a->trusted && a->conns >= cfg->max_connections_per_ip) ||
        h->n_conns >= cfg->max_connections)
        reap_gone(h, a);
    if (!a->trusted && a->conns >= cfg->max_connections_per_ip) {
        refuse(h, fd, "too_many_connections",
               "this address holds as many connections as it may (limits.connections_per_ip)");
        goto unused;
    }
    if (h->n_conns >= cfg->max_connections) {
        /* A trusted proxy speaks for many clients: it always may take a connection. */
        unsigned share = cfg->max_connections / (h->n_addrs ? h->n_addrs : 1);
        Conn *victim = a->trusted || a->conns < share ? pick_victim(h, a) : NULL;
        if (victim && !a->trusted && victim->addr->conns <= a->conns + 1)
            victim = NULL;
        if (!victim) {
            refuse(h, fd, "too_many_connections",
                   "the broker holds as many connections as it may (limits.connections)");
            goto unused;
        }
        atomic_fetch_add(&h->counters.connections_evicted, 1);
        conn_close(h, victim);
    }
    conn = calloc(1, sizeof(*conn));
    if (!conn) {
        close(fd);
        goto unused;
    }
    conn->http = h;
    conn->fd = fd;
    conn->out_fd = -1;
    conn->addr = a;
    a->conns++;
    conn->addr_next = a->first;
    if (a->first)
        a->first->addr_prev = conn;
    a->first = conn;
    conn->started_ms = conn->last_io_ms = now_ms();
    conn->prev = h->last;
    if (h->last)
        h->last->next = conn;
    else
        h->first = conn;
    h->last = conn;
    h->n_conns++;
    atomic_fetch_add(&h->counters.connections_accepted, 1);
    atomic_store(&h->counters.connections_open, h->n_conns);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (h->tls_on) {
        if (gnutls_init(&conn->tls, GNUTLS_SERVER | GNUTLS_NONBLOCK) < 0 ||
            gnutls_priority_set(conn->tls, h->prio) < 0 ||
            gnutls_credentials_set(conn->tls, GNUTLS_CRD_CERTIFICATE, h->cred) < 0) {
            conn_close(h, conn);
            return;
        }
        gnutls_transport_set_int(conn->tls, fd);
        gnutls_handshake_set_timeout(conn->tls, 0);
        conn->state = CS_TLS;
        set_events(h, conn, EPOLLIN);
        return;
    }
    conn->state = CS_HEAD;
    set_events(h, conn, EPOLLIN);
    return;
unused:
    if (a->conns == 0) {
        slot = addr_slot(h, text);
        *slot = a->next;
        free(a);
        h->n_addrs--;
    }
}

static void accept_all(BrHttp *h)
{
    for (int i = 0; i < 64; i++) {
        union {
            struct sockaddr sa;
            struct sockaddr_in in4;
            struct sockaddr_in6 in6;
        } sa;
        socklen_t len = sizeof(sa);
        char text[INET6_ADDRSTRLEN] = "unknown";
        int fd = accept4(h->listen_fd, &sa.sa, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);

        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /* Out of descriptors: stop accepting a moment instead of spinning. */
                cm_log_warning("httpd: cannot accept: %s", strerror(errno));
                h->accepting = false;
                h->accept_resume_ms = now_ms() + ACCEPT_PAUSE_MS;
                epoll_ctl(h->epoll_fd, EPOLL_CTL_DEL, h->listen_fd, NULL);
            }
            return;
        }
        if (sa.sa.sa_family == AF_INET)
            inet_ntop(AF_INET, &sa.in4.sin_addr, text, sizeof(text));
        else if (sa.sa.sa_family == AF_INET6)
            inet_ntop(AF_INET6, &sa.in6.sin6_addr, text, sizeof(text));
        admit(h, fd, text);
    }
}

/* Timers: every connection's deadline, checked a few times a second. */
static void sweep(BrHttp *h, int64_t now)
{
    const BrConfig *cfg = &h->d->config;
    int64_t head_ms = (int64_t)cfg->head_timeout_seconds * 1000;
    int64_t idle_ms = (int64_t)cfg->timeout_seconds * 1000;
    Conn *next;

    for (Conn *conn = h->first; conn; conn = next) {
        next = conn->next;
        switch (conn->state) {
        case CS_TLS:
            if (now - conn->started_ms > head_ms) {
                atomic_fetch_add(&h->counters.timeouts, 1);
                conn_close(h, conn);
            }
            break;
        case CS_HEAD:
            if (!conn->head_started && now - conn->last_io_ms > idle_ms) {
                conn_close(h, conn); /* idle: no request began */
            } else if (conn->head_started || conn->served == 0) {
                /* The whole head within its deadline, however slowly its bytes come. */
                if (now - conn->started_ms > head_ms) {
                    CmError err = {0};
                    atomic_fetch_add(&h->counters.timeouts, 1);
                    if (!conn->head_started) {
                        conn_close(h, conn); /* not a byte: nobody to answer */
                        break;
                    }
                    cm_error_set(&err, CM_ERROR_TIMEOUT, "",
                                 "the request head did not arrive within %u s "
                                 "(limits.head_timeout_seconds)",
                                 cfg->head_timeout_seconds);
                    answer_early(h, conn, &err);
                }
            }
            break;
        case CS_BODY:
            if ((conn->body_deadline_ms && now > conn->body_deadline_ms) ||
                now - conn->last_io_ms > idle_ms) {
                atomic_fetch_add(&h->counters.timeouts, 1);
                cm_error_set(&conn->call->err, CM_ERROR_TIMEOUT, "",
                             conn->body_deadline_ms && now > conn->body_deadline_ms
                                 ? "the request body did not arrive within %u s "
                                   "(limits.body_timeout_seconds)"
                                 : "the request body stopped coming for %u s "
                                   "(limits.timeout_seconds)",
                             conn->body_deadline_ms && now > conn->body_deadline_ms
                                 ? cfg->body_timeout_seconds
                                 : cfg->timeout_seconds);
                answer_error(h, conn, true);
            }
            break;
        case CS_WRITE:
            if (now - conn->last_io_ms > idle_ms)
                conn_close(h, conn);
            break;
        case CS_LINGER:
            if (now > conn->linger_until_ms)
                conn_close(h, conn);
            break;
        case CS_JOB:
            break;
        }
    }
    if (!h->accepting && now >= h->accept_resume_ms) {
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &h->listen_fd};
        if (epoll_ctl(h->epoll_fd, EPOLL_CTL_ADD, h->listen_fd, &ev) == 0)
            h->accepting = true;
    }
}

static void take_done(BrHttp *h)
{
    Conn *list, *next;
    uint64_t n;

    if (read(h->wake_fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
        cm_log_warning("httpd: eventfd: %s", strerror(errno));
    pthread_mutex_lock(&h->done_lock);
    list = h->done;
    h->done = NULL;
    pthread_mutex_unlock(&h->done_lock);
    /* Oldest first: the list was built by pushing. */
    Conn *rev = NULL;
    for (Conn *c = list; c; c = next) {
        next = c->job_next;
        c->job_next = rev;
        rev = c;
    }
    for (Conn *c = rev; c; c = next) {
        next = c->job_next;
        c->job_next = NULL;
        job_done(h, c);
    }
}

static void *loop_main(void *arg)
{
    BrHttp *h = arg;
    struct epoll_event evs[256];
    int64_t last_sweep = now_ms();

    while (!atomic_load(&h->stop)) {
        int n = epoll_wait(h->epoll_fd, evs, ELEMENTSOF(evs), h->pending ? 0 : SWEEP_MS);
        int64_t now;

        if (n < 0 && errno != EINTR) {
            cm_log_error("httpd: epoll_wait: %s", strerror(errno));
            break;
        }
        bool incoming = false;
        for (int i = 0; i < n; i++) {
            void *p = evs[i].data.ptr;
            if (p == &h->listen_fd)
                incoming = true;
            else if (p == &h->wake_fd)
                take_done(h);
            else
                conn_event(h, p, evs[i].events);
        }
        /* Newcomers last: the connections that ended in this turn's events are gone by
         * then, and do not count against the limits. */
        if (incoming)
            accept_all(h);
        /* TLS may hold decrypted bytes that no epoll event announces. */
        for (Conn *c = h->pending, *next; c; c = next) {
            next = c->pending_next;
            conn_read(h, c);
        }
        now = now_ms();
        if (now - last_sweep >= SWEEP_MS) {
            sweep(h, now);
            last_sweep = now;
        }
        bury(h);
    }
    return NULL;
}

/* ---- start and stop ---- */

static int tls_setup(BrHttp *h, CmError *err)
{
    _cleanup_free_ char *cert = NULL, *key = NULL;
    gnutls_datum_t c, k;
    int r;

    r = cm_read_file(h->d->config.tls_cert, 1 << 20, &cert, NULL);
    if (r >= 0)
        r = cm_read_file(h->d->config.tls_key, 1 << 20, &key, NULL);
    if (r < 0)
        return cm_error_set(err, CM_ERROR_INVALID, "tls",
                            "cannot read the TLS certificate or key: %s", strerror(-r));
    c = (gnutls_datum_t){(unsigned char *)cert, (unsigned)strlen(cert)};
    k = (gnutls_datum_t){(unsigned char *)key, (unsigned)strlen(key)};
    r = gnutls_certificate_allocate_credentials(&h->cred);
    if (r >= 0)
        r = gnutls_certificate_set_x509_key_mem(h->cred, &c, &k, GNUTLS_X509_FMT_PEM);
    explicit_bzero(key, strlen(key));
    if (r >= 0)
        r = gnutls_priority_init(&h->prio, "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2", NULL);
    if (r < 0)
        return cm_error_set(err, CM_ERROR_INVALID, "tls", "cannot use the TLS certificate: %s",
                            gnutls_strerror(r));
    h->tls_on = true;
    return 0;
}

/* Enough descriptors for every connection, a file for each worker and the database. */
static void raise_nofile(unsigned connections)
{
    struct rlimit rl;
    rlim_t want = (rlim_t)connections + 256;

    if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= want)
        return;
    rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur < want)
        cm_log_warning("httpd: %u connections need %llu descriptors; the limit is %llu",
                       connections, (unsigned long long)want, (unsigned long long)rl.rlim_cur);
}

static void http_free(BrHttp *h)
{
    if (!h)
        return;
    while (h->first)
        conn_close(h, h->first);
    bury(h);
    for (size_t i = 0; i < SHARE_BUCKETS; i++)
        while (h->shares[i]) {
            Share *s = h->shares[i];
            h->shares[i] = s->next;
            free(s);
        }
    if (h->listen_fd >= 0)
        close(h->listen_fd);
    if (h->epoll_fd >= 0)
        close(h->epoll_fd);
    if (h->wake_fd >= 0)
        close(h->wake_fd);
    if (h->cred)
        gnutls_certificate_free_credentials(h->cred);
    if (h->prio)
        gnutls_priority_deinit(h->prio);
    pthread_mutex_destroy(&h->q_lock);
    pthread_cond_destroy(&h->q_cond);
    pthread_mutex_destroy(&h->done_lock);
    pthread_mutex_destroy(&h->share_lock);
    free(h->workers);
    free(h->scratch);
    free(h);
}

static void stop_threads(BrHttp *h)
{
    uint64_t one = 1;

    if (h->loop_started) {
        atomic_store(&h->stop, true);
        if (write(h->wake_fd, &one, sizeof(one)) < 0)
            cm_log_warning("httpd: cannot wake the event loop: %s", strerror(errno));
        pthread_join(h->loop, NULL);
        h->loop_started = false;
    }
    pthread_mutex_lock(&h->q_lock);
    h->q_stopping = true;
    pthread_cond_broadcast(&h->q_cond);
    pthread_mutex_unlock(&h->q_lock);
    for (unsigned i = 0; i < h->n_workers; i++)
        pthread_join(h->workers[i], NULL);
    h->n_workers = 0;
}

int br_http_start(BrDaemon *d, CmError *err)
{
    _cleanup_free_ char *host = NULL;
    uint16_t port;
    union {
        struct sockaddr sa;
        struct sockaddr_in in4;
        struct sockaddr_in6 in6;
    } addr = {0};
    socklen_t addr_len;
    struct epoll_event ev;
    BrHttp *h;
    uint8_t rnd[4];
    int one = 1, r;

    if (cm_parse_listen(d->config.listen, &host, &port) < 0)
        return cm_error_set(err, CM_ERROR_INVALID, "listen", "listen address '%s' is not HOST:PORT",
                            d->config.listen);
    if (inet_pton(AF_INET, host, &addr.in4.sin_addr) == 1) {
        addr.in4.sin_family = AF_INET;
        addr.in4.sin_port = htons(port);
        addr_len = sizeof(addr.in4);
    } else if (inet_pton(AF_INET6, host, &addr.in6.sin6_addr) == 1) {
        addr.in6.sin6_family = AF_INET6;
        addr.in6.sin6_port = htons(port);
        addr_len = sizeof(addr.in6);
    } else {
        return cm_error_set(err, CM_ERROR_INVALID, "listen",
                            "listen host '%s' must be a numeric IPv4 or IPv6 address", host);
    }

    h = calloc(1, sizeof(*h));
    if (!h)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    h->d = d;
    h->listen_fd = h->epoll_fd = h->wake_fd = -1;
    pthread_mutex_init(&h->q_lock, NULL);
    pthread_cond_init(&h->q_cond, NULL);
    pthread_mutex_init(&h->done_lock, NULL);
    pthread_mutex_init(&h->share_lock, NULL);
    h->routes = br_api_routes(&h->n_routes);
    h->lim.max_head_bytes = d->config.max_header_bytes;
    h->lim.max_query_params = d->config.max_query_params;
    cm_random(rnd, sizeof(rnd));
    cm_hex(rnd, sizeof(rnd), h->id_prefix);
    h->scratch = malloc(READ_CHUNK);
    if (!h->scratch) {
        http_free(h);
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    }
    if (d->config.tls_cert && d->config.tls_key) {
        r = tls_setup(h, err);
        if (r < 0) {
            http_free(h);
            return r;
        }
    }
    raise_nofile(d->config.max_connections);
    /* Bodies of up to 32 MiB come and go: from their own mappings, always (glibc would
     * otherwise raise its mmap threshold after the first is freed, and keep the next ones in
     * the heap, copied on growth and never given back). */
    mallopt(M_MMAP_THRESHOLD, 256 * 1024);

    h->listen_fd = socket(addr.sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (h->listen_fd >= 0)
        setsockopt(h->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (h->listen_fd < 0 || bind(h->listen_fd, &addr.sa, addr_len) < 0 ||
        listen(h->listen_fd, 1024) < 0) {
        r = cm_error_set(err, CM_ERROR_UNAVAILABLE, "listen", "cannot listen on %s: %s",
                         d->config.listen, strerror(errno));
        http_free(h);
        return r;
    }
    addr_len = sizeof(addr);
    getsockname(h->listen_fd, &addr.sa, &addr_len);
    d->port = ntohs(addr.sa.sa_family == AF_INET ? addr.in4.sin_port : addr.in6.sin6_port);

    h->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    h->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (h->epoll_fd < 0 || h->wake_fd < 0) {
        r = cm_error_set(err, CM_ERROR_INTERNAL, "", "cannot start the HTTP server: %s",
                         strerror(errno));
        http_free(h);
        return r;
    }
    ev = (struct epoll_event){.events = EPOLLIN, .data.ptr = &h->listen_fd};
    epoll_ctl(h->epoll_fd, EPOLL_CTL_ADD, h->listen_fd, &ev);
    ev = (struct epoll_event){.events = EPOLLIN, .data.ptr = &h->wake_fd};
    epoll_ctl(h->epoll_fd, EPOLL_CTL_ADD, h->wake_fd, &ev);
    h->accepting = true;

    the_http = h;
    h->workers = calloc(d->config.threads, sizeof(pthread_t));
    if (!h->workers) {
        the_http = NULL;
        http_free(h);
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    }
    for (unsigned i = 0; i < d->config.threads; i++) {
        if (pthread_create(&h->workers[i], NULL, worker_main, h) != 0)
            break;
        h->n_workers++;
    }
    if (h->n_workers == d->config.threads && pthread_create(&h->loop, NULL, loop_main, h) == 0)
        h->loop_started = true;
    if (!h->loop_started) {
        stop_threads(h);
        the_http = NULL;
        http_free(h);
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "cannot start the HTTP threads");
    }
    d->http = h;
    cm_log_notice("listening on %s://%s:%u with %u threads", h->tls_on ? "https" : "http", host,
                  d->port, d->config.threads);
    return 0;
}

void br_http_stop(BrDaemon *d)
{
    BrHttp *h = d->http;

    if (!h)
        return;
    /* The loop stops first: nothing new is read; the workers then end the requests they
     * have, and every connection is closed. */
    stop_threads(h);
    pthread_mutex_lock(&h->done_lock);
    h->done = NULL;
    pthread_mutex_unlock(&h->done_lock);
    the_http = NULL;
    http_free(h);
    d->http = NULL;
}

const BrHttpCounters *br_http_counters(void)
{
    return the_http ? &the_http->counters : NULL;
}

/* ---- helpers for handlers ---- */

const char *br_call_query(BrCall *c, const char *key)
{
    const BrHttpHead *head = &((Conn *)c->conn)->head;
    for (unsigned i = 0; i < head->n_query; i++)
        if (strcmp(head->query[i].name, key) == 0)
            return head->query[i].value;
    return NULL;
}

const char *br_call_header(BrCall *c, const char *name)
{
    return br_http_head_field(&((Conn *)c->conn)->head, name);
}

int br_call_query_int(BrCall *c, const char *key, int64_t min, int64_t max, int64_t *ret)
{
    const char *v = br_call_query(c, key);
    int64_t n;
    if (!v)
        return 0;
    if (cm_parse_int64(v, min, max, &n) < 0)
        return cm_error_set(&c->err, CM_ERROR_INVALID, key,
                            "query parameter '%s' must be an integer from %lld to %lld", key,
                            (long long)min, (long long)max);
    *ret = n;
    return 0;
}

int br_reply(BrCall *c, unsigned status, json_object *body)
{
    json_object_put(c->reply);
    c->status = status;
    c->reply = body;
    return 0;
}

int br_reply_fd(BrCall *c, int fd, uint64_t size, const char *media_type)
{
    if (c->reply_fd >= 0)
        close(c->reply_fd);
    c->status = 200;
    c->reply_fd = fd;
    c->reply_fd_size = size;
    snprintf(c->reply_type, sizeof(c->reply_type), "%s", media_type);
    return 0;
}

int br_reply_text(BrCall *c, unsigned status, const char *media_type, char *text)
{
    free(c->reply_text);
    c->status = status;
    c->reply_text = text;
    snprintf(c->reply_type, sizeof(c->reply_type), "%s", media_type);
    return 0;
}

void br_reply_header(BrCall *c, const char *name, const char *value)
{
    if (c->n_reply_headers == ELEMENTSOF(c->reply_headers))
        return;
    snprintf(c->reply_headers[c->n_reply_headers].name,
             sizeof(c->reply_headers[c->n_reply_headers].name), "%s", name);
    snprintf(c->reply_headers[c->n_reply_headers].value,
             sizeof(c->reply_headers[c->n_reply_headers].value), "%s", value);
    c->n_reply_headers++;
}

BrPolicies *br_call_policies(BrCall *c)
{
    return br_daemon_policies(c->d);
}
