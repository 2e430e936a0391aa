/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include "br-jobs.h"

typedef struct BrDaemon BrDaemon;

typedef struct {
    int seq;
    BrStepAction action;
    int64_t instance_id, arg, attempts, host_id;
    char spec[512];
} BrStepRow;

/* br_steps_run() returns this when the step recorded itself as done (reserve, finish). */
#define BR_STEP_RESULT_RECORDED 1

/**
 * br_steps_run:
 * Carries out one step on its host. Sets @ret_instance_state to the instance's new state
 * (or leaves -1).
 * Returns: 0 when done (the caller records it), BR_STEP_RESULT_RECORDED when the step
 * recorded itself, -EAGAIN when the host is away (retry later), or another negative errno
 * with @err set for a failure that retrying will not mend.
 */
int br_steps_run(BrDaemon *d, const BrJobRow *job, const BrStepRow *step, int *ret_instance_state,
                 CmError *err);

/**
 * br_steps_record:
 * Writes what a finished step changed in the instance's row (sizes), inside the caller's
 * transaction. Returns: 0 or a negative errno.
 */
int br_steps_record(CmDb *db, const BrStepRow *step, CmError *err);
