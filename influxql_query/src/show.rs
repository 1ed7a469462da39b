//! `SHOW MEASUREMENTS`, `TAG KEYS`, `TAG VALUES`, `FIELD KEYS`, `SERIES`
//! and the cardinalities: the catalog's schema where it answers, SQL over
//! the data where a `WHERE` clause or tag values are asked for.

use std::collections::BTreeSet;
use std::sync::Arc;

use arrow::array::{Array, RecordBatch, StringArray};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use catalog::{ColumnKind, FieldType, TableSchema};
use influxql::{
    CardinalityOf, Expr, KeyMatch, Measurement, MeasurementName, NameMatch, ShowCardinality,
    ShowKeys, ShowMeasurements, ShowTagValues,
};
use regex::Regex;
use services::QueryError;
use services::influxql::{Row, Series, StatementResult, Value};

use crate::time::{TimeRange, split_condition};
use crate::{Context, invalid, sql};

fn regex(r: &str) -> Result<Regex, QueryError> {
    Regex::new(r).map_err(|e| invalid(format!("invalid regex: {e}")))
}

fn result(series: Vec<Series>) -> StatementResult {
    StatementResult {
        series: series.into_iter().filter(|s| !s.rows.is_empty()).collect(),
        timezone: None,
    }
}

fn series(name: Option<&str>, columns: &[&str], rows: Vec<Vec<Value>>) -> Series {
    Series {
        name: name.map(str::to_string),
        tags: None,
        columns: columns.iter().map(|c| c.to_string()).collect(),
        rows: rows
            .into_iter()
            .map(|values| Row { time: 0, values })
            .collect(),
        has_time: false,
    }
}

fn page<T>(items: Vec<T>, limit: Option<u64>, offset: Option<u64>) -> Vec<T> {
    let items = items.into_iter().skip(offset.unwrap_or(0) as usize);
    match limit.filter(|l| *l > 0) {
        Some(l) => items.take(l as usize).collect(),
        None => items.collect(),
    }
}

/// A statement's database and the tables its `FROM` names (all, without one).
fn tables(
    ctx: &Context<'_>,
    on: Option<&str>,
    from: &[Measurement],
) -> Result<(String, Vec<Arc<TableSchema>>), QueryError> {
    let rp = from.iter().find_map(|m| m.retention_policy.as_deref());
    let db_name = from.iter().find_map(|m| m.database.as_deref()).or(on);
    let db = ctx.database_name(db_name, rp)?;
    let schema = ctx.schema(&db)?;
    let mut out: Vec<Arc<TableSchema>> = if from.is_empty() {
        schema.tables().cloned().collect()
    } else {
        let mut v = Vec::new();
        for m in from {
            match &m.name {
                MeasurementName::Name(n) => v.extend(schema.table(n).cloned()),
                MeasurementName::Regex(r) => {
                    let re = regex(r)?;
                    v.extend(schema.tables().filter(|t| re.is_match(&t.name)).cloned());
                }
            }
        }
        v
    };
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out.dedup_by(|a, b| a.name == b.name);
    Ok((db, out))
}

fn bound(ctx: &Context<'_>, cond: Option<&Expr>) -> Result<(TimeRange, Option<Expr>), QueryError> {
    let cond = cond.map(|c| sql::bind(c, ctx.params)).transpose()?;
    split_condition(cond.as_ref(), ctx.now_ns)
}

