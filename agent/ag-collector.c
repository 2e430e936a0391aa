/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <libxml/parser.h>
#include <libxml/tree.h>

#include "ag-collector.h"
#include "cm-log.h"
#include "cm-time.h"
#include "cm-util.h"

#define XMLNS "urn:x-cloudbroker:instance:1"
#define BACKOFF_MAX_MS 30000

/* What we know of a domain between cycles: whether it is ours, and as which instance. */
typedef struct {
    char uuid[37];
    int domain_id;
    bool ours, dirty;
    int64_t instance_id;
    unsigned seen_cycle;
    bool has_vcpus;
    int64_t vcpus; /* the live vCPU count, read when the metadata is and at slow readings */
} MetaEntry;

struct AgCollector {
    char *uri;
    virConnectPtr conn;
    atomic_bool lost, metadata_changed;
    int event_id;
    uint64_t connects;
    int64_t next_try_ms, backoff_ms;
    int64_t node_cpus, node_memory_mib;
    MetaEntry *meta;
    size_t n_meta, cap_meta;
    unsigned cycle;
    /* The last bulk call's records, kept for the slow call of the same cycle: stats[i] of
     * ag_collector_sample() is records[i]. */
    virDomainStatsRecordPtr *records;
    int n_records;
    int cgroup_cpu; /* virDomainGetCPUStats() works: -1 not known yet, 0 no, 1 yes */
};

static void quiet(void *opaque, virErrorPtr e)
{
    (void)opaque;
    (void)e;
}

static void *event_loop(void *arg)
{
    (void)arg;
    for (;;)
        if (virEventRunDefaultImpl() < 0)
            virResetLastError();
    return NULL;
}

static int event_loop_ok = -1;

static void event_loop_init(void)
{
    pthread_t t;
    virSetErrorFunc(NULL, quiet);
    if (virInitialize() < 0 || virEventRegisterDefaultImpl() < 0 ||
        pthread_create(&t, NULL, event_loop, NULL) != 0)
        return;
    pthread_detach(t);
    event_loop_ok = 0;
}

static int lv_error(CmError *err, const char *what)
{
    virErrorPtr e = virGetLastError();
    cm_error_set_code(err, CM_ERROR_UNAVAILABLE, "libvirt", "", "%s: %s", what,
                      e && e->message ? e->message : "unknown error");
    virResetLastError();
    return -EAGAIN;
}

int ag_collector_new(const char *uri, AgCollector **ret, CmError *err)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    AgCollector *c;

    pthread_once(&once, event_loop_init);
    if (event_loop_ok < 0)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "cannot start libvirt's event loop");
    c = calloc(1, sizeof(*c));
    if (!c || !(c->uri = strdup(uri))) {
        free(c);
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    }
    c->event_id = -1;
    c->backoff_ms = 500;
    *ret = c;
    return 0;
}

static void close_cb(virConnectPtr conn, int reason, void *opaque)
{
    AgCollector *c = opaque;
    (void)conn;
    (void)reason;
    atomic_store(&c->lost, true);
}

static int metadata_cb(virConnectPtr conn, virDomainPtr dom, int type, const char *nsuri,
                       void *opaque)
{
    AgCollector *c = opaque;
    (void)conn;
    (void)dom;
    (void)type;
    (void)nsuri;
    /* Read again for every domain on the next cycle; metadata changes are rare. */
    atomic_store(&c->metadata_changed, true);
    return 0;
}

static void records_free(AgCollector *c)
{
    if (c->records)
        virDomainStatsRecordListFree(c->records);
    c->records = NULL;
    c->n_records = 0;
}

static void disconnect(AgCollector *c)
{
    records_free(c);
    if (!c->conn)
        return;
    if (c->event_id >= 0)
        virConnectDomainEventDeregisterAny(c->conn, c->event_id);
    virConnectUnregisterCloseCallback(c->conn, close_cb);
    virConnectClose(c->conn);
    virResetLastError();
    c->conn = NULL;
    c->event_id = -1;
}

