//! The database and table management API (`/api/v3/configure/...`).
//!
//! Deletes are catalog transactions. A soft delete renames the database or
//! table to `{name}-{YYYYMMDDTHHMMSS}` and hides it, so its name is free at
//! once; `hard_delete_at` schedules (or, with `now`, performs) its removal,
//! after which the compactor deletes its files. `data_only` deletes the
//! rows and keeps the schema. Buffered rows a delete voids are dropped
//! before the response, so queries stop returning them at once.

use std::sync::Arc;

use crate::format::{Encoder, QueryFormat};
use arrow::array::{ArrayRef, BooleanArray, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use catalog::{
    CatalogError, CatalogOp, CatalogState, ColumnDef, ColumnKind, FieldType, validate_db_name,
};
use serde::Deserialize;
use services::INTERNAL_DB;

use crate::auth::{Need, authorize};
use crate::error::{ApiError, Family, catalog_error};
use crate::write::read_body;
use crate::{AppState, BodyLimits};

pub(crate) fn respond(r: Result<Response, ApiError>) -> Response {
    r.unwrap_or_else(|e| e.respond(Family::V3))
}

/// The query string as pairs; a parameter given twice keeps the last value.
fn query_pairs(q: Option<&str>) -> Result<Vec<(String, String)>, ApiError> {
    serde_urlencoded::from_str(q.unwrap_or(""))
        .map_err(|e| ApiError::BadRequest(format!("invalid query string: {e}")))
}

pub(crate) fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

pub(crate) fn required<'a>(pairs: &'a [(String, String)], name: &str) -> Result<&'a str, ApiError> {
    param(pairs, name)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ApiError::BadRequest(format!("missing query parameter '{name}'")))
}

fn bool_param(pairs: &[(String, String)], name: &str) -> Result<bool, ApiError> {
    match param(pairs, name) {
        None | Some("") => Ok(false),
        Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
        Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
        Some(v) => Err(ApiError::BadRequest(format!(
            "invalid value '{v}' for '{name}': use true or false"
        ))),
    }
}

/// Parses a retention period such as `30m`, `24h`, `7d`, `1y`.
pub(crate) fn parse_retention(s: &str) -> Result<i64, ApiError> {
    let d = humantime::parse_duration(s.trim()).map_err(|e| {
        ApiError::BadRequest(format!(
            "invalid retention period '{s}': {e} (examples: 30m, 24h, 7d, 1y)"
        ))
    })?;
    let ns = i64::try_from(d.as_nanos())
        .map_err(|_| ApiError::BadRequest(format!("retention period '{s}' is too long")))?;
    if ns <= 0 {
        return Err(ApiError::BadRequest(format!(
            "retention period '{s}' must be positive"
        )));
    }
    Ok(ns)
}

/// `hard_delete_at`: `now`, `never` (or absent), `default`, or an ISO 8601 time.
fn hard_delete_at(
    v: Option<&str>,
    now: i64,
    default_delay_ns: i64,
) -> Result<Option<i64>, ApiError> {
    match v.map(str::trim) {
        None | Some("") | Some("never") => Ok(None),
        Some("now") => Ok(Some(now)),
        Some("default") => Ok(Some(now.saturating_add(default_delay_ns))),
        Some(t) => chrono::DateTime::parse_from_rfc3339(t)
            .ok()
            .and_then(|d| d.timestamp_nanos_opt())
            .map(Some)
            .ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "invalid hard_delete_at '{t}': use now, never, default or an ISO 8601 time such as 2025-12-31T23:59:59Z"
                ))
            }),
    }
}

/// The name a soft-deleted database or table takes.
fn deleted_name(name: &str, now: i64) -> String {
    format!(
        "{name}-{}",
        chrono::DateTime::from_timestamp_nanos(now).format("%Y%m%dT%H%M%S")
    )
}

/// The parameters every DELETE shares: `data_only`, and `hard_delete_at`
/// resolved against `now`.
struct DeleteParams {
    now: i64,
    data_only: bool,
    hard: Option<i64>,
}

