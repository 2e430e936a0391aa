/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>

#include "br-tx.h"
#include "cm-enum.h"

/*
 * The events table: what the reconciler found amiss on a host, one row per condition from
 * the pass that first saw it to the pass that no longer did (GET /v1/events). The only file
 * with SQL on `events` (the operations report reads them in its own read model).
 */
typedef enum {
    BR_EVENT_INSTANCE_MISSING,
    BR_EVENT_INSTANCE_STATE,
    BR_EVENT_UNOWNED_DOMAIN,
    BR_EVENT_KIND_MAX,
} BrEventKind;

CM_ENUM_DECL(br_event_kind, BrEventKind)

/* One condition a pass saw on a host. */
typedef struct {
    BrEventKind kind;
    int64_t instance_id, allocation_id; /* 0: none (an unowned domain) */
    const char *domain_uuid, *domain_name;
    const char *message; /* English, for people */
    const char *detail;  /* compact JSON: the structured facts (docs/api.md, GET /v1/events) */
    bool opened;         /* set by br_event_record() when this pass opened the event */
} BrEventSeen;

/**
 * br_event_record:
 * Records one pass over host @host_id at @now: each condition in @seen keeps its open event
 * (last_seen, message and detail brought up to date) or opens one (seen->opened set); every
 * other open event of the host is resolved.
 * Returns: the number of events opened, or a negative errno with tx->err set.
 */
int br_event_record(BrTx *tx, int64_t host_id, BrEventSeen *seen, size_t n, const char *now);

typedef struct {
    const char *kind; /* NULL: any */
    int64_t host;     /* 0: any */
    int open;         /* 1 only unresolved, 0 only resolved, -1 both */
} BrEventFilter;

/**
 * br_event_list:
 * One page of the events matching @f, as their API documents.
 * Returns: 0 and the array in @ret, or a negative errno with @err set.
 */
int br_event_list(CmDb *db, const BrEventFilter *f, const BrPage *page, json_object **ret,
                  CmError *err);
