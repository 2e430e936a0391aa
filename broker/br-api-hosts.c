/* SPDX-License-Identifier: Apache-2.0 */
/* Hypervisor hosts: registration, capacity after overcommit, connection, maintenance. */
#include <math.h>
#include <string.h>

#include "br-api.h"
#include "br-daemon.h"
#include "br-host.h"
#include "br-hosts.h"
#include "cm-crypto.h"

typedef struct {
    BrCall *c;
    BrPolicies *p;
    json_object *out; /* the host's document, or the list's array */
} HostView;

static json_object *ratio_json(double own, double policy, double *ret)
{
    *ret = own > 0 ? own : policy;
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

static json_object *str_or_null(const char *s)
{
    return s && s[0] ? json_object_new_string(s) : NULL;
}

/* The host's document: its row, with the live connection and capacity winning over the
 * capacity last recorded. */
static json_object *host_json(BrCall *c, const BrHostRow *h, const BrPolicies *p)
{
    json_object *o = json_object_new_object(), *ratios = json_object_new_object();
    json_object *cap = json_object_new_object(), *alloc = json_object_new_object();
    json_object *free_ = json_object_new_object(), *conn = json_object_new_object();
    BrHostStatus st = {0};
    bool live = c->d->hosts && br_hosts_status(c->d->hosts, h->id, &st);
    bool known = live && st.capacity_known;
    int64_t cpus = known ? st.cpus : h->cpus, mem = known ? st.memory_mib : h->memory_mib;
    int64_t disk = known ? st.disk_gib : h->disk_gib;
    double cr, rr, dr;

    json_object_object_add(o, "id", json_object_new_int64(h->id));
    json_object_object_add(o, "name", json_object_new_string(h->name));
    json_object_object_add(o, "uri", json_object_new_string(h->uri));
    json_object_object_add(o, "pool", json_object_new_string(h->pool));
    json_object_object_add(o, "storage_pool", json_object_new_string(h->storage_pool));
    json_object_object_add(ratios, "cpu", ratio_json(h->cpu_ratio, p->placement.cpu_ratio, &cr));
    json_object_object_add(ratios, "ram", ratio_json(h->ram_ratio, p->placement.ram_ratio, &rr));
    json_object_object_add(ratios, "disk", ratio_json(h->disk_ratio, p->placement.disk_ratio, &dr));
    json_object_object_add(
        ratios, "from_policy",
        json_object_new_boolean(h->cpu_ratio <= 0 && h->ram_ratio <= 0 && h->disk_ratio <= 0));
    json_object_object_add(o, "overcommit", ratios);
    json_object_object_add(o, "enabled", json_object_new_boolean(h->enabled));
    json_object_object_add(o, "maintenance", json_object_new_boolean(h->maintenance));

    json_object_object_add(conn, "state",
                           json_object_new_string(st.connected ? "connected" : "disconnected"));
    json_object_object_add(conn, "since", json_object_new_string(st.since));
    json_object_object_add(conn, "error", st.connected ? NULL : str_or_null(st.error));
    json_object_object_add(conn, "connects", json_object_new_int64((int64_t)st.reconnects));
    json_object_object_add(conn, "hypervisor", str_or_null(st.hypervisor));
    json_object_object_add(o, "connection", conn);
    add_domain_type(o, &st, p);
    json_object_object_add(o, "storage_error", str_or_null(st.storage_error));

    json_object_object_add(cap, "known", json_object_new_boolean(known));
    json_object_object_add(cap, "cpus", json_object_new_int64(cpus));
    json_object_object_add(cap, "memory_mib", json_object_new_int64(mem));
    json_object_object_add(cap, "disk_gib", json_object_new_int64(disk));
    json_object_object_add(cap, "disk_available_gib",
                           known ? json_object_new_int64(st.disk_available_gib) : NULL);
    json_object_object_add(o, "capacity", cap);

    json_object_object_add(alloc, "vcpus", json_object_new_int64(h->used_vcpus));
    json_object_object_add(alloc, "memory_mib", json_object_new_int64(h->used_memory_mib));
    json_object_object_add(alloc, "disk_gib", json_object_new_int64(h->used_disk_gib));
    json_object_object_add(alloc, "instances", json_object_new_int64(h->instances));
    json_object_object_add(o, "allocated", alloc);
    json_object_object_add(
        free_, "vcpus", json_object_new_int64((int64_t)floor((double)cpus * cr) - h->used_vcpus));
    json_object_object_add(
        free_, "memory_mib",
        json_object_new_int64((int64_t)floor((double)mem * rr) - h->used_memory_mib));
    json_object_object_add(
        free_, "disk_gib",
        json_object_new_int64((int64_t)floor((double)disk * dr) - h->used_disk_gib));
    json_object_object_add(o, "free_after_overcommit", free_);
    json_object_object_add(o, "created_at", json_object_new_string(h->created_at));
    json_object_object_add(o, "updated_at", json_object_new_string(h->updated_at));
    return o;
}

static int host_view_one(void *ctx, const BrHostRow *h)
{
    HostView *v = ctx;
    v->out = host_json(v->c, h, v->p);
    return 0;
}

static int host_view_add(void *ctx, const BrHostRow *h)
{
    HostView *v = ctx;
    json_object_array_add(v->out, host_json(v->c, h, v->p));
    return 0;
}

/* Host @id's document, read after the change that asked for it. */
static int host_load(BrCall *c, int64_t id, json_object **ret)
{
    _cleanup_(br_policies_unrefp) BrPolicies *p = br_call_policies(c);
    HostView v = {c, p, NULL};
    int r = br_host_get(br_call_db(c), id, host_view_one, &v, &c->err);
    if (r < 0)
        return r;
    *ret = v.out;
    return 0;
}

static void fields_from_body(json_object *body, BrHostFields *f)
{
    static const char *const ratios[] = {"cpu_ratio", "ram_ratio", "disk_ratio"};
    json_object *m = cm_json_get(body, "maintenance"), *e = cm_json_get(body, "enabled");

    *f = (BrHostFields){
        .name = cm_json_get_str(body, "name", ""),
        .uri = cm_json_get_str(body, "uri", ""),
        .pool = cm_json_get_str(body, "pool", ""),
        .storage_pool = cm_json_get_str(body, "storage_pool", NULL),
        .maintenance = m ? json_object_get_boolean(m) : -1,
        .enabled = e ? json_object_get_boolean(e) : -1,
    };
    /* A ratio given as null goes back to the policy's; an absent one stays. */
    for (int i = 0; i < 3; i++) {
        json_object *v = NULL;
        f->ratio_set[i] = json_object_object_get_ex(body, ratios[i], &v);
        f->ratio[i] =
            json_object_is_type(v, json_type_double) || json_object_is_type(v, json_type_int)
                ? json_object_get_double(v)
                : 0;
    }
}

typedef struct {
    int64_t id;
    BrHostFields fields;
    json_object *body;
    char token[CM_TOKEN_LEN + 1], hash[CM_SHA256_HEX_LEN + 1];
} HostWrite;

static void host_write_done(HostWrite *w)
{
    explicit_bzero(w->token, sizeof(w->token));
}

/* The host's agent gets its own token, shown once: it may post samples for this host. */
static int new_agent_token(BrCall *c, HostWrite *w)
{
    if (cm_token_new_prefixed(CM_AGENT_TOKEN_PREFIX, w->token) < 0 ||
        cm_token_hash(w->token, w->hash) < 0)
        return cm_error_set(&c->err, CM_ERROR_INTERNAL, "", "no randomness for the token");
    return 0;
}

static int host_create_tx(BrTx *tx, void *ctx)
{
    HostWrite *w = ctx;
    int r = br_host_create(tx, &w->fields, w->hash, &w->id);
    if (r < 0)
        return r;
    br_tx_audit_set(tx, "host.create", "host", w->id, cm_json_to_string(w->body, NULL));
    return 0;
}

static int br_api_hosts_create(BrCall *c)
{
    _cleanup_(host_write_done) HostWrite w = {.body = c->body};
    json_object *out;
    int r = new_agent_token(c, &w);

    if (r < 0)
        return r;
    fields_from_body(c->body, &w.fields);
    if (!w.fields.storage_pool)
        w.fields.storage_pool = "default";
    r = br_call_tx(c, "host.create", host_create_tx, &w);
    if (r < 0)
        return r;
    /* Connect from the host's own thread; the answer does not wait for the hypervisor. */
    br_hosts_watch(c->d->hosts, w.id, w.fields.uri, w.fields.storage_pool);
    r = host_load(c, w.id, &out);
    if (r < 0)
        return r;
    json_object_object_add(out, "agent_token", json_object_new_string(w.token));
    return br_reply(c, BR_HTTP_CREATED, out);
}

static int host_token_tx(BrTx *tx, void *ctx)
{
    HostWrite *w = ctx;
    int r = br_host_set_agent_token(tx, w->id, w->hash);
    if (r < 0)
        return r;
    br_tx_audit_set(tx, "host.rotate_agent_token", "host", w->id, NULL);
    return 0;
}

static int br_api_hosts_rotate_agent_token(BrCall *c)
{
    _cleanup_(host_write_done) HostWrite w = {.id = c->ids[0]};
    json_object *out;
    int r = new_agent_token(c, &w);

    if (r >= 0)
        r = br_call_tx(c, "host.rotate_agent_token", host_token_tx, &w);
    if (r < 0)
        return r;
    out = json_object_new_object();
    json_object_object_add(out, "id", json_object_new_int64(w.id));
    json_object_object_add(out, "agent_token", json_object_new_string(w.token));
    return br_reply(c, BR_HTTP_OK, out);
}

static int br_api_hosts_list(BrCall *c)
{
    _cleanup_(br_policies_unrefp) BrPolicies *p = br_call_policies(c);
    const char *pool = br_call_query(c, "pool");
    HostView v = {c, p, NULL};
    BrPage page;
    int r = br_call_page(c, &page);

    if (r < 0)
        return r;
    if (pool && strcmp(pool, "trial") != 0 && strcmp(pool, "production") != 0)
        return cm_error_set(&c->err, CM_ERROR_INVALID, "pool", "pool must be trial or production");
    v.out = json_object_new_array();
    r = br_host_list(br_call_db(c), pool, &page, host_view_add, &v, &c->err);
    if (r < 0) {
        json_object_put(v.out);
        return r;
    }
    return br_reply_list(c, v.out, &page);
}

static int br_api_hosts_get(BrCall *c)
{
    json_object *o;
    int r = host_load(c, c->ids[0], &o);
    if (r < 0)
        return r;
    return br_reply(c, BR_HTTP_OK, o);
}

static int host_patch_tx(BrTx *tx, void *ctx)
{
    HostWrite *w = ctx;
    int r = br_host_update(tx, w->id, &w->fields);
    if (r < 0)
        return r;
    br_tx_audit_set(tx, "host.update", "host", w->id, cm_json_to_string(w->body, NULL));
    return 0;
}

static int br_api_hosts_patch(BrCall *c)
{
    _cleanup_(host_write_done) HostWrite w = {.id = c->ids[0], .body = c->body};
    json_object *out;
    int r;

    fields_from_body(c->body, &w.fields);
    r = br_call_tx(c, "host.update", host_patch_tx, &w);
    if (r < 0)
        return r;
    /* The host's thread reads the new pool at once; the answer shows the last reading. New
     * instances whose image names no pool get their disks there; existing disks stay where
     * they are. */
    if (w.fields.storage_pool && c->d->hosts)
        br_hosts_set_storage_pool(c->d->hosts, w.id, w.fields.storage_pool);
    r = host_load(c, w.id, &out);
    if (r < 0)
        return r;
    return br_reply(c, BR_HTTP_OK, out);
}

static const BrRoute routes[] = {

    {"POST", "/v1/hosts", br_api_hosts_create, BR_ROLES_VENDOR, BR_BODY_JSON, "host-create"},
    {"GET", "/v1/hosts", br_api_hosts_list, BR_ROLES_VENDOR | BR_ROLES_READERS, BR_BODY_NONE, NULL},
    {"GET", "/v1/hosts/{id}", br_api_hosts_get, BR_ROLES_VENDOR | BR_ROLES_READERS, BR_BODY_NONE,
     NULL},
    {"PATCH", "/v1/hosts/{id}", br_api_hosts_patch, BR_ROLES_VENDOR, BR_BODY_JSON, "host-patch"},
    {"POST", "/v1/hosts/{id}/agent-token", br_api_hosts_rotate_agent_token, BR_ROLES_VENDOR,
     BR_BODY_JSON_OPTIONAL, "empty"},
};

const BrRouteTable br_api_hosts_routes = {routes, ELEMENTSOF(routes)};
