/* SPDX-License-Identifier: Apache-2.0 */
/* ctl-job: what `cloudbrokerctl job watch` prints between two polls of GET /v1/jobs/{id}. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ctl-job.h"
#include "cm-json.h"

/* A provision job of two instances as the broker shows it, with each step's state given. */
static json_object *job(const char *state, const char *error, const char *const steps[8])
{
    static const char *const actions[] = {"reserve",       "create_volume", "define", "start",
                                          "create_volume", "define",        "start",  "finish"};
    static const int instances[] = {0, 3, 3, 3, 4, 4, 4, 0};
    json_object *o = json_object_new_object(), *list = json_object_new_array();
    json_object *p = json_object_new_object();
    int done = 0;

    for (int i = 0; i < 8; i++) {
        json_object *s = json_object_new_object();
        /* "pending!why" is a step put back to be retried after a failure that may pass. */
        const char *bang = strchr(steps[i], '!');
        char st[16];
        snprintf(st, sizeof(st), "%.*s", bang ? (int)(bang - steps[i]) : (int)strlen(steps[i]),
                 steps[i]);
        json_object_object_add(s, "seq", json_object_new_int(i));
        json_object_object_add(s, "action", json_object_new_string(actions[i]));
        json_object_object_add(s, "instance_id",
                               instances[i] ? json_object_new_int(instances[i]) : NULL);
        /* The broker names the instance beside its id; a step of an older broker may not. */
        json_object_object_add(s, "instance_name",
                               instances[i] == 3 ? json_object_new_string("cb-7-0") : NULL);
        json_object_object_add(s, "arg", json_object_new_int(0));
        json_object_object_add(s, "state", json_object_new_string(st));
        json_object_object_add(
            s, "attempts", json_object_new_int(strcmp(st, "pending") == 0 ? (bang ? 2 : 0) : 1));
        json_object_object_add(s, "error", bang ? json_object_new_string(bang + 1) : NULL);
        json_object_array_add(list, s);
        done += strcmp(st, "done") == 0;
    }
    json_object_object_add(o, "id", json_object_new_int(5));
    json_object_object_add(o, "kind", json_object_new_string("provision"));
    json_object_object_add(o, "state", json_object_new_string(state));
    json_object_object_add(o, "error", error ? json_object_new_string(error) : NULL);
    json_object_object_add(p, "done", json_object_new_int(done));
    json_object_object_add(p, "total", json_object_new_int(8));
    json_object_object_add(p, "percent", json_object_new_int(done * 100 / 8));
    json_object_object_add(o, "progress", p);
    json_object_object_add(o, "steps", list);
    return o;
}

#define P "pending"
#define R "running"
#define D "done"

static void expect_changes(json_object *prev, json_object *cur, const char *want)
{
    char *got = ctl_job_changes(prev, cur);
    assert_non_null(got);
    assert_string_equal(got, want);
    free(got);
}

static void test_first_poll(void **state)
{
    const char *const queued[8] = {P, P, P, P, P, P, P, P};
    const char *const half[8] = {D, D, R, P, P, P, P, P};
    json_object *a = job("queued", NULL, queued), *b = job("running", NULL, half);

    /* A job nobody worked on yet: only the progress line. */
    expect_changes(NULL, a, "job 5 (provision) queued: 0 of 8 steps done (0%)\n");
    /* Watched halfway: every step that moved, then the progress. */
    expect_changes(NULL, b,
                   "step 1/8 reserve: done\n"
                   "step 2/8 create_volume (instance 3 cb-7-0): done\n"
                   "step 3/8 define (instance 3 cb-7-0): running\n"
                   "job 5 (provision) running: 2 of 8 steps done (25%)\n");
    json_object_put(a);
    json_object_put(b);
}

