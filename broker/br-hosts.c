/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "br-hosts.h"
#include "cm-cleanup.h"
#include "cm-log.h"
#include "cm-util.h"
#include "cm-worker.h"

#define KEEPALIVE_INTERVAL 5
#define KEEPALIVE_COUNT 3
#define BACKOFF_MAX_MS 60000
#define CAPACITY_REFRESH_MS 30000
#define CHECK_MS 1000

typedef struct Retired {
    BrVirtConn *conn;
    struct Retired *next;
} Retired;

typedef struct Host {
    BrHosts *h;
    int64_t id;
    char *uri, *storage_pool;
    CmWorker *worker; /* the host's own thread */
    BrVirtConn *conn;
    unsigned refs;    /* references to conn held by callers */
    Retired *retired; /* lost connections still referenced */
    BrHostStatus status;
    int64_t next_try_ms, backoff_ms, next_refresh_ms;
    bool refresh_now;
    struct Host *next;
} Host;

struct BrHosts {
    pthread_mutex_t lock;
    atomic_bool stopping;
    Host *hosts;
    BrHostLostFn on_lost;
    void *on_lost_ctx;
    BrHostUpFn on_up;
    void *on_up_ctx;
};

void br_hosts_on_up(BrHosts *h, BrHostUpFn fn, void *ctx)
{
    pthread_mutex_lock(&h->lock);
    h->on_up = fn;
    h->on_up_ctx = ctx;
    pthread_mutex_unlock(&h->lock);
}

void br_hosts_on_lost(BrHosts *h, BrHostLostFn fn, void *ctx)
{
    pthread_mutex_lock(&h->lock);
    h->on_lost = fn;
    h->on_lost_ctx = ctx;
    pthread_mutex_unlock(&h->lock);
}

static int64_t mono_ms(void)
{
    return cm_mono_ns() / 1000000;
}

BrHosts *br_hosts_new(void)
{
    BrHosts *h = calloc(1, sizeof(*h));
    if (!h)
        return NULL;
    pthread_mutex_init(&h->lock, NULL);
    return h;
}

static Host *find(BrHosts *h, int64_t id)
{
    for (Host *x = h->hosts; x; x = x->next)
        if (x->id == id)
            return x;
    return NULL;
}

/* Called with the lock held: the lost connection goes when its last user lets go. */
static void retire(Host *x)
{
    if (!x->conn)
        return;
    if (x->refs == 0) {
        br_virt_close(x->conn);
    } else {
        Retired *r = calloc(1, sizeof(*r));
        if (r) {
            r->conn = x->conn;
            r->next = x->retired;
            x->retired = r;
        }
    }
    x->conn = NULL;
    x->refs = 0;
    x->status.connected = false;
    cm_time_iso(cm_now_ms(), x->status.since);
}

static void refresh_capacity(BrHosts *h, Host *x, BrVirtConn *c)
{
    BrVirtNodeInfo node;
    BrVirtPoolInfo pool = {0};
    CmError err = {0};
    _cleanup_free_ char *pool_name = NULL;
    bool have_pool;

    if (br_virt_node_info(c, &node, &err) < 0) {
        cm_log_warning("host %lld: %s", (long long)x->id, err.message);
        return;
    }
    /* The pool may be changed meanwhile (PATCH /v1/hosts/{id}): read it under the lock. */
    pthread_mutex_lock(&h->lock);
    pool_name = strdup(x->storage_pool);
    pthread_mutex_unlock(&h->lock);
    if (!pool_name)
        return;
    have_pool = br_virt_pool_info(c, pool_name, &pool, &err) >= 0;
    pthread_mutex_lock(&h->lock);
    /* Say it once per change, not at every refresh: the API shows it meanwhile. */
    if (!have_pool && strcmp(x->status.storage_error, err.message) != 0)
        cm_log_warning("host %lld (%s): %s; the host's disk capacity counts as 0 until it exists "
                       "(create it, or PATCH /v1/hosts/%lld with another storage_pool)",
                       (long long)x->id, x->uri, err.message, (long long)x->id);
    else if (have_pool && x->status.storage_error[0])
        cm_log_notice("host %lld (%s): storage pool '%s' found", (long long)x->id, x->uri,
                      pool_name);
    cm_strscpy(x->status.storage_error, sizeof(x->status.storage_error),
               have_pool ? "" : err.message);
    x->status.capacity_known = true;
    x->status.cpus = node.cpus;
    x->status.memory_mib = (int64_t)node.memory_mib;
    x->status.disk_gib = (int64_t)pool.capacity_gib;
    x->status.disk_available_gib = (int64_t)pool.available_gib;
    pthread_mutex_unlock(&h->lock);
}

