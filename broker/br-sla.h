/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "cm-error.h"

/*
 * The vendor's service quality (docs/service-quality.md): policies/service-quality.json, the
 * indicators computed from what the broker recorded, and the month's scorecard with the fee
 * deductions. Pure: no database, no clock. Money is integer fen, shares are integer basis
 * points (1/100 of a percent) and availability integer arithmetic on milliseconds, so that
 * another program can redo a scorecard to the fen.
 */

typedef enum {
    BR_SLA_AVAILABILITY,
    BR_SLA_TRIAL_LEAD_TIME,
    BR_SLA_ALLOCATION_LEAD_TIME,
    BR_SLA_CHANGE_LEAD_TIME,
    BR_SLA_INCIDENT_RESPONSE,
    BR_SLA_INCIDENT_RESOLUTION,
    BR_SLA_VULNERABILITY_FIX,
    BR_SLA_MAX,
} BrSlaIndicator;

/* Severities of incidents and vulnerabilities; lead times use the first limit only. */
#define BR_SLA_SEVERITIES 4

typedef struct {
    int64_t target_ppm;                  /* availability: parts per million */
    int64_t limit_ms[BR_SLA_SEVERITIES]; /* a case's time limit (critical, high, medium, low) */
    int64_t deduction_bp;                /* of the fee, per 0.1 % below target or late case */
    int64_t cap_bp;                      /* the indicator's cap in a month */
} BrSlaRule;

/* The vendor's duties: each met by a record (br-vendor-record.c) made in time. */
typedef enum {
    BR_SLA_DUTY_BULLETIN,     /* security_bulletin: the month's, by day due_day of the next */
    BR_SLA_DUTY_DRILL,        /* emergency_drill: one a calendar year, by the end of due_month */
    BR_SLA_DUTY_RESTORE_TEST, /* backup_restore_test: each backed-up system once a period */
    BR_SLA_DUTY_REPORT,       /* operations_report: the month's, by day due_day of the next */
    BR_SLA_DUTY_MAX,
} BrSlaDuty;

typedef struct {
    bool set;             /* in the policy; else listed as not measured */
    int due_day;          /* bulletin, report: 1..31 */
    int due_month;        /* drill: 1..12 */
    int period_months;    /* restore test: 1, 2, 3, 4, 6 or 12 */
    int64_t deduction_bp; /* of the fee, per missed duty (restore test: per system) */
    int64_t cap_bp;
} BrSlaDutyRule;

/** br_sla_duty_to_string: Returns: the duty's indicator name in the policy and the API. */
const char *br_sla_duty_to_string(BrSlaDuty d);

typedef struct {
    BrSlaRule rules[BR_SLA_MAX];
    BrSlaDutyRule duties[BR_SLA_DUTY_MAX];
    int64_t cap_bp; /* all deductions of a month together */
} BrSlaPolicy;

/** br_sla_indicator_to_string: Returns: the indicator's name in the policy and the API. */
const char *br_sla_indicator_to_string(BrSlaIndicator i);

/** br_sla_severity_from_string: Returns: 0 (critical) to 3 (low), or -1. */
int br_sla_severity_from_string(const char *s);

/**
 * br_sla_parse:
 * Reads the service-quality policy @doc (already schema-checked) into @p.
 * Returns: 0, or a negative errno with @err naming the field.
 */
int br_sla_parse(json_object *doc, BrSlaPolicy *p, CmError *err);

/* One row of an instance's history: from @at_ms it should run (its recorded state is running)
 * or not (a stop the department asked for, not made yet, or gone). */
typedef struct {
    int64_t at_ms;
    bool should_run;
    int64_t host_id; /* where it was placed (0: nowhere) */
} BrSlaState;

/* A stretch [from_ms, to_ms) the broker saw an instance down (a reconciler event), or lost
 * its connection to a host (host_id: a host outage). */
typedef struct {
    int64_t id;
    int64_t from_ms, to_ms;
    int64_t host_id;
} BrSlaSpan;

/**
 * br_sla_instance_ms:
 * How long the instance should have run within [@t0, @t1) by its history @h (by time; rows
 * before @t0 say what held at @t0), less the agreed maintenance windows @maint of the host it
 * was on at the time, and how much of that time lies in the union of its own @down spans and
 * the outages @host_down of its host.
 * Returns: the time it should have run, ms; its down part in @ret_down_ms.
 */
int64_t br_sla_instance_ms(const BrSlaState *h, size_t n, const BrSlaSpan *down, size_t n_down,
                           const BrSlaSpan *host_down, size_t n_host_down, const BrSlaSpan *maint,
                           size_t n_maint, int64_t t0, int64_t t1, int64_t *ret_down_ms);

