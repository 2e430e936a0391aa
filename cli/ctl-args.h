/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/*
 * Command-line options, declared as a table per command so that parsing, the check for
 * required options and the --help text all come from the same declaration.
 */

typedef enum {
    CTL_OPT_VALUE = 1u << 0,    /* takes a value: --name VALUE or --name=VALUE */
    CTL_OPT_REQUIRED = 1u << 1, /* must be given */
    CTL_OPT_REPEAT = 1u << 2,   /* may be given more than once */
} CtlOptionFlags;

typedef struct {
    const char *name;    /* long name without the dashes; NULL ends a table */
    char short_name;     /* one-letter alias, or 0 */
    const char *metavar; /* the value's placeholder in help (CTL_OPT_VALUE only) */
    unsigned flags;      /* CtlOptionFlags */
    const char *help;
} CtlOption;

typedef enum {
    /* Stop at the first positional argument (the global options before a command). */
    CTL_ARGS_STOP_AT_POSITIONAL = 1u << 0,
    /* Do not complain about missing CTL_OPT_REQUIRED options. */
    CTL_ARGS_NO_REQUIRED_CHECK = 1u << 1,
} CtlArgsFlags;

typedef struct {
    size_t opt;        /* index into the option table */
    const char *value; /* points into argv; NULL for a flag */
} CtlArgItem;

typedef struct {
    const CtlOption *spec;
    CtlArgItem *items; /* in command-line order */
    size_t n_items;
    const char **pos; /* positional arguments, pointing into argv */
    size_t n_pos;
    int consumed; /* how many argv entries were read (with CTL_ARGS_STOP_AT_POSITIONAL) */
    bool help;    /* -h or --help was given */
} CtlArgs;

/**
 * ctl_args_parse:
 * Parses @argc entries of @argv against @spec (which may be NULL for "no options"). "--" ends
 * the options; "-" alone is a positional argument. When -h/--help appears anywhere (before
 * "--"), @ret->help is set and nothing else is checked.
 * Returns: 0 with @ret filled (release it with ctl_args_clear()), or -EINVAL with a message
 * for the user in @ret_error (allocated), or -ENOMEM.
 */
int ctl_args_parse(const CtlOption *spec, int argc, char *const *argv, unsigned flags, CtlArgs *ret,
                   char **ret_error);

/** ctl_args_clear: releases what ctl_args_parse() allocated; accepts a zeroed @a. */
void ctl_args_clear(CtlArgs *a);

/** ctl_args_get: Returns: the last value given for option @name, or NULL. */
const char *ctl_args_get(const CtlArgs *a, const char *name);

/** ctl_args_get_nth: Returns: the @n-th value (from 0) given for option @name, or NULL. */
const char *ctl_args_get_nth(const CtlArgs *a, const char *name, size_t n);

/** ctl_args_count: Returns: how many times option @name was given. */
size_t ctl_args_count(const CtlArgs *a, const char *name);

/** ctl_args_has: Returns: true when option @name was given at least once. */
bool ctl_args_has(const CtlArgs *a, const char *name);
