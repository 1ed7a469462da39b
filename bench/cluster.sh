#!/usr/bin/env bash
# Split roles on one machine: an inflow-ingester, an inflow-querier and an
# inflow-compactor (release builds) on one local object store, and:
#
#   1. write-to-visible: single points written to the ingester, each timed
#      from its request until the querier returns it (p50, p99; default flags:
#      --wal-flush-interval 1s, --replication-interval 250ms);
#   2. object-store requests per second at idle, per process (the cost of
#      tailing the WAL and of heartbeats), from inflow_object_store_requests_total;
#   3. compaction rows/s: TSBS cpu data persisted in many small files
#      (--wal-snapshot-size 10), merged by the compactor (every 1s), from
#      inflow_compaction_rows_total / inflow_compaction_duration_seconds_sum.
#
#   bench/cluster.sh [--quick]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/build.sh
quick=0
[ "${1:-}" = "--quick" ] && quick=1
points=200; hosts=1000; duration=3h
[ $quick = 1 ] && { points=100; hosts=200; }

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
common=(--without-auth --data-dir "$work/store" --log-filter warn)
start() { # name binary port flags...
    local name=$1 binary=$2 port=$3; shift 3
    "$bin/$binary" "${common[@]}" --node-id "$name" --http-bind "127.0.0.1:$port" "$@" >"$work/$name.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 200); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && return; sleep 0.1; done
    echo "$name did not start:"; cat "$work/$name.log"; exit 1
}
metric() { curl -s "http://127.0.0.1:$1/metrics" | awk -v n="$2" '$1 ~ "^"n"({|$)" { s += $NF } END { printf "%.6f", s }'; }

start ing-0 inflow-ingester 18281
start q-0 inflow-querier 18282
start c-0 inflow-compactor 18283 --retention-check-interval 1s

echo "== write-to-visible ($points points, default flags)" >&2
vis=$("$bin/inflow-bench" visibility --ingester http://127.0.0.1:18281 --querier http://127.0.0.1:18282 --count $points)

echo "== object-store requests per second at idle" >&2
sleep 5
idle_q=$("$bin/inflow-bench" counter --url http://127.0.0.1:18282/metrics --name inflow_object_store_requests_total --seconds 10)
idle_i=$("$bin/inflow-bench" counter --url http://127.0.0.1:18281/metrics --name inflow_object_store_requests_total --seconds 10)
idle_c=$("$bin/inflow-bench" counter --url http://127.0.0.1:18283/metrics --name inflow_object_store_requests_total --seconds 10)

echo "== compaction ($hosts hosts x $duration, persisted every 10 WAL files)" >&2
kill -TERM "${pids[0]}"; wait "${pids[0]}" 2>/dev/null || true
start ing-0 inflow-ingester 18281 --wal-snapshot-size 10 --wal-flush-interval 100ms
"$bin/inflow-bench" write --url http://127.0.0.1:18281 --api v3 --hosts $hosts --duration $duration --batch 5000 --connections 4 >/dev/null
# Wait until a pass merges nothing more for 5 s.
last=-1; still=0
for _ in $(seq 600); do
    now=$(metric 18283 inflow_compaction_rows_total)
    if [ "$now" = "$last" ] && [ "$now" != "0.000000" ]; then still=$((still + 1)); else still=0; fi
    [ $still -ge 5 ] && break
    last=$now; sleep 1
done
rows=$(metric 18283 inflow_compaction_rows_total)
secs=$(metric 18283 inflow_compaction_duration_seconds_sum)
files=$(metric 18283 inflow_compacted_files_total)

python3 - "$vis" "$idle_q" "$idle_i" "$idle_c" "$rows" "$secs" "$files" <<'EOF'
import json, sys
vis, q, i, c = (json.loads(x) for x in sys.argv[1:5])
rows, secs, files = (float(x) for x in sys.argv[5:8])
print("| measure | value |")
print("|---|---|")
print(f"| write-to-visible p50 | {vis['p50_ms']:.0f} ms |")
print(f"| write-to-visible p99 (target <= 1000 ms) | {vis['p99_ms']:.0f} ms |")
print(f"| of which the 204 (WAL flush), p50 / p99 | {vis['ack_p50_ms']:.0f} / {vis['ack_p99_ms']:.0f} ms |")
print(f"| object-store requests/s at idle: querier | {q['per_second']:.2f} |")
print(f"| object-store requests/s at idle: ingester | {i['per_second']:.2f} |")
print(f"| object-store requests/s at idle: compactor | {c['per_second']:.2f} |")
rate = rows / secs if secs > 0 else float('nan')
print(f"| compaction | {rows:.0f} rows from {files:.0f} files in {secs:.1f} s: {rate:,.0f} rows/s |")
EOF