/* Called with the lock held, on a new connection: what `auto` takes here, said once per
 * change rather than at every reconnection. */
static void note_domain_type(Host *x, BrVirtConn *c)
{
    const char *type = br_virt_domain_type(c), *note = br_virt_domain_type_note(c);

    if (strcmp(x->status.domain_type, type) != 0 || strcmp(x->status.domain_note, note) != 0) {
        if (note[0])
            cm_log_warning("host %lld (%s): libvirt offers KVM but it does not work here (%s); "
                           "domains are defined for software emulation (qemu)",
                           (long long)x->id, x->uri, note);
        else
            cm_log_info("host %lld (%s): domains are defined as %s", (long long)x->id, x->uri,
                        type);
    }
    snprintf(x->status.hypervisor, sizeof(x->status.hypervisor), "%s", br_virt_hypervisor(c));
    snprintf(x->status.domain_type, sizeof(x->status.domain_type), "%s", type);
    cm_strscpy(x->status.domain_note, sizeof(x->status.domain_note), note);
}

/*
 * One pass of a host's thread: a lost connection is noticed and retired, a missing one
 * reopened when its backoff has passed, the capacity read again when due.
 * Returns: the milliseconds until the next pass (0: at once).
 */
static int64_t host_pass(void *arg)
{
    Host *x = arg;
    BrHosts *h = x->h;
    int64_t now = mono_ms();

    pthread_mutex_lock(&h->lock);
    if (x->conn && !br_virt_alive(x->conn)) {
        BrHostLostFn fn = h->on_lost;
        void *ctx = h->on_lost_ctx;
        char since[sizeof(x->status.since)];
        cm_log_warning("host %lld (%s): connection lost; reconnecting", (long long)x->id, x->uri);
        memcpy(since, x->status.since, sizeof(since));
        retire(x);
        x->next_try_ms = now;
        x->backoff_ms = 500;
        pthread_mutex_unlock(&h->lock);
        if (fn)
            fn(ctx, x->id, since);
        return 0;
    }
    if (!x->conn && now >= x->next_try_ms) {
        BrVirtConn *c = NULL;
        CmError err = {0};
        _cleanup_free_ char *uri = strdup(x->uri);
        pthread_mutex_unlock(&h->lock);
        int r = uri ? br_virt_open(uri, KEEPALIVE_INTERVAL, KEEPALIVE_COUNT, &c, &err) : -ENOMEM;
        if (r >= 0)
            refresh_capacity(h, x, c);
        pthread_mutex_lock(&h->lock);
        bool up = r >= 0 && !atomic_load(&h->stopping);
        BrHostUpFn up_fn = h->on_up;
        void *up_ctx = h->on_up_ctx;
        char since[sizeof(x->status.since)];
        if (up) {
            x->conn = c;
            x->status.connected = true;
            x->status.error[0] = 0;
            note_domain_type(x, c);
            cm_time_iso(cm_now_ms(), x->status.since);
            x->status.reconnects++;
            x->backoff_ms = 500;
            x->next_refresh_ms = mono_ms() + CAPACITY_REFRESH_MS;
            cm_log_notice("host %lld (%s): connected", (long long)x->id, x->uri);
            memcpy(since, x->status.since, sizeof(since));
        } else {
            if (r >= 0)
                br_virt_close(c);
            cm_strscpy(x->status.error, sizeof(x->status.error), err.message);
            x->backoff_ms = x->backoff_ms ? x->backoff_ms * 2 : 500;
            if (x->backoff_ms > BACKOFF_MAX_MS)
                x->backoff_ms = BACKOFF_MAX_MS;
            x->next_try_ms = mono_ms() + x->backoff_ms;
            cm_log_debug("host %lld: connect failed (%s); next try in %lld ms", (long long)x->id,
                         err.message, (long long)x->backoff_ms);
        }
        pthread_mutex_unlock(&h->lock);
        if (up && up_fn)
            up_fn(up_ctx, x->id, since);
        return 0;
    }
    if (x->conn && (now >= x->next_refresh_ms || x->refresh_now)) {
        BrVirtConn *c = x->conn;
        x->refs++;
        x->refresh_now = false;
        x->next_refresh_ms = now + CAPACITY_REFRESH_MS;
        pthread_mutex_unlock(&h->lock);
        refresh_capacity(h, x, c);
        br_hosts_put(h, x->id, c);
        return 0;
    }
    pthread_mutex_unlock(&h->lock);
    return CHECK_MS;
}

