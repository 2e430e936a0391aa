/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "br-assess.h"
#include "br-daemon.h"
#include "br-system.h"
#include "cm-json.h"
#include "cm-log.h"
#include "cm-time.h"
#include "cm-util.h"
#include "cm-worker.h"

/* ---- accumulating usage (pure) ---- */

static BrHistogram *sized_slot(BrSizedHist *sh, int64_t size)
{
    int best = 0;
    for (int i = 0; i < sh->n; i++)
        if (sh->size[i] == size)
            return &sh->h[i];
    if (sh->n < BR_SIZED_HIST_SIZES) {
        sh->size[sh->n] = size;
        memset(&sh->h[sh->n], 0, sizeof(sh->h[sh->n]));
        return &sh->h[sh->n++];
    }
    /* More sizes than kept (never seen in practice): the nearest one. */
    for (int i = 1; i < sh->n; i++)
        if (llabs(sh->size[i] - size) < llabs(sh->size[best] - size))
            best = i;
    return &sh->h[best];
}

typedef struct {
    double value;
    uint64_t count;
} SizedBin;

static int cmp_sized_bin(const void *a, const void *b)
{
    const SizedBin *x = a, *y = b;
    return x->value < y->value ? -1 : x->value > y->value;
}

double br_sized_hist_util(const BrSizedHist *sh, double q, int64_t current)
{
    SizedBin bins[BR_SIZED_HIST_SIZES * BR_HISTOGRAM_BINS];
    size_t n = 0;
    uint64_t total = 0, rank, seen = 0;

    if (sh->n == 0 || current <= 0)
        return -1;
    if (sh->n == 1 && sh->size[0] == current)
        return br_histogram_quantile(&sh->h[0], q);
    for (int i = 0; i < sh->n; i++)
        for (int k = 0; k < BR_HISTOGRAM_BINS; k++)
            if (sh->h[i].bins[k]) {
                bins[n++] = (SizedBin){k / 100.0 * (double)sh->size[i], sh->h[i].bins[k]};
                total += sh->h[i].bins[k];
            }
    if (total == 0)
        return -1;
    qsort(bins, n, sizeof(*bins), cmp_sized_bin);
    rank = (uint64_t)ceil(q * (double)total);
    if (rank < 1)
        rank = 1;
    for (size_t i = 0; i < n; i++) {
        seen += bins[i].count;
        if (seen >= rank)
            return bins[i].value / (double)current;
    }
    return bins[n - 1].value / (double)current;
}

static void close_day(BrUsageStats *s)
{
    if (s->cur_day == 0)
        return;
    s->cpu_daily_max_sum += s->cur_cpu_max;
    s->mem_daily_max_sum += s->cur_mem_max;
    s->days++;
    s->cur_day = 0;
    s->cur_cpu_max = s->cur_mem_max = 0;
}

void br_usage_stats_add_window(BrUsageStats *s, const BrAssessmentPolicy *p, const BrUsageWindow *w)
{
    int64_t day = w->start / 86400 + 1; /* +1: 0 means "no day" */
    bool has_cpu = !isnan(w->cpu_avg), has_mem = !isnan(w->mem_avg);
    if (day != s->cur_day) {
        close_day(s);
        s->cur_day = day;
    }
    s->windows++;
    s->sample_windows++;
    s->readings += w->readings;
    s->duration = w->duration;
    s->seen_expected += (double)w->expected;
    s->seen_seconds += (double)w->duration;
    if (has_cpu) {
        s->cpu_wsum += w->cpu_avg * (double)w->readings;
        s->cpu_w += (double)w->readings;
        if (w->vcpus > 0) {
            br_histogram_add(&s->cpu_h, w->cpu_avg / (double)w->vcpus);
            br_histogram_add(sized_slot(&s->cpu_sh, w->vcpus), w->cpu_avg / (double)w->vcpus);
        }
        /* The idle rule looks at CPU and network together in each window. */
        bool rx_low = isnan(w->rx_bytes) || w->rx_bytes / (double)w->duration < p->idle_net_in_bps;
        bool tx_low = isnan(w->tx_bytes) || w->tx_bytes / (double)w->duration < p->idle_net_out_bps;
        s->checked++;
        if (w->cpu_avg < p->idle_cpu_cores && rx_low && tx_low)
            s->idle++;
    }
    double cmax = !isnan(w->cpu_max) ? w->cpu_max : has_cpu ? w->cpu_avg : 0;
    if (cmax > s->cpu_max)
        s->cpu_max = cmax;
    if (cmax > s->cur_cpu_max)
        s->cur_cpu_max = cmax;
    if (has_mem) {
        s->mem_wsum += w->mem_avg * (double)w->readings;
        s->mem_w += (double)w->readings;
        if (w->memory_mib > 0) {
            br_histogram_add(&s->mem_h, w->mem_avg / (double)w->memory_mib);
            br_histogram_add(sized_slot(&s->mem_sh, w->memory_mib),
                             w->mem_avg / (double)w->memory_mib);
        }
    }
    double mmax = !isnan(w->mem_max) ? w->mem_max : has_mem ? w->mem_avg : 0;
    if (mmax > s->mem_max)
        s->mem_max = mmax;
    if (mmax > s->cur_mem_max)
        s->cur_mem_max = mmax;
}

