#!/usr/bin/env bash
# The recall-server benchmark (issue 6, "Benchmark"): one command that
#
#  1. builds the release `recall` binary and the `hello` and `load` examples;
#  2. installs wrk when missing (Debian's package);
#  3. starts `recall serve` on the embedded store (temporary data directory,
#     fixed secrets, free loopback port) several times, measuring start to
#     ready (spawn until `GET /ready` answers 200) and the idle RSS;
#  4. seeds a caller through the signed post-call webhook, so that greetings
#     and searches hit real memories;
#  5. measures client-data and search-data with wrk at fixed concurrency, and
#     the hello-world actix-web example as the ceiling, in the same run; then
#     the p99 of each at half of its maximum rate (open loop, `load rate`);
#  6. measures the durable acknowledgement of new, signed post-call
#     transcription events (`load post-call`), then ingest end to end: a
#     burst of events posted, until the worker has turned every one into
#     memories (embedded, indexed) and none is pending;
#  7. prints a summary table and stops everything it started.
#
# Loopback only; every load is bounded in count and time.
#
# Settings (environment): BENCH_SECONDS (10) per wrk run, BENCH_THREADS (2)
# and BENCH_CONNECTIONS (16) of wrk, BENCH_STARTS (5) timed starts,
# BENCH_POST_CALLS (500) sequential post-call events, BENCH_SKIP_BUILD=1 to
# reuse the binaries, BENCH_RECALL=PATH to measure another recall binary
# against the same ceiling, BENCH_LOG_VARIANT=0 to skip the extra client-data run
# with RECALL_LOG=warn, BENCH_STORE=postgres to run every server on
# PostgreSQL (BENCH_DATABASE_URL, default DATABASE_URL or the local server;
# each server gets a schema of its own, dropped at the end), and with it
# BENCH_REPLICAS=2 to compare two replicas on one schema with one.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
DURATION=${BENCH_SECONDS:-10}
THREADS=${BENCH_THREADS:-2}
CONNECTIONS=${BENCH_CONNECTIONS:-16}
STARTS=${BENCH_STARTS:-5}
POST_CALLS=${BENCH_POST_CALLS:-500}
LOG_VARIANT=${BENCH_LOG_VARIANT:-1}
BENCH=$ROOT/scripts/bench
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
RECALL=${BENCH_RECALL:-$TARGET_DIR/release/recall}
HELLO=$TARGET_DIR/release/examples/hello
LOAD=$TARGET_DIR/release/examples/load

say() { printf '%s\n' "$*" >&2; }
die() { say "bench-server: $*"; exit 1; }

# --- 1. build --------------------------------------------------------------
if [[ ${BENCH_SKIP_BUILD:-0} != 1 ]]; then
  say "== building (release)"
  cargo build --release -p recall-server --bin recall --example hello --example load
fi
for b in "$RECALL" "$HELLO" "$LOAD"; do [[ -x $b ]] || die "missing $b (build it first)"; done

# --- 2. wrk ----------------------------------------------------------------
if ! command -v wrk >/dev/null; then
  say "== installing wrk"
  if [[ $(id -u) == 0 ]]; then
    apt-get update && apt-get install -y wrk
  else
    sudo apt-get update && sudo apt-get install -y wrk
  fi
fi
command -v curl >/dev/null || die "curl is needed"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/recall-bench.XXXXXX")
PIDS=()
SCHEMAS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do
    if kill -0 "$p" 2>/dev/null; then
      kill -TERM "$p" 2>/dev/null || true
      wait "$p" 2>/dev/null || true
    fi
  done
  rm -rf "$WORK"
  [[ ${RECALL_STORE:-} == postgres ]] || return 0
  for s in "${SCHEMAS[@]}"; do
    psql -q "$DATABASE_URL" -c "DROP SCHEMA IF EXISTS \"$s\" CASCADE" >/dev/null 2>&1 || true
  done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A file descriptor that never delivers data: `read -t` on it is a
