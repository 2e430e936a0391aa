/* SPDX-License-Identifier: Apache-2.0 */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <json-c/json.h>
#include <microhttpd.h>

#include "ag-agent.h"
#include "ag-collector.h"
#include "ag-push.h"
#include "ag-spool.h"
#include "ag-tier.h"
#include "ag-window.h"
#include "cm-db.h"
#include "cm-json.h"
#include "cm-log.h"
#include "cm-time.h"
#include "cm-util.h"

#define MAX_METERS 4096

/* The last values of one domain, for /metrics. */
typedef struct {
    char uuid[37], name[128];
    int64_t instance_id;
    bool running;
    double cpu_cores, memory_used_mib;
    bool has_cpu, has_mem;
    uint64_t cpu_time_ns, disk_rd_bytes, disk_wr_bytes, net_rx_bytes, net_tx_bytes;
} Gauge;

struct AgAgent {
    AgConfig *config;
    AgCollector *collector;
    AgSpool *spool;
    AgPush *push;
    char *token;
    AgMeter *meters;
    size_t n_meters;
    AgHostMeter host;
    struct MHD_Daemon *mhd;
    AgTiming timing;
    AgBudget budget;

    pthread_mutex_t lock; /* guards what /metrics reads */
    Gauge *gauges;
    size_t n_gauges;
    double cycle_seconds, slow_seconds;
    uint64_t cycles, cycle_errors, overruns, slow_reads, slow_shed, slow_errors;
    bool shedding;
    bool libvirt_up;
    int64_t host_cpus, host_memory_mib, domains;
};

/* ---- records ---- */

static void add_num(json_object *o, const char *key, bool have, double v)
{
    json_object_object_add(o, key, have ? json_object_new_double(round(v * 1e6) / 1e6) : NULL);
}

static void add_int(json_object *o, const char *key, bool have, int64_t v)
{
    json_object_object_add(o, key, have ? json_object_new_int64(v) : NULL);
}

static char *window_json(const AgWindow *w, AgRecordKind *ret_kind)
{
    _cleanup_json_ json_object *o = json_object_new_object();
    bool ours = w->instance_id > 0;
    if (ours)
        json_object_object_add(o, "instance", json_object_new_int64(w->instance_id));
    json_object_object_add(o, "uuid", json_object_new_string(w->uuid));
    if (!ours)
        json_object_object_add(o, "name", json_object_new_string(w->name));
    json_object_object_add(o, "start", json_object_new_int64(w->start));
    json_object_object_add(o, "duration", json_object_new_int64(w->duration));
    json_object_object_add(o, "readings", json_object_new_int64(w->readings));
    json_object_object_add(o, "expected", json_object_new_int64(w->expected));
    add_int(o, "vcpus", w->has_vcpus, w->vcpus);
    add_int(o, "memory_mib", w->has_memory_mib, w->memory_mib);
    add_num(o, "cpu_cores_avg", w->has_cpu, w->cpu_avg);
    add_num(o, "cpu_cores_max", w->has_cpu, w->cpu_max);
    add_num(o, "memory_used_mib_avg", w->has_mem, w->mem_avg);
    add_num(o, "memory_used_mib_max", w->has_mem, w->mem_max);
    add_int(o, "net_rx_bytes", w->has_net, (int64_t)w->net_rx_bytes);
    add_int(o, "net_tx_bytes", w->has_net, (int64_t)w->net_tx_bytes);
    if (ours) {
        json_object_object_add(o, "memory_source",
                               w->has_mem && w->mem_source ? json_object_new_string(w->mem_source)
                                                           : NULL);
        add_int(o, "disk_read_bytes", w->has_disk, (int64_t)w->disk_rd_bytes);
        add_int(o, "disk_write_bytes", w->has_disk, (int64_t)w->disk_wr_bytes);
        add_int(o, "disk_read_requests", w->has_disk, (int64_t)w->disk_rd_reqs);
        add_int(o, "disk_write_requests", w->has_disk, (int64_t)w->disk_wr_reqs);
        add_int(o, "net_rx_packets", w->has_net, (int64_t)w->net_rx_pkts);
        add_int(o, "net_tx_packets", w->has_net, (int64_t)w->net_tx_pkts);
    }
    /* What the slow groups measured: memory observations and disk readings out of
     * window / slow_interval, and the slow readings the cycle budget shed. */
    json_object_object_add(o, "memory_readings", json_object_new_int64(w->memory_readings));
    if (ours)
        json_object_object_add(o, "disk_readings", json_object_new_int64(w->disk_readings));
    json_object_object_add(o, "slow_expected", json_object_new_int64(w->slow_expected));
    json_object_object_add(o, "shed", json_object_new_int64(w->shed));
    *ret_kind = ours ? AG_RECORD_INSTANCE : AG_RECORD_UNOWNED;
    return strdup(cm_json_to_string(o, NULL));
}

