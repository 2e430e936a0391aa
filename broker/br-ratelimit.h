/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdint.h>

/*
 * The arithmetic of the sign-in limits: failures counted in a window; reaching the limit
 * locks the key (an account name, an address) for a while; the lock expires by itself.
 * Pure, so it is tested without a clock or a database; br-session.c keeps the state.
 */
typedef struct {
    int64_t failures;        /* in the current window */
    int64_t window_start_ms; /* when the current window began */
    int64_t locked_until_ms; /* 0, or when the lock ends */
} BrLimitState;

typedef struct {
    int64_t max_failures; /* failures within window_ms that lock */
    int64_t window_ms;
    int64_t lockout_ms;
} BrLimitRule;

/** br_limit_remaining: Returns: the milliseconds left of @s's lock at @now_ms, 0 when none. */
int64_t br_limit_remaining(const BrLimitState *s, int64_t now_ms);

/**
 * br_limit_fail:
 * Counts one failure at @now_ms: a window that is over (or a lock that ended) starts again;
 * the failure that reaches @rule's limit locks for rule->lockout_ms and starts a new count.
 * Returns: the milliseconds of the lock that starts now, or 0.
 */
int64_t br_limit_fail(BrLimitState *s, const BrLimitRule *rule, int64_t now_ms);
