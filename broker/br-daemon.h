/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "br-notification.h"
#include "br-policy.h"
#include "br-store.h"
#include "cm-error.h"

typedef struct {
    char *state_dir;
    char *listen;      /* "HOST:PORT" */
    char *policy_dir;
    char *config_path;
    char *tls_cert;    /* PEM paths; HTTPS when both are set */
    char *tls_key;
    unsigned threads;
    unsigned max_connections;
    unsigned max_connections_per_ip;
    size_t max_body_bytes;    /* JSON bodies */
    size_t max_header_bytes;  /* per-connection memory for the request line and headers */
    unsigned timeout_seconds;
    unsigned job_workers;
    bool verbose;

    /* The web console and people's sign-in (docs/operator-guide.md). */
    char *console_dir;   /* the built console; NULL: the build tree's or the installed one */
    char *public_url;    /* how people reach the broker ("https://gov.example/cloud/"), or NULL */
    char *time_zone;     /* the city's zone the console shows times in */
    unsigned session_idle_seconds;
    unsigned session_lifetime_seconds;
    unsigned sign_in_link_seconds;
    struct {
        unsigned account_failures; /* failed sign-ins of one name in the window that lock it */
        unsigned address_failures; /* of one address */
        unsigned window_seconds;
        unsigned lockout_seconds;
    } sign_in;
    struct {
        char *url;           /* "smtp://relay:25" or "smtps://…"; NULL: no e-mail */
        char *from;          /* the sender address */
        char *user;          /* optional SMTP AUTH user */
        char *password_file; /* its password, read at start */
        unsigned timeout_seconds;
        unsigned retry_seconds; /* the first wait after a failure; doubles to an hour */
    } smtp;
} BrConfig;

typedef struct BrHttp BrHttp;
typedef struct BrHosts BrHosts;
typedef struct BrJobs BrJobs;
typedef struct BrReconciler BrReconciler;
typedef struct BrMetering BrMetering;
typedef struct BrAssessor BrAssessor;
typedef struct BrConsole BrConsole;
typedef struct BrMailer BrMailer;

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
    BrConsole *console; /* NULL when the console folder is missing */
    BrMailer *mailer;   /* NULL without smtp */
    BrNotifyConfig notify;
    uint16_t port; /* the port actually bound (for --listen ...:0) */
} BrDaemon;

/** br_config_init_defaults: fills @c with the defaults of DESIGN.md. */
void br_config_init_defaults(BrConfig *c);

/**
 * br_config_load_file:
 * Reads the JSON config at @path (checked against schemas/config.json) into @c.
 * Returns: 0, or a negative errno with @err naming the field.
 */
int br_config_load_file(BrConfig *c, const char *path, CmError *err);

void br_config_clear(BrConfig *c);

/**
 * br_config_check:
 * Checks what can be checked before anything is created: the listen address, the TLS files.
 * Returns: 0, or a negative errno with @err naming the setting.
 */
int br_config_check(const BrConfig *c, CmError *err);

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

/**
 * br_http_start / br_http_stop:
 * Start and stop the HTTP(S) server for @d on its configured address.
 * Returns: 0, or a negative errno with @err set.
 */
int br_http_start(BrDaemon *d, CmError *err);
void br_http_stop(BrDaemon *d);
