/* SPDX-License-Identifier: Apache-2.0 */
#include <string.h>

#include "ag-window.h"
#include "cm-util.h"

void ag_meter_init(AgMeter *m, const char *uuid, const char *name, int64_t instance_id)
{
    memset(m, 0, sizeof(*m));
    cm_strscpy(m->uuid, sizeof(m->uuid), uuid);
    cm_strscpy(m->name, sizeof(m->name), name);
    m->instance_id = instance_id;
    m->window_start = -1;
    m->slot = -1;
}

static void window_reset(AgMeter *m, int64_t start)
{
    m->window_start = start;
    m->readings = 0;
    m->cpu_core_ns = m->cpu_dt_ns = m->cpu_max = 0;
    m->cpu_readings = 0;
    m->mem_sum = m->mem_max = 0;
    m->mem_readings = m->disk_readings = m->shed = 0;
    m->mem_source = 0;
    m->has_disk = m->has_net = false;
    memset(m->disk, 0, sizeof(m->disk));
    memset(m->net, 0, sizeof(m->net));
}

static int finish(AgMeter *m, const AgTiming *t, AgWindow *w)
{
    int64_t window_s = t->window, interval_s = t->interval;
    int64_t slow_s = t->slow_interval > interval_s ? t->slow_interval : interval_s;
    if (m->window_start < 0 || m->readings == 0)
        return 0;
    memset(w, 0, sizeof(*w));
    cm_strscpy(w->uuid, sizeof(w->uuid), m->uuid);
    cm_strscpy(w->name, sizeof(w->name), m->name);
    w->instance_id = m->instance_id;
    w->start = m->window_start;
    w->duration = window_s;
    w->readings = m->readings;
    w->expected = (int)(window_s / (interval_s > 0 ? interval_s : 1));
    if (w->expected < 1)
        w->expected = 1;
    if (w->readings > w->expected)
        w->readings = w->expected; /* a cycle that came early does not make coverage > 1 */
    w->slow_expected = (int)(window_s / (slow_s > 0 ? slow_s : 1));
    if (w->slow_expected < 1)
        w->slow_expected = 1;
    /* Not capped: the counts behind the figures (a domain's first window also has the
     * observation that started its baseline). */
    w->memory_readings = m->mem_readings;
    w->disk_readings = m->disk_readings;
    w->shed = m->shed;
    w->has_vcpus = m->has_vcpus;
    w->vcpus = m->vcpus;
    w->has_memory_mib = m->has_memory_mib;
    w->memory_mib = m->memory_mib;
    w->has_cpu = m->cpu_readings > 0 && m->cpu_dt_ns > 0;
    w->cpu_avg = w->has_cpu ? m->cpu_core_ns / m->cpu_dt_ns : 0;
    w->cpu_max = m->cpu_max;
    w->has_mem = m->mem_readings > 0;
    w->mem_avg = w->has_mem ? m->mem_sum / m->mem_readings : 0;
    w->mem_max = m->mem_max;
    w->mem_source = m->mem_source == 1 ? "balloon" : m->mem_source == 2 ? "rss" : NULL;
    w->has_disk = m->has_disk;
    w->disk_rd_bytes = m->disk[0];
    w->disk_wr_bytes = m->disk[1];
    w->disk_rd_reqs = m->disk[2];
    w->disk_wr_reqs = m->disk[3];
    w->has_net = m->has_net;
    w->net_rx_bytes = m->net[0];
    w->net_tx_bytes = m->net[1];
    w->net_rx_pkts = m->net[2];
    w->net_tx_pkts = m->net[3];
    return 1;
}

int ag_meter_flush(AgMeter *m, int64_t wall_s, const AgTiming *t, AgWindow *ret_done)
{
    int done;
    if (m->window_start < 0 || wall_s < m->window_start + t->window)
        return 0;
    done = finish(m, t, ret_done);
    window_reset(m, wall_s - wall_s % t->window);
    return done;
}

