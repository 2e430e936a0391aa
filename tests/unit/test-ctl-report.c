/* SPDX-License-Identifier: Apache-2.0 */
/* ctl-report: the terminal summaries of the annual assessment and the operations report. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ctl-report.h"

/* Two departments (one without scores), the city, one system without budget. */
static const char assessment_doc[] =
    "{\"report\": \"annual_assessment\", \"year\": 2026,"
    " \"generated_at\": \"2026-11-28T01:02:03.000Z\","
    " \"period_from\": \"2026-01-01T00:00:00.000Z\", \"period_to\": \"2027-01-01T00:00:00.000Z\","
    " \"methodology\": {\"weights\": {\"cloud_share\": 0.3, \"efficiency\": 0.4, \"security\": "
    "0.3}},"
    " \"city\": {\"cloud_share\": {\"systems\": 3, \"on_cloud\": 2, \"share\": 0.6667,"
    "   \"score\": 66.7},"
    "  \"efficiency\": {\"allocations\": 2, \"allocated_vcpus\": 6, \"used_vcpus_avg\": 1.5,"
    "   \"cpu_utilization_avg\": 0.25, \"cpu_utilization_p95\": 0.61,"
    "   \"allocated_memory_gib\": 8.0, \"used_memory_gib_avg\": 2.25, \"idle_allocations\": 1,"
    "   \"over_provisioned_allocations\": 0, \"reclaimable_vcpus\": 2,"
    "   \"reclaimable_memory_gib\": 2.0, \"score\": 70.8},"
    "  \"security\": {\"systems_on_cloud\": 2, \"security_test_passed\": 2, \"backup_attested\": 1,"
    "   \"open_vulnerabilities\": {\"critical\": 0, \"high\": 1, \"medium\": 0, \"low\": 0},"
    "   \"incidents\": 0, \"score\": 75.0},"
    "  \"overall_score\": 70.8},"
    " \"departments\": ["
    "  {\"id\": 1, \"code\": \"mz\", \"name\": \"民政局\", \"rank\": 1,"
    "   \"cloud_share\": {\"systems\": 3, \"on_cloud\": 2, \"share\": 0.6667, \"score\": 66.7},"
    "   \"efficiency\": {\"allocations\": 2, \"allocated_vcpus\": 6, \"used_vcpus_avg\": 1.5,"
    "    \"cpu_utilization_avg\": 0.25, \"cpu_utilization_p95\": 0.61,"
    "    \"allocated_memory_gib\": 8.0, \"used_memory_gib_avg\": 2.25, \"idle_allocations\": 1,"
    "    \"over_provisioned_allocations\": 0, \"reclaimable_vcpus\": 2,"
    "    \"reclaimable_memory_gib\": 2.0, \"score\": 70.8},"
    "   \"security\": {\"systems_on_cloud\": 2, \"security_test_passed\": 2,"
    "    \"backup_attested\": 1, \"open_vulnerabilities\": {\"critical\": 0, \"high\": 1,"
    "    \"medium\": 0, \"low\": 0}, \"incidents\": 0, \"score\": 75.0},"
    "   \"overall_score\": 70.8},"
    "  {\"id\": 2, \"code\": \"ty\", \"name\": \"Sports\\u001b[31m\", \"rank\": null,"
    "   \"cloud_share\": {\"systems\": 0, \"on_cloud\": 0, \"share\": null, \"score\": null},"
    "   \"efficiency\": {\"allocations\": 0, \"allocated_vcpus\": 0, \"used_vcpus_avg\": 0.0,"
    "    \"cpu_utilization_avg\": null, \"cpu_utilization_p95\": null,"
    "    \"allocated_memory_gib\": 0.0, \"used_memory_gib_avg\": 0.0, \"idle_allocations\": 0,"
    "    \"over_provisioned_allocations\": 0, \"reclaimable_vcpus\": 0,"
    "    \"reclaimable_memory_gib\": 0.0, \"score\": null},"
    "   \"security\": {\"systems_on_cloud\": 0, \"security_test_passed\": 0,"
    "    \"backup_attested\": 0, \"open_vulnerabilities\": {\"critical\": 0, \"high\": 0,"
    "    \"medium\": 0, \"low\": 0}, \"incidents\": 0, \"score\": null},"
    "   \"overall_score\": null}],"
    " \"no_budget\": [{\"system_id\": 7, \"system\": \"archive\", \"department_id\": 1,"
    "  \"department\": \"民政局\", \"reasons\": [\"not_on_cloud\", \"no_backup\"]}]}";

