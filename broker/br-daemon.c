/* SPDX-License-Identifier: Apache-2.0 */
#include <arpa/inet.h>
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
#include "br-assess.h"
#include "br-console.h"
#include "br-mailer.h"
#include "br-password.h"
#include "br-tx.h"
#include "br-hosts.h"
#include "br-steps.h"
#include "br-metering.h"
#include "br-reconciler.h"
#include "br-schemas.h"
#include "br-virt.h"
#include "cb-config.h"
#include "cm-crypto.h"
#include "cm-json.h"
#include "cm-log.h"
#include "cm-time.h"
#include "cm-util.h"

void br_config_init_defaults(BrConfig *c)
{
    memset(c, 0, sizeof(*c));
    c->listen = strdup("127.0.0.1:8470");
    c->policy_dir = strdup(CB_POLICY_DIR);
    /* Two per CPU: enough to overlap fsync waits without piling up context switches, which
     * is what stretches tail latency (measured: p99 21 ms with 8 threads on 2 CPUs, 7 ms
     * with 4). */
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    c->threads = (unsigned)(cpus < 1 ? 2 : cpus > 8 ? 16 : cpus * 2);
    c->max_connections = 4096;
    c->max_connections_per_ip = 256;
    c->max_body_bytes = 1024 * 1024;
    c->max_header_bytes = 16 * 1024;
    /* Eight of the largest bodies (a batch of metering windows, 32 MiB) at once. */
    c->body_budget_bytes = 256 * 1024 * 1024;
    c->timeout_seconds = 30;
    c->head_timeout_seconds = 10;
    c->body_timeout_seconds = 60;
    c->max_query_params = 64;
    c->audit_anchor_every = 32;
    c->job_workers = 4;
    c->time_zone = strdup("Asia/Shanghai");
    c->session_idle_seconds = 1800;
    c->session_lifetime_seconds = 43200;
    c->sign_in_link_seconds = 86400;
    c->sign_in.account_failures = 5;
    c->sign_in.address_failures = 20;
    c->sign_in.window_seconds = 900;
    c->sign_in.lockout_seconds = 900;
    c->smtp.timeout_seconds = 30;
    c->smtp.retry_seconds = 30;
}

void br_config_clear(BrConfig *c)
{
    free(c->state_dir);
    free(c->database);
    free(c->listen);
    free(c->policy_dir);
    free(c->config_path);
    free(c->tls_cert);
    free(c->tls_key);
    free(c->trusted_proxies);
    free(c->console_dir);
    free(c->public_url);
    free(c->time_zone);
    free(c->smtp.url);
    free(c->smtp.from);
    free(c->smtp.user);
    free(c->smtp.password_file);
    memset(c, 0, sizeof(*c));
}

static void replace_str(char **dst, const char *src)
{
    if (!src)
        return;
    free(*dst);
    *dst = strdup(src);
}

