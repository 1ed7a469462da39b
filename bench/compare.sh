#!/usr/bin/env bash
# Compares Inflow with InfluxDB 1.6 and VictoriaMetrics on the same machine,
# the same data and the same queries, in one run, and prints one markdown
# table with ratios (absolute numbers drift on shared machines; ratios taken
# in the same run are what we track).
#
#   bench/compare.sh [--quick]
#
# --quick finishes in a few minutes; its last line is
#   inflow/influxdb1 ingest ratio: X
# Inflow runs with durable acknowledgements (its default WAL flush), never no_sync.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/inflow-target}"

quick=0
[ "${1:-}" = "--quick" ] && quick=1
# The regular set is large enough (216+ requests) that ingest is measured in
# steady state, not dominated by the last requests waiting for the 1 s WAL
# flush. The high-cardinality set is smaller: InfluxDB 1.6 takes it at about
# 10 K lines/s.
if [ $quick = 1 ]; then
    data=(--hosts 1000 --interval 10s --duration 3h)
    hc_data=(--hosts 100 --interval 10s --duration 3h)
    # 20 runs, as the full run: with 5, a single-host median moved by half
    # between runs; 20 cost the quick run about 30 s more.
    repeat=20
    npasses=3
else
    data=(--hosts 1000 --interval 10s --duration 12h)
    hc_data=(--hosts 1000 --interval 10s --duration 3h)
    repeat=20
    npasses=2
fi
batch=5000
connections=16

for pkg in influxdb victoria-metrics; do
    if ! dpkg -s "$pkg" >/dev/null 2>&1; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg" >/dev/null
    fi
done
. bench/build.sh

