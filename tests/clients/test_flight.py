"""Queries over Arrow Flight and Flight SQL on the HTTP port, through the real clients:
influxdb3-python (InfluxDB 3's JSON tickets), ADBC's Flight SQL driver, and raw pyarrow.flight."""
import json

import adbc_driver_flightsql.dbapi as flightsql
import pyarrow as pa
import pyarrow.flight as fl
import pytest
from influxdb_client_3 import InfluxDBClient3
from influxdb_client_3.exceptions import InfluxDB3ClientQueryError

LINES = "cpu,host=a,region=us usage=1.5,count=1i 1000000000\n" \
        "cpu,host=b,region=eu usage=2.5,count=2i 2000000000\n" \
        "cpu,host=a,region=us usage=3.5,count=3i 3000000000"


@pytest.fixture
def loaded(server):
    with InfluxDBClient3(host=server.url, token=server.token, database="db") as c:
        c.write(record=LINES)
    return server


def test_influxdb3_python_query_to_arrow_and_pandas(loaded):
    with InfluxDBClient3(host=loaded.url, token=loaded.token, database="db") as c:
        table = c.query("SELECT host, usage, time FROM cpu ORDER BY time")
        assert isinstance(table, pa.Table)
        assert table.column("host").to_pylist() == ["a", "b", "a"]
        assert table.column("usage").to_pylist() == [1.5, 2.5, 3.5]
        assert table.schema.field("time").type == pa.timestamp("ns")
        df = c.query("SELECT host, count FROM cpu WHERE host = $host ORDER BY time",
                     query_parameters={"host": "a"}, mode="pandas")
        assert list(df["count"]) == [1, 3]
        assert c.query("SELECT count(*) AS n FROM cpu", mode="pandas")["n"][0] == 3


def test_influxdb3_python_errors(loaded):
    with InfluxDBClient3(host=loaded.url, token=loaded.token, database="db") as c:
        with pytest.raises(InfluxDB3ClientQueryError) as e:
            c.query("SELEC nonsense")
        assert "invalid argument" in str(e.value)
        with pytest.raises(InfluxDB3ClientQueryError) as e:
            c.query("SELECT 1", database="nope")
        assert "not found" in str(e.value) and "database not found: nope" in str(e.value)
    with InfluxDBClient3(host=loaded.url, token="apiv3_wrong", database="db") as c:
        with pytest.raises(InfluxDB3ClientQueryError) as e:
            c.query("SELECT 1")
        assert "unauthenticated" in str(e.value)
        assert "the request was not authenticated" in str(e.value)


def _client(server):
    return fl.FlightClient(f"grpc://127.0.0.1:{server.port}")


def _auth(token):
    return fl.FlightCallOptions(headers=[(b"authorization", f"Bearer {token}".encode())])


def test_raw_flight_json_ticket_and_status_codes(loaded):
    client = _client(loaded)
    ticket = fl.Ticket(json.dumps({"database": "db", "sql_query": "SELECT host, usage FROM cpu ORDER BY time",
                                   "query_type": "sql"}).encode())
    table = client.do_get(ticket, _auth(loaded.token)).read_all()
    assert table.to_pylist() == [{"host": "a", "usage": 1.5}, {"host": "b", "usage": 2.5},
                                 {"host": "a", "usage": 3.5}]
    params = fl.Ticket(json.dumps({"database": "db", "sql_query": "SELECT count(*) AS n FROM cpu WHERE usage > $min",
                                   "query_type": "sql", "params": {"min": 2}}).encode())
    assert client.do_get(params, _auth(loaded.token)).read_all().to_pylist() == [{"n": 2}]
    bad = fl.Ticket(json.dumps({"database": "db", "sql_query": "SELECT nope FROM cpu"}).encode())
    # gRPC InvalidArgument is pyarrow's ArrowInvalid.
    with pytest.raises(pa.ArrowInvalid) as e:
        client.do_get(bad, _auth(loaded.token)).read_all()
    assert "nope" in str(e.value)
    unknown = fl.Ticket(json.dumps({"database": "nope", "sql_query": "SELECT 1"}).encode())
    # gRPC NotFound is pyarrow's ArrowKeyError.
    with pytest.raises(pa.ArrowKeyError) as e:
        client.do_get(unknown, _auth(loaded.token)).read_all()
    assert "database not found: nope" in str(e.value)
    with pytest.raises(fl.FlightUnauthenticatedError):
        client.do_get(ticket).read_all()
    with pytest.raises(fl.FlightUnauthenticatedError):
        client.do_get(ticket, _auth("apiv3_wrong")).read_all()


def test_handshake_with_basic_credentials(loaded):
    client = _client(loaded)
    header = client.authenticate_basic_token(b"anyone", loaded.token.encode())
    assert header == (b"authorization", f"Bearer {loaded.token}".encode())
    with pytest.raises(fl.FlightUnauthenticatedError):
        client.authenticate_basic_token(b"anyone", b"apiv3_wrong")


