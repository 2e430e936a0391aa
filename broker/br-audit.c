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
#include "cm-json.h"
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

int br_audit_record_hash(const uint8_t key[BR_AUDIT_KEY_LEN], const BrAuditRecord *rec,
                         char out[65])
{
    _cleanup_free_ char *buf = NULL;
    size_t len = 0, cap = 0;
    char nums[3][24], oid[24];
    int r = 0;

    snprintf(nums[0], sizeof(nums[0]), "%lld", (long long)rec->seq);
    snprintf(nums[1], sizeof(nums[1]), "%lld", (long long)rec->account_id);
    snprintf(nums[2], sizeof(nums[2]), "%lld", (long long)rec->department_id);
    snprintf(oid, sizeof(oid), "%lld", (long long)rec->object_id);

    const char *fields[] = {rec->prev_hash,    nums[0],    rec->at,      nums[1],
                            rec->account_name, rec->role,  nums[2],      rec->action,
                            rec->object_type,  oid,        rec->outcome, rec->request_id,
                            rec->client,       rec->detail};
    for (size_t i = 0; i < ELEMENTSOF(fields) && r == 0; i++)
        r = put_field(&buf, &len, &cap, fields[i]);
    if (r < 0)
        return r;
    return cm_hmac_sha256_hex(key, BR_AUDIT_KEY_LEN, buf, len, out);
}

/* Reads a head (seq, hash, at) from @sql's one row into @ret: {0, genesis} when there is
 * none. Returns: 1 with a row, 0 without, or a negative errno. */
static int head_row(CmDb *db, const char *sql, BrAuditAnchor *ret, CmError *err)
{
    _cleanup_stmt_ CmStmt *st = cm_db_prepare(db, sql, err);
    BrAuditAnchor h = {0};
    int r;

    if (!st)
        return -EIO;
    r = cm_stmt_step(st, err);
    if (r < 0)
        return r;
    snprintf(h.head_hash, sizeof(h.head_hash), "%s", genesis);
    if (r > 0) {
        h.records = cm_stmt_int(st, 0);
        snprintf(h.head_hash, sizeof(h.head_hash), "%s", cm_stmt_text(st, 1));
        snprintf(h.at, sizeof(h.at), "%s", cm_stmt_text(st, 2));
    }
    *ret = h;
    return r;
}

/* The head row: the last record's seq and hash as the appends left them. Without the row
 * ({0, genesis} for verification), @or_trail takes the trail's last record instead, so that
 * appends go on after it (the row is written back with the next one). */
static int head_read(CmDb *db, bool or_trail, BrAuditAnchor *ret, CmError *err)
{
    int r = head_row(db, "SELECT records, head_hash, at FROM audit_head WHERE id = 1", ret, err);

    if (r < 0)
        return r;
    if (r == 0 && or_trail)
        return br_audit_head(db, ret, err);
    return 0;
}

BrAuditRecord br_audit_record_of_row(CmStmt *st, const char *prev_hash)
{
    return (BrAuditRecord){prev_hash,
                           cm_stmt_int(st, 0),
                           cm_stmt_text(st, 1),
                           cm_stmt_int(st, 2),
                           cm_stmt_text(st, 3),
                           cm_stmt_text(st, 4),
                           cm_stmt_int(st, 5),
                           cm_stmt_text(st, 6),
                           cm_stmt_text(st, 7),
                           cm_stmt_int(st, 8),
                           cm_stmt_text(st, 9),
                           cm_stmt_text(st, 10),
                           cm_stmt_text(st, 11),
                           cm_stmt_text(st, 12)};
}

int br_audit_append(CmDb *db, const uint8_t key[BR_AUDIT_KEY_LEN], const BrActor *actor,
                    const BrAuditEntry *e, CmError *err)
{
    return br_audit_append_head(db, key, actor, e, NULL, err);
}

