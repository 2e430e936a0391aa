/* SPDX-License-Identifier: Apache-2.0 */
/* What every command handler shares: the HTTP client, error printing, lists, tokens. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "ctl-commands.h"
#include "ctl-output.h"
#include "cm-json.h"
#include "cm-util.h"

/* Guards against a server whose cursor never ends: far more than any real list. */
#define MAX_LIST_ITEMS 10000000

int ctl_usage_error(CtlContext *ctx, const char *fmt, ...)
{
    _cleanup_free_ char *name = ctx->command ? ctl_command_name(ctx->command) : NULL;
    va_list ap;

    fprintf(ctx->err, "%s: ", CTL_PROGRAM);
    va_start(ap, fmt);
    vfprintf(ctx->err, fmt, ap);
    va_end(ap);
    fprintf(ctx->err, "\nTry '%s%s%s --help'.\n", CTL_PROGRAM, name ? " " : "", name ? name : "");
    ctx->usage_failed = true;
    return -EINVAL;
}

int ctl_fail(CtlContext *ctx, int r, const char *fmt, ...)
{
    va_list ap;

    fputs("error: ", ctx->err);
    va_start(ap, fmt);
    vfprintf(ctx->err, fmt, ap);
    va_end(ap);
    fputc('\n', ctx->err);
    return r;
}

void ctl_print_api_error(CtlContext *ctx, const CtlHttpError *e)
{
    /* The message and field come from the server: nothing in them may drive the terminal. */
    _cleanup_free_ char *msg = ctl_text_sanitize(e->error.message, true);
    _cleanup_free_ char *field = ctl_text_sanitize(e->error.field, true);
    _cleanup_free_ char *code = ctl_text_sanitize(e->error.code, true);

    fprintf(ctx->err, "error: %s", msg ? msg : "?");
    if (e->status) {
        fputs(" (", ctx->err);
        if (field && *field)
            fprintf(ctx->err, "field %s, ", field);
        fprintf(ctx->err, "HTTP %ld, code %s)", e->status, code ? code : "?");
    }
    fputc('\n', ctx->err);
    if (ctx->verbose && e->request_id[0]) {
        _cleanup_free_ char *rid = ctl_text_sanitize(e->request_id, true);
        fprintf(ctx->err, "(request id %s)\n", rid ? rid : "?");
    }
}

int ctl_http(CtlContext *ctx, CtlHttp **ret)
{
    CmError err = {0};

    if (!ctx->http) {
        CtlHttpOptions o = {
            .url = ctx->config.url,
            .token = ctx->config.token,
            .cacert = ctx->config.cacert,
            .timeout_s = ctx->config.timeout_s,
            .log = ctx->verbose ? ctx->err : NULL,
        };
        if (ctl_http_new(&o, &ctx->http, &err) < 0)
            return ctl_fail(ctx, -EINVAL, "%s", err.message);
    }
    *ret = ctx->http;
    return 0;
}

int ctl_call(CtlContext *ctx, const char *method, const char *path, json_object *body,
             json_object **ret)
{
    json_object *answer = NULL;
    CtlHttpError e;
    CtlHttp *h;
    int r;

    r = ctl_http(ctx, &h);
    if (r < 0)
        return r;
    r = ctl_http_json(h, method, path, body, &answer, &e);
    if (r < 0) {
        ctl_print_api_error(ctx, &e);
        return r;
    }
    if (ret)
        *ret = answer;
    else
        json_object_put(answer);
    return 0;
}

bool ctl_emit_json(CtlContext *ctx, json_object *doc)
{
    if (!ctx->json)
        return false;
    ctl_print_json(ctx->out, doc);
    return true;
}

int ctl_parse_id(CtlContext *ctx, const char *what, const char *s, int64_t *ret)
{
    int64_t v;
    if (cm_parse_int64(s, 1, INT64_C(1) << 53, &v) < 0)
        return ctl_usage_error(ctx, "'%s' is not a %s id (a positive number)", s, what);
    *ret = v;
    return 0;
}

