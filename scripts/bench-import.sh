#!/usr/bin/env bash
# The `recall import` benchmark (issue 14): imports N conversations from a
# local emulator of the ElevenLabs API (the `elevenlabs_emulator` example,
# loopback only) into a fresh embedded store, for each N in BENCH_SIZES,
# and reports conversations per second and the peak RSS of the import
# (`/usr/bin/time -v`), so that 1k against 10k shows memory is bounded.
#
# Each size is measured twice: the import alone (`--no-process`: list,
# fetch, store durably) and the import with processing into memories
# (embedded, indexed), the default.
#
# Settings (environment): BENCH_SIZES ("1000 10000"), BENCH_CONCURRENCY (4),
# BENCH_SKIP_BUILD=1 to reuse the binaries.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
SIZES=${BENCH_SIZES:-1000 10000}
CONCURRENCY=${BENCH_CONCURRENCY:-4}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
RECALL=$TARGET_DIR/release/recall
EMULATOR=$TARGET_DIR/release/examples/elevenlabs_emulator

say() { printf '%s\n' "$*" >&2; }
die() { say "bench-import: $*"; exit 1; }

if [[ ${BENCH_SKIP_BUILD:-0} != 1 ]]; then
  say "== building (release)"
  cargo build --release -p recall-server --bin recall --example elevenlabs_emulator
fi
for b in "$RECALL" "$EMULATOR"; do [[ -x $b ]] || die "missing $b (build it first)"; done
[[ -x /usr/bin/time ]] || die "/usr/bin/time is missing (apt-get install time)"

WORK=$(mktemp -d)
EMU_PID=
cleanup() {
  [[ -n $EMU_PID ]] && kill "$EMU_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

results=()
for n in $SIZES; do
  say "== $n conversations"
  "$EMULATOR" "$n" >"$WORK/emu.out" 2>"$WORK/emu.err" &
  EMU_PID=$!
  for _ in $(seq 100); do [[ -s $WORK/emu.out ]] && break; sleep 0.1; done
  read -r url keyword <"$WORK/emu.out" || die "the emulator did not start: $(cat "$WORK/emu.err")"
  key=${keyword#key=}
  for mode in store process; do
    data="$WORK/data-$n-$mode"
    extra=()
    [[ $mode == store ]] && extra=(--no-process)
    start=$(date +%s.%N)
    env -i PATH="$PATH" RECALL_DATA_DIR="$data" ELEVENLABS_API_KEY="$key" ELEVENLABS_API_URL="$url" \
      /usr/bin/time -v -o "$WORK/time" \
      "$RECALL" import --concurrency "$CONCURRENCY" "${extra[@]}" >"$WORK/out" 2>"$WORK/err" \
      || die "the import failed: $(tail -5 "$WORK/err")"
    end=$(date +%s.%N)
    summary=$(cat "$WORK/out")
    grep -q "imported $n," <<<"$summary" || die "not all imported: $summary"
    rss_kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$WORK/time")
    secs=$(echo "$end - $start" | bc -l)
    rate=$(echo "$n / $secs" | bc -l)
    line=$(printf '%6d  %-8s %7.2f s  %7.0f conv/s  peak RSS %6.1f MiB' \
      "$n" "$mode" "$secs" "$rate" "$(echo "$rss_kb / 1024" | bc -l)")
    say "$line"
    say "   $summary"
    results+=("$line")
  done
  kill "$EMU_PID"
  wait "$EMU_PID" 2>/dev/null || true
  EMU_PID=
done

echo
echo "conversations  mode     elapsed   rate          peak RSS (import process)"
printf '%s\n' "${results[@]}"
