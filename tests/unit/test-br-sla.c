/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The arithmetic of the vendor's scorecard (br-sla.c) with figures worked out by hand
 * (docs/service-quality.md): an instance's time it should have run, less the department's own
 * stop, and its outages (two events of one outage counted once, an event while it was stopped
 * not at all); the started 0.1 % steps below target; a case met, late or pending at its limit
 * to the millisecond; a deduction rounded half up and capped per indicator and per month; the
 * policy read from its document (hours and days) and refused by its schema without an
 * indicator.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "br-host-outage.h"
#include "br-report-sla.h"
#include "br-schemas.h"
#include "br-sla.h"
#include "br-tx.h"
#include "cm-json.h"
#include "cbt-store.h"
#include "cm-time.h"

#define H INT64_C(3600000)

static const char *policy_text =
    "{\"cap_percent\": 12, \"indicators\": {"
    " \"availability\": {\"target_percent\": 99.9, \"deduction_percent\": 1, \"cap_percent\": 10},"
    " \"trial_lead_time\": {\"limit_hours\": 24, \"deduction_percent\": 0.5, \"cap_percent\": 3},"
    " \"allocation_lead_time\": {\"limit_hours\": 8, \"deduction_percent\": 0.5,"
    "  \"cap_percent\": 3},"
    " \"change_lead_time\": {\"limit_hours\": 8, \"deduction_percent\": 0.5, \"cap_percent\": 3},"
    " \"incident_response\": {\"limit_hours\": {\"critical\": 0.5, \"high\": 1, \"medium\": 4,"
    "  \"low\": 24}, \"deduction_percent\": 1, \"cap_percent\": 5},"
    " \"incident_resolution\": {\"limit_hours\": {\"critical\": 4, \"high\": 24, \"medium\": 72,"
    "  \"low\": 168}, \"deduction_percent\": 1.5, \"cap_percent\": 5},"
    " \"vulnerability_fix\": {\"limit_days\": {\"critical\": 7, \"high\": 30, \"medium\": 90,"
    "  \"low\": 180}, \"deduction_percent\": 1, \"cap_percent\": 5}}}";

static int64_t t(const char *iso)
{
    int64_t ms = 0;
    assert_int_equal(cm_time_parse_iso(iso, &ms), 0);
    return ms;
}

static BrSlaPolicy policy(void)
{
    BrSlaPolicy p;
    CmError err = {0};
    json_object *doc = json_tokener_parse(policy_text);
    assert_non_null(doc);
    assert_int_equal(br_schema_check("policy-service-quality", doc, &err), 0);
    assert_int_equal(br_sla_parse(doc, &p, &err), 0);
    json_object_put(doc);
    return p;
}

static void test_parse(void **state)
{
    (void)state;
    BrSlaPolicy p = policy();
    assert_int_equal(p.cap_bp, 1200);
    assert_int_equal(p.rules[BR_SLA_AVAILABILITY].target_ppm, 999000);
    assert_int_equal(p.rules[BR_SLA_AVAILABILITY].deduction_bp, 100);
    assert_int_equal(p.rules[BR_SLA_TRIAL_LEAD_TIME].limit_ms[0], 24 * H);
    assert_int_equal(p.rules[BR_SLA_TRIAL_LEAD_TIME].deduction_bp, 50);
    assert_int_equal(p.rules[BR_SLA_INCIDENT_RESPONSE].limit_ms[0], H / 2);
    assert_int_equal(p.rules[BR_SLA_INCIDENT_RESOLUTION].limit_ms[3], 168 * H);
    assert_int_equal(p.rules[BR_SLA_INCIDENT_RESOLUTION].deduction_bp, 150);
    assert_int_equal(p.rules[BR_SLA_VULNERABILITY_FIX].limit_ms[1], 30 * 24 * H);

    /* Without an indicator the schema refuses it, naming the place. */
    CmError err = {0};
    json_object *doc = json_tokener_parse(policy_text);
    json_object_object_del(json_object_object_get(doc, "indicators"), "change_lead_time");
    assert_true(br_schema_check("policy-service-quality", doc, &err) < 0);
    assert_string_equal(err.field, "/indicators/change_lead_time");
    json_object_put(doc);
}

