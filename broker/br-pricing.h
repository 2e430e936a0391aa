/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "cm-error.h"

/*
 * policies/pricing.json (docs/costs.md): what a vCPU-hour, a GiB-hour of memory and a
 * GiB-month of disk cost, for trial and production, per image where it differs, from the
 * moment each price takes effect; and the vendor's monthly service fee. Pure: no database, no
 * clock. Prices are held as integers of micro-yuan (10^-6 yuan, 10^-4 fen), so that a bill is
 * integer arithmetic that any other program can redo to the fen.
 */

#define BR_PRICE_UNSET INT64_C(-1)

/* A price of one image that differs from its entry's; BR_PRICE_UNSET: the entry's. */
typedef struct {
    char *image;
    int64_t vcpu_hour, memory_gib_hour, disk_gib_month; /* micro-yuan */
} BrPriceImage;

/* The rates of one purpose from one moment on. */
typedef struct {
    int64_t from_ms;
    char *from;                                         /* as the policy wrote it */
    bool trial;                                         /* else production */
    int64_t vcpu_hour, memory_gib_hour, disk_gib_month; /* micro-yuan */
    BrPriceImage *images;
    size_t n_images;
} BrPriceEntry;

/* The vendor's monthly service fee from one moment on. */
typedef struct {
    int64_t from_ms;
    int64_t monthly_fen;
} BrFeeEntry;

typedef struct {
    char currency[8];
    int64_t hours_per_month; /* a finding's monthly figures: 730 = 8760 / 12 */
    BrPriceEntry *prices;    /* by from_ms */
    size_t n_prices;
    BrFeeEntry *fees; /* by from_ms */
    size_t n_fees;
} BrPricingPolicy;

/**
 * br_pricing_parse:
 * Reads the pricing policy document @doc (already schema-checked) into @p.
 * Returns: 0, or a negative errno with @err naming the field (a date that is no date, two
 * entries of one purpose from the same moment, an image listed twice in an entry).
 */
int br_pricing_parse(json_object *doc, BrPricingPolicy *p, CmError *err);

void br_pricing_clear(BrPricingPolicy *p);

/* The rates that apply to one instance at one moment. */
typedef struct {
    const BrPriceEntry *entry; /* NULL: no price was in effect */
    int64_t vcpu_hour, memory_gib_hour, disk_gib_month;
} BrRate;

/**
 * br_pricing_rate:
 * The rates in effect at @at_ms for an instance of @image in a trial (@trial) or production
 * allocation: the latest entry of that purpose from @at_ms or before, with its image's own
 * rates where the entry lists the image. Returns: the rates (entry NULL and zeros when no
 * entry of the purpose had taken effect).
 */
BrRate br_pricing_rate(const BrPricingPolicy *p, bool trial, const char *image, int64_t at_ms);

/**
 * br_pricing_next_change:
 * Returns: the first moment after @at_ms and before @until_ms at which another entry of the
 * purpose takes effect, or @until_ms.
 */
int64_t br_pricing_next_change(const BrPricingPolicy *p, bool trial, int64_t at_ms,
                               int64_t until_ms);

/**
 * br_pricing_fee_fen:
 * The service fee of the month [@m0, @m1) (ms): each fee entry for the share of the month it
 * was in effect, rounded once to the fen. Returns: fen.
 */
int64_t br_pricing_fee_fen(const BrPricingPolicy *p, int64_t m0, int64_t m1);

/**
 * br_money_fen:
 * @price (micro-yuan per unit of @per) times @qty held for @ms, divided by @per: rounded half
 * up to the fen. Returns: fen.
 */
int64_t br_money_fen(int64_t price, int64_t qty, int64_t ms, int64_t per);

/** br_money_json: Returns: @fen as yuan, a JSON number written with exactly two decimals. */
json_object *br_money_json(int64_t fen);
