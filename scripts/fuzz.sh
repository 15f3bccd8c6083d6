#!/usr/bin/env bash
# Coverage-guided fuzzing (issue 11): builds the cargo-fuzz targets in fuzz/,
# seeds their corpora from the shared ElevenLabs fixtures, runs each target
# for a while and fails if any of them finds a crash (a panic, a broken
# invariant, a timeout or running out of memory).
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# SECONDS per target (default 60); TARGETs default to all of them:
# signature envelope client_data search_data config.
#
# Settings (environment):
#   FUZZ_SANITIZER  cargo-fuzz sanitizer, default none (see docs/reliability.md)
#   FUZZ_FIXTURES   the fixtures directory, default ../shared/fixtures/elevenlabs
#   FUZZ_SKIP_BUILD=1 to reuse the built targets
#
# Corpora: fuzz/seeds/<target> (small hand-written seeds, committed),
# fuzz/target/seeds/<target> (derived from the fixtures at every run) and
# fuzz/corpus/<target> (what the fuzzer found, kept between runs, not
# committed). Logs go to fuzz/target/logs/<target>.log. A crash is saved
# under fuzz/artifacts/<target>/; replay it with
#   RUSTC_BOOTSTRAP=1 cargo fuzz run --sanitizer none <target> <file>   (in fuzz/)
set -euo pipefail

cd "$(dirname "$0")/.."
root=$(pwd)
seconds=${1:-60}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(signature envelope client_data search_data config)
fi
sanitizer=${FUZZ_SANITIZER:-none}
fixtures=${FUZZ_FIXTURES:-$root/../shared/fixtures/elevenlabs}
# cargo-fuzz needs nightly-only compiler flags; the pinned stable toolchain
# accepts them with this.
export RUSTC_BOOTSTRAP=1

if ! [[ $seconds =~ ^[0-9]+$ ]] || [ "$seconds" -lt 1 ]; then
    echo "usage: $0 [SECONDS] [TARGET...]" >&2
    exit 2
fi
if [ ! -f "$fixtures/hmac_test_vectors.json" ]; then
    echo "fuzz.sh: no fixtures at $fixtures (set FUZZ_FIXTURES)" >&2
    exit 2
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install --locked cargo-fuzz
fi
if ! command -v jq >/dev/null; then
    echo "==> installing jq (Debian's package)"
    if [ "$(id -u)" = 0 ]; then
        apt-get update && apt-get install -y jq
    else
        sudo apt-get update && sudo apt-get install -y jq
    fi
fi

# The targets write small temporary files; keep them out of /tmp's way.
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
export TMPDIR=$scratch

cd fuzz
if [ "${FUZZ_SKIP_BUILD:-0}" != 1 ]; then
    start=$(date +%s)
    cargo fuzz build --sanitizer "$sanitizer"
    echo "fuzz.sh: built in $(($(date +%s) - start)) s"
fi

# Seeds derived from the fixtures (never committed: they are the fixtures).
seeds=target/seeds
rm -rf "$seeds"
mkdir -p "$seeds"/{signature,envelope,client_data,search_data,config}
n=0
while IFS= read -r vector; do
    n=$((n + 1))
    header=$(jq -r '.header' <<<"$vector")
    {
        printf '%s\n' "$header"
        if jq -e 'has("file")' <<<"$vector" >/dev/null; then
            cat "$fixtures/$(jq -r '.file' <<<"$vector")"
        else
            jq -j '.inline_body' <<<"$vector"
        fi
    } >"$seeds/signature/vector-$n"
    if ! jq -e 'has("file")' <<<"$vector" >/dev/null; then
        jq -j '.inline_body' <<<"$vector" >"$seeds/envelope/inline-$n.json"
    fi
done < <(jq -c '.[]' "$fixtures/hmac_test_vectors.json")
for f in "$fixtures"/post_call_*.json "$fixtures"/call_initiation_failure.*.json; do
    cp "$f" "$seeds/envelope/"
done
for f in "$fixtures"/conversation_initiation_client_data.request*.json; do
    cp "$f" "$seeds/client_data/"
    # The memory tool is called with the same caller and agent.
    jq '{query: "when is my dental appointment", user_id: .caller_id, agent_id: .agent_id,
         conversation_id: "conv_1", k: 3}' "$f" >"$seeds/search_data/$(basename "$f")"
done

failed=()
summary=()
for target in "${targets[@]}"; do
    mkdir -p "corpus/$target" "seeds/$target" "artifacts/$target"
    mkdir -p target/logs
    log=target/logs/$target.log
    echo "fuzz.sh: $target for $seconds s"
    set +e
    cargo fuzz run --sanitizer "$sanitizer" "$target" \
        "corpus/$target" "seeds/$target" "$seeds/$target" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -close_fd_mask=1 >"$log" 2>&1
    status=$?
    set -e
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n1)
    cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -n1)
    corpus=$(find "corpus/$target" -type f | wc -l)
    summary+=("$(printf '%-12s %8s s %10s execs %7s exec/s  %-22s corpus %s' \
        "$target" "$seconds" "${execs:-?}" "${rate:-?}" "${cov:-cov: ?}" "$corpus")")
    if [ $status -ne 0 ]; then
        failed+=("$target")
        echo "fuzz.sh: $target FAILED (exit $status); from its log (fuzz/$log):" >&2
        grep -A4 -E "panicked|ERROR: libFuzzer" "$log" | grep -vE '^ +(at |[0-9]+: )' >&2 || true
        grep -E "Test unit written|^Reproduce|cargo fuzz run" "$log" >&2 || true
    fi
done

echo
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -ne 0 ]; then
    echo "fuzz.sh: crashes in: ${failed[*]} (inputs under fuzz/artifacts/)" >&2
    exit 1
fi
echo "fuzz.sh: no crash"
