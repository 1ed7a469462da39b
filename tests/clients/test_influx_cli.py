"""The `influx` 1.x CLI (Debian's influxdb-client) against Inflow, beside InfluxDB 1.6: the same
statements print the same output in its column, csv and json formats; -precision rfc3339 and
-import work."""
import os
import shutil
import subprocess
import tempfile

import pytest
import requests

from conftest import _running

LINES = [
    "cpu,host=a,region=us usage=1.5,idle=90i,ok=true,note=\"x\" 1700000000000000000",
    "cpu,host=b,region=us usage=2.5,idle=80i 1700000010000000000",
    "cpu,host=a,region=us usage=3.5,idle=70i 1700000020000000000",
    "mem,host=a free=10i 1700000000000000000",
]


def influx(port, *args, password=None):
    if shutil.which("influx") is None:
        pytest.fail("the influx CLI (Debian's influxdb-client) is not installed; scripts/test.sh installs it")
    cmd = ["influx", "-host", "127.0.0.1", "-port", str(port)]
    if password:
        cmd += ["-username", "me", "-password", password]
    r = subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=60)
    return r.returncode, r.stdout


@pytest.fixture(scope="module")
def both(influxdb1):
    body = "\n".join(LINES) + "\n"
    requests.post(f"{influxdb1}/query", data={"q": "CREATE DATABASE cli"}).raise_for_status()
    assert requests.post(f"{influxdb1}/write", params={"db": "cli"}, data=body).status_code == 204
    with _running() as inflow:
        assert requests.post(f"{inflow.url}/write", params={"db": "cli"}, data=body,
                             headers={"Authorization": f"Token {inflow.token}"}).status_code == 204
        yield int(influxdb1.rsplit(":", 1)[1]), inflow


@pytest.mark.parametrize("args", [
    ["-execute", "SHOW DATABASES"],
    ["-database", "cli", "-execute", "SHOW MEASUREMENTS"],
    ["-database", "cli", "-execute", "SELECT * FROM cpu"],
    ["-database", "cli", "-execute", "SELECT * FROM cpu", "-format", "csv"],
    ["-database", "cli", "-execute", "SELECT * FROM cpu", "-format", "json"],
    ["-database", "cli", "-execute", "SELECT mean(usage) FROM cpu GROUP BY host", "-format", "json", "-pretty"],
    ["-database", "cli", "-precision", "rfc3339", "-execute", "SELECT usage, host FROM cpu"],
    ["-database", "cli", "-precision", "ms", "-execute", "SELECT usage FROM cpu WHERE host = 'a'", "-format", "csv"],
    ["-database", "cli", "-execute", "SHOW TAG VALUES WITH KEY = host"],
    ["-database", "cli", "-execute", "SHOW FIELD KEYS"],
    ["-database", "cli", "-execute", "SELECT max(usage), host FROM cpu; SELECT free FROM mem"],
])
def test_same_output_as_influxdb_1(both, args):
    oracle_port, inflow = both
    want = influx(oracle_port, *args)
    got = influx(inflow.port, *args, password=inflow.token)
    assert got == want


def test_import_a_line_protocol_file(both):
    _, inflow = both
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "import.txt")
        with open(path, "w") as f:
            f.write("# DDL\nCREATE DATABASE imported\n\n# DML\n# CONTEXT-DATABASE: imported\n")
            for i in range(250):
                f.write(f"disk,host=h{i % 3} used={i}i {1700000000 + i}\n")
        rc, out = influx(inflow.port, "-import", "-path", path, "-precision", "s", password=inflow.token)
        assert rc == 0, out
    rc, out = influx(inflow.port, "-database", "imported", "-execute", "SELECT count(used) FROM disk", "-format", "csv",
                     password=inflow.token)
    assert rc == 0
    assert out.strip().splitlines()[-1] == "disk,0,250"
    assert inflow.sql("imported", "SELECT count(*) AS n FROM disk") == [{"n": 250}]


def test_wrong_password(both):
    _, inflow = both
    rc, out = influx(inflow.port, "-execute", "SHOW DATABASES", password="wrong")
    assert rc == 1
    assert out.startswith("ERR: the request was not authenticated")