impl DeleteParams {
    fn parse(state: &AppState, pairs: &[(String, String)]) -> Result<Self, ApiError> {
        let now = catalog::now_ns();
        Ok(Self {
            now,
            data_only: bool_param(pairs, "data_only")?,
            hard: hard_delete_at(
                param(pairs, "hard_delete_at"),
                now,
                state.hard_delete_default_ns,
            )?,
        })
    }

    /// Whether the hard delete is due at once (`now`, or a time passed).
    fn hard_now(&self) -> bool {
        self.hard.is_some_and(|h| h <= self.now)
    }
}

/// Commits a delete, then drops the buffered rows it voids before answering
/// 200, so queries stop returning them at once.
async fn commit_delete<F>(state: &AppState, plan: F) -> Result<Response, ApiError>
where
    F: Fn(&CatalogState) -> Result<Vec<CatalogOp>, CatalogError>,
{
    state.catalog.update(plan).await.map_err(catalog_error)?;
    if let Some(w) = &state.writer {
        w.catalog_changed();
    }
    Ok(StatusCode::OK.into_response())
}

pub(crate) fn admin(
    state: &AppState,
    headers: &HeaderMap,
    q: Option<&str>,
) -> Result<(), ApiError> {
    authorize(
        &state.auth,
        &state.catalog,
        Family::V3,
        headers,
        q,
        Need::Admin,
    )
    .map(|_| ())
}

/// Checks for an admin token, then parses the query string.
pub(crate) fn admin_query(
    state: &AppState,
    headers: &HeaderMap,
    q: Option<&str>,
) -> Result<Vec<(String, String)>, ApiError> {
    admin(state, headers, q)?;
    query_pairs(q)
}

pub(crate) async fn json_body<T: serde::de::DeserializeOwned>(
    body: Body,
    headers: &HeaderMap,
    limit: BodyLimits,
) -> Result<T, ApiError> {
    let bytes = read_body(body, headers, limit).await?;
    serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::BadRequest(format!("invalid JSON request body: {e}")))
}

pub(crate) fn db_not_found(db: &str) -> CatalogError {
    CatalogError::NotFound(format!("database not found: {db}"))
}

pub(crate) fn table_not_found(db: &str, table: &str) -> CatalogError {
    CatalogError::NotFound(format!("table not found: {table} in database {db}"))
}

/// The hard-delete delay `default` means, in nanoseconds.
pub const HARD_DELETE_DEFAULT_NS: i64 = 72 * 3_600 * 1_000_000_000;

// ---- databases -------------------------------------------------------------

/// GET /api/v3/configure/database?format=F[&show_deleted=true]
pub(crate) async fn list_databases(
    State(state): State<AppState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Response {
    respond(
        async {
            let caller = authorize(
                &state.auth,
                &state.catalog,
                Family::V3,
                &headers,
                q.as_deref(),
                Need::AnyToken,
            )?;
            let pairs = query_pairs(q.as_deref())?;
            let f = required(&pairs, "format")?;
            let format = QueryFormat::from_param(f).ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "invalid format '{f}': use json, jsonl, csv, pretty or parquet"
                ))
            })?;
            let show_deleted = bool_param(&pairs, "show_deleted")?;
            let may_see = |name: &str| {
                caller.as_ref().is_none_or(|t| {
                    t.allows(catalog::ResourceType::Db, name, catalog::Action::Read)
                        || t.allows(catalog::ResourceType::Db, name, catalog::Action::Write)
                })
            };
            let cs = state.catalog.state();
            let mut rows: Vec<(String, Option<String>, bool)> = Vec::new();
            if may_see(INTERNAL_DB) {
                rows.push((INTERNAL_DB.to_string(), None, false));
            }
            for db in cs.all_databases() {
                let deleted = db.deleted.is_some();
                let visible_name = db.deleted.as_ref().map_or(&db.name, |d| &d.original_name);
                if (deleted && !show_deleted) || !may_see(visible_name) {
                    continue;
                }
                rows.push((
                    db.name.to_string(),
                    db.retention_ns.map(catalog::format_retention),
                    deleted,
                ));
            }
            let mut fields = vec![
                Field::new("iox::database", DataType::Utf8, false),
                Field::new("retention_period", DataType::Utf8, true),
            ];
            let mut columns: Vec<ArrayRef> = vec![
                Arc::new(StringArray::from_iter_values(
                    rows.iter().map(|r| r.0.as_str()),
                )),
                Arc::new(StringArray::from_iter(rows.iter().map(|r| r.1.as_deref()))),
            ];
            if show_deleted {
                fields.push(Field::new("deleted", DataType::Boolean, false));
                columns.push(Arc::new(BooleanArray::from_iter(
                    rows.iter().map(|r| Some(r.2)),
                )));
            }
            let schema = Arc::new(Schema::new(fields));
            let batch = RecordBatch::try_new(Arc::clone(&schema), columns)
                .map_err(|e| ApiError::Internal(format!("listing databases: {e}")))?;
            let mut enc = Encoder::new(format, schema);
            let mut out = enc
                .batch(&batch)
                .map_err(|e| ApiError::Internal(e.to_string()))?
                .to_vec();
            out.extend_from_slice(
                &enc.finish()
                    .map_err(|e| ApiError::Internal(e.to_string()))?,
            );
            let mut resp = Response::new(Body::from(out));
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(format.content_type()),
            );
            Ok(resp)
        }
        .await,
    )
}

