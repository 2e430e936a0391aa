/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <string.h>

#include "cm-cleanup.h"

/*
 * String tables for enums, checked against the enum's _MAX at compile time (libvirt's
 * VIR_ENUM_IMPL). The strings are what the database and the API store and show.
 *
 *   CM_ENUM_DECL(br_request_kind, BrRequestKind)
 *   CM_ENUM_IMPL(br_request_kind, BrRequestKind, BR_REQUEST_KIND_MAX, "new", "change", ...)
 */
#define CM_ENUM_DECL(name, type)                                                                   \
    const char *name##_to_string(type v);                                                          \
    int name##_from_string(const char *s);

#define CM_ENUM_IMPL(name, type, max, ...)                                                         \
    static const char *const name##_table[] = {__VA_ARGS__};                                       \
    _Static_assert(ELEMENTSOF(name##_table) == (max), #name " string table does not match enum");  \
    const char *name##_to_string(type v)                                                           \
    {                                                                                              \
        if ((int)v < 0 || (int)v >= (int)(max))                                                    \
            return NULL;                                                                           \
        return name##_table[v];                                                                    \
    }                                                                                              \
    int name##_from_string(const char *s)                                                          \
    {                                                                                              \
        if (!s)                                                                                    \
            return -1;                                                                             \
        for (int i = 0; i < (int)(max); i++)                                                       \
            if (strcmp(name##_table[i], s) == 0)                                                   \
                return i;                                                                          \
        return -1;                                                                                 \
    }
