//! `SELECT`: sources, wildcard expansion, series, windows, aggregates,
//! selectors, fill, transformations and limits.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use arrow::record_batch::RecordBatch;
use catalog::{ColumnKind, FieldType};
use influxql::{
    Dimension, Expr, Field, Fill, Literal, MeasurementName, SelectStatement, Source, TimeOffset,
};
use regex::Regex;
use services::QueryError;
use services::influxql::{Row, Series, StatementResult, Value};

use crate::eval::{self, Vars, as_f64};
use crate::functions::{self, Args, Input, Kind, Output};
use crate::rows::{Col, Frame, Point};
use crate::time::{TimeRange, split_condition};
use crate::{Context, invalid, sql};

/// Windows a series may have at most: each is a row.
const MAX_WINDOWS: i64 = 1_000_000;

pub(crate) async fn run(
    ctx: &Context<'_>,
    s: &SelectStatement,
) -> Result<StatementResult, QueryError> {
    if s.into.is_some() {
        return Err(invalid("SELECT INTO is not supported by Inflow yet"));
    }
    if let Some(tz) = &s.timezone {
        tz.parse::<chrono_tz::Tz>()
            .map_err(|_| invalid(format!("unable to find time zone {tz}")))?;
    }
    let series = select(ctx, s, TimeRange::default()).await?;
    Ok(StatementResult {
        series,
        timezone: s.timezone.clone(),
    })
}

type SeriesFuture<'a> = Pin<Box<dyn Future<Output = Result<Vec<Series>, QueryError>> + Send + 'a>>;

/// Runs a select (also a subquery, within the outer time range).
fn select<'a>(ctx: &'a Context<'a>, s: &'a SelectStatement, outer: TimeRange) -> SeriesFuture<'a> {
    Box::pin(async move {
        let condition = s
            .condition
            .as_ref()
            .map(|c| sql::bind(c, ctx.params))
            .transpose()?;
        let fields: Vec<Field> = s
            .fields
            .iter()
            .map(|f| {
                Ok(Field {
                    expr: sql::bind(&f.expr, ctx.params)?,
                    alias: f.alias.clone(),
                })
            })
            .collect::<Result<_, QueryError>>()?;
        let (range, rest) = split_condition(condition.as_ref(), ctx.now_ns)?;
        let range = range.intersect(outer);

        // The sources and the keys they have.
        let mut tables = Vec::new();
        let mut frames: Vec<Frame> = Vec::new();
        let mut keys = Keys::default();
        for source in &s.from {
            match source {
                Source::Measurement(m) => {
                    let db =
                        ctx.database_name(m.database.as_deref(), m.retention_policy.as_deref())?;
                    let schema = ctx.schema(&db)?;
                    let mut matched: Vec<_> = match &m.name {
                        MeasurementName::Name(n) => schema.table(n).into_iter().cloned().collect(),
                        MeasurementName::Regex(r) => {
                            let re = Regex::new(r)
                                .map_err(|e| invalid(format!("invalid regex: {e}")))?;
                            schema
                                .tables()
                                .filter(|t| re.is_match(&t.name))
                                .cloned()
                                .collect()
                        }
                    };
                    matched.sort_by(|a, b| a.name.cmp(&b.name));
                    for t in matched {
                        for c in t.columns() {
                            match c.kind {
                                ColumnKind::Tag => {
                                    keys.tags.insert(c.name.to_string());
                                }
                                ColumnKind::Field(ft) => {
                                    keys.fields.entry(c.name.to_string()).or_insert(ft);
                                }
                                ColumnKind::Time => {}
                            }
                        }
                        tables.push((db.clone(), t));
                    }
                }
                Source::Subquery(inner) => {
                    let inner_series = select(ctx, inner, range).await?;
                    for f in subquery_frames(inner_series) {
                        for t in &f.tag_keys {
                            keys.tags.insert(t.clone());
                        }
                        for (i, name) in f.field_names.iter().enumerate() {
                            let ty = f
                                .points
                                .iter()
                                .find_map(|p| value_type(&p.fields[i]))
                                .unwrap_or(FieldType::Float);
                            keys.fields.entry(name.clone()).or_insert(ty);
                        }
                        frames.push(f);
                    }
                }
            }
        }

        let dims = Dims::new(&s.group_by, ctx.now_ns)?;
        let out = expand(&fields, &keys, &dims)?;
        let mut plan = Plan::new(out, &dims, s, &keys)?;
        plan.pushed = frames.is_empty() && plan.tz.is_none() && plan.can_push_down(&keys);
        if plan.fields.is_empty() || range.is_empty() {
            return Ok(Vec::new());
        }

        // A subquery's rows are filtered here: SQL never saw them.
        if let Some(c) = &rest {
            for f in frames.iter_mut() {
                let kept: Vec<Point> = f
                    .points
                    .iter()
                    .filter(|p| {
                        range.contains(p.time) && eval::matches(c, &f.vars(p), &|n| f.is_tag(n))
                    })
                    .cloned()
                    .collect();
                f.points = kept;
            }
        }
        // Transformations of aggregates see the windows before the range,
        // as InfluxDB computes them (the first derivative has a value).
        let scan_range = match (plan.interval, range.start) {
            (Some(interval), Some(start)) if plan.lookback() > 0 => TimeRange {
                start: Some(start.saturating_sub(interval.saturating_mul(plan.lookback()))),
                end: range.end,
            },
            _ => range,
        };
        // Scan the tables.
        for (db, table) in &tables {
            let mut tag_keys: BTreeSet<String> = BTreeSet::new();
            let mut field_names: BTreeSet<String> = BTreeSet::new();
            for c in table.columns() {
                let name = c.name.to_string();
                match c.kind {
                    ColumnKind::Tag if dims.groups_by(&name) || plan.refs.contains(&name) => {
                        tag_keys.insert(name);
                    }
                    ColumnKind::Field(_) if plan.refs.contains(&name) => {
                        field_names.insert(name);
                    }
                    _ => {}
                }
            }
            if field_names.is_empty() {
                // Nothing selected exists here: InfluxDB returns no series.
                continue;
            }
            let predicate = rest
                .as_ref()
                .map(|c| sql::condition(c, table))
                .transpose()?;
            let (mut frame, text) = if plan.pushed {
                let group_tags: Vec<String> =
                    tag_keys.into_iter().filter(|t| dims.groups_by(t)).collect();
                let outputs = (0..plan.calls.len()).map(|i| format!("_{i}")).collect();
                let frame = Frame::new(&table.name, group_tags.clone(), outputs);
                let exact =
                    plan.pushdown_sql(table, &group_tags, scan_range, predicate.as_deref(), false);
                // first/last of the latest (earliest) row, nulls included, is
                // what SQL computes fastest (one row per series, see
                // query::rules); where it found no null it is the answer.
                let fast =
                    plan.pushdown_sql(table, &group_tags, scan_range, predicate.as_deref(), true);
                if fast != exact {
                    let batches = ctx.backend.sql(db, &fast).await?;
                    if !plan.first_last_null(&batches) {
                        let mut frame = frame;
                        for batch in &batches {
                            frame.extend(batch)?;
                        }
                        frames.push(frame);
                        continue;
                    }
                }
                (frame, exact)
            } else {
                let frame = Frame::new(
                    &table.name,
                    tag_keys.into_iter().collect(),
                    field_names.into_iter().collect(),
                );
                let mut columns = frame.tag_keys.clone();
                columns.extend(frame.field_names.iter().cloned());
                let text = sql::scan(&table.name, &columns, scan_range, predicate.as_deref());
                (frame, text)
            };
            for batch in ctx.backend.sql(db, &text).await? {
                frame.extend(&batch)?;
            }
            frames.push(frame);
        }
        frames.sort_by(|a, b| a.measurement.cmp(&b.measurement));
        plan.series(frames, range, ctx.now_ns, s)
    })
}

