/* SPDX-License-Identifier: Apache-2.0 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "br-console.h"
#include "br-daemon.h"
#include "cb-config.h"
#include "cm-crypto.h"
#include "cm-log.h"
#include "cm-util.h"

#define MAX_FILES 4096
#define MAX_TOTAL_BYTES (256u * 1024 * 1024)
#define MAX_DEPTH 8

/* The same for every console answer: nothing inline, nothing from another host. */
#define CSP                                                                                        \
    "default-src 'self'; img-src 'self' data:; object-src 'none'; frame-ancestors 'none';"         \
    " base-uri 'self'; form-action 'self'"

typedef enum { ENC_IDENTITY, ENC_BR, ENC_GZIP, ENC_MAX } Encoding;
static const char *const enc_suffix[ENC_MAX] = {"", ".br", ".gz"};
static const char *const enc_name[ENC_MAX] = {NULL, "br", "gzip"};

typedef struct {
    int fd; /* a sealed memfd with the bytes, -1 when this encoding is absent */
    uint64_t size;
    char etag[40];
} Variant;

typedef struct {
    char *path; /* relative: "index.html", "assets/app-1a2b3c4d.js" */
    const char *type;
    bool immutable; /* under assets/: the name carries the content's hash */
    Variant v[ENC_MAX];
} File;

struct BrConsole {
    char *dir;
    File *files;
    size_t n_files;
    uint64_t total;
};

static const struct {
    const char *ext, *type;
} types[] = {
    {".html", "text/html; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".mjs", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".json", "application/json"},
    {".map", "application/json"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".jpg", "image/jpeg"},
    {".ico", "image/x-icon"},
    {".webp", "image/webp"},
    {".woff2", "font/woff2"},
    {".woff", "font/woff"},
    {".txt", "text/plain; charset=utf-8"},
    {".webmanifest", "application/manifest+json"},
};

static const char *type_of(const char *path)
{
    const char *dot = strrchr(path, '.');
    for (size_t i = 0; dot && i < ELEMENTSOF(types); i++)
        if (strcasecmp(dot, types[i].ext) == 0)
            return types[i].type;
    return "application/octet-stream";
}

static const char *default_dir_cache;

const char *br_console_default_dir(void)
{
    static char buf[PATH_MAX];
    char exe[PATH_MAX];
    ssize_t n;

    if (default_dir_cache)
        return default_dir_cache;
    n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n > 0) {
        size_t bl = strlen(CB_BUILD_DIR);
        exe[n] = 0;
        if (strncmp(exe, CB_BUILD_DIR, bl) == 0 && exe[bl] == '/') {
            snprintf(buf, sizeof(buf), "%s/console", CB_BUILD_DIR);
            return default_dir_cache = buf;
        }
    }
    return default_dir_cache = CB_CONSOLE_DIR;
}

BrConsole *br_console_free(BrConsole *con)
{
    if (!con)
        return NULL;
    for (size_t i = 0; i < con->n_files; i++) {
        for (int e = 0; e < ENC_MAX; e++)
            if (con->files[i].v[e].fd >= 0)
                close(con->files[i].v[e].fd);
        free(con->files[i].path);
    }
    free(con->files);
    free(con->dir);
    free(con);
    return NULL;
}

static File *find(BrConsole *con, const char *path, size_t len)
{
    for (size_t i = 0; i < con->n_files; i++)
        if (strlen(con->files[i].path) == len && memcmp(con->files[i].path, path, len) == 0)
            return &con->files[i];
    return NULL;
}

