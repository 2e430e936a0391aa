/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <json-c/json.h>

#include "br-daemon.h"
#include "br-role.h"
#include "br-tx.h"
#include "cm-error.h"
#include "cm-json.h"

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
    void *conn; /* struct MHD_Connection */
    const BrRoute *route;
    BrActor actor;
    int64_t ids[BR_CALL_MAX_IDS];
    unsigned n_ids;
    char name[64]; /* the {name} path parameter */
    json_object *body;
    BrUpload upload;
    CmError err;
    int64_t session_id;        /* the console session the call came with; 0 for a token */
    const char *cache_control; /* static; NULL: "no-store", as every API answer */

    /* internal to br-http.c */
    char *buf;
    size_t len, cap, limit;
    void *hash;
    bool failed, responded;
    uint64_t discarded;
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

/* Handlers, one file per resource. */
int br_api_health(BrCall *c);
int br_api_whoami(BrCall *c);
int br_api_whoami_patch(BrCall *c);

/* People's sign-in to the console (br-api-session.c). */
int br_api_session_create(BrCall *c);
int br_api_session_get(BrCall *c);
int br_api_session_delete(BrCall *c);
int br_api_session_password(BrCall *c);
int br_api_password_setup(BrCall *c);
int br_api_accounts_sign_in_link(BrCall *c);

/**
 * br_api_session_authenticate:
 * The console's half of authentication, for a call without an Authorization header: the
 * session cookie, and for a write its CSRF token and Origin. Fills c->actor and
 * c->session_id.
 * Returns: 1 when the call is authenticated by its cookie, 0 when it carries none, or a
 * negative errno with c->err set (401 invalid_session, 403 csrf_failed / origin_mismatch).
 */
int br_api_session_authenticate(BrCall *c);

/* Notifications (br-api-notifications.c). */
int br_api_notifications_list(BrCall *c);
int br_api_notifications_read(BrCall *c);
int br_api_notifications_read_all(BrCall *c);

/* The reviewers' overview and approval queue (br-api-dashboard.c). */
int br_api_dashboard(BrCall *c);
int br_api_queue(BrCall *c);
int br_api_policies_get(BrCall *c);
int br_api_metrics(BrCall *c);

int br_api_departments_create(BrCall *c);
int br_api_departments_list(BrCall *c);
int br_api_departments_get(BrCall *c);
int br_api_departments_patch(BrCall *c);

int br_api_accounts_create(BrCall *c);
int br_api_accounts_list(BrCall *c);
int br_api_accounts_get(BrCall *c);
int br_api_accounts_patch(BrCall *c);
int br_api_accounts_rotate(BrCall *c);

int br_api_systems_create(BrCall *c);
int br_api_systems_list(BrCall *c);
int br_api_systems_get(BrCall *c);
int br_api_systems_patch(BrCall *c);

int br_api_requests_create(BrCall *c);
int br_api_requests_list(BrCall *c);
int br_api_requests_get(BrCall *c);
int br_api_requests_patch(BrCall *c);
int br_api_requests_submit(BrCall *c);
int br_api_requests_resubmit(BrCall *c);
int br_api_requests_withdraw(BrCall *c);
int br_api_requests_assign(BrCall *c);
int br_api_requests_opinion(BrCall *c);
int br_api_requests_decision(BrCall *c);
int br_api_materials_put(BrCall *c);
int br_api_materials_get(BrCall *c);
int br_api_materials_precheck(BrCall *c);

int br_api_requests_allocate(BrCall *c);
int br_api_requests_trial_result(BrCall *c);

int br_api_hosts_create(BrCall *c);
int br_api_hosts_list(BrCall *c);
int br_api_hosts_get(BrCall *c);
int br_api_hosts_patch(BrCall *c);
int br_api_hosts_rotate_agent_token(BrCall *c);

int br_api_samples_post(BrCall *c);
int br_api_instances_usage(BrCall *c);
int br_api_allocations_usage(BrCall *c);
int br_api_metering_rollup(BrCall *c);

int br_api_allocations_list(BrCall *c);
int br_api_allocations_get(BrCall *c);
int br_api_allocations_restore(BrCall *c);
int br_api_allocations_purge(BrCall *c);
int br_api_jobs_list(BrCall *c);
int br_api_jobs_get(BrCall *c);
int br_api_jobs_retry(BrCall *c);
int br_api_events_list(BrCall *c);

int br_api_findings_list(BrCall *c);
int br_api_findings_get(BrCall *c);
int br_api_findings_acknowledge(BrCall *c);
int br_api_findings_resolve(BrCall *c);
int br_api_findings_dismiss(BrCall *c);
int br_api_findings_change_request(BrCall *c);
int br_api_assessment_run(BrCall *c);
int br_api_vulnerabilities_create(BrCall *c);
int br_api_vulnerabilities_list(BrCall *c);
int br_api_incidents_patch(BrCall *c);
int br_api_vulnerabilities_patch(BrCall *c);
int br_api_incidents_create(BrCall *c);
int br_api_incidents_list(BrCall *c);
int br_api_backups_create(BrCall *c);
int br_api_backups_list(BrCall *c);
int br_api_reports_assessment(BrCall *c);
int br_api_reports_operations(BrCall *c);

int br_api_audit_list(BrCall *c);
int br_api_audit_verify(BrCall *c);

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
 * br_api_write_begin:
 * Opens the write transaction for this call. Returns: 0 and the connection in @ret_db, or a
 * negative errno with c->err set.
 */
int br_api_write_begin(BrCall *c, CmDb **ret_db);

/**
 * br_api_allocation_changeable:
 * A change or termination may be drafted on @allocation of the caller's department's @system:
 * it exists (422 unknown_reference), is active (409 invalid_state) and has no request still
 * open (409 open_request); errors name /allocation. Runs inside the call's transaction @db.
 * Returns: 0, or a negative errno with c->err set.
 */
int br_api_allocation_changeable(BrCall *c, CmDb *db, int64_t allocation, int64_t system);

/**
 * br_api_write_end:
 * Commits when @r >= 0, else rolls back. Returns: @r, or the commit's error.
 */
int br_api_write_end(BrCall *c, CmDb *db, int r);

/** br_api_read_db: Returns: this thread's connection, or NULL with c->err set. */
CmDb *br_api_read_db(BrCall *c);

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

/** br_json_col_text: Returns: column @i of @stmt as a JSON string, or NULL for SQL NULL. */
json_object *br_json_col_text(sqlite3_stmt *stmt, int i);

/** br_not_found: Returns: a negative errno with c->err set to "no such @what". */
int br_not_found(BrCall *c, const char *what, int64_t id);
