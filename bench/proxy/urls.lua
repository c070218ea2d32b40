-- wrk script for bench/proxy/run.ts: each request picks one of COUNT URLs
-- /o/SIZE/I uniformly at random (every one of them already in the cache),
-- and done() prints the run's figures as one JSON line for run.ts.
-- Usage: wrk -s urls.lua URL -- SIZE COUNT [SEED]

local size, count = "1024", 10000

function init(args)
  size = args[1] or size
  count = tonumber(args[2] or count)
  math.randomseed(tonumber(args[3] or 1))
end

function request()
  return wrk.format("GET", "/o/" .. size .. "/" .. math.random(0, count - 1))
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"durationUs":%d,"bytes":%d,"p50Us":%d,"p99Us":%d,' ..
    '"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}\n',
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(99),
    e.connect, e.read, e.write, e.status, e.timeout))
end
