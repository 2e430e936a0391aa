/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdint.h>

#include "br-sla.h"
#include "cm-db.h"

/**
 * br_report_sla_input:
 * What the broker recorded that the service-quality scorecard of [@m0, @t1) reads (a read
 * model: SELECT only, across instance_history, events, host_outages, request_history, jobs,
 * incidents and vulnerabilities; docs/service-quality.md says which rows make which indicator).
 * Returns: 0 and the input in @ret (br_sla_input_clear() it), or a negative errno with @err set.
 */
int br_report_sla_input(CmDb *db, int64_t m0, int64_t t1, BrSlaInput *ret, CmError *err);
