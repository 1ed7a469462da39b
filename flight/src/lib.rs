//! Arrow Flight and Flight SQL over gRPC, on the HTTP port: the query path
//! of the InfluxDB 3 client libraries and of Flight SQL tools (ADBC, JDBC,
//! DBeaver, Grafana's Flight SQL data source).
//!
//! ```text
//!  gRPC /arrow.flight.protocol.FlightService/* ─▶ InflowFlight
//!     DoGet, JSON ticket {"database","sql_query","query_type","params"}  (InfluxDB 3 clients)
//!        ─▶ QueryService::sql ─▶ Arrow IPC stream
//!     everything else ─▶ FlightSql (arrow_flight's FlightSqlService)
//!        statements, prepared statements, metadata commands ─▶ QueryService::sql
//! ```
//!
//! Every path runs queries through the same [`services::QueryService`] as
//! HTTP, with the same tokens and permissions (`authorization: Bearer T`
//! metadata, checked by `http_api::auth`), so plan reuse, limits and metrics
//! behave alike. Results stream batch by batch; nothing holds a whole result.

mod handle;
mod sql;
mod status;

use std::pin::Pin;
use std::time::Instant;

use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_server::{FlightService, FlightServiceServer};
use arrow_flight::{
    Action, ActionType, Criteria, Empty, FlightData, FlightDescriptor, FlightInfo,
    HandshakeRequest, HandshakeResponse, PollInfo, PutResult, SchemaResult, Ticket,
};
use futures::{Stream, StreamExt, TryStreamExt};
use http_api::AppState;
use http_api::auth::Need;
use services::{INTERNAL_DB, Params, QueryResults, SqlQuery};
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status, Streaming};

pub use handle::{InfluxTicket, QueryType};
use sql::FlightSql;

/// A stream of gRPC messages.
type GrpcStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// The gRPC routes (`/arrow.flight.protocol.FlightService/*`), to merge into
/// the HTTP router so both share one port. HTTP/2 with prior knowledge, as
/// gRPC clients speak it, is served by the same listener.
pub fn router(state: AppState) -> axum::Router {
    let flight = InflowFlight {
        sql: FlightSql::new(Queries { state }),
    };
    let service = FlightServiceServer::new(flight)
        .max_decoding_message_size(usize::MAX)
        .max_encoding_message_size(usize::MAX);
    // As tonic's own `Routes` mounts a service, but without its fallback,
    // so the HTTP router's stays the one for every other path.
    let path = format!(
        "/{}/{{*rest}}",
        <FlightServiceServer<InflowFlight> as tonic::server::NamedService>::NAME
    );
    axum::Router::new().route_service(
        &path,
        tower::ServiceExt::map_request(service, |req: axum::http::Request<axum::body::Body>| {
            req.map(tonic::body::Body::new)
        }),
    )
}

/// Runs the queries of every Flight path, with the HTTP API's state: its
/// query service, token check and metrics.
#[derive(Debug, Clone)]
struct Queries {
    state: AppState,
}

impl Queries {
    /// Checks the caller's token for `need` (a missing or unknown one is
    /// Unauthenticated, a token without the permission PermissionDenied).
    fn authorize(
        &self,
        metadata: &MetadataMap,
        need: Need<'_>,
    ) -> Result<http_api::auth::Caller, Status> {
        let headers = metadata.clone().into_headers();
        http_api::auth::authorize(
            &self.state.auth,
            &self.state.catalog,
            http_api::Family::V3,
            &headers,
            None,
            need,
        )
        .map_err(status::from_api)
    }

    /// Plans and starts `sql` on `db` for the caller of `metadata`.
    async fn run(
        &self,
        metadata: &MetadataMap,
        db: &str,
        sql: &str,
        params: Option<&Params>,
    ) -> Result<QueryResults, Status> {
        let Some(engine) = self.state.query.as_ref() else {
            return Err(Status::unimplemented("this node does not serve queries"));
        };
        if db.is_empty() {
            return Err(Status::invalid_argument(
                "no database given: name it in the ticket's \"database\" or the \"database\" header",
            ));
        }
        let need = if db == INTERNAL_DB {
            Need::AnyToken
        } else {
            Need::Read(db)
        };
        let caller = self.authorize(metadata, need)?;
        let may_read = |table: &str| http_api::auth::may_read_system(&caller, table);
        engine
            .sql(SqlQuery {
                db,
                sql,
                params,
                may_read_system: &may_read,
            })
            .await
            .map_err(status::from_query)
    }

    /// Runs an InfluxQL statement and sends its result as Flight data.
    async fn influxql(
        &self,
        metadata: &MetadataMap,
        db: &str,
        text: &str,
        params: Option<&Params>,
    ) -> Result<GrpcStream<FlightData>, Status> {
        let started = Instant::now();
        let metrics = self.state.metrics.clone();
        let _in_flight = metrics.query_in_flight();
        let result = async {
            let caller = self.authorize(metadata, Need::AnyToken)?;
            let db = (!db.is_empty()).then_some(db);
            http_api::influxql::influxql_batch(&self.state, &caller, db, None, text, params)
                .await
                .map_err(status::from_api)
        }
        .await;
        metrics.observe_query("flight", started.elapsed(), result.is_ok());
        let batch = result?;
        let data = FlightDataEncoderBuilder::new()
            .with_schema(batch.schema())
            .build(futures::stream::iter([Ok(batch)]))
            .map_err(Status::from);
        Ok(data.boxed())
    }

