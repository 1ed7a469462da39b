#!/usr/bin/env bash
# Kills Inflow at random moments under continuous writes and checks, after
# every restart, that each acknowledged point is present exactly once
# (scripts/crash_loop.py says how). Builds the binaries first.
#
#   scripts/crash-loop.sh [cycles] [serve|split|both]   default: 100 both
#
# Environment: CARGO_TARGET_DIR (default $HOME/.cache/inflow-target),
# CRASH_LOOP_SEED to replay a run.
set -euo pipefail
cd "$(dirname "$0")/.."
cycles="${1:-100}"
modes="${2:-both}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/inflow-target}"
cargo build --workspace --bins --quiet
seed=()
[ -n "${CRASH_LOOP_SEED:-}" ] && seed=(--seed "$CRASH_LOOP_SEED")
[ "$modes" = both ] && modes="serve split"
for mode in $modes; do
    python3 scripts/crash_loop.py --mode "$mode" --cycles "$cycles" \
        --bin-dir "$CARGO_TARGET_DIR/debug" "${seed[@]}"
done
