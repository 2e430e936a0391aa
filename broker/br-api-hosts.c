/* SPDX-License-Identifier: Apache-2.0 */
/* Hypervisor hosts: registration, capacity after overcommit, connection, maintenance. */
#include <errno.h>
#include <math.h>
#include <string.h>

#include <microhttpd.h>

#include "br-api.h"
#include "br-daemon.h"
#include "br-hosts.h"
#include "cm-crypto.h"
#include "cm-time.h"

#define HOST_COLUMNS                                                                               \
    "h.id, h.name, h.uri, h.pool, h.storage_pool, h.cpu_ratio, h.ram_ratio, h.disk_ratio,"         \
    " h.enabled, h.maintenance, h.cpus, h.memory_mib, h.disk_gib, h.created_at, h.updated_at,"     \
    " (SELECT coalesce(sum(CASE WHEN i.state = 'undefined' THEN 0 ELSE i.vcpus END), 0)"           \
    "  FROM instances i WHERE i.host_id = h.id AND i.state != 'deleted'),"                         \
    " (SELECT coalesce(sum(CASE WHEN i.state = 'undefined' THEN 0 ELSE i.memory_mib END), 0)"      \
    "  FROM instances i WHERE i.host_id = h.id AND i.state != 'deleted'),"                         \
    " (SELECT coalesce(sum(i.disk_gib), 0) FROM instances i WHERE i.host_id = h.id"                \
    "  AND i.state != 'deleted'),"                                                                 \
    " (SELECT count(*) FROM instances i WHERE i.host_id = h.id AND i.state NOT IN"                 \
    "  ('deleted','undefined'))"

static json_object *ratio_json(sqlite3_stmt *stmt, int col, double def, double *ret)
{
    bool set = sqlite3_column_type(stmt, col) != SQLITE_NULL;
    *ret = set ? sqlite3_column_double(stmt, col) : def;
    return json_object_new_double(*ret);
}

/* The domain type the broker defines here: the lifecycle policy's, unless it says auto (or
 * the host is libvirt's test driver), then what the host's connection found to work. */
static void add_domain_type(json_object *o, const BrHostStatus *st, const BrPolicies *p)
{
    const char *type = st->domain_type[0] ? st->domain_type : NULL;
    const char *note = st->domain_note[0] ? st->domain_note : NULL;
    const char *policy = p->lifecycle.domain_type;

    if (type && strcmp(type, "test") != 0 && policy && strcmp(policy, "auto") != 0) {
        type = policy;
        note = NULL;
    }
    json_object_object_add(o, "domain_type", type ? json_object_new_string(type) : NULL);
    json_object_object_add(o, "domain_type_note", note ? json_object_new_string(note) : NULL);
}

