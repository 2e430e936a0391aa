/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The broker's side of metering: sample ingest, daily rollups, retention. The only file with
 * SQL on samples, unowned_samples, host_samples and rollups (the arithmetic of a rollup is
 * br-rollup.c's; the usage answers read them in br-usage.c).
 */
#include <errno.h>
#include <stdarg.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "br-daemon.h"
#include "br-instance.h"
#include "br-metering.h"
#include "br-rollup.h"
#include "cm-log.h"
#include "cm-time.h"
#include "cm-util.h"
#include "cm-worker.h"

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
static void bind_cols(CmStmt *st, int first, const BrSample *rec, const uint8_t *cols, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        BrSampleField f = (BrSampleField)cols[i];
        int idx = first + (int)i;
        if (!br_sample_has(rec, f))
            cm_stmt_bind_null(st, idx);
        else if (br_sample_field_kind(f) == BR_SAMPLE_VALUE_INT)
            cm_stmt_bind_i64(st, idx, rec->v[f].i);
        else if (br_sample_field_kind(f) == BR_SAMPLE_VALUE_NUMBER)
            cm_stmt_bind_double(st, idx, rec->v[f].d);
        else /* the one text metric: "balloon" or "rss" */
            cm_stmt_bind_text(st, idx, rec->memory_source);
    }
}

static int64_t sat_add(int64_t a, int64_t b)
{
    int64_t r;
    return __builtin_add_overflow(a, b, &r) ? (b > 0 ? INT64_MAX : INT64_MIN) : r;
}

/* ---- ingest ---- */

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

/* The cache's entry for instance @id, added (not looked up yet) when it is new. */
static int owner_get(OwnerCache *oc, int64_t id, Owner **ret, CmError *err)
{
    size_t mask = oc->n_slots - 1, i = ((uint64_t)id * 0x9E3779B97F4A7C15ULL >> 32) & mask;

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
    oc->owners[oc->n] = (Owner){.id = id};
    oc->slots[i] = (uint32_t)++oc->n;
    *ret = &oc->owners[oc->n - 1];
    return 0;
}

/* Every instance of the batch looked up at once (br_instance_hosts()): one statement on
 * PostgreSQL instead of a round trip per instance. */
static int owners_load(CmDb *db, int64_t host_id, OwnerCache *oc, const BrSample *inst, size_t n,
                       CmError *err)
{
    _cleanup_free_ int64_t *ids = NULL;
    _cleanup_free_ BrInstanceHost *hosts = NULL;
    Owner *o;
    int r;

    for (size_t i = 0; i < n; i++) {
        r = owner_get(oc, inst[i].v[BR_SF_INSTANCE].i, &o, err);
        if (r < 0)
            return r;
    }
    ids = malloc((oc->n + 1) * sizeof(*ids));
    hosts = malloc((oc->n + 1) * sizeof(*hosts));
    if (!ids || !hosts)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    for (size_t k = 0; k < oc->n; k++)
        ids[k] = oc->owners[k].id;
    r = br_instance_hosts(db, ids, oc->n, hosts, err);
    if (r < 0)
        return r;
    for (size_t k = 0; k < oc->n; k++) {
        o = &oc->owners[k];
        if (hosts[k].host_id != host_id)
            continue;
        o->mine = true;
        cm_strscpy(o->uuid, sizeof(o->uuid), hosts[k].uuid);
        o->memory_mib = hosts[k].memory_mib;
        o->max_vcpus = hosts[k].max_vcpus;
    }
    return 0;
}

/* The unowned windows a host has in each 5-minute slot: read once per slot and batch. */
typedef struct {
    int64_t slot; /* -1: free */
    int64_t count;
} SlotCount;

static int slot_count(CmDb *db, int64_t host_id, SlotCount *slots, size_t n_slots, int64_t slot,
                      SlotCount **ret, CmError *err)
{
    size_t mask = n_slots - 1, i = ((uint64_t)slot * 0x9E3779B97F4A7C15ULL >> 32) & mask;
    _cleanup_stmt_ CmStmt *st = NULL;
    int r;

    for (; slots[i].slot >= 0; i = (i + 1) & mask) {
        if (slots[i].slot == slot) {
            *ret = &slots[i];
            return 0;
        }
    }
    st = cm_db_prepare(db,
                       "SELECT count(*) FROM unowned_samples"
                       " WHERE host_id = ?1 AND start >= ?2 AND start < ?3",
                       err);
    if (!st)
        return -EIO;
    CM_DB_BIND(st, host_id, slot, slot + UNOWNED_SLOT_SECONDS);
    r = cm_stmt_step(st, err);
    if (r < 0)
        return r;
    slots[i] = (SlotCount){slot, cm_stmt_int(st, 0)};
    *ret = &slots[i];
    return 0;
}

/* A window of @host_id's unowned domain @uuid stored already: a repeat, not dropped. */
static int unowned_known(CmDb *db, int64_t host_id, const char *uuid, int64_t start, CmError *err)
{
    _cleanup_stmt_ CmStmt *st = cm_db_prepare(
        db, "SELECT 1 FROM unowned_samples WHERE host_id = ?1 AND uuid = ?2 AND start = ?3", err);

    if (!st)
        return -EIO;
    CM_DB_BIND(st, host_id, uuid, start);
    return cm_stmt_step(st, err);
}

/* The unowned windows: stored up to the policy's cap per host and slot, the rest counted. */
static int ingest_unowned(CmDb *db, int64_t host_id, int64_t cap, const BrSamplesBatch *batch,
                          BrIngestResult *res, CmError *err)
{
    const BrSample *unowned = batch->items[BR_SAMPLES_UNOWNED];
    size_t n = batch->n[BR_SAMPLES_UNOWNED], n_slots = 64;
    _cleanup_free_ SlotCount *slots = NULL;
    int r;

    if (!n)
        return 0;
    while (n_slots < 2 * n)
        n_slots *= 2;
    slots = malloc(n_slots * sizeof(*slots));
    if (!slots)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    for (size_t i = 0; i < n_slots; i++)
        slots[i].slot = -1;
    for (size_t i = 0; i < n; i++) {
        const BrSample *rec = &unowned[i];
        int64_t start = rec->v[BR_SF_START].i;
        _cleanup_stmt_ CmStmt *st = NULL;
        SlotCount *sl;

        r = slot_count(db, host_id, slots, n_slots, start - start % UNOWNED_SLOT_SECONDS, &sl, err);
        if (r >= 0 && sl->count >= cap) {
            r = unowned_known(db, host_id, rec->uuid, start, err);
            if (r == 0)
                res->unowned_dropped++;
            if (r < 0)
                return r;
            continue;
        }
        if (r < 0)
            return r;
        st = cm_db_prepare(db,
                           "INSERT INTO unowned_samples(host_id, uuid, start, name, duration,"
                           " readings, expected, vcpus, memory_mib, cpu_avg, cpu_max, mem_avg,"
                           " mem_max, net_rx_bytes, net_tx_bytes)"
                           " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING",
                           err);
        if (!st)
            return -EIO;
        CM_DB_BIND(st, host_id, (const char *)rec->uuid, start, br_sample_name(batch, rec),
                   rec->v[BR_SF_DURATION].i, rec->v[BR_SF_READINGS].i, rec->v[BR_SF_EXPECTED].i);
        bind_cols(st, 8, rec, unowned_cols, ELEMENTSOF(unowned_cols));
        r = cm_stmt_exec(st, err);
        if (r < 0)
            return r;
        if (cm_stmt_changes(st)) {
            res->unowned++;
            sl->count++;
        }
    }
    return 0;
}