fn value_type(v: &Value) -> Option<FieldType> {
    Some(match v {
        Value::Float(_) => FieldType::Float,
        Value::Integer(_) => FieldType::Integer,
        Value::Unsigned(_) => FieldType::UInteger,
        Value::String(_) => FieldType::String,
        Value::Boolean(_) => FieldType::Boolean,
        Value::Null => return None,
    })
}

/// The series a subquery returned, as frames: one per measurement, its
/// `GROUP BY` tags as tags and its columns as fields.
fn subquery_frames(series: Vec<Series>) -> Vec<Frame> {
    let mut by_name: BTreeMap<String, Vec<Series>> = BTreeMap::new();
    for s in series {
        by_name
            .entry(s.name.clone().unwrap_or_default())
            .or_default()
            .push(s);
    }
    let mut frames = Vec::new();
    for (name, list) in by_name {
        let tag_keys: BTreeSet<String> = list
            .iter()
            .flat_map(|s| s.tags.iter().flat_map(|t| t.keys().cloned()))
            .collect();
        let tag_keys: Vec<String> = tag_keys.into_iter().collect();
        let field_names: Vec<String> = list[0].columns.iter().skip(1).cloned().collect();
        let mut frame = Frame::new(&name, tag_keys.clone(), field_names.clone());
        for s in list {
            let tags: Vec<Option<Arc<str>>> = tag_keys
                .iter()
                .map(|k| {
                    s.tags
                        .as_ref()
                        .and_then(|t| t.get(k))
                        .filter(|v| !v.is_empty())
                        .map(|v| Arc::from(v.as_str()))
                })
                .collect();
            for row in s.rows {
                let mut fields = vec![Value::Null; field_names.len()];
                for (i, c) in s.columns.iter().skip(1).enumerate() {
                    if let Some(j) = field_names.iter().position(|n| n == c) {
                        fields[j] = row.values.get(i).cloned().unwrap_or(Value::Null);
                    }
                }
                frame.points.push(Point {
                    time: row.time,
                    tags: tags.clone(),
                    fields,
                });
            }
        }
        frames.push(frame);
    }
    frames
}

/// The keys of every source: field types and tag keys.
#[derive(Debug, Default)]
struct Keys {
    fields: BTreeMap<String, FieldType>,
    tags: BTreeSet<String>,
}

/// `GROUP BY`.
struct Dims {
    interval: Option<i64>,
    offset: i64,
    tags: Vec<String>,
    all_tags: bool,
    regexes: Vec<Regex>,
}

impl Dims {
    fn new(group_by: &[Dimension], now_ns: i64) -> Result<Self, QueryError> {
        let mut d = Dims {
            interval: None,
            offset: 0,
            tags: Vec::new(),
            all_tags: false,
            regexes: Vec::new(),
        };
        for dim in group_by {
            match dim {
                Dimension::Time { interval, offset } => {
                    if d.interval.is_some() {
                        return Err(invalid("multiple time dimensions not allowed"));
                    }
                    d.interval = Some(*interval);
                    d.offset = match offset {
                        None => 0,
                        Some(TimeOffset::Duration(o)) => o.rem_euclid(*interval),
                        Some(TimeOffset::Now) => now_ns.rem_euclid(*interval),
                    };
                }
                Dimension::Tag(t) => {
                    if t.eq_ignore_ascii_case("time") {
                        return Err(invalid(
                            "time() is a function and expects at least one argument",
                        ));
                    }
                    d.tags.push(t.clone())
                }
                Dimension::Wildcard => d.all_tags = true,
                Dimension::Regex(r) => d
                    .regexes
                    .push(Regex::new(r).map_err(|e| invalid(format!("invalid regex: {e}")))?),
            }
        }
        Ok(d)
    }

    fn groups_by(&self, tag: &str) -> bool {
        self.all_tags
            || self.tags.iter().any(|t| t == tag)
            || self.regexes.iter().any(|r| r.is_match(tag))
    }

    fn grouped(&self) -> bool {
        self.all_tags || !self.tags.is_empty() || !self.regexes.is_empty()
    }

    /// The group keys of a frame, in key order.
    fn keys_of(&self, frame: &Frame) -> Vec<String> {
        let mut keys: BTreeSet<String> = self.tags.iter().cloned().collect();
        for k in &frame.tag_keys {
            if self.groups_by(k) {
                keys.insert(k.clone());
            }
        }
        keys.into_iter().collect()
    }
}

/// One output column.
#[derive(Debug, Clone)]
struct OutField {
    name: String,
    expr: Expr,
}

/// The name InfluxDB gives an expression's column.
fn auto_name(e: &Expr) -> String {
    match e {
        Expr::VarRef { name, .. } => name.clone(),
        Expr::Call { name, .. } => name.clone(),
        Expr::Paren(inner) => auto_name(inner),
        Expr::Binary { lhs, rhs, .. } => {
            let (l, r) = (auto_name(lhs), auto_name(rhs));
            match (l.is_empty(), r.is_empty()) {
                (false, false) => format!("{l}_{r}"),
                (false, true) => l,
                _ => r,
            }
        }
        _ => String::new(),
    }
}

/// Expands `*`, regexes and `f(*)` over the sources' keys, and names each column.
fn expand(fields: &[Field], keys: &Keys, dims: &Dims) -> Result<Vec<OutField>, QueryError> {
    let mut out = Vec::new();
    let key_list = |cast: Option<influxql::Cast>, re: Option<&Regex>| -> Vec<String> {
        let mut all: Vec<String> = Vec::new();
        if cast != Some(influxql::Cast::Tag) {
            all.extend(keys.fields.keys().cloned());
        }
        if cast != Some(influxql::Cast::Field) {
            all.extend(keys.tags.iter().filter(|t| !dims.groups_by(t)).cloned());
        }
        all.sort();
        all.dedup();
        all.retain(|k| re.is_none_or(|r| r.is_match(k)));
        all
    };
    for f in fields {
        match &f.expr {
            Expr::Wildcard(cast) => {
                for k in key_list(*cast, None) {
                    out.push(OutField {
                        name: k.clone(),
                        expr: Expr::var(&k),
                    });
                }
            }
            Expr::Regex(r) => {
                let re = Regex::new(r).map_err(|e| invalid(format!("invalid regex: {e}")))?;
                for k in key_list(None, Some(&re)) {
                    out.push(OutField {
                        name: k.clone(),
                        expr: Expr::var(&k),
                    });
                }
            }
            Expr::Call { name, args }
                if matches!(args.first(), Some(Expr::Wildcard(_) | Expr::Regex(_))) =>
            {
                let re = match &args[0] {
                    Expr::Regex(r) => {
                        Some(Regex::new(r).map_err(|e| invalid(format!("invalid regex: {e}")))?)
                    }
                    _ => None,
                };
                let prefix = f.alias.clone().unwrap_or_else(|| name.clone());
                for (field, ty) in &keys.fields {
                    if re.as_ref().is_some_and(|r| !r.is_match(field)) {
                        continue;
                    }
                    let numeric = matches!(
                        ty,
                        FieldType::Float | FieldType::Integer | FieldType::UInteger
                    );
                    if functions::numeric_only(name) && !numeric {
                        continue;
                    }
                    let mut new_args = args.clone();
                    new_args[0] = Expr::var(field);
                    out.push(OutField {
                        name: format!("{prefix}_{field}"),
                        expr: Expr::Call {
                            name: name.clone(),
                            args: new_args,
                        },
                    });
                }
            }
            Expr::VarRef { name, .. } if name.eq_ignore_ascii_case("time") => {}
            e => {
                out.push(OutField {
                    name: f.alias.clone().unwrap_or_else(|| auto_name(e)),
                    expr: e.clone(),
                });
                // top/bottom with tags: the tags are columns too.
                if let Expr::Call { name, args } = e
                    && matches!(name.as_str(), "top" | "bottom")
                    && args.len() > 2
                {
                    for a in &args[1..args.len() - 1] {
                        if let Expr::VarRef { name, .. } = a {
                            out.push(OutField {
                                name: name.clone(),
                                expr: a.clone(),
                            });
                        }
                    }
                }
            }
        }
    }
    // Duplicate names get `_1`, `_2`, ...
    let mut seen: HashMap<String, usize> = HashMap::new();
    for f in &mut out {
        let n = seen.entry(f.name.clone()).or_insert(0);
        if *n > 0 {
            let renamed = format!("{}_{}", f.name, n);
            *n += 1;
            f.name = renamed;
        } else {
            *n = 1;
        }
    }
    Ok(out)
}

