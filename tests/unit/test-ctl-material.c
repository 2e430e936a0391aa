/* SPDX-License-Identifier: Apache-2.0 */
/* ctl-material: material kinds and the media type guessed from a file's name. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ctl-material.h"
#include "cm-util.h"

static void test_guess(void **state)
{
    const char *cases[][2] = {
        {"plan.pdf", "application/pdf"},
        {"PLAN.PDF", "application/pdf"},
        {"dir.v2/建设方案.docx",
         "application/vnd.openxmlformats-officedocument.wordprocessingml.document"},
        {"a.doc", "application/msword"},
        {"a.xls", "application/vnd.ms-excel"},
        {"a.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"},
        {"a.ppt", "application/vnd.ms-powerpoint"},
        {"a.pptx", "application/vnd.openxmlformats-officedocument.presentationml.presentation"},
        {"a.odt", "application/vnd.oasis.opendocument.text"},
        {"a.ods", "application/vnd.oasis.opendocument.spreadsheet"},
        {"shot.png", "image/png"},
        {"photo.JPG", "image/jpeg"},
        {"photo.jpeg", "image/jpeg"},
        {"notes.txt", "text/plain"},
        {"archive.tar.gz", NULL},
        {"noext", NULL},
        {".pdf", NULL},
        {"dir.pdf/file", NULL},
        {"trailing.", NULL},
    };
    for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
        const char *got = ctl_material_guess_type(cases[i][0]);
        if (!cm_streq(got, cases[i][1]))
            fail_msg("%s: got %s, want %s", cases[i][0], got ? got : "NULL",
                     cases[i][1] ? cases[i][1] : "NULL");
    }
}

static void test_kinds(void **state)
{
    assert_true(ctl_material_kind_valid("construction_plan"));
    assert_true(ctl_material_kind_valid("backup_proof"));
    assert_true(ctl_material_kind_valid("other"));
    assert_false(ctl_material_kind_valid("Construction_plan"));
    assert_false(ctl_material_kind_valid(""));
    assert_false(ctl_material_kind_valid("plan"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_guess),
        cmocka_unit_test(test_kinds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