static const char assessment_en[] =
    "Annual assessment 2026 (Art. 9), 2026-01-01 to 2027-01-01 (excluded); generated "
    "2026-11-28T01:02:03.000Z\n"
    "\n"
    "Scores (0-100; weights: cloud share 0.3, efficiency 0.4, security 0.3):\n"
    "  RANK  CODE  DEPARTMENT   SYSTEMS  ON_CLOUD  CLOUD_SHARE  CLOUD  EFFICIENCY  "
    "SECURITY  OVERALL\n"
    "     1  mz    民政局             3         2        66.7%   66.7        70.8      75.0   "
    "  70.8\n"
    "     -  ty    Sports?[31m        0         0            -      -           -         "
    "-        -\n"
    "     -  -     City               3         2        66.7%   66.7        70.8      "
    "75.0     70.8\n"
    "\n"
    "Resource use:\n"
    "  CODE  DEPARTMENT   ALLOCS  VCPUS  VCPUS_USED  CPU_AVG  CPU_P95  MEM_GIB  "
    "MEM_USED_GIB  IDLE  OVER_PROV  RECLAIM_VCPUS  RECLAIM_GIB\n"
    "  mz    民政局            2      6        1.50    25.0%    61.0%     8.00          2.25  "
    "   1          0              2         2.00\n"
    "  ty    Sports?[31m       0      0        0.00        -        -     0.00          "
    "0.00     0          0              0         0.00\n"
    "  -     City              2      6        1.50    25.0%    61.0%     8.00          "
    "2.25     1          0              2         2.00\n"
    "\n"
    "Security (systems on the cloud):\n"
    "  CODE  DEPARTMENT   ON_CLOUD  TEST_PASSED  BACKED_UP  CRITICAL  HIGH  MEDIUM  LOW  "
    "INCIDENTS\n"
    "  mz    民政局              2            2          1         0     1       0    0       "
    "   0\n"
    "  ty    Sports?[31m         0            0          0         0     0       0    0    "
    "      0\n"
    "  -     City                2            2          1         0     1       0    0    "
    "      0\n"
    "\n"
    "Systems off the cloud or without a backup (Art. 5: no budget):\n"
    "  SYSTEM_ID  SYSTEM   DEPARTMENT  REASONS\n"
    "          7  archive  民政局      not on the cloud, no backup\n";

static json_object *parse(const char *text)
{
    json_object *o = json_tokener_parse(text);
    assert_non_null(o);
    return o;
}

static void assert_contains(const char *text, const char *want)
{
    if (!text)
        fail_msg("no text where '%s' was expected", want);
    else if (!strstr(text, want))
        fail_msg("'%s' not found in:\n%s", want, text);
}

static void test_assessment_en(void **state)
{
    json_object *doc = parse(assessment_doc);
    char *text = ctl_report_assessment_text(doc, CTL_LANG_EN);

    assert_non_null(text);
    /* Every line in full: the columns line up in terminal columns (民政局 takes six). */
    assert_string_equal(text, assessment_en);
    /* The escape character of a department's name never reaches the terminal. */
    assert_null(strchr(text, '\x1b'));
    free(text);
    json_object_put(doc);
}