/// How the statement computes its rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// One row per point.
    Raw,
    /// Transformations of raw values.
    RawTransform,
    /// Windows and aggregates.
    Aggregate,
}

/// One aggregate or selector call of the statement.
#[derive(Debug, Clone)]
struct Call {
    key: String,
    name: String,
    kind: Kind,
    field: String,
    /// `count(distinct(x))`.
    of_distinct: bool,
    args: Args,
    tag_args: Vec<String>,
}

struct Plan {
    fields: Vec<OutField>,
    mode: Mode,
    /// Every call is computed by DataFusion per window (see `pushdown_sql`):
    /// each scanned row is then one window of one series, and its fields
    /// are the calls' values in call order.
    pushed: bool,
    /// Whether a column reads a field or tag outside any call.
    bare_refs: bool,
    /// `tz()`: windows align to its midnights (and shift with its DST).
    tz: Option<chrono_tz::Tz>,
    /// `ORDER BY time DESC`: transformations see the rows in that order.
    descending: bool,
    interval: Option<i64>,
    offset: i64,
    fill: Fill,
    calls: Vec<Call>,
    /// A single selector: rows take the selected point's time and columns.
    selector: bool,
    /// A multi-row call (`top`, `bottom`, `sample`, `distinct`).
    multi: Option<usize>,
    /// The columns to read.
    refs: BTreeSet<String>,
    /// The fields whose presence makes a raw row.
    field_refs: Vec<String>,
    dims_keys: Dims,
}

fn call_args(name: &str, args: &[Expr]) -> Result<(Args, Vec<String>), QueryError> {
    let mut out = Args::default();
    let mut tags = Vec::new();
    let number = |e: &Expr| match e.unparen() {
        Expr::Literal(Literal::Integer(i)) => Some(*i as f64),
        Expr::Literal(Literal::Float(f)) => Some(*f),
        _ => None,
    };
    let duration = |e: &Expr| match e.unparen() {
        Expr::Literal(Literal::Duration(d)) => Some(*d),
        _ => None,
    };
    match name {
        "top" | "bottom" => {
            if args.len() < 2 {
                return Err(invalid(format!(
                    "invalid number of arguments for {name}, expected at least 2, got {}",
                    args.len()
                )));
            }
            let n = number(&args[args.len() - 1]).ok_or_else(|| {
                invalid(format!(
                    "expected integer as last argument in {name}(), found {}",
                    args[args.len() - 1]
                ))
            })?;
            if n < 1.0 {
                return Err(invalid(format!(
                    "limit ({n}) in {name} function must be at least 1"
                )));
            }
            out.number = Some(n);
            for a in &args[1..args.len() - 1] {
                match a {
                    Expr::VarRef { name, .. } => tags.push(name.clone()),
                    other => {
                        return Err(invalid(format!(
                            "only fields or tags are allowed in {name}(), found {other}"
                        )));
                    }
                }
            }
        }
        "sample" | "percentile" | "moving_average" => {
            if args.len() != 2 {
                return Err(invalid(format!(
                    "invalid number of arguments for {name}, expected 2, got {}",
                    args.len()
                )));
            }
            out.number = Some(
                number(&args[1])
                    .ok_or_else(|| invalid(format!("expected float argument in {name}()")))?,
            );
        }
        "derivative" | "non_negative_derivative" | "elapsed" | "integral" => {
            if args.len() > 2 {
                return Err(invalid(format!(
                    "invalid number of arguments for {name}, expected at least 1 but no more than 2, got {}",
                    args.len()
                )));
            }
            if let Some(u) = args.get(1) {
                let d = duration(u).ok_or_else(|| {
                    invalid(format!(
                        "second argument to {name} must be a duration, got {}",
                        u
                    ))
                })?;
                if d <= 0 {
                    return Err(invalid(format!(
                        "duration argument must be positive, got {d}"
                    )));
                }
                out.unit = Some(d);
            }
        }
        _ => {
            if args.len() != 1 {
                return Err(invalid(format!(
                    "invalid number of arguments for {name}, expected 1, got {}",
                    args.len()
                )));
            }
        }
    }
    Ok((out, tags))
}

impl Plan {
    fn new(
        fields: Vec<OutField>,
        dims: &Dims,
        s: &SelectStatement,
        keys: &Keys,
    ) -> Result<Self, QueryError> {
        let mut calls: Vec<Call> = Vec::new();
        let mut has_transform = false;
        let mut bare: Vec<String> = Vec::new();
        let mut refs = BTreeSet::new();
        for f in &fields {
            collect(
                &f.expr,
                false,
                &mut calls,
                &mut has_transform,
                &mut bare,
                &mut refs,
            )?;
        }
        let has_agg = !calls.is_empty();
        let multi = calls
            .iter()
            .position(|c| matches!(c.kind, Kind::MultiSelector | Kind::Distinct));
        if let Some(m) = multi
            && calls.len() > 1
        {
            return Err(invalid(format!(
                "selector function {}() cannot be combined with other functions",
                calls[m].name
            )));
        }
        let selector =
            calls.len() == 1 && matches!(calls[0].kind, Kind::Selector | Kind::MultiSelector);
        if has_agg && !bare.is_empty() && !selector {
            return Err(invalid(
                "mixing aggregate and non-aggregate queries is not supported",
            ));
        }
        let mode = if has_agg {
            Mode::Aggregate
        } else if has_transform {
            if dims.interval.is_some() {
                return Err(invalid(
                    "aggregate function required inside the call to a transformation",
                ));
            }
            Mode::RawTransform
        } else {
            if dims.interval.is_some() {
                return Err(invalid("GROUP BY requires at least one aggregate function"));
            }
            Mode::Raw
        };
        if mode == Mode::RawTransform && !bare.is_empty() {
            return Err(invalid(
                "mixing aggregate and non-aggregate queries is not supported",
            ));
        }
        for c in &calls {
            refs.insert(c.field.clone());
            refs.extend(c.tag_args.iter().cloned());
        }
        let field_refs: Vec<String> = refs
            .iter()
            .filter(|r| keys.fields.contains_key(*r))
            .cloned()
            .collect();
        // Only tags selected: InfluxDB returns nothing.
        let fields = if field_refs.is_empty() {
            Vec::new()
        } else {
            fields
        };
        Ok(Plan {
            fields,
            mode,
            pushed: false,
            bare_refs: !bare.is_empty(),
            tz: s.timezone.as_deref().and_then(|z| z.parse().ok()),
            descending: s.descending,
            interval: dims.interval,
            offset: dims.offset,
            fill: s.fill.clone().unwrap_or(Fill::Null),
            calls,
            selector,
            multi,
            refs,
            field_refs,
            dims_keys: Dims {
                interval: dims.interval,
                offset: dims.offset,
                tags: dims.tags.clone(),
                all_tags: dims.all_tags,
                regexes: dims.regexes.clone(),
            },
        })
    }
}

