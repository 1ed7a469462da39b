//! The cache management API: POST/DELETE `/api/v3/configure/last_cache`
//! and `/api/v3/configure/distinct_cache`. A cache definition is a catalog
//! transaction on its table; creating one fills it on this node at once
//! (other nodes build theirs from the catalog and their own writes).
//!
//! Both kinds answer alike: 201 with the definition, 204 when the same
//! definition exists, 409 when the name exists with other settings, 400
//! for bad settings, 404 for an unknown database or table; DELETE 200 or
//! 404.

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use catalog::{CatalogError, CatalogOp, ColumnKind, TableSchema};
use serde::Deserialize;

use crate::AppState;
use crate::configure::{
    admin, admin_query, db_not_found, json_body, param, required, respond, table_ids,
    table_not_found,
};
use crate::error::{ApiError, catalog_error};

/// What differs between the kinds of cache.
trait CacheKind {
    /// The create request's body.
    type Request: serde::de::DeserializeOwned + Send;
    /// The definition in the catalog.
    type Def: Clone + PartialEq + Send + Sync;
    /// "last cache", "distinct cache".
    const WHAT: &'static str;
    fn db_table(req: &Self::Request) -> (&str, &str);
    /// The definition the request asks for on `table`, checked.
    fn def(req: &Self::Request, table: &TableSchema) -> Result<Self::Def, CatalogError>;
    fn name(def: &Self::Def) -> &str;
    fn defs(table: &TableSchema) -> &[Self::Def];
    fn create(db_id: u32, table_id: u32, def: Self::Def) -> CatalogOp;
    fn delete(db_id: u32, table_id: u32, name: String) -> CatalogOp;
    /// The 201 response's body.
    fn describe(table: &str, def: &Self::Def) -> serde_json::Value;
}

async fn create<K: CacheKind>(
    state: &AppState,
    q: Option<&str>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    admin(state, headers, q)?;
    let req: K::Request = json_body(body, headers, state.body_limits).await?;
    let (db, table) = K::db_table(&req);
    // What the last attempt planned: Some(def) when it creates one.
    let planned = std::sync::Mutex::new(None);
    state
        .catalog
        .update(|s| {
            let d = s.db(db).ok_or_else(|| db_not_found(db))?;
            let t = d.table(table).ok_or_else(|| table_not_found(db, table))?;
            let wanted = K::def(&req, t)?;
            let mut planned = planned.lock().unwrap_or_else(|p| p.into_inner());
            match K::defs(t).iter().find(|c| K::name(c) == K::name(&wanted)) {
                Some(existing) if *existing == wanted => {
                    *planned = None;
                    Ok(Vec::new())
                }
                Some(_) => Err(CatalogError::AlreadyExists(format!(
                    "a {} named '{}' exists on table {table} with other settings",
                    K::WHAT,
                    K::name(&wanted)
                ))),
                None => {
                    *planned = Some(wanted.clone());
                    Ok(vec![K::create(d.id, t.id, wanted)])
                }
            }
        })
        .await
        .map_err(catalog_error)?;
    let Some(def) = planned.into_inner().unwrap_or_else(|p| p.into_inner()) else {
        return Ok(StatusCode::NO_CONTENT.into_response());
    };
    if let Some(query) = &state.query
        && let Err(e) = query.fill_caches(db, Some(table)).await
    {
        tracing::warn!(error = %e, what = K::WHAT, "filling a new cache failed");
    }
    Ok((
        StatusCode::CREATED,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        K::describe(table, &def).to_string(),
    )
        .into_response())
}

#[derive(Debug, Deserialize)]
struct DeleteCache {
    db: String,
    table: String,
    name: String,
}

/// DELETE with `db`, `table`, `name` in the query string or a JSON body.
async fn delete<K: CacheKind>(
    state: &AppState,
    q: Option<&str>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let pairs = admin_query(state, headers, q)?;
    let req = if param(&pairs, "db").is_some() {
        DeleteCache {
            db: required(&pairs, "db")?.to_string(),
            table: required(&pairs, "table")?.to_string(),
            name: required(&pairs, "name")?.to_string(),
        }
    } else {
        json_body(body, headers, state.body_limits).await?
    };
    state
        .catalog
        .update(|s| {
            let (db_id, table_id) = table_ids(s, &req.db, &req.table)?;
            let exists = s
                .db(&req.db)
                .and_then(|d| d.table(&req.table))
                .is_some_and(|t| K::defs(t).iter().any(|c| K::name(c) == req.name));
            if !exists {
                return Err(CatalogError::NotFound(format!(
                    "{} not found: {} on table {} in database {}",
                    K::WHAT,
                    req.name,
                    req.table,
                    req.db
                )));
            }
            Ok(vec![K::delete(db_id, table_id, req.name.clone())])
        })
        .await
        .map_err(catalog_error)?;
    // This node drops it at once (the others with their catalog sync).
    if let Some(query) = &state.query {
        query.caches_changed();
    }
    Ok(StatusCode::OK.into_response())
}

