/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "br-http-parse.h"
#include "cm-error.h"

/* cloudbrokerd's settings: the defaults, the JSON config file and its checks. */
typedef struct {
    char *state_dir;
    char *database; /* URL; NULL for sqlite:STATE_DIR/cloudbroker.db */
    char *listen;   /* "HOST:PORT" */
    char *policy_dir;
    char *config_path;
    char *tls_cert; /* PEM paths; HTTPS when both are set */
    char *tls_key;
    unsigned threads;
    unsigned max_connections;
    unsigned max_connections_per_ip;
    size_t max_body_bytes;         /* JSON bodies */
    size_t max_header_bytes;       /* the request line and header fields together */
    size_t body_budget_bytes;      /* request bodies held in memory, all connections together */
    unsigned timeout_seconds;      /* no byte in or out for this long: the connection is closed */
    unsigned head_timeout_seconds; /* a request head must arrive whole within this */
    unsigned body_timeout_seconds; /* a JSON body must arrive whole within this */
    unsigned max_query_params;
    BrNet *trusted_proxies; /* whose X-Forwarded-For names the client */
    size_t n_trusted_proxies;
    unsigned job_workers;
    char *node_name;            /* this broker among several on one database; default hostname */
    unsigned job_lease_seconds; /* a job's lease: how soon another broker takes over a dead one's */
    unsigned audit_anchor_every; /* records between two writes of STATE/audit.anchor */
    bool verbose;

    /* The web console and people's sign-in (docs/operator-guide.md). */
    char *console_dir; /* the built console; NULL: the build tree's or the installed one */
    char *public_url;  /* how people reach the broker ("https://gov.example/cloud/"), or NULL */
    char *time_zone;   /* the city's zone the console shows times in */
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
 * br_config_check_database:
 * Checks the database URL @url (NULL for the default SQLite file): sqlite:PATH, or a
 * postgresql:// URL while no broker module speaks SQLite's own API.
 * Returns: 0, or a negative errno with @err naming the setting.
 */
int br_config_check_database(const char *url, CmError *err);
