/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <string.h>

#include "br-observation.h"
#include "cm-util.h"

static int observe(CmDb *db, int64_t host_id, const BrObservationSeen *s, int64_t now,
                   int64_t max_gap, CmError *err)
{
    _cleanup_stmt_ CmStmt *st = NULL;
    int64_t open = 0, last_seen = 0;
    char state[16] = "";
    int r;

    if (!s->state) {
        st = cm_db_prepare(db,
                           "UPDATE observations SET until = last_seen"
                           " WHERE instance_id = ?1 AND until IS NULL",
                           err);
        if (!st)
            return -EIO;
        CM_DB_BIND(st, s->instance_id);
        return cm_stmt_exec(st, err);
    }
    st = cm_db_prepare(db,
                       "SELECT id, state, last_seen FROM observations"
                       " WHERE instance_id = ?1 AND until IS NULL",
                       err);
    if (!st)
        return -EIO;
    CM_DB_BIND(st, s->instance_id);
    r = cm_stmt_step(st, err);
    if (r < 0)
        return r;
    if (r > 0) {
        open = cm_stmt_int(st, 0);
        cm_strscpy(state, sizeof(state), cm_stmt_text(st, 1));
        last_seen = cm_stmt_int(st, 2);
    }
    cm_stmt_reset(st);

    if (open && now - last_seen <= max_gap && strcmp(state, s->state) == 0) {
        st = cm_db_prepare(db, "UPDATE observations SET last_seen = ?1 WHERE id = ?2", err);
        if (!st)
            return -EIO;
        CM_DB_BIND(st, now, open);
        return cm_stmt_exec(st, err);
    }
    if (open) {
        /* Another state: the stretch ends now. No pass for too long: it ended at its last
         * pass, and the time between is not observed. */
        st = cm_db_prepare(db, "UPDATE observations SET until = max(last_seen, ?2) WHERE id = ?1",
                           err);
        if (!st)
            return -EIO;
        CM_DB_BIND(st, open, now - last_seen <= max_gap ? now : 0);
        r = cm_stmt_exec(st, err);
        if (r < 0)
            return r;
    }
    st = cm_db_prepare(db,
                       "INSERT INTO observations(instance_id, host_id, state, since, last_seen)"
                       " VALUES (?1, ?2, ?3, ?4, ?4)",
                       err);
    if (!st)
        return -EIO;
    CM_DB_BIND(st, s->instance_id, host_id, s->state, now);
    return cm_stmt_exec(st, err);
}

int br_observation_record(CmDb *db, int64_t host_id, const BrObservationSeen *seen, size_t n,
                          int64_t now, int64_t max_gap, CmError *err)
{
    for (size_t i = 0; i < n; i++) {
        int r = observe(db, host_id, &seen[i], now, max_gap, err);
        if (r < 0)
            return r;
    }
    return 0;
}
