/* SPDX-License-Identifier: Apache-2.0 */
#include "br-ratelimit.h"

int64_t br_limit_remaining(const BrLimitState *s, int64_t now_ms)
{
    return s->locked_until_ms > now_ms ? s->locked_until_ms - now_ms : 0;
}

int64_t br_limit_fail(BrLimitState *s, const BrLimitRule *rule, int64_t now_ms)
{
    if (br_limit_remaining(s, now_ms) > 0)
        return 0; /* already locked: the lock is not lengthened by more tries */
    if (s->locked_until_ms || now_ms - s->window_start_ms >= rule->window_ms ||
        now_ms < s->window_start_ms) {
        s->failures = 0;
        s->window_start_ms = now_ms;
        s->locked_until_ms = 0;
    }
    s->failures++;
    if (rule->max_failures > 0 && s->failures >= rule->max_failures) {
        s->locked_until_ms = now_ms + rule->lockout_ms;
        s->failures = 0;
        s->window_start_ms = s->locked_until_ms;
        return rule->lockout_ms;
    }
    return 0;
}
