/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <json-c/json.h>

#include "br-policy.h"
#include "br-role.h"
#include "br-tx.h"
#include "cm-error.h"
#include "cm-json.h"

typedef struct BrDaemon BrDaemon;

/* The statuses a handler answers with when it succeeds; errors take theirs from CmError's
 * table (br_reply_error()). */
enum {
    BR_HTTP_OK = 200,
    BR_HTTP_CREATED = 201,
    BR_HTTP_ACCEPTED = 202,
    BR_HTTP_NO_CONTENT = 204,
    BR_HTTP_NOT_MODIFIED = 304,
};

typedef struct BrCall BrCall;
typedef int (*BrHandler)(BrCall *c);

typedef enum {
    BR_BODY_NONE,          /* no body is read */
    BR_BODY_JSON,          /* a JSON document, checked against the route's schema */
    BR_BODY_JSON_OPTIONAL, /* as JSON, but an empty body stands for {} */
    BR_BODY_UPLOAD,        /* raw bytes streamed to a temporary file and hashed */
    BR_BODY_JSON_RAW,      /* a JSON document the handler parses and checks itself from
                            * c->buf and c->len, answering as the route's schema would */
} BrBodyKind;

typedef struct {
    const char *method;
    const char *path; /* "/v1/requests/{id}/materials/{name}": {id} is a positive integer */
    BrHandler handler;
    unsigned roles; /* BR_ROLE_BIT mask; 0 means no authentication at all */
    BrBodyKind body;
    const char *schema; /* for JSON bodies: the schema's file name without .json */
    BrHandler precheck; /* optional: runs before the body is read (uploads) */
    size_t max_body;    /* optional: a JSON body limit other than limits.body_bytes */
} BrRoute;

/* A streamed upload, complete when the handler runs. */
typedef struct {
    char *tmp_path;
    int fd;
    uint64_t size;
    char sha256[65];
} BrUpload;

#define BR_CALL_MAX_IDS 2

struct BrCall {
    BrDaemon *d;
    void *conn; /* br-http.c's connection */
    const BrRoute *route;
    BrActor actor;
    int64_t ids[BR_CALL_MAX_IDS];
    unsigned n_ids;
    char name[72]; /* the {name} path parameter (a SHA-256 in hex fits) */
    json_object *body;
    BrUpload upload;
    CmError err;
    int64_t session_id;        /* the console session the call came with; 0 for a token */
    const char *cache_control; /* static; NULL: "no-store", as every API answer */

    /* internal to br-http.c */
    char *buf;
    size_t len, cap, limit;
    void *hash;
    unsigned status;
    json_object *reply;
    char *reply_text;
    int reply_fd;
    uint64_t reply_fd_size;
    char reply_type[128];
    struct {
        char name[48], value[320];
    } reply_headers[10];
    unsigned n_reply_headers;
};

/** br_api_routes: Returns: the routing table and its length in @ret_n. */
const BrRoute *br_api_routes(size_t *ret_n);

/** br_call_query: Returns: the query parameter @key, or NULL. */
const char *br_call_query(BrCall *c, const char *key);

/** br_call_header: Returns: the request header @name, or NULL. */
const char *br_call_header(BrCall *c, const char *name);

/**
 * br_call_query_int:
 * Parses the optional query parameter @key within [@min, @max] into @ret (left alone when
 * absent). Returns: 0, or a negative errno with c->err naming the parameter.
 */
int br_call_query_int(BrCall *c, const char *key, int64_t min, int64_t max, int64_t *ret);

/** br_reply: sets the response to @status with @body (ownership taken). Returns: 0. */
int br_reply(BrCall *c, unsigned status, json_object *body);

/**
 * br_reply_fd:
 * Sets the response to @size bytes of the open file @fd (ownership taken) with @media_type.
 * Returns: 0.
 */
int br_reply_fd(BrCall *c, int fd, uint64_t size, const char *media_type);

/** br_reply_text: sets a text response (ownership of @text taken). Returns: 0. */
int br_reply_text(BrCall *c, unsigned status, const char *media_type, char *text);

/** br_reply_header: adds one extra response header. */
void br_reply_header(BrCall *c, const char *name, const char *value);

/** br_call_policies: Returns: a reference to the current policies. */
BrPolicies *br_call_policies(BrCall *c);

/** br_reply_no_content: sets an empty answer with @status (204). Returns: 0. */
int br_reply_no_content(BrCall *c, unsigned status);

