/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Schema validation benchmark: cm_schema_validate() alone (the document is parsed once, before
 * timing) on the two bodies the broker validates most:
 *
 *   1. a POST /v1/samples batch of 500 windows, every metric present, against
 *      schemas/samples.json (what the agent sends; the record is the one of meter-load.c);
 *   2. a POST /v1/requests body of 4 instances against schemas/request-create.json.
 *
 * Prints the median and the best of ROUNDS rounds, each the mean time of one validation over
 * a batch of calls; asserts nothing about time (see tests/bench/README.md).
 *
 * Usage: schema-bench [ROUNDS] (default 31).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cm-json.h"
#include "cm-schema.h"

#define N_WINDOWS 500

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void die(const char *what, const CmError *err)
{
    fprintf(stderr, "schema-bench: %s: %s %s\n", what, err ? err->field : "",
            err ? err->message : "");
    exit(1);
}

static CmSchema *load_schema(const char *name)
{
    _cleanup_json_ json_object *doc = NULL;
    _cleanup_free_ char *path = NULL;
    CmSchema *s = NULL;
    CmError err = {0};

    if (asprintf(&path, "%s/schemas/%s.json", SOURCE_DIR, name) < 0)
        die("out of memory", NULL);
    if (cm_json_load_file(path, 1 << 20, &doc, &err) < 0 || cm_schema_compile(doc, &s, &err) < 0)
        die(path, &err);
    return s;
}

static json_object *parse(const char *text)
{
    json_object *o = NULL;
    CmError err = {0};

    if (cm_json_parse(text, strlen(text), &o, &err) < 0)
        die("document", &err);
    return o;
}

static char *samples_text(void)
{
    size_t cap = N_WINDOWS * 700 + 64, len = 0;
    char *b = malloc(cap);

    if (!b)
        die("out of memory", NULL);
    len += (size_t)snprintf(b + len, cap - len, "{\"instances\":[");
    for (int64_t i = 0; i < N_WINDOWS; i++)
        len += (size_t)snprintf(
            b + len, cap - len,
            "%s{\"instance\":%" PRId64 ",\"uuid\":\"00000000-0000-4000-8000-%012" PRId64
            "\",\"start\":%" PRId64 ",\"duration\":300,\"readings\":30,\"expected\":30,"
            "\"vcpus\":2,\"memory_mib\":2048,\"cpu_cores_avg\":%.6f,\"cpu_cores_max\":%.6f,"
            "\"memory_used_mib_avg\":%.6f,\"memory_used_mib_max\":%.6f,\"net_rx_bytes\":%" PRId64
            ",\"net_tx_bytes\":%" PRId64
            ",\"memory_source\":\"balloon\",\"disk_read_bytes\":%" PRId64
            ",\"disk_write_bytes\":%" PRId64 ",\"disk_read_requests\":%" PRId64
            ",\"disk_write_requests\":%" PRId64 ",\"net_rx_packets\":%" PRId64
            ",\"net_tx_packets\":%" PRId64 "}",
            i ? "," : "", i + 1, i + 1, 1700000000 + i * 300, 0.25 + (double)i / 1000,
            1.5 + (double)i / 1000, 1024.5, 1536.25, i * 1000, i * 900, i * 4096, i * 8192, i,
            i * 2, i * 10, i * 9);
    snprintf(b + len, cap - len, "]}");
    return b;
}

static const char request_text[] =
    "{\"system\": 12, \"kind\": \"new\", \"justification\": \"Four build machines for the "
    "new CI of the department, replacing the old hosts\", \"restart_allowed\": false, "
    "\"resources\": {\"instances\": ["
    "{\"vcpus\": 4, \"memory_mib\": 8192, \"disk_gib\": 80, \"image\": \"debian-12\"},"
    "{\"vcpus\": 4, \"memory_mib\": 8192, \"disk_gib\": 80, \"image\": \"debian-12\"},"
    "{\"vcpus\": 8, \"memory_mib\": 16384, \"disk_gib\": 200, \"image\": \"ubuntu-24.04\"},"
    "{\"vcpus\": 2, \"memory_mib\": 4096, \"disk_gib\": 40, \"image\": \"alpine-3.20\"}]}}";

/* Runs @rounds rounds of @per_round validations; prints the median and best time of one. */
static void measure(const char *label, const CmSchema *s, json_object *doc, int rounds,
                    int per_round)
{
    double *t = calloc((size_t)rounds, sizeof(*t));
    CmError err = {0};

    if (!t)
        die("out of memory", NULL);
    if (cm_schema_validate(s, doc, &err) != 0)
        die(label, &err);
    for (int r = 0; r < rounds; r++) {
        double start = now_ns();
        for (int i = 0; i < per_round; i++)
            if (cm_schema_validate(s, doc, &err) != 0)
                die(label, &err);
        t[r] = (now_ns() - start) / per_round;
    }
    qsort(t, (size_t)rounds, sizeof(*t), cmp_double);
    printf("%-34s median %9.2f us   best %9.2f us\n", label, t[rounds / 2] / 1e3, t[0] / 1e3);
    free(t);
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? (int)strtol(argv[1], NULL, 10) : 31;
    _cleanup_(cm_schema_freep) CmSchema *samples = load_schema("samples");
    _cleanup_(cm_schema_freep) CmSchema *request = load_schema("request-create");
    _cleanup_free_ char *text = samples_text();
    _cleanup_json_ json_object *samples_doc = parse(text);
    _cleanup_json_ json_object *request_doc = parse(request_text);

    if (rounds < 1 || rounds > 100000)
        rounds = 31;
    printf("schema-bench: %d rounds, %zu bytes of samples\n", rounds, strlen(text));
    measure("samples.json, 500 windows", samples, samples_doc, rounds, 20);
    measure("request-create.json, 4 instances", request, request_doc, rounds, 20000);
    return 0;
}
