/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * What every fuzz target shares. A target is one LLVMFuzzerTestOneInput(): built with
 * libFuzzer (meson -Dfuzz=true, clang) it is fuzzed; built with fuzz-replay.c it replays its
 * committed seeds and past crash inputs in the unit suite, so CI keeps them fixed.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A property that failed: said on stderr, then abort() (libFuzzer saves the input). */
#define FUZZ_CHECK(cond, ...)                                                                      \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: %s: ", __FILE__, __LINE__, #cond);                             \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* A copy of the input with a NUL after it (most code under test reads C strings). */
static inline char *fuzz_strndup(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        abort();
    for (size_t i = 0; i < size; i++)
        s[i] = (char)data[i];
    s[size] = 0;
    return s;
}
