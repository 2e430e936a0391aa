/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "cm-error.h"

typedef struct BrDaemon BrDaemon;
typedef struct BrMailer BrMailer;

/*
 * The mailer: one background loop (CmWorker) that sends the outbox's mail through the SMTP
 * relay of the config (libcurl), oldest first, and on failure tries again later with a growing
 * wait (smtp.retry_seconds, 30 s by default, doubling up to an hour). It never runs on a
 * request's thread.
 */

/**
 * br_mailer_start:
 * Starts the loop for @d->config.smtp (reads its password file now).
 * Returns: 0 and the mailer in @ret, or a negative errno with @err set.
 */
int br_mailer_start(BrDaemon *d, BrMailer **ret, CmError *err);

/** br_mailer_stop: stops the loop. Accepts NULL. Returns: NULL. */
BrMailer *br_mailer_stop(BrMailer *m);

/**
 * br_mailer_backoff_ms:
 * Returns: the wait after the @attempts-th failed attempt: @first_ms, doubling with each
 * further failure, never above an hour (pure).
 */
int64_t br_mailer_backoff_ms(int64_t first_ms, int64_t attempts);

/**
 * br_mailer_message:
 * The RFC 5322 message of a mail: headers (the subject RFC 2047-encoded), a base64 UTF-8 body.
 * Returns: the message (free()), or NULL on no memory.
 */
char *br_mailer_message(const char *from, const char *to, const char *subject, const char *body,
                        const char *message_id, int64_t date_ms);
