/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "br-virt.h"
#include "cm-error.h"
#include "cm-time.h"

/*
 * One libvirt connection per host, each kept by its own thread: opened with keepalive and a
 * close callback, reopened with capped exponential backoff when lost, its capacity refreshed
 * on an interval. Nothing here waits on a host while holding a lock another host needs, so a
 * lost or slow host never blocks the API or the other hosts.
 */
typedef struct BrHosts BrHosts;

typedef struct {
    int64_t id;
    bool connected;
    char error[256];                 /* why the last connection attempt failed */
    char since[CM_TIME_ISO_LEN + 1]; /* when it connected or was lost */
    bool capacity_known;
    int64_t cpus, memory_mib;             /* from virNodeGetInfo */
    int64_t disk_gib, disk_available_gib; /* from the host's storage pool */
    char storage_error[256];              /* why the storage pool was not read, or "" */
    char hypervisor[8];                   /* what libvirt offers: kvm, qemu, test; "" unknown */
    char domain_type[8];                  /* what `domain_type: auto` takes here; "" unknown */
    char domain_note[256];                /* why KVM is not taken although offered, or "" */
    uint64_t reconnects;
} BrHostStatus;

/** br_hosts_new: Returns: an empty set (start threads with br_hosts_watch). */
BrHosts *br_hosts_new(void);

/* Told, on the host's thread and without any lock held, that a live connection was lost;
 * @since is when it had been made. */
typedef void (*BrHostLostFn)(void *ctx, int64_t host_id, const char *since);

/** br_hosts_on_lost: sets the function told of every lost connection (NULL: none). */
void br_hosts_on_lost(BrHosts *h, BrHostLostFn fn, void *ctx);

/* Told, on the host's thread and without any lock held, that a connection was made; @since is
 * when. */
typedef void (*BrHostUpFn)(void *ctx, int64_t host_id, const char *since);

/** br_hosts_on_up: sets the function told of every connection made (NULL: none). */
void br_hosts_on_up(BrHosts *h, BrHostUpFn fn, void *ctx);

/** br_hosts_free: stops every host's thread and closes the connections. Returns: NULL. */
BrHosts *br_hosts_free(BrHosts *h);

/**
 * br_hosts_watch:
 * Starts keeping a connection to host @id at @uri (whose instance disks live in
 * @storage_pool). Calling it again for a known host does nothing.
 * Returns: 0, or a negative errno.
 */
int br_hosts_watch(BrHosts *h, int64_t id, const char *uri, const char *storage_pool);

/**
 * br_hosts_get:
 * Returns: host @id's live connection with a reference held (give it back with
 * br_hosts_put()), or NULL with @err set to CM_ERROR_UNAVAILABLE when it is not connected.
 */
BrVirtConn *br_hosts_get(BrHosts *h, int64_t id, CmError *err);

/** br_hosts_put: gives back a connection from br_hosts_get(). */
void br_hosts_put(BrHosts *h, int64_t id, BrVirtConn *c);

/** br_hosts_status: Returns: true and the host's status in @ret, false for an unknown host. */
bool br_hosts_status(BrHosts *h, int64_t id, BrHostStatus *ret);

/**
 * br_hosts_snapshot:
 * Every host's status, taken under one lock, sorted by id (free the array).
 * Returns: 0, or -ENOMEM.
 */
int br_hosts_snapshot(BrHosts *h, BrHostStatus **ret, size_t *ret_n);

/** br_hosts_snapshot_find: Returns: host @id's status in a snapshot, or NULL. */
const BrHostStatus *br_hosts_snapshot_find(const BrHostStatus *snap, size_t n, int64_t id);

/**
 * br_hosts_set_storage_pool:
 * Host @id's capacity comes from @storage_pool from now on; its thread reads it at once.
 * Returns: 0, -ENOENT for an unknown host, or -ENOMEM.
 */
int br_hosts_set_storage_pool(BrHosts *h, int64_t id, const char *storage_pool);

/** br_hosts_refresh: asks host @id's thread to refresh its capacity now (after a change). */
void br_hosts_refresh(BrHosts *h, int64_t id);

/** br_hosts_counts: the number of hosts watched and connected, for /metrics. */
void br_hosts_counts(BrHosts *h, unsigned *ret_total, unsigned *ret_connected,
                     uint64_t *ret_reconnects);
