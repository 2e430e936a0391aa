/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "br-histogram.h"

void br_histogram_add(BrHistogram *h, double u)
{
    int bin;
    if (!isfinite(u) || u < 0)
        u = 0;
    if (u > 1)
        u = 1;
    /* Bin k holds (k-1 %, k %]: 0 % exactly is bin 0, 0.3 % is bin 1. */
    bin = (int)ceil(u * 100.0 - 1e-9);
    if (bin < 0)
        bin = 0;
    if (bin >= BR_HISTOGRAM_BINS)
        bin = BR_HISTOGRAM_BINS - 1;
    h->bins[bin]++;
    h->count++;
}

void br_histogram_merge(BrHistogram *into, const BrHistogram *from)
{
    for (int i = 0; i < BR_HISTOGRAM_BINS; i++)
        into->bins[i] += from->bins[i];
    into->count += from->count;
}

double br_histogram_quantile(const BrHistogram *h, double q)
{
    uint64_t rank, seen = 0;
    if (h->count == 0)
        return -1;
    rank = (uint64_t)ceil(q * (double)h->count);
    if (rank < 1)
        rank = 1;
    for (int i = 0; i < BR_HISTOGRAM_BINS; i++) {
        seen += h->bins[i];
        if (seen >= rank)
            return i / 100.0;
    }
    return 1.0;
}

void br_histogram_encode(const BrHistogram *h, uint8_t out[BR_HISTOGRAM_BLOB_SIZE])
{
    for (int i = 0; i < BR_HISTOGRAM_BINS; i++) {
        uint32_t v = h->bins[i];
        out[4 * i] = (uint8_t)v;
        out[4 * i + 1] = (uint8_t)(v >> 8);
        out[4 * i + 2] = (uint8_t)(v >> 16);
        out[4 * i + 3] = (uint8_t)(v >> 24);
    }
}

int br_histogram_decode(const void *blob, size_t len, BrHistogram *ret)
{
    const uint8_t *b = blob;
    BrHistogram h = {0};
    if (len != BR_HISTOGRAM_BLOB_SIZE)
        return -EINVAL;
    for (int i = 0; i < BR_HISTOGRAM_BINS; i++) {
        h.bins[i] = (uint32_t)b[4 * i] | (uint32_t)b[4 * i + 1] << 8 |
                    (uint32_t)b[4 * i + 2] << 16 | (uint32_t)b[4 * i + 3] << 24;
        h.count += h.bins[i];
    }
    *ret = h;
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double br_quantile_exact(double *v, size_t n, double q)
{
    size_t rank;
    if (n == 0)
        return -1;
    qsort(v, n, sizeof(*v), cmp_double);
    rank = (size_t)ceil(q * (double)n);
    if (rank < 1)
        rank = 1;
    return v[rank - 1];
}
