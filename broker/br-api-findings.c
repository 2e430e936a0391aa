/* SPDX-License-Identifier: Apache-2.0 */
/* Findings and their lifecycle; the assessment run; security and backup records per system. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <microhttpd.h>

#include "br-api.h"
#include "br-assess.h"
#include "br-daemon.h"
#include "br-request.h" /* -- changed by requests -- */
#include "cm-time.h"
#include "cm-util.h"

#define FINDING_COLUMNS                                                                            \
    "f.id, f.instance_id, i.name, f.allocation_id, f.department_id, f.system_id, f.kind,"          \
    " f.state, f.rule, f.evidence, f.recommendation, f.current_vcpus, f.current_memory_mib,"       \
    " f.recommended_vcpus, f.recommended_memory_mib, f.frees_vcpus, f.frees_memory_mib,"           \
    " f.first_found, f.last_found, f.state_changed_at, f.reason, f.change_request_id,"             \
    " (SELECT name FROM departments d WHERE d.id = f.department_id),"                              \
    " (SELECT name FROM systems s WHERE s.id = f.system_id)"

static json_object *parsed(sqlite3_stmt *s, int col)
{
    json_object *o = NULL;
    const char *t = cm_db_col_text(s, col);
    if (t)
        cm_json_parse(t, strlen(t), &o, NULL);
    return o;
}

static json_object *finding_from_row(sqlite3_stmt *s)
{
    json_object *o = json_object_new_object(), *sz;
    json_object_object_add(o, "id", json_object_new_int64(sqlite3_column_int64(s, 0)));
    json_object_object_add(o, "instance_id", json_object_new_int64(sqlite3_column_int64(s, 1)));
    json_object_object_add(o, "instance", br_json_col_text(s, 2));
    json_object_object_add(o, "allocation_id", json_object_new_int64(sqlite3_column_int64(s, 3)));
    json_object_object_add(o, "department_id", json_object_new_int64(sqlite3_column_int64(s, 4)));
    json_object_object_add(o, "department_name", br_json_col_text(s, 22));
    json_object_object_add(o, "system_id", json_object_new_int64(sqlite3_column_int64(s, 5)));
    json_object_object_add(o, "system_name", br_json_col_text(s, 23));
    json_object_object_add(o, "kind", br_json_col_text(s, 6));
    json_object_object_add(o, "state", br_json_col_text(s, 7));
    json_object_object_add(o, "rule", br_json_col_text(s, 8));
    json_object_object_add(o, "evidence", parsed(s, 9));
    json_object_object_add(o, "recommendation", parsed(s, 10));
    sz = json_object_new_object();
    json_object_object_add(sz, "vcpus", json_object_new_int64(sqlite3_column_int64(s, 15)));
    json_object_object_add(sz, "memory_mib", json_object_new_int64(sqlite3_column_int64(s, 16)));
    json_object_object_add(o, "frees", sz);
    json_object_object_add(o, "first_found", br_json_col_text(s, 17));
    json_object_object_add(o, "last_found", br_json_col_text(s, 18));
    json_object_object_add(o, "state_changed_at", br_json_col_text(s, 19));
    json_object_object_add(o, "reason", br_json_col_text(s, 20));
    json_object_object_add(o, "change_request_id", br_json_id_or_null(sqlite3_column_int64(s, 21)));
    return o;
}

static int finding_load(BrCall *c, CmDb *db, int64_t id, json_object **ret, char *ret_state,
                        size_t state_size)
{
    sqlite3_stmt *s = cm_db_stmt(db,
                                 "SELECT " FINDING_COLUMNS " FROM findings f JOIN instances i"
                                 " ON i.id = f.instance_id WHERE f.id = ?1"
                                 " AND (?2 = 0 OR f.department_id = ?2)",
                                 &c->err);
    int r;
    if (!s)
        return -EIO;
    CM_DB_BIND(s, id, br_call_is_department(c) ? c->actor.department_id : 0);
    r = cm_db_step_row(db, s, &c->err);
    if (r > 0) {
        if (ret)
            *ret = finding_from_row(s);
        if (ret_state)
            cm_strscpy(ret_state, state_size, cm_db_col_text(s, 7));
    }
    sqlite3_reset(s);
    if (r == 0)
        return br_not_found(c, "finding", id);
    return r < 0 ? r : 0;
}

