//! Predicate deletes: InfluxDB 2's `POST /api/v2/delete` and InfluxQL's
//! `DELETE` (through [`delete_rows`]).
//!
//! ```text
//!  {start, stop, predicate} ─▶ tables + tag conditions ─▶ CreateTombstones (catalog)
//!     ─▶ this node's WAL gets a delete marker (WriteService::apply_deletes)
//!     ─▶ 204: the rows are gone from queries; the compactor rewrites the files later
//! ```
//!
//! The predicate language is InfluxDB 2's: `key="value"` and `key!="value"`
//! joined by `AND`, with `_measurement` naming the table; without it every
//! table of the database is deleted from. Fields cannot be deleted by
//! (InfluxDB 2 refuses them too).

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use catalog::{CatalogError, CatalogOp, ColumnKind, TagCondition, TagOp, Tombstone};
use serde::Deserialize;

use crate::AppState;
use crate::auth::{Need, authorize};
use crate::configure::db_not_found;
use crate::error::{ApiError, Family, catalog_error};
use crate::write::read_body;

/// One predicate delete, checked against nothing yet.
#[derive(Debug, Clone)]
pub(crate) struct DeleteSpec {
    /// The database.
    pub(crate) db: String,
    /// The tables: `None` for every table of the database.
    pub(crate) tables: Option<Vec<String>>,
    /// The first time deleted, in nanoseconds.
    pub(crate) min_time: i64,
    /// The last time deleted.
    pub(crate) max_time: i64,
    /// The tag conditions: a row is deleted when it meets all of one
    /// alternative (no alternatives: every row in the time range).
    pub(crate) alternatives: Vec<Vec<TagCondition>>,
}

/// Commits the tombstones of `spec` (one per table and alternative that can
/// match a row) and marks them in this node's WAL. Returns how many were
/// made. A condition on a field or on `time` is a 400.
pub(crate) async fn delete_rows(state: &AppState, spec: &DeleteSpec) -> Result<usize, ApiError> {
    if spec.min_time > spec.max_time {
        return Err(ApiError::BadRequest(format!(
            "the delete's start ({}) is after its stop ({})",
            spec.min_time, spec.max_time
        )));
    }
    let now = catalog::now_ns();
    let made = std::sync::atomic::AtomicUsize::new(0);
    state
        .catalog
        .update(|s| {
            let db = s.db(&spec.db).ok_or_else(|| db_not_found(&spec.db))?;
            let tables: Vec<_> = match &spec.tables {
                None => db.tables().collect(),
                Some(names) => names.iter().filter_map(|n| db.table(n)).collect(),
            };
            let mut next = s.next_tombstone_id();
            let mut tombstones = Vec::new();
            let everything = [Vec::new()];
            let alternatives: &[Vec<TagCondition>] = if spec.alternatives.is_empty() {
                &everything
            } else {
                &spec.alternatives
            };
            for (table, conditions) in tables
                .iter()
                .flat_map(|t| alternatives.iter().map(move |a| (t, a)))
            {
                let mut possible = true;
                for c in conditions {
                    match table.column(&c.tag).map(|col| col.kind) {
                        Some(ColumnKind::Tag) => {}
                        Some(ColumnKind::Time) => {
                            return Err(CatalogError::Invalid(
                                "the delete predicate cannot name time: give the range as start and stop".into(),
                            ));
                        }
                        Some(ColumnKind::Field(_)) => {
                            return Err(CatalogError::Invalid(format!(
                                "fields not supported in WHERE clause during deletion: {} is a field of {}",
                                c.tag, table.name
                            )));
                        }
                        // A tag the table never had is empty on every row.
                        None => {
                            possible &= match c.op {
                                TagOp::Eq => c.value.is_empty(),
                                TagOp::NotEq => !c.value.is_empty(),
                                TagOp::Regex | TagOp::NotRegex => true,
                            }
                        }
                    }
                }
                if !possible {
                    continue;
                }
                tombstones.push((
                    table.id,
                    Tombstone {
                        id: next,
                        min_time: spec.min_time,
                        max_time: spec.max_time,
                        predicate: conditions.clone(),
                        created_ns: now,
                    },
                ));
                next += 1;
            }
            made.store(tombstones.len(), std::sync::atomic::Ordering::Relaxed);
            if tombstones.is_empty() {
                return Ok(vec![]);
            }
            Ok(vec![CatalogOp::CreateTombstones {
                db_id: db.id,
                tombstones,
            }])
        })
        .await
        .map_err(catalog_error)?;
    let made = made.load(std::sync::atomic::Ordering::Relaxed);
    if made > 0
        && let Some(writer) = &state.writer
    {
        writer.apply_deletes().await.map_err(|e| match e {
            services::WriteError::Unavailable(m) => ApiError::Unavailable(m),
            other => ApiError::Internal(other.to_string()),
        })?;
    }
    Ok(made)
}

