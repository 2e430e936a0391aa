/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>

#include "br-department.h"
#include "br-allocation.h"
#include "br-quota.h"

json_object *br_resources_to_json(const BrResources *r)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "vcpus", json_object_new_int64(r->vcpus));
    json_object_object_add(o, "memory_mib", json_object_new_int64(r->memory_mib));
    json_object_object_add(o, "disk_gib", json_object_new_int64(r->disk_gib));
    json_object_object_add(o, "instances", json_object_new_int64(r->instances));
    return o;
}

void br_resources_add(BrResources *a, const BrResources *b)
{
    a->vcpus += b->vcpus;
    a->memory_mib += b->memory_mib;
    a->disk_gib += b->disk_gib;
    a->instances += b->instances;
}

int br_quota_usage(CmDb *db, int64_t department_id, int64_t exclude_request, BrQuotaUsage *ret,
                   CmError *err)
{
    BrQuotaUsage u = {0};
    int r = br_department_quota(db, department_id, &u.quota, err);

    if (r < 0)
        return r;
    r = br_allocation_usage(db, department_id, &u.allocated, err);
    if (r < 0)
        return r;
    r = br_request_approved_usage(db, department_id, exclude_request, &u.approved, err);
    if (r < 0)
        return r;
    *ret = u;
    return 0;
}