int br_config_load_file(BrConfig *c, const char *path, CmError *err)
{
    _cleanup_json_ json_object *doc = NULL;
    json_object *tls, *limits, *proxies;
    int r;

    r = cm_json_load_file(path, 1024 * 1024, &doc, err);
    if (r < 0)
        return r;
    r = br_schema_check("config", doc, err);
    if (r < 0)
        return r;

    replace_str(&c->listen, cm_json_get_str(doc, "listen", NULL));
    replace_str(&c->policy_dir, cm_json_get_str(doc, "policy_dir", NULL));
    replace_str(&c->state_dir, cm_json_get_str(doc, "state_dir", NULL));
    replace_str(&c->database, cm_json_get_str(doc, "database", NULL));
    tls = cm_json_get(doc, "tls");
    replace_str(&c->tls_cert, cm_json_get_str(tls, "certificate", NULL));
    replace_str(&c->tls_key, cm_json_get_str(tls, "key", NULL));
    c->threads = (unsigned)cm_json_get_int(doc, "threads", c->threads);
    limits = cm_json_get(doc, "limits");
    c->max_connections = (unsigned)cm_json_get_int(limits, "connections", c->max_connections);
    c->max_connections_per_ip =
        (unsigned)cm_json_get_int(limits, "connections_per_ip", c->max_connections_per_ip);
    c->max_body_bytes = (size_t)cm_json_get_int(limits, "body_bytes", (int64_t)c->max_body_bytes);
    c->max_header_bytes =
        (size_t)cm_json_get_int(limits, "header_bytes", (int64_t)c->max_header_bytes);
    c->body_budget_bytes = (size_t)cm_json_get_int(limits, "body_budget_bytes",
                                                   (int64_t)c->body_budget_bytes);
    c->timeout_seconds =
        (unsigned)cm_json_get_int(limits, "timeout_seconds", c->timeout_seconds);
    c->head_timeout_seconds =
        (unsigned)cm_json_get_int(limits, "head_timeout_seconds", c->head_timeout_seconds);
    c->body_timeout_seconds =
        (unsigned)cm_json_get_int(limits, "body_timeout_seconds", c->body_timeout_seconds);
    c->max_query_params =
        (unsigned)cm_json_get_int(limits, "query_parameters", c->max_query_params);
    proxies = cm_json_get(doc, "trusted_proxies");
    if (proxies) {
        size_t n = json_object_array_length(proxies);
        BrNet *nets = calloc(n ? n : 1, sizeof(*nets));
        if (!nets)
            return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
        for (size_t i = 0; i < n; i++) {
            const char *s = json_object_get_string(json_object_array_get_idx(proxies, i));
            if (br_net_parse(s, &nets[i]) < 0) {
                char field[48];
                free(nets);
                snprintf(field, sizeof(field), "/trusted_proxies/%zu", i);
                return cm_error_set(err, CM_ERROR_INVALID, field,
                                    "'%s' is not an IP address or a network ADDRESS/BITS", s);
            }
        }
        free(c->trusted_proxies);
        c->trusted_proxies = nets;
        c->n_trusted_proxies = n;
    }
    c->job_workers = (unsigned)cm_json_get_int(doc, "job_workers", c->job_workers);
    c->audit_anchor_every =
        (unsigned)cm_json_get_int(doc, "audit_anchor_every", c->audit_anchor_every);
    if (cm_json_get_bool(doc, "verbose", false))
        c->verbose = true;

    json_object *sign_in = cm_json_get(doc, "sign_in"), *smtp = cm_json_get(doc, "smtp");
    replace_str(&c->console_dir, cm_json_get_str(doc, "console_dir", NULL));
    replace_str(&c->public_url, cm_json_get_str(doc, "public_url", NULL));
    replace_str(&c->time_zone, cm_json_get_str(doc, "time_zone", NULL));
    c->session_idle_seconds =
        (unsigned)cm_json_get_int(doc, "session_idle_seconds", c->session_idle_seconds);
    c->session_lifetime_seconds =
        (unsigned)cm_json_get_int(doc, "session_lifetime_seconds", c->session_lifetime_seconds);
    c->sign_in_link_seconds =
        (unsigned)cm_json_get_int(doc, "sign_in_link_seconds", c->sign_in_link_seconds);
    c->sign_in.account_failures = (unsigned)cm_json_get_int(sign_in, "account_failures",
                                                            c->sign_in.account_failures);
    c->sign_in.address_failures = (unsigned)cm_json_get_int(sign_in, "address_failures",
                                                            c->sign_in.address_failures);
    c->sign_in.window_seconds =
        (unsigned)cm_json_get_int(sign_in, "window_seconds", c->sign_in.window_seconds);
    c->sign_in.lockout_seconds =
        (unsigned)cm_json_get_int(sign_in, "lockout_seconds", c->sign_in.lockout_seconds);
    replace_str(&c->smtp.url, cm_json_get_str(smtp, "url", NULL));
    replace_str(&c->smtp.from, cm_json_get_str(smtp, "from", NULL));
    replace_str(&c->smtp.user, cm_json_get_str(smtp, "user", NULL));
    replace_str(&c->smtp.password_file, cm_json_get_str(smtp, "password_file", NULL));
    c->smtp.timeout_seconds =
        (unsigned)cm_json_get_int(smtp, "timeout_seconds", c->smtp.timeout_seconds);
    c->smtp.retry_seconds =
        (unsigned)cm_json_get_int(smtp, "retry_seconds", c->smtp.retry_seconds);
    return 0;
}

/* A PostgreSQL URL is refused while the store has modules that speak SQLite only: the
 * broker would fail on their first statement. The message names them. */
static int check_database(const char *url, CmError *err)
{
    const char *const *files;
    char list[400] = "";
    size_t n, len = 0;

    if (!url)
        return 0;
    if (strncmp(url, "sqlite:", 7) == 0 && url[7])
        return 0;
    if (strncmp(url, "postgresql://", 13) != 0 && strncmp(url, "postgres://", 11) != 0)
        return cm_error_set(err, CM_ERROR_INVALID, "database",
                            "the database must be sqlite:PATH or postgresql://...");
    files = br_store_sqlite_only(&n);
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n && len < sizeof(list); i++)
        len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%s", i ? " " : "", files[i]);
    return cm_error_set(err, CM_ERROR_INVALID, "database",
                        "this cloudbrokerd cannot run on PostgreSQL yet: %zu broker modules still"
                        " use SQLite's own API: %s",
                        n, list);
}

