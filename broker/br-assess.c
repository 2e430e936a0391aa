/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "br-assess.h"
#include "br-daemon.h"
#include "br-store.h"
#include "br-system.h"
#include "cm-json.h"
#include "cm-log.h"
#include "cm-time.h"
#include "cm-util.h"

/* ---- accumulating usage (pure) ---- */

static BrHist *sized_slot(BrSizedHist *sh, int64_t size)
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
    SizedBin bins[BR_SIZED_HIST_SIZES * BR_HIST_BINS];
    size_t n = 0;
    uint64_t total = 0, rank, seen = 0;

    if (sh->n == 0 || current <= 0)
        return -1;
    if (sh->n == 1 && sh->size[0] == current)
        return br_hist_quantile(&sh->h[0], q);
    for (int i = 0; i < sh->n; i++)
        for (int k = 0; k < BR_HIST_BINS; k++)
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

void br_usage_stats_add_window(BrUsageStats *s, const BrAssessmentPolicy *p, int64_t start,
                               int64_t duration, int64_t readings, int64_t expected,
                               int64_t vcpus, int64_t memory_mib, bool has_cpu, double cpu_avg,
                               bool has_cpu_max, double cpu_max, bool has_mem, double mem_avg,
                               bool has_mem_max, double mem_max, bool has_rx, double rx_bytes,
                               bool has_tx, double tx_bytes)
{
    int64_t day = start / 86400 + 1; /* +1: 0 means "no day" */
    if (day != s->cur_day) {
        close_day(s);
        s->cur_day = day;
    }
    s->windows++;
    s->sample_windows++;
    s->readings += readings;
    s->duration = duration;
    s->seen_expected += (double)expected;
    s->seen_seconds += (double)duration;
    if (has_cpu) {
        s->cpu_wsum += cpu_avg * (double)readings;
        s->cpu_w += (double)readings;
        if (vcpus > 0) {
            br_hist_add(&s->cpu_h, cpu_avg / (double)vcpus);
            br_hist_add(sized_slot(&s->cpu_sh, vcpus), cpu_avg / (double)vcpus);
        }
        /* The idle rule looks at CPU and network together in each window. */
        bool rx_low = !has_rx || rx_bytes / (double)duration < p->idle_net_in_bps;
        bool tx_low = !has_tx || tx_bytes / (double)duration < p->idle_net_out_bps;
        s->checked++;
        if (cpu_avg < p->idle_cpu_cores && rx_low && tx_low)
            s->idle++;
    }
    double cmax = has_cpu_max ? cpu_max : has_cpu ? cpu_avg : 0;
    if (cmax > s->cpu_max)
        s->cpu_max = cmax;
    if (cmax > s->cur_cpu_max)
        s->cur_cpu_max = cmax;
    if (has_mem) {
        s->mem_wsum += mem_avg * (double)readings;
        s->mem_w += (double)readings;
        if (memory_mib > 0) {
            br_hist_add(&s->mem_h, mem_avg / (double)memory_mib);
            br_hist_add(sized_slot(&s->mem_sh, memory_mib), mem_avg / (double)memory_mib);
        }
    }
    double mmax = has_mem_max ? mem_max : has_mem ? mem_avg : 0;
    if (mmax > s->mem_max)
        s->mem_max = mmax;
    if (mmax > s->cur_mem_max)
        s->cur_mem_max = mmax;
}

