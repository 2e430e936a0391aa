/* SPDX-License-Identifier: Apache-2.0 */
/* The agent's durable queue (ag-spool.c) on a real SQLite file in a temporary folder. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "ag-spool.h"
#include "cm-db.h"

typedef struct {
    char dir[64];
    char path[128];
    AgSpool *spool;
} Fixture;

static int setup(void **state)
{
    Fixture *f = calloc(1, sizeof(*f));
    CmError err = {0};
    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/test-ag-spool-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/spool.db", f->dir);
    if (ag_spool_open(f->path, 1 << 20, &f->spool, &err) < 0)
        fail_msg("open: %s", err.message);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    Fixture *f = *state;
    char p[160];
    ag_spool_close(f->spool);
    for (const char *const *sfx = (const char *const[]){"", "-wal", "-shm", NULL}; *sfx; sfx++) {
        snprintf(p, sizeof(p), "%s%s", f->path, *sfx);
        unlink(p);
    }
    rmdir(f->dir);
    free(f);
    return 0;
}

static void reopen(Fixture *f, int64_t max_bytes)
{
    CmError err = {0};
    f->spool = ag_spool_close(f->spool);
    if (ag_spool_open(f->path, max_bytes, &f->spool, &err) < 0)
        fail_msg("reopen: %s", err.message);
}

/* A record whose payload is @text (kept by the caller). */
static AgRecord rec(AgRecordKind kind, const char *text)
{
    return (AgRecord){kind, (char *)text};
}

static void append(Fixture *f, const AgRecord *r, size_t n)
{
    CmError err = {0};
    if (ag_spool_append(f->spool, r, n, NULL, 0, &err) < 0)
        fail_msg("append: %s", err.message);
}

static AgSpoolStats stats(Fixture *f)
{
    AgSpoolStats st;
    CmError err = {0};
    assert_int_equal(ag_spool_stats(f->spool, &st, &err), 0);
    return st;
}

/* The payloads of every row, oldest first, joined with '|'; and their sequence numbers. */
static char *peek_all(Fixture *f, int64_t *seqs, size_t max)
{
    AgRecord recs[64];
    int64_t s[64];
    CmError err = {0};
    static char out[4096];
    int n = ag_spool_peek(f->spool, 64, INT64_MAX, s, recs, &err);
    assert_true(n >= 0);
    out[0] = 0;
    for (int i = 0; i < n; i++) {
        size_t l = strlen(out);
        snprintf(out + l, sizeof(out) - l, "%s%s", i ? "|" : "", recs[i].payload);
        if (seqs && (size_t)i < max)
            seqs[i] = s[i];
    }
    ag_spool_records_free(recs, (size_t)n);
    return out;
}