static int br_api_findings_list(BrCall *c)
{
    CmDb *db = br_api_read_db(c);
    const char *state = br_call_query(c, "state"), *kind = br_call_query(c, "kind");
    int64_t limit, after, last = 0, dept = 0, alloc = 0;
    sqlite3_stmt *s;
    json_object *items;
    int r;

    if (!db)
        return -EIO;
    r = br_api_page(c, &limit, &after);
    if (r >= 0)
        r = br_call_query_int(c, "department", 1, INT64_MAX, &dept);
    if (r >= 0)
        r = br_call_query_int(c, "allocation", 1, INT64_MAX, &alloc);
    if (r < 0)
        return r;
    if (state && strcmp(state, "open") && strcmp(state, "acknowledged") &&
        strcmp(state, "resolved") && strcmp(state, "dismissed") && strcmp(state, "live"))
        return cm_error_set(&c->err, CM_ERROR_INVALID, "state",
                            "state is open, acknowledged, resolved, dismissed or live");
    if (kind && strcmp(kind, "idle") && strcmp(kind, "over_provisioned") &&
        strcmp(kind, "under_provisioned"))
        return cm_error_set(&c->err, CM_ERROR_INVALID, "kind",
                            "kind is idle, over_provisioned or under_provisioned");
    if (br_call_is_department(c))
        dept = c->actor.department_id;
    s = cm_db_stmt(db,
                   "SELECT " FINDING_COLUMNS " FROM findings f JOIN instances i"
                   " ON i.id = f.instance_id WHERE f.id > ?1 AND (?2 = 0 OR f.department_id = ?2)"
                   " AND (?3 IS NULL OR f.state = ?3 OR (?3 = 'live' AND f.state IN"
                   " ('open','acknowledged'))) AND (?4 IS NULL OR f.kind = ?4)"
                   " AND (?5 = 0 OR f.allocation_id = ?5) ORDER BY f.id LIMIT ?6",
                   &c->err);
    if (!s)
        return -EIO;
    CM_DB_BIND(s, after, dept, state, kind, alloc, limit);
    items = json_object_new_array();
    while ((r = cm_db_step_row(db, s, &c->err)) > 0) {
        last = sqlite3_column_int64(s, 0);
        json_object_array_add(items, finding_from_row(s));
    }
    sqlite3_reset(s);
    if (r < 0) {
        json_object_put(items);
        return r;
    }
    return br_api_list_reply(c, items, limit, last);
}

static int br_api_findings_get(BrCall *c)
{
    CmDb *db = br_api_read_db(c);
    json_object *o = NULL;
    int r;
    if (!db)
        return -EIO;
    r = finding_load(c, db, c->ids[0], &o, NULL, 0);
    if (r < 0)
        return r;
    return br_reply(c, MHD_HTTP_OK, o);
}

/* open → acknowledged → resolved | dismissed (with a reason). */
static int finding_move(BrCall *c, const char *to, const char *const *from, size_t n_from,
                        bool need_reason)
{
    int64_t id = c->ids[0];
    const char *reason = cm_json_get_str(c->body, "reason", NULL);
    char state[32] = "", at[CM_TIME_ISO_LEN + 1], action[48];
    json_object *o = NULL;
    sqlite3_stmt *s;
    bool ok = false;
    CmDb *db;
    int r;

    if (need_reason && !reason)
        return cm_error_set_code(&c->err, CM_ERROR_UNPROCESSABLE, "missing_field", "/reason",
                                 "a reason is required to dismiss a finding");
    cm_time_iso(cm_now_ms(), at);
    r = br_api_write_begin(c, &db);
    if (r < 0)
        return r;
    r = finding_load(c, db, id, NULL, state, sizeof(state));
    for (size_t i = 0; r >= 0 && i < n_from; i++)
        ok = ok || strcmp(state, from[i]) == 0;
    if (r >= 0 && !ok)
        r = cm_error_set_code(&c->err, CM_ERROR_CONFLICT, "invalid_transition", "state",
                              "finding %lld is '%s' and cannot become '%s'", (long long)id, state,
                              to);
    if (r >= 0) {
        s = cm_db_stmt(db,
                       "UPDATE findings SET state = ?, state_changed_at = ?,"
                       " reason = coalesce(?, reason) WHERE id = ?",
                       &c->err);
        r = s ? 0 : -EIO;
        if (r >= 0) {
            CM_DB_BIND(s, to, at, reason, id);
            r = cm_db_step_done(db, s, &c->err);
        }
    }
    snprintf(action, sizeof(action), "finding.%s", to);
    if (r >= 0)
        r = br_store_audit(c->d->store, db, &c->actor, action, "finding", id, to,
                           cm_json_to_string(c->body, NULL), &c->err);
    if (r >= 0)
        r = finding_load(c, db, id, &o, NULL, 0);
    r = br_api_write_end(c, db, r);
    if (r < 0) {
        json_object_put(o);
        return r;
    }
    return br_reply(c, MHD_HTTP_OK, o);
}

static int br_api_findings_acknowledge(BrCall *c)
{
    static const char *const from[] = {"open"};
    return finding_move(c, "acknowledged", from, 1, false);
}