void br_usage_stats_add_rollup(BrUsageStats *s, int64_t windows, int64_t readings, int64_t expected,
                               int64_t duration, int64_t vcpus, int64_t memory_mib,
                               const BrHist *cpu_h, const BrHist *mem_h, bool has_cpu,
                               double cpu_avg, bool has_cpu_max, double cpu_max, bool has_mem,
                               double mem_avg, bool has_mem_max, double mem_max, int64_t idle,
                               int64_t checked)
{
    close_day(s);
    s->windows += windows;
    s->readings += readings;
    s->seen_expected += (double)expected;
    s->seen_seconds += 86400;
    if (duration > 0)
        s->duration = duration;
    s->rollup_days++;
    if (cpu_h) {
        br_hist_merge(&s->cpu_h, cpu_h);
        if (vcpus > 0)
            br_hist_merge(sized_slot(&s->cpu_sh, vcpus), cpu_h);
    }
    if (mem_h) {
        br_hist_merge(&s->mem_h, mem_h);
        if (memory_mib > 0)
            br_hist_merge(sized_slot(&s->mem_sh, memory_mib), mem_h);
    }
    if (has_cpu) {
        s->cpu_wsum += cpu_avg * (double)readings;
        s->cpu_w += (double)readings;
    }
    if (has_mem) {
        s->mem_wsum += mem_avg * (double)readings;
        s->mem_w += (double)readings;
    }
    if (has_cpu_max) {
        if (cpu_max > s->cpu_max)
            s->cpu_max = cpu_max;
        s->cpu_daily_max_sum += cpu_max;
    }
    if (has_mem_max) {
        if (mem_max > s->mem_max)
            s->mem_max = mem_max;
        s->mem_daily_max_sum += mem_max;
    }
    s->days++;
    s->idle += idle;
    s->checked += checked;
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
                     v.idle_share * 100, p->idle_share * 100, p->idle_cpu_cores,
                     p->idle_net_in_bps, p->idle_net_out_bps);
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
    int64_t want_mem = (int64_t)ceil(v.mem_stat_mib * (1 + p->headroom) / (double)step - 1e-9) *
                       step;
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
                                 "p95 CPU %.0f %% of %lld vCPUs (%s %.0f %%)",
                                 v.cpu_p95_util * 100, (long long)current.vcpus,
                                 cpu_over ? "below" : "above",
                                 (cpu_over ? p->over_cpu_p95 : p->under_cpu_p95) * 100);
        used_zh += (size_t)snprintf(
            v.rule_zh, sizeof(v.rule_zh), "CPU 第95百分位为 %lld 个vCPU的 %.0f %%（%s %.0f %%）",
            (long long)current.vcpus, v.cpu_p95_util * 100, cpu_over ? "低于" : "高于",
            (cpu_over ? p->over_cpu_p95 : p->under_cpu_p95) * 100);
    }
    if ((mem_over || mem_under) && used < sizeof(v.rule) && used_zh < sizeof(v.rule_zh)) {
        snprintf(v.rule + used, sizeof(v.rule) - used,
                 "%sp95 memory %.0f %% of %lld MiB (%s %.0f %%)", used ? "; " : "",
                 v.mem_p95_util * 100, (long long)current.memory_mib,
                 mem_over ? "below" : "above",
                 (mem_over ? p->over_mem_p95 : p->under_mem_p95) * 100);
        snprintf(v.rule_zh + used_zh, sizeof(v.rule_zh) - used_zh,
                 "%s内存第95百分位为 %lld MiB 的 %.0f %%（%s %.0f %%）", used_zh ? "；" : "",
                 (long long)current.memory_mib, v.mem_p95_util * 100, mem_over ? "低于" : "高于",
                 (mem_over ? p->over_mem_p95 : p->under_mem_p95) * 100);
    }
    *ret = v;
    return true;
}

/* ---- gathering usage from the store ---- */

typedef struct {
    int64_t id, allocation_id, department_id, system_id, vcpus, memory_mib, created_ms, idx;
    char name[64];
    double coverage[2]; /* 0: the idle window, 1: the over/under window */
    json_object *ev[3]; /* the evidence of each kind that fired, made while reading */
} Target;

/* The evidence held by the targets, put when the run ends, whichever way. */
typedef struct {
    Target **t;
    size_t *n;
} TargetsRef;

static void targets_evidence_putp(TargetsRef *ref)
{
    for (size_t i = 0; *ref->t && i < *ref->n; i++)
        for (int k = 0; k < 3; k++)
            json_object_put((*ref->t)[i].ev[k]);
}

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

static void decode_hist(sqlite3_stmt *s, int col, BrHist *out, const BrHist **ret)
{
    const void *blob = sqlite3_column_blob(s, col);
    *ret = NULL;
    if (blob && br_hist_decode(blob, (size_t)sqlite3_column_bytes(s, col), out) == 0)
        *ret = out;
}

