/* SPDX-License-Identifier: Apache-2.0 */
/* The reconciler's events: what it found amiss on the hosts, open and resolved. */
#include <string.h>

#include "br-api.h"
#include "br-event.h"

static int br_api_events_list(BrCall *c)
{
    const char *open = br_call_query(c, "open");
    BrEventFilter f = {.kind = br_call_query(c, "kind"), .open = -1};
    BrPage page;
    json_object *items;
    int r = br_call_page(c, &page);

    if (r >= 0)
        r = br_call_query_int(c, "host", 1, INT64_MAX, &f.host);
    if (r < 0)
        return r;
    if (open && strcmp(open, "true") != 0 && strcmp(open, "false") != 0)
        return cm_error_set(&c->err, CM_ERROR_INVALID, "open", "open must be true or false");
    if (open)
        f.open = strcmp(open, "true") == 0;
    r = br_event_list(br_call_db(c), &f, &page, &items, &c->err);
    if (r < 0)
        return r;
    return br_reply_list(c, items, &page);
}

static const BrRoute routes[] = {
    {"GET", "/v1/events", br_api_events_list, BR_ROLES_READERS | BR_ROLES_VENDOR, BR_BODY_NONE,
     NULL},
};

const BrRouteTable br_api_events_routes = {routes, ELEMENTSOF(routes)};