// ---- last value caches -------------------------------------------------------

struct LastCaches;

#[derive(Debug, Deserialize)]
struct CreateLastCache {
    db: String,
    table: String,
    name: Option<String>,
    key_columns: Option<Vec<String>>,
    value_columns: Option<Vec<String>>,
    count: Option<i64>,
    ttl: Option<i64>,
}

/// The default TTL of a last value cache: 4 hours, as InfluxDB 3's.
const LAST_CACHE_DEFAULT_TTL_SECS: u64 = 4 * 3600;

/// The definition a create request asks for, checked against the table.
fn last_cache_def(
    req: &CreateLastCache,
    table: &catalog::TableSchema,
) -> Result<catalog::LastCacheDef, CatalogError> {
    let invalid = |m: String| CatalogError::Invalid(m);
    let key_columns: Vec<String> = match &req.key_columns {
        Some(keys) => {
            for k in keys {
                let c = table
                    .column(k)
                    .ok_or_else(|| invalid(format!("invalid key column provided: {k}")))?;
                if !caches::last::valid_key_kind(c.kind) {
                    return Err(invalid(format!(
                        "key column '{k}': only uint64, int64, bool, tag, and string columns are supported in the last cache"
                    )));
                }
            }
            keys.clone()
        }
        None => table
            .columns()
            .iter()
            .filter(|c| c.kind == ColumnKind::Tag)
            .map(|c| c.name.to_string())
            .collect(),
    };
    if let Some(values) = &req.value_columns {
        for v in values {
            if table.column(v).is_none() {
                return Err(invalid(format!("invalid value column provided: {v}")));
            }
            if key_columns.contains(v) {
                return Err(invalid(format!(
                    "column '{v}' is a key column; it can't be a value column too"
                )));
            }
        }
    }
    let count = req.count.unwrap_or(1);
    if !(1..=10).contains(&count) {
        return Err(invalid(format!(
            "invalid count {count}: a last cache holds from 1 to 10 rows per key"
        )));
    }
    let ttl_secs = match req.ttl {
        None => LAST_CACHE_DEFAULT_TTL_SECS,
        Some(t) if t > 0 => t as u64,
        Some(t) => {
            return Err(invalid(format!(
                "invalid ttl {t}: give a number of seconds above 0"
            )));
        }
    };
    let name = match &req.name {
        Some(n) if !n.is_empty() => n.clone(),
        _ => format!("{}_{}_last_cache", table.name, key_columns.join("_")),
    };
    Ok(catalog::LastCacheDef {
        name,
        key_columns,
        value_columns: req.value_columns.clone(),
        count: count as usize,
        ttl_secs,
    })
}

impl CacheKind for LastCaches {
    type Request = CreateLastCache;
    type Def = catalog::LastCacheDef;
    const WHAT: &'static str = "last cache";
    fn db_table(req: &Self::Request) -> (&str, &str) {
        (&req.db, &req.table)
    }
    fn def(req: &Self::Request, table: &TableSchema) -> Result<Self::Def, CatalogError> {
        last_cache_def(req, table)
    }
    fn name(def: &Self::Def) -> &str {
        &def.name
    }
    fn defs(table: &TableSchema) -> &[Self::Def] {
        &table.last_caches
    }
    fn create(db_id: u32, table_id: u32, cache: Self::Def) -> CatalogOp {
        CatalogOp::CreateLastCache {
            db_id,
            table_id,
            cache,
        }
    }
    fn delete(db_id: u32, table_id: u32, name: String) -> CatalogOp {
        CatalogOp::DeleteLastCache {
            db_id,
            table_id,
            name,
        }
    }
    fn describe(table: &str, d: &Self::Def) -> serde_json::Value {
        serde_json::json!({
            "table": table,
            "name": d.name,
            "key_columns": d.key_columns,
            "value_columns": d.value_columns,
            "count": d.count,
            "ttl": d.ttl_secs,
        })
    }
}

/// POST /api/v3/configure/last_cache {"db", "table", "name", "key_columns",
/// "value_columns", "count", "ttl"}.
pub(crate) async fn create_last_cache(
    State(state): State<AppState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    respond(create::<LastCaches>(&state, q.as_deref(), &headers, body).await)
}

