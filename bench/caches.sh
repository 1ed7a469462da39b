#!/usr/bin/env bash
# The caches and the file index against the plain queries they replace, on
# one Inflow (release build), in one run:
#
#   1. last_cache() for 1,000 and 100,000 series (3 points each) beside the
#      same answer by plain SQL (DISTINCT ON ... ORDER BY time DESC), for
#      every series and for one, over the buffer and then over Parquet
#      (a restart that persists everything; the caches refill at start-up);
#   2. a lookup of one host over 1,000 Parquet files (one per second of
#      data, every file spanning every host name), before and after a file
#      index on the host tag.
#
#   bench/caches.sh [--quick]      (--quick: 10,000 series instead of 100,000)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/build.sh
big=100000
[ "${1:-}" = "--quick" ] && big=10000
repeat=20

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
port=18191
url=http://127.0.0.1:$port
start() { # data-dir flags...
    local dir=$1; shift
    "$bin/inflow" serve --without-auth --data-dir "$dir" --http-bind 127.0.0.1:$port --log-filter warn "$@" >>"$work/inflow.log" 2>&1 &
    pids+=($!); inflow_pid=$!
    for _ in $(seq 600); do curl -sf "$url/health" >/dev/null && return; sleep 0.1; done
    echo "inflow did not start:"; tail "$work/inflow.log"; exit 1
}
stop() { kill "$inflow_pid"; wait "$inflow_pid" 2>/dev/null || true; }
sqlt() { # db name query
    "$bin/inflow-bench" sql --url "$url" --db "$1" --name "$2" --q "$3" --repeat $repeat | grep -v "^{"
}
write_series() { # db series
    python3 - "$2" > "$work/lines.lp" <<'PY'
import sys
n = int(sys.argv[1])
t0 = 1_700_000_000_000_000_000
out = sys.stdout
for p in range(3):
    for i in range(n):
        out.write(f"m,host=h{i},region=r{i % 10} usage={(i * 7 + p) % 100}.5,temp={p}i {t0 + p * 1_000_000_000}\n")
PY
    split -l 50000 "$work/lines.lp" "$work/part."
    for f in "$work"/part.*; do
        curl -sf -XPOST "$url/api/v3/write_lp?db=$1" --data-binary @"$f" >/dev/null
    done
    rm -f "$work"/part.* "$work/lines.lp"
}
lvc_queries() { # where
    for n in 1000 $big; do
        db=lvc$n
        sqlt $db "$1 $n series: last_cache()" "SELECT host, usage, temp, time FROM last_cache('m')"
        sqlt $db "$1 $n series: plain SQL" "SELECT DISTINCT ON (host) host, usage, temp, time FROM m ORDER BY host, time DESC"
        sqlt $db "$1 $n series, one host: last_cache()" "SELECT host, usage, temp, time FROM last_cache('m') WHERE host = 'h42'"
        sqlt $db "$1 $n series, one host: plain SQL" "SELECT host, usage, temp, time FROM m WHERE host = 'h42' ORDER BY time DESC LIMIT 1"
    done
}

echo "## last value cache"
start "$work/lvc"
for n in 1000 $big; do
    write_series lvc$n $n
    curl -sf -XPOST "$url/api/v3/configure/last_cache" -H 'Content-Type: application/json' \
        -d "{\"db\": \"lvc$n\", \"table\": \"m\", \"key_columns\": [\"host\"], \"value_columns\": [\"usage\", \"temp\"]}" >/dev/null
done
lvc_queries buffer
stop
start "$work/lvc" --wal-snapshot-size 1
for _ in $(seq 600); do [ -z "$(ls -A "$work/lvc/wal/inflow-0" 2>/dev/null)" ] && break; sleep 0.5; done
# The caches refill from Parquet at start-up.
for _ in $(seq 600); do
    got=$(curl -sf -G "$url/api/v3/query_sql" --data-urlencode db=lvc$big --data-urlencode format=csv \
        --data-urlencode "q=SELECT count(*) FROM last_cache('m')" | tail -1)
    [ "$got" = "$big" ] && break
    sleep 0.5
done
sleep 3
lvc_queries parquet
stop

echo "## file index"
start "$work/fidx" --wal-snapshot-size 1 --gen1-duration 1s --compaction-max-rows 0 --retention-check-interval 1s
python3 - > "$work/fidx.lp" <<'PY'
for i in range(1000):
    for h in ("a", "z", f"h{i:04}"):
        print(f"m,host={h} v={i}i {i * 1_000_000_000}")
PY
curl -sf -XPOST "$url/api/v3/write_lp?db=fidx" --data-binary @"$work/fidx.lp" >/dev/null
files() { curl -sf -G "$url/api/v3/query_sql" --data-urlencode db=fidx --data-urlencode format=csv --data-urlencode "q=$1" | tail -1; }
for _ in $(seq 1200); do [ "$(files 'SELECT count(*) FROM system.parquet_files')" = "1000" ] && break; sleep 0.5; done
lookup="SELECT count(*) AS n FROM m WHERE host = 'h0500'"
sqlt fidx "1000 files, one host: no index" "$lookup"
curl -sf -XPOST "$url/api/v3/enterprise/configure/file_index" -H 'Content-Type: application/json' \
    -d '{"db": "fidx", "table": "m", "columns": ["host"]}' >/dev/null
for _ in $(seq 1200); do [ "$(files 'SELECT indexed_files FROM system.file_index')" = "1000" ] && break; sleep 0.5; done
sqlt fidx "1000 files, one host: file index" "$lookup"