/// The distinct values of `columns` in the rows of `table` matching.
async fn distinct(
    ctx: &Context<'_>,
    db: &str,
    table: &TableSchema,
    columns: &[String],
    range: TimeRange,
    cond: Option<&Expr>,
) -> Result<Vec<Vec<Option<String>>>, QueryError> {
    let mut predicates = Vec::new();
    if let Some(s) = range.start {
        predicates.push(format!("\"time\" >= to_timestamp_nanos({s})"));
    }
    if let Some(e) = range.end {
        predicates.push(format!("\"time\" <= to_timestamp_nanos({e})"));
    }
    if let Some(c) = cond {
        predicates.push(format!("({})", sql::condition(c, table)?));
    }
    let cols: Vec<String> = columns.iter().map(|c| sql::ident(c)).collect();
    // The values of one column over all time: a distinct value cache whose
    // hierarchy starts with it has them in memory (as InfluxDB 3 answers
    // SHOW TAG VALUES); if this node does not hold it yet, the table does.
    if let ([column], [col], true) = (columns, cols.as_slice(), predicates.is_empty())
        && let Some(cache) = table
            .distinct_caches
            .iter()
            .find(|d| d.columns.first() == Some(column))
    {
        let text = format!(
            "SELECT DISTINCT {col} FROM distinct_cache({}, {}) WHERE {col} IS NOT NULL",
            sql::string(&table.name),
            sql::string(&cache.name),
        );
        if let Ok(batches) = ctx.backend.sql(db, &text).await {
            return string_rows(&batches);
        }
    }
    let mut text = format!(
        "SELECT DISTINCT {} FROM {}",
        cols.join(", "),
        sql::ident(&table.name)
    );
    if !predicates.is_empty() {
        text.push_str(" WHERE ");
        text.push_str(&predicates.join(" AND "));
    }
    string_rows(&ctx.backend.sql(db, &text).await?)
}

/// The rows of `batches` as strings (null: `None`).
fn string_rows(batches: &[RecordBatch]) -> Result<Vec<Vec<Option<String>>>, QueryError> {
    let mut out = Vec::new();
    for batch in batches {
        let arrays: Vec<StringArray> = batch
            .columns()
            .iter()
            .map(|a| {
                let s =
                    cast(a, &DataType::Utf8).map_err(|e| QueryError::Execution(e.to_string()))?;
                s.as_any()
                    .downcast_ref::<StringArray>()
                    .cloned()
                    .ok_or_else(|| QueryError::Execution("not a string column".to_string()))
            })
            .collect::<Result<_, _>>()?;
        for row in 0..batch.num_rows() {
            out.push(
                arrays
                    .iter()
                    .map(|a| (!a.is_null(row)).then(|| a.value(row).to_string()))
                    .collect(),
            );
        }
    }
    Ok(out)
}

fn tag_keys_of(t: &TableSchema) -> Vec<String> {
    let mut keys: Vec<String> = t
        .columns()
        .iter()
        .filter(|c| c.kind == ColumnKind::Tag)
        .map(|c| c.name.to_string())
        .collect();
    keys.sort();
    keys
}

fn field_type_name(t: FieldType) -> &'static str {
    match t {
        FieldType::Float => "float",
        FieldType::Integer => "integer",
        FieldType::UInteger => "unsigned",
        FieldType::String => "string",
        FieldType::Boolean => "boolean",
    }
}

/// Whether any row of `table` matches.
async fn any_row(
    ctx: &Context<'_>,
    db: &str,
    table: &TableSchema,
    range: TimeRange,
    cond: Option<&Expr>,
) -> Result<bool, QueryError> {
    let predicate = cond.map(|c| sql::condition(c, table)).transpose()?;
    let text = format!(
        "{} LIMIT 1",
        sql::scan(&table.name, &[], range, predicate.as_deref())
    );
    Ok(ctx
        .backend
        .sql(db, &text)
        .await?
        .iter()
        .any(|b| b.num_rows() > 0))
}

pub(crate) async fn measurements(
    ctx: &Context<'_>,
    s: &ShowMeasurements,
) -> Result<StatementResult, QueryError> {
    let (db, all) = tables(ctx, s.on.as_deref(), &[])?;
    let (range, cond) = bound(ctx, s.condition.as_ref())?;
    let with = match &s.with {
        Some(NameMatch::Regex(r)) => Some(regex(r)?),
        _ => None,
    };
    let mut names = Vec::new();
    for t in all {
        let keep = match &s.with {
            Some(NameMatch::Eq(n)) => *t.name == **n,
            Some(NameMatch::Regex(_)) => with.as_ref().is_some_and(|r| r.is_match(&t.name)),
            None => true,
        };
        if !keep {
            continue;
        }
        if (cond.is_some() || range != TimeRange::default())
            && !any_row(ctx, &db, &t, range, cond.as_ref()).await?
        {
            continue;
        }
        names.push(vec![Value::String(t.name.to_string())]);
    }
    Ok(result(vec![series(
        Some("measurements"),
        &["name"],
        page(names, s.limit, s.offset),
    )]))
}

