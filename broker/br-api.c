/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The routing table: every endpoint, the roles that may call it, and the schema its body is
 * checked against before the handler runs, joined from each resource file's own table; and the
 * general routes (health, whoami, policies). Object-level scoping (a department sees only its
 * own objects, a consultant only the requests assigned to it) is done in the handlers and
 * answers 404, so nothing reveals that another department's object exists.
 */
#include <assert.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "br-account.h"
#include "br-api.h"
#include "br-daemon.h"
#include "br-notification.h"
#include "cb-config.h"

/* Every resource's table; a path is matched against all of them. */
static const BrRouteTable *const tables[] = {
    &br_api_core_routes,        &br_api_metrics_routes,       &br_api_accounts_routes,
    &br_api_departments_routes, &br_api_systems_routes,       &br_api_requests_routes,
    &br_api_materials_routes,   &br_api_hosts_routes,         &br_api_allocations_routes,
    &br_api_jobs_routes,        &br_api_metering_routes,      &br_api_findings_routes,
    &br_api_security_routes,    &br_api_reports_routes,       &br_api_audit_routes,
    &br_api_session_routes,     &br_api_notifications_routes, &br_api_dashboard_routes,
    &br_api_events_routes,      &br_api_maintenance_routes,   &br_api_vendor_records_routes,
};

#define MAX_ROUTES 256
static BrRoute all_routes[MAX_ROUTES];
static size_t n_all_routes;
static pthread_once_t all_routes_once = PTHREAD_ONCE_INIT;

static void join_tables(void)
{
    for (size_t t = 0; t < ELEMENTSOF(tables); t++)
        for (size_t i = 0; i < tables[t]->n; i++) {
            assert(n_all_routes < MAX_ROUTES);
            all_routes[n_all_routes++] = tables[t]->routes[i];
        }
}

const BrRoute *br_api_routes(size_t *ret_n)
{
    pthread_once(&all_routes_once, join_tables);
    *ret_n = n_all_routes;
    return all_routes;
}

static int br_api_health(BrCall *c)
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
    return br_reply(c, BR_HTTP_OK, o);
}

int br_api_whoami_reply(BrCall *c)
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
        return br_reply(c, BR_HTTP_OK, o);
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
    return br_reply(c, BR_HTTP_OK, o);
}

static int br_api_policies_get(BrCall *c)
{
    _cleanup_(br_policies_unrefp) BrPolicies *p = br_call_policies(c);
    json_object *copy = NULL;
    json_object_deep_copy(p->documents, &copy, NULL);
    return br_reply(c, BR_HTTP_OK, copy);
}

static const BrRoute routes[] = {

    {"GET", "/v1/health", br_api_health, 0, BR_BODY_NONE, NULL},
    {"GET", "/v1/whoami", br_api_whoami_reply, BR_ROLES_ACCOUNTS | BR_ROLES_AGENT, BR_BODY_NONE,
     NULL},
    /* Policies are public to every account: departments need the limits and materials. */
    {"GET", "/v1/policies", br_api_policies_get, BR_ROLES_ACCOUNTS, BR_BODY_NONE, NULL},
};

const BrRouteTable br_api_core_routes = {routes, ELEMENTSOF(routes)};
