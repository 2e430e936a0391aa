/* SPDX-License-Identifier: Apache-2.0 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>

#include "br-daemon.h"
#include "br-host-outage.h"
#include "br-http.h"
#include "br-account.h"
#include "br-assess.h"
#include "br-cluster.h"
#include "br-console.h"
#include "br-mailer.h"
#include "br-password.h"
#include "br-tx.h"
#include "br-host.h"
#include "br-hosts.h"
#include "br-steps.h"
#include "br-metering.h"
#include "br-reconciler.h"
#include "br-schemas.h"
#include "br-virt.h"
#include "cm-crypto.h"
#include "cm-json.h"
#include "cm-log.h"
#include "cm-time.h"
#include "cm-util.h"
#include "cm-worker.h"

typedef struct {
    const char *token_hash;
    int64_t id;
} AdminBootstrap;

static int bootstrap_admin_tx(BrTx *tx, void *ctx)
{
    AdminBootstrap *w = ctx;
    BrAccountFields none = {.disabled = -1, .email_notifications = -1};
    int r = br_account_create(tx, "admin", "admin", 0, w->token_hash, &none, &w->id);
    if (r < 0)
        return r;
    br_tx_audit_set(tx, "account.bootstrap", "account", w->id,
                    "{\"name\":\"admin\",\"role\":\"admin\"}");
    return 0;
}

/* On the first start: an admin account whose token is written once to STATE/admin.token. */
static int bootstrap_admin(BrDaemon *d, CmError *err)
{
    char token[CM_TOKEN_LEN + 1], hash[CM_SHA256_HEX_LEN + 1];
    _cleanup_free_ char *path = NULL, *line = NULL;
    AdminBootstrap w = {.token_hash = hash};
    CmDb *db = br_store_db(d->store, err);
    int r;

    if (!db)
        return -EIO;
    r = br_account_any(db, err);
    if (r != 0)
        return r < 0 ? r : 0;

    if (cm_token_new(token) < 0 || cm_token_hash(token, hash) < 0)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "no randomness for the admin token");
    path = cm_strdup_printf("%s/admin.token", d->config.state_dir);
    line = cm_strdup_printf("%s\n", token);
    if (!path || !line)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");

    /* The token file first: an account whose token was never written would lock us out. */
    r = cm_write_file_atomic(path, line, strlen(line), 0600);
    explicit_bzero(token, sizeof(token));
    explicit_bzero(line, strlen(line));
    if (r < 0)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "cannot write %s: %s", path, strerror(-r));
    r = br_tx_run(d->store, "account.bootstrap", NULL, bootstrap_admin_tx, &w, err);
    if (r < 0)
        return r;
    cm_log_notice("first start: the admin token is in %s (mode 0600)", path);
    printf("cloudbrokerd: first start; admin token written to %s\n", path);
    fflush(stdout);
    return 0;
}

static void remove_files_in(const char *dir)
{
    DIR *dp = opendir(dir);
    struct dirent *de;
    unsigned n = 0;
    if (!dp)
        return;
    while ((de = readdir(dp)))
        if (de->d_type == DT_REG && unlinkat(dirfd(dp), de->d_name, 0) == 0)
            n++;
    closedir(dp);
    if (n)
        cm_log_notice("removed %u unfinished upload(s) from %s", n, dir);
}

typedef struct {
    BrDaemon *d;
    int64_t host_id;
    const char *since;
} HostLost;

static int host_lost_tx(BrTx *tx, void *ctx)
{
    HostLost *w = ctx;
    _cleanup_json_ json_object *detail = json_object_new_object();
    _cleanup_free_ char *dedup = NULL;
    char name[128];
    int r = br_host_name(tx->db, w->host_id, name, sizeof(name), tx->err);

    if (r <= 0)
        return r; /* removed meanwhile: nobody to tell */
    {
        char now[CM_TIME_ISO_LEN + 1];
        cm_time_iso(cm_now_ms(), now);
        r = br_host_outage_begin(tx->db, w->host_id, now, tx->err);
        if (r < 0)
            return r;
    }
    dedup = cm_strdup_printf("host_disconnected:%lld:%s", (long long)w->host_id, w->since);
    if (!dedup)
        return cm_error_set(tx->err, CM_ERROR_INTERNAL, "", "out of memory");
    json_object_object_add(detail, "connected_since", json_object_new_string(w->since));
    BrNotice n = {.kind = BR_NOTIFY_HOST_DISCONNECTED,
                  .to = BR_TO_VENDORS,
                  .object_type = "host",
                  .object_id = w->host_id,
                  .object_name = name,
                  .detail = detail,
                  .dedup = dedup};
    r = br_notification_raise(tx->db, &w->d->notify, tx->actor, &n, tx->err);
    return r < 0 ? r : 0;
}

