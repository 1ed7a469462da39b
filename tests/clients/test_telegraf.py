"""Real Telegraf (built from its Go module by scripts/build-tools.sh) writing to `inflow serve`
through its three InfluxDB outputs; every metric it reports as written must arrive, by SQL and by
InfluxQL."""
import os
import re
import subprocess
import tempfile
import time

import pytest
import requests

from conftest import _running

POINTS = 300


def telegraf_binary():
    path = os.environ.get("INFLOW_TELEGRAF") or os.path.expanduser("~/.cache/inflow-tools/bin/telegraf-v1.39.2-inflow")
    if not os.access(path, os.X_OK):
        pytest.fail(f"Telegraf is not built at {path}; scripts/build-tools.sh builds it")
    return path


def run_telegraf(outputs, d, done):
    """Runs Telegraf (inputs.exec printing fixed lines once)
    until `done()` or 30 s, then stops it (it flushes on the way out). Returns the metrics each
    output reports as written, from Telegraf's own debug log, and the log."""
    lines = os.path.join(d, "metrics.lp")
    with open(lines, "w") as f:
        for i in range(POINTS):
            f.write(f"sensor,room=r{i % 5} temp={20 + i / 10},count={i}i {1700000000000000000 + i * 1000000000}\n")
    # inputs.exec prints the lines at its first gather only, so each metric is sent once.
    script = os.path.join(d, "once.sh")
    with open(script, "w") as f:
        f.write(f"#!/bin/sh\n[ -e {d}/sent ] && exit 0\ntouch {d}/sent\ncat {lines}\n")
    os.chmod(script, 0o755)
    conf = os.path.join(d, "telegraf.conf")
    with open(conf, "w") as f:
        f.write(f"""[agent]
  interval = "1s"
  flush_interval = "200ms"
  metric_batch_size = 100
  omit_hostname = true
  debug = true
[[inputs.exec]]
  commands = ["{script}"]
  data_format = "influx"
{outputs}
""")
    log_path = os.path.join(d, "telegraf.log")
    with open(log_path, "w") as log_file:
        proc = subprocess.Popen([telegraf_binary(), "--config", conf], stdout=log_file, stderr=subprocess.STDOUT)
        try:
            deadline = time.time() + 30
            while time.time() < deadline and proc.poll() is None and not done():
                time.sleep(0.2)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    with open(log_path) as f:
        log = f.read()
    written = {}
    for m in re.finditer(r"\[outputs\.(\w+)\] Wrote batch of (\d+) metrics", log):
        written[m.group(1)] = written.get(m.group(1), 0) + int(m.group(2))
    return written, log


def stored(server, db, table):
    r = requests.get(f"{server.url}/api/v3/query_sql", params={"db": db, "q": f"SELECT count(*) AS n FROM {table}"},
                     headers={"Authorization": f"Bearer {server.token}"})
    return r.json()[0]["n"] if r.status_code == 200 else 0


def count(server, db, table, column):
    sql = server.sql(db, f"SELECT count({column}) AS n FROM {table}")[0]["n"]
    r = requests.get(f"{server.url}/query", params={"db": db, "q": f"SELECT count({column}) FROM {table}"},
                     headers={"Authorization": f"Bearer {server.token}"}).json()
    influxql = r["results"][0]["series"][0]["values"][0][1]
    assert sql == influxql
    return sql


def test_three_outputs_deliver_every_metric(server):
    outputs = f"""
[[outputs.influxdb]]
  urls = ["{server.url}"]
  database = "tg_v1"
  username = "telegraf"
  password = "{server.token}"
  content_encoding = "gzip"
[[outputs.influxdb_v2]]
  urls = ["{server.url}"]
  token = "{server.token}"
  organization = "ignored"
  bucket = "tg_v2"
[[outputs.influxdb_v3]]
  urls = ["{server.url}"]
  token = "{server.token}"
  database = "tg_v3"
"""
    with tempfile.TemporaryDirectory() as d:
        written, log = run_telegraf(
            outputs, d, lambda: all(stored(server, db, "sensor") == POINTS for db in ("tg_v1", "tg_v2", "tg_v3")))
    # Each output reports every point written, and every one arrived.
    assert written == {"influxdb": POINTS, "influxdb_v2": POINTS, "influxdb_v3": POINTS}, log
    for db in ("tg_v1", "tg_v2", "tg_v3"):
        assert count(server, db, "sensor", "temp") == POINTS
    # outputs.influxdb created its database at start, as it does against InfluxDB 1.x.
    assert "Database creation failed" not in log
    rows = server.sql("tg_v1", "SELECT room, count(*) AS n FROM sensor GROUP BY room ORDER BY room")
    assert rows == [{"room": f"r{i}", "n": POINTS // 5} for i in range(5)]


def test_influxdb_v2_output_halves_its_batch_on_413():
    # A request limit smaller than one batch: Telegraf splits the batch on 413 until it fits.
    with _running(("--max-http-request-size", "4000")) as server:
        outputs = f"""
[[outputs.influxdb_v2]]
  urls = ["{server.url}"]
  token = "{server.token}"
  organization = "ignored"
  bucket = "small"
  content_encoding = "identity"
"""
        with tempfile.TemporaryDirectory() as d:
            written, log = run_telegraf(outputs, d, lambda: stored(server, "small", "sensor") == POINTS)
        # The server refused the whole batch with 413; Telegraf's smaller writes then all landed
        # (it counts a split batch as not sent and sends the rest again: the same points).
        assert "request was too large (413)" in log, log
        assert written.get("influxdb_v2", 0) <= POINTS, log
        assert count(server, "small", "sensor", "temp") == POINTS
