/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdint.h>

#include "cm-enum.h"

/* Who an account is; see DESIGN.md "Who uses it". */
typedef enum {
    BR_ROLE_ADMIN,
    BR_ROLE_REVIEWER,
    BR_ROLE_CONSULTANT,
    BR_ROLE_VENDOR,
    BR_ROLE_AUDITOR,
    BR_ROLE_DEPARTMENT,
    BR_ROLE_AGENT, /* a host's metering agent: not an account, one per host */
    BR_ROLE_MAX,
} BrRole;

CM_ENUM_DECL(br_role, BrRole)

#define BR_ROLE_BIT(r) (1u << (r))
#define BR_ROLES_ALL ((1u << BR_ROLE_MAX) - 1)
/* Every role an account can have (agents are hosts, not accounts). */
#define BR_ROLES_ACCOUNTS (BR_ROLES_ALL & ~BR_ROLE_BIT(BR_ROLE_AGENT))
#define BR_ROLES_ADMIN BR_ROLE_BIT(BR_ROLE_ADMIN)
#define BR_ROLES_REVIEWER BR_ROLE_BIT(BR_ROLE_REVIEWER)
#define BR_ROLES_CONSULTANT BR_ROLE_BIT(BR_ROLE_CONSULTANT)
#define BR_ROLES_VENDOR BR_ROLE_BIT(BR_ROLE_VENDOR)
#define BR_ROLES_AUDITOR BR_ROLE_BIT(BR_ROLE_AUDITOR)
#define BR_ROLES_DEPARTMENT BR_ROLE_BIT(BR_ROLE_DEPARTMENT)
#define BR_ROLES_AGENT BR_ROLE_BIT(BR_ROLE_AGENT)

/*
 * The one who acts: an authenticated account, or the broker itself (account_id 0, for jobs).
 * Carries what every audit record needs.
 */
typedef struct {
    int64_t account_id;
    char name[128];
    BrRole role;
    int64_t department_id; /* 0 unless role is department */
    int64_t host_id;       /* 0 unless role is agent */
    char request_id[48];   /* the HTTP request's id (X-Request-Id) */
    char client[64];       /* the client's address */
} BrActor;

/** br_actor_system: Returns: the actor the broker's own jobs act as. */
const BrActor *br_actor_system(void);

/** br_actor_role_name: Returns: the role as stored in audit records ("system" for the broker). */
const char *br_actor_role_name(const BrActor *a);