/* A host's connection dropped: its vendors are told (once per connection). */
static void host_lost(void *ctx, int64_t host_id, const char *since)
{
    HostLost w = {.d = ctx, .host_id = host_id, .since = since};
    CmError err = {0};
    if (br_tx_run(w.d->store, "host.lost", NULL, host_lost_tx, &w, &err) < 0)
        cm_log_error("host %lld: cannot record the notification: %s", (long long)host_id,
                     err.message);
}

static int host_up_tx(BrTx *tx, void *ctx)
{
    HostLost *w = ctx;
    return br_host_outage_end(tx->db, w->host_id, w->since, tx->err);
}

/* A connection to a host was made: the host's open outage, if any, ends (the scorecard's
 * availability, docs/service-quality.md). */
static void host_up(void *ctx, int64_t host_id, const char *since)
{
    HostLost w = {.d = ctx, .host_id = host_id, .since = since};
    CmError err = {0};
    if (br_tx_run(w.d->store, "host.up", NULL, host_up_tx, &w, &err) < 0)
        cm_log_error("host %lld: cannot record the connection: %s", (long long)host_id,
                     err.message);
}

/* Keeps a connection to every host of the database (a known one is left as it is). */
static int watch_hosts(BrDaemon *d, CmError *err)
{
    _cleanup_json_ json_object *hosts = NULL;
    CmDb *db = br_store_db(d->store, err);
    int r;

    if (!db)
        return -EIO;
    r = br_host_connections(db, &hosts, err);
    if (r < 0)
        return r;
    for (size_t i = 0; i < json_object_array_length(hosts); i++) {
        json_object *h = json_object_array_get_idx(hosts, i);
        br_hosts_watch(d->hosts, cm_json_get_int(h, "id", 0), cm_json_get_str(h, "uri", NULL),
                       cm_json_get_str(h, "storage_pool", NULL));
    }
    return 0;
}

#define HOST_SYNC_MS 2000

static int64_t host_sync_pass(void *ctx)
{
    BrDaemon *d = ctx;
    CmError err = {0};

    if (watch_hosts(d, &err) < 0)
        cm_log_warning("hosts: cannot read the hosts other brokers registered: %s", err.message);
    return HOST_SYNC_MS;
}

/* The libvirt connections, the job workers and the reconciler. */
static int start_hypervisor_work(BrDaemon *d, CmError *err)
{
    int r;

    r = br_virt_init(err);
    if (r < 0)
        return r;
    d->hosts = br_hosts_new();
    if (!d->hosts)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    br_hosts_on_lost(d->hosts, host_lost, d);
    br_hosts_on_up(d->hosts, host_up, d);
    r = watch_hosts(d, err);
    if (r < 0)
        return r;
    /* Several brokers: a host registered through another broker is watched here too. */
    if (br_cluster_shared(d->cluster))
        r = cm_worker_start(&(CmWorkerConfig){.name = "host sync",
                                              .run = host_sync_pass,
                                              .ctx = d,
                                              .first_delay_ms = HOST_SYNC_MS},
                            &d->host_sync, err);
    if (r < 0)
        return r;
    BrJobsOptions jo = {.workers = d->config.job_workers,
                        .node = br_cluster_node(d->cluster),
                        .leases = br_cluster_shared(d->cluster),
                        .lease_seconds = d->config.job_lease_seconds};
    r = br_jobs_start(d->store, &br_steps_job_callbacks, d, &jo, &d->jobs, err);
    if (r < 0)
        return r;
    r = br_metering_start(d, &d->metering, err);
    if (r < 0)
        return r;
    r = br_assessor_start(d, &d->assessor, err);
    if (r < 0)
        return r;
    return br_reconciler_start(d, &d->reconciler, err);
}

/*
 * This broker's node name, and the elections of the loops that run once per cluster: their
 * passes are held back by the gate on every broker but the one that holds them.
 */
static int start_cluster(BrDaemon *d, const char *db_url, CmError *err)
{
    char node[BR_CLUSTER_NODE_MAX];
    int r;

    if (d->config.node_name)
        cm_strscpy(node, sizeof(node), d->config.node_name);
    else
        br_cluster_default_node(d->config.listen, node, sizeof(node));
    if (d->config.node_name && strlen(d->config.node_name) >= sizeof(node))
        return cm_error_set(err, CM_ERROR_INVALID, "node_name",
                            "the node name must have at most %zu characters", sizeof(node) - 1);
    r = br_cluster_start(db_url, node, &d->cluster, err);
    if (r < 0)
        return r;
    /* The loops this broker starts below; the mailer only with smtp. */
    for (int i = 0; i < BR_LOOP_MAX; i++)
        if (i != BR_LOOP_MAILER || d->config.smtp.url)
            br_cluster_want(d->cluster, (BrLoop)i);
    cm_worker_set_gate(br_cluster_gate, d->cluster);
    return 0;
}

