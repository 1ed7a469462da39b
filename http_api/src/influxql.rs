//! InfluxQL over HTTP: InfluxDB 1.x's `/query` and InfluxDB 3's
//! `/api/v3/query_influxql`.
//!
//! `/query` answers as InfluxDB 1.x does: a parse error is 400 with
//! `{"error": "error parsing query: ..."}`; each statement's error is in its
//! result, with 200; JSON by default, CSV on `Accept: application/csv`,
//! chunked JSON lines with `chunked=true`, times as RFC 3339 or as integers
//! with `epoch`. Statements that manage databases (`CREATE DATABASE`,
//! `DROP ...`, `SHOW DATABASES`, `SHOW RETENTION POLICIES`) are answered
//! here from the catalog; the rest go to the query service.

use std::fmt::Write as _;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::response::Response;
use catalog::{Action, ResourceType};
use influxql::Statement;
use services::influxql::{InfluxqlQuery, Row, Series, StatementResult, Value};

use crate::auth::{Caller, Need, authorize};
use crate::error::{ApiError, Family};
use crate::format::Encoder;
use crate::write::read_body;
use crate::{AppState, BodyLimits};
use http_input::InfluxqlParams as Params;

async fn read_params(
    method: &Method,
    raw: Option<&str>,
    headers: &HeaderMap,
    body: Body,
    limit: BodyLimits,
) -> Result<Params, ApiError> {
    let bytes = if method == Method::POST {
        read_body(body, headers, limit).await?
    } else {
        bytes::Bytes::new()
    };
    let ctype = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    Params::from_request(raw, Some((&bytes, ctype))).map_err(ApiError::BadRequest)
}

/// One statement's outcome.
struct Outcome {
    result: Result<StatementResult, String>,
    messages: Vec<String>,
}

/// Parses and runs every statement of `text`.
#[allow(clippy::too_many_arguments)]
async fn run_all(
    state: &AppState,
    caller: &Caller,
    db: Option<&str>,
    rp: Option<&str>,
    text: &str,
    params: Option<&services::Params>,
    read_only: bool,
) -> Result<Vec<Outcome>, ApiError> {
    let statements = influxql::parse(text)
        .map_err(|e| ApiError::BadRequest(format!("error parsing query: {e}")))?;
    let now_ns = catalog::now_ns();
    let mut out = Vec::with_capacity(statements.len());
    for statement in &statements {
        let mut messages = Vec::new();
        let result = run_one(
            state,
            caller,
            db,
            rp,
            statement,
            params,
            now_ns,
            read_only,
            &mut messages,
        )
        .await;
        out.push(Outcome { result, messages });
    }
    Ok(out)
}

fn allows(caller: &Caller, db: &str, action: Action) -> bool {
    match caller {
        None => true,
        Some(t) => t.admin || t.allows(ResourceType::Db, db, action),
    }
}

fn is_admin(caller: &Caller) -> bool {
    caller.as_ref().is_none_or(|t| t.admin)
}

/// The database a reading statement names, else the request's.
fn statement_db<'a>(statement: &'a Statement, db: Option<&'a str>) -> Option<&'a str> {
    use influxql::Source;
    let named = match statement {
        Statement::Select(s) => s.from.iter().find_map(|f| match f {
            Source::Measurement(m) => m.database.as_deref(),
            Source::Subquery(_) => None,
        }),
        Statement::Explain { select, .. } => select.from.iter().find_map(|f| match f {
            Source::Measurement(m) => m.database.as_deref(),
            Source::Subquery(_) => None,
        }),
        Statement::ShowMeasurements(s) => s.on.as_deref(),
        Statement::ShowTagKeys(s) | Statement::ShowFieldKeys(s) | Statement::ShowSeries(s) => {
            s.on.as_deref()
                .or_else(|| s.from.iter().find_map(|m| m.database.as_deref()))
        }
        Statement::ShowTagValues(s) => s.keys.on.as_deref(),
        Statement::ShowCardinality(s) => s.keys.on.as_deref(),
        _ => None,
    };
    named.or(db)
}