static void test_append_peek_ack_in_order(void **state)
{
    Fixture *f = *state;
    AgRecord in[] = {rec(AG_RECORD_INSTANCE, "{\"w\":1}"), rec(AG_RECORD_HOST, "{\"w\":2}"),
                     rec(AG_RECORD_UNOWNED, "{\"w\":3}")};
    AgRecord out[8];
    int64_t seqs[8];
    CmError err = {0};
    int n;

    append(f, in, 3);
    AgRecord more[] = {rec(AG_RECORD_INSTANCE, "{\"w\":4}")};
    append(f, more, 1);
    AgSpoolStats st = stats(f);
    assert_int_equal(st.rows, 4);
    assert_int_equal(st.bytes, 4 * 7);
    assert_true(st.oldest_created > 1600000000);

    n = ag_spool_peek(f->spool, 8, INT64_MAX, seqs, out, &err);
    assert_int_equal(n, 4);
    assert_string_equal(out[0].payload, "{\"w\":1}");
    assert_int_equal(out[0].kind, AG_RECORD_INSTANCE);
    assert_string_equal(out[1].payload, "{\"w\":2}");
    assert_int_equal(out[1].kind, AG_RECORD_HOST);
    assert_string_equal(out[2].payload, "{\"w\":3}");
    assert_int_equal(out[2].kind, AG_RECORD_UNOWNED);
    assert_string_equal(out[3].payload, "{\"w\":4}");
    for (int i = 1; i < n; i++)
        assert_true(seqs[i] > seqs[i - 1]);
    ag_spool_records_free(out, (size_t)n);

    /* At most @max rows, and at most @max_bytes of payload (but always one row). */
    n = ag_spool_peek(f->spool, 2, INT64_MAX, seqs, out, &err);
    assert_int_equal(n, 2);
    ag_spool_records_free(out, (size_t)n);
    n = ag_spool_peek(f->spool, 8, 14, seqs, out, &err);
    assert_int_equal(n, 2);
    ag_spool_records_free(out, (size_t)n);
    n = ag_spool_peek(f->spool, 8, 1, seqs, out, &err);
    assert_int_equal(n, 1);
    assert_string_equal(out[0].payload, "{\"w\":1}");
    ag_spool_records_free(out, (size_t)n);

    /* Peeking takes nothing away; acknowledging does, the oldest first. */
    n = ag_spool_peek(f->spool, 2, INT64_MAX, seqs, out, &err);
    ag_spool_records_free(out, (size_t)n);
    assert_int_equal(ag_spool_ack(f->spool, seqs, 2, &err), 0);
    assert_string_equal(peek_all(f, NULL, 0), "{\"w\":3}|{\"w\":4}");
    st = stats(f);
    assert_int_equal(st.rows, 2);
    assert_int_equal(st.bytes, 2 * 7);
    assert_int_equal(st.pushed_total, 2);
    assert_int_equal(st.dropped_total, 0);
    assert_int_equal(st.rejected_total, 0);

    /* Empty after the rest. */
    n = ag_spool_peek(f->spool, 8, INT64_MAX, seqs, out, &err);
    ag_spool_records_free(out, (size_t)n);
    assert_int_equal(ag_spool_ack(f->spool, seqs, (size_t)n, &err), 0);
    st = stats(f);
    assert_int_equal(st.rows, 0);
    assert_int_equal(st.bytes, 0);
    assert_int_equal(st.oldest_created, 0);
    assert_int_equal(st.pushed_total, 4);
    assert_int_equal(ag_spool_peek(f->spool, 8, INT64_MAX, seqs, out, &err), 0);
}

static void test_bound_drops_the_oldest_and_counts(void **state)
{
    Fixture *f = *state;
    /* Ten-byte payloads under a 35-byte bound: three fit. */
    const char *p[] = {"{\"a\":\"00\"}", "{\"a\":\"01\"}", "{\"a\":\"02\"}", "{\"a\":\"03\"}",
                       "{\"a\":\"04\"}", "{\"a\":\"05\"}", "{\"a\":\"06\"}", "{\"a\":\"07\"}"};
    reopen(f, 35);
    for (int i = 0; i < 3; i++) {
        AgRecord r = rec(AG_RECORD_INSTANCE, p[i]);
        append(f, &r, 1);
    }
    assert_int_equal(stats(f).dropped_total, 0);
    assert_int_equal(stats(f).rows, 3);

    AgRecord r = rec(AG_RECORD_INSTANCE, p[3]);
    append(f, &r, 1);
    AgSpoolStats st = stats(f);
    assert_int_equal(st.rows, 3);
    assert_int_equal(st.bytes, 30);
    assert_int_equal(st.dropped_total, 1);
    assert_string_equal(peek_all(f, NULL, 0), "{\"a\":\"01\"}|{\"a\":\"02\"}|{\"a\":\"03\"}");

    /* One cycle that alone exceeds the bound keeps only its newest windows. */
    AgRecord many[] = {rec(AG_RECORD_INSTANCE, p[4]), rec(AG_RECORD_HOST, p[5]),
                       rec(AG_RECORD_INSTANCE, p[6]), rec(AG_RECORD_INSTANCE, p[7])};
    append(f, many, 4);
    st = stats(f);
    assert_int_equal(st.rows, 3);
    assert_int_equal(st.bytes, 30);
    assert_int_equal(st.dropped_total, 5);
    assert_string_equal(peek_all(f, NULL, 0), "{\"a\":\"05\"}|{\"a\":\"06\"}|{\"a\":\"07\"}");
    /* Nothing silently lost: every window appended is in the spool or counted. */
    assert_int_equal(st.rows + st.dropped_total + st.pushed_total + st.rejected_total, 8);
}

