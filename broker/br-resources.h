/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdint.h>

/* Sizes: what a request asks for, an allocation holds, a quota allows. */
typedef struct {
    int64_t vcpus;
    int64_t memory_mib;
    int64_t disk_gib;
    int64_t instances;
} BrResources;