static int gather_samples(CmDb *db, const BrAssessmentPolicy *p, Target *t, BrUsageStats *s,
                          int64_t from, int64_t to, CmError *err)
{
    sqlite3_stmt *st;
    if (to <= from)
        return 0;
    st = cm_db_stmt(db,
                    "SELECT start, duration, readings, expected, vcpus, memory_mib, cpu_avg,"
                    " cpu_max, mem_avg, mem_max, net_rx_bytes, net_tx_bytes FROM samples"
                    " WHERE instance_id = ? AND start >= ? AND start < ? ORDER BY start",
                    err);
    if (!st)
        return -EIO;
    CM_DB_BIND(st, t->id, from, to);
    while (sqlite3_step(st) == SQLITE_ROW) {
        int64_t vcpus = sqlite3_column_type(st, 4) == SQLITE_NULL ? t->vcpus
                                                                   : sqlite3_column_int64(st, 4);
        int64_t mem = sqlite3_column_type(st, 5) == SQLITE_NULL ? t->memory_mib
                                                                 : sqlite3_column_int64(st, 5);
        br_usage_stats_add_window(
            s, p, sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1),
            sqlite3_column_int64(st, 2), sqlite3_column_int64(st, 3), vcpus, mem,
            sqlite3_column_type(st, 6) != SQLITE_NULL, sqlite3_column_double(st, 6),
            sqlite3_column_type(st, 7) != SQLITE_NULL, sqlite3_column_double(st, 7),
            sqlite3_column_type(st, 8) != SQLITE_NULL, sqlite3_column_double(st, 8),
            sqlite3_column_type(st, 9) != SQLITE_NULL, sqlite3_column_double(st, 9),
            sqlite3_column_type(st, 10) != SQLITE_NULL, sqlite3_column_double(st, 10),
            sqlite3_column_type(st, 11) != SQLITE_NULL, sqlite3_column_double(st, 11));
    }
    sqlite3_reset(st);
    return 0;
}

static int gather_rollups(CmDb *db, Target *t, BrUsageStats *s, int64_t from_day,
                          int64_t to_day, CmError *err)
{
    char a[16], b[16];
    sqlite3_stmt *st;
    if (to_day <= from_day)
        return 0;
    day_name(from_day, a);
    day_name(to_day, b);
    st = cm_db_stmt(db,
                    "SELECT windows, readings, expected, coalesce(duration, 0), cpu_util_hist,"
                    " mem_util_hist, cpu_avg, cpu_max, mem_avg, mem_max,"
                    " coalesce(idle_windows, 0), coalesce(idle_checked_windows, 0),"
                    " coalesce(vcpus, ?4), coalesce(memory_mib, ?5)"
                    " FROM rollups WHERE instance_id = ?1 AND day >= ?2 AND day < ?3"
                    " ORDER BY day",
                    err);
    if (!st)
        return -EIO;
    CM_DB_BIND(st, t->id, a, b, t->vcpus, t->memory_mib);
    while (sqlite3_step(st) == SQLITE_ROW) {
        BrHist ch, mh;
        const BrHist *cp, *mp;
        decode_hist(st, 4, &ch, &cp);
        decode_hist(st, 5, &mh, &mp);
        br_usage_stats_add_rollup(
            s, sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1),
            sqlite3_column_int64(st, 2), sqlite3_column_int64(st, 3), sqlite3_column_int64(st, 12),
            sqlite3_column_int64(st, 13), cp, mp, sqlite3_column_type(st, 6) != SQLITE_NULL,
            sqlite3_column_double(st, 6), sqlite3_column_type(st, 7) != SQLITE_NULL,
            sqlite3_column_double(st, 7), sqlite3_column_type(st, 8) != SQLITE_NULL,
            sqlite3_column_double(st, 8), sqlite3_column_type(st, 9) != SQLITE_NULL,
            sqlite3_column_double(st, 9), sqlite3_column_int64(st, 10),
            sqlite3_column_int64(st, 11));
    }
    sqlite3_reset(st);
    return 0;
}