/// The calls DataFusion computes per window with InfluxQL's meaning;
/// `fast`: `first`/`last` of the earliest/latest row even where its field
/// is null (the answer only where it is not). Of points of several series
/// at the same time, `first` and `last` keep the greater value, as
/// InfluxDB's reducers do.
fn pushed_aggregate(call: &Call, table: &catalog::TableSchema, fast: bool) -> Option<String> {
    if !matches!(
        table.column(&call.field).map(|c| c.kind),
        Some(ColumnKind::Field(_))
    ) {
        return Some("NULL".to_string());
    }
    let f = sql::ident(&call.field);
    Some(match call.name.as_str() {
        "count" => format!("count({f})"),
        "sum" => format!("sum({f})"),
        "mean" => format!("avg({f})"),
        "min" => format!("min({f})"),
        "max" => format!("max({f})"),
        "spread" => format!("max({f}) - min({f})"),
        "stddev" => format!("stddev({f})"),
        "first" if fast => format!("first_value({f} ORDER BY \"time\", {f} DESC NULLS LAST)"),
        "last" if fast => format!("last_value({f} ORDER BY \"time\", {f} ASC NULLS FIRST)"),
        "first" => {
            format!("first_value({f} ORDER BY \"time\", {f} DESC) FILTER (WHERE {f} IS NOT NULL)")
        }
        "last" => {
            format!("last_value({f} ORDER BY \"time\", {f}) FILTER (WHERE {f} IS NOT NULL)")
        }
        _ => return None,
    })
}

/// The zone's offset from UTC at `t`, in nanoseconds.
fn zone_offset(tz: chrono_tz::Tz, t: i64) -> i64 {
    use chrono::{Offset, TimeZone};
    let utc = chrono::DateTime::from_timestamp_nanos(t).naive_utc();
    i64::from(tz.offset_from_utc_datetime(&utc).fix().local_minus_utc()) * 1_000_000_000
}

impl Plan {
    /// The window `t` falls in: aligned to the epoch plus the offset, or,
    /// with `tz()`, to the zone's local time, as InfluxDB does (a DST change
    /// shorter than the interval moves the window's edge with it).
    fn window(&self, t: i64) -> (i64, i64) {
        let interval = self.interval.unwrap_or(1);
        let t0 = t - self.offset;
        let zone = self.tz.map_or(0, |z| zone_offset(z, t0));
        let mut start = t0 - (t0 + zone).rem_euclid(interval);
        if let Some(z) = self.tz {
            let shift = zone - zone_offset(z, start);
            if shift != 0 && shift.abs() < interval {
                start += shift;
            }
        }
        let start = start + self.offset;
        let mut end = start + interval;
        if let Some(z) = self.tz {
            let shift = zone_offset(z, start) - zone_offset(z, end);
            if shift != 0 && shift.abs() < interval {
                end += shift;
            }
        }
        (start, end)
    }

    /// Whether DataFusion can compute every call per window: windows of
    /// plain aggregates and selectors whose row is not read, over fields
    /// of the types the functions take.
    fn can_push_down(&self, keys: &Keys) -> bool {
        // Without windows, a lone selector's row has the point's time,
        // which the grouped SQL does not return.
        self.mode == Mode::Aggregate
            && (self.interval.is_some() || !self.selector)
            && self.multi.is_none()
            && !self.bare_refs
            && self.calls.iter().all(|c| {
                let numeric = matches!(
                    keys.fields.get(&c.field),
                    Some(FieldType::Float | FieldType::Integer | FieldType::UInteger)
                );
                matches!(
                    c.name.as_str(),
                    "count"
                        | "sum"
                        | "mean"
                        | "min"
                        | "max"
                        | "spread"
                        | "stddev"
                        | "first"
                        | "last"
                ) && !c.of_distinct
                    && c.tag_args.is_empty()
                    && (numeric || !functions::numeric_only(&c.name))
            })
    }

    /// Whether a `first`/`last` column of the fast pushdown's answer has a
    /// null, which the exact one may fill from an older row.
    fn first_last_null(&self, batches: &[RecordBatch]) -> bool {
        self.calls.iter().enumerate().any(|(i, c)| {
            matches!(c.name.as_str(), "first" | "last")
                && batches.iter().any(|b| {
                    b.column_by_name(&format!("_{i}"))
                        .is_none_or(|a| a.null_count() > 0)
                })
        })
    }

    /// `SELECT date_bin(...) AS time, <group tags>, <call>... GROUP BY` the
    /// window and tags. `fast`: see [`pushed_aggregate`]; when every call is
    /// a `first` or `last` and tags are grouped, it is a query of only
    /// `first_value`/`last_value`, which `query::rules` runs over each
    /// series' latest rows only.
    fn pushdown_sql(
        &self,
        table: &catalog::TableSchema,
        group_tags: &[String],
        range: TimeRange,
        predicate: Option<&str>,
        fast: bool,
    ) -> String {
        let only_first_last = self
            .calls
            .iter()
            .all(|c| matches!(c.name.as_str(), "first" | "last"));
        let latest_only = fast && only_first_last && !group_tags.is_empty();
        let mut columns = vec![match self.interval {
            Some(interval) => format!(
                "date_bin(INTERVAL '{interval} nanoseconds', \"time\", to_timestamp_nanos({})) AS \"time\"",
                self.offset
            ),
            // One window: any time inside it places the row.
            None if latest_only => match self.calls.first().map(|c| c.name.as_str()) {
                Some("first") => "first_value(\"time\" ORDER BY \"time\") AS \"time\"".to_string(),
                _ => "last_value(\"time\" ORDER BY \"time\") AS \"time\"".to_string(),
            },
            None => "min(\"time\") AS \"time\"".to_string(),
        }];
        columns.extend(group_tags.iter().map(|t| sql::ident(t)));
        for (i, c) in self.calls.iter().enumerate() {
            let agg = pushed_aggregate(c, table, fast).unwrap_or_else(|| "NULL".to_string());
            columns.push(format!("{agg} AS \"_{i}\""));
        }
        let mut text = format!(
            "SELECT {} FROM {}",
            columns.join(", "),
            sql::ident(&table.name)
        );
        let mut predicates = Vec::new();
        if let Some(s) = range.start {
            predicates.push(format!("\"time\" >= to_timestamp_nanos({s})"));
        }
        if let Some(e) = range.end {
            predicates.push(format!("\"time\" <= to_timestamp_nanos({e})"));
        }
        if let Some(p) = predicate {
            predicates.push(format!("({p})"));
        }
        if !predicates.is_empty() {
            text.push_str(" WHERE ");
            text.push_str(&predicates.join(" AND "));
        }
        let mut group: Vec<String> = self.interval.map(|_| "1".to_string()).into_iter().collect();
        group.extend(group_tags.iter().map(|t| sql::ident(t)));
        if !group.is_empty() {
            text.push_str(" GROUP BY ");
            text.push_str(&group.join(", "));
        }
        if self.interval.is_none() && group_tags.is_empty() {
            // An aggregate over no rows is no series, not a row of zeros
            // (a group of tags only exists with rows).
            text.push_str(" HAVING count(*) > 0");
        }
        text
    }

