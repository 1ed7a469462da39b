//! InfluxQL's functions over the points of a window (aggregates and
//! selectors) and over the rows of a series (transformations).

use std::cmp::Ordering;
use std::collections::HashMap;

use services::QueryError;
use services::influxql::Value;

use crate::eval::{as_f64, binary, total_order};
use crate::invalid;

/// What a function is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// One value per window, at the window's time.
    Aggregate,
    /// One point of the window: its time and its row.
    Selector,
    /// Several points of the window (`top`, `bottom`, `sample`).
    MultiSelector,
    /// Several values per window, at the window's time (`distinct`).
    Distinct,
    /// A function of the series' sequence of values.
    Transform,
}

/// The kind of a function name; `None` for math functions and unknown names.
pub(crate) fn kind(name: &str) -> Option<Kind> {
    Some(match name {
        "count" | "sum" | "mean" | "median" | "mode" | "spread" | "stddev" | "integral" => {
            Kind::Aggregate
        }
        "first" | "last" | "max" | "min" | "percentile" => Kind::Selector,
        "top" | "bottom" | "sample" => Kind::MultiSelector,
        "distinct" => Kind::Distinct,
        "derivative"
        | "non_negative_derivative"
        | "difference"
        | "non_negative_difference"
        | "moving_average"
        | "cumulative_sum"
        | "elapsed" => Kind::Transform,
        _ => return None,
    })
}

/// Whether the function only takes numbers.
pub(crate) fn numeric_only(name: &str) -> bool {
    matches!(
        name,
        "sum"
            | "mean"
            | "median"
            | "spread"
            | "stddev"
            | "integral"
            | "max"
            | "min"
            | "percentile"
            | "top"
            | "bottom"
            | "derivative"
            | "non_negative_derivative"
            | "difference"
            | "non_negative_difference"
            | "moving_average"
            | "cumulative_sum"
    )
}

/// One input value: its time, the value, and the index of its point.
#[derive(Debug, Clone)]
pub(crate) struct Input {
    pub(crate) time: i64,
    pub(crate) value: Value,
    pub(crate) point: usize,
}

/// One output: the value, and the point it was selected from (for
/// selectors, whose time and other columns are the point's).
#[derive(Debug, Clone)]
pub(crate) struct Output {
    pub(crate) value: Value,
    pub(crate) time: Option<i64>,
    pub(crate) point: Option<usize>,
}

impl Output {
    fn value(value: Value) -> Self {
        Self {
            value,
            time: None,
            point: None,
        }
    }

    fn of(input: &Input) -> Self {
        Self {
            value: input.value.clone(),
            time: Some(input.time),
            point: Some(input.point),
        }
    }
}

/// The extra arguments of a call, after the field.
#[derive(Debug, Clone, Default)]
pub(crate) struct Args {
    /// `N` of top/bottom/sample/moving_average, `p` of percentile.
    pub(crate) number: Option<f64>,
    /// The unit of derivative/elapsed/integral, in nanoseconds.
    pub(crate) unit: Option<i64>,
}

fn sum(values: &[Input]) -> Value {
    let mut acc = Value::Null;
    for v in values {
        acc = if acc.is_null() {
            v.value.clone()
        } else {
            binary(influxql::BinaryOp::Add, &acc, &v.value)
        };
    }
    acc
}

fn floats(values: &[Input]) -> Vec<f64> {
    values.iter().filter_map(|v| as_f64(&v.value)).collect()
}

