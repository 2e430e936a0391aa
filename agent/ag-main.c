/* SPDX-License-Identifier: Apache-2.0 */
/* cloudbroker-agent: meters one hypervisor host's instances for the broker. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "ag-agent.h"
#include "cb-config.h"
#include "cm-db.h"
#include "cm-log.h"
#include "cm-notify.h"
#include "cm-time.h"
#include "cm-util.h"

static void usage(FILE *f)
{
    fprintf(f, "Usage: cloudbroker-agent --broker URL --token-file F --spool FILE [OPTIONS]\n"
               "\n"
               "Meters every instance on one hypervisor host, keeps finished windows in a durable\n"
               "spool and delivers them to the broker. Each cycle reads every domain's state, CPU\n"
               "and network; the balloon and block groups, which make libvirt ask QEMU, are read\n"
               "every slow interval, a share of the domains in each cycle.\n"
               "\n"
               "Options:\n"
               "  --uri URI              libvirt URI (default qemu:///system)\n"
               "  --broker URL           the broker: https://..., or http:// on loopback\n"
               "  --token-file F         the host's agent token (POST /v1/hosts gives it once)\n"
               "  --spool FILE           the SQLite spool of unsent windows\n"
               "  --interval S           seconds between readings (default 10)\n"
               "  --window S             seconds per window, a multiple of the interval (300)\n"
               "  --slow-interval S      seconds between a domain's balloon and block readings: a\n"
               "                         multiple of the interval dividing the window (60); equal\n"
               "                         to the interval: every group every cycle, in one call\n"
               "  --metrics-listen A:P   serve /metrics (Prometheus) there, e.g. 127.0.0.1:8471\n"
               "  --spool-max-bytes N    bound of the spool; the oldest windows go first (64 MiB)\n"
               "  --ca-file F            CA certificates for an https broker\n"
               "  --pinned-public-key K  libcurl pin: sha256//BASE64\n"
               "  --config FILE          the same keys in JSON (schemas/agent-config.json)\n"
               "  --once                 run one cycle, flush what is due, and exit\n"
               "  --verbose              log debug messages\n"
               "  --version, --help\n"
               "\n"
               "SIGTERM/SIGINT stop cleanly; unsent windows stay in the spool for the next run.\n");
}

static void set(char **dst, const char *v)
{
    free(*dst);
    *dst = strdup(v);
}

enum {
    O_URI = 256,
    O_BROKER,
    O_TOKEN,
    O_SPOOL,
    O_INTERVAL,
    O_WINDOW,
    O_SLOW,
    O_METRICS,
    O_MAX,
    O_CA,
    O_PIN,
    O_CONFIG,
    O_ONCE,
    O_VERBOSE,
    O_VERSION,
    O_HELP
};

int main(int argc, char **argv)
{
    static const struct option options[] = {
        {"uri", required_argument, NULL, O_URI},
        {"broker", required_argument, NULL, O_BROKER},
        {"token-file", required_argument, NULL, O_TOKEN},
        {"spool", required_argument, NULL, O_SPOOL},
        {"interval", required_argument, NULL, O_INTERVAL},
        {"window", required_argument, NULL, O_WINDOW},
        {"slow-interval", required_argument, NULL, O_SLOW},
        {"metrics-listen", required_argument, NULL, O_METRICS},
        {"spool-max-bytes", required_argument, NULL, O_MAX},
        {"ca-file", required_argument, NULL, O_CA},
        {"pinned-public-key", required_argument, NULL, O_PIN},
        {"config", required_argument, NULL, O_CONFIG},
        {"once", no_argument, NULL, O_ONCE},
        {"verbose", no_argument, NULL, O_VERBOSE},
        {"version", no_argument, NULL, O_VERSION},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    AgConfig cfg, flags;
    AgAgent *agent = NULL;
    CmError err = {0};
    const char *config_path = NULL;
    bool once = false;
    int64_t v;
    sigset_t mask;
    int c, r = 0;

    ag_config_init_defaults(&cfg);
    memset(&flags, 0, sizeof(flags));
    flags.interval = flags.window = flags.slow_interval = flags.spool_max_bytes = -1;
    while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (c) {
        case O_URI:
            set(&flags.uri, optarg);
            break;
        case O_BROKER:
            set(&flags.broker, optarg);
            break;
        case O_TOKEN:
            set(&flags.token_file, optarg);
            break;
        case O_SPOOL:
            set(&flags.spool, optarg);
            break;
        case O_METRICS:
            set(&flags.metrics_listen, optarg);
            break;
        case O_CA:
            set(&flags.ca_file, optarg);
            break;
        case O_PIN:
            set(&flags.pinned_public_key, optarg);
            break;
        case O_CONFIG:
            config_path = optarg;
            break;
        case O_ONCE:
            once = true;
            break;
        case O_VERBOSE:
            flags.verbose = true;
            break;
        case O_INTERVAL:
        case O_WINDOW:
        case O_SLOW:
        case O_MAX:
            if (cm_parse_int64(optarg, 1, INT64_MAX, &v) < 0) {
                fprintf(stderr, "cloudbroker-agent: %s needs a positive number\n",
                        argv[optind - 1]);
                r = 2;
                goto out;
            }
            if (c == O_INTERVAL)
                flags.interval = v;
            else if (c == O_WINDOW)
                flags.window = v;
            else if (c == O_SLOW)
                flags.slow_interval = v;
            else
                flags.spool_max_bytes = v;
            break;
        case O_VERSION:
            printf("cloudbroker-agent %s\n", CB_VERSION);
            goto out;
        case O_HELP:
            usage(stdout);
            goto out;
        default:
            usage(stderr);
            r = 2;
            goto out;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "cloudbroker-agent: unexpected argument '%s'\n", argv[optind]);
        r = 2;
        goto out;
    }
    cm_log_set_ident("cloudbroker-agent");
    cm_db_global_init();
    /* The config file first, the flags over it. */
    if (config_path && ag_config_load_file(&cfg, config_path, &err) < 0) {
        fprintf(stderr, "cloudbroker-agent: config %s: %s%s%s\n", config_path, err.message,
                *err.field ? " at " : "", err.field);
        r = 1;
        goto out;
    }
