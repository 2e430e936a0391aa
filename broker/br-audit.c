/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "br-audit.h"
#include "cm-crypto.h"
#include "cm-time.h"
#include "cm-util.h"

/* The genesis link: the first record chains to this. */
static const char genesis[] = "0000000000000000000000000000000000000000000000000000000000000000";

/* Length-prefixed fields, so no choice of field contents can make two records hash alike. */
static int put_field(char **buf, size_t *len, size_t *cap, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    char head[32];
    int h = snprintf(head, sizeof(head), s ? "%zu:" : "-:", n);
    if (*len + (size_t)h + n + 1 > *cap) {
        size_t ncap = (*cap + (size_t)h + n + 1) * 2;
        char *nb = realloc(*buf, ncap);
        if (!nb)
            return -ENOMEM;
        *buf = nb;
        *cap = ncap;
    }
    memcpy(*buf + *len, head, (size_t)h);
    *len += (size_t)h;
    if (n)
        memcpy(*buf + *len, s, n);
    *len += n;
    (*buf)[(*len)++] = ';';
    return 0;
}

int br_audit_record_hash(const uint8_t key[BR_AUDIT_KEY_LEN], const char *prev_hash, int64_t seq,
                         const char *at, int64_t account_id, const char *account_name,
                         const char *role, int64_t department_id, const char *action,
                         const char *object_type, int64_t object_id, const char *outcome,
                         const char *request_id, const char *client, const char *detail,
                         char out[65])
{
    _cleanup_free_ char *buf = NULL;
    size_t len = 0, cap = 0;
    char nums[3][24];
    int r = 0;

    snprintf(nums[0], sizeof(nums[0]), "%lld", (long long)seq);
    snprintf(nums[1], sizeof(nums[1]), "%lld", (long long)account_id);
    snprintf(nums[2], sizeof(nums[2]), "%lld", (long long)department_id);
    char oid[24];
    snprintf(oid, sizeof(oid), "%lld", (long long)object_id);

    const char *fields[] = {prev_hash, nums[0], at,     nums[1],    account_name,
                            role,      nums[2], action, object_type, oid,
                            outcome,   request_id, client, detail};
    for (size_t i = 0; i < ELEMENTSOF(fields) && r == 0; i++)
        r = put_field(&buf, &len, &cap, fields[i]);
    if (r < 0)
        return r;
    return cm_hmac_sha256_hex(key, BR_AUDIT_KEY_LEN, buf, len, out);
}

int br_audit_append(CmDb *db, const uint8_t key[BR_AUDIT_KEY_LEN], const BrActor *actor,
                    const BrAuditEntry *e, CmError *err)
{
    sqlite3_stmt *stmt;
    char prev[65], hash[65], at[CM_TIME_ISO_LEN + 1];
    int64_t seq = 1;
    int r;

    /* The chain's head; the caller's write transaction keeps it from moving under us. */
    stmt = cm_db_stmt(db,
                      "SELECT s.seq, a.hash FROM sqlite_sequence s LEFT JOIN audit a "
                      "ON a.seq = s.seq WHERE s.name = 'audit'",
                      err);
    if (!stmt)
        return -EIO;
    r = cm_db_step_row(db, stmt, err);
    if (r < 0)
        return r;
    snprintf(prev, sizeof(prev), "%s", genesis);
    if (r > 0) {
        const char *h = cm_db_col_text(stmt, 1);
        seq = sqlite3_column_int64(stmt, 0) + 1;
        if (h)
            snprintf(prev, sizeof(prev), "%s", h);
    }
    sqlite3_reset(stmt);

    cm_time_iso(cm_now_ms(), at);
    const char *role = br_actor_role_name(actor);
    r = br_audit_record_hash(key, prev, seq, at, actor->account_id, actor->name, role,
                             actor->department_id, e->action, e->object_type, e->object_id,
                             e->outcome, actor->request_id, actor->client, e->detail, hash);
    if (r < 0)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "cannot hash audit record");

    stmt = cm_db_stmt(db,
                      "INSERT INTO audit(seq, at, account_id, account_name, role, department_id,"
                      " action, object_type, object_id, outcome, request_id, client, detail,"
                      " prev_hash, hash) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                      err);
    if (!stmt)
        return -EIO;
    CM_DB_BIND(stmt, seq, at, actor->account_id, actor->name, role,
               actor->department_id, e->action, e->object_type, e->object_id, e->outcome,
               actor->request_id, actor->client, e->detail, prev, hash);
    return cm_db_step_done(db, stmt, err);
}