# sub-millisecond sleep without forking.
exec {SLEEP_FD}<> <(:)
nap() { read -r -t "$1" -u "$SLEEP_FD" _ || true; }

now_us() { local t=${EPOCHREALTIME/[.,]/}; echo "$t"; }

# shellcheck source=scripts/lib/free-port.sh
source "$ROOT/scripts/lib/free-port.sh"

# GET 127.0.0.1:$1$2 with bash's /dev/tcp (no fork): true on 200.
get_ok() {
  local fd line=
  { exec {fd}<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null || return 1
  printf 'GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' "$2" >&"$fd" 2>/dev/null || true
  read -r -t 2 -u "$fd" line || true
  exec {fd}>&-
  [[ $line == "HTTP/1.1 200"* ]]
}

# Value of key $2 in a line of key=value pairs $1.
kv() { local v; v=$(sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<" $1"); echo "${v:-0}"; }
calc() { awk "BEGIN { printf \"$1\", $2 }"; }
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

# Fixed secrets, the embedded store, JSON logs to a file (what a service
# manager would do with standard error).
POST_KEY=wsec_bench_post_call_secret_0123456789abcdef
CLIENT_KEY=bench-client-data-key-0123456789abcdef
SEARCH_KEY=bench-search-data-key-0123456789abcdef
export ELEVENLABS_POST_CALL_KEY=$POST_KEY
export ELEVENLABS_CLIENT_DATA_KEY=$CLIENT_KEY
export ELEVENLABS_SEARCH_DATA_KEY=$SEARCH_KEY
export RECALL_STORE=${BENCH_STORE:-embedded}
export RECALL_LOG_FORMAT=json
if [[ $RECALL_STORE == postgres ]]; then
  export DATABASE_URL=${BENCH_DATABASE_URL:-${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}}
  command -v psql >/dev/null || die "psql is needed to drop the benchmark's schemas"
fi

SERVER_PID=
SERVER_PORT=
READY_MS=
# start_recall NAME [VAR=value...]: a fresh data directory, a free port;
# sets SERVER_PID, SERVER_PORT, READY_MS (spawn until /ready is 200).
start_recall() {
  local name=$1 t0 t1 deadline
  shift
  SERVER_PORT=$(free_port) || die "no free port"
  mkdir -p "$WORK/$name"
  local schema="bench_$$_$name"
  SCHEMAS+=("$schema")
  t0=$(now_us)
  env RECALL_DATA_DIR="$WORK/$name" RECALL_BIND="127.0.0.1:$SERVER_PORT" \
    RECALL_DATABASE_SCHEMA="$schema" "$@" \
    "$RECALL" serve 2>"$WORK/$name.log" &
  SERVER_PID=$!
  PIDS+=("$SERVER_PID")
  deadline=$((t0 + 10000000))
  until get_ok "$SERVER_PORT" /ready; do
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/$name.log" >&2; die "recall exited during start-up"; }
    (($(now_us) < deadline)) || die "recall not ready within 10 s"
    nap 0.0005
  done
  t1=$(now_us)
  READY_MS=$(calc '%.1f' "($t1 - $t0) / 1000")
}

stop_pid() {
  kill -TERM "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

CPU=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
MACHINE="$(nproc) cores ($CPU), $(uname -sr), load average at start $(cut -d' ' -f1-3 /proc/loadavg), store $RECALL_STORE"
say "== machine: $MACHINE"
say "== scratch: $WORK"

# --- 3. start to ready, idle RSS --------------------------------------------
say "== start to ready: $STARTS starts on fresh data directories (env: \`env\` exec included)"
# `env` adds one exec, well under a millisecond; the server reads its
# settings from the environment as in production.
READY_ALL=()
for i in $(seq "$STARTS"); do
  start_recall "start$i"
  READY_ALL+=("$READY_MS")
  say "   start $i: ready in $READY_MS ms"
  stop_pid "$SERVER_PID"
done
READY_SORTED=$(printf '%s\n' "${READY_ALL[@]}" | sort -n)
READY_MEDIAN=$(sed -n "$(((STARTS + 1) / 2))p" <<<"$READY_SORTED")
READY_MIN=$(head -1 <<<"$READY_SORTED")
READY_MAX=$(tail -1 <<<"$READY_SORTED")

start_recall main
MAIN_PID=$SERVER_PID
PORT=$SERVER_PORT
BASE=http://127.0.0.1:$PORT
nap 1
IDLE_RSS=$(rss_kib "$MAIN_PID")
THREADS_IDLE=$(awk '/^Threads:/ { print $2 }' "/proc/$MAIN_PID/status")
say "== recall on $BASE (pid $MAIN_PID), ready in $READY_MS ms, idle RSS $IDLE_RSS KiB, $THREADS_IDLE threads"

# --- 4. seed a caller -------------------------------------------------------
say "== seeding +16129782029 with 3 signed post-call events"
for i in 1 2 3; do
  sed -e "s/{{conversation_id}}/bench_seed_$i/g" -e "s/{{caller}}/+16129782029/g" \
    "$BENCH/post-call.json" >"$WORK/seed_$i.json"
  sig=$("$RECALL" sign --secret "$POST_KEY" "$WORK/seed_$i.json")
  answer=$(curl -sS --max-time 5 "$BASE/webhook/post-call" -H "ElevenLabs-Signature: $sig" \
    -H 'Content-Type: application/json' --data-binary "@$WORK/seed_$i.json")
  [[ $answer == *'"stored"'* ]] || die "seeding failed: $answer"
done
greeting=
for _ in $(seq 100); do
  greeting=$(curl -sS --max-time 2 "$BASE/webhook/client-data" -H "X-Api-Key: $CLIENT_KEY" \
    -H 'Content-Type: application/json' --data-binary "@$BENCH/client-data.json")
  [[ $greeting == *Margaret* ]] && break
  nap 0.1
done
[[ $greeting == *Margaret* ]] || die "the seeded caller is not greeted by name: $greeting"
search=$(curl -sS --max-time 2 "$BASE/webhook/search-data" -H "X-Api-Key: $SEARCH_KEY" \
  -H 'Content-Type: application/json' --data-binary "@$BENCH/search-data.json")
[[ $search == *bench_seed_* ]] || die "search finds no seeded memory: $search"
say "   greeting: $greeting"
say "   search:   ${search:0:300}..."

# --- 5. throughput and latency at fixed concurrency -------------------------
# run_wrk LABEL URL BODY_FILE HEADER: 1 s warm-up, then DURATION s measured.
declare -A RESULT
run_wrk() {
  local label=$1 url=$2 body=$3 header=$4 line
  BENCH_BODY_FILE=$body BENCH_HEADER=$header \
    wrk -t"$THREADS" -c"$CONNECTIONS" -d1s -s "$BENCH/post.lua" "$url" >/dev/null
  BENCH_BODY_FILE=$body BENCH_HEADER=$header \
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency -s "$BENCH/post.lua" "$url" \
    >"$WORK/$label.wrk"
  line=$(grep '^RESULT ' "$WORK/$label.wrk") || { cat "$WORK/$label.wrk" >&2; die "wrk gave no result for $label"; }
  line=${line#RESULT }
  (($(kv "$line" non2xx) == 0)) || die "$label: non-2xx answers: $line"
  RESULT[$label]=$line
  say "   $label: $line"
}

start_hello() {
  HELLO_PORT=$(free_port) || die "no free port"
  "$HELLO" "127.0.0.1:$HELLO_PORT" 2>"$WORK/hello.log" &
  HELLO_PID=$!
  PIDS+=("$HELLO_PID")
  until get_ok "$HELLO_PORT" /; do
    kill -0 "$HELLO_PID" 2>/dev/null || die "hello exited"
    nap 0.001
  done
}

say "== wrk: $THREADS threads, $CONNECTIONS connections, ${DURATION} s per run (same request body for hello)"
start_hello
run_wrk hello1 "http://127.0.0.1:$HELLO_PORT/webhook/client-data" "$BENCH/client-data.json" ""
stop_pid "$HELLO_PID"
run_wrk client "$BASE/webhook/client-data" "$BENCH/client-data.json" "X-Api-Key: $CLIENT_KEY"
run_wrk search "$BASE/webhook/search-data" "$BENCH/search-data.json" "X-Api-Key: $SEARCH_KEY"
start_hello
run_wrk hello2 "http://127.0.0.1:$HELLO_PORT/webhook/client-data" "$BENCH/client-data.json" ""
stop_pid "$HELLO_PID"

HELLO_RATE=$(calc '%.0f' "($(kv "${RESULT[hello1]}" rate) + $(kv "${RESULT[hello2]}" rate)) / 2")
CLIENT_RATE=$(kv "${RESULT[client]}" rate)
SEARCH_RATE=$(kv "${RESULT[search]}" rate)

# p99 at half of the maximum rate: open loop at a fixed rate.
say "== open loop at half of each route's wrk rate, ${DURATION} s each (load rate, 1 client thread)"
run_rate() {
  local label=$1 url=$2 body=$3 header=$4 rate=$5 line
  line=$("$LOAD" --threads 1 rate --url "$url" --header "$header" --body-file "$body" \
    --rate "$rate" --seconds "$DURATION" --warmup 1)
  (($(kv "$line" errors) == 0)) || die "$label: errors: $line"
  RESULT[$label]=$line
  say "   $label: $line"
}
run_rate client_half "$BASE/webhook/client-data" "$BENCH/client-data.json" "X-Api-Key: $CLIENT_KEY" $((CLIENT_RATE / 2))
run_rate search_half "$BASE/webhook/search-data" "$BENCH/search-data.json" "X-Api-Key: $SEARCH_KEY" $((SEARCH_RATE / 2))
# Calibration: the hello-world server at client-data's half rate shows what
# the generator, loopback and this machine's scheduling add by themselves.
start_hello
run_rate hello_half "http://127.0.0.1:$HELLO_PORT/webhook/client-data" "$BENCH/client-data.json" "X-Api-Key: unused" $((CLIENT_RATE / 2))
stop_pid "$HELLO_PID"

# --- optional: two replicas against one (PostgreSQL) --------------------------
# BENCH_REPLICAS=2 with BENCH_STORE=postgres: a second `recall serve` on the
# same schema; each route is loaded by two wrk at once (half the
# connections each), both on the first replica, then one on each. Same
# machine, same database, same run: what a second replica adds here.
REPLICAS=${BENCH_REPLICAS:-1}
run_wrk_pair() { # LABEL URL_A URL_B BODY HEADER
  local label=$1 a=$2 b=$3 body=$4 header=$5 half=$((CONNECTIONS / 2)) la lb
  BENCH_BODY_FILE=$body BENCH_HEADER=$header \
    wrk -t1 -c"$half" -d1s -s "$BENCH/post.lua" "$a" >/dev/null
  BENCH_BODY_FILE=$body BENCH_HEADER=$header \
    wrk -t1 -c"$half" -d"${DURATION}s" --latency -s "$BENCH/post.lua" "$a" >"$WORK/$label.a.wrk" &
  local pa=$!
  BENCH_BODY_FILE=$body BENCH_HEADER=$header \
    wrk -t1 -c"$half" -d"${DURATION}s" --latency -s "$BENCH/post.lua" "$b" >"$WORK/$label.b.wrk"
  wait "$pa"
  la=$(grep '^RESULT ' "$WORK/$label.a.wrk") || die "wrk gave no result for $label"
  lb=$(grep '^RESULT ' "$WORK/$label.b.wrk") || die "wrk gave no result for $label"
  la=${la#RESULT }
  lb=${lb#RESULT }
  (($(kv "$la" non2xx) == 0 && $(kv "$lb" non2xx) == 0)) || die "$label: non-2xx answers"
  RESULT[$label]="rate=$(calc '%.0f' "$(kv "$la" rate) + $(kv "$lb" rate)") p99_us=$(calc '%.0f' "($(kv "$la" p99_us) > $(kv "$lb" p99_us)) ? $(kv "$la" p99_us) : $(kv "$lb" p99_us)")"
  say "   $label: ${RESULT[$label]} (a: $la; b: $lb)"
}
if [[ $REPLICAS == 2 ]]; then
  [[ $RECALL_STORE == postgres ]] || die "BENCH_REPLICAS=2 needs BENCH_STORE=postgres"
  say "== two replicas against one: two wrk of $((CONNECTIONS / 2)) connections each, ${DURATION} s"
  start_recall replica2 RECALL_DATABASE_SCHEMA="bench_$$_main"
  R2_PID=$SERVER_PID
  R2=http://127.0.0.1:$SERVER_PORT
  for route in client search; do
    body="$BENCH/$route-data.json"
    case $route in client) key=$CLIENT_KEY ;; *) key=$SEARCH_KEY ;; esac
    run_wrk_pair "${route}_one" "$BASE/webhook/$route-data" "$BASE/webhook/$route-data" "$body" "X-Api-Key: $key"
    run_wrk_pair "${route}_two" "$BASE/webhook/$route-data" "$R2/webhook/$route-data" "$body" "X-Api-Key: $key"
  done
  stop_pid "$R2_PID"
fi

# --- 6. post-call: durable acknowledgement of new events --------------------
say "== post-call: $POST_CALLS new signed events one after the other, then $((POST_CALLS * 2)) with 16 in flight"
post_call() {
  local label=$1 requests=$2 concurrency=$3 line
  line=$("$LOAD" --threads 1 post-call --url "$BASE/webhook/post-call" --secret "$POST_KEY" \
    --template "$BENCH/post-call.json" --requests "$requests" --concurrency "$concurrency" \
    --prefix "bench_${label}_$$" --max-seconds 120)
  (($(kv "$line" errors) == 0)) || die "$label: errors: $line"
  RESULT[$label]=$line
  say "   $label: $line"
}
post_call post1 "$POST_CALLS" 1
post_call post16 $((POST_CALLS * 2)) 16

# Ingest end to end: from the first post of a burst until no event is
# pending (every one written as memories, embedded and indexed).
pending() { curl -sS --max-time 2 "$BASE/metrics" | awk '/^recall_post_call_pending_events / { print $2 }'; }
for _ in $(seq 600); do [[ $(pending) == 0 ]] && break; nap 0.1; done
INGEST_EVENTS=$((POST_CALLS * 2))
say "== ingest end to end: $INGEST_EVENTS new events with 16 in flight, until none is pending"
t0=$(now_us)
post_call ingest "$INGEST_EVENTS" 16
for _ in $(seq 6000); do [[ $(pending) == 0 ]] && break; nap 0.02; done
[[ $(pending) == 0 ]] || die "events still pending after 120 s"
t1=$(now_us)
INGEST_RATE=$(calc '%.0f' "$INGEST_EVENTS * 1000000 / ($t1 - $t0)")
say "   ingest: $INGEST_EVENTS events processed in $(calc '%.2f' "($t1 - $t0) / 1000000") s: $INGEST_RATE events/s"
LOADED_RSS=$(rss_kib "$MAIN_PID")
LOADED_HWM=$(awk '/^VmHWM:/ { print $2 }' "/proc/$MAIN_PID/status")
LOG_LINES=$(wc -l <"$WORK/main.log")
stop_pid "$MAIN_PID"

# --- optional: the same client-data run with request logs off ----------------
if [[ $LOG_VARIANT == 1 ]]; then
  say "== client-data again with RECALL_LOG=warn (no per-request log lines)"
  start_recall quiet RECALL_LOG=warn
  QUIET_PID=$SERVER_PID
  for i in 1 2 3; do
    sig=$("$RECALL" sign --secret "$POST_KEY" "$WORK/seed_$i.json")
    curl -sS --max-time 5 -o /dev/null "http://127.0.0.1:$SERVER_PORT/webhook/post-call" \
      -H "ElevenLabs-Signature: $sig" -H 'Content-Type: application/json' \
      --data-binary "@$WORK/seed_$i.json"
  done
  for _ in $(seq 100); do
    greeting=$(curl -sS --max-time 2 "http://127.0.0.1:$SERVER_PORT/webhook/client-data" \
      -H "X-Api-Key: $CLIENT_KEY" -H 'Content-Type: application/json' \
      --data-binary "@$BENCH/client-data.json")
    [[ $greeting == *Margaret* ]] && break
    nap 0.1
  done
  run_wrk client_quiet "http://127.0.0.1:$SERVER_PORT/webhook/client-data" "$BENCH/client-data.json" "X-Api-Key: $CLIENT_KEY"
  stop_pid "$QUIET_PID"
fi

# --- 7. summary --------------------------------------------------------------
ms() { calc '%.2f' "$1 / 1000"; }
verdict() { if awk "BEGIN { exit !($1) }"; then echo met; else echo MISSED; fi; }
row() { # label key
  local l=${RESULT[$1]}
  printf '| %s | %s | %s | %s | %s |\n' "$2" "$(kv "$l" rate)" "$(ms "$(kv "$l" p50_us)")" \
    "$(ms "$(kv "$l" p99_us)")" "$3"
}
CLIENT_PCT=$(calc '%.0f' "100 * $CLIENT_RATE / $HELLO_RATE")
SEARCH_PCT=$(calc '%.0f' "100 * $SEARCH_RATE / $HELLO_RATE")
CH99=$(kv "${RESULT[client_half]}" p99_us)
SH99=$(kv "${RESULT[search_half]}" p99_us)
P50_POST=$(kv "${RESULT[post1]}" p50_us)
IDLE_MIB=$(calc '%.1f' "$IDLE_RSS / 1024")

cat <<EOF

## recall-server benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')

Command: scripts/bench-server.sh (BENCH_SECONDS=$DURATION BENCH_THREADS=$THREADS BENCH_CONNECTIONS=$CONNECTIONS BENCH_STARTS=$STARTS BENCH_POST_CALLS=$POST_CALLS), recall $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD -- apps crates 2>/dev/null || echo ' + uncommitted changes').
Machine: $MACHINE; load average at end $(cut -d' ' -f1-3 /proc/loadavg).
wrk: $THREADS threads, $CONNECTIONS connections, ${DURATION} s (after 1 s warm-up), loopback.

| run | req/s | p50 ms | p99 ms | note |
|---|---|---|---|---|
$(row hello1 "hello-world ceiling (before)" "")
$(row hello2 "hello-world ceiling (after)" "")
$(row client "client-data (greeting of a known caller)" "${CLIENT_PCT} % of hello")
$(row search "search-data (3 memories)" "${SEARCH_PCT} % of hello")
$([[ $LOG_VARIANT == 1 ]] && row client_quiet "client-data, RECALL_LOG=warn" "$(calc '%.0f' "100 * $(kv "${RESULT[client_quiet]}" rate) / $HELLO_RATE") % of hello")

Open loop at half of the measured maximum (load rate):

| route | target req/s | achieved | p50 ms | p90 ms | p99 ms | max ms | send lateness p99 ms |
|---|---|---|---|---|---|---|---|
EOF
for r in client_half search_half hello_half; do
  l=${RESULT[$r]}
  case $r in
    hello_half) name="hello-world (calibration, client-data's rate)" ;;
    *) name="${r%_half}-data" ;;
  esac
  printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$name" "$(kv "$l" target_rate)" \
    "$(kv "$l" achieved_rate)" "$(ms "$(kv "$l" p50_us)")" "$(ms "$(kv "$l" p90_us)")" \
    "$(ms "$(kv "$l" p99_us)")" "$(ms "$(kv "$l" max_us)")" "$(ms "$(kv "$l" late_p99_us)")"