/* Passwords, the console's files, notifications and their mail. */
static int start_console_work(BrDaemon *d, CmError *err)
{
    CmError missing = {0};
    int r;

    if (br_password_init() < 0)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "libsodium cannot be initialized");
    if (!d->config.console_dir) {
        d->config.console_dir = strdup(br_console_default_dir());
        if (!d->config.console_dir)
            return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    }
    if (br_console_open(d->config.console_dir, &d->console, &missing) < 0) {
        if (missing.kind != CM_ERROR_NOT_FOUND) {
            *err = missing;
            return cm_error_kind_errno(missing.kind);
        }
        cm_log_notice("%s: GET / answers 503 until the console is built", missing.message);
    }
    d->notify =
        (BrNotifyConfig){.mail = d->config.smtp.url != NULL, .public_url = d->config.public_url};
    br_store_set_audit_hook(d->store, br_notification_audit_hook, &d->notify);
    if (!d->config.smtp.url)
        return 0;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "libcurl cannot be initialized");
    r = br_mailer_start(d, &d->mailer, err);
    return r < 0 ? r : 0;
}

int br_daemon_open(BrDaemon *d, CmError *err)
{
    _cleanup_free_ char *db_url = NULL, *key_path = NULL, *tmp = NULL;
    int r;

    pthread_mutex_init(&d->policies_lock, NULL);
    r = br_schemas_init(err);
    if (r < 0)
        return r;
    if (!d->config.state_dir)
        return cm_error_set(err, CM_ERROR_INVALID, "state_dir", "a state folder is required");
    r = cm_mkdir_p(d->config.state_dir, 0700);
    if (r < 0)
        return cm_error_set(err, CM_ERROR_INTERNAL, "state_dir", "cannot create %s: %s",
                            d->config.state_dir, strerror(-r));

    d->material_dir = cm_strdup_printf("%s/materials", d->config.state_dir);
    tmp = cm_strdup_printf("%s/materials/tmp", d->config.state_dir);
    db_url = d->config.database ? strdup(d->config.database)
                                : cm_strdup_printf("sqlite:%s/cloudbroker.db", d->config.state_dir);
    key_path = cm_strdup_printf("%s/audit.key", d->config.state_dir);
    if (!d->material_dir || !tmp || !db_url || !key_path)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    r = cm_mkdir_p(tmp, 0700);
    if (r < 0)
        return cm_error_set(err, CM_ERROR_INTERNAL, "state_dir", "cannot create %s: %s", tmp,
                            strerror(-r));
    /* Uploads cut off by a crash left their partial files here; no request refers to them. */
    remove_files_in(tmp);

    r = br_policies_load(d->config.policy_dir, &d->policies, err);
    if (r < 0)
        return r;
    r = br_config_check_database(db_url, err);
    if (r < 0)
        return r;
    r = br_store_open(db_url, key_path, &d->store, err);
    if (r < 0)
        return r;
    br_store_set_anchor_every(d->store, d->config.audit_anchor_every);
    r = bootstrap_admin(d, err);
    if (r < 0)
        return r;
    r = start_cluster(d, db_url, err);
    if (r < 0)
        return r;
    r = start_console_work(d, err);
    if (r < 0)
        return r;
    return start_hypervisor_work(d, err);
}

void br_daemon_close(BrDaemon *d)
{
    br_http_stop(d);
    d->reconciler = br_reconciler_stop(d->reconciler);
    d->metering = br_metering_stop(d->metering);
    d->assessor = br_assessor_stop(d->assessor);
    d->jobs = br_jobs_stop(d->jobs);
    d->host_sync = cm_worker_stop(d->host_sync);
    d->hosts = br_hosts_free(d->hosts);
    d->mailer = br_mailer_stop(d->mailer);
    if (d->cluster)
        cm_worker_set_gate(NULL, NULL);
    d->cluster = br_cluster_stop(d->cluster);
    d->console = br_console_free(d->console);
    d->store = br_store_free(d->store);
    d->policies = br_policies_unref(d->policies);
    free(d->material_dir);
    d->material_dir = NULL;
    pthread_mutex_destroy(&d->policies_lock);
    br_schemas_free();
}

int br_daemon_reload_policies(BrDaemon *d, CmError *err)
{
    BrPolicies *fresh = NULL, *old;
    int r = br_policies_load(d->config.policy_dir, &fresh, err);
    if (r < 0)
        return r;
    pthread_mutex_lock(&d->policies_lock);
    old = d->policies;
    d->policies = fresh;
    __atomic_add_fetch(&d->policies_generation, 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&d->policies_lock);
    br_policies_unref(old);
    return 0;
}

uint64_t br_daemon_policies_generation(BrDaemon *d)
{
    return __atomic_load_n(&d->policies_generation, __ATOMIC_ACQUIRE);
}

BrPolicies *br_daemon_policies(BrDaemon *d)
{
    BrPolicies *p;
    pthread_mutex_lock(&d->policies_lock);
    p = br_policies_ref(d->policies);
    pthread_mutex_unlock(&d->policies_lock);
    return p;
}