static void test_changes_between_polls(void **state)
{
    const char *const s1[8] = {D, D, R, P, P, P, P, P};
    const char *const s2[8] = {D, D, D, D, R, P, P, P};
    const char *const s3[8] = {D, D, D, D, D, D, D, D};
    json_object *a = job("running", NULL, s1), *b = job("running", NULL, s2);
    json_object *c = job("done", NULL, s3);

    expect_changes(a, a, "");
    expect_changes(a, b,
                   "step 3/8 define (instance 3 cb-7-0): done\n"
                   "step 4/8 start (instance 3 cb-7-0): done\n"
                   "step 5/8 create_volume (instance 4): running\n"
                   "job 5 (provision) running: 4 of 8 steps done (50%)\n");
    expect_changes(b, c,
                   "step 5/8 create_volume (instance 4): done\n"
                   "step 6/8 define (instance 4): done\n"
                   "step 7/8 start (instance 4): done\n"
                   "step 8/8 finish: done\n"
                   "job 5 (provision) done: 8 of 8 steps done (100%)\n");
    json_object_put(a);
    json_object_put(b);
    json_object_put(c);
}

static void test_waiting_and_failing(void **state)
{
    const char *const wait1[8] = {
        "pending!no host can take instance 0: trial-1 refused by ram", P, P, P, P, P, P, P};
    const char *const failed[8] = {
        D, "error!base volume 'debian-12.qcow2' not found", P, P, P, P, P, P};
    json_object *a = job("running", NULL, wait1), *b = job("running", NULL, wait1);
    json_object *c = job("error", "base volume 'debian-12.qcow2' not found", failed);
    json_object *s;
    char *line;
    bool f = false;

    expect_changes(NULL, a,
                   "step 1/8 reserve: waiting to retry (2 attempts so far): no host can take "
                   "instance 0: trial-1 refused by ram\n"
                   "job 5 (provision) running: 0 of 8 steps done (0%)\n");
    /* One more attempt, same reason: shown again, so a watcher sees it is still trying. */
    json_object_object_add(json_object_array_get_idx(cm_json_get(b, "steps"), 0), "attempts",
                           json_object_new_int(3));
    expect_changes(a, b,
                   "step 1/8 reserve: waiting to retry (3 attempts so far): no host can take "
                   "instance 0: trial-1 refused by ram\n"
                   "job 5 (provision) running: 0 of 8 steps done (0%)\n");
    expect_changes(
        b, c,
        "step 1/8 reserve: done\n"
        "step 2/8 create_volume (instance 3 cb-7-0): error: base volume 'debian-12.qcow2' not "
        "found\n"
        "job 5 (provision) error: 1 of 8 steps done (12%): base volume "
        "'debian-12.qcow2' not found\n");

    assert_false(ctl_job_finished(a, &f));
    assert_true(ctl_job_finished(c, &f));
    assert_true(f);

    /* The size a resize step sets; server text cannot drive the terminal. */
    s = json_object_array_get_idx(cm_json_get(a, "steps"), 1);
    json_object_object_add(s, "action", json_object_new_string("set_vcpus"));
    json_object_object_add(s, "arg", json_object_new_int(4));
    json_object_object_add(s, "state", json_object_new_string("done"));
    line = ctl_job_step_text(a, s);
    assert_string_equal(line, "step 2/8 set_vcpus to 4 vCPUs (instance 3 cb-7-0): done");
    free(line);
    json_object_object_add(s, "action", json_object_new_string("grow_volume"));
    json_object_object_add(s, "arg", json_object_new_int(50));
    json_object_object_add(s, "state", json_object_new_string("error"));
    json_object_object_add(s, "error", json_object_new_string("bad\x1b[2Jthing\nhere"));
    line = ctl_job_step_text(a, s);
    assert_string_equal(line,
                        "step 2/8 grow_volume to 50 GiB (instance 3 cb-7-0): error: bad?[2Jthing "
                        "here");
    free(line);

    json_object_put(a);
    json_object_put(b);
    json_object_put(c);
}

static void test_finished(void **state)
{
    const char *const s[8] = {D, D, D, D, D, D, D, D};
    json_object *a = job("done", NULL, s);
    bool f = true;

    assert_true(ctl_job_finished(a, &f));
    assert_false(f);
    json_object_object_add(a, "state", json_object_new_string("queued"));
    assert_false(ctl_job_finished(a, &f));
    json_object_put(a);
    /* Not a job at all: not finished, and nothing to crash on. */
    assert_false(ctl_job_finished(NULL, &f));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_poll),
        cmocka_unit_test(test_changes_between_polls),
        cmocka_unit_test(test_waiting_and_failing),
        cmocka_unit_test(test_finished),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
