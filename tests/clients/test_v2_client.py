"""influxdb-client (the InfluxDB 2 Python client) writing through /api/v2/write."""
from datetime import datetime, timezone

import pytest
from influxdb_client import InfluxDBClient, Point, WritePrecision
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.rest import ApiException


@pytest.mark.parametrize("gzip", [False, True])
def test_write_points_and_records(server, gzip):
    with InfluxDBClient(url=server.url, token=server.token, org="my-org", enable_gzip=gzip) as client:
        write = client.write_api(write_options=SYNCHRONOUS)
        write.write(bucket="db", record=Point("cpu").tag("host", "a").field("usage", 1.5).field("n", 3)
                    .time(datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc), WritePrecision.NS))
        write.write(bucket="db", record="cpu,host=b usage=2.5,n=4i 1704164646", write_precision=WritePrecision.S)
        write.write(bucket="db", record=[{"measurement": "cpu", "tags": {"host": "c"}, "fields": {"usage": 3.5},
                                          "time": 1704164647000}], write_precision=WritePrecision.MS)
    rows = server.sql("db", "SELECT host, usage, time FROM cpu ORDER BY host")
    assert rows == [
        {"host": "a", "usage": 1.5, "time": "2024-01-02T03:04:05"},
        {"host": "b", "usage": 2.5, "time": "2024-01-02T03:04:06"},
        {"host": "c", "usage": 3.5, "time": "2024-01-02T03:04:07"},
    ]


def test_bad_line_raises_with_v2_error_body(server):
    with InfluxDBClient(url=server.url, token=server.token, org="my-org") as client:
        write = client.write_api(write_options=SYNCHRONOUS)
        write.write(bucket="db", record="m v=1 1")
        with pytest.raises(ApiException) as e:
            write.write(bucket="db", record="m v=1i 2")
    assert e.value.status == 400
    import json
    body = json.loads(e.value.body)
    assert body["code"] == "invalid"
    assert body["line"] == 1
    assert "expected float field, got integer field" in body["message"]


def test_ping_and_health(server):
    with InfluxDBClient(url=server.url, token=server.token, org="my-org") as client:
        assert client.ping() is True
        assert client.version() == "3.8.0"
        assert client.build() == "Enterprise"


def test_wrong_token_is_401(server):
    with InfluxDBClient(url=server.url, token="apiv3_wrong", org="my-org") as client:
        with pytest.raises(ApiException) as e:
            client.write_api(write_options=SYNCHRONOUS).write(bucket="db", record="m v=1 1")
    assert e.value.status == 401
    import json
    assert json.loads(e.value.body) == {"error": "the request was not authenticated"}