static int br_api_findings_resolve(BrCall *c)
{
    static const char *const from[] = {"open", "acknowledged"};
    return finding_move(c, "resolved", from, 2, false);
}

static int br_api_findings_dismiss(BrCall *c)
{
    static const char *const from[] = {"open", "acknowledged"};
    return finding_move(c, "dismissed", from, 2, true);
}

/* A draft change (or, for an idle instance, termination) request sized as recommended. */
static int br_api_findings_change_request(BrCall *c)
{
    int64_t id = c->ids[0], alloc = 0, system = 0, instance = 0, rec_vcpus = 0, rec_mem = 0;
    int64_t req_id = 0, cur_vcpus = 0;
    char state[32] = "", kind[32] = "", at[CM_TIME_ISO_LEN + 1], just[512];
    _cleanup_json_ json_object *resources = NULL;
    bool restart = false, idle = false, scale_in = false;
    const char *req_kind;
    sqlite3_stmt *s;
    CmDb *db;
    int r;

    cm_time_iso(cm_now_ms(), at);
    r = br_api_write_begin(c, &db);
    if (r < 0)
        return r;
    r = finding_load(c, db, id, NULL, state, sizeof(state));
    if (r >= 0) {
        s = cm_db_stmt(db,
                       "SELECT allocation_id, system_id, instance_id, kind, recommended_vcpus,"
                       " recommended_memory_mib, change_request_id, current_vcpus"
                       " FROM findings WHERE id = ?",
                       &c->err);
        r = s ? 0 : -EIO;
        if (r >= 0) {
            CM_DB_BIND(s, id);
            if (sqlite3_step(s) == SQLITE_ROW) {
                alloc = sqlite3_column_int64(s, 0);
                system = sqlite3_column_int64(s, 1);
                instance = sqlite3_column_int64(s, 2);
                cm_strscpy(kind, sizeof(kind), cm_db_col_text(s, 3));
                rec_vcpus = sqlite3_column_int64(s, 4);
                rec_mem = sqlite3_column_int64(s, 5);
                req_id = sqlite3_column_int64(s, 6);
                cur_vcpus = sqlite3_column_int64(s, 7);
            }
            sqlite3_reset(s);
        }
    }
    idle = strcmp(kind, "idle") == 0;
    if (r >= 0 && strcmp(state, "open") != 0 && strcmp(state, "acknowledged") != 0)
        r = cm_error_set_code(&c->err, CM_ERROR_CONFLICT, "invalid_state", "state",
                              "finding %lld is '%s'", (long long)id, state);
    if (r >= 0 && req_id)
        r = cm_error_set_code(&c->err, CM_ERROR_CONFLICT, "duplicate", "change_request_id",
                              "finding %lld already has request %lld", (long long)id,
                              (long long)req_id);
    /* The same rules as POST /v1/requests: one open request per live allocation. */
    if (r >= 0)
        r = br_request_check_allocation(db, c->actor.department_id, alloc, system,
                                        &c->err); /* -- changed by requests -- */
    if (r >= 0 && idle) {
        /* An idle instance beside instances that are not idle: remove that one (scale-in),
         * not the allocation. */
        s = cm_db_stmt(db,
                       "SELECT EXISTS (SELECT 1 FROM instances i WHERE i.allocation_id = ?1"
                       " AND i.id != ?2 AND i.state != 'deleted' AND NOT EXISTS (SELECT 1"
                       " FROM findings f WHERE f.instance_id = i.id AND f.kind = 'idle'"
                       " AND f.state IN ('open','acknowledged')))",
                       &c->err);
        r = s ? 0 : -EIO;
        if (r >= 0) {
            CM_DB_BIND(s, alloc, instance);
            r = cm_db_step_row(db, s, &c->err);
            if (r > 0)
                scale_in = sqlite3_column_int(s, 0) != 0;
            sqlite3_reset(s);
        }
    }
    if (r >= 0 && (!idle || scale_in)) {
        /* Every instance as it is, the one of the finding at the recommended size, or (scale
         * in) left out of the list and named in resources.remove. */
        json_object *list = json_object_new_array(), *remove = NULL;
        resources = json_object_new_object();
        json_object_object_add(resources, "instances", list);
        if (scale_in) {
            remove = json_object_new_array();
            json_object_object_add(resources, "remove", remove);
        }
        s = cm_db_stmt(db,
                       "SELECT id, vcpus, memory_mib, disk_gib, image, idx FROM instances"
                       " WHERE allocation_id = ? AND state != 'deleted' ORDER BY idx",
                       &c->err);
        r = s ? 0 : -EIO;
        if (r >= 0) {
            CM_DB_BIND(s, alloc);
            while ((r = cm_db_step_row(db, s, &c->err)) > 0) {
                json_object *one;
                bool me = sqlite3_column_int64(s, 0) == instance;
                if (me && scale_in) {
                    json_object_array_add(remove,
                                          json_object_new_int64(sqlite3_column_int64(s, 5)));
                    continue;
                }
                one = json_object_new_object();
                json_object_object_add(
                    one, "vcpus",
                    json_object_new_int64(me ? rec_vcpus : sqlite3_column_int64(s, 1)));
                json_object_object_add(
                    one, "memory_mib",
                    json_object_new_int64(me ? rec_mem : sqlite3_column_int64(s, 2)));
                json_object_object_add(one, "disk_gib",
                                       json_object_new_int64(sqlite3_column_int64(s, 3)));
                json_object_object_add(one, "image", br_json_col_text(s, 4));
                json_object_array_add(list, one);
            }
            sqlite3_reset(s);
        }
        /* Fewer vCPUs can only be applied by a restart. */
        restart = !idle && rec_vcpus < cur_vcpus;
    }
    snprintf(just, sizeof(just), "%s of finding %lld (%s).",
             scale_in ? "Scale-in: removal of an idle instance while the others work, on the "
                        "advice"
             : idle   ? "Termination of an idle instance, on the advice"
                      : "Right-sizing as recommended",
             (long long)id, kind);
    req_kind = idle && !scale_in ? "termination" : "change";
    /* -- changed by requests: the one create of requests (br-request.c), as POST /v1/requests;
     * audited as that audits a draft, with what it asks for. -- */
    if (r >= 0) {
        BrTx tx = {.store = c->d->store, .db = db, .actor = &c->actor, .err = &c->err};
        _cleanup_json_ json_object *what = json_object_new_object();
        char comment[64];
        json_object_object_add(what, "system", json_object_new_int64(system));
        json_object_object_add(what, "kind", json_object_new_string(req_kind));
        json_object_object_add(what, "allocation", json_object_new_int64(alloc));
        if (resources)
            json_object_object_add(what, "resources", json_object_get(resources));
        json_object_object_add(what, "finding", json_object_new_int64(id));
        snprintf(comment, sizeof(comment), "from finding %lld", (long long)id);
        BrRequestDraft draft = {.department_id = c->actor.department_id,
                                .system_id = system,
                                .allocation_id = alloc,
                                .kind = (BrRequestKind)br_request_kind_from_string(req_kind),
                                .resources = resources,
                                .justification = just,
                                .restart_allowed = restart,
                                .comment = comment,
                                .detail = cm_json_to_string(what, NULL)};
        r = br_request_create(&tx, &draft, &req_id);
    }
    /* -- end of the change by requests -- */
    if (r >= 0) {
        s = cm_db_stmt(db, "UPDATE findings SET change_request_id = ? WHERE id = ?", &c->err);
        r = s ? 0 : -EIO;
        if (r >= 0) {
            CM_DB_BIND(s, req_id, id);
            r = cm_db_step_done(db, s, &c->err);
        }
    }
    if (r >= 0) {
        char detail[64];
        snprintf(detail, sizeof(detail), "{\"request_id\":%lld}", (long long)req_id);
        r = br_store_audit(c->d->store, db, &c->actor, "finding.change_request", "finding", id,
                           "draft", detail, &c->err);
    }
    r = br_api_write_end(c, db, r);
    if (r < 0)
        return r;
    json_object *o = json_object_new_object();
    json_object_object_add(o, "finding_id", json_object_new_int64(id));
    json_object_object_add(o, "request_id", json_object_new_int64(req_id));
    return br_reply(c, MHD_HTTP_CREATED, o);
}

