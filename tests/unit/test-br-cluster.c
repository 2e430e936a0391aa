/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The elections of the once-per-cluster loops (br-cluster.c). On SQLite the one broker holds
 * every loop. On PostgreSQL (CB_TEST_PG_URL) two brokers on one database: each loop is held
 * by exactly one, the gate holds the other's passes back, the loop moves to the other within
 * a few seconds when the holder's connection goes (as when its process dies), and a second
 * broker of the same node name is refused.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "br-cluster.h"
#include "cbt-pg.h"
#include "cm-time.h"
#include "cm-util.h"

typedef struct {
    char *url, *pg_name;
} Fx;

static int setup(void **state)
{
    Fx *f = calloc(1, sizeof(*f));
    *state = f;
    if (cbt_pg_url())
        assert_int_equal(cbt_pg_create_db("cluster", &f->url, &f->pg_name), 0);
    return 0;
}

static int teardown(void **state)
{
    Fx *f = *state;
    if (f->pg_name)
        cbt_pg_drop_db(f->pg_name);
    free(f->url);
    free(f->pg_name);
    free(f);
    return 0;
}

static void test_sqlite_holds_all(void **state)
{
    BrCluster *c = NULL;
    CmError err = {0};
    char node[BR_CLUSTER_NODE_MAX];
    _cleanup_free_ char *text = strdup("x\n");

    (void)state;
    assert_int_equal(br_cluster_start("sqlite:/nonexistent/db", "solo", &c, &err), 0);
    assert_string_equal(br_cluster_node(c), "solo");
    for (int i = 0; i < BR_LOOP_MAX; i++)
        assert_true(br_cluster_leads(c, (BrLoop)i));
    assert_true(br_cluster_gate(c, "reconciler"));
    assert_true(br_cluster_gate(c, "job sweeper"));
    assert_true(br_cluster_gate(c, "job worker"));
    assert_int_equal(br_cluster_metrics(c, &text), 0);
    assert_int_equal(strncmp(text, "x\n# HELP cloudbroker_loop_leader ", 33), 0);
    assert_non_null(strstr(text, "cloudbroker_loop_leader{loop=\"reconciler\"} 1\n"));
    assert_non_null(strstr(text, "cloudbroker_loop_passes_total{loop=\"reconciler\"} 1\n"));
    assert_non_null(strstr(text, "cloudbroker_loop_passes_total{loop=\"sweeper\"} 1\n"));
    c = br_cluster_stop(c);

    /* Bad names are refused; the default is HOSTNAME:PORT, or HOSTNAME:pidPID for port 0. */
    assert_int_equal(br_cluster_start("sqlite:/x", "a b", &c, &err), -EINVAL);
    assert_int_equal(br_cluster_start("sqlite:/x", "", &c, &err), -EINVAL);
    br_cluster_default_node("127.0.0.1:8470", node, sizeof(node));
    assert_non_null(strstr(node, ":8470"));
    assert_true(node[0] != ':');
    br_cluster_default_node("[::1]:0", node, sizeof(node));
    assert_non_null(strstr(node, ":pid"));
}

/* Which of @a and @b holds @loop once exactly one does (within @ms), or NULL. */
static BrCluster *holder(BrCluster *a, BrCluster *b, BrLoop loop, int ms)
{
    for (int t = 0; t < ms; t += 50) {
        bool la = br_cluster_leads(a, loop), lb = b && br_cluster_leads(b, loop);
        if (la != lb || (!b && la))
            return la ? a : b;
        usleep(50000);
    }
    return NULL;
}

static void test_pg_elections(void **state)
{
    Fx *f = *state;
    BrCluster *a = NULL, *b = NULL, *same = NULL, *lead, *other;
    CmError err = {0};
    char lead_name[BR_CLUSTER_NODE_MAX];
    int64_t t0, moved_ms;

    if (!f->url)
        skip();
    assert_int_equal(br_cluster_start(f->url, "node-a", &a, &err), 0);
    assert_int_equal(br_cluster_start(f->url, "node-b", &b, &err), 0);
    /* A broker stands for a loop from its first ask at the gate, which holds it back until
     * the election is won. */
    assert_false(br_cluster_gate(a, "reconciler") && br_cluster_gate(b, "reconciler"));
    br_cluster_want(a, BR_LOOP_ROLLUP);
    br_cluster_want(b, BR_LOOP_ROLLUP);

    lead = holder(a, b, BR_LOOP_RECONCILER, 5000);
    assert_non_null(lead);
    assert_non_null(holder(a, b, BR_LOOP_ROLLUP, 5000));
    other = lead == a ? b : a;
    cm_strscpy(lead_name, sizeof(lead_name), br_cluster_node(lead));
    /* Held for several elections by the same one, and only it runs passes. */
    sleep(2);
    assert_true(br_cluster_leads(lead, BR_LOOP_RECONCILER));
    assert_false(br_cluster_leads(other, BR_LOOP_RECONCILER));
    assert_true(br_cluster_gate(lead, "reconciler"));
    assert_false(br_cluster_gate(other, "reconciler"));
    assert_true(br_cluster_gate(other, "job worker")); /* not elected: runs everywhere */
    /* A loop nobody asked for stays with nobody. */
    assert_false(br_cluster_leads(a, BR_LOOP_ASSESSMENT));
    assert_false(br_cluster_leads(b, BR_LOOP_ASSESSMENT));

    /* A second broker under a name that is connected is refused. */
    assert_int_equal(br_cluster_start(f->url, br_cluster_node(other), &same, &err), -EBUSY);
    assert_null(same);
    assert_non_null(strstr(err.message, "already connected"));
    /* The same name on another database of the same server is another cluster's broker. */
    {
        _cleanup_free_ char *url2 = NULL, *name2 = NULL;
        assert_int_equal(cbt_pg_create_db("cluster2", &url2, &name2), 0);
        assert_int_equal(br_cluster_start(url2, br_cluster_node(other), &same, &err), 0);
        same = br_cluster_stop(same);
        cbt_pg_drop_db(name2);
    }

    /* The holder goes (its connection closes, as when its process dies): the other takes the
     * loops within a few seconds. */
    t0 = cm_now_ms();
    if (lead == a)
        a = br_cluster_stop(a);
    else
        b = br_cluster_stop(b);
    assert_ptr_equal(holder(other, NULL, BR_LOOP_RECONCILER, 5000), other);
    moved_ms = cm_now_ms() - t0;
    assert_true(moved_ms < 3000);
    assert_true(br_cluster_gate(other, "reconciler"));
    assert_ptr_equal(holder(other, NULL, BR_LOOP_ROLLUP, 3000), other);
    printf("# the reconciler loop moved in %lld ms\n", (long long)moved_ms);

    /* The name of the one that went is free again. */
    assert_int_equal(br_cluster_start(f->url, lead_name, &same, &err), 0);
    same = br_cluster_stop(same);
    a = br_cluster_stop(a);
    b = br_cluster_stop(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sqlite_holds_all, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pg_elections, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