/**
 * br_sla_availability_steps:
 * The started steps of 0.1 % that @up_ms of @should_ms falls below @target_ppm.
 * Returns: 0 when the target is met or there was no time to run.
 */
int64_t br_sla_availability_steps(int64_t target_ppm, int64_t up_ms, int64_t should_ms);

typedef enum { BR_SLA_CASE_MET, BR_SLA_CASE_LATE, BR_SLA_CASE_PENDING } BrSlaCaseResult;

/* A clock that starts and (end_ms >= 0) stops: a request made ready, an incident resolved. */
typedef struct {
    int64_t id;
    int severity; /* 0..3; lead times 0 */
    int64_t start_ms, end_ms;
} BrSlaCase;

/**
 * br_sla_case_judge:
 * A case is late when it ended after its limit, or has not ended and its limit passed before
 * @now_ms; pending when it has not ended and its limit has not passed.
 */
BrSlaCaseResult br_sla_case_judge(const BrSlaCase *c, int64_t limit_ms, int64_t now_ms);

/**
 * br_sla_deduction_fen:
 * @steps × @per_bp of @fee_fen, at most @cap_bp of it, rounded half up to the fen.
 * Returns: fen.
 */
int64_t br_sla_deduction_fen(int64_t fee_fen, int64_t steps, int64_t per_bp, int64_t cap_bp);

/* An instance as availability reads it. */
typedef struct {
    int64_t id;
    char *name;
    BrSlaState *h;
    size_t n_h;
    BrSlaSpan *down;
    size_t n_down;
} BrSlaInstance;

/* A record of a duty: when it says the thing was done, when the broker was told. */
typedef struct {
    int64_t id;
    int64_t at_ms;       /* published_at, held_at, tested_at, delivered_at */
    int64_t recorded_ms; /* created_at */
    int64_t system_id;   /* restore tests */
    bool ok;             /* restore tests: result ok */
} BrSlaRecord;

/* A system with backups: the first one's taken_at. */
typedef struct {
    int64_t id;
    int64_t since_ms;
} BrSlaBackedUp;

/* What the broker recorded in a month, as the scorecard reads it. */
typedef struct {
    BrSlaInstance *instances;
    size_t n_instances;
    BrSlaSpan *host_down; /* the hosts' outages */
    size_t n_host_down;
    BrSlaSpan *maint; /* the hosts' agreed maintenance windows */
    size_t n_maint;
    BrSlaCase *cases[BR_SLA_MAX]; /* every indicator but availability */
    size_t n_cases[BR_SLA_MAX];
    /* The duties' records: bulletins and reports for the month, drills and restore tests
     * held in its calendar year; and the systems with backups. */
    BrSlaRecord *records[BR_SLA_DUTY_MAX];
    size_t n_records[BR_SLA_DUTY_MAX];
    BrSlaBackedUp *backed_up;
    size_t n_backed_up;
    int64_t now_ms; /* a duty's deadline may lie past the month: judged against now */
} BrSlaInput;

void br_sla_input_clear(BrSlaInput *in);

/* A duty's judgement over one period. */
typedef struct {
    int64_t p0, p1; /* the period the records are of */
    int64_t due_ms; /* recorded before this */
    int64_t judge0; /* the month [judge0, judge1) whose scorecard deducts a miss */
    int64_t judge1;
    int64_t missed;  /* systems (restore tests) or 1 */
    int64_t pending; /* not yet done, deadline not yet passed */
    int64_t met;
    bool data; /* something was due (restore tests: some system had a backup) */
} BrSlaDutyResult;

/**
 * br_sla_duty_judge:
 * Judges duty @d by rule @rule for the scorecard month [@m0, @m1) at @now_ms from @in's
 * records (docs/service-quality.md: the duties).
 * Returns: the judgement.
 */
BrSlaDutyResult br_sla_duty_judge(BrSlaDuty d, const BrSlaDutyRule *rule, const BrSlaInput *in,
                                  int64_t m0, int64_t m1, int64_t now_ms);

/**
 * br_sla_scorecard:
 * The scorecard of the month [@m0, @m1) up to @t1 (@m1, or now for the month under way): each
 * indicator's target, measured value, evidence, result and deduction, and the month's fee
 * @fee_fen before and after the deductions.
 * Returns: 0 and the document in @ret, or -ENOMEM.
 */
int br_sla_scorecard(const BrSlaPolicy *p, const BrSlaInput *in, int64_t m0, int64_t m1, int64_t t1,
                     int64_t fee_fen, json_object **ret);

/**
 * br_sla_attach_explanations:
 * Gives each scored indicator of the scorecard @doc an "explanations" array: the entries of
 * @list (the vendor's explanations of the month, br-sla-explanation.c) that name it.
 */
void br_sla_attach_explanations(json_object *doc, json_object *list);