static char *host_json(const AgHostWindow *w)
{
    _cleanup_json_ json_object *o = json_object_new_object();
    json_object_object_add(o, "start", json_object_new_int64(w->start));
    json_object_object_add(o, "duration", json_object_new_int64(w->duration));
    json_object_object_add(o, "readings", json_object_new_int64(w->readings));
    json_object_object_add(o, "expected", json_object_new_int64(w->expected));
    add_int(o, "cpus", w->cpus > 0, w->cpus);
    add_int(o, "memory_mib", w->memory_mib > 0, w->memory_mib);
    add_num(o, "cpu_used_cores_avg", w->has_cpu, w->cpu_avg);
    add_num(o, "cpu_used_cores_max", w->has_cpu, w->cpu_max);
    add_num(o, "memory_used_mib_avg", w->has_mem, w->mem_avg);
    add_int(o, "domains_max", true, w->domains_max);
    add_num(o, "cycle_seconds_avg", true, w->cycle_avg);
    add_num(o, "cycle_seconds_max", true, w->cycle_max);
    return strdup(cm_json_to_string(o, NULL));
}

/* ---- the meters' state, kept in the spool so a restart continues the window ---- */

/* Saved state: a version and the size of the struct, so another build's bytes are ignored. */
#define METER_STATE_MAGIC 0x43424d32u /* "CBM2": with the tiers' slow baseline and slot */

typedef struct {
    uint32_t magic;
    uint32_t size;
} StateHeader;

static void restore_state(void *userdata, const char *name, const void *data, size_t len)
{
    AgAgent *a = userdata;
    StateHeader h;
    if (len < sizeof(h))
        return;
    memcpy(&h, data, sizeof(h));
    if (h.magic != METER_STATE_MAGIC)
        return;
    if (strcmp(name, "host") == 0) {
        if (h.size == sizeof(AgHostMeter) && len == sizeof(h) + sizeof(AgHostMeter))
            memcpy(&a->host, (const char *)data + sizeof(h), sizeof(AgHostMeter));
        return;
    }
    if (h.size != sizeof(AgMeter) || len != sizeof(h) + sizeof(AgMeter) ||
        a->n_meters == MAX_METERS)
        return;
    memcpy(&a->meters[a->n_meters++], (const char *)data + sizeof(h), sizeof(AgMeter));
}

/* The states to save this cycle; @ret_blobs holds their bytes (free it after the append). */
static int states_build(AgAgent *a, AgState **ret_states, char **ret_blobs, size_t *ret_n)
{
    size_t n = a->n_meters + 1;
    size_t stride_m = sizeof(StateHeader) + sizeof(AgMeter);
    size_t stride_h = sizeof(StateHeader) + sizeof(AgHostMeter);
    AgState *st = calloc(n, sizeof(*st));
    char *blobs = malloc(a->n_meters * stride_m + stride_h);
    if (!st || !blobs) {
        free(st);
        free(blobs);
        return -ENOMEM;
    }
    for (size_t i = 0; i < a->n_meters; i++) {
        StateHeader h = {METER_STATE_MAGIC, sizeof(AgMeter)};
        char *p = blobs + i * stride_m;
        memcpy(p, &h, sizeof(h));
        memcpy(p + sizeof(h), &a->meters[i], sizeof(AgMeter));
        st[i] = (AgState){a->meters[i].uuid, p, stride_m};
    }
    StateHeader h = {METER_STATE_MAGIC, sizeof(AgHostMeter)};
    char *p = blobs + a->n_meters * stride_m;
    memcpy(p, &h, sizeof(h));
    memcpy(p + sizeof(h), &a->host, sizeof(AgHostMeter));
    st[a->n_meters] = (AgState){"host", p, stride_h};
    *ret_states = st;
    *ret_blobs = blobs;
    *ret_n = n;
    return 0;
}

/* ---- the cycle ---- */