/* Adds counter deltas into @acc when every counter moved forward; else a new baseline. */
static bool deltas(const uint64_t *now, const uint64_t *base, size_t n, uint64_t *acc)
{
    for (size_t i = 0; i < n; i++)
        if (now[i] < base[i])
            return false;
    for (size_t i = 0; i < n; i++)
        acc[i] += now[i] - base[i];
    return true;
}

int ag_meter_observe(AgMeter *m, const AgDomainStats *s, int64_t mono_ns, int64_t wall_s,
                     const AgTiming *t, AgWindow *ret_done)
{
    int64_t window_s = t->window;
    int done = 0;
    bool counted = false;
    /* A domain restarted since the baseline (a new id) has counters that started again,
     * even when they have already passed the old ones: no reading across it. */
    if ((m->have_base || m->have_slow_base) && s->domain_id != m->base_domain_id)
        m->have_base = m->have_slow_base = false;
    /* A reading covers the interval that ends now, so it belongs to the window that interval
     * lies in: cycles fall on interval multiples, and the reading taken at a window's first
     * second is the previous window's last. */
    int64_t at = m->have_base && s->running && wall_s > m->last_seen_wall ? wall_s - 1 : wall_s;
    int64_t start = at - at % window_s;
    uint64_t disk_now[4] = {s->disk_rd_bytes, s->disk_wr_bytes, s->disk_rd_reqs, s->disk_wr_reqs};
    uint64_t net_now[4] = {s->net_rx_bytes, s->net_tx_bytes, s->net_rx_pkts, s->net_tx_pkts};

    if (m->window_start >= 0 && start > m->window_start)
        done = finish(m, t, ret_done);
    if (m->window_start != start)
        window_reset(m, start);
    m->last_seen_wall = wall_s;
    cm_strscpy(m->name, sizeof(m->name), s->name);
    m->instance_id = s->instance_id;

    if (s->has_vcpus) {
        m->has_vcpus = true;
        m->vcpus = s->vcpus;
    }
    if (s->slow && s->has_balloon_current) {
        m->has_memory_mib = true;
        m->memory_mib = s->balloon_current_kib / 1024;
    }

    if (m->have_base && mono_ns > m->base_mono_ns && s->running) {
        double dt = (double)(mono_ns - m->base_mono_ns);

        if (s->has_cpu && m->base_has_cpu && s->cpu_time_ns >= m->base_cpu_ns) {
            double cores = (double)(s->cpu_time_ns - m->base_cpu_ns) / dt;
            m->cpu_core_ns += cores * dt;
            m->cpu_dt_ns += dt;
            if (cores > m->cpu_max)
                m->cpu_max = cores;
            m->cpu_readings++;
            counted = true;
        }
        if (s->has_net && m->base_has_net && deltas(net_now, m->base_net, 4, m->net)) {
            m->has_net = true;
            counted = true;
        }
    }
    /* Disk counters have a baseline of their own, from one slow observation to the next: the
     * delta over a minute is as exact as six over ten seconds. */
    if (s->slow && s->running && m->have_slow_base && s->has_disk && m->base_has_disk &&
        deltas(disk_now, m->base_disk, 4, m->disk)) {
        m->has_disk = true;
        m->disk_readings++;
        counted = true;
    }
    if (counted)
        m->readings++;
    if (s->shed && s->running)
        m->shed++;

    /* Memory is a level, not a counter: every running observation of it is a value. */
    if (s->running && s->slow) {
        double used = -1;
        int source = 0;
        if (s->has_balloon_available && s->has_balloon_unused &&
            s->balloon_available_kib >= s->balloon_unused_kib) {
            used = (double)(s->balloon_available_kib - s->balloon_unused_kib) / 1024.0;
            source = 1;
        } else if (s->has_balloon_rss) {
            used = (double)s->balloon_rss_kib / 1024.0;
            source = 2;
        }
        if (used >= 0) {
            m->mem_sum += used;
            if (used > m->mem_max)
                m->mem_max = used;
            m->mem_readings++;
            m->mem_source = source;
            m->has_last_mem = true;
            m->last_mem = used;
        }
    }

    /* The new baseline: every counter as read now (a counter that went back starts here). */
    m->have_base = s->running;
    m->base_mono_ns = mono_ns;
    m->base_domain_id = s->domain_id;
    m->base_has_cpu = s->has_cpu;
    m->base_cpu_ns = s->cpu_time_ns;
    /* A pause keeps the disk baseline (same QEMU, same counters; a restart changes the
     * domain id): the bytes before it are counted when the next slow reading comes. */
    if (s->slow) {
        m->have_slow_base = s->running;
        m->base_has_disk = s->has_disk;
        memcpy(m->base_disk, disk_now, sizeof(disk_now));
    }
    m->base_has_net = s->has_net;
    memcpy(m->base_net, net_now, sizeof(net_now));
    return done;
}