/* December 2026 (744 h). The instance runs from 11-30, the department's change stops it on
 * 12-10 from 00:00 to 01:00 (shutoff in its history: not counted), it runs to the month's end:
 * 743 h it should have run. Outages: 12-05 10:00-12:00 and 11:00-12:30 (one outage, 2.5 h) and
 * an event 12-10 00:00-00:30 while it was stopped (nothing). 740.5 / 743 = 99.6635 %: below
 * 99.9 % by 0.2365 %, 3 started steps of 0.1 %. */
static void test_availability(void **state)
{
    (void)state;
    int64_t m0 = t("2026-12-01T00:00:00Z"), m1 = t("2027-01-01T00:00:00Z"), down = -1;
    BrSlaState h[] = {
        {t("2026-11-28T00:00:00Z"), false},
        {t("2026-11-30T00:00:00Z"), true},
        {t("2026-12-10T00:00:00Z"), false},
        {t("2026-12-10T01:00:00Z"), true},
    };
    BrSlaSpan d[] = {
        {1, t("2026-12-05T10:00:00Z"), t("2026-12-05T12:00:00Z")},
        {3, t("2026-12-10T00:00:00Z"), t("2026-12-10T00:30:00Z")},
        {2, t("2026-12-05T11:00:00Z"), t("2026-12-05T12:30:00Z")},
    };
    int64_t should = br_sla_instance_ms(h, 4, d, 3, NULL, 0, NULL, 0, m0, m1, &down);
    assert_int_equal(should, 743 * H);
    assert_int_equal(down, 5 * H / 2);
    assert_int_equal(br_sla_availability_steps(999000, should - down, should), 3);

    /* At the target exactly: met; a millisecond less: one step. */
    assert_int_equal(br_sla_availability_steps(999000, 999 * H, 1000 * H), 0);
    assert_int_equal(br_sla_availability_steps(999000, 999 * H - 1, 1000 * H), 1);
    assert_int_equal(br_sla_availability_steps(999000, 0, 0), 0);

    /* The month under way: up to the 10th 00:30, 9 days from 12-01 (216 h), 2.5 h down. */
    should = br_sla_instance_ms(h, 4, d, 3, NULL, 0, NULL, 0, m0, t("2026-12-10T00:30:00Z"), &down);
    assert_int_equal(should, 216 * H);
    assert_int_equal(down, 5 * H / 2);

    /* Its host 3 lost on the 5th 11:30-14:00 (overlapping the events: 10:00-14:00 is 4 h) and on
     * the 10th 00:15-00:45 (while stopped: nothing); host 4, where it was not, all day on the
     * 20th (nothing). Never stopped and moved to host 4 on the 20th 12:00: host 3's 2.5 h and
     * 0.5 h and host 4's afternoon, 12 h, are 15 h. */
    BrSlaState h3[] = {
        {t("2026-11-30T00:00:00Z"), true, 3},
        {t("2026-12-10T00:00:00Z"), false, 3},
        {t("2026-12-10T01:00:00Z"), true, 3},
    };
    BrSlaSpan hd[] = {
        {7, t("2026-12-05T11:30:00Z"), t("2026-12-05T14:00:00Z"), 3},
        {8, t("2026-12-10T00:15:00Z"), t("2026-12-10T00:45:00Z"), 3},
        {9, t("2026-12-20T00:00:00Z"), t("2026-12-21T00:00:00Z"), 4},
    };
    should = br_sla_instance_ms(h3, 3, d, 3, hd, 3, NULL, 0, m0, m1, &down);
    assert_int_equal(should, 743 * H);
    assert_int_equal(down, 4 * H);
    BrSlaState h4[] = {
        {t("2026-11-30T00:00:00Z"), true, 3},
        {t("2026-12-20T12:00:00Z"), true, 4},
    };
    should = br_sla_instance_ms(h4, 2, NULL, 0, hd, 3, NULL, 0, m0, m1, &down);
    assert_int_equal(should, 744 * H);
    assert_int_equal(down, 15 * H);

    /* Agreed maintenance of host 3 on the 5th 11:00-13:00 and 12:30-15:00 (one window of 4 h;
     * the outage 11:30-14:00 inside it), and of host 4 (not its host): 743 - 4 h it should have
     * run, down 10:00-11:00 only (1 h). */
    BrSlaSpan mw[] = {
        {1, t("2026-12-05T11:00:00Z"), t("2026-12-05T13:00:00Z"), 3},
        {2, t("2026-12-05T12:30:00Z"), t("2026-12-05T15:00:00Z"), 3},
        {3, t("2026-12-01T00:00:00Z"), t("2026-12-31T00:00:00Z"), 4},
    };
    should = br_sla_instance_ms(h3, 3, d, 3, hd, 3, mw, 3, m0, m1, &down);
    assert_int_equal(should, 739 * H);
    assert_int_equal(down, 1 * H);

    /* Fee 300,000.00 yuan: 3 steps of 1 % = 900,000.00 yuan... in fen. */
    assert_int_equal(br_sla_deduction_fen(30000000, 3, 100, 1000), 900000);
}