int ctl_parse_count(CtlContext *ctx, const char *name, const char *s, int64_t min, int64_t max,
                    int64_t *ret)
{
    int64_t v;
    if (cm_parse_int64(s, min, max, &v) < 0)
        return ctl_usage_error(
            ctx, "%s must be a whole number from %" PRId64 " to %" PRId64 ", not '%s'", name, min,
            max, s);
    *ret = v;
    return 0;
}

int ctl_check_choice(CtlContext *ctx, const char *what, const char *value,
                     const char *const *choices)
{
    _cleanup_free_ char *list = NULL;

    for (size_t i = 0; choices[i]; i++)
        if (strcmp(value, choices[i]) == 0)
            return 0;
    for (size_t i = 0; choices[i]; i++) {
        char *next = cm_strdup_printf("%s%s%s", list ? list : "", list ? ", " : "", choices[i]);
        if (!next)
            break;
        free(list);
        list = next;
    }
    return ctl_usage_error(ctx, "%s must be one of %s, not '%s'", what, list ? list : "?", value);
}

void ctl_query_add(CtlQuery *q, const char *key, const char *value)
{
    _cleanup_free_ char *escaped = NULL;
    char *next;

    if (!value || q->oom)
        return;
    escaped = ctl_http_escape(value);
    next = escaped ? cm_strdup_printf("%s%c%s=%s", q->text ? q->text : "", q->text ? '&' : '?', key,
                                      escaped)
                   : NULL;
    if (!next) {
        q->oom = true;
        return;
    }
    free(q->text);
    q->text = next;
}

void ctl_query_add_int(CtlQuery *q, const char *key, int64_t value)
{
    char num[24];
    snprintf(num, sizeof(num), "%" PRId64, value);
    ctl_query_add(q, key, num);
}

void ctl_query_clear(CtlQuery *q)
{
    free(q->text);
    q->text = NULL;
    q->oom = false;
}

char *ctl_path(const char *fmt, ...)
{
    char *s = NULL;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&s, fmt, ap) < 0)
        s = NULL;
    va_end(ap);
    return s;
}

/* Fetches one page after @after (0: from the start) into @items; the page's cursor in @next. */
static int fetch_page(CtlContext *ctx, const char *path, const CtlQuery *q, int64_t limit,
                      int64_t after, json_object *items, int64_t *ret_next)
{
    _cleanup_json_ json_object *page = NULL;
    _cleanup_free_ char *url = NULL;
    CtlQuery full = {0};
    json_object *list, *next;
    int r;

    if (q->text && !(full.text = strdup(q->text)))
        return ctl_fail(ctx, -ENOMEM, "out of memory");
    ctl_query_add_int(&full, "limit", limit);
    if (after > 0)
        ctl_query_add_int(&full, "after", after);
    url = full.oom || q->oom ? NULL : cm_strdup_printf("%s%s", path, full.text ? full.text : "");
    ctl_query_clear(&full);
    if (!url)
        return ctl_fail(ctx, -ENOMEM, "out of memory");
    r = ctl_call(ctx, "GET", url, NULL, &page);
    if (r < 0)
        return r;
    list = cm_json_get(page, "items");
    next = cm_json_get(page, "next");
    if (!json_object_is_type(list, json_type_array))
        return ctl_fail(ctx, -EBADMSG, "the server's list has no items");
    for (size_t i = 0; i < json_object_array_length(list); i++)
        json_object_array_add(items, json_object_get(json_object_array_get_idx(list, i)));
    *ret_next = json_object_is_type(next, json_type_int) ? json_object_get_int64(next) : 0;
    return 0;
}

