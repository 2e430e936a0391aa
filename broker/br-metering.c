/* SPDX-License-Identifier: Apache-2.0 */
/* The broker's side of metering: sample ingest, daily rollups, retention. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "br-daemon.h"
#include "br-hist.h"
#include "br-metering.h"
#include "cm-log.h"
#include "cm-time.h"
#include "cm-util.h"

static atomic_uint_fast64_t stored_total, duplicates_total, overlapping_total,
    unowned_dropped_total;

/* The longest window the schema allows: a stored window overlapping one that starts at S
 * starts after S - WINDOW_MAX_SECONDS, so one range of the primary key finds it. */
#define WINDOW_MAX_SECONDS 3600
/* Unowned windows are capped per host and slot of this many seconds, whatever their duration:
 * what a host can store is bounded by the retention alone. */
#define UNOWNED_SLOT_SECONDS 300

void br_metering_counts(uint64_t *ret_stored, uint64_t *ret_duplicates)
{
    *ret_stored = atomic_load(&stored_total);
    *ret_duplicates = atomic_load(&duplicates_total);
}

void br_metering_refusals(uint64_t *ret_overlapping, uint64_t *ret_unowned_dropped)
{
    *ret_overlapping = atomic_load(&overlapping_total);
    *ret_unowned_dropped = atomic_load(&unowned_dropped_total);
}

/* The metrics of an instance window, in the order of the INSERT's columns 7.. */
static const uint8_t instance_cols[] = {
    BR_SF_VCPUS,
    BR_SF_MEMORY_MIB,
    BR_SF_CPU_CORES_AVG,
    BR_SF_CPU_CORES_MAX,
    BR_SF_MEMORY_USED_MIB_AVG,
    BR_SF_MEMORY_USED_MIB_MAX,
    BR_SF_MEMORY_SOURCE,
    BR_SF_DISK_READ_BYTES,
    BR_SF_DISK_WRITE_BYTES,
    BR_SF_DISK_READ_REQUESTS,
    BR_SF_DISK_WRITE_REQUESTS,
    BR_SF_NET_RX_BYTES,
    BR_SF_NET_TX_BYTES,
    BR_SF_NET_RX_PACKETS,
    BR_SF_NET_TX_PACKETS,
};

static const uint8_t unowned_cols[] = {
    BR_SF_VCPUS,         BR_SF_MEMORY_MIB,          BR_SF_CPU_CORES_AVG,
    BR_SF_CPU_CORES_MAX, BR_SF_MEMORY_USED_MIB_AVG, BR_SF_MEMORY_USED_MIB_MAX,
    BR_SF_NET_RX_BYTES,  BR_SF_NET_TX_BYTES,
};

static const uint8_t host_cols[] = {
    BR_SF_CPUS,
    BR_SF_MEMORY_MIB,
    BR_SF_CPU_USED_CORES_AVG,
    BR_SF_CPU_USED_CORES_MAX,
    BR_SF_MEMORY_USED_MIB_AVG,
    BR_SF_DOMAINS_MAX,
    BR_SF_CYCLE_SECONDS_AVG,
    BR_SF_CYCLE_SECONDS_MAX,
};

/* Binds the metrics of @rec from parameter @first on; absent or null binds NULL (missing). */
static void bind_cols(sqlite3_stmt *stmt, int first, const BrSample *rec, const uint8_t *cols,
                      size_t n)
{
    for (size_t i = 0; i < n; i++) {
        BrSampleField f = (BrSampleField)cols[i];
        int idx = first + (int)i;
        if (!br_sample_has(rec, f)) {
            sqlite3_bind_null(stmt, idx);
            continue;
        }
        switch (br_sample_field_kind(f)) {
        case BR_SAMPLE_VALUE_INT:
            sqlite3_bind_int64(stmt, idx, rec->v[f].i);
            break;
        case BR_SAMPLE_VALUE_NUMBER:
            sqlite3_bind_double(stmt, idx, rec->v[f].d);
            break;
        case BR_SAMPLE_VALUE_TEXT:
            /* the one text metric: "balloon" or "rss", static strings */
            sqlite3_bind_text(stmt, idx, rec->memory_source, -1, SQLITE_STATIC);
            break;
        }
    }
}

static int64_t sat_add(int64_t a, int64_t b)
{
    int64_t r;
    return __builtin_add_overflow(a, b, &r) ? (b > 0 ? INT64_MAX : INT64_MIN) : r;
}