static void test_cases(void **state)
{
    (void)state;
    BrSlaCase c = {1, 0, 0, 24 * H};
    assert_int_equal(br_sla_case_judge(&c, 24 * H, 100 * H), BR_SLA_CASE_MET);
    c.end_ms = 24 * H + 1;
    assert_int_equal(br_sla_case_judge(&c, 24 * H, 100 * H), BR_SLA_CASE_LATE);
    c.end_ms = -1;
    assert_int_equal(br_sla_case_judge(&c, 24 * H, 24 * H), BR_SLA_CASE_PENDING);
    assert_int_equal(br_sla_case_judge(&c, 24 * H, 24 * H + 1), BR_SLA_CASE_LATE);
}

static void test_deduction(void **state)
{
    (void)state;
    /* 333 fen × 1.5 % = 4.995 fen: half up, 5. */
    assert_int_equal(br_sla_deduction_fen(333, 1, 150, 500), 5);
    /* 20 late × 1 % capped at 10 %. */
    assert_int_equal(br_sla_deduction_fen(100000, 20, 100, 1000), 10000);
    assert_int_equal(br_sla_deduction_fen(100000, 0, 100, 1000), 0);
    assert_int_equal(br_sla_deduction_fen(0, 5, 100, 1000), 0);
}

static json_object *indicator(json_object *doc, const char *id)
{
    json_object *a = json_object_object_get(doc, "indicators");
    for (size_t i = 0; i < json_object_array_length(a); i++)
        if (strcmp(cm_json_get_str(json_object_array_get_idx(a, i), "id", ""), id) == 0)
            return json_object_array_get_idx(a, i);
    fail_msg("no indicator %s", id);
    return NULL;
}

/* The scorecard of December 2026 with a fee of 100,000.00 yuan (10,000,000 fen):
 *  availability as test_availability: 3 steps × 1 % = 3 % = 300,000 fen;
 *  trial lead time: request 7 in 23 h (met), request 8 in 30 h (late): 0.5 % = 50,000 fen;
 *  incident resolution: incident 4 critical in 5 h (late, limit 4 h), incident 5 low in 5 h
 *  (met), incident 6 critical open 1 h before the month's end (pending): 1.5 % = 150,000 fen;
 *  incident response: incident 4 recorded 20 min after it occurred (met), 5 and 6 at once;
 *  vulnerability 9 high fixed in 31 days (late): 1 %, 100,000 fen.
 * Together 6 % = 600,000 fen, under the month's cap of 12 %; the fee after 9,400,000 fen.
 * The allocation and change lead times have no case: no_data, nothing deducted. */