static json_object *host_from_row(BrCall *c, sqlite3_stmt *stmt, const BrPolicies *p)
{
    json_object *o = json_object_new_object(), *ratios = json_object_new_object();
    json_object *cap = json_object_new_object(), *alloc = json_object_new_object();
    json_object *free_ = json_object_new_object(), *conn = json_object_new_object();
    int64_t id = sqlite3_column_int64(stmt, 0);
    double cr, rr, dr;
    BrHostStatus st = {0};
    int64_t cpus = sqlite3_column_int64(stmt, 10), mem = sqlite3_column_int64(stmt, 11);
    int64_t disk = sqlite3_column_int64(stmt, 12), disk_avail = -1;
    bool live = c->d->hosts && br_hosts_status(c->d->hosts, id, &st);

    if (live && st.capacity_known) {
        cpus = st.cpus;
        mem = st.memory_mib;
        disk = st.disk_gib;
        disk_avail = st.disk_available_gib;
    }
    json_object_object_add(o, "id", json_object_new_int64(id));
    json_object_object_add(o, "name", br_json_col_text(stmt, 1));
    json_object_object_add(o, "uri", br_json_col_text(stmt, 2));
    json_object_object_add(o, "pool", br_json_col_text(stmt, 3));
    json_object_object_add(o, "storage_pool", br_json_col_text(stmt, 4));
    json_object_object_add(ratios, "cpu", ratio_json(stmt, 5, p->placement.cpu_ratio, &cr));
    json_object_object_add(ratios, "ram", ratio_json(stmt, 6, p->placement.ram_ratio, &rr));
    json_object_object_add(ratios, "disk", ratio_json(stmt, 7, p->placement.disk_ratio, &dr));
    json_object_object_add(ratios, "from_policy",
                           json_object_new_boolean(sqlite3_column_type(stmt, 5) == SQLITE_NULL &&
                                                   sqlite3_column_type(stmt, 6) == SQLITE_NULL &&
                                                   sqlite3_column_type(stmt, 7) == SQLITE_NULL));
    json_object_object_add(o, "overcommit", ratios);
    json_object_object_add(o, "enabled", json_object_new_boolean(sqlite3_column_int(stmt, 8)));
    json_object_object_add(o, "maintenance", json_object_new_boolean(sqlite3_column_int(stmt, 9)));

    json_object_object_add(conn, "state",
                           json_object_new_string(st.connected ? "connected" : "disconnected"));
    json_object_object_add(conn, "since", json_object_new_string(st.since));
    json_object_object_add(conn, "error",
                           st.connected || !st.error[0] ? NULL : json_object_new_string(st.error));
    json_object_object_add(conn, "connects", json_object_new_int64((int64_t)st.reconnects));
    json_object_object_add(conn, "hypervisor",
                           st.hypervisor[0] ? json_object_new_string(st.hypervisor) : NULL);
    json_object_object_add(o, "connection", conn);
    add_domain_type(o, &st, p);
    json_object_object_add(o, "storage_error",
                           st.storage_error[0] ? json_object_new_string(st.storage_error) : NULL);

    json_object_object_add(cap, "known", json_object_new_boolean(live && st.capacity_known));
    json_object_object_add(cap, "cpus", json_object_new_int64(cpus));
    json_object_object_add(cap, "memory_mib", json_object_new_int64(mem));
    json_object_object_add(cap, "disk_gib", json_object_new_int64(disk));
    json_object_object_add(cap, "disk_available_gib",
                           disk_avail >= 0 ? json_object_new_int64(disk_avail) : NULL);
    json_object_object_add(o, "capacity", cap);

    int64_t uv = sqlite3_column_int64(stmt, 15), um = sqlite3_column_int64(stmt, 16);
    int64_t ud = sqlite3_column_int64(stmt, 17);
    json_object_object_add(alloc, "vcpus", json_object_new_int64(uv));
    json_object_object_add(alloc, "memory_mib", json_object_new_int64(um));
    json_object_object_add(alloc, "disk_gib", json_object_new_int64(ud));
    json_object_object_add(alloc, "instances",
                           json_object_new_int64(sqlite3_column_int64(stmt, 18)));
    json_object_object_add(o, "allocated", alloc);
    json_object_object_add(free_, "vcpus",
                           json_object_new_int64((int64_t)floor((double)cpus * cr) - uv));
    json_object_object_add(free_, "memory_mib",
                           json_object_new_int64((int64_t)floor((double)mem * rr) - um));
    json_object_object_add(free_, "disk_gib",
                           json_object_new_int64((int64_t)floor((double)disk * dr) - ud));
    json_object_object_add(o, "free_after_overcommit", free_);
    json_object_object_add(o, "created_at", br_json_col_text(stmt, 13));
    json_object_object_add(o, "updated_at", br_json_col_text(stmt, 14));
    return o;
}

