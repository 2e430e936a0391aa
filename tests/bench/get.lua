-- SPDX-License-Identifier: Apache-2.0
-- wrk script: GET the request document as the department that owns it.
-- CB_BENCH_TOKEN: the department's bearer token; CB_BENCH_PATH: /v1/requests/{id}.
local token = os.getenv("CB_BENCH_TOKEN")
local path = os.getenv("CB_BENCH_PATH")
if not token or not path then
   error("CB_BENCH_TOKEN and CB_BENCH_PATH must be set")
end

wrk.method = "GET"
wrk.path = path
wrk.headers["Authorization"] = "Bearer " .. token
wrk.headers["Accept"] = "application/json"
