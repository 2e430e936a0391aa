/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <json-c/json.h>

#include "br-event.h"
#include "br-instance.h"
#include "br-virt.h"

/* What the reconciler found amiss on a host: an event to keep open. */
typedef struct {
    BrEventKind kind;
    int64_t instance_id, allocation_id; /* 0: none */
    char uuid[37], name[128], message[256];
    json_object *detail; /* owned */
} BrFinding;

void br_findings_free(BrFinding *f, size_t n);

/*
 * The instances as read before the hosts were listed (@before) and after (@after), both by id:
 * what a job of the broker made, changed or removed in between is not judged.
 */
typedef struct {
    const BrInstanceClaim *before, *after;
    size_t n_before, n_after;
} BrClaims;

/**
 * br_reconcile_judge:
 * Compares host @host_id's domains @doms, listed between the two reads of @claims, with its
 * instances. An instance is judged only when both reads show it on this host in the same
 * state with no job under way and no job begun or ended in between; a domain is unowned only
 * when neither read knows its UUID (an instance being made or removed by a job is known).
 * Returns: 0 and the findings in @ret (free with br_findings_free()), or -ENOMEM.
 */
int br_reconcile_judge(int64_t host_id, const BrClaims *claims, const BrVirtDomain *doms,
                       size_t n_doms, BrFinding **ret, size_t *ret_n);
