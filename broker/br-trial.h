/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdint.h>

#include <json-c/json.h>

#include "br-tx.h"
#include "cm-db.h"

/*
 * The table `trial_results` (this file holds all its SQL): the vendor's verdict on each of
 * the three tests of a new request's trial, with the SHA-256 of its report.
 */

/* One test's verdict as the vendor records it. */
typedef struct {
    const char *test;   /* function, performance, security */
    const char *result; /* pass, fail */
    const char *report; /* the SHA-256 of the test_report material */
    const char *comment;
} BrTrialResult;

/**
 * br_trial_record:
 * Records @t for request @request in @tx as the caller's; a test is recorded once (409
 * duplicate naming /test). Returns: 0, or a negative errno with tx->err set.
 */
int br_trial_record(BrTx *tx, int64_t request, const BrTrialResult *t);

/**
 * br_trial_tally:
 * Counts request @request's passed and failed tests.
 * Returns: 0, or a negative errno with @err set.
 */
int br_trial_tally(CmDb *db, int64_t request, int64_t *ret_passed, int64_t *ret_failed,
                   CmError *err);

/**
 * br_trial_results:
 * Request @request's results, in the order they were recorded, as JSON in @ret.
 * Returns: 0, or a negative errno with @err set.
 */
int br_trial_results(CmDb *db, int64_t request, json_object **ret, CmError *err);