/* The start of the instance's first window: its oldest sample, or the midnight of its oldest
 * rollup when that day is older (its samples are past the retention; rollups stay). 0: none. */
static int first_window(CmDb *db, int64_t instance_id, int64_t *ret, CmError *err)
{
    sqlite3_stmt *st = cm_db_stmt(db,
                                  "SELECT (SELECT min(start) FROM samples WHERE instance_id = ?1),"
                                  " (SELECT unixepoch(min(day)) FROM rollups"
                                  "  WHERE instance_id = ?1)",
                                  err);
    int r;
    if (!st)
        return -EIO;
    CM_DB_BIND(st, instance_id);
    r = cm_db_step_row(db, st, err);
    if (r > 0) {
        bool has_sample = sqlite3_column_type(st, 0) != SQLITE_NULL;
        bool has_rollup = sqlite3_column_type(st, 1) != SQLITE_NULL;
        int64_t sample = sqlite3_column_int64(st, 0), rollup = sqlite3_column_int64(st, 1);
        *ret = has_rollup && (!has_sample || rollup < day_floor(sample)) ? rollup
               : has_sample                                              ? sample
                                                                         : 0;
    }
    sqlite3_reset(st);
    return r < 0 ? r : 0;
}

/* Whole days from rollups, the part-days at both ends from samples; readings are expected
 * from the later of the window's start and the instance's first window (@first) to now. */
static int gather(CmDb *db, const BrAssessmentPolicy *p, Target *t, BrUsageStats *s, int64_t window,
                  int64_t now, int64_t first, CmError *err)
{
    int64_t from = now - window;
    int64_t first_day = day_floor(from) == from ? from : day_floor(from) + 86400;
    int64_t last_day = day_floor(now);
    int r;

    memset(s, 0, sizeof(*s));
    s->window_seconds = window;
    s->span_from = first > from ? first : from;
    s->span_seconds = first && now > s->span_from ? (double)(now - s->span_from) : 0;
    if (first_day >= last_day) {
        r = gather_samples(db, p, t, s, from, now, err);
    } else {
        r = gather_samples(db, p, t, s, from, first_day, err);
        if (r >= 0)
            r = gather_rollups(db, t, s, first_day, last_day, err);
        if (r >= 0)
            r = gather_samples(db, p, t, s, last_day, now, err);
    }
    br_usage_stats_finish(s);
    return r;
}

/* ---- recording ---- */

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
                           json_object_new_string(s->rollup_days
                                                      ? "1 % (daily histograms merged)"
                                                      : "1 % (per-window histogram)"));
    return o;
}

