/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "cm-log.h"
#include "cm-worker.h"

#define MAX_THREADS 64

struct CmWorker {
    CmWorkerConfig config;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    uint64_t wakes; /* bumped by every wake: a thread sleeps until it changes or time is up */
    atomic_bool stopping;
    unsigned n_threads;
    pthread_t threads[MAX_THREADS];
};

typedef struct {
    CmWorkerGate gate;
    void *ctx;
} Gate;

static _Atomic(const Gate *) gate_now;

void cm_worker_set_gate(CmWorkerGate gate, void *ctx)
{
    static Gate gates[2];
    static unsigned which;
    Gate *g = NULL;

    /* Two slots, so that a loop reading the old one meanwhile still reads a whole gate. */
    if (gate) {
        g = &gates[which++ % 2];
        *g = (Gate){gate, ctx};
    }
    atomic_store(&gate_now, g);
}

static void deadline_after(struct timespec *ts, int64_t ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (ms % 1000) * 1000000;
    if (ts->tv_nsec >= 1000000000) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000;
    }
}

/*
 * Sleeps @ms (forever when < 0) or until the stop, or a wake since the thread last saw
 * *@seen: a wake that comes while a pass runs is not lost, the next sleep ends at once.
 */
static void worker_sleep(CmWorker *w, int64_t ms, uint64_t *seen)
{
    struct timespec ts;

    if (ms > 0)
        deadline_after(&ts, ms);
    pthread_mutex_lock(&w->lock);
    while (ms != 0 && !atomic_load(&w->stopping) && w->wakes == *seen)
        if (ms < 0)
            pthread_cond_wait(&w->cond, &w->lock);
        else if (pthread_cond_timedwait(&w->cond, &w->lock, &ts) == ETIMEDOUT)
            break;
    *seen = w->wakes;
    pthread_mutex_unlock(&w->lock);
}

static void *worker_thread(void *arg)
{
    CmWorker *w = arg;
    int64_t ms = w->config.first_delay_ms;
    uint64_t seen = 0;

    for (;;) {
        worker_sleep(w, ms, &seen);
        if (atomic_load(&w->stopping))
            break;
        const Gate *g = atomic_load(&gate_now);
        if (g && !g->gate(g->ctx, w->config.name)) {
            ms = CM_WORKER_GATE_RECHECK_MS;
            continue;
        }
        ms = w->config.run(w->config.ctx);
    }
    return NULL;
}

int cm_worker_start(const CmWorkerConfig *config, CmWorker **ret, CmError *err)
{
    CmWorker *w = calloc(1, sizeof(*w));
    pthread_condattr_t attr;
    unsigned n = config->threads ? config->threads : 1;

    if (!w)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    if (n > MAX_THREADS)
        n = MAX_THREADS;
    w->config = *config;
    pthread_mutex_init(&w->lock, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cond, &attr);
    pthread_condattr_destroy(&attr);
    for (; w->n_threads < n; w->n_threads++)
        if (pthread_create(&w->threads[w->n_threads], NULL, worker_thread, w) != 0) {
            cm_worker_stop(w);
            return cm_error_set(err, CM_ERROR_INTERNAL, "", "cannot start the %s thread",
                                config->name);
        }
    *ret = w;
    return 0;
}

void cm_worker_wake(CmWorker *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->lock);
    w->wakes++;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

bool cm_worker_stopping(CmWorker *w)
{
    return atomic_load(&w->stopping);
}

CmWorker *cm_worker_stop(CmWorker *w)
{
    if (!w)
        return NULL;
    pthread_mutex_lock(&w->lock);
    atomic_store(&w->stopping, true);
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->lock);
    for (unsigned i = 0; i < w->n_threads; i++)
        pthread_join(w->threads[i], NULL);
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->cond);
    free(w);
    return NULL;
}