/* Copies the file into a sealed memfd: what is served is what was there at start. */
static int load_variant(BrConsole *con, int dirfd, const char *name, Variant *v, CmError *err)
{
    _cleanup_free_ char *data = NULL;
    size_t len = 0;
    int fd, r;
    char hash[CM_SHA256_HEX_LEN + 1];
    int in = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

    if (in < 0)
        return cm_error_set(err, CM_ERROR_INTERNAL, "console_dir", "cannot open %s/%s: %s",
                            con->dir, name, strerror(errno));
    {
        struct stat st;
        if (fstat(in, &st) < 0 || !S_ISREG(st.st_mode) ||
            con->total + (uint64_t)st.st_size > MAX_TOTAL_BYTES) {
            close(in);
            return cm_error_set(err, CM_ERROR_INVALID, "console_dir",
                                "%s/%s is not a regular file or the console is over %u MiB",
                                con->dir, name, MAX_TOTAL_BYTES >> 20);
        }
        data = malloc((size_t)st.st_size + 1);
        if (!data) {
            close(in);
            return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
        }
        while (len < (size_t)st.st_size) {
            ssize_t n = read(in, data + len, (size_t)st.st_size - len);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                break;
            len += (size_t)n;
        }
        close(in);
        if (len != (size_t)st.st_size)
            return cm_error_set(err, CM_ERROR_INTERNAL, "console_dir", "cannot read %s/%s",
                                con->dir, name);
    }
    fd = memfd_create("console", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "memfd_create: %s", strerror(errno));
    for (size_t off = 0; off < len;) {
        ssize_t n = write(fd, data + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            r = errno;
            close(fd);
            return cm_error_set(err, CM_ERROR_INTERNAL, "", "cannot keep %s: %s", name,
                                strerror(r));
        }
        off += (size_t)n;
    }
    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL);
    cm_sha256_hex(data, len, hash);
    v->fd = fd;
    v->size = len;
    snprintf(v->etag, sizeof(v->etag), "\"%.24s\"", hash);
    con->total += len;
    return 0;
}

static bool has_suffix(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a > b && strcmp(s + a - b, suffix) == 0;
}

/* Every file under @rel (relative to the console folder), the .br/.gz siblings later. */
static int scan(BrConsole *con, int dirfd, const char *rel, int depth, bool siblings, CmError *err)
{
    DIR *dp;
    struct dirent *de;
    int r = 0, fd;

    if (depth > MAX_DEPTH)
        return 0;
    fd = openat(dirfd, rel[0] ? rel : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return 0;
    dp = fdopendir(fd);
    if (!dp) {
        close(fd);
        return 0;
    }
    while (r >= 0 && (de = readdir(dp))) {
        _cleanup_free_ char *path = NULL;
        struct stat st;

        if (de->d_name[0] == '.')
            continue;
        path = rel[0] ? cm_strdup_printf("%s/%s", rel, de->d_name) : strdup(de->d_name);
        if (!path)
            r = cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
        else if (fstatat(dirfd, path, &st, AT_SYMLINK_NOFOLLOW) < 0)
            continue;
        else if (S_ISDIR(st.st_mode))
            r = scan(con, dirfd, path, depth + 1, siblings, err);
        else if (!S_ISREG(st.st_mode))
            continue;
        else if (siblings) {
            for (int e = ENC_BR; e < ENC_MAX; e++) {
                File *f;
                if (!has_suffix(path, enc_suffix[e]))
                    continue;
                f = find(con, path, strlen(path) - strlen(enc_suffix[e]));
                if (f && f->v[e].fd < 0)
                    r = load_variant(con, dirfd, path, &f->v[e], err);
            }
        } else if (!has_suffix(path, ".br") && !has_suffix(path, ".gz")) {
            File *f;
            if (con->n_files == MAX_FILES) {
                r = cm_error_set(err, CM_ERROR_INVALID, "console_dir",
                                 "the console has more than %d files", MAX_FILES);
                break;
            }
            f = &con->files[con->n_files];
            *f = (File){.type = type_of(path),
                        .immutable = strncmp(path, "assets/", 7) == 0,
                        .v = {{.fd = -1}, {.fd = -1}, {.fd = -1}}};
            r = load_variant(con, dirfd, path, &f->v[ENC_IDENTITY], err);
            if (r >= 0) {
                f->path = TAKE_PTR(path);
                con->n_files++;
            }
        }
    }
    closedir(dp);
    return r;
}

int br_console_open(const char *dir, BrConsole **ret, CmError *err)
{
    BrConsole *con;
    int dirfd, r;

    dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0 || faccessat(dirfd, "index.html", R_OK, 0) < 0) {
        if (dirfd >= 0)
            close(dirfd);
        return cm_error_set(err, CM_ERROR_NOT_FOUND, "console_dir",
                            "no built console in %s (index.html missing)", dir);
    }
    con = calloc(1, sizeof(*con));
    if (con) {
        con->dir = strdup(dir);
        con->files = calloc(MAX_FILES, sizeof(*con->files));
    }
    if (!con || !con->dir || !con->files) {
        close(dirfd);
        br_console_free(con);
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    }
    r = scan(con, dirfd, "", 0, false, err);
    if (r >= 0)
        r = scan(con, dirfd, "", 0, true, err);
    close(dirfd);
    if (r < 0) {
        br_console_free(con);
        return r;
    }
    cm_log_notice("console: %zu files (%llu bytes with the compressed copies) from %s",
                  con->n_files, (unsigned long long)con->total, dir);
    *ret = con;
    return 0;
}

