"""Crash loop: writers send numbered points without pause, every
acknowledged point is recorded, and the server is killed (kill -9, or an
abort at a persistence or compaction step) at random moments; after each
restart every acknowledged point must be present exactly once.

Run through scripts/crash-loop.sh, which builds the binaries first.

    crash_loop.py --mode serve|split --cycles N --bin-dir DIR [--seed S]

`serve` runs `inflow serve`; `split` runs an ingester, a querier (which
answers the checks, from the WAL it tails and the files) and a compactor,
and kills the ingester or the compactor. Prints one line per cycle and a
summary; exits 1 on the first lost or duplicated point.
"""

import argparse
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

T0 = 1_700_000_000_000_000_000
CYCLE_NS = 1_000_000_000_000  # each cycle's points in their own time range
WRITER_NS = 10_000_000_000
BATCH = 200
WRITERS = 4
PERSIST_POINTS = ["after-parquet-write", "after-catalog-commit", "after-wal-delete"]
COMPACT_POINTS = ["after-compacted-write", "after-compaction-commit"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Proc:
    """One server process, restarted on the same flags and port."""

    started = []

    def __init__(self, binary, args, log_path):
        self.binary, self.args, self.log_path = binary, args, log_path
        self.port = free_port()
        self.p = None
        Proc.started.append(self)

    def start(self, crash_point=None):
        env = dict(os.environ)
        env.pop("INFLOW_TEST_CRASH_POINT", None)
        if crash_point:
            env["INFLOW_TEST_CRASH_POINT"] = crash_point
        log = open(self.log_path, "ab")
        self.p = subprocess.Popen(
            [self.binary, *self.args, "--http-bind", f"127.0.0.1:{self.port}"],
            stdout=log, stderr=log, env=env,
        )
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.p.poll() is not None:
                raise RuntimeError(f"{self.binary} exited {self.p.returncode}; see {self.log_path}")
            try:
                with urllib.request.urlopen(self.url("/health"), timeout=1) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.05)
        raise RuntimeError(f"{self.binary} did not become healthy; see {self.log_path}")

    def kill(self):
        """kill -9; True if it had already died (at a crash point)."""
        if self.p is None:
            return False
        died = self.p.poll() is not None
        if not died:
            self.p.send_signal(signal.SIGKILL)
        self.p.wait()
        return died

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"


def sql(proc, q):
    """The rows; none while the database or table does not exist yet."""
    url = proc.url("/api/v3/query_sql?" + urllib.parse.urlencode({"db": "crash", "q": q, "format": "json"}))
    try:
        with urllib.request.urlopen(url, timeout=60) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as e:
        body = e.read().decode(errors="replace")
        if e.code in (400, 404) and "not found" in body:
            return []
        raise RuntimeError(f"query failed: {e.code} {body}") from e


class Writers:
    """WRITERS threads sending batches of numbered points to `target`."""

    def __init__(self, target, cycle):
        self.target, self.cycle = target, cycle
        self.stop = threading.Event()
        self.acked = [set() for _ in range(WRITERS)]
        self.batches = [0] * WRITERS
        self.threads = [threading.Thread(target=self.run, args=(w,)) for w in range(WRITERS)]

    def run(self, w):
        n = 0
        url = self.target.url("/api/v3/write_lp?db=crash")
        while not self.stop.is_set():
            points = range(n, n + BATCH)
            body = "".join(
                f"m,w=w{w} v={i}i {T0 + self.cycle * CYCLE_NS + w * WRITER_NS + i}\n" for i in points
            ).encode()
            try:
                req = urllib.request.Request(url, data=body, method="POST")
                with urllib.request.urlopen(req, timeout=10) as r:
                    if r.status == 204:
                        self.acked[w].update(points)
            except (urllib.error.URLError, OSError, ConnectionError):
                time.sleep(0.01)
            n += BATCH
            self.batches[w] += 1

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join()