int br_config_check(const BrConfig *c, CmError *err)
{
    _cleanup_free_ char *host = NULL;
    uint16_t port;
    struct in6_addr a6;
    struct in_addr a4;
    int r;

    if (cm_parse_listen(c->listen, &host, &port) < 0)
        return cm_error_set(err, CM_ERROR_INVALID, "listen", "listen address '%s' is not HOST:PORT",
                            c->listen);
    if (inet_pton(AF_INET, host, &a4) != 1 && inet_pton(AF_INET6, host, &a6) != 1)
        return cm_error_set(err, CM_ERROR_INVALID, "listen",
                            "listen host '%s' must be a numeric IPv4 or IPv6 address", host);
    if (!!c->tls_cert != !!c->tls_key)
        return cm_error_set(err, CM_ERROR_INVALID, "tls",
                            "HTTPS needs both a certificate and a key");
    if (c->tls_cert && access(c->tls_cert, R_OK) < 0)
        return cm_error_set(err, CM_ERROR_INVALID, "tls/certificate", "cannot read %s: %s",
                            c->tls_cert, strerror(errno));
    if (c->tls_key && access(c->tls_key, R_OK) < 0)
        return cm_error_set(err, CM_ERROR_INVALID, "tls/key", "cannot read %s: %s", c->tls_key,
                            strerror(errno));
    r = check_database(c->database, err);
    if (r < 0)
        return r;
    return 0;
}

/* On the first start: an admin account whose token is written once to STATE/admin.token. */
static int bootstrap_admin(BrDaemon *d, CmError *err)
{
    char token[CM_TOKEN_LEN + 1], hash[CM_SHA256_HEX_LEN + 1], at[CM_TIME_ISO_LEN + 1];
    _cleanup_free_ char *path = NULL, *line = NULL;
    sqlite3_stmt *stmt;
    CmDb *db;
    int64_t count;
    int r;

    db = br_store_db(d->store, err);
    if (!db)
        return -EIO;
    stmt = cm_db_stmt(db, "SELECT count(*) FROM accounts", err);
    if (!stmt || cm_db_step_row(db, stmt, err) <= 0)
        return -EIO;
    count = sqlite3_column_int64(stmt, 0);
    sqlite3_reset(stmt);
    if (count > 0)
        return 0;

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

    r = br_store_write_begin(d->store, &db, err);
    if (r < 0)
        return r;
    cm_time_iso(cm_now_ms(), at);
    stmt = cm_db_stmt(db,
                      "INSERT INTO accounts(name, role, token_hash, created_at,"
                      " token_created_at) VALUES ('admin', 'admin', ?, ?, ?)",
                      err);
    r = stmt ? 0 : -EIO;
    if (r >= 0) {
        CM_DB_BIND(stmt, hash, at, at);
        r = cm_db_step_done(db, stmt, err);
    }
    if (r >= 0)
        r = br_store_audit(d->store, db, br_actor_system(), "account.bootstrap", "account",
                           cm_db_last_insert_id(db), "ok",
                           "{\"name\":\"admin\",\"role\":\"admin\"}", err);
    if (r < 0) {
        br_store_write_abort(d->store, db);
        return r;
    }
    r = br_store_write_commit(d->store, db, err);
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
    _cleanup_free_ char *name = NULL, *dedup = NULL;
    _cleanup_stmt_ CmStmt *st =
        cm_db_prepare(tx->db, "SELECT name FROM hosts WHERE id = ?", tx->err);
    int r;

    if (!st)
        return -EIO;
    CM_DB_BIND(st, w->host_id);
    r = cm_stmt_step(st, tx->err);
    if (r <= 0)
        return r; /* removed meanwhile: nobody to tell */
    name = cm_stmt_strdup(st, 0);
    dedup = cm_strdup_printf("host_disconnected:%lld:%s", (long long)w->host_id, w->since);
    if (!name || !dedup)
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

/* The libvirt connections, the job workers and the reconciler. */
static int start_hypervisor_work(BrDaemon *d, CmError *err)
{
    sqlite3_stmt *stmt;
    CmDb *db;
    int r;

    r = br_virt_init(err);
    if (r < 0)
        return r;
    d->hosts = br_hosts_new();
    if (!d->hosts)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    br_hosts_on_lost(d->hosts, host_lost, d);
    db = br_store_db(d->store, err);
    if (!db)
        return -EIO;
    stmt = cm_db_stmt(db, "SELECT id, uri, storage_pool FROM hosts ORDER BY id", err);
    if (!stmt)
        return -EIO;
    while (sqlite3_step(stmt) == SQLITE_ROW)
        br_hosts_watch(d->hosts, sqlite3_column_int64(stmt, 0), cm_db_col_text(stmt, 1),
                       cm_db_col_text(stmt, 2));
    sqlite3_reset(stmt);
    r = br_jobs_start(d->store, &br_steps_job_callbacks, d, d->config.job_workers, &d->jobs, err);
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
    d->notify = (BrNotifyConfig){.mail = d->config.smtp.url != NULL,
                                 .public_url = d->config.public_url};
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
    r = check_database(db_url, err);
    if (r < 0)
        return r;
    r = br_store_open(db_url, key_path, &d->store, err);
    if (r < 0)
        return r;
    br_store_set_anchor_every(d->store, d->config.audit_anchor_every);
    r = bootstrap_admin(d, err);
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
    d->hosts = br_hosts_free(d->hosts);
    d->mailer = br_mailer_stop(d->mailer);
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
