"""influxdb (the InfluxDB 1.x Python client) writing through /write."""
import json
import pytest
from influxdb import InfluxDBClient
from influxdb.exceptions import InfluxDBClientError


def client_for(server):
    # The v1 client sends the password (our token) with Basic auth.
    return InfluxDBClient(host="127.0.0.1", port=server.port, database="db", username="me", password=server.token)


def test_write_points_each_precision(server):
    c = client_for(server)
    assert c.write_points([{"measurement": "m", "tags": {"p": "s"}, "fields": {"v": 1}, "time": 1700000000}],
                          time_precision="s")
    assert c.write_points([{"measurement": "m", "tags": {"p": "ms"}, "fields": {"v": 2}, "time": 1700000000001}],
                          time_precision="ms")
    assert c.write_points([{"measurement": "m", "tags": {"p": "u"}, "fields": {"v": 3}, "time": 1700000000000002}],
                          time_precision="u")
    assert c.write_points(["m,p=line v=4i 1700000000000000003"], protocol="line")
    rows = server.sql("db", "SELECT p, CAST(time AS BIGINT) AS t FROM m ORDER BY t")
    assert rows == [
        {"p": "s", "t": 1700000000000000000},
        {"p": "line", "t": 1700000000000000003},
        {"p": "u", "t": 1700000000000002000},
        {"p": "ms", "t": 1700000000001000000},
    ]


def test_type_conflict_is_a_client_error(server):
    c = client_for(server)
    c.write_points(["m v=1 1"], protocol="line")
    with pytest.raises(InfluxDBClientError) as e:
        c.write_points(["m v=\"text\" 2"], protocol="line")
    assert e.value.code == 400
    assert "line protocol parsing error" in str(e.value.content)


def test_wrong_password_is_401(server):
    c = InfluxDBClient(host="127.0.0.1", port=server.port, database="db", username="me", password="wrong")
    with pytest.raises(InfluxDBClientError) as e:
        c.write_points(["m v=1 1"], protocol="line")
    assert e.value.code == 401
    assert json.loads(e.value.content) == {"error": "the request was not authenticated"}
