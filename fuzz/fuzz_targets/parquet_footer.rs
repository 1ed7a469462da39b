//! What Inflow adds to Parquet files and reads back before it trusts it:
//! the key-runs entry of a footer (checked against the file's rows, so a
//! run never selects a row past the end or outside its own rows), and the
//! file index's bloom filters from the catalog.
//!
//! The footer's own Thrift decoding is the parquet crate's: fuzzing it
//! here found an allocation of a length the footer claims (an abort on
//! out-of-memory), fixed upstream in apache/arrow-rs#9884 but not in the
//! parquet 59.3 that DataFusion 55 uses (docs/reliability.md).
//!
//! Input: one byte picking the part, then its bytes.
#![no_main]

use base64::Engine;
use catalog::ValueSet;
use libfuzzer_sys::fuzz_target;

fn check_runs(text: &str, rows: usize, lo: i64, hi: i64) {
    let Some(runs) = parquet_store::key_runs::decode(text, rows) else {
        return;
    };
    for run in runs.runs.values().flatten() {
        assert!(run.rows.start <= run.rows.end && run.rows.end <= rows);
        let within = run.rows_within(lo, hi);
        assert!(within.is_empty() || (within.start >= run.rows.start && within.end <= run.rows.end));
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, data)) = data.split_first() else {
        return;
    };
    match pick % 2 {
        0 => {
            // rows and a time range, then the entry's text.
            if data.len() < 18 {
                return;
            }
            let rows = usize::from(u16::from_le_bytes([data[0], data[1]]));
            let lo = i64::from_le_bytes(data[2..10].try_into().expect("8 bytes"));
            let hi = i64::from_le_bytes(data[10..18].try_into().expect("8 bytes"));
            if let Ok(text) = std::str::from_utf8(&data[18..]) {
                check_runs(text, rows, lo, hi);
            }
        }
        _ => {
            let set = ValueSet::Bloom(base64::engine::general_purpose::STANDARD.encode(data));
            let _ = parquet_store::file_index::may_contain(&set, &["host_1", ""]);
        }
    }
});
