/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "cm-error.h"

/* The project's namespace for the <metadata> element the agent reads. */
#define BR_XMLNS_URI "urn:x-cloudbroker:instance:1"
#define BR_XMLNS_PREFIX "cloudbroker"

/* Everything a domain definition needs; nothing else reaches the XML. */
typedef struct {
    const char *name;        /* cb-<allocation>-<n>: made by the broker, never by a department */
    const char *uuid;        /* chosen by the broker and stored before the domain is defined */
    const char *domain_type; /* "kvm" or "qemu" (software emulation) */
    const char *arch;        /* "x86_64" */
    const char *machine;     /* "pc", "q35", ... or NULL for the hypervisor's default */
    unsigned vcpus, max_vcpus;
    uint64_t memory_mib, max_memory_mib;
    const char *pool, *volume, *disk_format; /* the instance's disk: a volume in a pool */
    const char *network;                     /* a libvirt network for one NIC, or NULL */
    /* Identification, as escaped text only. */
    int64_t department_id, system_id, allocation_id, instance_id, request_id;
    unsigned index;
    const char *purpose;         /* "trial" or "production" */
    const char *department_name; /* department-supplied text */
    const char *system_name;     /* department-supplied text */
} BrDomainSpec;

/**
 * br_domain_xml_build:
 * Builds the libvirt domain XML for @spec with libxml2's tree API: names, paths and attributes
 * come from the broker only; department text appears only as escaped text inside
 * <description> and <metadata>, with characters XML 1.0 cannot carry replaced by U+FFFD.
 * Returns: 0 and a newly allocated NUL-terminated document in @ret, or a negative errno with
 * @err set.
 */
int br_domain_xml_build(const BrDomainSpec *spec, char **ret, CmError *err);

/**
 * br_xml_text_sanitize:
 * Returns: a copy of @s holding only characters XML 1.0 allows (others, and invalid UTF-8,
 * become U+FFFD), at most @max_bytes long (cut at a character boundary); NULL on ENOMEM.
 */
char *br_xml_text_sanitize(const char *s, size_t max_bytes);

/**
 * br_domain_metadata_parse:
 * Reads the project's <metadata> element (as returned by virDomainGetMetadata) into the ids.
 * Returns: 0, or -EINVAL when it is not ours or is malformed.
 */
int br_domain_metadata_parse(const char *xml, int64_t *ret_department, int64_t *ret_system,
                             int64_t *ret_allocation, int64_t *ret_instance);
