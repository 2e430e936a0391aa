/* SPDX-License-Identifier: Apache-2.0 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <curl/curl.h>

#include "ag-config.h"
#include "ag-tier.h"
#include "cm-embedded.h"
#include "cm-json.h"
#include "cm-schema.h"
#include "cm-util.h"

extern const CmEmbedded ag_schema_files[];
extern const size_t ag_schema_files_count;

void ag_config_init_defaults(AgConfig *c)
{
    memset(c, 0, sizeof(*c));
    c->uri = strdup("qemu:///system");
    c->interval = 10;
    c->window = 300;
    c->spool_max_bytes = 64 * 1024 * 1024;
    c->batch_max = 1000;
}

void ag_config_clear(AgConfig *c)
{
    free(c->uri);
    free(c->broker);
    free(c->token_file);
    free(c->spool);
    free(c->metrics_listen);
    free(c->ca_file);
    free(c->pinned_public_key);
    memset(c, 0, sizeof(*c));
}

static void set_str(char **dst, json_object *doc, const char *key)
{
    const char *v = cm_json_get_str(doc, key, NULL);
    if (v) {
        free(*dst);
        *dst = strdup(v);
    }
}

int ag_config_load_file(AgConfig *c, const char *path, CmError *err)
{
    _cleanup_json_ json_object *doc = NULL, *schema_doc = NULL;
    _cleanup_(cm_schema_freep) CmSchema *schema = NULL;
    int r;

    for (size_t i = 0; i < ag_schema_files_count && !schema_doc; i++)
        if (strcmp(ag_schema_files[i].name, "agent-config") == 0 &&
            cm_json_parse(ag_schema_files[i].text, ag_schema_files[i].len, &schema_doc, err) < 0)
            return -EINVAL;
    if (!schema_doc)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "the config schema is missing");
    r = cm_schema_compile(schema_doc, &schema, err);
    if (r >= 0)
        r = cm_json_load_file(path, 1 << 20, &doc, err);
    if (r >= 0)
        r = cm_schema_validate(schema, doc, err);
    if (r < 0)
        return r;
    set_str(&c->uri, doc, "uri");
    set_str(&c->broker, doc, "broker");
    set_str(&c->token_file, doc, "token_file");
    set_str(&c->spool, doc, "spool");
    set_str(&c->metrics_listen, doc, "metrics_listen");
    set_str(&c->ca_file, doc, "ca_file");
    set_str(&c->pinned_public_key, doc, "pinned_public_key");
    c->interval = cm_json_get_int(doc, "interval", c->interval);
    c->window = cm_json_get_int(doc, "window", c->window);
    c->slow_interval = cm_json_get_int(doc, "slow_interval", c->slow_interval);
    c->spool_max_bytes = cm_json_get_int(doc, "spool_max_bytes", c->spool_max_bytes);
    c->batch_max = cm_json_get_int(doc, "batch_max", c->batch_max);
    c->verbose = cm_json_get_bool(doc, "verbose", c->verbose);
    return 0;
}

/* An http:// URL whose host is a loopback address or exactly "localhost", with no user part:
 * parsed, never matched by prefix (http://127.0.0.1.example/ and http://localhost@x/ are not
 * loopback). */
static bool loopback_url(const char *url)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *user = NULL;
    bool ok = false;

    if (!u)
        return false;
    if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_NO_USER &&
        strcasecmp(scheme, "http") == 0) {
        struct in_addr a4;
        struct in6_addr a6;
        size_t n = strlen(host);
        if (strcasecmp(host, "localhost") == 0)
            ok = true;
        else if (inet_pton(AF_INET, host, &a4) == 1)
            ok = (ntohl(a4.s_addr) >> 24) == 127;
        else if (n > 2 && host[0] == '[' && host[n - 1] == ']') {
            host[n - 1] = 0;
            ok = inet_pton(AF_INET6, host + 1, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
        }
    }
    curl_free(scheme);
    curl_free(host);
    curl_free(user);
    curl_url_cleanup(u);
    return ok;
}

int ag_config_check(const AgConfig *c, CmError *err)
{
    if (!c->broker)
        return cm_error_set(err, CM_ERROR_INVALID, "broker", "--broker URL is required");
    if (strncmp(c->broker, "https://", 8) != 0 && !loopback_url(c->broker))
        return cm_error_set(err, CM_ERROR_INVALID, "broker",
                            "the broker URL must be https://, or http:// on loopback");
    if (!c->token_file)
        return cm_error_set(err, CM_ERROR_INVALID, "token_file", "--token-file is required");
    if (!c->spool)
        return cm_error_set(err, CM_ERROR_INVALID, "spool", "--spool FILE is required");
    if (c->interval < 1 || c->interval > 3600)
        return cm_error_set(err, CM_ERROR_INVALID, "interval", "interval must be 1..3600 s");
    if (c->window < 10 || c->window > 3600 || c->window % c->interval != 0)
        return cm_error_set(err, CM_ERROR_INVALID, "window",
                            "window must be 10..3600 s and a multiple of the interval");
    if (c->slow_interval && ag_tier_check(c->interval, c->window, c->slow_interval) < 0)
        return cm_error_set(err, CM_ERROR_INVALID, "slow_interval",
                            "the slow interval must be a multiple of the interval, at most the "
                            "window, and the window a multiple of it");
    if (access(c->token_file, R_OK) < 0)
        return cm_error_set(err, CM_ERROR_INVALID, "token_file", "cannot read %s", c->token_file);
    if (c->ca_file && access(c->ca_file, R_OK) < 0)
        return cm_error_set(err, CM_ERROR_INVALID, "ca_file", "cannot read %s", c->ca_file);
    if (c->spool_max_bytes < 1024)
        return cm_error_set(err, CM_ERROR_INVALID, "spool_max_bytes",
                            "the spool's limit must be at least 1024 bytes");
    return 0;
}

int64_t ag_config_slow_interval(const AgConfig *c)
{
    return c->slow_interval > 0 ? c->slow_interval : ag_tier_slow_default(c->interval, c->window);
}

int ag_config_read_token(const AgConfig *c, char **ret, CmError *err)
{
    char *buf = NULL;
    size_t len = 0;
    int r = cm_read_file(c->token_file, 4096, &buf, &len);
    if (r < 0)
        return cm_error_set(err, CM_ERROR_INVALID, "token_file", "cannot read %s", c->token_file);
    while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' '))
        buf[--len] = 0;
    if (len == 0 || strchr(buf, '\n') || strchr(buf, ' ')) {
        explicit_bzero(buf, len);
        free(buf);
        return cm_error_set(err, CM_ERROR_INVALID, "token_file",
                            "%s must hold one token on one line", c->token_file);
    }
    *ret = buf;
    return 0;
}
