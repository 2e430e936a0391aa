/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "br-config.h"
#include "br-notification.h"
#include "br-policy.h"
#include "br-store.h"
#include "cm-error.h"

typedef struct BrHttp BrHttp;
typedef struct BrHosts BrHosts;
typedef struct BrJobs BrJobs;
typedef struct BrReconciler BrReconciler;
typedef struct BrMetering BrMetering;
typedef struct BrAssessor BrAssessor;
typedef struct BrConsole BrConsole;
typedef struct BrMailer BrMailer;
typedef struct BrCluster BrCluster;

typedef struct BrDaemon {
    BrConfig config;
    BrStore *store;
    char *material_dir;
    pthread_mutex_t policies_lock;
    BrPolicies *policies;
    uint64_t policies_generation; /* bumped by every reload, for caches */
    BrHttp *http;
    BrHosts *hosts;
    BrJobs *jobs;
    BrReconciler *reconciler;
    BrMetering *metering;
    BrAssessor *assessor;
    BrConsole *console;         /* NULL when the console folder is missing */
    BrMailer *mailer;           /* NULL without smtp */
    struct CmWorker *host_sync; /* several brokers: watches hosts registered elsewhere */
    BrCluster *cluster;         /* the elections of the once-per-cluster loops (br-cluster.h) */
    BrNotifyConfig notify;
    uint16_t port; /* the port actually bound (for --listen ...:0) */
} BrDaemon;

/**
 * br_daemon_open:
 * Prepares the state folder (database, material store, admin token on first start) and
 * loads the policies. Does not listen yet.
 * Returns: 0, or a negative errno with @err set.
 */
int br_daemon_open(BrDaemon *d, CmError *err);

/** br_daemon_close: stops serving and releases everything. */
void br_daemon_close(BrDaemon *d);

/**
 * br_daemon_reload_policies:
 * Loads the policy folder again and swaps it in; on error the old policies stay.
 * Returns: 0, or a negative errno with @err set.
 */
int br_daemon_reload_policies(BrDaemon *d, CmError *err);

/** br_daemon_policies: Returns: a reference to the current policies (unref when done). */
BrPolicies *br_daemon_policies(BrDaemon *d);

/** br_daemon_policies_generation: Returns: a counter bumped by every policy reload. */
uint64_t br_daemon_policies_generation(BrDaemon *d);
