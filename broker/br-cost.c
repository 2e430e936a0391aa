/* SPDX-License-Identifier: Apache-2.0 */
/* The arithmetic of a bill and the monthly statement (docs/costs.md). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "br-cost.h"
#include "cm-cleanup.h"
#include "cm-json.h"
#include "cm-time.h"

#define HOUR_MS INT64_C(3600000)

void br_cost_holds(const char *state, bool *ret_compute, bool *ret_disk)
{
    static const char *const compute[] = {"defined", "running", "shutoff"};
    static const char *const disk[] = {"created", "defined", "running", "shutoff", "undefined"};

    *ret_compute = *ret_disk = false;
    for (size_t i = 0; state && i < ELEMENTSOF(compute); i++)
        *ret_compute |= strcmp(state, compute[i]) == 0;
    for (size_t i = 0; state && i < ELEMENTSOF(disk); i++)
        *ret_disk |= strcmp(state, disk[i]) == 0;
}

/* What an instance holds after event @e (NULL: before its first). */
static void held(const BrCostEvent *e, int64_t *vcpus, int64_t *memory_mib, int64_t *disk_gib)
{
    *vcpus = e && e->compute ? e->vcpus : 0;
    *memory_mib = e && e->compute ? e->memory_mib : 0;
    *disk_gib = e && e->disk ? e->disk_gib : 0;
}

static void part_price(BrCostPart *x, int64_t month_ms)
{
    int64_t ms = x->to_ms - x->from_ms;
    x->compute_fen = br_money_fen(x->rate.vcpu_hour, x->vcpus, ms, HOUR_MS);
    x->memory_fen = br_money_fen(x->rate.memory_gib_hour, x->memory_mib, ms, HOUR_MS * 1024);
    x->disk_fen = br_money_fen(x->rate.disk_gib_month, x->disk_gib, ms, month_ms);
}

int br_cost_parts(const BrPricingPolicy *p, bool trial, const char *image, const BrCostEvent *ev,
                  size_t n, int64_t t0, int64_t t1, int64_t month_ms, BrCostPart **ret,
                  size_t *ret_n)
{
    _cleanup_free_ BrCostPart *parts = NULL;
    size_t np = 0, cap = 0, k = 0;
    const BrCostEvent *cur = NULL;

    /* The last event at or before t0 says what held at t0. */
    while (k < n && ev[k].at_ms <= t0)
        cur = &ev[k++];
    for (int64_t a = t0; a < t1;) {
        int64_t b =
            br_pricing_next_change(p, trial, a, k < n && ev[k].at_ms < t1 ? ev[k].at_ms : t1);
        BrCostPart x = {.from_ms = a, .to_ms = b};

        held(cur, &x.vcpus, &x.memory_mib, &x.disk_gib);
        x.rate = br_pricing_rate(p, trial, image, a);
        if (x.vcpus || x.memory_mib || x.disk_gib) {
            BrCostPart *last = np ? &parts[np - 1] : NULL;
            if (last && last->to_ms == a && last->vcpus == x.vcpus &&
                last->memory_mib == x.memory_mib && last->disk_gib == x.disk_gib &&
                last->rate.entry == x.rate.entry) {
                last->to_ms = b;
            } else {
                if (np == cap) {
                    size_t ncap = cap ? cap * 2 : 4;
                    BrCostPart *q = realloc(parts, ncap * sizeof(*parts));
                    if (!q)
                        return -ENOMEM;
                    parts = q;
                    cap = ncap;
                }
                parts[np++] = x;
            }
        }
        a = b;
        while (k < n && ev[k].at_ms <= a)
            cur = &ev[k++];
    }
    for (size_t i = 0; i < np; i++)
        part_price(&parts[i], month_ms);
    *ret = TAKE_PTR(parts);
    *ret_n = np;
    return 0;
}

int64_t br_cost_monthly_fen(const BrPricingPolicy *p, bool trial, const char *image, int64_t at_ms,
                            int64_t vcpus, int64_t memory_mib)
{
    BrRate r = br_pricing_rate(p, trial, image, at_ms);
    int64_t ms = p->hours_per_month * HOUR_MS;
    return br_money_fen(r.vcpu_hour, vcpus, ms, HOUR_MS) +
           br_money_fen(r.memory_gib_hour, memory_mib, ms, HOUR_MS * 1024);
}