static int br_api_assessment_run(BrCall *c)
{
    json_object *o = NULL;
    int r = br_assess_run(c->d, &c->actor, &o, &c->err);
    if (r < 0)
        return r;
    return br_reply(c, MHD_HTTP_OK, o);
}

/* ---- security and backup records ---- */

/* The system @id if the caller may see it (404 otherwise). */
static int system_scope(BrCall *c, CmDb *db, int64_t id)
{
    sqlite3_stmt *s = cm_db_stmt(db,
                                 "SELECT 1 FROM systems WHERE id = ?1"
                                 " AND (?2 = 0 OR department_id = ?2)",
                                 &c->err);
    int r;
    if (!s)
        return -EIO;
    CM_DB_BIND(s, id, br_call_is_department(c) ? c->actor.department_id : 0);
    r = cm_db_step_row(db, s, &c->err);
    sqlite3_reset(s);
    if (r == 0)
        return br_not_found(c, "system", id);
    return r < 0 ? r : 0;
}

static int check_time(BrCall *c, const char *key, const char *v, char out[CM_TIME_ISO_LEN + 1])
{
    int64_t ms;
    char field[64];
    if (!v) {
        out[0] = 0;
        return 0;
    }
    snprintf(field, sizeof(field), "/%s", key);
    if (cm_time_parse_iso(v, &ms) < 0)
        return cm_error_set_code(&c->err, CM_ERROR_UNPROCESSABLE, "schema_violation", field,
                                 "not a valid date or time");
    if (ms > cm_now_ms() + 86400000)
        return cm_error_set_code(&c->err, CM_ERROR_UNPROCESSABLE, "schema_violation", field,
                                 "lies in the future");
    cm_time_iso(ms, out);
    return 0;
}