static void test_scorecard(void **state)
{
    (void)state;
    BrSlaPolicy p = policy();
    int64_t m0 = t("2026-12-01T00:00:00Z"), m1 = t("2027-01-01T00:00:00Z");
    int64_t i0 = t("2026-12-03T00:00:00Z");
    BrSlaState h[] = {
        {t("2026-11-30T00:00:00Z"), true},
        {t("2026-12-10T00:00:00Z"), false},
        {t("2026-12-10T01:00:00Z"), true},
    };
    BrSlaSpan d[] = {
        {1, t("2026-12-05T10:00:00Z"), t("2026-12-05T12:00:00Z")},
        {2, t("2026-12-05T11:00:00Z"), t("2026-12-05T12:30:00Z")},
    };
    BrSlaInstance inst = {
        .id = 11, .name = (char *)"cb-1-1", .h = h, .n_h = 3, .down = d, .n_down = 2};
    BrSlaCase trial[] = {{7, 0, i0, i0 + 23 * H}, {8, 0, i0, i0 + 30 * H}};
    BrSlaCase resp[] = {{4, 0, i0, i0 + H / 3}, {5, 3, i0, i0}, {6, 0, m1 - H, m1 - H}};
    BrSlaCase reso[] = {{4, 0, i0, i0 + 5 * H}, {5, 3, i0, i0 + 5 * H}, {6, 0, m1 - H, -1}};
    BrSlaCase vuln[] = {{9, 1, i0, i0 + 31 * 24 * H}};
    BrSlaInput in = {.instances = &inst, .n_instances = 1};
    json_object *doc = NULL, *x;

    in.cases[BR_SLA_TRIAL_LEAD_TIME] = trial;
    in.n_cases[BR_SLA_TRIAL_LEAD_TIME] = 2;
    in.cases[BR_SLA_INCIDENT_RESPONSE] = resp;
    in.n_cases[BR_SLA_INCIDENT_RESPONSE] = 3;
    in.cases[BR_SLA_INCIDENT_RESOLUTION] = reso;
    in.n_cases[BR_SLA_INCIDENT_RESOLUTION] = 3;
    in.cases[BR_SLA_VULNERABILITY_FIX] = vuln;
    in.n_cases[BR_SLA_VULNERABILITY_FIX] = 1;
    assert_int_equal(br_sla_scorecard(&p, &in, m0, m1, m1, 10000000, &doc), 0);

    x = indicator(doc, "availability");
    assert_string_equal(cm_json_get_str(x, "status", ""), "missed");
    assert_int_equal(cm_json_get_int(cm_json_get(x, "measured"), "should_run_ms", 0), 743 * H);
    assert_int_equal(cm_json_get_int(cm_json_get(x, "measured"), "down_ms", 0), 5 * H / 2);
    assert_string_equal(
        json_object_to_json_string(cm_json_get(cm_json_get(x, "measured"), "percent")), "99.6635");
    assert_int_equal(cm_json_get_int(x, "steps_missed", 0), 3);
    assert_int_equal(cm_json_get_int(x, "deduction_fen", 0), 300000);

    x = indicator(doc, "trial_lead_time");
    assert_string_equal(cm_json_get_str(x, "status", ""), "missed");
    assert_int_equal(cm_json_get_int(cm_json_get(x, "measured"), "cases", 0), 2);
    assert_int_equal(cm_json_get_int(cm_json_get(x, "measured"), "late", 0), 1);
    assert_int_equal(cm_json_get_int(x, "deduction_fen", 0), 50000);

    x = indicator(doc, "incident_resolution");
    assert_int_equal(cm_json_get_int(cm_json_get(x, "measured"), "cases", 0), 2);
    assert_int_equal(cm_json_get_int(cm_json_get(x, "measured"), "late", 0), 1);
    assert_int_equal(cm_json_get_int(cm_json_get(x, "measured"), "pending", 0), 1);
    assert_int_equal(cm_json_get_int(x, "deduction_fen", 0), 150000);

    x = indicator(doc, "incident_response");
    assert_string_equal(cm_json_get_str(x, "status", ""), "met");
    assert_int_equal(cm_json_get_int(x, "deduction_fen", -1), 0);

    x = indicator(doc, "vulnerability_fix");
    assert_int_equal(cm_json_get_int(x, "deduction_fen", 0), 100000);

    x = indicator(doc, "allocation_lead_time");
    assert_string_equal(cm_json_get_str(x, "status", ""), "no_data");
    assert_int_equal(cm_json_get_int(x, "deduction_fen", -1), 0);
    x = indicator(doc, "security_bulletin");
    assert_string_equal(cm_json_get_str(x, "status", ""), "not_measured");
    assert_null(cm_json_get(x, "deduction_fen"));

    assert_int_equal(cm_json_get_int(doc, "deduction_fen", 0), 600000);
    assert_int_equal(cm_json_get_int(doc, "fee_after_fen", 0), 9400000);
    assert_true(cm_json_get_bool(doc, "complete", false));

    /* The vendor's explanations go beside the indicator they name, and nowhere else. */
    json_object *list =
        json_tokener_parse("[{\"id\": 1, \"indicator\": \"trial_lead_time\", \"text\": \"a\"},"
                           " {\"id\": 2, \"indicator\": \"availability\", \"text\": \"b\"}]");
    br_sla_attach_explanations(doc, list);
    json_object_put(list);
    x = json_object_object_get(indicator(doc, "trial_lead_time"), "explanations");
    assert_int_equal(json_object_array_length(x), 1);
    assert_string_equal(cm_json_get_str(json_object_array_get_idx(x, 0), "text", ""), "a");
    x = json_object_object_get(indicator(doc, "incident_response"), "explanations");
    assert_int_equal(json_object_array_length(x), 0);
    assert_null(json_object_object_get(indicator(doc, "security_bulletin"), "explanations"));
    json_object_put(doc);

    /* The month's cap: at 5 % the 6 % is cut to 500,000 fen. */
    p.cap_bp = 500;
    assert_int_equal(br_sla_scorecard(&p, &in, m0, m1, m1, 10000000, &doc), 0);
    assert_int_equal(cm_json_get_int(doc, "deductions_fen", 0), 600000);
    assert_int_equal(cm_json_get_int(doc, "deduction_fen", 0), 500000);
    assert_int_equal(cm_json_get_int(doc, "fee_after_fen", 0), 9500000);
    json_object_put(doc);
}