void br_cost_instances_free(BrCostInstance *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++) {
        free(v[i].name);
        free(v[i].image);
        free(v[i].system);
        free(v[i].department_code);
        free(v[i].department);
        free(v[i].ev);
    }
    free(v);
}

/* ---- the statement ---- */

typedef struct {
    int64_t compute, memory, disk;
} Sum;

static void sum_add(Sum *s, const Sum *x)
{
    s->compute += x->compute;
    s->memory += x->memory;
    s->disk += x->disk;
}

static void add_money(json_object *o, const Sum *s)
{
    int64_t total = s->compute + s->memory + s->disk;
    json_object_object_add(o, "compute_fen", json_object_new_int64(s->compute));
    json_object_object_add(o, "memory_fen", json_object_new_int64(s->memory));
    json_object_object_add(o, "disk_fen", json_object_new_int64(s->disk));
    json_object_object_add(o, "total_fen", json_object_new_int64(total));
    json_object_object_add(o, "total", br_money_json(total));
}

/* @units millionths as a number with the decimals it needs (at most 6): a price in yuan
 * from micro-yuan, hours from ms / 3.6. */
static json_object *millionths_json(int64_t units)
{
    char s[40];
    int len = snprintf(s, sizeof(s), "%lld.%06lld", (long long)(units / 1000000),
                       (long long)(units % 1000000));
    while (len > 2 && s[len - 1] == '0' && s[len - 2] != '.')
        s[--len] = 0;
    return json_object_new_double_s((double)units / 1e6, s);
}

static json_object *iso_json(int64_t ms)
{
    char at[CM_TIME_ISO_LEN + 1];
    cm_time_iso(ms, at);
    return json_object_new_string(at);
}

static json_object *part_json(const BrCostPart *x, Sum *s)
{
    json_object *o = json_object_new_object(), *rates = json_object_new_object();

    *s = (Sum){x->compute_fen, x->memory_fen, x->disk_fen};
    json_object_object_add(o, "from", iso_json(x->from_ms));
    json_object_object_add(o, "to", iso_json(x->to_ms));
    json_object_object_add(o, "hours",
                           millionths_json((x->to_ms - x->from_ms) * 1000000 / HOUR_MS));
    json_object_object_add(o, "vcpus", json_object_new_int64(x->vcpus));
    json_object_object_add(o, "memory_mib", json_object_new_int64(x->memory_mib));
    json_object_object_add(o, "disk_gib", json_object_new_int64(x->disk_gib));
    json_object_object_add(o, "price_from",
                           cm_json_new_string_or_null(x->rate.entry ? x->rate.entry->from : NULL));
    json_object_object_add(rates, "vcpu_hour", millionths_json(x->rate.vcpu_hour));
    json_object_object_add(rates, "memory_gib_hour", millionths_json(x->rate.memory_gib_hour));
    json_object_object_add(rates, "disk_gib_month", millionths_json(x->rate.disk_gib_month));
    json_object_object_add(o, "rates", rates);
    add_money(o, s);
    return o;
}

/* One level of the statement being built: its object, its children, its sums. */
typedef struct {
    json_object *obj, *children;
    Sum sum;
} Level;

/* Closes @l: its money, then its children under @key, appended to @parent's children. */
static void level_close(Level *l, const char *key, Level *parent)
{
    if (!l->obj)
        return;
    add_money(l->obj, &l->sum);
    json_object_object_add(l->obj, key, l->children);
    json_object_array_add(parent->children, l->obj);
    sum_add(&parent->sum, &l->sum);
    *l = (Level){0};
}

static void level_open(Level *l, json_object *obj)
{
    *l = (Level){obj, json_object_new_array(), {0}};
}