#[derive(Debug, Deserialize)]
struct DeleteParams {
    bucket: Option<String>,
    #[serde(rename = "bucketID")]
    bucket_id: Option<String>,
}

#[derive(Debug, Deserialize)]
struct DeleteBody {
    start: Option<String>,
    stop: Option<String>,
    #[serde(default)]
    predicate: Option<String>,
}

/// POST /api/v2/delete?bucket=[&org=]: 204, 400, 401, 403, 404.
pub(crate) async fn delete_v2(
    State(state): State<AppState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match handle_v2(&state, q, &headers, body).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => e.respond(Family::V2),
    }
}

async fn handle_v2(
    state: &AppState,
    q: Option<String>,
    headers: &HeaderMap,
    body: Body,
) -> Result<(), ApiError> {
    let params: DeleteParams = serde_urlencoded::from_str(q.as_deref().unwrap_or(""))
        .map_err(|e| ApiError::BadRequest(format!("invalid query parameters: {e}")))?;
    let db = params
        .bucket
        .or(params.bucket_id)
        .filter(|b| !b.is_empty())
        .ok_or_else(|| {
            ApiError::BadRequest(
                "missing query parameter 'bucket' (the database to delete from)".into(),
            )
        })?;
    // InfluxDB 1.x's v2 compatibility names a retention policy `db/rp`;
    // Inflow's databases have one, `autogen`.
    let db = match db.split_once('/') {
        Some((d, "" | "autogen")) => d.to_string(),
        _ => db,
    };
    authorize(
        &state.auth,
        &state.catalog,
        Family::V2,
        headers,
        q.as_deref(),
        Need::Write(&db),
    )?;
    let body = read_body(body, headers, state.body_limits).await?;
    let req: DeleteBody = serde_json::from_slice(&body).map_err(|e| {
        ApiError::BadRequest(format!("invalid request; error parsing request json: {e}"))
    })?;
    let time = |v: Option<String>, name: &str| -> Result<i64, ApiError> {
        let v = v.ok_or_else(|| {
            ApiError::BadRequest(format!(
                "invalid request; {name} is required (an RFC 3339 time)"
            ))
        })?;
        chrono::DateTime::parse_from_rfc3339(&v)
            .ok()
            .and_then(|t| t.timestamp_nanos_opt())
            .ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "invalid request; invalid RFC3339Nano for field {name} ('{v}'), please check your time format"
                ))
            })
    };
    let min_time = time(req.start, "start")?;
    let max_time = time(req.stop, "stop")?;
    let predicate = parse_predicate(req.predicate.as_deref().unwrap_or("")).map_err(|e| {
        ApiError::BadRequest(format!("invalid request; error parsing predicate: {e}"))
    })?;
    let spec = DeleteSpec {
        db,
        tables: predicate.measurement.map(|m| vec![m]),
        min_time,
        max_time,
        alternatives: if predicate.conditions.is_empty() {
            Vec::new()
        } else {
            vec![predicate.conditions]
        },
    };
    delete_rows(state, &spec).await?;
    Ok(())
}

/// An InfluxDB 2 delete predicate, parsed.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Predicate {
    /// `_measurement="..."`, if given.
    pub(crate) measurement: Option<String>,
    /// The tag conditions.
    pub(crate) conditions: Vec<TagCondition>,
}

