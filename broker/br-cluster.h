/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "cm-enum.h"
#include "cm-error.h"

/*
 * Several brokers on one PostgreSQL database: the loops that must run once per cluster are
 * elected. Each such loop has a session-level advisory lock; a broker that wants the loop tries
 * to take its lock every second on a connection of its own that it keeps (the election
 * connection), and runs the loop's passes while it holds it. When the holder dies, its
 * connection goes and PostgreSQL releases the lock: another broker takes it within a second.
 * The loops' modules know nothing of this: the passes are held back through the CmWorker gate
 * (cm_worker_set_gate()), by the loops' names. On SQLite (one broker) this broker holds every
 * loop it runs. See docs/architecture.md, Several brokers.
 */
typedef enum {
    BR_LOOP_RECONCILER, /* br-reconciler.c, CmWorker "reconciler" */
    BR_LOOP_ROLLUP,     /* br-metering.c, "rollup" */
    BR_LOOP_ASSESSMENT, /* br-assess.c, "assessment" */
    BR_LOOP_SWEEPER,    /* br-jobs.c's sweeper (trial deadlines, purges), "job sweeper" */
    BR_LOOP_MAILER,     /* br-mailer.c, "mailer": the outbox is sent by one broker */
    BR_LOOP_MAX,
} BrLoop;

CM_ENUM_DECL(br_loop, BrLoop)

/* The longest node name: the election connection's application_name carries it. */
#define BR_CLUSTER_NODE_MAX 48

typedef struct BrCluster BrCluster;

/**
 * br_cluster_start:
 * Starts the elections of this broker, named @node, on the database @url: on PostgreSQL it
 * opens the election connection (application_name "cloudbroker:NODE"), refuses to start when
 * a broker of the same name is connected (-EBUSY, CM_ERROR_CONFLICT), and runs the election
 * every second; on SQLite (one broker) it holds every loop and runs nothing. The daemon then
 * installs br_cluster_gate() with cm_worker_set_gate().
 * Returns: 0 and the cluster in @ret, or a negative errno with @err set.
 */
int br_cluster_start(const char *url, const char *node, BrCluster **ret, CmError *err);

/** br_cluster_want: this broker runs @loop and stands for its election. */
void br_cluster_want(BrCluster *c, BrLoop loop);

/**
 * br_cluster_gate:
 * The CmWorkerGate of the daemon (@ctx is the cluster): a loop named as an elected one runs
 * its pass only while this broker holds it (and stands for it from its first ask); every
 * other loop runs. Returns: true when the loop @name may run a pass now.
 */
bool br_cluster_gate(void *ctx, const char *name);

/**
 * br_cluster_stop:
 * Stops the elections and closes the election connection (the locks go with it). Call it
 * after the gate was removed and the loops stopped. Accepts NULL. Returns: NULL.
 */
BrCluster *br_cluster_stop(BrCluster *c);

/** br_cluster_node: Returns: this broker's node name. */
const char *br_cluster_node(const BrCluster *c);

/** br_cluster_shared: Returns: true on PostgreSQL, where other brokers may share the database. */
bool br_cluster_shared(const BrCluster *c);

/** br_cluster_leads: Returns: true while this broker holds @loop. */
bool br_cluster_leads(BrCluster *c, BrLoop loop);

/**
 * br_cluster_metrics:
 * For /metrics: appends the series cloudbroker_loop_leader{loop} (1 while this broker holds
 * it), cloudbroker_loop_passes_total{loop} (passes run here since start) and
 * cloudbroker_loop_elections_total{loop} (times this broker took it) to *@text (malloc'ed;
 * replaced). Accepts a NULL cluster (appends nothing). Returns: 0, or -ENOMEM (*@text
 * unchanged).
 */
int br_cluster_metrics(BrCluster *c, char **text);

/**
 * br_cluster_default_node:
 * The default node name: the host name and the port of @listen ("HOST:PORT"; with port 0 the
 * process id instead), cut to BR_CLUSTER_NODE_MAX - 1 bytes, into @buf.
 */
void br_cluster_default_node(const char *listen, char *buf, size_t size);