int br_audit_append_head(CmDb *db, const uint8_t key[BR_AUDIT_KEY_LEN], const BrActor *actor,
                         const BrAuditEntry *e, BrAuditAnchor *ret_head, CmError *err)
{
    _cleanup_stmt_ CmStmt *st = NULL;
    const char *role = br_actor_role_name(actor);
    char prev[65], hash[65], at[CM_TIME_ISO_LEN + 1];
    BrAuditAnchor head;
    int64_t seq;
    int r;

    /* The chain's head (audit_head, one row); the caller's write transaction holds the writer
     * lock, so it cannot move under us, and it rolls back with the transaction. */
    r = head_read(db, true, &head, err);
    if (r < 0)
        return r;
    seq = head.records + 1;
    snprintf(prev, sizeof(prev), "%s", head.head_hash);

    cm_time_iso(cm_now_ms(), at);
    r = br_audit_record_hash(key,
                             &(BrAuditRecord){prev, seq, at, actor->account_id, actor->name, role,
                                              actor->department_id, e->action, e->object_type,
                                              e->object_id, e->outcome, actor->request_id,
                                              actor->client, e->detail},
                             hash);
    if (r < 0)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "cannot hash audit record");

    st = cm_db_prepare(db,
                       "INSERT INTO audit(seq, at, account_id, account_name, role, department_id,"
                       " action, object_type, object_id, outcome, request_id, client, detail,"
                       " prev_hash, hash) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                       err);
    if (!st)
        return -EIO;
    CM_DB_BIND(st, seq, at, actor->account_id, actor->name, role, actor->department_id, e->action,
               e->object_type, e->object_id, e->outcome, actor->request_id, actor->client,
               e->detail, prev, hash);
    r = cm_stmt_exec(st, err);
    if (r < 0)
        return r;
    cm_stmt_reset(st);

    /* An upsert, so that a head row removed by hand does not stop every write; verification
     * then reports the trail's records above the head. */
    st = cm_db_prepare(db,
                       "INSERT INTO audit_head(id, records, head_hash, at) VALUES (1, ?1, ?2, ?3)"
                       " ON CONFLICT (id) DO UPDATE SET records = excluded.records,"
                       " head_hash = excluded.head_hash, at = excluded.at",
                       err);
    if (!st)
        return -EIO;
    CM_DB_BIND(st, seq, hash, at);
    r = cm_stmt_exec(st, err);
    if (r < 0)
        return r;
    if (ret_head) {
        ret_head->records = seq;
        snprintf(ret_head->head_hash, sizeof(ret_head->head_hash), "%s", hash);
        snprintf(ret_head->at, sizeof(ret_head->at), "%s", at);
    }
    return 0;
}

/* Checks the record in @st's current row against its predecessor's hash @prev and @expect. */
static bool record_bad(CmStmt *st, const uint8_t key[BR_AUDIT_KEY_LEN], const char *prev,
                       int64_t expect, BrAuditVerdict *v)
{
    int64_t seq = cm_stmt_int(st, 0);
    const char *stored_prev = cm_stmt_text(st, 13), *stored = cm_stmt_text(st, 14);
    char want[65];

    v->first_bad = seq;
    if (seq != expect) {
        v->first_bad = expect;
        snprintf(v->reason, sizeof(v->reason),
                 seq > expect ? "record %lld is missing (next present is %lld)"
                              : "record %lld is out of sequence",
                 (long long)expect, (long long)seq);
        return true;
    }
    if (!stored_prev || strcmp(stored_prev, prev) != 0) {
        snprintf(v->reason, sizeof(v->reason),
                 "record %lld does not link to the hash of record %lld", (long long)seq,
                 (long long)(seq - 1));
        return true;
    }
    BrAuditRecord rec = br_audit_record_of_row(st, prev);
    br_audit_record_hash(key, &rec, want);
    if (!stored || strcmp(stored, want) != 0) {
        snprintf(v->reason, sizeof(v->reason),
                 "record %lld was altered: its contents do not match its keyed hash",
                 (long long)seq);
        return true;
    }
    v->first_bad = 0;
    return false;
}

