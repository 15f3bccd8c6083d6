#!/usr/bin/env bash
# The fault soak (issue 11): acknowledged post-call events survive a memory
# store outage and `kill -9` at random points of ingest. Loopback only; it
# stops by itself and stops everything it started.
#
#  1. Outage: the embedded store's database is held by another process
#     (an exclusive SQLite transaction, so every write is refused as
#     "database is locked", the store's Unavailable) while SOAK_EVENTS
#     (1,000) signed events arrive with 16 in flight. Every one must be
#     acknowledged; after the lock is released, every one must become
#     memories with none pending.
#  2. Crashes: SOAK_KILLS (50) times, the server is started on the same
#     data, events are posted with 16 in flight, and the server is killed
#     with SIGKILL after a random 50 to 1,500 ms (during ingest and
#     processing). Then it is started once more and drained.
#  3. The check: for every event ever answered 200, its call is in the
#     index and its caller has exactly the two memories one call leaves
#     (the name fact and the call): none lost, none duplicated.
#  4. The same on OpenMemory when SOAK_OPENMEMORY_URL points at a server
#     (phases 2 and 3; the outage is the server being down, which this
#     script cannot arrange); skipped with a message otherwise.
#
# Settings: SOAK_EVENTS (1000), SOAK_KILLS (50), SOAK_SKIP_BUILD=1,
# SOAK_KEEP=1 (keep the data directories for inspection),
# SOAK_OPENMEMORY_URL, SOAK_OPENMEMORY_KEY. Figures go to standard output;
# docs/reliability.md has the last run's.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
EVENTS=${SOAK_EVENTS:-1000}
KILLS=${SOAK_KILLS:-50}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
RECALL=$TARGET_DIR/release/recall
PY=python3

say() { printf '%s\n' "$*" >&2; }
die() { say "soak: $*"; exit 1; }

if [[ ${SOAK_SKIP_BUILD:-0} != 1 ]]; then
  say "== building (release)"
  cargo build --release -p recall-server --bin recall
fi
[[ -x $RECALL ]] || die "missing $RECALL"
command -v "$PY" >/dev/null || die "python3 is needed"
command -v curl >/dev/null || die "curl is needed"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/recall-soak.XXXXXX")
SERVER_PID=
LOCK_PID=
cleanup() {
  [[ -n $SERVER_PID ]] && kill -KILL "$SERVER_PID" 2>/dev/null || true
  [[ -n $LOCK_PID ]] && kill -KILL "$LOCK_PID" 2>/dev/null || true
  wait 2>/dev/null || true
  if [[ ${SOAK_KEEP:-0} == 1 ]]; then say "soak: data kept in $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

export ELEVENLABS_POST_CALL_KEY=wsec_soak_post_call_secret_0123456789
export ELEVENLABS_CLIENT_DATA_KEY=soak-client-data-key-0123456789
export ELEVENLABS_SEARCH_DATA_KEY=soak-search-data-key-0123456789
export RECALL_ADMIN_TOKEN=soak-admin-token-0123456789
export RECALL_LOG_FORMAT=json
export RECALL_LOG=warn
# Retries every 0.2 s to 2 s, so that recovery is seen within the soak.
export RECALL_RETRY_INITIAL_MS=200
export RECALL_RETRY_MAX_SECS=2

# shellcheck source=scripts/lib/free-port.sh
source "$ROOT/scripts/lib/free-port.sh"

# start DATA_DIR [VAR=value...]: the server on a free port; sets PORT, BASE.
# A port taken between the check and the bind is tried again with another.
start() {
  local data=$1 attempt
  shift
  for attempt in 1 2 3 4 5; do
    PORT=$(free_port) || die "no free port"
    BASE=http://127.0.0.1:$PORT
    : >"$WORK/start.log"
    env RECALL_DATA_DIR="$data" RECALL_BIND="127.0.0.1:$PORT" "$@" "$RECALL" serve \
      2>"$WORK/start.log" &
    SERVER_PID=$!
    for _ in $(seq 400); do
      if curl -fsS --max-time 1 "$BASE/health" >/dev/null 2>&1; then
        return 0
      fi
      if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        cat "$WORK/start.log" >>"$WORK/server.log"
        grep -q "Address already in use" "$WORK/start.log" && continue 2
        tail -20 "$WORK/start.log" >&2
        die "recall exited at start"
      fi
      sleep 0.05
    done
    die "recall did not start within 20 s"
  done
  die "no free port after 5 tries"
}

stop() {
  kill -TERM "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=
}

metric() { curl -sS --max-time 2 "$BASE/metrics" | awk -v m="$1" '$1 == m { print $2 }'; }

# Waits until nothing is pending; prints the seconds it took.
drain() {
  local t0=$SECONDS pending
  for _ in $(seq 3000); do
    pending=$(metric recall_post_call_pending_events)
    [[ $pending == 0 ]] && { echo $((SECONDS - t0)); return 0; }
    sleep 0.1
  done
  die "events still pending after 300 s: $pending"
}

post() { # post PREFIX START COUNT SECONDS ACK_FILE
  "$PY" scripts/soak/soak.py post --url "$BASE" --secret "$ELEVENLABS_POST_CALL_KEY" \
    --prefix "$1" --start "$2" --count "$3" --concurrency 16 --seconds "$4" --acknowledged "$5"
}

check() { # check ACK_FILE
  "$PY" scripts/soak/soak.py check --url "$BASE" --token "$RECALL_ADMIN_TOKEN" --acknowledged "$1"
}

say "== machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"

# --- 1. outage ---------------------------------------------------------------
say "== 1. store outage: $EVENTS events while the embedded database is locked"
DATA=$WORK/outage
mkdir -p "$DATA"
start "$DATA" RECALL_STORE=embedded
DB=$DATA/recall.db
[[ -f $DB ]] || die "no database at $DB"
"$PY" - "$DB" <<'EOF' &
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], timeout=30, isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
print("database locked", file=sys.stderr, flush=True)
time.sleep(3600)
EOF
LOCK_PID=$!
sleep 1
t0=$SECONDS
OUT=$(post outage_ 0 "$EVENTS" 300 "$WORK/outage.ack")
say "   posted: $OUT in $((SECONDS - t0)) s"
ACKED=$(wc -l <"$WORK/outage.ack")
[[ $ACKED == "$EVENTS" ]] || die "only $ACKED of $EVENTS acknowledged during the outage"
sleep 2
PENDING_DURING=$(metric recall_post_call_pending_events)
PROCESSED_DURING=$(metric recall_post_call_events_processed_total)
say "   during the outage: pending $PENDING_DURING, processed ${PROCESSED_DURING:-0}"
kill -KILL "$LOCK_PID"
wait "$LOCK_PID" 2>/dev/null || true
LOCK_PID=
DRAIN_S=$(drain)
FAILED=$(metric recall_post_call_failed_events)
say "   store back: drained in $DRAIN_S s, failed $FAILED"
OUTAGE_CHECK=$(check "$WORK/outage.ack") || { say "$OUTAGE_CHECK"; die "outage: events lost or duplicated"; }
say "   check: $OUTAGE_CHECK"
stop

