/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The audit chain, on SQLite and on PostgreSQL (CB_TEST_PG_URL): records appended through
 * br_store_audit() verify; editing, deleting (in the middle or at the end) and re-chaining rows
 * with plain SQL are each caught, and the verifier names the first record that fails. A
 * rolled-back append leaves no trace in the head row (audit_head). The anchor outside the
 * database catches what SQL alone can hide: the tail removed with the head row lowered, down to
 * nothing.
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
#include "cbt-pg.h"
#include "cm-crypto.h"
#include "cm-util.h"

#define N_RECORDS 10

typedef struct {
    char dir[64];
    char *url;
    char *pg_name;
    BrStore *store;
} Fixture;

/* The fixture, or the test skipped when it is PostgreSQL's and CB_TEST_PG_URL is not set. */
#define FIXTURE(state)                                                                             \
    ({                                                                                             \
        Fixture *f_ = *(state);                                                                    \
        if (!f_->store)                                                                            \
            skip();                                                                                \
        f_;                                                                                        \
    })

static int setup_on(void **state, bool pg)
{
    Fixture *f = calloc(1, sizeof(*f));
    char key[128];
    CmError err = {0};
    BrActor actor = {.account_id = 3,
                     .name = "reviewer-1",
                     .role = BR_ROLE_REVIEWER,
                     .request_id = "req-1",
                     .client = "10.0.0.9"};

    *state = f;
    if (pg && !cbt_pg_url())
        return 0;
    snprintf(f->dir, sizeof(f->dir), "/tmp/test-br-audit-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    if (pg)
        assert_int_equal(cbt_pg_create_db("audit", &f->url, &f->pg_name), 0);
    else
        f->url = cm_strdup_printf("sqlite:%s/db", f->dir);
    snprintf(key, sizeof(key), "%s/audit.key", f->dir);
    assert_int_equal(br_store_open(f->url, key, &f->store, &err), 0);
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
    return 0;
}

static int setup_sqlite(void **state)
{
    return setup_on(state, false);
}

static int setup_pg(void **state)
{
    return setup_on(state, true);
}

static int teardown(void **state)
{
    Fixture *f = *state; /* not FIXTURE(): a skip in a teardown is an error */
    char cmd[160];
    br_store_free(f->store);
    cbt_pg_drop_db(f->pg_name);
    if (f->dir[0]) {
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
        assert_int_equal(system(cmd), 0);
    }
    free(f->url);
    free(f->pg_name);
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

/* Tampering is done the way an intruder with the database would: plain SQL, in a transaction
 * of its own that appends no record. */
static void tamper(Fixture *f, const char *sql)
{
    CmError err = {0};
    CmDb *db;

    assert_int_equal(br_store_write_begin(f->store, &db, &err), 0);
    if (cm_db_exec(db, sql, &err) < 0) {
        br_store_write_abort(f->store, db);
        fail_msg("tamper SQL failed: %s", err.message);
    }
    assert_int_equal(br_store_write_commit(f->store, db, &err), 0);
}

static void test_intact_chain_verifies(void **state)
{
    BrAuditVerdict v = verify(FIXTURE(state));
    assert_true(v.ok);
    assert_int_equal(v.records, N_RECORDS);
    assert_int_equal(v.first_bad, 0);
}

static void test_edited_record_is_caught(void **state)
{
    Fixture *f = FIXTURE(state);
    tamper(f, "UPDATE audit SET outcome = 'rejected' WHERE seq = 4");
    BrAuditVerdict v = verify(f);
    assert_false(v.ok);
    assert_int_equal(v.first_bad, 4);
    assert_int_equal(v.records, 3);
    assert_non_null(strstr(v.reason, "altered"));
}

static void test_edited_detail_is_caught(void **state)
{
    Fixture *f = FIXTURE(state);
    tamper(f, "UPDATE audit SET detail = '{\"n\":99}', client = '1.2.3.4' WHERE seq = 7");
    BrAuditVerdict v = verify(f);
    assert_false(v.ok);
    assert_int_equal(v.first_bad, 7);
}

static void test_deleted_middle_record_is_caught(void **state)
{
    Fixture *f = FIXTURE(state);
    tamper(f, "DELETE FROM audit WHERE seq = 5");
    BrAuditVerdict v = verify(f);
    assert_false(v.ok);
    assert_int_equal(v.first_bad, 5);
    assert_non_null(strstr(v.reason, "missing"));
}

static void test_deleted_tail_is_caught(void **state)
{
    Fixture *f = FIXTURE(state);
    tamper(f, "DELETE FROM audit WHERE seq >= 9");
    BrAuditVerdict v = verify(f);
    assert_false(v.ok);
    assert_int_equal(v.first_bad, 9);
    assert_non_null(strstr(v.reason, "removed"));
}

/* Recomputes every hash from seq @from on with @key (NULL: plain SHA-256, no key), and moves
 * the head row along, as an intruder rewriting the trail would. */
static void rechain(Fixture *f, const uint8_t *key, int64_t from)
{
    CmError err = {0};
    CmDb *db;
    CmStmt *sel, *upd;
    char prev[65] = "";
    int r;

    assert_int_equal(br_store_write_begin(f->store, &db, &err), 0);
    sel = cm_db_prepare(db,
                        "SELECT seq, at, account_id, account_name, role, department_id, action,"
                        " object_type, object_id, outcome, request_id, client, detail,"
                        " prev_hash, hash FROM audit ORDER BY seq",
                        &err);
    upd = cm_db_prepare(db, "UPDATE audit SET prev_hash = ?1, hash = ?2 WHERE seq = ?3", &err);
    assert_non_null(sel);
    assert_non_null(upd);
    while ((r = cm_stmt_step(sel, &err)) > 0) {
        int64_t seq = cm_stmt_int(sel, 0);
        char h[65];
        if (seq < from) {
            snprintf(prev, sizeof(prev), "%s", cm_stmt_text(sel, 14));
            continue;
        }
        if (!*prev)
            snprintf(prev, sizeof(prev), "%s", cm_stmt_text(sel, 13));
        if (key) {
            BrAuditRecord rec = br_audit_record_of_row(sel, prev);
            br_audit_record_hash(key, &rec, h);
        } else {
            char buf[2048];
            snprintf(buf, sizeof(buf), "%s|%lld|%s|%s", prev, (long long)seq, cm_stmt_text(sel, 6),
                     cm_stmt_text(sel, 9));
            cm_sha256_hex(buf, strlen(buf), h);
        }
        CM_DB_BIND(upd, prev, h, seq);
        assert_int_equal(cm_stmt_exec(upd, &err), 0);
        cm_stmt_reset(upd);
        snprintf(prev, sizeof(prev), "%s", h);
    }
    assert_int_equal(r, 0);
    cm_stmt_reset(sel);
    cm_stmt_reset(upd);
    upd = cm_db_prepare(db, "UPDATE audit_head SET head_hash = ?1", &err);
    assert_non_null(upd);
    CM_DB_BIND(upd, prev);
    assert_int_equal(cm_stmt_exec(upd, &err), 0);
    cm_stmt_reset(upd);
    assert_int_equal(br_store_write_commit(f->store, db, &err), 0);
}

static void test_rechained_without_key_is_caught(void **state)
{
    Fixture *f = FIXTURE(state);
    /* Edit record 6, then rebuild every link after it so that prev_hash values agree. */
    tamper(f, "UPDATE audit SET outcome = 'rejected' WHERE seq = 6");
    rechain(f, NULL, 6);
    BrAuditVerdict v = verify(f);
    assert_false(v.ok);
    assert_int_equal(v.first_bad, 6);
}

static void test_rechained_with_wrong_key_is_caught(void **state)
{
    Fixture *f = FIXTURE(state);
    uint8_t wrong[BR_AUDIT_KEY_LEN];
    memset(wrong, 0x5a, sizeof(wrong));
    tamper(f, "DELETE FROM audit WHERE seq = 3");
    tamper(f, "UPDATE audit SET seq = seq - 1 WHERE seq > 3");
    tamper(f, "UPDATE audit_head SET records = records - 1");
    rechain(f, wrong, 3);
    BrAuditVerdict v = verify(f);
    assert_false(v.ok);
    assert_int_equal(v.first_bad, 3);
}

static void test_rechained_with_right_key_passes(void **state)
{
    /* The keyed hash is what resists tampering: with the key, a rewrite is undetectable,
     * which is why the key lives outside the database (STATE/audit.key, mode 0600). */
    Fixture *f = FIXTURE(state);
    tamper(f, "UPDATE audit SET outcome = 'rejected' WHERE seq = 2");
    assert_false(verify(f).ok);
    rechain(f, br_store_audit_key(f->store), 2);
    assert_true(verify(f).ok);
}

/* ---- the anchor outside the database (STATE/audit.anchor) ---- */

static void append(Fixture *f, int n)
{
    BrActor actor = {.account_id = 3,
                     .name = "reviewer-1",
                     .role = BR_ROLE_REVIEWER,
                     .request_id = "req-2",
                     .client = "10.0.0.9"};
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
    int r = br_audit_anchor_read(br_store_anchor_path(f->store), br_store_audit_key(f->store), &a,
                                 &err);
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
    Fixture *f = FIXTURE(state);
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
    Fixture *f = FIXTURE(state);
    br_store_set_anchor_every(f->store, 1);
    append(f, 1);
    /* Every record and the head row: the chain alone looks whole, with 0 records. */
    tamper(f, "DELETE FROM audit; UPDATE audit_head SET records = 0, head_hash ="
              " '0000000000000000000000000000000000000000000000000000000000000000'");
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

static void test_tail_truncation_with_head_is_caught(void **state)
{
    Fixture *f = FIXTURE(state);
    br_store_set_anchor_every(f->store, 1);
    append(f, 1);
    tamper(f, "DELETE FROM audit WHERE seq > 6;"
              "UPDATE audit_head SET records = 6, head_hash = (SELECT hash FROM audit"
              " WHERE seq = 6)");
    assert_true(verify(f).ok);
    BrAuditVerdict v = verify_anchored(f);
    assert_false(v.ok);
    assert_int_equal(v.first_bad, 7);
}

static void test_edited_anchor_is_refused(void **state)
{
    Fixture *f = FIXTURE(state);
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
    assert_int_equal(br_audit_anchor_read(path, br_store_audit_key(f->store), &got, &err), -ENOENT);
}

static void test_anchor_written_at_shutdown(void **state)
{
    Fixture *f = FIXTURE(state);
    char key[128];
    CmError err = {0};

    assert_int_equal(read_anchor(f).records, 1);
    br_store_free(f->store);
    snprintf(key, sizeof(key), "%s/audit.key", f->dir);
    assert_int_equal(br_store_open(f->url, key, &f->store, &err), 0);
    assert_int_equal(read_anchor(f).records, N_RECORDS);
    assert_true(verify_anchored(f).ok);
}

/* A record appended in a transaction that is rolled back leaves the head where it was: the
 * next append takes its seq, and the trail verifies. */
static void test_rolled_back_append_leaves_no_trace(void **state)
{
    Fixture *f = FIXTURE(state);
    BrActor actor = {.account_id = 3,
                     .name = "reviewer-1",
                     .role = BR_ROLE_REVIEWER,
                     .request_id = "req-3",
                     .client = "10.0.0.9"};
    CmError err = {0};
    CmDb *db;

    for (int i = 0; i < 2; i++) {
        assert_int_equal(br_store_write_begin(f->store, &db, &err), 0);
        assert_int_equal(br_store_audit(f->store, db, &actor, "request.decision", "request", 50,
                                        "approved", NULL, &err),
                         0);
        assert_int_equal(br_store_audit(f->store, db, &actor, "request.decision", "request", 51,
                                        "approved", NULL, &err),
                         0);
        br_store_write_abort(f->store, db);
    }
    append(f, 2);
    BrAuditVerdict v = verify(f);
    assert_true(v.ok);
    assert_int_equal(v.records, N_RECORDS + 2);
}

static void test_head_below_the_trail_is_caught(void **state)
{
    Fixture *f = FIXTURE(state);
    tamper(f, "UPDATE audit_head SET records = records - 2");
    BrAuditVerdict v = verify(f);
    assert_false(v.ok);
    assert_int_equal(v.first_bad, N_RECORDS - 1);
    assert_non_null(strstr(v.reason, "below its last record"));
}

/* The head row removed: verification says so; appends go on after the trail's last record, so
 * the broker keeps working, and the head row is back with the next one. */
static void test_missing_head_row(void **state)
{
    Fixture *f = FIXTURE(state);
    tamper(f, "DELETE FROM audit_head");
    BrAuditVerdict v = verify(f);
    assert_false(v.ok);
    assert_int_equal(v.first_bad, 1);
    append(f, 1);
    v = verify(f);
    assert_true(v.ok);
    assert_int_equal(v.records, N_RECORDS + 1);
}

int main(void)
{
#define T(fn)                                                                                      \
    {#fn " (sqlite)", fn, setup_sqlite, teardown, NULL},                                           \
    {                                                                                              \
#fn " (postgresql)", fn, setup_pg, teardown, NULL                                          \
    }
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
        T(test_tail_truncation_with_head_is_caught),
        T(test_edited_anchor_is_refused),
        T(test_anchor_written_at_shutdown),
        T(test_rolled_back_append_leaves_no_trace),
        T(test_head_below_the_trail_is_caught),
        T(test_missing_head_row),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
