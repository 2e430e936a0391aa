/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>

#include <json-c/json.h>

/*
 * What `job watch` prints: the job documents of GET /v1/jobs/{id} (with their "steps") turned
 * into lines for a person, and what changed between two polls. Pure: no HTTP, no clock.
 */

/**
 * ctl_job_step_text:
 * Describes step @step of @job: "step 3/8 define (instance 2): done", with the value a resize
 * step sets ("set_vcpus to 4 (instance 2)"), the attempt and the reason while a step waits to
 * be retried, and the error of a failed step. Server text is made safe for a terminal.
 * Returns: a newly allocated line without a newline, or NULL on allocation failure.
 */
char *ctl_job_step_text(json_object *job, json_object *step);

/**
 * ctl_job_progress_text:
 * Returns: "job 5 (provision) running: 3 of 8 steps done (37%)", with the job's error when it
 * failed; newly allocated, or NULL on allocation failure.
 */
char *ctl_job_progress_text(json_object *job);

/**
 * ctl_job_changes:
 * What to print after polling @cur, the previous poll being @prev (NULL for the first): one
 * line per step whose state, attempts or error changed (on the first poll: every step that is
 * no longer plainly pending), then the progress line, each ending in a newline. Nothing when
 * neither a step nor the job's state or progress changed.
 * Returns: a newly allocated string (possibly empty), or NULL on allocation failure.
 */
char *ctl_job_changes(json_object *prev, json_object *cur);

/**
 * ctl_job_finished:
 * Returns: true when @job is "done" or "error" (then @ret_failed says which).
 */
bool ctl_job_finished(json_object *job, bool *ret_failed);