/// An aggregate or selector over a window's non-null values (in time order).
pub(crate) fn reduce(
    name: &str,
    args: &Args,
    values: &[Input],
    tag_of: &dyn Fn(usize) -> Vec<String>,
    tagged: bool,
) -> Result<Vec<Output>, QueryError> {
    let one = |v: Value| Ok(vec![Output::value(v)]);
    if name != "count" && values.is_empty() {
        return Ok(Vec::new());
    }
    match name {
        "count" => one(Value::Integer(values.len() as i64)),
        "sum" => one(sum(values)),
        "mean" => {
            let f = floats(values);
            one(Value::Float(f.iter().sum::<f64>() / f.len() as f64))
        }
        "median" => {
            let mut f = floats(values);
            f.sort_by(|a, b| a.partial_cmp(b).unwrap_or(Ordering::Equal));
            let n = f.len();
            one(Value::Float(if n % 2 == 1 {
                f[n / 2]
            } else {
                (f[n / 2 - 1] + f[n / 2]) / 2.0
            }))
        }
        "mode" => {
            let mut sorted: Vec<&Value> = values.iter().map(|v| &v.value).collect();
            sorted.sort_by(|a, b| total_order(a, b));
            let (mut best, mut best_count) = (sorted[0], 0);
            let mut i = 0;
            while i < sorted.len() {
                let mut j = i;
                while j < sorted.len() && total_order(sorted[i], sorted[j]) == Ordering::Equal {
                    j += 1;
                }
                if j - i > best_count {
                    best = sorted[i];
                    best_count = j - i;
                }
                i = j;
            }
            one(best.clone())
        }
        "spread" => {
            let max = values
                .iter()
                .map(|v| &v.value)
                .max_by(|a, b| total_order(a, b));
            let min = values
                .iter()
                .map(|v| &v.value)
                .min_by(|a, b| total_order(a, b));
            match (max, min) {
                (Some(a), Some(b)) => one(binary(influxql::BinaryOp::Sub, a, b)),
                _ => Ok(Vec::new()),
            }
        }
        "stddev" => {
            let f = floats(values);
            if f.len() < 2 {
                return one(Value::Null);
            }
            let mean = f.iter().sum::<f64>() / f.len() as f64;
            let var = f.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (f.len() - 1) as f64;
            one(Value::Float(var.sqrt()))
        }
        "first" => Ok(vec![Output::of(&values[0])]),
        "last" => {
            // The latest time; of equal times, the first written.
            let last_time = values[values.len() - 1].time;
            let i = values.iter().position(|v| v.time == last_time).unwrap_or(0);
            Ok(vec![Output::of(&values[i])])
        }
        "max" | "min" => {
            let mut best = &values[0];
            for v in &values[1..] {
                let o = total_order(&v.value, &best.value);
                if (name == "max" && o == Ordering::Greater)
                    || (name == "min" && o == Ordering::Less)
                {
                    best = v;
                }
            }
            Ok(vec![Output::of(best)])
        }
        "percentile" => {
            let p = args
                .number
                .ok_or_else(|| invalid("percentile requires a number"))?;
            let mut sorted: Vec<&Input> = values.iter().collect();
            sorted.sort_by(|a, b| total_order(&a.value, &b.value));
            let i = (sorted.len() as f64 * p / 100.0 + 0.5).floor() as i64 - 1;
            if i < 0 || i as usize >= sorted.len() {
                return Ok(Vec::new());
            }
            Ok(vec![Output::of(sorted[i as usize])])
        }
        "top" | "bottom" => {
            let n = args.number.unwrap_or(1.0) as usize;
            let better = |a: &Input, b: &Input| {
                let o = total_order(&a.value, &b.value);
                let o = if name == "top" { o.reverse() } else { o };
                o.then(a.time.cmp(&b.time))
            };
            let mut candidates: Vec<&Input> = if tagged {
                // The best point of each tag combination.
                let mut best: HashMap<Vec<String>, &Input> = HashMap::new();
                let mut order = Vec::new();
                for v in values {
                    let key = tag_of(v.point);
                    match best.get(&key) {
                        Some(b) if better(b, v) != Ordering::Greater => {}
                        Some(_) => {
                            best.insert(key, v);
                        }
                        None => {
                            order.push(key.clone());
                            best.insert(key, v);
                        }
                    }
                }
                order.iter().filter_map(|k| best.get(k).copied()).collect()
            } else {
                values.iter().collect()
            };
            candidates.sort_by(|a, b| better(a, b));
            candidates.truncate(n);
            candidates.sort_by_key(|c| c.time);
            Ok(candidates.into_iter().map(Output::of).collect())
        }
        "sample" => {
            let n = args.number.unwrap_or(1.0) as usize;
            if n == 0 {
                return Ok(Vec::new());
            }
            // Evenly spaced points: deterministic, spread over the window.
            let len = values.len();
            let picked: Vec<Output> = if len <= n {
                values.iter().map(Output::of).collect()
            } else {
                (0..n).map(|i| Output::of(&values[i * len / n])).collect()
            };
            Ok(picked)
        }
        "distinct" => {
            let mut seen: Vec<&Value> = Vec::new();
            for v in values {
                if !seen
                    .iter()
                    .any(|s| total_order(s, &v.value) == Ordering::Equal && same_type(s, &v.value))
                {
                    seen.push(&v.value);
                }
            }
            Ok(seen.into_iter().map(|v| Output::value(v.clone())).collect())
        }
        other => Err(invalid(format!("unsupported call: {other}"))),
    }
}