pub(crate) async fn tag_keys(
    ctx: &Context<'_>,
    s: &ShowKeys,
) -> Result<StatementResult, QueryError> {
    let (db, tables) = tables(ctx, s.on.as_deref(), &s.from)?;
    let (range, cond) = bound(ctx, s.condition.as_ref())?;
    let mut out = Vec::new();
    for t in tables {
        let mut keys = tag_keys_of(&t);
        if cond.is_some() || range != TimeRange::default() {
            let mut present = BTreeSet::new();
            if !keys.is_empty() {
                for row in distinct(ctx, &db, &t, &keys, range, cond.as_ref()).await? {
                    for (k, v) in keys.iter().zip(row) {
                        if v.is_some() {
                            present.insert(k.clone());
                        }
                    }
                }
            }
            keys.retain(|k| present.contains(k));
        }
        let rows = keys.into_iter().map(|k| vec![Value::String(k)]).collect();
        out.push(series(
            Some(&t.name),
            &["tagKey"],
            page(rows, s.limit, s.offset),
        ));
    }
    Ok(result(out))
}

pub(crate) async fn field_keys(
    ctx: &Context<'_>,
    s: &ShowKeys,
) -> Result<StatementResult, QueryError> {
    let (_, tables) = tables(ctx, s.on.as_deref(), &s.from)?;
    let mut out = Vec::new();
    for t in tables {
        let mut fields: Vec<(String, FieldType)> = t
            .columns()
            .iter()
            .filter_map(|c| match c.kind {
                ColumnKind::Field(ft) => Some((c.name.to_string(), ft)),
                _ => None,
            })
            .collect();
        fields.sort_by(|a, b| a.0.cmp(&b.0));
        let rows = fields
            .into_iter()
            .map(|(n, ft)| {
                vec![
                    Value::String(n),
                    Value::String(field_type_name(ft).to_string()),
                ]
            })
            .collect();
        out.push(series(
            Some(&t.name),
            &["fieldKey", "fieldType"],
            page(rows, s.limit, s.offset),
        ));
    }
    Ok(result(out))
}

fn key_matches(m: &KeyMatch, key: &str, re: Option<&Regex>) -> bool {
    match m {
        KeyMatch::Eq(k) => key == k,
        KeyMatch::NotEq(k) => key != k,
        KeyMatch::In(ks) => ks.iter().any(|k| k == key),
        KeyMatch::Regex(_) => re.is_some_and(|r| r.is_match(key)),
        KeyMatch::NotRegex(_) => re.is_some_and(|r| !r.is_match(key)),
    }
}

/// The (key, value) pairs of the tag values a statement asks for, per table.
async fn tag_value_pairs(
    ctx: &Context<'_>,
    keys: &ShowKeys,
    key: &KeyMatch,
) -> Result<Vec<(Arc<TableSchema>, Vec<(String, String)>)>, QueryError> {
    let (db, tables) = tables(ctx, keys.on.as_deref(), &keys.from)?;
    let (range, cond) = bound(ctx, keys.condition.as_ref())?;
    let re = match key {
        KeyMatch::Regex(r) | KeyMatch::NotRegex(r) => Some(regex(r)?),
        _ => None,
    };
    let mut out = Vec::new();
    for t in tables {
        let wanted: Vec<String> = tag_keys_of(&t)
            .into_iter()
            .filter(|k| key_matches(key, k, re.as_ref()))
            .collect();
        let mut pairs = BTreeSet::new();
        for k in &wanted {
            for row in distinct(ctx, &db, &t, std::slice::from_ref(k), range, cond.as_ref()).await?
            {
                if let Some(Some(v)) = row.into_iter().next() {
                    pairs.insert((k.clone(), v));
                }
            }
        }
        out.push((t, pairs.into_iter().collect()));
    }
    Ok(out)
}

