#!/usr/bin/env bash
# Streams TSBS-style cpu line protocol into `inflow serve --buffer-mem-limit`
# and reports the peak RSS next to the limit, with the ingest rate: the
# buffer must persist to Parquet and stay bounded however much is written.
#
#   bench/memory.sh [--limit 256MiB] [--gib 2] [--connections 64]
#
# Prints one JSON line: bytes and lines written, lines/s, idle and peak RSS,
# and peak / (3 × limit + idle), which must stay below 1.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/inflow-target}"

limit=256MiB
connections=64
gib=2
while [ $# -gt 0 ]; do
    case "$1" in
        --limit) limit=$2; shift 2 ;;
        --gib) gib=$2; shift 2 ;;
        --connections) connections=$2; shift 2 ;;
        *) echo "usage: bench/memory.sh [--limit SIZE] [--gib N] [--connections N]" >&2; exit 2 ;;
    esac
done
. bench/build.sh

work=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

"$bin/inflow" serve --without-auth --data-dir "$work/inflow" --http-bind 127.0.0.1:18183 --log-filter info \
    --buffer-mem-limit "$limit" >"$work/inflow.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do curl -fs -o /dev/null http://127.0.0.1:18183/health && break; sleep 0.1; done
sleep 1
idle_kb=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")

# Each run writes ~0.5 GiB (1000 hosts, 10 s interval, 5 h); runs start
# where the previous one ended, so every line is a new point.
target=$((gib * 1024 * 1024 * 1024))
written=0; lines=0; seconds=0; start=1451606400; runs=0
while [ "$written" -lt "$target" ]; do
    out=$("$bin/inflow-bench" write --url http://127.0.0.1:18183 --api v3 --batch 5000 --connections "$connections" \
        --hosts 1000 --interval 10s --duration 5h --start "$start")
    read -r b l s < <(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(d["bytes"], d["lines"], d["seconds"])' "$out")
    written=$((written + b)); lines=$((lines + l)); seconds=$(python3 -c "print($seconds + $s)")
    start=$((start + 5 * 3600)); runs=$((runs + 1))
    echo "run $runs: $(python3 -c "print(f'{$written / 2**30:.2f}')") GiB so far, RSS $(awk '/VmRSS/ {print $2}' "/proc/$pid/status") kB" >&2
done
peak_kb=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
files=$(find "$work/inflow/data" -name '*.parquet' | wc -l)
persists=$(grep -c "persisted buffer to Parquet" "$work/inflow.log" || true)
limit_bytes=$(python3 - "$limit" <<'PY'
import re, sys
m = re.fullmatch(r"(\d+)\s*([KMG]i?B?|B)?", sys.argv[1].strip(), re.I)
n, u = int(m.group(1)), (m.group(2) or "B").upper().rstrip("B")
print(n * {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "KI": 2**10, "MI": 2**20, "GI": 2**30}[u])
PY
)
python3 - "$written" "$lines" "$seconds" "$idle_kb" "$peak_kb" "$limit_bytes" "$files" "$persists" <<'PY'
import json, sys
w, l, s, idle, peak, limit, files, persists = (float(x) for x in sys.argv[1:])
budget = 3 * limit + idle * 1024
print(json.dumps({
    "bytes_written": int(w), "lines": int(l), "lines_per_sec": round(l / s), "seconds": round(s, 1),
    "idle_rss_mib": round(idle / 1024, 1), "peak_rss_mib": round(peak / 1024, 1),
    "limit_mib": round(limit / 2**20, 1), "peak_over_budget": round(peak * 1024 / budget, 3),
    "parquet_files": int(files), "persists": int(persists),
}))
PY
