/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The routing table: every endpoint, the roles that may call it, and the schema its body is
 * checked against before the handler runs. Object-level scoping (a department sees only its
 * own objects, a consultant only the requests assigned to it) is done in the handlers and
 * answers 404, so nothing reveals that another department's object exists.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "br-account.h"
#include "br-api.h"
#include "br-hosts.h"
#include "br-http.h"
#include "br-jobs.h"
#include "br-metering.h"
#include "br-notification.h"
#include "br-reconciler.h"
#include "cb-config.h"
#include "cm-util.h"

#define ALL BR_ROLES_ACCOUNTS
#define READERS (R_REVIEWER | R_AUDITOR)

static const BrRoute routes[] = {
    {"GET", "/v1/health", br_api_health, 0, BR_BODY_NONE, NULL},
    {"GET", "/metrics", br_api_metrics, R_ADMIN | R_VENDOR | R_AUDITOR, BR_BODY_NONE, NULL},
    {"GET", "/v1/whoami", br_api_whoami, ALL | R_AGENT, BR_BODY_NONE, NULL},
    {"PATCH", "/v1/whoami", br_api_whoami_patch, ALL, BR_BODY_JSON, "whoami-patch"},

    /* People's sign-in to the console (br-api-session.c). */
    {"POST", "/v1/session", br_api_session_create, 0, BR_BODY_JSON, "session-create"},
    {"GET", "/v1/session", br_api_session_get, ALL, BR_BODY_NONE, NULL},
    {"DELETE", "/v1/session", br_api_session_delete, ALL, BR_BODY_NONE, NULL},
    {"POST", "/v1/session/password", br_api_session_password, ALL, BR_BODY_JSON,
     "password-change"},
    {"POST", "/v1/password/setup", br_api_password_setup, 0, BR_BODY_JSON, "password-setup"},
    {"POST", "/v1/accounts/{id}/sign-in-link", br_api_accounts_sign_in_link, R_ADMIN,
     BR_BODY_JSON_OPTIONAL, "empty"},

    /* Notifications: every account reads its own. */
    {"GET", "/v1/notifications", br_api_notifications_list, ALL, BR_BODY_NONE, NULL},
    {"POST", "/v1/notifications/{id}/read", br_api_notifications_read, ALL,
     BR_BODY_JSON_OPTIONAL, "empty"},
    {"POST", "/v1/notifications/read-all", br_api_notifications_read_all, ALL,
     BR_BODY_JSON_OPTIONAL, "empty"},

    /* The reviewers' overview and what waits for the caller (br-api-dashboard.c). */
    {"GET", "/v1/dashboard", br_api_dashboard, READERS, BR_BODY_NONE, NULL},
    {"GET", "/v1/queue", br_api_queue, R_REVIEWER | R_CONSULTANT | R_VENDOR | R_DEPARTMENT,
     BR_BODY_NONE, NULL},
    {"POST", "/v1/whoami/token", br_api_accounts_rotate, ALL, BR_BODY_JSON_OPTIONAL, "empty"},
    /* Policies are public to every account: departments need the limits and materials. */
    {"GET", "/v1/policies", br_api_policies_get, ALL, BR_BODY_NONE, NULL},

    {"POST", "/v1/departments", br_api_departments_create, R_ADMIN, BR_BODY_JSON,
     "department-create"},
    {"GET", "/v1/departments", br_api_departments_list, ALL, BR_BODY_NONE, NULL},
    {"GET", "/v1/departments/{id}", br_api_departments_get, ALL, BR_BODY_NONE, NULL},
    {"PATCH", "/v1/departments/{id}", br_api_departments_patch, R_ADMIN | R_REVIEWER,
     BR_BODY_JSON, "department-patch"},

    {"POST", "/v1/accounts", br_api_accounts_create, R_ADMIN, BR_BODY_JSON, "account-create"},
    {"GET", "/v1/accounts", br_api_accounts_list, R_ADMIN | READERS, BR_BODY_NONE, NULL},
    {"GET", "/v1/accounts/{id}", br_api_accounts_get, R_ADMIN | READERS, BR_BODY_NONE, NULL},
    {"PATCH", "/v1/accounts/{id}", br_api_accounts_patch, R_ADMIN, BR_BODY_JSON,
     "account-patch"},
    {"POST", "/v1/accounts/{id}/token", br_api_accounts_rotate, R_ADMIN, BR_BODY_JSON_OPTIONAL,
     "empty"},

    {"POST", "/v1/systems", br_api_systems_create, R_DEPARTMENT | R_REVIEWER, BR_BODY_JSON,
     "system-create"},
    {"GET", "/v1/systems", br_api_systems_list, R_DEPARTMENT | READERS | R_VENDOR, BR_BODY_NONE,
     NULL},
    {"GET", "/v1/systems/{id}", br_api_systems_get, R_DEPARTMENT | READERS | R_VENDOR,
     BR_BODY_NONE, NULL},
    {"PATCH", "/v1/systems/{id}", br_api_systems_patch, R_DEPARTMENT | R_REVIEWER, BR_BODY_JSON,
     "system-patch"},

    {"POST", "/v1/requests", br_api_requests_create, R_DEPARTMENT, BR_BODY_JSON,
     "request-create"},
    {"GET", "/v1/requests", br_api_requests_list,
     R_DEPARTMENT | READERS | R_CONSULTANT | R_VENDOR, BR_BODY_NONE, NULL},
    {"GET", "/v1/requests/{id}", br_api_requests_get,
     R_DEPARTMENT | READERS | R_CONSULTANT | R_VENDOR, BR_BODY_NONE, NULL},
    {"PATCH", "/v1/requests/{id}", br_api_requests_patch, R_DEPARTMENT, BR_BODY_JSON,
     "request-patch"},
    {"PUT", "/v1/requests/{id}/materials/{name}", br_api_materials_put,
     R_DEPARTMENT | R_VENDOR, BR_BODY_UPLOAD, NULL, br_api_materials_precheck},
    {"GET", "/v1/requests/{id}/materials/{name}", br_api_materials_get,
     R_DEPARTMENT | READERS | R_CONSULTANT | R_VENDOR, BR_BODY_NONE, NULL},
    {"POST", "/v1/requests/{id}/submit", br_api_requests_submit, R_DEPARTMENT,
     BR_BODY_JSON_OPTIONAL, "action"},
    {"POST", "/v1/requests/{id}/resubmit", br_api_requests_resubmit, R_DEPARTMENT,
     BR_BODY_JSON_OPTIONAL, "action"},
    {"POST", "/v1/requests/{id}/withdraw", br_api_requests_withdraw, R_DEPARTMENT,
     BR_BODY_JSON_OPTIONAL, "action"},
    {"POST", "/v1/requests/{id}/assign", br_api_requests_assign, R_REVIEWER, BR_BODY_JSON,
     "request-assign"},
    {"POST", "/v1/requests/{id}/opinions", br_api_requests_opinion, R_REVIEWER | R_CONSULTANT,
     BR_BODY_JSON, "opinion-create"},
    {"POST", "/v1/requests/{id}/decision", br_api_requests_decision, R_REVIEWER, BR_BODY_JSON,
     "decision"},

    {"POST", "/v1/requests/{id}/trial-results", br_api_requests_trial_result, R_VENDOR,
     BR_BODY_JSON, "trial-result"},
    {"POST", "/v1/requests/{id}/allocate", br_api_requests_allocate, R_REVIEWER,
     BR_BODY_JSON_OPTIONAL, "action"},

    {"POST", "/v1/hosts", br_api_hosts_create, R_VENDOR, BR_BODY_JSON, "host-create"},
    {"GET", "/v1/hosts", br_api_hosts_list, R_VENDOR | READERS, BR_BODY_NONE, NULL},
    {"GET", "/v1/hosts/{id}", br_api_hosts_get, R_VENDOR | READERS, BR_BODY_NONE, NULL},
    {"PATCH", "/v1/hosts/{id}", br_api_hosts_patch, R_VENDOR, BR_BODY_JSON, "host-patch"},

    {"GET", "/v1/allocations", br_api_allocations_list, R_DEPARTMENT | READERS | R_VENDOR,
     BR_BODY_NONE, NULL},
    {"GET", "/v1/allocations/{id}", br_api_allocations_get, R_DEPARTMENT | READERS | R_VENDOR,
     BR_BODY_NONE, NULL},
    {"POST", "/v1/allocations/{id}/restore", br_api_allocations_restore, R_REVIEWER,
     BR_BODY_JSON_OPTIONAL, "action"},
    {"POST", "/v1/allocations/{id}/purge", br_api_allocations_purge, R_REVIEWER,
     BR_BODY_JSON_OPTIONAL, "action"},
    {"GET", "/v1/jobs", br_api_jobs_list, R_DEPARTMENT | READERS | R_VENDOR, BR_BODY_NONE, NULL},
    {"GET", "/v1/jobs/{id}", br_api_jobs_get, R_DEPARTMENT | READERS | R_VENDOR, BR_BODY_NONE,
     NULL},
    {"POST", "/v1/jobs/{id}/retry", br_api_jobs_retry, R_VENDOR | R_REVIEWER,
     BR_BODY_JSON_OPTIONAL, "action"},
    {"GET", "/v1/events", br_api_events_list, READERS | R_VENDOR, BR_BODY_NONE, NULL},
    {"POST", "/v1/hosts/{id}/agent-token", br_api_hosts_rotate_agent_token, R_VENDOR,
     BR_BODY_JSON_OPTIONAL, "empty"},

    /* Metering: agents post windows; usage is read with the same scoping as allocations. */
    /* The hot path: parsed by br_samples_parse() into structs, to schemas/samples.json. */
    {"POST", "/v1/samples", br_api_samples_post, R_AGENT, BR_BODY_JSON_RAW, "samples", NULL,
     32u * 1024 * 1024},
    {"GET", "/v1/instances/{id}/usage", br_api_instances_usage, R_DEPARTMENT | READERS | R_VENDOR,
     BR_BODY_NONE, NULL},
    {"GET", "/v1/allocations/{id}/usage", br_api_allocations_usage,
     R_DEPARTMENT | READERS | R_VENDOR, BR_BODY_NONE, NULL},
    {"POST", "/v1/metering/rollup", br_api_metering_rollup, R_VENDOR | R_ADMIN, BR_BODY_JSON,
     "rollup"},

    /* Assessment: findings, security and backup records, reports (Art. 5, 8, 9). */
    {"GET", "/v1/findings", br_api_findings_list, R_DEPARTMENT | READERS | R_VENDOR,
     BR_BODY_NONE, NULL},
    {"GET", "/v1/findings/{id}", br_api_findings_get, R_DEPARTMENT | READERS | R_VENDOR,
     BR_BODY_NONE, NULL},
    {"POST", "/v1/findings/{id}/acknowledge", br_api_findings_acknowledge,
     R_DEPARTMENT | R_REVIEWER, BR_BODY_JSON_OPTIONAL, "finding-action"},
    {"POST", "/v1/findings/{id}/resolve", br_api_findings_resolve, R_DEPARTMENT | R_REVIEWER,
     BR_BODY_JSON_OPTIONAL, "finding-action"},
    {"POST", "/v1/findings/{id}/dismiss", br_api_findings_dismiss, R_REVIEWER, BR_BODY_JSON,
     "finding-action"},
    {"POST", "/v1/findings/{id}/change-request", br_api_findings_change_request, R_DEPARTMENT,
     BR_BODY_JSON_OPTIONAL, "empty"},
    {"POST", "/v1/assessment/run", br_api_assessment_run, R_REVIEWER | R_VENDOR,
     BR_BODY_JSON_OPTIONAL, "empty"},
    {"POST", "/v1/systems/{id}/vulnerabilities", br_api_vulnerabilities_create,
     R_DEPARTMENT | R_VENDOR, BR_BODY_JSON, "vulnerability-create"},
    {"GET", "/v1/systems/{id}/vulnerabilities", br_api_vulnerabilities_list,
     R_DEPARTMENT | READERS | R_VENDOR, BR_BODY_NONE, NULL},
    {"PATCH", "/v1/vulnerabilities/{id}", br_api_vulnerabilities_patch, R_DEPARTMENT | R_VENDOR,
     BR_BODY_JSON, "vulnerability-patch"},
    {"POST", "/v1/systems/{id}/incidents", br_api_incidents_create, R_DEPARTMENT | R_VENDOR,
     BR_BODY_JSON, "incident-create"},
    {"GET", "/v1/systems/{id}/incidents", br_api_incidents_list,
     R_DEPARTMENT | READERS | R_VENDOR, BR_BODY_NONE, NULL},
    {"PATCH", "/v1/incidents/{id}", br_api_incidents_patch, R_DEPARTMENT | R_VENDOR,
     BR_BODY_JSON, "incident-patch"},
    {"POST", "/v1/systems/{id}/backups", br_api_backups_create, R_DEPARTMENT | R_VENDOR,
     BR_BODY_JSON, "backup-create"},
    {"GET", "/v1/systems/{id}/backups", br_api_backups_list, R_DEPARTMENT | READERS | R_VENDOR,
     BR_BODY_NONE, NULL},
    {"GET", "/v1/reports/assessment", br_api_reports_assessment, R_DEPARTMENT | READERS,
     BR_BODY_NONE, NULL},
    {"GET", "/v1/reports/operations", br_api_reports_operations,
     R_DEPARTMENT | READERS | R_VENDOR, BR_BODY_NONE, NULL},

    {"GET", "/v1/audit", br_api_audit_list, READERS, BR_BODY_NONE, NULL},
    {"GET", "/v1/audit/verify", br_api_audit_verify, READERS, BR_BODY_NONE, NULL},
};