void br_usage_stats_add_rollup(BrUsageStats *s, const BrUsageDay *d)
{
    close_day(s);
    s->windows += d->windows;
    s->readings += d->readings;
    s->seen_expected += (double)d->expected;
    s->seen_seconds += 86400;
    if (d->duration > 0)
        s->duration = d->duration;
    s->rollup_days++;
    if (d->cpu_h) {
        br_histogram_merge(&s->cpu_h, d->cpu_h);
        if (d->vcpus > 0)
            br_histogram_merge(sized_slot(&s->cpu_sh, d->vcpus), d->cpu_h);
    }
    if (d->mem_h) {
        br_histogram_merge(&s->mem_h, d->mem_h);
        if (d->memory_mib > 0)
            br_histogram_merge(sized_slot(&s->mem_sh, d->memory_mib), d->mem_h);
    }
    if (!isnan(d->cpu_avg)) {
        s->cpu_wsum += d->cpu_avg * (double)d->readings;
        s->cpu_w += (double)d->readings;
    }
    if (!isnan(d->mem_avg)) {
        s->mem_wsum += d->mem_avg * (double)d->readings;
        s->mem_w += (double)d->readings;
    }
    if (!isnan(d->cpu_max)) {
        if (d->cpu_max > s->cpu_max)
            s->cpu_max = d->cpu_max;
        s->cpu_daily_max_sum += d->cpu_max;
    }
    if (!isnan(d->mem_max)) {
        if (d->mem_max > s->mem_max)
            s->mem_max = d->mem_max;
        s->mem_daily_max_sum += d->mem_max;
    }
    s->days++;
    s->idle += d->idle;
    s->checked += d->checked;
}

void br_usage_stats_finish(BrUsageStats *s)
{
    close_day(s);
    /* A reading is expected every interval of the whole span, whether its window or its day
     * arrived or not: a gap, a whole day included, lowers coverage; it is never filled in. */
    s->expected_total = s->seen_seconds > 0 && s->span_seconds > 0
                            ? s->span_seconds * s->seen_expected / s->seen_seconds
                            : 0;
}

double br_usage_stats_coverage(const BrUsageStats *s)
{
    if (s->expected_total <= 0)
        return 0;
    double c = (double)s->readings / s->expected_total;
    return c > 1 ? 1 : c;
}

/* ---- the rules (pure) ---- */

static double stat_cpu(const BrAssessmentPolicy *p, const BrUsageStats *s, int64_t vcpus)
{
    switch (p->mode) {
    case BR_RIGHTSIZE_CONSERVATIVE:
        return s->cpu_max;
    case BR_RIGHTSIZE_AGGRESSIVE:
        return s->days ? s->cpu_daily_max_sum / (double)s->days : s->cpu_max;
    default:
        return br_sized_hist_util(&s->cpu_sh, 0.95, vcpus) * (double)vcpus;
    }
}

static double stat_mem(const BrAssessmentPolicy *p, const BrUsageStats *s, int64_t memory_mib)
{
    switch (p->mode) {
    case BR_RIGHTSIZE_CONSERVATIVE:
        return s->mem_max;
    case BR_RIGHTSIZE_AGGRESSIVE:
        return s->days ? s->mem_daily_max_sum / (double)s->days : s->mem_max;
    default:
        return br_sized_hist_util(&s->mem_sh, 0.95, memory_mib) * (double)memory_mib;
    }
}

static double coverage_of(const BrUsageStats *s)
{
    return br_usage_stats_coverage(s);
}

bool br_assess_verdict(const BrAssessmentPolicy *p, const BrUsageStats *idle_stats,
                       const BrUsageStats *size_stats, BrSize current, BrVerdict *ret)
{
    BrVerdict v = {.current = current, .recommended = current};
    double idle_cov = coverage_of(idle_stats), size_cov = coverage_of(size_stats);
    bool idle_ok = idle_cov >= p->min_coverage && idle_stats->checked > 0;
    bool size_ok = size_cov >= p->min_coverage && size_stats->cpu_h.count > 0;

    v.coverage = size_ok ? size_cov : idle_cov;
    /* In cores (MiB) used, over the current size: a resize inside the window counts each
     * window at the size it had. */
    v.cpu_p95_util = br_sized_hist_util(&size_stats->cpu_sh, 0.95, current.vcpus);
    v.mem_p95_util = br_sized_hist_util(&size_stats->mem_sh, 0.95, current.memory_mib);
    if (idle_ok) {
        v.idle_share = (double)idle_stats->idle / (double)idle_stats->checked;
        if (v.idle_share >= p->idle_share) {
            v.idle = true;
            v.coverage = idle_cov;
            snprintf(v.rule, sizeof(v.rule),
                     "idle in %.1f %% of windows (at least %.0f %% needed): CPU below %.2f "
                     "cores, network below %.0f B/s in and %.0f B/s out",
                     v.idle_share * 100, p->idle_share * 100, p->idle_cpu_cores, p->idle_net_in_bps,
                     p->idle_net_out_bps);
            snprintf(v.rule_zh, sizeof(v.rule_zh),
                     "%.1f %% 的时间窗口闲置（至少需 %.0f %%）：CPU 低于 %.2f 核，"
                     "网络流入低于每秒 %.0f 字节、流出低于每秒 %.0f 字节",
                     v.idle_share * 100, p->idle_share * 100, p->idle_cpu_cores, p->idle_net_in_bps,
                     p->idle_net_out_bps);
            v.recommended = (BrSize){0, 0};
            v.frees = current;
            *ret = v;
            return true;
        }
    }
    if (!size_ok) {
        *ret = v;
        return idle_ok;
    }

    bool mem_known = size_stats->mem_h.count > 0;
    bool cpu_over = v.cpu_p95_util < p->over_cpu_p95;
    bool mem_over = mem_known && v.mem_p95_util < p->over_mem_p95;
    bool cpu_under = v.cpu_p95_util > p->under_cpu_p95;
    bool mem_under = mem_known && v.mem_p95_util > p->under_mem_p95;

    v.cpu_stat_cores = stat_cpu(p, size_stats, current.vcpus);
    v.mem_stat_mib = stat_mem(p, size_stats, current.memory_mib);
    int64_t want_vcpus = (int64_t)ceil(v.cpu_stat_cores * (1 + p->headroom) - 1e-9);
    if (want_vcpus < p->min_vcpus)
        want_vcpus = p->min_vcpus;
    int64_t step = p->memory_step_mib > 0 ? p->memory_step_mib : 1;
    int64_t want_mem =
        (int64_t)ceil(v.mem_stat_mib * (1 + p->headroom) / (double)step - 1e-9) * step;
    if (want_mem < p->min_memory_mib)
        want_mem = p->min_memory_mib;

    /* Each dimension moves only in the direction its rule fired. */
    if (cpu_over && want_vcpus < current.vcpus)
        v.recommended.vcpus = want_vcpus;
    if (mem_over && want_mem < current.memory_mib)
        v.recommended.memory_mib = want_mem;
    if (cpu_under && want_vcpus > current.vcpus)
        v.recommended.vcpus = want_vcpus;
    if (mem_under && want_mem > current.memory_mib)
        v.recommended.memory_mib = want_mem;
    v.over = (cpu_over && v.recommended.vcpus < current.vcpus) ||
             (mem_over && v.recommended.memory_mib < current.memory_mib);
    v.under = cpu_under || mem_under;
    v.frees.vcpus = current.vcpus - v.recommended.vcpus;
    v.frees.memory_mib = current.memory_mib - v.recommended.memory_mib;

    size_t used = 0, used_zh = 0;
    v.rule[0] = 0;
    v.rule_zh[0] = 0;
    if (cpu_over || cpu_under) {
        used += (size_t)snprintf(v.rule + used, sizeof(v.rule) - used,
                                 "p95 CPU %.0f %% of %lld vCPUs (%s %.0f %%)", v.cpu_p95_util * 100,
                                 (long long)current.vcpus, cpu_over ? "below" : "above",
                                 (cpu_over ? p->over_cpu_p95 : p->under_cpu_p95) * 100);
        used_zh += (size_t)snprintf(
            v.rule_zh, sizeof(v.rule_zh), "CPU 第95百分位为 %lld 个vCPU的 %.0f %%（%s %.0f %%）",
            (long long)current.vcpus, v.cpu_p95_util * 100, cpu_over ? "低于" : "高于",
            (cpu_over ? p->over_cpu_p95 : p->under_cpu_p95) * 100);
    }
    if ((mem_over || mem_under) && used < sizeof(v.rule) && used_zh < sizeof(v.rule_zh)) {
        snprintf(v.rule + used, sizeof(v.rule) - used,
                 "%sp95 memory %.0f %% of %lld MiB (%s %.0f %%)", used ? "; " : "",
                 v.mem_p95_util * 100, (long long)current.memory_mib, mem_over ? "below" : "above",
                 (mem_over ? p->over_mem_p95 : p->under_mem_p95) * 100);
        snprintf(v.rule_zh + used_zh, sizeof(v.rule_zh) - used_zh,
                 "%s内存第95百分位为 %lld MiB 的 %.0f %%（%s %.0f %%）", used_zh ? "；" : "",
                 (long long)current.memory_mib, v.mem_p95_util * 100, mem_over ? "低于" : "高于",
                 (mem_over ? p->over_mem_p95 : p->under_mem_p95) * 100);
    }
    *ret = v;
    return true;
}

