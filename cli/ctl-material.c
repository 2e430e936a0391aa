/* SPDX-License-Identifier: Apache-2.0 */
#include <string.h>
#include <strings.h>

#include "ctl-material.h"
#include "cm-cleanup.h"

const char *const ctl_material_kinds[] = {
    "construction_plan",
    "performance_self_test",
    "security_self_test",
    "backup_proof",
    "test_report",
    "other",
    NULL,
};

bool ctl_material_kind_valid(const char *kind)
{
    for (size_t i = 0; ctl_material_kinds[i]; i++)
        if (strcmp(kind, ctl_material_kinds[i]) == 0)
            return true;
    return false;
}

static const struct {
    const char *ext, *type;
} types[] = {
    {"pdf", "application/pdf"},
    {"doc", "application/msword"},
    {"docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"},
    {"xls", "application/vnd.ms-excel"},
    {"xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"},
    {"ppt", "application/vnd.ms-powerpoint"},
    {"pptx", "application/vnd.openxmlformats-officedocument.presentationml.presentation"},
    {"odt", "application/vnd.oasis.opendocument.text"},
    {"ods", "application/vnd.oasis.opendocument.spreadsheet"},
    {"png", "image/png"},
    {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"},
    {"txt", "text/plain"},
};

const char *ctl_material_guess_type(const char *filename)
{
    const char *slash = strrchr(filename, '/');
    const char *base = slash ? slash + 1 : filename;
    const char *dot = strrchr(base, '.');

    if (!dot || dot == base)
        return NULL;
    for (size_t i = 0; i < ELEMENTSOF(types); i++)
        if (strcasecmp(dot + 1, types[i].ext) == 0)
            return types[i].type;
    return NULL;
}
