/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The HTTP(S) front: libmicrohttpd with a thread pool, routing by one table (br-api.c),
 * authentication, body limits and streaming, JSON Schema checks before any handler runs, and
 * one place that turns a CmError into a status and a JSON body.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <microhttpd.h>

#include "br-api.h"
#include "br-console.h"
#include "br-http.h"
#include "br-schemas.h"
#include "cm-crypto.h"
#include "cm-log.h"
#include "cm-util.h"

struct BrHttp {
    struct MHD_Daemon *mhd;
    BrDaemon *d;
    const BrRoute *routes;
    size_t n_routes;
    char *tls_cert_pem;
    char *tls_key_pem;
    char id_prefix[16];
    atomic_uint_fast64_t next_id;
    BrHttpCounters counters;
};

/* How much of an over-limit body is read and dropped before the connection is cut. */
#define BR_HTTP_MAX_DISCARD (64u * 1024 * 1024)

static BrHttp *the_http; /* for br_http_counters(); one server per process */

/*
 * Decodes %HH in paths and query values, except %00: a NUL would cut the C string short and
 * make "/v1/departments/1%00" read as "/v1/departments/1". Left encoded, it fails routing and
 * parameter checks like any other stray character.
 */
static size_t unescape(void *cls, struct MHD_Connection *conn, char *s)
{
    char *w = s;
    (void)cls;
    (void)conn;
    for (const char *r = s; *r; r++) {
        if (r[0] == '%' && isxdigit((unsigned char)r[1]) && isxdigit((unsigned char)r[2]) &&
            !(r[1] == '0' && r[2] == '0')) {
            char hex[3] = {r[1], r[2], 0};
            *w++ = (char)strtol(hex, NULL, 16);
            r += 2;
        } else {
            *w++ = *r;
        }
    }
    *w = 0;
    return (size_t)(w - s);
}

static int find_route(BrHttp *h, BrCall *c, const char *method, const char *url,
                      char *allow, size_t allow_size)
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
        if (strcmp(r->method, method) != 0) {
            size_t used = strlen(allow);
            snprintf(allow + used, allow_size - used, "%s%s", used ? ", " : "", r->method);
            continue;
        }
        c->route = r;
        memcpy(c->ids, ids, sizeof(ids));
        c->n_ids = n_ids;
        memcpy(c->name, name, sizeof(name));
        return 0;
    }
    if (path_matched)
        return cm_error_set(&c->err, CM_ERROR_METHOD, "", "method %s is not allowed here",
                            method);
    return cm_error_set(&c->err, CM_ERROR_NOT_FOUND, "", "no such resource");
}