/* ---- the evidence and the recommendation (pure) ---- */

static json_object *size_json(BrSize s)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "vcpus", json_object_new_int64(s.vcpus));
    json_object_object_add(o, "memory_mib", json_object_new_int64(s.memory_mib));
    return o;
}

static json_object *double_or_null(bool have, double v)
{
    return have ? json_object_new_double(v) : NULL;
}

static json_object *evidence_json(const BrUsageStats *s, const BrVerdict *v, int64_t now,
                                  const char *kind, int64_t vcpus, int64_t memory_mib)
{
    json_object *o = json_object_new_object(), *cpu = json_object_new_object();
    json_object *mem = json_object_new_object(), *w = json_object_new_object();
    char from[CM_TIME_ISO_LEN + 1], to[CM_TIME_ISO_LEN + 1], span[CM_TIME_ISO_LEN + 1];
    double p95c = br_sized_hist_util(&s->cpu_sh, 0.95, vcpus);
    double p95m = br_sized_hist_util(&s->mem_sh, 0.95, memory_mib);
    bool has_cpu = s->cpu_w > 0, has_mem = s->mem_w > 0;

    cm_time_iso((now - s->window_seconds) * 1000, from);
    cm_time_iso(now * 1000, to);
    cm_time_iso(s->span_from * 1000, span);
    json_object_object_add(w, "from", json_object_new_string(from));
    json_object_object_add(w, "to", json_object_new_string(to));
    json_object_object_add(w, "seconds", json_object_new_int64(s->window_seconds));
    json_object_object_add(o, "window", w);
    json_object_object_add(o, "rule", json_object_new_string(v->rule));
    json_object_object_add(o, "rule_zh", json_object_new_string(v->rule_zh));
    json_object_object_add(o, "kind", json_object_new_string(kind));
    /* Coverage = readings ÷ the readings expected every interval from expected_from (the
     * later of the window's start and the instance's first window) to the window's end. */
    json_object_object_add(o, "coverage", json_object_new_double(coverage_of(s)));
    json_object_object_add(o, "readings", json_object_new_int64(s->readings));
    json_object_object_add(o, "expected_readings",
                           json_object_new_double(round(s->expected_total * 100) / 100));
    json_object_object_add(o, "expected_from", json_object_new_string(span));
    json_object_object_add(o, "windows", json_object_new_int64(s->windows));
    json_object_object_add(o, "rollup_days", json_object_new_int64(s->rollup_days));
    json_object_object_add(o, "sample_windows", json_object_new_int64(s->sample_windows));
    json_object_object_add(cpu, "avg_cores", double_or_null(has_cpu, s->cpu_wsum / s->cpu_w));
    json_object_object_add(cpu, "p95_cores", double_or_null(p95c >= 0, p95c * (double)vcpus));
    json_object_object_add(cpu, "max_cores", double_or_null(has_cpu, s->cpu_max));
    json_object_object_add(cpu, "p95_utilization", double_or_null(p95c >= 0, p95c));
    json_object_object_add(o, "cpu", cpu);
    json_object_object_add(mem, "avg_mib", double_or_null(has_mem, s->mem_wsum / s->mem_w));
    json_object_object_add(mem, "p95_mib", double_or_null(p95m >= 0, p95m * (double)memory_mib));
    json_object_object_add(mem, "max_mib", double_or_null(has_mem, s->mem_max));
    json_object_object_add(mem, "p95_utilization", double_or_null(p95m >= 0, p95m));
    json_object_object_add(o, "memory", mem);
    if (strcmp(kind, "idle") == 0) {
        json_object_object_add(o, "idle_windows", json_object_new_int64(s->idle));
        json_object_object_add(o, "checked_windows", json_object_new_int64(s->checked));
        json_object_object_add(o, "idle_share", json_object_new_double(v->idle_share));
    }
    json_object_object_add(o, "percentile_resolution",
                           json_object_new_string(s->rollup_days ? "1 % (daily histograms merged)"
                                                                 : "1 % (per-window histogram)"));
    return o;
}

