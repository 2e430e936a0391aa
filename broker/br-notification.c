/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "br-account.h"
#include "br-notification.h"
#include "br-outbox.h"
#include "br-request.h"
#include "cm-json.h"
#include "cm-log.h"
#include "cm-time.h"
#include "cm-util.h"

CM_ENUM_IMPL(br_notify_kind, BrNotifyKind, BR_NOTIFY_KIND_MAX, "request_submitted",
             "consultant_assigned", "opinion_recorded", "request_returned", "request_approved",
             "request_rejected", "trial_results_recorded", "trial_passed", "trial_failed",
             "job_failed", "finding_raised", "purge_soon", "host_disconnected")

/* What each kind says, in Chinese and in English (the console has its own strings). */
static const struct {
    const char *zh, *en;
} phrases[BR_NOTIFY_KIND_MAX] = {
    [BR_NOTIFY_REQUEST_SUBMITTED] = {"新的申请待审核", "A request is waiting for review"},
    [BR_NOTIFY_CONSULTANT_ASSIGNED] = {"一项申请指派给您审核",
                                       "A request was assigned to you for review"},
    [BR_NOTIFY_OPINION_RECORDED] = {"申请收到审核意见", "A review opinion was recorded"},
    [BR_NOTIFY_REQUEST_RETURNED] = {"申请被退回修改", "A request was returned for changes"},
    [BR_NOTIFY_REQUEST_APPROVED] = {"申请已批准", "A request was approved"},
    [BR_NOTIFY_REQUEST_REJECTED] = {"申请未获批准", "A request was rejected"},
    [BR_NOTIFY_TRIAL_RESULTS_RECORDED] = {"试运行测试结果已登记",
                                          "Trial test results were recorded"},
    [BR_NOTIFY_TRIAL_PASSED] = {"试运行通过", "The trial passed"},
    [BR_NOTIFY_TRIAL_FAILED] = {"试运行未通过", "The trial failed"},
    [BR_NOTIFY_JOB_FAILED] = {"作业失败", "A job failed"},
    [BR_NOTIFY_FINDING_RAISED] = {"发现资源使用问题", "A resource-use finding was raised"},
    [BR_NOTIFY_PURGE_SOON] = {"保留的资源即将清除", "Retained resources will be purged soon"},
    [BR_NOTIFY_HOST_DISCONNECTED] = {"宿主机连接中断", "A host was disconnected"},
};

/* Audit actions that tell someone; @outcome NULL matches any. */
static const struct {
    const char *action, *outcome;
    BrNotifyKind kind;
    unsigned to;
} audit_map[] = {
    {"request.submit", NULL, BR_NOTIFY_REQUEST_SUBMITTED, BR_TO_REVIEWERS},
    {"request.resubmit", NULL, BR_NOTIFY_REQUEST_SUBMITTED, BR_TO_REVIEWERS},
    {"request.assign", NULL, BR_NOTIFY_CONSULTANT_ASSIGNED, BR_TO_CONSULTANT},
    {"request.opinion", NULL, BR_NOTIFY_OPINION_RECORDED, BR_TO_DEPARTMENT | BR_TO_REVIEWERS},
    {"request.decision", "returned", BR_NOTIFY_REQUEST_RETURNED, BR_TO_DEPARTMENT},
    {"request.decision", "approved", BR_NOTIFY_REQUEST_APPROVED, BR_TO_DEPARTMENT},
    {"request.decision", "rejected", BR_NOTIFY_REQUEST_REJECTED, BR_TO_DEPARTMENT},
    {"request.trial_result", NULL, BR_NOTIFY_TRIAL_RESULTS_RECORDED,
     BR_TO_REVIEWERS | BR_TO_DEPARTMENT},
    {"request.trial_end", "trial_passed", BR_NOTIFY_TRIAL_PASSED,
     BR_TO_DEPARTMENT | BR_TO_REVIEWERS},
    {"request.trial_end", "trial_failed", BR_NOTIFY_TRIAL_FAILED,
     BR_TO_DEPARTMENT | BR_TO_REVIEWERS},
    {"request.trial_timeout", "trial_failed", BR_NOTIFY_TRIAL_FAILED,
     BR_TO_DEPARTMENT | BR_TO_REVIEWERS},
    {"job.error", NULL, BR_NOTIFY_JOB_FAILED, BR_TO_VENDORS},
};

int br_notify_for_audit(const char *action, const char *outcome, unsigned *ret_to)
{
    for (size_t i = 0; i < ELEMENTSOF(audit_map); i++) {
        if (strcmp(audit_map[i].action, action) != 0)
            continue;
        if (audit_map[i].outcome && (!outcome || strcmp(audit_map[i].outcome, outcome) != 0))
            continue;
        *ret_to = audit_map[i].to;
        return (int)audit_map[i].kind;
    }
    return -1;
}

