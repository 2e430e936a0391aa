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

static size_t encode_dense(const BrHistogram *h, uint8_t *out)
{
    for (int i = 0; i < BR_HISTOGRAM_BINS; i++) {
        uint32_t v = h->bins[i];
        out[4 * i] = (uint8_t)v;
        out[4 * i + 1] = (uint8_t)(v >> 8);
        out[4 * i + 2] = (uint8_t)(v >> 16);
        out[4 * i + 3] = (uint8_t)(v >> 24);
    }
    return BR_HISTOGRAM_BLOB_SIZE;
}

size_t br_histogram_encode(const BrHistogram *h, uint8_t out[BR_HISTOGRAM_BLOB_SIZE])
{
    size_t n = 0;

    out[n++] = BR_HISTOGRAM_SPARSE;
    for (int i = 0; i < BR_HISTOGRAM_BINS; i++) {
        uint32_t v = h->bins[i];
        if (!v)
            continue;
        /* a bin takes at most 6 bytes; the sparse form must stay shorter than the dense */
        if (n + 6 >= BR_HISTOGRAM_BLOB_SIZE)
            return encode_dense(h, out);
        out[n++] = (uint8_t)i;
        for (; v >= 0x80; v >>= 7)
            out[n++] = (uint8_t)(v | 0x80);
        out[n++] = (uint8_t)v;
    }
    return n;
}

/* The bins @blob counts, in rising order, into @bin and @count. Returns: how many, or -EINVAL. */
static int parse(const uint8_t *b, size_t len, uint8_t bin[BR_HISTOGRAM_BINS],
                 uint32_t count[BR_HISTOGRAM_BINS])
{
    size_t k = 1;
    int n = 0;

    if (len == BR_HISTOGRAM_BLOB_SIZE) {
        for (int i = 0; i < BR_HISTOGRAM_BINS; i++) {
            uint32_t v = (uint32_t)b[4 * i] | (uint32_t)b[4 * i + 1] << 8 |
                         (uint32_t)b[4 * i + 2] << 16 | (uint32_t)b[4 * i + 3] << 24;
            if (v)
                bin[n] = (uint8_t)i, count[n++] = v;
        }
        return n;
    }
    if (len == 0 || len > BR_HISTOGRAM_BLOB_SIZE || b[0] != BR_HISTOGRAM_SPARSE)
        return -EINVAL;
    while (k < len) {
        uint64_t v = 0;
        int shift = 0;

        if (b[k] >= BR_HISTOGRAM_BINS || (n > 0 && b[k] <= bin[n - 1]))
            return -EINVAL;
        bin[n] = b[k++];
        for (;;) {
            if (k == len || shift > 28)
                return -EINVAL;
            v |= (uint64_t)(b[k] & 0x7f) << shift;
            shift += 7;
            if (!(b[k++] & 0x80))
                break;
        }
        if (v == 0 || v > UINT32_MAX)
            return -EINVAL;
        count[n++] = (uint32_t)v;
    }
    return n;
}

int br_histogram_merge_blob(BrHistogram *into, const void *blob, size_t len)
{
    uint8_t bin[BR_HISTOGRAM_BINS];
    uint32_t count[BR_HISTOGRAM_BINS];
    int n = parse(blob, len, bin, count);

    if (n < 0)
        return n;
    for (int i = 0; i < n; i++) {
        into->bins[bin[i]] += count[i];
        into->count += count[i];
    }
    return 0;
}

int br_histogram_decode(const void *blob, size_t len, BrHistogram *ret)
{
    BrHistogram h = {0};
    int r = br_histogram_merge_blob(&h, blob, len);

    if (r < 0)
        return r;
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
