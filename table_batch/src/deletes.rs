//! Predicate deletes applied to rows: which rows of a batch a
//! [`Tombstone`] deletes, and the batch without them. The buffer, the query
//! path (for files a tombstone still applies to) and the compactor (when it
//! rewrites such files) all use this one rule.

use arrow::array::{Array, AsArray, BooleanArray, BooleanBufferBuilder};
use arrow::compute::{cast, filter_record_batch};
use arrow::datatypes::{DataType, TimestampNanosecondType};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use catalog::{TagOp, Tombstone};

/// Which rows of `batch` the tombstone deletes (`true`: deleted). A batch
/// without a `time` column has no row in any time range. A tag the batch
/// lacks is the empty string on every row.
pub fn deleted_rows(
    batch: &RecordBatch,
    tombstone: &Tombstone,
) -> Result<BooleanArray, ArrowError> {
    let n = batch.num_rows();
    let mut deleted = BooleanBufferBuilder::new(n);
    let Some(time) = batch.column_by_name("time") else {
        deleted.append_n(n, false);
        return Ok(BooleanArray::new(deleted.finish(), None));
    };
    let time = time
        .as_primitive_opt::<TimestampNanosecondType>()
        .ok_or_else(|| ArrowError::SchemaError("time is not a nanosecond timestamp".into()))?;
    for i in 0..n {
        let t = time.value(i);
        deleted.append(time.is_valid(i) && tombstone.min_time <= t && t <= tombstone.max_time);
    }
    let mut deleted = deleted.finish();
    for cond in &tombstone.predicate {
        let values = match batch.column_by_name(&cond.tag) {
            Some(col) => Some(cast(col, &DataType::Utf8)?),
            None => None,
        };
        let strings = values.as_ref().map(|v| v.as_string::<i32>());
        let regex = match cond.op {
            TagOp::Regex | TagOp::NotRegex => Some(
                regex::Regex::new(&cond.value)
                    .map_err(|e| ArrowError::InvalidArgumentError(format!("delete regex: {e}")))?,
            ),
            TagOp::Eq | TagOp::NotEq => None,
        };
        let mut keep = BooleanBufferBuilder::new(n);
        for i in 0..n {
            let v = match strings {
                Some(s) if s.is_valid(i) => s.value(i),
                _ => "",
            };
            keep.append(match (cond.op, &regex) {
                (TagOp::Eq, _) => v == cond.value,
                (TagOp::NotEq, _) => v != cond.value,
                (TagOp::Regex, Some(re)) => re.is_match(v),
                (TagOp::NotRegex, Some(re)) => !re.is_match(v),
                _ => false,
            });
        }
        deleted = &deleted & &keep.finish();
    }
    Ok(BooleanArray::new(deleted, None))
}

/// `batch` without the rows any of `tombstones` deletes (the batch itself
/// when none does).
pub fn without_deleted<'t>(
    batch: &RecordBatch,
    tombstones: impl IntoIterator<Item = &'t Tombstone>,
) -> Result<RecordBatch, ArrowError> {
    let mut any: Option<arrow::buffer::BooleanBuffer> = None;
    for t in tombstones {
        let d = deleted_rows(batch, t)?.values().clone();
        any = Some(match any {
            Some(a) => &a | &d,
            None => d,
        });
    }
    match any {
        Some(d) if d.count_set_bits() > 0 => {
            let keep = BooleanArray::new(!&d, None);
            filter_record_batch(batch, &keep)
        }
        _ => Ok(batch.clone()),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{DictionaryArray, Int64Array, TimestampNanosecondArray};
    use arrow::datatypes::{Field, Int32Type, Schema};
    use catalog::TagCondition;

    use super::*;

    fn batch() -> RecordBatch {
        let host: DictionaryArray<Int32Type> = vec![Some("a"), Some("b"), None, Some("a")]
            .into_iter()
            .collect();
        let schema = Schema::new(vec![
            Field::new("host", host.data_type().clone(), true),
            Field::new("v", DataType::Int64, true),
            Field::new(
                "time",
                DataType::Timestamp(arrow::datatypes::TimeUnit::Nanosecond, None),
                false,
            ),
        ]);
        RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new(host),
                Arc::new(Int64Array::from(vec![1, 2, 3, 4])),
                Arc::new(TimestampNanosecondArray::from(vec![10, 20, 30, 40])),
            ],
        )
        .unwrap()
    }

    fn tomb(min: i64, max: i64, predicate: Vec<TagCondition>) -> Tombstone {
        Tombstone {
            id: 1,
            min_time: min,
            max_time: max,
            predicate,
            created_ns: 0,
        }
    }

    fn cond(tag: &str, negated: bool, value: &str) -> TagCondition {
        TagCondition {
            tag: tag.into(),
            op: if negated { TagOp::NotEq } else { TagOp::Eq },
            value: value.into(),
        }
    }

    fn values(b: &RecordBatch) -> Vec<i64> {
        b.column(1)
            .as_primitive::<arrow::datatypes::Int64Type>()
            .values()
            .to_vec()
    }

    #[test]
    fn time_range_and_tags() {
        let b = batch();
        assert_eq!(
            values(&without_deleted(&b, [&tomb(15, 35, vec![])]).unwrap()),
            [1, 4]
        );
        let t = tomb(0, 100, vec![cond("host", false, "a")]);
        assert_eq!(values(&without_deleted(&b, [&t]).unwrap()), [2, 3]);
        // A missing tag is the empty string.
        let t = tomb(0, 100, vec![cond("host", true, "a")]);
        assert_eq!(values(&without_deleted(&b, [&t]).unwrap()), [1, 4]);
        let t = tomb(0, 100, vec![cond("host", false, "")]);
        assert_eq!(values(&without_deleted(&b, [&t]).unwrap()), [1, 2, 4]);
        let re = |op, value: &str| TagCondition {
            tag: "host".into(),
            op,
            value: value.into(),
        };
        let t = tomb(0, 100, vec![re(TagOp::Regex, "^a")]);
        assert_eq!(values(&without_deleted(&b, [&t]).unwrap()), [2, 3]);
        let t = tomb(0, 100, vec![re(TagOp::NotRegex, "b")]);
        assert_eq!(values(&without_deleted(&b, [&t]).unwrap()), [2]);
        let t = tomb(0, 100, vec![cond("dc", false, "x")]);
        assert_eq!(values(&without_deleted(&b, [&t]).unwrap()), [1, 2, 3, 4]);
        // Several tombstones: a row any of them deletes is gone.
        let a = tomb(0, 15, vec![]);
        let c = tomb(35, 45, vec![]);
        assert_eq!(values(&without_deleted(&b, [&a, &c]).unwrap()), [2, 3]);
    }
}