/* ---- on a store (SQLite; PostgreSQL when CB_TEST_PG_URL is set) ---- */

static int store_setup(void **state)
{
    bool pg = *(const bool *)*state;
    CbtStore *s = calloc(1, sizeof(*s));
    int r;

    *state = s;
    r = cbt_store_open(s, pg, "sla");
    if (r <= 0)
        return r < 0 ? -1 : 0;
    /* An instance running on host 1 from November 30; an event on December 5, 10:00-12:00. */
    return cbt_store_exec(
        s, "INSERT INTO allocations(department_id, system_id, request_id, state, purpose,"
           " created_at, updated_at) VALUES (1, 1, 1, 'active', 'production', 't', 't');"
           "INSERT INTO instances(allocation_id, idx, name, uuid, host_id, vcpus, memory_mib,"
           " disk_gib, max_vcpus, max_memory_mib, image, volume, state, created_at, updated_at)"
           " VALUES (1, 0, 'cb-1-0', 'u-1', 1, 2, 2048, 10, 2, 2048, 'debian-12', 'v', 'running',"
           " '2026-11-30T00:00:00.000Z', '2026-11-30T00:00:00.000Z');"
           "INSERT INTO instance_history(instance_id, at, state, vcpus, memory_mib, disk_gib,"
           " host_id) VALUES (1, '2026-11-30T00:00:00.000Z', 'running', 2, 2048, 10, 1);"
           "INSERT INTO events(kind, severity, host_id, instance_id, message, first_seen,"
           " last_seen, resolved_at) VALUES ('instance_state', 'warning', 1, 1, 'stopped',"
           " '2026-12-05T10:00:00.000Z', '2026-12-05T12:00:00.000Z',"
           " '2026-12-05T12:00:00.000Z');");
}

static int store_teardown(void **state)
{
    CbtStore *s = *state;
    cbt_store_close(s);
    free(s);
    return 0;
}

typedef struct {
    int64_t host;
    const char *at;
    bool end;
} OutageWrite;

static int outage_tx(BrTx *tx, void *ctx)
{
    OutageWrite *w = ctx;
    return w->end ? br_host_outage_end(tx->db, w->host, w->at, tx->err)
                  : br_host_outage_begin(tx->db, w->host, w->at, tx->err);
}

/* Host 1 lost from 11:30 to 14:00 on the 5th (a second loss while open is the same outage),
 * host 2 lost on the 20th and not back: the instance (on host 1) was down 10:00-14:00, 4 h. */