/* @scale_in: an idle instance of an allocation whose other instances are not all idle. */
static json_object *recommendation_json(const BrAssessmentPolicy *p, const BrVerdict *v,
                                        int64_t instance_id, int64_t idx, bool idle, bool scale_in)
{
    static const char *const modes[] = {"conservative", "moderate", "aggressive"};
    json_object *o = json_object_new_object();
    json_object_object_add(o, "action",
                           json_object_new_string(!idle      ? "resize"
                                                  : scale_in ? "scale_in"
                                                             : "terminate"));
    if (idle && scale_in) {
        json_object *rm = json_object_new_object();
        json_object_object_add(rm, "instance_id", json_object_new_int64(instance_id));
        json_object_object_add(rm, "index", json_object_new_int64(idx));
        json_object_object_add(o, "remove_instance", rm);
    }
    json_object_object_add(o, "mode", json_object_new_string(modes[p->mode]));
    json_object_object_add(o, "headroom", json_object_new_double(p->headroom));
    json_object_object_add(o, "current", size_json(v->current));
    json_object_object_add(o, "recommended", size_json(v->recommended));
    json_object_object_add(o, "frees", size_json(v->frees));
    if (!idle) {
        json_object_object_add(o, "cpu_statistic_cores", json_object_new_double(v->cpu_stat_cores));
        json_object_object_add(o, "memory_statistic_mib", json_object_new_double(v->mem_stat_mib));
    }
    return o;
}

/* ---- the evidence read from the store (a read model over samples, rollups, instances) ---- */

/* An instance the run judges. */
typedef struct {
    int64_t id, allocation_id, department_id, system_id, vcpus, memory_mib, created_ms, idx;
    char name[64];
    double coverage[2]; /* 0: the idle window, 1: the over/under window */
    json_object *ev[3]; /* the evidence of each kind that fired, made while reading */
    BrVerdict verdict;
    bool judged;
    bool others_busy; /* some other live instance of its allocation is not idle */
} Target;

static int64_t day_floor(int64_t t)
{
    return t - t % 86400;
}

static void day_name(int64_t t, char out[16])
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, 16, "%Y-%m-%d", &tm);
}

/* Column @i as a double, NAN for NULL (a figure missing). */
static double opt(CmStmt *st, int i)
{
    return cm_stmt_is_null(st, i) ? NAN : cm_stmt_double(st, i);
}

static const BrHistogram *histogram(CmStmt *st, int i, BrHistogram *out)
{
    const void *blob = cm_stmt_blob(st, i);
    return blob && br_histogram_decode(blob, cm_stmt_bytes(st, i), out) == 0 ? out : NULL;
}

/* The evidence of a slice of the targets, read by one statement per part (rather than by
 * several per instance: on PostgreSQL each is a round trip to the server). Each statement's
 * rows come by instance id (column 0), then in time: a stream that the targets, in id order,
 * take their rows from. */
#define JUDGE_SLICE 500

typedef struct {
    CmStmt *st;
    int has; /* the last step's answer: 1 a row is current, 0 no more rows */
} Stream;

static void stream_close(Stream *s)
{
    cm_stmt_reset(s->st);
    *s = (Stream){0};
}

static int stream_first(Stream *s, CmError *err)
{
    s->has = cm_stmt_step(s->st, err);
    return s->has < 0 ? s->has : 0;
}

/* Whether the current row is instance @id's, once the rows of the instances before it are
 * passed: 1, 0, or a negative errno. */
static int stream_at(Stream *s, int64_t id, CmError *err)
{
    while (s->has > 0 && cm_stmt_int(s->st, 0) < id)
        s->has = cm_stmt_step(s->st, err);
    if (s->has < 0)
        return s->has;
    return s->has > 0 && cm_stmt_int(s->st, 0) == id;
}

static int stream_next(Stream *s, CmError *err)
{
    s->has = cm_stmt_step(s->st, err);
    return s->has < 0 ? s->has : 0;
}

/* The windows of the instances [?1, ?2] in [?3, ?4), by instance and start. One text per
 * use: the statement cache keys on the text's address, and the four are open together. */
#define SAMPLES_SQL(USE)                                                                           \
    "SELECT s.instance_id, s.start, s.duration, s.readings, s.expected,"                           \
    " coalesce(s.vcpus, i.vcpus) AS vcpus, coalesce(s.memory_mib, i.memory_mib) AS memory_mib,"    \
    " s.cpu_avg, s.cpu_max, s.mem_avg, s.mem_max, s.net_rx_bytes, s.net_tx_bytes"                  \
    " FROM instances i CROSS JOIN samples s WHERE s.instance_id = i.id"                            \
    " AND i.id >= ?1 AND i.id <= ?2 AND s.start >= ?3 AND s.start < ?4"                            \
    " ORDER BY i.id, s.start /* " USE " */"
#define ROLLUPS_SQL(USE)                                                                           \
    "SELECT r.instance_id, r.windows, r.readings, r.expected,"                                     \
    " coalesce(r.duration, 0) AS duration, coalesce(r.vcpus, i.vcpus) AS vcpus,"                   \
    " coalesce(r.memory_mib, i.memory_mib) AS memory_mib,"                                         \
    " coalesce(r.idle_windows, 0) AS idle, coalesce(r.idle_checked_windows, 0) AS checked,"        \
    " r.cpu_util_hist, r.mem_util_hist, r.cpu_avg, r.cpu_max, r.mem_avg, r.mem_max"                \
    " FROM instances i CROSS JOIN rollups r WHERE r.instance_id = i.id"                            \
    " AND i.id >= ?1 AND i.id <= ?2 AND r.day >= ?3 AND r.day < ?4"                                \
    " ORDER BY i.id, r.day /* " USE " */"