static int connect_now(AgCollector *c, CmError *err)
{
    virNodeInfo info;
    int64_t now = cm_mono_ns() / 1000000;

    if (now < c->next_try_ms)
        return cm_error_set_code(err, CM_ERROR_UNAVAILABLE, "libvirt", "",
                                 "libvirt at %s is unreachable; next try in %lld ms", c->uri,
                                 (long long)(c->next_try_ms - now));
    c->conn = virConnectOpenReadOnly(c->uri);
    if (!c->conn) {
        int r = lv_error(err, "cannot connect to libvirt");
        c->next_try_ms = now + c->backoff_ms;
        c->backoff_ms = c->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : c->backoff_ms * 2;
        return r;
    }
    atomic_store(&c->lost, false);
    c->cgroup_cpu = -1;
    if (virConnectSetKeepAlive(c->conn, 5, 3) < 0)
        virResetLastError();
    if (virConnectRegisterCloseCallback(c->conn, close_cb, c, NULL) < 0)
        virResetLastError();
    c->event_id =
        virConnectDomainEventRegisterAny(c->conn, NULL, VIR_DOMAIN_EVENT_ID_METADATA_CHANGE,
                                         VIR_DOMAIN_EVENT_CALLBACK(metadata_cb), c, NULL);
    if (c->event_id < 0)
        virResetLastError();
    if (virNodeGetInfo(c->conn, &info) == 0) {
        c->node_cpus = info.cpus;
        c->node_memory_mib = (int64_t)(info.memory / 1024);
    } else {
        virResetLastError();
    }
    c->connects++;
    c->backoff_ms = 500;
    /* Domains may have changed while we were away: read their metadata again. */
    for (size_t i = 0; i < c->n_meta; i++)
        c->meta[i].dirty = true;
    cm_log_notice("connected to libvirt at %s", c->uri);
    return 0;
}

static int64_t id_attr(xmlNodePtr inst, const char *child)
{
    for (xmlNodePtr n = inst->children; n; n = n->next) {
        if (n->type != XML_ELEMENT_NODE || xmlStrcmp(n->name, BAD_CAST child) != 0)
            continue;
        xmlChar *v = xmlGetProp(n, BAD_CAST "id");
        int64_t id = -1;
        if (v && cm_parse_int64((const char *)v, 1, INT64_MAX, &id) < 0)
            id = -1;
        xmlFree(v);
        return id;
    }
    return -1;
}

