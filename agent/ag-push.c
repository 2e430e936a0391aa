/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "ag-push.h"
#include "cm-crypto.h"
#include "cm-log.h"
#include "cm-time.h"

#define BATCH_BYTES (8 * 1024 * 1024)
#define BACKOFF_MAX 60.0

struct AgPush {
    const AgConfig *config;
    char *url;
    char *auth_header;
    AgSpool *spool;
    CURL *curl;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stopping, kicked, running;
    unsigned failures;
    AgPushStats stats;
};

typedef struct {
    char *data;
    size_t len;
} Buf;

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    Buf *b = userdata;
    size_t n = size * nmemb, keep = n;
    if (b->len + keep > 4096)
        keep = b->len < 4096 ? 4096 - b->len : 0;
    if (keep) {
        char *nd = realloc(b->data, b->len + keep + 1);
        if (!nd)
            return 0;
        b->data = nd;
        memcpy(b->data + b->len, ptr, keep);
        b->len += keep;
        b->data[b->len] = 0;
    }
    return n;
}

int ag_push_new(const AgConfig *c, const char *token, AgSpool *spool, AgPush **ret, CmError *err)
{
    AgPush *p = calloc(1, sizeof(*p));
    pthread_condattr_t attr;
    if (!p)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    p->config = c;
    p->spool = spool;
    size_t blen = strlen(c->broker);
    while (blen > 0 && c->broker[blen - 1] == '/')
        blen--;
    if (asprintf(&p->url, "%.*s/v1/samples", (int)blen, c->broker) < 0 ||
        asprintf(&p->auth_header, "Authorization: Bearer %s", token) < 0) {
        free(p);
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    }
    p->curl = curl_easy_init();
    if (!p->curl) {
        ag_push_free(p);
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "cannot initialise libcurl");
    }
    pthread_mutex_init(&p->lock, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&p->wake, &attr);
    pthread_condattr_destroy(&attr);
    *ret = p;
    return 0;
}

static const char *const kind_keys[AG_RECORD_KIND_MAX] = {"instances", "unowned", "host"};

/* {"instances":[...],"unowned":[...],"host":[...]} from the records' JSON texts. */
static char *batch_body(const AgRecord *recs, size_t n, size_t *ret_len)
{
    size_t cap = 64;
    for (size_t i = 0; i < n; i++)
        cap += strlen(recs[i].payload) + 1;
    char *out = malloc(cap), *w = out;
    if (!out)
        return NULL;
    *w++ = '{';
    bool first_kind = true;
    for (int k = 0; k < AG_RECORD_KIND_MAX; k++) {
        bool first = true;
        for (size_t i = 0; i < n; i++) {
            if ((int)recs[i].kind != k)
                continue;
            if (first) {
                w += snprintf(w, cap - (size_t)(w - out), "%s\"%s\":[", first_kind ? "" : ",",
                              kind_keys[k]);
                first = false;
                first_kind = false;
            } else {
                *w++ = ',';
            }
            size_t l = strlen(recs[i].payload);
            memcpy(w, recs[i].payload, l);
            w += l;
        }
        if (!first)
            *w++ = ']';
    }
    *w++ = '}';
    *w = 0;
    *ret_len = (size_t)(w - out);
    return out;
}