/* Rules the schema cannot say: alignment, time bounds, consistency. */
static int check_window(const BrSample *rec, BrSamplesList list, size_t i, int64_t now,
                        int64_t oldest, int64_t skew, CmError *err)
{
    static const uint8_t pairs[][2] = {
        {BR_SF_CPU_CORES_AVG, BR_SF_CPU_CORES_MAX},
        {BR_SF_CPU_USED_CORES_AVG, BR_SF_CPU_USED_CORES_MAX},
        {BR_SF_MEMORY_USED_MIB_AVG, BR_SF_MEMORY_USED_MIB_MAX},
        {BR_SF_CYCLE_SECONDS_AVG, BR_SF_CYCLE_SECONDS_MAX},
    };
    const char *name = br_samples_list_name(list);
    int64_t start = rec->v[BR_SF_START].i, duration = rec->v[BR_SF_DURATION].i;
    char field[96];

    if (start % duration != 0) {
        snprintf(field, sizeof(field), "/%s/%zu/start", name, i);
        return cm_error_set_code(err, CM_ERROR_UNPROCESSABLE, "invalid_window", field,
                                 "record %zu: start must be a multiple of duration", i);
    }
    /* start + duration > now + skew, without overflow for a start near INT64_MAX */
    if (start > now + skew - duration) {
        snprintf(field, sizeof(field), "/%s/%zu/start", name, i);
        return cm_error_set_code(err, CM_ERROR_UNPROCESSABLE, "future_window", field,
                                 "record %zu: the window ends %lld s in the future", i,
                                 (long long)sat_add(start - now, duration));
    }
    if (start < oldest) {
        snprintf(field, sizeof(field), "/%s/%zu/start", name, i);
        return cm_error_set_code(err, CM_ERROR_UNPROCESSABLE, "stale_window", field,
                                 "record %zu: the window is older than the sample retention", i);
    }
    if (rec->v[BR_SF_READINGS].i > rec->v[BR_SF_EXPECTED].i) {
        snprintf(field, sizeof(field), "/%s/%zu/readings", name, i);
        return cm_error_set_code(err, CM_ERROR_UNPROCESSABLE, "schema_violation", field,
                                 "record %zu: more readings than expected", i);
    }
    for (size_t k = 0; k < ELEMENTSOF(pairs); k++) {
        BrSampleField a = (BrSampleField)pairs[k][0], b = (BrSampleField)pairs[k][1];
        if (br_sample_has(rec, a) && br_sample_has(rec, b) &&
            rec->v[a].d > rec->v[b].d * (1 + 1e-9) + 1e-9) {
            snprintf(field, sizeof(field), "/%s/%zu/%s", name, i, br_sample_field_name(a));
            return cm_error_set_code(err, CM_ERROR_UNPROCESSABLE, "schema_violation", field,
                                     "record %zu: the average exceeds the maximum", i);
        }
    }
    /* A guest cannot use more cores than it has; a little slack for timer granularity. */
    if (br_sample_has(rec, BR_SF_VCPUS) && br_sample_has(rec, BR_SF_CPU_CORES_MAX) &&
        rec->v[BR_SF_CPU_CORES_MAX].d > (double)rec->v[BR_SF_VCPUS].i * 1.25 + 0.25) {
        snprintf(field, sizeof(field), "/%s/%zu/cpu_cores_max", name, i);
        return cm_error_set_code(err, CM_ERROR_UNPROCESSABLE, "implausible", field,
                                 "record %zu: %.2f cores used by %lld vCPUs", i,
                                 rec->v[BR_SF_CPU_CORES_MAX].d, (long long)rec->v[BR_SF_VCPUS].i);
    }
    return 0;
}

/* What the batch's instances are, looked up once per instance and batch. */
typedef struct {
    int64_t id;
    bool mine; /* exists and is on the posting host */
    char uuid[40];
    int64_t memory_mib, max_vcpus;
} Owner;

typedef struct {
    Owner *owners;
    size_t n, cap;
    uint32_t *slots; /* open addressing: owner index + 1, 0 when free */
    size_t n_slots;
} OwnerCache;

static void owner_cache_free(OwnerCache *oc)
{
    free(oc->owners);
    free(oc->slots);
}

static int owner_lookup(CmDb *db, sqlite3_stmt *own, int64_t host_id, OwnerCache *oc, int64_t id,
                        const Owner **ret, CmError *err)
{
    size_t mask = oc->n_slots - 1, i = ((uint64_t)id * 0x9E3779B97F4A7C15ULL >> 32) & mask;
    Owner *o;
    int r;

    for (; oc->slots[i]; i = (i + 1) & mask) {
        if (oc->owners[oc->slots[i] - 1].id == id) {
            *ret = &oc->owners[oc->slots[i] - 1];
            return 0;
        }
    }
    if (oc->n == oc->cap) {
        size_t ncap = oc->cap ? oc->cap * 2 : 64;
        Owner *no = realloc(oc->owners, ncap * sizeof(*no));
        if (!no)
            return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
        oc->owners = no;
        oc->cap = ncap;
    }
    o = &oc->owners[oc->n];
    *o = (Owner){.id = id};
    CM_DB_BIND(own, id);
    r = cm_db_step_row(db, own, err);
    if (r > 0 && sqlite3_column_int64(own, 0) == host_id) {
        o->mine = true;
        cm_strscpy(o->uuid, sizeof(o->uuid), cm_db_col_text(own, 1));
        o->memory_mib = sqlite3_column_int64(own, 2);
        o->max_vcpus = sqlite3_column_int64(own, 3);
    }
    sqlite3_reset(own);
    if (r < 0)
        return r;
    oc->slots[i] = (uint32_t)++oc->n;
    *ret = o;
    return 0;
}

/* The unowned windows a host has in each 5-minute slot: read once per slot and batch. */
typedef struct {
    int64_t slot; /* -1: free */
    int64_t count;
} SlotCount;

typedef struct {
    SlotCount *slots;
    size_t n_slots;
} SlotCache;

static void slot_cache_free(SlotCache *sc)
{
    free(sc->slots);
}

static int slot_count(CmDb *db, sqlite3_stmt *count, int64_t host_id, SlotCache *sc,
                      int64_t slot, SlotCount **ret, CmError *err)
{
    size_t mask = sc->n_slots - 1, i = ((uint64_t)slot * 0x9E3779B97F4A7C15ULL >> 32) & mask;
    int r;

    for (; sc->slots[i].slot >= 0; i = (i + 1) & mask) {
        if (sc->slots[i].slot == slot) {
            *ret = &sc->slots[i];
            return 0;
        }
    }
    CM_DB_BIND(count, host_id, slot, slot + UNOWNED_SLOT_SECONDS);
    r = cm_db_step_row(db, count, err);
    if (r > 0) {
        sc->slots[i].slot = slot;
        sc->slots[i].count = sqlite3_column_int64(count, 0);
        *ret = &sc->slots[i];
    }
    sqlite3_reset(count);
    return r < 0 ? r : r == 0 ? -EIO : 0;
}