fn same_type(a: &Value, b: &Value) -> bool {
    std::mem::discriminant(a) == std::mem::discriminant(b)
}

/// `integral` over a series, with InfluxDB's interpolation at window
/// edges: the value per window start. Without windows, one value at key 0.
pub(crate) fn integral(
    points: &[(i64, f64)],
    unit: i64,
    window_of: Option<&dyn Fn(i64) -> (i64, i64)>,
) -> HashMap<i64, f64> {
    let mut out = HashMap::new();
    let unit = unit.max(1) as f64;
    let Some(&(first_t, first_v)) = points.first() else {
        return out;
    };
    let (mut prev_t, mut prev_v) = (first_t, first_v);
    let mut window = window_of.map(|w| w(first_t));
    let mut sum = 0.0;
    for &(t, v) in &points[1..] {
        if t == prev_t {
            prev_v = v;
            continue;
        }
        if let (Some(w), Some((start, end))) = (window_of, window)
            && t >= end
        {
            if prev_t != end {
                let at_end = prev_v + (v - prev_v) * ((end - prev_t) as f64 / (t - prev_t) as f64);
                sum += 0.5 * (at_end + prev_v) * ((end - prev_t) as f64 / unit);
                prev_v = at_end;
                prev_t = end;
            }
            out.insert(start, sum);
            window = Some(w(t));
            sum = 0.0;
        }
        sum += 0.5 * (v + prev_v) * ((t - prev_t) as f64 / unit);
        prev_t = t;
        prev_v = v;
    }
    match window {
        // The window the last point is in, closed by the end of the data.
        Some((start, _)) => {
            out.insert(start, sum);
        }
        None => {
            out.insert(0, sum);
        }
    }
    out
}

