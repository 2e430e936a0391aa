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
/* The dense form's size, and the most any encoding takes. */
#define BR_HISTOGRAM_BLOB_SIZE (BR_HISTOGRAM_BINS * 4)
/* The first byte of the sparse form. */
#define BR_HISTOGRAM_SPARSE 0x01

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

/**
 * br_histogram_encode:
 * Writes @h into @out in the shorter of two forms: sparse (BR_HISTOGRAM_SPARSE, then for each
 * bin that counts, in rising order, its index in one byte and its count as an unsigned LEB128
 * varint), or dense (the 101 bins as little-endian uint32: exactly BR_HISTOGRAM_BLOB_SIZE
 * bytes, the only form of that length). A day's histogram fills a few bins of 101: sparse, the
 * rollup rows are a third of their dense size, and a year of them reads that much faster.
 * Returns: the bytes written (at most BR_HISTOGRAM_BLOB_SIZE).
 */
size_t br_histogram_encode(const BrHistogram *h, uint8_t out[BR_HISTOGRAM_BLOB_SIZE]);

/**
 * br_histogram_decode: reads @len bytes of either form.
 * Returns: 0, or -EINVAL for bytes that are neither (a bin out of order or out of range, a
 * varint cut short or over 32 bits, trailing bytes).
 */
int br_histogram_decode(const void *blob, size_t len, BrHistogram *ret);

/**
 * br_histogram_merge_blob: @into += the histogram of @len bytes at @blob (either form), touching
 * only the bins it counts. Returns: 0, or -EINVAL (as br_histogram_decode(); @into unchanged).
 */
int br_histogram_merge_blob(BrHistogram *into, const void *blob, size_t len);

/**
 * br_quantile_exact:
 * Sorts @v (@n values) in place. Returns: the nearest-rank quantile @q, or -1 when @n is 0.
 */
double br_quantile_exact(double *v, size_t n, double q);
