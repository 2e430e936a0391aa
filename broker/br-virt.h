/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "cm-error.h"

/*
 * The broker's libvirt driver: the one place in the broker that includes <libvirt/libvirt.h>.
 * Every call turns a libvirt failure into a CmError on the calling thread, and every action
 * is idempotent: it looks first and does nothing when the thing is already as asked, so a job
 * step retried after a crash finds what the previous attempt made.
 */

typedef struct BrVirtConn BrVirtConn;

typedef enum {
    BR_VIRT_STATE_ABSENT = 0, /* no such domain */
    BR_VIRT_STATE_RUNNING,
    BR_VIRT_STATE_PAUSED,
    BR_VIRT_STATE_SHUTOFF,
    BR_VIRT_STATE_OTHER, /* shutting down, crashed, suspended, ... */
} BrVirtState;

const char *br_virt_state_to_string(BrVirtState s);

typedef struct {
    unsigned cpus;
    uint64_t memory_mib;
} BrVirtNodeInfo;

typedef struct {
    uint64_t capacity_gib, allocation_gib, available_gib;
} BrVirtPoolInfo;

typedef struct {
    char uuid[37];
    char name[128];
    BrVirtState state;
    bool ours; /* carries the project's metadata */
    int64_t department_id, system_id, allocation_id, instance_id;
} BrVirtDomain;

/**
 * br_virt_init:
 * Registers libvirt's default event loop and runs it in a thread (keepalive and close
 * callbacks need it), and silences libvirt's own printing of errors. Idempotent.
 * Returns: 0, or a negative errno with @err set.
 */
int br_virt_init(CmError *err);

/**
 * br_virt_open:
 * Opens @uri with a keepalive (@keepalive_interval seconds, @keepalive_count probes) and a
 * close callback that marks the connection lost.
 * Returns: 0 and the connection in @ret, or a negative errno with @err set.
 */
int br_virt_open(const char *uri, int keepalive_interval, unsigned keepalive_count,
                 BrVirtConn **ret, CmError *err);

/** br_virt_close: closes and frees. Accepts NULL. Returns: NULL. */
BrVirtConn *br_virt_close(BrVirtConn *c);

/** br_virt_alive: Returns: false once the connection was closed by the peer or keepalive. */
bool br_virt_alive(BrVirtConn *c);

/**
 * br_virt_domain_type:
 * The domain type `domain_type: auto` takes on this connection, chosen when it was opened:
 * "kvm" only when libvirt offers KVM and it really works (KVM's host-model CPU offered, the
 * host CPU's vmx or svm present on x86, and for a hypervisor on this machine /dev/kvm opens),
 * else "qemu" (software emulation); "test" for libvirt's test driver.
 * Returns: the type; never NULL.
 */
const char *br_virt_domain_type(BrVirtConn *c);

/** br_virt_hypervisor: Returns: what libvirt offers, "kvm", "qemu" or "test"; never NULL. */
const char *br_virt_hypervisor(BrVirtConn *c);

/**
 * br_virt_domain_type_note:
 * Returns: why KVM is not taken although libvirt offers it (e.g. "the host CPU has no
 * virtualization extensions (neither vmx nor svm)"), or ""; never NULL.
 */
const char *br_virt_domain_type_note(BrVirtConn *c);

int br_virt_node_info(BrVirtConn *c, BrVirtNodeInfo *ret, CmError *err);
int br_virt_pool_info(BrVirtConn *c, const char *pool, BrVirtPoolInfo *ret, CmError *err);

/**
 * br_virt_volume_create:
 * Creates volume @name of @capacity_gib in @pool as a qcow2 overlay on @base (a volume in the
 * same pool, raw or qcow2). Nothing is done when @name exists.
 * Returns: 0, or a negative errno with @err set.
 */
int br_virt_volume_create(BrVirtConn *c, const char *pool, const char *name, uint64_t capacity_gib,
                          const char *base, const char *base_format, CmError *err);

/** br_virt_volume_exists: Returns: 1, 0, or a negative errno with @err set. */
int br_virt_volume_exists(BrVirtConn *c, const char *pool, const char *name, CmError *err);

/** br_virt_volume_resize: grows @name to @capacity_gib (never shrinks). Returns: 0 or -errno. */
int br_virt_volume_resize(BrVirtConn *c, const char *pool, const char *name, uint64_t capacity_gib,
                          CmError *err);

/** br_virt_volume_wipe / _delete: nothing to do when the volume is gone. Returns: 0 or -errno. */
int br_virt_volume_wipe(BrVirtConn *c, const char *pool, const char *name, CmError *err);
int br_virt_volume_delete(BrVirtConn *c, const char *pool, const char *name, CmError *err);

/** br_virt_domain_define: defines @xml unless a domain with @uuid exists. Returns: 0 or -errno. */
int br_virt_domain_define(BrVirtConn *c, const char *uuid, const char *xml, CmError *err);

/** br_virt_domain_redefine: defines @xml over the existing persistent config. */
int br_virt_domain_redefine(BrVirtConn *c, const char *xml, CmError *err);

/** br_virt_domain_start: starts @uuid unless it runs. Returns: 0, -ENOENT, or -errno. */
int br_virt_domain_start(BrVirtConn *c, const char *uuid, CmError *err);

/**
 * br_virt_domain_shutdown:
 * Asks @uuid to shut down, waits up to @timeout_ms, then forces it off. Nothing to do when it
 * is not running or absent. Sets @ret_forced when it had to force.
 * Returns: 0 or a negative errno.
 */
int br_virt_domain_shutdown(BrVirtConn *c, const char *uuid, unsigned timeout_ms, bool *ret_forced,
                            CmError *err);

/**
 * br_virt_domain_undefine:
 * Undefines @uuid with managed save, snapshot and checkpoint metadata and NVRAM removed
 * (a running domain is forced off first). Nothing to do when absent.
 * Returns: 0 or a negative errno.
 */
int br_virt_domain_undefine(BrVirtConn *c, const char *uuid, CmError *err);

/** br_virt_domain_state: Returns: 0 with the state in @ret (ABSENT when missing), or -errno. */
int br_virt_domain_state(BrVirtConn *c, const char *uuid, BrVirtState *ret, CmError *err);

/**
 * br_virt_domain_set_vcpus / _set_memory:
 * Change the current vCPUs / memory, live (when running) and in the persistent config, within
 * the maximums set at define time. Returns: 0 or a negative errno.
 */
int br_virt_domain_set_vcpus(BrVirtConn *c, const char *uuid, unsigned vcpus, CmError *err);
int br_virt_domain_set_memory(BrVirtConn *c, const char *uuid, uint64_t memory_mib, CmError *err);

/** br_virt_domain_grow_disk: tells a running domain its disk "vda" grew. Returns: 0 or -errno. */
int br_virt_domain_grow_disk(BrVirtConn *c, const char *uuid, uint64_t capacity_gib, CmError *err);

/**
 * br_virt_list_domains:
 * Lists every domain on the host with its state and, for ours, the ids in its metadata.
 * Returns: 0 with a malloc'ed array in @ret and its length in @ret_n, or a negative errno.
 */
int br_virt_list_domains(BrVirtConn *c, BrVirtDomain **ret, size_t *ret_n, CmError *err);