/// An InfluxQL `DELETE` as a predicate delete: its measurements (names
/// or regexes; none: every table) and its condition's time range and tag
/// comparisons.
fn influxql_delete(
    state: &AppState,
    db: &str,
    from: &[influxql::Source],
    condition: Option<&influxql::Expr>,
    now_ns: i64,
) -> Result<crate::deletes::DeleteSpec, String> {
    let cond = influxql_query::delete_condition(condition, now_ns).map_err(|e| e.to_string())?;
    let tables = if from.is_empty() {
        None
    } else {
        let catalog = state.catalog.state();
        let mut names = Vec::new();
        for source in from {
            let influxql::Source::Measurement(m) = source else {
                return Err("DELETE FROM takes measurements, not subqueries".to_string());
            };
            if m.database.as_deref().is_some_and(|d| d != db) {
                return Err(format!(
                    "DELETE deletes from the statement's database ({db}), not {}",
                    m.database.as_deref().unwrap_or_default()
                ));
            }
            match &m.name {
                influxql::MeasurementName::Name(n) => names.push(n.clone()),
                influxql::MeasurementName::Regex(r) => {
                    let re =
                        regex::Regex::new(r).map_err(|e| format!("invalid regex /{r}/: {e}"))?;
                    if let Some(d) = catalog.db(db) {
                        names.extend(
                            d.tables()
                                .filter(|t| re.is_match(&t.name))
                                .map(|t| t.name.to_string()),
                        );
                    }
                }
            }
        }
        Some(names)
    };
    Ok(crate::deletes::DeleteSpec {
        db: db.to_string(),
        tables,
        min_time: cond.start.unwrap_or(i64::MIN),
        max_time: cond.end.unwrap_or(i64::MAX),
        alternatives: cond.alternatives,
    })
}

#[allow(clippy::too_many_arguments)]
async fn run_one(
    state: &AppState,
    caller: &Caller,
    db: Option<&str>,
    rp: Option<&str>,
    statement: &Statement,
    params: Option<&services::Params>,
    now_ns: i64,
    read_only: bool,
    messages: &mut Vec<String>,
) -> Result<StatementResult, String> {
    let deprecated = |what: &str| {
        format!(
            "deprecated use of '{what}' in a read only context, please use a POST request instead"
        )
    };
    let denied = || "error authorizing query: the token does not allow this statement".to_string();
    let api = |e: ApiError| e.to_string();
    match statement {
        Statement::ShowDatabases => {
            let state_now = state.catalog.state();
            let mut names: Vec<String> = state_now
                .databases()
                .map(|d| d.name.to_string())
                .filter(|n| !n.contains('/') && allows(caller, n, Action::Read))
                .collect();
            names.sort();
            Ok(meta(
                Some("databases"),
                &["name"],
                names.into_iter().map(|n| vec![Value::String(n)]).collect(),
            ))
        }
        Statement::ShowRetentionPolicies { on } => {
            let name = on.as_deref().or(db).ok_or("database name required")?;
            if !allows(caller, name, Action::Read) {
                return Err(denied());
            }
            let s = state.catalog.state();
            let d = s
                .db(name)
                .ok_or_else(|| format!("database not found: {name}"))?;
            let policy = |rp: &str, retention: Option<i64>, default: bool| {
                vec![
                    Value::String(rp.to_string()),
                    Value::String(influxql::duration::format(retention.unwrap_or(0))),
                    Value::String("168h0m0s".to_string()),
                    Value::Integer(1),
                    Value::Boolean(default),
                ]
            };
            let mut rows = vec![policy("autogen", d.retention_ns, true)];
            let prefix = format!("{name}/");
            let mut others: Vec<_> = s
                .databases()
                .filter_map(|o| {
                    o.name
                        .strip_prefix(&prefix)
                        .map(|rp| (rp.to_string(), o.retention_ns))
                })
                .collect();
            others.sort();
            rows.extend(others.into_iter().map(|(rp, r)| policy(&rp, r, false)));
            Ok(meta(
                None,
                &[
                    "name",
                    "duration",
                    "shardGroupDuration",
                    "replicaN",
                    "default",
                ],
                rows,
            ))
        }
        Statement::CreateDatabase { name } => {
            if !(is_admin(caller) || allows(caller, name, Action::Write)) {
                return Err(denied());
            }
            if read_only {
                messages.push(deprecated(&format!("CREATE DATABASE {name}")));
            }
            crate::configure::influxql_create_database(state, name)
                .await
                .map_err(api)?;
            Ok(StatementResult::default())
        }
        Statement::DropDatabase { name } => {
            if !is_admin(caller) {
                return Err(denied());
            }
            if read_only {
                messages.push(deprecated(&format!("DROP DATABASE {name}")));
            }
            crate::configure::influxql_drop_database(state, name)
                .await
                .map_err(api)?;
            Ok(StatementResult::default())
        }
        Statement::DropMeasurement { name } => {
            let db = db.ok_or("database name required")?;
            if !is_admin(caller) {
                return Err(denied());
            }
            crate::configure::influxql_drop_table(state, db, name)
                .await
                .map_err(api)?;
            Ok(StatementResult::default())
        }
        Statement::Select(select) if select.into.is_some() => {
            select_into(state, caller, db, rp, select, params, now_ns).await
        }
        Statement::Delete { from, condition } => {
            let db = db.ok_or("database name required")?;
            if !(is_admin(caller) || allows(caller, db, Action::Write)) {
                return Err(denied());
            }
            if read_only {
                messages.push(deprecated("DELETE"));
            }
            let spec = influxql_delete(state, db, from, condition.as_ref(), now_ns)?;
            crate::deletes::delete_rows(state, &spec)
                .await
                .map_err(api)?;
            Ok(StatementResult::default())
        }
        Statement::Unsupported(what) => Err(format!("{what} is not supported by Inflow")),
        reading => {
            let Some(engine) = state.query.as_ref() else {
                return Err("this node does not serve queries".to_string());
            };
            if let Some(target) = statement_db(reading, db)
                && !allows(caller, target, Action::Read)
            {
                return Err(denied());
            }
            engine
                .influxql(InfluxqlQuery {
                    db,
                    rp,
                    statement: reading,
                    params,
                    now_ns,
                })
                .await
                .map_err(|e| match e {
                    services::QueryError::Execution(m) => m,
                    other => other.to_string(),
                })
        }
    }
}