static const char *const head_sql[2] = {SAMPLES_SQL("idle: head"), SAMPLES_SQL("sizing: head")};
static const char *const tail_sql[2] = {SAMPLES_SQL("idle: tail"), SAMPLES_SQL("sizing: tail")};
static const char *const days_sql[2] = {ROLLUPS_SQL("idle"), ROLLUPS_SQL("sizing")};

/* A slice's statements: the first window of each instance, and per window (0: idle, 1: the
 * over/under window) the samples of the part-day at its start, the rollups of its whole days
 * and the samples of today. */
typedef struct {
    int64_t lo, hi; /* instance ids */
    Stream first, head[2], days[2], tail[2];
} Slice;

static void slice_close(Slice *sl)
{
    stream_close(&sl->first);
    for (int k = 0; k < 2; k++) {
        stream_close(&sl->head[k]);
        stream_close(&sl->days[k]);
        stream_close(&sl->tail[k]);
    }
}

static int open_samples(CmDb *db, const char *sql, const Slice *sl, Stream *s, int64_t from,
                        int64_t to, CmError *err)
{
    if (to <= from)
        return 0;
    s->st = cm_db_prepare(db, sql, err);
    if (!s->st)
        return -EIO;
    CM_DB_BIND(s->st, sl->lo, sl->hi, from, to);
    return stream_first(s, err);
}

static int open_rollups(CmDb *db, const char *sql, const Slice *sl, Stream *s, int64_t from_day,
                        int64_t to_day, CmError *err)
{
    char a[16], b[16];

    if (to_day <= from_day)
        return 0;
    day_name(from_day, a);
    day_name(to_day, b);
    s->st = cm_db_prepare(db, sql, err);
    if (!s->st)
        return -EIO;
    CM_DB_BIND(s->st, sl->lo, sl->hi, a, b);
    return stream_first(s, err);
}

/* Whole days from rollups, the part-days at both ends from samples; readings are expected
 * from the later of the window's start and the instance's first window to now. */
static int slice_open(CmDb *db, const BrAssessmentPolicy *p, int64_t now, Slice *sl, CmError *err)
{
    int64_t size_window = p->over_window > p->under_window ? p->over_window : p->under_window;
    int64_t windows[2] = {p->idle_window, size_window}, last_day = day_floor(now);
    int r;

    /* The start of each instance's first window: its oldest sample, or the midnight of its
     * oldest rollup when that day is older (its samples are past the retention; rollups
     * stay). */
    sl->first.st = cm_db_prepare(db,
                                 "SELECT i.id, (SELECT min(start) FROM samples"
                                 "  WHERE instance_id = i.id) AS sample,"
                                 " (SELECT unixepoch(min(day)) FROM rollups"
                                 "  WHERE instance_id = i.id) AS rollup"
                                 " FROM instances i WHERE i.id >= ?1 AND i.id <= ?2 ORDER BY i.id",
                                 err);
    if (!sl->first.st)
        return -EIO;
    CM_DB_BIND(sl->first.st, sl->lo, sl->hi);
    r = stream_first(&sl->first, err);
    for (int k = 0; r >= 0 && k < 2; k++) {
        int64_t from = now - windows[k];
        int64_t first_day = day_floor(from) == from ? from : day_floor(from) + 86400;
        if (first_day >= last_day) {
            r = open_samples(db, head_sql[k], sl, &sl->head[k], from, now, err);
            continue;
        }
        r = open_samples(db, head_sql[k], sl, &sl->head[k], from, first_day, err);
        if (r >= 0)
            r = open_rollups(db, days_sql[k], sl, &sl->days[k], first_day, last_day, err);
        if (r >= 0)
            r = open_samples(db, tail_sql[k], sl, &sl->tail[k], last_day, now, err);
    }
    return r;
}

static int gather_samples(const BrAssessmentPolicy *p, const Target *t, Stream *in, BrUsageStats *s,
                          CmError *err)
{
    int r;

    while ((r = stream_at(in, t->id, err)) > 0) {
        CmStmt *st = in->st;
        BrUsageWindow w = {
            .start = cm_stmt_int(st, 1),
            .duration = cm_stmt_int(st, 2),
            .readings = cm_stmt_int(st, 3),
            .expected = cm_stmt_int(st, 4),
            .vcpus = cm_stmt_int(st, 5),
            .memory_mib = cm_stmt_int(st, 6),
            .cpu_avg = opt(st, 7),
            .cpu_max = opt(st, 8),
            .mem_avg = opt(st, 9),
            .mem_max = opt(st, 10),
            .rx_bytes = opt(st, 11),
            .tx_bytes = opt(st, 12),
        };
        br_usage_stats_add_window(s, p, &w);
        if ((r = stream_next(in, err)) < 0)
            return r;
    }
    return r;
}

static int gather_rollups(const Target *t, Stream *in, BrUsageStats *s, CmError *err)
{
    int r;

    while ((r = stream_at(in, t->id, err)) > 0) {
        CmStmt *st = in->st;
        BrHistogram ch, mh;
        BrUsageDay d = {
            .windows = cm_stmt_int(st, 1),
            .readings = cm_stmt_int(st, 2),
            .expected = cm_stmt_int(st, 3),
            .duration = cm_stmt_int(st, 4),
            .vcpus = cm_stmt_int(st, 5),
            .memory_mib = cm_stmt_int(st, 6),
            .idle = cm_stmt_int(st, 7),
            .checked = cm_stmt_int(st, 8),
            .cpu_h = histogram(st, 9, &ch),
            .mem_h = histogram(st, 10, &mh),
            .cpu_avg = opt(st, 11),
            .cpu_max = opt(st, 12),
            .mem_avg = opt(st, 13),
            .mem_max = opt(st, 14),
        };
        br_usage_stats_add_rollup(s, &d);
        if ((r = stream_next(in, err)) < 0)
            return r;
    }
    return r;
}