/* Whether an Accept-Encoding header takes @coding (q=0 refuses it). */
static bool accepts(const char *header, const char *coding)
{
    size_t n = strlen(coding);

    for (const char *p = header; p && *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        while (len && (*p == ' ' || *p == '\t')) {
            p++;
            len--;
        }
        if (len >= n && strncasecmp(p, coding, n) == 0 &&
            (len == n || p[n] == ';' || p[n] == ' ' || p[n] == '\t')) {
            const char *q = memchr(p, ';', len);
            if (!q)
                return true;
            q = strstr(q, "q=");
            if (!q || q >= p + len)
                return true;
            return strtod(q + 2, NULL) > 0;
        }
        p = end ? end + 1 : NULL;
    }
    return false;
}

static int serve(BrCall *c)
{
    BrConsole *con = c->d->console;
    const char *ae = br_call_header(c, "Accept-Encoding");
    const char *inm = br_call_header(c, "If-None-Match");
    File *f;
    Encoding e = ENC_IDENTITY;
    int fd;

    if (!con)
        return cm_error_set_code(&c->err, CM_ERROR_UNAVAILABLE, "console_missing", "console_dir",
                                 "the web console is not built: no index.html in %s; the API "
                                 "under /v1 works without it",
                                 c->d->config.console_dir ? c->d->config.console_dir
                                                          : br_console_default_dir());
    f = &con->files[c->ids[0]];
    if (ae && f->v[ENC_BR].fd >= 0 && accepts(ae, "br"))
        e = ENC_BR;
    else if (ae && f->v[ENC_GZIP].fd >= 0 && accepts(ae, "gzip"))
        e = ENC_GZIP;

    br_reply_header(c, "Content-Security-Policy", CSP);
    br_reply_header(c, "X-Frame-Options", "DENY");
    br_reply_header(c, "Referrer-Policy", "same-origin");
    br_reply_header(c, "Vary", "Accept-Encoding");
    br_reply_header(c, "ETag", f->v[e].etag);
    if (enc_name[e])
        br_reply_header(c, "Content-Encoding", enc_name[e]);
    c->cache_control = f->immutable ? "public, max-age=31536000, immutable" : "no-cache";
    if (inm && strstr(inm, f->v[e].etag))
        return br_reply_no_content(c, BR_HTTP_NOT_MODIFIED);
    fd = dup(f->v[e].fd);
    if (fd < 0)
        return cm_error_set(&c->err, CM_ERROR_UNAVAILABLE, "", "no file descriptor left");
    return br_reply_fd(c, fd, f->v[e].size, f->type);
}

static const BrRoute console_route = {"GET", "/", serve, 0, BR_BODY_NONE, NULL};

bool br_console_route(BrCall *c, const char *method, const char *path)
{
    BrConsole *con = c->d->console;
    const char *rel;
    File *f;

    if ((strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) || path[0] != '/')
        return false;
    rel = path[1] ? path + 1 : "index.html";
    if (!con) {
        if (path[1])
            return false;
        c->route = &console_route;
        return true;
    }
    f = find(con, rel, strlen(rel));
    if (!f)
        return false;
    c->route = &console_route;
    c->ids[0] = f - con->files;
    c->n_ids = 0;
    return true;
}