    /// Windows before the range that transformations of aggregates need.
    fn lookback(&self) -> i64 {
        if self.mode != Mode::Aggregate {
            return 0;
        }
        let mut most = 0;
        for f in &self.fields {
            let mut ts = Vec::new();
            transforms(&f.expr, &mut ts);
            for t in ts {
                if let Expr::Call { name, args } = &t {
                    let n = match name.as_str() {
                        "cumulative_sum" => 0,
                        "moving_average" => call_args(name, args)
                            .ok()
                            .and_then(|(a, _)| a.number)
                            .map_or(0, |n| (n as i64 - 1).max(0)),
                        _ => 1,
                    };
                    most = most.max(n);
                }
            }
        }
        most
    }

    /// Whether every column is a transformation.
    fn only_transforms(&self) -> bool {
        self.fields.iter().all(|f| {
            let mut ts = Vec::new();
            transforms(&f.expr, &mut ts);
            !ts.is_empty()
        })
    }
}

/// Collects the calls of an expression; `inside` is whether it is under an aggregate.
fn collect(
    e: &Expr,
    inside: bool,
    calls: &mut Vec<Call>,
    has_transform: &mut bool,
    bare: &mut Vec<String>,
    refs: &mut BTreeSet<String>,
) -> Result<(), QueryError> {
    match e {
        Expr::VarRef { name, .. } => {
            refs.insert(name.clone());
            if !inside {
                bare.push(name.clone());
            }
        }
        Expr::Paren(inner) => collect(inner, inside, calls, has_transform, bare, refs)?,
        Expr::Binary { lhs, rhs, .. } => {
            collect(lhs, inside, calls, has_transform, bare, refs)?;
            collect(rhs, inside, calls, has_transform, bare, refs)?;
        }
        Expr::Call { name, args } => match functions::kind(name) {
            Some(Kind::Transform) => {
                *has_transform = true;
                call_args(name, args)?;
                let Some(first) = args.first() else {
                    return Err(invalid(format!(
                        "invalid number of arguments for {name}, expected at least 1, got 0"
                    )));
                };
                collect(first, inside, calls, has_transform, bare, refs)?;
                // A raw transformation's field is not "bare".
                if let Expr::VarRef { name: f, .. } = first.unparen()
                    && !inside
                {
                    bare.retain(|b| b != f);
                }
            }
            Some(kind) => {
                if inside {
                    if name == "distinct" {
                        // `count(distinct(x))`: handled by the outer call.
                        return Ok(());
                    }
                    return Err(invalid(format!(
                        "{name}() cannot be used inside another aggregate"
                    )));
                }
                let (parsed, tag_args) = call_args(name, args)?;
                let (field, of_distinct) = match args.first().map(|a| a.unparen()) {
                    Some(Expr::VarRef { name, .. }) => (name.clone(), false),
                    Some(Expr::Call {
                        name: inner,
                        args: inner_args,
                    }) if inner == "distinct" && name == "count" => {
                        match inner_args.first().map(|a| a.unparen()) {
                            Some(Expr::VarRef { name, .. }) => (name.clone(), true),
                            _ => return Err(invalid("distinct() expects a field")),
                        }
                    }
                    Some(other) => {
                        return Err(invalid(format!(
                            "expected field argument in {name}(), found {other}"
                        )));
                    }
                    None => {
                        return Err(invalid(format!(
                            "invalid number of arguments for {name}, expected 1, got 0"
                        )));
                    }
                };
                refs.insert(field.clone());
                let key = e.to_string();
                if !calls.iter().any(|c| c.key == key) {
                    calls.push(Call {
                        key,
                        name: name.clone(),
                        kind,
                        field,
                        of_distinct,
                        args: parsed,
                        tag_args,
                    });
                }
            }
            None => {
                if !eval::MATH_FUNCTIONS.contains(&name.as_str()) {
                    return Err(invalid(format!("undefined function {name}()")));
                }
                for a in args {
                    collect(a, inside, calls, has_transform, bare, refs)?;
                }
            }
        },
        Expr::Literal(_) => {}
        Expr::Wildcard(_) | Expr::Regex(_) => {
            return Err(invalid(format!(
                "unsupported expression with wildcard: {e}"
            )));
        }
        Expr::BindParam(p) => return Err(invalid(format!("missing parameter: {p}"))),
    }
    Ok(())
}

/// One series' points, before rows are computed.
struct Group<'a> {
    frame: &'a Frame,
    tags: Vec<(String, String)>,
    points: Vec<&'a Point>,
}

/// The variables of a selected point, or none.
struct MaybePoint<'a> {
    frame: &'a Frame,
    point: Option<&'a Point>,
}

impl Vars for MaybePoint<'_> {
    fn var(&self, name: &str) -> Value {
        match self.point {
            Some(p) => self.frame.vars(p).var(name),
            None => Value::Null,
        }
    }
}

/// Substitutes computed calls in an expression and evaluates the rest.
fn eval_with(e: &Expr, results: &HashMap<String, Value>, vars: &dyn Vars) -> Value {
    match e {
        Expr::Call { name, args } => {
            if let Some(v) = results.get(&e.to_string()) {
                return v.clone();
            }
            if functions::kind(name).is_some() {
                return Value::Null;
            }
            let values: Vec<Value> = args.iter().map(|a| eval_with(a, results, vars)).collect();
            eval::math(name, &values)
        }
        Expr::Binary { op, lhs, rhs } => eval::binary(
            *op,
            &eval_with(lhs, results, vars),
            &eval_with(rhs, results, vars),
        ),
        Expr::Paren(inner) => eval_with(inner, results, vars),
        other => eval::eval(other, vars),
    }
}

/// A column's expression with its aggregate calls resolved to their index
/// among the statement's calls, so each window evaluates it without
/// looking calls up by name.
enum Compiled {
    Call(usize),
    Value(Value),
    Var(String),
    Binary(influxql::BinaryOp, Box<Compiled>, Box<Compiled>),
    Math(String, Vec<Compiled>),
}

impl Compiled {
    fn new(e: &Expr, calls: &[Call]) -> Compiled {
        match e {
            Expr::Call { name, args } => {
                let key = e.to_string();
                if let Some(i) = calls.iter().position(|c| c.key == key) {
                    return Compiled::Call(i);
                }
                if functions::kind(name).is_some() {
                    return Compiled::Value(Value::Null);
                }
                Compiled::Math(
                    name.clone(),
                    args.iter().map(|a| Compiled::new(a, calls)).collect(),
                )
            }
            Expr::Binary { op, lhs, rhs } => Compiled::Binary(
                *op,
                Box::new(Compiled::new(lhs, calls)),
                Box::new(Compiled::new(rhs, calls)),
            ),
            Expr::Paren(inner) => Compiled::new(inner, calls),
            Expr::VarRef { name, .. } => Compiled::Var(name.clone()),
            Expr::Literal(l) => Compiled::Value(eval::literal(l)),
            _ => Compiled::Value(Value::Null),
        }
    }