/// `SELECT ... INTO`: runs the select, writes its rows as points of the
/// target measurement (the `GROUP BY` tags stay tags, the columns become
/// fields), and answers InfluxDB's `result` series with the count written.
async fn select_into(
    state: &AppState,
    caller: &Caller,
    db: Option<&str>,
    rp: Option<&str>,
    select: &influxql::SelectStatement,
    params: Option<&services::Params>,
    now_ns: i64,
) -> Result<StatementResult, String> {
    let denied = || "error authorizing query: the token does not allow this statement".to_string();
    let Some(into) = &select.into else {
        return Err("SELECT INTO needs a target".to_string());
    };
    let influxql::MeasurementName::Name(target) = &into.name else {
        return Err("SELECT INTO needs a measurement name, not a regex".to_string());
    };
    let Some(writer) = state.writer.as_ref() else {
        return Err("SELECT INTO needs a node that accepts writes (an ingester)".to_string());
    };
    let Some(engine) = state.query.as_ref() else {
        return Err("this node does not serve queries".to_string());
    };
    let target_db = into
        .database
        .as_deref()
        .or(db)
        .ok_or("database name required")?;
    let target_db = match into.retention_policy.as_deref().or(rp) {
        Some(r) if !r.is_empty() && r != "autogen" => format!("{target_db}/{r}"),
        _ => target_db.to_string(),
    };
    if !allows(caller, &target_db, Action::Write) {
        return Err(denied());
    }
    let reading = Statement::Select(Box::new(influxql::SelectStatement {
        into: None,
        ..select.clone()
    }));
    if let Some(source) = statement_db(&reading, db)
        && !allows(caller, source, Action::Read)
    {
        return Err(denied());
    }
    let result = engine
        .influxql(InfluxqlQuery {
            db,
            rp,
            statement: &reading,
            params,
            now_ns,
        })
        .await
        .map_err(|e| e.to_string())?;
    let mut body = String::new();
    let mut points = 0i64;
    for series in &result.series {
        let mut key = escape_lp(target, ", ");
        for (k, v) in series.tags.iter().flatten() {
            if !v.is_empty() {
                let _ = write!(key, ",{}={}", escape_lp(k, ",= "), escape_lp(v, ",= "));
            }
        }
        let names = series.columns.iter().skip(usize::from(series.has_time));
        for row in &series.rows {
            let mut fields = String::new();
            for (name, value) in names.clone().zip(&row.values) {
                let text = match value {
                    Value::Null => continue,
                    Value::Float(f) if !f.is_finite() => continue,
                    Value::Float(f) => format!("{f:?}"),
                    Value::Integer(i) => format!("{i}i"),
                    Value::Unsigned(u) => format!("{u}u"),
                    Value::Boolean(b) => b.to_string(),
                    Value::String(t) => {
                        format!("\"{}\"", t.replace('\\', "\\\\").replace('"', "\\\""))
                    }
                };
                if !fields.is_empty() {
                    fields.push(',');
                }
                let _ = write!(fields, "{}={text}", escape_lp(name, ",= "));
            }
            if fields.is_empty() {
                continue;
            }
            let _ = writeln!(body, "{key} {fields} {}", row.time);
            points += 1;
        }
    }
    if points > 0 {
        writer
            .write_lp(services::WriteRequest {
                db: target_db,
                body: bytes::Bytes::from(body),
                precision: line_protocol::Precision::Nanosecond,
                accept_partial: false,
                no_sync: false,
            })
            .await
            .map_err(|e| match e {
                services::WriteError::Rejected(lines) => lines
                    .first()
                    .map(|l| l.error_message.clone())
                    .unwrap_or_else(|| "the points were rejected".to_string()),
                other => other.to_string(),
            })?;
    }
    Ok(StatementResult {
        series: vec![Series {
            name: Some("result".to_string()),
            tags: None,
            columns: vec!["time".to_string(), "written".to_string()],
            rows: vec![Row {
                time: 0,
                values: vec![Value::Integer(points)],
            }],
            has_time: true,
        }],
        timezone: None,
    })
}