static void test_assessment_zh(void **state)
{
    json_object *doc = parse(assessment_doc);
    char *text = ctl_report_assessment_text(doc, CTL_LANG_ZH);

    assert_non_null(text);
    assert_true(strncmp(text, "2026年度政务云平台使用情况考核（第九条），2026-01-01 至 2027-01-01",
                        strlen("2026年度政务云平台使用情况考核（第九条），2026-01-01 至 "
                               "2027-01-01")) == 0);
    assert_contains(text, "\n得分（0-100；权重：上云率 0.3，效率 0.4，安全 0.3）：\n"
                          "  排名  代码  单位         应用系统数  上云系统数  上云率  上云得分  "
                          "效率得分  安全得分  综合得分\n"
                          "     1  mz    民政局                3           2   66.7%      66.7"
                          "      70.8      75.0      70.8\n");
    assert_contains(text, "     -  -     全市                  3           2   66.7%");
    assert_contains(text, "\n资源使用效率：\n");
    assert_contains(text, "\n安全状况（上云系统）：\n");
    assert_contains(text, "\n未上云或未备份的系统（第五条：不予安排经费）：\n"
                          "  系统编号  应用系统  单位    原因\n"
                          "         7  archive   民政局  未上云、未备份\n");
    assert_null(strstr(text, "City"));
    free(text);
    json_object_put(doc);
}

/* The summary lists departments by rank, whatever order the report has them in: the
 * unranked after the ranked, in every table. */
static void test_assessment_sorted_by_rank(void **state)
{
    json_object *doc = parse(assessment_doc), *depts, *mz, *ty, *gs, *list;
    char *text;
    const char *sections[] = {"RANK  CODE", "Resource use:", "Security (systems"};

    depts = json_object_object_get(doc, "departments");
    mz = json_object_get(json_object_array_get_idx(depts, 0));
    ty = json_object_get(json_object_array_get_idx(depts, 1));
    gs = parse(json_object_to_json_string(mz));
    json_object_object_add(gs, "code", json_object_new_string("gs"));
    json_object_object_add(gs, "name", json_object_new_string("工商局"));
    json_object_object_add(gs, "rank", json_object_new_int(2));
    json_object_object_add(gs, "overall_score", json_object_new_double(50.5));
    /* In the report's order: unranked, second, first. */
    list = json_object_new_array();
    json_object_array_add(list, ty);
    json_object_array_add(list, gs);
    json_object_array_add(list, mz);
    json_object_object_add(doc, "departments", list);

    text = ctl_report_assessment_text(doc, CTL_LANG_EN);
    assert_non_null(text);
    assert_contains(text, "     1  mz    民政局");
    assert_contains(text, "     2  gs    工商局");
    for (size_t i = 0; i < 3; i++) {
        const char *from = strstr(text, sections[i]);
        const char *a, *b, *c;
        assert_non_null(from);
        a = strstr(from, "  mz  ");
        b = strstr(from, "  gs  ");
        c = strstr(from, "  ty  ");
        assert_non_null(a);
        assert_non_null(b);
        assert_non_null(c);
        if (!(a < b && b < c))
            fail_msg("section '%s' is not in rank order:\n%s", sections[i], from);
    }
    /* The document itself is left as it was. */
    assert_string_equal(
        json_object_get_string(json_object_object_get(json_object_array_get_idx(list, 0), "code")),
        "ty");
    free(text);
    json_object_put(doc);
}

static void test_assessment_empty(void **state)
{
    /* A year without departments (or a broker that sent less): still a summary, no crash. */
    json_object *doc = parse("{\"report\": \"annual_assessment\", \"year\": 2030,"
                             " \"departments\": [], \"no_budget\": []}");
    char *text = ctl_report_assessment_text(doc, CTL_LANG_EN);

    assert_non_null(text);
    assert_contains(text, "Annual assessment 2030 (Art. 9), ?");
    assert_contains(text, "Scores (0-100; weights: cloud share 0, efficiency 0, security 0):\n"
                          "  RANK  CODE  DEPARTMENT  SYSTEMS");
    assert_contains(text, "(Art. 5: no budget):\n  (none)\n");
    free(text);
    text = ctl_report_assessment_text(doc, CTL_LANG_ZH);
    assert_non_null(text);
    assert_contains(text, "：\n  （无）\n");
    free(text);
    json_object_put(doc);
}