    fn eval(&self, calls: &[Value], vars: &dyn Vars) -> Value {
        match self {
            Compiled::Call(i) => calls[*i].clone(),
            Compiled::Value(v) => v.clone(),
            Compiled::Var(name) => vars.var(name),
            Compiled::Binary(op, l, r) => {
                eval::binary(*op, &l.eval(calls, vars), &r.eval(calls, vars))
            }
            Compiled::Math(name, args) => {
                let values: Vec<Value> = args.iter().map(|a| a.eval(calls, vars)).collect();
                eval::math(name, &values)
            }
        }
    }

    /// The calls it reads.
    fn calls(&self) -> Vec<usize> {
        match self {
            Compiled::Call(i) => vec![*i],
            Compiled::Binary(_, l, r) => {
                let mut v = l.calls();
                v.extend(r.calls());
                v
            }
            Compiled::Math(_, args) => args.iter().flat_map(Compiled::calls).collect(),
            _ => Vec::new(),
        }
    }
}

/// The transformation calls of an expression, outermost first.
fn transforms(e: &Expr, out: &mut Vec<Expr>) {
    match e {
        Expr::Call { name, args } => {
            if functions::kind(name) == Some(Kind::Transform) {
                out.push(e.clone());
            }
            for a in args {
                transforms(a, out);
            }
        }
        Expr::Binary { lhs, rhs, .. } => {
            transforms(lhs, out);
            transforms(rhs, out);
        }
        Expr::Paren(inner) => transforms(inner, out),
        _ => {}
    }
}

impl Plan {
    fn series(
        &self,
        frames: Vec<Frame>,
        range: TimeRange,
        now_ns: i64,
        s: &SelectStatement,
    ) -> Result<Vec<Series>, QueryError> {
        // The windows' span: the range, or the data's first point and now.
        let first = frames
            .iter()
            .flat_map(|f| f.points.iter().map(|p| p.time))
            .min();
        let mut groups: Vec<Group<'_>> = Vec::new();
        for frame in &frames {
            let keys = self.dims_keys.keys_of(frame);
            let cols: Vec<Option<usize>> = keys
                .iter()
                .map(|k| match frame.col(k) {
                    Some(Col::Tag(i)) => Some(i),
                    _ => None,
                })
                .collect();
            let mut by_key: BTreeMap<Vec<String>, Vec<&Point>> = BTreeMap::new();
            for p in &frame.points {
                let key: Vec<String> = cols
                    .iter()
                    .map(|c| {
                        c.and_then(|i| p.tags[i].as_deref())
                            .unwrap_or("")
                            .to_string()
                    })
                    .collect();
                by_key.entry(key).or_default().push(p);
            }
            for (key, mut points) in by_key {
                points.sort_by(|a, b| a.time.cmp(&b.time).then_with(|| a.tags.cmp(&b.tags)));
                groups.push(Group {
                    frame,
                    tags: keys.iter().cloned().zip(key).collect(),
                    points,
                });
            }
        }
        let mut out = Vec::new();
        for g in &groups {
            let mut rows = match self.mode {
                Mode::Raw => self.raw_rows(g),
                Mode::RawTransform => self.raw_transform_rows(g)?,
                Mode::Aggregate => {
                    let Some(first) = first else { continue };
                    self.aggregate_rows(g, range, first, now_ns)?
                }
            };
            if s.descending {
                rows.reverse();
            }
            let offset = s.offset.unwrap_or(0) as usize;
            let mut rows: Vec<Row> = rows.into_iter().skip(offset).collect();
            if let Some(limit) = s.limit.filter(|l| *l > 0) {
                rows.truncate(limit as usize);
            }
            if rows.is_empty() {
                continue;
            }
            let mut columns = vec!["time".to_string()];
            columns.extend(self.fields.iter().map(|f| f.name.clone()));
            out.push(Series {
                name: Some(g.frame.measurement.clone()),
                tags: self
                    .dims_keys
                    .grouped()
                    .then(|| g.tags.iter().cloned().collect()),
                columns,
                rows,
                has_time: true,
            });
        }
        // Descending time also reverses the series, as InfluxDB orders them.
        if s.descending {
            out.reverse();
        }
        let soffset = s.soffset.unwrap_or(0) as usize;
        let mut out: Vec<Series> = out.into_iter().skip(soffset).collect();
        if let Some(limit) = s.slimit.filter(|l| *l > 0) {
            out.truncate(limit as usize);
        }
        Ok(out)
    }

    fn raw_rows(&self, g: &Group<'_>) -> Vec<Row> {
        let field_cols: Vec<usize> = self
            .field_refs
            .iter()
            .filter_map(|f| match g.frame.col(f) {
                Some(Col::Field(i)) => Some(i),
                _ => None,
            })
            .collect();
        g.points
            .iter()
            .filter(|p| field_cols.iter().any(|i| !p.fields[*i].is_null()))
            .map(|p| Row {
                time: p.time,
                values: self
                    .fields
                    .iter()
                    .map(|f| eval::eval(&f.expr, &g.frame.vars(p)))
                    .collect(),
            })
            .collect()
    }

    fn raw_transform_rows(&self, g: &Group<'_>) -> Result<Vec<Row>, QueryError> {
        let mut results: BTreeMap<i64, HashMap<String, Value>> = BTreeMap::new();
        for f in &self.fields {
            let mut ts = Vec::new();
            transforms(&f.expr, &mut ts);
            // Innermost first, so nested transformations see their input.
            for t in ts.iter().rev() {
                let Expr::Call { name, args } = t else {
                    continue;
                };
                let (parsed, _) = call_args(name, args)?;
                let mut seq: Vec<(i64, Value)> = g
                    .points
                    .iter()
                    .map(|p| (p.time, eval::eval(&args[0], &g.frame.vars(p))))
                    .collect();
                // InfluxDB transforms in the order the rows are returned.
                if self.descending {
                    seq.reverse();
                }
                let key = t.to_string();
                for (time, v) in functions::transform(name, &parsed, 1_000_000_000, &seq)? {
                    results.entry(time).or_default().insert(key.clone(), v);
                }
            }
        }
        let empty = MaybePoint {
            frame: g.frame,
            point: None,
        };
        Ok(results
            .into_iter()
            .map(|(time, r)| Row {
                time,
                values: self
                    .fields
                    .iter()
                    .map(|f| eval_with(&f.expr, &r, &empty))
                    .collect(),
            })
            .collect())
    }