static void test_reject_moves_rows_aside_and_counts(void **state)
{
    Fixture *f = *state;
    AgRecord in[] = {rec(AG_RECORD_INSTANCE, "{\"bad\":1}"), rec(AG_RECORD_INSTANCE, "{\"ok\":2}"),
                     rec(AG_RECORD_HOST, "{\"ok\":3}")};
    int64_t seqs[8];
    CmError err = {0};
    sqlite3 *db;
    sqlite3_stmt *st;

    append(f, in, 3);
    peek_all(f, seqs, 8);
    assert_int_equal(ag_spool_reject(f->spool, seqs, 1, 422, "record 0: negative", &err), 0);
    assert_string_equal(peek_all(f, NULL, 0), "{\"ok\":2}|{\"ok\":3}");
    AgSpoolStats s = stats(f);
    assert_int_equal(s.rows, 2);
    assert_int_equal(s.bytes, 16);
    assert_int_equal(s.rejected_total, 1);
    assert_int_equal(s.pushed_total, 0);
    assert_int_equal(s.dropped_total, 0);

    /* Set aside with the broker's answer, for the operator to look at; not lost. */
    assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT seq, kind, payload, status, reason FROM rejected",
                                        -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int64(st, 0), seqs[0]);
    assert_string_equal((const char *)sqlite3_column_text(st, 1), "instance");
    assert_string_equal((const char *)sqlite3_column_text(st, 2), "{\"bad\":1}");
    assert_int_equal(sqlite3_column_int64(st, 3), 422);
    assert_string_equal((const char *)sqlite3_column_text(st, 4), "record 0: negative");
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

typedef struct {
    int n;
    char names[8][40];
    char data[8][64];
    size_t len[8];
} Loaded;

static void on_state(void *userdata, const char *name, const void *data, size_t len)
{
    Loaded *l = userdata;
    assert_true(l->n < 8);
    assert_true(len <= sizeof(l->data[0]));
    snprintf(l->names[l->n], sizeof(l->names[0]), "%s", name);
    memcpy(l->data[l->n], data, len);
    l->len[l->n] = len;
    l->n++;
}

static int find(const Loaded *l, const char *name)
{
    for (int i = 0; i < l->n; i++)
        if (strcmp(l->names[i], name) == 0)
            return i;
    return -1;
}

static void test_meter_states_saved_and_replaced(void **state)
{
    Fixture *f = *state;
    const unsigned char a[] = {1, 2, 0, 3, 255}; /* bytes, with a NUL inside */
    const unsigned char h[] = {9, 9, 9};
    AgState s1[] = {{"6a2b1f0e-2c3d-4e5f-8a9b-0c1d2e3f4a5b", a, sizeof(a)}, {"host", h, sizeof(h)}};
    AgRecord r = rec(AG_RECORD_INSTANCE, "{}");
    CmError err = {0};
    Loaded l = {0};
    int i;

    assert_int_equal(ag_spool_load_states(f->spool, on_state, &l, &err), 0);
    assert_int_equal(ag_spool_append(f->spool, &r, 1, s1, 2, &err), 0);
    assert_int_equal(ag_spool_load_states(f->spool, on_state, &l, &err), 2);
    assert_int_equal(l.n, 2);
    i = find(&l, "6a2b1f0e-2c3d-4e5f-8a9b-0c1d2e3f4a5b");
    assert_true(i >= 0);
    assert_int_equal(l.len[i], sizeof(a));
    assert_memory_equal(l.data[i], a, sizeof(a));
    i = find(&l, "host");
    assert_true(i >= 0);
    assert_memory_equal(l.data[i], h, sizeof(h));

    /* The next cycle's states replace them all: a domain gone is gone from the states. */
    const unsigned char b[] = {7};
    AgState s2[] = {{"host", b, sizeof(b)}};
    assert_int_equal(ag_spool_append(f->spool, NULL, 0, s2, 1, &err), 0);
    memset(&l, 0, sizeof(l));
    assert_int_equal(ag_spool_load_states(f->spool, on_state, &l, &err), 1);
    assert_string_equal(l.names[0], "host");
    assert_int_equal(l.len[0], 1);
    assert_int_equal(l.data[0][0], 7);
    /* A cycle without windows still saved its states and added no row. */
    assert_int_equal(stats(f).rows, 1);
}

