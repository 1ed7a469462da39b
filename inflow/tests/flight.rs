//! Arrow Flight on the HTTP port, through arrow-flight's own client: the
//! InfluxDB 3 JSON ticket, gRPC status codes for bad SQL, unknown
//! databases and missing tokens, Flight SQL statements, and a querier of a
//! split cluster answering Flight for rows an ingester took. (The real
//! client libraries' tests are in tests/clients/test_flight.py.)

// Helpers as well as tests unwrap: a panic here is a failed test.
#![allow(clippy::unwrap_used)]

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::Float64Type;
use arrow_flight::sql::client::FlightSqlServiceClient;
use arrow_flight::{FlightClient, Ticket};
use futures::TryStreamExt;
use test_helpers::{TestCluster, TestServer};
use tonic::transport::Channel;

const TAIL: &[&str] = &["--replication-interval", "20ms"];

/// Polls `f` until it returns `Some`, for up to `secs` seconds.
async fn eventually<T, F, Fut>(secs: u64, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

async fn channel(s: &TestServer) -> Channel {
    let url = s.url("").trim_end_matches('/').to_string();
    Channel::from_shared(url).unwrap().connect().await.unwrap()
}

async fn flight(s: &TestServer, token: Option<&str>) -> FlightClient {
    let mut c = FlightClient::new(channel(s).await);
    if let Some(t) = token {
        c.add_header("authorization", &format!("Bearer {t}"))
            .unwrap();
    }
    c
}

fn ticket(db: &str, sql: &str) -> Ticket {
    Ticket::new(
        serde_json::json!({"database": db, "sql_query": sql, "query_type": "sql"}).to_string(),
    )
}

async fn rows(c: &mut FlightClient, db: &str, sql: &str) -> Result<Vec<RecordBatch>, tonic::Code> {
    match c.do_get(ticket(db, sql)).await {
        Ok(stream) => stream.try_collect().await.map_err(code),
        Err(e) => Err(code(e)),
    }
}

fn code(e: arrow_flight::error::FlightError) -> tonic::Code {
    match e {
        arrow_flight::error::FlightError::Tonic(s) => s.code(),
        other => panic!("not a gRPC status: {other}"),
    }
}

fn usage(batches: &[RecordBatch]) -> Vec<f64> {
    batches
        .iter()
        .flat_map(|b| {
            b.column_by_name("usage")
                .unwrap()
                .as_primitive::<Float64Type>()
                .values()
                .to_vec()
        })
        .collect()
}

#[tokio::test]
async fn json_tickets_stream_rows_and_errors_are_grpc_codes() {
    let s = TestServer::start().await;
    s.write_ok(
        "db",
        "cpu,host=a usage=1.5 1\ncpu,host=b usage=2.5 2\ncpu,host=a usage=3.5 3",
    )
    .await;
    let token = s.admin_token().unwrap().to_string();
    let mut c = flight(&s, Some(&token)).await;
    let got = rows(&mut c, "db", "SELECT host, usage FROM cpu ORDER BY time")
        .await
        .unwrap();
    assert_eq!(usage(&got), [1.5, 2.5, 3.5]);
    // Tags are sent as strings, as the schema says.
    assert_eq!(
        got[0].schema().field_with_name("host").unwrap().data_type(),
        &arrow::datatypes::DataType::Utf8
    );
    assert_eq!(
        rows(&mut c, "db", "SELEC 1").await.unwrap_err(),
        tonic::Code::InvalidArgument
    );
    assert_eq!(
        rows(&mut c, "nope", "SELECT 1").await.unwrap_err(),
        tonic::Code::NotFound
    );
    let mut anonymous = flight(&s, None).await;
    assert_eq!(
        rows(&mut anonymous, "db", "SELECT 1").await.unwrap_err(),
        tonic::Code::Unauthenticated
    );
    let mut wrong = flight(&s, Some("apiv3_wrong")).await;
    assert_eq!(
        rows(&mut wrong, "db", "SELECT 1").await.unwrap_err(),
        tonic::Code::Unauthenticated
    );
    // The same port still answers HTTP.
    assert_eq!(
        s.query_json("db", "SELECT count(*) AS n FROM cpu").await[0]["n"],
        3
    );
}

#[tokio::test]
async fn flight_sql_statements_with_the_database_header() {
    let s = TestServer::start().await;
    s.write_ok("db", "cpu,host=a usage=1.5 1\ncpu,host=b usage=2.5 2")
        .await;
    let mut c = FlightSqlServiceClient::new(channel(&s).await);
    c.set_token(s.admin_token().unwrap().to_string());
    c.set_header("database", "db");
    let info = c
        .execute("SELECT usage FROM cpu ORDER BY time".into(), None)
        .await
        .unwrap();
    let mut batches = Vec::new();
    for endpoint in info.endpoint {
        let stream = c.do_get(endpoint.ticket.unwrap()).await.unwrap();
        batches.extend(stream.try_collect::<Vec<_>>().await.unwrap());
    }
    assert_eq!(usage(&batches), [1.5, 2.5]);
    // A prepared statement with a bound parameter.
    let mut prepared = c
        .prepare("SELECT usage FROM cpu WHERE host = $1".into(), None)
        .await
        .unwrap();
    let params = RecordBatch::try_from_iter([(
        "$1",
        std::sync::Arc::new(arrow::array::StringArray::from(vec!["b"])) as arrow::array::ArrayRef,
    )])
    .unwrap();
    prepared.set_parameters(params).unwrap();
    let info = prepared.execute().await.unwrap();
    let mut batches = Vec::new();
    for endpoint in info.endpoint {
        let stream = c.do_get(endpoint.ticket.unwrap()).await.unwrap();
        batches.extend(stream.try_collect::<Vec<_>>().await.unwrap());
    }
    assert_eq!(usage(&batches), [2.5]);
    prepared.close().await.unwrap();
}

/// A querier serves Flight for the rows an ingester took; an ingester
/// says it does not serve queries.
#[tokio::test]
async fn a_querier_answers_flight_for_an_ingesters_rows() {
    let cluster = TestCluster::new();
    let ingester = cluster.start("inflow-ingester", "ing-0", &[]).await;
    let querier = cluster.start("inflow-querier", "q-0", TAIL).await;
    ingester.write_ok("db", "cpu,host=a usage=4.5 1").await;
    let token = ingester.admin_token().unwrap().to_string();
    let got = eventually(10, "the querier to answer over Flight", || {
        let (querier, token) = (&querier, token.clone());
        async move {
            let mut c = flight(querier, Some(&token)).await;
            rows(&mut c, "db", "SELECT usage FROM cpu")
                .await
                .ok()
                .filter(|b| usage(b) == [4.5])
        }
    })
    .await;
    assert_eq!(usage(&got), [4.5]);
    let mut at_ingester = flight(&ingester, Some(&token)).await;
    assert_eq!(
        rows(&mut at_ingester, "db", "SELECT 1").await.unwrap_err(),
        tonic::Code::Unimplemented
    );
}
