-- wrk script for loadtest/http/run.sh.
--
-- Sends GET requests for the paths listed in the file named by $BENCH_PATHS
-- (one per line), in turn, each thread starting at a different line, with
-- `Authorization: Bearer $BENCH_API_KEY`. The requests are formatted once,
-- in init, so the generator spends its time on the wire, not in Lua.
--
-- At the end it prints one line the script parses:
--   WRK requests=… seconds=… rps=… p50_ms=… p90_ms=… p99_ms=… max_ms=…
--       non2xx=… socket_errors=…
-- (`non2xx` is wrk's count of responses with a status above 399.)

local threads = 0

function setup(thread)
  thread:set("thread_number", threads)
  threads = threads + 1
end

local prepared = {}
local next_index = 1

function init(args)
  local file = os.getenv("BENCH_PATHS")
  local key = os.getenv("BENCH_API_KEY")
  if not file or not key then
    error("set BENCH_PATHS and BENCH_API_KEY")
  end
  local headers = {
    ["Authorization"] = "Bearer " .. key,
    ["Accept"] = "application/json",
  }
  for path in io.lines(file) do
    if path ~= "" then
      prepared[#prepared + 1] = wrk.format("GET", path, headers)
    end
  end
  if #prepared == 0 then
    error("no paths in " .. file)
  end
  next_index = ((thread_number or 0) * 7919) % #prepared + 1
end

function request()
  local r = prepared[next_index]
  next_index = next_index % #prepared + 1
  return r
end

function done(summary, latency, requests)
  local e = summary.errors
  local seconds = summary.duration / 1e6
  io.write(string.format(
    "WRK requests=%d seconds=%.3f rps=%.1f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f non2xx=%d socket_errors=%d\n",
    summary.requests, seconds, summary.requests / seconds,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000,
    e.status, e.connect + e.read + e.write + e.timeout))
end
