/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Tiered collection, without libvirt or clocks (and so tested alone). The cheap groups (state,
 * cpu-total, interface) are read for every domain every interval. The groups that make libvirt
 * ask QEMU over its monitor (balloon, block) are read every slow interval, and a domain's slow
 * reading falls on its own slot: slot s of k = slow / interval is read on the ticks
 * (wall / interval) with tick mod k = s, so each cycle asks about 1/k of the domains' QEMUs.
 * Slots are given out least-loaded first, so the slots stay even as domains come and go.
 *
 * The cycle budget: a cycle that overran its interval makes the next one shed every slow
 * reading; otherwise a cycle reads only as many of its due domains as the time left in the
 * budget (80 % of the interval) lets it, at the slow part's learned cost per domain. The CPU
 * readings are never shed.
 */

/* The timing of the meters: seconds; window a multiple of slow_interval, slow_interval a
 * multiple of interval. slow_interval == interval: every group every cycle (tiers off). */
typedef struct {
    int64_t window, interval, slow_interval;
} AgTiming;

/**
 * ag_tier_slow_default:
 * The slow interval when none is configured: 60 s when that fits (a multiple of @interval
 * that divides @window); otherwise the largest multiple of @interval up to 60 s that divides
 * @window, and at least @interval. Returns: seconds.
 */
int64_t ag_tier_slow_default(int64_t interval, int64_t window);

/**
 * ag_tier_check:
 * Whether @slow fits @interval and @window: a multiple of the interval, at most 3600 s, and the
 * window a multiple of it. Returns: 0, or -EINVAL.
 */
int ag_tier_check(int64_t interval, int64_t window, int64_t slow);

/** ag_tier_slots: Returns: the number of slots, slow_interval / interval (at least 1). */
int ag_tier_slots(const AgTiming *t);

/** ag_tier_tick: Returns: the cycle's number, @wall_s / interval. */
int64_t ag_tier_tick(const AgTiming *t, int64_t wall_s);

/** ag_tier_due: Returns: whether @slot's slow reading falls on @tick (of @slots slots). */
bool ag_tier_due(int slot, int slots, int64_t tick);

/** ag_tier_hash: Returns: a stable hash of a domain's UUID (FNV-1a, 32 bits). */
uint32_t ag_tier_hash(const char *uuid);

/**
 * ag_tier_assign:
 * The slot for a domain seen for the first time: the least loaded of @load[0..@slots) (the
 * domains in each slot), ties broken from the one @hash points at onwards, so domains that
 * appear together spread over the slots. Returns: the slot, 0..@slots-1.
 */
int ag_tier_assign(const unsigned *load, int slots, uint32_t hash);

/* What the cycle does about one domain's slow groups. */
typedef enum {
    AG_TIER_SKIP, /* not its slot, or not running */
    AG_TIER_READ,
    AG_TIER_SHED, /* its slot, but the budget had no room */
} AgTierAction;

/**
 * ag_tier_count_due:
 * Returns: how many of the @n domains (slot @slot[i], running @running[i]) are due on @tick.
 */
size_t ag_tier_count_due(const int *slot, const bool *running, size_t n, int slots, int64_t tick);

/**
 * ag_tier_plan:
 * Fills @ret_action[0..@n): the due domains are read, at most @allow of them, the rest shed.
 * Which ones are shed turns with the tick, so a budget that stays short does not starve the
 * same domains every time. Returns: the number marked AG_TIER_READ.
 */
size_t ag_tier_plan(const int *slot, const bool *running, size_t n, int slots, int64_t tick,
                    size_t allow, AgTierAction *ret_action);

/* The cycle budget's memory between cycles. */
typedef struct {
    int64_t interval_ns;
    double slow_ns_per_domain; /* learned cost of the slow part per domain read; 0: unknown */
    bool overran;              /* the last cycle took longer than the interval */
} AgBudget;

/** ag_budget_init: a budget for cycles every @interval_s seconds. */
void ag_budget_init(AgBudget *b, int64_t interval_s);

/**
 * ag_budget_allow:
 * Returns: how many of @n_due slow readings a cycle that has run @elapsed_ns so far may make:
 * none after a cycle that overran; all while the cost is unknown; else those that fit in what
 * is left of 80 % of the interval.
 */
size_t ag_budget_allow(const AgBudget *b, int64_t elapsed_ns, size_t n_due);

/**
 * ag_budget_update:
 * Learns from a finished cycle: its whole time @cycle_ns, and @slow_ns spent reading the slow
 * groups of @n_read domains.
 */
void ag_budget_update(AgBudget *b, int64_t cycle_ns, int64_t slow_ns, size_t n_read);
