/* SPDX-License-Identifier: Apache-2.0 */
/* policies/pricing.json: its entries, the rates in effect at a moment, the service fee. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "br-pricing.h"
#include "cm-json.h"
#include "cm-time.h"

/* A price in yuan as micro-yuan: the schema caps it at 10^6 yuan, well inside a double's 15
 * exact digits at 6 decimals. */
static int64_t micro_yuan(json_object *o, const char *key, int64_t def)
{
    json_object *v = cm_json_get(o, key);
    return v ? (int64_t)llround(json_object_get_double(v) * 1e6) : def;
}

/* "YYYY-MM-DD" (midnight UTC) or a full ISO 8601 UTC time. */
static int parse_from(const char *s, int64_t *ret)
{
    char iso[40];
    if (strlen(s) == 10) {
        snprintf(iso, sizeof(iso), "%sT00:00:00Z", s);
        s = iso;
    }
    return cm_time_parse_iso(s, ret);
}

static int entry_cmp(const void *a, const void *b)
{
    const BrPriceEntry *x = a, *y = b;
    return x->from_ms < y->from_ms ? -1 : x->from_ms > y->from_ms;
}

static int fee_cmp(const void *a, const void *b)
{
    const BrFeeEntry *x = a, *y = b;
    return x->from_ms < y->from_ms ? -1 : x->from_ms > y->from_ms;
}

static int entry_parse(json_object *e, size_t i, BrPriceEntry *out, CmError *err)
{
    json_object *images = cm_json_get(e, "images");
    const char *from = cm_json_get_str(e, "from", "");
    size_t n = images ? json_object_array_length(images) : 0;
    char field[64];

    snprintf(field, sizeof(field), "/prices/%zu/from", i);
    out->from = strdup(from);
    if (!out->from || parse_from(from, &out->from_ms) < 0)
        return cm_error_set(err, CM_ERROR_UNPROCESSABLE, field,
                            "from is a date (YYYY-MM-DD) or a UTC time (YYYY-MM-DDTHH:MM:SSZ)");
    out->trial = strcmp(cm_json_get_str(e, "purpose", ""), "trial") == 0;
    out->vcpu_hour = micro_yuan(e, "vcpu_hour", 0);
    out->memory_gib_hour = micro_yuan(e, "memory_gib_hour", 0);
    out->disk_gib_month = micro_yuan(e, "disk_gib_month", 0);
    out->images = calloc(n ? n : 1, sizeof(*out->images));
    if (!out->images)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    for (size_t k = 0; k < n; k++) {
        json_object *im = json_object_array_get_idx(images, k);
        const char *name = cm_json_get_str(im, "image", "");
        for (size_t j = 0; j < k; j++)
            if (strcmp(out->images[j].image, name) == 0) {
                snprintf(field, sizeof(field), "/prices/%zu/images/%zu/image", i, k);
                return cm_error_set(err, CM_ERROR_UNPROCESSABLE, field,
                                    "image %s is listed twice in one entry", name);
            }
        out->images[k] = (BrPriceImage){
            .image = strdup(name),
            .vcpu_hour = micro_yuan(im, "vcpu_hour", BR_PRICE_UNSET),
            .memory_gib_hour = micro_yuan(im, "memory_gib_hour", BR_PRICE_UNSET),
            .disk_gib_month = micro_yuan(im, "disk_gib_month", BR_PRICE_UNSET),
        };
        out->n_images = k + 1;
        if (!out->images[k].image)
            return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    }
    return 0;
}