static AgMeter *meter_for(AgAgent *a, const AgDomainStats *s)
{
    for (size_t i = 0; i < a->n_meters; i++)
        if (strcmp(a->meters[i].uuid, s->uuid) == 0)
            return &a->meters[i];
    if (a->n_meters == MAX_METERS)
        return NULL;
    AgMeter *m = &a->meters[a->n_meters++];
    ag_meter_init(m, s->uuid, s->name, s->instance_id);
    return m;
}

static int push_record(AgRecord **recs, size_t *n, size_t *cap, AgRecordKind kind, char *json)
{
    if (!json)
        return -ENOMEM;
    if (*n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 64;
        AgRecord *nr = realloc(*recs, ncap * sizeof(*nr));
        if (!nr) {
            free(json);
            return -ENOMEM;
        }
        *recs = nr;
        *cap = ncap;
    }
    (*recs)[(*n)++] = (AgRecord){kind, json};
    return 0;
}

/* The slots of the domains' slow readings, given out least-loaded first to meters without
 * one (new domains, or a slow interval changed since the state was saved). */
static void assign_slots(AgAgent *a, AgMeter **by_stat, size_t n)
{
    int slots = ag_tier_slots(&a->timing);
    _cleanup_free_ unsigned *load = calloc((size_t)slots, sizeof(unsigned));
    if (!load)
        return;
    for (size_t i = 0; i < a->n_meters; i++)
        if (a->meters[i].slot >= slots)
            a->meters[i].slot = -1;
        else if (a->meters[i].slot >= 0)
            load[a->meters[i].slot]++;
    for (size_t i = 0; i < n; i++) {
        AgMeter *m = by_stat[i];
        if (m && m->slot < 0) {
            m->slot = ag_tier_assign(load, slots, ag_tier_hash(m->uuid));
            load[m->slot]++;
        }
    }
}

/* What one cycle did about the slow groups. */
typedef struct {
    size_t read, shed;
    int64_t ns; /* the slow call's time */
    bool failed;
} SlowResult;

/* Tiered: reads the slow groups of the domains whose slot falls on this cycle, as many as the
 * budget lets it; the others due are marked shed. */
static void read_slow(AgAgent *a, AgDomainStats *stats, AgMeter **by_stat, size_t n, int64_t t0,
                      int64_t wall, SlowResult *res)
{
    int slots = ag_tier_slots(&a->timing);
    int64_t tick = ag_tier_tick(&a->timing, wall);
    _cleanup_free_ int *slot = calloc(n + 1, sizeof(int));
    _cleanup_free_ bool *running = calloc(n + 1, sizeof(bool));
    _cleanup_free_ bool *want = calloc(n + 1, sizeof(bool));
    _cleanup_free_ AgTierAction *plan = calloc(n + 1, sizeof(AgTierAction));
    CmError serr = {0};
    size_t due, allow, n_read;
    int64_t t_slow;
    int got;

    memset(res, 0, sizeof(*res));
    if (!slot || !running || !want || !plan) {
        res->failed = true;
        return;
    }
    assign_slots(a, by_stat, n);
    for (size_t i = 0; i < n; i++) {
        slot[i] = by_stat[i] ? by_stat[i]->slot : -1;
        running[i] = by_stat[i] && stats[i].running;
    }
    due = ag_tier_count_due(slot, running, n, slots, tick);
    allow = ag_budget_allow(&a->budget, cm_mono_ns() - t0, due);
    n_read = ag_tier_plan(slot, running, n, slots, tick, allow, plan);
    for (size_t i = 0; i < n; i++) {
        want[i] = plan[i] == AG_TIER_READ;
        stats[i].shed = plan[i] == AG_TIER_SHED;
        res->shed += stats[i].shed;
    }
    if (n_read == 0)
        return;
    t_slow = cm_mono_ns();
    got = ag_collector_sample_slow(a->collector, stats, n, want, &serr);
    res->ns = cm_mono_ns() - t_slow;
    if (got < 0) {
        cm_log_warning("slow groups: %s", serr.message);
        res->failed = true;
        return;
    }
    res->read = (size_t)got;
}

