/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Which job works on which host: the rule of the job engine, kept pure (no threads, no
 * database, no libvirt) so that it is tested alone. The caller (br-jobs.c) serializes the calls
 * with its own mutex.
 *
 * The rule, and why:
 * - A job takes every host its remaining steps act on, all at once, or none (no job ever holds
 *   one host while it waits for another, so no two jobs can wait for each other: no deadlock).
 * - A job that cannot have them all records what it wants. A host wanted by an older job
 *   (a smaller id: jobs are numbered in the order they were made) is not given to a younger
 *   one even when it is free, so the oldest waiting job only ever waits for jobs that hold
 *   their hosts and run, and gets its hosts when they end: no job starves.
 * - The table lives in memory only. After a crash nobody holds anything and every unfinished
 *   job takes its hosts again; its steps are idempotent, so nothing on a host depends on a lock
 *   having survived.
 * A wish that is not renewed within BR_HOST_LOCKS_WAIT_TTL_MS lapses, so a job that stopped
 * asking (its worker busy elsewhere, a database error) cannot keep a host from the others.
 */

#define BR_HOST_LOCKS_WAIT_TTL_MS 60000

typedef struct {
    int64_t host_id, job_id;
    int64_t seen_ms; /* for wishes: when the job last asked */
} BrHostLockEntry;

typedef struct {
    BrHostLockEntry *held;
    size_t n_held, cap_held;
    BrHostLockEntry *wanted;
    size_t n_wanted, cap_wanted;
} BrHostLocks;

/**
 * br_host_locks_acquire:
 * Makes @job_id hold exactly the @n hosts of @hosts (duplicates allowed), if none of them is
 * held by another job or wanted by an older one. Otherwise @job_id holds nothing afterwards
 * (what it held is released) and its wish for @hosts is recorded at @now_ms.
 * Returns: 1 when @job_id now holds them, 0 when it must wait, -ENOMEM (holding nothing).
 */
int br_host_locks_acquire(BrHostLocks *t, int64_t job_id, const int64_t *hosts, size_t n,
                          int64_t now_ms);

/**
 * br_host_locks_must_wait:
 * For the job engine's choice of the next job to run: does @job_id wait for hosts it still
 * cannot have? A job that waits has its wish renewed at @now_ms, so a wish lapses only once
 * nobody asks on the job's behalf any more.
 * Returns: true while @job_id's recorded wish cannot be granted; false when it has none or it
 * could be granted now.
 */
bool br_host_locks_must_wait(BrHostLocks *t, int64_t job_id, int64_t now_ms);

/** br_host_locks_release: @job_id holds and wants nothing any more. */
void br_host_locks_release(BrHostLocks *t, int64_t job_id);

/** br_host_locks_holds: Returns: true when @job_id holds @host_id. */
bool br_host_locks_holds(const BrHostLocks *t, int64_t job_id, int64_t host_id);

/** br_host_locks_holder: Returns: the job that holds @host_id, or 0. */
int64_t br_host_locks_holder(const BrHostLocks *t, int64_t host_id);

/** br_host_locks_clear: frees the table's memory and empties it. */
void br_host_locks_clear(BrHostLocks *t);
