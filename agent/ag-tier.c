/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>

#include "ag-tier.h"

#define SLOW_DEFAULT 60
#define BUDGET_SHARE 0.8

int64_t ag_tier_slow_default(int64_t interval, int64_t window)
{
    int64_t best = interval;
    if (interval < 1 || window < interval)
        return interval;
    for (int64_t s = interval; s <= SLOW_DEFAULT; s += interval)
        if (window % s == 0)
            best = s;
    return best;
}

int ag_tier_check(int64_t interval, int64_t window, int64_t slow)
{
    if (interval < 1 || slow < interval || slow > 3600 || slow % interval != 0 ||
        window % slow != 0)
        return -EINVAL;
    return 0;
}

int ag_tier_slots(const AgTiming *t)
{
    int64_t k = t->interval > 0 ? t->slow_interval / t->interval : 1;
    return k < 1 ? 1 : (int)k;
}

int64_t ag_tier_tick(const AgTiming *t, int64_t wall_s)
{
    return t->interval > 0 ? wall_s / t->interval : wall_s;
}

bool ag_tier_due(int slot, int slots, int64_t tick)
{
    if (slots <= 1)
        return true;
    return tick % slots == slot;
}

uint32_t ag_tier_hash(const char *uuid)
{
    uint32_t h = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)uuid; *p; p++) {
        h ^= *p;
        h *= 16777619u;
    }
    return h;
}

int ag_tier_assign(const unsigned *load, int slots, uint32_t hash)
{
    int best = -1;
    if (slots <= 1)
        return 0;
    for (int i = 0; i < slots; i++) {
        int s = (int)((hash + (uint32_t)i) % (uint32_t)slots);
        if (best < 0 || load[s] < load[best])
            best = s;
    }
    return best;
}

size_t ag_tier_count_due(const int *slot, const bool *running, size_t n, int slots, int64_t tick)
{
    size_t due = 0;
    for (size_t i = 0; i < n; i++)
        if (running[i] && ag_tier_due(slot[i], slots, tick))
            due++;
    return due;
}

size_t ag_tier_plan(const int *slot, const bool *running, size_t n, int slots, int64_t tick,
                    size_t allow, AgTierAction *ret_action)
{
    size_t due = ag_tier_count_due(slot, running, n, slots, tick), k = 0, read = 0;
    /* The due domains in a ring starting at a place that moves each time the slot comes
     * round: the first @allow of the ring are read. */
    size_t first = due ? (size_t)((tick / (slots > 0 ? slots : 1)) % (int64_t)due) : 0;

    for (size_t i = 0; i < n; i++) {
        if (!running[i] || !ag_tier_due(slot[i], slots, tick)) {
            ret_action[i] = AG_TIER_SKIP;
            continue;
        }
        size_t pos = (k + due - first) % due;
        k++;
        if (pos < allow) {
            ret_action[i] = AG_TIER_READ;
            read++;
        } else {
            ret_action[i] = AG_TIER_SHED;
        }
    }
    return read;
}

void ag_budget_init(AgBudget *b, int64_t interval_s)
{
    b->interval_ns = interval_s * INT64_C(1000000000);
    b->slow_ns_per_domain = 0;
    b->overran = false;
}

size_t ag_budget_allow(const AgBudget *b, int64_t elapsed_ns, size_t n_due)
{
    double left;
    if (b->overran)
        return 0;
    if (b->slow_ns_per_domain <= 0)
        return n_due;
    left = (double)b->interval_ns * BUDGET_SHARE - (double)elapsed_ns;
    if (left <= 0)
        return 0;
    double fit = left / b->slow_ns_per_domain;
    return fit >= (double)n_due ? n_due : (size_t)fit;
}

void ag_budget_update(AgBudget *b, int64_t cycle_ns, int64_t slow_ns, size_t n_read)
{
    b->overran = cycle_ns > b->interval_ns;
    if (n_read > 0 && slow_ns >= 0) {
        double per = (double)slow_ns / (double)n_read;
        /* A moving average: one slow cycle (a QEMU that answered late) does not shed the
         * next few on its own. */
        b->slow_ns_per_domain =
            b->slow_ns_per_domain > 0 ? 0.7 * b->slow_ns_per_domain + 0.3 * per : per;
    }
}