done
cat <<EOF

Post-call transcription events, each new and signed, acknowledged after fsync:

| in flight | events | acks/s | p50 ms | p90 ms | p99 ms | max ms |
|---|---|---|---|---|---|---|
EOF
for r in post1 post16; do
  l=${RESULT[$r]}
  printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$(kv "$l" concurrency)" "$(kv "$l" ok)" \
    "$(kv "$l" rate)" "$(ms "$(kv "$l" p50_us)")" "$(ms "$(kv "$l" p90_us)")" \
    "$(ms "$(kv "$l" p99_us)")" "$(ms "$(kv "$l" max_us)")"
done
cat <<EOF

$(if [[ $REPLICAS == 2 ]]; then
  printf 'Two replicas against one (same schema, two wrk of %s connections each):\n\n' $((CONNECTIONS / 2))
  printf '| route | one replica req/s | two replicas req/s | p99 ms (one / two) |\n|---|---|---|---|\n'
  for route in client search; do
    printf '| %s-data | %s | %s | %s / %s |\n' "$route" "$(kv "${RESULT[${route}_one]}" rate)" \
      "$(kv "${RESULT[${route}_two]}" rate)" "$(ms "$(kv "${RESULT[${route}_one]}" p99_us)")" \
      "$(ms "$(kv "${RESULT[${route}_two]}" p99_us)")"
  done
  echo
fi)
Start to ready ($STARTS fresh starts): median $READY_MEDIAN ms (min $READY_MIN, max $READY_MAX).
RSS (the default embedding model loaded): idle $IDLE_MIB MiB ($THREADS_IDLE threads); after the load $(calc '%.1f' "$LOADED_RSS / 1024") MiB, peak $(calc '%.1f' "$LOADED_HWM / 1024") MiB. Log lines written: $LOG_LINES.
Ingest end to end: $INGEST_EVENTS events posted with 16 in flight and all processed (memories written, embedded, indexed) at $INGEST_RATE events/s.