/* Text for a mail header: control characters (CR, LF above all) become spaces. */
static void one_line(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            *s = ' ';
}

int br_notification_mail_text(BrNotifyKind kind, const char *object_type, int64_t object_id,
                              const char *object_name, const char *actor_name, json_object *detail,
                              const char *public_url, char **ret_subject, char **ret_body)
{
    const char *comment = cm_json_get_str(detail, "comment", NULL);
    const char *error = cm_json_get_str(detail, "error", NULL);
    _cleanup_free_ char *name = NULL, *link = NULL, *subject = NULL, *body = NULL;

    if ((unsigned)kind >= BR_NOTIFY_KIND_MAX)
        return -EINVAL;
    if (object_name && *object_name)
        name = strdup(object_name);
    else
        name = cm_strdup_printf("%s %lld", object_type, (long long)object_id);
    if (!name)
        return -ENOMEM;
    one_line(name);
    if (public_url) {
        size_t n = strlen(public_url);
        link =
            cm_strdup_printf("%s%s#/%ss/%lld", public_url, n && public_url[n - 1] == '/' ? "" : "/",
                             object_type, (long long)object_id);
        if (!link)
            return -ENOMEM;
    }
    subject =
        cm_strdup_printf("[cloudbroker] %s / %s: %s", phrases[kind].zh, phrases[kind].en, name);
    body = cm_strdup_printf("%s：%s（%s）\n%s: %s (by %s)\n%s%s%s%s%s%s%s\n"
                            "本邮件由云资源管理平台自动发送，请登录控制台处理。\n"
                            "This mail was sent by cloudbroker; sign in to the console to act.\n",
                            phrases[kind].zh, name, actor_name, phrases[kind].en, name, actor_name,
                            comment ? "\n意见 / Comment: " : "", comment ? comment : "",
                            error ? "\n错误 / Error: " : "", error ? error : "", link ? "\n" : "",
                            link ? link : "", link ? "\n" : "");
    if (!subject || !body)
        return -ENOMEM;
    one_line(subject);
    *ret_subject = TAKE_PTR(subject);
    *ret_body = TAKE_PTR(body);
    return 0;
}

int br_notification_raise(CmDb *db, const BrNotifyConfig *cfg, const BrActor *actor,
                          const BrNotice *n, CmError *err)
{
    char at[CM_TIME_ISO_LEN + 1];
    BrRecipient *to = NULL;
    size_t n_to = 0;
    _cleanup_free_ char *subject = NULL, *body = NULL;
    const char *detail = n->detail ? cm_json_to_string(n->detail, NULL) : NULL;
    int told = 0, r;

    r = br_account_recipients(db, n->to, n->department_id, n->consultant_id, actor->account_id, &to,
                              &n_to, err);
    if (r < 0)
        return r;
    cm_time_iso(cm_now_ms(), at);
    for (size_t i = 0; i < n_to && r >= 0; i++) {
        _cleanup_stmt_ CmStmt *st =
            cm_db_prepare(db,
                          "INSERT INTO notifications(account_id, kind, at, object_type, object_id,"
                          " object_name, actor_account_id, actor_name, detail, dedup)"
                          " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
                          " ON CONFLICT DO NOTHING RETURNING id",
                          err);
        if (!st) {
            r = -EIO;
            break;
        }
        CM_DB_BIND(st, to[i].id, br_notify_kind_to_string(n->kind), at, n->object_type,
                   n->object_id, n->object_name, actor->account_id, actor->name, detail, n->dedup);
        r = cm_stmt_step(st, err);
        if (r <= 0)
            continue; /* an error, or already told (dedup) */
        int64_t id = cm_stmt_int(st, 0);
        told++;
        if (!cfg || !cfg->mail || !to[i].email)
            continue;
        if (!subject && br_notification_mail_text(n->kind, n->object_type, n->object_id,
                                                  n->object_name, actor->name, n->detail,
                                                  cfg->public_url, &subject, &body) < 0) {
            r = cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
            break;
        }
        cm_stmt_reset(st);
        r = br_outbox_add(db, id, to[i].email, subject, body, err);
    }
    br_recipients_free(to, n_to);
    return r < 0 ? r : told;
}

