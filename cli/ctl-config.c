/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ctl-config.h"
#include "ctl-http.h"
#include "cm-json.h"
#include "cm-util.h"

static const char *nonempty(const char *s)
{
    return s && *s ? s : NULL;
}

static void free_secret(char *s)
{
    if (s) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

bool ctl_config_check_token(const char *token)
{
    if (!token || !*token)
        return false;
    for (const char *p = token; *p; p++)
        if (*p < 0x21 || *p > 0x7e)
            return false;
    return true;
}

int ctl_config_read_token_file(const char *path, char **ret, bool *ret_exposed, CmError *err)
{
    char *buf = NULL;
    size_t len = 0, lead;
    struct stat st;
    int r;

    r = cm_read_file(path, CTL_TOKEN_FILE_MAX, &buf, &len);
    if (r == -EFBIG)
        return cm_error_set(err, CM_ERROR_UNPROCESSABLE, "token_file",
                            "token file %s is larger than %d bytes; it is not a token file", path,
                            CTL_TOKEN_FILE_MAX);
    if (r < 0)
        return cm_error_set(err, CM_ERROR_UNPROCESSABLE, "token_file",
                            "cannot read token file %s: %s", path, strerror(-r));
    /* Editors add a final newline, people indent: blanks around the token are not part of it. */
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' ' ||
                       buf[len - 1] == '\t'))
        buf[--len] = 0;
    lead = strspn(buf, " \t\r\n");
    memmove(buf, buf + lead, len - lead + 1);
    len -= lead;
    if (strlen(buf) != len || !ctl_config_check_token(buf)) {
        free_secret(buf);
        return cm_error_set(err, CM_ERROR_UNPROCESSABLE, "token_file",
                            "token file %s does not hold a token (one line, no spaces)", path);
    }
    if (ret_exposed)
        *ret_exposed = stat(path, &st) == 0 && (st.st_mode & 077) != 0;
    *ret = buf;
    return 0;
}

/* The default config file, or NULL when neither $XDG_CONFIG_HOME nor $HOME is set. */
static char *default_config_path(const CtlConfigSources *src)
{
    if (nonempty(src->xdg_config_home))
        return cm_strdup_printf("%s/cloudbroker/ctl.json", src->xdg_config_home);
    if (nonempty(src->home))
        return cm_strdup_printf("%s/.config/cloudbroker/ctl.json", src->home);
    return NULL;
}

/* A config file's relative token_file is relative to the config file, not to the caller. */
static char *relative_to(const char *config_path, const char *file)
{
    const char *slash = strrchr(config_path, '/');
    if (file[0] == '/' || !slash)
        return strdup(file);
    return cm_strdup_printf("%.*s/%s", (int)(slash - config_path), config_path, file);
}

typedef struct {
    char *url, *token_file, *cacert;
} FileSettings;

static void file_settings_clear(FileSettings *f)
{
    free(f->url);
    free(f->token_file);
    free(f->cacert);
}

static int read_config_file(const char *path, bool must_exist, FileSettings *ret, CmError *err)
{
    _cleanup_json_ json_object *doc = NULL;
    struct stat st;
    int r;

    if (!must_exist && stat(path, &st) < 0 && errno == ENOENT)
        return 0;
    r = cm_json_load_file(path, CTL_CONFIG_FILE_MAX, &doc, err);
    if (r < 0) {
        /* Whatever the parser thought of it, a bad file is not a usage error. */
        err->kind = CM_ERROR_UNPROCESSABLE;
        return r;
    }
    if (!json_object_is_type(doc, json_type_object))
        return cm_error_set(err, CM_ERROR_UNPROCESSABLE, "config",
                            "%s: a JSON object {\"url\", \"token_file\", \"cacert\"} is "
                            "expected",
                            path);
    json_object_object_foreach(doc, key, val)
    {
        char **slot = strcmp(key, "url") == 0          ? &ret->url
                      : strcmp(key, "token_file") == 0 ? &ret->token_file
                      : strcmp(key, "cacert") == 0     ? &ret->cacert
                                                       : NULL;
        if (!slot)
            return cm_error_set(err, CM_ERROR_UNPROCESSABLE, key,
                                "%s: unknown setting '%s' (known: url, token_file, cacert)", path,
                                key);
        if (!json_object_is_type(val, json_type_string) || !*json_object_get_string(val))
            return cm_error_set(err, CM_ERROR_UNPROCESSABLE, key,
                                "%s: '%s' must be a non-empty string", path, key);
        free(*slot);
        *slot = slot == &ret->token_file ? relative_to(path, json_object_get_string(val))
                                         : strdup(json_object_get_string(val));
        if (!*slot)
            return -ENOMEM;
    }
    return 0;
}

