use std::sync::Arc;

use arrow::compute::concat_batches;
use arrow::record_batch::RecordBatch;

use super::*;

#[test]
fn compact_dictionaries_keeps_values_and_drops_repeats() {
    use arrow::array::{AsArray, DictionaryArray, StringArray};
    use arrow::datatypes::{DataType, Field, Int32Type, Schema};
    let schema = Arc::new(Schema::new(vec![Field::new(
        "host",
        DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
        true,
    )]));
    let batch = |v: Vec<Option<&str>>| {
        let a: DictionaryArray<Int32Type> = v.into_iter().collect();
        RecordBatch::try_new(Arc::clone(&schema), vec![Arc::new(a)]).unwrap()
    };
    // Two requests' dictionaries side by side after concatenation.
    let all = concat_batches(
        &schema,
        &[
            batch(vec![Some("a"), Some("b"), None, Some("a")]),
            batch(vec![Some("b"), Some("a"), Some("c")]),
        ],
    )
    .unwrap();
    let before = all.column(0).as_dictionary::<Int32Type>().values().len();
    assert_eq!(before, 5, "concatenation kept both dictionaries");
    let compact = compact_dictionaries(&all).unwrap();
    let dict = compact.column(0).as_dictionary::<Int32Type>();
    assert_eq!(dict.values().len(), 3);
    let strings = arrow::compute::cast(compact.column(0), &DataType::Utf8).unwrap();
    let expected = StringArray::from(vec![
        Some("a"),
        Some("b"),
        None,
        Some("a"),
        Some("b"),
        Some("a"),
        Some("c"),
    ]);
    assert_eq!(strings.as_string::<i32>(), &expected);
}