const BrRoute *br_api_routes(size_t *ret_n)
{
    *ret_n = ELEMENTSOF(routes);
    return routes;
}

int br_api_health(BrCall *c)
{
    json_object *o = json_object_new_object(), *console = json_object_new_object();
    json_object *languages = json_object_new_array();
    json_object_object_add(o, "status", json_object_new_string("ok"));
    json_object_object_add(o, "version", json_object_new_string(CB_VERSION));
    json_object_object_add(o, "time_zone", json_object_new_string(c->d->config.time_zone));
    json_object_array_add(languages, json_object_new_string("zh-CN"));
    json_object_array_add(languages, json_object_new_string("en"));
    json_object_object_add(console, "languages", languages);
    json_object_object_add(console, "available", json_object_new_boolean(c->d->console != NULL));
    json_object_object_add(o, "console", console);
    return br_reply(c, MHD_HTTP_OK, o);
}

int br_api_whoami(BrCall *c)
{
    json_object *o;
    int64_t unread = 0;
    int r;

    if (c->actor.role != BR_ROLE_AGENT) {
        r = br_account_whoami(br_call_db(c), &c->actor, &o, &c->err);
        if (r >= 0)
            r = br_notification_unread(br_call_db(c), c->actor.account_id, &unread, &c->err);
        if (r < 0)
            return r;
        json_object_object_add(o, "unread_notifications", json_object_new_int64(unread));
        json_object_object_add(o, "session", json_object_new_boolean(c->session_id != 0));
        return br_reply(c, MHD_HTTP_OK, o);
    }
    o = json_object_new_object();
    json_object_object_add(o, "id", json_object_new_int64(c->actor.account_id));
    json_object_object_add(o, "name", json_object_new_string(c->actor.name));
    json_object_object_add(o, "role", json_object_new_string(br_role_to_string(c->actor.role)));
    json_object_object_add(o, "department_id",
                           c->actor.department_id ? json_object_new_int64(c->actor.department_id)
                                                  : NULL);
    if (c->actor.role == BR_ROLE_AGENT)
        json_object_object_add(o, "host_id", json_object_new_int64(c->actor.host_id));
    return br_reply(c, MHD_HTTP_OK, o);
}

int br_api_policies_get(BrCall *c)
{
    _cleanup_(br_policies_unrefp) BrPolicies *p = br_call_policies(c);
    json_object *copy = NULL;
    json_object_deep_copy(p->documents, &copy, NULL);
    return br_reply(c, MHD_HTTP_OK, copy);
}

int br_api_metrics(BrCall *c)
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
    return br_reply_text(c, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", text);
}