/* The instance id in our <metadata>, or 0 when the domain is not ours. */
static int64_t read_metadata(virDomainPtr dom)
{
    char *xml = virDomainGetMetadata(dom, VIR_DOMAIN_METADATA_ELEMENT, XMLNS, 0);
    xmlDocPtr doc;
    xmlNodePtr root;
    int64_t id = 0;

    if (!xml) {
        virResetLastError();
        return 0;
    }
    doc = xmlReadMemory(xml, (int)strlen(xml), "metadata.xml", NULL,
                        XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    free(xml);
    if (!doc)
        return 0;
    root = xmlDocGetRootElement(doc);
    /* libvirt hands the element back without its namespace: we asked for ours by URI. */
    if (root && xmlStrcmp(root->name, BAD_CAST "instance") == 0 &&
        (!root->ns || xmlStrcmp(root->ns->href, BAD_CAST XMLNS) == 0)) {
        int64_t v = id_attr(root, "instance");
        id = v > 0 ? v : 0;
    }
    xmlFreeDoc(doc);
    return id;
}

/* A running domain's CPU time without the cpu-total group: the cgroup's total
 * (virDomainGetCPUStats), or, where libvirt has no cgroups, the QEMU process's (virDomainGetInfo,
 * from /proc). */
static void read_cpu(AgCollector *c, virDomainPtr dom, AgDomainStats *s)
{
    virDomainInfo info;
    if (c->cgroup_cpu != 0) {
        virTypedParameter p[4];
        int n = virDomainGetCPUStats(dom, p, 4, -1, 1, 0);
        for (int i = 0; i < n; i++)
            if (strcmp(p[i].field, VIR_DOMAIN_CPU_STATS_CPUTIME) == 0 &&
                p[i].type == VIR_TYPED_PARAM_ULLONG) {
                s->has_cpu = true;
                s->cpu_time_ns = p[i].value.ul;
                c->cgroup_cpu = 1;
                return;
            }
        virResetLastError();
    }
    if (virDomainGetInfo(dom, &info) < 0) {
        virResetLastError();
        return;
    }
    if (info.state == VIR_DOMAIN_RUNNING) {
        s->has_cpu = true;
        s->cpu_time_ns = info.cpuTime;
        /* A running domain without cgroup statistics: this libvirt keeps none (session). */
        if (c->cgroup_cpu < 0)
            c->cgroup_cpu = 0;
    }
}

/* The vCPU count libvirt keeps for the domain (no QEMU monitor involved). */
static void read_vcpus(virDomainPtr dom, MetaEntry *e)
{
    int n = virDomainGetVcpusFlags(dom, 0);
    if (n < 0) {
        virResetLastError();
        e->has_vcpus = false;
        return;
    }
    e->has_vcpus = true;
    e->vcpus = n;
}

static MetaEntry *meta_find(AgCollector *c, const char *uuid)
{
    for (size_t i = 0; i < c->n_meta; i++)
        if (strcmp(c->meta[i].uuid, uuid) == 0)
            return &c->meta[i];
    if (c->n_meta == c->cap_meta) {
        size_t cap = c->cap_meta ? c->cap_meta * 2 : 64;
        MetaEntry *n = realloc(c->meta, cap * sizeof(*n));
        if (!n)
            return NULL;
        c->meta = n;
        c->cap_meta = cap;
    }
    MetaEntry *e = &c->meta[c->n_meta++];
    memset(e, 0, sizeof(*e));
    cm_strscpy(e->uuid, sizeof(e->uuid), uuid);
    e->domain_id = -2;
    e->dirty = true;
    return e;
}

static void parse_record(virDomainStatsRecordPtr rec, AgDomainStats *s)
{
    int64_t block_count = -1, net_count = -1;
    for (int i = 0; i < rec->nparams; i++) {
        virTypedParameterPtr p = &rec->params[i];
        const char *f = p->field;
        uint64_t u = p->type == VIR_TYPED_PARAM_ULLONG  ? p->value.ul
                     : p->type == VIR_TYPED_PARAM_LLONG ? (uint64_t)p->value.l
                     : p->type == VIR_TYPED_PARAM_UINT  ? p->value.ui
                     : p->type == VIR_TYPED_PARAM_INT   ? (uint64_t)p->value.i
                                                        : 0;
        if (strcmp(f, "state.state") == 0) {
            s->running = p->value.i == VIR_DOMAIN_RUNNING;
        } else if (strcmp(f, "cpu.time") == 0) {
            s->has_cpu = true;
            s->cpu_time_ns = u;
        } else if (strcmp(f, "vcpu.current") == 0) {
            s->has_vcpus = true;
            s->vcpus = (int64_t)u;
        } else if (strcmp(f, "balloon.current") == 0) {
            s->has_balloon_current = true;
            s->balloon_current_kib = (int64_t)u;
        } else if (strcmp(f, "balloon.available") == 0) {
            s->has_balloon_available = true;
            s->balloon_available_kib = (int64_t)u;
        } else if (strcmp(f, "balloon.unused") == 0) {
            s->has_balloon_unused = true;
            s->balloon_unused_kib = (int64_t)u;
        } else if (strcmp(f, "balloon.rss") == 0) {
            s->has_balloon_rss = true;
            s->balloon_rss_kib = (int64_t)u;
        } else if (strcmp(f, "block.count") == 0) {
            block_count = (int64_t)u;
        } else if (strcmp(f, "net.count") == 0) {
            net_count = (int64_t)u;
        } else if (strncmp(f, "block.", 6) == 0) {
            /* block.N.rd.bytes ...: summed over the disks */
            const char *dot = strchr(f + 6, '.');
            if (!dot)
                continue;
            if (strcmp(dot, ".rd.bytes") == 0)
                s->disk_rd_bytes += u, s->has_disk = true;
            else if (strcmp(dot, ".wr.bytes") == 0)
                s->disk_wr_bytes += u, s->has_disk = true;
            else if (strcmp(dot, ".rd.reqs") == 0)
                s->disk_rd_reqs += u, s->has_disk = true;
            else if (strcmp(dot, ".wr.reqs") == 0)
                s->disk_wr_reqs += u, s->has_disk = true;
        } else if (strncmp(f, "net.", 4) == 0) {
            const char *dot = strchr(f + 4, '.');
            if (!dot)
                continue;
            if (strcmp(dot, ".rx.bytes") == 0)
                s->net_rx_bytes += u, s->has_net = true;
            else if (strcmp(dot, ".tx.bytes") == 0)
                s->net_tx_bytes += u, s->has_net = true;
            else if (strcmp(dot, ".rx.pkts") == 0)
                s->net_rx_pkts += u, s->has_net = true;
            else if (strcmp(dot, ".tx.pkts") == 0)
                s->net_tx_pkts += u, s->has_net = true;
        }
    }
    /* No interface at all is a true zero, not a missing value. */
    if (net_count == 0)
        s->has_net = true;
    if (block_count == 0)
        s->has_disk = true;
}

int ag_collector_sample(AgCollector *c, unsigned groups, AgDomainStats **ret, size_t *ret_n,
                        AgHostStats *host, CmError *err)
{
    unsigned stats = VIR_DOMAIN_STATS_STATE | VIR_DOMAIN_STATS_INTERFACE;
    virDomainStatsRecordPtr *records = NULL;
    AgDomainStats *out;
    bool reread_all;
    int n, r;

    if (c->conn && (atomic_load(&c->lost) || virConnectIsAlive(c->conn) != 1)) {
        cm_log_warning("lost the connection to libvirt at %s", c->uri);
        disconnect(c);
        c->next_try_ms = 0;
    }
    if (!c->conn) {
        r = connect_now(c, err);
        if (r < 0)
            return r;
    }

    if (groups & AG_GROUPS_CPU)
        stats |= VIR_DOMAIN_STATS_CPU_TOTAL;
    if (groups & AG_GROUPS_SLOW)
        stats |= VIR_DOMAIN_STATS_BALLOON | VIR_DOMAIN_STATS_BLOCK;
    if (groups & AG_GROUPS_VCPU)
        stats |= VIR_DOMAIN_STATS_VCPU;
    records_free(c);
    n = virConnectGetAllDomainStats(c->conn, stats, &records,
                                    VIR_CONNECT_GET_ALL_DOMAINS_STATS_NOWAIT);
    if (n < 0) {
        r = lv_error(err, "cannot read domain statistics");
        disconnect(c);
        return r;
    }
    out = calloc((size_t)n + 1, sizeof(*out));
    if (!out) {
        virDomainStatsRecordListFree(records);
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    }
    c->cycle++;
    reread_all = atomic_exchange(&c->metadata_changed, false);
    for (int i = 0; i < n; i++) {
        AgDomainStats *s = &out[i];
        virDomainPtr dom = records[i]->dom;
        const char *name = virDomainGetName(dom);
        MetaEntry *e;

        if (virDomainGetUUIDString(dom, s->uuid) < 0)
            virResetLastError();
        cm_strscpy(s->name, sizeof(s->name), name ? name : "");
        s->domain_id = virDomainGetID(dom) == (unsigned)-1 ? -1 : (int)virDomainGetID(dom);
        parse_record(records[i], s);
        s->slow = (groups & AG_GROUPS_SLOW) != 0;
        if (!(groups & AG_GROUPS_CPU) && s->running)
            read_cpu(c, dom, s);
        e = meta_find(c, s->uuid);
        if (e) {
            if (e->dirty || reread_all || e->domain_id != s->domain_id) {
                e->instance_id = read_metadata(dom);
                e->ours = e->instance_id > 0;
                e->domain_id = s->domain_id;
                e->dirty = false;
                if (!(groups & AG_GROUPS_VCPU))
                    read_vcpus(dom, e);
            }
            e->seen_cycle = c->cycle;
            s->ours = e->ours;
            s->instance_id = e->instance_id;
            if (!(groups & AG_GROUPS_VCPU)) {
                s->has_vcpus = e->has_vcpus;
                s->vcpus = e->vcpus;
            }
        }
    }
    c->records = records;
    c->n_records = n;
    /* Forget domains gone for good. */
    for (size_t i = 0; i < c->n_meta;)
        if (c->cycle - c->meta[i].seen_cycle > 100)
            c->meta[i] = c->meta[--c->n_meta];
        else
            i++;

    memset(host, 0, sizeof(*host));
    host->cpus = c->node_cpus;
    host->memory_mib = c->node_memory_mib;
    host->domains = n;
    {
        int nparams = 0;
        if (virNodeGetCPUStats(c->conn, VIR_NODE_CPU_STATS_ALL_CPUS, NULL, &nparams, 0) == 0 &&
            nparams > 0 && nparams < 32) {
            virNodeCPUStats params[32];
            if (virNodeGetCPUStats(c->conn, VIR_NODE_CPU_STATS_ALL_CPUS, params, &nparams, 0) ==
                0) {
                uint64_t idle = 0, total = 0;
                for (int k = 0; k < nparams; k++) {
                    total += params[k].value;
                    if (strcmp(params[k].field, VIR_NODE_CPU_STATS_IDLE) == 0 ||
                        strcmp(params[k].field, VIR_NODE_CPU_STATS_IOWAIT) == 0)
                        idle += params[k].value;
                }
                host->has_cpu = total > 0;
                host->cpu_total_ns = total;
                host->cpu_busy_ns = total - idle;
            }
        }
        virResetLastError();
        nparams = 0;
        if (virNodeGetMemoryStats(c->conn, VIR_NODE_MEMORY_STATS_ALL_CELLS, NULL, &nparams, 0) ==
                0 &&
            nparams > 0 && nparams < 32) {
            virNodeMemoryStats params[32];
            if (virNodeGetMemoryStats(c->conn, VIR_NODE_MEMORY_STATS_ALL_CELLS, params, &nparams,
                                      0) == 0) {
                uint64_t total = 0, avail = 0;
                for (int k = 0; k < nparams; k++) {
                    if (strcmp(params[k].field, VIR_NODE_MEMORY_STATS_TOTAL) == 0)
                        total = params[k].value;
                    else if (strcmp(params[k].field, VIR_NODE_MEMORY_STATS_FREE) == 0 ||
                             strcmp(params[k].field, VIR_NODE_MEMORY_STATS_BUFFERS) == 0 ||
                             strcmp(params[k].field, VIR_NODE_MEMORY_STATS_CACHED) == 0)
                        avail += params[k].value;
                }
                host->has_memory = total > 0;
                host->memory_used_mib = (int64_t)((total - avail) / 1024);
            }
        }
        virResetLastError();
    }
    *ret = out;
    *ret_n = (size_t)n;
    return 0;
}

int ag_collector_sample_slow(AgCollector *c, AgDomainStats *stats, size_t n, const bool *want,
                             CmError *err)
{
    _cleanup_free_ virDomainPtr *doms = NULL;
    _cleanup_free_ size_t *index = NULL;
    virDomainStatsRecordPtr *records = NULL;
    size_t n_doms = 0;
    int got, read = 0;

    if (!c->conn || !c->records || n != (size_t)c->n_records)
        return cm_error_set_code(err, CM_ERROR_UNAVAILABLE, "libvirt", "",
                                 "no bulk call to read the slow groups for");
    doms = calloc(n + 1, sizeof(*doms));
    index = calloc(n + 1, sizeof(*index));
    if (!doms || !index)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    for (size_t i = 0; i < n; i++)
        if (want[i]) {
            index[n_doms] = i;
            doms[n_doms++] = c->records[i]->dom;
        }
    if (n_doms == 0)
        return 0;
    got = virDomainListGetStats(doms, VIR_DOMAIN_STATS_BALLOON | VIR_DOMAIN_STATS_BLOCK, &records,
                                VIR_CONNECT_GET_ALL_DOMAINS_STATS_NOWAIT);
    if (got < 0)
        return lv_error(err, "cannot read the balloon and block statistics");
    /* The answer comes in the order asked, but a domain gone meanwhile is left out: match by
     * UUID, from where the last match was. */
    for (int r = 0, k = 0; r < got; r++) {
        char uuid[VIR_UUID_STRING_BUFLEN];
        if (virDomainGetUUIDString(records[r]->dom, uuid) < 0) {
            virResetLastError();
            continue;
        }
        for (size_t tries = 0; tries < n_doms; tries++, k = (k + 1) % (int)n_doms) {
            AgDomainStats *s = &stats[index[k]];
            MetaEntry *e;
            if (strcmp(s->uuid, uuid) != 0)
                continue;
            parse_record(records[r], s);
            s->slow = true;
            e = meta_find(c, s->uuid);
            if (e) {
                read_vcpus(records[r]->dom, e);
                s->has_vcpus = e->has_vcpus;
                s->vcpus = e->vcpus;
            }
            read++;
            break;
        }
    }
    virDomainStatsRecordListFree(records);
    return read;
}

uint64_t ag_collector_connects(AgCollector *c)
{
    return c->connects;
}

bool ag_collector_connected(AgCollector *c)
{
    return c->conn && !atomic_load(&c->lost);
}

AgCollector *ag_collector_free(AgCollector *c)
{
    if (!c)
        return NULL;
    disconnect(c);
    free(c->meta);
    free(c->uri);
    free(c);
    return NULL;
}
