/* SPDX-License-Identifier: Apache-2.0 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "ctl-figures.h"
#include "cm-json.h"
#include "cm-util.h"

static bool is_number(json_object *v)
{
    return json_object_is_type(v, json_type_double) || json_object_is_type(v, json_type_int);
}

char *ctl_figure_percent(json_object *v)
{
    if (!is_number(v))
        return strdup("-");
    return cm_strdup_printf("%.1f%%", json_object_get_double(v) * 100.0);
}

char *ctl_figure_number(json_object *v, int decimals)
{
    if (json_object_is_type(v, json_type_int))
        return cm_strdup_printf("%" PRId64, json_object_get_int64(v));
    if (!is_number(v))
        return strdup("-");
    return cm_strdup_printf("%.*f", decimals, json_object_get_double(v));
}

char *ctl_figure_bytes(json_object *v)
{
    static const char *const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB"};
    double b;
    size_t u = 0;

    if (!is_number(v))
        return strdup("-");
    b = json_object_get_double(v);
    if (b < 1024 && b > -1024)
        return cm_strdup_printf("%.0f B", b);
    b /= 1024;
    while ((b >= 1024 || b <= -1024) && u + 1 < ELEMENTSOF(units)) {
        b /= 1024;
        u++;
    }
    return cm_strdup_printf("%.1f %s", b, units[u]);
}

char *ctl_figure_size(json_object *size)
{
    if (!json_object_is_type(size, json_type_object))
        return strdup("-");
    return cm_strdup_printf("%" PRId64 "/%" PRId64, cm_json_get_int(size, "vcpus", 0),
                            cm_json_get_int(size, "memory_mib", 0));
}