typedef enum { REC_VULNERABILITY, REC_INCIDENT, REC_BACKUP } RecKind;

/* The columns of each kind of record, as the API shows them (NULL: none). */
#define REC_COLUMNS_VULNERABILITY                                                                  \
    "SELECT id, system_id, severity, title, status, found_at, fixed_at, created_at"                \
    " FROM vulnerabilities"
#define REC_COLUMNS_INCIDENT                                                                       \
    "SELECT id, system_id, severity, title, description, occurred_at, resolved_at, created_at"     \
    " FROM incidents"
#define REC_COLUMNS_BACKUP                                                                         \
    "SELECT id, system_id, location, taken_at, size_bytes, sha256, NULL, created_at FROM backups"
static const char *const rec_names[][8] = {
    {"id", "system_id", "severity", "title", "status", "found_at", "fixed_at", "created_at"},
    {"id", "system_id", "severity", "title", "description", "occurred_at", "resolved_at",
     "created_at"},
    {"id", "system_id", "location", "taken_at", "size_bytes", "sha256", NULL, "created_at"},
};

static json_object *record_json(sqlite3_stmt *s, RecKind kind)
{
    json_object *one = json_object_new_object();
    for (int k = 0; k < 8; k++) {
        if (!rec_names[kind][k])
            continue;
        json_object_object_add(one, rec_names[kind][k],
                               sqlite3_column_type(s, k) == SQLITE_INTEGER
                                   ? json_object_new_int64(sqlite3_column_int64(s, k))
                                   : br_json_col_text(s, k));
    }
    return one;
}

/* Record @id as stored (what a create or an update answers). */
static json_object *record_get(CmDb *db, RecKind kind, int64_t id, CmError *err)
{
    static const char *const sql[] = {
        REC_COLUMNS_VULNERABILITY " WHERE id = ?",
        REC_COLUMNS_INCIDENT " WHERE id = ?",
        REC_COLUMNS_BACKUP " WHERE id = ?",
    };
    json_object *o = NULL;
    sqlite3_stmt *s = cm_db_stmt(db, sql[kind], err);
    if (!s)
        return NULL;
    CM_DB_BIND(s, id);
    if (sqlite3_step(s) == SQLITE_ROW)
        o = record_json(s, kind);
    sqlite3_reset(s);
    return o;
}

/* An end that lies before its start (times in cm_time_iso form compare as strings). */
static int check_order(BrCall *c, const char *start_key, const char *start, const char *end_key,
                       const char *end)
{
    char field[64];
    if (!start[0] || !end[0] || strcmp(end, start) >= 0)
        return 0;
    snprintf(field, sizeof(field), "/%s", end_key);
    return cm_error_set_code(&c->err, CM_ERROR_UNPROCESSABLE, "schema_violation", field,
                             "%s lies before %s (%s)", end_key, start_key, start);
}