/* The start of instance @t's first window, from the slice. 0: none. */
static int first_window(const Target *t, Stream *in, int64_t *ret, CmError *err)
{
    int r = stream_at(in, t->id, err);

    if (r > 0) {
        CmStmt *st = in->st;
        bool has_sample = !cm_stmt_is_null(st, 1), has_rollup = !cm_stmt_is_null(st, 2);
        int64_t sample = cm_stmt_int(st, 1), rollup = cm_stmt_int(st, 2);
        *ret = has_rollup && (!has_sample || rollup < day_floor(sample)) ? rollup
               : has_sample                                              ? sample
                                                                         : 0;
    }
    return r < 0 ? r : 0;
}

/* Window @k (0: idle, 1: over/under) of instance @t, @window seconds to @now, from the slice. */
static int gather(const BrAssessmentPolicy *p, const Target *t, Slice *sl, int k, BrUsageStats *s,
                  int64_t window, int64_t now, int64_t first, CmError *err)
{
    int64_t from = now - window;
    int r;

    memset(s, 0, sizeof(*s));
    s->window_seconds = window;
    s->span_from = first > from ? first : from;
    s->span_seconds = first && now > s->span_from ? (double)(now - s->span_from) : 0;
    r = gather_samples(p, t, &sl->head[k], s, err);
    if (r >= 0)
        r = gather_rollups(t, &sl->days[k], s, err);
    if (r >= 0)
        r = gather_samples(p, t, &sl->tail[k], s, err);
    br_usage_stats_finish(s);
    return r;
}

/* The live production instances, by id. */
static int targets_load(CmDb *db, Target **ret, size_t *ret_n, CmError *err)
{
    _cleanup_stmt_ CmStmt *st =
        cm_db_prepare(db,
                      "SELECT i.id, i.allocation_id, a.department_id, a.system_id, i.vcpus,"
                      " i.memory_mib, i.created_at, i.idx, i.name FROM instances i"
                      " JOIN allocations a ON a.id = i.allocation_id"
                      " WHERE a.purpose = 'production' AND a.state IN ('active','resizing')"
                      " AND i.state IN ('defined','running','shutoff') ORDER BY i.id",
                      err);
    Target *targets = NULL;
    size_t n = 0, cap = 0;
    int r;

    if (!st)
        return -EIO;
    while ((r = cm_stmt_step(st, err)) > 0) {
        if (n == cap) {
            Target *nt = realloc(targets, (cap = cap ? cap * 2 : 256) * sizeof(*nt));
            if (!nt) {
                r = cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
                break;
            }
            targets = nt;
        }
        Target *t = &targets[n++];
        *t = (Target){
            .id = cm_stmt_int(st, 0),
            .allocation_id = cm_stmt_int(st, 1),
            .department_id = cm_stmt_int(st, 2),
            .system_id = cm_stmt_int(st, 3),
            .vcpus = cm_stmt_int(st, 4),
            .memory_mib = cm_stmt_int(st, 5),
            .idx = cm_stmt_int(st, 7),
        };
        if (cm_time_parse_iso(cm_stmt_text(st, 6), &t->created_ms) < 0)
            t->created_ms = 0;
        cm_strscpy(t->name, sizeof(t->name), cm_stmt_text(st, 8));
    }
    if (r < 0) {
        free(targets);
        return r;
    }
    *ret = targets;
    *ret_n = n;
    return 0;
}

/* ---- the run ---- */

#define NOT_JUDGED_LISTED 200

static const char *const kinds[3] = {"idle", "over_provisioned", "under_provisioned"};

typedef struct {
    BrDaemon *d;
    const BrAssessmentPolicy *p;
    int64_t now, t0;
    char at[CM_TIME_ISO_LEN + 1];
    Target *targets;
    size_t n, n_not_judged;
    json_object *not_judged, *summary;
    int created, updated, resolved, insufficient, young;
    int64_t *stale[3]; /* per kind, the judged instances it did not fire for */
    size_t n_stale[3];
    BrFindingLive *live; /* the judged instances' findings before the run, sorted */
    size_t n_live;
} Run;

static void run_done(Run *run)
{
    for (size_t i = 0; run->targets && i < run->n; i++)
        for (int k = 0; k < 3; k++)
            json_object_put(run->targets[i].ev[k]);
    free(run->targets);
    for (int k = 0; k < 3; k++)
        free(run->stale[k]);
    free(run->live);
    json_object_put(run->not_judged);
    json_object_put(run->summary);
}

static json_object *not_judged_json(const Target *t, const char *reason, bool gathered)
{
    json_object *o = json_object_new_object(), *c = json_object_new_object();
    json_object_object_add(o, "instance_id", json_object_new_int64(t->id));
    json_object_object_add(o, "instance", json_object_new_string(t->name));
    json_object_object_add(o, "reason", json_object_new_string(reason));
    json_object_object_add(c, "idle", gathered ? json_object_new_double(t->coverage[0]) : NULL);
    json_object_object_add(c, "sizing", gathered ? json_object_new_double(t->coverage[1]) : NULL);
    json_object_object_add(o, "coverage", c);
    return o;
}

/* One instance's two windows, judged; the evidence of what fired is made here, so nothing
 * per instance but its verdict and evidence stays in memory. */
static int judge(Run *run, Slice *sl, Target *t, BrUsageStats w[2], CmError *err)
{
    const BrAssessmentPolicy *p = run->p;
    int64_t size_window = p->over_window > p->under_window ? p->over_window : p->under_window;
    int64_t first = 0;
    const char *why = NULL;
    int r = 0;

    if (t->created_ms / 1000 > run->now - p->min_age_seconds) {
        run->young++; /* too new to judge */
        why = "too_young";
    } else {
        r = first_window(t, &sl->first, &first, err);
        if (r >= 0)
            r = gather(p, t, sl, 0, &w[0], p->idle_window, run->now, first, err);
        if (r >= 0)
            r = gather(p, t, sl, 1, &w[1], size_window, run->now, first, err);
        if (r < 0)
            return r;
        t->judged =
            br_assess_verdict(p, &w[0], &w[1], (BrSize){t->vcpus, t->memory_mib}, &t->verdict);
        t->coverage[0] = coverage_of(&w[0]);
        t->coverage[1] = coverage_of(&w[1]);
        if (!t->judged) {
            run->insufficient++;
            why = "insufficient_evidence";
        }
        bool fired[3] = {t->verdict.idle, t->verdict.over, t->verdict.under};
        for (int k = 0; t->judged && k < 3; k++)
            if (fired[k])
                t->ev[k] = evidence_json(k == 0 ? &w[0] : &w[1], &t->verdict, run->now, kinds[k],
                                         t->vcpus, t->memory_mib);
    }
    if (why && run->n_not_judged++ < NOT_JUDGED_LISTED)
        json_object_array_add(run->not_judged,
                              not_judged_json(t, why, strcmp(why, "too_young") != 0));
    return 0;
}

