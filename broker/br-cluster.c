/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "br-cluster.h"
#include "cm-db.h"
#include "cm-log.h"
#include "cm-util.h"
#include "cm-worker.h"

CM_ENUM_IMPL(br_loop, BrLoop, BR_LOOP_MAX, "reconciler", "rollup", "assessment", "sweeper",
             "mailer")

/* The CmWorker names of the elected loops, by BrLoop. */
static const char *const worker_names[] = {"reconciler", "rollup", "assessment", "job sweeper",
                                           "mailer"};
_Static_assert(ELEMENTSOF(worker_names) == BR_LOOP_MAX, "one worker name per loop");

/*
 * The advisory lock of a loop: the 64-bit key "cbel" (0x6362656c) << 32 | the BrLoop, apart
 * from the writer lock of cm_db_begin_immediate(). pg_locks shows it as classid "cbel",
 * objid the BrLoop, objsubid 1.
 */
#define ELECTION_CLASS "1667392876"
#define ELECTION_KEY(loop) ((int64_t)1667392876 << 32 | (int64_t)(loop))
#define ELECTION_MS 1000

struct BrCluster {
    char node[BR_CLUSTER_NODE_MAX];
    char app[BR_CLUSTER_NODE_MAX + 16]; /* the election connection's application_name */
    CmDb *db;                           /* the election connection; NULL on SQLite */
    CmWorker *worker;
    atomic_bool wanted[BR_LOOP_MAX];
    atomic_bool leads[BR_LOOP_MAX];
    atomic_uint_fast64_t passes[BR_LOOP_MAX], elections[BR_LOOP_MAX];
    bool broken; /* the last election failed: the locks went with the connection */
};

/* @url with application_name=cloudbroker:NODE appended (the node name needs no escaping). */
static char *election_url(const char *url, const char *app)
{
    return cm_strdup_printf("%s%sapplication_name=%s", url, strchr(url, '?') ? "&" : "?", app);
}

/* Every lock went with a lost connection: nothing is held until the next election wins. */
static void lose_all(BrCluster *c, const char *why)
{
    for (int i = 0; i < BR_LOOP_MAX; i++)
        if (atomic_exchange(&c->leads[i], false))
            cm_log_warning("cluster: %s no longer runs the %s loop: %s", c->node,
                           br_loop_to_string((BrLoop)i), why);
    c->broken = true;
}

/* Tries the lock of @loop; session-level, so it stays with the connection until it closes. */
static int try_lock(BrCluster *c, BrLoop loop, CmError *err)
{
    _cleanup_stmt_ CmStmt *st = cm_db_prepare(c->db, "SELECT pg_try_advisory_lock(?1)", err);
    int r;

    if (!st)
        return -EIO;
    CM_DB_BIND(st, ELECTION_KEY(loop));
    r = cm_stmt_step(st, err);
    if (r <= 0)
        return r < 0 ? r : -EIO;
    return cm_stmt_int(st, 0) ? 1 : 0;
}

/* The loops whose lock this connection holds, as a bit set; a check that it still does. */
static int held_locks(BrCluster *c, unsigned *ret, CmError *err)
{
    _cleanup_stmt_ CmStmt *st =
        cm_db_prepare(c->db,
                      "SELECT CAST(objid AS bigint) FROM pg_locks WHERE locktype = 'advisory'"
                      " AND CAST(classid AS bigint) = " ELECTION_CLASS " AND objsubid = 1"
                      " AND granted AND pid = pg_backend_pid()",
                      err);
    unsigned held = 0;
    int r;

    if (!st)
        return -EIO;
    while ((r = cm_stmt_step(st, err)) > 0)
        if (cm_stmt_int(st, 0) >= 0 && cm_stmt_int(st, 0) < BR_LOOP_MAX)
            held |= 1u << cm_stmt_int(st, 0);
    if (r < 0)
        return r;
    *ret = held;
    return 0;
}

