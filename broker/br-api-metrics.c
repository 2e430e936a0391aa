/* SPDX-License-Identifier: Apache-2.0 */
/* GET /metrics: the broker's counters in the Prometheus text format. */
#include <stdio.h>
#include <stdlib.h>

#include "br-api.h"
#include "br-cluster.h"
#include "br-daemon.h"
#include "br-hosts.h"
#include "br-http.h"
#include "br-jobs.h"
#include "br-metering.h"
#include "br-reconciler.h"
#include "cm-util.h"

static int br_api_metrics(BrCall *c)
{
    const BrHttpCounters *k = br_http_counters();
    uint64_t events[BR_EVENT_KIND_MAX], done = 0, failed = 0, reconnects = 0;
    unsigned hosts = 0, connected = 0;
    char *text = NULL, *head = NULL;

    uint64_t stored = 0, duplicates = 0;
    br_metering_counts(&stored, &duplicates);
    br_reconciler_counts(c->d->reconciler, events);
    br_jobs_counts(c->d->jobs, &done, &failed);
    if (c->d->hosts)
        br_hosts_counts(c->d->hosts, &hosts, &connected, &reconnects);
    if (asprintf(&head,
                 "# HELP cloudbroker_http_requests_total HTTP requests received.\n"
                 "# TYPE cloudbroker_http_requests_total counter\n"
                 "cloudbroker_http_requests_total %llu\n"
                 "# HELP cloudbroker_http_responses_total HTTP responses by status class.\n"
                 "# TYPE cloudbroker_http_responses_total counter\n"
                 "cloudbroker_http_responses_total{class=\"2xx\"} %llu\n"
                 "cloudbroker_http_responses_total{class=\"4xx\"} %llu\n"
                 "cloudbroker_http_responses_total{class=\"5xx\"} %llu\n"
                 "# HELP cloudbroker_hosts Hypervisor hosts registered.\n"
                 "# TYPE cloudbroker_hosts gauge\n"
                 "cloudbroker_hosts %u\n"
                 "# HELP cloudbroker_hosts_connected Hosts with a live libvirt connection.\n"
                 "# TYPE cloudbroker_hosts_connected gauge\n"
                 "cloudbroker_hosts_connected %u\n"
                 "# HELP cloudbroker_host_connects_total libvirt connections opened.\n"
                 "# TYPE cloudbroker_host_connects_total counter\n"
                 "cloudbroker_host_connects_total %llu\n"
                 "# HELP cloudbroker_jobs_finished_total Jobs ended since start, by outcome.\n"
                 "# TYPE cloudbroker_jobs_finished_total counter\n"
                 "cloudbroker_jobs_finished_total{outcome=\"done\"} %llu\n"
                 "cloudbroker_jobs_finished_total{outcome=\"error\"} %llu\n"
                 "# HELP cloudbroker_samples_stored_total Metering windows stored since start.\n"
                 "# TYPE cloudbroker_samples_stored_total counter\n"
                 "cloudbroker_samples_stored_total %llu\n"
                 "# HELP cloudbroker_samples_duplicate_total Windows received again (at-least-once "
                 "delivery) and not stored twice.\n"
                 "# TYPE cloudbroker_samples_duplicate_total counter\n"
                 "cloudbroker_samples_duplicate_total %llu\n"
                 "# HELP cloudbroker_reconciler_events_total Reconciler events opened since "
                 "start.\n"
                 "# TYPE cloudbroker_reconciler_events_total counter\n",
                 k ? (unsigned long long)k->requests : 0ULL,
                 k ? (unsigned long long)k->status_2xx : 0ULL,
                 k ? (unsigned long long)k->status_4xx : 0ULL,
                 k ? (unsigned long long)k->status_5xx : 0ULL, hosts, connected,
                 (unsigned long long)reconnects, (unsigned long long)done,
                 (unsigned long long)failed, (unsigned long long)stored,
                 (unsigned long long)duplicates) < 0)
        return cm_error_set(&c->err, CM_ERROR_INTERNAL, "", "out of memory");
    text = head;
    for (int i = 0; i < BR_EVENT_KIND_MAX; i++) {
        char *next = NULL;
        if (asprintf(&next, "%scloudbroker_reconciler_events_total{kind=\"%s\"} %llu\n", text,
                     br_event_kind_to_string((BrEventKind)i), (unsigned long long)events[i]) < 0) {
            free(text);
            return cm_error_set(&c->err, CM_ERROR_INTERNAL, "", "out of memory");
        }
        free(text);
        text = next;
    }
    uint64_t overlapping = 0, unowned_dropped = 0;
    char *more = NULL;
    br_metering_refusals(&overlapping, &unowned_dropped);
    /* What hostile or broken clients met: the limits of br-http.c and of metering's ingest. */
    if (asprintf(&more,
                 "%s"
                 "# HELP cloudbroker_http_connections_open Client connections open.\n"
                 "# TYPE cloudbroker_http_connections_open gauge\n"
                 "cloudbroker_http_connections_open %llu\n"
                 "# HELP cloudbroker_http_connections_total Client connections, by what became "
                 "of them.\n"
                 "# TYPE cloudbroker_http_connections_total counter\n"
                 "cloudbroker_http_connections_total{outcome=\"accepted\"} %llu\n"
                 "cloudbroker_http_connections_total{outcome=\"refused\"} %llu\n"
                 "cloudbroker_http_connections_total{outcome=\"evicted\"} %llu\n"
                 "cloudbroker_http_connections_total{outcome=\"timed_out\"} %llu\n"
                 "# HELP cloudbroker_http_bad_requests_total Request heads refused for their "
                 "syntax or size.\n"
                 "# TYPE cloudbroker_http_bad_requests_total counter\n"
                 "cloudbroker_http_bad_requests_total %llu\n"
                 "# HELP cloudbroker_http_body_budget_refused_total Bodies refused with 503: "
                 "limits.body_budget_bytes was spent.\n"
                 "# TYPE cloudbroker_http_body_budget_refused_total counter\n"
                 "cloudbroker_http_body_budget_refused_total %llu\n"
                 "# HELP cloudbroker_http_body_bytes_held Request body bytes held in memory.\n"
                 "# TYPE cloudbroker_http_body_bytes_held gauge\n"
                 "cloudbroker_http_body_bytes_held %llu\n"
                 "# HELP cloudbroker_samples_overlapping_total Instance windows refused: they "
                 "overlap a stored window.\n"
                 "# TYPE cloudbroker_samples_overlapping_total counter\n"
                 "cloudbroker_samples_overlapping_total %llu\n"
                 "# HELP cloudbroker_samples_unowned_dropped_total Unowned-domain windows "
                 "dropped past max_unowned_per_window.\n"
                 "# TYPE cloudbroker_samples_unowned_dropped_total counter\n"
                 "cloudbroker_samples_unowned_dropped_total %llu\n",
                 text, k ? (unsigned long long)k->connections_open : 0ULL,
                 k ? (unsigned long long)k->connections_accepted : 0ULL,
                 k ? (unsigned long long)k->connections_refused : 0ULL,
                 k ? (unsigned long long)k->connections_evicted : 0ULL,
                 k ? (unsigned long long)k->timeouts : 0ULL,
                 k ? (unsigned long long)k->bad_requests : 0ULL,
                 k ? (unsigned long long)k->body_budget_refused : 0ULL,
                 k ? (unsigned long long)k->body_bytes_held : 0ULL, (unsigned long long)overlapping,
                 (unsigned long long)unowned_dropped) < 0) {
        free(text);
        return cm_error_set(&c->err, CM_ERROR_INTERNAL, "", "out of memory");
    }
    free(text);
    /* Several brokers: the leases of jobs and the elected loops (docs/architecture.md). */
    uint64_t taken_over = 0, lost = 0;
    unsigned running = 0;
    br_jobs_lease_counts(c->d->jobs, &taken_over, &lost, &running);
    text = cm_strdup_printf(
        "%s"
        "# HELP cloudbroker_jobs_leased Jobs this broker runs now under its lease.\n"
        "# TYPE cloudbroker_jobs_leased gauge\n"
        "cloudbroker_jobs_leased %u\n"
        "# HELP cloudbroker_jobs_taken_over_total Jobs taken over from a broker whose lease "
        "ended.\n"
        "# TYPE cloudbroker_jobs_taken_over_total counter\n"
        "cloudbroker_jobs_taken_over_total %llu\n"
        "# HELP cloudbroker_jobs_lease_lost_total Jobs given up because another broker took "
        "over their lease.\n"
        "# TYPE cloudbroker_jobs_lease_lost_total counter\n"
        "cloudbroker_jobs_lease_lost_total %llu\n",
        more, running, (unsigned long long)taken_over, (unsigned long long)lost);
    free(more);
    if (!text || br_cluster_metrics(c->d->cluster, &text) < 0) {
        free(text);
        return cm_error_set(&c->err, CM_ERROR_INTERNAL, "", "out of memory");
    }
    return br_reply_text(c, BR_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", text);
}

static const BrRoute routes[] = {
    {"GET", "/metrics", br_api_metrics, BR_ROLES_ADMIN | BR_ROLES_VENDOR | BR_ROLES_AUDITOR,
     BR_BODY_NONE, NULL},
};

const BrRouteTable br_api_metrics_routes = {routes, ELEMENTSOF(routes)};