/// Escapes `chars` (and backslashes before them) for line protocol.
fn escape_lp(s: &str, chars: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if chars.contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn meta(name: Option<&str>, columns: &[&str], rows: Vec<Vec<Value>>) -> StatementResult {
    if rows.is_empty() {
        return StatementResult::default();
    }
    StatementResult {
        series: vec![Series {
            name: name.map(str::to_string),
            tags: None,
            columns: columns.iter().map(|c| c.to_string()).collect(),
            rows: rows
                .into_iter()
                .map(|values| Row { time: 0, values })
                .collect(),
            has_time: false,
        }],
        timezone: None,
    }
}

fn bind_params(text: Option<&str>) -> Result<Option<services::Params>, ApiError> {
    match text.map(str::trim) {
        None | Some("") => Ok(None),
        Some(t) => match serde_json::from_str(t) {
            Ok(serde_json::Value::Object(m)) => Ok(Some(m)),
            _ => Err(ApiError::BadRequest(
                "invalid 'params': expected a JSON object such as {\"host\": \"a\"}".into(),
            )),
        },
    }
}

/// `GET|POST /query`.
pub(crate) async fn query_v1(
    State(state): State<AppState>,
    method: Method,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let _in_flight = state.metrics.query_in_flight();
    let result = v1(&state, &method, raw.as_deref(), &headers, body).await;
    observed(&state, started, Family::V1, result)
}

/// Records the query in the metrics and answers it.
fn observed(
    state: &AppState,
    started: Instant,
    family: Family,
    result: Result<Response, ApiError>,
) -> Response {
    state
        .metrics
        .observe_query("influxql", started.elapsed(), result.is_ok());
    result.unwrap_or_else(|e| e.respond(family))
}

/// The caller, the request's parameters and its query text.
async fn request(
    state: &AppState,
    family: Family,
    method: &Method,
    raw: Option<&str>,
    headers: &HeaderMap,
    body: Body,
    missing_q: &str,
) -> Result<(Caller, Params, String), ApiError> {
    let caller = authorize(
        &state.auth,
        &state.catalog,
        family,
        headers,
        raw,
        Need::AnyToken,
    )?;
    let p = read_params(method, raw, headers, body, state.body_limits).await?;
    let q =
        p.q.clone()
            .filter(|q| !q.trim().is_empty())
            .ok_or_else(|| ApiError::BadRequest(missing_q.into()))?;
    Ok((caller, p, q))
}

async fn v1(
    state: &AppState,
    method: &Method,
    raw: Option<&str>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let missing = "missing required parameter \"q\"";
    let (caller, p, q) = request(state, Family::V1, method, raw, headers, body, missing).await?;
    let q = q.as_str();
    let bind = bind_params(p.params.as_deref())?;
    let epoch = match p.epoch.as_deref() {
        None | Some("") => None,
        Some(e) => Some(epoch_divisor(e).ok_or_else(|| {
            ApiError::BadRequest(format!("invalid epoch '{e}': use ns, u, µ, ms, s, m or h"))
        })?),
    };
    let outcomes = run_all(
        state,
        &caller,
        p.db.as_deref().filter(|d| !d.is_empty()),
        p.rp.as_deref().filter(|r| !r.is_empty()),
        q,
        bind.as_ref(),
        *method != Method::POST,
    )
    .await?;
    let csv = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/csv") || a.contains("text/csv"));
    let (content_type, text) = if csv {
        ("text/csv", encode_csv(&outcomes, epoch))
    } else if p.chunked {
        let size = p.chunk_size.unwrap_or(10_000);
        ("application/json", encode_chunked(&outcomes, epoch, size))
    } else {
        ("application/json", encode_json(&outcomes, epoch, p.pretty))
    };
    let mut resp = Response::new(Body::from(text));
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp.headers_mut().insert(
        "x-influxdb-version",
        HeaderValue::from_static(crate::API_VERSION),
    );
    Ok(resp)
}

/// Nanoseconds per unit of an `epoch` parameter.
fn epoch_divisor(e: &str) -> Option<i64> {
    Some(match e {
        "n" | "ns" => 1,
        "u" | "µ" | "us" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        _ => return None,
    })
}

/// RFC 3339 with nanoseconds and no trailing zeros, as Go's RFC3339Nano.
fn rfc3339(ns: i64, tz: Option<&str>) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let nanos = ns.rem_euclid(1_000_000_000) as u32;
    let Some(utc) = chrono::DateTime::from_timestamp(secs, nanos) else {
        return ns.to_string();
    };
    let frac = if nanos == 0 {
        String::new()
    } else {
        format!(".{nanos:09}").trim_end_matches('0').to_string()
    };
    if let Some(zone) = tz.and_then(|z| z.parse::<chrono_tz::Tz>().ok()) {
        let local = utc.with_timezone(&zone);
        let offset = local.format("%:z").to_string();
        let offset = if offset == "+00:00" {
            "Z".to_string()
        } else {
            offset
        };
        return format!("{}{frac}{offset}", local.format("%Y-%m-%dT%H:%M:%S"));
    }
    format!("{}{frac}Z", utc.format("%Y-%m-%dT%H:%M:%S"))
}

