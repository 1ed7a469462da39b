"""influxdb3-python writing (its query path needs Arrow Flight, not yet served)."""
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