/** br_call_is_department: Returns: true when the caller is scoped to one department. */
static inline bool br_call_is_department(const BrCall *c)
{
    return c->actor.role == BR_ROLE_DEPARTMENT;
}

/*
 * The routes: each br-api-*.c holds the routes of its resource and their handlers, so that an
 * endpoint is added in one file; br-api.c joins the tables.
 */
typedef struct {
    const BrRoute *routes;
    size_t n;
} BrRouteTable;

/**
 * br_api_whoami_reply:
 * Answers the caller's own document (GET /v1/whoami, and after PATCH /v1/whoami).
 * Returns: 0, or a negative errno with c->err set.
 */
int br_api_whoami_reply(BrCall *c);

/**
 * br_api_session_authenticate:
 * The console's half of authentication, for a call without an Authorization header: the
 * session cookie, and for a write its CSRF token and Origin. Fills c->actor and
 * c->session_id.
 * Returns: 1 when the call is authenticated by its cookie, 0 when it carries none, or a
 * negative errno with c->err set (401 invalid_session, 403 csrf_failed / origin_mismatch).
 */
int br_api_session_authenticate(BrCall *c);

/* Role masks the route tables share. */
#define BR_ROLES_READERS (BR_ROLES_REVIEWER | BR_ROLES_AUDITOR)

extern const BrRouteTable br_api_core_routes, br_api_metrics_routes, br_api_accounts_routes,
    br_api_departments_routes, br_api_systems_routes, br_api_requests_routes,
    br_api_materials_routes, br_api_hosts_routes, br_api_allocations_routes, br_api_jobs_routes,
    br_api_metering_routes, br_api_findings_routes, br_api_security_routes, br_api_reports_routes,
    br_api_audit_routes, br_api_session_routes, br_api_notifications_routes,
    br_api_dashboard_routes, br_api_events_routes, br_api_maintenance_routes,
    br_api_vendor_records_routes;

/* ---- shared by the handlers (br-api-util.c) ---- */

/** br_call_db: Returns: this thread's connection; NULL (c->err set) is taken by every store call. */
CmDb *br_call_db(BrCall *c);

/** br_call_scope: Returns: the caller's department when it is scoped to one, else 0. */
static inline int64_t br_call_scope(const BrCall *c)
{
    return c->actor.role == BR_ROLE_DEPARTMENT ? c->actor.department_id : 0;
}

/**
 * br_call_tx:
 * Runs @fn in one write transaction as the caller (br_tx_run()).
 * Returns: what @fn returned, or a negative errno with c->err set.
 */
int br_call_tx(BrCall *c, const char *name, BrTxFn fn, void *ctx);

/**
 * br_call_tx_shared:
 * Runs @fn in one shared write transaction under @key as the caller (br_tx_run_shared()).
 * Returns: what @fn returned, or a negative errno with c->err set.
 */
int br_call_tx_shared(BrCall *c, const char *name, int64_t key, BrTxFn fn, void *ctx);

/**
 * br_call_read:
 * Runs @fn in one read transaction (br_tx_read()): its statements see one snapshot.
 * Returns: what @fn returned, or a negative errno with c->err set.
 */
int br_call_read(BrCall *c, const char *name, BrTxFn fn, void *ctx);

/**
 * br_call_page:
 * Reads ?limit= (1..1000, default 100) and ?after= (an id cursor, default 0).
 * Returns: 0, or a negative errno with c->err naming the parameter.
 */
int br_call_page(BrCall *c, BrPage *ret);

/**
 * br_reply_list:
 * Replies {"items": @items, "next": cursor-or-null}: when the page is full, the cursor is
 * the last item's "id". Returns: 0.
 */
int br_reply_list(BrCall *c, json_object *items, const BrPage *page);

/**
 * br_api_page:
 * Reads ?limit= (1..1000, default 100) and ?after= (an id cursor, default 0).
 * Returns: 0, or a negative errno with c->err set.
 */
int br_api_page(BrCall *c, int64_t *ret_limit, int64_t *ret_after);

/**
 * br_api_list_reply:
 * Replies {"items": @items, "next": cursor-or-null}, where the cursor is @last_id when the
 * page was full. Returns: 0.
 */
int br_api_list_reply(BrCall *c, json_object *items, int64_t limit, int64_t last_id);

/** br_json_id_or_null: Returns: a JSON integer for @id > 0, else NULL (JSON null). */
json_object *br_json_id_or_null(int64_t id);

/** br_not_found: Returns: a negative errno with c->err set to "no such @what". */
int br_not_found(BrCall *c, const char *what, int64_t id);