/* The unowned windows: stored up to the policy's cap per host and slot, the rest counted. */
static int ingest_unowned(CmDb *db, int64_t host_id, int64_t cap, const BrSamplesBatch *batch,
                          BrIngestResult *res, CmError *err)
{
    const BrSample *unowned = batch->items[BR_SAMPLES_UNOWNED];
    size_t n = batch->n[BR_SAMPLES_UNOWNED];
    _cleanup_(slot_cache_free) SlotCache sc = {0};
    sqlite3_stmt *stmt, *count, *known;
    int r;

    if (!n)
        return 0;
    sc.n_slots = 64;
    while (sc.n_slots < 2 * n)
        sc.n_slots *= 2;
    sc.slots = malloc(sc.n_slots * sizeof(*sc.slots));
    if (!sc.slots)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    for (size_t i = 0; i < sc.n_slots; i++)
        sc.slots[i].slot = -1;
    count = cm_db_stmt(db,
                       "SELECT count(*) FROM unowned_samples"
                       " WHERE host_id = ? AND start >= ? AND start < ?",
                       err);
    if (!count)
        return -EIO;
    known = cm_db_stmt(db,
                       "SELECT 1 FROM unowned_samples WHERE host_id = ? AND uuid = ? AND start = ?",
                       err);
    if (!known)
        return -EIO;
    stmt = cm_db_stmt(db,
                      "INSERT INTO unowned_samples(host_id, uuid, start, name, duration, readings,"
                      " expected, vcpus, memory_mib, cpu_avg, cpu_max, mem_avg, mem_max,"
                      " net_rx_bytes, net_tx_bytes) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
                      " ON CONFLICT DO NOTHING",
                      err);
    if (!stmt)
        return -EIO;
    for (size_t i = 0; i < n; i++) {
        const BrSample *rec = &unowned[i];
        int64_t start = rec->v[BR_SF_START].i;
        SlotCount *sl;

        r = slot_count(db, count, host_id, &sc, start - start % UNOWNED_SLOT_SECONDS, &sl, err);
        if (r < 0)
            return r;
        if (sl->count >= cap) {
            /* a window stored already is a repeat, not counted, as below */
            CM_DB_BIND(known, host_id, (const char *)rec->uuid, start);
            r = cm_db_step_row(db, known, err);
            sqlite3_reset(known);
            if (r < 0)
                return r;
            if (r == 0)
                res->unowned_dropped++;
            continue;
        }
        CM_DB_BIND(stmt, host_id, (const char *)rec->uuid, start, br_sample_name(batch, rec),
                   rec->v[BR_SF_DURATION].i, rec->v[BR_SF_READINGS].i, rec->v[BR_SF_EXPECTED].i);
        bind_cols(stmt, 8, rec, unowned_cols, ELEMENTSOF(unowned_cols));
        r = cm_db_step_done(db, stmt, err);
        if (r < 0)
            return r;
        if (sqlite3_changes(cm_db_handle(db))) {
            res->unowned++;
            sl->count++;
        }
    }
    return 0;
}

