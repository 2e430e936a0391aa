/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>

#include "br-event.h"
#include "cm-log.h"

CM_ENUM_IMPL(br_event_kind, BrEventKind, BR_EVENT_KIND_MAX, "instance_missing", "instance_state",
             "unowned_domain")

static int event_seen(BrTx *tx, int64_t host_id, BrEventSeen *e, const char *now)
{
    const char *kind = br_event_kind_to_string(e->kind);
    _cleanup_stmt_ CmStmt *st =
        cm_db_prepare(tx->db,
                      "UPDATE events SET last_seen = ?1, message = ?2, detail = ?3 WHERE kind = ?4"
                      " AND host_id = ?5 AND domain_uuid = ?6 AND resolved_at IS NULL",
                      tx->err);
    int r;

    if (!st)
        return -EIO;
    CM_DB_BIND(st, now, e->message, e->detail, kind, host_id, e->domain_uuid);
    r = cm_stmt_exec(st, tx->err);
    if (r < 0 || cm_stmt_changes(st) > 0)
        return r;
    st =
        cm_db_prepare(tx->db,
                      "INSERT INTO events(kind, severity, host_id, instance_id, allocation_id,"
                      " domain_uuid, domain_name, message, first_seen, last_seen, detail)"
                      " VALUES (?1, ?2, ?3, nullif(?4, 0), nullif(?5, 0), ?6, ?7, ?8, ?9, ?9, ?10)",
                      tx->err);
    if (!st)
        return -EIO;
    CM_DB_BIND(st, kind, e->kind == BR_EVENT_UNOWNED_DOMAIN ? "security" : "warning", host_id,
               e->instance_id, e->allocation_id, e->domain_uuid, e->domain_name, e->message, now,
               e->detail);
    r = cm_stmt_exec(st, tx->err);
    if (r < 0)
        return r;
    e->opened = true;
    cm_log_warning("reconciler: host %lld: %s: %s", (long long)host_id, kind, e->message);
    return 0;
}

int br_event_record(BrTx *tx, int64_t host_id, BrEventSeen *seen, size_t n, const char *now)
{
    _cleanup_stmt_ CmStmt *st = NULL;
    int r, opened = 0;

    for (size_t i = 0; i < n; i++) {
        r = event_seen(tx, host_id, &seen[i], now);
        if (r < 0)
            return r;
        opened += seen[i].opened;
    }
    /* Every condition still there was seen at @now just above: the others are gone. */
    st = cm_db_prepare(tx->db,
                       "UPDATE events SET resolved_at = ?1 WHERE host_id = ?2"
                       " AND resolved_at IS NULL AND last_seen <> ?1",
                       tx->err);
    if (!st)
        return -EIO;
    CM_DB_BIND(st, now, host_id);
    r = cm_stmt_exec(st, tx->err);
    return r < 0 ? r : opened;
}

int br_event_list(CmDb *db, const BrEventFilter *f, const BrPage *page, json_object **ret,
                  CmError *err)
{
    _cleanup_stmt_ CmStmt *st = cm_db_prepare(
        db,
        "SELECT e.id, e.kind, e.severity, e.host_id,"
        " (SELECT h.name FROM hosts h WHERE h.id = e.host_id) AS host_name, e.instance_id,"
        " (SELECT i.name FROM instances i WHERE i.id = e.instance_id) AS instance_name,"
        " e.allocation_id, e.domain_uuid, e.domain_name, e.message, e.first_seen, e.last_seen,"
        " e.resolved_at, e.detail AS \"detail:json\" FROM events e"
        " WHERE e.id > ?1 AND (e.kind = ?2 OR ?2 IS NULL) AND (?3 = 0 OR e.host_id = ?3)"
        " AND (?4 < 0 OR ?4 = iif(e.resolved_at IS NULL, 1, 0)) ORDER BY e.id LIMIT ?5",
        err);
    if (!st)
        return -EIO;
    CM_DB_BIND(st, page->after, f->kind, f->host, f->open, page->limit);
    return cm_stmt_rows_json(st, ret, err);
}
