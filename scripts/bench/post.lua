-- wrk script of scripts/bench-server.sh: POST the body in $BENCH_BODY_FILE
-- with the header in $BENCH_HEADER ("Name: value", optional), and print one
-- line of key=value figures (latencies in microseconds) for the script.

local function read_file(path)
  local f = assert(io.open(path, "rb"), "cannot open " .. tostring(path))
  local data = f:read("*a")
  f:close()
  return data
end

wrk.method = "POST"
wrk.body = read_file(os.getenv("BENCH_BODY_FILE"))
wrk.headers["Content-Type"] = "application/json"
local header = os.getenv("BENCH_HEADER")
if header and header ~= "" then
  local name, value = header:match("^([^:]+):%s*(.*)$")
  wrk.headers[name] = value
end

function done(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d rate=%.0f p50_us=%d p90_us=%d p99_us=%d max_us=%d " ..
    "non2xx=%d connect_errors=%d read_errors=%d write_errors=%d timeouts=%d\n",
    summary.requests, summary.requests / seconds,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    e.status, e.connect, e.read, e.write, e.timeout))
end
