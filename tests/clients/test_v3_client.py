"""influxdb3-python writing (its queries, over Arrow Flight, are in test_flight.py)."""
import json

import pytest
from influxdb_client_3 import InfluxDBClient3, Point, WritePrecision
from influxdb_client_3.exceptions import InfluxDBError


def test_write_record_and_point(server):
    with InfluxDBClient3(host=server.url, token=server.token, database="db") as c:
        c.write(record="home,room=kitchen temp=21.5 1700000000000000000")
        c.write(record=Point("home").tag("room", "hall").field("temp", 19.0).time(1700000001, WritePrecision.S),
                write_precision=WritePrecision.S)
    rows = server.sql("db", "SELECT room, temp, time FROM home ORDER BY time")
    assert rows == [
        {"room": "kitchen", "temp": 21.5, "time": "2023-11-14T22:13:20"},
        {"room": "hall", "temp": 19.0, "time": "2023-11-14T22:13:21"},
    ]


def test_rejected_write_raises_with_the_line_error(server):
    with InfluxDBClient3(host=server.url, token=server.token, database="db") as c:
        c.write(record="home temp=1 1")
        with pytest.raises(InfluxDBError) as e:
            c.write(record="home temp=true 2")
    assert "temp" in str(e.value)


def test_server_version(server):
    with InfluxDBClient3(host=server.url, token=server.token, database="db") as c:
        assert c.get_server_version() == "3.8.0"


# influxdb3-python's published write-error behaviour, as its own integration
# tests exercise it against InfluxDB 3 Core.

def test_partial_write_raises_partial_write_error_with_line_errors(server):
    from influxdb_client_3.exceptions import InfluxDBPartialWriteError
    with InfluxDBClient3(host=server.url, token=server.token, database="db", write_use_v2_api=False) as c:
        c.write(record="home temp=1 1", write_precision=WritePrecision.NS)
        with pytest.raises(InfluxDBPartialWriteError) as e:
            c.write(record="home temp=2 2\nhome temp=true 3\nhome temp=4 4", write_precision=WritePrecision.NS)
    err = e.value
    assert err.response.status == 400
    assert [(l.line_number, l.original_line) for l in err.line_errors] == [(2, "home temp=true 3")]
    assert "invalid column type for column 'temp'" in err.line_errors[0].error_message
    assert str(err).startswith("partial write of line protocol occurred:\n\tline 2: ")
    # The good lines were written.
    assert [r["temp"] for r in server.sql("db", "SELECT temp FROM home ORDER BY time")] == [1.0, 2.0, 4.0]


def test_all_or_nothing_write_raises_core_s_parsing_error(server):
    with InfluxDBClient3(host=server.url, token=server.token, database="db",
                         write_use_v2_api=False, write_accept_partial=False) as c:
        c.write(record="home temp=1 1", write_precision=WritePrecision.NS)
        with pytest.raises(InfluxDBError) as e:
            c.write(record="home temp=2 2\nhome temp=true 3", write_precision=WritePrecision.NS)
    err = e.value
    assert err.response.status == 400
    # Core's body: the first error as one object; this client version reports its headline.
    body = json.loads(err.response.data)
    assert body["error"] == "line protocol parsing error"
    assert body["data"]["line_number"] == 2 and body["data"]["original_line"] == "home temp=true 3"
    assert err.message == "line protocol parsing error"
    assert len(server.sql("db", "SELECT temp FROM home")) == 1


def test_v2_path_errors_carry_code_and_message(server):
    with InfluxDBClient3(host=server.url, token=server.token, database="db", write_use_v2_api=True) as c:
        c.write(record="home temp=1 1", write_precision=WritePrecision.NS)
        with pytest.raises(InfluxDBError) as e:
            c.write(record="home temp=true 2", write_precision=WritePrecision.NS)
    assert e.value.response.status == 400
    assert e.value.message.startswith("invalid: write buffer error: parsing for line protocol failed: line 1: ")


def test_auth_errors(server):
    with InfluxDBClient3(host=server.url, token="apiv3_wrong", database="db", write_use_v2_api=False) as c:
        with pytest.raises(InfluxDBError) as e:
            c.write(record="home temp=1 1")
    # InfluxDB 3 Core's one 401 body, on the v3 and the v2 write API alike.
    assert (e.value.response.status, e.value.message) == (401, "the request was not authenticated")
    with InfluxDBClient3(host=server.url, token="apiv3_wrong", database="db", write_use_v2_api=True) as c:
        with pytest.raises(InfluxDBError) as e:
            c.write(record="home temp=1 1")
    assert (e.value.response.status, e.value.message) == (401, "the request was not authenticated")
    # A token with a space makes a malformed header: Core's 400 and message.
    with InfluxDBClient3(host=server.url, token="two words", database="db") as c:
        with pytest.raises(InfluxDBError) as e:
            c.write(record="home temp=1 1")
    assert e.value.response.status == 400
    assert e.value.message.startswith("Authorization header was malformed, the request was not in the form of "
                                   "'Authorization: <auth-scheme> <token>'")


def test_query_influxql_v3_formats(server):
    import requests
    h = {"Authorization": f"Bearer {server.token}"}
    r = requests.post(f"{server.url}/api/v3/write_lp", params={"db": "ql", "precision": "nanosecond"}, headers=h,
                      data="cpu,host=a usage=1.5 1000000000\ncpu,host=b usage=2.5 2000000000\n")
    assert r.status_code == 204, r.text
    url = f"{server.url}/api/v3/query_influxql"
    r = requests.get(url, params={"db": "ql", "q": "SELECT usage FROM cpu GROUP BY host"}, headers=h)
    assert r.status_code == 200, r.text
    assert r.json() == [
        {"iox::measurement": "cpu", "time": "1970-01-01T00:00:01", "host": "a", "usage": 1.5},
        {"iox::measurement": "cpu", "time": "1970-01-01T00:00:02", "host": "b", "usage": 2.5},
    ]
    r = requests.post(url, json={"db": "ql", "q": "SHOW MEASUREMENTS", "format": "csv"}, headers=h)
    assert r.status_code == 200, r.text
    assert r.text == "iox::measurement,name\nmeasurements,cpu\n"
    r = requests.get(url, params={"db": "ql", "q": "SELECT count(usage) FROM cpu", "format": "jsonl"}, headers=h)
    assert r.text.strip() == '{"iox::measurement":"cpu","time":"1970-01-01T00:00:00","count":2}'
    r = requests.get(url, params={"db": "ql", "q": "SELEC"}, headers=h)
    assert r.status_code == 400 and r.json()["error"].startswith("error parsing query: found SELEC")
    r = requests.get(url, params={"db": "nope", "q": "SELECT usage FROM cpu"}, headers=h)
    assert r.status_code == 404 and r.json() == {"error": "database not found: nope"}
    r = requests.get(url, params={"db": "ql", "q": "SELECT usage FROM cpu"})
    assert r.status_code == 401