/* One election: every loop this broker stands for and does not hold is tried. */
static int64_t election_pass(void *ctx)
{
    BrCluster *c = ctx;
    CmError err = {0};
    unsigned held = 0;
    int r = held_locks(c, &held, &err);

    if (r < 0) {
        lose_all(c, err.message);
        return ELECTION_MS;
    }
    if (c->broken)
        cm_log_notice("cluster: %s is back on the database", c->node);
    c->broken = false;
    for (int i = 0; i < BR_LOOP_MAX; i++) {
        BrLoop loop = (BrLoop)i;
        if ((held & (1u << i)) || !atomic_load(&c->wanted[i])) {
            /* A lock this broker held and no longer holds: the server ended it. */
            if (!(held & (1u << i)) && atomic_exchange(&c->leads[i], false))
                cm_log_warning("cluster: %s lost the %s loop", c->node, br_loop_to_string(loop));
            continue;
        }
        r = try_lock(c, loop, &err);
        if (r < 0) {
            lose_all(c, err.message);
            return ELECTION_MS;
        }
        if (r > 0) {
            atomic_store(&c->leads[i], true);
            atomic_fetch_add(&c->elections[i], 1);
            cm_log_notice("cluster: %s now runs the %s loop", c->node, br_loop_to_string(loop));
        } else if (atomic_exchange(&c->leads[i], false)) {
            cm_log_warning("cluster: %s lost the %s loop", c->node, br_loop_to_string(loop));
        }
    }
    return ELECTION_MS;
}

/* Another process connected to this database under our application_name: a broker with the same
 * node name. Brokers of other databases in the same server may use the same names. */
static int same_name_connected(BrCluster *c, CmError *err)
{
    _cleanup_stmt_ CmStmt *st =
        cm_db_prepare(c->db,
                      "SELECT count(*) FROM pg_stat_activity WHERE application_name = ?1"
                      " AND datname = current_database() AND pid <> pg_backend_pid()",
                      err);
    int r;

    if (!st)
        return -EIO;
    CM_DB_BIND(st, (const char *)c->app);
    r = cm_stmt_step(st, err);
    if (r <= 0)
        return r < 0 ? r : -EIO;
    if (cm_stmt_int(st, 0) > 0)
        return cm_error_set(err, CM_ERROR_CONFLICT, "node_name",
                            "a broker named '%s' is already connected to this database: give"
                            " each broker its own node name (--node)",
                            c->node);
    return 0;
}