int br_audit_verify(CmDb *db, const uint8_t key[BR_AUDIT_KEY_LEN], const BrAuditAnchor *anchor,
                    BrAuditVerdict *ret, CmError *err)
{
    _cleanup_stmt_ CmStmt *st =
        cm_db_prepare(db,
                      "SELECT seq, at, account_id, account_name, role, department_id, action,"
                      " object_type, object_id, outcome, request_id, client, detail,"
                      " prev_hash, hash FROM audit ORDER BY seq",
                      err);
    BrAuditVerdict v = {.ok = true};
    char prev[65], anchored[65] = "";
    int64_t expect = 1;
    int r;

    if (!st)
        return -EIO;
    snprintf(prev, sizeof(prev), "%s", genesis);
    snprintf(v.head_hash, sizeof(v.head_hash), "%s", genesis);
    while ((r = cm_stmt_step(st, err)) > 0) {
        if (record_bad(st, key, prev, expect, &v)) {
            v.ok = false;
            break;
        }
        snprintf(prev, sizeof(prev), "%s", cm_stmt_text(st, 14));
        snprintf(v.head_hash, sizeof(v.head_hash), "%s", prev);
        if (anchor && expect == anchor->records)
            snprintf(anchored, sizeof(anchored), "%s", prev);
        v.records++;
        expect++;
    }
    if (r < 0)
        return r;
    cm_stmt_reset(st);

    /* The tail: the head row moves with every append, in its transaction. */
    if (v.ok) {
        BrAuditAnchor head;
        int64_t last = expect - 1;

        r = head_read(db, false, &head, err);
        if (r < 0)
            return r;
        if (head.records > last) {
            v.ok = false;
            v.first_bad = last + 1;
            snprintf(v.reason, sizeof(v.reason),
                     "records %lld to %lld were removed from the end of the trail",
                     (long long)last + 1, (long long)head.records);
        } else if (head.records < last) {
            v.ok = false;
            v.first_bad = head.records + 1;
            snprintf(v.reason, sizeof(v.reason),
                     "the trail's recorded head (record %lld) is below its last record (%lld)",
                     (long long)head.records, (long long)last);
        } else if (strcmp(head.head_hash, v.head_hash) != 0) {
            v.ok = false;
            v.first_bad = last;
            snprintf(v.reason, sizeof(v.reason),
                     "record %lld is not the trail's recorded head: the trail was rewritten",
                     (long long)last);
        }
    }
    /* The anchor outside the database: what was removed with the head row lowered to match,
     * down to every record, still shows. */
    if (v.ok && anchor && anchor->records > v.records) {
        v.ok = false;
        v.first_bad = v.records + 1;
        snprintf(v.reason, sizeof(v.reason),
                 "the trail ends at record %lld, but record %lld was anchored at %s: "
                 "records %lld to %lld were removed",
                 (long long)v.records, (long long)anchor->records, anchor->at,
                 (long long)v.records + 1, (long long)anchor->records);
    } else if (v.ok && anchor && anchor->records > 0 && strcmp(anchored, anchor->head_hash) != 0) {
        v.ok = false;
        v.first_bad = anchor->records;
        snprintf(v.reason, sizeof(v.reason),
                 "record %lld is not the record anchored at %s: the trail was rewritten",
                 (long long)anchor->records, anchor->at);
    }
    *ret = v;
    return 0;
}

int br_audit_head(CmDb *db, BrAuditAnchor *ret, CmError *err)
{
    int r = head_row(db, "SELECT seq, hash, at FROM audit ORDER BY seq DESC LIMIT 1", ret, err);
    return r < 0 ? r : 0;
}

int br_audit_holds(CmDb *db, const BrAuditAnchor *a, CmError *err)
{
    _cleanup_stmt_ CmStmt *st = NULL;
    int r;

    if (a->records == 0)
        return 1;
    st = cm_db_prepare(db, "SELECT hash FROM audit WHERE seq = ?", err);
    if (!st)
        return -EIO;
    CM_DB_BIND(st, a->records);
    r = cm_stmt_step(st, err);
    if (r <= 0)
        return r;
    return strcmp(cm_stmt_text(st, 0), a->head_hash) == 0;
}

