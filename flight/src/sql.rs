//! Flight SQL: statements, prepared statements and the metadata commands
//! tools ask first (catalogs, schemas, tables, table types, SQL info,
//! primary keys), all answered by running SQL through the query service.
//!
//! The database comes from the `database` header (or `bucket`,
//! `bucket-name`, `iox-namespace-name`, as InfluxDB 3 reads them). Handles
//! carry the statement itself ([`Statement`]), so any querier can serve
//! any handle and nothing is kept between calls.

use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::sql::metadata::{SqlInfoData, SqlInfoDataBuilder};
use arrow_flight::sql::server::{FlightSqlService, PeekableFlightDataStream};
use arrow_flight::sql::{
    ActionClosePreparedStatementRequest, ActionCreatePreparedStatementRequest,
    ActionCreatePreparedStatementResult, CommandGetCatalogs, CommandGetDbSchemas,
    CommandGetPrimaryKeys, CommandGetSqlInfo, CommandGetTableTypes, CommandGetTables,
    CommandPreparedStatementQuery, CommandStatementQuery, DoPutPreparedStatementResult,
    ProstMessageExt, SqlInfo, TicketStatementQuery,
};
use arrow_flight::{
    Action, FlightDescriptor, FlightEndpoint, FlightInfo, HandshakeRequest, HandshakeResponse,
    IpcMessage, SchemaAsIpc, Ticket,
};
use base64::Engine;
use futures::{StreamExt, TryStreamExt};
use http_api::auth::Need;
use prost::Message;
use services::Params;
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status, Streaming};

use crate::handle::Statement;
use crate::{GrpcStream, Queries, status};

/// The headers a Flight SQL client names its database with, in order.
const DATABASE_HEADERS: [&str; 4] = ["database", "bucket", "bucket-name", "iox-namespace-name"];

/// The catalog every database's schemas live in (as in SQL over HTTP).
const CATALOG: &str = "public";

/// The schemas of a database: its tables, the system tables and
/// `information_schema`.
const SCHEMAS: [&str; 3] = ["iox", "system", "information_schema"];

/// Flight SQL over the query service.
pub(crate) struct FlightSql {
    queries: Queries,
    sql_info: SqlInfoData,
}

impl std::fmt::Debug for FlightSql {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlightSql")
            .field("queries", &self.queries)
            .finish_non_exhaustive()
    }
}

impl FlightSql {
    pub(crate) fn new(queries: Queries) -> Self {
        let mut info = SqlInfoDataBuilder::new();
        info.append(SqlInfo::FlightSqlServerName, "Inflow");
        info.append(SqlInfo::FlightSqlServerVersion, env!("CARGO_PKG_VERSION"));
        info.append(SqlInfo::FlightSqlServerArrowVersion, "59");
        info.append(SqlInfo::FlightSqlServerReadOnly, true);
        info.append(SqlInfo::FlightSqlServerSql, true);
        info.append(SqlInfo::FlightSqlServerSubstrait, false);
        info.append(SqlInfo::FlightSqlServerTransaction, 0i32);
        info.append(SqlInfo::FlightSqlServerCancel, false);
        info.append(SqlInfo::SqlDdlCatalog, false);
        info.append(SqlInfo::SqlDdlSchema, false);
        info.append(SqlInfo::SqlDdlTable, false);
        info.append(SqlInfo::SqlIdentifierCase, 3i32); // case sensitive (unquoted: lower)
        info.append(SqlInfo::SqlIdentifierQuoteChar, "\"");
        info.append(SqlInfo::SqlQuotedIdentifierCase, 3i32);
        info.append(SqlInfo::SqlAllTablesAreSelectable, true);
        info.append(SqlInfo::SqlNullOrdering, 2i32); // nulls sorted at the end
        // Built from constants of the right types: it cannot fail.
        let sql_info = info.build().unwrap_or_else(|_| {
            SqlInfoDataBuilder::new()
                .build()
                .unwrap_or_else(|_| unreachable!("an empty SqlInfoData builds"))
        });
        Self { queries, sql_info }
    }

    pub(crate) fn queries(&self) -> &Queries {
        &self.queries
    }