/* The vendor's duties (docs/service-quality.md "The vendor's duties"), by hand. */
static void test_duties(void **state)
{
    (void)state;
    BrSlaDutyRule bulletin = {.set = true, .due_day = 10, .deduction_bp = 100, .cap_bp = 100};
    BrSlaDutyRule drill = {.set = true, .due_month = 12, .deduction_bp = 200, .cap_bp = 200};
    BrSlaDutyRule restore = {.set = true, .period_months = 3, .deduction_bp = 50, .cap_bp = 300};
    BrSlaRecord rec = {.id = 7, .at_ms = t("2026-03-02T00:00:00Z")};
    BrSlaBackedUp sys[] = {{.id = 1, .since_ms = t("2025-12-01T00:00:00Z")},
                           {.id = 2, .since_ms = t("2026-02-01T00:00:00Z")}};
    BrSlaInput in = {0};
    int64_t feb = t("2026-02-01T00:00:00Z"), mar = t("2026-03-01T00:00:00Z");
    BrSlaDutyResult r;

    /* February's bulletin: due by the end of March 10th. */
    in.records[BR_SLA_DUTY_BULLETIN] = &rec;
    in.n_records[BR_SLA_DUTY_BULLETIN] = 1;
    rec.recorded_ms = t("2026-03-10T23:59:59.999Z");
    r = br_sla_duty_judge(BR_SLA_DUTY_BULLETIN, &bulletin, &in, feb, mar,
                          t("2026-04-01T00:00:00Z"));
    assert_int_equal(r.due_ms, t("2026-03-11T00:00:00Z"));
    assert_true(r.met == 1 && r.missed == 0 && r.pending == 0 && r.judge0 == feb);
    rec.recorded_ms = t("2026-03-11T00:00:00Z"); /* a millisecond late */
    r = br_sla_duty_judge(BR_SLA_DUTY_BULLETIN, &bulletin, &in, feb, mar,
                          t("2026-04-01T00:00:00Z"));
    assert_true(r.met == 0 && r.missed == 1);
    in.n_records[BR_SLA_DUTY_BULLETIN] = 0; /* none yet, before the deadline: pending */
    r = br_sla_duty_judge(BR_SLA_DUTY_BULLETIN, &bulletin, &in, feb, mar,
                          t("2026-03-10T12:00:00Z"));
    assert_true(r.pending == 1 && r.missed == 0);
    /* Day 31 of a 28-day February: its last day. */
    bulletin.due_day = 31;
    r = br_sla_duty_judge(BR_SLA_DUTY_BULLETIN, &bulletin, &in, t("2026-01-01T00:00:00Z"), feb,
                          t("2026-04-01T00:00:00Z"));
    assert_int_equal(r.due_ms, mar);

    /* The drill of 2026: judged in December; in June none yet is pending, judged elsewhere. */
    r = br_sla_duty_judge(BR_SLA_DUTY_DRILL, &drill, &in, t("2026-06-01T00:00:00Z"),
                          t("2026-07-01T00:00:00Z"), t("2026-06-15T00:00:00Z"));
    assert_true(r.pending == 1 && r.judge0 == t("2026-12-01T00:00:00Z"));
    assert_int_equal(r.due_ms, t("2027-01-01T00:00:00Z"));
    rec = (BrSlaRecord){
        .id = 8, .at_ms = t("2026-06-02T00:00:00Z"), .recorded_ms = t("2026-06-03T00:00:00Z")};
    in.records[BR_SLA_DUTY_DRILL] = &rec;
    in.n_records[BR_SLA_DUTY_DRILL] = 1;
    r = br_sla_duty_judge(BR_SLA_DUTY_DRILL, &drill, &in, t("2026-12-01T00:00:00Z"),
                          t("2027-01-01T00:00:00Z"), t("2027-02-01T00:00:00Z"));
    assert_true(r.met == 1 && r.missed == 0);

    /* Restore tests, quarterly: the first quarter is judged in March; system 1 was backed up
     * before it began, system 2 during it (nothing due). */
    in.backed_up = sys;
    in.n_backed_up = 2;
    r = br_sla_duty_judge(BR_SLA_DUTY_RESTORE_TEST, &restore, &in, feb, mar,
                          t("2026-04-02T00:00:00Z"));
    assert_true(r.p0 == t("2026-01-01T00:00:00Z") && r.due_ms == t("2026-04-01T00:00:00Z"));
    assert_true(r.data && r.missed == 1 && r.met == 0 && r.judge0 == mar);
    rec = (BrSlaRecord){.id = 9,
                        .at_ms = t("2026-02-10T00:00:00Z"),
                        .recorded_ms = t("2026-02-10T01:00:00Z"),
                        .system_id = 1,
                        .ok = false};
    in.records[BR_SLA_DUTY_RESTORE_TEST] = &rec;
    in.n_records[BR_SLA_DUTY_RESTORE_TEST] = 1;
    r = br_sla_duty_judge(BR_SLA_DUTY_RESTORE_TEST, &restore, &in, feb, mar,
                          t("2026-02-11T00:00:00Z"));
    assert_true(r.pending == 1 && r.met == 0); /* a failed restore meets nothing */
    rec.ok = true;
    r = br_sla_duty_judge(BR_SLA_DUTY_RESTORE_TEST, &restore, &in, feb, mar,
                          t("2026-02-11T00:00:00Z"));
    assert_true(r.met == 1 && r.pending == 0);
    in.n_backed_up = 0;
    r = br_sla_duty_judge(BR_SLA_DUTY_RESTORE_TEST, &restore, &in, feb, mar,
                          t("2026-02-11T00:00:00Z"));
    assert_false(r.data);
}