#[derive(Debug, Deserialize)]
struct CreateDatabase {
    db: String,
    retention_period: Option<String>,
}

/// POST /api/v3/configure/database {"db", "retention_period"?}: 200, 400, 409.
pub(crate) async fn create_database(
    State(state): State<AppState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    respond(async {
        admin(&state, &headers, q.as_deref())?;
        let req: CreateDatabase = json_body(body, &headers, state.body_limits).await?;
        validate_db_name(&req.db).map_err(ApiError::BadRequest)?;
        let retention_ns = req.retention_period.as_deref().filter(|r| !r.is_empty()).map(parse_retention).transpose()?;
        let limit = state.limits.max_databases;
        state
            .catalog
            .update(|s| {
                if s.db(&req.db).is_some() || req.db == INTERNAL_DB {
                    return Err(CatalogError::AlreadyExists(format!("database already exists: {}", req.db)));
                }
                if s.databases().count() >= limit {
                    return Err(CatalogError::Invalid(format!(
                        "the server has reached its limit of {limit} databases; raise it with --max-databases or delete a database"
                    )));
                }
                Ok(vec![CatalogOp::CreateDatabase {
                    db_id: s.next_db_id(),
                    name: req.db.clone(),
                    retention_ns,
                }])
            })
            .await
            .map_err(catalog_error)?;
        Ok(StatusCode::OK.into_response())
    }
    .await)
}

#[derive(Debug, Deserialize)]
struct UpdateDatabase {
    db: Option<String>,
    retention_period: Option<String>,
}

/// PUT /api/v3/configure/database {"db", "retention_period"} (or `?db=`): 200, 400, 404.
pub(crate) async fn update_database(
    State(state): State<AppState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    respond(
        async {
            let pairs = admin_query(&state, &headers, q.as_deref())?;
            let req: UpdateDatabase = json_body(body, &headers, state.body_limits).await?;
            let db = req
                .db
                .or_else(|| param(&pairs, "db").map(str::to_string))
                .filter(|d| !d.is_empty())
                .ok_or_else(|| {
                    ApiError::BadRequest(
                        "missing 'db' (in the JSON body or the query string)".into(),
                    )
                })?;
            let retention = req.retention_period.as_deref().ok_or_else(|| {
                ApiError::BadRequest("missing 'retention_period' (for example \"7d\")".into())
            })?;
            let retention_ns = parse_retention(retention)?;
            set_db_retention(&state, &db, Some(retention_ns)).await?;
            Ok(StatusCode::OK.into_response())
        }
        .await,
    )
}