    /// Runs `sql` on the request's database and collects the (small)
    /// result: the metadata commands' queries.
    async fn collect(&self, metadata: &MetadataMap, sql: &str) -> Result<Vec<RecordBatch>, Status> {
        let db = database(metadata)?;
        let results = self.queries.run(metadata, &db, sql, None).await?;
        results
            .batches
            .try_collect()
            .await
            .map_err(status::from_query)
    }

    /// Runs the statement a handle carries and streams its results.
    async fn run_handle(
        &self,
        handle: &[u8],
        metadata: &MetadataMap,
    ) -> Result<Response<GrpcStream<arrow_flight::FlightData>>, Status> {
        let s = Statement::decode(handle)?;
        let stream = self
            .queries
            .stream(metadata, &s.database, &s.sql, s.params.as_ref())
            .await?;
        Ok(Response::new(stream))
    }

    /// The Arrow schema of `schema.table`, as a query reads it.
    async fn table_schema(
        &self,
        metadata: &MetadataMap,
        schema: &str,
        table: &str,
    ) -> Result<SchemaRef, Status> {
        let db = database(metadata)?;
        let sql = format!("SELECT * FROM {}.{} LIMIT 0", quote(schema), quote(table));
        let schema = self.queries.run(metadata, &db, &sql, None).await?.schema;
        Ok(Arc::new(as_sent(&schema)))
    }
}

/// The request's database, from the first of [`DATABASE_HEADERS`] present.
fn database(metadata: &MetadataMap) -> Result<String, Status> {
    DATABASE_HEADERS
        .iter()
        .find_map(|h| metadata.get(*h).and_then(|v| v.to_str().ok()))
        .filter(|d| !d.is_empty())
        .map(str::to_string)
        .ok_or_else(|| {
            Status::invalid_argument(
                "no database given: send it in the \"database\" header (or \"bucket\", \"bucket-name\", \"iox-namespace-name\")",
            )
        })
}

/// `name` as a quoted SQL identifier.
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A schema as Flight's IPC-encoded bytes.
fn schema_bytes(schema: &Schema) -> Result<bytes::Bytes, Status> {
    let IpcMessage(bytes) = SchemaAsIpc::new(schema, &Default::default())
        .try_into()
        .map_err(status::from_arrow)?;
    Ok(bytes)
}

/// `schema` as the stream sends it: dictionary columns (tags) are sent as
/// their values, as Flight's encoder hydrates them (and InfluxDB 3 does).
fn as_sent(schema: &Schema) -> Schema {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            DataType::Dictionary(_, values) => {
                f.as_ref().clone().with_data_type(values.as_ref().clone())
            }
            _ => f.as_ref().clone(),
        })
        .collect();
    Schema::new_with_metadata(fields, schema.metadata().clone())
}

/// A FlightInfo with one endpoint whose ticket is `ticket`.
fn flight_info(
    schema: &Schema,
    ticket: impl ProstMessageExt,
    descriptor: FlightDescriptor,
) -> Result<Response<FlightInfo>, Status> {
    let ticket = Ticket::new(ticket.as_any().encode_to_vec());
    let info = FlightInfo::new()
        .try_with_schema(&as_sent(schema))
        .map_err(status::from_arrow)?
        .with_endpoint(FlightEndpoint::new().with_ticket(ticket))
        .with_descriptor(descriptor);
    Ok(Response::new(info))
}

/// One batch as a DoGet stream.
fn one_batch(batch: RecordBatch) -> Response<GrpcStream<arrow_flight::FlightData>> {
    let data = FlightDataEncoderBuilder::new()
        .with_schema(batch.schema())
        .build(futures::stream::once(async move { Ok(batch) }))
        .map_err(Status::from);
    Response::new(data.boxed())
}

/// The string column `name` of `batches`, row by row.
fn strings(batches: &[RecordBatch], name: &str) -> Vec<Option<String>> {
    let mut out = Vec::new();
    for b in batches {
        let Some(c) = b.column_by_name(name) else {
            continue;
        };
        let Ok(c) = arrow::compute::cast(c, &DataType::Utf8) else {
            continue;
        };
        let c = c.as_string::<i32>();
        out.extend((0..c.len()).map(|i| c.is_valid(i).then(|| c.value(i).to_string())));
    }
    out
}