int ctl_fetch_list(CtlContext *ctx, const char *path, const CtlQuery *q, const CtlArgs *args,
                   json_object **ret)
{
    const char *limit_s = ctl_args_get(args, "limit"), *after_s = ctl_args_get(args, "after");
    _cleanup_json_ json_object *items = json_object_new_array();
    int64_t limit = 0, after = 0, next = 0;
    json_object *doc;
    int r;

    if (limit_s && ctl_parse_count(ctx, "--limit", limit_s, 1, 1000, &limit) < 0)
        return -EINVAL;
    if (after_s && ctl_parse_count(ctx, "--after", after_s, 0, INT64_MAX, &after) < 0)
        return -EINVAL;
    if (limit) {
        r = fetch_page(ctx, path, q, limit, after, items, &next);
        if (r < 0)
            return r;
    } else {
        /* Every page, in the largest size the broker serves. */
        for (;;) {
            r = fetch_page(ctx, path, q, 1000, after, items, &next);
            if (r < 0)
                return r;
            if (next == 0)
                break;
            if (next <= after || json_object_array_length(items) > MAX_LIST_ITEMS)
                return ctl_fail(ctx, -EBADMSG, "the server's list cursor does not advance");
            after = next;
        }
    }
    doc = json_object_new_object();
    json_object_object_add(doc, "items", TAKE_PTR(items));
    json_object_object_add(doc, "next", next ? json_object_new_int64(next) : NULL);
    *ret = doc;
    return 0;
}

int ctl_fetch_filtered(CtlContext *ctx, const char *path, const CtlFilter *filters, size_t n,
                       const CtlArgs *args, json_object **ret)
{
    CtlQuery q = {0};
    int r = 0;

    for (size_t i = 0; i < n && r >= 0; i++) {
        const CtlFilter *f = &filters[i];
        const char *key = f->key ? f->key : f->option;
        const char *v = ctl_args_get(args, f->option);
        int64_t id;

        if (f->flag) {
            if (ctl_args_has(args, f->option))
                ctl_query_add(&q, key, "true");
            continue;
        }
        if (!v)
            continue;
        if (f->choices) {
            char what[64];
            snprintf(what, sizeof(what), "--%s", f->option);
            r = ctl_check_choice(ctx, what, v, f->choices);
        } else if (f->id_of) {
            r = ctl_parse_id(ctx, f->id_of, v, &id);
        }
        ctl_query_add(&q, key, v);
    }
    if (r >= 0)
        r = ctl_fetch_list(ctx, path, &q, args, ret);
    ctl_query_clear(&q);
    return r;
}

int ctl_print_list(CtlContext *ctx, json_object *doc, const CtlColumn *columns,
                   const char *const *keys, size_t n)
{
    _cleanup_(ctl_table_freep) CtlTable *t = NULL;
    json_object *items = cm_json_get(doc, "items"), *next = cm_json_get(doc, "next");
    size_t count = items ? json_object_array_length(items) : 0;
    int r;

    if (ctl_emit_json(ctx, doc))
        return 0;
    if (count == 0) {
        fputs("(none)\n", ctx->out);
    } else {
        t = ctl_table_new(columns, n);
        if (!t)
            return ctl_fail(ctx, -ENOMEM, "out of memory");
        for (size_t i = 0; i < count; i++) {
            r = ctl_table_add_json_row(t, json_object_array_get_idx(items, i), keys, n);
            if (r < 0)
                return ctl_fail(ctx, r, "out of memory");
        }
        ctl_table_print(t, ctx->out, 0);
    }
    if (next)
        fprintf(ctx->out, "(more entries: add --after %" PRId64 ")\n", json_object_get_int64(next));
    return 0;
}

int ctl_write_secret(CtlContext *ctx, const char *path, const char *token)
{
    _cleanup_free_ char *line = cm_strdup_printf("%s\n", token);
    int r;

    if (!line)
        return ctl_fail(ctx, -ENOMEM, "out of memory");
    r = cm_write_file_atomic(path, line, strlen(line), 0600);
    explicit_bzero(line, strlen(line));
    if (r < 0)
        return ctl_fail(ctx, r, "cannot write %s: %s", path, strerror(-r));
    return 0;
}

int ctl_show_token(CtlContext *ctx, const char *token, const char *token_out)
{
    int r;

    if (token_out) {
        r = ctl_write_secret(ctx, token_out, token);
        if (r >= 0) {
            fprintf(ctx->out, "The token was written to %s (mode 0600).\n", token_out);
            return 0;
        }
        /* The server keeps only a hash: a token not shown now is lost for good. */
        fprintf(ctx->out, "Token (shown only this once; it could not be saved):\n    %s\n", token);
        return r;
    }
    fprintf(ctx->out,
            "Token (shown only this once; store it now, e.g. with --token-out FILE):\n"
            "    %s\n",
            token);
    return 0;
}