/// A float as Go's encoding/json writes it.
fn go_float(f: f64, out: &mut String) {
    if !f.is_finite() {
        out.push_str("null");
        return;
    }
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let s = format!("{f:e}");
        // Rust writes `1e-7`; Go writes `1e-07`.
        let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let (sign, digits) = match exp.strip_prefix('-') {
            Some(d) => ('-', d),
            None => ('+', exp),
        };
        let _ = write!(out, "{mantissa}e{sign}{digits:0>2}");
    } else {
        let _ = write!(out, "{f}");
    }
}

fn json_value(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Float(f) => go_float(*f, out),
        Value::Integer(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Unsigned(u) => {
            let _ = write!(out, "{u}");
        }
        Value::Boolean(b) => {
            let _ = write!(out, "{b}");
        }
        Value::String(s) => json_string(s, out),
    }
}

fn json_string(s: &str, out: &mut String) {
    out.push_str(&serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string()));
}

fn time_value(ns: i64, epoch: Option<i64>, tz: Option<&str>, out: &mut String) {
    match epoch {
        Some(d) => {
            let _ = write!(out, "{}", ns.div_euclid(d));
        }
        None => json_string(&rfc3339(ns, tz), out),
    }
}

fn series_json(s: &Series, epoch: Option<i64>, tz: Option<&str>, partial: bool, out: &mut String) {
    out.push('{');
    let mut first = true;
    if let Some(name) = &s.name {
        out.push_str("\"name\":");
        json_string(name, out);
        first = false;
    }
    if let Some(tags) = &s.tags {
        if !first {
            out.push(',');
        }
        out.push_str("\"tags\":{");
        for (i, (k, v)) in tags.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            json_string(k, out);
            out.push(':');
            json_string(v, out);
        }
        out.push('}');
        first = false;
    }
    if !first {
        out.push(',');
    }
    out.push_str("\"columns\":[");
    for (i, c) in s.columns.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        json_string(c, out);
    }
    out.push_str("],\"values\":[");
    for (i, r) in s.rows.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('[');
        let mut first = true;
        if s.has_time {
            time_value(r.time, epoch, tz, out);
            first = false;
        }
        for v in &r.values {
            if !first {
                out.push(',');
            }
            first = false;
            json_value(v, out);
        }
        out.push(']');
    }
    out.push(']');
    if partial {
        out.push_str(",\"partial\":true");
    }
    out.push('}');
}