/* @scale_in: an idle instance of an allocation whose other instances are not all idle. */
static json_object *recommendation_json(const BrAssessmentPolicy *p, const BrVerdict *v,
                                        const Target *t, bool idle, bool scale_in)
{
    static const char *const modes[] = {"conservative", "moderate", "aggressive"};
    json_object *o = json_object_new_object();
    json_object_object_add(o, "action",
                           json_object_new_string(!idle      ? "resize"
                                                  : scale_in ? "scale_in"
                                                             : "terminate"));
    if (idle && scale_in) {
        json_object *rm = json_object_new_object();
        json_object_object_add(rm, "instance_id", json_object_new_int64(t->id));
        json_object_object_add(rm, "index", json_object_new_int64(t->idx));
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

static int record(CmDb *db, const Target *t, const char *kind, const char *rule,
                  json_object *evidence, json_object *rec, const BrVerdict *v, const char *at,
                  int *created, int *updated, CmError *err)
{
    sqlite3_stmt *st = cm_db_stmt(db,
                                  "SELECT id, state FROM findings WHERE instance_id = ?"
                                  " AND kind = ? AND state IN ('open','acknowledged','dismissed')"
                                  " ORDER BY id DESC LIMIT 1",
                                  err);
    int64_t id = 0;
    bool dismissed = false;
    int r;

    if (!st)
        return -EIO;
    CM_DB_BIND(st, t->id, kind);
    if (sqlite3_step(st) == SQLITE_ROW) {
        id = sqlite3_column_int64(st, 0);
        dismissed = strcmp(cm_db_col_text(st, 1), "dismissed") == 0;
    }
    sqlite3_reset(st);
    if (dismissed)
        return 0; /* the bureau dismissed it with a reason: do not raise it again */
    if (id) {
        st = cm_db_stmt(db,
                        "UPDATE findings SET rule = ?, evidence = ?, recommendation = ?,"
                        " current_vcpus = ?, current_memory_mib = ?, recommended_vcpus = ?,"
                        " recommended_memory_mib = ?, frees_vcpus = ?, frees_memory_mib = ?,"
                        " last_found = ? WHERE id = ?",
                        err);
        if (!st)
            return -EIO;
        CM_DB_BIND(st, rule, cm_json_to_string(evidence, NULL), cm_json_to_string(rec, NULL),
                   v->current.vcpus, v->current.memory_mib, v->recommended.vcpus,
                   v->recommended.memory_mib, v->frees.vcpus, v->frees.memory_mib, at, id);
        r = cm_db_step_done(db, st, err);
        if (r >= 0)
            (*updated)++;
        return r;
    }
    st = cm_db_stmt(db,
                    "INSERT INTO findings(instance_id, allocation_id, department_id, system_id,"
                    " kind, state, rule, evidence, recommendation, current_vcpus,"
                    " current_memory_mib, recommended_vcpus, recommended_memory_mib,"
                    " frees_vcpus, frees_memory_mib, first_found, last_found, state_changed_at)"
                    " VALUES (?,?,?,?,?,'open',?,?,?,?,?,?,?,?,?,?,?,?)",
                    err);
    if (!st)
        return -EIO;
    CM_DB_BIND(st, t->id, t->allocation_id, t->department_id, t->system_id, kind, rule,
               cm_json_to_string(evidence, NULL), cm_json_to_string(rec, NULL), v->current.vcpus,
               v->current.memory_mib, v->recommended.vcpus, v->recommended.memory_mib,
               v->frees.vcpus, v->frees.memory_mib, at, at, at);
    r = cm_db_step_done(db, st, err);
    if (r >= 0)
        (*created)++;
    return r;
}

/* A new finding is told to its department, in the same transaction. */
static int notify_finding(BrDaemon *d, CmDb *db, const BrActor *actor, const Target *t,
                          const char *kind, CmError *err)
{
    _cleanup_json_ json_object *detail = json_object_new_object(), *system = NULL;
    int64_t id = cm_db_last_insert_id(db);
    int r = br_system_get(db, t->system_id, 0, &system, err);

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
    r = br_notification_raise(db, &d->notify, actor, &n, err);
    return r < 0 ? r : 0;
}

/* A live finding whose condition was judged and no longer holds is resolved. */
static int resolve_stale(CmDb *db, int64_t instance_id, const char *kind, const char *at,
                         int *resolved, CmError *err)
{
    sqlite3_stmt *st = cm_db_stmt(db,
                                  "UPDATE findings SET state = 'resolved', state_changed_at = ?,"
                                  " reason = 'the condition no longer holds' WHERE instance_id = ?"
                                  " AND kind = ? AND state IN ('open','acknowledged')",
                                  err);
    int r;
    if (!st)
        return -EIO;
    CM_DB_BIND(st, at, instance_id, kind);
    r = cm_db_step_done(db, st, err);
    if (r >= 0)
        *resolved += sqlite3_changes(cm_db_handle(db));
    return r;
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

#define NOT_JUDGED_LISTED 200

int br_assess_run(BrDaemon *d, const BrActor *actor, json_object **ret, CmError *err)
{
    _cleanup_(br_policies_unrefp) BrPolicies *pol = br_daemon_policies(d);
    const BrAssessmentPolicy *p = &pol->assessment;
    _cleanup_free_ Target *targets = NULL;
    _cleanup_free_ BrVerdict *verdicts = NULL;
    _cleanup_free_ bool *judged = NULL;
    _cleanup_free_ AllocIdle *allocs = NULL;
    _cleanup_json_ json_object *not_judged = json_object_new_array();
    size_t n = 0, cap = 0, n_not_judged = 0;
    _cleanup_(targets_evidence_putp) TargetsRef targets_ref = {&targets, &n};
    int64_t now = cm_now_ms() / 1000, t0 = cm_mono_ns();
    int64_t size_window = p->over_window > p->under_window ? p->over_window : p->under_window;
    char at[CM_TIME_ISO_LEN + 1];
    int created = 0, updated = 0, resolved = 0, insufficient = 0, young = 0, r = 0;
    CmDb *db;
    sqlite3_stmt *st;

    cm_time_iso(now * 1000, at);
    db = br_store_db(d->store, err);
    if (!db)
        return -EIO;
    /* Read everything from one snapshot, without the write lock. */
    r = cm_db_begin_read(db, err);
    if (r < 0)
        return r;
    st = cm_db_stmt(db,
                    "SELECT i.id, i.allocation_id, a.department_id, a.system_id, i.vcpus,"
                    " i.memory_mib, i.created_at, i.idx, i.name FROM instances i"
                    " JOIN allocations a ON a.id = i.allocation_id WHERE a.purpose = 'production'"
                    " AND a.state IN ('active','resizing')"
                    " AND i.state IN ('defined','running','shutoff') ORDER BY i.id",
                    err);
    r = st ? 0 : -EIO;
    while (r >= 0 && sqlite3_step(st) == SQLITE_ROW) {
        if (n == cap) {
            cap = cap ? cap * 2 : 256;
            Target *nt = realloc(targets, cap * sizeof(*nt));
            if (!nt) {
                r = cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
                break;
            }
            targets = nt;
        }
        Target *t = &targets[n++];
        memset(t, 0, sizeof(*t));
        t->id = sqlite3_column_int64(st, 0);
        t->allocation_id = sqlite3_column_int64(st, 1);
        t->department_id = sqlite3_column_int64(st, 2);
        t->system_id = sqlite3_column_int64(st, 3);
        t->vcpus = sqlite3_column_int64(st, 4);
        t->memory_mib = sqlite3_column_int64(st, 5);
        if (cm_time_parse_iso(cm_db_col_text(st, 6), &t->created_ms) < 0)
            t->created_ms = 0;
        t->idx = sqlite3_column_int64(st, 7);
        cm_strscpy(t->name, sizeof(t->name), cm_db_col_text(st, 8));
    }
    if (st)
        sqlite3_reset(st);
    verdicts = calloc(n + 1, sizeof(*verdicts));
    judged = calloc(n + 1, sizeof(*judged));
    allocs = calloc(n + 1, sizeof(*allocs));
    if (r >= 0 && (!verdicts || !judged || !allocs || !not_judged))
        r = cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    /* The usage of one instance at a time (two windows): the evidence of what fired is made
     * here, so nothing per instance but its verdict and evidence stays in memory. */
    _cleanup_free_ BrUsageStats *w = calloc(2, sizeof(*w));
    if (r >= 0 && !w)
        r = cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    for (size_t i = 0; r >= 0 && i < n; i++) {
        Target *t = &targets[i];
        const char *why = NULL;
        int64_t first = 0;
        if (t->created_ms / 1000 > now - p->min_age_seconds) {
            young++; /* too new to judge */
            why = "too_young";
        } else {
            r = first_window(db, t->id, &first, err);
            if (r >= 0)
                r = gather(db, p, t, &w[0], p->idle_window, now, first, err);
            if (r >= 0)
                r = gather(db, p, t, &w[1], size_window, now, first, err);
            if (r >= 0) {
                static const char *const kinds[3] = {"idle", "over_provisioned",
                                                     "under_provisioned"};
                const BrVerdict *v = &verdicts[i];
                judged[i] = br_assess_verdict(p, &w[0], &w[1], (BrSize){t->vcpus, t->memory_mib},
                                              &verdicts[i]);
                t->coverage[0] = coverage_of(&w[0]);
                t->coverage[1] = coverage_of(&w[1]);
                if (!judged[i]) {
                    insufficient++;
                    why = "insufficient_evidence";
                }
                bool fired[3] = {v->idle, v->over, v->under};
                for (int k = 0; judged[i] && k < 3; k++)
                    if (fired[k])
                        t->ev[k] = evidence_json(k == 0 ? &w[0] : &w[1], v, now, kinds[k], t->vcpus,
                                                 t->memory_mib);
            }
        }
        if (why && n_not_judged++ < NOT_JUDGED_LISTED)
            json_object_array_add(not_judged,
                                  not_judged_json(t, why, strcmp(why, "too_young") != 0));
        allocs[i] = (AllocIdle){t->allocation_id, !(judged[i] && verdicts[i].idle)};
    }
    cm_db_rollback(db);
    if (r < 0)
        return r;
    /* Sorted by allocation, each entry says whether any instance of it is not idle. */
    qsort(allocs, n, sizeof(*allocs), cmp_alloc_idle);
    for (size_t i = 0, j; i < n; i = j) {
        bool any = false;
        for (j = i; j < n && allocs[j].allocation_id == allocs[i].allocation_id; j++)
            any = any || allocs[j].not_idle;
        for (size_t k = i; k < j; k++)
            allocs[k].not_idle = any;
    }

    r = br_store_write_begin(d->store, &db, err);
    if (r < 0)
        return r;
    for (size_t i = 0; r >= 0 && i < n; i++) {
        const Target *t = &targets[i];
        const BrVerdict *v = &verdicts[i];
        static const char *const kinds[3] = {"idle", "over_provisioned", "under_provisioned"};
        bool fired[3] = {v->idle, v->over, v->under};
        if (!judged[i])
            continue;
        AllocIdle key = {t->allocation_id, false};
        const AllocIdle *ai = bsearch(&key, allocs, n, sizeof(*allocs), cmp_alloc_idle);
        bool scale_in = ai && ai->not_idle;
        for (int k = 0; k < 3 && r >= 0; k++) {
            if (!fired[k]) {
                r = resolve_stale(db, t->id, kinds[k], at, &resolved, err);
                continue;
            }
            _cleanup_json_ json_object *rec = recommendation_json(p, v, t, k == 0, scale_in);
            int before = created;
            r = record(db, t, kinds[k], v->rule, t->ev[k], rec, v, at, &created, &updated, err);
            if (r >= 0 && created > before)
                r = notify_finding(d, db, actor, t, kinds[k], err);
        }
    }
    _cleanup_json_ json_object *summary = json_object_new_object();
    json_object_object_add(summary, "instances", json_object_new_int64((int64_t)n));
    json_object_object_add(summary, "created", json_object_new_int64(created));
    json_object_object_add(summary, "updated", json_object_new_int64(updated));
    json_object_object_add(summary, "resolved", json_object_new_int64(resolved));
    json_object_object_add(summary, "insufficient_evidence", json_object_new_int64(insufficient));
    json_object_object_add(summary, "too_young", json_object_new_int64(young));
    json_object_object_add(summary, "seconds",
                           json_object_new_double((double)(cm_mono_ns() - t0) / 1e9));
    if (r >= 0)
        r = br_store_audit(d->store, db, actor, "assessment.run", "assessment", 0, "ok",
                           cm_json_to_string(summary, NULL), err);
    if (r < 0) {
        br_store_write_abort(d->store, db);
        return r;
    }
    r = br_store_write_commit(d->store, db, err);
    if (r < 0)
        return r;
    cm_log_info("assessment: %zu instances, %d new findings, %d updated, %d resolved", n,
                created, updated, resolved);
    /* The answer (not the audit record) names the instances not judged and their coverage. */
    json_object_object_add(summary, "not_judged", json_object_get(not_judged));
    json_object_object_add(summary, "not_judged_truncated",
                           json_object_new_boolean(n_not_judged > NOT_JUDGED_LISTED));
    if (ret)
        *ret = json_object_get(summary);
    return 0;
}

int br_assess_resolve_ended(BrStore *store, CmDb *db, int64_t allocation_id, const char *reason,
                            CmError *err)
{
    char at[CM_TIME_ISO_LEN + 1];
    _cleanup_free_ int64_t *ids = NULL;
    size_t n = 0, cap = 0;
    sqlite3_stmt *st;
    int r;

    cm_time_iso(cm_now_ms(), at);
    st = cm_db_stmt(db,
                    "SELECT f.id FROM findings f JOIN instances i ON i.id = f.instance_id"
                    " JOIN allocations a ON a.id = f.allocation_id WHERE f.allocation_id = ?"
                    " AND f.state IN ('open','acknowledged') AND (i.state IN"
                    " ('undefined','deleted') OR a.state IN ('retained','purged'))"
                    " ORDER BY f.id",
                    err);
    if (!st)
        return -EIO;
    CM_DB_BIND(st, allocation_id);
    while ((r = cm_db_step_row(db, st, err)) > 0) {
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            int64_t *ni = realloc(ids, cap * sizeof(*ni));
            if (!ni) {
                sqlite3_reset(st);
                return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
            }
            ids = ni;
        }
        ids[n++] = sqlite3_column_int64(st, 0);
    }
    sqlite3_reset(st);
    if (r < 0)
        return r;
    for (size_t i = 0; i < n; i++) {
        _cleanup_json_ json_object *detail = json_object_new_object();
        st = cm_db_stmt(db,
                        "UPDATE findings SET state = 'resolved', state_changed_at = ?,"
                        " reason = ? WHERE id = ?",
                        err);
        if (!st)
            return -EIO;
        CM_DB_BIND(st, at, reason, ids[i]);
        r = cm_db_step_done(db, st, err);
        if (r < 0)
            return r;
        json_object_object_add(detail, "reason", json_object_new_string(reason));
        r = br_store_audit(store, db, br_actor_system(), "finding.resolved", "finding", ids[i],
                           "resolved", cm_json_to_string(detail, NULL), err);
        if (r < 0)
            return r;
    }
    if (n)
        cm_log_info("allocation %lld: %zu finding(s) resolved: %s", (long long)allocation_id, n,
                    reason);
    return (int)n;
}

/* ---- the daily run ---- */

struct BrAssessor {
    BrDaemon *d;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stopping;
};

static void *assessor_thread(void *arg)
{
    BrAssessor *a = arg;
    pthread_mutex_lock(&a->lock);
    while (!a->stopping) {
        BrPolicies *p = br_daemon_policies(a->d);
        int64_t interval = p->assessment.run_interval_seconds;
        br_policies_unref(p);
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += interval;
        while (!a->stopping && pthread_cond_timedwait(&a->wake, &a->lock, &ts) == 0)
            ;
        if (a->stopping)
            break;
        pthread_mutex_unlock(&a->lock);
        CmError err = {0};
        if (br_assess_run(a->d, br_actor_system(), NULL, &err) < 0)
            cm_log_error("assessment: %s", err.message);
        pthread_mutex_lock(&a->lock);
    }
    pthread_mutex_unlock(&a->lock);
    return NULL;
}

int br_assessor_start(BrDaemon *d, BrAssessor **ret, CmError *err)
{
    BrAssessor *a = calloc(1, sizeof(*a));
    pthread_condattr_t attr;
    if (!a)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    a->d = d;
    pthread_mutex_init(&a->lock, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&a->wake, &attr);
    pthread_condattr_destroy(&attr);
    if (pthread_create(&a->thread, NULL, assessor_thread, a) != 0) {
        free(a);
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "cannot start the assessment thread");
    }
    *ret = a;
    return 0;
}

BrAssessor *br_assessor_stop(BrAssessor *a)
{
    if (!a)
        return NULL;
    pthread_mutex_lock(&a->lock);
    a->stopping = true;
    pthread_cond_broadcast(&a->wake);
    pthread_mutex_unlock(&a->lock);
    pthread_join(a->thread, NULL);
    pthread_mutex_destroy(&a->lock);
    pthread_cond_destroy(&a->wake);
    free(a);
    return NULL;
}