/// A transformation over a series' rows: `(time, value)` in time order,
/// nulls skipped. Returns the output rows.
pub(crate) fn transform(
    name: &str,
    args: &Args,
    default_unit: i64,
    seq: &[(i64, Value)],
) -> Result<Vec<(i64, Value)>, QueryError> {
    let seq: Vec<&(i64, Value)> = seq.iter().filter(|(_, v)| !v.is_null()).collect();
    let mut out = Vec::new();
    match name {
        "derivative" | "non_negative_derivative" => {
            let unit = args.unit.unwrap_or(default_unit) as f64;
            for w in seq.windows(2) {
                let ((t0, v0), (t1, v1)) = (w[0], w[1]);
                let (Some(a), Some(b)) = (as_f64(v0), as_f64(v1)) else {
                    continue;
                };
                if t1 == t0 {
                    continue;
                }
                // Over rows in descending order the elapsed time counts as positive.
                let d = (b - a) / ((t1 - t0).abs() as f64 / unit);
                if name == "non_negative_derivative" && d < 0.0 {
                    continue;
                }
                out.push((*t1, Value::Float(d)));
            }
        }
        "difference" | "non_negative_difference" => {
            for w in seq.windows(2) {
                let ((_, v0), (t1, v1)) = (w[0], w[1]);
                let d = binary(influxql::BinaryOp::Sub, v1, v0);
                if name == "non_negative_difference" && as_f64(&d).is_some_and(|x| x < 0.0) {
                    continue;
                }
                out.push((*t1, d));
            }
        }
        "moving_average" => {
            let n = args.number.unwrap_or(0.0) as usize;
            if n < 1 {
                return Err(invalid("moving_average window must be greater than 1"));
            }
            for w in seq.windows(n) {
                let sum: f64 = w.iter().filter_map(|(_, v)| as_f64(v)).sum();
                out.push((w[n - 1].0, Value::Float(sum / n as f64)));
            }
        }
        "cumulative_sum" => {
            let mut acc = Value::Null;
            for (t, v) in seq {
                acc = if acc.is_null() {
                    v.clone()
                } else {
                    binary(influxql::BinaryOp::Add, &acc, v)
                };
                out.push((*t, acc.clone()));
            }
        }
        "elapsed" => {
            let unit = args.unit.unwrap_or(1).max(1);
            for w in seq.windows(2) {
                out.push((w[1].0, Value::Integer((w[1].0 - w[0].0) / unit)));
            }
        }
        other => return Err(invalid(format!("unsupported call: {other}"))),
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(values: &[(i64, f64)]) -> Vec<Input> {
        values
            .iter()
            .enumerate()
            .map(|(i, (t, v))| Input {
                time: *t,
                value: Value::Float(*v),
                point: i,
            })
            .collect()
    }

    fn one(name: &str, args: Args, values: &[(i64, f64)]) -> Output {
        let out = reduce(name, &args, &inputs(values), &|_| Vec::new(), false).unwrap();
        assert_eq!(out.len(), 1, "{name}");
        out[0].clone()
    }

    #[test]
    fn selectors_keep_the_point() {
        let data = [(10, 3.0), (20, 1.0), (30, 3.0), (40, 2.0)];
        let max = one("max", Args::default(), &data);
        // Of equal values, the earliest.
        assert_eq!((max.value, max.time), (Value::Float(3.0), Some(10)));
        let p = Args {
            number: Some(50.0),
            unit: None,
        };
        assert_eq!(one("percentile", p, &data).value, Value::Float(2.0));
        // Mode: the most frequent; of a tie, the smallest.
        assert_eq!(
            one("mode", Args::default(), &[(1, 2.0), (2, 1.0)]).value,
            Value::Float(1.0)
        );
        assert_eq!(
            one("median", Args::default(), &data).value,
            Value::Float(2.5)
        );
        let tagged = reduce(
            "top",
            &Args {
                number: Some(2.0),
                unit: None,
            },
            &inputs(&data),
            &|point| vec![["a", "b", "a", "b"][point].to_string()],
            true,
        )
        .unwrap();
        // The best of each tag, then the best two, in time order.
        let got: Vec<_> = tagged.iter().map(|o| (o.time, o.value.clone())).collect();
        assert_eq!(
            got,
            vec![(Some(10), Value::Float(3.0)), (Some(40), Value::Float(2.0))]
        );
        assert!(
            reduce(
                "percentile",
                &Args {
                    number: Some(0.0),
                    unit: None
                },
                &inputs(&data),
                &|_| Vec::new(),
                false
            )
            .unwrap()
            .is_empty()
        );
    }

    #[test]
    fn transformations_over_a_series() {
        let seq: Vec<(i64, Value)> = vec![
            (0, Value::Integer(10)),
            (1_000_000_000, Value::Null),
            (2_000_000_000, Value::Integer(14)),
            (3_000_000_000, Value::Integer(12)),
        ];
        let d = transform("derivative", &Args::default(), 1_000_000_000, &seq).unwrap();
        assert_eq!(
            d,
            vec![
                (2_000_000_000, Value::Float(2.0)),
                (3_000_000_000, Value::Float(-2.0))
            ]
        );
        let nn = transform("non_negative_difference", &Args::default(), 1, &seq).unwrap();
        assert_eq!(nn, vec![(2_000_000_000, Value::Integer(4))]);
        let ma = transform(
            "moving_average",
            &Args {
                number: Some(2.0),
                unit: None,
            },
            1,
            &seq,
        )
        .unwrap();
        assert_eq!(
            ma,
            vec![
                (2_000_000_000, Value::Float(12.0)),
                (3_000_000_000, Value::Float(13.0))
            ]
        );
        let cs = transform("cumulative_sum", &Args::default(), 1, &seq).unwrap();
        assert_eq!(cs.last(), Some(&(3_000_000_000, Value::Integer(36))));
        let el = transform(
            "elapsed",
            &Args {
                number: None,
                unit: Some(1_000_000_000),
            },
            1,
            &seq,
        )
        .unwrap();
        assert_eq!(
            el,
            vec![
                (2_000_000_000, Value::Integer(2)),
                (3_000_000_000, Value::Integer(1))
            ]
        );
    }

    #[test]
    fn integral_interpolates_at_window_edges() {
        // Windows of 30: the area up to 30 goes to the first window, with
        // the value at 30 interpolated; the last window is closed by the data's end.
        let points = [(20, 1.5), (30, 2.5), (40, 3.5), (90, 4.5)];
        let window = |t: i64| (t.div_euclid(30) * 30, t.div_euclid(30) * 30 + 30);
        let by_window = integral(&points, 1, Some(&window));
        assert_eq!(by_window[&0], 20.0);
        assert!((by_window[&30] - 104.0).abs() < 1e-9);
        assert!((by_window[&90] - 126.0).abs() < 1e-9);
        let whole = integral(&points, 1, None);
        assert!((whole[&0] - (20.0 + 30.0 + 200.0)).abs() < 1e-9);
    }
}