/* One POST. Returns: the HTTP status, or -1 for a network error (with @why). */
static long post(AgPush *p, const char *body, size_t len, char *why, size_t why_size)
{
    struct curl_slist *headers = NULL;
    Buf reply = {0};
    long status = -1;
    CURLcode rc;

    curl_easy_reset(p->curl);
    headers = curl_slist_append(headers, p->auth_header);
    headers = curl_slist_append(headers, "Content-Type: application/json");
    headers = curl_slist_append(headers, "Expect:");
    curl_easy_setopt(p->curl, CURLOPT_URL, p->url);
    curl_easy_setopt(p->curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(p->curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(p->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(p->curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(p->curl, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(p->curl, CURLOPT_CONNECTTIMEOUT, 5L);
    curl_easy_setopt(p->curl, CURLOPT_TIMEOUT, 60L);
    curl_easy_setopt(p->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(p->curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(p->curl, CURLOPT_WRITEDATA, &reply);
    if (p->config->ca_file)
        curl_easy_setopt(p->curl, CURLOPT_CAINFO, p->config->ca_file);
    if (p->config->pinned_public_key)
        curl_easy_setopt(p->curl, CURLOPT_PINNEDPUBLICKEY, p->config->pinned_public_key);
    rc = curl_easy_perform(p->curl);
    if (rc == CURLE_OK) {
        curl_easy_getinfo(p->curl, CURLINFO_RESPONSE_CODE, &status);
        snprintf(why, why_size, "%s", reply.data ? reply.data : "");
    } else {
        snprintf(why, why_size, "%s", curl_easy_strerror(rc));
    }
    curl_slist_free_all(headers);
    free(reply.data);
    return status;
}

static bool retryable(long status)
{
    /* 401: a token problem is the operator's to fix; the windows must wait, not be lost. */
    return status < 0 || status >= 500 || status == 429 || status == 401 || status == 408;
}

/* Sends rows [0, n); a refused batch is halved until the refused row is alone.
 * Returns: 1 when delivered or set aside, 0 to retry later. */
static int deliver(AgPush *p, int64_t *seqs, AgRecord *recs, size_t n)
{
    _cleanup_free_ char *body = NULL;
    char why[4200];
    size_t len;
    long status;
    CmError err = {0};

    body = batch_body(recs, n, &len);
    if (!body)
        return 0;
    status = post(p, body, len, why, sizeof(why));
    pthread_mutex_lock(&p->lock);
    p->stats.last_status = status;
    pthread_mutex_unlock(&p->lock);
    if (status >= 200 && status < 300) {
        if (ag_spool_ack(p->spool, seqs, n, &err) < 0) {
            cm_log_error("spool: %s", err.message);
            return 0;
        }
        pthread_mutex_lock(&p->lock);
        p->stats.batches++;
        p->stats.windows += n;
        pthread_mutex_unlock(&p->lock);
        return 1;
    }
    if (retryable(status)) {
        cm_log_warning("push of %zu window(s) failed (%ld): %s", n, status, why);
        return 0;
    }
    if (n > 1) {
        size_t half = n / 2;
        return deliver(p, seqs, recs, half) && deliver(p, seqs + half, recs + half, n - half);
    }
    cm_log_error("the broker refused a window (%ld), set aside: %s", status, why);
    if (ag_spool_reject(p->spool, seqs, 1, status, why, &err) < 0)
        return 0;
    pthread_mutex_lock(&p->lock);
    p->stats.rejected++;
    pthread_mutex_unlock(&p->lock);
    return 1;
}

/* Waits @ms, or less when @kickable and new windows arrive; a backoff is never cut short
 * (every agent's cycles fall on the same wall-clock instants: kicks would make a fleet retry
 * in step against a broker coming back). */
static void wait_ms(AgPush *p, int64_t ms, bool kickable)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&p->lock);
    while (!p->stopping && !(kickable && p->kicked))
        if (pthread_cond_timedwait(&p->wake, &p->lock, &ts) == ETIMEDOUT)
            break;
    if (kickable)
        p->kicked = false;
    pthread_mutex_unlock(&p->lock);
}

static void *push_thread(void *arg)
{
    AgPush *p = arg;
    size_t max = (size_t)p->config->batch_max;
    int64_t *seqs = calloc(max, sizeof(*seqs));
    AgRecord *recs = calloc(max, sizeof(*recs));

    while (seqs && recs) {
        CmError err = {0};
        pthread_mutex_lock(&p->lock);
        bool stop = p->stopping;
        pthread_mutex_unlock(&p->lock);
        if (stop)
            break;
        int n = ag_spool_peek(p->spool, max, BATCH_BYTES, seqs, recs, &err);
        if (n <= 0) {
            wait_ms(p, 1000, true);
            continue;
        }
        int ok = deliver(p, seqs, recs, (size_t)n);
        ag_spool_records_free(recs, (size_t)n);
        if (ok) {
            p->failures = 0;
            pthread_mutex_lock(&p->lock);
            p->stats.backoff_s = 0;
            pthread_mutex_unlock(&p->lock);
            continue; /* drain the backlog in order, without waiting */
        }
        /* Full jitter on an exponential backoff, capped at 60 s. */
        double cap = 0.5 * (double)(1u << (p->failures < 8 ? p->failures : 8));
        uint32_t rnd = 0;
        if (cap > BACKOFF_MAX)
            cap = BACKOFF_MAX;
        cm_random(&rnd, sizeof(rnd));
        double delay = cap / 2 + (cap / 2) * ((double)rnd / 4294967295.0);
        p->failures++;
        pthread_mutex_lock(&p->lock);
        p->stats.failures++;
        p->stats.backoff_s = delay;
        pthread_mutex_unlock(&p->lock);
        wait_ms(p, (int64_t)(delay * 1000), false);
    }
    free(seqs);
    free(recs);
    return NULL;
}

int ag_push_start(AgPush *p)
{
    if (pthread_create(&p->thread, NULL, push_thread, p) != 0)
        return -EAGAIN;
    p->running = true;
    return 0;
}

void ag_push_stop(AgPush *p)
{
    if (!p || !p->running)
        return;
    pthread_mutex_lock(&p->lock);
    p->stopping = true;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    pthread_join(p->thread, NULL);
    p->running = false;
}

void ag_push_kick(AgPush *p)
{
    pthread_mutex_lock(&p->lock);
    p->kicked = true;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
}

void ag_push_stats(AgPush *p, AgPushStats *ret)
{
    pthread_mutex_lock(&p->lock);
    *ret = p->stats;
    pthread_mutex_unlock(&p->lock);
}

AgPush *ag_push_free(AgPush *p)
{
    if (!p)
        return NULL;
    ag_push_stop(p);
    if (p->curl)
        curl_easy_cleanup(p->curl);
    if (p->auth_header)
        explicit_bzero(p->auth_header, strlen(p->auth_header));
    free(p->auth_header);
    free(p->url);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->wake);
    free(p);
    return NULL;
}
