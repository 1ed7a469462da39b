//! The file index: the values each persisted file holds in a few chosen
//! columns, recorded in the catalog beside the file, so that a query with
//! `col = 'v'` or `col IN (...)` skips the files that cannot match without
//! opening them (min/max ranges cannot: one file of a thousand hosts
//! spans nearly every host's name).
//!
//! Up to [`EXACT_MAX_VALUES`] values (and [`EXACT_MAX_BYTES`]) are kept as
//! a sorted set; past that, as a split-block bloom filter (Parquet's own,
//! with its XxHash64, so the hashes never change) at a 1% false positive
//! rate: a filter never says no to a value the file has.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Int32Type};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use catalog::ValueSet;
use parquet::bloom_filter::Sbbf;

/// Values kept exactly at most.
pub const EXACT_MAX_VALUES: usize = 64;
/// Bytes of values kept exactly at most.
pub const EXACT_MAX_BYTES: usize = 4096;
/// A split-block bloom filter's block.
const BLOOM_BLOCK_BYTES: usize = 32;
/// The bloom filters' false positive rate.
const BLOOM_FPP: f64 = 0.01;

/// The distinct non-null values of a string or dictionary column.
fn distinct_values(array: &dyn Array) -> Option<BTreeSet<&str>> {
    let mut out = BTreeSet::new();
    match array.data_type() {
        DataType::Dictionary(k, v) if **k == DataType::Int32 && **v == DataType::Utf8 => {
            let d = array.as_dictionary::<Int32Type>();
            let values: &StringArray = d.values().as_string();
            let mut used = vec![false; values.len()];
            for k in d.keys().iter().flatten() {
                if let Some(u) = usize::try_from(k).ok().and_then(|k| used.get_mut(k)) {
                    *u = true;
                }
            }
            for (i, u) in used.iter().enumerate() {
                if *u && values.is_valid(i) {
                    out.insert(values.value(i));
                }
            }
        }
        DataType::Utf8 => {
            out.extend(array.as_string::<i32>().iter().flatten());
        }
        _ => return None,
    }
    Some(out)
}

/// The value sets of `columns` in `batch`: a column it lacks holds no
/// value (only nulls); one that is not a string gets no set, so it never
/// skips the file.
pub fn build(batch: &RecordBatch, columns: &[Arc<str>]) -> BTreeMap<Arc<str>, ValueSet> {
    let mut out = BTreeMap::new();
    for c in columns {
        let Some(array) = batch.column_by_name(c) else {
            out.insert(Arc::clone(c), ValueSet::Exact(Vec::new()));
            continue;
        };
        let Some(values) = distinct_values(array.as_ref()) else {
            continue;
        };
        let bytes: usize = values.iter().map(|v| v.len()).sum();
        let set = if values.len() <= EXACT_MAX_VALUES && bytes <= EXACT_MAX_BYTES {
            ValueSet::Exact(values.into_iter().map(str::to_string).collect())
        } else {
            let Ok(mut filter) = Sbbf::new_with_ndv_fpp(values.len() as u64, BLOOM_FPP) else {
                continue;
            };
            for v in &values {
                filter.insert(*v);
            }
            let mut bits = Vec::new();
            if filter.write_bitset(&mut bits).is_err() {
                continue;
            }
            ValueSet::Bloom(STANDARD.encode(bits))
        };
        out.insert(Arc::clone(c), set);
    }
    out
}

/// Whether a file whose column has `set` may hold any of `values`.
pub fn may_contain<S: AsRef<str>>(set: &ValueSet, values: &[S]) -> bool {
    match set {
        ValueSet::Exact(have) => values.iter().any(|v| {
            have.binary_search_by(|h| h.as_str().cmp(v.as_ref()))
                .is_ok()
        }),
        ValueSet::Bloom(bits) => match STANDARD.decode(bits) {
            // At least one 32-byte block: a shorter filter (a damaged
            // catalog entry) would index past its end.
            Ok(bytes) if bytes.len() >= BLOOM_BLOCK_BYTES => {
                let filter = Sbbf::new(&bytes);
                values.iter().any(|v| filter.check(v.as_ref()))
            }
            // Unreadable: the file may hold anything.
            _ => true,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::StringDictionaryBuilder;
    use arrow::datatypes::{Field, Schema};

    fn batch(values: &[String]) -> RecordBatch {
        let mut b = StringDictionaryBuilder::<Int32Type>::new();
        for v in values {
            b.append_value(v);
        }
        b.append_null();
        let schema = Arc::new(Schema::new(vec![Field::new(
            "host",
            DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
            true,
        )]));
        RecordBatch::try_new(schema, vec![Arc::new(b.finish())]).unwrap()
    }

    /// Found by the `parquet_footer` fuzz target: a filter shorter than a
    /// block panicked in the query path.
    #[test]
    fn a_damaged_bloom_filter_may_hold_anything() {
        for len in [1, 3, 31] {
            let set = ValueSet::Bloom(STANDARD.encode(vec![0u8; len]));
            assert!(may_contain(&set, &["host_1"]), "{len} bytes");
        }
        let set = ValueSet::Bloom("not base64!".into());
        assert!(may_contain(&set, &["host_1"]));
        let empty_block = ValueSet::Bloom(STANDARD.encode([0u8; 32]));
        assert!(!may_contain(&empty_block, &["host_1"]));
    }

    #[test]
    fn exact_sets_then_bloom_filters_with_no_false_negatives() {
        let cols = [Arc::from("host"), Arc::from("missing")];
        let few: Vec<String> = ["b", "a", "b"].iter().map(|s| s.to_string()).collect();
        let sets = build(&batch(&few), &cols);
        assert_eq!(sets["missing"], ValueSet::Exact(Vec::new()), "only nulls");
        assert!(!may_contain(&sets["missing"], &["a"]));
        let set = &sets["host"];
        assert_eq!(set, &ValueSet::Exact(vec!["a".into(), "b".into()]));
        assert!(may_contain(set, &["z", "a"]));
        assert!(!may_contain(set, &["z"]));

        let many: Vec<String> = (0..1000).map(|i| format!("host_{i}")).collect();
        let sets = build(&batch(&many), &cols);
        let set = &sets["host"];
        assert!(matches!(set, ValueSet::Bloom(_)));
        assert!(many.iter().all(|h| may_contain(set, &[h])));
        let false_positives = (1000..11000)
            .filter(|i| may_contain(set, &[format!("host_{i}")]))
            .count();
        assert!(false_positives < 300, "{false_positives} of 10000");
    }
}