fn result_json(
    id: usize,
    o: &Outcome,
    series: &[(&Series, bool)],
    epoch: Option<i64>,
    partial: bool,
    out: &mut String,
) {
    let _ = write!(out, "{{\"statement_id\":{id}");
    match &o.result {
        Err(e) => {
            out.push_str(",\"error\":");
            json_string(e, out);
        }
        Ok(r) => {
            if !series.is_empty() {
                out.push_str(",\"series\":[");
                for (i, (s, p)) in series.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    series_json(s, epoch, r.timezone.as_deref(), *p, out);
                }
                out.push(']');
            }
        }
    }
    if !o.messages.is_empty() {
        out.push_str(",\"messages\":[");
        for (i, m) in o.messages.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str("{\"level\":\"warning\",\"text\":");
            json_string(m, out);
            out.push('}');
        }
        out.push(']');
    }
    if partial {
        out.push_str(",\"partial\":true");
    }
    out.push('}');
}

fn encode_json(outcomes: &[Outcome], epoch: Option<i64>, pretty: bool) -> String {
    let mut out = String::from("{\"results\":[");
    for (i, o) in outcomes.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let series: Vec<(&Series, bool)> = match &o.result {
            Ok(r) => r.series.iter().map(|s| (s, false)).collect(),
            Err(_) => Vec::new(),
        };
        result_json(i, o, &series, epoch, false, &mut out);
    }
    out.push_str("]}");
    if pretty {
        out = indent(&out);
    }
    out.push('\n');
    out
}

/// Indents compact JSON as Go's `json.MarshalIndent(v, "", "    ")` does,
/// keeping keys in their order and numbers as written.
fn indent(compact: &str) -> String {
    let mut out = String::with_capacity(compact.len() * 2);
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let mut chars = compact.chars().peekable();
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        for _ in 0..depth {
            out.push_str("    ");
        }
    };
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                out.push(c);
            }
            '{' | '[' => {
                let close = if c == '{' { '}' } else { ']' };
                if chars.peek() == Some(&close) {
                    chars.next();
                    out.push(c);
                    out.push(close);
                } else {
                    out.push(c);
                    depth += 1;
                    newline(&mut out, depth);
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            c => out.push(c),
        }
    }
    out
}

/// `chunked=true`: one JSON object per line, a series split every
/// `size` rows, `partial` on every piece but the last.
fn encode_chunked(outcomes: &[Outcome], epoch: Option<i64>, size: usize) -> String {
    let mut out = String::new();
    for (i, o) in outcomes.iter().enumerate() {
        let series = match &o.result {
            Ok(r) if !r.series.is_empty() => &r.series,
            _ => {
                out.push_str("{\"results\":[");
                result_json(i, o, &[], epoch, false, &mut out);
                out.push_str("]}\n");
                continue;
            }
        };
        for (si, s) in series.iter().enumerate() {
            let pieces: Vec<&[Row]> = if s.rows.is_empty() {
                vec![&s.rows[..]]
            } else {
                s.rows.chunks(size).collect()
            };
            for (pi, rows) in pieces.iter().enumerate() {
                let last_piece = pi + 1 == pieces.len();
                let piece = Series {
                    rows: rows.to_vec(),
                    ..s.clone()
                };
                let statement_partial = !(last_piece && si + 1 == series.len());
                out.push_str("{\"results\":[");
                result_json(
                    i,
                    o,
                    &[(&piece, !last_piece)],
                    epoch,
                    statement_partial,
                    &mut out,
                );
                out.push_str("]}\n");
            }
        }
    }
    out
}

fn csv_field(s: &str, out: &mut String) {
    if s.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&s.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(s);
    }
}