/// Parses `key="value" AND key2!="value2" ...` (keys bare or
/// double-quoted, values double- or single-quoted; `AND` in any case).
pub(crate) fn parse_predicate(text: &str) -> Result<Predicate, String> {
    let mut out = Predicate::default();
    let mut rest = text.trim();
    if rest.is_empty() {
        return Ok(out);
    }
    loop {
        let (key, after) = token(rest)?;
        let after = after.trim_start();
        let (negated, after) = if let Some(a) = after.strip_prefix("!=") {
            (true, a)
        } else if let Some(a) = after.strip_prefix('=') {
            (false, a)
        } else {
            return Err(format!(
                "expected = or != after {key}, found '{}'",
                after.chars().take(10).collect::<String>()
            ));
        };
        let after = after.trim_start();
        let (value, after) = match after.chars().next() {
            Some('"') | Some('\'') => token(after)?,
            _ => return Err(format!("the value of {key} must be a quoted string")),
        };
        match key.as_str() {
            "_measurement" if !negated => {
                if out.measurement.replace(value).is_some() {
                    return Err("_measurement is given twice".into());
                }
            }
            "_measurement" => return Err("_measurement supports only =".into()),
            "_field" | "_value" => {
                return Err(format!(
                    "deleting by {key} is not supported (nor is it in InfluxDB 2)"
                ));
            }
            "_time" | "time" => {
                return Err(
                    "the time range is given as start and stop, not in the predicate".into(),
                );
            }
            _ => out.conditions.push(TagCondition {
                tag: key,
                op: if negated { TagOp::NotEq } else { TagOp::Eq },
                value,
            }),
        }
        rest = after.trim_start();
        if rest.is_empty() {
            return Ok(out);
        }
        let word: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphabetic())
            .collect();
        if word.eq_ignore_ascii_case("and") {
            rest = rest[word.len()..].trim_start();
        } else if word.eq_ignore_ascii_case("or") {
            return Err(
                "OR is not supported in a delete predicate; send one delete per alternative".into(),
            );
        } else {
            return Err(format!(
                "expected AND, found '{}'",
                rest.chars().take(10).collect::<String>()
            ));
        }
    }
}

/// A bare identifier or a quoted string (with `\` escapes), and the text
/// after it.
fn token(s: &str) -> Result<(String, &str), String> {
    let mut chars = s.char_indices();
    match chars.next() {
        Some((_, q @ ('"' | '\''))) => {
            let mut out = String::new();
            let mut escaped = false;
            for (i, c) in chars {
                if escaped {
                    out.push(c);
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == q {
                    return Ok((out, &s[i + 1..]));
                } else {
                    out.push(c);
                }
            }
            Err(format!("unterminated string starting {q}{out}"))
        }
        Some((_, c)) if c.is_alphanumeric() || c == '_' => {
            let end = s
                .char_indices()
                .find(|(_, c)| !(c.is_alphanumeric() || *c == '_' || *c == '-' || *c == '.'))
                .map_or(s.len(), |(i, _)| i);
            Ok((s[..end].to_string(), &s[end..]))
        }
        _ => Err(format!(
            "expected a key, found '{}'",
            s.chars().take(10).collect::<String>()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cond(tag: &str, negated: bool, value: &str) -> TagCondition {
        TagCondition {
            tag: tag.into(),
            op: if negated { TagOp::NotEq } else { TagOp::Eq },
            value: value.into(),
        }
    }

    #[test]
    fn predicates() {
        assert_eq!(parse_predicate("").unwrap(), Predicate::default());
        let p = parse_predicate(r#"_measurement="cpu" AND host="a" and "my tag"!='x y'"#).unwrap();
        assert_eq!(p.measurement.as_deref(), Some("cpu"));
        assert_eq!(
            p.conditions,
            vec![cond("host", false, "a"), cond("my tag", true, "x y")]
        );
        let p = parse_predicate(r#"host="say \"hi\"""#).unwrap();
        assert_eq!(p.conditions, vec![cond("host", false, r#"say "hi""#)]);
        for bad in [
            r#"host="a" OR host="b""#,
            r#"_field="usage""#,
            r#"host=a"#,
            r#"host="a"#,
            r#"host>"a""#,
            r#"host="a" host="b""#,
        ] {
            assert!(parse_predicate(bad).is_err(), "{bad}");
        }
    }
}