static int record_create(BrCall *c, RecKind kind)
{
    int64_t system = c->ids[0], id = 0;
    char at[CM_TIME_ISO_LEN + 1], t1[CM_TIME_ISO_LEN + 1], t2[CM_TIME_ISO_LEN + 1];
    json_object *o = NULL;
    sqlite3_stmt *s;
    CmDb *db;
    int r;

    cm_time_iso(cm_now_ms(), at);
    switch (kind) {
    case REC_VULNERABILITY:
        r = check_time(c, "found_at", cm_json_get_str(c->body, "found_at", NULL), t1);
        if (r >= 0)
            r = check_time(c, "fixed_at", cm_json_get_str(c->body, "fixed_at", NULL), t2);
        break;
    case REC_INCIDENT:
        r = check_time(c, "occurred_at", cm_json_get_str(c->body, "occurred_at", NULL), t1);
        if (r >= 0)
            r = check_time(c, "resolved_at", cm_json_get_str(c->body, "resolved_at", NULL), t2);
        break;
    default:
        r = check_time(c, "taken_at", cm_json_get_str(c->body, "taken_at", NULL), t1);
        t2[0] = 0;
    }
    if (r >= 0 && kind == REC_VULNERABILITY) {
        const char *status = cm_json_get_str(c->body, "status", "open");
        if (strcmp(status, "fixed") == 0 && !t2[0])
            cm_strscpy(t2, sizeof(t2), at); /* fixed now, as a PATCH to "fixed" says */
        else if (strcmp(status, "fixed") != 0 && t2[0])
            r = cm_error_set_code(&c->err, CM_ERROR_UNPROCESSABLE, "schema_violation", "/fixed_at",
                                  "fixed_at is only for a fixed vulnerability");
        if (r >= 0)
            r = check_order(c, "found_at", t1, "fixed_at", t2);
    }
    if (r >= 0 && kind == REC_INCIDENT)
        r = check_order(c, "occurred_at", t1, "resolved_at", t2);
    if (r < 0)
        return r;
    r = br_api_write_begin(c, &db);
    if (r < 0)
        return r;
    r = system_scope(c, db, system);
    if (r >= 0) {
        static const char *const sql[] = {
            "INSERT INTO vulnerabilities(system_id, severity, title, status, found_at, fixed_at,"
            " recorded_by, created_at, updated_at) VALUES (?,?,?,?,?,nullif(?, ''),?,?,?)",
            "INSERT INTO incidents(system_id, severity, title, description, occurred_at,"
            " resolved_at, recorded_by, created_at) VALUES (?,?,?,?,?,nullif(?, ''),?,?)",
            "INSERT INTO backups(system_id, location, taken_at, size_bytes, sha256, recorded_by,"
            " created_at) VALUES (?,?,?,?,?,?,?)",
        };
        s = cm_db_stmt(db, sql[kind], &c->err);
        r = s ? 0 : -EIO;
        if (r >= 0) {
            if (kind == REC_VULNERABILITY)
                CM_DB_BIND(s, system, cm_json_get_str(c->body, "severity", ""),
                           cm_json_get_str(c->body, "title", ""),
                           cm_json_get_str(c->body, "status", "open"), t1, t2, c->actor.account_id,
                           at, at);
            else if (kind == REC_INCIDENT)
                CM_DB_BIND(s, system, cm_json_get_str(c->body, "severity", ""),
                           cm_json_get_str(c->body, "title", ""),
                           cm_json_get_str(c->body, "description", ""), t1, t2, c->actor.account_id,
                           at);
            else
                CM_DB_BIND(s, system, cm_json_get_str(c->body, "location", ""), t1,
                           cm_json_get_int(c->body, "size_bytes", 0),
                           cm_json_get_str(c->body, "sha256", ""), c->actor.account_id, at);
            r = cm_db_step_done(db, s, &c->err);
        }
    }
    if (r >= 0) {
        static const char *const actions[] = {"vulnerability.create", "incident.create",
                                              "backup.attest"};
        id = cm_db_last_insert_id(db);
        r = br_store_audit(c->d->store, db, &c->actor, actions[kind], "system", system, "ok",
                           cm_json_to_string(c->body, NULL), &c->err);
    }
    if (r >= 0) {
        o = record_get(db, kind, id, &c->err);
        if (!o)
            r = -EIO;
    }
    r = br_api_write_end(c, db, r);
    if (r < 0) {
        json_object_put(o);
        return r;
    }
    return br_reply(c, MHD_HTTP_CREATED, o);
}

static int br_api_vulnerabilities_create(BrCall *c)
{
    return record_create(c, REC_VULNERABILITY);
}

static int br_api_incidents_create(BrCall *c)
{
    return record_create(c, REC_INCIDENT);
}

static int br_api_backups_create(BrCall *c)
{
    return record_create(c, REC_BACKUP);
}

static int record_list(BrCall *c, RecKind kind)
{
    static const char *const sql[] = {
        REC_COLUMNS_VULNERABILITY " WHERE system_id = ? AND id > ? ORDER BY id LIMIT ?",
        REC_COLUMNS_INCIDENT " WHERE system_id = ? AND id > ? ORDER BY id LIMIT ?",
        REC_COLUMNS_BACKUP " WHERE system_id = ? AND id > ? ORDER BY id LIMIT ?",
    };
    CmDb *db = br_api_read_db(c);
    json_object *items;
    sqlite3_stmt *s;
    int64_t limit, after, last = 0;
    int r;

    if (!db)
        return -EIO;
    r = br_api_page(c, &limit, &after);
    if (r < 0)
        return r;
    r = system_scope(c, db, c->ids[0]);
    if (r < 0)
        return r;
    s = cm_db_stmt(db, sql[kind], &c->err);
    if (!s)
        return -EIO;
    CM_DB_BIND(s, c->ids[0], after, limit);
    items = json_object_new_array();
    while ((r = cm_db_step_row(db, s, &c->err)) > 0) {
        last = sqlite3_column_int64(s, 0);
        json_object_array_add(items, record_json(s, kind));
    }
    sqlite3_reset(s);
    if (r < 0) { /* never a short page that looks whole */
        json_object_put(items);
        return r;
    }
    return br_api_list_reply(c, items, limit, last);
}

