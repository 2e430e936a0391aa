/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* The libvirt driver's decisions that tests check without a hypervisor. */

#include <stdbool.h>
#include <stddef.h>

/**
 * br_virt_kvm_usable:
 * Decides whether KVM really works on a hypervisor, from the KVM domain capabilities libvirt
 * gave (@domcaps, NULL when it offers none), the host capabilities (@caps, NULL when unknown)
 * and, for a hypervisor on this machine, what opening /dev/kvm gave (@kvm_dev: 0 it opened
 * and answered, a negative errno it did not, 1 not checked; -EACCES and -EPERM mean "cannot
 * tell" and do not count against KVM).
 * Returns: true when KVM is usable; false with the reason in @note (always set, "" when usable).
 */
bool br_virt_kvm_usable(const char *domcaps, const char *caps, int kvm_dev, char *note,
                        size_t note_size);

/** br_virt_uri_is_local: Returns: true for a QEMU URI without a host (this machine). */
bool br_virt_uri_is_local(const char *uri);

/**
 * br_virt_kvm_device_check:
 * Opens @path (/dev/kvm) and asks its API version.
 * Returns: 0 when it opens and answers KVM's API version, else a negative errno.
 */
int br_virt_kvm_device_check(const char *path);