/// DELETE /api/v3/configure/last_cache?db=&table=&name=.
pub(crate) async fn delete_last_cache(
    State(state): State<AppState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    respond(delete::<LastCaches>(&state, q.as_deref(), &headers, body).await)
}

// ---- distinct value caches ---------------------------------------------------

struct DistinctCaches;

#[derive(Debug, Deserialize)]
struct CreateDistinctCache {
    db: String,
    table: String,
    name: Option<String>,
    #[serde(default)]
    columns: Vec<String>,
    max_cardinality: Option<i64>,
    max_age: Option<i64>,
}

/// The defaults of a distinct value cache, as InfluxDB 3's.
const DISTINCT_CACHE_DEFAULT_MAX_CARDINALITY: usize = 100_000;
const DISTINCT_CACHE_DEFAULT_MAX_AGE_SECS: u64 = 86_400;

fn distinct_cache_def(
    req: &CreateDistinctCache,
    table: &catalog::TableSchema,
) -> Result<catalog::DistinctCacheDef, CatalogError> {
    let invalid = |m: String| CatalogError::Invalid(m);
    if req.columns.is_empty() {
        return Err(invalid("give at least one column in 'columns'".to_string()));
    }
    for (i, c) in req.columns.iter().enumerate() {
        let def = table
            .column(c)
            .ok_or_else(|| invalid(format!("invalid column provided: {c}")))?;
        if !caches::distinct::valid_column_kind(def.kind) {
            return Err(invalid(format!(
                "column '{c}': only tag and string columns are supported in the distinct cache"
            )));
        }
        if req.columns[..i].contains(c) {
            return Err(invalid(format!("column '{c}' is given twice")));
        }
    }
    let max_cardinality = match req.max_cardinality {
        None => DISTINCT_CACHE_DEFAULT_MAX_CARDINALITY,
        Some(n) if n > 0 => n as usize,
        Some(n) => {
            return Err(invalid(format!(
                "invalid max_cardinality {n}: give a number above 0"
            )));
        }
    };
    let max_age_secs = match req.max_age {
        None => DISTINCT_CACHE_DEFAULT_MAX_AGE_SECS,
        Some(n) if n > 0 => n as u64,
        Some(n) => {
            return Err(invalid(format!(
                "invalid max_age {n}: give a number of seconds above 0"
            )));
        }
    };
    let name = match &req.name {
        Some(n) if !n.is_empty() => n.clone(),
        _ => format!("{}_{}_distinct_cache", table.name, req.columns.join("_")),
    };
    Ok(catalog::DistinctCacheDef {
        name,
        columns: req.columns.clone(),
        max_cardinality,
        max_age_secs,
    })
}

impl CacheKind for DistinctCaches {
    type Request = CreateDistinctCache;
    type Def = catalog::DistinctCacheDef;
    const WHAT: &'static str = "distinct cache";
    fn db_table(req: &Self::Request) -> (&str, &str) {
        (&req.db, &req.table)
    }
    fn def(req: &Self::Request, table: &TableSchema) -> Result<Self::Def, CatalogError> {
        distinct_cache_def(req, table)
    }
    fn name(def: &Self::Def) -> &str {
        &def.name
    }
    fn defs(table: &TableSchema) -> &[Self::Def] {
        &table.distinct_caches
    }
    fn create(db_id: u32, table_id: u32, cache: Self::Def) -> CatalogOp {
        CatalogOp::CreateDistinctCache {
            db_id,
            table_id,
            cache,
        }
    }
    fn delete(db_id: u32, table_id: u32, name: String) -> CatalogOp {
        CatalogOp::DeleteDistinctCache {
            db_id,
            table_id,
            name,
        }
    }
    fn describe(table: &str, d: &Self::Def) -> serde_json::Value {
        serde_json::json!({
            "table": table,
            "name": d.name,
            "columns": d.columns,
            "max_cardinality": d.max_cardinality,
            "max_age": d.max_age_secs,
        })
    }
}

/// POST /api/v3/configure/distinct_cache {"db", "table", "name", "columns",
/// "max_cardinality", "max_age"}.
pub(crate) async fn create_distinct_cache(
    State(state): State<AppState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    respond(create::<DistinctCaches>(&state, q.as_deref(), &headers, body).await)
}

/// DELETE /api/v3/configure/distinct_cache?db=&table=&name=.
pub(crate) async fn delete_distinct_cache(
    State(state): State<AppState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    respond(delete::<DistinctCaches>(&state, q.as_deref(), &headers, body).await)
}
