/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "cm-error.h"

/*
 * A background loop: one or more threads that each call run() over and over, sleeping between
 * passes for as long as run() asked, until woken early or stopped. Every loop of the daemons
 * (jobs, sweeper, reconciler, rollups, assessment, host connections, the agent's delivery) is
 * one of these, so start, wake and stop are written once.
 */
typedef struct CmWorker CmWorker;

typedef struct {
    const char *name;       /* for the log */
    unsigned threads;       /* how many threads run the loop; 1 when 0 */
    int64_t first_delay_ms; /* before the first pass */
    /* One pass. Returns: the milliseconds to sleep before the next pass (< 0: forever, until
     * cm_worker_wake()). Called without any lock of the worker's held. */
    int64_t (*run)(void *ctx);
    void *ctx;
} CmWorkerConfig;

/*
 * The gate every loop asks before each pass: a process-wide hook, so that a loop that must run
 * on one process of several (the broker's elected loops, br-cluster.h) is held back by name
 * without its module knowing. A pass the gate refuses is skipped, and the gate is asked again
 * after CM_WORKER_GATE_RECHECK_MS or a wake.
 * Returns (the gate): true when the loop @name may run a pass now.
 */
typedef bool (*CmWorkerGate)(void *ctx, const char *name);
#define CM_WORKER_GATE_RECHECK_MS 1000

/**
 * cm_worker_set_gate:
 * Installs @gate (NULL: none) for every loop of the process. Set it before the loops it gates
 * start and clear it after they stopped.
 */
void cm_worker_set_gate(CmWorkerGate gate, void *ctx);

/**
 * cm_worker_start:
 * Starts the threads. Returns: 0 and the worker in @ret, or a negative errno with @err set
 * (no thread left running).
 */
int cm_worker_start(const CmWorkerConfig *config, CmWorker **ret, CmError *err);

/** cm_worker_wake: ends the current sleep of every thread: they run a pass now. */
void cm_worker_wake(CmWorker *w);

/** cm_worker_stopping: Returns: true once cm_worker_stop() was called (for long passes). */
bool cm_worker_stopping(CmWorker *w);

/**
 * cm_worker_stop:
 * Asks the threads to stop, waits for the pass under way to end, joins and frees. Accepts
 * NULL. Returns: NULL.
 */
CmWorker *cm_worker_stop(CmWorker *w);
CM_DEFINE_TRIVIAL_CLEANUP_FUNC(CmWorker *, cm_worker_stop)