/* Per allocation, whether some live instance of it is not idle (judged busy, or not judged):
 * an idle instance of such an allocation is removed (scale-in), not the allocation. */
typedef struct {
    int64_t allocation_id;
    bool not_idle;
} AllocIdle;

static int cmp_alloc_idle(const void *a, const void *b)
{
    const AllocIdle *x = a, *y = b;
    return x->allocation_id < y->allocation_id ? -1 : x->allocation_id > y->allocation_id;
}

static int others_busy(Target *targets, size_t n, CmError *err)
{
    _cleanup_free_ AllocIdle *allocs = calloc(n + 1, sizeof(*allocs));

    if (!allocs)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    for (size_t i = 0; i < n; i++)
        allocs[i] =
            (AllocIdle){targets[i].allocation_id, !(targets[i].judged && targets[i].verdict.idle)};
    /* Sorted by allocation, each entry says whether any instance of it is not idle. */
    qsort(allocs, n, sizeof(*allocs), cmp_alloc_idle);
    for (size_t i = 0, j; i < n; i = j) {
        bool any = false;
        for (j = i; j < n && allocs[j].allocation_id == allocs[i].allocation_id; j++)
            any = any || allocs[j].not_idle;
        for (size_t k = i; k < j; k++)
            allocs[k].not_idle = any;
    }
    for (size_t i = 0; i < n; i++) {
        AllocIdle key = {targets[i].allocation_id, false};
        const AllocIdle *ai = bsearch(&key, allocs, n, sizeof(*allocs), cmp_alloc_idle);
        targets[i].others_busy = ai && ai->not_idle;
    }
    return 0;
}

/* The targets [@a, @b) judged from one slice's statements. */
static int judge_slice(Run *run, CmDb *db, size_t a, size_t b, BrUsageStats w[2], CmError *err)
{
    _cleanup_(slice_close) Slice sl = {.lo = run->targets[a].id, .hi = run->targets[b - 1].id};
    int r = slice_open(db, run->p, run->now, &sl, err);

    for (size_t i = a; r >= 0 && i < b; i++)
        r = judge(run, &sl, &run->targets[i], w, err);
    return r;
}

/* Read everything from one snapshot, without the write lock. */
static int run_read(BrTx *tx, void *ctx)
{
    Run *run = ctx;
    _cleanup_free_ BrUsageStats *w = calloc(2, sizeof(*w));
    int r = targets_load(tx->db, &run->targets, &run->n, tx->err);

    if (r >= 0 && !w)
        r = cm_error_set(tx->err, CM_ERROR_INTERNAL, "", "out of memory");
    for (size_t i = 0; r >= 0 && i < run->n; i += JUDGE_SLICE)
        r = judge_slice(run, tx->db, i, i + JUDGE_SLICE < run->n ? i + JUDGE_SLICE : run->n, w,
                        tx->err);
    if (r < 0)
        return r;
    return others_busy(run->targets, run->n, tx->err);
}

/* A new finding is told to its department, in the same transaction. */
static int notify_finding(Run *run, BrTx *tx, const Target *t, const char *kind, int64_t id)
{
    _cleanup_json_ json_object *detail = json_object_new_object(), *system = NULL;
    int r = br_system_get(tx->db, t->system_id, 0, &system, tx->err);

    if (r < 0)
        return r;
    json_object_object_add(detail, "finding_kind", json_object_new_string(kind));
    json_object_object_add(detail, "system_id", json_object_new_int64(t->system_id));
    json_object_object_add(detail, "instance_id", json_object_new_int64(t->id));
    BrNotice n = {.kind = BR_NOTIFY_FINDING_RAISED,
                  .to = BR_TO_DEPARTMENT,
                  .object_type = "finding",
                  .object_id = id,
                  .object_name = cm_json_get_str(system, "name", NULL),
                  .department_id = t->department_id,
                  .detail = detail};
    r = br_notification_raise(tx->db, &run->d->notify, tx->actor, &n, tx->err);
    return r < 0 ? r : 0;
}

/* Records one judged instance: what fired raised or updated, what did not resolved. */
static int record(Run *run, BrTx *tx, const Target *t)
{
    const BrVerdict *v = &t->verdict;
    bool fired[3] = {v->idle, v->over, v->under};

    for (int k = 0; k < 3; k++) {
        _cleanup_json_ json_object *rec = NULL;
        int64_t id = 0;
        int r;
        if (!fired[k]) {
            run->stale[k][run->n_stale[k]++] = t->id; /* resolved after, all at once */
            continue;
        }
        rec = recommendation_json(run->p, v, t->id, t->idx, k == 0, t->others_busy);
        BrFindingFound f = {
            .instance_id = t->id,
            .allocation_id = t->allocation_id,
            .department_id = t->department_id,
            .system_id = t->system_id,
            .kind = kinds[k],
            .rule = v->rule,
            .evidence = t->ev[k],
            .recommendation = rec,
            .current = v->current,
            .recommended = v->recommended,
            .frees = v->frees,
        };
        r = br_finding_raise(tx, &f, br_finding_live_find(run->live, run->n_live, t->id, kinds[k]),
                             run->at, &id);
        if (r < 0)
            return r;
        run->updated += r == 1;
        run->created += r == 2;
        if (r == 2 && (r = notify_finding(run, tx, t, kinds[k], id)) < 0)
            return r;
    }
    return 0;
}