/* The instance windows, each checked against its instance (looked up once per batch). */
static int check_instances(CmDb *db, const BrMeteringPolicy *p, int64_t host_id,
                           const BrSamplesBatch *batch, int64_t now, int64_t *alloc_mem,
                           CmError *err)
{
    const BrSample *inst = batch->items[BR_SAMPLES_INSTANCES];
    size_t n = batch->n[BR_SAMPLES_INSTANCES];
    int64_t oldest = now - p->sample_retention_days * 86400;
    _cleanup_(owner_cache_free) OwnerCache oc = {.n_slots = 64};
    int r;

    while (oc.n_slots < 2 * n)
        oc.n_slots *= 2;
    oc.slots = calloc(oc.n_slots, sizeof(*oc.slots));
    if (!oc.slots)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    /* one lookup per instance and batch, the UUID checked on every record */
    r = owners_load(db, host_id, &oc, inst, n, err);
    if (r < 0)
        return r;
    for (size_t i = 0; i < n; i++) {
        const BrSample *rec = &inst[i];
        int64_t id = rec->v[BR_SF_INSTANCE].i;
        Owner *o = NULL;
        char field[64];

        r = check_window(rec, BR_SAMPLES_INSTANCES, i, now, oldest, p->max_clock_skew_seconds, err);
        if (r < 0)
            return r;
        r = owner_get(&oc, id, &o, err);
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
    return 0;
}

/* The statement of the host windows, prepared once and reused record by record. */
typedef struct {
    CmStmt *host;
} IngestStmts;

static void ingest_stmts_done(IngestStmts *x)
{
    cm_stmt_reset(x->host);
}

static int ingest_stmts(CmDb *db, IngestStmts *x, CmError *err)
{
    x->host = cm_db_prepare(db,
                            "INSERT INTO host_samples(host_id, start, duration, readings, expected,"
                            " cpus, memory_mib, cpu_avg, cpu_max, mem_avg, domains_max, cycle_avg,"
                            " cycle_max) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING",
                            err);
    return x->host ? 0 : -EIO;
}

/* ---- the instance windows: the stored windows they overlap read per batch, the batch's own
 * overlaps worked out here (window_fates()), then the windows to store written ---- */

/* A PostgreSQL array literal of one column of the batch, built as text and bound as one
 * parameter ('{1,2,NULL}', cast in the statement). */
typedef struct {
    char *s;
    size_t n, cap;
} ArrayText;

static void array_text_free(ArrayText *a)
{
    free(a->s);
}

static int array_text_room(ArrayText *a, size_t more)
{
    size_t ncap;
    char *ns;

    if (a->n + more < a->cap)
        return 0;
    ncap = a->cap ? a->cap : 4096;
    while (ncap <= a->n + more)
        ncap *= 2;
    ns = realloc(a->s, ncap);
    if (!ns)
        return -ENOMEM;
    a->s = ns;
    a->cap = ncap;
    return 0;
}

/* Appends one element: @v's field @f (NULL when absent), or @i when @f is BR_SF_MAX. */
static int array_text_put(ArrayText *a, const BrSample *v, BrSampleField f, int64_t i)
{
    const char *sep = a->n ? "," : "{";
    int len;

    if (array_text_room(a, 48) < 0)
        return -ENOMEM;
    if (f == BR_SF_MAX)
        len = snprintf(a->s + a->n, a->cap - a->n, "%s%lld", sep, (long long)i);
    else if (!br_sample_has(v, f))
        len = snprintf(a->s + a->n, a->cap - a->n, "%sNULL", sep);
    else if (br_sample_field_kind(f) == BR_SAMPLE_VALUE_INT)
        len = snprintf(a->s + a->n, a->cap - a->n, "%s%lld", sep, (long long)v->v[f].i);
    else if (br_sample_field_kind(f) == BR_SAMPLE_VALUE_NUMBER)
        /* 17 significant digits: the server reads back the very double SQLite would store */
        len = snprintf(a->s + a->n, a->cap - a->n, "%s%.17g", sep, v->v[f].d);
    else /* memory_source: "balloon" or "rss", the schema's enum; nothing to escape */
        len = snprintf(a->s + a->n, a->cap - a->n, "%s\"%s\"", sep, v->memory_source);
    if (len < 0 || (size_t)len >= a->cap - a->n)
        return -ENOMEM;
    a->n += (size_t)len;
    return 0;
}

static const char *array_text_end(ArrayText *a)
{
    if (array_text_room(a, 3) < 0)
        return NULL;
    memcpy(a->s + a->n, a->n ? "}" : "{}", a->n ? 2 : 3);
    return a->s;
}

/* What becomes of an instance window of the batch. */
typedef enum {
    WINDOW_STORE,
    WINDOW_DUPLICATE,
    WINDOW_OVERLAPS,
} WindowFate;

typedef struct {
    int64_t id;
    size_t i;
} WindowRef;

static int window_ref_cmp(const void *a, const void *b)
{
    const WindowRef *x = a, *y = b;
    if (x->id != y->id)
        return x->id < y->id ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

/* Whether the window [@start, @start + @duration) and the window [@os, @os + @od) of the same
 * instance share a second; @os within WINDOW_MAX_SECONDS before @start at most, so a range of
 * the primary key finds every such window. */
static bool windows_meet(int64_t start, int64_t duration, int64_t os, int64_t od)
{
    return os > start - WINDOW_MAX_SECONDS && os < start + duration && os + od > start;
}

/* PostgreSQL: the stored window of each batch window's instance that it overlaps, the one
 * that starts first, for all windows in one statement: hit[i] set and other[i] its start and
 * duration. */
static int stored_overlaps(CmDb *db, const BrSample *inst, size_t n, bool *hit, int64_t (*other)[2],
                           CmError *err)
{
    _cleanup_(array_text_free) ArrayText ids = {0}, starts = {0}, durations = {0};
    _cleanup_stmt_ CmStmt *st = NULL;
    const char *a, *b, *c;
    int r;

    for (size_t i = 0; i < n; i++)
        if (array_text_put(&ids, &inst[i], BR_SF_INSTANCE, 0) < 0 ||
            array_text_put(&starts, &inst[i], BR_SF_START, 0) < 0 ||
            array_text_put(&durations, &inst[i], BR_SF_DURATION, 0) < 0)
            return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    a = array_text_end(&ids);
    b = array_text_end(&starts);
    c = array_text_end(&durations);
    if (!a || !b || !c)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    st = cm_db_prepare(db,
                       "SELECT x.k, s.start, s.duration"
                       " FROM unnest(?1::bigint[], ?2::bigint[], ?3::bigint[])"
                       " WITH ORDINALITY AS x(id, st, du, k)"
                       " CROSS JOIN LATERAL (SELECT start, duration FROM samples"
                       "  WHERE instance_id = x.id AND start > x.st - ?4 AND start < x.st + x.du"
                       "  AND start + duration > x.st ORDER BY start LIMIT 1) AS s",
                       err);
    if (!st)
        return -EIO;
    CM_DB_BIND(st, a, b, c, (int64_t)WINDOW_MAX_SECONDS);
    while ((r = cm_stmt_step(st, err)) > 0) {
        int64_t k = cm_stmt_int(st, 0) - 1;
        if (k < 0 || (size_t)k >= n)
            return cm_error_set(err, CM_ERROR_INTERNAL, "", "overlap query: bad index");
        hit[k] = true;
        other[k][0] = cm_stmt_int(st, 1);
        other[k][1] = cm_stmt_int(st, 2);
    }
    return r;
}

/* A window of the batch in the order of its instance and start (stored_overlaps_ranges()). */
typedef struct {
    int64_t id, start;
    size_t i;
} WindowKey;

static int window_key_cmp(const void *a, const void *b)
{
    const WindowKey *x = a, *y = b;
    if (x->id != y->id)
        return x->id < y->id ? -1 : 1;
    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

/* SQLite: what stored_overlaps() answers, read in one range of the primary key per instance
 * and run of its windows in the batch (sorted by start; a new run where the next window's
 * range could not meet the run's), matched here. A statement per window costs more than the
 * rows it reads (tests/bench/README.md, issue 10). */
static int stored_overlaps_ranges(CmDb *db, const BrSample *inst, size_t n, bool *hit,
                                  int64_t (*other)[2], CmError *err)
{
    _cleanup_free_ WindowKey *keys = malloc((n + 1) * sizeof(*keys));
    _cleanup_free_ int64_t(*rows)[2] = NULL;
    size_t cap = 0;

    if (!keys)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    for (size_t i = 0; i < n; i++)
        keys[i] = (WindowKey){inst[i].v[BR_SF_INSTANCE].i, inst[i].v[BR_SF_START].i, i};
    qsort(keys, n, sizeof(*keys), window_key_cmp);
    for (size_t g = 0, end; g < n; g = end) {
        int64_t lo = keys[g].start, hi = lo + inst[keys[g].i].v[BR_SF_DURATION].i;
        _cleanup_stmt_ CmStmt *st = NULL;
        size_t n_rows = 0, p = 0;
        int r;

        for (end = g + 1;
             end < n && keys[end].id == keys[g].id && keys[end].start - WINDOW_MAX_SECONDS < hi;
             end++)
            if (keys[end].start + inst[keys[end].i].v[BR_SF_DURATION].i > hi)
                hi = keys[end].start + inst[keys[end].i].v[BR_SF_DURATION].i;
        st = cm_db_prepare(db,
                           "SELECT start, duration FROM samples WHERE instance_id = ?1"
                           " AND start > ?2 - ?4 AND start < ?3 AND start + duration > ?2"
                           " ORDER BY start",
                           err);
        if (!st)
            return -EIO;
        CM_DB_BIND(st, keys[g].id, lo, hi, (int64_t)WINDOW_MAX_SECONDS);
        while ((r = cm_stmt_step(st, err)) > 0) {
            if (n_rows == cap) {
                size_t ncap = cap ? cap * 2 : 256;
                int64_t(*nr)[2] = realloc(rows, ncap * sizeof(*nr));
                if (!nr)
                    return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
                rows = nr;
                cap = ncap;
            }
            rows[n_rows][0] = cm_stmt_int(st, 0);
            rows[n_rows][1] = cm_stmt_int(st, 1);
            n_rows++;
        }
        if (r < 0)
            return r;
        /* the run's windows and the rows both by start: a row too early for one window is
         * too early for the next */
        for (size_t k = g; k < end; k++) {
            size_t i = keys[k].i;
            int64_t start = keys[k].start, duration = inst[i].v[BR_SF_DURATION].i;

            while (p < n_rows && rows[p][0] <= start - WINDOW_MAX_SECONDS)
                p++;
            for (size_t q = p; q < n_rows && rows[q][0] < start + duration; q++) {
                if (windows_meet(start, duration, rows[q][0], rows[q][1])) {
                    hit[i] = true;
                    other[i][0] = rows[q][0];
                    other[i][1] = rows[q][1];
                    break;
                }
            }
        }
    }
    return 0;
}

/* The first set bit of @bits in [@from, @hi), or @hi. */
static size_t bit_next(const uint64_t *bits, size_t from, size_t hi)
{
    while (from < hi) {
        uint64_t w = bits[from / 64] >> (from % 64);
        if (w) {
            from += (size_t)__builtin_ctzll(w);
            return from < hi ? from : hi;
        }
        from = (from / 64 + 1) * 64;
    }
    return hi;
}

/* The last set bit of @bits in [@lo, @to), or SIZE_MAX. */
static size_t bit_prev(const uint64_t *bits, size_t lo, size_t to)
{
    while (to > lo) {
        size_t k = to - 1;
        uint64_t w = bits[k / 64] & (~UINT64_C(0) >> (63 - k % 64));
        if (w) {
            k = k / 64 * 64 + 63 - (size_t)__builtin_clzll(w);
            return k >= lo ? k : SIZE_MAX;
        }
        to = k / 64 * 64;
    }
    return SIZE_MAX;
}

/* Each window's fate, as the rule of br_metering_ingest() decides it window by window in batch
 * order: the first-starting window it overlaps, stored or stored earlier in this batch (the
 * windows of one instance in batch order; different instances never interact).
 * The windows kept so far never overlap each other, so of those a window meets, the first is
 * the last kept one that starts at or before it, or else the first kept one after: a bit per
 * window in start order finds both, and a batch of one instance's 20,000 windows costs
 * n log n, not n². */
static int window_fates(const BrSample *inst, size_t n, const bool *hit, int64_t (*other)[2],
                        WindowFate *fate, CmError *err)
{
    _cleanup_free_ WindowRef *refs = malloc((n + 1) * sizeof(*refs));
    _cleanup_free_ WindowKey *keys = malloc((n + 1) * sizeof(*keys));
    _cleanup_free_ size_t *place = malloc((n + 1) * sizeof(*place));
    _cleanup_free_ uint64_t *kept = calloc(n / 64 + 1, sizeof(*kept));

    if (!refs || !keys || !place || !kept)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    for (size_t i = 0; i < n; i++) {
        refs[i] = (WindowRef){inst[i].v[BR_SF_INSTANCE].i, i};
        keys[i] = (WindowKey){inst[i].v[BR_SF_INSTANCE].i, inst[i].v[BR_SF_START].i, i};
    }
    qsort(refs, n, sizeof(*refs), window_ref_cmp);
    qsort(keys, n, sizeof(*keys), window_key_cmp);
    for (size_t p = 0; p < n; p++)
        place[keys[p].i] = p;
    /* refs (batch order) and keys (start order) hold each instance's windows at the same places
     * [g0, g1): both are sorted by instance first. */
    for (size_t g = 0, g0 = 0, g1 = 0; g < n; g++) {
        size_t i = refs[g].i, lo, hi, q;
        int64_t start = inst[i].v[BR_SF_START].i, duration = inst[i].v[BR_SF_DURATION].i;
        bool found = hit[i];
        int64_t os = other[i][0], od = other[i][1];

        if (g == g1) {
            g0 = g;
            for (g1 = g + 1; g1 < n && refs[g1].id == refs[g].id; g1++)
                ;
        }
        /* the first place in start order after every window that starts at or before it */
        for (lo = place[i], hi = g1; lo < hi;) {
            size_t mid = lo + (hi - lo) / 2;
            if (keys[mid].start <= start)
                lo = mid + 1;
            else
                hi = mid;
        }
        q = bit_prev(kept, g0, lo);
        if (q == SIZE_MAX ||
            !windows_meet(start, duration, keys[q].start, inst[keys[q].i].v[BR_SF_DURATION].i))
            q = bit_next(kept, lo, g1);
        if (q < g1) {
            int64_t ks = keys[q].start, kd = inst[keys[q].i].v[BR_SF_DURATION].i;
            if (windows_meet(start, duration, ks, kd) && (!found || ks < os)) {
                found = true;
                os = ks;
                od = kd;
            }
        }
        if (!found) {
            fate[i] = WINDOW_STORE;
            kept[place[i] / 64] |= UINT64_C(1) << (place[i] % 64);
        } else {
            fate[i] = os == start && od == duration ? WINDOW_DUPLICATE : WINDOW_OVERLAPS;
            other[i][0] = os;
            other[i][1] = od;
        }
    }
    return 0;
}

/* Appends one column of a COPY row in text format: @v's field @f (\N when absent), or @i when
 * @f is BR_SF_MAX; a tab after it, or the row's newline when @last. */
static int copy_put(ArrayText *a, const BrSample *v, BrSampleField f, int64_t i, bool last)
{
    char end = last ? '\n' : '\t';
    int len;

    if (array_text_room(a, 48) < 0)
        return -ENOMEM;
    if (f == BR_SF_MAX)
        len = snprintf(a->s + a->n, a->cap - a->n, "%lld%c", (long long)i, end);
    else if (!br_sample_has(v, f))
        len = snprintf(a->s + a->n, a->cap - a->n, "\\N%c", end);
    else if (br_sample_field_kind(f) == BR_SAMPLE_VALUE_INT)
        len = snprintf(a->s + a->n, a->cap - a->n, "%lld%c", (long long)v->v[f].i, end);
    else if (br_sample_field_kind(f) == BR_SAMPLE_VALUE_NUMBER)
        /* 17 significant digits: the server reads back the very double SQLite would store */
        len = snprintf(a->s + a->n, a->cap - a->n, "%.17g%c", v->v[f].d, end);
    else /* memory_source: "balloon" or "rss", the schema's enum; nothing to escape */
        len = snprintf(a->s + a->n, a->cap - a->n, "%s%c", v->memory_source, end);
    if (len < 0 || (size_t)len >= a->cap - a->n)
        return -ENOMEM;
    a->n += (size_t)len;
    return 0;
}

#define SAMPLE_COLS                                                                                \
    "instance_id, start, host_id, duration, readings, expected, vcpus, memory_mib, cpu_avg,"       \
    " cpu_max, mem_avg, mem_max, mem_source, disk_rd_bytes, disk_wr_bytes, disk_rd_reqs,"          \
    " disk_wr_reqs, net_rx_bytes, net_tx_bytes, net_rx_pkts, net_tx_pkts"

/*
 * The windows to store, by one COPY straight into samples: the cheapest way in there is
 * (tests/bench/README.md). It needs no ON CONFLICT: their keys are free, since the overlap
 * check saw every stored window of their instances and the batches of their host take turns
 * (br_metering_ingest_key()). Should a row it could not see (one written by something else
 * and committed meanwhile) take a key all the same, the COPY is undone to its savepoint and the
 * rows go through the connection's temporary table ingest_windows and one INSERT ... SELECT
 * ... ON CONFLICT DO NOTHING instead: a conflict is then a duplicate, as on SQLite.
 */
static int store_windows(CmDb *db, int64_t host_id, const BrSample *inst, size_t n,
                         const int64_t *alloc_mem, const WindowFate *fate, int64_t *ret_stored,
                         CmError *err)
{
    static const uint8_t key_cols[2] = {BR_SF_INSTANCE, BR_SF_START};
    static const uint8_t count_cols[3] = {BR_SF_DURATION, BR_SF_READINGS, BR_SF_EXPECTED};
    _cleanup_(array_text_free) ArrayText rows = {0};
    _cleanup_stmt_ CmStmt *st = NULL;
    size_t n_store = 0;
    int r = 0;

    *ret_stored = 0;
    for (size_t i = 0; i < n && r >= 0; i++) {
        const BrSample *rec = &inst[i];
        if (fate[i] != WINDOW_STORE)
            continue;
        n_store++;
        for (size_t c = 0; c < ELEMENTSOF(key_cols) && r >= 0; c++)
            r = copy_put(&rows, rec, (BrSampleField)key_cols[c], 0, false);
        if (r >= 0)
            r = copy_put(&rows, rec, BR_SF_MAX, host_id, false);
        for (size_t c = 0; c < ELEMENTSOF(count_cols) && r >= 0; c++)
            r = copy_put(&rows, rec, (BrSampleField)count_cols[c], 0, false);
        for (size_t c = 0; c < ELEMENTSOF(instance_cols) && r >= 0; c++) {
            BrSampleField f = (BrSampleField)instance_cols[c];
            bool last = c + 1 == ELEMENTSOF(instance_cols);
            /* The memory is what the instance was allocated, as store_windows_each() binds it. */
            if (f == BR_SF_MEMORY_MIB && alloc_mem[i] > 0 && br_sample_has(rec, f) &&
                rec->v[f].i > alloc_mem[i])
                r = copy_put(&rows, rec, BR_SF_MAX, alloc_mem[i], last);
            else
                r = copy_put(&rows, rec, f, 0, last);
        }
    }
    if (r < 0)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    if (!n_store)
        return 0;
    r = cm_db_exec(db, "SAVEPOINT ingest_copy", err);
    if (r >= 0)
        r = cm_db_copy_in(db, "COPY samples(" SAMPLE_COLS ") FROM STDIN", rows.s, rows.n,
                          ret_stored, err);
    if (r != -EEXIST)
        return r;
    cm_log_warning("samples: a window's key was taken beside the overlap check of host %lld's "
                   "batch: the batch goes through INSERT ... ON CONFLICT",
                   (long long)host_id);
    cm_error_clear(err);
    /* IF NOT EXISTS tells a notice when it exists: not worth a line in the server's log. */
    r = cm_db_exec(db,
                   "ROLLBACK TO SAVEPOINT ingest_copy; SET LOCAL client_min_messages = warning;"
                   " CREATE TEMPORARY TABLE IF NOT EXISTS ingest_windows (LIKE samples)"
                   " ON COMMIT DELETE ROWS",
                   err);
    if (r >= 0)
        r = cm_db_copy_in(db, "COPY ingest_windows(" SAMPLE_COLS ") FROM STDIN", rows.s, rows.n,
                          NULL, err);
    if (r < 0)
        return r;
    st = cm_db_prepare(db,
                       "INSERT INTO samples(" SAMPLE_COLS ") SELECT " SAMPLE_COLS
                       " FROM ingest_windows ON CONFLICT DO NOTHING",
                       err);
    if (!st)
        return -EIO;
    r = cm_stmt_exec(st, err);
    if (r < 0)
        return r;
    *ret_stored = cm_stmt_changes(st);
    return 0;
}

/* SQLite: the windows to store, one execution of one prepared INSERT each (in-process, the
 * fastest there is). */
static int store_windows_each(CmDb *db, int64_t host_id, const BrSample *inst, size_t n,
                              const int64_t *alloc_mem, const WindowFate *fate, int64_t *ret_stored,
                              CmError *err)
{
    _cleanup_stmt_ CmStmt *st = NULL;
    int r;

    *ret_stored = 0;
    st = cm_db_prepare(db,
                       "INSERT INTO samples(instance_id, start, host_id, duration, readings,"
                       " expected, vcpus, memory_mib, cpu_avg, cpu_max, mem_avg, mem_max,"
                       " mem_source, disk_rd_bytes, disk_wr_bytes, disk_rd_reqs, disk_wr_reqs,"
                       " net_rx_bytes, net_tx_bytes, net_rx_pkts, net_tx_pkts)"
                       " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
                       " ON CONFLICT DO NOTHING",
                       err);
    if (!st)
        return -EIO;
    for (size_t i = 0; i < n; i++) {
        const BrSample *rec = &inst[i];

        if (fate[i] != WINDOW_STORE)
            continue;
        CM_DB_BIND(st, rec->v[BR_SF_INSTANCE].i, rec->v[BR_SF_START].i, host_id,
                   rec->v[BR_SF_DURATION].i, rec->v[BR_SF_READINGS].i, rec->v[BR_SF_EXPECTED].i);
        bind_cols(st, 7, rec, instance_cols, ELEMENTSOF(instance_cols));
        /* The memory is what the instance was allocated: a guest whose balloon never deflates
         * reports the domain's maximum, which it was never given to use. */
        if (alloc_mem[i] > 0 && br_sample_has(rec, BR_SF_MEMORY_MIB) &&
            rec->v[BR_SF_MEMORY_MIB].i > alloc_mem[i])
            cm_stmt_bind_i64(st, 8, alloc_mem[i]);
        r = cm_stmt_exec(st, err);
        if (r < 0)
            return r;
        *ret_stored += cm_stmt_changes(st);
    }
    return 0;
}

/* The batch's instance windows with the same outcome as the rule applied window by window:
 * one read of the stored windows they overlap (one statement on PostgreSQL, a range per
 * instance and run on SQLite), the batch's own overlaps worked out here, then the windows to
 * store written (one statement on PostgreSQL, an execution each on SQLite). */
static int ingest_instances_set(CmDb *db, int64_t host_id, const BrSample *inst, size_t n,
                                const int64_t *alloc_mem, BrIngestResult *res, CmError *err)
{
    _cleanup_free_ bool *hit = calloc(n + 1, sizeof(*hit));
    _cleanup_free_ int64_t(*other)[2] = calloc(n + 1, sizeof(*other));
    _cleanup_free_ WindowFate *fate = calloc(n + 1, sizeof(*fate));
    bool pg = cm_db_backend(db) == CM_DB_POSTGRESQL;
    int64_t stored = 0, n_store = 0;
    int r;

    if (!hit || !other || !fate)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    if (!n)
        return 0;
    r = pg ? stored_overlaps(db, inst, n, hit, other, err)
           : stored_overlaps_ranges(db, inst, n, hit, other, err);
    if (r >= 0)
        r = window_fates(inst, n, hit, other, fate, err);
    if (r >= 0)
        r = pg ? store_windows(db, host_id, inst, n, alloc_mem, fate, &stored, err)
               : store_windows_each(db, host_id, inst, n, alloc_mem, fate, &stored, err);
    if (r < 0)
        return r;
    for (size_t i = 0; i < n; i++) {
        if (fate[i] == WINDOW_STORE)
            n_store++;
        else if (fate[i] == WINDOW_DUPLICATE)
            res->duplicates++;
        else {
            if (res->n_rejected < BR_INGEST_MAX_REJECTIONS)
                res->rejected[res->n_rejected++] = (BrIngestRejection){
                    .index = i,
                    .instance = inst[i].v[BR_SF_INSTANCE].i,
                    .start = inst[i].v[BR_SF_START].i,
                    .duration = inst[i].v[BR_SF_DURATION].i,
                    .other_start = other[i][0],
                    .other_duration = other[i][1],
                };
            res->overlapping++;
        }
    }
    /* a conflict on the key is a duplicate (another transaction's window of that start) */
    res->stored += stored;
    res->duplicates += n_store - stored;
    return 0;
}

static int ingest_host(IngestStmts *x, int64_t host_id, const BrSample *rec, BrIngestResult *res,
                       CmError *err)
{
    int r;

    CM_DB_BIND(x->host, host_id, rec->v[BR_SF_START].i, rec->v[BR_SF_DURATION].i,
               rec->v[BR_SF_READINGS].i, rec->v[BR_SF_EXPECTED].i);
    bind_cols(x->host, 6, rec, host_cols, ELEMENTSOF(host_cols));
    r = cm_stmt_exec(x->host, err);
    if (r < 0)
        return r;
    res->host += cm_stmt_changes(x->host);
    return 0;
}

int br_metering_ingest(BrTx *tx, const BrMeteringPolicy *p, int64_t host_id,
                       const BrSamplesBatch *batch, BrIngestResult *ret)
{
    const BrSample *inst = batch->items[BR_SAMPLES_INSTANCES];
    const BrSample *host = batch->items[BR_SAMPLES_HOST];
    size_t n_inst = batch->n[BR_SAMPLES_INSTANCES], n_host = batch->n[BR_SAMPLES_HOST];
    int64_t now = cm_now_ms() / 1000, oldest = now - p->sample_retention_days * 86400;
    _cleanup_free_ int64_t *alloc_mem = calloc(n_inst + 1, sizeof(int64_t));
    _cleanup_free_ BrIngestResult *res = calloc(1, sizeof(*res));
    _cleanup_(ingest_stmts_done) IngestStmts x = {0};
    int r;

    if (!alloc_mem || !res)
        return cm_error_set(tx->err, CM_ERROR_INTERNAL, "", "out of memory");
    /* Check everything before writing anything: a bad record refuses the whole batch. */
    r = check_instances(tx->db, p, host_id, batch, now, alloc_mem, tx->err);
    for (size_t l = BR_SAMPLES_UNOWNED; r >= 0 && l <= BR_SAMPLES_HOST; l++)
        for (size_t i = 0; r >= 0 && i < batch->n[l]; i++)
            r = check_window(&batch->items[l][i], (BrSamplesList)l, i, now, oldest,
                             p->max_clock_skew_seconds, tx->err);
    if (r >= 0)
        r = ingest_stmts(tx->db, &x, tx->err);
    if (r >= 0)
        r = ingest_instances_set(tx->db, host_id, inst, n_inst, alloc_mem, res, tx->err);
    if (r >= 0)
        r = ingest_unowned(tx->db, host_id, p->max_unowned_per_window, batch, res, tx->err);
    for (size_t i = 0; r >= 0 && i < n_host; i++)
        r = ingest_host(&x, host_id, &host[i], res, tx->err);
    if (r < 0)
        return r;
    atomic_fetch_add(&stored_total, (uint64_t)res->stored);
    atomic_fetch_add(&duplicates_total, (uint64_t)res->duplicates);
    atomic_fetch_add(&overlapping_total, (uint64_t)res->overlapping);
    atomic_fetch_add(&unowned_dropped_total, (uint64_t)res->unowned_dropped);
    *ret = *res;
    return 0;
}

/* ---- rollups ---- */

static void day_name(int64_t day_start, char out[16])
{
    time_t t = (time_t)day_start;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 16, "%Y-%m-%d", &tm);
}

/* A day's rollups, made from one read snapshot and written in one short transaction. */
typedef struct {
    const BrAssessmentPolicy *p;
    int64_t day_start;
    char day[16], at[CM_TIME_ISO_LEN + 1];
    BrRollupRow *rows;
    size_t n_rows, cap_rows;
} RollupDay;

static int rows_push(RollupDay *x, BrRollupAcc *a, CmError *err)
{
    if (x->n_rows == x->cap_rows) {
        size_t ncap = x->cap_rows ? x->cap_rows * 2 : 256;
        BrRollupRow *nr = realloc(x->rows, ncap * sizeof(*nr));
        if (!nr)
            return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
        x->rows = nr;
        x->cap_rows = ncap;
    }
    x->rows[x->n_rows++] = *br_rollup_finish(a);
    return 0;
}

static int64_t counter(CmStmt *st, int i)
{
    return cm_stmt_is_null(st, i) ? -1 : cm_stmt_int(st, i);
}

static double gauge(CmStmt *st, int i)
{
    return cm_stmt_is_null(st, i) ? NAN : cm_stmt_double(st, i);
}

/* Instances read a slice at a time: PostgreSQL hands a statement's whole answer over at once
 * (the day of 20,000 instances, 5.8 million rows, took 2.4 GB); SQLite steps the same. */
#define ROLLUP_SLICE 500

static int rollup_read(BrTx *tx, void *ctx)
{
    RollupDay *x = ctx;
    _cleanup_(br_rollup_acc_free) BrRollupAcc a = {0};
    /* Instance by instance along the samples' primary key (a range each): no sort, no lookup
     * per row. A window's memory is what the instance was allocated when it came (ingest
     * keeps a balloon that never deflates to it), not what it has now: a day rolled up again
     * after a resize keeps its windows' sizes. On PostgreSQL the day is a partition of its
     * own whose primary key gives the slice in order: read alone, with the instance looked up
     * only for a window without its memory (instances are never deleted, so every window has
     * its instance, as the join finds), and planned for each slice's values (below). */
#define ROLLUP_HEAD                                                                                \
    "SELECT s.instance_id, s.duration, s.readings, s.expected, coalesce(s.vcpus, 0) AS vcpus,"     \
    " coalesce(s.memory_mib, "
#define ROLLUP_TAIL                                                                                \
    ", 0) AS memory_mib, s.cpu_avg, s.cpu_max, s.mem_avg, s.mem_max, s.disk_rd_bytes,"             \
    " s.disk_wr_bytes, s.disk_rd_reqs, s.disk_wr_reqs, s.net_rx_bytes, s.net_tx_bytes,"            \
    " s.net_rx_pkts, s.net_tx_pkts"
    _cleanup_stmt_ CmStmt *st = cm_db_prepare(
        tx->db,
        cm_db_sql(tx->db,
                  ROLLUP_HEAD "i.memory_mib" ROLLUP_TAIL
                              " FROM instances i CROSS JOIN samples s WHERE s.instance_id = i.id"
                              " AND i.id > ?3 AND i.id <= ?4 AND s.start >= ?1 AND s.start < ?2"
                              " ORDER BY i.id, s.start",
                  ROLLUP_HEAD
                  "(SELECT i.memory_mib FROM instances i WHERE i.id = s.instance_id)" ROLLUP_TAIL
                  " FROM samples s WHERE s.instance_id > ?3 AND s.instance_id <= ?4"
                  " AND s.start >= ?1 AND s.start < ?2"
                  " ORDER BY s.instance_id, s.start"),
        tx->err);
#undef ROLLUP_HEAD
#undef ROLLUP_TAIL
    int64_t after = 0, last = 0;
    int r;

    if (!st)
        return -EIO;
    /* On PostgreSQL the rows come as the server finds them, with no numbers to parse from text
     * (the read was 90 % of a rollup of 100,000 instances). Each slice is planned for its own
     * values: the plan made once for any values cannot tell which day's partition is read, so
     * it sorted each slice whole before its first row; planned for the values, the partition's
     * primary key gives the order. */
    if (cm_db_backend(tx->db) == CM_DB_POSTGRESQL &&
        (r = cm_db_exec(tx->db, "SET LOCAL plan_cache_mode = force_custom_plan", tx->err)) < 0)
        return r;
    cm_stmt_set_rows(st, CM_DB_ROWS_BINARY | CM_DB_ROWS_STREAM);
    for (;;) {
        r = br_instance_slice_end(tx->db, after, ROLLUP_SLICE, &last, tx->err);
        if (r < 0 || last == 0)
            break;
        cm_stmt_reset(st);
        CM_DB_BIND(st, x->day_start, x->day_start + 86400, after, last);
        after = last;
        while ((r = cm_stmt_step(st, tx->err)) > 0) {
            int64_t id = cm_stmt_int(st, 0);
            BrRollupWindow w = {
                .duration = cm_stmt_int(st, 1),
                .readings = cm_stmt_int(st, 2),
                .expected = cm_stmt_int(st, 3),
                .vcpus = cm_stmt_int(st, 4),
                .memory_mib = cm_stmt_int(st, 5),
                .cpu_avg = gauge(st, 6),
                .cpu_max = gauge(st, 7),
                .mem_avg = gauge(st, 8),
                .mem_max = gauge(st, 9),
            };
            for (int k = 0; k < BR_ROLLUP_COUNTERS; k++)
                w.counters[k] = counter(st, 10 + k);
            if (id != a.row.instance_id) {
                if (a.row.instance_id && (r = rows_push(x, &a, tx->err)) < 0)
                    return r;
                br_rollup_begin(&a, id);
            }
            if (br_rollup_add(&a, x->p, &w) < 0)
                return cm_error_set(tx->err, CM_ERROR_INTERNAL, "", "out of memory");
        }
        if (r < 0)
            return r;
    }
    if (r >= 0 && a.row.instance_id)
        r = rows_push(x, &a, tx->err);
    return r;
}

static void bind_opt(CmStmt *st, int idx, bool have, double v)
{
    if (have)
        cm_stmt_bind_double(st, idx, v);
}

#define ROLLUP_COLS                                                                                \
    "instance_id, day, windows, readings, expected, coverage, vcpus, memory_mib, cpu_avg,"         \
    " cpu_p95, cpu_max, cpu_util_hist, mem_avg, mem_p95, mem_max, mem_util_hist, disk_rd_bytes,"   \
    " disk_wr_bytes, disk_rd_reqs, disk_wr_reqs, net_rx_bytes, net_tx_bytes, net_rx_pkts,"         \
    " net_tx_pkts, net_rx_bps_p95, net_tx_bps_p95, computed_at, idle_windows,"                     \
    " idle_checked_windows, duration"

/* A day rolled up again replaces its rows. */
#define ROLLUP_UPSERT                                                                              \
    " ON CONFLICT (instance_id, day) DO UPDATE SET windows = excluded.windows,"                    \
    " readings = excluded.readings, expected = excluded.expected,"                                 \
    " coverage = excluded.coverage, vcpus = excluded.vcpus,"                                       \
    " memory_mib = excluded.memory_mib, cpu_avg = excluded.cpu_avg,"                               \
    " cpu_p95 = excluded.cpu_p95, cpu_max = excluded.cpu_max,"                                     \
    " cpu_util_hist = excluded.cpu_util_hist, mem_avg = excluded.mem_avg,"                         \
    " mem_p95 = excluded.mem_p95, mem_max = excluded.mem_max,"                                     \
    " mem_util_hist = excluded.mem_util_hist, disk_rd_bytes = excluded.disk_rd_bytes,"             \
    " disk_wr_bytes = excluded.disk_wr_bytes, disk_rd_reqs = excluded.disk_rd_reqs,"               \
    " disk_wr_reqs = excluded.disk_wr_reqs, net_rx_bytes = excluded.net_rx_bytes,"                 \
    " net_tx_bytes = excluded.net_tx_bytes, net_rx_pkts = excluded.net_rx_pkts,"                   \
    " net_tx_pkts = excluded.net_tx_pkts, net_rx_bps_p95 = excluded.net_rx_bps_p95,"               \
    " net_tx_bps_p95 = excluded.net_tx_bps_p95, computed_at = excluded.computed_at,"               \
    " idle_windows = excluded.idle_windows,"                                                       \
    " idle_checked_windows = excluded.idle_checked_windows, duration = excluded.duration"

/* SQLite: one execution of one prepared INSERT per row (in-process, the fastest there is). */
static int rollup_write_each(BrTx *tx, const RollupDay *x)
{
    for (size_t i = 0; i < x->n_rows; i++) {
        const BrRollupRow *o = &x->rows[i];
        uint8_t cpu_blob[BR_HISTOGRAM_BLOB_SIZE], mem_blob[BR_HISTOGRAM_BLOB_SIZE];
        _cleanup_stmt_ CmStmt *st = cm_db_prepare(
            tx->db,
            "INSERT INTO rollups(" ROLLUP_COLS ")"
            " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,"
            " ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30)" ROLLUP_UPSERT,
            tx->err);
        int r;

        if (!st)
            return -EIO;
        /* what the day lacks stays NULL */
        CM_DB_BIND(st, o->instance_id, x->day, o->windows, o->readings, o->expected, o->coverage);
        if (o->vcpus)
            cm_stmt_bind_i64(st, 7, o->vcpus);
        if (o->memory_mib)
            cm_stmt_bind_i64(st, 8, o->memory_mib);
        bind_opt(st, 9, o->has_cpu, o->cpu_avg);
        bind_opt(st, 10, o->has_cpu_p95, o->cpu_p95);
        bind_opt(st, 11, o->has_cpu_max, o->cpu_max);
        bind_opt(st, 13, o->has_mem, o->mem_avg);
        bind_opt(st, 14, o->has_mem_p95, o->mem_p95);
        bind_opt(st, 15, o->has_mem_max, o->mem_max);
        if (o->cpu_h.count)
            cm_stmt_bind_blob(st, 12, cpu_blob, br_histogram_encode(&o->cpu_h, cpu_blob));
        if (o->mem_h.count)
            cm_stmt_bind_blob(st, 16, mem_blob, br_histogram_encode(&o->mem_h, mem_blob));
        for (int k = 0; k < BR_ROLLUP_COUNTERS; k++)
            if (o->has_counter[k])
                cm_stmt_bind_i64(st, 17 + k, o->counters[k]);
        bind_opt(st, 25, o->has_rx, o->rx_p95);
        bind_opt(st, 26, o->has_tx, o->tx_p95);
        cm_stmt_bind_text(st, 27, x->at);
        cm_stmt_bind_i64(st, 28, o->idle_windows);
        cm_stmt_bind_i64(st, 29, o->idle_checked);
        cm_stmt_bind_i64(st, 30, o->duration);
        r = cm_stmt_exec(st, tx->err);
        if (r < 0)
            return r;
    }
    return 0;
}

/* Appends a COPY text column: @fmt's text then a tab, or a newline for the row's last. */
static int copy_col(ArrayText *a, bool last, const char *fmt, ...) _printf_(3, 4);
static int copy_col(ArrayText *a, bool last, const char *fmt, ...)
{
    va_list ap;
    int len;

    for (size_t room = 128;; room *= 2) {
        if (array_text_room(a, room) < 0)
            return -ENOMEM;
        va_start(ap, fmt);
        len = vsnprintf(a->s + a->n, a->cap - a->n, fmt, ap);
        va_end(ap);
        if (len < 0)
            return -ENOMEM;
        if ((size_t)len + 1 < a->cap - a->n)
            break;
    }
    a->n += (size_t)len;
    a->s[a->n++] = last ? '\n' : '\t';
    return 0;
}

/* 17 significant digits: the server reads back the very double SQLite would store. */
static int copy_opt(ArrayText *a, bool have, double v)
{
    return have ? copy_col(a, false, "%.17g", v) : copy_col(a, false, "\\N");
}

/* A histogram as bytea in COPY's text form ("\\x" and hex: COPY itself unescapes a backslash). */
static int copy_hist(ArrayText *a, const BrHistogram *h)
{
    uint8_t blob[BR_HISTOGRAM_BLOB_SIZE];
    static const char hex[] = "0123456789abcdef";
    size_t n;

    if (!h->count)
        return copy_col(a, false, "\\N");
    if (array_text_room(a, 2 * sizeof(blob) + 4) < 0)
        return -ENOMEM;
    n = br_histogram_encode(h, blob);
    memcpy(a->s + a->n, "\\\\x", 3);
    a->n += 3;
    for (size_t k = 0; k < n; k++) {
        a->s[a->n++] = hex[blob[k] >> 4];
        a->s[a->n++] = hex[blob[k] & 15];
    }
    a->s[a->n++] = '\t';
    return 0;
}

/* A size of the day, 0 when missing (NULL). */
static int copy_size(ArrayText *a, int64_t v)
{
    return v ? copy_col(a, false, "%lld", (long long)v) : copy_col(a, false, "\\N");
}

/* A gauge of the day: its average, 95th percentile, maximum and utilization histogram. */
static int copy_gauge(ArrayText *a, bool has_avg, double avg, bool has_p95, double p95,
                      bool has_max, double max, const BrHistogram *h)
{
    if (copy_opt(a, has_avg, avg) < 0 || copy_opt(a, has_p95, p95) < 0 ||
        copy_opt(a, has_max, max) < 0)
        return -ENOMEM;
    return copy_hist(a, h);
}

/* One rollup row in COPY's text form, the columns of ROLLUP_COLS. Returns: 0 or -ENOMEM. */
static int copy_rollup(ArrayText *a, const RollupDay *x, const BrRollupRow *o)
{
    if (copy_col(a, false, "%lld\t%s\t%lld\t%lld\t%lld\t%.17g", (long long)o->instance_id, x->day,
                 (long long)o->windows, (long long)o->readings, (long long)o->expected,
                 o->coverage) < 0 ||
        copy_size(a, o->vcpus) < 0 || copy_size(a, o->memory_mib) < 0 ||
        copy_gauge(a, o->has_cpu, o->cpu_avg, o->has_cpu_p95, o->cpu_p95, o->has_cpu_max,
                   o->cpu_max, &o->cpu_h) < 0 ||
        copy_gauge(a, o->has_mem, o->mem_avg, o->has_mem_p95, o->mem_p95, o->has_mem_max,
                   o->mem_max, &o->mem_h) < 0)
        return -ENOMEM;
    for (int k = 0; k < BR_ROLLUP_COUNTERS; k++)
        if ((o->has_counter[k] ? copy_col(a, false, "%lld", (long long)o->counters[k])
                               : copy_col(a, false, "\\N")) < 0)
            return -ENOMEM;
    if (copy_opt(a, o->has_rx, o->rx_p95) < 0 || copy_opt(a, o->has_tx, o->tx_p95) < 0)
        return -ENOMEM;
    return copy_col(a, true, "%s\t%lld\t%lld\t%lld", x->at, (long long)o->idle_windows,
                    (long long)o->idle_checked, (long long)o->duration);
}

#define ROLLUP_COPY_ROWS 5000 /* rows per COPY: some 10 MB of text */

/* PostgreSQL: the rows by COPY into the connection's temporary table rollup_rows, then one
 * INSERT ... SELECT per ROLLUP_COPY_ROWS (a round trip per row took 9 s for 100,000). */
static int rollup_write_copy(BrTx *tx, const RollupDay *x)
{
    _cleanup_(array_text_free) ArrayText rows = {0};
    int r;

    /* IF NOT EXISTS tells a notice when it exists: not worth a line in the server's log. */
    r = cm_db_exec(tx->db,
                   "SET LOCAL client_min_messages = warning;"
                   " CREATE TEMPORARY TABLE IF NOT EXISTS rollup_rows (LIKE rollups)"
                   " ON COMMIT DELETE ROWS",
                   tx->err);
    for (size_t i = 0; i < x->n_rows && r >= 0; i += ROLLUP_COPY_ROWS) {
        _cleanup_stmt_ CmStmt *st = NULL;

        rows.n = 0;
        for (size_t k = i; k < x->n_rows && k < i + ROLLUP_COPY_ROWS; k++)
            if (copy_rollup(&rows, x, &x->rows[k]) < 0)
                return cm_error_set(tx->err, CM_ERROR_INTERNAL, "", "out of memory");
        r = cm_db_copy_in(tx->db, "COPY rollup_rows(" ROLLUP_COLS ") FROM STDIN", rows.s, rows.n,
                          NULL, tx->err);
        if (r < 0)
            return r;
        st = cm_db_prepare(tx->db,
                           "INSERT INTO rollups(" ROLLUP_COLS ") SELECT " ROLLUP_COLS
                           " FROM rollup_rows" ROLLUP_UPSERT,
                           tx->err);
        r = st ? cm_stmt_exec(st, tx->err) : -EIO;
        if (r >= 0)
            r = cm_db_exec(tx->db, "TRUNCATE rollup_rows", tx->err);
    }
    return r;
}

static int rollup_write(BrTx *tx, void *ctx)
{
    const RollupDay *x = ctx;

    return cm_db_backend(tx->db) == CM_DB_POSTGRESQL ? rollup_write_copy(tx, x)
                                                     : rollup_write_each(tx, x);
}

int br_metering_rollup_day(BrDaemon *d, int64_t day_start, CmError *err)
{
    _cleanup_(br_policies_unrefp) BrPolicies *p = br_daemon_policies(d);
    _cleanup_free_ BrRollupRow *rows = NULL;
    RollupDay x = {.p = &p->assessment, .day_start = day_start - day_start % 86400};
    int64_t t0 = cm_mono_ns(), t_read;
    int r;

    day_name(x.day_start, x.day);
    cm_time_iso(cm_now_ms(), x.at);
    /* Read the day in one snapshot without the write lock; then write it in one short one. */
    r = br_tx_read(d->store, "rollup.read", rollup_read, &x, err);
    rows = x.rows;
    t_read = cm_mono_ns();
    if (r >= 0)
        r = br_tx_run(d->store, "rollup.write", NULL, rollup_write, &x, err);
    if (r < 0)
        return r;
    cm_log_info("rolled up %zu instance(s) for %s (read %.2f s, written %.2f s)", x.n_rows, x.day,
                (double)(t_read - t0) / 1e9, (double)(cm_mono_ns() - t_read) / 1e9);
    return (int)x.n_rows;
}

int br_metering_rollup_if_stale(BrDaemon *d, int64_t day_start, CmError *err)
{
    char day[16];
    CmDb *db = br_store_db(d->store, err);
    _cleanup_stmt_ CmStmt *st = NULL;
    int r;

    if (!db)
        return -EIO;
    day_start -= day_start % 86400;
    day_name(day_start, day);
    st = cm_db_prepare(
        db,
        "SELECT (SELECT count(*) FROM samples WHERE start >= ?1 AND start < ?2) AS samples,"
        " (SELECT coalesce(sum(windows), 0) FROM rollups WHERE day = ?3) AS rolled",
        err);
    if (!st)
        return -EIO;
    CM_DB_BIND(st, day_start, day_start + 86400, day);
    r = cm_stmt_step(st, err);
    if (r <= 0 || cm_stmt_int(st, 0) == cm_stmt_int(st, 1))
        return r < 0 ? r : 0;
    cm_stmt_reset(st);
    r = br_metering_rollup_day(d, day_start, err);
    return r < 0 ? r : 1;
}

/* ---- retention ---- */

#define RETENTION_SLICE 20000

typedef struct {
    const char *sql;
    int64_t cutoff, removed;
} Slice;

static int retention_slice(BrTx *tx, void *ctx)
{
    Slice *x = ctx;
    _cleanup_stmt_ CmStmt *st = cm_db_prepare(tx->db, x->sql, tx->err);
    int r;

    if (!st)
        return -EIO;
    CM_DB_BIND(st, x->cutoff, (int64_t)RETENTION_SLICE);
    r = cm_stmt_exec(st, tx->err);
    x->removed = cm_stmt_changes(st);
    return r;
}

/* PostgreSQL: the partitions of the days wholly past the retention dropped (migration 16). */
static int retention_partitions(BrTx *tx, void *ctx)
{
    Slice *x = ctx;
    _cleanup_stmt_ CmStmt *st = NULL;
    int r;

    if (cm_db_backend(tx->db) != CM_DB_POSTGRESQL)
        return 0;
    st = cm_db_prepare(tx->db, "SELECT samples_drop_before(?1)", tx->err);
    if (!st)
        return -EIO;
    CM_DB_BIND(st, x->cutoff);
    r = cm_stmt_step(st, tx->err);
    if (r > 0)
        x->removed = cm_stmt_int(st, 0);
    return r < 0 ? r : 0;
}

/* PostgreSQL: the day partitions of yesterday, today and tomorrow, and of the four latest days
 * still kept whose windows wait in samples_default (migration 16). Bounded, so the writer lock
 * is held briefly: the first pass after a copy of old samples moves four days, the next four. */
static int partitions_make(BrTx *tx, void *ctx)
{
    const int64_t *days = ctx;
    _cleanup_stmt_ CmStmt *st = NULL;
    int r;

    if (cm_db_backend(tx->db) != CM_DB_POSTGRESQL)
        return 0;
    st = cm_db_prepare(tx->db,
                       "WITH late AS (SELECT DISTINCT start - start % 86400 AS d"
                       "  FROM samples_default WHERE start >= ?3 ORDER BY 1 DESC LIMIT 4)"
                       " SELECT count(*) FROM (SELECT d FROM generate_series(?1::bigint,"
                       "  ?2::bigint, 86400) AS g(d) UNION SELECT d FROM late) AS days"
                       " WHERE samples_partition(d)",
                       tx->err);
    if (!st)
        return -EIO;
    CM_DB_BIND(st, days[0], days[1], days[2]);
    r = cm_stmt_step(st, tx->err);
    if (r > 0 && cm_stmt_int(st, 0) > 0)
        cm_log_info("samples: %lld day partitions made", (long long)cm_stmt_int(st, 0));
    return r < 0 ? r : 0;
}

int br_metering_partitions(BrDaemon *d, CmError *err)
{
    _cleanup_(br_policies_unrefp) BrPolicies *p = br_daemon_policies(d);
    int64_t now = cm_now_ms() / 1000, today = now - now % 86400;
    int64_t oldest = now - p->metering.sample_retention_days * 86400;
    int64_t days[3] = {today - 86400, today + 86400, oldest - oldest % 86400};

    return br_tx_run(d->store, "samples.partitions", NULL, partitions_make, days, err);
}

int64_t br_metering_retention(BrDaemon *d, CmError *err)
{
    _cleanup_(br_policies_unrefp) BrPolicies *p = br_daemon_policies(d);
    static const char *const sql[] = {
        "DELETE FROM samples WHERE (instance_id, start) IN (SELECT instance_id, start"
        " FROM samples WHERE start < ?1 LIMIT ?2)",
        "DELETE FROM unowned_samples WHERE (host_id, uuid, start) IN (SELECT host_id, uuid,"
        " start FROM unowned_samples WHERE start < ?1 LIMIT ?2)",
        "DELETE FROM host_samples WHERE (host_id, start) IN (SELECT host_id, start"
        " FROM host_samples WHERE start < ?1 LIMIT ?2)",
    };
    Slice days = {NULL, cm_now_ms() / 1000 - p->metering.sample_retention_days * 86400, 0};
    int64_t total = 0;
    int r;

    /* On PostgreSQL whole days go at once; the DELETEs take the rest (the day the cutoff
     * falls in, windows of days without a partition). */
    r = br_tx_run(d->store, "retention", NULL, retention_partitions, &days, err);
    if (r < 0)
        return r;
    total += days.removed;
    /* In slices, so that the write lock is never held long. */
    for (size_t i = 0; i < ELEMENTSOF(sql); i++) {
        Slice x = {sql[i], cm_now_ms() / 1000 - p->metering.sample_retention_days * 86400,
                   RETENTION_SLICE};
        while (x.removed == RETENTION_SLICE) {
            r = br_tx_run(d->store, "retention", NULL, retention_slice, &x, err);
            if (r < 0)
                return r;
            total += x.removed;
        }
    }
    if (total)
        cm_log_info("sample retention: removed %lld rows", (long long)total);
    return total;
}

/* ---- the periodic rollup and retention ---- */

struct BrMetering {
    BrDaemon *d;
    CmWorker *worker;
};

static int64_t metering_pass(void *ctx)
{
    BrMetering *m = ctx;
    _cleanup_(br_policies_unrefp) BrPolicies *p = br_daemon_policies(m->d);
    int64_t now = cm_now_ms() / 1000;
    CmError err = {0};

    if (br_metering_partitions(m->d, &err) < 0)
        cm_log_error("samples partitions: %s", err.message);
    cm_error_clear(&err);
    /* Yesterday (late windows arrive after midnight) and today so far. */
    if (br_metering_rollup_day(m->d, now - 86400, &err) < 0 ||
        br_metering_rollup_day(m->d, now, &err) < 0)
        cm_log_error("rollup: %s", err.message);
    if (br_metering_retention(m->d, &err) < 0)
        cm_log_error("sample retention: %s", err.message);
    return p->metering.rollup_interval_seconds * 1000;
}

int br_metering_start(BrDaemon *d, BrMetering **ret, CmError *err)
{
    _cleanup_free_ BrMetering *m = calloc(1, sizeof(*m));
    CmWorkerConfig wc = {.name = "rollup", .run = metering_pass};
    int r;

    if (!m)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    m->d = d;
    wc.ctx = m;
    r = cm_worker_start(&wc, &m->worker, err);
    if (r < 0)
        return r;
    *ret = TAKE_PTR(m);
    return 0;
}

BrMetering *br_metering_stop(BrMetering *m)
{
    if (m) {
        cm_worker_stop(m->worker);
        free(m);
    }
    return NULL;
}
