/* SPDX-License-Identifier: Apache-2.0 */
/* The job engine's host locks: all of a job's hosts at once, oldest job first (br-hostlock.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "br-hostlock.h"

static int reserve(BrHostLockEntry **list, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t ncap = *cap ? *cap : 16;
    while (ncap < need)
        ncap *= 2;
    BrHostLockEntry *n = realloc(*list, ncap * sizeof(*n));
    if (!n)
        return -ENOMEM;
    *list = n;
    *cap = ncap;
    return 0;
}

/* Removes the entries of @job_id (any job when @job_id is 0 and @older_than_ms is set). */
static void drop(BrHostLockEntry *list, size_t *n, int64_t job_id, int64_t older_than_ms)
{
    for (size_t i = 0; i < *n;) {
        bool gone = job_id ? list[i].job_id == job_id : list[i].seen_ms < older_than_ms;
        if (gone)
            list[i] = list[--*n];
        else
            i++;
    }
}

static bool seen_before(const int64_t *hosts, size_t i)
{
    for (size_t k = 0; k < i; k++)
        if (hosts[k] == hosts[i])
            return true;
    return false;
}

int64_t br_host_locks_holder(const BrHostLocks *t, int64_t host_id)
{
    for (size_t i = 0; i < t->n_held; i++)
        if (t->held[i].host_id == host_id)
            return t->held[i].job_id;
    return 0;
}

bool br_host_locks_holds(const BrHostLocks *t, int64_t job_id, int64_t host_id)
{
    return br_host_locks_holder(t, host_id) == job_id && job_id != 0;
}

/* May @job_id have @host_id now? Not while another job holds it or an older job waits for it. */
static bool free_for(const BrHostLocks *t, int64_t job_id, int64_t host_id)
{
    int64_t holder = br_host_locks_holder(t, host_id);
    if (holder && holder != job_id)
        return false;
    for (size_t i = 0; i < t->n_wanted; i++)
        if (t->wanted[i].host_id == host_id && t->wanted[i].job_id < job_id)
            return false;
    return true;
}

int br_host_locks_acquire(BrHostLocks *t, int64_t job_id, const int64_t *hosts, size_t n,
                          int64_t now_ms)
{
    bool all = true;

    drop(t->wanted, &t->n_wanted, 0, now_ms - BR_HOST_LOCKS_WAIT_TTL_MS);
    for (size_t i = 0; i < n && all; i++)
        all = free_for(t, job_id, hosts[i]);

    /* Whatever happens next, the job holds nothing but what it is given below: never one host
     * while waiting for another. */
    drop(t->held, &t->n_held, job_id, 0);
    if (all) {
        if (reserve(&t->held, &t->cap_held, t->n_held + n) < 0) {
            drop(t->wanted, &t->n_wanted, job_id, 0);
            return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++)
            if (!seen_before(hosts, i))
                t->held[t->n_held++] = (BrHostLockEntry){hosts[i], job_id, now_ms};
        drop(t->wanted, &t->n_wanted, job_id, 0);
        return 1;
    }
    drop(t->wanted, &t->n_wanted, job_id, 0);
    if (reserve(&t->wanted, &t->cap_wanted, t->n_wanted + n) < 0)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++)
        if (!seen_before(hosts, i))
            t->wanted[t->n_wanted++] = (BrHostLockEntry){hosts[i], job_id, now_ms};
    return 0;
}

bool br_host_locks_must_wait(BrHostLocks *t, int64_t job_id, int64_t now_ms)
{
    bool blocked = false;
    for (size_t i = 0; i < t->n_wanted && !blocked; i++)
        if (t->wanted[i].job_id == job_id && !free_for(t, job_id, t->wanted[i].host_id))
            blocked = true;
    for (size_t i = 0; i < t->n_wanted && blocked; i++)
        if (t->wanted[i].job_id == job_id)
            t->wanted[i].seen_ms = now_ms;
    return blocked;
}

void br_host_locks_release(BrHostLocks *t, int64_t job_id)
{
    drop(t->held, &t->n_held, job_id, 0);
    drop(t->wanted, &t->n_wanted, job_id, 0);
}

void br_host_locks_clear(BrHostLocks *t)
{
    free(t->held);
    free(t->wanted);
    memset(t, 0, sizeof(*t));
}