/// Flight SQL's GetPrimaryKeys result schema (Inflow's tables have none).
fn primary_keys_schema() -> Schema {
    Schema::new(vec![
        Field::new("catalog_name", DataType::Utf8, true),
        Field::new("db_schema_name", DataType::Utf8, true),
        Field::new("table_name", DataType::Utf8, false),
        Field::new("column_name", DataType::Utf8, false),
        Field::new("key_sequence", DataType::Int32, false),
        Field::new("key_name", DataType::Utf8, true),
    ])
}

/// The first row of a bound-parameter batch as placeholder values: by
/// position (`1` for `$1`) and by field name.
fn parameters(batches: &[RecordBatch]) -> Result<Option<Params>, Status> {
    let Some(batch) = batches.iter().find(|b| b.num_rows() > 0) else {
        return Ok(None);
    };
    let row = batch.slice(0, 1);
    let mut writer = arrow::json::ArrayWriter::new(Vec::new());
    writer
        .write(&row)
        .and_then(|_| writer.finish())
        .map_err(status::from_arrow)?;
    let rows: Vec<serde_json::Map<String, serde_json::Value>> =
        serde_json::from_slice(&writer.into_inner())
            .map_err(|e| Status::internal(format!("reading bound parameters: {e}")))?;
    let values = rows.into_iter().next().unwrap_or_default();
    let mut params = Params::new();
    for (i, field) in batch.schema().fields().iter().enumerate() {
        // The JSON writer leaves nulls out.
        let v = values
            .get(field.name())
            .cloned()
            .unwrap_or(serde_json::Value::Null);
        params.insert((i + 1).to_string(), v.clone());
        if field.name().parse::<usize>().is_err() {
            params.insert(field.name().trim_start_matches('$').to_string(), v);
        }
    }
    Ok(Some(params))
}

/// The token of a handshake's `authorization` header (Basic: the password).
fn handshake_token(metadata: &MetadataMap) -> Option<String> {
    let value = metadata.get("authorization")?.to_str().ok()?;
    let (scheme, rest) = value.split_once(' ')?;
    match scheme.to_ascii_lowercase().as_str() {
        "bearer" | "token" => Some(rest.to_string()),
        "basic" => {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(rest)
                .ok()?;
            let decoded = String::from_utf8(decoded).ok()?;
            decoded.split_once(':').map(|(_, token)| token.to_string())
        }
        _ => None,
    }
}

#[tonic::async_trait]
impl FlightSqlService for FlightSql {
    type FlightService = FlightSql;

    /// Checks basic or bearer credentials and answers with the bearer token
    /// to send on later calls (clients such as the JDBC driver want one).
    async fn do_handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<Response<GrpcStream<HandshakeResponse>>, Status> {
        let token = handshake_token(request.metadata());
        let mut md = request.metadata().clone();
        if let Some(t) = &token {
            // Basic credentials are checked as the bearer token they carry.
            if let Ok(v) = format!("Bearer {t}").parse() {
                md.insert("authorization", v);
            }
        }
        self.queries.authorize(&md, Need::AnyToken)?;
        let reply = HandshakeResponse {
            protocol_version: 0,
            payload: Default::default(),
        };
        let mut response = Response::new(futures::stream::once(async { Ok(reply) }).boxed());
        if let Some(v) = token.and_then(|t| format!("Bearer {t}").parse().ok()) {
            response.metadata_mut().insert("authorization", v);
        }
        Ok(response)
    }

    async fn get_flight_info_statement(
        &self,
        query: CommandStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let statement = Statement {
            database: database(request.metadata())?,
            sql: query.query,
            params: None,
        };
        let results = self
            .queries
            .run(
                request.metadata(),
                &statement.database,
                &statement.sql,
                None,
            )
            .await?;
        let ticket = TicketStatementQuery {
            statement_handle: statement.encode().into(),
        };
        flight_info(&results.schema, ticket, request.into_inner())
    }