/// InfluxDB 1.x's CSV: `name,tags,<columns>`, a header when the columns
/// change, times as integers (nanoseconds unless `epoch`).
fn encode_csv(outcomes: &[Outcome], epoch: Option<i64>) -> String {
    let mut out = String::new();
    let mut last_header: Option<Vec<String>> = None;
    for o in outcomes {
        let Ok(r) = &o.result else {
            if let Err(e) = &o.result {
                out.push_str("error\n");
                csv_field(e, &mut out);
                out.push('\n');
            }
            continue;
        };
        for s in &r.series {
            if last_header.as_ref() != Some(&s.columns) {
                if last_header.is_some() {
                    out.push('\n');
                }
                out.push_str("name,tags");
                for c in &s.columns {
                    out.push(',');
                    csv_field(c, &mut out);
                }
                out.push('\n');
                last_header = Some(s.columns.clone());
            }
            let tags = s
                .tags
                .as_ref()
                .map(|t| {
                    t.iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default();
            for row in &s.rows {
                csv_field(s.name.as_deref().unwrap_or(""), &mut out);
                out.push(',');
                csv_field(&tags, &mut out);
                if s.has_time {
                    let _ = write!(out, ",{}", row.time.div_euclid(epoch.unwrap_or(1)));
                }
                for v in &row.values {
                    out.push(',');
                    match v {
                        Value::Null => {}
                        Value::String(s) => csv_field(s, &mut out),
                        Value::Float(f) => go_float(*f, &mut out),
                        other => json_value(other, &mut out),
                    }
                }
                out.push('\n');
            }
        }
    }
    out
}

/// `GET|POST /api/v3/query_influxql`: one statement, in the v3 formats,
/// with an `iox::measurement` column.
pub(crate) async fn query_influxql(
    State(state): State<AppState>,
    method: Method,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let _in_flight = state.metrics.query_in_flight();
    let result = v3(&state, &method, raw.as_deref(), &headers, body).await;
    observed(&state, started, Family::V3, result)
}

async fn v3(
    state: &AppState,
    method: &Method,
    raw: Option<&str>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let missing = "missing parameter 'q' (the query)";
    let (caller, p, q) = request(state, Family::V3, method, raw, headers, body, missing).await?;
    let q = q.as_str();
    let format = crate::sql::query_format(p.format.as_deref(), headers)?;
    let bind = bind_params(p.params.as_deref())?;
    let batch = influxql_batch(
        state,
        &caller,
        p.db.as_deref().filter(|d| !d.is_empty()),
        p.rp.as_deref().filter(|r| !r.is_empty()),
        q,
        bind.as_ref(),
    )
    .await?;
    let mut encoder = Encoder::new(format, batch.schema());
    let mut out = Vec::new();
    encoder
        .batch_into(&batch, &mut out)
        .and_then(|_| encoder.finish_into(&mut out))
        .map_err(|e| ApiError::Internal(format!("encoding results: {e}")))?;
    let mut resp = Response::new(Body::from(out));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    Ok(resp)
}

/// Runs one InfluxQL statement for the v3 API and Flight: its result as
/// one Arrow batch (`iox::measurement`, `time`, tags, columns). A
/// statement's error is a 400 (404 for a missing database, 403 for a
/// token without the permission).
pub async fn influxql_batch(
    state: &AppState,
    caller: &Caller,
    db: Option<&str>,
    rp: Option<&str>,
    text: &str,
    params: Option<&services::Params>,
) -> Result<arrow::record_batch::RecordBatch, ApiError> {
    let mut outcomes = run_all(state, caller, db, rp, text, params, false).await?;
    if outcomes.len() != 1 {
        return Err(ApiError::BadRequest(
            "only one InfluxQL statement may be sent per request".into(),
        ));
    }
    let outcome = outcomes.remove(0);
    let result = outcome.result.map_err(|e| {
        if e.starts_with("database not found") {
            ApiError::NotFound(e)
        } else if e.starts_with("error authorizing query") {
            ApiError::Forbidden(e)
        } else {
            ApiError::BadRequest(e)
        }
    })?;
    services::influxql::to_record_batch(&result)
        .map_err(|e| ApiError::Internal(format!("encoding results: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_floats_as_influxdb_writes_them() {
        assert_eq!(
            rfc3339(1_700_000_000_000_000_000, None),
            "2023-11-14T22:13:20Z"
        );
        assert_eq!(
            rfc3339(1_700_000_000_500_000_000, None),
            "2023-11-14T22:13:20.5Z"
        );
        assert_eq!(
            rfc3339(0, Some("Europe/Paris")),
            "1970-01-01T01:00:00+01:00"
        );
        let f = |x: f64| {
            let mut s = String::new();
            go_float(x, &mut s);
            s
        };
        assert_eq!(f(3.0), "3");
        assert_eq!(f(0.1), "0.1");
        assert_eq!(f(1e21), "1e+21");
        assert_eq!(f(1e-7), "1e-07");
        assert_eq!(f(-2.5), "-2.5");
    }
}
