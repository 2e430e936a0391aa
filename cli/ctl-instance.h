/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdint.h>

#include <json-c/json.h>

/* The most instances one --instance may stand for (count=N); the schema's array limit. */
#define CTL_INSTANCE_MAX_COUNT 1000

/**
 * ctl_instance_parse:
 * Parses an --instance specification, "vcpus=2,memory=4096,disk=40,image=debian-12" with an
 * optional "count=N" (memory in MiB, disk in GiB; "memory_mib" and "disk_gib" are accepted
 * too), into the API's instance object {"vcpus", "memory_mib", "disk_gib", "image"}.
 * Returns: 0 with the object in @ret (a new reference) and the count in @ret_count, or
 * -EINVAL with a message for the user in @ret_error (allocated), or -ENOMEM.
 */
int ctl_instance_parse(const char *spec, json_object **ret, int64_t *ret_count, char **ret_error);
