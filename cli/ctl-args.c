/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl-args.h"
#include "cm-util.h"

static bool is_help(const char *arg)
{
    return strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0;
}

/* Finds "--name" (with @len bytes of name) or "-c" in @spec; SIZE_MAX when unknown. */
static size_t find_long(const CtlOption *spec, const char *name, size_t len)
{
    for (size_t i = 0; spec && spec[i].name; i++)
        if (strlen(spec[i].name) == len && memcmp(spec[i].name, name, len) == 0)
            return i;
    return SIZE_MAX;
}

static size_t find_short(const CtlOption *spec, char c)
{
    for (size_t i = 0; spec && spec[i].name; i++)
        if (spec[i].short_name && spec[i].short_name == c)
            return i;
    return SIZE_MAX;
}

static int fail(char **ret_error, const char *fmt, ...) _printf_(2, 3);

static int fail(char **ret_error, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(ret_error, fmt, ap) < 0)
        *ret_error = NULL;
    va_end(ap);
    return *ret_error ? -EINVAL : -ENOMEM;
}

/* Records one occurrence of option @opt, refusing a second one unless it repeats. */
static int add_item(CtlArgs *a, size_t opt, const char *value, char **ret_error)
{
    if (!(a->spec[opt].flags & CTL_OPT_REPEAT)) {
        for (size_t i = 0; i < a->n_items; i++)
            if (a->items[i].opt == opt)
                return fail(ret_error, "option '--%s' is given more than once", a->spec[opt].name);
    }
    a->items[a->n_items++] = (CtlArgItem){.opt = opt, .value = value};
    return 0;
}

int ctl_args_parse(const CtlOption *spec, int argc, char *const *argv, unsigned flags, CtlArgs *ret,
                   char **ret_error)
{
    CtlArgs a = {.spec = spec};
    size_t n = argc > 0 ? (size_t)argc : 0;
    bool options_done = false;
    int i, r = 0;

    *ret_error = NULL;
    /* Help wins over every other complaint: someone asking for it is unsure of the rest. */
    for (i = 0; i < argc && strcmp(argv[i], "--") != 0; i++) {
        if ((flags & CTL_ARGS_STOP_AT_POSITIONAL) && argv[i][0] != '-')
            break;
        if (is_help(argv[i])) {
            *ret = (CtlArgs){.spec = spec, .help = true, .consumed = i + 1};
            return 0;
        }
    }

    /* Each argument is at most one item or one positional, so argc bounds both arrays. */
    a.items = calloc(n ? n : 1, sizeof(*a.items));
    a.pos = calloc(n ? n : 1, sizeof(*a.pos));
    if (!a.items || !a.pos) {
        ctl_args_clear(&a);
        return -ENOMEM;
    }

    for (i = 0; i < argc && r == 0; i++) {
        const char *arg = argv[i];
        size_t opt;

        if (options_done || arg[0] != '-' || arg[1] == 0) {
            if (flags & CTL_ARGS_STOP_AT_POSITIONAL)
                break;
            a.pos[a.n_pos++] = arg;
            continue;
        }
        if (strcmp(arg, "--") == 0) {
            options_done = true;
            if (flags & CTL_ARGS_STOP_AT_POSITIONAL) {
                i++;
                break;
            }
            continue;
        }
        if (arg[1] == '-') {
            const char *name = arg + 2, *eq = strchr(name, '=');
            size_t len = eq ? (size_t)(eq - name) : strlen(name);

            opt = find_long(spec, name, len);
            if (opt == SIZE_MAX) {
                r = fail(ret_error, "unknown option '%s'", arg);
                break;
            }
            if (!(spec[opt].flags & CTL_OPT_VALUE)) {
                if (eq)
                    r = fail(ret_error, "option '--%s' takes no value", spec[opt].name);
                else
                    r = add_item(&a, opt, NULL, ret_error);
                continue;
            }
            if (eq) {
                r = add_item(&a, opt, eq + 1, ret_error);
                continue;
            }
        } else {
            opt = find_short(spec, arg[1]);
            if (opt == SIZE_MAX) {
                r = fail(ret_error, "unknown option '%s'", arg);
                break;
            }
            if (!(spec[opt].flags & CTL_OPT_VALUE)) {
                if (arg[2])
                    r = fail(ret_error, "option '-%.1s' takes no value", arg + 1);
                else
                    r = add_item(&a, opt, NULL, ret_error);
                continue;
            }
            if (arg[2]) {
                r = add_item(&a, opt, arg + 2, ret_error);
                continue;
            }
        }
        /* The value is the next argument, whatever it looks like (as getopt does). */
        if (i + 1 >= argc) {
            r = fail(ret_error, "option '--%s' needs a value", spec[opt].name);
            break;
        }
        r = add_item(&a, opt, argv[++i], ret_error);
    }
    a.consumed = i;

    if (r == 0 && !(flags & CTL_ARGS_NO_REQUIRED_CHECK)) {
        for (size_t k = 0; spec && spec[k].name && r == 0; k++)
            if ((spec[k].flags & CTL_OPT_REQUIRED) && !ctl_args_has(&a, spec[k].name))
                r = fail(ret_error, "missing required option '--%s'", spec[k].name);
    }
    if (r < 0) {
        ctl_args_clear(&a);
        return r;
    }
    *ret = a;
    return 0;
}

void ctl_args_clear(CtlArgs *a)
{
    free(a->items);
    free(a->pos);
    a->items = NULL;
    a->pos = NULL;
    a->n_items = a->n_pos = 0;
}

const char *ctl_args_get_nth(const CtlArgs *a, const char *name, size_t n)
{
    for (size_t i = 0; i < a->n_items; i++) {
        if (strcmp(a->spec[a->items[i].opt].name, name) != 0)
            continue;
        if (n-- == 0)
            return a->items[i].value;
    }
    return NULL;
}

const char *ctl_args_get(const CtlArgs *a, const char *name)
{
    const char *v = NULL;
    for (size_t i = 0; i < a->n_items; i++)
        if (strcmp(a->spec[a->items[i].opt].name, name) == 0)
            v = a->items[i].value;
    return v;
}

size_t ctl_args_count(const CtlArgs *a, const char *name)
{
    size_t n = 0;
    for (size_t i = 0; i < a->n_items; i++)
        if (strcmp(a->spec[a->items[i].opt].name, name) == 0)
            n++;
    return n;
}

bool ctl_args_has(const CtlArgs *a, const char *name)
{
    return ctl_args_count(a, name) > 0;
}