    fn aggregate_rows(
        &self,
        g: &Group<'_>,
        range: TimeRange,
        first: i64,
        now_ns: i64,
    ) -> Result<Vec<Row>, QueryError> {
        // The windows: (start, end exclusive, the row's time).
        let windows: Vec<(i64, i64, i64)> = match self.interval {
            Some(interval) => {
                let mut start = self.window(range.start.unwrap_or(first)).0;
                if range.start.is_some() {
                    for _ in 0..self.lookback() {
                        start = self.window(start - 1).0;
                    }
                }
                let last = self.window(range.end.unwrap_or(now_ns)).0;
                let count = (last - start) / interval + 1;
                if count > MAX_WINDOWS {
                    return Err(invalid(format!(
                        "the query would produce {count} windows per series (at most {MAX_WINDOWS}): narrow the time range or widen the GROUP BY time interval"
                    )));
                }
                let mut windows = Vec::with_capacity(count.max(0) as usize);
                let mut w = start;
                while w <= last {
                    let (s, e) = self.window(w);
                    windows.push((s, e, s));
                    w = e.max(s + 1);
                }
                windows
            }
            None => vec![(
                range.start.unwrap_or(i64::MIN),
                range.end.map(|e| e.saturating_add(1)).unwrap_or(i64::MAX),
                range.start.unwrap_or(0),
            )],
        };
        let times: Vec<i64> = g.points.iter().map(|p| p.time).collect();
        // Per call, per window: its outputs.
        let mut per_call: Vec<Vec<Vec<Output>>> = Vec::with_capacity(self.calls.len());
        for (ci, call) in self.calls.iter().enumerate() {
            if self.pushed {
                // One row per window: the call's value, computed by DataFusion.
                let mut outs = Vec::with_capacity(windows.len());
                for (start, end, _) in &windows {
                    let lo = times.partition_point(|t| t < start);
                    let hi = times.partition_point(|t| t < end);
                    let value = (lo..hi)
                        .map(|j| &g.points[j].fields[ci])
                        .find(|v| !v.is_null())
                        .cloned();
                    outs.push(match value {
                        Some(v) => vec![Output {
                            value: v,
                            time: None,
                            point: None,
                        }],
                        None if call.name == "count" => {
                            vec![Output {
                                value: Value::Integer(0),
                                time: None,
                                point: None,
                            }]
                        }
                        None => Vec::new(),
                    });
                }
                per_call.push(outs);
                continue;
            }
            let col = match g.frame.col(&call.field) {
                Some(Col::Field(i)) => Some(Col::Field(i)),
                Some(Col::Tag(_)) => None, // tags are not aggregated: no values
                None => None,
            };
            if call.name == "integral" {
                let points: Vec<(i64, f64)> = match col {
                    Some(Col::Field(i)) => g
                        .points
                        .iter()
                        .filter_map(|p| as_f64(&p.fields[i]).map(|v| (p.time, v)))
                        .collect(),
                    _ => Vec::new(),
                };
                let unit = call.args.unit.unwrap_or(1_000_000_000);
                let values = match self.interval {
                    Some(_) => {
                        let window_of = |t: i64| self.window(t);
                        functions::integral(&points, unit, Some(&window_of))
                    }
                    None => functions::integral(&points, unit, None),
                };
                per_call.push(
                    windows
                        .iter()
                        .map(|(start, _, _)| {
                            let key = if self.interval.is_some() { *start } else { 0 };
                            values
                                .get(&key)
                                .filter(|_| !points.is_empty())
                                .map(|v| {
                                    vec![Output {
                                        value: Value::Float(*v),
                                        time: None,
                                        point: None,
                                    }]
                                })
                                .unwrap_or_default()
                        })
                        .collect(),
                );
                continue;
            }
            let tag_cols: Vec<Option<usize>> = call
                .tag_args
                .iter()
                .map(|t| match g.frame.col(t) {
                    Some(Col::Tag(i)) => Some(i),
                    _ => None,
                })
                .collect();
            let tag_of = |point: usize| -> Vec<String> {
                tag_cols
                    .iter()
                    .map(|c| {
                        c.and_then(|i| g.points[point].tags[i].as_deref())
                            .unwrap_or("")
                            .to_string()
                    })
                    .collect()
            };
            let mut outs = Vec::with_capacity(windows.len());
            for (start, end, wtime) in &windows {
                let lo = times.partition_point(|t| t < start);
                let hi = times.partition_point(|t| t < end);
                let mut inputs: Vec<Input> = match col {
                    Some(Col::Field(i)) => (lo..hi)
                        .filter(|j| !g.points[*j].fields[i].is_null())
                        .map(|j| Input {
                            time: g.points[j].time,
                            value: g.points[j].fields[i].clone(),
                            point: j,
                        })
                        .collect(),
                    _ => Vec::new(),
                };
                if functions::numeric_only(&call.name)
                    && inputs
                        .iter()
                        .any(|v| matches!(v.value, Value::String(_) | Value::Boolean(_)))
                {
                    return Err(invalid(format!(
                        "unsupported {} iterator type: {}",
                        call.name,
                        match inputs.iter().find(|v| matches!(v.value, Value::String(_))) {
                            Some(_) => "string",
                            None => "boolean",
                        }
                    )));
                }
                if call.of_distinct {
                    let distinct =
                        functions::reduce("distinct", &call.args, &inputs, &tag_of, false)?;
                    inputs = distinct
                        .into_iter()
                        .map(|o| Input {
                            time: *wtime,
                            value: o.value,
                            point: 0,
                        })
                        .collect();
                }
                outs.push(functions::reduce(
                    &call.name,
                    &call.args,
                    &inputs,
                    &tag_of,
                    !call.tag_args.is_empty(),
                )?);
            }
            per_call.push(outs);
        }

        // Rows.
        let compiled: Vec<Compiled> = self
            .fields
            .iter()
            .map(|f| Compiled::new(&f.expr, &self.calls))
            .collect();
        let field_calls: Vec<Vec<usize>> = compiled.iter().map(Compiled::calls).collect();
        let mut rows: Vec<Row> = Vec::new();
        let mut empty_cells: Vec<Vec<bool>> = Vec::new();
        let mut window_of_row: Vec<usize> = Vec::new();
        for (w, (_, _, wtime)) in windows.iter().enumerate() {
            if let Some(m) = self.multi {
                let call = &self.calls[m];
                for o in &per_call[m][w] {
                    let vars = MaybePoint {
                        frame: g.frame,
                        point: o.point.map(|j| g.points[j]),
                    };
                    let mut results = HashMap::new();
                    results.insert(call.key.clone(), o.value.clone());
                    let time = if call.kind == Kind::Distinct {
                        *wtime
                    } else {
                        o.time.unwrap_or(*wtime)
                    };
                    rows.push(Row {
                        time,
                        values: self
                            .fields
                            .iter()
                            .map(|f| eval_with(&f.expr, &results, &vars))
                            .collect(),
                    });
                    empty_cells.push(vec![false; self.fields.len()]);
                    window_of_row.push(w);
                }
                continue;
            }
            // The calls' values in this window, by call index.
            let mut values_of_calls = Vec::with_capacity(self.calls.len());
            let mut empty_calls = Vec::with_capacity(self.calls.len());
            let mut selected: Option<&Output> = None;
            for (c, call) in self.calls.iter().enumerate() {
                let o = per_call[c][w].first();
                let is_empty = match call.name.as_str() {
                    "count" => matches!(o.map(|o| &o.value), Some(Value::Integer(0))),
                    _ => o.is_none(),
                };
                // An empty window's count is filled like any empty value
                // (`fill(null)` makes it 0, see `fill_rows`).
                let value = if is_empty {
                    None
                } else {
                    o.map(|o| o.value.clone())
                };
                values_of_calls.push(value.unwrap_or(Value::Null));
                empty_calls.push(is_empty);
                if self.selector {
                    selected = o;
                }
            }
            let vars = MaybePoint {
                frame: g.frame,
                point: selected.and_then(|o| o.point).map(|j| g.points[j]),
            };
            let time = match (self.selector, self.interval, selected.and_then(|o| o.time)) {
                (true, None, Some(t)) => t,
                _ => *wtime,
            };
            let values = compiled
                .iter()
                .map(|c| c.eval(&values_of_calls, &vars))
                .collect();
            let cells = field_calls
                .iter()
                .map(|calls| !calls.is_empty() && calls.iter().all(|c| empty_calls[*c]))
                .collect();
            rows.push(Row { time, values });
            empty_cells.push(cells);
            window_of_row.push(w);
        }

        // Transformations of aggregates: over the windows' values.
        let default_unit = self.interval.unwrap_or(1_000_000_000);
        for (fi, f) in self.fields.iter().enumerate() {
            let mut ts = Vec::new();
            transforms(&f.expr, &mut ts);
            if ts.is_empty() {
                continue;
            }
            let mut results: Vec<HashMap<String, Value>> = vec![HashMap::new(); rows.len()];
            for t in ts.iter().rev() {
                let Expr::Call { name, args } = t else {
                    continue;
                };
                let (parsed, _) = call_args(name, args)?;
                let empty = MaybePoint {
                    frame: g.frame,
                    point: None,
                };
                let mut seq: Vec<(i64, Value)> = rows
                    .iter()
                    .enumerate()
                    .map(|(r, row)| {
                        let mut agg = HashMap::new();
                        for (c, call) in self.calls.iter().enumerate() {
                            let v = per_call[c][window_of_row[r]]
                                .first()
                                .map(|o| o.value.clone())
                                .unwrap_or(Value::Null);
                            agg.insert(call.key.clone(), v);
                        }
                        agg.extend(results[r].clone());
                        (row.time, eval_with(&args[0], &agg, &empty))
                    })
                    .collect();
                if self.descending {
                    seq.reverse();
                }
                let key = t.to_string();
                let outputs = functions::transform(name, &parsed, default_unit, &seq)?;
                let row_of: HashMap<i64, usize> = rows
                    .iter()
                    .enumerate()
                    .map(|(r, row)| (row.time, r))
                    .collect();
                for (time, v) in outputs {
                    if let Some(r) = row_of.get(&time) {
                        results[*r].insert(key.clone(), v);
                    }
                }
            }
            for (r, row) in rows.iter_mut().enumerate() {
                let mut all = results[r].clone();
                for (c, call) in self.calls.iter().enumerate() {
                    if !all.contains_key(&call.key) {
                        let v = per_call[c][window_of_row[r]]
                            .first()
                            .map(|o| o.value.clone())
                            .unwrap_or(Value::Null);
                        all.insert(call.key.clone(), v);
                    }
                }
                let empty = MaybePoint {
                    frame: g.frame,
                    point: None,
                };
                row.values[fi] = eval_with(&f.expr, &all, &empty);
                empty_cells[r][fi] = row.values[fi].is_null();
            }
        }

        // Rows of the lookback windows go; so do the rows where no
        // transformation had an output, when every column is one.
        let first_window = match (self.interval, range.start) {
            (Some(_), Some(start)) => Some(self.window(start).0),
            _ => None,
        };
        let only_transforms = self.only_transforms();
        let all_integral = self.interval.is_none()
            && !self.calls.is_empty()
            && self.calls.iter().all(|c| c.name == "integral");
        let (rows, empty_cells): (Vec<Row>, Vec<Vec<bool>>) = rows
            .into_iter()
            .zip(empty_cells)
            .filter(|(row, e)| {
                if first_window.is_some_and(|w| row.time < w) && self.lookback() > 0 {
                    return false;
                }
                if only_transforms && row.values.iter().all(|v| v.is_null()) {
                    return false;
                }
                // Without windows, a row where nothing was selected is no row.
                !(self.interval.is_none() && e.iter().all(|x| *x))
            })
            .map(|(mut row, e)| {
                if all_integral {
                    // InfluxDB's integral without windows is at time 0.
                    row.time = 0;
                }
                (row, e)
            })
            .unzip();
        let rows = self.fill_rows(rows, empty_cells)?;
        // An integral has no row for windows it never closed.
        if self.interval.is_some() && self.calls.iter().all(|c| c.name == "integral") {
            return Ok(rows
                .into_iter()
                .filter(|r| !r.values.iter().all(|v| v.is_null()))
                .collect());
        }
        Ok(rows)
    }

