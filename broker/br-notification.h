/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>

#include "br-audit.h"
#include "br-tx.h"
#include "cm-enum.h"

/*
 * Notifications (通知): what an account is told in the console, and by e-mail when it gave an
 * address. Each is made in the transaction of the change that causes it: most from the audit
 * record that change appends (br_notification_audit_hook), the rest (a finding raised, a
 * purge near, a host lost) by their owners calling br_notification_raise(). The only file with
 * SQL on `notifications`.
 */
typedef enum {
    BR_NOTIFY_REQUEST_SUBMITTED,
    BR_NOTIFY_CONSULTANT_ASSIGNED,
    BR_NOTIFY_OPINION_RECORDED,
    BR_NOTIFY_REQUEST_RETURNED,
    BR_NOTIFY_REQUEST_APPROVED,
    BR_NOTIFY_REQUEST_REJECTED,
    BR_NOTIFY_TRIAL_RESULTS_RECORDED,
    BR_NOTIFY_TRIAL_PASSED,
    BR_NOTIFY_TRIAL_FAILED,
    BR_NOTIFY_JOB_FAILED,
    BR_NOTIFY_FINDING_RAISED,
    BR_NOTIFY_PURGE_SOON,
    BR_NOTIFY_HOST_DISCONNECTED,
    BR_NOTIFY_KIND_MAX,
} BrNotifyKind;

CM_ENUM_DECL(br_notify_kind, BrNotifyKind)

/* Who is told. */
enum {
    BR_TO_REVIEWERS = 1u << 0,  /* every enabled reviewer */
    BR_TO_DEPARTMENT = 1u << 1, /* the accounts of the object's department */
    BR_TO_CONSULTANT = 1u << 2, /* the consultant assigned to the request */
    BR_TO_VENDORS = 1u << 3,    /* every enabled vendor account */
};

/* One notification to raise. */
typedef struct {
    BrNotifyKind kind;
    unsigned to;             /* BR_TO_* */
    const char *object_type; /* "request", "finding", "allocation", "host", "job" */
    int64_t object_id;
    const char *object_name; /* the name people know it by, or NULL */
    int64_t department_id;   /* for BR_TO_DEPARTMENT */
    int64_t consultant_id;   /* for BR_TO_CONSULTANT */
    json_object *detail;     /* or NULL; not taken */
    const char *dedup;       /* raised once per account for this key, or NULL */
} BrNotice;

/* How notifications are delivered beyond the console (set once at start). */
typedef struct {
    bool mail;              /* queue e-mail for accounts with an address */
    const char *public_url; /* for links in the mail, or NULL */
} BrNotifyConfig;

/**
 * br_notify_for_audit:
 * Which notification an audit record of @action that reached @outcome raises (pure).
 * Returns: the kind, and its recipients in @ret_to; or -1 when it raises none.
 */
int br_notify_for_audit(const char *action, const char *outcome, unsigned *ret_to);

/**
 * br_notification_raise:
 * Adds @n for every enabled account it is for (never the @actor itself), with the e-mail of
 * those that want it, in the caller's write transaction on @db.
 * Returns: the number of accounts told (>= 0), or a negative errno with @err set.
 */
int br_notification_raise(CmDb *db, const BrNotifyConfig *cfg, const BrActor *actor,
                          const BrNotice *n, CmError *err);

/**
 * br_notification_audit_hook:
 * The store's audit hook (@ctx a BrNotifyConfig): raises what an audit record calls for.
 * Returns: 0, or a negative errno with @err set (the transaction then fails).
 */
int br_notification_audit_hook(void *ctx, CmDb *db, const BrActor *actor, const BrAuditEntry *e,
                               CmError *err);

/**
 * br_notification_list:
 * A page of @account's notifications, newest first: ids below page->after (when not 0).
 * Returns: 0 and the array in @ret, or a negative errno with @err set.
 */
int br_notification_list(CmDb *db, int64_t account, bool unread_only, const BrPage *page,
                         json_object **ret, CmError *err);

/**
 * br_notification_mark_read:
 * Marks notification @id of @account read, or all of them when @id is 0.
 * Returns: 0, -ENOENT when @account has no notification @id, or another negative errno.
 */
int br_notification_mark_read(BrTx *tx, int64_t account, int64_t id);

/**
 * br_notification_unread:
 * Returns: 0 with how many of @account's notifications are unread in @ret, or a negative errno.
 */
int br_notification_unread(CmDb *db, int64_t account, int64_t *ret, CmError *err);

/**
 * br_notification_mail_text:
 * The e-mail of a notification, in Chinese and English: a one-line @ret_subject and a
 * @ret_body (pure; CR and LF never reach the subject).
 * Returns: 0, or -ENOMEM.
 */
int br_notification_mail_text(BrNotifyKind kind, const char *object_type, int64_t object_id,
                              const char *object_name, const char *actor_name, json_object *detail,
                              const char *public_url, char **ret_subject, char **ret_body);

/**
 * br_notification_seen:
 * Returns: 1 when a notification with @dedup was raised already, 0 when not, or a negative
 * errno with @err set.
 */
int br_notification_seen(CmDb *db, const char *dedup, CmError *err);
