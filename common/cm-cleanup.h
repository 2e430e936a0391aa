/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdlib.h>
#include <unistd.h>
#include <stdio.h>

/*
 * Scope-bound cleanup in the style of systemd: a variable declared with one of these macros is
 * released when it leaves scope, and TAKE_PTR() hands ownership on.
 */

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _cleanup_free_ _cleanup_(cm_freep)
#define _cleanup_fclose_ _cleanup_(cm_fclosep)
#define _cleanup_close_ _cleanup_(cm_closep)
#define _unused_ __attribute__((unused))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _nodiscard_ __attribute__((warn_unused_result))

#define TAKE_PTR(p)                                                                                \
    ({                                                                                             \
        __typeof__(p) _p_ = (p);                                                                   \
        (p) = NULL;                                                                                \
        _p_;                                                                                       \
    })

#define TAKE_FD(fd)                                                                                \
    ({                                                                                             \
        int _fd_ = (fd);                                                                           \
        (fd) = -1;                                                                                 \
        _fd_;                                                                                      \
    })

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))

static inline void cm_freep(void *p)
{
    free(*(void **)p);
}

static inline void cm_fclosep(FILE **f)
{
    if (*f)
        fclose(*f);
}

static inline void cm_closep(int *fd)
{
    if (*fd >= 0)
        close(*fd);
}

/* Defines a cleanup function cm_<name>p for a type whose free function accepts NULL. */
#define CM_DEFINE_TRIVIAL_CLEANUP_FUNC(type, func)                                                 \
    static inline void func##p(type *p)                                                            \
    {                                                                                              \
        if (*p)                                                                                    \
            func(*p);                                                                              \
    }