int br_notification_audit_hook(void *ctx, CmDb *db, const BrActor *actor, const BrAuditEntry *e,
                               CmError *err)
{
    _cleanup_json_ json_object *detail = NULL, *given = NULL;
    BrNotice n = {.object_type = e->object_type, .object_id = e->object_id};
    BrRequestNames names;
    int kind, r;

    kind = br_notify_for_audit(e->action, e->outcome, &n.to);
    if (kind < 0)
        return 0;
    n.kind = (BrNotifyKind)kind;
    detail = json_object_new_object();
    if (e->detail)
        given = json_tokener_parse(e->detail);
    /* What the console shows beside the kind: the comment or reason, an opinion's
     * recommendation, a trial test and its result, a job's error. */
    static const char *const keep[] = {"comment", "recommendation", "test", "result", "error"};
    for (size_t i = 0; i < ELEMENTSOF(keep); i++) {
        const char *v = cm_json_get_str(given, keep[i], NULL);
        if (v)
            json_object_object_add(detail, keep[i], json_object_new_string(v));
    }
    if (strcmp(e->object_type, "request") == 0) {
        r = br_request_names(db, e->object_id, &names, err);
        if (r < 0)
            return r;
        if (r > 0) {
            n.department_id = names.department_id;
            n.consultant_id = names.consultant_id;
            n.object_name = names.system_name;
            json_object_object_add(detail, "request_kind", json_object_new_string(names.kind));
            json_object_object_add(detail, "system_name",
                                   json_object_new_string(names.system_name));
            json_object_object_add(detail, "department_name",
                                   json_object_new_string(names.department_name));
        }
        if (e->outcome && strcmp(e->outcome, "ok") != 0)
            json_object_object_add(detail, "state", json_object_new_string(e->outcome));
    }
    n.detail = detail;
    r = br_notification_raise(db, ctx, actor, &n, err);
    return r < 0 ? r : 0;
}

int br_notification_list(CmDb *db, int64_t account, bool unread_only, const BrPage *page,
                         json_object **ret, CmError *err)
{
    _cleanup_stmt_ CmStmt *st = cm_db_prepare(
        db,
        "SELECT id, kind, at, read_at IS NOT NULL AS \"read:bool\", object_type, object_id,"
        " object_name, actor_name, coalesce(detail, '{}') AS \"detail:json\""
        " FROM notifications WHERE account_id = ?1 AND (?2 = 0 OR id < ?2)"
        " AND (?3 = 0 OR read_at IS NULL) ORDER BY id DESC LIMIT ?4",
        err);
    if (!st)
        return -EIO;
    CM_DB_BIND(st, account, page->after, unread_only, page->limit);
    return cm_stmt_rows_json(st, ret, err);
}

int br_notification_mark_read(BrTx *tx, int64_t account, int64_t id)
{
    char at[CM_TIME_ISO_LEN + 1];
    _cleanup_stmt_ CmStmt *st = NULL;
    int r;

    cm_time_iso(cm_now_ms(), at);
    if (id) {
        st = cm_db_prepare(tx->db, "SELECT 1 FROM notifications WHERE id = ? AND account_id = ?",
                           tx->err);
        if (!st)
            return -EIO;
        CM_DB_BIND(st, id, account);
        r = cm_stmt_step(st, tx->err);
        if (r < 0)
            return r;
        if (r == 0)
            return cm_error_set(tx->err, CM_ERROR_NOT_FOUND, "", "no notification with id %lld",
                                (long long)id);
        cm_stmt_reset(st);
    }
    st = cm_db_prepare(tx->db,
                       "UPDATE notifications SET read_at = ?1 WHERE account_id = ?2"
                       " AND (?3 = 0 OR id = ?3) AND read_at IS NULL",
                       tx->err);
    if (!st)
        return -EIO;
    CM_DB_BIND(st, at, account, id);
    return cm_stmt_exec(st, tx->err);
}

int br_notification_unread(CmDb *db, int64_t account, int64_t *ret, CmError *err)
{
    _cleanup_stmt_ CmStmt *st = cm_db_prepare(
        db, "SELECT count(*) FROM notifications WHERE account_id = ? AND read_at IS NULL", err);
    int r;

    if (!st)
        return -EIO;
    CM_DB_BIND(st, account);
    r = cm_stmt_step(st, err);
    if (r < 0)
        return r;
    *ret = cm_stmt_int(st, 0);
    return 0;
}

int br_notification_seen(CmDb *db, const char *dedup, CmError *err)
{
    _cleanup_stmt_ CmStmt *st =
        cm_db_prepare(db, "SELECT 1 FROM notifications WHERE dedup = ? LIMIT 1", err);
    if (!st)
        return -EIO;
    CM_DB_BIND(st, dedup);
    return cm_stmt_step(st, err);
}