int br_pricing_parse(json_object *doc, BrPricingPolicy *p, CmError *err)
{
    json_object *prices = cm_json_get(doc, "prices"), *fees = cm_json_get(doc, "service_fee");
    size_t np = prices ? json_object_array_length(prices) : 0;
    size_t nf = fees ? json_object_array_length(fees) : 0;
    BrPricingPolicy q = {0};
    char field[64];
    int r = 0;

    snprintf(q.currency, sizeof(q.currency), "%s", cm_json_get_str(doc, "currency", "CNY"));
    q.hours_per_month = cm_json_get_int(doc, "hours_per_month", 730);
    q.prices = calloc(np ? np : 1, sizeof(*q.prices));
    q.fees = calloc(nf ? nf : 1, sizeof(*q.fees));
    if (!q.prices || !q.fees) {
        br_pricing_clear(&q);
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    }
    for (size_t i = 0; i < np && r >= 0; i++) {
        r = entry_parse(json_object_array_get_idx(prices, i), i, &q.prices[i], err);
        q.n_prices = i + 1;
        for (size_t j = 0; j < i && r >= 0; j++)
            if (q.prices[j].from_ms == q.prices[i].from_ms &&
                q.prices[j].trial == q.prices[i].trial) {
                snprintf(field, sizeof(field), "/prices/%zu/from", i);
                r = cm_error_set(err, CM_ERROR_UNPROCESSABLE, field,
                                 "two %s prices take effect at %s",
                                 q.prices[i].trial ? "trial" : "production", q.prices[i].from);
            }
    }
    for (size_t i = 0; i < nf && r >= 0; i++) {
        json_object *f = json_object_array_get_idx(fees, i);
        snprintf(field, sizeof(field), "/service_fee/%zu/from", i);
        if (parse_from(cm_json_get_str(f, "from", ""), &q.fees[i].from_ms) < 0)
            r = cm_error_set(err, CM_ERROR_UNPROCESSABLE, field,
                             "from is a date (YYYY-MM-DD) or a UTC time (YYYY-MM-DDTHH:MM:SSZ)");
        q.fees[i].monthly_fen = (int64_t)llround(cm_json_get_double(f, "monthly", 0) * 100);
        q.n_fees = i + 1;
        for (size_t j = 0; j < i && r >= 0; j++)
            if (q.fees[j].from_ms == q.fees[i].from_ms)
                r = cm_error_set(err, CM_ERROR_UNPROCESSABLE, field,
                                 "two service fees take effect at the same time");
    }
    if (r < 0) {
        br_pricing_clear(&q);
        return r;
    }
    qsort(q.prices, q.n_prices, sizeof(*q.prices), entry_cmp);
    qsort(q.fees, q.n_fees, sizeof(*q.fees), fee_cmp);
    *p = q;
    return 0;
}

void br_pricing_clear(BrPricingPolicy *p)
{
    for (size_t i = 0; i < p->n_prices; i++) {
        for (size_t k = 0; k < p->prices[i].n_images; k++)
            free(p->prices[i].images[k].image);
        free(p->prices[i].images);
        free(p->prices[i].from);
    }
    free(p->prices);
    free(p->fees);
    memset(p, 0, sizeof(*p));
}

BrRate br_pricing_rate(const BrPricingPolicy *p, bool trial, const char *image, int64_t at_ms)
{
    const BrPriceEntry *e = NULL;
    BrRate r = {0};

    for (size_t i = 0; i < p->n_prices && p->prices[i].from_ms <= at_ms; i++)
        if (p->prices[i].trial == trial)
            e = &p->prices[i];
    if (!e)
        return r;
    r = (BrRate){e, e->vcpu_hour, e->memory_gib_hour, e->disk_gib_month};
    for (size_t k = 0; image && k < e->n_images; k++) {
        const BrPriceImage *im = &e->images[k];
        if (strcmp(im->image, image) != 0)
            continue;
        if (im->vcpu_hour != BR_PRICE_UNSET)
            r.vcpu_hour = im->vcpu_hour;
        if (im->memory_gib_hour != BR_PRICE_UNSET)
            r.memory_gib_hour = im->memory_gib_hour;
        if (im->disk_gib_month != BR_PRICE_UNSET)
            r.disk_gib_month = im->disk_gib_month;
    }
    return r;
}

int64_t br_pricing_next_change(const BrPricingPolicy *p, bool trial, int64_t at_ms,
                               int64_t until_ms)
{
    for (size_t i = 0; i < p->n_prices; i++)
        if (p->prices[i].trial == trial && p->prices[i].from_ms > at_ms)
            return p->prices[i].from_ms < until_ms ? p->prices[i].from_ms : until_ms;
    return until_ms;
}

int64_t br_money_fen(int64_t price, int64_t qty, int64_t ms, int64_t per)
{
    /* micro-yuan × qty × ms / per, in fen (÷ 10^4), rounded half up: 128 bits, since a
     * month of 64 vCPUs at 10^6 yuan overflows 64. */
    __int128 num = (__int128)price * qty * ms, den = (__int128)per * 10000;
    if (num <= 0 || den <= 0)
        return 0;
    return (int64_t)((num + den / 2) / den);
}

int64_t br_pricing_fee_fen(const BrPricingPolicy *p, int64_t m0, int64_t m1)
{
    __int128 num = 0;
    int64_t month = m1 - m0;

    for (size_t i = 0; i < p->n_fees && month > 0; i++) {
        int64_t a = p->fees[i].from_ms > m0 ? p->fees[i].from_ms : m0;
        int64_t b = i + 1 < p->n_fees && p->fees[i + 1].from_ms < m1 ? p->fees[i + 1].from_ms : m1;
        if (b > a)
            num += (__int128)p->fees[i].monthly_fen * (b - a);
    }
    return month > 0 ? (int64_t)((num + month / 2) / month) : 0;
}

json_object *br_money_json(int64_t fen)
{
    char s[32];
    snprintf(s, sizeof(s), "%s%lld.%02lld", fen < 0 ? "-" : "", llabs(fen) / 100LL,
             llabs(fen) % 100LL);
    return json_object_new_double_s((double)fen / 100.0, s);
}