async fn set_db_retention(
    state: &AppState,
    db: &str,
    retention_ns: Option<i64>,
) -> Result<(), ApiError> {
    state
        .catalog
        .update(|s| {
            let d = s.db(db).ok_or_else(|| db_not_found(db))?;
            Ok(vec![CatalogOp::SetDatabaseRetention {
                db_id: d.id,
                retention_ns,
            }])
        })
        .await
        .map_err(catalog_error)?;
    Ok(())
}

/// POST /api/v3/configure/database/retention_period?db=&duration=: 204, 400, 404
/// (InfluxDB 3 Core's endpoint; PUT /api/v3/configure/database does the same).
pub(crate) async fn set_database_retention(
    State(state): State<AppState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Response {
    respond(
        async {
            let pairs = admin_query(&state, &headers, q.as_deref())?;
            let db = required(&pairs, "db")?;
            let duration = parse_retention(required(&pairs, "duration")?)?;
            set_db_retention(&state, db, Some(duration)).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        .await,
    )
}

/// DELETE /api/v3/configure/database/retention_period?db=: 204, 404.
pub(crate) async fn delete_database_retention(
    State(state): State<AppState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Response {
    respond(
        async {
            let pairs = admin_query(&state, &headers, q.as_deref())?;
            let db = required(&pairs, "db")?;
            set_db_retention(&state, db, None).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        .await,
    )
}

/// DELETE /api/v3/configure/database?db=[&data_only][&remove_tables][&hard_delete_at]: 200, 400, 404.
pub(crate) async fn delete_database(
    State(state): State<AppState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Response {
    respond(
        async {
            let pairs = admin_query(&state, &headers, q.as_deref())?;
            let db = required(&pairs, "db")?;
            let remove_tables = bool_param(&pairs, "remove_tables")?;
            let p = DeleteParams::parse(&state, &pairs)?;
            commit_delete(&state, |s| {
                let d = s.db(db).ok_or_else(|| db_not_found(db))?;
                if p.data_only {
                    return Ok(vec![CatalogOp::ClearDatabaseData {
                        db_id: d.id,
                        at_ns: p.now,
                        remove_tables,
                    }]);
                }
                let mut ops = vec![CatalogOp::SoftDeleteDatabase {
                    db_id: d.id,
                    new_name: deleted_name(db, p.now),
                    deleted_at_ns: p.now,
                    hard_delete_at_ns: p.hard,
                }];
                if p.hard_now() {
                    ops.push(CatalogOp::RemoveDatabase { db_id: d.id });
                }
                Ok(ops)
            })
            .await
        }
        .await,
    )
}

// ---- tables ----------------------------------------------------------------

#[derive(Debug, Deserialize)]
struct FieldSpec {
    name: String,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Debug, Deserialize)]
struct CreateTable {
    db: String,
    table: String,
    tags: Vec<String>,
    fields: Vec<FieldSpec>,
    retention_period: Option<String>,
}

fn field_type(t: &str) -> Result<FieldType, ApiError> {
    Ok(match t {
        "utf8" | "string" => FieldType::String,
        "int64" | "integer" => FieldType::Integer,
        "uint64" | "uinteger" => FieldType::UInteger,
        "float64" | "float" => FieldType::Float,
        "bool" | "boolean" => FieldType::Boolean,
        other => {
            return Err(ApiError::BadRequest(format!(
                "invalid field type '{other}': use utf8, int64, uint64, float64 or bool"
            )));
        }
    })
}

fn check_identifier(what: &str, name: &str) -> Result<(), ApiError> {
    if name.is_empty() || name.len() > 256 || name.chars().any(char::is_control) {
        return Err(ApiError::BadRequest(format!(
            "invalid {what} name '{name}': use 1 to 256 printable characters"
        )));
    }
    Ok(())
}

/// POST /api/v3/configure/table: 200, 400 (bad request or the table exists), 404 (no database).
pub(crate) async fn create_table(
    State(state): State<AppState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    respond(async {
        admin(&state, &headers, q.as_deref())?;
        let req: CreateTable = json_body(body, &headers, state.body_limits).await?;
        check_identifier("table", &req.table)?;
        let mut columns: Vec<ColumnDef> = Vec::new();
        let mut push = |name: &str, kind: ColumnKind| -> Result<(), ApiError> {
            check_identifier("column", name)?;
            if name == "time" {
                return Err(ApiError::BadRequest("'time' is the timestamp column; it can't be a tag or a field".into()));
            }
            if columns.iter().any(|c| &*c.name == name) {
                return Err(ApiError::BadRequest(format!("column '{name}' is given twice")));
            }
            columns.push(ColumnDef {
                id: columns.len() as u32,
                name: Arc::from(name),
                kind,
            });
            Ok(())
        };
        for t in &req.tags {
            push(t, ColumnKind::Tag)?;
        }
        for f in &req.fields {
            push(&f.name, ColumnKind::Field(field_type(&f.kind)?))?;
        }
        columns.push(ColumnDef {
            id: columns.len() as u32,
            name: Arc::from("time"),
            kind: ColumnKind::Time,
        });
        if columns.len() > state.limits.max_columns_per_table {
            return Err(ApiError::BadRequest(format!(
                "a table can't have more than {} columns; raise the limit with --max-columns-per-table",
                state.limits.max_columns_per_table
            )));
        }
        let retention_ns = req.retention_period.as_deref().filter(|r| !r.is_empty()).map(parse_retention).transpose()?;
        let max_tables = state.limits.max_tables_per_database;
        state
            .catalog
            .update(|s| {
                let d = s.db(&req.db).ok_or_else(|| db_not_found(&req.db))?;
                if d.table(&req.table).is_some() {
                    return Err(CatalogError::Invalid(format!("table already exists: {} in database {}", req.table, req.db)));
                }
                if d.tables().count() >= max_tables {
                    return Err(CatalogError::Invalid(format!(
                        "database '{}' has reached its limit of {max_tables} tables; raise it with --max-tables-per-database",
                        req.db
                    )));
                }
                let table_id = s.next_table_id();
                let mut ops = vec![CatalogOp::CreateTable {
                    db_id: d.id,
                    table_id,
                    name: req.table.clone(),
                    columns: columns.clone(),
                }];
                if retention_ns.is_some() {
                    ops.push(CatalogOp::SetTableRetention {
                        db_id: d.id,
                        table_id,
                        retention_ns,
                    });
                }
                Ok(ops)
            })
            .await
            .map_err(catalog_error)?;
        Ok(StatusCode::OK.into_response())
    }
    .await)
}

#[derive(Debug, Deserialize)]
struct UpdateTable {
    db: String,
    table: String,
    retention_period: Option<String>,
}

async fn set_table_retention(
    state: &AppState,
    db: &str,
    table: &str,
    retention_ns: Option<i64>,
) -> Result<(), ApiError> {
    state
        .catalog
        .update(|s| {
            let (db_id, table_id) = table_ids(s, db, table)?;
            Ok(vec![CatalogOp::SetTableRetention {
                db_id,
                table_id,
                retention_ns,
            }])
        })
        .await
        .map_err(catalog_error)?;
    Ok(())
}

pub(crate) fn table_ids(
    s: &CatalogState,
    db: &str,
    table: &str,
) -> Result<(u32, u32), CatalogError> {
    let d = s.db(db).ok_or_else(|| db_not_found(db))?;
    let t = d.table(table).ok_or_else(|| table_not_found(db, table))?;
    Ok((d.id, t.id))
}

/// PUT /api/v3/configure/table {"db", "table", "retention_period"}: 200, 400, 404.
/// An empty or absent retention period clears the table's own retention.
pub(crate) async fn update_table(
    State(state): State<AppState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    respond(
        async {
            admin(&state, &headers, q.as_deref())?;
            let req: UpdateTable = json_body(body, &headers, state.body_limits).await?;
            let retention_ns = req
                .retention_period
                .as_deref()
                .filter(|r| !r.is_empty())
                .map(parse_retention)
                .transpose()?;
            set_table_retention(&state, &req.db, &req.table, retention_ns).await?;
            Ok(StatusCode::OK.into_response())
        }
        .await,
    )
}

/// DELETE /api/v3/configure/table?db=&table=[&data_only][&hard_delete_at]: 200, 400, 404.
pub(crate) async fn delete_table(
    State(state): State<AppState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Response {
    respond(
        async {
            let pairs = admin_query(&state, &headers, q.as_deref())?;
            let db = required(&pairs, "db")?;
            let table = required(&pairs, "table")?;
            let p = DeleteParams::parse(&state, &pairs)?;
            commit_delete(&state, |s| {
                let (db_id, table_id) = table_ids(s, db, table)?;
                if p.data_only {
                    return Ok(vec![CatalogOp::ClearTableData {
                        db_id,
                        table_id,
                        at_ns: p.now,
                    }]);
                }
                let mut ops = vec![CatalogOp::SoftDeleteTable {
                    db_id,
                    table_id,
                    new_name: deleted_name(table, p.now),
                    deleted_at_ns: p.now,
                    hard_delete_at_ns: p.hard,
                }];
                if p.hard_now() {
                    ops.push(CatalogOp::RemoveTable { db_id, table_id });
                }
                Ok(ops)
            })
            .await
        }
        .await,
    )
}

/// POST /api/v3/enterprise/configure/table/retention_period?db=&table=&duration=: 204, 400, 404.
pub(crate) async fn set_table_retention_period(
    State(state): State<AppState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Response {
    respond(
        async {
            let pairs = admin_query(&state, &headers, q.as_deref())?;
            let db = required(&pairs, "db")?;
            let table = required(&pairs, "table")?;
            let duration = parse_retention(required(&pairs, "duration")?)?;
            set_table_retention(&state, db, table, Some(duration)).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        .await,
    )
}

/// DELETE /api/v3/enterprise/configure/table/retention_period?db=&table=: 204, 404.
pub(crate) async fn clear_table_retention_period(
    State(state): State<AppState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Response {
    respond(
        async {
            let pairs = admin_query(&state, &headers, q.as_deref())?;
            let db = required(&pairs, "db")?;
            let table = required(&pairs, "table")?;
            set_table_retention(&state, db, table, None).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        .await,
    )
}

// ---- InfluxQL's management statements --------------------------------------

/// `CREATE DATABASE`: creates it unless it exists (InfluxDB 1.x succeeds
/// either way).
pub(crate) async fn influxql_create_database(state: &AppState, name: &str) -> Result<(), ApiError> {
    validate_db_name(name).map_err(ApiError::BadRequest)?;
    let limit = state.limits.max_databases;
    state
        .catalog
        .update(|s| {
            if s.db(name).is_some() || name == INTERNAL_DB {
                return Ok(Vec::new());
            }
            if s.databases().count() >= limit {
                return Err(CatalogError::Invalid(format!(
                    "the server has reached its limit of {limit} databases; raise it with --max-databases or delete a database"
                )));
            }
            Ok(vec![CatalogOp::CreateDatabase {
                db_id: s.next_db_id(),
                name: name.to_string(),
                retention_ns: None,
            }])
        })
        .await
        .map_err(catalog_error)?;
    Ok(())
}

/// `DROP DATABASE`: a soft delete, hard-deleted after the default delay;
/// dropping a database that does not exist succeeds, as in InfluxDB 1.x.
pub(crate) async fn influxql_drop_database(state: &AppState, name: &str) -> Result<(), ApiError> {
    let now = catalog::now_ns();
    let hard = now.saturating_add(state.hard_delete_default_ns);
    commit_delete(state, |s| {
        let Some(d) = s.db(name) else {
            return Ok(Vec::new());
        };
        Ok(vec![CatalogOp::SoftDeleteDatabase {
            db_id: d.id,
            new_name: deleted_name(name, now),
            deleted_at_ns: now,
            hard_delete_at_ns: Some(hard),
        }])
    })
    .await?;
    Ok(())
}

/// `DROP MEASUREMENT`: deletes the table (soft, then hard after the default delay).
pub(crate) async fn influxql_drop_table(
    state: &AppState,
    db: &str,
    table: &str,
) -> Result<(), ApiError> {
    let now = catalog::now_ns();
    let hard = now.saturating_add(state.hard_delete_default_ns);
    commit_delete(state, |s| {
        let (db_id, table_id) = table_ids(s, db, table)?;
        Ok(vec![CatalogOp::SoftDeleteTable {
            db_id,
            table_id,
            new_name: deleted_name(table, now),
            deleted_at_ns: now,
            hard_delete_at_ns: Some(hard),
        }])
    })
    .await?;
    Ok(())
}

// ---- the file index ----------------------------------------------------------

#[derive(Debug, Deserialize)]
struct SetFileIndex {
    db: String,
    table: Option<String>,
    #[serde(default)]
    columns: Vec<String>,
}

/// POST /api/v3/enterprise/configure/file_index {"db", "table" (optional:
/// every table), "columns"}: 201 with the index. New files record the values
/// of these tag columns, the compactor adds them to older files, and
/// queries with `=` or `IN` on them skip the files that cannot match. 400,
/// 404.
pub(crate) async fn set_file_index(
    State(state): State<AppState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    respond(
        async {
            admin(&state, &headers, q.as_deref())?;
            let req: SetFileIndex = json_body(body, &headers, state.body_limits).await?;
            if req.columns.is_empty() {
                return Err(ApiError::BadRequest(
                    "give at least one column in 'columns'".into(),
                ));
            }
            for c in &req.columns {
                check_identifier("column", c)?;
            }
            let table = req.table.clone().filter(|t| !t.is_empty());
            state
                .catalog
                .update(|s| {
                    let d = s.db(&req.db).ok_or_else(|| db_not_found(&req.db))?;
                    if let Some(t) = &table {
                        let schema = d.table(t).ok_or_else(|| table_not_found(&req.db, t))?;
                        for c in &req.columns {
                            match schema.column(c).map(|c| c.kind) {
                                Some(ColumnKind::Tag) => {}
                                Some(_) => {
                                    return Err(CatalogError::Invalid(format!(
                                        "column '{c}' is not a tag: only tag columns can be indexed"
                                    )));
                                }
                                None => {
                                    return Err(CatalogError::Invalid(format!(
                                        "invalid column provided: {c}"
                                    )));
                                }
                            }
                        }
                    }
                    Ok(vec![CatalogOp::SetFileIndex {
                        db_id: d.id,
                        index: catalog::FileIndexDef {
                            table: table.clone(),
                            columns: req.columns.clone(),
                        },
                    }])
                })
                .await
                .map_err(catalog_error)?;
            let body = serde_json::json!({"db": req.db, "table": table, "columns": req.columns});
            Ok((
                StatusCode::CREATED,
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )],
                body.to_string(),
            )
                .into_response())
        }
        .await,
    )
}

#[derive(Debug, Deserialize)]
struct DeleteFileIndex {
    db: String,
    table: Option<String>,
}

/// DELETE /api/v3/enterprise/configure/file_index {"db", "table"} (or the
/// same in the query string): 200; 404 when there is no such index.
pub(crate) async fn delete_file_index(
    State(state): State<AppState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    respond(
        async {
            let pairs = admin_query(&state, &headers, q.as_deref())?;
            let req = if param(&pairs, "db").is_some() {
                DeleteFileIndex {
                    db: required(&pairs, "db")?.to_string(),
                    table: param(&pairs, "table").map(str::to_string),
                }
            } else {
                json_body(body, &headers, state.body_limits).await?
            };
            let table = req.table.clone().filter(|t| !t.is_empty());
            state
                .catalog
                .update(|s| {
                    let d = s.db(&req.db).ok_or_else(|| db_not_found(&req.db))?;
                    if !d.file_indexes.iter().any(|i| i.table == table) {
                        return Err(CatalogError::NotFound(match &table {
                            Some(t) => format!("no file index on table {t} in database {}", req.db),
                            None => format!("no database-wide file index in database {}", req.db),
                        }));
                    }
                    Ok(vec![CatalogOp::DeleteFileIndex {
                        db_id: d.id,
                        table: table.clone(),
                    }])
                })
                .await
                .map_err(catalog_error)?;
            Ok(StatusCode::OK.into_response())
        }
        .await,
    )
}
