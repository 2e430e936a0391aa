/* SPDX-License-Identifier: Apache-2.0 */
/* ctl_instance_parse(): the --instance specification of request create and update. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ctl-instance.h"
#include "cm-json.h"
#include "cm-util.h"

static void test_parses(void **state)
{
    json_object *o = NULL;
    int64_t count = 0;
    char *msg = NULL;

    assert_int_equal(
        ctl_instance_parse("vcpus=2,memory=4096,disk=40,image=debian-12", &o, &count, &msg), 0);
    assert_null(msg);
    assert_int_equal(count, 1);
    assert_string_equal(
        json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN),
        "{\"vcpus\":2,\"memory_mib\":4096,\"disk_gib\":40,\"image\":\"debian-12\"}");
    json_object_put(o);

    /* Any order, the API's own member names, and a count. */
    assert_int_equal(ctl_instance_parse("image=ubuntu-22.04,count=3,disk_gib=1,memory_mib=64,"
                                        "vcpus=1024",
                                        &o, &count, &msg),
                     0);
    assert_int_equal(count, 3);
    assert_int_equal(cm_json_get_int(o, "vcpus", 0), 1024);
    assert_int_equal(cm_json_get_int(o, "memory_mib", 0), 64);
    assert_int_equal(cm_json_get_int(o, "disk_gib", 0), 1);
    assert_string_equal(cm_json_get_str(o, "image", ""), "ubuntu-22.04");
    assert_null(cm_json_get(o, "count"));
    json_object_put(o);
}

static void refused(const char *spec, const char *want)
{
    json_object *o = NULL;
    int64_t count = 0;
    char *msg = NULL;

    assert_int_equal(ctl_instance_parse(spec, &o, &count, &msg), -EINVAL);
    assert_null(o);
    assert_non_null(msg);
    if (!strstr(msg, want))
        fail_msg("'%s': message '%s' does not contain '%s'", spec, msg, want);
    free(msg);
}

static void test_refusals(void **state)
{
    refused("vcpus=2", "'memory' is missing");
    refused("", "'vcpus' is missing");
    refused("vcpus=2,memory=4096,disk=40", "'image' is missing");
    refused("vcpus=2,memory=4096,disk=40,image=x,gpu=1", "unknown key 'gpu'");
    refused("vcpus=2,vcpus=3,memory=4096,disk=40,image=x", "'vcpus' is given twice");
    refused("vcpus=2,memory=4096,memory_mib=1,disk=40,image=x", "'memory' is given twice");
    refused("vcpus=two,memory=4096,disk=40,image=x", "vcpus must be a whole number");
    refused("vcpus=0,memory=4096,disk=40,image=x", "from 1 to 1024");
    refused("vcpus=2,memory=32,disk=40,image=x", "memory must be");
    refused("vcpus=2,memory=4096,disk=40,image=x,count=1001", "count must be");
    refused("vcpus=2,memory=4096,disk=40,image=", "'image' has no value");
    refused("vcpus=2,memory,disk=40,image=x", "'memory' is not KEY=VALUE");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parses),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