/* A judged instance's kinds that did not fire: their live findings resolved, by lists of
 * STALE_SLICE instances. They are not the rows record() raises or updates (those of the kinds
 * that fired), so doing them after it changes nothing but the number of statements. */
#define STALE_SLICE 10000

static int run_write(BrTx *tx, void *ctx)
{
    Run *run = ctx;

    for (int k = 0; k < 3; k++) {
        free(run->stale[k]);
        run->n_stale[k] = 0;
        run->stale[k] = malloc((run->n ? run->n : 1) * sizeof(int64_t));
        if (!run->stale[k])
            return cm_error_set(tx->err, CM_ERROR_INTERNAL, "", "out of memory");
    }
    /* The judged instances' findings as they stand, by lists of STALE_SLICE instances (the
     * stale lists serve as the buffer: they are filled by record() only after). */
    free(run->live);
    run->live = NULL;
    run->n_live = 0;
    for (size_t i = 0; i < run->n;) {
        size_t n = 0;
        for (; i < run->n && n < STALE_SLICE; i++)
            if (run->targets[i].judged)
                run->stale[0][n++] = run->targets[i].id;
        int r = n ? br_finding_live_load(tx, run->stale[0], n, &run->live, &run->n_live) : 0;
        if (r < 0)
            return r;
    }
    br_finding_live_sort(run->live, run->n_live);
    for (size_t i = 0; i < run->n; i++) {
        int r = run->targets[i].judged ? record(run, tx, &run->targets[i]) : 0;
        if (r < 0)
            return r;
    }
    for (int k = 0; k < 3; k++)
        for (size_t i = 0; i < run->n_stale[k]; i += STALE_SLICE) {
            size_t n = run->n_stale[k] - i < STALE_SLICE ? run->n_stale[k] - i : STALE_SLICE;
            int r = br_finding_resolve_stale(tx, run->stale[k] + i, n, kinds[k], run->at);
            if (r < 0)
                return r;
            run->resolved += r;
        }
    run->summary = json_object_new_object();
    json_object_object_add(run->summary, "instances", json_object_new_int64((int64_t)run->n));
    json_object_object_add(run->summary, "created", json_object_new_int64(run->created));
    json_object_object_add(run->summary, "updated", json_object_new_int64(run->updated));
    json_object_object_add(run->summary, "resolved", json_object_new_int64(run->resolved));
    json_object_object_add(run->summary, "insufficient_evidence",
                           json_object_new_int64(run->insufficient));
    json_object_object_add(run->summary, "too_young", json_object_new_int64(run->young));
    json_object_object_add(run->summary, "seconds",
                           json_object_new_double((double)(cm_mono_ns() - run->t0) / 1e9));
    br_tx_audit_set(tx, "assessment.run", "assessment", 0, cm_json_to_string(run->summary, NULL));
    return 0;
}

int br_assess_run(BrDaemon *d, const BrActor *actor, json_object **ret, CmError *err)
{
    _cleanup_(br_policies_unrefp) BrPolicies *pol = br_daemon_policies(d);
    _cleanup_(run_done) Run run = {.d = d,
                                   .p = &pol->assessment,
                                   .now = cm_now_ms() / 1000,
                                   .t0 = cm_mono_ns(),
                                   .not_judged = json_object_new_array()};
    int64_t t_read = 0;
    int r;

    cm_time_iso(run.now * 1000, run.at);
    r = br_tx_read(d->store, "assessment.read", run_read, &run, err);
    t_read = cm_mono_ns();
    if (r >= 0)
        r = br_tx_run(d->store, "assessment.run", actor, run_write, &run, err);
    if (r < 0)
        return r;
    cm_log_info("assessment: %zu instances, %d new findings, %d updated, %d resolved (read %.2f s,"
                " written %.2f s)",
                run.n, run.created, run.updated, run.resolved, (double)(t_read - run.t0) / 1e9,
                (double)(cm_mono_ns() - t_read) / 1e9);
    /* The answer (not the audit record) names the instances not judged and their coverage. */
    json_object_object_add(run.summary, "not_judged", json_object_get(run.not_judged));
    json_object_object_add(run.summary, "not_judged_truncated",
                           json_object_new_boolean(run.n_not_judged > NOT_JUDGED_LISTED));
    if (ret)
        *ret = json_object_get(run.summary);
    return 0;
}

int br_assess_resolve_ended(BrStore *store, CmDb *db, int64_t allocation_id, const char *reason,
                            CmError *err)
{
    BrTx tx = {.store = store, .db = db, .actor = br_actor_system(), .err = err};
    return br_finding_resolve_ended(&tx, allocation_id, reason);
}

/* ---- the daily run ---- */

struct BrAssessor {
    BrDaemon *d;
    CmWorker *worker;
};

static int64_t run_interval_ms(BrDaemon *d)
{
    _cleanup_(br_policies_unrefp) BrPolicies *p = br_daemon_policies(d);
    return p->assessment.run_interval_seconds * 1000;
}

static int64_t assessor_pass(void *ctx)
{
    BrAssessor *a = ctx;
    CmError err = {0};

    if (br_assess_run(a->d, br_actor_system(), NULL, &err) < 0)
        cm_log_error("assessment: %s", err.message);
    return run_interval_ms(a->d);
}

int br_assessor_start(BrDaemon *d, BrAssessor **ret, CmError *err)
{
    _cleanup_free_ BrAssessor *a = calloc(1, sizeof(*a));
    CmWorkerConfig wc = {.name = "assessment", .run = assessor_pass};
    int r;

    if (!a)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    a->d = d;
    wc.ctx = a;
    wc.first_delay_ms = run_interval_ms(d);
    r = cm_worker_start(&wc, &a->worker, err);
    if (r < 0)
        return r;
    *ret = TAKE_PTR(a);
    return 0;
}

BrAssessor *br_assessor_stop(BrAssessor *a)
{
    if (a) {
        cm_worker_stop(a->worker);
        free(a);
    }
    return NULL;
}