int ag_agent_cycle(AgAgent *a, CmError *err)
{
    _cleanup_free_ AgDomainStats *stats = NULL;
    _cleanup_free_ bool *seen = NULL;
    _cleanup_free_ AgMeter **by_stat = NULL;
    AgRecord *recs = NULL;
    size_t n = 0, n_recs = 0, cap_recs = 0;
    SlowResult slow = {0};
    AgHostStats host;
    int64_t t0 = cm_mono_ns(), now_mono, wall;
    bool tiered = a->timing.slow_interval > a->timing.interval;
    /* Tiers off: every group in the one bulk call; after a cycle that overran, the cheap ones
     * and cpu-total only. */
    unsigned groups = tiered              ? AG_GROUPS_FAST
                      : a->budget.overran ? AG_GROUPS_FAST | AG_GROUPS_CPU
                                          : AG_GROUPS_ALL;
    int r, rr = 0;

    r = ag_collector_sample(a->collector, groups, &stats, &n, &host, err);
    /* The readings' time: the counters are those of the bulk call (the slow call after it
     * reads no counter that time divides). */
    now_mono = cm_mono_ns();
    wall = cm_now_ms() / 1000;
    seen = calloc(a->n_meters + n + 1, sizeof(bool));
    by_stat = calloc(n + 1, sizeof(*by_stat));
    if (!seen || !by_stat)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    for (size_t i = 0; r >= 0 && i < n; i++)
        by_stat[i] = meter_for(a, &stats[i]);
    if (r >= 0 && tiered) {
        read_slow(a, stats, by_stat, n, t0, wall, &slow);
    } else if (r >= 0) {
        for (size_t i = 0; i < n; i++) {
            stats[i].shed = !(groups & AG_GROUPS_SLOW) && stats[i].running;
            slow.shed += stats[i].shed;
            slow.read += (groups & AG_GROUPS_SLOW) && stats[i].running;
        }
    }

    for (size_t i = 0; r >= 0 && i < n; i++) {
        AgMeter *m = by_stat[i];
        AgWindow w;
        if (!m)
            continue;
        seen[m - a->meters] = true;
        if (ag_meter_observe(m, &stats[i], now_mono, wall, &a->timing, &w)) {
            AgRecordKind kind;
            char *json = window_json(&w, &kind);
            if (push_record(&recs, &n_recs, &cap_recs, kind, json) < 0)
                rr = -ENOMEM;
        }
    }
    /* Domains not seen (gone, or libvirt away): their windows still end on time. */
    for (size_t i = 0; i < a->n_meters; i++) {
        AgWindow w;
        if (seen[i])
            continue;
        if (ag_meter_flush(&a->meters[i], wall, &a->timing, &w)) {
            AgRecordKind kind;
            char *json = window_json(&w, &kind);
            if (push_record(&recs, &n_recs, &cap_recs, kind, json) < 0)
                rr = -ENOMEM;
        }
    }
    /* Forget meters of domains gone for two windows. */
    for (size_t i = 0; i < a->n_meters;) {
        if (!seen[i] && wall - a->meters[i].last_seen_wall > 2 * a->config->window &&
            a->meters[i].readings == 0) {
            a->meters[i] = a->meters[--a->n_meters];
            seen[i] = seen[a->n_meters];
        } else {
            i++;
        }
    }
    double cycle_s = (double)(cm_mono_ns() - t0) / 1e9;
    if (r >= 0) {
        AgHostWindow hw;
        if (ag_host_meter_observe(&a->host, &host, cycle_s, wall, a->config->window,
                                  a->config->interval, &hw) &&
            push_record(&recs, &n_recs, &cap_recs, AG_RECORD_HOST, host_json(&hw)) < 0)
            rr = -ENOMEM;
    }

    {
        /* Windows and the meters' state in one transaction: after a kill -9 the restarted
         * agent continues exactly from the last committed cycle. */
        _cleanup_free_ AgState *states = NULL;
        _cleanup_free_ char *blobs = NULL;
        size_t n_states = 0;
        CmError serr = {0};
        if (states_build(a, &states, &blobs, &n_states) < 0 ||
            ag_spool_append(a->spool, recs, n_recs, states, n_states, &serr) < 0) {
            cm_log_error("spool: %s", serr.message);
            rr = -EIO;
        } else if (n_recs) {
            ag_push_kick(a->push);
        }
    }
    ag_spool_records_free(recs, n_recs);
    free(recs);

    /* What /metrics shows. */
    pthread_mutex_lock(&a->lock);
    a->cycles++;
    /* The whole cycle, the spool's commit included (the host window above could only have
     * the time up to it). */
    {
        int64_t cycle_ns = cm_mono_ns() - t0;
        a->cycle_seconds = (double)cycle_ns / 1e9;
        /* Tiers off, the slow part's cost is inside the one call: only an overrun counts. */
        ag_budget_update(&a->budget, cycle_ns, slow.ns, tiered ? slow.read : 0);
        a->overruns += a->budget.overran;
    }
    if (tiered && slow.read)
        a->slow_seconds = (double)slow.ns / 1e9;
    a->slow_reads += slow.read;
    a->slow_shed += slow.shed;
    a->slow_errors += slow.failed;
    a->shedding = slow.shed > 0;
    a->libvirt_up = r >= 0;
    if (r < 0)
        a->cycle_errors++;
    if (r >= 0) {
        Gauge *g = realloc(a->gauges, (n + 1) * sizeof(*g));
        if (g) {
            a->gauges = g;
            a->n_gauges = n;
            for (size_t i = 0; i < n; i++) {
                AgMeter *m = NULL;
                for (size_t k = 0; k < a->n_meters && !m; k++)
                    if (strcmp(a->meters[k].uuid, stats[i].uuid) == 0)
                        m = &a->meters[k];
                memset(&g[i], 0, sizeof(g[i]));
                cm_strscpy(g[i].uuid, sizeof(g[i].uuid), stats[i].uuid);
                cm_strscpy(g[i].name, sizeof(g[i].name), stats[i].name);
                g[i].instance_id = stats[i].instance_id;
                g[i].running = stats[i].running;
                g[i].cpu_time_ns = stats[i].cpu_time_ns;
                g[i].disk_rd_bytes = stats[i].disk_rd_bytes;
                g[i].disk_wr_bytes = stats[i].disk_wr_bytes;
                g[i].net_rx_bytes = stats[i].net_rx_bytes;
                g[i].net_tx_bytes = stats[i].net_tx_bytes;
                if (m && m->cpu_readings && m->cpu_dt_ns > 0) {
                    g[i].has_cpu = true;
                    g[i].cpu_cores = m->cpu_core_ns / m->cpu_dt_ns;
                }
                if (m && m->mem_readings) {
                    g[i].has_mem = true;
                    g[i].memory_used_mib = m->mem_sum / m->mem_readings;
                } else if (m && m->has_last_mem && stats[i].running) {
                    /* Before the window's first slow reading: the last value read. */
                    g[i].has_mem = true;
                    g[i].memory_used_mib = m->last_mem;
                }
            }
        }
        a->host_cpus = host.cpus;
        a->host_memory_mib = host.memory_mib;
        a->domains = host.domains;
    }
    pthread_mutex_unlock(&a->lock);
    return r < 0 ? r : rr;
}