work=$(mktemp -d)
pids=()
cleanup() {
    rc=$?
    # On failure, the end of each server's log says why (they go with $work).
    if [ $rc -ne 0 ]; then
        for log in "$work"/*.log; do [ -f "$log" ] && { echo "== $log" >&2; tail -n 5 "$log" >&2; }; done
    fi
    # A paused server would not act on SIGTERM.
    for p in "${pids[@]}"; do kill -CONT "$p" 2>/dev/null || true; kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true; rm -rf "$work"
}
trap cleanup EXIT

# pause PID... / resume PID...: each load and each query pass gets the
# machine (two cores here) to itself. Running, the other servers' background
# work (merges in VictoriaMetrics, compactions in InfluxDB, persistence in
# Inflow) slowed it by a varying amount: InfluxDB's single-groupby-1-1-1
# median was 0.85, 1.56 and 2.22 ms in three quick runs before this.
pause() { kill -STOP "$@" 2>/dev/null || true; }
resume() { kill -CONT "$@" 2>/dev/null || true; }

# wait_http URL [SECONDS]: 10 s unless told; a restart that replays the
# full run's WAL (1.9 GB) took longer than that on a slow machine.
wait_http() {
    for _ in $(seq 1 $((${2:-10} * 10))); do curl -fs -o /dev/null "$1" && return 0; sleep 0.1; done
    echo "no answer from $1" >&2; exit 1
}
peak_rss_kb() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }

# InfluxDB 1.6 on loopback with a temp dir.
mkdir -p "$work/influxdb"
cat > "$work/influxdb/influxdb.conf" <<CONF
reporting-disabled = true
bind-address = "127.0.0.1:18088"
[meta]
  dir = "$work/influxdb/meta"
[data]
  dir = "$work/influxdb/data"
  wal-dir = "$work/influxdb/wal"
  query-log-enabled = false
  # Snapshot the cache and compact soon after writes stop, so its disk
  # figure is TSM files (its steady state), not the WAL.
  cache-snapshot-write-cold-duration = "1s"
  compact-full-write-cold-duration = "1s"
  # Lifted so every system stores the same high-cardinality data.
  max-values-per-tag = 0
  max-series-per-database = 0
  # The full run's high-cardinality set outgrows the default 1 GiB cache
  # before InfluxDB snapshots it, and writes then fail with 500.
  cache-max-memory-size = "8g"
[coordinator]
  # Its compactions run during the high-cardinality load; don't time out.
  write-timeout = "120s"
[http]
  bind-address = "127.0.0.1:18086"
  log-enabled = false
[monitor]
  store-enabled = false
CONF
influxd -config "$work/influxdb/influxdb.conf" >"$work/influxdb.log" 2>&1 &
pids+=($!); influx_pid=$!
wait_http http://127.0.0.1:18086/ping
curl -fs -XPOST http://127.0.0.1:18086/query --data-urlencode 'q=CREATE DATABASE bench' >/dev/null
curl -fs -XPOST http://127.0.0.1:18086/query --data-urlencode 'q=CREATE DATABASE benchhc' >/dev/null

# VictoriaMetrics. Its default retention is one month, and it silently drops
# older samples on ingest: the generated data starts on 2016-01-01, so
# without a longer retention it stored nothing (0 rows in storage, 172 KB on
# disk for the quick set) and its ingest figure was for parsing alone.
# It also closes every connection after -http.connTimeout (2 minutes by
# default), even one in the middle of a request: its high-cardinality load
# in the full run, whose requests queue for about 30 s, lost a dozen
# requests that way ("error sending request"; truncated lines in its log).
# Alone on the machine that load's requests waited 28 s (p50) to 35 s (p99)
# for one of its 8 insert slots; -insert.maxQueueDuration (1 minute by
# default) fails a request that waits longer, in the middle of its body.
vm_flags=(-retentionPeriod=100y -loggerLevel ERROR -http.connTimeout=1h -insert.maxQueueDuration=10m)
victoria-metrics -storageDataPath "$work/vm" -httpListenAddr 127.0.0.1:18428 "${vm_flags[@]}" >"$work/vm.log" 2>&1 &
pids+=($!); vm_pid=$!
wait_http http://127.0.0.1:18428/health

# Inflow, default WAL flush (durable acknowledgements), auth off for the benchmark.
"$bin/inflow" serve --without-auth --data-dir "$work/inflow" --http-bind 127.0.0.1:18181 --log-filter warn >"$work/inflow.log" 2>&1 &
pids+=($!); inflow_pid=$!
wait_http http://127.0.0.1:18181/health

# A second Inflow with a 10ms WAL flush (still durable): separates the cost of
# the group-commit interval from CPU cost. The headline ratio uses the default.
"$bin/inflow" serve --without-auth --data-dir "$work/inflow-10ms" --http-bind 127.0.0.1:18182 --log-filter warn \
    --wal-flush-interval 10ms >"$work/inflow-10ms.log" 2>&1 &
pids+=($!); fast_pid=$!
wait_http http://127.0.0.1:18182/health

# Each load starts with the page cache written back (`sync`): Inflow and
# InfluxDB 1.6 fsync what they acknowledge, and on ext4 an fsync waits for
# a journal commit that writes back other processes' dirty pages too, so a
# load right after a peer's multi-GB load paid for the peer's data (one
# 2.9 s stall of every request of Inflow's quick high-cardinality load).
run_write() { sync; "$bin/inflow-bench" write --url "$1" --api "$2" --batch $batch --connections $connections "${@:3}"; }
# alone PID COMMAND...: runs COMMAND with every server but PID paused (see
# `pause`): InfluxDB's compaction of the high-cardinality set (73 s) ran
# during VictoriaMetrics' load of it, for one.
alone() {
    local keep=$1 others=() p
    shift
    for p in "${pids[@]}"; do [ "$p" != "$keep" ] && others+=("$p"); done
    pause "${others[@]}"
    "$@"
    resume "${others[@]}"
}
# settled PID COMMAND...: runs COMMAND once PID has used under 2% of a core
# for a second (at most 60 s of waiting), so a query pass measures the
# server at rest rather than its background work (compactions, deletes of
# merged files). Two quick runs of one binary gave 0.59 and 0.33 ms for
# single-groupby-1-1-1 over Parquet without this wait.
settled() {
    local pid=$1 ticks before _
    shift
    ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
    for _ in $(seq 1 60); do
        before=$(ticks); sleep 1
        [ $(( $(ticks) - before )) -le 1 ] && break
    done
    "$@"
}
w_influx=$(alone "$influx_pid" run_write http://127.0.0.1:18086 v1 "${data[@]}")
w_vm=$(alone "$vm_pid" run_write http://127.0.0.1:18428 v1 "${data[@]}")
w_inflow=$(alone "$inflow_pid" run_write http://127.0.0.1:18181 v3 "${data[@]}")
w_inflow_fast=$(alone "$fast_pid" run_write http://127.0.0.1:18182 v3 "${data[@]}")
# The high-cardinality variant: one new series per line, into its own database.
h_influx=$(alone "$influx_pid" run_write http://127.0.0.1:18086 v1 "${hc_data[@]}" --high-cardinality --db benchhc)
h_vm=$(alone "$vm_pid" run_write http://127.0.0.1:18428 v1 "${hc_data[@]}" --high-cardinality --db benchhc)
h_inflow=$(alone "$inflow_pid" run_write http://127.0.0.1:18181 v3 "${hc_data[@]}" --high-cardinality --db benchhc)

# Let the peers settle (InfluxDB compacts its cache, VM flushes) before measuring disk.
curl -fs http://127.0.0.1:18428/internal/force_flush >/dev/null || true
sleep 10
# Every peer must hold all the data: VictoriaMetrics drops samples outside
# its retention without an error.
vm_expected=$(printf '%s\n%s\n' "$w_vm" "$h_vm" | python3 -c 'import json,sys; print(sum(json.loads(l)["lines"] for l in sys.stdin) * 10)')
vm_stored=$(curl -fs http://127.0.0.1:18428/metrics | awk '/^vm_rows\{type="storage\/(small|big)"\}/ {s += $2} END {printf "%d", s}')
if [ "$vm_stored" -lt "$vm_expected" ]; then
    echo "VictoriaMetrics stored $vm_stored of $vm_expected field values; its figures would not compare" >&2
    exit 1
fi
# InfluxDB's queries run several times slower while its TSM compactions of the
# high-cardinality set run (seen: single-groupby-1-1-1 at 20 ms instead of
# 1 ms), so its queries wait until no compaction is active, three checks in a row.
influx_compacting() {
    curl -fs -G http://127.0.0.1:18086/query --data-urlencode 'q=SHOW STATS' | python3 -c '
import json, sys
d = json.load(sys.stdin)
print(sum(v for s in d["results"][0].get("series", []) if s["name"] == "tsm1_engine"
          for c, v in zip(s["columns"], s["values"][0]) if c.endswith("CompactionsActive")))'
}
quiet=0
for _ in $(seq 1 300); do
    if [ "$(influx_compacting)" = "0" ]; then quiet=$((quiet + 1)); else quiet=0; fi
    [ $quiet -ge 3 ] && break
    sleep 1
done

# query_passes INFLUX_VAR INFLOW_VAR: the query set on InfluxDB and on Inflow,
# $npasses times, the two taking turns; each variable collects its
# system's passes. The table shows the median of the passes' medians: a
# pass's median moved by up to 40% between passes minutes apart on this
# machine (for every query of a pass at once), more than the differences
# being measured.
# A third variable collects Inflow's InfluxQL passes (the same text as
# InfluxDB's, on /query), whose answers are first checked equal to InfluxDB's.
query_passes() {
    local -n influx_out=$1 inflow_out=$2 inflow_iql_out=$3 check_out=$4
    local _
    influx_out="" inflow_out="" inflow_iql_out=""
    check_out=$("$bin/inflow-bench" check-influxql --a http://127.0.0.1:18086 --b http://127.0.0.1:18181 "${data[@]}" || true)
    for _ in $(seq 1 "$npasses"); do
        influx_out+=$(alone "$influx_pid" settled "$influx_pid" "$bin/inflow-bench" query --url http://127.0.0.1:18086 --lang influxql --repeat $repeat "${data[@]}")$'\n'
        inflow_out+=$(alone "$inflow_pid" settled "$inflow_pid" "$bin/inflow-bench" query --url http://127.0.0.1:18181 --lang sql --repeat $repeat "${data[@]}")$'\n'
        inflow_iql_out+=$(alone "$inflow_pid" settled "$inflow_pid" "$bin/inflow-bench" query --url http://127.0.0.1:18181 --lang influxql --repeat $repeat "${data[@]}")$'\n'
    done
}
query_passes q_influx q_inflow q_inflow_iql check_iql

# Persist Inflow's buffer: restart it with a snapshot size of one WAL file,
# so start-up persists everything, then wait until the WAL is gone. Disk is
# then Parquet plus catalog, and the queries run again against the files.
r_inflow_first=$(peak_rss_kb $inflow_pid)
kill "$inflow_pid"; wait "$inflow_pid" 2>/dev/null || true
# The compactor checks every second, and the queries wait until it has
# merged the persisted files (the counts stop changing): the steady state of
# data that is more than a few minutes old. With no grace period, the merged
# inputs are deleted before disk is measured.
"$bin/inflow" serve --without-auth --data-dir "$work/inflow" --http-bind 127.0.0.1:18181 --log-filter info \
    --wal-snapshot-size 1 --retention-check-interval 1s --gc-grace-period 0s >"$work/inflow-persist.log" 2>&1 &
pids+=($!); inflow_pid=$!
wait_http http://127.0.0.1:18181/health 600
for _ in $(seq 1 600); do
    [ -z "$(ls -A "$work/inflow/wal/inflow-0" 2>/dev/null)" ] && break
    sleep 0.5
done
catalog_files() {
    for db in bench benchhc; do
        curl -fs -G http://127.0.0.1:18181/api/v3/query_sql --data-urlencode db=$db --data-urlencode format=csv \
            --data-urlencode "q=SELECT count(*) AS n FROM system.parquet_files" | tail -1
    done | paste -sd+ -
}
files_before=$(catalog_files); files_after=""
for _ in $(seq 1 100); do
    sleep 3
    n=$(catalog_files)
    [ "$n" = "$files_after" ] && break
    files_after=$n
done
sleep 2
query_passes q_influx_pq q_inflow_pq q_inflow_iql_pq check_iql_pq

# Every system holds both data sets when its disk is measured.
values=$(printf '%s\n%s\n' "$w_inflow" "$h_inflow" | python3 -c 'import json,sys; print(sum(json.loads(l)["lines"] for l in sys.stdin) * 10)')
raw_lp=$(printf '%s\n%s\n' "$w_inflow" "$h_inflow" | python3 -c 'import json,sys; print(sum(json.loads(l)["bytes"] for l in sys.stdin))')
# Allocated bytes (not apparent sizes: InfluxDB preallocates sparse series files).
disk() { du -s -B1 "$1" | cut -f1; }
r_influx=$(peak_rss_kb $influx_pid); r_vm=$(peak_rss_kb $vm_pid)
# Stopped, VictoriaMetrics writes out the parts it still holds in memory.
kill -INT "$vm_pid"; wait "$vm_pid" 2>/dev/null || true
d_influx=$(disk "$work/influxdb")
d_vm=$(disk "$work/vm")
d_inflow=$(disk "$work/inflow")
r_inflow=$(( $(peak_rss_kb $inflow_pid) > r_inflow_first ? $(peak_rss_kb $inflow_pid) : r_inflow_first ))

# Ingest, rounds 2 and 3: the regular set again into a fresh VictoriaMetrics
# and a fresh Inflow (default flags), taking turns, each stopped and deleted
# after its round. Runs on this machine differ by 25-50%, so the ingest row
# uses the median of the three rounds for these two (InfluxDB 1.6, several
# times slower, runs once). Fresh instances keep these rounds out of the
# disk, memory and query figures above.
# round DIR URL API SERVER...: starts SERVER, loads the regular set into it
# at URL, stops it and deletes DIR.
round() {
    local dir=$1 url=$2 api=$3
    "${@:4}" >>"$dir.log" 2>&1 &
    local p=$!
    wait_http "$url/health"
    pause "${pids[@]}"
    run_write "$url" "$api" "${data[@]}"
    resume "${pids[@]}"
    kill "$p"; wait "$p" 2>/dev/null || true; rm -rf "$dir"
}
round_vm() {
    round "$work/vm-round" http://127.0.0.1:18429 v1 \
        victoria-metrics -storageDataPath "$work/vm-round" -httpListenAddr 127.0.0.1:18429 "${vm_flags[@]}"
}
round_inflow() {
    round "$work/inflow-round" http://127.0.0.1:18183 v3 \
        "$bin/inflow" serve --without-auth --data-dir "$work/inflow-round" --http-bind 127.0.0.1:18183 --log-filter warn
}
w_inflow_rounds=$(round_inflow); w_vm_rounds=$(round_vm)
w_vm_rounds+=$'\n'$(round_vm); w_inflow_rounds+=$'\n'$(round_inflow)

python3 - "$w_influx" "$w_vm" "$w_inflow" "$q_influx" "$q_inflow" "$values" \
    "$d_influx" "$d_vm" "$d_inflow" "$r_influx" "$r_vm" "$r_inflow" "$w_inflow_fast" \
    "$h_influx" "$h_vm" "$h_inflow" "$q_inflow_pq" "$raw_lp" "$files_before" "$files_after" \
    "$w_inflow_rounds" "$w_vm_rounds" "$q_influx_pq" "$npasses" "$repeat" \
    "$q_inflow_iql" "$q_inflow_iql_pq" "$check_iql" "$check_iql_pq" <<'PY'
import json, statistics, sys
a = sys.argv[1:]
def passes(text):
    """Each query's median over the passes: the median of their medians."""
    by_name = {}
    for q in map(json.loads, filter(None, text.splitlines())):
        by_name.setdefault(q["name"], []).append(q["median_ms"])
    return {name: {"median_ms": statistics.median(m)} for name, m in by_name.items()}
qp = passes(a[16])
qip = passes(a[22])
raw = int(a[17])
wff = json.loads(a[12])
hi, hv, hf = (json.loads(x) for x in a[13:16])
wi, wv, wf = (json.loads(x) for x in a[0:3])
# Ingest rounds: the first (above) and two more on fresh instances.
rounds_f = [wf["lines_per_sec"]] + [json.loads(l)["lines_per_sec"] for l in a[20].splitlines()]
rounds_v = [wv["lines_per_sec"]] + [json.loads(l)["lines_per_sec"] for l in a[21].splitlines()]
lf, lv = statistics.median(rounds_f), statistics.median(rounds_v)
qi = passes(a[3])
qf = passes(a[4])
values = int(a[5])
di, dv, df = (int(x) for x in a[6:9])
ri, rv, rf = (int(x) for x in a[9:12])
def r(x, y): return f"{x / y:.2f}" if y else "n/a"
print("| metric | Inflow | InfluxDB 1.6 | VictoriaMetrics | Inflow/InfluxDB 1.6 | Inflow/VictoriaMetrics |")
print("|---|---|---|---|---|---|")
print(f"| ingest lines/s (Inflow and VictoriaMetrics: median of 3 rounds) | {lf:.0f} | {wi['lines_per_sec']:.0f} | {lv:.0f} | {r(lf, wi['lines_per_sec'])} | {r(lf, lv)} |")
print(f"| ingest lines/s, each round | {' / '.join(f'{x:.0f}' for x in rounds_f)} | | {' / '.join(f'{x:.0f}' for x in rounds_v)} | | {' / '.join(r(x, y) for x, y in zip(rounds_f, rounds_v))} |")
print(f"| ingest lines/s, Inflow with --wal-flush-interval 10ms | {wff['lines_per_sec']:.0f} | {wi['lines_per_sec']:.0f} | {wv['lines_per_sec']:.0f} | {r(wff['lines_per_sec'], wi['lines_per_sec'])} | {r(wff['lines_per_sec'], wv['lines_per_sec'])} |")
print(f"| ingest lines/s, high cardinality (a new series per line) | {hf['lines_per_sec']:.0f} | {hi['lines_per_sec']:.0f} | {hv['lines_per_sec']:.0f} | {r(hf['lines_per_sec'], hi['lines_per_sec'])} | {r(hf['lines_per_sec'], hv['lines_per_sec'])} |")
print(f"| write p99 ms | {wf['p99_ms']:.1f} | {wi['p99_ms']:.1f} | {wv['p99_ms']:.1f} | {r(wf['p99_ms'], wi['p99_ms'])} | {r(wf['p99_ms'], wv['p99_ms'])} |")
for name in qf:
    f, i = qf[name], qi.get(name)
    print(f"| {name} median ms (SQL vs InfluxQL), buffer | {f['median_ms']:.2f} | {i['median_ms']:.2f} | – | {r(f['median_ms'], i['median_ms'])} | – |")
for name in qp:
    f, i = qp[name], qip.get(name)
    print(f"| {name} median ms (SQL vs InfluxQL), Parquet | {f['median_ms']:.2f} | {i['median_ms']:.2f} | – | {r(f['median_ms'], i['median_ms'])} | – |")
qiq, qiqp = passes(a[25]), passes(a[26])
def checked(text):
    return {c["name"]: c["equal"] for c in map(json.loads, filter(None, text.splitlines()))}
ck, ckp = checked(a[27]), checked(a[28])
for rows, base, check, where in ((qiq, qi, ck, "buffer"), (qiqp, qip, ckp, "Parquet")):
    for name in rows:
        f, i = rows[name], base.get(name)
        same = {True: "answers equal", False: "answers DIFFER"}.get(check.get(name), "not checked")
        print(f"| {name} median ms (InfluxQL, {same}), {where} | {f['median_ms']:.2f} | {i['median_ms']:.2f} | – | {r(f['median_ms'], i['median_ms'])} | – |")
print(f"| disk bytes per field value (Inflow persisted) | {df / values:.2f} | {di / values:.2f} | {dv / values:.2f} | {r(df, di)} | {r(df, dv)} |")
print(f"| raw line protocol bytes per field value | {raw / values:.2f} | | | | |")
print(f"| peak RSS MiB | {rf / 1024:.0f} | {ri / 1024:.0f} | {rv / 1024:.0f} | {r(rf, ri)} | {r(rf, rv)} |")
print()
print(f"Inflow Parquet files (regular + high-cardinality database): {a[18]} persisted, {a[19]} after compaction")
print()
print(f"Query medians: the median of {a[23]} passes' medians, InfluxDB's and Inflow's passes taking turns; "
      f"each pass runs each query {a[24]} times after a warm-up. The Parquet rows compare with InfluxDB passes "
      "taken between Inflow's Parquet passes.")
print()
print(f"inflow/influxdb1 ingest ratio: {lf / wi['lines_per_sec']:.2f}")
PY