static const char operations_doc[] =
    "{\"report\": \"operations\", \"month\": \"2026-11\","
    " \"period_from\": \"2026-11-01T00:00:00.000Z\", \"period_to\": \"2026-12-01T00:00:00.000Z\","
    " \"generated_at\": \"2026-11-28T01:02:03.000Z\", \"departments\": ["
    "  {\"id\": 1, \"code\": \"mz\", \"name\": \"民政局\","
    "   \"totals\": {\"instances\": 2, \"instance_hours\": 1300.5, \"availability\": 0.9871,"
    "    \"cpu_utilization_avg\": 0.4738},"
    "   \"instances\": [{\"id\": 4, \"name\": \"cb-4-0\", \"allocation_id\": 4, \"system\": \"oa\","
    "     \"vcpus\": 2, \"memory_mib\": 2048, \"instance_hours\": 650.25, \"readings\": 100,"
    "     \"cpu_cores_avg\": 0.005, \"cpu_utilization_avg\": 0.0025,"
    "     \"cpu_cores_p95_daily_max\": 0.01, \"memory_used_mib_avg\": 300.4},"
    "    {\"id\": 5, \"name\": \"cb-5-0\", \"allocation_id\": 5, \"system\": \"calc\","
    "     \"vcpus\": 1, \"memory_mib\": 4096, \"instance_hours\": 650.25, \"readings\": 100,"
    "     \"cpu_cores_avg\": null, \"cpu_utilization_avg\": null,"
    "     \"cpu_cores_p95_daily_max\": null, \"memory_used_mib_avg\": null}],"
    "   \"daily\": [],"
    "   \"events\": [{\"id\": 3, \"kind\": \"instance_state\", \"severity\": \"warning\","
    "     \"instance\": \"cb-5-0\", \"message\": \"shut off\", \"first_seen\": "
    "     \"2026-11-20T10:00:00.000Z\", \"resolved_at\": null}],"
    "   \"findings\": [{\"id\": 1, \"kind\": \"idle\", \"instance\": \"cb-4-0\", \"rule\": \"r\","
    "     \"current_vcpus\": 2, \"current_memory_mib\": 2048, \"recommended_vcpus\": 0,"
    "     \"recommended_memory_mib\": 0, \"frees_vcpus\": 2, \"frees_memory_mib\": 2048,"
    "     \"state\": \"open\"},"
    "    {\"id\": 2, \"kind\": \"over_provisioned\", \"instance\": \"cb-5-0\", \"rule\": \"r\","
    "     \"current_vcpus\": 1, \"current_memory_mib\": 4096, \"recommended_vcpus\": 2,"
    "     \"recommended_memory_mib\": 1280, \"frees_vcpus\": -1, \"frees_memory_mib\": 2816,"
    "     \"state\": \"acknowledged\"}]},"
    "  {\"id\": 2, \"code\": \"ty\", \"name\": \"体育局\","
    "   \"totals\": {\"instances\": 0, \"instance_hours\": 0.0, \"availability\": null,"
    "    \"cpu_utilization_avg\": null},"
    "   \"instances\": [], \"daily\": [], \"events\": [], \"findings\": []}]}";