    /// Runs a query and streams its results as Flight data, recording it in
    /// the metrics when the stream ends.
    async fn stream(
        &self,
        metadata: &MetadataMap,
        db: &str,
        sql: &str,
        params: Option<&Params>,
    ) -> Result<GrpcStream<FlightData>, Status> {
        let started = Instant::now();
        let metrics = self.state.metrics.clone();
        let in_flight = metrics.query_in_flight();
        let results = match self.run(metadata, db, sql, params).await {
            Ok(r) => r,
            Err(e) => {
                metrics.observe_query("flight", started.elapsed(), false);
                return Err(e);
            }
        };
        let batches = results
            .batches
            .map_err(|e| FlightError::Tonic(Box::new(status::from_query(e))));
        let data = FlightDataEncoderBuilder::new()
            .with_schema(results.schema)
            .build(batches)
            .map_err(Status::from);
        let state = Some((data, metrics, started, in_flight));
        let observed = futures::stream::unfold(state, |st| async move {
            let (mut data, metrics, started, in_flight) = st?;
            match data.next().await {
                Some(Ok(d)) => Some((Ok(d), Some((data, metrics, started, in_flight)))),
                Some(Err(e)) => {
                    metrics.observe_query("flight", started.elapsed(), false);
                    Some((Err(e), None))
                }
                None => {
                    metrics.observe_query("flight", started.elapsed(), true);
                    None
                }
            }
        });
        Ok(observed.boxed())
    }
}

/// The Flight service: InfluxDB 3's JSON tickets first, Flight SQL for
/// everything else.
#[derive(Debug)]
struct InflowFlight {
    sql: FlightSql,
}

#[tonic::async_trait]
impl FlightService for InflowFlight {
    type HandshakeStream = GrpcStream<HandshakeResponse>;
    type ListFlightsStream = GrpcStream<FlightInfo>;
    type DoGetStream = GrpcStream<FlightData>;
    type DoPutStream = GrpcStream<PutResult>;
    type DoExchangeStream = GrpcStream<FlightData>;
    type DoActionStream = GrpcStream<arrow_flight::Result>;
    type ListActionsStream = GrpcStream<ActionType>;

    async fn handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<Response<Self::HandshakeStream>, Status> {
        FlightService::handshake(&self.sql, request).await
    }

    async fn list_flights(
        &self,
        request: Request<Criteria>,
    ) -> Result<Response<Self::ListFlightsStream>, Status> {
        FlightService::list_flights(&self.sql, request).await
    }

    async fn get_flight_info(
        &self,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        FlightService::get_flight_info(&self.sql, request).await
    }

    async fn poll_flight_info(
        &self,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<PollInfo>, Status> {
        FlightService::poll_flight_info(&self.sql, request).await
    }

    async fn get_schema(
        &self,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<SchemaResult>, Status> {
        FlightService::get_schema(&self.sql, request).await
    }

    /// A ticket that is a JSON object is InfluxDB 3's; any other is a
    /// Flight SQL ticket (a protobuf `Any`).
    async fn do_get(
        &self,
        request: Request<Ticket>,
    ) -> Result<Response<Self::DoGetStream>, Status> {
        let Some(ticket) = InfluxTicket::parse(&request.get_ref().ticket)? else {
            return FlightService::do_get(&self.sql, request).await;
        };
        if ticket.query_type == QueryType::Influxql {
            let stream = self
                .sql
                .queries()
                .influxql(
                    request.metadata(),
                    &ticket.database,
                    &ticket.sql_query,
                    ticket.params.as_ref(),
                )
                .await?;
            return Ok(Response::new(stream));
        }
        let stream = self
            .sql
            .queries()
            .stream(
                request.metadata(),
                &ticket.database,
                &ticket.sql_query,
                ticket.params.as_ref(),
            )
            .await?;
        Ok(Response::new(stream))
    }

    async fn do_put(
        &self,
        request: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoPutStream>, Status> {
        FlightService::do_put(&self.sql, request).await
    }

    async fn do_exchange(
        &self,
        request: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoExchangeStream>, Status> {
        FlightService::do_exchange(&self.sql, request).await
    }

    async fn do_action(
        &self,
        request: Request<Action>,
    ) -> Result<Response<Self::DoActionStream>, Status> {
        FlightService::do_action(&self.sql, request).await
    }

    async fn list_actions(
        &self,
        request: Request<Empty>,
    ) -> Result<Response<Self::ListActionsStream>, Status> {
        FlightService::list_actions(&self.sql, request).await
    }
}