    // Fill runs down columns of a row-major table: indexes read best.
    #[allow(clippy::needless_range_loop)]
    fn fill_rows(&self, mut rows: Vec<Row>, empty: Vec<Vec<bool>>) -> Result<Vec<Row>, QueryError> {
        if self.multi.is_some() {
            return Ok(rows);
        }
        match &self.fill {
            Fill::Null => {
                // InfluxDB counts an empty window as 0 under fill(null).
                for (i, f) in self.fields.iter().enumerate() {
                    if matches!(f.expr.unparen(), Expr::Call { name, .. } if name == "count") {
                        for (row, e) in rows.iter_mut().zip(&empty) {
                            if e[i] {
                                row.values[i] = Value::Integer(0);
                            }
                        }
                    }
                }
            }
            Fill::None => {
                let kept = rows
                    .into_iter()
                    .zip(empty)
                    .filter(|(_, e)| !e.iter().all(|x| *x))
                    .map(|(r, _)| r)
                    .collect();
                return Ok(kept);
            }
            Fill::Value(l) => {
                let v = eval::literal(l);
                for i in 0..self.fields.len() {
                    // An integer column (a count) takes the value as an integer.
                    let integer = matches!(self.fields[i].expr.unparen(), Expr::Call { name, .. } if name == "count")
                        || rows
                            .iter()
                            .zip(&empty)
                            .any(|(r, e)| !e[i] && matches!(r.values[i], Value::Integer(_)));
                    let v = match (&v, integer) {
                        (Value::Float(f), true) => Value::Integer(*f as i64),
                        _ => v.clone(),
                    };
                    for (row, e) in rows.iter_mut().zip(&empty) {
                        if e[i] {
                            row.values[i] = v.clone();
                        }
                    }
                }
            }
            Fill::Previous => {
                for i in 0..self.fields.len() {
                    let mut prev: Option<Value> = None;
                    for (row, e) in rows.iter_mut().zip(&empty) {
                        if e[i] {
                            if let Some(p) = &prev {
                                row.values[i] = p.clone();
                            }
                        } else if !row.values[i].is_null() {
                            prev = Some(row.values[i].clone());
                        }
                    }
                }
            }
            Fill::Linear => {
                for i in 0..self.fields.len() {
                    let known: Vec<usize> = (0..rows.len())
                        .filter(|r| !empty[*r][i] && as_f64(&rows[*r].values[i]).is_some())
                        .collect();
                    for pair in known.windows(2) {
                        let (a, b) = (pair[0], pair[1]);
                        let (va, vb) = (rows[a].values[i].clone(), rows[b].values[i].clone());
                        let (Some(fa), Some(fb)) = (as_f64(&va), as_f64(&vb)) else {
                            continue;
                        };
                        for r in a + 1..b {
                            let frac = (r - a) as f64 / (b - a) as f64;
                            let x = fa + (fb - fa) * frac;
                            rows[r].values[i] = match (&va, &vb) {
                                (Value::Integer(_), Value::Integer(_)) => Value::Integer(x as i64),
                                _ => Value::Float(x),
                            };
                        }
                    }
                }
            }
        }
        Ok(rows)
    }
}