def check_cycle(reader, cycle, acked, expect_total, timeout):
    """Every acknowledged point of `cycle` present once; the whole table's
    count equal to what earlier checks found plus this cycle's. Returns
    (present, lost, duplicated)."""
    lo, hi = T0 + cycle * CYCLE_NS, T0 + (cycle + 1) * CYCLE_NS
    deadline = time.time() + timeout
    while True:
        rows = sql(reader, f"SELECT w, v FROM m WHERE time >= to_timestamp_nanos({lo}) AND time < to_timestamp_nanos({hi})")
        seen = [dict() for _ in range(WRITERS)]
        for r in rows:
            w = int(r["w"][1:])
            seen[w][r["v"]] = seen[w].get(r["v"], 0) + 1
        lost = sum(len(acked[w] - seen[w].keys()) for w in range(WRITERS))
        dup = sum(c - 1 for w in range(WRITERS) for c in seen[w].values() if c > 1)
        present = len(rows) - dup
        total = sql(reader, "SELECT count(*) AS n FROM m")
        total = total[0]["n"] if total else 0
        if lost == 0 and dup == 0 and total == expect_total + present:
            return present, 0, 0, total
        if time.time() > deadline:
            return present, lost, dup, total
        time.sleep(0.2)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=["serve", "split"], default="serve")
    ap.add_argument("--cycles", type=int, default=100)
    ap.add_argument("--bin-dir", required=True)
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--keep", action="store_true", help="keep the data directory")
    a = ap.parse_args()
    rng = random.Random(a.seed)
    work = tempfile.mkdtemp(prefix=f"inflow-crash-{a.mode}-")
    data = os.path.join(work, "data")
    common = [
        "--data-dir", data, "--without-auth", "--log-filter", "warn",
        "--wal-flush-interval", "10ms", "--catalog-sync-interval", "50ms",
        "--node-heartbeat-interval", "100ms", "--node-lease-timeout", "1s",
    ]
    persist = ["--wal-snapshot-size", "20", "--gen1-duration", "1m"]
    compact = ["--retention-check-interval", "300ms", "--gc-grace-period", "10s"]
    b = lambda name: os.path.join(a.bin_dir, name)
    if a.mode == "serve":
        server = Proc(b("inflow"), ["serve", *common, *persist, *compact], os.path.join(work, "serve.log"))
        writer_target = reader = server
        victims = {"ingest": server, "compact": server}
        others = []
    else:
        ingester = Proc(b("inflow-ingester"), [*common, *persist, "--node-id", "ingester-0"],
                        os.path.join(work, "ingester.log"))
        querier = Proc(b("inflow-querier"), [*common, "--node-id", "querier-0"], os.path.join(work, "querier.log"))
        compactor = Proc(b("inflow-compactor"), [*common, *compact, "--node-id", "compactor-0"],
                         os.path.join(work, "compactor.log"))
        writer_target, reader = ingester, querier
        victims = {"ingest": ingester, "compact": compactor}
        others = [querier]
    print(f"crash loop: mode={a.mode} cycles={a.cycles} seed={a.seed} dir={work}", flush=True)
    for p in {id(v): v for v in [*victims.values(), *others]}.values():
        p.start()
    total = acked_total = crashes_at_points = 0
    started = time.time()
    for cycle in range(a.cycles):
        # Where this cycle's kill lands: a random moment, or a step of a
        # persist or a compaction (the process aborts when it gets there).
        choice = rng.choice(["kill"] * 4 + PERSIST_POINTS + COMPACT_POINTS)
        victim = victims["compact" if choice in COMPACT_POINTS else "ingest"]
        if choice != "kill":
            victim.kill()
            victim.start(crash_point=choice)
        window = rng.uniform(0.3, 2.5)
        with Writers(writer_target, cycle) as writers:
            deadline = time.time() + window
            while time.time() < deadline and victim.p.poll() is None:
                time.sleep(0.02)
            at_point = victim.kill()
        crashes_at_points += at_point
        victim.start()
        acked = sum(len(s) for s in writers.acked)
        acked_total += acked
        present, lost, dup, now_total = check_cycle(reader, cycle, writers.acked, total, timeout=20)
        how = choice if at_point else "kill -9" + ("" if choice == "kill" else f" (before {choice})")
        print(
            f"cycle {cycle + 1:3}: {how:<36} acked {acked:6} present {present:6} "
            f"lost {lost} duplicated {dup} table {now_total}",
            flush=True,
        )
        if lost or dup or now_total != total + present:
            print(f"FAILED: see {work}", flush=True)
            for p in {id(v): v for v in [*victims.values(), *others]}.values():
                p.kill()
            sys.exit(1)
        total = now_total
    for p in {id(v): v for v in [*victims.values(), *others]}.values():
        p.kill()
    elapsed = time.time() - started
    print(
        f"summary: mode={a.mode} cycles={a.cycles} crashes at a persist/compaction step={crashes_at_points} "
        f"acknowledged={acked_total} rows checked={total} lost=0 duplicated=0 in {elapsed:.0f} s",
        flush=True,
    )
    if not a.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    try:
        main()
    finally:
        # Whatever happened, no server of this run outlives it.
        for proc in Proc.started:
            if proc.p is not None and proc.p.poll() is None:
                proc.p.kill()
