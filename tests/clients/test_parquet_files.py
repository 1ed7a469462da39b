"""Persisted files are real Parquet: pyarrow reads them, with the schema
InfluxDB 3 users expect (tags as strings with `iox::column::type` metadata,
time as a nanosecond timestamp, fields with their types)."""
import os
import time

import pyarrow as pa
import pyarrow.parquet as pq
import requests


def test_pyarrow_reads_a_persisted_file(persisting_server):
    s = persisting_server
    body = (
        'weather,city=oslo,station=s1 temp=3.5,count=7i,ok=true,note="cold",hits=9u 1700000000000000000\n'
        'weather,city=rome,station=s2 temp=18.25,count=2i,ok=false,note="warm",hits=1u 1700000001000000000\n'
        'weather,city=oslo,station=s1 temp=4.0 1700000002000000000\n'
    )
    r = requests.post(f"{s.url}/api/v3/write_lp", params={"db": "db"}, data=body,
                      headers={"Authorization": f"Bearer {s.token}"}, timeout=30)
    assert r.status_code == 204, r.text

    files = []
    deadline = time.time() + 30
    while not files and time.time() < deadline:
        files = s.sql("db", "SELECT path, row_count FROM system.parquet_files")
        time.sleep(0.05)
    assert len(files) == 1, files
    path = os.path.join(s.data_dir, files[0]["path"])
    assert files[0]["row_count"] == 3

    table = pq.read_table(path)
    schema = table.schema
    for tag in ("city", "station"):
        f = schema.field(tag)
        assert pa.types.is_dictionary(f.type) and pa.types.is_string(f.type.value_type), f
        assert f.metadata[b"iox::column::type"] == b"iox::column_type::tag"
    t = schema.field("time")
    assert t.type == pa.timestamp("ns"), t
    assert t.metadata[b"iox::column::type"] == b"iox::column_type::timestamp"
    expected = {
        "temp": (pa.float64(), b"iox::column_type::field::float"),
        "count": (pa.int64(), b"iox::column_type::field::integer"),
        "hits": (pa.uint64(), b"iox::column_type::field::uinteger"),
        "ok": (pa.bool_(), b"iox::column_type::field::boolean"),
        "note": (pa.string(), b"iox::column_type::field::string"),
    }
    for name, (typ, meta) in expected.items():
        f = schema.field(name)
        assert f.type == typ, f
        assert f.metadata[b"iox::column::type"] == meta, f

    rows = table.to_pylist()
    # Sorted by tags, then time.
    assert [r["city"] for r in rows] == ["oslo", "oslo", "rome"]
    assert rows[0]["time"] < rows[1]["time"]
    assert [r["temp"] for r in rows] == [3.5, 4.0, 18.25]
    assert rows[0]["count"] == 7 and rows[0]["ok"] is True and rows[0]["note"] == "cold" and rows[0]["hits"] == 9
    assert rows[1]["count"] is None
    assert pq.ParquetFile(path).metadata.row_group(0).column(0).compression == "ZSTD"