def _adbc(server):
    return flightsql.connect(
        f"grpc://127.0.0.1:{server.port}",
        db_kwargs={
            "adbc.flight.sql.authorization_header": f"Bearer {server.token}",
            "adbc.flight.sql.rpc.call_header.database": "db",
        },
        autocommit=True,
    )


def test_adbc_statements_and_parameters(loaded):
    with _adbc(loaded) as conn, conn.cursor() as cur:
        cur.execute("SELECT host, usage FROM cpu ORDER BY time")
        table = cur.fetch_arrow_table()
        assert table.to_pylist() == [{"host": "a", "usage": 1.5}, {"host": "b", "usage": 2.5},
                                     {"host": "a", "usage": 3.5}]
        cur.execute("SELECT host, count FROM cpu WHERE host = $1 AND usage > $2 ORDER BY time",
                    parameters=("a", 2.0))
        assert cur.fetchall() == [("a", 3)]
        with pytest.raises(Exception) as e:
            cur.execute("SELECT nope FROM cpu")
        assert "INVALID_ARGUMENT" in str(e.value)


def test_adbc_metadata(loaded):
    with _adbc(loaded) as conn:
        objects = conn.adbc_get_objects(depth="tables").read_all().to_pylist()
        assert [c["catalog_name"] for c in objects] == ["public"]
        schemas = {s["db_schema_name"]: [t["table_name"] for t in s["db_schema_tables"]]
                   for s in objects[0]["catalog_db_schemas"]}
        assert schemas["iox"] == ["cpu"]
        assert "tokens" in schemas["system"] and "tables" in schemas["information_schema"]
        assert conn.adbc_get_table_types() == ["BASE TABLE", "VIEW"]
        schema = conn.adbc_get_table_schema("cpu", db_schema_filter="iox")
        assert schema.names == ["count", "host", "region", "time", "usage"]
        assert schema.field("host").type == pa.string()
        info = conn.adbc_get_info()
        assert info["vendor_name"] == "Inflow"


def test_adbc_without_a_database_header(loaded):
    conn = flightsql.connect(f"grpc://127.0.0.1:{loaded.port}",
                             db_kwargs={"adbc.flight.sql.authorization_header": f"Bearer {loaded.token}"},
                             autocommit=True)
    with conn, conn.cursor() as cur:
        with pytest.raises(Exception) as e:
            cur.execute("SELECT 1")
        assert "no database given" in str(e.value)


def test_flight_and_http_share_the_port(loaded):
    """gRPC and HTTP/1.1 on one listener: the same port answers both."""
    import requests
    r = requests.get(f"{loaded.url}/health", headers={"Authorization": f"Bearer {loaded.token}"}, timeout=10)
    assert (r.status_code, r.text) == (200, "OK")
    ticket = fl.Ticket(json.dumps({"database": "db", "sql_query": "SELECT count(*) AS n FROM cpu"}).encode())
    assert _client(loaded).do_get(ticket, _auth(loaded.token)).read_all().to_pylist() == [{"n": 3}]


def test_influxdb3_python_influxql(loaded):
    with InfluxDBClient3(host=loaded.url, token=loaded.token, database="db") as c:
        table = c.query("SELECT usage, count FROM cpu WHERE host = 'a'", language="influxql")
        assert isinstance(table, pa.Table)
        assert table.column_names == ["iox::measurement", "time", "usage", "count"]
        assert table.column("iox::measurement").to_pylist() == ["cpu", "cpu"]
        assert table.column("usage").to_pylist() == [1.5, 3.5]
        assert table.schema.field("time").type == pa.timestamp("ns")
        df = c.query("SELECT mean(usage) FROM cpu GROUP BY host", language="influxql", mode="pandas")
        assert sorted(zip(df["host"], df["mean"])) == [("a", 2.5), ("b", 2.5)]
        df = c.query("SELECT count FROM cpu WHERE host = $host", language="influxql",
                     query_parameters={"host": "b"}, mode="pandas")
        assert list(df["count"]) == [2]
        tags = c.query("SHOW TAG VALUES WITH KEY = region", language="influxql")
        assert tags.column("value").to_pylist() == ["eu", "us"]
        with pytest.raises(InfluxDB3ClientQueryError) as e:
            c.query("SELEC nonsense", language="influxql")
        assert "invalid argument" in str(e.value) and "error parsing query" in str(e.value)
        with pytest.raises(InfluxDB3ClientQueryError) as e:
            c.query("SELECT usage FROM cpu", language="influxql", database="nope")
        assert "database not found: nope" in str(e.value)


def test_raw_flight_influxql_ticket(loaded):
    client = _client(loaded)
    ticket = fl.Ticket(json.dumps({"database": "db", "sql_query": "SELECT max(usage) FROM cpu",
                                   "query_type": "influxql"}).encode())
    table = client.do_get(ticket, _auth(loaded.token)).read_all()
    assert table.to_pylist() == [{"iox::measurement": "cpu", "time": table.column("time")[0].as_py(), "max": 3.5}]
    assert table.column("time")[0].value == 3000000000
