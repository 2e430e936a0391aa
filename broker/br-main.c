/* SPDX-License-Identifier: Apache-2.0 */
/* cloudbrokerd: the broker daemon. Everything but option parsing and signals is in libbroker. */
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "br-console.h"
#include "br-daemon.h"
#include "br-http.h"
#include "br-migrate-store.h"
#include "br-schemas.h"
#include "cb-config.h"
#include "cm-db.h"
#include "cm-log.h"
#include "cm-notify.h"
#include "cm-util.h"

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: cloudbrokerd --state-dir DIR [OPTIONS]\n"
            "       cloudbrokerd migrate-store --from sqlite:PATH --to postgresql://... [--json]\n"
            "\n"
            "The cloudbroker broker: runs the apply → review → trial → allocate → change →\n"
            "terminate workflow of the government cloud over a REST API.\n"
            "\n"
            "Options:\n"
            "  --state-dir DIR     database, materials, admin token and audit key (required,\n"
            "                      or state_dir in the config file)\n"
            "  --database URL      sqlite:PATH (default sqlite:DIR/cloudbroker.db) or\n"
            "                      postgresql://... (several brokers may share one)\n"
            "  --listen HOST:PORT  address to serve on (default 127.0.0.1:8470; port 0 picks one)\n"
            "  --node NAME         this broker's name among several on one PostgreSQL database\n"
            "                      (default HOSTNAME:PORT; letters, digits, . _ : -)\n"
            "  --config FILE       JSON config, checked against schemas/config.json\n"
            "  --policy-dir DIR    policy files (default %s)\n"
            "  --threads N         HTTP worker threads (default: twice the CPUs, at most 16)\n"
            "  --console-dir DIR   the built web console served at / (default %s)\n"
            "  --verbose           log debug messages\n"
            "  --check-config      load config and policies, report, and exit\n"
            "  --version           print the version and exit\n"
            "  --help              show this help\n"
            "\n"
            "Commands:\n"
            "  migrate-store       copy an SQLite state to an empty PostgreSQL database and\n"
            "                      compare every table (cloudbrokerd migrate-store --help)\n"
            "\n"
            "Signals: SIGTERM/SIGINT stop cleanly, SIGHUP reloads the policy files.\n"
            "On the first start the admin token is written to DIR/admin.token (mode 0600).\n",
            CB_POLICY_DIR, br_console_default_dir());
}

enum {
    OPT_STATE = 256,
    OPT_DATABASE,
    OPT_LISTEN,
    OPT_NODE,
    OPT_CONFIG,
    OPT_POLICY,
    OPT_THREADS,
    OPT_CONSOLE,
    OPT_VERBOSE,
    OPT_CHECK,
    OPT_VERSION,
    OPT_HELP
};

static void migrate_store_usage(FILE *f)
{
    fprintf(f,
            "Usage: cloudbrokerd migrate-store --from sqlite:PATH --to postgresql://... [--json]\n"
            "\n"
            "Copies the broker's state from an SQLite database to an empty PostgreSQL database:\n"
            "makes the schema there with the broker's migrations, copies every table in one\n"
            "transaction, sets the identity sequences past the copied ids, and compares every\n"
            "table row by row before it commits. Stop the broker first. The materials and\n"
            "audit.key stay in the state folder: start the broker with the same --state-dir\n"
            "and --database postgresql://...\n"
            "\n"
            "Options:\n"
            "  --from URL   the SQLite database (sqlite:PATH or PATH); an older schema is\n"
            "               migrated first, a newer one refused\n"
            "  --to URL     the PostgreSQL database (postgresql://...); it must hold no broker\n"
            "               rows\n"
            "  --json       print the result as one JSON object\n"
            "  --help       show this help\n"
            "\n"
            "Prints per table \"NAME N rows copied, identical\". Exit status: 0 when every\n"
            "table is identical, 1 on any failure (nothing is committed), 2 on bad usage.\n");
}