| target | measured | verdict |
|---|---|---|
| search-data ≥ 3,000 req/s (at $CONNECTIONS connections) | $SEARCH_RATE req/s | $(verdict "$SEARCH_RATE >= 3000") |
| ingest ≥ 200 events/s end to end | $INGEST_RATE events/s | $(verdict "$INGEST_RATE >= 200") |
| RSS with the default model ≤ 120 MiB (peak) | $(calc '%.1f' "$LOADED_HWM / 1024") MiB | $(verdict "$LOADED_HWM <= 122880") |
| client-data ≥ 50 % of hello | ${CLIENT_PCT} % | $(verdict "$CLIENT_PCT >= 50") |
| search-data ≥ 50 % of hello | ${SEARCH_PCT} % | $(verdict "$SEARCH_PCT >= 50") |
| client-data p99 ≤ 2 ms at half rate | $(ms "$CH99") ms | $(verdict "$CH99 <= 2000") |
| search-data p99 ≤ 2 ms at half rate | $(ms "$SH99") ms | $(verdict "$SH99 <= 2000") |
| post-call durable ack median ≤ 5 ms | $(ms "$P50_POST") ms | $(verdict "$P50_POST <= 5000") |
| idle RSS ≤ 20 MiB | $IDLE_MIB MiB | $(verdict "$IDLE_RSS <= 20480") |
| start to ready ≤ 100 ms | $READY_MEDIAN ms | $(verdict "$READY_MEDIAN <= 100") |
EOF