pub(crate) async fn tag_values(
    ctx: &Context<'_>,
    s: &ShowTagValues,
) -> Result<StatementResult, QueryError> {
    let mut out = Vec::new();
    for (t, pairs) in tag_value_pairs(ctx, &s.keys, &s.key).await? {
        let rows = pairs
            .into_iter()
            .map(|(k, v)| vec![Value::String(k), Value::String(v)])
            .collect();
        out.push(series(
            Some(&t.name),
            &["key", "value"],
            page(rows, s.keys.limit, s.keys.offset),
        ));
    }
    Ok(result(out))
}

/// Escapes a series-key part as line protocol does.
fn escape_key(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, ',' | ' ' | '=') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

async fn series_keys(ctx: &Context<'_>, s: &ShowKeys) -> Result<Vec<(String, String)>, QueryError> {
    let (db, tables) = tables(ctx, s.on.as_deref(), &s.from)?;
    let (range, cond) = bound(ctx, s.condition.as_ref())?;
    let mut keys = Vec::new();
    for t in tables {
        let tags = tag_keys_of(&t);
        let mut set = BTreeSet::new();
        if tags.is_empty() {
            if any_row(ctx, &db, &t, range, cond.as_ref()).await? {
                set.insert(escape_key(&t.name));
            }
        } else {
            for row in distinct(ctx, &db, &t, &tags, range, cond.as_ref()).await? {
                let mut key = escape_key(&t.name);
                for (k, v) in tags.iter().zip(row) {
                    if let Some(v) = v {
                        key.push(',');
                        key.push_str(&escape_key(k));
                        key.push('=');
                        key.push_str(&escape_key(&v));
                    }
                }
                set.insert(key);
            }
        }
        keys.extend(set.into_iter().map(|k| (t.name.to_string(), k)));
    }
    Ok(keys)
}

pub(crate) async fn show_series(
    ctx: &Context<'_>,
    s: &ShowKeys,
) -> Result<StatementResult, QueryError> {
    let keys = series_keys(ctx, s).await?;
    let rows = keys
        .into_iter()
        .map(|(_, k)| vec![Value::String(k)])
        .collect();
    Ok(result(vec![series_without_name(page(
        rows, s.limit, s.offset,
    ))]))
}

fn series_without_name(rows: Vec<Vec<Value>>) -> Series {
    series(None, &["key"], rows)
}

pub(crate) async fn cardinality(
    ctx: &Context<'_>,
    s: &ShowCardinality,
) -> Result<StatementResult, QueryError> {
    let count = |n: usize| vec![vec![Value::Integer(n as i64)]];
    match s.of {
        CardinalityOf::Series | CardinalityOf::Measurements => {
            let n = if s.of == CardinalityOf::Series {
                series_keys(ctx, &s.keys).await?.len()
            } else {
                tables(ctx, s.keys.on.as_deref(), &s.keys.from)?.1.len()
            };
            let column = if s.exact {
                "count"
            } else {
                "cardinality estimation"
            };
            Ok(result(vec![series(None, &[column], count(n))]))
        }
        CardinalityOf::TagKeys => {
            let keys = tag_keys(ctx, &s.keys).await?;
            Ok(result(
                keys.series
                    .into_iter()
                    .map(|x| series(x.name.as_deref(), &["count"], count(x.rows.len())))
                    .collect(),
            ))
        }
        CardinalityOf::FieldKeys => {
            let keys = field_keys(ctx, &s.keys).await?;
            Ok(result(
                keys.series
                    .into_iter()
                    .map(|x| series(x.name.as_deref(), &["count"], count(x.rows.len())))
                    .collect(),
            ))
        }
        CardinalityOf::TagValues => {
            let key = s.key.clone().ok_or_else(|| invalid("WITH KEY required"))?;
            let mut out = Vec::new();
            for (t, pairs) in tag_value_pairs(ctx, &s.keys, &key).await? {
                if !pairs.is_empty() {
                    out.push(series(Some(&t.name), &["count"], count(pairs.len())));
                }
            }
            Ok(result(out))
        }
    }
}