static void test_reopen_keeps_everything(void **state)
{
    Fixture *f = *state;
    AgRecord in[] = {rec(AG_RECORD_INSTANCE, "{\"w\":1}"), rec(AG_RECORD_INSTANCE, "{\"w\":2}"),
                     rec(AG_RECORD_HOST, "{\"w\":3}"), rec(AG_RECORD_UNOWNED, "{\"w\":4}"),
                     rec(AG_RECORD_INSTANCE, "{\"w\":5}")};
    const unsigned char m[] = {42, 43};
    AgState st[] = {{"host", m, sizeof(m)}};
    int64_t seqs[8], seqs2[8];
    CmError err = {0};
    Loaded l = {0};

    assert_int_equal(ag_spool_append(f->spool, in, 5, st, 1, &err), 0);
    peek_all(f, seqs, 8);
    assert_int_equal(ag_spool_ack(f->spool, seqs, 1, &err), 0);
    assert_int_equal(ag_spool_reject(f->spool, seqs + 1, 1, 400, "bad", &err), 0);
    reopen(f, 10); /* a smaller bound: applied at the next append, not on open */
    reopen(f, 1 << 20);

    AgSpoolStats s = stats(f);
    assert_int_equal(s.rows, 3);
    assert_int_equal(s.bytes, 21);
    assert_int_equal(s.pushed_total, 1);
    assert_int_equal(s.rejected_total, 1);
    assert_int_equal(s.dropped_total, 0);
    assert_string_equal(peek_all(f, seqs2, 8), "{\"w\":3}|{\"w\":4}|{\"w\":5}");
    assert_int_equal(seqs2[0], seqs[2]);
    AgRecord out[4];
    int n = ag_spool_peek(f->spool, 4, INT64_MAX, seqs2, out, &err);
    assert_int_equal(n, 3);
    assert_int_equal(out[0].kind, AG_RECORD_HOST);
    assert_int_equal(out[1].kind, AG_RECORD_UNOWNED);
    assert_int_equal(out[2].kind, AG_RECORD_INSTANCE);
    ag_spool_records_free(out, (size_t)n);
    assert_int_equal(ag_spool_load_states(f->spool, on_state, &l, &err), 1);
    assert_memory_equal(l.data[0], m, sizeof(m));

    /* New rows after a reopen come after the old ones, even after the newest was sent. */
    assert_int_equal(ag_spool_ack(f->spool, seqs2 + 2, 1, &err), 0);
    AgRecord r = rec(AG_RECORD_INSTANCE, "{\"w\":6}");
    append(f, &r, 1);
    assert_string_equal(peek_all(f, seqs2, 8), "{\"w\":3}|{\"w\":4}|{\"w\":6}");
    assert_true(seqs2[2] > seqs[4]);
}

static void test_every_window_is_counted_once(void **state)
{
    Fixture *f = *state;
    /* The pusher took rows 1..3 to send; while the POST was in flight the next cycle filled
     * the spool and the bound dropped row 1. The broker then acknowledged 1..3. Each window
     * must end up counted exactly once: pushed, dropped, rejected or still waiting. */
    const char *p[] = {"{\"a\":\"01\"}", "{\"a\":\"02\"}", "{\"a\":\"03\"}", "{\"a\":\"04\"}"};
    int64_t seqs[8];
    reopen(f, 35);
    for (int i = 0; i < 3; i++) {
        AgRecord r = rec(AG_RECORD_INSTANCE, p[i]);
        append(f, &r, 1);
    }
    peek_all(f, seqs, 8);
    AgRecord r = rec(AG_RECORD_INSTANCE, p[3]);
    append(f, &r, 1);
    assert_int_equal(stats(f).dropped_total, 1);
    CmError err = {0};
    assert_int_equal(ag_spool_ack(f->spool, seqs, 3, &err), 0);
    AgSpoolStats s = stats(f);
    assert_int_equal(s.rows, 1);
    assert_int_equal(s.bytes, 10);
    assert_int_equal(s.rows + s.pushed_total + s.dropped_total + s.rejected_total, 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_append_peek_ack_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bound_drops_the_oldest_and_counts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reject_moves_rows_aside_and_counts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_meter_states_saved_and_replaced, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_keeps_everything, setup, teardown),
        cmocka_unit_test_setup_teardown(test_every_window_is_counted_once, setup, teardown),
    };
    cm_db_global_init();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