int br_metering_ingest(BrDaemon *d, CmDb *db, int64_t host_id, const BrSamplesBatch *batch,
                       BrIngestResult *ret, CmError *err)
{
    _cleanup_(br_policies_unrefp) BrPolicies *p = br_daemon_policies(d);
    const BrSample *inst = batch->items[BR_SAMPLES_INSTANCES];
    const BrSample *unowned = batch->items[BR_SAMPLES_UNOWNED];
    const BrSample *host = batch->items[BR_SAMPLES_HOST];
    sqlite3_stmt *overlap;
    size_t n_inst = batch->n[BR_SAMPLES_INSTANCES], n_unowned = batch->n[BR_SAMPLES_UNOWNED];
    size_t n_host = batch->n[BR_SAMPLES_HOST];
    int64_t now = cm_now_ms() / 1000;
    int64_t oldest = now - p->metering.sample_retention_days * 86400;
    BrIngestResult res = {0};
    sqlite3_stmt *stmt, *own;
    _cleanup_(owner_cache_free) OwnerCache oc = {0};
    _cleanup_free_ int64_t *alloc_mem = n_inst ? calloc(n_inst, sizeof(int64_t)) : NULL;
    int r;

    if (n_inst && !alloc_mem)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    /* Check everything before writing anything: a bad record refuses the whole batch. */
    own = cm_db_stmt(db, "SELECT host_id, uuid, memory_mib, max_vcpus FROM instances WHERE id = ?",
                     err);
    if (!own)
        return -EIO;
    oc.n_slots = 64;
    while (oc.n_slots < 2 * n_inst)
        oc.n_slots *= 2;
    oc.slots = calloc(oc.n_slots, sizeof(*oc.slots));
    if (!oc.slots)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    for (size_t i = 0; i < n_inst; i++) {
        const BrSample *rec = &inst[i];
        int64_t id = rec->v[BR_SF_INSTANCE].i;
        const Owner *o = NULL;
        char field[64];

        r = check_window(rec, BR_SAMPLES_INSTANCES, i, now, oldest,
                         p->metering.max_clock_skew_seconds, err);
        if (r < 0)
            return r;
        /* one lookup per instance and batch, the UUID checked on every record */
        r = owner_lookup(db, own, host_id, &oc, id, &o, err);
        if (r < 0)
            return r;
        if (!o->mine || strcmp(o->uuid, rec->uuid) != 0) {
            snprintf(field, sizeof(field), "/instances/%zu/instance", i);
            return cm_error_set_code(err, CM_ERROR_FORBIDDEN, "not_your_instance", field,
                                     "record %zu: instance %lld with this UUID is not on your "
                                     "host",
                                     i, (long long)id);
        }
        alloc_mem[i] = o->memory_mib;
        /* The domain can never have more vCPUs than its maximum, nor use more cores. */
        if (br_sample_has(rec, BR_SF_VCPUS) && rec->v[BR_SF_VCPUS].i > o->max_vcpus) {
            snprintf(field, sizeof(field), "/instances/%zu/vcpus", i);
            return cm_error_set_code(err, CM_ERROR_UNPROCESSABLE, "implausible", field,
                                     "record %zu: %lld vCPUs, but instance %lld has at most %lld",
                                     i, (long long)rec->v[BR_SF_VCPUS].i, (long long)id,
                                     (long long)o->max_vcpus);
        }
        if (br_sample_has(rec, BR_SF_CPU_CORES_MAX) &&
            rec->v[BR_SF_CPU_CORES_MAX].d > (double)o->max_vcpus * 1.25 + 0.25) {
            snprintf(field, sizeof(field), "/instances/%zu/cpu_cores_max", i);
            return cm_error_set_code(err, CM_ERROR_UNPROCESSABLE, "implausible", field,
                                     "record %zu: %.2f cores used, but instance %lld has at most "
                                     "%lld vCPUs",
                                     i, rec->v[BR_SF_CPU_CORES_MAX].d, (long long)id,
                                     (long long)o->max_vcpus);
        }
    }
    for (size_t i = 0; i < n_unowned; i++) {
        r = check_window(&unowned[i], BR_SAMPLES_UNOWNED, i, now, oldest,
                         p->metering.max_clock_skew_seconds, err);
        if (r < 0)
            return r;
    }
    for (size_t i = 0; i < n_host; i++) {
        r = check_window(&host[i], BR_SAMPLES_HOST, i, now, oldest,
                         p->metering.max_clock_skew_seconds, err);
        if (r < 0)
            return r;
    }

    /* A window that shares seconds with a stored one of its instance: the same window again
     * (a duplicate), or another one, refused alone. Within the batch too: each insert is seen
     * by the next lookup. */
    overlap = cm_db_stmt(db,
                         "SELECT start, duration FROM samples WHERE instance_id = ?1"
                         " AND start > ?2 - ?4 AND start < ?2 + ?3 AND start + duration > ?2"
                         " ORDER BY start LIMIT 1",
                         err);
    if (!overlap)
        return -EIO;
    stmt = cm_db_stmt(db,
                      "INSERT INTO samples(instance_id, start, host_id, duration, readings,"
                      " expected, vcpus, memory_mib, cpu_avg, cpu_max, mem_avg, mem_max,"
                      " mem_source, disk_rd_bytes, disk_wr_bytes, disk_rd_reqs, disk_wr_reqs,"
                      " net_rx_bytes, net_tx_bytes, net_rx_pkts, net_tx_pkts)"
                      " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
                      " ON CONFLICT DO NOTHING",
                      err);
    if (!stmt)
        return -EIO;
    for (size_t i = 0; i < n_inst; i++) {
        const BrSample *rec = &inst[i];
        int64_t id = rec->v[BR_SF_INSTANCE].i, start = rec->v[BR_SF_START].i;
        int64_t duration = rec->v[BR_SF_DURATION].i;

        CM_DB_BIND(overlap, id, start, duration, (int64_t)WINDOW_MAX_SECONDS);
        r = cm_db_step_row(db, overlap, err);
        if (r > 0) {
            int64_t os = sqlite3_column_int64(overlap, 0), od = sqlite3_column_int64(overlap, 1);
            sqlite3_reset(overlap);
            if (os == start && od == duration) {
                res.duplicates++;
                continue;
            }
            if (res.n_rejected < BR_INGEST_MAX_REJECTIONS)
                res.rejected[res.n_rejected++] = (BrIngestRejection){
                    .index = i,
                    .instance = id,
                    .start = start,
                    .duration = duration,
                    .other_start = os,
                    .other_duration = od,
                };
            res.overlapping++;
            continue;
        }
        sqlite3_reset(overlap);
        if (r < 0)
            return r;
        CM_DB_BIND(stmt, rec->v[BR_SF_INSTANCE].i, rec->v[BR_SF_START].i, host_id,
                   rec->v[BR_SF_DURATION].i, rec->v[BR_SF_READINGS].i, rec->v[BR_SF_EXPECTED].i);
        bind_cols(stmt, 7, rec, instance_cols, ELEMENTSOF(instance_cols));
        /* The memory is what the instance was allocated: a guest whose balloon never
         * deflates reports the domain's maximum, which it was never given to use. */
        if (alloc_mem[i] > 0 && br_sample_has(rec, BR_SF_MEMORY_MIB) &&
            rec->v[BR_SF_MEMORY_MIB].i > alloc_mem[i])
            sqlite3_bind_int64(stmt, 8, alloc_mem[i]);
        r = cm_db_step_done(db, stmt, err);
        if (r < 0)
            return r;
        if (sqlite3_changes(cm_db_handle(db)))
            res.stored++;
        else
            res.duplicates++;
    }
    r = ingest_unowned(db, host_id, p->metering.max_unowned_per_window, batch, &res, err);
    if (r < 0)
        return r;
    stmt = cm_db_stmt(db,
                      "INSERT INTO host_samples(host_id, start, duration, readings, expected,"
                      " cpus, memory_mib, cpu_avg, cpu_max, mem_avg, domains_max, cycle_avg,"
                      " cycle_max) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING",
                      err);
    if (!stmt)
        return -EIO;
    for (size_t i = 0; i < n_host; i++) {
        const BrSample *rec = &host[i];
        CM_DB_BIND(stmt, host_id, rec->v[BR_SF_START].i, rec->v[BR_SF_DURATION].i,
                   rec->v[BR_SF_READINGS].i, rec->v[BR_SF_EXPECTED].i);
        bind_cols(stmt, 6, rec, host_cols, ELEMENTSOF(host_cols));
        r = cm_db_step_done(db, stmt, err);
        if (r < 0)
            return r;
        res.host += sqlite3_changes(cm_db_handle(db));
    }
    atomic_fetch_add(&stored_total, (uint64_t)res.stored);
    atomic_fetch_add(&duplicates_total, (uint64_t)res.duplicates);
    atomic_fetch_add(&overlapping_total, (uint64_t)res.overlapping);
    atomic_fetch_add(&unowned_dropped_total, (uint64_t)res.unowned_dropped);
    *ret = res;
    return 0;
}

