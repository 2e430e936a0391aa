/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdint.h>

#include "br-tx.h"
#include "cm-time.h"

/*
 * The e-mail outbox: mail queued in the same transaction as the notification it tells of, and
 * sent later by the mailer (br-mailer.c), so that a relay that is down never blocks a request
 * and a restart loses nothing. The only file with SQL on `mail_outbox`.
 */
typedef struct {
    int64_t id;
    int64_t attempts;
    char *recipient;
    char *subject;
    char *body;
    char created_at[CM_TIME_ISO_LEN + 1];
} BrMail;

/** br_mail_clear: frees what @m holds. */
void br_mail_clear(BrMail *m);

/**
 * br_outbox_add:
 * Queues a mail to @recipient, due now, in the caller's write transaction on @db.
 * Returns: 0, or a negative errno with @err set.
 */
int br_outbox_add(CmDb *db, int64_t notification_id, const char *recipient, const char *subject,
                  const char *body, CmError *err);

/**
 * br_outbox_next_due:
 * The oldest unsent mail due at @now_ms.
 * Returns: 1 with it in @ret, 0 when none is due (then @ret_next_ms holds when the next one is,
 * or -1 when none waits), or a negative errno with @err set.
 */
int br_outbox_next_due(CmDb *db, int64_t now_ms, BrMail *ret, int64_t *ret_next_ms, CmError *err);

/**
 * br_outbox_sent:
 * Marks mail @id sent. Returns: 0, or a negative errno with tx->err set.
 */
int br_outbox_sent(BrTx *tx, int64_t id);

/**
 * br_outbox_failed:
 * Counts a failed attempt of mail @id with @error and makes it due again at @retry_at_ms.
 * Returns: 0, or a negative errno with tx->err set.
 */
int br_outbox_failed(BrTx *tx, int64_t id, const char *error, int64_t retry_at_ms);