static int br_api_vulnerabilities_list(BrCall *c)
{
    return record_list(c, REC_VULNERABILITY);
}

static int br_api_incidents_list(BrCall *c)
{
    return record_list(c, REC_INCIDENT);
}

static int br_api_backups_list(BrCall *c)
{
    return record_list(c, REC_BACKUP);
}

static int br_api_vulnerabilities_patch(BrCall *c)
{
    int64_t id = c->ids[0], system = 0;
    char at[CM_TIME_ISO_LEN + 1], fixed[CM_TIME_ISO_LEN + 1], found[CM_TIME_ISO_LEN + 1] = "";
    sqlite3_stmt *s;
    json_object *o = NULL;
    CmDb *db;
    int r;

    cm_time_iso(cm_now_ms(), at);
    r = check_time(c, "fixed_at", cm_json_get_str(c->body, "fixed_at", NULL), fixed);
    if (r < 0)
        return r;
    bool to_fixed = strcmp(cm_json_get_str(c->body, "status", ""), "fixed") == 0;
    if (fixed[0] && !to_fixed)
        return cm_error_set_code(&c->err, CM_ERROR_UNPROCESSABLE, "schema_violation", "/fixed_at",
                                 "fixed_at is only for a fixed vulnerability");
    r = br_api_write_begin(c, &db);
    if (r < 0)
        return r;
    s = cm_db_stmt(db,
                   "SELECT system_id, found_at, status, fixed_at FROM vulnerabilities WHERE id = ?",
                   &c->err);
    r = s ? 0 : -EIO;
    if (r >= 0) {
        CM_DB_BIND(s, id);
        r = cm_db_step_row(db, s, &c->err);
        if (r > 0) {
            system = sqlite3_column_int64(s, 0);
            cm_strscpy(found, sizeof(found), cm_db_col_text(s, 1));
            /* "fixed" without a time: a vulnerability fixed before keeps the time it was
             * fixed (the assessment counts it), one fixed now is fixed now. */
            const char *status = cm_db_col_text(s, 2), *was = cm_db_col_text(s, 3);
            if (to_fixed && !fixed[0])
                cm_strscpy(fixed, sizeof(fixed),
                           status && strcmp(status, "fixed") == 0 && was && *was ? was : at);
        }
        sqlite3_reset(s);
        if (r == 0)
            r = br_not_found(c, "vulnerability", id);
    }
    if (r >= 0)
        r = system_scope(c, db, system) < 0 ? br_not_found(c, "vulnerability", id) : 0;
    if (r >= 0)
        r = check_order(c, "found_at", found, "fixed_at", fixed);
    if (r >= 0) {
        s = cm_db_stmt(db,
                       "UPDATE vulnerabilities SET status = ?, fixed_at = nullif(?, ''),"
                       " updated_at = ? WHERE id = ?",
                       &c->err);
        r = s ? 0 : -EIO;
        if (r >= 0) {
            CM_DB_BIND(s, cm_json_get_str(c->body, "status", "open"), fixed, at, id);
            r = cm_db_step_done(db, s, &c->err);
        }
    }
    if (r >= 0)
        r = br_store_audit(c->d->store, db, &c->actor, "vulnerability.update", "vulnerability", id,
                           cm_json_get_str(c->body, "status", ""), cm_json_to_string(c->body, NULL),
                           &c->err);
    if (r >= 0) {
        o = record_get(db, REC_VULNERABILITY, id, &c->err);
        if (!o)
            r = -EIO;
    }
    r = br_api_write_end(c, db, r);
    if (r < 0) {
        json_object_put(o);
        return r;
    }
    return br_reply(c, MHD_HTTP_OK, o);
}

