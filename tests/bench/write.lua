-- SPDX-License-Identifier: Apache-2.0
-- wrk script: durable writes on the broker; every 2xx is one committed, fsync'ed SQLite
-- transaction with its audit record.
--
--   CB_BENCH_WRITE=systems   POST /v1/systems as the department, a new system per request;
--                            names are unique: run tag + wrk thread number + counter.
--   CB_BENCH_WRITE=opinions  POST /v1/requests/{id}/opinions as the reviewer on a submitted
--                            request (CB_BENCH_PATH = /v1/requests/{id}/opinions). Note the
--                            broker answers with the whole request, opinions included, so
--                            answers grow as the run goes on.
--
--   CB_BENCH_TOKEN: bearer token; CB_BENCH_TAG: distinguishes runs (warm-up, timed run) so
--   that names never repeat across them.
local mode = os.getenv("CB_BENCH_WRITE") or "systems"
local token = os.getenv("CB_BENCH_TOKEN")
local tag = os.getenv("CB_BENCH_TAG") or "run"
local path = os.getenv("CB_BENCH_PATH")
if not token then
   error("CB_BENCH_TOKEN must be set")
end
if mode == "systems" then
   path = "/v1/systems"
elseif mode ~= "opinions" or not path then
   error("CB_BENCH_WRITE must be systems, or opinions with CB_BENCH_PATH set")
end

local next_thread = 1

function setup(thread)
   thread:set("thread_no", next_thread)
   next_thread = next_thread + 1
end

local headers = {
   ["Authorization"] = "Bearer " .. token,
   ["Content-Type"] = "application/json",
}
local n = 0

function request()
   n = n + 1
   local body
   if mode == "systems" then
      body = string.format(
         '{"name":"bench-%s-t%d-%d","category":"other","description":"wrk write benchmark","protection_level":2}',
         tag, thread_no or 0, n)
   else
      body = string.format(
         '{"recommendation":"approve","comment":"bench %s t%d #%d"}', tag, thread_no or 0, n)
   end
   return wrk.format("POST", path, headers, body)
end
