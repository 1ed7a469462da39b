#!/usr/bin/env bash
# Runs every fuzz target under fuzz/ (cargo-fuzz, libFuzzer) for a while,
# starting from the committed seeds, and prints each target's executions.
#
#   scripts/fuzz.sh [seconds] [target...]   default: 60 s each, every target
#
# Needs nightly Rust (`rustup toolchain install nightly`); cargo-fuzz is
# installed into $HOME/.cache/inflow-tools on first use. The growing corpus
# lives in $HOME/.cache/inflow-fuzz/corpus/<target> (the seeds stay as
# committed); a crash leaves its input in fuzz/artifacts/<target>/ and
# stops the script: add that input as a regression test.
#
# Environment:
#   FUZZ_JOBS   parallel jobs per target (default 1)
#   FUZZ_RUNS   also stop each target once it has run this many inputs
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
seconds="${1:-60}"
shift || true
tools="$HOME/.cache/inflow-tools/cargo-fuzz"
export PATH="$tools/bin:$PATH"
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$HOME/.cache/inflow-fuzz-target}"
if ! command -v cargo-fuzz >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked --root "$tools"
fi
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(cd fuzz/fuzz_targets && ls ./*.rs | sed 's|^\./||; s|\.rs$||')
fi
(cd fuzz && cargo +nightly fuzz build -O)
corpus_root="$HOME/.cache/inflow-fuzz/corpus"
printf '%-18s %14s %8s %s\n' target executions seconds result
for t in "${targets[@]}"; do
    corpus="$corpus_root/$t"
    mkdir -p "$corpus" "fuzz/artifacts/$t"
    limit=(-max_total_time="$seconds")
    if [ -n "${FUZZ_RUNS:-}" ]; then limit+=(-runs="$FUZZ_RUNS"); fi
    log="$corpus_root/$t.log"
    started=$(date +%s)
    jobs="${FUZZ_JOBS:-1}"
    parallel=()
    if [ "$jobs" -gt 1 ]; then parallel=(-jobs="$jobs" -workers="$jobs"); fi
    rm -f fuzz/fuzz-*.log
    set +e
    (cd fuzz && cargo +nightly fuzz run -O "$t" "$corpus" "$root/fuzz/seeds/$t" -- \
        "${limit[@]}" "${parallel[@]}" \
        -max_len=65536 -rss_limit_mb=2048 -print_final_stats=1) >"$log" 2>&1
    rc=$?
    set -e
    # With -jobs, each job logs to fuzz/fuzz-<n>.log and the parent repeats
    # them: count the jobs' own logs.
    if [ "$jobs" -gt 1 ]; then
        runs=$(cat fuzz/fuzz-*.log 2>/dev/null | grep -o 'stat::number_of_executed_units: *[0-9]*' | awk '{s+=$2} END {print s+0}')
        cat fuzz/fuzz-*.log >>"$log.jobs" 2>/dev/null && rm -f fuzz/fuzz-*.log
    else
        runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | awk '{s+=$2} END {print s+0}')
    fi
    result=ok
    if [ $rc -ne 0 ]; then result="CRASH (see $log and fuzz/artifacts/$t/)"; fi
    printf '%-18s %14s %8s %s\n' "$t" "$runs" "$(($(date +%s) - started))" "$result"
    if [ $rc -ne 0 ]; then exit 1; fi
done
