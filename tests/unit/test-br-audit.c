/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The audit chain: records appended through br_audit_append() verify; editing, deleting
 * (in the middle or at the end) and re-chaining rows directly in SQLite are each caught, and
 * the verifier names the first record that fails. The anchor outside the database catches
 * what SQL alone can hide: the tail removed with sqlite_sequence lowered, down to nothing.
 */
#include <sqlite3.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "br-audit.h"
#include "br-store.h"
#include "cm-crypto.h"

#define N_RECORDS 10

typedef struct {
    char dir[64];
    char db_path[128];
    BrStore *store;
} Fixture;

static int setup(void **state)
{
    Fixture *f = calloc(1, sizeof(*f));
    char key[128];
    CmError err = {0};
    BrActor actor = {.account_id = 3, .name = "reviewer-1", .role = BR_ROLE_REVIEWER,
                     .request_id = "req-1", .client = "10.0.0.9"};

    snprintf(f->dir, sizeof(f->dir), "/tmp/test-br-audit-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->db_path, sizeof(f->db_path), "%s/db", f->dir);
    snprintf(key, sizeof(key), "%s/audit.key", f->dir);
    assert_int_equal(br_store_open(f->db_path, key, &f->store, &err), 0);
    for (int i = 1; i <= N_RECORDS; i++) {
        CmDb *db;
        char detail[64];
        snprintf(detail, sizeof(detail), "{\"n\":%d}", i);
        assert_int_equal(br_store_write_begin(f->store, &db, &err), 0);
        assert_int_equal(br_store_audit(f->store, db, &actor, "request.decision", "request", i,
                                        "approved", detail, &err),
                         0);
        assert_int_equal(br_store_write_commit(f->store, db, &err), 0);
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    Fixture *f = *state;
    char cmd[160];
    br_store_free(f->store);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static BrAuditVerdict verify(Fixture *f)
{
    BrAuditVerdict v;
    CmError err = {0};
    CmDb *db = br_store_db(f->store, &err);
    assert_non_null(db);
    assert_int_equal(br_audit_verify(db, br_store_audit_key(f->store), NULL, &v, &err), 0);
    return v;
}

/* Tampering is done the way an intruder with the database file would: plain SQL. */
static void tamper(Fixture *f, const char *sql)
{
    sqlite3 *raw;
    char *msg = NULL;
    assert_int_equal(sqlite3_open(f->db_path, &raw), SQLITE_OK);
    if (sqlite3_exec(raw, sql, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("tamper SQL failed: %s", msg);
    sqlite3_close(raw);
}

static void test_intact_chain_verifies(void **state)
{
    BrAuditVerdict v = verify(*state);
    assert_true(v.ok);
    assert_int_equal(v.records, N_RECORDS);
    assert_int_equal(v.first_bad, 0);
}

static void test_edited_record_is_caught(void **state)
{
    Fixture *f = *state;
    tamper(f, "UPDATE audit SET outcome = 'rejected' WHERE seq = 4");
    BrAuditVerdict v = verify(f);
    assert_false(v.ok);
    assert_int_equal(v.first_bad, 4);
    assert_int_equal(v.records, 3);
    assert_non_null(strstr(v.reason, "altered"));
}

static void test_edited_detail_is_caught(void **state)
{
    Fixture *f = *state;
    tamper(f, "UPDATE audit SET detail = '{\"n\":99}', client = '1.2.3.4' WHERE seq = 7");
    BrAuditVerdict v = verify(f);
    assert_false(v.ok);
    assert_int_equal(v.first_bad, 7);
}

static void test_deleted_middle_record_is_caught(void **state)
{
    Fixture *f = *state;
    tamper(f, "DELETE FROM audit WHERE seq = 5");
    BrAuditVerdict v = verify(f);
    assert_false(v.ok);
    assert_int_equal(v.first_bad, 5);
    assert_non_null(strstr(v.reason, "missing"));
}

static void test_deleted_tail_is_caught(void **state)
{
    Fixture *f = *state;
    tamper(f, "DELETE FROM audit WHERE seq >= 9");
    BrAuditVerdict v = verify(f);
    assert_false(v.ok);
    assert_int_equal(v.first_bad, 9);
    assert_non_null(strstr(v.reason, "removed"));
}

/* Recomputes every hash from seq @from on with @key (NULL: plain SHA-256, no key). */
static void rechain(Fixture *f, const uint8_t *key, int from)
{
    sqlite3 *raw;
    sqlite3_stmt *sel, *upd;
    char prev[65] = "";

    assert_int_equal(sqlite3_open(f->db_path, &raw), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(raw,
                                        "SELECT seq, at, account_id, account_name, role,"
                                        " department_id, action, object_type, object_id,"
                                        " outcome, request_id, client, detail, prev_hash, hash"
                                        " FROM audit ORDER BY seq",
                                        -1, &sel, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(raw,
                                        "UPDATE audit SET prev_hash = ?, hash = ? WHERE seq = ?",
                                        -1, &upd, NULL),
                     SQLITE_OK);
    sqlite3_exec(raw, "BEGIN", NULL, NULL, NULL);
    while (sqlite3_step(sel) == SQLITE_ROW) {
        int64_t seq = sqlite3_column_int64(sel, 0);
        char h[65];
        if (seq < from) {
            snprintf(prev, sizeof(prev), "%s", sqlite3_column_text(sel, 14));
            continue;
        }
        if (!*prev)
            snprintf(prev, sizeof(prev), "%s", sqlite3_column_text(sel, 13));
        if (key) {
            br_audit_record_hash(key, prev, seq, (const char *)sqlite3_column_text(sel, 1),
                                 sqlite3_column_int64(sel, 2),
                                 (const char *)sqlite3_column_text(sel, 3),
                                 (const char *)sqlite3_column_text(sel, 4),
                                 sqlite3_column_int64(sel, 5),
                                 (const char *)sqlite3_column_text(sel, 6),
                                 (const char *)sqlite3_column_text(sel, 7),
                                 sqlite3_column_int64(sel, 8),
                                 (const char *)sqlite3_column_text(sel, 9),
                                 (const char *)sqlite3_column_text(sel, 10),
                                 (const char *)sqlite3_column_text(sel, 11),
                                 (const char *)sqlite3_column_text(sel, 12), h);
        } else {
            char buf[2048];
            snprintf(buf, sizeof(buf), "%s|%lld|%s|%s", prev, (long long)seq,
                     sqlite3_column_text(sel, 6), sqlite3_column_text(sel, 9));
            cm_sha256_hex(buf, strlen(buf), h);
        }
        sqlite3_bind_text(upd, 1, prev, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(upd, 2, h, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(upd, 3, seq);
        assert_int_equal(sqlite3_step(upd), SQLITE_DONE);
        sqlite3_reset(upd);
        snprintf(prev, sizeof(prev), "%s", h);
    }
    sqlite3_exec(raw, "COMMIT", NULL, NULL, NULL);
    sqlite3_finalize(sel);
    sqlite3_finalize(upd);
    sqlite3_close(raw);
}

static void test_rechained_without_key_is_caught(void **state)
{
    Fixture *f = *state;
    /* Edit record 6, then rebuild every link after it so that prev_hash values agree. */
    tamper(f, "UPDATE audit SET outcome = 'rejected' WHERE seq = 6");
    rechain(f, NULL, 6);
    BrAuditVerdict v = verify(f);
    assert_false(v.ok);
    assert_int_equal(v.first_bad, 6);
}

static void test_rechained_with_wrong_key_is_caught(void **state)
{
    Fixture *f = *state;
    uint8_t wrong[BR_AUDIT_KEY_LEN];
    memset(wrong, 0x5a, sizeof(wrong));
    tamper(f, "DELETE FROM audit WHERE seq = 3");
    tamper(f, "UPDATE audit SET seq = seq - 1 WHERE seq > 3");
    tamper(f, "UPDATE sqlite_sequence SET seq = seq - 1 WHERE name = 'audit'");
    rechain(f, wrong, 3);
    BrAuditVerdict v = verify(f);
    assert_false(v.ok);
    assert_int_equal(v.first_bad, 3);
}

static void test_rechained_with_right_key_passes(void **state)
{
    /* The keyed hash is what resists tampering: with the key, a rewrite is undetectable,
     * which is why the key lives outside the database (STATE/audit.key, mode 0600). */
    Fixture *f = *state;
    tamper(f, "UPDATE audit SET outcome = 'rejected' WHERE seq = 2");
    assert_false(verify(f).ok);
    rechain(f, br_store_audit_key(f->store), 2);
    assert_true(verify(f).ok);
}

/* ---- the anchor outside the database (STATE/audit.anchor) ---- */

static void append(Fixture *f, int n)
{
    BrActor actor = {.account_id = 3, .name = "reviewer-1", .role = BR_ROLE_REVIEWER,
                     .request_id = "req-2", .client = "10.0.0.9"};
    CmError err = {0};
    for (int i = 0; i < n; i++) {
        CmDb *db;
        assert_int_equal(br_store_write_begin(f->store, &db, &err), 0);
        assert_int_equal(br_store_audit(f->store, db, &actor, "request.decision", "request",
                                        100 + i, "rejected", NULL, &err),
                         0);
        assert_int_equal(br_store_write_commit(f->store, db, &err), 0);
    }
}

static BrAuditAnchor read_anchor(Fixture *f)
{
    BrAuditAnchor a = {0};
    CmError err = {0};
    int r = br_audit_anchor_read(br_store_anchor_path(f->store), br_store_audit_key(f->store),
                                 &a, &err);
    if (r < 0)
        fail_msg("anchor: %d %s", r, err.message);
    return a;
}

static BrAuditVerdict verify_anchored(Fixture *f)
{
    BrAuditVerdict v;
    BrAuditAnchor a = read_anchor(f);
    CmError err = {0};
    CmDb *db = br_store_db(f->store, &err);
    assert_int_equal(br_audit_verify(db, br_store_audit_key(f->store), &a, &v, &err), 0);
    return v;
}

static void test_anchor_follows_the_head(void **state)
{
    Fixture *f = *state;
    /* The first record is anchored at once; the next ones every 32. */
    BrAuditAnchor a = read_anchor(f);
    assert_int_equal(a.records, 1);
    br_store_set_anchor_every(f->store, 1);
    append(f, 1);
    a = read_anchor(f);
    assert_int_equal(a.records, N_RECORDS + 1);
    assert_true(verify_anchored(f).ok);
    br_store_set_anchor_every(f->store, 4);
    append(f, 3);
    assert_int_equal(read_anchor(f).records, N_RECORDS + 1);
    append(f, 1);
    assert_int_equal(read_anchor(f).records, N_RECORDS + 5);
}

static void test_truncation_to_nothing_is_caught(void **state)
{
    Fixture *f = *state;
    br_store_set_anchor_every(f->store, 1);
    append(f, 1);
    /* Every record and the high-water mark: the chain alone looks whole, with 0 records. */
    tamper(f, "DELETE FROM audit; DELETE FROM sqlite_sequence WHERE name = 'audit'");
    BrAuditVerdict v = verify(f);
    assert_true(v.ok);
    assert_int_equal(v.records, 0);
    v = verify_anchored(f);
    assert_false(v.ok);
    assert_int_equal(v.first_bad, 1);
    assert_non_null(strstr(v.reason, "removed"));
    /* Records appended afterwards never move the anchor over the evidence. */
    append(f, 20);
    assert_int_equal(read_anchor(f).records, N_RECORDS + 1);
    v = verify_anchored(f);
    assert_false(v.ok);
    assert_non_null(strstr(v.reason, "rewritten"));
}

static void test_tail_truncation_with_sequence_is_caught(void **state)
{
    Fixture *f = *state;
    br_store_set_anchor_every(f->store, 1);
    append(f, 1);
    tamper(f, "DELETE FROM audit WHERE seq > 6;"
              "UPDATE sqlite_sequence SET seq = 6 WHERE name = 'audit'");
    assert_true(verify(f).ok);
    BrAuditVerdict v = verify_anchored(f);
    assert_false(v.ok);
    assert_int_equal(v.first_bad, 7);
}

static void test_edited_anchor_is_refused(void **state)
{
    Fixture *f = *state;
    const char *path = br_store_anchor_path(f->store);
    BrAuditAnchor a = read_anchor(f), got;
    CmError err = {0};
    FILE *fp;

    /* Lowered to match a truncated trail, without the key: its MAC no longer matches. */
    fp = fopen(path, "w");
    assert_non_null(fp);
    fprintf(fp, "{\"records\":0,\"head_hash\":\"%s\",\"at\":\"%s\",\"mac\":\"%064d\"}\n",
            a.head_hash, a.at, 0);
    fclose(fp);
    assert_int_equal(br_audit_anchor_read(path, br_store_audit_key(f->store), &got, &err),
                     -EBADMSG);
    assert_string_equal(err.code, "anchor_damaged");
    unlink(path);
    assert_int_equal(br_audit_anchor_read(path, br_store_audit_key(f->store), &got, &err),
                     -ENOENT);
}

static void test_anchor_written_at_shutdown(void **state)
{
    Fixture *f = *state;
    char key[128];
    CmError err = {0};

    assert_int_equal(read_anchor(f).records, 1);
    br_store_free(f->store);
    snprintf(key, sizeof(key), "%s/audit.key", f->dir);
    assert_int_equal(br_store_open(f->db_path, key, &f->store, &err), 0);
    assert_int_equal(read_anchor(f).records, N_RECORDS);
    assert_true(verify_anchored(f).ok);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_intact_chain_verifies),
        T(test_edited_record_is_caught),
        T(test_edited_detail_is_caught),
        T(test_deleted_middle_record_is_caught),
        T(test_deleted_tail_is_caught),
        T(test_rechained_without_key_is_caught),
        T(test_rechained_with_wrong_key_is_caught),
        T(test_rechained_with_right_key_passes),
        T(test_anchor_follows_the_head),
        T(test_truncation_to_nothing_is_caught),
        T(test_tail_truncation_with_sequence_is_caught),
        T(test_edited_anchor_is_refused),
        T(test_anchor_written_at_shutdown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