static int authenticate(BrCall *c)
{
    const char *auth = MHD_lookup_connection_value(c->conn, MHD_HEADER_KIND,
                                                   MHD_HTTP_HEADER_AUTHORIZATION);
    char hash[CM_SHA256_HEX_LEN + 1];
    CmDb *db;
    sqlite3_stmt *stmt;
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
    if (strlen(auth) != CM_TOKEN_LEN || (strncmp(auth, CM_TOKEN_PREFIX, 4) != 0 &&
                                         strncmp(auth, CM_AGENT_TOKEN_PREFIX, 4) != 0))
        return cm_error_set(&c->err, CM_ERROR_UNAUTHENTICATED, "Authorization",
                            "the token is not valid");
    cm_token_hash(auth, hash);

    db = br_store_db(c->d->store, &c->err);
    if (!db)
        return -EIO;
    if (strncmp(auth, CM_AGENT_TOKEN_PREFIX, 4) == 0) {
        /* A host's agent: it acts for that host only. */
        stmt = cm_db_stmt(db, "SELECT id, name FROM hosts WHERE agent_token_hash = ?", &c->err);
        if (!stmt)
            return -EIO;
        CM_DB_BIND(stmt, hash);
        r = cm_db_step_row(db, stmt, &c->err);
        if (r > 0) {
            c->actor.account_id = 0;
            c->actor.role = BR_ROLE_AGENT;
            c->actor.host_id = sqlite3_column_int64(stmt, 0);
            snprintf(c->actor.name, sizeof(c->actor.name), "agent:%s", cm_db_col_text(stmt, 1));
        }
        sqlite3_reset(stmt);
        if (r < 0)
            return r;
        if (r == 0)
            return cm_error_set(&c->err, CM_ERROR_UNAUTHENTICATED, "Authorization",
                                "the token is not valid");
        return 0;
    }
    stmt = cm_db_stmt(db,
                      "SELECT id, name, role, department_id FROM accounts"
                      " WHERE token_hash = ? AND disabled = 0",
                      &c->err);
    if (!stmt)
        return -EIO;
    CM_DB_BIND(stmt, hash);
    r = cm_db_step_row(db, stmt, &c->err);
    if (r <= 0) {
        sqlite3_reset(stmt);
        if (r < 0)
            return r;
        return cm_error_set(&c->err, CM_ERROR_UNAUTHENTICATED, "Authorization",
                            "the token is not valid");
    }
    c->actor.account_id = sqlite3_column_int64(stmt, 0);
    snprintf(c->actor.name, sizeof(c->actor.name), "%s", cm_db_col_text(stmt, 1));
    c->actor.role = (BrRole)br_role_from_string(cm_db_col_text(stmt, 2));
    c->actor.department_id = sqlite3_column_int64(stmt, 3);
    sqlite3_reset(stmt);
    if ((int)c->actor.role < 0)
        return cm_error_set(&c->err, CM_ERROR_INTERNAL, "", "account has an unknown role");
    return 0;
}

static void set_client_and_id(BrHttp *h, BrCall *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const char *rid = MHD_lookup_connection_value(c->conn, MHD_HEADER_KIND, "X-Request-Id");
    bool rid_ok = rid && *rid && strlen(rid) < sizeof(c->actor.request_id);

    snprintf(c->actor.client, sizeof(c->actor.client), "unknown");
    if (ci && ci->client_addr) {
        const struct sockaddr *sa = ci->client_addr;
        char addr[INET6_ADDRSTRLEN] = "";
        if (sa->sa_family == AF_INET)
            inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, addr,
                      sizeof(addr));
        else if (sa->sa_family == AF_INET6)
            inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr,
                      addr, sizeof(addr));
        if (*addr)
            snprintf(c->actor.client, sizeof(c->actor.client), "%s", addr);
    }
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

static void free_buffer(void *p)
{
    free(p);
}

static void add_common_headers(BrCall *c, struct MHD_Response *resp)
{
    MHD_add_response_header(resp, "X-Request-Id", c->actor.request_id);
    MHD_add_response_header(resp, "Cache-Control",
                            c->cache_control ? c->cache_control : "no-store");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    for (unsigned i = 0; i < c->n_reply_headers; i++)
        MHD_add_response_header(resp, c->reply_headers[i].name, c->reply_headers[i].value);
}

static enum MHD_Result send_json(BrCall *c, unsigned status, json_object *body)
{
    size_t len;
    const char *text = cm_json_to_string(body, &len);
    char *copy = malloc(len + 1);
    struct MHD_Response *resp;
    enum MHD_Result ret;

