/* SPDX-License-Identifier: Apache-2.0 */
/* An account's own notifications: parse, call the table's owner, answer. */
#include <string.h>

#include "br-api.h"
#include "br-notification.h"

static int br_api_notifications_list(BrCall *c)
{
    const char *unread = br_call_query(c, "unread");
    json_object *items;
    BrPage page;
    int r = br_call_page(c, &page);

    if (r < 0)
        return r;
    if (unread && strcmp(unread, "true") != 0 && strcmp(unread, "false") != 0)
        return cm_error_set(&c->err, CM_ERROR_INVALID, "unread",
                            "query parameter 'unread' must be true or false");
    r = br_notification_list(br_call_db(c), c->actor.account_id,
                             unread && strcmp(unread, "true") == 0, &page, &items, &c->err);
    if (r < 0)
        return r;
    return br_reply_list(c, items, &page);
}

static int read_tx(BrTx *tx, void *ctx)
{
    return br_notification_mark_read(tx, tx->actor->account_id, *(int64_t *)ctx);
}

static int br_api_notifications_read(BrCall *c)
{
    int r = br_call_tx(c, "notification.read", read_tx, &c->ids[0]);
    if (r < 0)
        return r;
    return br_reply_no_content(c, BR_HTTP_NO_CONTENT);
}

static int br_api_notifications_read_all(BrCall *c)
{
    int64_t all = 0;
    int r = br_call_tx(c, "notification.read", read_tx, &all);
    if (r < 0)
        return r;
    return br_reply_no_content(c, BR_HTTP_NO_CONTENT);
}

/* Every account reads and marks its own. */
static const BrRoute routes[] = {
    {"GET", "/v1/notifications", br_api_notifications_list, BR_ROLES_ACCOUNTS, BR_BODY_NONE, NULL},
    {"POST", "/v1/notifications/{id}/read", br_api_notifications_read, BR_ROLES_ACCOUNTS,
     BR_BODY_JSON_OPTIONAL, "empty"},
    {"POST", "/v1/notifications/read-all", br_api_notifications_read_all, BR_ROLES_ACCOUNTS,
     BR_BODY_JSON_OPTIONAL, "empty"},
};

const BrRouteTable br_api_notifications_routes = {routes, ELEMENTSOF(routes)};