static int host_load(BrCall *c, CmDb *db, int64_t id, json_object **ret)
{
    _cleanup_(br_policies_unrefp) BrPolicies *p = br_call_policies(c);
    sqlite3_stmt *stmt =
        cm_db_stmt(db, "SELECT " HOST_COLUMNS " FROM hosts h WHERE h.id = ?", &c->err);
    int r;
    if (!stmt)
        return -EIO;
    CM_DB_BIND(stmt, id);
    r = cm_db_step_row(db, stmt, &c->err);
    if (r > 0)
        *ret = host_from_row(c, stmt, p);
    sqlite3_reset(stmt);
    if (r == 0)
        return br_not_found(c, "host", id);
    return r < 0 ? r : 0;
}

static void bind_ratio(sqlite3_stmt *stmt, int idx, json_object *v)
{
    if (v && (json_object_is_type(v, json_type_double) || json_object_is_type(v, json_type_int)))
        sqlite3_bind_double(stmt, idx, json_object_get_double(v));
    else
        sqlite3_bind_null(stmt, idx);
}

static int br_api_hosts_create(BrCall *c)
{
    const char *pool = cm_json_get_str(c->body, "storage_pool", "default");
    char at[CM_TIME_ISO_LEN + 1], token[CM_TOKEN_LEN + 1], hash[CM_SHA256_HEX_LEN + 1];
    json_object *out = NULL;
    sqlite3_stmt *stmt;
    int64_t id = 0;
    CmDb *db;
    int r;

    /* The host's agent gets its own token, shown once: it may post samples for this host. */
    if (cm_token_new_prefixed(CM_AGENT_TOKEN_PREFIX, token) < 0 || cm_token_hash(token, hash) < 0)
        return cm_error_set(&c->err, CM_ERROR_INTERNAL, "", "no randomness for the token");
    cm_time_iso(cm_now_ms(), at);
    r = br_api_write_begin(c, &db);
    if (r < 0)
        return r;
    stmt = cm_db_stmt(db,
                      "INSERT INTO hosts(name, uri, pool, storage_pool, cpu_ratio, ram_ratio,"
                      " disk_ratio, created_at, updated_at, agent_token_hash)"
                      " VALUES (?,?,?,?,?,?,?,?,?,?)",
                      &c->err);
    r = stmt ? 0 : -EIO;
    if (r >= 0) {
        CM_DB_BIND(stmt, cm_json_get_str(c->body, "name", ""), cm_json_get_str(c->body, "uri", ""),
                   cm_json_get_str(c->body, "pool", ""), pool);
        bind_ratio(stmt, 5, cm_json_get(c->body, "cpu_ratio"));
        bind_ratio(stmt, 6, cm_json_get(c->body, "ram_ratio"));
        bind_ratio(stmt, 7, cm_json_get(c->body, "disk_ratio"));
        sqlite3_bind_text(stmt, 8, at, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(stmt, 9, at, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(stmt, 10, hash, -1, SQLITE_TRANSIENT);
        r = cm_db_step_done(db, stmt, &c->err);
        if (r == -EEXIST) {
            /* Say which of the two unique fields clashed. */
            sqlite3_stmt *dup = cm_db_stmt(db, "SELECT 1 FROM hosts WHERE name = ?", &c->err);
            bool name_taken = false;
            if (dup) {
                CM_DB_BIND(dup, cm_json_get_str(c->body, "name", ""));
                name_taken = sqlite3_step(dup) == SQLITE_ROW;
                sqlite3_reset(dup);
            }
            r = cm_error_set_code(&c->err, CM_ERROR_CONFLICT, "duplicate",
                                  name_taken ? "/name" : "/uri",
                                  name_taken ? "a host with this name is already registered"
                                             : "a host with this URI is already registered");
        }
    }
    if (r >= 0) {
        id = cm_db_last_insert_id(db);
        r = br_store_audit(c->d->store, db, &c->actor, "host.create", "host", id, "ok",
                           cm_json_to_string(c->body, NULL), &c->err);
    }
    r = br_api_write_end(c, db, r);
    if (r < 0)
        return r;
    /* Connect from the host's own thread; the answer does not wait for the hypervisor. */
    br_hosts_watch(c->d->hosts, id, cm_json_get_str(c->body, "uri", ""), pool);
    r = host_load(c, br_api_read_db(c), id, &out);
    if (r < 0) {
        explicit_bzero(token, sizeof(token));
        return r;
    }
    json_object_object_add(out, "agent_token", json_object_new_string(token));
    explicit_bzero(token, sizeof(token));
    return br_reply(c, MHD_HTTP_CREATED, out);
}

static int br_api_hosts_rotate_agent_token(BrCall *c)
{
    char token[CM_TOKEN_LEN + 1], hash[CM_SHA256_HEX_LEN + 1];
    int64_t id = c->ids[0];
    sqlite3_stmt *stmt;
    json_object *out;
    CmDb *db;
    int r;

    if (cm_token_new_prefixed(CM_AGENT_TOKEN_PREFIX, token) < 0 || cm_token_hash(token, hash) < 0)
        return cm_error_set(&c->err, CM_ERROR_INTERNAL, "", "no randomness for the token");
    r = br_api_write_begin(c, &db);
    if (r < 0)
        return r;
    stmt = cm_db_stmt(db, "UPDATE hosts SET agent_token_hash = ? WHERE id = ?", &c->err);
    r = stmt ? 0 : -EIO;
    if (r >= 0) {
        CM_DB_BIND(stmt, hash, id);
        r = cm_db_step_done(db, stmt, &c->err);
    }
    if (r >= 0 && sqlite3_changes(cm_db_handle(db)) == 0)
        r = br_not_found(c, "host", id);
    if (r >= 0)
        r = br_store_audit(c->d->store, db, &c->actor, "host.rotate_agent_token", "host", id, "ok",
                           NULL, &c->err);
    r = br_api_write_end(c, db, r);
    if (r < 0) {
        explicit_bzero(token, sizeof(token));
        return r;
    }
    out = json_object_new_object();
    json_object_object_add(out, "id", json_object_new_int64(id));
    json_object_object_add(out, "agent_token", json_object_new_string(token));
    explicit_bzero(token, sizeof(token));
    return br_reply(c, MHD_HTTP_OK, out);
}

static int br_api_hosts_list(BrCall *c)
{
    _cleanup_(br_policies_unrefp) BrPolicies *p = br_call_policies(c);
    CmDb *db = br_api_read_db(c);
    const char *pool = br_call_query(c, "pool");
    sqlite3_stmt *stmt;
    json_object *items;
    int64_t limit, after, last = 0;
    int r;

    if (!db)
        return -EIO;
    r = br_api_page(c, &limit, &after);
    if (r < 0)
        return r;
    if (pool && strcmp(pool, "trial") != 0 && strcmp(pool, "production") != 0)
        return cm_error_set(&c->err, CM_ERROR_INVALID, "pool", "pool must be trial or production");
    stmt = cm_db_stmt(db,
                      "SELECT " HOST_COLUMNS " FROM hosts h WHERE h.id > ?1"
                      " AND (?2 IS NULL OR h.pool = ?2) ORDER BY h.id LIMIT ?3",
                      &c->err);
    if (!stmt)
        return -EIO;
    CM_DB_BIND(stmt, after, pool, limit);
    items = json_object_new_array();
    while ((r = cm_db_step_row(db, stmt, &c->err)) > 0) {
        last = sqlite3_column_int64(stmt, 0);
        json_object_array_add(items, host_from_row(c, stmt, p));
    }
    sqlite3_reset(stmt);
    if (r < 0) {
        json_object_put(items);
        return r;
    }
    return br_api_list_reply(c, items, limit, last);
}

static int br_api_hosts_get(BrCall *c)
{
    json_object *o = NULL;
    CmDb *db = br_api_read_db(c);
    int r;
    if (!db)
        return -EIO;
    r = host_load(c, db, c->ids[0], &o);
    if (r < 0)
        return r;
    return br_reply(c, MHD_HTTP_OK, o);
}

static int br_api_hosts_patch(BrCall *c)
{
    const char *storage_pool = cm_json_get_str(c->body, "storage_pool", NULL);
    int64_t id = c->ids[0];
    char at[CM_TIME_ISO_LEN + 1];
    json_object *out = NULL;
    sqlite3_stmt *stmt;
    CmDb *db;
    int r;

    cm_time_iso(cm_now_ms(), at);
    r = br_api_write_begin(c, &db);
    if (r < 0)
        return r;
    /* A ratio given as null goes back to the policy's; an absent one stays. */
    stmt = cm_db_stmt(db,
                      "UPDATE hosts SET maintenance = coalesce(?1, maintenance),"
                      " enabled = coalesce(?2, enabled),"
                      " cpu_ratio = CASE WHEN ?3 THEN ?4 ELSE cpu_ratio END,"
                      " ram_ratio = CASE WHEN ?5 THEN ?6 ELSE ram_ratio END,"
                      " disk_ratio = CASE WHEN ?7 THEN ?8 ELSE disk_ratio END,"
                      " storage_pool = coalesce(?11, storage_pool),"
                      " updated_at = ?9 WHERE id = ?10",
                      &c->err);
    r = stmt ? 0 : -EIO;
    if (r >= 0) {
        json_object *m = cm_json_get(c->body, "maintenance"), *e = cm_json_get(c->body, "enabled");
        const char *keys[] = {"cpu_ratio", "ram_ratio", "disk_ratio"};
        if (m)
            sqlite3_bind_int(stmt, 1, json_object_get_boolean(m));
        if (e)
            sqlite3_bind_int(stmt, 2, json_object_get_boolean(e));
        for (int i = 0; i < 3; i++) {
            json_object *v = NULL;
            bool present = json_object_object_get_ex(c->body, keys[i], &v);
            sqlite3_bind_int(stmt, 3 + 2 * i, present);
            bind_ratio(stmt, 4 + 2 * i, v);
        }
        sqlite3_bind_text(stmt, 9, at, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(stmt, 10, id);
        if (storage_pool)
            sqlite3_bind_text(stmt, 11, storage_pool, -1, SQLITE_TRANSIENT);
        r = cm_db_step_done(db, stmt, &c->err);
    }
    if (r >= 0 && sqlite3_changes(cm_db_handle(db)) == 0)
        r = br_not_found(c, "host", id);
    if (r >= 0)
        r = br_store_audit(c->d->store, db, &c->actor, "host.update", "host", id, "ok",
                           cm_json_to_string(c->body, NULL), &c->err);
    r = br_api_write_end(c, db, r);
    if (r < 0)
        return r;
    /* The host's thread reads the new pool at once; the answer shows the last reading. New
     * instances whose image names no pool get their disks there; existing disks stay where
     * they are. */
    if (storage_pool && c->d->hosts)
        br_hosts_set_storage_pool(c->d->hosts, id, storage_pool);
    r = host_load(c, br_api_read_db(c), id, &out);
    if (r < 0)
        return r;
    return br_reply(c, MHD_HTTP_OK, out);
}

static const BrRoute routes[] = {

    {"POST", "/v1/hosts", br_api_hosts_create, R_VENDOR, BR_BODY_JSON, "host-create"},
    {"GET", "/v1/hosts", br_api_hosts_list, R_VENDOR | BR_ROLES_READERS, BR_BODY_NONE, NULL},
    {"GET", "/v1/hosts/{id}", br_api_hosts_get, R_VENDOR | BR_ROLES_READERS, BR_BODY_NONE, NULL},
    {"PATCH", "/v1/hosts/{id}", br_api_hosts_patch, R_VENDOR, BR_BODY_JSON, "host-patch"},
    {"POST", "/v1/hosts/{id}/agent-token", br_api_hosts_rotate_agent_token, R_VENDOR,
     BR_BODY_JSON_OPTIONAL, "empty"},
};

const BrRouteTable br_api_hosts_routes = {routes, ELEMENTSOF(routes)};