static const char operations_en[] =
    "Operations report 2026-11 (Art. 8), 2026-11-01 to 2026-12-01 (excluded); generated "
    "2026-11-28T01:02:03.000Z\n"
    "\n"
    "CODE  DEPARTMENT  INSTANCES  INSTANCE_HOURS  AVAILABILITY  CPU_AVG  FINDINGS  EVENTS\n"
    "mz    民政局              2          1300.5         98.7%    47.4%         2       1\n"
    "ty    体育局              0             0.0             -        -         0       0\n"
    "\n"
    "民政局 (mz):\n"
    "  Instances:\n"
    "    INSTANCE  SYSTEM  VCPUS  MEMORY_MIB  HOURS  CPU_CORES_AVG  CPU_AVG  "
    "CPU_CORES_P95  MEMORY_USED_MIB\n"
    "    cb-4-0    oa          2        2048  650.2           0.01     0.2%           "
    "0.01              300\n"
    "    cb-5-0    calc        1        4096  650.2              -        -              "
    "-                -\n"
    "  Right-sizing advice (idle and mis-sized; vCPUs/memory MiB):\n"
    "    ID  KIND              INSTANCE  CURRENT  RECOMMENDED    FREES  STATE\n"
    "     1  idle              cb-4-0     2/2048      reclaim   2/2048  open\n"
    "     2  over-provisioned  cb-5-0     1/4096       2/1280  -1/2816  acknowledged\n"
    "  Events:\n"
    "    FIRST_SEEN                KIND            SEVERITY  INSTANCE  RESOLVED  MESSAGE\n"
    "    2026-11-20T10:00:00.000Z  instance_state  warning   cb-5-0    -         shut off\n";

static void test_operations(void **state)
{
    json_object *doc = parse(operations_doc);
    char *text = ctl_report_operations_text(doc, CTL_LANG_EN);

    assert_non_null(text);
    assert_string_equal(text, operations_en);
    free(text);
    text = ctl_report_operations_text(doc, CTL_LANG_ZH);
    assert_non_null(text);
    assert_contains(text, "政务云资源运行报告 2026-11（第八条），2026-11-01 至 2026-12-01");
    assert_contains(text, "代码  单位    实例数  实例小时  可用率  平均CPU利用率  优化建议  "
                          "运行事件\n");
    assert_contains(text, "  实例利用情况：\n");
    assert_contains(text, "       1  闲置      cb-4-0    2/2048  建议回收   2/2048  open\n");
    assert_contains(text,
                    "       2  配置过度  cb-5-0    1/4096    2/1280  -1/2816  acknowledged\n");
    /* A department with nothing to show has no section of its own. */
    assert_null(strstr(text, "体育局 (ty)"));
    free(text);
    json_object_put(doc);

    doc = parse("{\"report\": \"operations\", \"month\": \"2026-11\", \"departments\": []}");
    text = ctl_report_operations_text(doc, CTL_LANG_EN);
    assert_non_null(text);
    assert_contains(text, "\n\n(no departments)\n");
    free(text);
    json_object_put(doc);
}

static void test_format_of_path(void **state)
{
    assert_string_equal(ctl_report_format_of_path("report.html"), "html");
    assert_string_equal(ctl_report_format_of_path("/srv/reports/2026.HTM"), "html");
    assert_string_equal(ctl_report_format_of_path("assessment.csv"), "csv");
    assert_string_equal(ctl_report_format_of_path("a.b.Json"), "json");
    assert_null(ctl_report_format_of_path("report"));
    assert_null(ctl_report_format_of_path("report.pdf"));
    assert_null(ctl_report_format_of_path("report.html.bak"));
    /* A name that is only the extension, or a folder's: no file name to go by. */
    assert_null(ctl_report_format_of_path(".csv"));
    assert_null(ctl_report_format_of_path("out/.html"));
    assert_null(ctl_report_format_of_path(""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_assessment_en),    cmocka_unit_test(test_assessment_zh),
        cmocka_unit_test(test_assessment_empty), cmocka_unit_test(test_operations),
        cmocka_unit_test(test_format_of_path),   cmocka_unit_test(test_assessment_sorted_by_rank),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