int ag_host_meter_observe(AgHostMeter *m, const AgHostStats *s, double cycle_s, int64_t wall_s,
                          int64_t window_s, int64_t interval_s, AgHostWindow *ret_done)
{
    /* As for a domain: the reading belongs to the window of the interval that ends now. */
    int64_t at = m->have_base && wall_s > m->last_wall ? wall_s - 1 : wall_s;
    int64_t start = at - at % window_s;
    int done = 0;

    if (m->window_start > 0 && start > m->window_start && m->readings > 0) {
        memset(ret_done, 0, sizeof(*ret_done));
        ret_done->start = m->window_start;
        ret_done->duration = window_s;
        ret_done->expected = (int)(window_s / (interval_s > 0 ? interval_s : 1));
        ret_done->readings = m->readings > ret_done->expected ? ret_done->expected : m->readings;
        ret_done->cpus = m->cpus;
        ret_done->memory_mib = m->memory_mib;
        ret_done->domains_max = m->domains_max;
        ret_done->has_cpu = m->cpu_readings > 0;
        ret_done->cpu_avg = m->cpu_readings ? m->cpu_sum / m->cpu_readings : 0;
        ret_done->cpu_max = m->cpu_max;
        ret_done->has_mem = m->mem_readings > 0;
        ret_done->mem_avg = m->mem_readings ? m->mem_sum / m->mem_readings : 0;
        ret_done->cycle_avg = m->cycle_sum / m->readings;
        ret_done->cycle_max = m->cycle_max;
        done = 1;
    }
    if (m->window_start != start) {
        bool base = m->have_base;
        uint64_t b = m->base_busy, t = m->base_total;
        memset(m, 0, sizeof(*m));
        m->have_base = base;
        m->base_busy = b;
        m->base_total = t;
        m->window_start = start;
    }
    m->last_wall = wall_s;
    m->readings++;
    m->cpus = s->cpus;
    m->memory_mib = s->memory_mib;
    if (s->domains > m->domains_max)
        m->domains_max = s->domains;
    m->cycle_sum += cycle_s;
    if (cycle_s > m->cycle_max)
        m->cycle_max = cycle_s;
    if (s->has_cpu && m->have_base && s->cpu_total_ns > m->base_total &&
        s->cpu_busy_ns >= m->base_busy) {
        /* Busy share of all CPUs' time, times the CPUs: cores in use. */
        double share =
            (double)(s->cpu_busy_ns - m->base_busy) / (double)(s->cpu_total_ns - m->base_total);
        double cores = share * (double)s->cpus;
        m->cpu_sum += cores;
        if (cores > m->cpu_max)
            m->cpu_max = cores;
        m->cpu_readings++;
    }
    if (s->has_cpu) {
        m->have_base = true;
        m->base_busy = s->cpu_busy_ns;
        m->base_total = s->cpu_total_ns;
    }
    if (s->has_memory) {
        m->mem_sum += (double)s->memory_used_mib;
        m->mem_readings++;
    }
    return done;
}
