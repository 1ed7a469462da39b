"""Starts a real `inflow serve` for the client-library tests.

INFLOW_BIN names the binary (scripts/test.sh sets it). Each test gets its own
server on port 0 with a temp data dir and a 10ms WAL flush.
"""
import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time

import pytest
import requests


ADMIN_TOKEN = "apiv3_client-tests-admin-token"


class Server:
    def __init__(self, binary, data_dir, extra=()):
        token_file = os.path.join(data_dir, "admin-token")
        with open(token_file, "w") as f:
            f.write(ADMIN_TOKEN)
        self.token = ADMIN_TOKEN
        self.proc = subprocess.Popen(
            [binary, "serve", "--http-bind", "127.0.0.1:0", "--data-dir", os.path.join(data_dir, "data"),
             "--wal-flush-interval", "10ms", "--log-filter", "warn", "--admin-token-file", token_file, *extra],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.addr = None
        ready = threading.Event()

        def read_stdout():
            for line in self.proc.stdout:
                if line.startswith("listening on ") and not ready.is_set():
                    self.addr = line.split()[-1]
                    ready.set()
        threading.Thread(target=read_stdout, daemon=True).start()
        if not ready.wait(30):
            self.proc.kill()
            raise RuntimeError("inflow did not start: " + self.proc.stderr.read())
        self.data_dir = os.path.join(data_dir, "data")
        self.url = f"http://{self.addr}"
        self.port = int(self.addr.rsplit(":", 1)[1])

    def sql(self, db, q):
        r = requests.get(f"{self.url}/api/v3/query_sql", params={"db": db, "q": q, "format": "json"},
                         headers={"Authorization": f"Bearer {self.token}"}, timeout=30)
        assert r.status_code == 200, r.text
        return r.json()

    def stop(self):
        self.proc.kill()
        self.proc.wait()


@contextlib.contextmanager
def _running(extra=()):
    binary = os.environ.get("INFLOW_BIN")
    if not binary:
        pytest.fail("set INFLOW_BIN to the inflow binary (scripts/test.sh does)")
    with tempfile.TemporaryDirectory() as d:
        s = Server(binary, d, extra)
        try:
            yield s
        finally:
            s.stop()


@pytest.fixture
def server():
    with _running() as s:
        yield s


@pytest.fixture
def persisting_server():
    """A server that persists its buffer to Parquet after every WAL file."""
    with _running(("--wal-snapshot-size", "1")) as s:
        yield s


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]



@pytest.fixture(scope="module")
def influxdb1():
    """InfluxDB 1.6 (Debian's influxdb) on loopback with a temp dir: the InfluxQL oracle."""
    if shutil.which("influxd") is None:
        pytest.fail("influxd (Debian's influxdb 1.6) is not installed; scripts/test.sh installs it")
    d = tempfile.mkdtemp(prefix="influxdb1-")
    http_port, rpc_port = free_port(), free_port()
    conf = os.path.join(d, "influxdb.conf")
    with open(conf, "w") as f:
        f.write(f"""reporting-disabled = true
bind-address = "127.0.0.1:{rpc_port}"
[meta]
  dir = "{d}/meta"
[data]
  dir = "{d}/data"
  wal-dir = "{d}/wal"
  query-log-enabled = false
[http]
  bind-address = "127.0.0.1:{http_port}"
  log-enabled = false
[monitor]
  store-enabled = false
""")
    proc = subprocess.Popen(["influxd", "-config", conf], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{http_port}"
    for _ in range(100):
        try:
            if requests.get(f"{url}/ping", timeout=1).status_code == 204:
                break
        except requests.ConnectionError:
            pass
        time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail("influxd did not start: " + proc.stderr.read().decode())
    try:
        yield url
    finally:
        proc.kill()
        proc.wait()
        shutil.rmtree(d, ignore_errors=True)