static void test_host_outages_on_store(void **state)
{
    CbtStore *s = *state;
    OutageWrite ws[] = {
        {1, "2026-12-05T11:30:00.000Z", false}, {1, "2026-12-05T11:40:00.000Z", false},
        {1, "2026-12-05T14:00:00.000Z", true},  {1, "2026-12-05T15:00:00.000Z", true},
        {2, "2026-12-20T00:00:00.000Z", false},
    };
    int64_t m0 = t("2026-12-01T00:00:00Z"), m1 = t("2027-01-01T00:00:00Z"), down = -1;
    CmError err = {0};
    BrSlaInput in = {0};

    if (!s->store)
        skip();
    for (size_t i = 0; i < sizeof(ws) / sizeof(ws[0]); i++)
        assert_int_equal(br_tx_run(s->store, "test.outage", NULL, outage_tx, &ws[i], &err), 0);
    assert_int_equal(cbt_store_int(s, "SELECT count(*) FROM host_outages", 0), 2);
    assert_int_equal(cbt_store_int(s, "SELECT count(*) FROM host_outages WHERE back_at IS NULL", 0),
                     1);

    CmDb *db = br_store_db(s->store, &err);
    assert_non_null(db);
    assert_int_equal(br_report_sla_input(db, m0, m1, &in, &err), 0);
    assert_int_equal(in.n_instances, 1);
    assert_int_equal(in.instances[0].n_h, 1);
    assert_int_equal(in.instances[0].h[0].host_id, 1);
    assert_int_equal(in.instances[0].n_down, 1);
    assert_int_equal(in.n_host_down, 2);
    assert_int_equal(in.host_down[0].host_id, 1);
    assert_int_equal(in.host_down[0].to_ms, t("2026-12-05T14:00:00Z"));
    assert_int_equal(in.host_down[1].to_ms, m1); /* open: to the period's end */
    const BrSlaInstance *x = &in.instances[0];
    assert_int_equal(br_sla_instance_ms(x->h, x->n_h, x->down, x->n_down, in.host_down,
                                        in.n_host_down, NULL, 0, m0, m1, &down),
                     744 * H);
    assert_int_equal(down, 4 * H);
    br_sla_input_clear(&in);
}

static const bool SQLITE = false, POSTGRESQL = true;

int main(void)
{
    CmError err = {0};
    if (br_schemas_init(&err) < 0) {
        fprintf(stderr, "schemas: %s\n", err.message);
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),     cmocka_unit_test(test_availability),
        cmocka_unit_test(test_cases),     cmocka_unit_test(test_deduction),
        cmocka_unit_test(test_scorecard), cmocka_unit_test(test_duties),
    };
    const struct CMUnitTest store_tests[] = {
        cmocka_unit_test_prestate_setup_teardown(test_host_outages_on_store, store_setup,
                                                 store_teardown, (void *)&SQLITE),
        cmocka_unit_test_prestate_setup_teardown(test_host_outages_on_store, store_setup,
                                                 store_teardown, (void *)&POSTGRESQL),
    };
    int r = cmocka_run_group_tests(tests, NULL, NULL);
    return r ? r : cmocka_run_group_tests(store_tests, NULL, NULL);
}
