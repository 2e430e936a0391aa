/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "br-api.h"
#include "br-daemon.h"

int br_api_page(BrCall *c, int64_t *ret_limit, int64_t *ret_after)
{
    int64_t limit = 100, after = 0;
    int r = br_call_query_int(c, "limit", 1, 1000, &limit);
    if (r >= 0)
        r = br_call_query_int(c, "after", 0, INT64_MAX, &after);
    if (r < 0)
        return r;
    *ret_limit = limit;
    *ret_after = after;
    return 0;
}

int br_api_list_reply(BrCall *c, json_object *items, int64_t limit, int64_t last_id)
{
    json_object *o = json_object_new_object();
    bool full = (int64_t)json_object_array_length(items) >= limit;
    json_object_object_add(o, "items", items);
    json_object_object_add(o, "next", full ? json_object_new_int64(last_id) : NULL);
    return br_reply(c, BR_HTTP_OK, o);
}

json_object *br_json_id_or_null(int64_t id)
{
    return id > 0 ? json_object_new_int64(id) : NULL;
}

int br_not_found(BrCall *c, const char *what, int64_t id)
{
    return cm_error_set(&c->err, CM_ERROR_NOT_FOUND, "", "no %s with id %lld", what, (long long)id);
}

CmDb *br_call_db(BrCall *c)
{
    return br_store_db(c->d->store, &c->err);
}

int br_call_tx(BrCall *c, const char *name, BrTxFn fn, void *ctx)
{
    return br_tx_run(c->d->store, name, &c->actor, fn, ctx, &c->err);
}

int br_call_tx_shared(BrCall *c, const char *name, int64_t key, BrTxFn fn, void *ctx)
{
    return br_tx_run_shared(c->d->store, name, &c->actor, key, fn, ctx, &c->err);
}

int br_call_page(BrCall *c, BrPage *ret)
{
    return br_api_page(c, &ret->limit, &ret->after);
}

int br_reply_list(BrCall *c, json_object *items, const BrPage *page)
{
    size_t n = json_object_array_length(items);
    int64_t last = n ? cm_json_get_int(json_object_array_get_idx(items, n - 1), "id", 0) : 0;
    return br_api_list_reply(c, items, page->limit, last);
}

int br_reply_no_content(BrCall *c, unsigned status)
{
    char *empty = strdup("");
    if (!empty)
        return cm_error_set(&c->err, CM_ERROR_INTERNAL, "", "out of memory");
    return br_reply_text(c, status, "text/plain; charset=utf-8", empty);
}

int br_call_read(BrCall *c, const char *name, BrTxFn fn, void *ctx)
{
    return br_tx_read(c->d->store, name, fn, ctx, &c->err);
}
