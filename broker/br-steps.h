/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include "br-jobs.h"

typedef struct BrDaemon BrDaemon;

/*
 * What the job engine is given to run the workflow's jobs (br_jobs_start()): the step runner,
 * which carries out one step on its host through the libvirt driver, the workflow's failure
 * handler and its sweeper. Their context is the BrDaemon.
 */
extern const BrJobCallbacks br_steps_job_callbacks;

/**
 * br_steps_run:
 * Carries out one step on its host, and tells in @out what it changed of its instance.
 * Returns: 0 when done (the engine records it), BR_STEP_RESULT_RECORDED when the step
 * recorded itself (reserve, finish), -EAGAIN when the host is away or nothing fits (retry
 * later), or another negative errno with @err set for a failure that retrying will not mend.
 */
int br_steps_run(BrDaemon *d, const BrJobRow *job, const BrStepRow *step, BrStepOutcome *out,
                 CmError *err);
