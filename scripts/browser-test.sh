#!/usr/bin/env bash
# The dashboard's real-browser test: builds and starts the real server on a
# free loopback port with a throw-away data directory, seeds it through its
# signed post-call webhook, and drives Debian's chromium with playwright-core
# (apps/recall-server/tests/browser/dashboard.mjs). Screenshots go to
# test-artifacts/browser/. Exits non-zero on any failure and always stops
# the server it started.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"

if [ ! -x /usr/bin/chromium ]; then
    echo "==> installing chromium"
    apt-get update
    apt-get install -y chromium chromium-driver
fi
command -v node >/dev/null || { echo "browser-test: node is required" >&2; exit 1; }

echo "==> npm ci (playwright-core)"
(cd scripts && npm ci --no-audit --no-fund --loglevel=error)

echo "==> building the server"
locked=()
if [ "${CI:-}" = "true" ]; then locked=(--locked); fi
cargo build "${locked[@]}" -p recall-server --bin recall
target_dir="$(cargo metadata --format-version 1 --no-deps | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).target_directory))')"
binary="$target_dir/debug/recall"

fixtures="${RECALL_FIXTURES:-$root/../shared/fixtures/elevenlabs}"
[ -d "$fixtures" ] || { echo "browser-test: fixtures not found at $fixtures" >&2; exit 1; }

work="$(mktemp -d)"
server_pid=""
cleanup() {
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

port="$(node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"
admin_token="browser-test-admin-$RANDOM$RANDOM"
post_call_key="wsec_browser_test_$RANDOM$RANDOM"

echo "==> starting recall on 127.0.0.1:$port"
RECALL_BIND="127.0.0.1:$port" \
RECALL_DATA_DIR="$work/data" \
RECALL_STORE=embedded \
RECALL_ADMIN_TOKEN="$admin_token" \
ELEVENLABS_POST_CALL_KEY="$post_call_key" \
ELEVENLABS_CLIENT_DATA_KEY="client-data-$RANDOM$RANDOM" \
ELEVENLABS_SEARCH_DATA_KEY="search-data-$RANDOM$RANDOM" \
RECALL_LOG_FORMAT=json \
RECALL_LOG=warn \
    "$binary" serve >"$work/server.log" 2>&1 &
server_pid=$!

artifacts="$root/test-artifacts/browser"
mkdir -p "$artifacts"
status=0
RECALL_URL="http://127.0.0.1:$port" \
ADMIN_TOKEN="$admin_token" \
POST_CALL_KEY="$post_call_key" \
FIXTURES="$fixtures" \
ARTIFACTS="$artifacts" \
PLAYWRIGHT_FROM="$root/scripts/package.json" \
    node apps/recall-server/tests/browser/dashboard.mjs || status=$?

if [ "$status" -ne 0 ]; then
    echo "==> server log"
    tail -n 50 "$work/server.log" || true
    if ! kill -0 "$server_pid" 2>/dev/null; then echo "browser-test: the server exited early" >&2; fi
fi
cp "$work/server.log" "$artifacts/server.log" 2>/dev/null || true
exit "$status"