/* cloudbrokerd migrate-store: argv[0] is "migrate-store". */
static int migrate_store_main(int argc, char **argv)
{
    static const struct option options[] = {
        {"from", required_argument, NULL, 'f'},
        {"to", required_argument, NULL, 't'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *from = NULL, *to = NULL;
    BrMigrateReport report = {0};
    CmError err = {0};
    bool json = false;
    int c, r;

    while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (c) {
        case 'f':
            from = optarg;
            break;
        case 't':
            to = optarg;
            break;
        case 'j':
            json = true;
            break;
        case 'h':
            migrate_store_usage(stdout);
            return 0;
        default:
            migrate_store_usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "cloudbrokerd migrate-store: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (!from || !to) {
        fprintf(stderr, "cloudbrokerd migrate-store: --from and --to are required (see --help)\n");
        return 2;
    }

    cm_log_set_ident("cloudbrokerd");
    cm_log_set_level(CM_LOG_WARNING);
    cm_db_global_init();
    r = br_migrate_store(from, to, stderr, &report, &err);
    br_migrate_report_print(&report, json, r < 0 ? err.message : NULL, stdout);
    if (r < 0)
        fprintf(stderr, "cloudbrokerd migrate-store: %s\n", err.message);
    br_migrate_report_clear(&report);
    return r < 0 ? 1 : 0;
}

int main(int argc, char **argv)
{
    static const struct option options[] = {
        {"state-dir", required_argument, NULL, OPT_STATE},
        {"database", required_argument, NULL, OPT_DATABASE},
        {"listen", required_argument, NULL, OPT_LISTEN},
        {"node", required_argument, NULL, OPT_NODE},
        {"config", required_argument, NULL, OPT_CONFIG},
        {"policy-dir", required_argument, NULL, OPT_POLICY},
        {"threads", required_argument, NULL, OPT_THREADS},
        {"console-dir", required_argument, NULL, OPT_CONSOLE},
        {"verbose", no_argument, NULL, OPT_VERBOSE},
        {"check-config", no_argument, NULL, OPT_CHECK},
        {"version", no_argument, NULL, OPT_VERSION},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    const char *opt_state = NULL, *opt_database = NULL, *opt_listen = NULL, *opt_config = NULL,
               *opt_policy = NULL;
    const char *opt_console = NULL, *opt_node = NULL;
    long opt_threads = 0;
    bool check_only = false, verbose = false;
    BrDaemon d = {0};
    CmError err = {0};
    sigset_t mask;
    uint64_t wd_usec;
    int c, r;

    /* Two malloc arenas, not glibc's eight per CPU: the broker's threads (HTTP loop and
     * workers, the background loops, libvirt's) each took an arena of their own, and memory
     * freed in one is not reused by another. The annual assessment and the findings run of
     * assess-bench (1,000 instances) peaked at 49-53 MiB with the default, 45-48 MiB with
     * two, 43 MiB with one; GETs and writes of http-bench were the same with two. The
     * environment's MALLOC_ARENA_MAX, when set, is left to rule. */
    if (!getenv("MALLOC_ARENA_MAX"))
        mallopt(M_ARENA_MAX, 2);

    if (argc > 1 && cm_streq(argv[1], "migrate-store"))
        return migrate_store_main(argc - 1, argv + 1);

    while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (c) {
        case OPT_STATE:
            opt_state = optarg;
            break;
        case OPT_DATABASE:
            opt_database = optarg;
            break;
        case OPT_LISTEN:
            opt_listen = optarg;
            break;
        case OPT_NODE:
            opt_node = optarg;
            break;
        case OPT_CONFIG:
            opt_config = optarg;
            break;
        case OPT_POLICY:
            opt_policy = optarg;
            break;
        case OPT_CONSOLE:
            opt_console = optarg;
            break;
        case OPT_THREADS: {
            char *end;
            opt_threads = strtol(optarg, &end, 10);
            if (*end || opt_threads < 1 || opt_threads > 128) {
                fprintf(stderr, "cloudbrokerd: --threads must be 1..128\n");
                return 2;
            }
            break;
        }
        case OPT_VERBOSE:
            verbose = true;
            break;
        case OPT_CHECK:
            check_only = true;
            break;
        case OPT_VERSION:
            printf("cloudbrokerd %s\n", CB_VERSION);
            return 0;
        case OPT_HELP:
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "cloudbrokerd: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }

    cm_log_set_ident("cloudbrokerd");
    cm_db_global_init();
    br_config_init_defaults(&d.config);
    if (br_schemas_init(&err) < 0) {
        fprintf(stderr, "cloudbrokerd: %s\n", err.message);
        r = 1;
        goto out;
    }
    if (opt_config) {
        if (br_config_load_file(&d.config, opt_config, &err) < 0) {
            fprintf(stderr, "cloudbrokerd: config %s: %s%s%s\n", opt_config, err.message,
                    *err.field ? " at " : "", err.field);
            r = 1;
            goto out;
        }
        d.config.config_path = strdup(opt_config);
    }
    if (opt_state) {
        free(d.config.state_dir);
        d.config.state_dir = strdup(opt_state);
    }
    if (opt_database) {
        free(d.config.database);
        d.config.database = strdup(opt_database);
    }
    if (opt_listen) {
        free(d.config.listen);
        d.config.listen = strdup(opt_listen);
    }
    if (opt_node) {
        free(d.config.node_name);
        d.config.node_name = strdup(opt_node);
    }
    if (opt_policy) {
        free(d.config.policy_dir);
        d.config.policy_dir = strdup(opt_policy);
    }
    if (opt_threads)
        d.config.threads = (unsigned)opt_threads;
    if (opt_console) {
        free(d.config.console_dir);
        d.config.console_dir = strdup(opt_console);
    }
    if (verbose)
        d.config.verbose = true;
    cm_log_set_level(d.config.verbose ? CM_LOG_DEBUG : CM_LOG_INFO);
    if (!d.config.state_dir) {
        fprintf(stderr, "cloudbrokerd: --state-dir is required (see --help)\n");
        r = 2;
        goto out;
    }

    if (br_config_check(&d.config, &err) < 0) {
        fprintf(stderr, "cloudbrokerd: %s (%s)\n", err.message, err.field);
        r = 1;
        goto out;
    }

    if (check_only) {
        BrPolicies *p = NULL;
        if (br_policies_load(d.config.policy_dir, &p, &err) < 0) {
            fprintf(stderr, "cloudbrokerd: policies: %s%s%s\n", err.message,
                    *err.field ? " at " : "", err.field);
            r = 1;
            goto out;
        }
        br_policies_unref(p);
        printf("cloudbrokerd: configuration and policies in %s are valid\n", d.config.policy_dir);
        r = 0;
        goto out;
    }

    /* Signals are taken by sigtimedwait() below, never by a handler in a worker thread. */
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN);

    r = br_daemon_open(&d, &err);
    if (r >= 0)
        r = br_http_start(&d, &err);
    if (r < 0) {
        cm_log_error("cannot start: %s%s%s", err.message, *err.field ? " at " : "", err.field);
        br_daemon_close(&d);
        r = 1;
        goto out;
    }
    printf("cloudbrokerd: serving on %s (port %u), state in %s\n", d.config.listen, d.port,
           d.config.state_dir);
    fflush(stdout);
    cm_notify("READY=1\nSTATUS=serving");

    wd_usec = cm_notify_watchdog_usec();
    for (;;) {
        /* Wake at half the watchdog interval (or every second) to tell systemd we live. */
        uint64_t wait_us = wd_usec ? wd_usec / 2 : 1000000;
        struct timespec ts = {.tv_sec = (time_t)(wait_us / 1000000),
                              .tv_nsec = (long)(wait_us % 1000000) * 1000};
        int sig = sigtimedwait(&mask, NULL, &ts);
        if (wd_usec)
            cm_notify("WATCHDOG=1");
        if (sig < 0)
            continue;
        if (sig == SIGHUP) {
            cm_notify("RELOADING=1");
            if (br_daemon_reload_policies(&d, &err) < 0)
                cm_log_error("policy reload failed, keeping the old policies: %s%s%s", err.message,
                             *err.field ? " at " : "", err.field);
            else
                cm_log_notice("policies reloaded from %s", d.config.policy_dir);
            cm_notify("READY=1");
            continue;
        }
        cm_log_notice("signal %d: stopping", sig);
        break;
    }
    cm_notify("STOPPING=1");
    br_daemon_close(&d);
    r = 0;

out:
    br_config_clear(&d.config);
    br_schemas_free();
    return r;
}
