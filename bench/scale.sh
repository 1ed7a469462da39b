#!/usr/bin/env bash
# Autoscaling and scale-down figures (issue: autoscaling and safe scale-down):
#
#   1. load step -> new replica count: the autoscaling scenario of
#      operator/tests/autoscaling.rs (real kube-apiserver, kwok, a real
#      Prometheus scraping a real ingester under inflow-bench load; resync 1 s,
#      scrape 100 ms, rate window 2 s, down window 3 s), run --runs times; it
#      prints the time from the load's start to 4 ingesters and from its stop
#      back to 1. These are control-loop times (the loop's settings above),
#      not the speed of a binary.
#   2. write p99 during a scale-down: two release inflow-ingesters on one
#      local store; ing-b holds a buffer of 'hosts x 3h' points; inflow-bench
#      writes to ing-a while ing-b gets SIGTERM (it persists its buffer and
#      deletes its WAL before exiting), against the same write without it.
#
#   bench/scale.sh [--runs N] [--only-scale-down]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=3
skip_loop=0
while [ $# -gt 0 ]; do
    case $1 in
        --runs) runs=$2; shift 2 ;;
        --only-scale-down) skip_loop=1; shift ;;
        *) echo "usage: bench/scale.sh [--runs N] [--only-scale-down]" >&2; exit 2 ;;
    esac
done
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/inflow-target}"

if [ $skip_loop = 0 ]; then
echo "== 1. load step -> replica count ($runs runs of the autoscaling scenario)" >&2
cargo build --workspace --bins --tests >&2
ups=(); downs=()
for _ in $(seq "$runs"); do
    out=$(cargo nextest run --workspace --no-capture -E 'binary(autoscaling)' 2>&1 || true)
    up=$(echo "$out" | sed -n 's/^load step to 4 ingesters: \([0-9.]*\)s$/\1/p')
    down=$(echo "$out" | sed -n 's/^load stop to 1 ingester: \([0-9.]*\)s$/\1/p')
    [ -n "$up" ] && [ -n "$down" ] || { echo "$out" | tail -20 >&2; exit 1; }
    ups+=("$up"); downs+=("$down")
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "{\"bench\":\"autoscale\",\"load_step_to_4_s\":$(median "${ups[@]}"),\"load_stop_to_1_s\":$(median "${downs[@]}"),\"runs\":$runs}"
fi

echo "== 2. write p99 during a scale-down (release)" >&2
cargo build --release --bin inflow-ingester --bin inflow-bench >&2
bin="$CARGO_TARGET_DIR/release"
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
common=(--without-auth --data-dir "$work/store" --log-filter warn --wal-flush-interval 10ms)
start() { # name port
    "$bin/inflow-ingester" "${common[@]}" --node-id "$1" --http-bind "127.0.0.1:$2" >"$work/$1.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 200); do curl -sf "http://127.0.0.1:$2/health" >/dev/null && return; sleep 0.1; done
    echo "$1 did not start:"; cat "$work/$1.log"; exit 1
}
write_a() { "$bin/inflow-bench" write --url http://127.0.0.1:18381 --db a --hosts 200 --duration 24h --batch 1000 --connections 8 --start "$1" 2>/dev/null; }
start ing-a 18381
start ing-b 18382
"$bin/inflow-bench" write --url http://127.0.0.1:18382 --db b --hosts 1000 --duration 3h --batch 5000 --connections 4 >/dev/null 2>&1
baseline=$(write_a 1451606400)
( sleep 1; kill -TERM "${pids[1]}" ) &
during=$(write_a 1452606400)
wait "${pids[1]}" 2>/dev/null || true
left=$(find "$work/store/wal/ing-b" -type f 2>/dev/null | wc -l)
echo "{\"bench\":\"scale_down_writes\",\"baseline\":$baseline,\"during_scale_down\":$during,\"wal_files_left_by_ing_b\":$left}"
