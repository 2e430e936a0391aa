/* SPDX-License-Identifier: Apache-2.0 */
/* One job step on one host, through the libvirt driver. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "br-daemon.h"
#include "br-domain-xml.h"
#include "br-hosts.h"
#include "br-instance.h"
#include "br-steps.h"
#include "br-workflow.h"
#include "cm-json.h"
#include "cm-log.h"

static int define_xml(BrDaemon *d, BrVirtConn *c, const BrInstanceRow *row, char **ret,
                      CmError *err)
{
    _cleanup_(br_policies_unrefp) BrPolicies *p = br_daemon_policies(d);
    const char *offered = br_virt_domain_type(c);
    const char *type = offered;
    BrDomainSpec spec;

    /* The policy may insist on software emulation where KVM is offered but unusable (nested
     * virtualisation), or on KVM. The test driver always takes its own type. */
    if (strcmp(offered, "test") != 0 && strcmp(p->lifecycle.domain_type, "auto") != 0)
        type = p->lifecycle.domain_type;
    br_instance_domain_spec(row, type, p->lifecycle.machine, p->catalog.network, NULL, &spec);
    return br_domain_xml_build(&spec, ret, err);
}

int br_steps_run(BrDaemon *d, const BrJobRow *job, const BrStepRow *step, BrStepOutcome *out,
                 CmError *err)
{
    _cleanup_(br_policies_unrefp) BrPolicies *p = NULL;
    BrInstanceRow row = {0};
    BrVirtConn *c = NULL;
    int r;

    if (step->action == BR_STEP_RESERVE) {
        r = br_workflow_reserve(d, job, step->seq, err);
        return r < 0 ? r : BR_STEP_RESULT_RECORDED;
    }
    if (step->action == BR_STEP_FINISH) {
        r = br_workflow_finish(d, job, step->seq, err);
        return r < 0 ? r : BR_STEP_RESULT_RECORDED;
    }

    CmDb *db = br_store_db(d->store, err);
    if (!db)
        return -EIO;
    r = br_instance_load(db, step->instance_id, &row, err);
    if (r < 0)
        return r == -ENOENT ? cm_error_set(err, CM_ERROR_INTERNAL, "", "instance %lld vanished",
                                           (long long)step->instance_id)
                            : r;
    if (!row.host_id) {
        br_instance_row_clear(&row);
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "instance %lld has no host",
                            (long long)row.id);
    }
    c = br_hosts_get(d->hosts, row.host_id, err);
    if (!c) {
        br_instance_row_clear(&row);
        return -EAGAIN;
    }
    p = br_daemon_policies(d);

    switch (step->action) {
    case BR_STEP_CREATE_VOLUME: {
        const BrCatalogImage *img = br_policy_image(p, row.image);
        if (!img) {
            r = cm_error_set_code(err, CM_ERROR_UNPROCESSABLE, "unknown_image", "image",
                                  "image '%s' is not in the catalog", row.image);
            break;
        }
        r = br_virt_volume_create(c, row.pool, row.volume, (uint64_t)row.disk_gib, img->volume,
                                  img->format, err);
        out->instance_state = BR_INSTANCE_CREATED;
        break;
    }
    case BR_STEP_DEFINE: {
        _cleanup_free_ char *xml = NULL;
        r = define_xml(d, c, &row, &xml, err);
        if (r >= 0)
            r = br_virt_domain_define(c, row.uuid, xml, err);
        out->instance_state = BR_INSTANCE_DEFINED;
        break;
    }
    case BR_STEP_START:
        r = br_virt_domain_start(c, row.uuid, err);
        out->instance_state = BR_INSTANCE_RUNNING;
        break;
    case BR_STEP_SET_VCPUS:
        r = br_virt_domain_set_vcpus(c, row.uuid, (unsigned)step->arg, err);
        out->sizes.vcpus = step->arg;
        break;
    case BR_STEP_SET_MEMORY:
        r = br_virt_domain_set_memory(c, row.uuid, (uint64_t)step->arg, err);
        out->sizes.memory_mib = step->arg;
        break;
    case BR_STEP_GROW_VOLUME: {
        /* A running guest's image is QEMU's: grow it through QEMU (block_resize), which the
         * guest then sees; a stopped one's through the storage pool. */
        BrVirtState st = BR_VIRT_STATE_ABSENT;
        r = br_virt_domain_state(c, row.uuid, &st, err);
        if (r >= 0 && st == BR_VIRT_STATE_RUNNING)
            r = br_virt_domain_grow_disk(c, row.uuid, (uint64_t)step->arg, err);
        else if (r >= 0)
            r = br_virt_volume_resize(c, row.pool, row.volume, (uint64_t)step->arg, err);
        out->sizes.disk_gib = step->arg;
        break;
    }
    case BR_STEP_SHUTDOWN: {
        bool forced = false;
        BrVirtState st;
        r = br_virt_domain_shutdown(
            c, row.uuid, (unsigned)p->lifecycle.shutdown_timeout_seconds * 1000, &forced, err);
        if (r >= 0 && forced)
            cm_log_notice("instance %s did not shut down within %llds: forced off", row.name,
                          (long long)p->lifecycle.shutdown_timeout_seconds);
        if (r >= 0 && br_virt_domain_state(c, row.uuid, &st, err) >= 0)
            out->instance_state = st == BR_VIRT_STATE_ABSENT ? (int)row.state : BR_INSTANCE_SHUTOFF;
        break;
    }
    case BR_STEP_REDEFINE: {
        _cleanup_json_ json_object *spec = NULL;
        _cleanup_free_ char *xml = NULL;
        if (cm_json_parse(step->spec, strlen(step->spec), &spec, err) < 0) {
            r = -EINVAL;
            break;
        }
        row.vcpus = cm_json_get_int(spec, "vcpus", row.vcpus);
        row.memory_mib = cm_json_get_int(spec, "memory_mib", row.memory_mib);
        row.max_vcpus = cm_json_get_int(spec, "max_vcpus", row.max_vcpus);
        row.max_memory_mib = cm_json_get_int(spec, "max_memory_mib", row.max_memory_mib);
        r = define_xml(d, c, &row, &xml, err);
        if (r >= 0)
            r = br_virt_domain_redefine(c, xml, err);
        out->sizes =
            (BrInstanceSizes){row.vcpus, row.memory_mib, -1, row.max_vcpus, row.max_memory_mib};
        break;
    }
    case BR_STEP_UNDEFINE:
        r = br_virt_domain_undefine(c, row.uuid, err);
        out->instance_state = BR_INSTANCE_UNDEFINED;
        break;
    case BR_STEP_WIPE:
        r = br_virt_volume_wipe(c, row.pool, row.volume, err);
        break;
    case BR_STEP_DELETE_VOLUME:
        r = br_virt_volume_delete(c, row.pool, row.volume, err);
        out->instance_state = BR_INSTANCE_DELETED;
        break;
    default:
        r = cm_error_set(err, CM_ERROR_INTERNAL, "", "unknown step");
    }
    br_hosts_put(d->hosts, row.host_id, c);
    br_instance_row_clear(&row);
    return r;
}

static int steps_run(void *ctx, const BrJobRow *job, const BrStepRow *step, BrStepOutcome *out,
                     CmError *err)
{
    return br_steps_run(ctx, job, step, out, err);
}

static int steps_fail(void *ctx, BrTx *tx, const BrJobRow *job, const char *reason)
{
    return br_workflow_fail(ctx, tx, job, reason);
}

static int steps_sweep(void *ctx)
{
    return br_workflow_sweep(ctx);
}

static int64_t steps_retry_seconds(void *ctx)
{
    return br_workflow_retry_seconds(ctx);
}

const BrJobCallbacks br_steps_job_callbacks = {
    .run_step = steps_run,
    .fail = steps_fail,
    .sweep = steps_sweep,
    .retry_seconds = steps_retry_seconds,
};
