/* SPDX-License-Identifier: Apache-2.0 */
/* POST /v1/samples, usage series and summaries, rollup on demand. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "br-api.h"
#include "br-daemon.h"
#include "br-metering.h"
#include "br-usage.h"
#include "cm-time.h"
#include "cm-util.h"

typedef struct {
    BrCall *c;
    BrSamplesBatch batch;
    BrIngestResult res;
} Ingest;

static int ingest_tx(BrTx *tx, void *ctx)
{
    Ingest *w = ctx;
    _cleanup_(br_policies_unrefp) BrPolicies *p = br_call_policies(w->c);
    const BrIngestResult *x = &w->res;
    char detail[256];
    int r = br_metering_ingest(tx, &p->metering, w->c->actor.host_id, &w->batch, &w->res);

    if (r < 0)
        return r;
    snprintf(detail, sizeof(detail),
             "{\"stored\":%lld,\"duplicates\":%lld,\"unowned\":%lld,\"host\":%lld,"
             "\"overlapping\":%lld,\"unowned_dropped\":%lld}",
             (long long)x->stored, (long long)x->duplicates, (long long)x->unowned,
             (long long)x->host, (long long)x->overlapping, (long long)x->unowned_dropped);
    br_tx_audit_set(tx, "samples.ingest", "host", w->c->actor.host_id, detail);
    return 0;
}

static int br_api_samples_post(BrCall *c)
{
    _cleanup_free_ Ingest *w = calloc(1, sizeof(*w));
    const BrIngestResult *x;
    json_object *o, *rejected;
    int r;

    if (!w)
        return cm_error_set(&c->err, CM_ERROR_INTERNAL, "", "out of memory");
    w->c = c;
    /* The route's body is BR_BODY_JSON_RAW: parsed and checked here, in one pass, before the
     * write lock; a document it refuses is answered by cm_json_parse() and the schema. On
     * PostgreSQL the batches of different hosts are stored side by side, their audit records
     * and commits one after the other (br_tx_run_shared()). */
    r = br_samples_parse(c->buf ? c->buf : "", c->len, &w->batch, &c->err);
    if (r >= 0)
        r = br_call_tx_shared(c, "samples.ingest", br_metering_ingest_key(c->actor.host_id),
                              ingest_tx, w);
    br_samples_batch_free(&w->batch);
    if (r < 0)
        return r;
    x = &w->res;
    o = json_object_new_object();
    json_object_object_add(o, "stored", json_object_new_int64(x->stored));
    json_object_object_add(o, "duplicates", json_object_new_int64(x->duplicates));
    json_object_object_add(o, "unowned", json_object_new_int64(x->unowned));
    json_object_object_add(o, "host", json_object_new_int64(x->host));
    json_object_object_add(o, "overlapping", json_object_new_int64(x->overlapping));
    json_object_object_add(o, "unowned_dropped", json_object_new_int64(x->unowned_dropped));
    /* Each window refused alone, as an error body would name it (the first 100). */
    rejected = json_object_new_array();
    for (size_t i = 0; i < x->n_rejected; i++) {
        const BrIngestRejection *y = &x->rejected[i];
        json_object *e = json_object_new_object();
        char field[64], msg[256];
        snprintf(field, sizeof(field), "/instances/%zu/start", y->index);
        snprintf(msg, sizeof(msg),
                 "record %zu: the window [%lld, %lld) of instance %lld overlaps the stored "
                 "window [%lld, %lld): not stored, its seconds would count twice",
                 y->index, (long long)y->start, (long long)(y->start + y->duration),
                 (long long)y->instance, (long long)y->other_start,
                 (long long)(y->other_start + y->other_duration));
        json_object_object_add(e, "code", json_object_new_string("overlapping_window"));
        json_object_object_add(e, "field", json_object_new_string(field));
        json_object_object_add(e, "message", json_object_new_string(msg));
        json_object_array_add(rejected, e);
    }
    json_object_object_add(o, "rejected", rejected);
    return br_reply(c, BR_HTTP_OK, o);
}

/* ?from= / ?to=: ISO 8601 or seconds since the epoch. */
static int time_param(BrCall *c, const char *key, int64_t def, int64_t *ret)
{
    const char *v = br_call_query(c, key);
    int64_t t;
    if (!v) {
        *ret = def;
        return 0;
    }
    if (cm_parse_int64(v, 0, INT64_C(1) << 40, &t) == 0) {
        *ret = t;
        return 0;
    }
    if (cm_time_parse_iso(v, &t) == 0) {
        *ret = t / 1000;
        return 0;
    }
    return cm_error_set(&c->err, CM_ERROR_INVALID, key,
                        "%s must be an ISO 8601 time or seconds since the epoch", key);
}

