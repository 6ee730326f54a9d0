-- wrk script of bench/web/run.py: one Authorization header per request, taken in turn from a
-- file of tokens (one per line; BENCH_TOKENS names it). A file of one token = repeated token.
-- With several wrk threads, thread i takes every n-th token starting at i, so no two threads
-- send the same token. Every variant (bare ones too) uses this script, so the load generator
-- does the same work for all of them.
--
-- done() prints one line "WRKJSON {...}" with the counts and latency percentiles (microseconds)
-- and how many times a thread went past the end of its tokens ("wraps").

local counter = 0
local threads = {}

function setup(thread)
   thread:set("tid", counter)
   counter = counter + 1
   table.insert(threads, thread)
end

function init(args)
   local nthreads = tonumber(os.getenv("BENCH_WRK_THREADS") or "1")
   requests_ = {}
   count = 0
   position = 0
   wraps = 0
   local i = 0
   for line in io.lines(os.getenv("BENCH_TOKENS")) do
      if line ~= "" then
         if i % nthreads == tid then
            count = count + 1
            requests_[count] = wrk.format("GET", wrk.path, {["Authorization"] = "Bearer " .. line})
         end
         i = i + 1
      end
   end
   if count == 0 then
      error("no tokens for thread " .. tid)
   end
end

function request()
   position = position + 1
   if position > count then
      position = 1
      wraps = wraps + 1
   end
   return requests_[position]
end

function done(summary, latency, requests)
   local wraps_total = 0
   local tokens_total = 0
   for _, thread in ipairs(threads) do
      wraps_total = wraps_total + (thread:get("wraps") or 0)
      tokens_total = tokens_total + (thread:get("count") or 0)
   end
   io.write(string.format(
      'WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,"status_errors":%d,' ..
      '"connect_errors":%d,"read_errors":%d,"write_errors":%d,"timeouts":%d,' ..
      '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"tokens":%d,"wraps":%d}\n',
      summary.requests, summary.duration, summary.bytes, summary.errors.status,
      summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
      tokens_total, wraps_total))
end
