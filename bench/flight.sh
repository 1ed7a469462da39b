#!/usr/bin/env bash
# Streams a query of at least 20 million rows to an Arrow Flight client and,
# for comparison, the same query as CSV over HTTP; reports rows/s for each
# and the server's peak RSS above its idle RSS while each ran (the target:
# below 500 MiB: results stream, nothing holds them whole).
#
#   bench/flight.sh [--hours 56]
#
# 1000 hosts every 10 s: 56 h is 20.16 M rows. Prints one JSON line.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/inflow-target}"
venv="${INFLOW_VENV:-$HOME/.cache/inflow-venv}"
hours=56
[ "${1:-}" = "--hours" ] && hours=$2
. bench/build.sh

work=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

port=18184
"$bin/inflow" serve --without-auth --data-dir "$work/inflow" --http-bind 127.0.0.1:$port --log-filter warn \
    --buffer-mem-limit 256MiB >"$work/inflow.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do curl -fs -o /dev/null http://127.0.0.1:$port/health && break; sleep 0.1; done

"$bin/inflow-bench" write --url http://127.0.0.1:$port --api v3 --batch 5000 --connections 16 \
    --hosts 1000 --interval 10s --duration "${hours}h" >"$work/write.json"
sleep 3
rss() { awk "/$1/ {print \$2}" "/proc/$pid/status"; }
# Writing 5 to clear_refs resets the peak (VmHWM) to the current RSS.
reset_peak() { echo 5 > "/proc/$pid/clear_refs"; }

reset_peak
flight_idle=$(rss VmRSS)
flight=$("$venv/bin/python" - "$port" <<'PY'
import json, sys, time
import pyarrow.flight as fl
client = fl.FlightClient(f"grpc://127.0.0.1:{sys.argv[1]}")
ticket = fl.Ticket(json.dumps({"database": "bench", "sql_query": "SELECT * FROM cpu", "query_type": "sql"}).encode())
start = time.monotonic()
rows = 0
for chunk in client.do_get(ticket):  # batch by batch; nothing kept
    rows += chunk.data.num_rows
print(rows, time.monotonic() - start)
PY
)
flight_peak=$(rss VmHWM)

reset_peak
csv_idle=$(rss VmRSS)
start=$(date +%s.%N)
csv_lines=$(curl -s --get "http://127.0.0.1:$port/api/v3/query_sql" --data-urlencode "db=bench" \
    --data-urlencode "q=SELECT * FROM cpu" --data-urlencode "format=csv" | wc -l)
csv_seconds=$(python3 -c "import time; print(time.time() - $start)")
csv_peak=$(rss VmHWM)

python3 - "$flight" "$flight_idle" "$flight_peak" "$csv_lines" "$csv_seconds" "$csv_idle" "$csv_peak" <<'PY'
import json, sys
rows, secs = sys.argv[1].split()
rows, secs = int(rows), float(secs)
f_idle, f_peak, csv_lines, csv_secs, c_idle, c_peak = (float(x) for x in sys.argv[2:])
csv_rows = int(csv_lines) - 1  # the header
print(json.dumps({
    "rows": rows,
    "flight_rows_per_sec": round(rows / secs), "flight_seconds": round(secs, 2),
    "flight_idle_rss_mib": round(f_idle / 1024), "flight_peak_above_idle_mib": round((f_peak - f_idle) / 1024),
    "csv_rows": csv_rows, "csv_rows_per_sec": round(csv_rows / csv_secs), "csv_seconds": round(csv_secs, 2),
    "csv_peak_above_idle_mib": round((c_peak - c_idle) / 1024),
    "flight_over_csv": round((rows / secs) / (csv_rows / csv_secs), 2),
}))
PY