/* A usage read: the query's range, answered from one snapshot. */
typedef struct {
    int64_t id, scope, from, to, step;
    json_object *out;
} UsageRead;

/* from and to; and step when @step (an allocation's summary has none). */
static int range_params(BrCall *c, UsageRead *u, bool step)
{
    int r = time_param(c, "to", cm_now_ms() / 1000, &u->to);
    if (r >= 0)
        r = time_param(c, "from", u->to - 86400, &u->from);
    if (r >= 0 && !step && u->from >= u->to)
        return cm_error_set(&c->err, CM_ERROR_INVALID, "from", "from must be before to");
    if (r < 0 || !step)
        return r;
    u->step = 300;
    r = br_call_query_int(c, "step", 10, 366 * 86400, &u->step);
    if (r < 0)
        return r;
    if (u->from >= u->to)
        return cm_error_set(&c->err, CM_ERROR_INVALID, "from", "from must be before to");
    if ((u->to - u->from) / u->step > 20000)
        return cm_error_set(&c->err, CM_ERROR_INVALID, "step",
                            "at most 20000 points: choose a larger step");
    return 0;
}

static int instance_usage_read(BrTx *tx, void *ctx)
{
    UsageRead *u = ctx;
    return br_usage_instance(tx->db, u->id, u->scope, u->from, u->to, u->step, &u->out, tx->err);
}

static int allocation_usage_read(BrTx *tx, void *ctx)
{
    UsageRead *u = ctx;
    return br_usage_allocation(tx->db, u->id, u->scope, u->from, u->to, &u->out, tx->err);
}

static int usage(BrCall *c, bool step, BrTxFn read)
{
    UsageRead u = {.id = c->ids[0], .scope = br_call_scope(c)};
    int r = range_params(c, &u, step);

    if (r >= 0)
        r = br_tx_read(c->d->store, "usage", read, &u, &c->err);
    if (r < 0)
        return r;
    return br_reply(c, BR_HTTP_OK, u.out);
}

static int br_api_instances_usage(BrCall *c)
{
    return usage(c, true, instance_usage_read);
}

static int br_api_allocations_usage(BrCall *c)
{
    return usage(c, false, allocation_usage_read);
}

static int rollup_audit_tx(BrTx *tx, void *ctx)
{
    br_tx_audit_set(tx, "metering.rollup", "rollup", 0, ctx);
    return 0;
}

static int br_api_metering_rollup(BrCall *c)
{
    const char *day = cm_json_get_str(c->body, "day", "");
    char iso[32];
    int64_t ms;
    int n, r;
    json_object *o;

    snprintf(iso, sizeof(iso), "%sT00:00:00Z", day);
    if (cm_time_parse_iso(iso, &ms) < 0)
        return cm_error_set_code(&c->err, CM_ERROR_UNPROCESSABLE, "schema_violation", "/day",
                                 "not a calendar day");
    if (ms < INT64_C(946684800000) || ms > cm_now_ms() + 86400000)
        return cm_error_set(&c->err, CM_ERROR_UNPROCESSABLE, "/day",
                            "the day must lie between 2000-01-01 and tomorrow");
    n = br_metering_rollup_day(c->d, ms / 1000, &c->err);
    if (n < 0)
        return n;
    r = br_call_tx(c, "metering.rollup", rollup_audit_tx, (void *)cm_json_to_string(c->body, NULL));
    if (r < 0)
        return r;
    o = json_object_new_object();
    json_object_object_add(o, "day", json_object_new_string(day));
    json_object_object_add(o, "instances", json_object_new_int64(n));
    return br_reply(c, BR_HTTP_OK, o);
}

static const BrRoute routes[] = {

    /* Metering: agents post windows; usage is read with the same scoping as allocations. */
    /* The hot path: parsed by br_samples_parse() into structs, to schemas/samples.json. */
    {"POST", "/v1/samples", br_api_samples_post, BR_ROLES_AGENT, BR_BODY_JSON_RAW, "samples", NULL,
     32u * 1024 * 1024},
    {"GET", "/v1/instances/{id}/usage", br_api_instances_usage,
     BR_ROLES_DEPARTMENT | BR_ROLES_READERS | BR_ROLES_VENDOR, BR_BODY_NONE, NULL},
    {"GET", "/v1/allocations/{id}/usage", br_api_allocations_usage,
     BR_ROLES_DEPARTMENT | BR_ROLES_READERS | BR_ROLES_VENDOR, BR_BODY_NONE, NULL},
    {"POST", "/v1/metering/rollup", br_api_metering_rollup, BR_ROLES_VENDOR | BR_ROLES_ADMIN,
     BR_BODY_JSON, "rollup"},
};

const BrRouteTable br_api_metering_routes = {routes, ELEMENTSOF(routes)};