int br_audit_verify(CmDb *db, const uint8_t key[BR_AUDIT_KEY_LEN], BrAuditVerdict *ret,
                    CmError *err)
{
    _cleanup_(cm_stmt_finalizep) sqlite3_stmt *stmt = NULL;
    BrAuditVerdict v = {.ok = true};
    char prev[65];
    int64_t expect = 1, high = 0;
    int r;

    snprintf(prev, sizeof(prev), "%s", genesis);
    snprintf(v.head_hash, sizeof(v.head_hash), "%s", genesis);

    r = cm_db_begin_read(db, err);
    if (r < 0)
        return r;
    if (sqlite3_prepare_v2(cm_db_handle(db),
                           "SELECT seq, at, account_id, account_name, role, department_id, action,"
                           " object_type, object_id, outcome, request_id, client, detail,"
                           " prev_hash, hash FROM audit ORDER BY seq",
                           -1, &stmt, NULL) != SQLITE_OK) {
        cm_db_rollback(db);
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "cannot read the audit trail");
    }
    while ((r = cm_db_step_row(db, stmt, err)) > 0) {
        int64_t seq = sqlite3_column_int64(stmt, 0);
        const char *stored_prev = cm_db_col_text(stmt, 13);
        const char *stored = cm_db_col_text(stmt, 14);
        char want[65];

        if (seq != expect) {
            v.ok = false;
            v.first_bad = expect;
            snprintf(v.reason, sizeof(v.reason),
                     seq > expect ? "record %lld is missing (next present is %lld)"
                                  : "record %lld is out of sequence",
                     (long long)expect, (long long)seq);
            break;
        }
        if (!stored_prev || strcmp(stored_prev, prev) != 0) {
            v.ok = false;
            v.first_bad = seq;
            snprintf(v.reason, sizeof(v.reason),
                     "record %lld does not link to the hash of record %lld", (long long)seq,
                     (long long)(seq - 1));
            break;
        }
        br_audit_record_hash(key, prev, seq, cm_db_col_text(stmt, 1),
                             sqlite3_column_int64(stmt, 2), cm_db_col_text(stmt, 3),
                             cm_db_col_text(stmt, 4), sqlite3_column_int64(stmt, 5),
                             cm_db_col_text(stmt, 6), cm_db_col_text(stmt, 7),
                             sqlite3_column_int64(stmt, 8), cm_db_col_text(stmt, 9),
                             cm_db_col_text(stmt, 10), cm_db_col_text(stmt, 11),
                             cm_db_col_text(stmt, 12), want);
        if (!stored || strcmp(stored, want) != 0) {
            v.ok = false;
            v.first_bad = seq;
            snprintf(v.reason, sizeof(v.reason),
                     "record %lld was altered: its contents do not match its keyed hash",
                     (long long)seq);
            break;
        }
        snprintf(prev, sizeof(prev), "%s", stored);
        snprintf(v.head_hash, sizeof(v.head_hash), "%s", stored);
        v.records++;
        expect++;
    }
    if (r < 0) {
        cm_db_rollback(db);
        return r;
    }

    if (v.ok) {
        _cleanup_(cm_stmt_finalizep) sqlite3_stmt *hw = NULL;
        if (sqlite3_prepare_v2(cm_db_handle(db),
                               "SELECT seq FROM sqlite_sequence WHERE name = 'audit'", -1, &hw,
                               NULL) == SQLITE_OK &&
            sqlite3_step(hw) == SQLITE_ROW)
            high = sqlite3_column_int64(hw, 0);
        if (high != expect - 1) {
            v.ok = false;
            v.first_bad = expect;
            snprintf(v.reason, sizeof(v.reason),
                     high > expect - 1
                         ? "records %lld to %lld were removed from the end of the trail"
                         : "the trail's high-water mark (%lld) is below its last record (%lld)",
                     (long long)(high > expect - 1 ? expect : high),
                     (long long)(high > expect - 1 ? high : expect - 1));
        }
    }
    cm_db_rollback(db);
    *ret = v;
    return 0;
}

int br_audit_key_load(const char *path, bool create, uint8_t key[BR_AUDIT_KEY_LEN], CmError *err)
{
    _cleanup_close_ int fd = -1;
    ssize_t n;

    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0 && errno == ENOENT && create) {
        uint8_t fresh[BR_AUDIT_KEY_LEN];
        if (cm_random(fresh, sizeof(fresh)) < 0)
            return cm_error_set(err, CM_ERROR_INTERNAL, "", "no randomness for the audit key");
        int r = cm_write_file_atomic(path, fresh, sizeof(fresh), 0600);
        if (r < 0)
            return cm_error_set(err, CM_ERROR_INTERNAL, "", "cannot write %s: %s", path,
                                strerror(-r));
        memcpy(key, fresh, sizeof(fresh));
        return 0;
    }
    if (fd < 0 && errno == ENOENT)
        return cm_error_set(err, CM_ERROR_INTERNAL, "",
                            "the audit key %s is missing but the database holds audit records: "
                            "restore the key from its backup (a new key would make the whole "
                            "trail fail verification)",
                            path);
    if (fd < 0)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "cannot open audit key %s: %s", path,
                            strerror(errno));
    n = read(fd, key, BR_AUDIT_KEY_LEN);
    if (n != BR_AUDIT_KEY_LEN)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "audit key %s is damaged", path);
    return 0;
}

int br_audit_list(CmDb *db, const BrAuditFilter *f, struct json_object **ret, CmError *err)
{
    _cleanup_stmt_ CmStmt *st = cm_db_prepare(
        db,
        "SELECT seq, at, account_id, account_name AS account, role,"
        " nullif(department_id, 0) AS department_id, action, object_type, object_id, outcome,"
        " request_id, client, detail AS \"detail:json\", prev_hash, hash FROM audit"
        " WHERE seq > ?1 AND (?2 IS NULL OR object_type = ?2) AND (?3 = 0 OR object_id = ?3)"
        " AND (?4 IS NULL OR action = ?4) AND (?5 IS NULL OR account_name = ?5)"
        " AND (?6 IS NULL OR at >= ?6) AND (?7 IS NULL OR at < ?7)"
        " ORDER BY seq LIMIT ?8",
        err);
    if (!st)
        return -EIO;
    CM_DB_BIND(st, f->after, f->object_type, f->object_id, f->action, f->account, f->from, f->to,
               f->limit);
    return cm_stmt_rows_json(st, ret, err);
}