static int br_api_incidents_patch(BrCall *c)
{
    int64_t id = c->ids[0], system = 0;
    char at[CM_TIME_ISO_LEN + 1], resolved[CM_TIME_ISO_LEN + 1], occurred[CM_TIME_ISO_LEN + 1] = "";
    sqlite3_stmt *s;
    json_object *o = NULL;
    CmDb *db;
    int r;

    cm_time_iso(cm_now_ms(), at);
    /* A time, or null: the incident is not resolved (yet). */
    r = check_time(c, "resolved_at", cm_json_get_str(c->body, "resolved_at", NULL), resolved);
    if (r < 0)
        return r;
    r = br_api_write_begin(c, &db);
    if (r < 0)
        return r;
    s = cm_db_stmt(db, "SELECT system_id, occurred_at FROM incidents WHERE id = ?", &c->err);
    r = s ? 0 : -EIO;
    if (r >= 0) {
        CM_DB_BIND(s, id);
        r = cm_db_step_row(db, s, &c->err);
        if (r > 0) {
            system = sqlite3_column_int64(s, 0);
            cm_strscpy(occurred, sizeof(occurred), cm_db_col_text(s, 1));
        }
        sqlite3_reset(s);
        if (r == 0)
            r = br_not_found(c, "incident", id);
    }
    if (r >= 0) {
        /* Another department's incident is as missing as one that does not exist. */
        r = system_scope(c, db, system);
        if (r == -ENOENT) {
            cm_error_clear(&c->err);
            r = br_not_found(c, "incident", id);
        }
    }
    if (r >= 0)
        r = check_order(c, "occurred_at", occurred, "resolved_at", resolved);
    if (r >= 0) {
        s = cm_db_stmt(db, "UPDATE incidents SET resolved_at = nullif(?, '') WHERE id = ?",
                       &c->err);
        r = s ? 0 : -EIO;
        if (r >= 0) {
            CM_DB_BIND(s, resolved, id);
            r = cm_db_step_done(db, s, &c->err);
        }
    }
    if (r >= 0)
        r = br_store_audit(c->d->store, db, &c->actor, "incident.update", "incident", id,
                           resolved[0] ? "resolved" : "open", cm_json_to_string(c->body, NULL),
                           &c->err);
    if (r >= 0) {
        o = record_get(db, REC_INCIDENT, id, &c->err);
        if (!o)
            r = -EIO;
    }
    r = br_api_write_end(c, db, r);
    if (r < 0) {
        json_object_put(o);
        return r;
    }
    return br_reply(c, MHD_HTTP_OK, o);
}

static const BrRoute routes[] = {

    /* Assessment: findings, security and backup records, reports (Art. 5, 8, 9). */
    {"GET", "/v1/findings", br_api_findings_list, R_DEPARTMENT | BR_ROLES_READERS | R_VENDOR,
     BR_BODY_NONE, NULL},
    {"GET", "/v1/findings/{id}", br_api_findings_get, R_DEPARTMENT | BR_ROLES_READERS | R_VENDOR,
     BR_BODY_NONE, NULL},
    {"POST", "/v1/findings/{id}/acknowledge", br_api_findings_acknowledge,
     R_DEPARTMENT | R_REVIEWER, BR_BODY_JSON_OPTIONAL, "finding-action"},
    {"POST", "/v1/findings/{id}/resolve", br_api_findings_resolve, R_DEPARTMENT | R_REVIEWER,
     BR_BODY_JSON_OPTIONAL, "finding-action"},
    {"POST", "/v1/findings/{id}/dismiss", br_api_findings_dismiss, R_REVIEWER, BR_BODY_JSON,
     "finding-action"},
    {"POST", "/v1/findings/{id}/change-request", br_api_findings_change_request, R_DEPARTMENT,
     BR_BODY_JSON_OPTIONAL, "empty"},
    {"POST", "/v1/assessment/run", br_api_assessment_run, R_REVIEWER | R_VENDOR,
     BR_BODY_JSON_OPTIONAL, "empty"},
    {"POST", "/v1/systems/{id}/vulnerabilities", br_api_vulnerabilities_create,
     R_DEPARTMENT | R_VENDOR, BR_BODY_JSON, "vulnerability-create"},
    {"GET", "/v1/systems/{id}/vulnerabilities", br_api_vulnerabilities_list,
     R_DEPARTMENT | BR_ROLES_READERS | R_VENDOR, BR_BODY_NONE, NULL},
    {"PATCH", "/v1/vulnerabilities/{id}", br_api_vulnerabilities_patch, R_DEPARTMENT | R_VENDOR,
     BR_BODY_JSON, "vulnerability-patch"},
    {"POST", "/v1/systems/{id}/incidents", br_api_incidents_create, R_DEPARTMENT | R_VENDOR,
     BR_BODY_JSON, "incident-create"},
    {"GET", "/v1/systems/{id}/incidents", br_api_incidents_list,
     R_DEPARTMENT | BR_ROLES_READERS | R_VENDOR, BR_BODY_NONE, NULL},
    {"PATCH", "/v1/incidents/{id}", br_api_incidents_patch, R_DEPARTMENT | R_VENDOR, BR_BODY_JSON,
     "incident-patch"},
    {"POST", "/v1/systems/{id}/backups", br_api_backups_create, R_DEPARTMENT | R_VENDOR,
     BR_BODY_JSON, "backup-create"},
    {"GET", "/v1/systems/{id}/backups", br_api_backups_list,
     R_DEPARTMENT | BR_ROLES_READERS | R_VENDOR, BR_BODY_NONE, NULL},
};

const BrRouteTable br_api_findings_routes = {routes, ELEMENTSOF(routes)};
