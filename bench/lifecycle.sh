#!/usr/bin/env bash
# Data lifecycle costs on one Inflow (release build), in one run:
#
#   1. the benchmark data set (bench/compare.sh's: 1,000 hosts every 10 s for
#      12 h, 4.3 M rows; --quick: 3 h), written and persisted;
#   2. `inflow backup` of the whole store to a directory (MB/s), a second
#      backup with nothing new (incremental: what it copies), and
#      `inflow restore` into an empty directory (MB/s); the restored server
#      answers a count as the source did;
#   3. the TSBS SQL queries (bench/compare.sh's) before a predicate delete,
#      with its tombstone outstanding (one host the queries do not read,
#      over all time: every file is read through it), and after the
#      compactor rewrote the files and dropped it.
#
#   bench/lifecycle.sh [--quick]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/build.sh
data=(--hosts 1000 --interval 10s --duration 12h)
[ "${1:-}" = "--quick" ] && data=(--hosts 1000 --interval 10s --duration 3h)
repeat=10

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
port=18195
url=http://127.0.0.1:$port
start() { # data-dir flags...
    local dir=$1; shift
    "$bin/inflow" serve --without-auth --data-dir "$dir" --http-bind 127.0.0.1:$port --log-filter warn "$@" >>"$work/inflow.log" 2>&1 &
    pids+=($!); inflow_pid=$!
    for _ in $(seq 1200); do curl -sf "$url/health" >/dev/null && return; sleep 0.1; done
    echo "inflow did not start:"; tail "$work/inflow.log"; exit 1
}
stop() { kill "$inflow_pid"; wait "$inflow_pid" 2>/dev/null || true; }
ms() { echo $(( $(date +%s%N) / 1000000 )); }
mbs() { awk -v b="$1" -v t="$2" 'BEGIN { printf "%.1f", (b / 1048576) / (t / 1000) }'; }
count() { curl -sf "$url/api/v3/query_sql?db=bench&q=SELECT+count(*)+AS+n+FROM+cpu" ; }

echo "== loading ${data[*]}" >&2
start "$work/source" --retention-check-interval 1h
"$bin/inflow-bench" write --url "$url" --api v3 --batch 5000 --connections 8 "${data[@]}" >/dev/null
stop
# Everything into Parquet: a start that persists after every WAL file
# replays the WAL and persists it.
start "$work/source" --retention-check-interval 1h --wal-snapshot-size 1
for _ in $(seq 1200); do
    [ -z "$(ls "$work/source/wal/inflow-0" 2>/dev/null)" ] && break
    sleep 0.1
done
stop
bytes=$(du -sb "$work/source" | cut -f1)

t0=$(ms); "$bin/inflow" backup --data-dir "$work/source" --to "$work/backups" --log-filter warn >"$work/b1"; t1=$(ms)
"$bin/inflow" backup --data-dir "$work/source" --to "$work/backups" --log-filter warn >"$work/b2"; t2=$(ms)
"$bin/inflow" restore --from "$work/backups" --data-dir "$work/restored" --log-filter warn >"$work/r1"; t3=$(ms)
backed=$(sed -n 's/.*WAL files, \([0-9]*\) bytes.*/\1/p' "$work/b1")
second=$(sed -n 's/.*copied \([0-9]*\) files (\([0-9]*\) bytes).*/\1 files, \2 bytes/p' "$work/b2")

start "$work/restored" --retention-check-interval 1h
restored_count=$(count); stop
start "$work/source" --retention-check-interval 1h
source_count=$(count)
[ "$restored_count" = "$source_count" ] || { echo "restored count $restored_count != source $source_count"; exit 1; }

# name median_ms, per query (inflow-bench prints one JSON line each).
queries() {
    "$bin/inflow-bench" query --url "$url" --lang sql --repeat $repeat "${data[@]}" 2>/dev/null |
        python3 -c 'import json, sys; [print(j["name"], round(j["median_ms"], 2)) for j in map(json.loads, sys.stdin)]'
}
echo "== queries before the delete" >&2
before=$(queries)
curl -sf -XPOST "$url/query?db=bench" --data-urlencode "q=DELETE FROM cpu WHERE hostname = 'host_999'" >/dev/null
pending=$(curl -sf "$url/api/v3/query_sql?db=bench&q=SELECT+pending_files+FROM+system.deletes")
echo "== queries with the tombstone outstanding ($pending)" >&2
during=$(queries)
stop
start "$work/source" --retention-check-interval 200ms
dropped=no
for _ in $(seq 600); do
    if [ "$(curl -sf "$url/api/v3/query_sql?db=bench&q=SELECT+count(*)+AS+n+FROM+system.deletes")" = '[{"n":0}]' ]; then
        dropped=yes; break
    fi
    sleep 0.2
done
[ $dropped = yes ] || { echo "the tombstone was not dropped within 2 minutes"; exit 1; }
t4=$(ms)
echo "== queries after the rewrite" >&2
after=$(queries)
stop

echo
echo "| step | figure |"
echo "|---|---|"
echo "| data set | ${data[*]}: store $((bytes / 1048576)) MiB, $(echo "$source_count" | sed 's/[^0-9]//g') rows |"
echo "| backup (first) | $backed bytes in $((t1 - t0)) ms: $(mbs "$backed" $((t1 - t0))) MB/s |"
echo "| backup (second, nothing new) | $((t2 - t1)) ms, copied $second |"
echo "| restore | $backed bytes in $((t3 - t2)) ms: $(mbs "$backed" $((t3 - t2))) MB/s |"
echo
echo "query medians (ms), ${repeat} runs each:"
echo "| query | before | tombstone outstanding | after the rewrite |"
echo "|---|---|---|---|"
paste <(echo "$before") <(echo "$during" | awk '{print $2}') <(echo "$after" | awk '{print $2}') | awk '{printf "| %s | %s | %s | %s |\n", $1, $2, $3, $4}'
