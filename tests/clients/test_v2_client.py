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


def test_delete_api_deletes_by_time_and_tag(persisting_server):
    """influxdb-client's delete_api (POST /api/v2/delete): the rows matching
    the predicate in the range go, in the buffer and in Parquet files alike;
    the rest, and a later write of a deleted point, stay."""
    server = persisting_server
    with InfluxDBClient(url=server.url, token=server.token, org="my-org") as client:
        write = client.write_api(write_options=SYNCHRONOUS)
        write.write(bucket="db", record=["cpu,host=a v=1i 1704164645", "cpu,host=b v=2i 1704164645",
                                          "cpu,host=a v=3i 1704164646", "mem,host=a v=4i 1704164645"],
                    write_precision=WritePrecision.S)
        client.delete_api().delete(
            datetime(2024, 1, 2, 3, 4, 0, tzinfo=timezone.utc), "2024-01-02T03:04:05Z",
            '_measurement="cpu" AND host="a"', bucket="db", org="my-org")
        rows = server.sql("db", "SELECT host, v FROM cpu ORDER BY time, host")
        assert rows == [{"host": "b", "v": 2}, {"host": "a", "v": 3}]
        assert server.sql("db", "SELECT v FROM mem") == [{"v": 4}]
        write.write(bucket="db", record="cpu,host=a v=10i 1704164645", write_precision=WritePrecision.S)
        rows = server.sql("db", "SELECT host, v FROM cpu ORDER BY time, host")
        assert rows == [{"host": "a", "v": 10}, {"host": "b", "v": 2}, {"host": "a", "v": 3}]
        # Without a predicate: everything in the range, every measurement.
        client.delete_api().delete("2024-01-02T03:04:05Z", "2024-01-02T03:04:05Z", "", bucket="db", org="my-org")
        assert server.sql("db", "SELECT host, v FROM cpu") == [{"host": "a", "v": 3}]
        assert server.sql("db", "SELECT v FROM mem") == []
        with pytest.raises(ApiException) as e:
            client.delete_api().delete("2024-01-02T03:04:05Z", "2024-01-02T03:04:06Z", 'host="a" OR host="b"',
                                       bucket="db", org="my-org")
        assert e.value.status == 400
        import json
        body = json.loads(e.value.body)
        assert body["code"] == "invalid" and "OR is not supported" in body["message"]
