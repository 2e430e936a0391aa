/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stddef.h>
#include <stdint.h>

/*
 * A small mergeable histogram of utilization (0..100 % in 1 % bins), kept in each daily rollup
 * so that a percentile over any number of days (a year) can be computed from the rollups alone,
 * exact to the bin width.
 */
#define BR_HIST_BINS 101
#define BR_HIST_BLOB_SIZE (BR_HIST_BINS * 4)

typedef struct {
    uint32_t bins[BR_HIST_BINS];
    uint64_t count;
} BrHist;

/** br_hist_add: counts utilization @u (a share, 0..1; clamped) once. */
void br_hist_add(BrHist *h, double u);

/** br_hist_merge: @into += @from. */
void br_hist_merge(BrHist *into, const BrHist *from);

/**
 * br_hist_quantile:
 * Returns: the utilization share at quantile @q (0..1) by the nearest-rank rule, as the upper
 * edge of its bin (so it never understates), or -1 for an empty histogram.
 */
double br_hist_quantile(const BrHist *h, double q);

/** br_hist_encode: writes the bins as little-endian uint32 into @out (BR_HIST_BLOB_SIZE). */
void br_hist_encode(const BrHist *h, uint8_t out[BR_HIST_BLOB_SIZE]);

/** br_hist_decode: reads @len bytes; Returns: 0, or -EINVAL for a blob of another size. */
int br_hist_decode(const void *blob, size_t len, BrHist *ret);

/**
 * br_quantile_exact:
 * Sorts @v (@n values) in place. Returns: the nearest-rank quantile @q, or -1 when @n is 0.
 */
double br_quantile_exact(double *v, size_t n, double q);