int br_cluster_start(const char *url, const char *node, BrCluster **ret, CmError *err)
{
    _cleanup_free_ char *eurl = NULL;
    BrCluster *c;
    int r;

    if (!node || !*node || strlen(node) >= BR_CLUSTER_NODE_MAX)
        return cm_error_set(err, CM_ERROR_INVALID, "node_name",
                            "the node name must have 1 to %d"
                            " characters",
                            BR_CLUSTER_NODE_MAX - 1);
    for (const char *p = node; *p; p++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:-", *p))
            return cm_error_set(err, CM_ERROR_INVALID, "node_name",
                                "the node name '%s' may hold letters, digits and . _ : - only",
                                node);
    c = calloc(1, sizeof(*c));
    if (!c)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    cm_strscpy(c->node, sizeof(c->node), node);
    snprintf(c->app, sizeof(c->app), "cloudbroker:%s", node);
    if (strncmp(url, "postgresql://", 13) != 0 && strncmp(url, "postgres://", 11) != 0) {
        /* SQLite: one broker, which holds every loop. */
        for (int i = 0; i < BR_LOOP_MAX; i++)
            atomic_store(&c->leads[i], true);
        *ret = c;
        return 0;
    }
    eurl = election_url(url, c->app);
    r = eurl ? cm_db_open_url(eurl, CM_DB_READWRITE, &c->db, err)
             : cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    if (r >= 0)
        r = same_name_connected(c, err);
    if (r >= 0)
        r = cm_worker_start(&(CmWorkerConfig){.name = "election", .run = election_pass, .ctx = c},
                            &c->worker, err);
    if (r < 0) {
        br_cluster_stop(c);
        return r;
    }
    cm_log_info("cluster: this broker is '%s'", node);
    *ret = c;
    return 0;
}

void br_cluster_want(BrCluster *c, BrLoop loop)
{
    if (!atomic_exchange(&c->wanted[loop], true))
        cm_worker_wake(c->worker);
}

bool br_cluster_gate(void *ctx, const char *name)
{
    BrCluster *c = ctx;

    for (int i = 0; i < BR_LOOP_MAX; i++) {
        if (!cm_streq(worker_names[i], name))
            continue;
        br_cluster_want(c, (BrLoop)i);
        if (!atomic_load(&c->leads[i]))
            return false;
        atomic_fetch_add(&c->passes[i], 1);
        return true;
    }
    return true;
}

BrCluster *br_cluster_stop(BrCluster *c)
{
    if (!c)
        return NULL;
    c->worker = cm_worker_stop(c->worker);
    /* Closing the connection ends the session: PostgreSQL releases its locks. */
    c->db = cm_db_close(c->db);
    free(c);
    return NULL;
}

const char *br_cluster_node(const BrCluster *c)
{
    return c->node;
}

bool br_cluster_shared(const BrCluster *c)
{
    return c->db != NULL;
}

bool br_cluster_leads(BrCluster *c, BrLoop loop)
{
    return atomic_load(&c->leads[loop]);
}

int br_cluster_metrics(BrCluster *c, char **text)
{
    static const char *const heads[3] = {
        "# HELP cloudbroker_loop_leader 1 while this broker runs the elected loop.\n"
        "# TYPE cloudbroker_loop_leader gauge\n",
        "# HELP cloudbroker_loop_passes_total Passes of the elected loop run here since start.\n"
        "# TYPE cloudbroker_loop_passes_total counter\n",
        "# HELP cloudbroker_loop_elections_total Times this broker took the elected loop.\n"
        "# TYPE cloudbroker_loop_elections_total counter\n",
    };
    static const char *const series[3] = {"cloudbroker_loop_leader",
                                          "cloudbroker_loop_passes_total",
                                          "cloudbroker_loop_elections_total"};
    _cleanup_free_ char *out = NULL;

    if (!c)
        return 0;
    out = strdup(*text ? *text : "");
    for (int k = 0; out && k < 3; k++) {
        char *next = cm_strdup_printf("%s%s", out, heads[k]);
        free(out);
        out = next;
        for (int i = 0; out && i < BR_LOOP_MAX; i++) {
            uint64_t v = k == 0   ? atomic_load(&c->leads[i])
                         : k == 1 ? atomic_load(&c->passes[i])
                                  : atomic_load(&c->elections[i]);
            next = cm_strdup_printf("%s%s{loop=\"%s\"} %llu\n", out, series[k],
                                    br_loop_to_string((BrLoop)i), (unsigned long long)v);
            free(out);
            out = next;
        }
    }
    if (!out)
        return -ENOMEM;
    free(*text);
    *text = TAKE_PTR(out);
    return 0;
}

void br_cluster_default_node(const char *listen, char *buf, size_t size)
{
    char host[BR_CLUSTER_NODE_MAX] = "localhost";
    const char *colon = listen ? strrchr(listen, ':') : NULL;
    const char *port = colon && colon[1] && strcmp(colon + 1, "0") != 0 ? colon + 1 : NULL;
    char tail[24];

    if (gethostname(host, sizeof(host)) < 0 || !host[0])
        cm_strscpy(host, sizeof(host), "localhost");
    host[sizeof(host) - 1] = '\0';
    if (port)
        snprintf(tail, sizeof(tail), ":%.8s", port);
    else
        snprintf(tail, sizeof(tail), ":pid%ld", (long)getpid());
    /* The tail is kept whole: it tells two brokers of one machine apart. */
    if (size > BR_CLUSTER_NODE_MAX)
        size = BR_CLUSTER_NODE_MAX;
    if (size <= strlen(tail))
        return;
    snprintf(buf, size, "%.*s%s", (int)(size - 1 - strlen(tail)), host, tail);
    for (char *p = buf; *p; p++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:-", *p))
            *p = '-';
}
