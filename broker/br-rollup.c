/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "br-rollup.h"

void br_rollup_begin(BrRollupAcc *a, int64_t instance_id)
{
    double *cv = a->cpu_v, *mv = a->mem_v, *rv = a->rx_v, *tv = a->tx_v;
    size_t cap = a->cap;

    *a = (BrRollupAcc){.cpu_v = cv, .mem_v = mv, .rx_v = rv, .tx_v = tv, .cap = cap};
    a->row.instance_id = instance_id;
    a->row.cpu_max = a->row.mem_max = -1;
}

void br_rollup_acc_free(BrRollupAcc *a)
{
    free(a->cpu_v);
    free(a->mem_v);
    free(a->rx_v);
    free(a->tx_v);
    memset(a, 0, sizeof(*a));
}

static int grow(BrRollupAcc *a)
{
    size_t cap = a->cap ? a->cap * 2 : 512;
    double **v[] = {&a->cpu_v, &a->mem_v, &a->rx_v, &a->tx_v};

    for (size_t i = 0; i < 4; i++) {
        double *n = realloc(*v[i], cap * sizeof(double));
        if (!n)
            return -ENOMEM;
        *v[i] = n;
    }
    a->cap = cap;
    return 0;
}

int br_rollup_add(BrRollupAcc *a, const BrAssessmentPolicy *p, const BrRollupWindow *w)
{
    BrRollupRow *o = &a->row;
    int64_t rx = w->counters[BR_ROLLUP_NET_RX_BYTES], tx = w->counters[BR_ROLLUP_NET_TX_BYTES];
    double readings = (double)w->readings, duration = (double)w->duration;

    if ((size_t)o->windows == a->cap && grow(a) < 0)
        return -ENOMEM;
    o->duration = w->duration;
    o->windows++;
    o->readings += w->readings;
    o->expected += w->expected; /* the windows' own, until finish */
    o->vcpus = w->vcpus > o->vcpus ? w->vcpus : o->vcpus;
    o->memory_mib = w->memory_mib > o->memory_mib ? w->memory_mib : o->memory_mib;
    if (!isnan(w->cpu_avg)) {
        a->cpu_wsum += w->cpu_avg * readings;
        a->cpu_weight += readings;
        a->cpu_v[a->n_cpu++] = w->cpu_avg;
    }
    if (!isnan(w->cpu_max) && w->cpu_max > o->cpu_max)
        o->cpu_max = w->cpu_max;
    if (!isnan(w->mem_avg)) {
        a->mem_wsum += w->mem_avg * readings;
        a->mem_weight += readings;
        a->mem_v[a->n_mem++] = w->mem_avg;
    }
    if (!isnan(w->mem_max) && w->mem_max > o->mem_max)
        o->mem_max = w->mem_max;
    for (int k = 0; k < BR_ROLLUP_COUNTERS; k++) {
        if (w->counters[k] < 0)
            continue;
        if (__builtin_add_overflow(o->counters[k], w->counters[k], &o->counters[k]))
            o->counters[k] = INT64_MAX; /* counters are never negative */
        o->has_counter[k] = true;
    }
    if (rx >= 0 && w->duration > 0)
        a->rx_v[a->n_rx++] = (double)rx / duration;
    if (tx >= 0 && w->duration > 0)
        a->tx_v[a->n_tx++] = (double)tx / duration;
    if (!isnan(w->cpu_avg) && w->duration > 0) {
        bool rx_low = rx < 0 || (double)rx / duration < p->idle_net_in_bps;
        bool tx_low = tx < 0 || (double)tx / duration < p->idle_net_out_bps;
        o->idle_checked++;
        if (w->cpu_avg < p->idle_cpu_cores && rx_low && tx_low)
            o->idle_windows++;
    }
    return 0;
}

const BrRollupRow *br_rollup_finish(BrRollupAcc *a)
{
    BrRollupRow *o = &a->row;
    int64_t windows_per_day = o->duration > 0 ? 86400 / o->duration : 288;
    int64_t expected_per_window = o->windows ? o->expected / o->windows : 1;

    /* The histograms are shares of the day's largest size. */
    for (size_t i = 0; o->vcpus > 0 && i < a->n_cpu; i++)
        br_histogram_add(&o->cpu_h, a->cpu_v[i] / (double)o->vcpus);
    for (size_t i = 0; o->memory_mib > 0 && i < a->n_mem; i++)
        br_histogram_add(&o->mem_h, a->mem_v[i] / (double)o->memory_mib);
    o->expected = windows_per_day * (expected_per_window < 1 ? 1 : expected_per_window);
    o->coverage = fmin(1, (double)o->readings / (double)o->expected);
    o->has_cpu = a->cpu_weight > 0;
    o->cpu_avg = o->has_cpu ? a->cpu_wsum / a->cpu_weight : 0;
    o->cpu_p95 = br_quantile_exact(a->cpu_v, a->n_cpu, 0.95);
    o->has_cpu_p95 = o->cpu_p95 >= 0;
    o->has_cpu_max = o->cpu_max >= 0;
    o->has_mem = a->mem_weight > 0;
    o->mem_avg = o->has_mem ? a->mem_wsum / a->mem_weight : 0;
    o->mem_p95 = br_quantile_exact(a->mem_v, a->n_mem, 0.95);
    o->has_mem_p95 = o->mem_p95 >= 0;
    o->has_mem_max = o->mem_max >= 0;
    o->has_rx = a->n_rx > 0;
    o->rx_p95 = br_quantile_exact(a->rx_v, a->n_rx, 0.95);
    o->has_tx = a->n_tx > 0;
    o->tx_p95 = br_quantile_exact(a->tx_v, a->n_tx, 0.95);
    return o;
}
