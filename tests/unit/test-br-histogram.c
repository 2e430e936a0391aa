/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The rollups' histogram blobs (br-histogram.c): the sparse form round-trips every histogram a
 * day can hold, falls back to the dense form only when that is shorter, reads the dense blobs
 * written before it, and refuses bytes that are neither.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "br-histogram.h"

static void round_trip(const BrHistogram *h, size_t want_len)
{
    uint8_t blob[BR_HISTOGRAM_BLOB_SIZE];
    BrHistogram back;
    size_t n = br_histogram_encode(h, blob);

    assert_int_equal(n, want_len);
    assert_int_equal(br_histogram_decode(blob, n, &back), 0);
    assert_memory_equal(back.bins, h->bins, sizeof(h->bins));
    assert_int_equal(back.count, h->count);
}

static BrHistogram with(const int *bins, const uint32_t *counts, size_t n)
{
    BrHistogram h = {0};
    for (size_t i = 0; i < n; i++) {
        h.bins[bins[i]] = counts[i];
        h.count += counts[i];
    }
    return h;
}

/* Sparse: a tag byte, then each counting bin's index and its count as a varint. */
static void test_sparse(void **state)
{
    (void)state;
    BrHistogram empty = {0};
    round_trip(&empty, 1);

    /* 288 windows at 15 %: bin 15, count 288 = 0xa0 0x02 */
    BrHistogram day = {0};
    for (int i = 0; i < 288; i++)
        br_histogram_add(&day, 0.15);
    uint8_t blob[BR_HISTOGRAM_BLOB_SIZE];
    assert_int_equal(br_histogram_encode(&day, blob), 4);
    assert_memory_equal(blob, ((uint8_t[]){BR_HISTOGRAM_SPARSE, 15, 0xa0, 0x02}), 4);

    /* bins 0 and 100, counts at the varint's edges */
    int ends[] = {0, 1, 99, 100};
    uint32_t edge[] = {127, 128, 16384, UINT32_MAX};
    BrHistogram e = with(ends, edge, 4);
    round_trip(&e, 1 + (1 + 1) + (1 + 2) + (1 + 3) + (1 + 5));

    /* a year merged: every bin, counts in the thousands (sparse: 1 + 101 x 3 = 304 bytes) */
    BrHistogram year = {0};
    for (int i = 0; i < BR_HISTOGRAM_BINS; i++)
        year.bins[i] = 2000 + (uint32_t)i, year.count += year.bins[i];
    round_trip(&year, 1 + BR_HISTOGRAM_BINS * 3);
}

/* Where the sparse form would not be shorter, the dense one is written (and only it has 404
 * bytes, so the length tells the forms apart). */
static void test_dense_when_shorter(void **state)
{
    (void)state;
    BrHistogram full = {0};
    for (int i = 0; i < BR_HISTOGRAM_BINS; i++)
        full.bins[i] = UINT32_MAX - (uint32_t)i, full.count += full.bins[i];
    round_trip(&full, BR_HISTOGRAM_BLOB_SIZE);

    /* 1 + 67 x 6 = 403 bytes still fit; a 68th bin of 6 bytes would reach 409: dense */
    BrHistogram edge = {0};
    for (int i = 0; i < 67; i++)
        edge.bins[i] = UINT32_MAX, edge.count += UINT32_MAX;
    round_trip(&edge, 1 + 67 * 6);
    edge.bins[67] = UINT32_MAX, edge.count += UINT32_MAX;
    round_trip(&edge, BR_HISTOGRAM_BLOB_SIZE);
}

/* A dense blob as the rollups of earlier versions hold them. */
static void test_dense_read(void **state)
{
    (void)state;
    uint8_t blob[BR_HISTOGRAM_BLOB_SIZE] = {0};
    BrHistogram h;

    blob[4 * 15] = 0x20, blob[4 * 15 + 1] = 0x01; /* bin 15: 288 */
    blob[4 * 100 + 3] = 0x01;                     /* bin 100: 2^24 */
    assert_int_equal(br_histogram_decode(blob, sizeof(blob), &h), 0);
    assert_int_equal(h.bins[15], 288);
    assert_int_equal(h.bins[100], 1u << 24);
    assert_int_equal(h.count, 288 + (1u << 24));
}

static void refused(const uint8_t *b, size_t n)
{
    BrHistogram h = {.count = 7};
    assert_int_equal(br_histogram_decode(b, n, &h), -EINVAL);
    assert_int_equal(h.count, 7); /* untouched */
}

static void test_refused(void **state)
{
    (void)state;
    uint8_t big[BR_HISTOGRAM_BLOB_SIZE + 1] = {BR_HISTOGRAM_SPARSE};

    refused((const uint8_t[]){0}, 0);
    refused((const uint8_t[]){0x02, 1, 1}, 3);                      /* another tag */
    refused((const uint8_t[]){BR_HISTOGRAM_SPARSE, 101, 1}, 3);     /* no bin 101 */
    refused((const uint8_t[]){BR_HISTOGRAM_SPARSE, 5, 1, 5, 1}, 5); /* a bin twice */
    refused((const uint8_t[]){BR_HISTOGRAM_SPARSE, 6, 1, 5, 1}, 5); /* out of order */
    refused((const uint8_t[]){BR_HISTOGRAM_SPARSE, 5}, 2);          /* no count */
    refused((const uint8_t[]){BR_HISTOGRAM_SPARSE, 5, 0x80}, 3);    /* a varint cut short */
    refused((const uint8_t[]){BR_HISTOGRAM_SPARSE, 5, 0}, 3);       /* a bin of nothing */
    refused((const uint8_t[]){BR_HISTOGRAM_SPARSE, 5, 0xff, 0xff, 0xff, 0xff, 0x1f},
            7); /* 2^35-1 */
    refused((const uint8_t[]){BR_HISTOGRAM_SPARSE, 5, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}, 8);
    refused(big, sizeof(big)); /* longer than any form */
}

/* Merging a blob adds its bins to a histogram that already counts; a bad blob adds nothing. */
static void test_merge_blob(void **state)
{
    (void)state;
    BrHistogram into = {0}, day = {0};
    uint8_t blob[BR_HISTOGRAM_BLOB_SIZE], dense[BR_HISTOGRAM_BLOB_SIZE] = {0};

    br_histogram_add(&into, 0.15);
    for (int i = 0; i < 10; i++)
        br_histogram_add(&day, i < 7 ? 0.15 : 0.42);
    assert_int_equal(br_histogram_merge_blob(&into, blob, br_histogram_encode(&day, blob)), 0);
    dense[4 * 42] = 5;
    assert_int_equal(br_histogram_merge_blob(&into, dense, sizeof(dense)), 0);
    assert_int_equal(into.bins[15], 8);
    assert_int_equal(into.bins[42], 3 + 5);
    assert_int_equal(into.count, 1 + 10 + 5);

    /* valid up to a bin out of order: nothing of it is added */
    assert_int_equal(
        br_histogram_merge_blob(&into, (const uint8_t[]){BR_HISTOGRAM_SPARSE, 15, 9, 3, 1}, 5),
        -EINVAL);
    assert_int_equal(into.bins[15], 8);
    assert_int_equal(into.count, 16);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sparse),     cmocka_unit_test(test_dense_when_shorter),
        cmocka_unit_test(test_dense_read), cmocka_unit_test(test_refused),
        cmocka_unit_test(test_merge_blob),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
