//! The parameters of the write and query endpoints as the server reads a
//! request: any query string, body and content type give parameters or a
//! message for a 400, never a panic.
//!
//! Input: the query string, a `\0`, the body; the first byte picks the
//! content type.
#![no_main]

use http_input::{InfluxqlParams, SqlParams, WriteApi, WriteTarget};
use libfuzzer_sys::fuzz_target;

const CONTENT_TYPES: [&str; 5] = [
    "",
    "application/json",
    "application/x-www-form-urlencoded",
    "application/vnd.influxql",
    "text/plain; charset=utf-8",
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, data)) = data.split_first() else {
        return;
    };
    let content_type = CONTENT_TYPES[usize::from(pick) % CONTENT_TYPES.len()];
    let (query, body) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let query = String::from_utf8_lossy(query);
    for api in [WriteApi::V1, WriteApi::V2, WriteApi::V3] {
        if let Ok(t) = WriteTarget::from_query(api, Some(&query)) {
            assert!(!t.db.is_empty());
        }
    }
    let _ = SqlParams::from_request(Some(&query), Some((body, content_type)));
    if let Ok(p) = InfluxqlParams::from_request(Some(&query), Some((body, content_type))) {
        assert!(p.chunk_size != Some(0));
    }
});
