//! The InfluxQL parser on any text: statements parse or give a parse
//! error with a position, never a panic or a stack overflow.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = influxql::parse(text) {
        assert!(!e.to_string().is_empty());
    }
    let _ = influxql::parse_expr(text);
});