/* ---- rollups ---- */

typedef struct {
    int64_t instance_id;
    int64_t windows, readings, expected_readings, duration;
    int64_t vcpus, memory_mib;
    double cpu_wsum, cpu_weight, cpu_max;
    double mem_wsum, mem_weight, mem_max;
    double *cpu_v, *mem_v, *rx_v, *tx_v;
    size_t n_cpu, n_mem, n_rx, n_tx, cap;
    BrHist cpu_h, mem_h;
    int64_t sums[8]; /* disk rd/wr bytes, rd/wr reqs, net rx/tx bytes, rx/tx packets */
    bool have[8];
    int64_t idle_windows, idle_checked; /* windows under the assessment's idle thresholds */
} Acc;

static void acc_reset(Acc *a, int64_t id)
{
    double *cv = a->cpu_v, *mv = a->mem_v, *rv = a->rx_v, *tv = a->tx_v;
    size_t cap = a->cap;
    memset(a, 0, sizeof(*a));
    a->cpu_v = cv;
    a->mem_v = mv;
    a->rx_v = rv;
    a->tx_v = tv;
    a->cap = cap;
    a->instance_id = id;
    a->cpu_max = -1;
    a->mem_max = -1;
}

static int acc_grow(Acc *a)
{
    size_t cap = a->cap ? a->cap * 2 : 512;
    double *c = realloc(a->cpu_v, cap * sizeof(double));
    if (c)
        a->cpu_v = c;
    double *m = realloc(a->mem_v, cap * sizeof(double));
    if (m)
        a->mem_v = m;
    double *r = realloc(a->rx_v, cap * sizeof(double));
    if (r)
        a->rx_v = r;
    double *t = realloc(a->tx_v, cap * sizeof(double));
    if (t)
        a->tx_v = t;
    if (!c || !m || !r || !t)
        return -ENOMEM;
    a->cap = cap;
    return 0;
}

/* One finished rollup, kept in memory until the day's write. */
typedef struct {
    int64_t instance_id, windows, readings, expected, vcpus, memory_mib;
    double coverage, cpu_avg, cpu_p95, cpu_max, mem_avg, mem_p95, mem_max, rx_p95, tx_p95;
    bool has_cpu, has_cpu_max, has_mem, has_mem_max, has_rx, has_tx;
    int64_t sums[8];
    bool have[8];
    uint8_t cpu_blob[BR_HIST_BLOB_SIZE], mem_blob[BR_HIST_BLOB_SIZE];
    bool cpu_hist, mem_hist;
    int64_t idle_windows, idle_checked, duration;
} RollupRow;

static void acc_finish(Acc *a, RollupRow *o)
{
    int64_t windows_per_day = a->duration > 0 ? 86400 / a->duration : 288;
    int64_t expected_per_window = a->windows ? a->expected_readings / a->windows : 1;

    /* The day's histograms are shares of its largest size (a.vcpus, a.memory_mib), stored
     * with the row: a resize during the day keeps every window's cores (MiB) used. */
    for (size_t i = 0; a->vcpus > 0 && i < a->n_cpu; i++)
        br_hist_add(&a->cpu_h, a->cpu_v[i] / (double)a->vcpus);
    for (size_t i = 0; a->memory_mib > 0 && i < a->n_mem; i++)
        br_hist_add(&a->mem_h, a->mem_v[i] / (double)a->memory_mib);
    memset(o, 0, sizeof(*o));
    if (expected_per_window < 1)
        expected_per_window = 1;
    o->instance_id = a->instance_id;
    o->windows = a->windows;
    o->readings = a->readings;
    o->expected = windows_per_day * expected_per_window;
    o->coverage = (double)a->readings / (double)o->expected;
    if (o->coverage > 1)
        o->coverage = 1;
    o->vcpus = a->vcpus;
    o->memory_mib = a->memory_mib;
    o->has_cpu = a->cpu_weight > 0;
    o->cpu_avg = o->has_cpu ? a->cpu_wsum / a->cpu_weight : 0;
    o->cpu_p95 = br_quantile_exact(a->cpu_v, a->n_cpu, 0.95);
    o->has_cpu_max = a->cpu_max >= 0;
    o->cpu_max = a->cpu_max;
    o->has_mem = a->mem_weight > 0;
    o->mem_avg = o->has_mem ? a->mem_wsum / a->mem_weight : 0;
    o->mem_p95 = br_quantile_exact(a->mem_v, a->n_mem, 0.95);
    o->has_mem_max = a->mem_max >= 0;
    o->mem_max = a->mem_max;
    o->has_rx = a->n_rx > 0;
    o->rx_p95 = br_quantile_exact(a->rx_v, a->n_rx, 0.95);
    o->has_tx = a->n_tx > 0;
    o->tx_p95 = br_quantile_exact(a->tx_v, a->n_tx, 0.95);
    memcpy(o->sums, a->sums, sizeof(o->sums));
    memcpy(o->have, a->have, sizeof(o->have));
    o->idle_windows = a->idle_windows;
    o->duration = a->duration;
    o->idle_checked = a->idle_checked;
    o->cpu_hist = a->cpu_h.count > 0;
    o->mem_hist = a->mem_h.count > 0;
    br_hist_encode(&a->cpu_h, o->cpu_blob);
    br_hist_encode(&a->mem_h, o->mem_blob);
}

