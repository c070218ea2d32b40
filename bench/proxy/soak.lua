-- wrk script for bench/proxy/soak.ts: a mix of the soak origin's
-- endpoints (soak_origin.ts) at sizes 100 B to 2 MiB, a few hundred URLs
-- per size so the store (a small --limit) evicts all the time. done()
-- prints the run's figures and the responses by status as one JSON line.
-- Usage: wrk -s soak.lua URL -- [SEED] [IDS]

local ids = 300
local sizes = { 100, 1000, 4096, 16384, 65536, 262144, 1048576, 2097152 }
local size_weights = { 20, 20, 15, 15, 10, 8, 7, 5 }
local kinds = { "o", "v", "e", "s", "n", "slow", "trickle", "5xx" }
local kind_weights = { 55, 10, 8, 8, 5, 4, 2, 3 }
local langs = { "en", "fr", "de" }
local threads = {}
-- thread:get copies numbers, not tables: one global per status counted.
local watched = { 200, 206, 304, 400, 404, 500, 502, 503, 504 }
c_other = 0
for _, s in ipairs(watched) do _G["c" .. s] = 0 end

local function pick(values, weights)
  local total = 0
  for _, w in ipairs(weights) do total = total + w end
  local r = math.random() * total
  for i, w in ipairs(weights) do
    r = r - w
    if r <= 0 then return values[i] end
  end
  return values[#values]
end

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(tonumber(args[1] or 1) + os.time())
  ids = tonumber(args[2] or ids)
end

function request()
  local kind = pick(kinds, kind_weights)
  local size = pick(sizes, size_weights)
  local path = "/" .. kind .. "/" .. size .. "/" .. math.random(0, ids - 1)
  local headers = {}
  if kind == "v" then headers["Accept-Language"] = langs[math.random(1, 3)] end
  return wrk.format("GET", path, headers)
end

function response(status, headers, body)
  local k = "c" .. status
  if _G[k] then _G[k] = _G[k] + 1 else c_other = c_other + 1 end
end

function done(summary, latency, requests)
  local all = {}
  for _, t in ipairs(threads) do
    for _, s in ipairs(watched) do
      all[tostring(s)] = (all[tostring(s)] or 0) + t:get("c" .. s)
    end
    all.other = (all.other or 0) + t:get("c_other")
  end
  local parts = {}
  for k, v in pairs(all) do
    if v > 0 then table.insert(parts, string.format('"%s":%d', k, v)) end
  end
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"durationUs":%d,"bytes":%d,"p50Us":%d,"p99Us":%d,' ..
    '"maxUs":%d,"connect":%d,"read":%d,"write":%d,"status":%d,' ..
    '"timeout":%d,"byStatus":{%s}}\n',
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.status, e.timeout,
    table.concat(parts, ",")))
end