static void host_free(Host *x)
{
    br_virt_close(x->conn);
    while (x->retired) {
        Retired *r = x->retired;
        x->retired = r->next;
        br_virt_close(r->conn);
        free(r);
    }
    free(x->uri);
    free(x->storage_pool);
    free(x);
}

int br_hosts_watch(BrHosts *h, int64_t id, const char *uri, const char *storage_pool)
{
    CmError err = {0};
    Host *x;
    int r;

    pthread_mutex_lock(&h->lock);
    if (find(h, id)) {
        pthread_mutex_unlock(&h->lock);
        return 0;
    }
    x = calloc(1, sizeof(*x));
    if (x) {
        x->uri = strdup(uri);
        x->storage_pool = strdup(storage_pool);
    }
    if (!x || !x->uri || !x->storage_pool) {
        pthread_mutex_unlock(&h->lock);
        if (x)
            host_free(x);
        return -ENOMEM;
    }
    x->h = h;
    x->id = id;
    x->status.id = id;
    snprintf(x->status.error, sizeof(x->status.error), "not connected yet");
    cm_time_iso(cm_now_ms(), x->status.since);
    /* Its first pass waits for the lock held here: it sees the host in the list. */
    r = cm_worker_start(&(CmWorkerConfig){.name = "host", .run = host_pass, .ctx = x}, &x->worker,
                        &err);
    if (r < 0) {
        pthread_mutex_unlock(&h->lock);
        host_free(x);
        return r;
    }
    x->next = h->hosts;
    h->hosts = x;
    pthread_mutex_unlock(&h->lock);
    return 0;
}

BrVirtConn *br_hosts_get(BrHosts *h, int64_t id, CmError *err)
{
    BrVirtConn *c = NULL;
    Host *x;

    pthread_mutex_lock(&h->lock);
    x = find(h, id);
    if (x && x->conn && !x->status.connected)
        x = NULL;
    if (x && x->conn) {
        c = x->conn;
        x->refs++;
    }
    pthread_mutex_unlock(&h->lock);
    if (!c)
        cm_error_set_code(err, CM_ERROR_UNAVAILABLE, "host_unavailable", "host",
                          "host %lld is not connected%s%s", (long long)id, x ? ": " : "",
                          x ? x->status.error : "");
    return c;
}