/* ---- /metrics ---- */

static int append(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int append(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int n = vsnprintf(*buf + *len, *cap - *len, fmt, ap);
        va_end(ap);
        if (n < 0)
            return -EINVAL;
        if (*len + (size_t)n < *cap) {
            *len += (size_t)n;
            return 0;
        }
        size_t ncap = (*cap + (size_t)n + 1) * 2;
        char *nb = realloc(*buf, ncap);
        if (!nb)
            return -ENOMEM;
        *buf = nb;
        *cap = ncap;
    }
}

/* A label value in the exposition format: backslash, quote and newline escaped. */
static void label(char *out, size_t size, const char *s)
{
    size_t o = 0;
    for (; *s && o + 3 < size; s++) {
        if (*s == '\\' || *s == '"') {
            out[o++] = '\\';
            out[o++] = *s;
        } else if (*s == '\n') {
            out[o++] = '\\';
            out[o++] = 'n';
        } else {
            out[o++] = *s;
        }
    }
    out[o] = 0;
}

static char *metrics_text(AgAgent *a)
{
    size_t len = 0, cap = 4096;
    char *b = malloc(cap);
    AgSpoolStats sp = {0};
    AgPushStats ps = {0};
    CmError err = {0};
    int64_t now = cm_now_ms() / 1000;

    if (!b)
        return NULL;
    b[0] = 0;
    ag_spool_stats(a->spool, &sp, &err);
    ag_push_stats(a->push, &ps);
    pthread_mutex_lock(&a->lock);
    append(&b, &len, &cap,
           "# HELP cloudbroker_agent_cycle_seconds Time the last reading cycle took.\n"
           "# TYPE cloudbroker_agent_cycle_seconds gauge\n"
           "cloudbroker_agent_cycle_seconds %.6f\n"
           "# HELP cloudbroker_agent_cycles_total Reading cycles run.\n"
           "# TYPE cloudbroker_agent_cycles_total counter\n"
           "cloudbroker_agent_cycles_total %llu\n"
           "# HELP cloudbroker_agent_cycle_errors_total Cycles without libvirt (gaps).\n"
           "# TYPE cloudbroker_agent_cycle_errors_total counter\n"
           "cloudbroker_agent_cycle_errors_total %llu\n"
           "# HELP cloudbroker_agent_libvirt_up Whether the last cycle reached libvirt.\n"
           "# TYPE cloudbroker_agent_libvirt_up gauge\n"
           "cloudbroker_agent_libvirt_up %d\n"
           "# HELP cloudbroker_agent_libvirt_connects_total libvirt connections opened.\n"
           "# TYPE cloudbroker_agent_libvirt_connects_total counter\n"
           "cloudbroker_agent_libvirt_connects_total %llu\n"
           "# HELP cloudbroker_agent_spool_rows Windows waiting in the spool.\n"
           "# TYPE cloudbroker_agent_spool_rows gauge\n"
           "cloudbroker_agent_spool_rows %lld\n"
           "# HELP cloudbroker_agent_spool_bytes Bytes of windows waiting in the spool.\n"
           "# TYPE cloudbroker_agent_spool_bytes gauge\n"
           "cloudbroker_agent_spool_bytes %lld\n"
           "# HELP cloudbroker_agent_oldest_unsent_seconds Age of the oldest unsent window.\n"
           "# TYPE cloudbroker_agent_oldest_unsent_seconds gauge\n"
           "cloudbroker_agent_oldest_unsent_seconds %lld\n"
           "# HELP cloudbroker_agent_pushed_total Windows the broker acknowledged.\n"
           "# TYPE cloudbroker_agent_pushed_total counter\n"
           "cloudbroker_agent_pushed_total %lld\n"
           "# HELP cloudbroker_agent_dropped_total Oldest windows dropped from a full spool.\n"
           "# TYPE cloudbroker_agent_dropped_total counter\n"
           "cloudbroker_agent_dropped_total %lld\n"
           "# HELP cloudbroker_agent_rejected_total Windows the broker refused (set aside).\n"
           "# TYPE cloudbroker_agent_rejected_total counter\n"
           "cloudbroker_agent_rejected_total %lld\n"
           "# HELP cloudbroker_agent_push_failures_total Pushes that will be retried.\n"
           "# TYPE cloudbroker_agent_push_failures_total counter\n"
           "cloudbroker_agent_push_failures_total %llu\n"
           "# HELP cloudbroker_agent_host_cpus CPUs of the host.\n"
           "# TYPE cloudbroker_agent_host_cpus gauge\n"
           "cloudbroker_agent_host_cpus %lld\n"
           "# HELP cloudbroker_agent_host_memory_mib Memory of the host.\n"
           "# TYPE cloudbroker_agent_host_memory_mib gauge\n"
           "cloudbroker_agent_host_memory_mib %lld\n"
           "# HELP cloudbroker_agent_domains Domains on the host.\n"
           "# TYPE cloudbroker_agent_domains gauge\n"
           "cloudbroker_agent_domains %lld\n"
           "# HELP cloudbroker_agent_slow_interval_seconds Seconds between a domain's balloon "
           "and block readings.\n"
           "# TYPE cloudbroker_agent_slow_interval_seconds gauge\n"
           "cloudbroker_agent_slow_interval_seconds %lld\n"
           "# HELP cloudbroker_agent_slow_reads_total Balloon and block readings of a domain.\n"
           "# TYPE cloudbroker_agent_slow_reads_total counter\n"
           "cloudbroker_agent_slow_reads_total %llu\n"
           "# HELP cloudbroker_agent_slow_shed_total Balloon and block readings due but shed by "
           "the cycle budget.\n"
           "# TYPE cloudbroker_agent_slow_shed_total counter\n"
           "cloudbroker_agent_slow_shed_total %llu\n"
           "# HELP cloudbroker_agent_slow_errors_total Cycles whose balloon and block call "
           "failed.\n"
           "# TYPE cloudbroker_agent_slow_errors_total counter\n"
           "cloudbroker_agent_slow_errors_total %llu\n"
           "# HELP cloudbroker_agent_shedding Whether the last cycle shed slow readings.\n"
           "# TYPE cloudbroker_agent_shedding gauge\n"
           "cloudbroker_agent_shedding %d\n"
           "# HELP cloudbroker_agent_cycle_overruns_total Cycles longer than the interval.\n"
           "# TYPE cloudbroker_agent_cycle_overruns_total counter\n"
           "cloudbroker_agent_cycle_overruns_total %llu\n"
           "# HELP cloudbroker_agent_slow_seconds Time of the last balloon and block call.\n"
           "# TYPE cloudbroker_agent_slow_seconds gauge\n"
           "cloudbroker_agent_slow_seconds %.6f\n",
           a->cycle_seconds, (unsigned long long)a->cycles, (unsigned long long)a->cycle_errors,
           a->libvirt_up, (unsigned long long)ag_collector_connects(a->collector),
           (long long)sp.rows, (long long)sp.bytes,
           (long long)(sp.oldest_created ? now - sp.oldest_created : 0), (long long)sp.pushed_total,
           (long long)sp.dropped_total, (long long)sp.rejected_total,
           (unsigned long long)ps.failures, (long long)a->host_cpus, (long long)a->host_memory_mib,
           (long long)a->domains, (long long)a->timing.slow_interval,
           (unsigned long long)a->slow_reads, (unsigned long long)a->slow_shed,
           (unsigned long long)a->slow_errors, a->shedding, (unsigned long long)a->overruns,
           a->slow_seconds);
    append(&b, &len, &cap,
           "# HELP cloudbroker_instance_cpu_cores CPU cores used, average of the current "
           "window.\n# TYPE cloudbroker_instance_cpu_cores gauge\n"
           "# HELP cloudbroker_instance_memory_used_mib Memory used, average of the current "
           "window.\n# TYPE cloudbroker_instance_memory_used_mib gauge\n"
           "# HELP cloudbroker_instance_cpu_seconds_total CPU time (libvirt cpu.time).\n"
           "# TYPE cloudbroker_instance_cpu_seconds_total counter\n"
           "# HELP cloudbroker_instance_disk_bytes_total Disk bytes read and written.\n"
           "# TYPE cloudbroker_instance_disk_bytes_total counter\n"
           "# HELP cloudbroker_instance_net_bytes_total Network bytes received and sent.\n"
           "# TYPE cloudbroker_instance_net_bytes_total counter\n"
           "# HELP cloudbroker_instance_running Whether the domain runs.\n"
           "# TYPE cloudbroker_instance_running gauge\n");
    for (size_t i = 0; i < a->n_gauges; i++) {
        const Gauge *g = &a->gauges[i];
        char name[300], labels[512];
        label(name, sizeof(name), g->name);
        snprintf(labels, sizeof(labels), "uuid=\"%s\",name=\"%s\",instance=\"%lld\",owned=\"%s\"",
                 g->uuid, name, (long long)g->instance_id, g->instance_id > 0 ? "yes" : "no");
        append(&b, &len, &cap, "cloudbroker_instance_running{%s} %d\n", labels, g->running);
        append(&b, &len, &cap, "cloudbroker_instance_cpu_seconds_total{%s} %.9f\n", labels,
               (double)g->cpu_time_ns / 1e9);
        if (g->has_cpu)
            append(&b, &len, &cap, "cloudbroker_instance_cpu_cores{%s} %.6f\n", labels,
                   g->cpu_cores);
        if (g->has_mem)
            append(&b, &len, &cap, "cloudbroker_instance_memory_used_mib{%s} %.3f\n", labels,
                   g->memory_used_mib);
        append(&b, &len, &cap,
               "cloudbroker_instance_disk_bytes_total{%s,op=\"read\"} %llu\n"
               "cloudbroker_instance_disk_bytes_total{%s,op=\"write\"} %llu\n"
               "cloudbroker_instance_net_bytes_total{%s,dir=\"rx\"} %llu\n"
               "cloudbroker_instance_net_bytes_total{%s,dir=\"tx\"} %llu\n",
               labels, (unsigned long long)g->disk_rd_bytes, labels,
               (unsigned long long)g->disk_wr_bytes, labels, (unsigned long long)g->net_rx_bytes,
               labels, (unsigned long long)g->net_tx_bytes);
    }
    pthread_mutex_unlock(&a->lock);
    return b;
}