static void bind_opt(sqlite3_stmt *stmt, int idx, double v, bool have)
{
    if (have)
        sqlite3_bind_double(stmt, idx, v);
    else
        sqlite3_bind_null(stmt, idx);
}

static int rollup_write(CmDb *db, const RollupRow *o, const char *day, const char *at,
                        CmError *err)
{
    sqlite3_stmt *stmt =
        cm_db_stmt(db,
                   "INSERT OR REPLACE INTO rollups(instance_id, day, windows, readings,"
                   " expected, coverage, vcpus, memory_mib, cpu_avg, cpu_p95, cpu_max,"
                   " cpu_util_hist, mem_avg, mem_p95, mem_max, mem_util_hist, disk_rd_bytes,"
                   " disk_wr_bytes, disk_rd_reqs, disk_wr_reqs, net_rx_bytes, net_tx_bytes,"
                   " net_rx_pkts, net_tx_pkts, net_rx_bps_p95, net_tx_bps_p95, computed_at,"
                   " idle_windows, idle_checked_windows, duration)"
                   " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                   err);
    if (!stmt)
        return -EIO;
    CM_DB_BIND(stmt, o->instance_id, day, o->windows, o->readings, o->expected, o->coverage);
    if (o->vcpus)
        sqlite3_bind_int64(stmt, 7, o->vcpus);
    if (o->memory_mib)
        sqlite3_bind_int64(stmt, 8, o->memory_mib);
    bind_opt(stmt, 9, o->cpu_avg, o->has_cpu);
    bind_opt(stmt, 10, o->cpu_p95, o->cpu_p95 >= 0);
    bind_opt(stmt, 11, o->cpu_max, o->has_cpu_max);
    if (o->cpu_hist)
        sqlite3_bind_blob(stmt, 12, o->cpu_blob, sizeof(o->cpu_blob), SQLITE_TRANSIENT);
    bind_opt(stmt, 13, o->mem_avg, o->has_mem);
    bind_opt(stmt, 14, o->mem_p95, o->mem_p95 >= 0);
    bind_opt(stmt, 15, o->mem_max, o->has_mem_max);
    if (o->mem_hist)
        sqlite3_bind_blob(stmt, 16, o->mem_blob, sizeof(o->mem_blob), SQLITE_TRANSIENT);
    for (int k = 0; k < 8; k++)
        if (o->have[k])
            sqlite3_bind_int64(stmt, 17 + k, o->sums[k]);
    bind_opt(stmt, 25, o->rx_p95, o->has_rx);
    bind_opt(stmt, 26, o->tx_p95, o->has_tx);
    sqlite3_bind_text(stmt, 27, at, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(stmt, 28, o->idle_windows);
    sqlite3_bind_int64(stmt, 29, o->idle_checked);
    sqlite3_bind_int64(stmt, 30, o->duration);
    return cm_db_step_done(db, stmt, err);
}

static int rows_push(RollupRow **rows, size_t *n, size_t *cap, Acc *a)
{
    if (*n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 256;
        RollupRow *nr = realloc(*rows, ncap * sizeof(*nr));
        if (!nr)
            return -ENOMEM;
        *rows = nr;
        *cap = ncap;
    }
    acc_finish(a, &(*rows)[(*n)++]);
    return 0;
}

int br_metering_rollup_day(BrDaemon *d, int64_t day_start, CmError *err)
{
    _cleanup_(br_policies_unrefp) BrPolicies *p = br_daemon_policies(d);
    _cleanup_(cm_stmt_finalizep) sqlite3_stmt *sel = NULL;
    _cleanup_free_ RollupRow *rows = NULL;
    size_t n_rows = 0, cap_rows = 0;
    char day[16], at[CM_TIME_ISO_LEN + 1];
    Acc a = {0};
    CmDb *db;
    int r;
    time_t t;
    struct tm tm;

    day_start -= day_start % 86400;
    t = (time_t)day_start;
    gmtime_r(&t, &tm);
    strftime(day, sizeof(day), "%Y-%m-%d", &tm);
    cm_time_iso(cm_now_ms(), at);

    /* Read the day in one snapshot without the write lock; then write it in one short one. */
    db = br_store_db(d->store, err);
    if (!db)
        return -EIO;
    r = cm_db_begin_read(db, err);
    if (r < 0)
        return r;
    if (sqlite3_prepare_v2(cm_db_handle(db),
                           /* Instance by instance along the samples' primary key (a range
                            * each): no sort, no lookup per row. A window's memory is what
                            * the instance was allocated when it came (ingest keeps a balloon
                            * that never deflates to it), not what it has now: a day rolled up
                            * again after a resize keeps its windows' sizes. */
                           "SELECT s.instance_id, s.duration, s.readings, s.expected, s.vcpus,"
                           " coalesce(s.memory_mib, nullif(i.memory_mib, 0)),"
                           " s.cpu_avg, s.cpu_max, s.mem_avg, s.mem_max, s.disk_rd_bytes,"
                           " s.disk_wr_bytes, s.disk_rd_reqs, s.disk_wr_reqs, s.net_rx_bytes,"
                           " s.net_tx_bytes, s.net_rx_pkts, s.net_tx_pkts"
                           " FROM instances i CROSS JOIN samples s ON s.instance_id = i.id"
                           " AND s.start >= ?1 AND s.start < ?2 ORDER BY i.id, s.start",
                           -1, &sel, NULL) != SQLITE_OK) {
        cm_db_rollback(db);
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "cannot read samples");
    }
    sqlite3_bind_int64(sel, 1, day_start);
    sqlite3_bind_int64(sel, 2, day_start + 86400);
    acc_reset(&a, 0);
    while (r >= 0 && sqlite3_step(sel) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(sel, 0);
        if (id != a.instance_id) {
            if (a.instance_id && rows_push(&rows, &n_rows, &cap_rows, &a) < 0)
                r = -ENOMEM;
            acc_reset(&a, id);
        }
        if (a.windows == (int64_t)a.cap && acc_grow(&a) < 0)
            r = -ENOMEM;
        if (r < 0)
            break;
        int64_t duration = sqlite3_column_int64(sel, 1), readings = sqlite3_column_int64(sel, 2);
        a.duration = duration;
        a.windows++;
        a.readings += readings;
        a.expected_readings += sqlite3_column_int64(sel, 3);
        if (sqlite3_column_type(sel, 4) != SQLITE_NULL && sqlite3_column_int64(sel, 4) > a.vcpus)
            a.vcpus = sqlite3_column_int64(sel, 4);
        if (sqlite3_column_type(sel, 5) != SQLITE_NULL &&
            sqlite3_column_int64(sel, 5) > a.memory_mib)
            a.memory_mib = sqlite3_column_int64(sel, 5);
        if (sqlite3_column_type(sel, 6) != SQLITE_NULL) {
            double v = sqlite3_column_double(sel, 6);
            a.cpu_wsum += v * (double)readings;
            a.cpu_weight += (double)readings;
            a.cpu_v[a.n_cpu++] = v;
        }
        if (sqlite3_column_type(sel, 7) != SQLITE_NULL &&
            sqlite3_column_double(sel, 7) > a.cpu_max)
            a.cpu_max = sqlite3_column_double(sel, 7);
        if (sqlite3_column_type(sel, 8) != SQLITE_NULL) {
            double v = sqlite3_column_double(sel, 8);
            a.mem_wsum += v * (double)readings;
            a.mem_weight += (double)readings;
            a.mem_v[a.n_mem++] = v;
        }
        if (sqlite3_column_type(sel, 9) != SQLITE_NULL &&
            sqlite3_column_double(sel, 9) > a.mem_max)
            a.mem_max = sqlite3_column_double(sel, 9);
        for (int k = 0; k < 8; k++) {
            if (sqlite3_column_type(sel, 10 + k) == SQLITE_NULL)
                continue;
            int64_t v = sqlite3_column_int64(sel, 10 + k);
            if (__builtin_add_overflow(a.sums[k], v, &a.sums[k]))
                a.sums[k] = INT64_MAX; /* counters are never negative */
            a.have[k] = true;
        }
        if (sqlite3_column_type(sel, 14) != SQLITE_NULL && duration > 0)
            a.rx_v[a.n_rx++] = (double)sqlite3_column_int64(sel, 14) / (double)duration;
        if (sqlite3_column_type(sel, 15) != SQLITE_NULL && duration > 0)
            a.tx_v[a.n_tx++] = (double)sqlite3_column_int64(sel, 15) / (double)duration;
        /* The idle rule needs CPU and network together in each window, which no daily
         * marginal keeps: count the windows under the thresholds now. */
        if (sqlite3_column_type(sel, 6) != SQLITE_NULL && duration > 0) {
            bool rx_low = sqlite3_column_type(sel, 14) == SQLITE_NULL ||
                          (double)sqlite3_column_int64(sel, 14) / (double)duration <
                              p->assessment.idle_net_in_bps;
            bool tx_low = sqlite3_column_type(sel, 15) == SQLITE_NULL ||
                          (double)sqlite3_column_int64(sel, 15) / (double)duration <
                              p->assessment.idle_net_out_bps;
            a.idle_checked++;
            if (sqlite3_column_double(sel, 6) < p->assessment.idle_cpu_cores && rx_low && tx_low)
                a.idle_windows++;
        }
    }
    if (r >= 0 && a.instance_id && rows_push(&rows, &n_rows, &cap_rows, &a) < 0)
        r = -ENOMEM;
    free(a.cpu_v);
    free(a.mem_v);
    free(a.rx_v);
    free(a.tx_v);
    sqlite3_finalize(TAKE_PTR(sel));
    cm_db_rollback(db);
    if (r < 0)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");

    r = br_store_write_begin(d->store, &db, err);
    if (r < 0)
        return r;
    for (size_t i = 0; r >= 0 && i < n_rows; i++)
        r = rollup_write(db, &rows[i], day, at, err);
    if (r < 0) {
        br_store_write_abort(d->store, db);
        return r;
    }
    r = br_store_write_commit(d->store, db, err);
    if (r < 0)
        return r;
    cm_log_info("rolled up %zu instance(s) for %s", n_rows, day);
    return (int)n_rows;
}

int br_metering_rollup_if_stale(BrDaemon *d, int64_t day_start, CmError *err)
{
    char day[16];
    CmDb *db = br_store_db(d->store, err);
    sqlite3_stmt *st;
    int64_t samples = 0, rolled = 0;
    time_t t;
    struct tm tm;
    int r;

    if (!db)
        return -EIO;
    day_start -= day_start % 86400;
    t = (time_t)day_start;
    gmtime_r(&t, &tm);
    strftime(day, sizeof(day), "%Y-%m-%d", &tm);
    st = cm_db_stmt(db,
                    "SELECT (SELECT count(*) FROM samples WHERE start >= ?1 AND start < ?2),"
                    " (SELECT coalesce(sum(windows), 0) FROM rollups WHERE day = ?3)",
                    err);
    if (!st)
        return -EIO;
    CM_DB_BIND(st, day_start, day_start + 86400, day);
    r = cm_db_step_row(db, st, err);
    if (r > 0) {
        samples = sqlite3_column_int64(st, 0);
        rolled = sqlite3_column_int64(st, 1);
    }
    sqlite3_reset(st);
    if (r < 0)
        return r;
    if (samples == rolled)
        return 0;
    r = br_metering_rollup_day(d, day_start, err);
    return r < 0 ? r : 1;
}

int64_t br_metering_retention(BrDaemon *d, CmError *err)
{
    _cleanup_(br_policies_unrefp) BrPolicies *p = br_daemon_policies(d);
    int64_t cutoff = cm_now_ms() / 1000 - p->metering.sample_retention_days * 86400, total = 0;
    static const char *const sql[] = {
        "DELETE FROM samples WHERE (instance_id, start) IN (SELECT instance_id, start"
        " FROM samples WHERE start < ? LIMIT 20000)",
        "DELETE FROM unowned_samples WHERE (host_id, uuid, start) IN (SELECT host_id, uuid,"
        " start FROM unowned_samples WHERE start < ? LIMIT 20000)",
        "DELETE FROM host_samples WHERE (host_id, start) IN (SELECT host_id, start"
        " FROM host_samples WHERE start < ? LIMIT 20000)",
    };
    /* In slices, so that the write lock is never held long. */
    for (size_t i = 0; i < ELEMENTSOF(sql); i++) {
        for (;;) {
            CmDb *db;
            int changes;
            int r = br_store_write_begin(d->store, &db, err);
            if (r < 0)
                return r;
            sqlite3_stmt *stmt = cm_db_stmt(db, sql[i], err);
            r = stmt ? 0 : -EIO;
            if (r >= 0) {
                CM_DB_BIND(stmt, cutoff);
                r = cm_db_step_done(db, stmt, err);
            }
            changes = sqlite3_changes(cm_db_handle(db));
            if (r < 0) {
                br_store_write_abort(d->store, db);
                return r;
            }
            r = br_store_write_commit(d->store, db, err);
            if (r < 0)
                return r;
            total += changes;
            if (changes < 20000)
                break;
        }
    }
    if (total)
        cm_log_info("sample retention: removed %lld rows", (long long)total);
    return total;
}

/* ---- the periodic thread ---- */

struct BrMetering {
    BrDaemon *d;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stopping;
};

static void *metering_thread(void *arg)
{
    BrMetering *m = arg;
    pthread_mutex_lock(&m->lock);
    while (!m->stopping) {
        BrPolicies *p = br_daemon_policies(m->d);
        int64_t interval = p->metering.rollup_interval_seconds;
        br_policies_unref(p);
        pthread_mutex_unlock(&m->lock);

        /* Yesterday (late windows arrive after midnight) and today so far. */
        CmError err = {0};
        int64_t now = cm_now_ms() / 1000;
        if (br_metering_rollup_day(m->d, now - 86400, &err) < 0 ||
            br_metering_rollup_day(m->d, now, &err) < 0)
            cm_log_error("rollup: %s", err.message);
        if (br_metering_retention(m->d, &err) < 0)
            cm_log_error("sample retention: %s", err.message);

        pthread_mutex_lock(&m->lock);
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += interval;
        while (!m->stopping && pthread_cond_timedwait(&m->wake, &m->lock, &ts) == 0)
            ;
    }
    pthread_mutex_unlock(&m->lock);
    return NULL;
}

int br_metering_start(BrDaemon *d, BrMetering **ret, CmError *err)
{
    BrMetering *m = calloc(1, sizeof(*m));
    pthread_condattr_t attr;
    if (!m)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    m->d = d;
    pthread_mutex_init(&m->lock, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&m->wake, &attr);
    pthread_condattr_destroy(&attr);
    if (pthread_create(&m->thread, NULL, metering_thread, m) != 0) {
        free(m);
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "cannot start the rollup thread");
    }
    *ret = m;
    return 0;
}

BrMetering *br_metering_stop(BrMetering *m)
{
    if (!m)
        return NULL;
    pthread_mutex_lock(&m->lock);
    m->stopping = true;
    pthread_cond_broadcast(&m->wake);
    pthread_mutex_unlock(&m->lock);
    pthread_join(m->thread, NULL);
    pthread_mutex_destroy(&m->lock);
    pthread_cond_destroy(&m->wake);
    free(m);
    return NULL;
}
