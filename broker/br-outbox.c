/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "br-outbox.h"
#include "cm-time.h"

void br_mail_clear(BrMail *m)
{
    free(m->recipient);
    free(m->subject);
    free(m->body);
    *m = (BrMail){0};
}

int br_outbox_add(CmDb *db, int64_t notification_id, const char *recipient, const char *subject,
                  const char *body, CmError *err)
{
    char at[CM_TIME_ISO_LEN + 1];
    _cleanup_stmt_ CmStmt *st =
        cm_db_prepare(db,
                      "INSERT INTO mail_outbox(notification_id, recipient, subject, body,"
                      " created_at, next_attempt_at) VALUES (nullif(?1, 0), ?2, ?3, ?4, ?5, ?5)",
                      err);
    if (!st)
        return -EIO;
    cm_time_iso(cm_now_ms(), at);
    CM_DB_BIND(st, notification_id, recipient, subject, body, at);
    return cm_stmt_exec(st, err);
}

int br_outbox_next_due(CmDb *db, int64_t now_ms, BrMail *ret, int64_t *ret_next_ms, CmError *err)
{
    char now[CM_TIME_ISO_LEN + 1];
    _cleanup_stmt_ CmStmt *st =
        cm_db_prepare(db,
                      "SELECT id, attempts, recipient, subject, body, created_at,"
                      " next_attempt_at FROM mail_outbox WHERE sent_at IS NULL"
                      " ORDER BY next_attempt_at, id LIMIT 1",
                      err);
    int64_t next = 0;
    int r;

    if (!st)
        return -EIO;
    cm_time_iso(now_ms, now);
    r = cm_stmt_step(st, err);
    if (r < 0)
        return r;
    *ret_next_ms = -1;
    if (r == 0)
        return 0;
    if (cm_time_parse_iso(cm_stmt_text(st, 6), &next) < 0 || next <= now_ms) {
        *ret = (BrMail){
            .id = cm_stmt_int(st, 0),
            .attempts = cm_stmt_int(st, 1),
            .recipient = cm_stmt_strdup(st, 2),
            .subject = cm_stmt_strdup(st, 3),
            .body = cm_stmt_strdup(st, 4),
        };
        snprintf(ret->created_at, sizeof(ret->created_at), "%s", cm_stmt_text(st, 5));
        if (!ret->recipient || !ret->subject || !ret->body) {
            br_mail_clear(ret);
            return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
        }
        return 1;
    }
    *ret_next_ms = next;
    return 0;
}

int br_outbox_sent(BrTx *tx, int64_t id)
{
    char at[CM_TIME_ISO_LEN + 1];
    _cleanup_stmt_ CmStmt *st = cm_db_prepare(
        tx->db,
        "UPDATE mail_outbox SET sent_at = ?1, attempts = attempts + 1, last_error = NULL"
        " WHERE id = ?2",
        tx->err);
    if (!st)
        return -EIO;
    cm_time_iso(cm_now_ms(), at);
    CM_DB_BIND(st, at, id);
    return cm_stmt_exec(st, tx->err);
}

int br_outbox_failed(BrTx *tx, int64_t id, const char *error, int64_t retry_at_ms)
{
    char at[CM_TIME_ISO_LEN + 1];
    _cleanup_stmt_ CmStmt *st = cm_db_prepare(
        tx->db,
        "UPDATE mail_outbox SET attempts = attempts + 1, last_error = ?1, next_attempt_at = ?2"
        " WHERE id = ?3",
        tx->err);
    if (!st)
        return -EIO;
    cm_time_iso(retry_at_ms, at);
    CM_DB_BIND(st, error, at, id);
    return cm_stmt_exec(st, tx->err);
}