static int set_token_from_file(CtlConfig *c, const char *path, const char *origin, CmErrorKind kind,
                               CmError *err)
{
    int r = ctl_config_read_token_file(path, &c->token, &c->token_file_exposed, err);
    if (r < 0) {
        err->kind = kind;
        return r;
    }
    c->token_origin = cm_strdup_printf("%s (%s)", path, origin);
    return c->token_origin ? 0 : -ENOMEM;
}

static int resolve(const CtlConfigSources *src, CtlConfig *c, FileSettings *file, CmError *err)
{
    _cleanup_free_ char *default_path = NULL;
    const char *url;
    int r;

    if (src->token && src->token_file)
        return cm_error_set(err, CM_ERROR_INVALID, "token",
                            "--token and --token-file cannot both be given");

    if (src->config_file) {
        c->config_path = strdup(src->config_file);
        if (!c->config_path)
            return -ENOMEM;
        r = read_config_file(src->config_file, true, file, err);
    } else {
        default_path = default_config_path(src);
        r = default_path ? read_config_file(default_path, false, file, err) : 0;
        if (r >= 0 && default_path && (file->url || file->token_file || file->cacert))
            c->config_path = TAKE_PTR(default_path);
    }
    if (r < 0)
        return r;

    url = src->url                 ? src->url
          : nonempty(src->env_url) ? src->env_url
          : file->url              ? file->url
                                   : CTL_DEFAULT_URL;
    if (ctl_http_check_url(url, err) < 0) {
        err->kind = url == src->url ? CM_ERROR_INVALID : CM_ERROR_UNPROCESSABLE;
        cm_error_prefix_message(err, url == src->url       ? "--url"
                                     : url == src->env_url ? "CLOUDBROKER_URL"
                                     : url == file->url    ? c->config_path
                                                           : "default URL");
        return -EINVAL;
    }
    c->url = strdup(url);
    if (!c->url)
        return -ENOMEM;

    if (src->token) {
        if (!ctl_config_check_token(src->token))
            return cm_error_set(err, CM_ERROR_INVALID, "token",
                                "--token must be printable ASCII without spaces");
        c->token = strdup(src->token);
        c->token_origin = strdup("--token");
    } else if (src->token_file) {
        return set_token_from_file(c, src->token_file, "--token-file", CM_ERROR_INVALID, err);
    } else if (nonempty(src->env_token)) {
        if (!ctl_config_check_token(src->env_token))
            return cm_error_set(err, CM_ERROR_UNPROCESSABLE, "CLOUDBROKER_TOKEN",
                                "CLOUDBROKER_TOKEN must be printable ASCII without spaces");
        c->token = strdup(src->env_token);
        c->token_origin = strdup("CLOUDBROKER_TOKEN");
    } else if (nonempty(src->env_token_file)) {
        return set_token_from_file(c, src->env_token_file, "CLOUDBROKER_TOKEN_FILE",
                                   CM_ERROR_UNPROCESSABLE, err);
    } else if (file->token_file) {
        _cleanup_free_ char *origin = cm_strdup_printf("token_file in %s", c->config_path);
        if (!origin)
            return -ENOMEM;
        return set_token_from_file(c, file->token_file, origin, CM_ERROR_UNPROCESSABLE, err);
    } else {
        return 0;
    }
    return c->token && c->token_origin ? 0 : -ENOMEM;
}

int ctl_config_resolve(const CtlConfigSources *src, CtlConfig *ret, CmError *err)
{
    CtlConfig c = {.timeout_s = CTL_DEFAULT_TIMEOUT_S};
    FileSettings file = {0};
    int r;

    if (src->timeout) {
        int64_t t;
        if (cm_parse_int64(src->timeout, 1, 3600, &t) < 0)
            return cm_error_set(err, CM_ERROR_INVALID, "timeout",
                                "--timeout must be a number of seconds from 1 to 3600");
        c.timeout_s = (long)t;
    }
    r = resolve(src, &c, &file, err);
    if (r >= 0) {
        const char *cacert = src->cacert ? src->cacert : file.cacert;
        if (cacert && !(c.cacert = strdup(cacert)))
            r = -ENOMEM;
    }
    file_settings_clear(&file);
    if (r == -ENOMEM && !cm_error_is_set(err))
        cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    if (r < 0) {
        ctl_config_clear(&c);
        return r;
    }
    *ret = c;
    return 0;
}

void ctl_config_clear(CtlConfig *c)
{
    free(c->url);
    free_secret(c->token);
    free(c->token_origin);
    free(c->cacert);
    free(c->config_path);
    *c = (CtlConfig){0};
}