/* The anchor's own MAC: over its three fields, with a prefix no record hash starts with. */
static int anchor_mac(const uint8_t key[BR_AUDIT_KEY_LEN], const BrAuditAnchor *a, char out[65])
{
    char buf[256];
    int n = snprintf(buf, sizeof(buf), "cloudbroker audit anchor;%lld;%s;%s", (long long)a->records,
                     a->head_hash, a->at);
    if (n < 0 || (size_t)n >= sizeof(buf))
        return -EINVAL;
    return cm_hmac_sha256_hex(key, BR_AUDIT_KEY_LEN, buf, (size_t)n, out);
}

int br_audit_anchor_write(const char *path, const uint8_t key[BR_AUDIT_KEY_LEN],
                          const BrAuditAnchor *a, CmError *err)
{
    char mac[65], text[512];
    int n, r;

    if (anchor_mac(key, a, mac) < 0)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "cannot compute the audit anchor");
    n = snprintf(text, sizeof(text),
                 "{\"records\":%lld,\"head_hash\":\"%s\",\"at\":\"%s\",\"mac\":\"%s\"}\n",
                 (long long)a->records, a->head_hash, a->at, mac);
    r = cm_write_file_atomic(path, text, (size_t)n, 0600);
    if (r < 0)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "cannot write %s: %s", path, strerror(-r));
    return 0;
}

int br_audit_anchor_read(const char *path, const uint8_t key[BR_AUDIT_KEY_LEN], BrAuditAnchor *ret,
                         CmError *err)
{
    _cleanup_json_ json_object *doc = NULL;
    BrAuditAnchor a = {0};
    const char *hash, *at, *mac;
    char want[65];
    CmError e = {0};

    if (access(path, F_OK) < 0 && errno == ENOENT)
        return -ENOENT;
    if (cm_json_load_file(path, 4096, &doc, &e) < 0) {
        cm_error_set_code(err, CM_ERROR_INTERNAL, "anchor_damaged", "",
                          "the audit anchor %s cannot be read: %s", path, e.message);
        return -EBADMSG;
    }
    hash = cm_json_get_str(doc, "head_hash", NULL);
    at = cm_json_get_str(doc, "at", NULL);
    mac = cm_json_get_str(doc, "mac", NULL);
    a.records = cm_json_get_int(doc, "records", -1);
    if (!hash || !at || !mac || a.records < 0 || strlen(hash) != 64 || strlen(at) >= sizeof(a.at)) {
        cm_error_set_code(err, CM_ERROR_INTERNAL, "anchor_damaged", "",
                          "the audit anchor %s is damaged", path);
        return -EBADMSG;
    }
    snprintf(a.head_hash, sizeof(a.head_hash), "%s", hash);
    snprintf(a.at, sizeof(a.at), "%s", at);
    if (anchor_mac(key, &a, want) < 0 || strcmp(want, mac) != 0) {
        cm_error_set_code(err, CM_ERROR_INTERNAL, "anchor_damaged", "",
                          "the audit anchor %s was not written with this trail's key "
                          "(edited, or replaced)",
                          path);
        return -EBADMSG;
    }
    *ret = a;
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
        " WHERE seq > ?1 AND (object_type = ?2 OR ?2 IS NULL) AND (?3 = 0 OR object_id = ?3)"
        " AND (action = ?4 OR ?4 IS NULL) AND (account_name = ?5 OR ?5 IS NULL)"
        " AND (at >= ?6 OR ?6 IS NULL) AND (at < ?7 OR ?7 IS NULL)"
        " ORDER BY seq LIMIT ?8",
        err);
    if (!st)
        return -EIO;
    CM_DB_BIND(st, f->after, f->object_type, f->object_id, f->action, f->account, f->from, f->to,
               f->limit);
    return cm_stmt_rows_json(st, ret, err);
}