    async fn do_get_statement(
        &self,
        ticket: TicketStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<GrpcStream<arrow_flight::FlightData>>, Status> {
        self.run_handle(&ticket.statement_handle, request.metadata())
            .await
    }

    async fn do_action_create_prepared_statement(
        &self,
        query: ActionCreatePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        let statement = Statement {
            database: database(request.metadata())?,
            sql: query.query,
            params: None,
        };
        // The result's schema, where it can be planned before parameters
        // are bound; a statement with placeholders may have to wait.
        let planned = self
            .queries
            .run(
                request.metadata(),
                &statement.database,
                &statement.sql,
                None,
            )
            .await;
        let dataset_schema = match planned {
            Ok(r) => schema_bytes(&as_sent(&r.schema))?,
            // Placeholders without values do not plan; the schema comes
            // with the results once parameters are bound.
            Err(_) if statement.sql.contains('$') => Default::default(),
            Err(e) => return Err(e),
        };
        Ok(ActionCreatePreparedStatementResult {
            prepared_statement_handle: statement.encode().into(),
            dataset_schema,
            parameter_schema: Default::default(),
        })
    }

    async fn do_put_prepared_statement_query(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<DoPutPreparedStatementResult, Status> {
        let mut statement = Statement::decode(&query.prepared_statement_handle)?;
        let data = request.into_inner().map_err(FlightError::from);
        let batches: Vec<RecordBatch> = FlightRecordBatchStream::new_from_flight_data(data)
            .try_collect()
            .await
            .map_err(Status::from)?;
        statement.params = parameters(&batches)?;
        Ok(DoPutPreparedStatementResult {
            prepared_statement_handle: Some(statement.encode().into()),
        })
    }

    async fn get_flight_info_prepared_statement(
        &self,
        cmd: CommandPreparedStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let s = Statement::decode(&cmd.prepared_statement_handle)?;
        let results = self
            .queries
            .run(request.metadata(), &s.database, &s.sql, s.params.as_ref())
            .await?;
        flight_info(&results.schema, cmd, request.into_inner())
    }

    async fn do_get_prepared_statement(
        &self,
        cmd: CommandPreparedStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<GrpcStream<arrow_flight::FlightData>>, Status> {
        self.run_handle(&cmd.prepared_statement_handle, request.metadata())
            .await
    }

    /// Handles hold the statement itself: nothing to free.
    async fn do_action_close_prepared_statement(
        &self,
        query: ActionClosePreparedStatementRequest,
        _request: Request<Action>,
    ) -> Result<(), Status> {
        Statement::decode(&query.prepared_statement_handle).map(|_| ())
    }

    async fn get_flight_info_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        flight_info(&self.sql_info.schema(), query, request.into_inner())
    }

    async fn do_get_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<Ticket>,
    ) -> Result<Response<GrpcStream<arrow_flight::FlightData>>, Status> {
        self.queries.authorize(request.metadata(), Need::AnyToken)?;
        let batch = query
            .into_builder(&self.sql_info)
            .build()
            .map_err(Status::from)?;
        Ok(one_batch(batch))
    }

    async fn get_flight_info_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.into_builder().schema();
        flight_info(&schema, query, request.into_inner())
    }