    if (!copy)
        return MHD_NO;
    memcpy(copy, text, len);
    copy[len++] = '\n';
    resp = MHD_create_response_from_buffer_with_free_callback(len, copy, free_buffer);
    if (!resp) {
        free(copy);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    add_common_headers(c, resp);
    ret = MHD_queue_response(c->conn, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static void count_status(BrHttp *h, unsigned status)
{
    if (status < 300)
        atomic_fetch_add(&h->counters.status_2xx, 1);
    else if (status < 500)
        atomic_fetch_add(&h->counters.status_4xx, 1);
    else
        atomic_fetch_add(&h->counters.status_5xx, 1);
}

static enum MHD_Result send_error(BrHttp *h, BrCall *c)
{
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
    if (status >= 500)
        cm_log_error("%s %s → %u: %s [%s]", c->route ? c->route->method : "-",
                     c->route ? c->route->path : "-", status, c->err.message,
                     c->actor.request_id);
    else
        cm_log_debug("%s → %u %s: %s (field %s) [%s]", c->route ? c->route->path : "-", status,
                     c->err.code, c->err.message, c->err.field, c->actor.request_id);
    count_status(h, status);
    c->responded = true;
    return send_json(c, status, body);
}

static enum MHD_Result send_reply(BrHttp *h, BrCall *c)
{
    enum MHD_Result ret;

    c->responded = true;
    count_status(h, c->status);
    if (c->reply_fd >= 0) {
        struct MHD_Response *resp = MHD_create_response_from_fd64(c->reply_fd_size, c->reply_fd);
        if (!resp)
            return MHD_NO;
        c->reply_fd = -1; /* MHD closes it */
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, c->reply_type);
        add_common_headers(c, resp);
        ret = MHD_queue_response(c->conn, c->status, resp);
        MHD_destroy_response(resp);
        return ret;
    }
    if (c->reply_text) {
        struct MHD_Response *resp = MHD_create_response_from_buffer_with_free_callback(
            strlen(c->reply_text), c->reply_text, free_buffer);
        if (!resp)
            return MHD_NO;
        c->reply_text = NULL; /* MHD frees it */
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, c->reply_type);
        add_common_headers(c, resp);
        ret = MHD_queue_response(c->conn, c->status, resp);
        MHD_destroy_response(resp);
        return ret;
    }
    if (!c->reply)
        c->reply = json_object_new_object();
    return send_json(c, c->status, c->reply);
}

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

static int body_append(BrCall *c, const char *data, size_t len)
{
    if (c->len + len > c->limit)
        return cm_error_set(&c->err, CM_ERROR_TOO_LARGE, "",
                            "request body is larger than the limit of %zu bytes", c->limit);
    if (c->route->body == BR_BODY_UPLOAD) {
        c->len += len;
        return upload_write(c, data, len);
    }
    if (c->route->body == BR_BODY_NONE) {
        c->len += len; /* counted against the limit, then dropped */
        return 0;
    }
    if (c->len + len + 1 > c->cap) {
        size_t ncap = c->cap ? c->cap : 4096;
        while (ncap < c->len + len + 1)
            ncap *= 2;
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

static enum MHD_Result query_value_ok(void *cls, enum MHD_ValueKind kind, const char *key,
                                      const char *value)
{
    BrCall *c = cls;
    (void)kind;
    if (!cm_utf8_valid(key, strlen(key)) || (value && !cm_utf8_valid(value, strlen(value))) ||
        strstr(key, "%00") || (value && strstr(value, "%00"))) {
        char field[64];
        snprintf(field, sizeof(field), "%s", key);
        cm_error_set(&c->err, CM_ERROR_INVALID, field,
                     "query parameter '%s' must be UTF-8 text without NUL", field);
        return MHD_NO;
    }
    return MHD_YES;
}

static int check_query(BrCall *c)
{
    MHD_get_connection_values(c->conn, MHD_GET_ARGUMENT_KIND, query_value_ok, c);
    return cm_error_is_set(&c->err) ? -EINVAL : 0;
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

static int first_call(BrHttp *h, BrCall *c, const char *method, const char *url)
{
    char allow[128];
    const char *cl;
    int r;

    r = find_route(h, c, method, url, allow, sizeof(allow));
    /* What no API route takes may be a file of the web console (br-console.c). */
    if (r < 0 && c->err.kind == CM_ERROR_NOT_FOUND && br_console_route(c, method, url)) {
        cm_error_clear(&c->err);
        r = 0;
    }
    if (r < 0) {
        if (c->err.kind == CM_ERROR_METHOD)
            br_reply_header(c, "Allow", allow);
        return r;
    }
    if (c->route->roles) {
        r = authenticate(c);
        if (r < 0)
            return r;
        if (!(c->route->roles & BR_ROLE_BIT(c->actor.role)))
            return cm_error_set(&c->err, CM_ERROR_FORBIDDEN, "",
                                "the %s role may not %s %s", br_role_to_string(c->actor.role),
                                c->route->method, c->route->path);
    }

    r = check_query(c);
    if (r < 0)
        return r;
    if (c->route->body == BR_BODY_JSON || c->route->body == BR_BODY_JSON_OPTIONAL ||
        c->route->body == BR_BODY_JSON_RAW) {
        const char *ct = MHD_lookup_connection_value(c->conn, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_TYPE);
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
    cl = MHD_lookup_connection_value(c->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl) {
        int64_t n;
        if (cm_parse_int64(cl, 0, INT64_MAX, &n) < 0)
            return cm_error_set(&c->err, CM_ERROR_INVALID, "Content-Length",
                                "Content-Length is not a number");
        if ((uint64_t)n > c->limit)
            return cm_error_set(&c->err, CM_ERROR_TOO_LARGE, "",
                                "request body of %lld bytes is larger than the limit of %zu",
                                (long long)n, c->limit);
    }
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

static int final_call(BrCall *c)
{
    int r;

    if (c->route->body == BR_BODY_JSON ||
        (c->route->body == BR_BODY_JSON_OPTIONAL && c->len > 0)) {
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

static enum MHD_Result access_handler(void *cls, struct MHD_Connection *conn, const char *url,
                                      const char *method, const char *version,
                                      const char *upload_data, size_t *upload_data_size,
                                      void **con_cls)
{
    BrHttp *h = cls;
    BrCall *c = *con_cls;

    if (!c) {
        c = calloc(1, sizeof(*c));
        if (!c)
            return MHD_NO;
        c->d = h->d;
        c->conn = conn;
        c->upload.fd = -1;
        c->reply_fd = -1;
        *con_cls = c;
        atomic_fetch_add(&h->counters.requests, 1);
        set_client_and_id(h, c);
        if (first_call(h, c, method, url) < 0) {
            c->failed = true;
            return send_error(h, c);
        }
        return MHD_YES;
    }

    if (*upload_data_size) {
        if (c->failed) {
            /* libmicrohttpd cannot answer in the middle of a body: drop the rest, answer at
             * its end, and give up on a client that keeps sending far past the limit. */
            c->discarded += *upload_data_size;
            *upload_data_size = 0;
            return c->discarded > BR_HTTP_MAX_DISCARD ? MHD_NO : MHD_YES;
        }
        if (body_append(c, upload_data, *upload_data_size) < 0) {
            c->failed = true;
            if (c->upload.fd >= 0) {
                close(c->upload.fd);
                c->upload.fd = -1;
                unlink(c->upload.tmp_path);
            }
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (c->responded)
        return MHD_YES;
    if (c->failed)
        return send_error(h, c);

    if (final_call(c) < 0)
        return send_error(h, c);
    return send_reply(h, c);
}

static void request_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                              enum MHD_RequestTerminationCode toe)
{
    BrCall *c = *con_cls;

    if (!c)
        return;
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
    *con_cls = NULL;
}

static void mhd_logger(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t n = strlen(msg);
    while (n && msg[n - 1] == '\n')
        msg[--n] = 0;
    cm_log_debug("httpd: %s", msg);
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
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG |
                     MHD_USE_TURBO;
    BrHttp *h;
    uint8_t rnd[4];

    if (cm_parse_listen(d->config.listen, &host, &port) < 0)
        return cm_error_set(err, CM_ERROR_INVALID, "listen",
                            "listen address '%s' is not HOST:PORT", d->config.listen);
    if (inet_pton(AF_INET, host, &addr.in4.sin_addr) == 1) {
        addr.in4.sin_family = AF_INET;
        addr.in4.sin_port = htons(port);
    } else if (inet_pton(AF_INET6, host, &addr.in6.sin6_addr) == 1) {
        addr.in6.sin6_family = AF_INET6;
        addr.in6.sin6_port = htons(port);
        flags |= MHD_USE_IPv6;
    } else {
        return cm_error_set(err, CM_ERROR_INVALID, "listen",
                            "listen host '%s' must be a numeric IPv4 or IPv6 address", host);
    }

    h = calloc(1, sizeof(*h));
    if (!h)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    h->d = d;
    h->routes = br_api_routes(&h->n_routes);
    cm_random(rnd, sizeof(rnd));
    cm_hex(rnd, sizeof(rnd), h->id_prefix);

    if (d->config.tls_cert && d->config.tls_key) {
        int r = cm_read_file(d->config.tls_cert, 1 << 20, &h->tls_cert_pem, NULL);
        if (r >= 0)
            r = cm_read_file(d->config.tls_key, 1 << 20, &h->tls_key_pem, NULL);
        if (r < 0) {
            free(h->tls_cert_pem);
            free(h);
            return cm_error_set(err, CM_ERROR_INVALID, "tls",
                                "cannot read the TLS certificate or key: %s", strerror(-r));
        }
        flags |= MHD_USE_TLS;
    }

    struct MHD_OptionItem opts[] = {
        {MHD_OPTION_SOCK_ADDR, 0, &addr.sa},
        {MHD_OPTION_THREAD_POOL_SIZE, (intptr_t)d->config.threads, NULL},
        {MHD_OPTION_CONNECTION_LIMIT, (intptr_t)d->config.max_connections, NULL},
        {MHD_OPTION_PER_IP_CONNECTION_LIMIT, (intptr_t)d->config.max_connections_per_ip, NULL},
        {MHD_OPTION_CONNECTION_TIMEOUT, (intptr_t)d->config.timeout_seconds, NULL},
        /* Bounds the request line and headers: a longer header block is refused by MHD. */
        {MHD_OPTION_CONNECTION_MEMORY_LIMIT, (intptr_t)d->config.max_header_bytes, NULL},
        {MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024, NULL},
        {MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)request_completed, NULL},
        {MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)mhd_logger, NULL},
        {MHD_OPTION_STRICT_FOR_CLIENT, 1, NULL},
        {MHD_OPTION_UNESCAPE_CALLBACK, (intptr_t)unescape, NULL},
        {h->tls_cert_pem ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, 0, h->tls_cert_pem},
        {h->tls_key_pem ? MHD_OPTION_HTTPS_MEM_KEY : MHD_OPTION_END, 0, h->tls_key_pem},
        {h->tls_key_pem ? MHD_OPTION_HTTPS_PRIORITIES : MHD_OPTION_END, 0,
         (void *)"NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"},
        {MHD_OPTION_END, 0, NULL},
    };

    h->mhd = MHD_start_daemon(flags, port, NULL, NULL, access_handler, h, MHD_OPTION_ARRAY,
                              opts, MHD_OPTION_END);
    if (!h->mhd) {
        free(h->tls_cert_pem);
        free(h->tls_key_pem);
        free(h);
        return cm_error_set(err, CM_ERROR_UNAVAILABLE, "listen", "cannot listen on %s",
                            d->config.listen);
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_BIND_PORT);
    d->port = info ? info->port : port;
    d->http = h;
    the_http = h;
    cm_log_notice("listening on %s://%s:%u with %u threads",
                  h->tls_cert_pem ? "https" : "http", host, d->port, d->config.threads);
    return 0;
}

void br_http_stop(BrDaemon *d)
{
    BrHttp *h = d->http;
    if (!h)
        return;
    MHD_stop_daemon(h->mhd);
    if (h->tls_key_pem)
        explicit_bzero(h->tls_key_pem, strlen(h->tls_key_pem));
    free(h->tls_cert_pem);
    free(h->tls_key_pem);
    the_http = NULL;
    free(h);
    d->http = NULL;
}

const BrHttpCounters *br_http_counters(void)
{
    return the_http ? &the_http->counters : NULL;
}

/* ---- helpers for handlers ---- */

const char *br_call_query(BrCall *c, const char *key)
{
    return MHD_lookup_connection_value(c->conn, MHD_GET_ARGUMENT_KIND, key);
}

const char *br_call_header(BrCall *c, const char *name)
{
    return MHD_lookup_connection_value(c->conn, MHD_HEADER_KIND, name);
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
    c->status = MHD_HTTP_OK;
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
