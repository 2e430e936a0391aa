/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "br-pricing.h"

/*
 * The monthly cost statement (docs/costs.md): each instance's bill over a month from its
 * recorded history (instance_history, br-instance.c) and the pricing policy. Pure: no
 * database, no clock. Each part of a bill is rounded once to the fen; every total above it is
 * the exact sum of the fen below it, so the departments add up to the city.
 */

/* One change of an instance, from its history. */
typedef struct {
    int64_t at_ms;
    bool compute, disk; /* what its state holds: br_cost_holds() */
    int64_t vcpus, memory_mib, disk_gib;
} BrCostEvent;

/**
 * br_cost_holds:
 * What an instance in @state holds: vCPUs and memory while its domain is defined (defined,
 * running, shutoff: the host keeps them for it), its disk while its volume exists (created
 * to undefined: a retained instance is disk only).
 */
void br_cost_holds(const char *state, bool *ret_compute, bool *ret_disk);

/* One part of an instance's bill: a stretch at one size and one price. */
typedef struct {
    int64_t from_ms, to_ms;
    int64_t vcpus, memory_mib, disk_gib; /* what was held (0: not held) */
    BrRate rate;
    int64_t compute_fen, memory_fen, disk_fen;
} BrCostPart;

/**
 * br_cost_parts:
 * Prices an instance over [@t0, @t1) from its history @ev (by time; events before @t0 say what
 * held at @t0). A stretch ends at every change of what is held and at every price of its
 * purpose that takes effect; neighbouring stretches that hold the same at the same price are
 * one part. A GiB-month of disk is the calendar month's @month_ms. Each of compute, memory and
 * disk of a part is rounded half up to the fen (br_money_fen()).
 * Returns: 0 with the parts (free them) in @ret and their number in @ret_n (0: nothing held),
 * or -ENOMEM.
 */
int br_cost_parts(const BrPricingPolicy *p, bool trial, const char *image, const BrCostEvent *ev,
                  size_t n, int64_t t0, int64_t t1, int64_t month_ms, BrCostPart **ret,
                  size_t *ret_n);

/**
 * br_cost_monthly_fen:
 * What @vcpus and @memory_mib cost over the policy's hours_per_month at the rates in effect
 * at @at_ms (a finding's monthly cost and saving). Returns: fen.
 */
int64_t br_cost_monthly_fen(const BrPricingPolicy *p, bool trial, const char *image, int64_t at_ms,
                            int64_t vcpus, int64_t memory_mib);

/* An instance with its history, as the statement reads it. */
typedef struct {
    int64_t instance_id, allocation_id, system_id, department_id;
    char *name, *image, *system, *department_code, *department;
    bool trial;
    BrCostEvent *ev;
    size_t n_ev;
} BrCostInstance;

void br_cost_instances_free(BrCostInstance *v, size_t n);

/**
 * br_cost_statement:
 * The statement of the month [@m0, @m1) up to @t1 (@m1, or now for the month under way) for
 * the instances @v (by department, system, allocation and instance): per department, system,
 * allocation and instance the compute, memory and disk in fen and in yuan, a line per part,
 * and the total of them all.
 * Returns: 0 and the document in @ret, or -ENOMEM.
 */
int br_cost_statement(const BrPricingPolicy *p, const BrCostInstance *v, size_t n, int64_t m0,
                      int64_t m1, int64_t t1, json_object **ret);
