/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl-instance.h"
#include "cm-cleanup.h"
#include "cm-json.h"
#include "cm-util.h"

/* The keys, the API member each sets, and the bounds of request-create.json. */
static const struct {
    const char *key, *alias, *member;
    int64_t min, max; /* max 0: a string */
} keys[] = {
    {"vcpus", NULL, "vcpus", 1, 1024},
    {"memory", "memory_mib", "memory_mib", 64, 16777216},
    {"disk", "disk_gib", "disk_gib", 1, 1048576},
    {"image", NULL, "image", 0, 0},
    {"count", NULL, NULL, 1, CTL_INSTANCE_MAX_COUNT},
};

static int fail(char **ret_error, const char *fmt, ...) _printf_(2, 3);

static int fail(char **ret_error, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(ret_error, fmt, ap) < 0)
        *ret_error = NULL;
    va_end(ap);
    return *ret_error ? -EINVAL : -ENOMEM;
}

int ctl_instance_parse(const char *spec, json_object **ret, int64_t *ret_count, char **ret_error)
{
    _cleanup_json_ json_object *o = json_object_new_object();
    bool seen[ELEMENTSOF(keys)] = {false};
    int64_t count = 1;
    const char *p = spec;

    *ret_error = NULL;
    if (!o)
        return -ENOMEM;
    while (*p) {
        size_t len = strcspn(p, ","), klen;
        const char *eq = memchr(p, '=', len);
        _cleanup_free_ char *value = NULL;
        size_t k;

        if (!eq)
            return fail(ret_error, "--instance '%s': '%.*s' is not KEY=VALUE", spec, (int)len, p);
        klen = (size_t)(eq - p);
        for (k = 0; k < ELEMENTSOF(keys); k++)
            if ((strlen(keys[k].key) == klen && strncmp(keys[k].key, p, klen) == 0) ||
                (keys[k].alias && strlen(keys[k].alias) == klen &&
                 strncmp(keys[k].alias, p, klen) == 0))
                break;
        if (k == ELEMENTSOF(keys))
            return fail(ret_error,
                        "--instance '%s': unknown key '%.*s' (vcpus, memory, disk, image, "
                        "count)",
                        spec, (int)klen, p);
        if (seen[k])
            return fail(ret_error, "--instance '%s': '%s' is given twice", spec, keys[k].key);
        seen[k] = true;
        value = strndup(eq + 1, len - klen - 1);
        if (!value)
            return -ENOMEM;
        if (!*value)
            return fail(ret_error, "--instance '%s': '%s' has no value", spec, keys[k].key);
        if (keys[k].max == 0) {
            json_object_object_add(o, keys[k].member, json_object_new_string(value));
        } else {
            int64_t n;
            if (cm_parse_int64(value, keys[k].min, keys[k].max, &n) < 0)
                return fail(ret_error,
                            "--instance '%s': %s must be a whole number from %" PRId64
                            " to %" PRId64,
                            spec, keys[k].key, keys[k].min, keys[k].max);
            if (keys[k].member)
                json_object_object_add(o, keys[k].member, json_object_new_int64(n));
            else
                count = n;
        }
        p += len;
        if (*p == ',')
            p++;
    }
    for (size_t k = 0; k < ELEMENTSOF(keys); k++)
        if (!seen[k] && keys[k].member)
            return fail(ret_error,
                        "--instance '%s': '%s' is missing (e.g. "
                        "vcpus=2,memory=4096,disk=40,image=debian-12)",
                        spec, keys[k].key);
    *ret = TAKE_PTR(o);
    *ret_count = count;
    return 0;
}
