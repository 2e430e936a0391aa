/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stddef.h>
#include <stdint.h>

/*
 * A small mergeable histogram of utilization (0..100 % in 1 % bins), kept in each daily rollup
 * so that a percentile over any number of days (a year) can be computed from the rollups alone,
 * exact to the bin width.
 */
#define BR_HISTOGRAM_BINS 101
#define BR_HISTOGRAM_BLOB_SIZE (BR_HISTOGRAM_BINS * 4)

typedef struct {
    uint32_t bins[BR_HISTOGRAM_BINS];
    uint64_t count;
} BrHistogram;

/** br_histogram_add: counts utilization @u (a share, 0..1; clamped) once. */
void br_histogram_add(BrHistogram *h, double u);

/** br_histogram_merge: @into += @from. */
void br_histogram_merge(BrHistogram *into, const BrHistogram *from);

/**
 * br_histogram_quantile:
 * Returns: the utilization share at quantile @q (0..1) by the nearest-rank rule, as the upper
 * edge of its bin (so it never understates), or -1 for an empty histogram.
 */
double br_histogram_quantile(const BrHistogram *h, double q);

/** br_histogram_encode: writes the bins as little-endian uint32 into @out (BR_HISTOGRAM_BLOB_SIZE). */
void br_histogram_encode(const BrHistogram *h, uint8_t out[BR_HISTOGRAM_BLOB_SIZE]);

/** br_histogram_decode: reads @len bytes; Returns: 0, or -EINVAL for a blob of another size. */
int br_histogram_decode(const void *blob, size_t len, BrHistogram *ret);

/**
 * br_quantile_exact:
 * Sorts @v (@n values) in place. Returns: the nearest-rank quantile @q, or -1 when @n is 0.
 */
double br_quantile_exact(double *v, size_t n, double q);