int br_cost_statement(const BrPricingPolicy *p, const BrCostInstance *v, size_t n, int64_t m0,
                      int64_t m1, int64_t t1, json_object **ret)
{
    _cleanup_json_ json_object *doc = json_object_new_object();
    Level top = {NULL, json_object_new_array(), {0}}, dep = {0}, sys = {0}, alloc = {0};
    Sum purpose[2] = {{0}}; /* production, trial */
    char month[8];

    {
        char at[CM_TIME_ISO_LEN + 1];
        cm_time_iso(m0, at);
        snprintf(month, sizeof(month), "%.7s", at);
    }
    for (size_t i = 0; i < n; i++) {
        const BrCostInstance *x = &v[i];
        _cleanup_free_ BrCostPart *parts = NULL;
        size_t np = 0;
        int r = br_cost_parts(p, x->trial, x->image, x->ev, x->n_ev, m0, t1, m1 - m0, &parts, &np);
        if (r < 0) {
            json_object_put(top.children);
            return r;
        }
        if (np == 0)
            continue;
        if (dep.obj && cm_json_get_int(dep.obj, "id", 0) != x->department_id) {
            level_close(&alloc, "instances", &sys);
            level_close(&sys, "allocations", &dep);
            level_close(&dep, "systems", &top);
        }
        if (sys.obj && cm_json_get_int(sys.obj, "id", 0) != x->system_id) {
            level_close(&alloc, "instances", &sys);
            level_close(&sys, "allocations", &dep);
        }
        if (alloc.obj && cm_json_get_int(alloc.obj, "id", 0) != x->allocation_id)
            level_close(&alloc, "instances", &sys);
        if (!dep.obj) {
            level_open(&dep, json_object_new_object());
            json_object_object_add(dep.obj, "id", json_object_new_int64(x->department_id));
            json_object_object_add(dep.obj, "code", json_object_new_string(x->department_code));
            json_object_object_add(dep.obj, "name", json_object_new_string(x->department));
        }
        if (!sys.obj) {
            level_open(&sys, json_object_new_object());
            json_object_object_add(sys.obj, "id", json_object_new_int64(x->system_id));
            json_object_object_add(sys.obj, "name", json_object_new_string(x->system));
        }
        if (!alloc.obj) {
            level_open(&alloc, json_object_new_object());
            json_object_object_add(alloc.obj, "id", json_object_new_int64(x->allocation_id));
            json_object_object_add(alloc.obj, "purpose",
                                   json_object_new_string(x->trial ? "trial" : "production"));
        }
        Level inst;
        level_open(&inst, json_object_new_object());
        json_object_object_add(inst.obj, "id", json_object_new_int64(x->instance_id));
        json_object_object_add(inst.obj, "name", json_object_new_string(x->name));
        json_object_object_add(inst.obj, "image", json_object_new_string(x->image));
        for (size_t k = 0; k < np; k++) {
            Sum s;
            json_object_array_add(inst.children, part_json(&parts[k], &s));
            sum_add(&inst.sum, &s);
        }
        sum_add(&purpose[x->trial ? 1 : 0], &inst.sum);
        level_close(&inst, "parts", &alloc);
    }
    level_close(&alloc, "instances", &sys);
    level_close(&sys, "allocations", &dep);
    level_close(&dep, "systems", &top);

    json_object_object_add(doc, "report", json_object_new_string("cost_statement"));
    json_object_object_add(doc, "month", json_object_new_string(month));
    json_object_object_add(doc, "from", iso_json(m0));
    json_object_object_add(doc, "to", iso_json(t1));
    json_object_object_add(doc, "complete", json_object_new_boolean(t1 >= m1));
    json_object_object_add(doc, "currency", json_object_new_string(p->currency));
    json_object_object_add(doc, "departments", top.children);
    {
        json_object *total = json_object_new_object();
        add_money(total, &top.sum);
        json_object_object_add(doc, "total", total);
    }
    {
        /* The total split by the allocations' purpose: the two add up to it. */
        json_object *by = json_object_new_object(), *o = json_object_new_object();
        add_money(o, &purpose[0]);
        json_object_object_add(by, "production", o);
        o = json_object_new_object();
        add_money(o, &purpose[1]);
        json_object_object_add(by, "trial", o);
        json_object_object_add(doc, "purposes", by);
    }
    *ret = TAKE_PTR(doc);
    return 0;
}