# --- 2. kill -9 --------------------------------------------------------------
crash_soak() { # crash_soak LABEL [VAR=value...]
  local label=$1 data=$WORK/$1 ack=$WORK/$1.ack next=0 posted kills=0 delay poster
  shift
  mkdir -p "$data"
  : >"$ack"
  for i in $(seq "$KILLS"); do
    start "$data" "$@"
    post "${label}_" "$next" 200 30 "$ack" >"$WORK/post.out" 2>&1 &
    poster=$!
    delay=$(awk -v r="$RANDOM" 'BEGIN { printf "%.3f", 0.05 + (r % 1451) / 1000 }')
    sleep "$delay"
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
    kills=$((kills + 1))
    wait "$poster" || true
    next=$((next + 200))
    posted=$(wc -l <"$ack")
    ((i % 10 == 0)) && say "   $i kills, $posted events acknowledged so far"
  done
  start "$data" "$@"
  local drain_s
  drain_s=$(drain)
  local failed result
  failed=$(metric recall_post_call_failed_events)
  result=$(check "$ack") || { say "$result"; die "$label: events lost or duplicated"; }
  say "   after $kills kills: drained in $drain_s s, failed $failed; $result"
  stop
  CRASH_RESULT[$label]="$kills kills; $result; failed $failed"
}
declare -A CRASH_RESULT

say "== 2. $KILLS x kill -9 during ingest on the embedded store"
crash_soak embedded RECALL_STORE=embedded

if [[ -n ${SOAK_OPENMEMORY_URL:-} ]]; then
  say "== 3. $KILLS x kill -9 during ingest on OpenMemory at $SOAK_OPENMEMORY_URL"
  crash_soak openmemory RECALL_STORE=openmemory OPENMEMORY_PORT="$SOAK_OPENMEMORY_URL" \
    ${SOAK_OPENMEMORY_KEY:+OPENMEMORY_KEY=$SOAK_OPENMEMORY_KEY}
else
  say "== 3. OpenMemory: skipped (set SOAK_OPENMEMORY_URL to a running OpenMemory server)"
  CRASH_RESULT[openmemory]="skipped: no SOAK_OPENMEMORY_URL"
fi

cat <<EOF

| phase | result |
|---|---|
| store outage: $EVENTS events while the database is locked | $ACKED acknowledged, $PENDING_DURING pending during the outage; drained in $DRAIN_S s after it; $OUTAGE_CHECK; failed $FAILED |
| kill -9 at random points, embedded store | ${CRASH_RESULT[embedded]} |
| kill -9 at random points, OpenMemory | ${CRASH_RESULT[openmemory]} |
EOF