static void free_buffer(void *p)
{
    free(p);
}

static enum MHD_Result metrics_handler(void *cls, struct MHD_Connection *conn, const char *url,
                                       const char *method, const char *version, const char *upload,
                                       size_t *upload_size, void **ctx)
{
    AgAgent *a = cls;
    struct MHD_Response *resp;
    enum MHD_Result ret;
    unsigned status = MHD_HTTP_OK;
    char *body;

    (void)version;
    (void)upload;
    (void)ctx;
    if (*upload_size)
        return MHD_NO;
    if (strcmp(method, "GET") != 0 || strcmp(url, "/metrics") != 0) {
        status = strcmp(url, "/metrics") == 0 ? MHD_HTTP_METHOD_NOT_ALLOWED : MHD_HTTP_NOT_FOUND;
        body = strdup("not found\n");
    } else {
        body = metrics_text(a);
    }
    if (!body)
        return MHD_NO;
    resp = MHD_create_response_from_buffer_with_free_callback(strlen(body), body, free_buffer);
    if (!resp) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            "text/plain; version=0.0.4; charset=utf-8");
    ret = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static int metrics_start(AgAgent *a, CmError *err)
{
    _cleanup_free_ char *host = NULL;
    uint16_t port;
    struct sockaddr_in sa = {.sin_family = AF_INET};
    struct sockaddr_in6 sa6 = {.sin6_family = AF_INET6};
    const struct sockaddr *addr;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL;

    if (!a->config->metrics_listen)
        return 0;
    if (cm_parse_listen(a->config->metrics_listen, &host, &port) < 0)
        return cm_error_set(err, CM_ERROR_INVALID, "metrics_listen",
                            "metrics_listen must be IPv4:PORT or [IPv6]:PORT");
    if (inet_pton(AF_INET, host, &sa.sin_addr) == 1) {
        sa.sin_port = htons(port);
        addr = (const struct sockaddr *)&sa;
    } else if (inet_pton(AF_INET6, host, &sa6.sin6_addr) == 1) {
        sa6.sin6_port = htons(port);
        addr = (const struct sockaddr *)&sa6;
        flags |= MHD_USE_IPv6;
    } else {
        return cm_error_set(err, CM_ERROR_INVALID, "metrics_listen",
                            "metrics_listen must be IPv4:PORT or [IPv6]:PORT");
    }
    a->mhd = MHD_start_daemon(flags, port, NULL, NULL, metrics_handler, a, MHD_OPTION_SOCK_ADDR,
                              addr, MHD_OPTION_CONNECTION_LIMIT, 16u, MHD_OPTION_CONNECTION_TIMEOUT,
                              10u, MHD_OPTION_END);
    if (!a->mhd)
        return cm_error_set(err, CM_ERROR_UNAVAILABLE, "metrics_listen", "cannot listen on %s",
                            a->config->metrics_listen);
    return 0;
}