#define TAKE(f)                                                                                    \
    if (flags.f) {                                                                                 \
        free(cfg.f);                                                                               \
        cfg.f = TAKE_PTR(flags.f);                                                                 \
    }
    TAKE(uri)
    TAKE(broker)
    TAKE(token_file)
    TAKE(spool)
    TAKE(metrics_listen)
    TAKE(ca_file)
    TAKE(pinned_public_key)
#undef TAKE
    if (flags.interval > 0)
        cfg.interval = flags.interval;
    if (flags.window > 0)
        cfg.window = flags.window;
    if (flags.slow_interval > 0)
        cfg.slow_interval = flags.slow_interval;
    if (flags.spool_max_bytes > 0)
        cfg.spool_max_bytes = flags.spool_max_bytes;
    if (flags.verbose)
        cfg.verbose = true;
    cm_log_set_level(cfg.verbose ? CM_LOG_DEBUG : CM_LOG_INFO);
    if (ag_config_check(&cfg, &err) < 0) {
        fprintf(stderr, "cloudbroker-agent: %s (%s)\n", err.message, err.field);
        r = 2;
        goto out;
    }

    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    pthread_sigmask(SIG_BLOCK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);

    if (ag_agent_new(&cfg, &agent, &err) < 0 || ag_agent_start(agent, &err) < 0) {
        cm_log_error("cannot start: %s%s%s", err.message, *err.field ? " at " : "", err.field);
        r = 1;
        goto out;
    }
    cm_log_notice("metering %s every %llds (balloon and block every %llds) in %llds windows "
                  "for %s",
                  cfg.uri, (long long)cfg.interval, (long long)ag_config_slow_interval(&cfg),
                  (long long)cfg.window, cfg.broker);
    cm_notify("READY=1");

    uint64_t wd = cm_notify_watchdog_usec();
    for (;;) {
        CmError cerr = {0};
        if (ag_agent_cycle(agent, &cerr) < 0 && cm_error_is_set(&cerr))
            cm_log_warning("cycle: %s", cerr.message);
        if (wd)
            cm_notify("WATCHDOG=1");
        if (once)
            break;
        /* Sleep to the next multiple of the interval on the wall clock, so readings of
         * every agent line up with the windows; while asleep, tell the watchdog we are alive
         * every half of its timeout (a cycle that hangs still trips it). */
        int64_t now_ms = cm_now_ms();
        int64_t next = (now_ms / (cfg.interval * 1000) + 1) * cfg.interval * 1000;
        int sig = 0;
        while (sig <= 0 && (now_ms = cm_now_ms()) < next) {
            int64_t wait = next - now_ms;
            bool capped = wd && wait > (int64_t)(wd / 2000);
            if (capped)
                wait = (int64_t)(wd / 2000);
            if (wait < 1)
                wait = 1;
            struct timespec ts = {.tv_sec = (time_t)(wait / 1000),
                                  .tv_nsec = (long)(wait % 1000) * 1000000L};
            sig = sigtimedwait(&mask, NULL, &ts);
            /* Only a sleep cut short by the watchdog pings; the cycle pings for itself. */
            if (sig <= 0 && capped)
                cm_notify("WATCHDOG=1");
        }
        if (sig > 0) {
            cm_log_notice("signal %d: stopping", sig);
            break;
        }
    }
    cm_notify("STOPPING=1");

out:
    ag_agent_free(agent);
    ag_config_clear(&cfg);
    ag_config_clear(&flags);
    curl_global_cleanup();
    return r;
}