    async fn do_get_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<Ticket>,
    ) -> Result<Response<GrpcStream<arrow_flight::FlightData>>, Status> {
        self.queries.authorize(request.metadata(), Need::AnyToken)?;
        let mut builder = query.into_builder();
        builder.append(CATALOG);
        Ok(one_batch(builder.build().map_err(Status::from)?))
    }

    async fn get_flight_info_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder().schema();
        flight_info(&schema, query, request.into_inner())
    }

    async fn do_get_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<Ticket>,
    ) -> Result<Response<GrpcStream<arrow_flight::FlightData>>, Status> {
        self.queries.authorize(request.metadata(), Need::AnyToken)?;
        let mut builder = query.into_builder();
        for schema in SCHEMAS {
            builder.append(CATALOG, schema);
        }
        Ok(one_batch(builder.build().map_err(Status::from)?))
    }

    async fn get_flight_info_tables(
        &self,
        query: CommandGetTables,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder().schema();
        flight_info(&schema, query, request.into_inner())
    }

    async fn do_get_tables(
        &self,
        query: CommandGetTables,
        request: Request<Ticket>,
    ) -> Result<Response<GrpcStream<arrow_flight::FlightData>>, Status> {
        let md = request.metadata();
        let include_schema = query.include_schema;
        let mut builder = query.into_builder();
        let rows = self
            .collect(
                md,
                "SELECT table_schema, table_name, table_type FROM information_schema.tables \
                 ORDER BY table_schema, table_name",
            )
            .await?;
        let empty = Schema::empty();
        let (schemas, names, types) = (
            strings(&rows, "table_schema"),
            strings(&rows, "table_name"),
            strings(&rows, "table_type"),
        );
        for ((schema, name), kind) in schemas.into_iter().zip(names).zip(types) {
            let (Some(schema), Some(name), Some(kind)) = (schema, name, kind) else {
                continue;
            };
            let arrow_schema = if include_schema {
                match self.table_schema(md, &schema, &name).await {
                    Ok(s) => s,
                    // A system table the caller may not read is not listed.
                    Err(e) if e.code() == tonic::Code::PermissionDenied => continue,
                    Err(e) => return Err(e),
                }
            } else {
                Arc::new(empty.clone())
            };
            builder
                .append(CATALOG, &schema, &name, &kind, &arrow_schema)
                .map_err(Status::from)?;
        }
        Ok(one_batch(builder.build().map_err(Status::from)?))
    }

    async fn get_flight_info_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.into_builder().schema();
        flight_info(&schema, query, request.into_inner())
    }

    async fn do_get_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<Ticket>,
    ) -> Result<Response<GrpcStream<arrow_flight::FlightData>>, Status> {
        let rows = self
            .collect(
                request.metadata(),
                "SELECT DISTINCT table_type FROM information_schema.tables ORDER BY table_type",
            )
            .await?;
        let mut builder = query.into_builder();
        for kind in strings(&rows, "table_type").into_iter().flatten() {
            builder.append(kind);
        }
        Ok(one_batch(builder.build().map_err(Status::from)?))
    }

    async fn get_flight_info_primary_keys(
        &self,
        query: CommandGetPrimaryKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        flight_info(&primary_keys_schema(), query, request.into_inner())
    }

    async fn do_get_primary_keys(
        &self,
        _query: CommandGetPrimaryKeys,
        request: Request<Ticket>,
    ) -> Result<Response<GrpcStream<arrow_flight::FlightData>>, Status> {
        self.queries.authorize(request.metadata(), Need::AnyToken)?;
        Ok(one_batch(RecordBatch::new_empty(Arc::new(
            primary_keys_schema(),
        ))))
    }

    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}
}

/// Decodes a Flight SQL command from a descriptor or ticket (for tests).
#[cfg(test)]
fn decode_any(bytes: &[u8]) -> arrow_flight::sql::Any {
    arrow_flight::sql::Any::decode(bytes).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};

    #[test]
    fn bound_parameters_by_position_and_name() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("0", DataType::Utf8, true),
            Field::new("min", DataType::Int64, true),
            Field::new("gone", DataType::Int64, true),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(vec![Some("a")])),
                Arc::new(Int64Array::from(vec![Some(2)])),
                Arc::new(Int64Array::from(vec![None])),
            ],
        )
        .unwrap();
        let p = parameters(&[batch]).unwrap().unwrap();
        assert_eq!(p["1"], "a");
        assert_eq!(p["2"], 2);
        assert_eq!(p["min"], 2);
        assert!(p["3"].is_null());
        assert!(!p.contains_key("0"));
    }

    #[test]
    fn handshake_credentials() {
        let mut md = MetadataMap::new();
        md.insert("authorization", "Bearer tok".parse().unwrap());
        assert_eq!(handshake_token(&md).as_deref(), Some("tok"));
        let basic = base64::engine::general_purpose::STANDARD.encode("user:tok2");
        md.insert("authorization", format!("Basic {basic}").parse().unwrap());
        assert_eq!(handshake_token(&md).as_deref(), Some("tok2"));
        md.insert("authorization", "Digest x".parse().unwrap());
        assert_eq!(handshake_token(&md), None);
    }

    #[test]
    fn tickets_are_flight_sql_commands() {
        let t = TicketStatementQuery {
            statement_handle: b"h".to_vec().into(),
        };
        let any = decode_any(&t.as_any().encode_to_vec());
        assert!(any.type_url.ends_with("TicketStatementQuery"));
    }
}
