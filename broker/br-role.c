/* SPDX-License-Identifier: Apache-2.0 */
#include "br-role.h"

CM_ENUM_IMPL(br_role, BrRole, BR_ROLE_MAX, "admin", "reviewer", "consultant", "vendor", "auditor",
             "department", "agent")

static const BrActor system_actor = {
    .account_id = 0,
    .name = "cloudbrokerd",
    .role = BR_ROLE_MAX,
    .request_id = "",
    .client = "local",
};

const BrActor *br_actor_system(void)
{
    return &system_actor;
}

const char *br_actor_role_name(const BrActor *a)
{
    const char *s = br_role_to_string(a->role);
    return s ? s : "system";
}