void br_hosts_put(BrHosts *h, int64_t id, BrVirtConn *c)
{
    Host *x;
    if (!c)
        return;
    pthread_mutex_lock(&h->lock);
    x = find(h, id);
    if (x && x->conn == c) {
        if (x->refs)
            x->refs--;
    } else if (x) {
        /* A retired connection: close it once nobody uses it. */
        for (Retired **r = &x->retired; *r; r = &(*r)->next) {
            if ((*r)->conn == c) {
                Retired *gone = *r;
                *r = gone->next;
                br_virt_close(gone->conn);
                free(gone);
                break;
            }
        }
    }
    pthread_mutex_unlock(&h->lock);
}

bool br_hosts_status(BrHosts *h, int64_t id, BrHostStatus *ret)
{
    Host *x;
    pthread_mutex_lock(&h->lock);
    x = find(h, id);
    if (x)
        *ret = x->status;
    pthread_mutex_unlock(&h->lock);
    return x != NULL;
}

int br_hosts_set_storage_pool(BrHosts *h, int64_t id, const char *storage_pool)
{
    char *copy = strdup(storage_pool);
    Host *x;

    if (!copy)
        return -ENOMEM;
    pthread_mutex_lock(&h->lock);
    x = find(h, id);
    if (x) {
        free(x->storage_pool);
        x->storage_pool = TAKE_PTR(copy);
        x->refresh_now = true;
        cm_worker_wake(x->worker);
    }
    pthread_mutex_unlock(&h->lock);
    free(copy);
    return x ? 0 : -ENOENT;
}

void br_hosts_refresh(BrHosts *h, int64_t id)
{
    Host *x;
    pthread_mutex_lock(&h->lock);
    x = find(h, id);
    if (x) {
        x->refresh_now = true;
        cm_worker_wake(x->worker);
    }
    pthread_mutex_unlock(&h->lock);
}

void br_hosts_counts(BrHosts *h, unsigned *ret_total, unsigned *ret_connected,
                     uint64_t *ret_reconnects)
{
    unsigned total = 0, connected = 0;
    uint64_t reconnects = 0;
    pthread_mutex_lock(&h->lock);
    for (Host *x = h->hosts; x; x = x->next) {
        total++;
        connected += x->status.connected;
        reconnects += x->status.reconnects;
    }
    pthread_mutex_unlock(&h->lock);
    *ret_total = total;
    *ret_connected = connected;
    *ret_reconnects = reconnects;
}

BrHosts *br_hosts_free(BrHosts *h)
{
    if (!h)
        return NULL;
    atomic_store(&h->stopping, true);
    /* Without the lock: a pass under way takes it to end. */
    for (Host *x = h->hosts; x; x = x->next)
        x->worker = cm_worker_stop(x->worker);
    while (h->hosts) {
        Host *x = h->hosts;
        h->hosts = x->next;
        host_free(x);
    }
    pthread_mutex_destroy(&h->lock);
    free(h);
    return NULL;
}

static int cmp_status(const void *a, const void *b)
{
    const BrHostStatus *x = a, *y = b;
    return x->id < y->id ? -1 : x->id > y->id;
}

int br_hosts_snapshot(BrHosts *h, BrHostStatus **ret, size_t *ret_n)
{
    size_t n = 0, i = 0;
    BrHostStatus *out;
    pthread_mutex_lock(&h->lock);
    for (Host *x = h->hosts; x; x = x->next)
        n++;
    out = calloc(n + 1, sizeof(*out));
    if (!out) {
        pthread_mutex_unlock(&h->lock);
        return -ENOMEM;
    }
    for (Host *x = h->hosts; x; x = x->next)
        out[i++] = x->status;
    pthread_mutex_unlock(&h->lock);
    qsort(out, n, sizeof(*out), cmp_status);
    *ret = out;
    *ret_n = n;
    return 0;
}

const BrHostStatus *br_hosts_snapshot_find(const BrHostStatus *snap, size_t n, int64_t id)
{
    BrHostStatus key = {.id = id};
    return snap ? bsearch(&key, snap, n, sizeof(*snap), cmp_status) : NULL;
}