int ag_agent_new(AgConfig *config, AgAgent **ret, CmError *err)
{
    AgAgent *a = calloc(1, sizeof(*a));
    int r;

    if (!a)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    a->config = config;
    a->timing = (AgTiming){config->window, config->interval, ag_config_slow_interval(config)};
    ag_budget_init(&a->budget, config->interval);
    pthread_mutex_init(&a->lock, NULL);
    a->meters = calloc(MAX_METERS, sizeof(*a->meters));
    if (!a->meters) {
        ag_agent_free(a);
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    }
    r = ag_config_read_token(config, &a->token, err);
    if (r >= 0)
        r = ag_spool_open(config->spool, config->spool_max_bytes, &a->spool, err);
    if (r >= 0 && ag_spool_load_states(a->spool, restore_state, a, err) > 0)
        cm_log_info("continuing %zu meter(s) from the last run", a->n_meters);
    if (r >= 0)
        r = ag_collector_new(config->uri, &a->collector, err);
    if (r >= 0)
        r = ag_push_new(config, a->token, a->spool, &a->push, err);
    if (r < 0) {
        ag_agent_free(a);
        return r;
    }
    *ret = a;
    return 0;
}

int ag_agent_start(AgAgent *a, CmError *err)
{
    int r = metrics_start(a, err);
    if (r < 0)
        return r;
    if (ag_push_start(a->push) < 0)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "cannot start the pusher");
    return 0;
}

void ag_agent_stop(AgAgent *a)
{
    if (a->mhd) {
        MHD_stop_daemon(a->mhd);
        a->mhd = NULL;
    }
    if (a->push)
        ag_push_stop(a->push);
}

AgAgent *ag_agent_free(AgAgent *a)
{
    if (!a)
        return NULL;
    ag_agent_stop(a);
    ag_push_free(a->push);
    ag_collector_free(a->collector);
    ag_spool_close(a->spool);
    if (a->token)
        explicit_bzero(a->token, strlen(a->token));
    free(a->token);
    free(a->meters);
    free(a->gauges);
    pthread_mutex_destroy(&a->lock);
    free(a);
    return NULL;
}
