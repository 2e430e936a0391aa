/* SPDX-License-Identifier: Apache-2.0 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "ctl-job.h"
#include "ctl-output.h"
#include "cm-json.h"
#include "cm-util.h"

static size_t n_steps(json_object *job)
{
    json_object *steps = cm_json_get(job, "steps");
    return json_object_is_type(steps, json_type_array) ? json_object_array_length(steps) : 0;
}

/* The step of @job with sequence number @seq, or NULL. */
static json_object *step_by_seq(json_object *job, int64_t seq)
{
    json_object *steps = cm_json_get(job, "steps");
    for (size_t i = 0; i < n_steps(job); i++) {
        json_object *s = json_object_array_get_idx(steps, i);
        if (cm_json_get_int(s, "seq", -1) == seq)
            return s;
    }
    return NULL;
}

/* " to 4 vCPUs" for the steps whose argument is the new size; "" for the others. */
static char *arg_text(const char *action, int64_t arg)
{
    if (strcmp(action, "set_vcpus") == 0)
        return cm_strdup_printf(" to %" PRId64 " vCPU%s", arg, arg == 1 ? "" : "s");
    if (strcmp(action, "set_memory") == 0)
        return cm_strdup_printf(" to %" PRId64 " MiB", arg);
    if (strcmp(action, "grow_volume") == 0)
        return cm_strdup_printf(" to %" PRId64 " GiB", arg);
    return strdup("");
}

char *ctl_job_step_text(json_object *job, json_object *step)
{
    const char *action = cm_json_get_str(step, "action", "?");
    const char *state = cm_json_get_str(step, "state", "?");
    const char *error = cm_json_get_str(step, "error", NULL);
    int64_t instance = cm_json_get_int(step, "instance_id", 0);
    int64_t attempts = cm_json_get_int(step, "attempts", 0);
    _cleanup_free_ char *arg = arg_text(action, cm_json_get_int(step, "arg", 0));
    const char *name = cm_json_get_str(step, "instance_name", NULL);
    _cleanup_free_ char *inst = instance <= 0 ? strdup("")
                                : name && name[0]
                                    ? cm_strdup_printf(" (instance %" PRId64 " %s)", instance, name)
                                    : cm_strdup_printf(" (instance %" PRId64 ")", instance);
    _cleanup_free_ char *status = NULL, *line = NULL;

    if (!arg || !inst)
        return NULL;
    if (strcmp(state, "error") == 0)
        status = cm_strdup_printf("error: %s", error ? error : "(no reason given)");
    else if (strcmp(state, "pending") == 0 && error && attempts > 0)
        /* A step put back after a failure that may pass: the job retries it with backoff. */
        status = cm_strdup_printf("waiting to retry (%" PRId64 " attempt%s so far): %s", attempts,
                                  attempts == 1 ? "" : "s", error);
    else if (strcmp(state, "running") == 0 && attempts > 1)
        status = cm_strdup_printf("running (attempt %" PRId64 ")", attempts);
    else
        status = strdup(state);
    if (!status)
        return NULL;
    line = cm_strdup_printf("step %" PRId64 "/%zu %s%s%s: %s", cm_json_get_int(step, "seq", 0) + 1,
                            n_steps(job), action, arg, inst, status);
    return line ? ctl_text_sanitize(line, true) : NULL;
}

char *ctl_job_progress_text(json_object *job)
{
    json_object *p = cm_json_get(job, "progress");
    const char *state = cm_json_get_str(job, "state", "?");
    const char *error = cm_json_get_str(job, "error", NULL);
    int64_t total = cm_json_get_int(p, "total", 0);
    _cleanup_free_ char *line = cm_strdup_printf(
        "job %" PRId64 " (%s) %s: %" PRId64 " of %" PRId64 " step%s done (%" PRId64 "%%)%s%s",
        cm_json_get_int(job, "id", 0), cm_json_get_str(job, "kind", "?"), state,
        cm_json_get_int(p, "done", 0), total, total == 1 ? "" : "s",
        cm_json_get_int(p, "percent", 0), error ? ": " : "", error ? error : "");
    return line ? ctl_text_sanitize(line, true) : NULL;
}

static bool same_str(json_object *a, json_object *b, const char *key)
{
    return cm_streq(cm_json_get_str(a, key, NULL), cm_json_get_str(b, key, NULL));
}

static bool step_changed(json_object *before, json_object *now)
{
    if (!before)
        return !cm_streq(cm_json_get_str(now, "state", NULL), "pending") ||
               cm_json_get_str(now, "error", NULL) != NULL;
    return !same_str(before, now, "state") || !same_str(before, now, "error") ||
           cm_json_get_int(before, "attempts", 0) != cm_json_get_int(now, "attempts", 0);
}

/* Appends @line and a newline to *@text; false on allocation failure. */
static bool append_line(char **text, const char *line)
{
    char *next;
    if (!line)
        return false;
    next = cm_strdup_printf("%s%s\n", *text, line);
    if (!next)
        return false;
    free(*text);
    *text = next;
    return true;
}

char *ctl_job_changes(json_object *prev, json_object *cur)
{
    json_object *steps = cm_json_get(cur, "steps");
    char *text = strdup("");
    bool any = prev == NULL;

    if (!text)
        return NULL;
    for (size_t i = 0; i < n_steps(cur); i++) {
        json_object *s = json_object_array_get_idx(steps, i);
        json_object *before = prev ? step_by_seq(prev, cm_json_get_int(s, "seq", -1)) : NULL;
        if (!step_changed(before, s))
            continue;
        _cleanup_free_ char *line = ctl_job_step_text(cur, s);
        if (!append_line(&text, line)) {
            free(text);
            return NULL;
        }
        any = true;
    }
    if (prev && (!same_str(prev, cur, "state") || !same_str(prev, cur, "error") ||
                 cm_json_get_int(cm_json_get(prev, "progress"), "done", 0) !=
                     cm_json_get_int(cm_json_get(cur, "progress"), "done", 0)))
        any = true;
    if (any) {
        _cleanup_free_ char *line = ctl_job_progress_text(cur);
        if (!append_line(&text, line)) {
            free(text);
            return NULL;
        }
    }
    return text;
}

bool ctl_job_finished(json_object *job, bool *ret_failed)
{
    const char *state = cm_json_get_str(job, "state", "");
    *ret_failed = strcmp(state, "error") == 0;
    return *ret_failed || strcmp(state, "done") == 0;
}
